"""A listing on two penalties within a year, and one of them re-sent with its text reworded a year
later: `process` re-reads a listing's evidence in its newest versions (a court's version saying
security was given withdraws it) and judged the reworded one as of the day it arrived, when the
year of the rule's window was over, so the listing was withdrawn ("no longer meets its rule") though
nothing the rule reads had changed. The rule is read as of the day the listing was proposed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import time_machine
from test_trust_adversarial_13 import HEADERS, MEITUAN, NAMES, _penalty, _registered, _two_penalty_pack

from worlds import run, write_csv

PROPOSED = dt.datetime(2026, 11, 10, 4, 0, tzinfo=dt.timezone.utc)  # midday in Asia/Shanghai
A_YEAR_ON = dt.datetime(2027, 11, 10, 4, 0, tzinfo=dt.timezone.utc)


def test_a_penalty_re_sent_reworded_after_the_rules_window_keeps_the_listing(cli, tmp_path: Path) -> None:
    with time_machine.travel(PROPOSED, tick=False):
        cli("init", "--pack", _two_penalty_pack(tmp_path))
        _registered(cli, tmp_path)
        cli("ingest", write_csv(tmp_path / "penalties.csv", HEADERS, [
            _penalty("京市监罚〔2026〕30号", MEITUAN), _penalty("京市监罚〔2026〕31号", MEITUAN)]),
            "--authority", "samr", "--category", "penalty")
        run(cli, "resolve")
        assert run(cli, "evaluate", "--as-of", "2026-10-10")["per_list"]["serious_dishonesty"] == 1
        (listing,) = run(cli, "listing", "list", "--entity", MEITUAN)
        run(cli, "listing", "notify", listing["id"], "--on", "2026-10-12", "--actor", "officer", "--reason", "served")
        run(cli, "process")
        assert run(cli, "listing", "show", listing["id"])["state"] == "effective"
    with time_machine.travel(A_YEAR_ON, tick=False):
        reworded = write_csv(tmp_path / "reworded.csv", [*HEADERS, "处罚内容"], [
            [*_penalty("京市监罚〔2026〕30号", MEITUAN), f"对{NAMES[MEITUAN]}处以罚款"]])
        assert run(cli, "ingest", reworded, "--authority", "samr", "--category", "penalty")["new_versions"] == 1
        run(cli, "resolve")
        run(cli, "process")
        after = run(cli, "listing", "show", listing["id"])
        assert (after["state"], after["end_reason"]) == ("effective", None), after
