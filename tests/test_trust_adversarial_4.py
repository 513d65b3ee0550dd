"""Due process and the listing life cycle, probed as an unlucky subject and as an attacker would,
with hand-made inputs: real public company names, codes with valid check characters. Each test is
a defect found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import time_machine

from test_trust_adversarial import (COURT_HEADERS, NAMES, PINGAN, TODAY, WANG, XIAOMI, court_row, listed_world,
                                    repaired_world)
from test_trust_adversarial_2 import GREE, JD, gree_and_jd_on_the_court_list, screened
from worlds import run, write_csv

REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "企业类型", "成立日期", "登记状态"]
# 20:00 UTC on 11-10 is 04:00 on 11-11 in Asia/Shanghai: the pack's today is 11-11, the host's 11-10
EVENING = dt.datetime(2026, 11, 10, 20, 0, tzinfo=dt.timezone.utc)


def notified_xiaomi(cli, folder: Path, notice_on: str) -> int:
    """小米 on the court's list, proposed on 10-30 and notified on `notice_on`; its listing id."""
    register = write_csv(folder / "register.csv", REGISTER_HEADERS,
                         [[XIAOMI, NAMES[XIAOMI], "有限责任公司", "2010-03-03", "存续"]])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    court = write_csv(folder / "court.csv", COURT_HEADERS, [court_row("（2026）京0108执200号", NAMES[XIAOMI], XIAOMI)])
    cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    run(cli, "evaluate", "--as-of", "2026-10-30")
    (listing,) = run(cli, "listing", "list", "--entity", XIAOMI)
    run(cli, "listing", "notify", listing["id"], "--on", notice_on, "--actor", "officer", "--reason", "served")
    return listing["id"]


def test_process_refuses_a_day_after_today_unless_asked_to_run_ahead(cli, tmp_path: Path) -> None:
    """小米 was served on 11-01: 10 calendar days to object, until 11-11 inclusive. On the evening of
    11-10 (UTC; 11-11 in Beijing) an operator typed `process --as-of 2026-11-12`: the window closed
    while 小米 still had the day to object, and the listing took effect on 11-12, in force against
    it from then on (and an objection filed on 11-11 could no longer stop it). Now a day after the
    pack's today is refused unless `--future` says it is meant; today itself, in the pack's time
    zone (11-11, though the host's date is 11-10), is accepted and leaves the window open."""
    with time_machine.travel(EVENING, tick=False):
        listing = notified_xiaomi(cli, tmp_path, "2026-11-01")
        assert run(cli, "listing", "show", listing)["objection_deadline"] == "2026-11-11"
        refused = cli("process", "--as-of", "2026-11-12", ok=False)
        assert refused.exit_code == 1
        assert "after today (2026-11-11, Asia/Shanghai)" in refused.output and "--future" in refused.output
        assert run(cli, "listing", "show", listing)["state"] == "notified"
        assert run(cli, "process", "--as-of", "2026-11-11")["effective"] == 0
        assert run(cli, "process")["effective"] == 0  # the default is the pack's today, 11-11
        assert run(cli, "listing", "show", listing)["state"] == "notified"
        objection = run(cli, "objection", "file", "--listing", listing, "--reason", "paid in full", "--on", "2026-11-11")
        assert objection["listings_under_review"] == [listing]
        run(cli, "objection", "decide", objection["objection"], "--reject", "--on", "2026-11-11",
            "--reason", "no proof of payment")
        assert run(cli, "process", "--as-of", "2026-11-13", "--future")["effective"] == 1
        assert run(cli, "listing", "show", listing)["effective_from"] == "2026-11-12"


def gree_undone_and_jd_paid_after_an_evaluation(cli, tmp_path: Path) -> dict[str, str]:
    """`gree_and_jd_on_the_court_list`, a full evaluation on 11-03, then 格力's court listing withdrawn
    on an upheld objection and 京东's ended as performed that same day; the firms' names by code."""
    firms, court_listing = gree_and_jd_on_the_court_list(cli, tmp_path)
    assert run(cli, "evaluate", "--as-of", "2026-11-03")["mode"] == "full"
    objection = run(cli, "objection", "file", "--listing", court_listing[GREE], "--reason", "not our debt",
                    "--on", "2026-11-01")
    run(cli, "objection", "decide", objection["objection"], "--uphold", "--on", "2026-11-03",
        "--reason", "the debtor is another firm")
    run(cli, "listing", "end", court_listing[JD], "--reason", "performed", "--on", "2026-11-03")
    return firms


def test_a_same_day_incremental_run_gives_back_the_redlist_an_undone_blacklisting_excluded(cli, tmp_path: Path) -> None:
    """格力 and 京东, A-grade taxpayers, were put on the court's list, which excludes the redlist: both
    A-grade listings ended. On 11-03 格力's court listing was withdrawn on an upheld objection (the
    debt was another firm's) and 京东 paid. The evaluation that ran again that day, incremental since
    no record had arrived, looked at nobody and left 格力 off the redlist: only the next day's full run
    gave it back (a firm without its fast track for a day, for a listing that never should have been).
    Now an incremental run also re-examines the subjects of listings that ended since the last run;
    京东's listing did bind, and its exclusion stands (a full run agrees)."""
    with time_machine.travel(TODAY, tick=False):
        firms = gree_undone_and_jd_paid_after_an_evaluation(cli, tmp_path)
        again = run(cli, "evaluate", "--as-of", "2026-11-03")
        assert (again["mode"], again["per_list"]["tax_a_grade"]) == ("incremental", 1)
        assert run(cli, "evaluate", "--as-of", "2026-11-03", "--full")["proposals"] == 0
        run(cli, "process", "--as-of", "2026-11-03")
        redlist = {code: [(row["state"], row["effective_from"]) for row in run(cli, "listing", "list", "--entity", code)
                          if row["list"] == "tax_a_grade"] for code in firms}
        assert redlist == {GREE: [("expired", "2026-10-10"), ("effective", "2026-11-03")],
                           JD: [("expired", "2026-10-10")]}
        assert screened(cli, GREE, "2026-11-03", "licensing")[0] == "conditions"
        assert screened(cli, JD, "2026-11-03", "licensing") == ("allow", [])


def test_a_correction_after_a_listing_ended_does_not_list_the_firm_again(cli, tmp_path: Path) -> None:
    """小米's court listing was repaired on 11-02 (paid, removed early). On 11-04 the court's clerk
    corrected a typo in the case (the court's province left empty) with `record correct`: a new
    version of the same decision, which the evaluation took for a new fact and proposed 小米 again,
    for a debt paid and a listing repaired. A correction is a new fact only for a listing it undid
    (withdrawn because its evidence changed); one that bound (repaired, performed, expired) spent
    the decision. A correction while the listing is in force (中国平安's) still replaces it."""
    with time_machine.travel(TODAY, tick=False):
        repaired = repaired_world(cli, tmp_path)
        fix = tmp_path / "fix.json"
        fix.write_text(json.dumps({"province": "北京"}, ensure_ascii=False), encoding="utf-8")
        corrected = run(cli, "record", "correct", f"court:（2026）京0108执200号#{XIAOMI}", "--file", fix,
                        "--on", "2026-11-04", "--reason", "province omitted")
        assert (corrected["version"], corrected["listings_withdrawn"]) == (2, [])
        for full in ((), ("--full",)):
            assert run(cli, "evaluate", "--as-of", "2026-11-05", *full)["per_list"]["court_defaulters"] == 0
        assert [(row["id"], row["state"]) for row in run(cli, "listing", "list", "--entity", XIAOMI)] == [
            (repaired, "repaired")]
        (in_force,) = run(cli, "listing", "list", "--entity", PINGAN)
        corrected = run(cli, "record", "correct", f"court:（2026）沪0115执300号#{PINGAN}", "--file", fix,
                        "--on", "2026-11-05", "--reason", "province omitted")
        assert corrected["listings_withdrawn"] == [in_force["id"]]
        assert run(cli, "evaluate", "--as-of", "2026-11-05")["per_list"]["court_defaulters"] == 1
        assert [row["state"] for row in run(cli, "listing", "list", "--entity", PINGAN)] == ["withdrawn", "proposed"]


def test_a_step_dated_after_today_is_refused_unless_asked_to_run_ahead(cli, tmp_path: Path) -> None:
    """小米, served on 11-01, objected on 11-03. On the evening of 11-10 (UTC; 11-11 in Beijing, the
    last day of its window) the court's officer rejected the objection, typing `--on 2026-11-21`: the
    listing took effect from 11-21, and 小米's second objection that same day, still within its window,
    was refused ('cannot come before its last change, on 2026-11-21'): a typo took its right to object.
    Now a step dated after the pack's today is refused unless `--future` says it is meant."""
    with time_machine.travel(EVENING, tick=False):
        listing = notified_xiaomi(cli, tmp_path, "2026-11-01")
        first = run(cli, "objection", "file", "--listing", listing, "--reason", "paid in full", "--on", "2026-11-03")
        refused = cli("objection", "decide", first["objection"], "--reject", "--on", "2026-11-21",
                      "--reason", "no proof of payment", ok=False)
        assert refused.exit_code == 1 and "after today (2026-11-11, Asia/Shanghai)" in refused.output
        assert run(cli, "listing", "show", listing)["state"] == "under_review"
        run(cli, "objection", "decide", first["objection"], "--reject", "--reason", "no proof of payment")
        second = run(cli, "objection", "file", "--listing", listing, "--reason", "the receipt is attached")
        assert second["listings_under_review"] == [listing]
        shown = run(cli, "listing", "show", listing)
        assert (shown["state"], shown["effective_from"]) == ("under_review", None)
        assert [o["filed_on"] for o in shown["objections"]] == ["2026-11-03", "2026-11-11"]
        for step in (("listing", "end", listing, "--reason", "performed"),
                     ("record", "revoke", f"court:（2026）京0108执200号#{XIAOMI}", "--reason", "annulled")):
            assert "after today" in cli(*step, "--on", "2026-11-12", ok=False).output
        assert run(cli, "listing", "show", listing)["state"] == "under_review"



def test_a_repair_decision_never_comes_before_its_acceptance(cli, tmp_path: Path) -> None:
    """小米 applied on 11-01 to have its court listing repaired (paid); the court accepted the
    application for decision on 11-06, then approved it dated 11-03, before the acceptance. It was
    taken: the listing ended on 11-03 (screened as of 11-04, allowed), the application recorded as
    accepted on 11-06 and decided on 11-03. Now a decision before its acceptance is refused, as one
    before the application is."""
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        (tmp_path / "receipt.txt").write_text("执行款已全部缴纳", encoding="utf-8")
        (tmp_path / "commitment.txt").write_text("本公司承诺依法履行义务", encoding="utf-8")
        repair = run(cli, "repair", "apply", ids[XIAOMI], "--commitment", tmp_path / "commitment.txt",
                     "--evidence", tmp_path / "receipt.txt", "--on", "2026-11-01")["repair"]
        run(cli, "repair", "accept", repair, "--on", "2026-11-06")
        refused = cli("repair", "decide", repair, "--approve", "--on", "2026-11-03", "--reason", "paid", ok=False)
        assert refused.exit_code == 1 and "accepted on 2026-11-06" in refused.output
        assert run(cli, "listing", "show", ids[XIAOMI])["state"] == "effective"
        assert screened(cli, XIAOMI, "2026-11-04", "public_procurement")[0] == "deny"
        decided = run(cli, "repair", "decide", repair, "--approve", "--on", "2026-11-06", "--reason", "paid")
        assert decided["decision"] == "approved"
        shown = run(cli, "listing", "show", ids[XIAOMI])
        assert (shown["state"], shown["ended_on"]) == ("repaired", "2026-11-06")


def test_an_objection_upheld_undoes_a_listing_that_ended_while_it_was_reviewed(cli, tmp_path: Path) -> None:
    """小米 objected on 11-01 to its court listing (in force since 10-25): the debt was another firm's.
    While the objection was reviewed, the court's file brought the case's version saying 全部履行 and
    `process` ended the listing as performed. On 11-10 the objection was upheld, but nothing changed:
    the listing stayed one that bound (withdrawn, performed), so 小米 screened as of 10-30 was denied
    public procurement under a listing upheld as wrong. Now an objection upheld undoes a listing that
    ended under review while it was open, with an audited step (`audit verify` holds); one that ended
    before the objection was filed (王建国's) stays as it ended."""
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        objection = run(cli, "objection", "file", "--listing", ids[XIAOMI], "--reason", "not our debt",
                        "--on", "2026-11-01")
        paid = write_csv(tmp_path / "paid.csv", COURT_HEADERS, [
            [*court_row("（2026）京0108执200号", NAMES[XIAOMI], XIAOMI)[:4], "全部履行",
             *court_row("（2026）京0108执200号", NAMES[XIAOMI], XIAOMI)[5:]]])
        cli("ingest", paid, "--authority", "court", "--category", "court_defaulter")
        assert run(cli, "process")["performed"] == 1
        assert screened(cli, XIAOMI, "2026-10-30", "public_procurement")[0] == "deny"
        run(cli, "objection", "decide", objection["objection"], "--uphold", "--reason", "another firm's debt")
        shown = run(cli, "listing", "show", ids[XIAOMI])
        assert (shown["state"], shown["end_reason"], shown["ended_on"]) == ("withdrawn", "withdrawn_objection",
                                                                           "2026-11-10")
        assert screened(cli, XIAOMI, "2026-10-30", "public_procurement") == ("allow", [])
        run(cli, "listing", "end", ids[WANG], "--reason", "performed", "--on", "2026-11-02")
        late = run(cli, "objection", "file", "--listing", ids[WANG], "--reason", "not my debt", "--on", "2026-11-03")
        run(cli, "objection", "decide", late["objection"], "--uphold", "--reason", "another debtor")
        assert run(cli, "listing", "show", ids[WANG])["end_reason"] == "performed"
        assert json.loads(cli("audit", "verify", "--json").stdout)["intact"] is True


def test_an_approved_repair_ends_a_listing_under_review(cli, tmp_path: Path) -> None:
    """小米 paid and applied on 11-01 to have its court listing (in force since 10-25) repaired; on
    11-03 it also objected to the listing, which went under review and stayed in force. On 11-05 the
    court approved the repair: refused ('a listing that is under_review cannot become repaired'),
    the approval rolled back and the application left pending, so the listing bound 小米 until the
    objection was decided. Now the approval ends it as a performance does under review: withdrawn,
    its reason `repaired`, in force until the day before the approval."""
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        (tmp_path / "receipt.txt").write_text("执行款已全部缴纳", encoding="utf-8")
        (tmp_path / "commitment.txt").write_text("本公司承诺依法履行义务", encoding="utf-8")
        repair = run(cli, "repair", "apply", ids[XIAOMI], "--commitment", tmp_path / "commitment.txt",
                     "--evidence", tmp_path / "receipt.txt", "--on", "2026-11-01")["repair"]
        run(cli, "objection", "file", "--listing", ids[XIAOMI], "--reason", "the amount is wrong", "--on", "2026-11-03")
        assert run(cli, "repair", "decide", repair, "--approve", "--on", "2026-11-05", "--reason", "paid")["decision"] == \
            "approved"
        shown = run(cli, "listing", "show", ids[XIAOMI])
        assert (shown["state"], shown["end_reason"], shown["ended_on"]) == ("withdrawn", "repaired", "2026-11-05")
        assert screened(cli, XIAOMI, "2026-11-04", "public_procurement")[0] == "deny"
        assert screened(cli, XIAOMI, "2026-11-05", "public_procurement") == ("allow", [])
