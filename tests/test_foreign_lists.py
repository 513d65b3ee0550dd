"""Foreign and international lists (issue 15, item 4), on SQLite and PostgreSQL.

The world of tests/worlds.py, plus two small foreign lists shipped under tests/data/foreign/ in
the real formats (every name in them made up): a UN Security Council consolidated list (XML: two
organisations whose names or aliases are registered Chinese firms' names, a third, and one
individual) and an OpenSanctions / FollowTheMoney entity file (JSON Lines: companies carrying a
USCC in `taxNumber` / `registrationNumber`, one with a foreign registration number, one whose
USCC fails its check, a person, a Sanction dating a company, an address).

Under `cn` persons are skipped and counted, and a designation, matched by identifier or by name,
refers; a domestic listing's deny still wins. Designations never become listings, public lists,
published facts or proposals.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import func, select

from worlds import EFFECTIVE, FIRM_CLEAN, FIRM_DEBTOR, FIRM_SERIOUS, NAMES, build_world, serving, uscc
from xinyong.domain.calendar import pack_today
from xinyong.domain.terminal import printable
from xinyong.domain.pack import ForeignEffectSpec, ForeignListsSpec, Pack, load_pack
from xinyong.services.lists.foreign import ForeignListError, import_list, parse_ftm, parse_un
from xinyong.services.screening.screen import BATCH_COLUMNS, ScreeningIndex
from xinyong.store import tables as t
from xinyong.store.db import open_engine

DATA = Path(__file__).parent / "data" / "foreign"
UN_FILE, FTM_FILE = DATA / "un_consolidated.xml", DATA / "opensanctions.ftm.jsonl"
FOREIGN_ONLY = uscc("91110000MA0NF0008")  # valid, held by no entity, on the FtM list
NOBODY = uscc("91120000MA0FX0009")  # valid, held by no entity and on no list
KORYO = "Koryo Example Trading Corp."  # the UN list's 6908001, as a user types it
CN = load_pack("cn")


def run(cli, *args: Any) -> Any:
    return json.loads(cli(*args, "--json").stdout)


def screen(cli, *args: str, action: str = "public_procurement") -> dict[str, Any]:
    return run(cli, "screen", *args, "--action", action, "--as-of", EFFECTIVE)


@pytest.fixture
def world(cli, tmp_path: Path) -> Any:
    build_world(cli, tmp_path)
    return cli


def import_both(cli) -> tuple[dict[str, Any], dict[str, Any]]:
    return (run(cli, "lists", "import", UN_FILE, "--format", "un", "--list", "un_sc"),
            run(cli, "lists", "import", FTM_FILE, "--format", "ftm", "--list", "os_test"))


def stored(url: str) -> dict[str, Any]:
    engine = open_engine(url)
    try:
        with engine.connect() as c:
            D, F = t.foreign_designations.c, t.foreign_lists.c
            return {"lists": {r.code: r._asdict() for r in c.execute(select(t.foreign_lists))},
                    "designations": {(r.code, r.source_id): r._asdict() for r in c.execute(
                        select(F.code, D.source_id, D.name, D.ended_on, D.ended_version, D.first_version,
                               D.list_version, D.listed_on, D.identifiers).join(t.foreign_lists, F.id == D.list_id))},
                    "audit": [r._asdict() for r in c.execute(select(t.audit_events.c.action, t.audit_events.c.payload)
                                                             .where(t.audit_events.c.object_type == "foreign_list"))],
                    "audit_seq": c.execute(select(func.max(t.audit_events.c.seq))).scalar()}
    finally:
        engine.dispose()


# -- import -------------------------------------------------------------------------------------------

def test_import_keeps_organisations_and_skips_persons(world) -> None:
    un, ftm = import_both(world)
    assert {k: un[k] for k in ("list", "kind", "format", "source", "date", "version", "designations", "added",
                               "ended", "persons_skipped")} == {
        "list": "un_sc", "kind": "foreign", "format": "un", "source": "UN Security Council Consolidated List",
        "date": "2026-01-15", "version": "2026-01-15T08:00:00.000Z", "designations": 3, "added": 3, "ended": 0,
        "persons_skipped": 1}
    assert (ftm["designations"], ftm["persons_skipped"], ftm["others_skipped"], ftm["identifiers_refused"]) == (4, 1, 1, 2)
    assert ftm["source"] == "FollowTheMoney entities (example_sanctions)" and ftm["date"] == "2026-01-02"
    assert ftm["version"] == ftm["sha256"][:16]  # an FtM file names no version: its content does
    assert {e["reason"] for e in ftm["identifiers_refused_examples"]} == {
        "code '1027700132195' is not a recognised identifier", "USCC 91310000MA1XC00011 fails its check character"}
    store = stored(world.url)
    assert {code: row["kind"] for code, row in store["lists"].items()} == {"un_sc": "foreign", "os_test": "foreign"}
    designations = store["designations"]
    assert ("un_sc", "6908100") not in designations  # the individual
    assert not any(key[1] == "os-example-person-1" for key in designations)
    assert designations[("os_test", "os-example-company-1")]["identifiers"] == [["uscc", FIRM_CLEAN]]
    assert designations[("os_test", "os-example-company-1")]["listed_on"] == dt.date(2023, 6, 30)  # its Sanction
    assert designations[("os_test", "os-example-company-4")]["identifiers"] == []  # the failed USCC: never matched
    assert [a["action"] for a in store["audit"]] == ["foreign_list.imported"] * 2
    world("audit", "verify")


def test_reimport_replaces_the_version_and_ends_what_disappeared(world, tmp_path: Path) -> None:
    import_both(world)
    assert screen(world, "--name", KORYO)["foreign_designations"][0]["source_id"] == "6908001"
    text = UN_FILE.read_text(encoding="utf-8")
    start, end = text.index("<ENTITY>"), text.index("</ENTITY>") + len("</ENTITY>")
    assert "6908001" in text[start:end]
    later = tmp_path / "consolidated-2.xml"
    later.write_text((text[:start] + text[end:]).replace("2026-01-15T08:00:00.000Z", "2026-02-01T08:00:00.000Z"),
                     encoding="utf-8")
    outcome = run(world, "lists", "import", later, "--format", "un", "--list", "un_sc")
    today = pack_today(CN)
    assert {k: outcome[k] for k in ("version", "designations", "added", "kept", "ended", "ended_source_ids",
                                    "ended_on")} == {
        "version": "2026-02-01T08:00:00.000Z", "designations": 2, "added": 0, "kept": 2, "ended": 1,
        "ended_source_ids": ["6908001"], "ended_on": today.isoformat()}
    store = stored(world.url)
    assert store["lists"]["un_sc"]["version"] == "2026-02-01T08:00:00.000Z"
    gone = store["designations"][("un_sc", "6908001")]
    assert (gone["ended_on"], gone["ended_version"], gone["first_version"]) == (
        today, "2026-02-01T08:00:00.000Z", "2026-01-15T08:00:00.000Z")  # kept, with its end
    kept = store["designations"][("un_sc", "6908002")]
    assert (kept["ended_on"], kept["list_version"]) == (None, "2026-02-01T08:00:00.000Z")
    assert store["audit"][-1]["payload"]["ended_source_ids"] == ["6908001"]
    answer = screen(world, "--name", KORYO)
    assert answer["foreign_designations"] == [] and answer["decision"] == "allow"
    assert screen(world, "--name", NAMES[FIRM_CLEAN])["foreign_designations"][1]["list_version"] == \
        "2026-02-01T08:00:00.000Z"
    world("audit", "verify")


def _malformed(tmp_path: Path) -> list[tuple[str, str, Path, str]]:
    un = UN_FILE.read_text(encoding="utf-8")
    ftm = FTM_FILE.read_text(encoding="utf-8").splitlines()
    files = {
        "truncated.xml": un[: un.index("<ENTITY>") + 200],
        "doctype.xml": un.replace("<CONSOLIDATED_LIST", '<!DOCTYPE x [<!ENTITY a "aaaa">]>\n<CONSOLIDATED_LIST', 1),
        "other.xml": "<?xml version='1.0'?><SDN_LIST><ENTITY/></SDN_LIST>",
        "noname.xml": un.replace("<FIRST_NAME>EXAMPLE RELIEF FOUNDATION</FIRST_NAME>", "<FIRST_NAME> </FIRST_NAME>"),
        "nodataid.xml": un.replace("<DATAID>6908003</DATAID>", ""),
        "badjson.jsonl": "\n".join([ftm[0], ftm[1], '{"id": "x", "schema": "Company", ', *ftm[2:]]),
        "noname.jsonl": "\n".join([ftm[0], ftm[1], ftm[2].replace('"name": ["Serious Example Front"], ', "")]),
        "schema.jsonl": "\n".join([ftm[0], '{"id": "y", "schema": "Spaceship", "properties": {}}']),
        "props.jsonl": '{"id": "z", "schema": "Company", "properties": {"name": "Not A List"}}',
    }
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    return [
        ("un", "un_sc", tmp_path / "truncated.xml", "not well-formed XML"),
        ("un", "un_sc", tmp_path / "doctype.xml", "a DOCTYPE or entity declaration is refused"),
        ("un", "un_sc", tmp_path / "other.xml", "the root element is <SDN_LIST>"),
        ("un", "un_sc", tmp_path / "noname.xml", "entity 2 (DATAID 6908002): no name"),
        ("un", "un_sc", tmp_path / "nodataid.xml", "entity 3: no DATAID"),
        ("ftm", "os_test", tmp_path / "badjson.jsonl", "line 3: not JSON"),
        ("ftm", "os_test", tmp_path / "noname.jsonl", "line 3 (entity os-example-company-3): no name"),
        ("ftm", "os_test", tmp_path / "schema.jsonl", "line 2 (entity y): 'Spaceship' is not a FollowTheMoney schema"),
        ("ftm", "os_test", tmp_path / "props.jsonl", "line 1 (entity z): properties must map"),
    ]


def test_a_malformed_file_is_refused_naming_file_and_place_and_writes_nothing(world, tmp_path: Path) -> None:
    import_both(world)
    before = stored(world.url)
    for file_format, code, path, where in _malformed(tmp_path):
        result = world("lists", "import", path, "--format", file_format, "--list", code, "--json", ok=False)
        message = " ".join(result.output.split())
        assert result.exit_code == 1 and f"{path.name}" in message and where in message, (path.name, message)
        assert stored(world.url) == before  # the previous versions stand, untouched
    result = world("lists", "import", UN_FILE, "--format", "ftm", "--list", "un_sc", ok=False)  # XML read as JSON
    assert result.exit_code == 1 and "line 1: not JSON" in result.output
    result = world("lists", "import", FTM_FILE, "--format", "un", "--list", "os_test", ok=False)
    assert result.exit_code == 1 and "not well-formed XML" in result.output
    result = world("lists", "import", UN_FILE, "--format", "un", "--list", "os_test", ok=False)
    assert result.exit_code == 1 and "imported from ftm files" in " ".join(result.output.split())
    result = world("lists", "import", UN_FILE, "--format", "un", "--list", "court_defaulters", ok=False)
    assert result.exit_code == 1 and "a domestic list of the pack" in " ".join(result.output.split())
    assert stored(world.url) == before


# -- screening ----------------------------------------------------------------------------------------

def test_identifier_screening_shows_the_designation_and_refers(world) -> None:
    assert screen(world, FOREIGN_ONLY)["decision"] == "not_found"
    import_both(world)
    clean = screen(world, FIRM_CLEAN)
    assert clean["decision"] == "refer" and clean["subject"]["key"] == FIRM_CLEAN and clean["measures"] == []
    assert clean["foreign_designations"] == [{
        "list": "os_test", "list_version": stored(world.url)["lists"]["os_test"]["version"],
        "name": "Example Holdings Limited", "score": 1.0, "explanation": {"identifier": FIRM_CLEAN},
        "source_id": "os-example-company-1"}]
    unknown = screen(world, FOREIGN_ONLY)  # no entity, but on a foreign list: no longer not_found
    assert unknown["decision"] == "refer" and unknown["subject"] is None
    assert [d["source_id"] for d in unknown["foreign_designations"]] == ["os-example-company-2"]
    nobody = screen(world, NOBODY)
    assert nobody["decision"] == "not_found" and nobody["foreign_designations"] == []
    serious = screen(world, FIRM_SERIOUS)  # a domestic listing's deny wins over the designation's refer
    assert serious["decision"] == "deny" and serious["measures"]
    assert [d["source_id"] for d in serious["foreign_designations"]] == ["os-example-company-3"]


def test_name_screening_shows_the_designation_and_refers(world) -> None:
    import_both(world)
    clean = screen(world, "--name", NAMES[FIRM_CLEAN])
    assert clean["decision"] == "refer" and clean["subject"]["key"] == FIRM_CLEAN and clean["match"] == "name"
    by = {(d["list"], d["source_id"]): d for d in clean["foreign_designations"]}
    assert set(by) == {("os_test", "os-example-company-1"), ("un_sc", "6908002")}
    assert clean["foreign_designations"][0]["explanation"] == {"identifier": FIRM_CLEAN}  # identifiers first
    alias = by[("un_sc", "6908002")]
    assert alias["name"] == "EXAMPLE RELIEF FOUNDATION" and alias["list_version"] == "2026-01-15T08:00:00.000Z"
    assert alias["score"] >= CN.resolution.review and alias["explanation"]["exact_full_name"] is True
    assert alias["explanation"]["reference_number"] == "QDe.902"
    koryo = screen(world, "--name", KORYO, action="bidding")
    assert koryo["decision"] == "refer" and koryo["subject"] is None
    assert [(d["list"], d["source_id"]) for d in koryo["foreign_designations"]] == [("un_sc", "6908001")]
    assert koryo["foreign_designations"][0]["score"] >= CN.resolution.review
    unrelated = screen(world, "--name", "广州无关纺织品进出口有限公司")
    assert unrelated["foreign_designations"] == [] and unrelated["decision"] == "allow"
    serious = screen(world, "--name", NAMES[FIRM_SERIOUS])  # deny > refer
    assert serious["decision"] == "deny" and ("un_sc", "6908003") in {
        (d["list"], d["source_id"]) for d in serious["foreign_designations"]}
    text = world("screen", "--name", KORYO, "--action", "bidding").stdout
    assert "REFER" in text and "foreign list un_sc" in text and "6908001" in text


def test_batch_results_carry_the_designations(world, tmp_path: Path) -> None:
    import_both(world)
    batch = tmp_path / "batch.csv"
    batch.write_text("identifier,name\n" + "\n".join(
        [f"{FIRM_CLEAN},", f"{FOREIGN_ONLY},", f"{FIRM_SERIOUS},", f"{NOBODY},", f",{KORYO}", f",{NAMES[FIRM_DEBTOR]}"])
        + "\n", encoding="utf-8")
    out_csv, out_jsonl = tmp_path / "out.csv", tmp_path / "out.jsonl"
    for out in (out_csv, out_jsonl):
        world("screen", "--batch", batch, "--action", "public_procurement", "--as-of", EFFECTIVE, "-o", out)
    with out_csv.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [dict(zip(header, row)) for row in reader]
    assert header == list(BATCH_COLUMNS) and header[-2:] == ["foreign_designations", "foreign_best_score"]
    assert header[:14] == ["line", "identifier", "name", "action", "as_of", "decision", "subject", "subject_name",
                           "measures", "ends", "match", "error", "best_candidate", "best_score"]  # new columns after
    version = stored(world.url)["lists"]["os_test"]["version"]
    assert [(r["decision"], r["foreign_designations"]) for r in rows] == [
        ("refer", f"os_test:os-example-company-1@{version}"),
        ("refer", f"os_test:os-example-company-2@{version}"),
        ("deny", f"os_test:os-example-company-3@{version}"),
        ("not_found", ""),
        ("refer", "un_sc:6908001@2026-01-15T08:00:00.000Z"),
        ("deny", "")]
    assert rows[0]["foreign_best_score"] == "1.0" and rows[3]["foreign_best_score"] == ""
    results = [orjson.loads(line) for line in out_jsonl.read_bytes().splitlines()]
    assert [r["decision"] for r in results] == [r["decision"] for r in rows]
    assert results[4]["foreign_designations"][0]["name"] == "KORYO EXAMPLE TRADING CORPORATION"
    assert set(results[0]["foreign_designations"][0]) == {"list", "list_version", "name", "score", "explanation",
                                                          "source_id"}


def test_designations_are_never_domestic_listings(world, tmp_path: Path) -> None:
    import_both(world)
    assert all(row["list"] not in ("un_sc", "os_test") for row in run(world, "listing", "list"))
    assert run(world, "evaluate", "--as-of", EFFECTIVE, "--full")["proposals"] == 0
    world("publish", "--out", tmp_path / "dump")
    dumped = b"".join(p.read_bytes() for p in (tmp_path / "dump").rglob("*") if p.is_file())
    for foreign in (b"EXAMPLE RELIEF FOUNDATION", b"Example Holdings", b"6908002", b"os-example-company", b"un_sc"):
        assert foreign not in dumped
    entity = run(world, "entity", "show", FIRM_CLEAN)
    assert "un_sc" not in json.dumps(entity) and "os_test" not in json.dumps(entity)


def test_a_running_server_sees_an_import_within_its_refresh(world, db_url: str) -> None:
    key = json.loads(world("authority", "key", "create", "samr", "--scopes", "screen", "--json").stdout)["key"]
    body = {"identifier": FOREIGN_ONLY, "action": "bidding", "purpose": "tender_review", "as_of": EFFECTIVE}
    with serving(db_url) as base:
        first = httpx.post(f"{base}/v1/screen", headers={"X-API-Key": key}, json=body).json()
        assert first["decision"] == "not_found" and first["foreign_designations"] == []
        import_both(world)
        deadline = time.monotonic() + 60
        while (answer := httpx.post(f"{base}/v1/screen", headers={"X-API-Key": key}, json=body).json())[
                "decision"] == "not_found" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert answer["decision"] == "refer" and answer["foreign_designations"][0]["source_id"] == "os-example-company-2"
        named = httpx.post(f"{base}/v1/screen", headers={"X-API-Key": key},
                           json={**body, "identifier": None, "name": KORYO}).json()
        assert named["decision"] == "refer" and named["foreign_designations"][0]["list"] == "un_sc"


# -- what the pack says -------------------------------------------------------------------------------

def with_foreign(pack: Pack, **update: Any) -> Pack:
    return pack.model_copy(update={"foreign_lists": pack.foreign_lists.model_copy(update=update)})


def test_persons_kept_under_a_legal_basis(world) -> None:
    """`foreign_lists.person_legal_basis`: with one, the UN individual is imported, and the import's audit event names it."""
    pack = with_foreign(CN, person_legal_basis="《反恐怖主义法》第十四条（示例）")
    engine = open_engine(world.url)
    try:
        outcome = import_list(engine, pack, UN_FILE, "un", "un_sc")
    finally:
        engine.dispose()
    assert (outcome["designations"], outcome["persons_skipped"]) == (4, 0)
    store = stored(world.url)
    assert store["designations"][("un_sc", "6908100")]["name"] == "EXAMPLE PERSON"
    assert run(world, "lists", "import", UN_FILE, "--format", "un", "--list", "un_sc2")["persons_skipped"] == 1  # cn


def test_pack_decides_what_a_designation_implies(world) -> None:
    """`foreign_lists.default` and `.actions` (identifier, name): the decision each way of matching yields."""
    import_both(world)
    engine = open_engine(world.url)
    day = dt.date.fromisoformat(EFFECTIVE)

    def decisions(pack: Pack, action: str) -> tuple[str, str]:
        index = ScreeningIndex.load(engine, pack)
        return (index.screen_identifier(FOREIGN_ONLY, action, day).decision.decision,
                index.screen_name(KORYO, action, day).decision.decision)
    try:
        assert decisions(CN, "bidding") == ("refer", "refer")
        strict = with_foreign(CN, default=ForeignEffectSpec(identifier="deny", name="conditions"))
        assert decisions(strict, "bidding") == ("deny", "conditions")
        per_action = with_foreign(strict, actions={"bidding": ForeignEffectSpec(identifier="allow", name="allow")})
        assert decisions(per_action, "bidding") == ("not_found", "allow")  # allow adds nothing: not_found stays
        assert decisions(per_action, "financing") == ("deny", "conditions")  # the default for other actions
        assert decisions(with_foreign(CN, actions={"bidding": ForeignEffectSpec(identifier="conditions")}),
                         "bidding") == ("conditions", "refer")
    finally:
        engine.dispose()


def test_the_schema_refuses_a_name_that_denies_and_unknown_actions() -> None:
    with pytest.raises(ValidationError, match="a name match never denies automatically"):
        ForeignEffectSpec(name="deny")
    data = CN.model_dump(mode="json", by_alias=True)
    data["foreign_lists"] = {"actions": {"no_such_action": {"identifier": "refer"}}}
    with pytest.raises(ValidationError, match="foreign_lists.actions: unknown action 'no_such_action'"):
        Pack.model_validate(data)
    assert ForeignListsSpec().effect("bidding", "name") == "refer"


# -- the parsers, on arbitrary text -------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


def _un_file(entries: list[tuple[str, list[str]]]) -> bytes:
    root = ET.Element("CONSOLIDATED_LIST", dateGenerated="2026-01-15T08:00:00.000Z")
    ET.SubElement(root, "INDIVIDUALS")
    section = ET.SubElement(root, "ENTITIES")
    for n, (name, aliases) in enumerate(entries, start=1):
        entity = ET.SubElement(section, "ENTITY")
        ET.SubElement(entity, "DATAID").text = str(n)
        ET.SubElement(entity, "FIRST_NAME").text = name
        for alias in aliases:
            ET.SubElement(ET.SubElement(entity, "ENTITY_ALIAS"), "ALIAS_NAME").text = alias
    return ET.tostring(root, encoding="utf-8")


def _check(parse: Any) -> None:
    try:
        parsed = parse()
    except ForeignListError as exc:
        assert str(exc).startswith("f.")  # a refusal names the file
        return
    for designation in parsed.designations:
        for name in (designation.name, *designation.aliases):
            assert any(ch.isalnum() for ch in name) and name == " ".join(name.split())  # a name, spaces collapsed
            assert printable(name) == name  # no control character or escape sequence
        assert designation.name not in designation.aliases


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(TEXT, st.lists(TEXT, max_size=3)), min_size=1, max_size=4))
def test_un_parser_never_crashes_nor_keeps_a_nameless_designation(entries: list[tuple[str, list[str]]]) -> None:
    _check(lambda: parse_un(_un_file(entries), "f.xml", keep_persons=False))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.lists(TEXT, max_size=3), st.lists(TEXT, max_size=3),
                          st.sampled_from(["Company", "Organization", "LegalEntity", "Person", "Vessel"])),
                min_size=1, max_size=4))
def test_ftm_parser_never_crashes_nor_keeps_a_nameless_designation(
        entries: list[tuple[list[str], list[str], str]]) -> None:
    lines = [orjson.dumps({"id": f"e{n}", "schema": schema, "properties": {"name": names, "alias": aliases}})
             for n, (names, aliases, schema) in enumerate(entries)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        _check(lambda: parse_ftm(path, "f.jsonl", keep_persons=True))

