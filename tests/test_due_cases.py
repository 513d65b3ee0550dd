"""Due-process cases that hold (issue 10), through the CLI and the HTTP API, on SQLite and PostgreSQL.

Whoever listed it decides (`--authority`, the console's key); reminders on distinct days and
the notice after them; bulk reminders and notices; extension by a decision with its own
notice; the end of a court listing on performance (by command, or by a later version of the
court's record); credit repair of a penalty record's publicity, and the evidence of a
repaired listing leaving every public surface; deadlines tracked (`overdue`), late steps
taken and kept as late; an objection that suspends measures where the pack says so; notices
that follow the pack's repair flags; `end_reason` in `listing list` and `/v1/changes`.

The world is `worlds.build_world` (as of 2025-10-20) unless a test needs its own files.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from worlds import (FIRM_DEBTOR, FIRM_PROPOSED, FIRM_SERIOUS, NAMES, PERSON, build_world, resident_id,
                    run, serving, uscc, write_csv)
from xinyong.domain.calendar import Calendar, add_years, pack_today
from xinyong.domain.pack import PACKS_DIR, load_pack
from xinyong.store import tables as t
from xinyong.store.db import open_engine

PACK = load_pack("cn")
COURT_HEADERS = ["案号", "被执行人姓名/名称", "身份证号码/组织机构代码", "执行法院", "被执行人的履行情况",
                 "失信被执行人行为具体情形", "担保情况", "发布时间"]
GROUND_1 = "有履行能力而拒不履行生效法律文书确定义务"


def refused(cli, *args: Any) -> str:
    """A step that must be refused with a one-line reason on stderr, nothing on stdout."""
    result = cli(*args, "--json", ok=False)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout.strip() == "", result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr.strip()


def show(cli, listing_id: int) -> dict[str, Any]:
    return run(cli, "listing", "show", listing_id)


@contextmanager
def connection(cli):
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            yield c
    finally:
        engine.dispose()


def audit_events(cli, action: str) -> list[dict[str, Any]]:
    e = t.audit_events.c
    with connection(cli) as c:
        return [dict(r) for r in c.execute(select(t.audit_events).where(e.action == action).order_by(e.seq))
                .mappings()]


def payload(event: dict[str, Any]) -> dict[str, Any]:
    return event["payload"] if isinstance(event["payload"], dict) else json.loads(event["payload"])


def files(tmp_path: Path) -> tuple[Path, Path]:
    commitment = tmp_path / "commitment.txt"
    commitment.write_text("本单位承诺依法诚信经营，如有违反，愿意承担相应责任。", encoding="utf-8")
    proof = tmp_path / "proof.pdf"
    proof.write_bytes(b"%PDF-1.4 receipt of payment")
    return commitment, proof


# -- whoever listed it decides --------------------------------------------------------------------------

def test_whoever_listed_it_decides_and_every_decision_records_the_authority(cli, tmp_path):
    ids = build_world(cli, tmp_path)
    serious, proposed = ids[FIRM_SERIOUS], ids[FIRM_PROPOSED]
    objection = run(cli, "objection", "file", "--listing", serious, "--reason", "处罚决定已被复议撤销",
                    "--on", "2025-10-21")["objection"]
    message = refused(cli, "objection", "decide", objection, "--reject", "--on", "2025-10-22", "--reason", "x",
                      "--authority", "court")
    assert "court" in message and "samr" in message and "ndrc" in message, message
    assert "unknown authority" in refused(cli, "objection", "decide", objection, "--reject", "--on", "2025-10-22",
                                          "--reason", "x", "--authority", "no-such-authority")
    decided = run(cli, "objection", "decide", objection, "--reject", "--on", "2025-10-22", "--reason", "依据充分")
    assert decided["authority"] == "samr"  # none named: the list's own authority
    with connection(cli) as c:
        assert c.execute(select(t.objections.c.authority).where(t.objections.c.id == objection)).scalar() == "samr"
    # a notice: another list's authority is refused, the reviewing authority may serve it
    assert "tax" in refused(cli, "listing", "notify", proposed, "--on", "2025-10-22", "--authority", "tax")
    assert "tax" in refused(cli, "listing", "remind", proposed, "--on", "2025-10-22", "--authority", "tax")
    run(cli, "listing", "notify", proposed, "--on", "2025-10-22", "--authority", "ndrc", "--reason", "复核部门送达")
    transitions = show(cli, proposed)["transitions"]
    assert transitions[-1]["to_state"] == "notified" and transitions[-1]["authority"] == "ndrc"
    assert payload(audit_events(cli, "listing.notified")[-1])["authority"] == "ndrc"
    # the rejected objection let the serious listing proceed as samr's step
    assert [tr["authority"] for tr in show(cli, serious)["transitions"] if tr["on_date"] == "2025-10-22"] == ["samr"]


# -- reminders, bulk steps ------------------------------------------------------------------------------

def _two_more_debtors(cli, tmp_path: Path) -> list[int]:
    people = [("(2025)京0105执7号", "陈一", resident_id("110101", dt.date(1979, 1, 2), 611)),
              ("(2025)京0105执8号", "林二", resident_id("110101", dt.date(1983, 7, 9), 622))]
    court = write_csv(tmp_path / "court-more.csv", COURT_HEADERS,
                      [[case, name, code, "北京市朝阳区人民法院", "全部未履行", GROUND_1, "", "2025-08-05"]
                       for case, name, code in people])
    cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    run(cli, "evaluate", "--as-of", "2025-10-24")
    return sorted(run(cli, "listing", "list", "--entity", code)[0]["id"] for _case, _name, code in people)


def test_reminders_fall_on_distinct_days_and_the_notice_comes_after_the_third(cli, tmp_path):
    build_world(cli, tmp_path)
    first, _second = _two_more_debtors(cli, tmp_path)
    run(cli, "listing", "remind", first, "--on", "2025-10-27", "--reason", "第一次提醒")
    assert "too soon" in refused(cli, "listing", "remind", first, "--on", "2025-10-27", "--reason", "again")
    run(cli, "listing", "remind", first, "--on", "2025-10-28", "--reason", "第二次提醒")
    run(cli, "listing", "remind", first, "--on", "2025-10-29", "--reason", "第三次提醒")
    assert "too soon" in refused(cli, "listing", "notify", first, "--on", "2025-10-29", "--reason", "served")
    assert show(cli, first)["state"] == "proposed"
    run(cli, "listing", "notify", first, "--on", "2025-10-30", "--reason", "served")
    assert show(cli, first)["state"] == "notified"


def test_bulk_reminders_and_notices_take_each_listing_as_its_own_step(cli, tmp_path):
    build_world(cli, tmp_path)
    first, second = _two_more_debtors(cli, tmp_path)
    bulk = ("--list", "court_defaulters", "--state", "proposed")
    done = run(cli, "listing", "remind", *bulk, "--on", "2025-10-27", "--reason", "第一次提醒", "--actor", "clerk")
    assert done["selected"] == 2 and [d["listing"] for d in done["done"]] == [first, second] and not done["skipped"]
    again = run(cli, "listing", "remind", *bulk, "--on", "2025-10-27", "--reason", "again")
    assert not again["done"] and [s["listing"] for s in again["skipped"]] == [first, second]
    assert all("too soon" in s["reason"] for s in again["skipped"])
    oldest = run(cli, "listing", "remind", *bulk, "--limit", "1", "--on", "2025-10-28", "--reason", "第二次提醒")
    assert [d["listing"] for d in oldest["done"]] == [first]
    notices = run(cli, "listing", "notify", *bulk, "--on", "2025-10-29", "--reason", "served", "--language", "en")
    assert not notices["done"] and all("3 formal reminders" in s["reason"] for s in notices["skipped"])
    run(cli, "listing", "remind", first, "--on", "2025-10-29", "--reason", "第三次提醒")
    notices = run(cli, "listing", "notify", *bulk, "--on", "2025-10-30", "--reason", "served", "--language", "en")
    assert [d["listing"] for d in notices["done"]] == [first] and [s["listing"] for s in notices["skipped"]] == [second]
    assert notices["done"][0]["language"] == "en" and "NOTICE" in notices["done"][0]["notice"]
    reminded = [payload(e) for e in audit_events(cli, "listing.reminded")]
    assert len([p for p in reminded if p["on"] >= "2025-10-27"]) == 4  # one audited step per reminder
    assert [e["actor"] for e in audit_events(cli, "listing.reminded")[-4:-2]] == ["clerk", "clerk"]
    # none selected is no error; a refused authority stops the run with one line
    assert run(cli, "listing", "notify", "--list", "tax_a_grade", "--state", "proposed") == \
        {"selected": 0, "done": [], "skipped": []}
    assert "court" in refused(cli, "listing", "remind", *bulk, "--on", "2025-10-31", "--authority", "samr")
    assert "--list" in refused(cli, "listing", "notify", "--state", "proposed")
    assert "unknown list" in refused(cli, "listing", "notify", "--list", "nope", "--state", "proposed")


# -- extension, end on performance --------------------------------------------------------------------

def _overlay(tmp_path: Path, lists: str) -> Path:
    path = tmp_path / "pack.yaml"
    path.write_text(f"code: cn-test\nversion: \"1\"\nextends: {PACKS_DIR / 'cn' / 'pack.yaml'}\n"
                    f"names: {{zh: 测试, en: Test, fr: Test}}\nlists:\n{lists}", encoding="utf-8")
    return path


def _serious_firm(cli, tmp_path: Path) -> int:
    firm = uscc("91310000MA1EX0009")
    register = write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "成立日期", "登记状态"],
                         [[firm, "上海某某化工有限公司", "有限责任公司", "2010-01-05", "存续"]])
    penalties = write_csv(tmp_path / "penalties.csv",
                          ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"],
                          [["上海某某化工有限公司", firm, "沪市监罚〔2025〕9号", "2025-06-03", "吊销许可证", ""]])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    cli("ingest", penalties, "--authority", "samr", "--category", "penalty")
    run(cli, "resolve")
    run(cli, "evaluate", "--as-of", "2025-09-15")
    (listing,) = [row["id"] for row in run(cli, "listing", "list", "--entity", firm)]
    run(cli, "listing", "notify", listing, "--on", "2025-09-22", "--reason", "served")
    run(cli, "process", "--as-of", "2025-10-20")
    assert show(cli, listing)["state"] == "effective"
    return listing


def test_extension_by_decision_within_the_lists_maximum_with_its_own_notice(cli, tmp_path):
    cli("init", "--pack", _overlay(tmp_path, "  - code: serious_dishonesty\n    duration: {kind: range, min_years: 1, "
                                             "max_years: 3, extension_max_years: 3}\n"))
    listing = _serious_firm(cli, tmp_path)
    before = show(cli, listing)["effective_to"]
    assert "1 to 3" in refused(cli, "listing", "extend", listing, "--years", "4", "--reason", "情节严重",
                               "--on", "2026-01-05")
    assert "samr" in refused(cli, "listing", "extend", listing, "--years", "1", "--reason", "情节严重",
                             "--on", "2026-01-05", "--authority", "court")
    extended = run(cli, "listing", "extend", listing, "--years", "2", "--reason", "情节严重，拒不改正",
                   "--on", "2026-01-05", "--language", "zh")
    expected = add_years(dt.date.fromisoformat(before), 2)
    assert extended["effective_to"] == expected.isoformat() and extended["authority"] == "samr"
    assert "延长" in extended["notice"] and expected.isoformat() in extended["notice"]
    data = show(cli, listing)
    assert data["effective_to"] == expected.isoformat() and data["extended_years"] == 2
    assert len(data["notices"]) == 2 and data["notices"][-1]["issued_on"] == "2026-01-05"
    (event,) = audit_events(cli, "listing.extended")
    assert event["reason"] == "情节严重，拒不改正" and payload(event)["years"] == 2
    assert "at most 3" in refused(cli, "listing", "extend", listing, "--years", "2", "--reason", "再延长",
                                  "--on", "2026-02-02")
    # the extension is an audited step: the chain replays the new end date
    verified = cli("audit", "verify", ok=False)
    assert verified.exit_code == 0, verified.output


def test_a_list_without_extensions_and_an_open_ended_listing_are_not_extended(cli, tmp_path):
    ids = build_world(cli, tmp_path)
    assert "no extension" in refused(cli, "listing", "extend", ids[FIRM_SERIOUS], "--years", "1", "--reason", "x",
                                     "--on", "2025-10-21")
    assert "until performance" in refused(cli, "listing", "extend", ids[FIRM_DEBTOR], "--years", "1",
                                          "--reason", "x", "--on", "2025-10-21")


def test_listing_end_ends_a_court_listing_as_performed_keeping_the_reason(cli, tmp_path):
    ids = build_world(cli, tmp_path)
    person = ids[PERSON]
    assert "--reason must be one of" in refused(cli, "listing", "end", person, "--reason", "paid", "--on", "2025-11-03")
    assert "does not end on performance" in refused(cli, "listing", "end", ids[FIRM_SERIOUS], "--reason", "performed",
                                                    "--on", "2025-11-03")
    ended = run(cli, "listing", "end", person, "--reason", "settled", "--on", "2025-11-03", "--actor", "judge-zhao")
    assert ended["end_reason"] == "performed" and ended["ground"] == "settled" and ended["authority"] == "court"
    data = show(cli, person)
    assert data["state"] == "repaired" and data["end_reason"] == "performed" and data["ended_on"] == "2025-11-03"
    assert data["transitions"][-1]["reason"] == "settled" and data["transitions"][-1]["actor"] == "judge-zhao"
    (row,) = [r for r in run(cli, "listing", "list") if r["id"] == person]
    assert row["end_reason"] == "performed"
    assert "already ended" in refused(cli, "listing", "end", person, "--reason", "performed", "--on", "2025-11-04")


def test_performance_in_a_later_version_of_the_court_record_ends_the_listing(cli, tmp_path):
    ids = build_world(cli, tmp_path)
    debtor = ids[FIRM_DEBTOR]
    paid = write_csv(tmp_path / "court-paid.csv", COURT_HEADERS, [
        ["(2025)粤0305执2号", NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "深圳市南山区人民法院", "已履行", GROUND_1, "",
         "2025-08-02"]])
    cli("ingest", paid, "--authority", "court", "--category", "court_defaulter")
    today = pack_today(PACK)
    assert show(cli, debtor)["state"] == "effective"
    done = run(cli, "process", "--as-of", today.isoformat())
    assert done["performed"] == 1
    data = show(cli, debtor)
    assert data["state"] == "repaired" and data["end_reason"] == "performed" and data["ended_on"] == today.isoformat()
    assert run(cli, "process", "--as-of", today.isoformat())["performed"] == 0
    assert show(cli, ids[PERSON])["state"] == "effective"  # another debtor's record did not change


# -- credit repair of a record's publicity; a repaired listing's evidence -------------------------------

def test_repair_of_a_penalty_records_publicity_ends_it_on_every_surface(cli, tmp_path):
    build_world(cli, tmp_path)
    today = pack_today(PACK)
    decided = today - dt.timedelta(days=120)  # within its 12 months of publicity, past the 3 months' minimum
    firm, name = uscc("91330100MA2RP0007"), "杭州某某食品有限公司"
    register = write_csv(tmp_path / "register-rp.csv", ["统一社会信用代码", "企业名称", "企业类型", "成立日期", "登记状态"],
                         [[firm, name, "有限责任公司", "2016-04-01", "存续"]])
    penalties = write_csv(tmp_path / "penalties-rp.csv",
                          ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"],
                          [[name, firm, "杭市监罚〔2026〕12号", decided.isoformat(), "罚款", "3"]])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    cli("ingest", penalties, "--authority", "samr", "--category", "penalty")
    run(cli, "resolve")
    key = "samr:杭市监罚〔2026〕12号"
    commitment, proof = files(tmp_path)
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:
        before = http.get(f"/v1/entities/{firm}").json()
        assert [r["fields"].get("decision_no") for r in before["records"] if r["category"] == "penalty"] == \
            ["杭市监罚〔2026〕12号"]
        assert "evidence" in refused(cli, "repair", "apply", "--record", key, "--commitment", commitment,
                                     "--on", today.isoformat())
        assert "minimum period" in refused(cli, "repair", "apply", "--record", key, "--commitment", commitment,
                                           "--evidence", proof, "--on", (decided + dt.timedelta(days=30)).isoformat())
        applied = run(cli, "repair", "apply", "--record", key, "--commitment", commitment, "--evidence", proof,
                      "--on", today.isoformat())
        repair = applied["repair"]
        assert applied["record"] == key and applied["listing"] is None
        assert "pending" in refused(cli, "repair", "apply", "--record", key, "--commitment", commitment,
                                    "--evidence", proof, "--on", today.isoformat())
        assert "samr" in refused(cli, "repair", "decide", repair, "--approve", "--on", today.isoformat(),
                                 "--authority", "court")
        operator = _console(base, _key(cli, "samr"))
        assert "Publicity of record samr:杭市监罚〔2026〕12号" in operator.get("/console/repairs").text
        decision = run(cli, "repair", "decide", repair, "--approve", "--on", today.isoformat(), "--reason", "已整改")
        assert decision["authority"] == "samr" and decision["late"] is False
        after = http.get(f"/v1/entities/{firm}").json()
        assert not [r for r in after["records"] if r["category"] == "penalty"]
        page = http.get(f"/entities/{firm}").text
        assert "杭市监罚〔2026〕12号" not in page and name in page
        assert "already ended" in refused(cli, "repair", "apply", "--record", key, "--commitment", commitment,
                                          "--evidence", proof, "--on", today.isoformat())


def test_an_approved_listing_repair_ends_its_evidence_records_publicity(cli, tmp_path):
    ids = build_world(cli, tmp_path)
    debtor = ids[FIRM_DEBTOR]
    commitment, proof = files(tmp_path)
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:
        before = http.get(f"/v1/entities/{FIRM_DEBTOR}").json()
        assert [r for r in before["records"] if r["category"] == "court_defaulter"]
        repair = run(cli, "repair", "apply", debtor, "--commitment", commitment, "--evidence", proof,
                     "--on", "2025-11-03")["repair"]
        run(cli, "repair", "decide", repair, "--approve", "--on", "2025-11-04", "--reason", "已全部履行")
        after = http.get(f"/v1/entities/{FIRM_DEBTOR}").json()
        assert not [r for r in after["records"] if r["category"] == "court_defaulter"]
        assert "(2025)粤0305执2号" not in http.get(f"/entities/{FIRM_DEBTOR}").text


# -- deadlines ------------------------------------------------------------------------------------------

def test_overdue_lists_cases_past_their_deadline_and_late_steps_are_taken_and_kept_late(cli, tmp_path):
    ids = build_world(cli, tmp_path)
    calendar = Calendar(PACK.calendar)
    objection = run(cli, "objection", "file", "--listing", ids[PERSON], "--reason", "已和解", "--on",
                    "2025-10-21")["objection"]
    commitment, proof = files(tmp_path)
    repair = run(cli, "repair", "apply", ids[FIRM_DEBTOR], "--commitment", commitment, "--evidence", proof,
                 "--on", "2025-10-21")["repair"]
    assert run(cli, "overdue", "--as-of", "2025-10-22") == []
    late = run(cli, "overdue", "--as-of", "2025-11-10")
    review_deadline = dt.date(2025, 10, 21) + dt.timedelta(days=15)  # the court list's review_days
    decision_deadline = calendar.add_working_days(dt.date(2025, 10, 21), 3)  # no answer step: from the application
    assert {(i["kind"], i["id"]): (i["authority"], i["deadline"], i["days_late"]) for i in late} == {
        ("objection", objection): ("court", review_deadline.isoformat(), (dt.date(2025, 11, 10) - review_deadline).days),
        ("repair_decision", repair): ("court", decision_deadline.isoformat(),
                                      (dt.date(2025, 11, 10) - decision_deadline).days)}
    decided = run(cli, "objection", "decide", objection, "--reject", "--on", "2025-11-10", "--reason", "未履行")
    assert decided["late"] is True
    approved = run(cli, "repair", "decide", repair, "--approve", "--on", "2025-11-10", "--reason", "已履行")
    assert approved["late"] is True and approved["decision"] == "approved"  # the deadline never blocks the step
    assert run(cli, "overdue", "--as-of", "2025-11-10") == []
    with connection(cli) as c:
        assert c.execute(select(t.objections.c.late).where(t.objections.c.id == objection)).scalar() is True
        assert c.execute(select(t.repairs.c.late).where(t.repairs.c.id == repair)).scalar() is True
    assert payload(audit_events(cli, "objection.rejected")[-1])["late"] is True


def test_a_record_repair_has_an_answer_deadline_then_a_decision_deadline(cli, tmp_path):
    build_world(cli, tmp_path)
    today = pack_today(PACK)
    calendar = Calendar(PACK.calendar)
    firm, name = uscc("91330100MA2RP0015"), "宁波某某物流有限公司"
    cli("ingest", write_csv(tmp_path / "r.csv", ["统一社会信用代码", "企业名称", "企业类型", "成立日期", "登记状态"],
                            [[firm, name, "有限责任公司", "2016-04-01", "存续"]]), "--authority", "samr",
        "--category", "registration")
    cli("ingest", write_csv(tmp_path / "p.csv", ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期",
                                                 "处罚类别", "罚款金额（万元）"],
                            [[name, firm, "甬市监罚〔2026〕3号", (today - dt.timedelta(days=150)).isoformat(), "罚款",
                              "1"]]), "--authority", "samr", "--category", "penalty")
    run(cli, "resolve")
    commitment, proof = files(tmp_path)
    applied_on = today - dt.timedelta(days=20)
    repair = run(cli, "repair", "apply", "--record", "samr:甬市监罚〔2026〕3号", "--commitment", commitment,
                 "--evidence", proof, "--on", applied_on.isoformat())["repair"]
    answer = calendar.add_working_days(applied_on, 2)
    (item,) = run(cli, "overdue", "--json")
    assert (item["kind"], item["id"], item["authority"], item["deadline"]) == \
        ("repair_answer", repair, "samr", answer.isoformat())
    accepted = run(cli, "repair", "accept", repair, "--on", (today - dt.timedelta(days=2)).isoformat())
    assert accepted["late"] is True and accepted["authority"] == "samr"
    assert run(cli, "overdue", "--as-of", (today - dt.timedelta(days=2)).isoformat()) == []
    (item,) = run(cli, "overdue", "--as-of", (today + dt.timedelta(days=30)).isoformat())
    assert item["kind"] == "repair_decision" and item["deadline"] == \
        calendar.add_working_days(today - dt.timedelta(days=2), 5).isoformat()


# -- objections that suspend, notices, end reasons ------------------------------------------------------

def test_an_open_objection_suspends_measures_only_where_the_pack_says_so(cli, tmp_path):
    cli("init", "--pack", _overlay(tmp_path, "  - code: serious_dishonesty\n    objection_suspends: true\n"))
    listing = _serious_firm(cli, tmp_path)
    firm = uscc("91310000MA1EX0009")
    screen = ("screen", firm, "--action", "public_procurement", "--as-of", "2025-10-25")
    assert run(cli, *screen)["decision"] == "deny"
    objection = run(cli, "objection", "file", "--listing", listing, "--reason", "处罚已被撤销",
                    "--on", "2025-10-21")["objection"]
    answer = run(cli, *screen)
    assert answer["decision"] == "conditions"
    (measure,) = answer["measures"]
    assert measure["suspended"] == {"objection": objection, "filed_on": "2025-10-21"}
    assert run(cli, "screen", firm, "--action", "public_procurement", "--as-of", "2025-10-20")["decision"] == "deny"
    run(cli, "objection", "decide", objection, "--reject", "--on", "2025-10-27", "--reason", "理由不成立")
    assert run(cli, "screen", firm, "--action", "public_procurement", "--as-of", "2025-10-28")["decision"] == "deny"


def test_an_open_objection_does_not_suspend_measures_by_default(cli, tmp_path):
    ids = build_world(cli, tmp_path)
    run(cli, "objection", "file", "--listing", ids[FIRM_SERIOUS], "--reason", "异议", "--on", "2025-10-21")
    answer = run(cli, "screen", FIRM_SERIOUS, "--action", "public_procurement", "--as-of", "2025-10-25")
    assert answer["decision"] == "deny" and all("suspended" not in m for m in answer["measures"])


def test_notices_follow_the_lists_repair_flags(cli, tmp_path):
    ids = build_world(cli, tmp_path)
    court = {n["language"]: n["text"] for n in show(cli, ids[FIRM_DEBTOR])["notices"]}["zh"]
    assert "信用承诺" not in court and "证明材料" in court and "列入满 0" not in court
    serious = {n["language"]: n["text"] for n in show(cli, ids[FIRM_SERIOUS])["notices"]}["zh"]
    assert "信用承诺" in serious and "列入满 12 个月" in serious
    english = run(cli, "listing", "notify", ids[FIRM_PROPOSED], "--on", "2025-10-21", "--language", "en",
                  "--reason", "served")["notice"]
    assert "After 12 months" in english and "credit commitment" in english


def test_end_reason_in_listing_list_and_the_change_feed(cli, tmp_path):
    ids = build_world(cli, tmp_path)
    run(cli, "listing", "end", ids[PERSON], "--reason", "creditor_request", "--on", "2025-11-03")
    rows = {row["id"]: row for row in run(cli, "listing", "list")}
    assert rows[ids[PERSON]]["end_reason"] == "performed" and rows[ids[FIRM_SERIOUS]]["end_reason"] is None
    screen_key = json.loads(cli("authority", "key", "create", "procurement_centre", "--scopes", "screen",
                                "--json").stdout)["key"]
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:
        changes = http.get("/v1/changes", params={"since": 0}, headers={"X-API-Key": screen_key}).json()["changes"]
    ended = [c for c in changes if c["listing"] == ids[PERSON] and c["to"] == "repaired"]
    assert [c["end_reason"] for c in ended] == ["performed"]
    assert all(c["end_reason"] is None for c in changes if c["to"] == "effective")


def test_objection_file_and_repair_apply_keep_their_json(cli, tmp_path):
    ids = build_world(cli, tmp_path)
    commitment, proof = files(tmp_path)
    applied = run(cli, "repair", "apply", ids[FIRM_DEBTOR], "--commitment", commitment, "--evidence", proof,
                  "--on", "2025-10-21")
    assert isinstance(applied["repair"], int) and applied["listing"] == ids[FIRM_DEBTOR]
    assert isinstance(run(cli, "objection", "file", "--listing", ids[FIRM_SERIOUS], "--reason", "x",
                          "--on", "2025-10-21")["objection"], int)
    assert "one listing" in refused(cli, "repair", "apply", ids[FIRM_DEBTOR], "--record", "samr:x",
                                    "--commitment", commitment)


# -- the console: the authority of the signed-in key --------------------------------------------------

def _console(base: str, secret: str, language: str = "en"):
    from websession import WebSession, text_of

    web = WebSession(base, language)
    web.get("/console")
    page = web.post("/console/sign-in", {"api_key": secret})
    assert page.status_code == 200 and page.url.path == "/console", text_of(page.text)[:400]
    return web


def _key(cli, authority: str) -> str:
    return json.loads(cli("authority", "key", "create", authority, "--scopes", "operate", "--json").stdout)["key"]


def test_the_console_decides_as_the_keys_authority_and_refuses_another(cli, db_url, tmp_path):
    ids = build_world(cli, tmp_path)
    serious = ids[FIRM_SERIOUS]
    objection = run(cli, "objection", "file", "--listing", serious, "--reason", "处罚已撤销", "--on",
                    "2025-10-21")["objection"]
    late = run(cli, "objection", "file", "--listing", ids[PERSON], "--reason", "已和解", "--on",
               "2025-10-21")["objection"]
    with serving(db_url) as base:
        tax = _console(base, _key(cli, "tax"), "zh")
        page = tax.post(f"/console/objections/{objection}", {"decision": "uphold", "reason": "异议成立"})
        assert page.status_code == 403 and "此步骤只能由作出列入的部门或复核部门办理" in page.text and "tax" in page.text
        assert show(cli, serious)["state"] == "under_review"
        samr = _console(base, _key(cli, "samr"))
        samr.post(f"/console/objections/{objection}", {"decision": "uphold", "reason": "异议成立"})
        assert show(cli, serious)["state"] == "withdrawn"
        assert show(cli, serious)["transitions"][-1]["authority"] == "samr"
        assert f"({PACK.authority('samr').names.en})" in samr.get(f"/console/listings/{serious}").text
        overdue = samr.get("/console/overdue")
        assert overdue.status_code == 200 and f'data-kind="objection" data-id="{late}"' in overdue.text
        assert f'data-id="{objection}"' not in overdue.text  # decided
        assert "Overdue cases" in overdue.text
        assert "逾期案件" in tax.get("/console/overdue").text


def test_bulk_reminders_in_the_console(cli, db_url, tmp_path):
    build_world(cli, tmp_path)
    first, second = _two_more_debtors(cli, tmp_path)
    with serving(db_url) as base:
        samr = _console(base, _key(cli, "samr"))
        page = samr.get("/console/listings?state=proposed&list=court_defaulters")
        assert 'action="/console/listings/bulk"' in page.text
        refused_page = samr.post("/console/listings/bulk", {"list": "court_defaulters", "step": "remind",
                                                            "reason": "提醒"})
        assert refused_page.status_code == 403
        court = _console(base, _key(cli, "court"))
        court.get("/console/listings?state=proposed&list=court_defaulters")
        page = court.post("/console/listings/bulk", {"list": "court_defaulters", "step": "remind", "reason": "第一次提醒",
                                                     "limit": ""})
        assert page.status_code == 200 and "2 of 2 listings done, 0 skipped." in page.text
        page = court.post("/console/listings/bulk", {"list": "court_defaulters", "step": "notify", "reason": "送达",
                                                     "limit": "1"})
        assert "0 of 1 listings done, 1 skipped." in page.text and f"Listing {first} skipped" in page.text
    assert [len(show(cli, listing)["reminders"]) for listing in (first, second)] == [1, 1]


# -- the pure core ----------------------------------------------------------------------------------

def test_decide_suspends_a_denying_measure_only_on_suspending_lists_while_the_objection_is_open():
    from xinyong.domain.decisions import Bearing, ListingView, decide, measures_for

    listing = ListingView(1, "K", "serious_dishonesty", ((dt.date(2025, 10, 1), "effective"),),
                          dt.date(2025, 10, 1), None, None, (), ((7, dt.date(2025, 10, 21), dt.date(2025, 11, 3)),))
    measures = measures_for(PACK, "public_procurement")
    for day, suspending, expected in ((dt.date(2025, 10, 25), frozenset({"serious_dishonesty"}), "conditions"),
                                      (dt.date(2025, 10, 25), frozenset(), "deny"),
                                      (dt.date(2025, 10, 20), frozenset({"serious_dishonesty"}), "deny"),
                                      (dt.date(2025, 11, 3), frozenset({"serious_dishonesty"}), "deny")):
        decision = decide(measures, "public_procurement", day, [Bearing(listing)], suspending)
        assert decision.decision == expected, (day, suspending)
        assert (decision.measures[0].suspended is not None) == (expected == "conditions")
    decision = decide(measures, "public_procurement", dt.date(2025, 10, 25), [Bearing(listing)],
                      frozenset({"serious_dishonesty"}))
    assert decision.measures[0].suspended == {"objection": 7, "filed_on": dt.date(2025, 10, 21)}


def test_deciding_authority_is_the_cases_own_or_the_reviewing_one():
    from xinyong.services.lists.due_process import AuthorityRefused, deciding_authority

    assert deciding_authority(PACK, "samr", None) == "samr"
    assert deciding_authority(PACK, "samr", "samr") == "samr"
    assert deciding_authority(PACK, "samr", PACK.reviewing_authority) == "ndrc"
    for other in ("court", "tax", "nobody", ""):
        try:
            deciding_authority(PACK, "samr", other)
        except AuthorityRefused as exc:
            assert "\n" not in str(exc)
        else:
            raise AssertionError(f"{other!r} was allowed to decide for samr")


def test_repair_deadlines_count_working_days_from_the_right_date():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from xinyong.services.lists.due_process import repair_deadlines

    calendar = Calendar(PACK.calendar)
    record_repair = PACK.category("penalty").repair  # an answer step, then a decision
    court_repair = PACK.list_("court_defaulters").repair  # no answer step: the decision runs from the application
    days = st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2027, 12, 31))

    @settings(max_examples=200, deadline=None)
    @given(applied=days, wait=st.integers(min_value=0, max_value=40))
    def check(applied: dt.date, wait: int) -> None:
        accepted = applied + dt.timedelta(days=wait)
        answer, decision = repair_deadlines(PACK, record_repair, applied, None)
        assert decision is None and answer == calendar.add_working_days(applied, 2) and answer > applied
        assert calendar.is_working_day(answer)
        answer, decision = repair_deadlines(PACK, record_repair, applied, accepted)
        assert decision == calendar.add_working_days(accepted, 5) and decision > accepted
        answer, decision = repair_deadlines(PACK, court_repair, applied, None)
        assert answer is None and decision == calendar.add_working_days(applied, 3)

    check()
