"""Due process end to end through the CLI, on SQLite and PostgreSQL: the scenarios of FACTS.md.

Each test builds a small jurisdiction (a register, a penalty file, a court file), runs
`resolve` and `evaluate --as-of`, then takes the human and timed steps with `--json`:
notice, reminders, objections, decisions, repair, revocation, `process --as-of`. Every
human step names an actor and a reason and must leave an audit event; the audit chain
must verify at the end of each scenario.

Dates are chosen around China's 2025 National Day holiday so that the objection window of
the serious list (10 working days) only comes out right with the pack's holidays and its
make-up working days.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from stdnum.cn import ric

from xinyong.domain.calendar import Calendar, add_years
from xinyong.domain.identifiers import is_valid_resident_id, uscc_check_character
from xinyong.domain.pack import load_pack
from xinyong.store import tables as t
from xinyong.store.db import open_engine

PACK = load_pack("cn")
EVALUATED = "2025-09-15"  # a Monday
NOTICE = "2025-09-22"     # a Monday; 10 working days later, counted over 国庆节, is 11 October


def uscc(body: str) -> str:
    return body + uscc_check_character(body)


def resident_id(region: str, born: dt.date, serial: int) -> str:
    partial = f"{region}{born:%Y%m%d}{serial:03d}0"  # stdnum wants 18 characters, check as placeholder
    number = partial[:17] + ric.calc_check_digit(partial)
    assert is_valid_resident_id(number), number
    return number


FIRM_REVOKED = "91110000600037341L"          # licence revoked: serious list
FIRM_BIG_FINE = uscc("91310000MA1FL0001")    # fine of 1.5 million yuan: serious list
FIRM_SMALL_FINE = uscc("91310000MA1FL0002")  # fine of 50,000 yuan: not listed
FIRM_CLOSED = uscc("91310000MA1FL0003")      # business licence revoked: serious list

ADULT = resident_id("110101", dt.date(1980, 5, 12), 123)
MINOR = resident_id("440305", dt.date(2010, 3, 1), 456)      # 15 on the evaluation date
NEARLY_ADULT = resident_id("320102", dt.date(2007, 9, 16), 789)  # 18 the day after it
SECURED = resident_id("110105", dt.date(1975, 1, 20), 321)   # gave adequate security


# -- building the jurisdiction ------------------------------------------------------------------

def write_csv(path: Path, headers: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def run(cli, *args: Any) -> Any:
    """A command that must succeed; its --json output."""
    return json.loads(cli(*args, "--json").stdout)


def refused(cli, *args: Any) -> str:
    """A step that must be refused with a one-line reason and nothing stored."""
    result = cli(*args, "--json", ok=False)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout.strip() == "", result.stdout
    return " ".join(result.stderr.split())


def build(cli, tmp_path: Path) -> dict[str, Any]:
    """Register four firms, ingest penalties and court defaulters, resolve, evaluate."""
    register = write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "成立日期", "登记状态"], [
        [FIRM_REVOKED, "北京某某科技有限公司", "有限责任公司", "2010-01-05", "存续"],
        [FIRM_BIG_FINE, "上海某某贸易有限公司", "有限责任公司", "2012-03-07", "存续"],
        [FIRM_SMALL_FINE, "上海某某餐饮有限公司", "有限责任公司", "2015-06-30", "存续"],
        [FIRM_CLOSED, "上海某某化工有限公司", "有限责任公司", "2008-11-11", "存续"],
    ])
    penalties = write_csv(tmp_path / "penalties.csv",
                          ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"], [
        ["北京某某科技有限公司", FIRM_REVOKED, "京市监罚〔2025〕1号", "2025-06-03", "吊销许可证", ""],
        ["上海某某贸易有限公司", FIRM_BIG_FINE, "沪市监罚〔2025〕2号", "2025-06-10", "罚款", "150"],
        ["上海某某餐饮有限公司", FIRM_SMALL_FINE, "沪市监罚〔2025〕3号", "2025-06-12", "罚款", "5"],
        ["上海某某化工有限公司", FIRM_CLOSED, "沪市监罚〔2025〕4号", "2025-07-01", "罚款；吊销营业执照", "20"],
    ])
    court = write_csv(tmp_path / "court.csv",
                      ["案号", "被执行人姓名/名称", "身份证号码/组织机构代码", "执行法院", "被执行人的履行情况",
                       "失信被执行人行为具体情形", "担保情况", "发布时间"], [
        ["(2025)京0105执1号", "张三", ADULT, "北京市朝阳区人民法院", "全部未履行", "有履行能力而拒不履行生效法律文书确定义务", "", "2025-08-01"],
        ["(2025)粤0305执2号", "李小四", MINOR, "深圳市南山区人民法院", "全部未履行", "有履行能力而拒不履行生效法律文书确定义务", "", "2025-08-02"],
        ["(2025)苏0102执3号", "王五", NEARLY_ADULT, "南京市玄武区人民法院", "全部未履行", "有履行能力而拒不履行生效法律文书确定义务", "", "2025-08-03"],
        ["(2025)苏0102执4号", "赵六", SECURED, "南京市玄武区人民法院", "部分未履行", "有履行能力而拒不履行生效法律文书确定义务", "已提供充分担保", "2025-08-04"],
    ])
    for path, authority, category, rows in ((register, "samr", "registration", 4), (penalties, "samr", "penalty", 4),
                                            (court, "court", "court_defaulter", 4)):
        (result,) = [json.loads(line) for line in cli("ingest", path, "--authority", authority, "--category",
                                                      category, "--json").stdout.splitlines() if line.strip()]
        assert (result["accepted"], result["quarantined"]) == (rows, 0), result
    resolved = run(cli, "resolve")
    assert resolved["in_review"] == 0, resolved
    evaluation = run(cli, "evaluate", "--as-of", EVALUATED)
    listings = {row["entity"]: row for row in run(cli, "listing", "list")}
    by_subject = {}
    for code in (FIRM_REVOKED, FIRM_BIG_FINE, FIRM_SMALL_FINE, FIRM_CLOSED, ADULT, MINOR, NEARLY_ADULT, SECURED):
        rows = run(cli, "listing", "list", "--entity", code)
        assert len(rows) <= 1, rows
        by_subject[code] = rows[0]["id"] if rows else None
    return {"evaluation": evaluation, "listings": listings, "id": by_subject}


# -- reading ----------------------------------------------------------------------------------------

def show(cli, listing_id: int) -> dict[str, Any]:
    return run(cli, "listing", "show", listing_id)


def state_on(cli, listing_id: int, day: str) -> str | None:
    rows = [r for r in run(cli, "listing", "list", "--as-of", day) if r["id"] == listing_id]
    return rows[0]["state"] if rows else None


@contextmanager
def store(cli):
    engine = open_engine(cli.url)
    try:
        yield engine
    finally:
        engine.dispose()


def events(cli, **where: Any) -> list[dict[str, Any]]:
    e = t.audit_events.c
    query = select(t.audit_events).order_by(e.seq)
    for column, value in where.items():
        query = query.where(e[column] == value)
    with store(cli) as engine, engine.connect() as c:
        return [dict(r) for r in c.execute(query).mappings()]


def assert_audited(cli, action: str, object_id: Any, actor: str, reason: str) -> None:
    found = [e for e in events(cli, action=action, object_id=str(object_id))]
    assert any(e["actor"] == actor and e["reason"] == reason for e in found), (action, object_id, found)


def assert_audit_intact(cli) -> None:
    report = run(cli, "audit", "verify")
    assert report["intact"] is True and report["problem"] is None, report


def assert_effective_listings_sound(cli) -> None:
    """The invariants, over every listing in the store: no effective listing without a notice
    and an elapsed objection window; every effective listing has an end unless open-ended."""
    for row in run(cli, "listing", "list"):
        data = show(cli, row["id"])
        open_ended = PACK.list_(data["list_code"]).duration.kind == "until_performance"
        for tr in data["transitions"]:
            if tr["to_state"] == "effective":
                assert data["notified_on"] and data["objection_deadline"], data
                assert data["notices"], data
                assert tr["on_date"] > data["objection_deadline"] >= data["notified_on"], data
        if data["state"] == "effective":
            assert data["effective_from"] > data["objection_deadline"], data
            assert (data["effective_to"] is None) == open_ended, data
            if open_ended:
                assert data["review_due"] is not None, data


# -- the scenarios -------------------------------------------------------------------------------

def test_evaluation_proposes_serious_penalties_and_adult_defaulters_only(cli, tmp_path):
    world = build(cli, tmp_path)
    ids = world["id"]
    assert world["evaluation"]["per_list"]["serious_dishonesty"] == 3
    assert world["evaluation"]["per_list"]["court_defaulters"] == 1
    assert ids[FIRM_SMALL_FINE] is None  # an ordinary fine is no ground
    assert ids[SECURED] is None          # adequate security: never listed
    assert ids[MINOR] is None and ids[NEARLY_ADULT] is None  # minors: never listed
    person = show(cli, ids[ADULT])
    assert (person["list_code"], person["state"], person["subject_kind"]) == ("court_defaulters", "proposed",
                                                                               "natural_person")
    (evidence,) = person["evidence"]
    assert evidence["subject_code"] == ADULT[:6] + "********" + ADULT[-4:]  # the ID number is masked
    firm = show(cli, ids[FIRM_REVOKED])
    assert (firm["list_code"], firm["state"], firm["proposed_on"]) == ("serious_dishonesty", "proposed", EVALUATED)
    assert [e["record_key"] for e in firm["evidence"]] == ["samr:京市监罚〔2025〕1号"]
    assert [tr["to_state"] for tr in firm["transitions"]] == ["proposed"]
    # a second run proposes nothing new: an active listing is never proposed twice
    again = run(cli, "evaluate", "--as-of", EVALUATED, "--full")
    assert again["proposals"] == 0, again
    assert_audit_intact(cli)


def test_serious_penalty_from_proposal_to_expiry(cli, tmp_path):
    listing = build(cli, tmp_path)["id"][FIRM_REVOKED]
    # nothing happens by time alone without a notice
    assert run(cli, "process", "--as-of", "2026-09-15") == {"effective": 0, "expired": 0, "reviews_due": 0,
                                                                 "performed": 0}
    assert show(cli, listing)["state"] == "proposed"

    served = run(cli, "listing", "notify", listing, "--on", NOTICE, "--actor", "officer-wang",
                 "--reason", "decision served in person")
    # 10 working days over 国庆节 (1-8 Oct off; Sun 28 Sep and Sat 11 Oct are working days)
    assert served["objection_deadline"] == "2025-10-11"
    naive = dt.date.fromisoformat(NOTICE)
    weekdays = [naive + dt.timedelta(days=n) for n in range(1, 30) if (naive + dt.timedelta(days=n)).weekday() < 5]
    assert weekdays[9].isoformat() == "2025-10-06"  # what a calendar without holidays would say
    assert Calendar(PACK.calendar).deadline(naive, 10, "working").isoformat() == served["objection_deadline"]
    assert "2025-10-11" in served["notice"] and "京市监罚〔2025〕1号" in served["notice"]
    assert_audited(cli, "listing.notified", listing, "officer-wang", "decision served in person")
    assert "notified cannot become notified" in refused(cli, "listing", "notify", listing, "--on", "2025-09-23")

    # the window is open through its last day
    assert run(cli, "process", "--as-of", "2025-10-11")["effective"] == 0
    assert show(cli, listing)["state"] == "notified"
    done = run(cli, "process", "--as-of", "2025-10-20")
    assert done["effective"] >= 1
    data = show(cli, listing)
    duration = PACK.list_("serious_dishonesty").duration
    assert (data["state"], data["effective_from"]) == ("effective", "2025-10-12")
    # the serious list lasts 3 years; the 1-year minimum is the earliest exit, through repair
    assert data["effective_to"] == add_years(dt.date(2025, 10, 12), duration.max_years).isoformat() == "2028-10-12"
    assert [(tr["to_state"], tr["on_date"]) for tr in data["transitions"]] == [
        ("proposed", EVALUATED), ("notified", NOTICE), ("effective", "2025-10-12")]

    for day, expected in (("2025-09-14", None), (EVALUATED, "proposed"), ("2025-09-21", "proposed"),
                          (NOTICE, "notified"), ("2025-10-11", "notified"), ("2025-10-12", "effective"),
                          ("2028-10-11", "effective")):
        assert state_on(cli, listing, day) == expected, day
    as_of = {r["id"]: r for r in run(cli, "listing", "list", "--as-of", "2025-10-01")}[listing]
    assert (as_of["notified_on"], as_of["effective_from"]) == (NOTICE, None)

    assert run(cli, "process", "--as-of", "2028-10-11", "--future")["expired"] == 0
    assert run(cli, "process", "--as-of", "2028-10-20", "--future")["expired"] >= 1
    data = show(cli, listing)
    assert (data["state"], data["ended_on"]) == ("expired", "2028-10-12")
    assert state_on(cli, listing, "2028-10-12") == "expired"
    assert state_on(cli, listing, "2028-10-11") == "effective"
    assert run(cli, "listing", "list", "--state", "expired", "--list", "serious_dishonesty")[0]["id"] == listing
    # a final state is final: an objection is recorded, but puts nothing under review
    late = run(cli, "objection", "file", "--listing", listing, "--reason", "too late", "--on", "2028-11-01", "--future")
    assert late["listings_under_review"] == []
    assert show(cli, listing)["state"] == "expired"
    assert_effective_listings_sound(cli)
    assert_audit_intact(cli)


def test_defaulter_person_needs_three_reminders_before_notice(cli, tmp_path):
    listing = build(cli, tmp_path)["id"][ADULT]
    assert "3 formal reminders" in refused(cli, "listing", "notify", listing, "--on", NOTICE)
    for n, day in enumerate(("2025-09-16", "2025-09-17"), start=1):
        assert run(cli, "listing", "remind", listing, "--on", day, "--actor", "clerk-li",
                   "--reason", f"reminder {n} by post") == {"listing": listing, "reminders": n}
        assert_audited(cli, "listing.reminded", listing, "clerk-li", f"reminder {n} by post")
    message = refused(cli, "listing", "notify", listing, "--on", NOTICE)
    assert "3 formal reminders" in message and "2 recorded" in message
    # time alone never lists a person who was not notified
    assert run(cli, "process", "--as-of", "2027-01-01", "--future")["effective"] == 0
    data = show(cli, listing)
    assert (data["state"], data["notified_on"], data["notices"]) == ("proposed", None, [])
    assert all(r["state"] == "proposed" for r in run(cli, "listing", "list", "--entity", ADULT, "--as-of", "2026-12-31"))

    run(cli, "listing", "remind", listing, "--on", "2025-09-18", "--actor", "clerk-li", "--reason", "reminder 3 by post")
    served = run(cli, "listing", "notify", listing, "--on", NOTICE, "--actor", "judge-chen", "--reason", "decision served")
    # 10 calendar days for the court list end on 2 October, inside the National Day holidays (1-8
    # October): the period ends on the first working day after them (民事诉讼法 第八十五条)
    assert served["objection_deadline"] == "2025-10-09"
    assert "reminders come before" in refused(cli, "listing", "remind", listing, "--on", "2025-09-23")
    run(cli, "process", "--as-of", "2025-10-09")
    assert show(cli, listing)["state"] == "notified"  # the subject may still object on the 9th
    run(cli, "process", "--as-of", "2025-10-10")
    data = show(cli, listing)
    # ground 1 lasts until performance: no end date, a review every 6 months instead
    assert (data["state"], data["effective_from"], data["effective_to"], data["review_due"]) == (
        "effective", "2025-10-10", None, "2026-04-10")
    assert len(data["reminders"]) == 3
    assert run(cli, "process", "--as-of", "2026-04-10")["reviews_due"] == 1
    assert show(cli, listing)["review_due"] == "2026-10-10"
    assert_effective_listings_sound(cli)
    assert_audit_intact(cli)


def test_minors_and_secured_debtors_are_never_listed(cli, tmp_path):
    world = build(cli, tmp_path)
    assert world["id"][MINOR] is None and world["id"][SECURED] is None
    # a minor at every evaluation before the 18th birthday (the day before, for one of them)
    for day in ("2025-09-15", "2026-06-01", "2028-02-29"):
        run(cli, "evaluate", "--as-of", day, "--full", "--future")  # (a rehearsal: 2028 is ahead of the clock)
        assert run(cli, "listing", "list", "--entity", MINOR) == [], day
        assert run(cli, "listing", "list", "--entity", SECURED) == [], day
        if day == "2025-09-15":
            assert run(cli, "listing", "list", "--entity", NEARLY_ADULT) == [], day
    # the minor's entity exists: the record was resolved, only the rule keeps it off the list
    assert run(cli, "entity", "show", MINOR)["kind"] == "natural_person"
    assert_audit_intact(cli)


def test_objection_upheld_withdraws_the_listing(cli, tmp_path):
    listing = build(cli, tmp_path)["id"][FIRM_BIG_FINE]
    run(cli, "listing", "notify", listing, "--on", NOTICE, "--actor", "officer-wang", "--reason", "served")
    filed = run(cli, "objection", "file", "--listing", listing, "--on", "2025-09-30", "--actor", "上海某某贸易有限公司",
                "--reason", "the fine was annulled on appeal")
    objection = filed["objection"]
    assert filed["listings_under_review"] == [listing]
    assert_audited(cli, "objection.filed", objection, "上海某某贸易有限公司", "the fine was annulled on appeal")
    assert show(cli, listing)["state"] == "under_review"
    # the window closes, but an open objection keeps the listing from taking effect
    assert run(cli, "process", "--as-of", "2025-10-20")["effective"] == 0
    assert show(cli, listing)["state"] == "under_review"
    decided = run(cli, "objection", "decide", objection, "--uphold", "--on", "2025-10-22", "--actor", "reviewer-zhou",
                  "--reason", "appeal judgment produced")
    assert (decided["decision"], decided["listings"]) == ("upheld", [listing])
    assert_audited(cli, "objection.upheld", objection, "reviewer-zhou", "appeal judgment produced")
    assert_audited(cli, "listing.withdrawn", listing, "reviewer-zhou", "appeal judgment produced")
    data = show(cli, listing)
    assert (data["state"], data["ended_on"], data["effective_from"]) == ("withdrawn", "2025-10-22", None)
    assert [tr["to_state"] for tr in data["transitions"]] == ["proposed", "notified", "under_review", "withdrawn"]
    assert "already upheld" in refused(cli, "objection", "decide", objection, "--reject", "--reason", "again")
    assert run(cli, "process", "--as-of", "2026-01-01")["effective"] == 0
    assert show(cli, listing)["state"] == "withdrawn"
    for day, expected in (("2025-09-29", "notified"), ("2025-10-21", "under_review"), ("2025-10-22", "withdrawn")):
        assert state_on(cli, listing, day) == expected, day
    # a withdrawn listing does not block a new proposal, nor make one by itself
    again = run(cli, "evaluate", "--as-of", "2025-11-01")
    assert again["per_list"]["serious_dishonesty"] == 0
    assert [r["id"] for r in run(cli, "listing", "list", "--entity", FIRM_BIG_FINE)] == [listing]
    # a run as of another date is a full one: the debtor who turned 18 on 16 September is proposed
    assert again["per_list"]["court_defaulters"] == 1
    assert len(run(cli, "listing", "list", "--entity", NEARLY_ADULT)) == 1
    assert_effective_listings_sound(cli)
    assert_audit_intact(cli)


def test_objection_rejected_lets_the_listing_proceed(cli, tmp_path):
    listing = build(cli, tmp_path)["id"][FIRM_BIG_FINE]
    run(cli, "listing", "notify", listing, "--on", NOTICE, "--actor", "officer-wang", "--reason", "served")
    objection = run(cli, "objection", "file", "--listing", listing, "--on", "2025-09-25",
                    "--reason", "amount wrong")["objection"]
    # decided inside the window: it stays under review until the window has passed
    run(cli, "objection", "decide", objection, "--reject", "--on", "2025-09-29", "--actor", "reviewer-zhou",
        "--reason", "amount checked against the decision")
    assert_audited(cli, "objection.rejected", objection, "reviewer-zhou", "amount checked against the decision")
    assert show(cli, listing)["state"] == "under_review"
    run(cli, "process", "--as-of", "2025-10-13")
    data = show(cli, listing)
    assert (data["state"], data["effective_from"], data["effective_to"]) == ("effective", "2025-10-12", "2028-10-12")
    assert_effective_listings_sound(cli)
    assert_audit_intact(cli)


def test_objection_to_a_record_keeps_its_listing_from_taking_effect(cli, tmp_path):
    listing = build(cli, tmp_path)["id"][FIRM_CLOSED]
    run(cli, "listing", "notify", listing, "--on", NOTICE, "--actor", "officer-wang", "--reason", "served")
    (record,) = [e["record_key"] for e in show(cli, listing)["evidence"]]
    filed = run(cli, "objection", "file", "--record", record, "--on", "2025-09-26", "--actor", "上海某某化工有限公司",
                "--reason", "the decision names another firm")
    assert filed["listings_under_review"] == [listing]
    # the objection is about the record; while it is open the listing cannot take effect
    run(cli, "process", "--as-of", "2025-10-20")
    assert show(cli, listing)["state"] == "under_review"
    run(cli, "objection", "decide", filed["objection"], "--reject", "--on", "2025-10-21", "--actor", "reviewer-zhou",
        "--reason", "the firm is the one named")
    data = show(cli, listing)
    assert (data["state"], data["effective_from"]) == ("effective", "2025-10-21")
    assert_effective_listings_sound(cli)
    assert_audit_intact(cli)


def test_repair_approved_ends_the_listing_early(cli, tmp_path):
    listing = build(cli, tmp_path)["id"][FIRM_REVOKED]
    run(cli, "listing", "notify", listing, "--on", NOTICE, "--actor", "officer-wang", "--reason", "served")
    run(cli, "process", "--as-of", "2025-10-12")
    assert show(cli, listing)["state"] == "effective"
    commitment = tmp_path / "commitment.txt"
    commitment.write_text("本公司承诺依法诚信经营。\n", encoding="utf-8")
    proof = tmp_path / "proof.pdf"
    proof.write_bytes(b"%PDF-1.4 rectification report")
    # the minimum period (12 months) is not served yet
    message = refused(cli, "repair", "apply", listing, "--commitment", commitment, "--evidence", proof,
                      "--on", "2026-06-01", "--actor", "北京某某科技有限公司", "--reason", "fault corrected")
    assert "2026-10-12" in message
    assert "evidence" in refused(cli, "repair", "apply", listing, "--commitment", commitment, "--on", "2026-11-02")
    applied = run(cli, "repair", "apply", listing, "--commitment", commitment, "--evidence", proof,
                  "--on", "2026-11-02", "--actor", "北京某某科技有限公司", "--reason", "fault corrected")
    repair = applied["repair"]
    assert_audited(cli, "repair.applied", repair, "北京某某科技有限公司", "fault corrected")
    assert "already has a pending repair application" in refused(cli, "repair", "apply", listing, "--commitment", commitment,
                                                          "--evidence", proof, "--on", "2026-11-03")
    assert "reasons" in refused(cli, "repair", "decide", repair, "--refuse", "--on", "2026-11-05")
    decided = run(cli, "repair", "decide", repair, "--approve", "--on", "2026-11-05", "--actor", "officer-wang",
                  "--reason", "conditions met")
    assert decided["decision"] == "approved"
    assert_audited(cli, "repair.approved", repair, "officer-wang", "conditions met")
    assert_audited(cli, "listing.repaired", listing, "officer-wang", "conditions met")
    data = show(cli, listing)
    assert (data["state"], data["ended_on"]) == ("repaired", "2026-11-05")
    assert data["ended_on"] < data["effective_to"]  # early
    assert state_on(cli, listing, "2026-11-04") == "effective"
    assert state_on(cli, listing, "2026-11-05") == "repaired"
    # it never expires later: it is over
    assert run(cli, "process", "--as-of", "2029-01-01", "--future")["expired"] == 0
    assert show(cli, listing)["state"] == "repaired"
    assert_effective_listings_sound(cli)
    assert_audit_intact(cli)


def test_revoked_record_withdraws_its_listing(cli, tmp_path):
    world = build(cli, tmp_path)
    listing, other = world["id"][FIRM_CLOSED], world["id"][FIRM_REVOKED]
    for each in (listing, other):
        run(cli, "listing", "notify", each, "--on", NOTICE, "--actor", "officer-wang", "--reason", "served")
    run(cli, "process", "--as-of", "2025-10-15")
    assert show(cli, listing)["state"] == "effective"
    (record,) = [e["record_key"] for e in show(cli, listing)["evidence"]]
    revoked = run(cli, "record", "revoke", record, "--on", "2025-11-03", "--actor", "officer-sun",
                  "--reason", "penalty decision revoked by the authority")
    assert (revoked["status"], revoked["listings_withdrawn"]) == ("revoked", [listing])
    assert_audited(cli, "record.revoked", record, "officer-sun", "penalty decision revoked by the authority")
    assert_audited(cli, "listing.withdrawn", listing, "officer-sun", "penalty decision revoked by the authority")
    data = show(cli, listing)
    assert (data["state"], data["ended_on"]) == ("withdrawn", "2025-11-03")
    assert state_on(cli, listing, "2025-11-02") == "effective"
    assert state_on(cli, listing, "2025-11-03") == "withdrawn"
    assert show(cli, other)["state"] == "effective"  # another firm's listing is untouched
    # a revoked record is no ground any more: no new proposal on it
    assert run(cli, "evaluate", "--as-of", "2025-12-01", "--full")["per_list"]["serious_dishonesty"] == 0
    assert "already revoked" in refused(cli, "record", "revoke", record, "--on", "2025-11-04")
    assert_effective_listings_sound(cli)
    assert_audit_intact(cli)


def test_a_step_after_the_end_finds_the_listing_expired(cli, tmp_path):
    """`process` did not run at the end of the term: a later objection or revocation first
    applies what time had made due, so the history keeps the expiry on its day."""
    world = build(cli, tmp_path)
    listing, other = world["id"][FIRM_REVOKED], world["id"][FIRM_CLOSED]
    for each in (listing, other):
        run(cli, "listing", "notify", each, "--on", NOTICE, "--actor", "officer-wang", "--reason", "served")
    run(cli, "process", "--as-of", "2025-10-15")
    filed = run(cli, "objection", "file", "--listing", listing, "--on", "2028-11-20", "--future", "--reason", "too long")
    assert filed["listings_under_review"] == []
    data = show(cli, listing)
    assert (data["state"], data["ended_on"]) == ("expired", "2028-10-12")
    assert state_on(cli, listing, "2028-11-30") == "expired"
    (record,) = [e["record_key"] for e in show(cli, other)["evidence"]]
    assert run(cli, "record", "revoke", record, "--on", "2028-12-01", "--future", "--reason", "annulled")["listings_withdrawn"] == []
    assert (show(cli, other)["state"], show(cli, other)["ended_on"]) == ("expired", "2028-10-12")
    assert_effective_listings_sound(cli)
    assert_audit_intact(cli)


def test_an_objection_across_the_end_of_the_term(cli, tmp_path):
    """Under review when its term ran out, then rejected: effective again only to expire that day."""
    listing = build(cli, tmp_path)["id"][FIRM_REVOKED]
    run(cli, "listing", "notify", listing, "--on", NOTICE, "--actor", "officer-wang", "--reason", "served")
    run(cli, "process", "--as-of", "2025-10-15")
    objection = run(cli, "objection", "file", "--listing", listing, "--on", "2028-09-01", "--future", "--reason", "x")["objection"]
    run(cli, "process", "--as-of", "2028-11-01", "--future")
    assert show(cli, listing)["state"] == "under_review"  # an open objection: nothing moves
    run(cli, "objection", "decide", objection, "--reject", "--on", "2028-11-05", "--future", "--reason", "unfounded")
    data = show(cli, listing)
    assert (data["state"], data["ended_on"]) == ("expired", "2028-11-05")
    assert [(tr["to_state"], tr["on_date"]) for tr in data["transitions"]][-3:] == [
        ("under_review", "2028-09-01"), ("effective", "2028-11-05"), ("expired", "2028-11-05")]
    assert state_on(cli, listing, "2028-10-20") == "under_review"
    assert state_on(cli, listing, "2028-11-05") == "expired"
    assert_effective_listings_sound(cli)
    assert_audit_intact(cli)


def test_steps_dated_out_of_order_are_refused(cli, tmp_path):
    world = build(cli, tmp_path)
    firm, person = world["id"][FIRM_BIG_FINE], world["id"][ADULT]
    assert "before" in refused(cli, "listing", "remind", person, "--on", "2025-09-01")  # before the proposal
    for day in ("2025-09-16", "2025-09-17", "2025-09-25"):
        run(cli, "listing", "remind", person, "--on", day)
    assert "reminder of 2025-09-25" in refused(cli, "listing", "notify", person, "--on", NOTICE)
    assert "2025-09-15" in refused(cli, "listing", "notify", firm, "--on", "2025-09-10")  # before the proposal
    run(cli, "listing", "notify", firm, "--on", NOTICE, "--actor", "officer-wang", "--reason", "served")
    assert "cannot come before" in refused(cli, "objection", "file", "--listing", firm, "--on", "2025-09-20",
                                           "--reason", "dated before the notice")
    run(cli, "process", "--as-of", "2025-10-20")
    # dated within the window, received after the listing took effect: recorded with its date, and the
    # listing goes under review from the day it took effect (history stays in date order)
    late = run(cli, "objection", "file", "--listing", firm, "--on", "2025-10-05",
               "--reason", "posted in time, received after the listing took effect")
    assert late["effect_undone"] == [firm]
    assert (show(cli, firm)["state"], show(cli, firm)["effective_from"]) == ("under_review", None)
    assert state_on(cli, firm, "2025-10-05") == "notified"
    assert state_on(cli, firm, "2025-10-12") == "under_review"
    assert_effective_listings_sound(cli)
    assert_audit_intact(cli)


def test_steps_refused_out_of_order_leave_no_trace(cli, tmp_path):
    listing = build(cli, tmp_path)["id"][FIRM_REVOKED]
    before = len(events(cli))
    commitment = tmp_path / "c.txt"
    commitment.write_text("承诺", encoding="utf-8")
    assert "only an effective listing" in refused(cli, "repair", "apply", listing, "--commitment", commitment,
                                                  "--evidence", commitment, "--on", "2026-01-01")
    assert "reason" in refused(cli, "objection", "file", "--listing", listing, "--on", "2025-09-20")
    assert "no listing 9999" in refused(cli, "listing", "notify", 9999, "--on", NOTICE)
    assert "no objection" in refused(cli, "objection", "decide", 9999, "--uphold", "--on", NOTICE)
    assert "language" in refused(cli, "listing", "notify", listing, "--on", NOTICE, "--language", "de")
    assert len(events(cli)) == before
    assert show(cli, listing)["state"] == "proposed"
    assert_audit_intact(cli)
