"""Due process probed as an unlucky subject and a hurried authority: objections and repairs that
meet a revocation or a correction, steps taken on listings that have ended. Real public firm
names, codes with valid check characters. Each test is a defect found and fixed (on SQLite and
PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from test_trust_adversarial import COURT_HEADERS, NAMES, TODAY, WANG, XIAOMI, court_row
from worlds import run, write_csv
from xinyong.domain.pack import load_pack
from xinyong.services.publication.subjects import SubjectError, object_as_subject
from xinyong.store import tables as t
from xinyong.store.db import open_engine

CASE = f"court:（2026）京0108执200号#{XIAOMI}"


def _notified(cli, folder: Path) -> int:
    """小米 on the court's list, notified on 2026-10-14 (window to 2026-10-24); its listing id."""
    register = write_csv(folder / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "成立日期", "登记状态"],
                         [[code, name, "有限责任公司", "2010-03-03", "存续"] for code, name in NAMES.items()])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    court = write_csv(folder / "court.csv", COURT_HEADERS, [court_row("（2026）京0108执200号", NAMES[XIAOMI], XIAOMI)])
    cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    run(cli, "evaluate", "--as-of", "2026-10-10")
    listing = run(cli, "listing", "list", "--entity", XIAOMI)[0]["id"]
    cli("listing", "notify", listing, "--on", "2026-10-14", "--actor", "officer", "--reason", "served")
    return listing


def _cases(cli) -> list[tuple[int, str]]:
    """Every objection and its state, as the subject's file and the console show them."""
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            return [tuple(row) for row in c.execute(select(t.objections.c.id, t.objections.c.state)
                                                    .order_by(t.objections.c.id))]
    finally:
        engine.dispose()


@pytest.mark.parametrize("target", ["listing", "record"])
def test_an_objection_answered_by_a_revocation_is_upheld_and_can_no_longer_be_rejected(cli, tmp_path: Path,
                                                                                        target: str) -> None:
    """小米 objected (to its listing, or to the court's record) within the window; the court then
    annulled its case (`record revoke`) and the listing was withdrawn. The objection stayed open: on
    the overdue list, and the court could still reject it, so 小米's own file showed its objection
    rejected beside a listing that never bound (or a record revoked). Now the revocation upholds it,
    dated that day, and a decision after it is refused."""
    with time_machine.travel(TODAY, tick=False):
        listing = _notified(cli, tmp_path)
        where = ("--listing", listing) if target == "listing" else ("--record", CASE)
        objection = run(cli, "objection", "file", *where, "--reason", "已全部履行", "--on", "2026-10-15")["objection"]
        run(cli, "record", "revoke", CASE, "--on", "2026-10-16", "--actor", "court", "--reason", "annulled")
        assert _cases(cli) == [(objection, "upheld")]
        shown = run(cli, "listing", "show", listing)
        assert (shown["state"], shown["end_reason"]) == ("withdrawn", "withdrawn_record")
        if target == "listing":
            assert [(o["state"], o["decided_on"]) for o in shown["objections"]] == [("upheld", "2026-10-16")]
        refused = cli("objection", "decide", objection, "--reject", "--on", "2026-10-17", "--reason", "no proof",
                      ok=False)
        assert refused.exit_code == 1 and "already upheld" in refused.output
        assert _cases(cli) == [(objection, "upheld")]
        assert run(cli, "overdue") == []
        assert cli("audit", "verify").exit_code == 0


def test_an_objection_to_a_listing_withdrawn_by_a_correction_is_upheld(cli, tmp_path: Path) -> None:
    """The court corrected its record (`record correct`: 小米 had given security) while 小米's
    objection to the listing built on it was open: the listing was withdrawn, the objection stayed
    open for the court to reject."""
    with time_machine.travel(TODAY, tick=False):
        listing = _notified(cli, tmp_path)
        objection = run(cli, "objection", "file", "--listing", listing, "--reason", "已提供担保",
                        "--on", "2026-10-15")["objection"]
        (tmp_path / "fix.json").write_text('{"security": "已提供充分担保"}', encoding="utf-8")
        corrected = run(cli, "record", "correct", CASE, "--file", tmp_path / "fix.json", "--on", "2026-10-18",
                        "--reason", "security given")
        assert corrected["listings_withdrawn"] == [listing]
        assert _cases(cli) == [(objection, "upheld")]
        assert "already upheld" in cli("objection", "decide", objection, "--reject", "--on", "2026-10-19",
                                       "--reason", "no", ok=False).output


def test_no_objection_is_filed_against_a_withdrawn_listing_or_a_revoked_record(cli, tmp_path: Path) -> None:
    """The portal offers no objection to a listing withdrawn, but its form posted one all the same (a
    page opened before the withdrawal), as `objection file` did, and to a revoked record: an open case
    the court could only reject (小米's file: "rejected"), or uphold to no effect. Now refused."""
    with time_machine.travel(TODAY, tick=False):
        listing = _notified(cli, tmp_path)
        run(cli, "record", "revoke", CASE, "--on", "2026-10-16", "--actor", "court", "--reason", "annulled")
        refused = cli("objection", "file", "--listing", listing, "--reason", "不服", "--on", "2026-10-17", ok=False)
        assert refused.exit_code == 1 and "was withdrawn (withdrawn_record)" in refused.output
        refused = cli("objection", "file", "--record", CASE, "--reason", "不服", "--on", "2026-10-17", ok=False)
        assert refused.exit_code == 1 and "is revoked" in refused.output
        engine = open_engine(cli.url)
        try:
            with pytest.raises(SubjectError, match="binds on no day"):
                object_as_subject(engine, load_pack("cn"), XIAOMI, listing_id=listing, reason="不服",
                                  on=dt.date(2026, 10, 17))
        finally:
            engine.dispose()
        assert _cases(cli) == []


def test_no_reminder_or_notice_is_served_for_a_debt_the_court_since_recorded_as_paid(cli, tmp_path: Path) -> None:
    """Proposed for the court's list, 小米 and 王建国 paid; the court's next file said so (全部履行).
    Before any `process`, the officer's bulk notice served 小米 a notice of listing for the paid debt
    and the clerk gave 王建国 a formal reminder: neither step looked at what the newer version had
    ended (the next `process` withdrew both as performed, notice and reminder already served). Now
    each step first applies what was due, and refuses a listing that has ended."""
    with time_machine.travel(TODAY, tick=False):
        register = write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "成立日期", "登记状态"],
                             [[XIAOMI, NAMES[XIAOMI], "有限责任公司", "2010-03-03", "存续"]])
        cli("ingest", register, "--authority", "samr", "--category", "registration")
        cases = [court_row("（2026）京0108执200号", NAMES[XIAOMI], XIAOMI),
                 court_row("（2026）粤0305执100号", "王建国", WANG, "深圳市南山区人民法院")]
        cli("ingest", write_csv(tmp_path / "court.csv", COURT_HEADERS, cases), "--authority", "court",
            "--category", "court_defaulter")
        run(cli, "resolve")
        run(cli, "evaluate", "--as-of", "2026-10-10")
        ids = {code: run(cli, "listing", "list", "--entity", code)[0]["id"] for code in (XIAOMI, WANG)}
        cli("listing", "remind", ids[WANG], "--on", "2026-10-11", "--actor", "clerk", "--reason", "first reminder")
        paid = [[*row[:4], "全部履行", *row[5:]] for row in cases]
        cli("ingest", write_csv(tmp_path / "paid.csv", COURT_HEADERS, paid), "--authority", "court",
            "--category", "court_defaulter")
        run(cli, "resolve")
        refused = cli("listing", "remind", ids[WANG], "--on", "2026-11-10", "--actor", "clerk", "--reason", "second",
                      ok=False)
        assert refused.exit_code == 1 and "(performed): no reminder is served" in refused.output
        bulk = run(cli, "listing", "notify", "--list", "court_defaulters", "--state", "proposed", "--on", "2026-11-10",
                   "--actor", "officer", "--reason", "rule met")
        assert bulk["done"] == []
        assert [(item["listing"], "(performed): no notice is served" in item["reason"]) for item in bulk["skipped"]] \
            == [(ids[XIAOMI], True), (ids[WANG], True)]
        for listing in ids.values():
            shown = run(cli, "listing", "show", listing)
            assert (shown["notices"], len(shown["reminders"])) == ([], 1 if listing == ids[WANG] else 0)
        run(cli, "process", "--as-of", "2026-11-10")
        assert {run(cli, "listing", "show", listing)["end_reason"] for listing in ids.values()} == {"performed"}


@pytest.mark.parametrize("upheld", ["listing", "record"])
def test_an_objection_upheld_answers_the_other_objections_to_what_it_undid(cli, tmp_path: Path, upheld: str) -> None:
    """小米 objected twice to its listing (itself, then its lawyer) and once to the court's record. The
    court upheld one: the listing was withdrawn, and the others stayed open, to be rejected after
    ("rejected" beside a listing that never bound, in 小米's own file). Now an upheld objection
    upholds the open ones to the listings it undid and, upheld against the record (revoked), those to
    the record; an objection to the record stays open when only the listing was undone (the record
    still stands)."""
    with time_machine.travel(TODAY, tick=False):
        listing = _notified(cli, tmp_path)
        first, second = (run(cli, "objection", "file", "--listing", listing, "--reason", reason, "--on", "2026-10-15")
                         ["objection"] for reason in ("已全部履行", "律师代理：已全部履行"))
        on_record = run(cli, "objection", "file", "--record", CASE, "--reason", "案件已撤销", "--on", "2026-10-16")["objection"]
        run(cli, "objection", "decide", first if upheld == "listing" else on_record, "--uphold", "--on", "2026-10-18",
            "--reason", "receipt of payment")
        assert run(cli, "listing", "show", listing)["end_reason"] == "withdrawn_objection"
        expected = {first: "upheld", second: "upheld", on_record: "open" if upheld == "listing" else "upheld"}
        assert dict(_cases(cli)) == expected
        refused = cli("objection", "decide", second, "--reject", "--on", "2026-10-19", "--reason", "no", ok=False)
        assert refused.exit_code == 1 and "already upheld" in refused.output
        assert cli("audit", "verify").exit_code == 0
