"""Bulk open data (`xinyong publish`): the dump shows exactly what the public pages show.

On the demo (SQLite and PostgreSQL): every entity's public file (`GET /v1/entities/{key}`, the
data of its page) against the rows of the dump read back from each format (JSON Lines, CSV,
Parquet); then changes made with the CLI (a record revoked, a person's listing ended, a new
penalty) and a second publish, whose delta must carry them as add, change and delete rows and
whose full dump must again match the pages; then `serve --data-dir` with ETags.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, select

from conftest import PG_ADMIN_URL, Cli, pg_database
from worlds import serving
from xinyong.domain.csvsafe import restore
from xinyong.store import tables as t
from xinyong.store.db import open_engine

NESTED = {"names", "identifiers", "evidence", "fields"}
FORMATS = ("jsonl", "csv", "parquet")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp(f"opendata-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'demo.db'}"
        yield _build(url, folder)
        return
    if not request.getfixturevalue("pg_available"):
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}")
    with pytest.MonkeyPatch.context() as mp, pg_database() as url:
        mp.setenv("XINYONG_AUDIT_DIR", str(folder / "audit"))
        yield _build(url, folder)


def _build(url: str, folder: Path) -> dict[str, Any]:
    cli = Cli(url)
    cli("demo", "--no-serve", "--entities", "200", "--seed", "5", "--out", str(folder / "demo"))
    tour = dict(line.split("=", 1) for line in (folder / "demo" / "tour.env").read_text().splitlines()
                if "=" in line and not line.startswith("#"))
    return {"url": url, "cli": cli, "folder": folder, "tour": {k: v.strip("'") for k, v in tour.items()}}


def read_format(folder: Path, table: str, fmt: str) -> list[dict[str, Any]]:
    path = folder / f"{table}.{fmt}"
    if fmt == "jsonl":
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
    if fmt == "parquet":
        rows = pq.read_table(path).to_pylist()
    else:
        reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig")))
        header = next(reader)
        rows = [dict(zip(header, restore(row))) for row in reader]
    out = []
    for row in rows:
        clean = {}
        for k, v in row.items():
            if fmt == "csv":
                v = None if v == "" else ({"true": True, "false": False}.get(v, v))
                if k in ("listing", "version") and v is not None:
                    v = int(v)
            if k in NESTED and isinstance(v, str):
                v = json.loads(v)
            if hasattr(v, "isoformat"):
                v = v.isoformat()
            clean[k] = v
        out.append(clean)
    return out


def read_dump(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Each table from JSON Lines, checked equal to the CSV and Parquet copies."""
    tables = {}
    for table in ("entities", "listings", "records"):
        rows = read_format(folder, table, "jsonl")
        for fmt in ("csv", "parquet"):
            other = read_format(folder, table, fmt)
            assert len(other) == len(rows), (table, fmt)
            for a, b in zip(rows, other):
                assert {k: v for k, v in a.items()} == {k: v for k, v in b.items()}, (table, fmt, a, b)
        tables[table] = rows
    return tables


def page_facts(data: dict[str, Any]) -> dict[str, Any]:
    """What the entity's public file shows, in the dump's terms (written here, not by the code under test)."""
    identity = {k: data[k] for k in ("kind", "name", "verified", "status", "region", "established", "address",
                                     "legal_representative", "names", "identifiers")}
    in_force = sorted((item["id"], item["list"], item["state"], item["effective_from"], item["effective_to"],
                       item["ended_on"], item["rule_version"], item["legal_basis"], tuple(item["evidence"]))
                      for item in data["listings"])
    history = sorted((item["list"], item["effective_from"], item["effective_to"], item["ended_on"], item["end_reason"])
                     for item in data["listing_history"])
    records = sorted((r["record_key"], r["version"], r["category"], r["authority"], r["status"], r["decision_date"],
                      r["publicity_ends"], r["publicity_tier"], json.dumps(r["fields"], sort_keys=True))
                     for r in data["records"])
    return {"identity": identity, "in_force": in_force, "history": history, "records": records}


def dump_facts(tables: dict[str, list[dict[str, Any]]], key: str) -> dict[str, Any] | None:
    mine = {table: [row for row in rows if row["entity"] == key] for table, rows in tables.items()}
    if not mine["entities"]:
        assert not mine["listings"] and not mine["records"], key
        return None
    assert len(mine["entities"]) == 1
    identity = {k: v for k, v in mine["entities"][0].items() if k != "entity"}
    in_force = sorted((r["listing"], r["list"], r["state"], r["effective_from"], r["effective_to"], r["ended_on"],
                       r["rule_version"], r["legal_basis"], tuple(r["evidence"]))
                      for r in mine["listings"] if r["in_force"])
    history = sorted((r["list"], r["effective_from"], r["effective_to"], r["ended_on"], r["end_reason"])
                     for r in mine["listings"] if r["history"])
    records = sorted((r["record_key"], r["version"], r["category"], r["authority"], r["status"], r["decision_date"],
                      r["publicity_ends"], r["publicity_tier"], json.dumps(r["fields"], sort_keys=True))
                     for r in mine["records"])
    return {"identity": identity, "in_force": in_force, "history": history, "records": records}


def check_same_facts(base: str, url: str, tables: dict[str, list[dict[str, Any]]]) -> int:
    engine = open_engine(url)
    with engine.connect() as c:
        keys = [k for (k,) in c.execute(select(t.entities.c.key).order_by(t.entities.c.key))]
    engine.dispose()
    public = 0
    with httpx.Client(base_url=base, timeout=60) as client:
        for key in keys:
            answer = client.get(f"/v1/entities/{key}")
            dumped = dump_facts(tables, key)
            if answer.status_code == 404:
                assert dumped is None, f"{key}: in the dump but not public"
                continue
            assert answer.status_code == 200, answer.text
            public += 1
            assert dumped == page_facts(answer.json()), key
            if dumped["records"]:  # the HTML page names the same records
                page = html.unescape(client.get(f"/entities/{key}", params={"lang": "en"}).text)
                for record in dumped["records"]:
                    assert record[0] in page, (key, record[0])
    assert public == len(tables["entities"])
    return public


def test_publish_shows_what_the_pages_show_then_a_delta(demo: dict[str, Any]) -> None:
    cli, folder, url, tour = demo["cli"], demo["folder"], demo["url"], demo["tour"]
    out = folder / "open"
    first = json.loads(cli("publish", "--out", out, "--json").stdout)
    assert first["delta"] is None and first["licence"] and first["attribution"] and "neutralis" in first["csv"]
    for entry in first["files"]:
        path = out / entry["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert entry["format"] in ("jsonl", "csv", "parquet") and entry["rows"] >= 0
    package = json.loads((out / "datapackage.json").read_text())
    assert {r["path"] for r in package["resources"]} == {f["path"] for f in first["files"]}
    assert all(r["schema"]["fields"] for r in package["resources"])
    tables = read_dump(out / "full")
    assert tables["listings"] and tables["records"] and any(r["kind"] == "natural_person" for r in tables["entities"])
    with serving(url, webhooks=False) as base:
        assert check_same_facts(base, url, tables) > 100

    # changes, each by the CLI: a record revoked, a person's listing ended, a new public record
    engine = open_engine(url)
    L, e = t.listings.c, t.entities.c
    with engine.connect() as c:
        person_listing, person = c.execute(select(L.id, e.key).join(t.entities, e.id == L.entity_id)
                                           .where(e.kind == "natural_person", L.state == "effective",
                                                  L.list_code == "court_defaulters").order_by(L.id)).first()
        firm = c.execute(select(e.key).where(e.kind == "enterprise", e.verified.is_(True)).order_by(e.id)).scalar()
        r = t.records.c
        shown = {(row["entity"], row["record_key"]) for row in tables["records"] if row["category"] == "penalty"}
        revoked_key, revoked_entity = next((key, entity) for key, entity, kind in c.execute(
            select(r.record_key, e.key, e.kind).join(t.record_links, t.record_links.c.record_id == r.id)
            .join(t.entities, e.id == t.record_links.c.entity_id).order_by(r.id))
            if (entity, key) in shown and kind != "natural_person" and entity != firm)
    engine.dispose()
    firm_name = next(row["name"] for row in tables["entities"] if row["entity"] == firm)
    cli("record", "revoke", revoked_key, "--actor", "samr", "--reason", "annulled on appeal")
    cli("listing", "end", person_listing, "--reason", "settled", "--actor", "court")
    penalty = folder / "new_penalty.csv"
    penalty.write_text("当事人名称,统一社会信用代码,行政处罚决定书文号,处罚决定日期,处罚类别,罚款金额（万元）,违法事实\n"
                       f"{firm_name},{firm},京市监罚〔2026〕9901号,{tour['TODAY']},罚款,3,=HYPERLINK(\"http://x\")\n",
                       encoding="utf-8")
    cli("ingest", penalty, "--authority", "samr", "--category", "penalty")
    cli("resolve")
    second = json.loads(cli("publish", "--out", out, "--json").stdout)
    assert second["seq"] > first["seq"] and second["delta"] == f"delta/{first['seq']}-{second['seq']}"
    assert second["previous_seq"] == first["seq"]
    delta = read_dump(out / second["delta"])
    ops = {(table, row["op"], row["entity"]) for table, rows in delta.items() for row in rows}
    assert ("entities", "delete", person) in ops  # a person leaving the lists is deleted downstream
    assert ("records", "add", firm) in ops
    assert ("records", "delete", revoked_entity) in ops  # the revoked record is deleted downstream
    assert not any(row["entity"] == person for row in read_dump(out / "full")["entities"])
    # the formula sent in a cell: neutralised in CSV, raw in JSON Lines and Parquet
    raw = (out / "full" / "records.csv").read_text(encoding="utf-8-sig")
    jsonl = (out / "full" / "records.jsonl").read_text()
    assert '=HYPERLINK' in jsonl and "'=HYPERLINK" not in jsonl
    for table in ("entities", "listings", "records"):  # no cell of any CSV starts a formula
        cells = [cell for row in csv.reader(io.StringIO((out / "full" / f"{table}.csv").read_text(encoding="utf-8-sig")))
                 for cell in row]
        assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")], table
    assert "HYPERLINK" in raw
    with serving(url, webhooks=False, data_dir=out) as base:
        check_same_facts(base, url, read_dump(out / "full"))
        # the change feed gives the same events, no key needed
        feed = httpx.get(f"{base}/v1/public/changes", params={"since": first["seq"]}).json()
        assert {ev["entity"] for ev in feed["events"]} >= {person, firm}
        assert feed["next"] == second["seq"]
        # /data/ with ETags
        answer = httpx.get(f"{base}/data/manifest.json")
        assert answer.status_code == 200 and answer.json()["seq"] == second["seq"]
        tag = httpx.get(f"{base}/data/full/records.parquet").headers["etag"]
        again = httpx.get(f"{base}/data/full/records.parquet", headers={"If-None-Match": tag})
        assert again.status_code == 304
        assert httpx.get(f"{base}/data/../{Path(url).name}").status_code == 404


def test_a_persons_past_listing_never_reaches_the_dump_even_where_history_is_public(cli, tmp_path: Path) -> None:
    """Under a pack whose person-covering list has `history_public` (an overlay written here), a
    firm's ended listing stays in full/ as history, but a person's ended listing never does: once no
    list holds them, the person, their listings and their records leave full/, and the delta carries
    each of them as a delete, in JSON Lines, CSV and Parquet alike."""
    from worlds import FIRM_DEBTOR, PERSON, build_world
    from xinyong.store.db import set_setting

    listings = build_world(cli, tmp_path)
    overlay = tmp_path / "history.yaml"
    overlay.write_text("code: cn-history\nversion: '0'\nextends: cn\nlists:\n  - code: court_defaulters\n"
                       "    history_public: true\n", encoding="utf-8")
    engine = open_engine(cli.url)
    with engine.begin() as c:
        assert c.execute(select(t.listings.c.list_code).where(t.listings.c.id == listings[PERSON])).scalar() \
            == "court_defaulters"
        set_setting(c, "pack", str(overlay))
        person = c.execute(select(t.entities.c.key).join(t.entity_identifiers,
                                                          t.entity_identifiers.c.entity_id == t.entities.c.id)
                           .where(t.entity_identifiers.c.value == PERSON)).scalar()
    engine.dispose()
    out = tmp_path / "open"
    first = json.loads(cli("publish", "--out", out, "--json").stdout)
    before = read_dump(out / "full")
    shown = {table: [row for row in rows if row["entity"] == person] for table, rows in before.items()}
    assert shown["entities"] and [row["listing"] for row in shown["listings"]] == [listings[PERSON]]
    assert shown["listings"][0]["in_force"]

    for code in (PERSON, FIRM_DEBTOR):
        cli("listing", "end", listings[code], "--reason", "settled", "--actor", "court")
    second = json.loads(cli("publish", "--out", out, "--json").stdout)
    assert second["delta"] == f"delta/{first['seq']}-{second['seq']}"
    after = read_dump(out / "full")
    history = [row for row in after["listings"] if row["listing"] == listings[FIRM_DEBTOR]]
    assert [(row["in_force"], row["history"], row["ended_on"] is not None) for row in history] == [(False, True, True)]
    for fmt in FORMATS:
        for table in ("entities", "listings", "records"):
            assert not [row for row in read_format(out / "full", table, fmt) if row["entity"] == person], (fmt, table)
        deleted = {table: {(row["op"], row[key]) for row in read_format(out / second["delta"], table, fmt)
                           if row["entity"] == person}
                   for table, key in (("entities", "entity"), ("listings", "listing"), ("records", "record_key"))}
        assert deleted["entities"] == {("delete", person)}, fmt
        assert deleted["listings"] == {("delete", listings[PERSON])}, fmt
        assert {op for op, _ in deleted["records"]} == ({"delete"} if shown["records"] else set()), fmt
        assert len(deleted["records"]) == len(shown["records"]), fmt


def test_a_prefetched_query_reads_every_row_stops_when_its_reader_gives_up_and_hands_on_its_error(
        db_url: str) -> None:
    """The records' query of a dump is read by a thread ahead of the facts (`ReadAhead` over
    `_fetched`): every row arrives in order, a reader that stops early stops the thread (no
    connection left reading), and an error of the query is raised in the reader, not lost in the thread."""
    import threading

    from sqlalchemy import Column, Integer, MetaData, Table

    from xinyong.services.publication.opendata import _fetched
    from xinyong.services.readahead import ReadAhead

    engine = create_engine(db_url)
    numbers = Table("numbers", MetaData(), Column("n", Integer))
    numbers.metadata.create_all(engine)
    with engine.begin() as c:
        c.execute(numbers.insert(), [{"n": n} for n in range(1000)])
    query = select(numbers.c.n).order_by(numbers.c.n)

    def readers() -> list[threading.Thread]:
        return [thread for thread in threading.enumerate() if thread.name == "opendata-prefetch"]

    def prefetched(query, size: int = 20_000) -> ReadAhead:
        return ReadAhead(lambda: _fetched(engine, query, size), ahead=2, name="opendata-prefetch")

    with prefetched(query, size=64) as whole:
        assert [n for batch in whole for (n,) in batch] == list(range(1000))

    given_up = prefetched(query, size=10)
    rows = (row for batch in given_up for row in batch)
    assert [next(rows)[0] for _ in range(5)] == [0, 1, 2, 3, 4]
    assert readers()  # still reading ahead, blocked on its full queue
    given_up.close()
    assert not readers()

    broken = prefetched(select(Table("missing", MetaData(), Column("n", Integer)).c.n))
    with pytest.raises(Exception, match="missing"):  # the driver's own error on SQLite, SQLAlchemy's elsewhere
        list(broken)
    broken.close()
    assert not readers()
    engine.dispose()
