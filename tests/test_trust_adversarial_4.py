"""Due process and the listing life cycle, probed as an unlucky subject and as an attacker would,
with hand-made inputs: real public company names, codes with valid check characters. Each test is
a defect found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import time_machine

from test_trust_adversarial import COURT_HEADERS, NAMES, XIAOMI, court_row
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

