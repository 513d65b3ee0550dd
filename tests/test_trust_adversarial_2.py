"""The platform's promises to subjects, probed a second time with hand-made inputs the demo never
sends: real public company names, codes with valid check characters. Each test is a defect found
and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import time_machine
from fastapi.testclient import TestClient

from test_trust_adversarial import PINGAN, TODAY, WANG, XIAOMI, listed_world
from worlds import run
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.store.db import open_engine


def screened(cli, identifier: str, as_of: str, action: str = "bidding") -> tuple[str, list[int]]:
    answer = json.loads(cli("screen", identifier, "--action", action, "--as-of", as_of, "--json").stdout)
    return answer["decision"], [measure["listing"]["id"] for measure in answer["measures"]]


def test_an_undone_listing_binds_on_no_day_screening_asks_about(cli, tmp_path: Path) -> None:
    """中国平安's listing was withdrawn on an upheld objection (the debtor was another firm) and
    小米's when the court revoked its case: both undone, never shown in any history. Screened as of
    a day before (a tender decided then, checked again), both answered `deny` under the undone
    listing. A listing that ended by performance (王建国) did bind on its days, and still says so."""
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        objection = run(cli, "objection", "file", "--listing", ids[PINGAN], "--reason", "not our case",
                        "--on", "2026-11-01")
        run(cli, "objection", "decide", objection["objection"], "--uphold", "--on", "2026-11-03",
            "--reason", "the debtor is another firm")
        run(cli, "record", "revoke", f"court:（2026）京0108执200号#{XIAOMI}", "--on", "2026-11-03",
            "--reason", "annulled on appeal")
        run(cli, "listing", "end", ids[WANG], "--reason", "performed", "--on", "2026-11-02")
        assert {code: run(cli, "listing", "show", ids[code])["end_reason"] for code in ids} == {
            PINGAN: "withdrawn_objection", XIAOMI: "withdrawn_record", WANG: "performed"}
        for day in ("2026-10-31", "2026-11-02", "2026-11-05"):
            assert screened(cli, PINGAN, day) == ("allow", []), day
            assert screened(cli, XIAOMI, day) == ("allow", []), day
        assert screened(cli, WANG, "2026-10-31") == ("deny", [ids[WANG]])
        assert screened(cli, WANG, "2026-11-05") == ("allow", [])
        key = run(cli, "authority", "key", "create", "procurement_centre", "--scopes", "screen")["key"]
        engine = open_engine(cli.url)
        try:  # the API answers from the same index
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                answer = http.post("/v1/screen", headers={"X-API-Key": key},
                                   json={"identifier": PINGAN, "action": "bidding", "as_of": "2026-10-31",
                                         "purpose": "procurement_review"}).json()
                assert (answer["decision"], answer["measures"]) == ("allow", []), answer
        finally:
            engine.dispose()

