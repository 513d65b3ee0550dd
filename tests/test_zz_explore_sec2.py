import datetime as dt, json, re
from pathlib import Path
import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select
from test_trust_adversarial import COURT_HEADERS, NAMES, TODAY, XIAOMI, PINGAN, WANG, court_row, listed_world
from worlds import run, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.store import tables as t
from xinyong.store.db import open_engine

LI = "110101199003077774"

@pytest.mark.parametrize("mark", ["\u200e", "\u202a", "\u00ad"])
def test_explore(cli, tmp_path: Path, mark) -> None:
    code = (mark + LI + "\u202c") if mark == "\u202a" else (LI + mark if mark == "\u200e" else LI[:10] + mark + LI[10:])
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        court = write_csv(tmp_path / "court2.csv", COURT_HEADERS, [court_row("（2026）粤0305执102号", "赵六", code, "深圳市南山区人民法院")])
        print(cli("ingest", court, "--authority", "court", "--category", "court_defaulter").stdout)
        run(cli, "resolve")
        run(cli, "evaluate", "--as-of", "2026-10-10")
        engine = open_engine(cli.url)
        with engine.connect() as c:
            for r in c.execute(select(t.records.c.record_key, t.records.c.subject_code, t.records.c.subject_scheme, t.records.c.subject_kind).where(t.records.c.subject_name=="赵六")):
                print(repr(tuple(r)))
            for r in c.execute(select(t.entity_identifiers.c.scheme, t.entity_identifiers.c.value, t.entity_identifiers.c.verified)):
                print(repr(tuple(r)))
        ls = run(cli, "listing", "list", "--list", "court_defaulters")
        print([ (l["id"], l["entity"], l["state"]) for l in ls])
        lid = max(l["id"] for l in ls)
        for day in ("2026-10-11", "2026-10-12", "2026-10-13"):
            cli("listing", "remind", lid, "--on", day, "--actor", "clerk", "--reason", "reminder")
        cli("listing", "notify", lid, "--on", "2026-10-14", "--actor", "officer", "--reason", "served")
        run(cli, "process", "--as-of", "2026-10-30")
        pkey = run(cli, "listing", "show", lid)["entity"]
        with TestClient(create_app(engine, load_pack("cn"))) as http:
            for path in (f"/entities/{pkey}", f"/v1/entities/{pkey}", "/v1/lists/court_defaulters", "/v1/lists/court_defaulters/export.csv", "/search?q=赵六"):
                r = http.get(path)
                print(path, r.status_code, "LEAK" if "03077774" in r.text else "ok")
        engine.dispose()
    assert False
