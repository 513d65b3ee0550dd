"""Namesakes in two places and one code: a record naming one firm while quoting its namesake's code.

北京宏达贸易有限公司 and 上海宏达贸易有限公司 are two registered firms, one name core in two cities.
A penalty naming the Beijing firm in full, with the Shanghai firm's valid code, was linked to the
Shanghai firm: the check "does the record's name fit another firm exactly where the holder's does
not" took the holder's name for exact because the cores are equal, though the places differ. The
record names a registered firm the code does not belong to: it goes to review, both firms shown.
A name without a place (宏达贸易有限公司) fits both, and the code decides.
"""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st
from test_due_rules import PENALTY_HEADERS, run, uscc, write_csv
from test_matching import ANALYSER, LLC_FORMS, PLACES, _resolver, _valid_uscc, cores
from test_matching_twins_codes import links

from xinyong.domain.matching import places_agree

BEIJING = uscc("91110105MA01HD001")
SHANGHAI = uscc("91310115MA1HD0002")
REGISTER = ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"]


def test_a_firm_named_with_its_namesakes_code_from_another_city_goes_to_review(cli, tmp_path):
    write_csv(tmp_path / "register.csv", REGISTER, [
        [BEIJING, "北京宏达贸易有限公司", "有限责任公司", "张伟", "2015-01-05", "存续"],
        [SHANGHAI, "上海宏达贸易有限公司", "有限责任公司", "李娜", "2016-04-18", "存续"]])
    cli("ingest", tmp_path / "register.csv", "--authority", "samr", "--category", "registration")
    write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS, [
        ["北京宏达贸易有限公司", SHANGHAI, "京市监罚〔2026〕6号", "2026-05-01", "吊销许可证", ""],
        ["宏达贸易有限公司", SHANGHAI, "沪市监罚〔2026〕7号", "2026-05-02", "吊销许可证", ""],
        ["上海宏达贸易有限公司", SHANGHAI, "沪市监罚〔2026〕8号", "2026-05-03", "吊销许可证", ""]])
    cli("ingest", tmp_path / "penalties.csv", "--authority", "samr", "--category", "penalty")
    run(cli, "resolve")
    found = links(cli.url)
    assert found["samr:京市监罚〔2026〕6号"] == ("review", None), \
        f"the Beijing firm's penalty, quoting the Shanghai firm's code: {found['samr:京市监罚〔2026〕6号']}"
    assert found["samr:沪市监罚〔2026〕7号"] == ("linked", SHANGHAI)  # no place: the code decides
    assert found["samr:沪市监罚〔2026〕8号"] == ("linked", SHANGHAI)


@given(cores, st.sampled_from(PLACES), st.sampled_from(PLACES), st.sampled_from(LLC_FORMS))
def test_a_code_under_its_holders_namesake_from_another_place_is_never_linked_to_the_holder(
        core, holder_place, named_place, form):
    """Two registered firms of one core in two places (neither within the other): a record naming
    one, with the other's code, is review with both shown; naming the holder itself, it links."""
    assume(not places_agree(ANALYSER.parts(holder_place + core).places, ANALYSER.parts(named_place + core).places))
    holder_code, namesake_code = _valid_uscc("91310115MA1H7A001"), _valid_uscc("91110105MA01H7B02")
    resolver = _resolver((1, holder_place + core + form, holder_code), (2, named_place + core + form, namesake_code))
    decision = resolver.decide("r1", named_place + core + form, "enterprise", holder_code, "uscc", True, None, "penalty")
    assert decision.state == "review" and decision.explanation["reason"] == "code belongs to another firm", decision
    assert {c["entity_id"] for c in decision.explanation["candidates"]} >= {1, 2}
    own = resolver.decide("r2", holder_place + core + form, "enterprise", holder_code, "uscc", True, None, "penalty")
    assert (own.state, own.entity_id) == ("linked", 1), own
