"""The pack's rules over time, end to end through the CLI on SQLite and PostgreSQL (issue 10).

Small hand-made files for a handful of firms and persons; each test takes the steps a
registry would (ingest, resolve, evaluate --as-of, notice, process --as-of, decisions) and
checks what the rules do with time: a listing that ended never comes back from its own
evidence, a cure ends a listing, three uncured years move a firm to the serious list, only
the latest tax grade counts and a blacklist excludes the redlist, the tax threshold of Order
54, court terms per ground and the grace period, the market regulator's own penalties, the
bar on legal representatives, and the publicity tiers of penalties.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli
from sqlalchemy import select
from stdnum.cn import ric

from xinyong.domain.calendar import add_years
from xinyong.domain.decisions import Bearing, ListingView, decide, measures_for
from xinyong.domain.identifiers import uscc_check_character
from xinyong.domain.listings import IllegalTransition, ListingFacts, check_transition
from xinyong.domain.pack import PackError, load_pack
from xinyong.services.resolution.entities import public_file
from xinyong.store import tables as t
from xinyong.store.db import open_engine

PACK = load_pack("cn")


def uscc(body: str) -> str:
    return body + uscc_check_character(body)


def resident_id(region: str, born: dt.date, serial: int) -> str:
    partial = f"{region}{born:%Y%m%d}{serial:03d}0"
    return partial[:17] + ric.calc_check_digit(partial)


REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "企业类型", "成立日期", "登记状态", "法定代表人", "法定代表人证件号码"]
PENALTY_HEADERS = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额"]
ABNORMAL_HEADERS = ["企业名称", "统一社会信用代码", "列入决定书文号", "列入经营异常名录原因", "列入日期", "移出日期"]
GRADE_HEADERS = ["纳税人名称", "统一社会信用代码", "评价年度", "纳税信用级别", "评价日期"]
TAX_HEADERS = ["案件编号", "纳税人名称", "统一社会信用代码", "案件性质", "偷税金额", "当年应纳税总额", "复议诉讼情况",
               "虚开发票份数", "处理处罚决定日期"]
COURT_HEADERS = ["案号", "被执行人姓名/名称", "身份证号码/组织机构代码", "执行法院", "被执行人的履行情况",
                 "失信被执行人行为具体情形", "发布时间"]

GROUND_1 = "有履行能力而拒不履行生效法律文书确定义务"
GROUND_2 = "以伪造证据、暴力、威胁等方法妨碍、抗拒执行"


# -- helpers ----------------------------------------------------------------------------------------

def write_csv(path: Path, headers: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def run(cli, *args: Any) -> Any:
    return json.loads(cli(*args, "--json").stdout)


def ingest(cli, path: Path, authority: str, category: str, accepted: int) -> None:
    (result,) = [json.loads(line) for line in cli("ingest", path, "--authority", authority, "--category", category,
                                                  "--json").stdout.splitlines() if line.strip()]
    assert (result["accepted"], result["quarantined"]) == (accepted, 0), result
    assert run(cli, "resolve")["in_review"] == 0


def register(cli, tmp_path: Path, firms: list[tuple[str, str]], name: str = "register.csv",
             legal_rep: tuple[str, str] | None = None) -> None:
    rows = [[code, firm, "有限责任公司", "2010-01-05", "存续", *(legal_rep or ("", ""))] for code, firm in firms]
    ingest(cli, write_csv(tmp_path / name, REGISTER_HEADERS, rows), "samr", "registration", len(rows))


def listings(cli, code: str, list_code: str | None = None) -> list[dict[str, Any]]:
    rows = run(cli, "listing", "list", "--entity", code)
    return [r for r in rows if list_code is None or r["list"] == list_code]


def show(cli, listing_id: int) -> dict[str, Any]:
    return run(cli, "listing", "show", listing_id)


def end_reason(cli, listing_id: int) -> str | None:
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            return c.execute(select(t.listings.c.end_reason).where(t.listings.c.id == listing_id)).scalar_one()
    finally:
        engine.dispose()


def make_effective(cli, listing_id: int, notice_on: str) -> dict[str, Any]:
    """Serve the notice, let the objection window pass, and take the listing into effect."""
    served = run(cli, "listing", "notify", listing_id, "--on", notice_on, "--actor", "officer", "--reason", "served")
    after = dt.date.fromisoformat(served["objection_deadline"]) + dt.timedelta(days=1)
    run(cli, "process", "--as-of", after.isoformat())
    data = show(cli, listing_id)
    assert (data["state"], data["effective_from"]) == ("effective", after.isoformat()), data
    return data


def evidence_keys(cli, listing_id: int) -> list[tuple[str, int]]:
    return sorted((e["record_key"], e["version"]) for e in show(cli, listing_id)["evidence"])


# -- item 2: a listing that ended never comes back from its own evidence ---------------------------------

FIRM_A = uscc("91310000MA1DR0001")
FIRM_B = uscc("91310000MA1DR0002")
FIRM_C = uscc("91310000MA1DR0003")
FIRM_D = uscc("91310000MA1DR0004")


def test_an_expired_serious_listing_never_comes_back_and_only_new_facts_list_again(cli, tmp_path):
    register(cli, tmp_path, [(FIRM_A, "上海甲乙科技有限公司")])
    ingest(cli, write_csv(tmp_path / "p1.csv", PENALTY_HEADERS, [
        ["上海甲乙科技有限公司", FIRM_A, "沪市监罚〔2025〕11号", "2025-06-03", "吊销许可证", ""]]), "samr", "penalty", 1)
    assert run(cli, "evaluate", "--as-of", "2025-09-15")["per_list"]["serious_dishonesty"] == 1
    (first,) = listings(cli, FIRM_A)
    make_effective(cli, first["id"], "2025-09-22")
    run(cli, "process", "--as-of", "2028-11-01", "--future")
    assert show(cli, first["id"])["state"] == "expired" and end_reason(cli, first["id"]) == "term_expired"

    # the same penalty, evaluated again (full, then incremental, then as of an earlier date): nothing
    assert run(cli, "evaluate", "--as-of", "2028-11-02", "--full", "--future")["proposals"] == 0
    assert run(cli, "evaluate", "--as-of", "2028-11-02", "--future")["proposals"] == 0
    assert run(cli, "evaluate", "--as-of", "2026-01-01", "--full")["proposals"] == 0
    assert len(listings(cli, FIRM_A)) == 1

    # a corrected version of the penalty is the same decision, whose listing served its term: nothing
    fix = tmp_path / "fix.json"
    fix.write_text(json.dumps({"penalty_type": "吊销许可证；罚款", "fine_amount": 20000}), encoding="utf-8")
    corrected = run(cli, "record", "correct", "samr:沪市监罚〔2025〕11号", "--file", fix, "--on", "2028-11-03",
                    "--future", "--reason", "fine omitted")
    assert corrected["listings_withdrawn"] == []  # an ended listing is not withdrawn
    assert run(cli, "evaluate", "--as-of", "2028-11-04", "--future")["per_list"]["serious_dishonesty"] == 0
    # a new decision is a new fact; the new proposal cites it alone
    ingest(cli, write_csv(tmp_path / "p2.csv", PENALTY_HEADERS, [
        ["上海甲乙科技有限公司", FIRM_A, "沪市监罚〔2026〕5号", "2026-06-01", "吊销许可证", ""]]), "samr", "penalty", 1)
    assert run(cli, "evaluate", "--as-of", "2028-11-04", "--future")["per_list"]["serious_dishonesty"] == 1
    second = [r for r in listings(cli, FIRM_A) if r["id"] != first["id"]]
    assert len(second) == 1 and second[0]["state"] == "proposed"
    assert evidence_keys(cli, second[0]["id"]) == [("samr:沪市监罚〔2026〕5号", 1)]


def test_a_withdrawn_abnormal_listing_stays_withdrawn_and_a_revoked_record_never_counts(cli, tmp_path):
    register(cli, tmp_path, [(FIRM_B, "上海丙丁贸易有限公司")])
    ingest(cli, write_csv(tmp_path / "a1.csv", ABNORMAL_HEADERS, [
        ["上海丙丁贸易有限公司", FIRM_B, "沪市监异〔2025〕21号", "未按规定报送年度报告", "2025-07-01", ""]]),
        "samr", "abnormal_operation", 1)
    run(cli, "evaluate", "--as-of", "2025-07-10")
    (first,) = listings(cli, FIRM_B)
    run(cli, "listing", "notify", first["id"], "--on", "2025-07-14", "--actor", "officer", "--reason", "served")
    objection = run(cli, "objection", "file", "--listing", first["id"], "--reason", "report was filed",
                    "--on", "2025-07-20")["objection"]
    run(cli, "objection", "decide", objection, "--uphold", "--on", "2025-07-25", "--reason", "report found")
    assert show(cli, first["id"])["state"] == "withdrawn"
    assert run(cli, "evaluate", "--as-of", "2025-08-01", "--full")["proposals"] == 0

    # a new listing decision is a new fact; once revoked, it counts for nothing
    ingest(cli, write_csv(tmp_path / "a2.csv", ABNORMAL_HEADERS, [
        ["上海丙丁贸易有限公司", FIRM_B, "沪市监异〔2025〕22号", "通过登记的住所无法联系", "2025-08-05", ""]]),
        "samr", "abnormal_operation", 1)
    run(cli, "record", "revoke", "samr:沪市监异〔2025〕22号", "--on", "2025-08-06", "--reason", "wrong firm")
    assert run(cli, "evaluate", "--as-of", "2025-08-10", "--full")["proposals"] == 0
    ingest(cli, write_csv(tmp_path / "a3.csv", ABNORMAL_HEADERS, [
        ["上海丙丁贸易有限公司", FIRM_B, "沪市监异〔2025〕23号", "通过登记的住所无法联系", "2025-08-12", ""]]),
        "samr", "abnormal_operation", 1)
    assert run(cli, "evaluate", "--as-of", "2025-08-15")["per_list"]["abnormal_operations"] == 1
    (second,) = [r for r in listings(cli, FIRM_B) if r["id"] != first["id"]]
    assert evidence_keys(cli, second["id"]) == [("samr:沪市监异〔2025〕23号", 1)]


def test_a_repaired_tax_listing_is_not_proposed_again(cli, tmp_path):
    register(cli, tmp_path, [(FIRM_C, "深圳戊己实业有限公司")])
    ingest(cli, write_csv(tmp_path / "tax.csv", TAX_HEADERS, [
        ["深税稽〔2025〕31号", "深圳戊己实业有限公司", FIRM_C, "偷税", "2000000", "8000000", "", "", "2025-05-06"]]),
        "tax", "tax_violation", 1)
    run(cli, "evaluate", "--as-of", "2025-06-02")
    (listing,) = listings(cli, FIRM_C, "major_tax_violations")
    make_effective(cli, listing["id"], "2025-06-03")
    commitment = tmp_path / "commitment.txt"
    commitment.write_text("本企业承诺依法纳税。", encoding="utf-8")
    proof = tmp_path / "paid.txt"
    proof.write_text("税款、滞纳金、罚款已缴清。", encoding="utf-8")
    repair = run(cli, "repair", "apply", listing["id"], "--commitment", commitment, "--evidence", proof,
                 "--on", "2025-07-01", "--reason", "paid in full")["repair"]
    run(cli, "repair", "decide", repair, "--approve", "--on", "2025-07-03", "--reason", "payment verified")
    assert show(cli, listing["id"])["state"] == "repaired"
    assert run(cli, "evaluate", "--as-of", "2025-07-10", "--full")["proposals"] == 0
    assert run(cli, "evaluate", "--as-of", "2026-07-10")["proposals"] == 0
    assert len(listings(cli, FIRM_C)) == 1


def test_evaluate_as_of_any_date_sees_what_qualifies_on_that_date(cli, tmp_path):
    """A run as of another date than the last one looks at every record, not only new ones."""
    young = resident_id("320102", dt.date(2007, 9, 16), 789)  # 18 on 16 September 2025
    ingest(cli, write_csv(tmp_path / "court.csv", COURT_HEADERS, [
        ["(2025)苏0102执9号", "王五", young, "南京市玄武区人民法院", "全部未履行", GROUND_1, "2025-08-03"]]),
        "court", "court_defaulter", 1)
    assert run(cli, "evaluate", "--as-of", "2025-09-01")["per_list"]["court_defaulters"] == 0  # a minor
    later = run(cli, "evaluate", "--as-of", "2025-10-01")
    assert (later["mode"], later["per_list"]["court_defaulters"]) == ("full", 1)
    (listing,) = listings(cli, young)
    assert listing["proposed_on"] == "2025-10-01"
    # as of an earlier date than the last run: nothing is proposed twice, and the run is full
    earlier = run(cli, "evaluate", "--as-of", "2025-09-20")
    assert (earlier["mode"], earlier["proposals"]) == ("full", 0)
    assert run(cli, "evaluate", "--as-of", "2025-09-20")["mode"] == "incremental"


# -- item 3: cure and the move to the serious list ----------------------------------------------------------

def test_a_cured_abnormal_record_lists_nobody_and_a_removal_ends_the_listing_on_its_date(cli, tmp_path):
    register(cli, tmp_path, [(FIRM_A, "上海甲乙科技有限公司"), (FIRM_B, "上海丙丁贸易有限公司")])
    ingest(cli, write_csv(tmp_path / "abnormal.csv", ABNORMAL_HEADERS, [
        ["上海甲乙科技有限公司", FIRM_A, "沪市监异〔2025〕1号", "未按规定报送年度报告", "2025-07-01", "2025-07-20"],
        ["上海丙丁贸易有限公司", FIRM_B, "沪市监异〔2025〕2号", "未按规定报送年度报告", "2025-07-01", ""]]),
        "samr", "abnormal_operation", 2)
    run(cli, "evaluate", "--as-of", "2025-08-01")
    assert listings(cli, FIRM_A) == []  # already removed: never proposed
    (listing,) = listings(cli, FIRM_B)
    make_effective(cli, listing["id"], "2025-08-04")

    # the removal arrives as a new version of the record
    ingest(cli, write_csv(tmp_path / "removal.csv", ABNORMAL_HEADERS, [
        ["上海丙丁贸易有限公司", FIRM_B, "沪市监异〔2025〕2号", "未按规定报送年度报告", "2025-07-01", "2025-10-20"]]),
        "samr", "abnormal_operation", 1)
    run(cli, "process", "--as-of", "2025-10-19")
    assert show(cli, listing["id"])["state"] == "effective"  # not removed yet on that date
    run(cli, "process", "--as-of", "2025-11-01")
    data = show(cli, listing["id"])
    assert (data["state"], data["ended_on"], data["effective_to"]) == ("expired", "2025-10-20", "2025-10-20")
    assert end_reason(cli, listing["id"]) == "cured"
    assert [r["state"] for r in run(cli, "listing", "list", "--entity", FIRM_B, "--as-of", "2025-10-19")] == ["effective"]
    assert run(cli, "evaluate", "--as-of", "2025-11-02", "--full")["proposals"] == 0


def test_three_uncured_years_propose_the_serious_list_and_end_the_abnormal_listing(cli, tmp_path):
    register(cli, tmp_path, [(FIRM_D, "北京庚辛咨询有限公司")])
    ingest(cli, write_csv(tmp_path / "abnormal.csv", ABNORMAL_HEADERS, [
        ["北京庚辛咨询有限公司", FIRM_D, "京市监异〔2022〕7号", "通过登记的住所无法联系", "2022-03-01", ""]]),
        "samr", "abnormal_operation", 1)
    run(cli, "evaluate", "--as-of", "2022-03-10")
    (abnormal,) = listings(cli, FIRM_D)
    started = make_effective(cli, abnormal["id"], "2022-03-14")["effective_from"]
    moved_on = add_years(dt.date.fromisoformat(started), 3).isoformat()
    day_before = (dt.date.fromisoformat(moved_on) - dt.timedelta(days=1)).isoformat()
    run(cli, "process", "--as-of", day_before)
    assert [r["list"] for r in listings(cli, FIRM_D)] == ["abnormal_operations"]

    done = run(cli, "process", "--as-of", "2025-06-01")
    assert done["moved"] == 1
    data = show(cli, abnormal["id"])
    assert (data["state"], data["ended_on"]) == ("expired", moved_on)
    assert end_reason(cli, abnormal["id"]) == "moved_to_serious"
    (serious,) = listings(cli, FIRM_D, "serious_dishonesty")
    assert (serious["state"], serious["proposed_on"]) == ("proposed", moved_on)
    assert evidence_keys(cli, serious["id"]) == [("samr:京市监异〔2022〕7号", 1)]
    # its own due process: nothing is in force before its notice and objection window
    assert show(cli, serious["id"])["notices"] == []
    served = run(cli, "listing", "notify", serious["id"], "--on", "2025-06-03", "--reason", "served")
    assert served["objection_deadline"] > "2025-06-03"
    assert run(cli, "evaluate", "--as-of", "2025-06-04", "--full")["proposals"] == 0


# -- item 4: the A-grade redlist -----------------------------------------------------------------------

def test_only_the_latest_grade_counts_on_the_april_cycle_without_notice(cli, tmp_path):
    register(cli, tmp_path, [(FIRM_A, "上海甲乙科技有限公司"), (FIRM_B, "上海丙丁贸易有限公司")])
    ingest(cli, write_csv(tmp_path / "grades.csv", GRADE_HEADERS, [
        ["上海甲乙科技有限公司", FIRM_A, "2023", "A级", "2024-03-15"],
        ["上海丙丁贸易有限公司", FIRM_B, "2023", "A", "2024-03-15"],
        ["上海丙丁贸易有限公司", FIRM_B, "2024", "B", "2025-03-20"]]), "tax", "tax_grade", 3)
    # grades of 2023 are published in April 2024: not before
    assert run(cli, "evaluate", "--as-of", "2024-03-31")["per_list"].get("tax_a_grade", 0) == 0
    # as of a later date, firm B's latest grade (B for 2024) is all that counts
    assert run(cli, "evaluate", "--as-of", "2025-03-31")["per_list"].get("tax_a_grade", 0) == 1
    assert listings(cli, FIRM_B) == []
    (listing,) = listings(cli, FIRM_A)
    assert listing["proposed_on"] == "2025-03-31"
    # no notice on a redlist: effective at the next process, for the April cycle
    assert run(cli, "process", "--as-of", "2025-03-31")["effective_without_notice"] == 1
    data = show(cli, listing["id"])
    assert (data["state"], data["notified_on"], data["notices"]) == ("effective", None, [])
    assert (data["effective_from"], data["effective_to"]) == ("2025-03-31", "2025-04-01")
    run(cli, "process", "--as-of", "2025-04-02")
    assert show(cli, listing["id"])["state"] == "expired"


def test_a_later_grade_ends_the_a_listing(cli, tmp_path):
    register(cli, tmp_path, [(FIRM_A, "上海甲乙科技有限公司")])
    ingest(cli, write_csv(tmp_path / "grades.csv", GRADE_HEADERS, [
        ["上海甲乙科技有限公司", FIRM_A, "2023", "A", "2024-03-15"]]), "tax", "tax_grade", 1)
    run(cli, "evaluate", "--as-of", "2024-04-01")
    (listing,) = listings(cli, FIRM_A)
    run(cli, "process", "--as-of", "2024-04-02")
    data = show(cli, listing["id"])
    assert (data["state"], data["effective_from"], data["effective_to"]) == ("effective", "2024-04-01", "2025-04-01")
    # a re-evaluation downgrades the firm before the next publication
    ingest(cli, write_csv(tmp_path / "later.csv", GRADE_HEADERS, [
        ["上海甲乙科技有限公司", FIRM_A, "2024", "D", "2024-11-05"]]), "tax", "tax_grade", 1)
    run(cli, "process", "--as-of", "2024-11-10")
    data = show(cli, listing["id"])
    assert (data["state"], data["ended_on"], data["effective_to"]) == ("expired", "2024-11-05", "2024-11-05")
    assert end_reason(cli, listing["id"]) == "term_expired"
    assert run(cli, "evaluate", "--as-of", "2025-04-01", "--full")["proposals"] == 0


def test_a_blacklist_listing_ends_the_redlist_listing_and_blocks_new_ones(cli, tmp_path):
    register(cli, tmp_path, [(FIRM_C, "深圳戊己实业有限公司")])
    ingest(cli, write_csv(tmp_path / "grades.csv", GRADE_HEADERS, [
        ["深圳戊己实业有限公司", FIRM_C, "2023", "A", "2024-03-15"]]), "tax", "tax_grade", 1)
    run(cli, "evaluate", "--as-of", "2024-04-01")
    run(cli, "process", "--as-of", "2024-04-01")
    (red,) = listings(cli, FIRM_C, "tax_a_grade")
    assert show(cli, red["id"])["state"] == "effective"
    ingest(cli, write_csv(tmp_path / "penalty.csv", PENALTY_HEADERS, [
        ["深圳戊己实业有限公司", FIRM_C, "深市监罚〔2024〕5号", "2024-05-06", "吊销营业执照", ""]]), "samr", "penalty", 1)
    run(cli, "evaluate", "--as-of", "2024-05-10")
    (black,) = listings(cli, FIRM_C, "serious_dishonesty")
    effective_from = make_effective(cli, black["id"], "2024-05-13")["effective_from"]
    data = show(cli, red["id"])
    assert (data["state"], data["ended_on"]) == ("expired", effective_from)
    assert end_reason(cli, red["id"]) == "excluded_by_blacklist"
    # the next A grade is published while the blacklist listing is in force: no redlist proposal
    ingest(cli, write_csv(tmp_path / "grades2.csv", GRADE_HEADERS, [
        ["深圳戊己实业有限公司", FIRM_C, "2024", "A", "2025-03-15"]]), "tax", "tax_grade", 1)
    assert run(cli, "evaluate", "--as-of", "2025-04-01")["per_list"].get("tax_a_grade", 0) == 0


def test_a_redlist_proposal_never_takes_effect_beside_a_blacklist_listing_in_force(cli, tmp_path):
    register(cli, tmp_path, [(FIRM_D, "北京庚辛咨询有限公司")])
    ingest(cli, write_csv(tmp_path / "grades.csv", GRADE_HEADERS, [
        ["北京庚辛咨询有限公司", FIRM_D, "2024", "A", "2025-03-15"]]), "tax", "tax_grade", 1)
    ingest(cli, write_csv(tmp_path / "penalty.csv", PENALTY_HEADERS, [
        ["北京庚辛咨询有限公司", FIRM_D, "京市监罚〔2025〕8号", "2025-03-03", "责令关闭", ""]]), "samr", "penalty", 1)
    run(cli, "evaluate", "--as-of", "2025-04-02")
    (red,) = listings(cli, FIRM_D, "tax_a_grade")
    (black,) = listings(cli, FIRM_D, "serious_dishonesty")
    run(cli, "listing", "notify", black["id"], "--on", "2025-04-03", "--reason", "served")
    done = run(cli, "process", "--as-of", "2025-05-06")  # one run: the window closes, the redlist is due
    assert (done["effective"], done["excluded"]) == (1, 1), done
    data = show(cli, red["id"])
    assert data["state"] == "withdrawn" and data["effective_from"] is None  # never in force beside the blacklist
    assert end_reason(cli, red["id"]) == "excluded_by_blacklist"


def test_notice_free_lists_are_redlists_only(tmp_path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("code: cn-bad\nversion: '0'\nextends: cn\nlists:\n  - code: abnormal_operations\n"
                       "    due_process: {notice_required: false}\n", encoding="utf-8")
    with pytest.raises(PackError, match="only a redlist may go without notice"):
        load_pack(str(overlay))
    overlay.write_text("code: cn-bad\nversion: '0'\nextends: cn\nlists:\n  - code: abnormal_operations\n"
                       "    excludes: [court_defaulters]\n", encoding="utf-8")
    with pytest.raises(PackError, match="not a redlist"):
        load_pack(str(overlay))


def test_the_state_machine_skips_the_notice_only_where_none_is_required():
    facts = ListingFacts(state="proposed", subject_kind="enterprise", reminders=0, reminders_required=0,
                         notified_on=None, objection_deadline=None, open_objections=0,
                         effective_to=dt.date(2026, 4, 1), open_ended=False)
    with pytest.raises(IllegalTransition, match="without a notice"):
        check_transition(facts, "effective", dt.date(2025, 4, 1))
    check_transition(ListingFacts(**{**facts.__dict__, "notice_required": False}), "effective", dt.date(2025, 4, 1))


# -- item 5: major tax violations ----------------------------------------------------------------------------

def test_the_tax_threshold_of_order_54_and_only_final_cases(cli, tmp_path):
    firms = {n: uscc(f"91440300MA5TX{n:04d}") for n in range(1, 8)}
    register(cli, tmp_path, [(code, f"深圳税务测试{n}有限公司") for n, code in firms.items()])
    rows = [
        # evasion, amount and share of the tax due
        ["深税〔2025〕1号", "深圳税务测试1有限公司", firms[1], "偷税", "1500000", "10000000", "", "", "2025-05-06"],
        ["深税〔2025〕2号", "深圳税务测试2有限公司", firms[2], "偷税", "1500000", "30000000", "", "", "2025-05-06"],
        ["深税〔2025〕3号", "深圳税务测试3有限公司", firms[3], "偷税", "500000", "", "", "", "2025-05-06"],
        ["深税〔2025〕4号", "深圳税务测试4有限公司", firms[4], "偷税", "1200000", "", "", "", "2025-05-06"],
        # not final: the review is pending
        ["深税〔2025〕5号", "深圳税务测试5有限公司", firms[5], "偷税", "2000000", "5000000", "行政复议中", "", "2025-05-06"],
        # false ordinary invoices: 100 or more
        ["深税〔2025〕6号", "深圳税务测试6有限公司", firms[6], "虚开普通发票", "", "", "", "150", "2025-05-06"],
        ["深税〔2025〕7号", "深圳税务测试7有限公司", firms[7], "虚开普通发票", "", "", "", "20", "2025-05-06"],
    ]
    ingest(cli, write_csv(tmp_path / "tax.csv", TAX_HEADERS, rows), "tax", "tax_violation", len(rows))
    run(cli, "evaluate", "--as-of", "2025-06-02")
    listed = {n for n, code in firms.items() if listings(cli, code, "major_tax_violations")}
    assert listed == {1, 4, 6}
    (unchecked,) = listings(cli, firms[4])
    assert [e["note"] for e in show(cli, unchecked["id"])["evidence"]] == ["ratio not checked"]
    (checked,) = listings(cli, firms[1])
    assert [e["note"] for e in show(cli, checked["id"])["evidence"]] == [None]
    # the review ends: the case is final, a new version that lists the firm
    ingest(cli, write_csv(tmp_path / "final.csv", TAX_HEADERS, [
        ["深税〔2025〕5号", "深圳税务测试5有限公司", firms[5], "偷税", "2000000", "5000000", "已终结", "", "2025-05-06"]]),
        "tax", "tax_violation", 1)
    run(cli, "evaluate", "--as-of", "2025-09-01")
    assert len(listings(cli, firms[5], "major_tax_violations")) == 1


# -- item 6: court terms per ground, grace period ----------------------------------------------------------

ADULT_1 = resident_id("110101", dt.date(1980, 5, 12), 123)
ADULT_2 = resident_id("110105", dt.date(1975, 1, 20), 321)


def test_court_grounds_2_to_6_last_two_years_and_ground_1_until_performance(cli, tmp_path):
    ingest(cli, write_csv(tmp_path / "court.csv", COURT_HEADERS, [
        ["(2025)京0105执11号", "张一", ADULT_1, "北京市朝阳区人民法院", "全部未履行", GROUND_1, "2025-08-01"],
        ["(2025)京0105执12号", "李二", ADULT_2, "北京市朝阳区人民法院", "全部未履行", GROUND_2, "2025-08-01"]]),
        "court", "court_defaulter", 2)
    run(cli, "evaluate", "--as-of", "2025-08-10")
    ids = {}
    for person in (ADULT_1, ADULT_2):
        (row,) = listings(cli, person)
        for n, day in enumerate(("2025-08-11", "2025-08-12", "2025-08-13"), start=1):
            run(cli, "listing", "remind", row["id"], "--on", day, "--reason", f"reminder {n}")
        ids[person] = row["id"]
        make_effective(cli, row["id"], "2025-08-18")
    open_ended, fixed = show(cli, ids[ADULT_1]), show(cli, ids[ADULT_2])
    assert open_ended["effective_to"] is None and open_ended["review_due"] is not None
    assert fixed["effective_to"] == add_years(dt.date.fromisoformat(fixed["effective_from"]), 2).isoformat()
    assert fixed["review_due"] is None


def test_the_grace_period_delays_the_proposal(db_url, tmp_path):
    overlay = tmp_path / "grace.yaml"
    overlay.write_text("code: cn-grace\nversion: '0'\nextends: cn\nlists:\n  - code: court_defaulters\n"
                       "    due_process: {grace_days: 10}\n", encoding="utf-8")
    cli = Cli(db_url)
    cli("init", "--pack", overlay)
    ingest(cli, write_csv(tmp_path / "court.csv", COURT_HEADERS, [
        ["(2025)京0105执13号", "张一", ADULT_1, "北京市朝阳区人民法院", "全部未履行", GROUND_1, "2025-08-01"]]),
        "court", "court_defaulter", 1)
    assert run(cli, "evaluate", "--as-of", "2025-08-10")["per_list"].get("court_defaulters", 0) == 0
    assert run(cli, "evaluate", "--as-of", "2025-08-11")["per_list"]["court_defaulters"] == 1


# -- item 7: the market regulator's list, and the bar on legal representatives ----------------------------

REP = resident_id("310101", dt.date(1970, 2, 3), 555)


def test_the_serious_list_takes_only_the_market_regulators_penalties_and_bars_the_legal_representative(cli, tmp_path):
    register(cli, tmp_path, [(FIRM_A, "上海甲乙科技有限公司")], legal_rep=("王法人", REP))
    register(cli, tmp_path, [(FIRM_B, "上海丙丁贸易有限公司")], name="register2.csv")
    ingest(cli, write_csv(tmp_path / "env.csv", PENALTY_HEADERS, [
        ["上海丙丁贸易有限公司", FIRM_B, "沪环罚〔2025〕9号", "2025-06-03", "责令关闭", ""]]), "env", "penalty", 1)
    ingest(cli, write_csv(tmp_path / "samr.csv", PENALTY_HEADERS, [
        ["上海甲乙科技有限公司", FIRM_A, "沪市监罚〔2025〕9号", "2025-06-03", "吊销营业执照", ""]]), "samr", "penalty", 1)
    run(cli, "evaluate", "--as-of", "2025-09-15")
    assert listings(cli, FIRM_B) == []  # the environment authority's penalty is no ground
    (listing,) = listings(cli, FIRM_A)
    data = make_effective(cli, listing["id"], "2025-09-22")
    during = run(cli, "screen", REP, "--action", "legal_representative_appointment", "--as-of", "2026-01-05")
    assert during["decision"] == "deny", during
    assert [m["code"] for m in during["measures"]] == ["no_legal_representative_role"]
    after = run(cli, "screen", REP, "--action", "legal_representative_appointment", "--as-of", data["effective_to"])
    assert after["decision"] == "allow", after


def test_the_legal_representative_bar_binds_at_most_three_years():
    measures = measures_for(PACK, "legal_representative_appointment")
    listing = ListingView(id=1, entity_key="E1", list_code="serious_dishonesty",
                          history=((dt.date(2025, 1, 2), "effective"),), effective_from=dt.date(2025, 1, 2),
                          effective_to=None, ended_on=None, evidence=())
    bearing = [Bearing(listing, "legal_representative")]
    assert decide(measures, "legal_representative_appointment", dt.date(2028, 1, 1), bearing).decision == "deny"
    late = decide(measures, "legal_representative_appointment", dt.date(2028, 1, 2), bearing)
    assert late.decision == "allow" and late.measures == []
    # the firm itself is not reached by a measure meant for its representative
    assert decide(measures, "legal_representative_appointment", dt.date(2026, 1, 1),
                  [Bearing(listing)]).decision == "deny"


# -- item 8: publicity tiers ----------------------------------------------------------------------------------

PENALTY = PACK.category("penalty")
TYPES = {f.name: f.type for f in PACK.fields_of(PENALTY)}


@pytest.mark.parametrize("types, published", [
    ("警告", False), ("通报批评", False), ("警告；通报批评", False), ("警告、罚款", True), ("罚款", True),
    ("", True), ("没收违法所得", True)])
def test_a_penalty_that_is_only_a_warning_is_never_published(types, published):
    from xinyong.domain.records import is_published

    assert is_published(PENALTY, {"penalty_type": types}) is published


def test_publicity_tiers_of_2026_and_the_regime_of_2023():
    from xinyong.domain.records import publicity_end, publicity_tier

    after = dt.date(2026, 5, 4)
    # general: 3-12 months, the authority's end clamped into it
    assert publicity_tier(PENALTY, after, {"penalty_type": "罚款"}, (), TYPES).code == "general"
    assert publicity_end(PENALTY, after, {"penalty_type": "罚款"}, (), TYPES) == dt.date(2027, 5, 4)
    assert publicity_end(PENALTY, after, {"penalty_type": "罚款", "publicity_end": "2029-01-01"}, (),
                         TYPES) == dt.date(2027, 5, 4)
    assert publicity_end(PENALTY, after, {"penalty_type": "罚款", "publicity_end": "2026-05-10"}, (),
                         TYPES) == dt.date(2026, 8, 4)
    # serious: licence revoked, closure, employment ban, or the subject on a serious list: 1-3 years
    for fields, lists in (({"penalty_type": "吊销许可证件"}, ()), ({"penalty_type": "责令关闭"}, ()),
                          ({"penalty_type": "限制从业"}, ()), ({"penalty_type": "罚款"}, ("serious_dishonesty",))):
        assert publicity_tier(PENALTY, after, fields, lists, TYPES).code == "serious"
        assert publicity_end(PENALTY, after, {**fields, "publicity_end": "2026-08-01"}, lists,
                             TYPES) == dt.date(2027, 5, 4)
        assert publicity_end(PENALTY, after, fields, lists, TYPES) == dt.date(2029, 5, 4)
    # the 2023 regime for decisions before 1 April 2026: 3 months to 3 years
    before = dt.date(2026, 3, 31)
    assert publicity_tier(PENALTY, before, {"penalty_type": "罚款"}, (), TYPES) is None
    assert publicity_end(PENALTY, before, {"penalty_type": "罚款", "publicity_end": "2028-03-31"}, (),
                         TYPES) == dt.date(2028, 3, 31)


def test_public_pages_hide_warnings_and_apply_the_tiers(cli, tmp_path):
    register(cli, tmp_path, [(FIRM_A, "上海甲乙科技有限公司")])
    ingest(cli, write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS + ["公示截止期"], [
        ["上海甲乙科技有限公司", FIRM_A, "沪市监罚〔2026〕1号", "2026-05-06", "警告", "", ""],
        ["上海甲乙科技有限公司", FIRM_A, "沪市监罚〔2026〕2号", "2026-05-06", "罚款", "5000", "2030-01-01"]]),
        "samr", "penalty", 2)
    engine = open_engine(cli.url)
    try:
        page = public_file(engine, PACK, FIRM_A, dt.date(2026, 6, 1))
    finally:
        engine.dispose()
    assert [(r["record_key"], r["publicity_ends"]) for r in page["records"] if r["category"] == "penalty"] == [
        ("samr:沪市监罚〔2026〕2号", dt.date(2027, 5, 6))]


def test_an_incremental_run_re_examines_the_list_of_a_version_superseded_by_another_category(cli, tmp_path):
    """An incremental run examines a touched firm only for the lists of the categories its new
    records touch, and those of the versions they supersede: here a tax case whose number is the
    key of firm B's 2024 grade supersedes it, and the 2023 A grade is then the latest, as a full run sees."""
    register(cli, tmp_path, [(FIRM_B, "上海丙丁贸易有限公司")])
    ingest(cli, write_csv(tmp_path / "grades.csv", GRADE_HEADERS, [
        ["上海丙丁贸易有限公司", FIRM_B, "2023", "A", "2024-03-15"],
        ["上海丙丁贸易有限公司", FIRM_B, "2024", "B", "2025-03-20"]]), "tax", "tax_grade", 2)
    first = run(cli, "evaluate", "--as-of", "2025-03-31")
    assert first["per_list"].get("tax_a_grade", 0) == 0 and listings(cli, FIRM_B) == []
    ingest(cli, write_csv(tmp_path / "case.csv", TAX_HEADERS, [
        [f"2024#{FIRM_B}", "上海丙丁贸易有限公司", FIRM_B, "偷税", "1", "", "", "", "2025-03-25"]]),
        "tax", "tax_violation", 1)
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            versions = c.execute(select(t.records.c.category).where(t.records.c.record_key == f"tax:2024#{FIRM_B}")
                                 .order_by(t.records.c.version)).scalars().all()
    finally:
        engine.dispose()
    assert versions == ["tax_grade", "tax_violation"]  # one key, the case its newer version
    again = run(cli, "evaluate", "--as-of", "2025-03-31")
    assert (again["mode"], again["entities_considered"]) == ("incremental", 1)
    assert again["per_list"]["tax_a_grade"] == 1
    assert [listing["list"] for listing in listings(cli, FIRM_B)] == ["tax_a_grade"]
