"""One decision stored under two writings of its number: the court's two systems export the case
as （2026）京0108执200号 and as (2026)京0108执200号, so the store holds two records of 小米's one case.
When the court annulled the case, `record revoke` revoked the key it was given and the listing
built on it was withdrawn, but the other writing stayed active: 小米's public file (page and
`/v1/entities`) went on showing it as a judgment defaulter, 全部未履行, on the annulled case. Now a
revocation takes the same decision's other writings about the same subject with it (SQLite and
PostgreSQL); a co-debtor of the same case keeps its own record and listing."""

from __future__ import annotations

from pathlib import Path

import time_machine
from fastapi.testclient import TestClient

from test_trust_adversarial import COURT_HEADERS, NAMES, PINGAN, TODAY, XIAOMI, court_row, listed_world
from worlds import run, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.store.db import open_engine

CASE = "（2026）京0108执200号"


def test_revoking_a_decision_revokes_its_other_writings_of_the_same_subject(cli, tmp_path: Path) -> None:
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        again = write_csv(tmp_path / "court-system-2.csv", COURT_HEADERS, [
            court_row("(2026)京0108执200号", NAMES[XIAOMI], XIAOMI),  # half-width brackets
            court_row("(2026)京0108执 200号", NAMES[PINGAN], PINGAN),  # a co-debtor of the case: its own record
        ])
        cli("ingest", again, "--authority", "court", "--category", "court_defaulter")
        run(cli, "resolve")
        revoked = run(cli, "record", "revoke", f"court:{CASE}#{XIAOMI}", "--on", "2026-11-05", "--actor", "clerk",
                      "--reason", "case annulled on retrial")
        assert revoked["listings_withdrawn"] == [ids[XIAOMI]]
        assert revoked["same_decision_revoked"] == [f"court:(2026)京0108执200号#{XIAOMI}"]
        for full in ((), ("--full",)):
            assert run(cli, "evaluate", "--as-of", "2026-11-06", *full)["per_list"]["court_defaulters"] == 0
        assert [row["state"] for row in run(cli, "listing", "list", "--entity", XIAOMI)] == ["withdrawn"]
        assert [row["state"] for row in run(cli, "listing", "list", "--entity", PINGAN)] == ["effective"]
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                records = http.get(f"/v1/entities/{XIAOMI}").json()["records"]
                assert [r["record_key"] for r in records if r["category"] == "court_defaulter"] == []
                assert "京0108执200号" not in http.get(f"/entities/{XIAOMI}").text
        finally:
            engine.dispose()
        verified = run(cli, "audit", "verify")
        assert verified["intact"] is True
