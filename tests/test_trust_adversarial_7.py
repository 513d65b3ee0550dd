"""One truth across surfaces: a listing's state on a day, read through every surface that shows it
(the change feed a consumer mirrors, `listing show`, screening), probed with hand-made inputs: real
public company names, codes with valid check characters, unusual life cycles. Each test is a
disagreement found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import func, select

from test_trust_adversarial import COURT_HEADERS, NAMES, PINGAN, TODAY, XIAOMI, court_row, listed_world
from test_trust_adversarial_2 import screened
from worlds import run, write_csv
from xinyong.domain.pack import load_pack
from xinyong.services.publication.lists import changes
from xinyong.services.publication.subjects import object_as_subject
from xinyong.store import tables as t
from xinyong.store.db import open_engine

MIRRORED = ("state", "effective_from", "effective_to", "end_reason")


class Mirror:
    """A bank's copy of the listings that bind, kept in sync from `/v1/changes` by its cursor."""

    def __init__(self, url: str):
        self.url, self.cursor, self.listings = url, 0, {}

    def sync(self) -> None:
        engine = open_engine(self.url)
        try:
            page = changes(engine, load_pack("cn"), self.cursor, 1000)
        finally:
            engine.dispose()
        for item in page["changes"]:
            self.listings[item["listing"]] = {"state": item["to"], **{k: _text(item[k]) for k in MIRRORED[1:]}}
        self.cursor = page["next"]


def _text(value: object) -> object:
    """As the API's JSON writes it."""
    return value.isoformat() if isinstance(value, dt.date) else value


def shown(cli, listing: int) -> dict:
    row = run(cli, "listing", "show", listing)
    return {k: row[k] for k in MIRRORED}


def test_a_consumer_mirroring_the_change_feed_learns_that_an_upheld_objection_undid_an_ended_listing(
        cli, tmp_path: Path) -> None:
    """小米 objected on 11-01 to its court listing (in force since 10-25); while it was reviewed the court's
    file said 全部履行 and `process` ended it as performed. A bank mirroring `/v1/changes` read that end.
    On 11-10 the objection was upheld: the listing's end became withdrawn_objection (in force on no
    day), but the feed carried nothing after the end, so the bank's copy kept 'performed', a listing
    that bound from 10-25, while `listing show` and screening said it bound on no day."""
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        objection = run(cli, "objection", "file", "--listing", ids[XIAOMI], "--reason", "not our debt",
                        "--on", "2026-11-01")
        paid = court_row("（2026）京0108执200号", NAMES[XIAOMI], XIAOMI)
        cli("ingest", write_csv(tmp_path / "paid.csv", COURT_HEADERS, [[*paid[:4], "全部履行", *paid[5:]]]),
            "--authority", "court", "--category", "court_defaulter")
        assert run(cli, "process")["performed"] == 1
        bank = Mirror(cli.url)
        bank.sync()
        assert bank.listings[ids[XIAOMI]]["end_reason"] == "performed"
        run(cli, "objection", "decide", objection["objection"], "--uphold", "--reason", "another firm's debt")
        bank.sync()
        assert shown(cli, ids[XIAOMI])["end_reason"] == "withdrawn_objection"
        assert bank.listings[ids[XIAOMI]] == shown(cli, ids[XIAOMI])
        assert json.loads(cli("audit", "verify", "--json").stdout)["intact"] is True


def test_a_consumer_mirroring_the_change_feed_learns_of_an_extension(cli, tmp_path: Path) -> None:
    """中国平安's court listing (ground 违反限制消费令: two years, to 2028-10-27) was extended on 11-05 by a
    year, a decision with its own notice. A bank mirroring `/v1/changes` kept the old end: the feed
    carried nothing, so on 2028-11-01 the bank would let 中国平安 bid while screening denies it."""
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        bank = Mirror(cli.url)
        bank.sync()
        assert bank.listings[ids[PINGAN]]["effective_to"] == "2028-10-27"
        run(cli, "listing", "extend", ids[PINGAN], "--years", "1", "--reason", "情节严重，拒不履行",
            "--on", "2026-11-05")
        bank.sync()
        assert shown(cli, ids[PINGAN])["effective_to"] == "2029-10-27"
        assert bank.listings[ids[PINGAN]] == shown(cli, ids[PINGAN])
        assert screened(cli, PINGAN, "2028-11-01") == ("deny", [ids[PINGAN]])
        assert json.loads(cli("audit", "verify", "--json").stdout)["intact"] is True


@pytest.mark.parametrize("objected", ["record", "listing"])
def test_an_objection_a_review_upholds_undoes_a_listing_that_ended_while_it_was_reviewed(
        cli, tmp_path: Path, objected: str) -> None:
    """小米 objected in its portal on 11-01 to the court's record behind its listing (in force since
    10-25): not its debt.
    While under review the court's file said 全部履行 and `process` ended it as performed. The
    reviewer then moved the court's record away from 小米 (`review reject`), which upheld the
    objection, but the listing stayed one that bound (performed): screened as of 10-30 小米 was
    denied, its file showed the listing in its history, while the same objection upheld by
    `objection decide` would have undone it (withdrawn_objection, bound on no day). Objecting to
    the listing itself instead, the move left the objection open, pending in 小米's portal."""
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        engine, pack = open_engine(cli.url), load_pack("cn")
        try:
            with engine.connect() as c:
                court = c.execute(select(t.records.c.id).where(
                    t.records.c.record_key == f"court:（2026）京0108执200号#{XIAOMI}")).scalar_one()
            filed = object_as_subject(engine, pack, XIAOMI, reason="不是本公司的债务", on=dt.date(2026, 11, 1),
                                      **({"record_id": court} if objected == "record" else {"listing_id": ids[XIAOMI]}))
            assert run(cli, "listing", "show", ids[XIAOMI])["state"] == "under_review"
            paid = court_row("（2026）京0108执200号", NAMES[XIAOMI], XIAOMI)
            cli("ingest", write_csv(tmp_path / "paid.csv", COURT_HEADERS, [[*paid[:4], "全部履行", *paid[5:]]]),
                "--authority", "court", "--category", "court_defaulter")
            run(cli, "resolve")
            assert run(cli, "process")["performed"] == 1
            bank = Mirror(cli.url)
            bank.sync()
            with engine.connect() as c:
                record = c.execute(select(func.max(t.records.c.id)).where(
                    t.records.c.record_key == f"court:（2026）京0108执200号#{XIAOMI}")).scalar_one()
            moved = run(cli, "review", "reject", str(record), "--entity", XIAOMI, "--reason", "另一家公司的债务")
            assert moved["objections_upheld"] == [filed["objection"]]
            assert run(cli, "listing", "show", ids[XIAOMI])["end_reason"] == "withdrawn_objection"
            assert screened(cli, XIAOMI, "2026-10-30", "public_procurement") == ("allow", [])
            bank.sync()
            assert bank.listings[ids[XIAOMI]] == shown(cli, ids[XIAOMI])
            assert json.loads(cli("audit", "verify", "--json").stdout)["intact"] is True
        finally:
            engine.dispose()
