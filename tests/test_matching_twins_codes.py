"""Twin firms and codes: a record naming one twin while quoting the other twin's valid code.

上海华美电器有限公司 (A) and 上海华美电气有限公司 (B) are registered twins, one real character apart.
A penalty naming B, in full or by a short name (上海华美电气, 华美电气: no legal form, as penalty
files often write it), with A's code is never linked to A: the code contradicts the name, and the
record goes to review as "code belongs to another firm", both firms shown. The check asks whether
the record's name fits another firm exactly where the holder's does not: its full name key, or its
name core (any legal form, or none) in a compatible place. Name screening of the short name picks B.
"""


from __future__ import annotations

import pytest

from hypothesis import assume, example, given
from hypothesis import strategies as st
from sqlalchemy import select
from test_due_rules import PENALTY_HEADERS, run, uscc, write_csv
from test_matching import (JOINT_STOCK_FORMS, LLC_FORMS, PLACES, TRADE_CHARS, _real_char_twin, _resolver,
                           _valid_uscc, cores)

from xinyong.store import tables as t
from xinyong.store.db import open_engine

TWIN_A = uscc("91310115MA1H7A001")
TWIN_B = uscc("91310115MA1H7B002")
NAME_A, NAME_B = "上海华美电器有限公司", "上海华美电气有限公司"


def links(url: str) -> dict[str, tuple[str, str | None]]:
    engine = open_engine(url)
    r, link, e = t.records.c, t.record_links.c, t.entities.c
    try:
        with engine.connect() as c:
            return {row.record_key: (row.state, row.key) for row in c.execute(
                select(r.record_key, link.state, e.key).join(t.record_links, link.record_id == r.id)
                .outerjoin(t.entities, e.id == link.entity_id).where(r.category == "penalty"))}
    finally:
        engine.dispose()


@pytest.mark.parametrize("written", ["上海华美电气", "华美电气"])
def test_a_twins_short_name_with_the_other_twins_code_is_not_linked_to_the_code_holder(cli, tmp_path, written):
    write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"], [
        [TWIN_A, NAME_A, "有限责任公司", "李建国", "2010-01-05", "存续"],
        [TWIN_B, NAME_B, "有限责任公司", "张伟", "2011-04-18", "存续"]])
    cli("ingest", tmp_path / "register.csv", "--authority", "samr", "--category", "registration")
    write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS, [
        [NAME_B, TWIN_A, "沪市监罚〔2025〕600号", "2025-07-03", "吊销许可证", ""],   # full name: goes to review
        [written, TWIN_A, "沪市监罚〔2025〕602号", "2025-07-03", "吊销许可证", ""]])  # short name of B
    cli("ingest", tmp_path / "penalties.csv", "--authority", "samr", "--category", "penalty")
    run(cli, "resolve")
    # name screening reads the short name as B's
    screened = run(cli, "screen", "--name", written, "--action", "public_procurement")
    assert screened["subject"]["key"] == TWIN_B, screened["subject"]
    found = links(cli.url)
    assert found["samr:沪市监罚〔2025〕600号"] == ("review", None)
    assert found["samr:沪市监罚〔2025〕602号"] != ("linked", TWIN_A), \
        f"{written} (B's short name) with A's code linked to A: {found['samr:沪市监罚〔2025〕602号']}"


@given(cores, st.integers(0, 20), st.sampled_from(TRADE_CHARS), st.sampled_from(PLACES), st.sampled_from(LLC_FORMS), st.sampled_from(LLC_FORMS + JOINT_STOCK_FORMS),
       st.sampled_from(["full", "short", "bare"]))
@example("华信科技", 1, "达", "上海", "有限公司", "有限公司", "short")
@example("华信科技", 1, "达", "北京", "有限公司", "股份有限公司", "bare")
def test_a_twins_code_under_the_other_twins_name_is_never_auto_linked_to_the_code_holder(
        core, at, replacement, place, form, written_form, writing):
    """Random twins (one real character apart, not a homophone), both registered with their codes:
    a penalty naming one twin (full name in any legal form, place and short name, or the bare short
    name) with the other's code is never linked to the code holder."""
    twin = _real_char_twin(core, at, replacement)
    assume(twin is not None and twin != core)
    holder_code, twin_code = _valid_uscc("91310115MA1H7A001"), _valid_uscc("91310115MA1H7B002")
    resolver = _resolver((1, place + core + form, holder_code), (2, place + twin + form, twin_code))
    record_name = {"full": place + twin + written_form, "short": place + twin, "bare": twin}[writing]
    decision = resolver.decide("r1", record_name, "enterprise", holder_code, "uscc", True, None, "penalty")
    assert (decision.state, decision.entity_id) != ("linked", 1), (record_name, decision)
    assert decision.state == "review" and decision.explanation["reason"] == "code belongs to another firm"
    assert {c["entity_id"] for c in decision.explanation["candidates"]} >= {1, 2}
