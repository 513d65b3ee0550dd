"""Adversarial inputs against issue 15's surfaces (open data, webhooks, relations, foreign lists):
what the demo never sends, each a defect found and fixed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest

from worlds import resident_id
from xinyong.services.lists.foreign import ForeignListError, parse_ftm, parse_un

PERSON_ID = resident_id("110101", dt.date(1980, 5, 12), 123)

UN_WITH_ENTITY = ('<?xml version="1.0" encoding="{encoding}"?>'
                  '<!DOCTYPE CONSOLIDATED_LIST [<!ENTITY a "INJECTED">]>'
                  '<CONSOLIDATED_LIST dateGenerated="2026-01-15T08:00:00.000Z"><ENTITIES><ENTITY>'
                  '<DATAID>1</DATAID><FIRST_NAME>&a; TRADING</FIRST_NAME></ENTITY></ENTITIES></CONSOLIDATED_LIST>')


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16", "utf-8"])
def test_un_list_refuses_a_dtd_in_any_encoding_expat_reads(encoding: str) -> None:
    """A UTF-16 file without a byte-order mark is read by expat from its first bytes; a text
    search for "<!DOCTYPE" in it found nothing and its entities were expanded."""
    data = UN_WITH_ENTITY.format(encoding="UTF-8" if encoding == "utf-8" else "UTF-16").encode(encoding)
    with pytest.raises(ForeignListError, match="a DOCTYPE or entity declaration is refused"):
        parse_un(data, "un.xml", keep_persons=False)


def test_un_list_refuses_an_external_dtd_and_a_billion_laughs() -> None:
    external = ('<?xml version="1.0"?><!DOCTYPE CONSOLIDATED_LIST SYSTEM "file:///etc/passwd">'
                '<CONSOLIDATED_LIST dateGenerated="2026-01-15"/>').encode("utf-16-le")
    laughs = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY l0 "ha">'
              + "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
              + ']><CONSOLIDATED_LIST dateGenerated="2026-01-15"><ENTITIES><ENTITY><DATAID>1</DATAID>'
              '<FIRST_NAME>&l9;</FIRST_NAME></ENTITY></ENTITIES></CONSOLIDATED_LIST>').encode("utf-16-be")
    for data in (external, laughs):
        with pytest.raises(ForeignListError, match="a DOCTYPE or entity declaration is refused"):
            parse_un(data, "un.xml", keep_persons=False)


def _ftm(tmp_path: Path, *entities: dict) -> Path:
    path = tmp_path / "entities.ftm.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in entities))
    return path


def test_ftm_legal_entity_with_an_id_number_is_a_person(tmp_path: Path) -> None:
    """OpenSanctions files subjects of unknown kind as LegalEntity: one whose tax or ID number is a
    resident ID number is a person, kept only under a legal basis (it was kept as an organisation)."""
    path = _ftm(tmp_path,
                {"id": "le-1", "schema": "LegalEntity", "properties": {"name": ["张三"], "taxNumber": [PERSON_ID]}},
                {"id": "le-2", "schema": "LegalEntity", "properties": {"name": ["李四"], "idNumber": [PERSON_ID]}},
                {"id": "co-1", "schema": "Company", "properties": {"name": ["Example Front Ltd"]}})
    parsed = parse_ftm(path, "entities.ftm.jsonl", keep_persons=False)
    assert [d.source_id for d in parsed.designations] == ["co-1"] and parsed.persons_skipped == 2
    kept = parse_ftm(path, "entities.ftm.jsonl", keep_persons=True)
    assert [d.source_id for d in kept.designations] == ["le-1", "le-2", "co-1"]


def test_ftm_refused_identifier_examples_never_show_an_id_number_whole(tmp_path: Path) -> None:
    """A company's taxNumber that is somebody's ID number fails as a USCC: the example refused showed
    the number whole (its warning masked it)."""
    path = _ftm(tmp_path, {"id": "co-1", "schema": "Company",
                           "properties": {"name": ["Example Front Ltd"], "taxNumber": [PERSON_ID]}})
    parsed = parse_ftm(path, "entities.ftm.jsonl", keep_persons=False)
    assert parsed.identifiers_refused == 1
    assert PERSON_ID not in repr(parsed.refused_examples) and PERSON_ID[-4:] in parsed.refused_examples[0]["value"]


def test_an_empty_ftm_file_is_refused(tmp_path: Path) -> None:
    """A download that came back empty would end every designation of the list on re-import."""
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"\n")
    with pytest.raises(ForeignListError, match="empty.jsonl: no entity in the file"):
        parse_ftm(path, "empty.jsonl", keep_persons=False)


# -- ownership and control ------------------------------------------------------------------------------

def _relations_record(url: str, firm: str, role: str) -> int:
    from sqlalchemy import select

    from xinyong.store import tables as t
    from xinyong.store.db import open_engine

    engine = open_engine(url)
    r = t.records.c
    with engine.connect() as c:
        found = c.execute(select(r.id).where(r.category == "relations", r.record_key.like(f"%/{role}#{firm}"))).scalar()
    engine.dispose()
    return found


def test_a_relations_record_moved_off_a_firm_takes_its_relations_and_reach_with_it(cli, tmp_path: Path) -> None:
    """A judgement that a relations record is not about the firm it was linked to left the relation
    open on that firm: the firm's listing still reached the person (deny through an actual controller
    the firm never had), and the firm the record was moved to never got the relation."""
    from test_relations import CONTROLLER, first_file, relations_of
    from worlds import FIRM_CLEAN, FIRM_DEBTOR, build_world, run

    def screen(as_of: str) -> dict:
        return run(cli, "screen", CONTROLLER, "--action", "high_consumption", "--as-of", as_of)

    build_world(cli, tmp_path)
    run(cli, "ingest", first_file(tmp_path), "--authority", "samr", "--category", "relations")
    run(cli, "resolve")
    assert screen("2025-11-01")["decision"] == "deny"  # FIRM_DEBTOR (court_defaulters) through its actual controller
    record = _relations_record(cli.url, FIRM_DEBTOR, "实际控制人")
    moved = run(cli, "review", "reject", record, "--reason", "this controller is another firm's")
    assert moved["moved_from"] == FIRM_DEBTOR
    ended = [r for r in relations_of(cli.url, FIRM_DEBTOR) if r["relation"] == "actual_controller"]
    assert [(r["valid_from"], r["valid_to"]) for r in ended] == [(dt.date(2025, 10, 25), dt.date(2025, 10, 25))]
    for day in ("2025-10-25", "2025-11-01", "2026-01-05"):  # it never held: on no date
        answer = screen(day)
        assert (answer["decision"], answer["measures"]) in (("allow", []), ("not_found", [])), (day, answer)
    # accepted for another firm: the relation is that firm's now
    run(cli, "review", "accept", record, "--entity", FIRM_CLEAN, "--reason", "it is this firm's controller")
    held = [(r["relation"], r["person_id"], r["valid_to"]) for r in relations_of(cli.url, FIRM_CLEAN)]
    assert held == [("actual_controller", CONTROLLER, None)]
    assert [r["valid_to"] for r in relations_of(cli.url, FIRM_DEBTOR) if r["relation"] == "actual_controller"] == [
        dt.date(2025, 10, 25)]
    cli("audit", "verify")


def test_a_firm_party_named_like_a_listed_person_is_not_that_person(cli, tmp_path: Path) -> None:
    """A shareholder given as a firm, by a name only, was looked up among every entity's names: the
    court's debtor 张三 (a natural person) became the firm's shareholder, the firm's public page
    linked to the person's, and the link would outlive the person's listing."""
    from test_relations import HEADERS, relations_of
    from worlds import FIRM_CLEAN, NAMES, build_world, run, write_csv
    from xinyong.domain.pack import load_pack
    from xinyong.services.resolution.entities import public_file
    from xinyong.store.db import open_engine

    build_world(cli, tmp_path)
    person_key = run(cli, "entity", "show", PERSON_ID)["key"]
    rows = [[NAMES[FIRM_CLEAN], FIRM_CLEAN, "张三", "法人股东", "", "股东", "20%", "2025-10-26"]]
    run(cli, "ingest", write_csv(tmp_path / "relations.csv", HEADERS, rows), "--authority", "samr",
        "--category", "relations")
    run(cli, "resolve")
    assert [(r["other_name"], r["other"]) for r in relations_of(cli.url, FIRM_CLEAN)] == [("张三", None)]
    engine = open_engine(cli.url)
    shown = public_file(engine, load_pack("cn"), FIRM_CLEAN, dt.date(2025, 11, 1))["ownership"]
    engine.dispose()
    assert person_key not in repr(shown)
    assert [(p["name"], p["entity"]) for p in shown["parties"] if p["relation"] == "shareholder"] == [("张三", None)]


# -- open data ------------------------------------------------------------------------------------------

def test_a_table_being_published_never_truncates_the_served_file(tmp_path: Path) -> None:
    """`publish` opened full/TABLE.FORMAT for writing at its start: for the whole run (minutes at
    national scale) /data/ served truncated files under the old manifest's sha256; a publish that
    failed left them so. The new files take the old ones' place only whole."""
    from xinyong.services.publication.opendata import FORMATS, TABLES, _TableWriter

    columns = list(TABLES["listings"])
    types = {k: v[0] for k, v in TABLES["listings"].items()}
    row = {k: None for k in columns} | {"entity": "91110105MA0CL00032", "listing": 1, "list": "x", "evidence": []}
    first = _TableWriter(tmp_path, "listings", columns, types)
    for n in range(3):
        first.add(row | {"listing": n})
    first.close()
    served = {fmt: (tmp_path / f"listings.{fmt}").read_bytes() for fmt in FORMATS}

    failed = _TableWriter(tmp_path, "listings", columns, types)
    failed.add(row)
    assert {fmt: (tmp_path / f"listings.{fmt}").read_bytes() for fmt in FORMATS} == served  # mid-run
    failed.discard()
    assert {fmt: (tmp_path / f"listings.{fmt}").read_bytes() for fmt in FORMATS} == served
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"listings.{fmt}" for fmt in FORMATS)

    second = _TableWriter(tmp_path, "listings", columns, types)
    second.add(row)
    entries = second.close()
    assert [e["rows"] for e in entries] == [1, 1, 1]
    assert (tmp_path / "listings.jsonl").read_bytes().count(b"\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"listings.{fmt}" for fmt in FORMATS)
