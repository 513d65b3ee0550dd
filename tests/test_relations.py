"""Ownership and control (issue 15, item 3), on SQLite and PostgreSQL.

On the world of tests/worlds.py (FIRM_DEBTOR on court_defaulters, FIRM_SERIOUS on
serious_dishonesty, both in force), relations files written here: FIRM_DEBTOR's shareholders (a
firm given by its USCC, a person with an ID number, a firm given by name only), its actual
controller, its manager (a principal), a director (key staff); FIRM_SERIOUS's actual controller,
the same person. Then a later file replaces FIRM_DEBTOR's set. Checked: the records, the stored
relations (masked where shown), the replacement with its dates and audit events, the reaches of
the pack's measures when screening a person's ID number (CLI and HTTP), the entity pages and API
answers (no ID number whole), the console's view, and a file's bad rows named by row and field.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from websession import WebSession
from worlds import FIRM_CLEAN, FIRM_DEBTOR, FIRM_SERIOUS, NAMES, build_world, resident_id, serving, write_csv
from xinyong.domain.identifiers import is_valid_resident_id, mask_person_id
from xinyong.store import tables as t
from xinyong.store.db import open_engine

CONTROLLER = resident_id("440305", dt.date(1975, 3, 9), 311)
MANAGER = resident_id("440305", dt.date(1981, 7, 21), 322)
DIRECTOR = resident_id("440305", dt.date(1979, 1, 2), 333)
HOLDER = resident_id("440305", dt.date(1968, 11, 30), 344)
NEW_CONTROLLER = resident_id("440306", dt.date(1985, 6, 6), 355)
ALL_IDS = (CONTROLLER, MANAGER, DIRECTOR, HOLDER, NEW_CONTROLLER)
FIRST_DAY, SECOND_DAY = "2025-10-25", "2025-12-01"
HEADERS = ["企业名称", "统一社会信用代码", "股东", "股东类型", "证照/证件号码", "职务", "出资比例", "信息日期"]


def first_file(folder: Path) -> Path:
    return write_csv(folder / "relations-1.csv", HEADERS, [
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, NAMES[FIRM_CLEAN], "法人股东", FIRM_CLEAN, "股东", "60%", FIRST_DAY],
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "赵六", "自然人股东", HOLDER, "股东", "35.5%", FIRST_DAY],
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "某某外资控股有限公司", "法人股东", "", "股东", "4.5", FIRST_DAY],
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "赵六", "", CONTROLLER, "实际控制人", "", FIRST_DAY],
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "孙经理", "", MANAGER, "总经理", "", FIRST_DAY],
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "李董事", "", DIRECTOR, "董事长", "", FIRST_DAY],
        [NAMES[FIRM_SERIOUS], FIRM_SERIOUS, "赵六", "", CONTROLLER, "实际控制人", "", FIRST_DAY],
    ])


def second_file(folder: Path) -> Path:
    """FIRM_DEBTOR's next set: the same firm shareholder, a new actual controller, the manager kept."""
    return write_csv(folder / "relations-2.csv", HEADERS, [
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, NAMES[FIRM_CLEAN], "法人股东", FIRM_CLEAN, "股东", "60%", SECOND_DAY],
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "钱新", "自然人股东", NEW_CONTROLLER, "股东", "40%", SECOND_DAY],
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "钱新", "", NEW_CONTROLLER, "实际控制人", "", SECOND_DAY],
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "孙经理", "", MANAGER, "经理", "", SECOND_DAY],
    ])


def run(cli, *args: Any) -> Any:
    return json.loads(cli(*args, "--json").stdout)


def relations_of(url: str, code: str) -> list[dict[str, Any]]:
    engine = open_engine(url)
    rel, e = t.entity_relations.c, t.entities.c
    other = t.entities.alias("other")
    with engine.connect() as c:
        rows = [dict(r) for r in c.execute(
            select(rel.relation, rel.role, rel.person_name, rel.person_id, rel.other_name, other.c.key.label("other"),
                   rel.share, rel.valid_from, rel.valid_to, rel.record_id)
            .join(t.entities, e.id == rel.entity_id).outerjoin(other, other.c.id == rel.other_entity_id)
            .where(e.key == code, rel.record_id.is_not(None)).order_by(rel.id)).mappings()]
    engine.dispose()
    return rows


def screen(cli, identifier: str, action: str, as_of: str) -> dict[str, Any]:
    return json.loads(cli("screen", identifier, "--action", action, "--as-of", as_of, "--json").stdout)


@pytest.fixture
def world(cli, tmp_path: Path):
    build_world(cli, tmp_path)
    done = run(cli, "ingest", first_file(tmp_path), "--authority", "samr", "--category", "relations")
    assert (done["accepted"], done["quarantined"]) == (7, 0), done
    resolved = run(cli, "resolve")
    assert resolved["relations"] == {"batches": 1, "firms": 2, "opened": 7, "ended": 0, "kept": 0}, resolved
    return cli


def test_ingest_resolve_and_replace(world, tmp_path: Path) -> None:
    cli = world
    first = relations_of(cli.url, FIRM_DEBTOR)
    by_role = {(r["relation"], r["role"], r["person_name"] or r["other_name"]): r for r in first}
    # a firm shareholder given by its USCC is that entity; one given by a name nobody holds keeps its name
    firm = by_role[("shareholder", "股东", NAMES[FIRM_CLEAN])]
    assert (firm["other"], firm["share"], firm["person_id"]) == (FIRM_CLEAN, 60.0, None)
    foreign = by_role[("shareholder", "股东", "某某外资控股有限公司")]
    assert (foreign["other"], foreign["share"]) == (None, 4.5)
    # a person keeps the ID number the record gave (restricted), and is never taken for an entity
    assert by_role[("shareholder", "股东", "赵六")]["person_id"] == HOLDER
    assert by_role[("shareholder", "股东", "赵六")]["share"] == 35.5
    assert by_role[("actual_controller", "实际控制人", "赵六")]["person_id"] == CONTROLLER
    assert by_role[("principal", "经理", "孙经理")]["person_id"] == MANAGER  # 总经理 is the pack's 经理
    assert by_role[("key_staff", "董事", "李董事")]["person_id"] == DIRECTOR  # 董事长 is a director
    assert {r["valid_from"] for r in first} == {dt.date(2025, 10, 25)} and not any(r["valid_to"] for r in first)

    # the next file replaces the set from its date: what it repeats stays, the rest ends
    done = run(cli, "ingest", second_file(tmp_path), "--authority", "samr", "--category", "relations")
    assert done["quarantined"] == 0
    resolved = run(cli, "resolve")
    assert resolved["relations"] == {"batches": 1, "firms": 1, "opened": 2, "ended": 4, "kept": 2}, resolved
    after = relations_of(cli.url, FIRM_DEBTOR)
    ended = {(r["relation"], r["person_name"] or r["other_name"]): r["valid_to"] for r in after if r["valid_to"]}
    assert ended == {("shareholder", "赵六"): dt.date(2025, 12, 1), ("shareholder", "某某外资控股有限公司"): dt.date(2025, 12, 1),
                     ("actual_controller", "赵六"): dt.date(2025, 12, 1), ("key_staff", "李董事"): dt.date(2025, 12, 1)}
    still = {(r["relation"], r["person_name"] or r["other_name"], r["valid_from"]) for r in after if not r["valid_to"]}
    assert still == {("shareholder", NAMES[FIRM_CLEAN], dt.date(2025, 10, 25)),
                     ("principal", "孙经理", dt.date(2025, 10, 25)),
                     ("shareholder", "钱新", dt.date(2025, 12, 1)), ("actual_controller", "钱新", dt.date(2025, 12, 1))}
    # a relation the new set repeats takes the new record as its source
    engine = open_engine(cli.url)
    r = t.records.c
    with engine.connect() as c:
        second_batch = {i for (i,) in c.execute(select(r.id).where(r.decision_date == dt.date(2025, 12, 1),
                                                                     r.category == "relations"))}
        events = [(a, o, p) for a, o, p in c.execute(select(t.audit_events.c.action, t.audit_events.c.object_id,
                                                            t.audit_events.c.payload)
                                                     .where(t.audit_events.c.action == "relations.replaced"))]
    engine.dispose()
    assert {x["record_id"] for x in after if not x["valid_to"]} <= second_batch
    assert len(events) == 2
    payloads = [p if isinstance(p, dict) else json.loads(p) for _, _, p in events]
    assert payloads[-1] == {"firms": 1, "opened": 2, "ended": 4, "kept": 2}
    # FIRM_SERIOUS's set came in the first file only: untouched by FIRM_DEBTOR's new set
    assert [(x["relation"], x["valid_to"]) for x in relations_of(cli.url, FIRM_SERIOUS)] == [("actual_controller", None)]
    cli("audit", "verify")  # exits non-zero on any problem: the relations events are in the chain
    # the controller that ended is reached no more after its end, and still before it
    assert screen(cli, CONTROLLER, "high_consumption", "2025-11-30")["decision"] == "deny"
    later = screen(cli, CONTROLLER, "high_consumption", "2026-01-05")
    assert later["decision"] == "allow" and later["measures"] == []
    assert screen(cli, NEW_CONTROLLER, "high_consumption", "2026-01-05")["decision"] == "deny"


def test_reaches_fire_as_the_pack_says(world) -> None:
    cli = world
    # high_consumption_ban (court_defaulters) reaches legal_representative, actual_controller, principal
    answer = screen(cli, CONTROLLER, "high_consumption", "2025-11-01")
    assert answer["decision"] == "deny" and answer["subject"] is None
    assert [(m["code"], m["through"]["entity"], m["through"]["relation"]) for m in answer["measures"]] == [
        ("high_consumption_ban", FIRM_DEBTOR, "actual_controller")]
    assert answer["measures"][0]["through"]["name"] == NAMES[FIRM_DEBTOR]
    principal = screen(cli, MANAGER, "high_consumption", "2025-11-01")
    assert [(m["code"], m["through"]["relation"]) for m in principal["measures"]] == [
        ("high_consumption_ban", "principal")]
    # no_legal_representative_role (serious_dishonesty) reaches only a legal representative: the actual
    # controller of the listed FIRM_SERIOUS is not barred; nor does any measure reach a director or shareholder
    barred = screen(cli, CONTROLLER, "legal_representative_appointment", "2025-11-01")
    assert (barred["decision"], barred["measures"]) == ("allow", [])
    for other in (DIRECTOR, HOLDER):
        assert screen(cli, other, "high_consumption", "2025-11-01")["decision"] == "not_found"
    # before the relation began it reaches nothing
    before = screen(cli, CONTROLLER, "high_consumption", "2025-10-24")
    assert (before["decision"], before["measures"]) == ("allow", [])
    # the same answers over HTTP, with the measures named and no ID number whole
    made = json.loads(cli("authority", "key", "create", "court", "--scopes", "screen", "--json").stdout)
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:
        got = http.post("/v1/screen", json={"identifier": CONTROLLER, "action": "high_consumption",
                                             "as_of": "2025-11-01", "purpose": "enforcement"},
                        headers={"X-API-Key": made["key"]})
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["decision"] == "deny"
        assert body["measures"][0]["through"]["relation"] == "actual_controller"
        no_whole_id(got.text)


ID_CANDIDATE = re.compile(r"[0-9]{17}[0-9Xx]")


def no_whole_id(text: str) -> None:
    found = [c for c in ID_CANDIDATE.findall(text) if is_valid_resident_id(c.upper())]
    assert not found, found
    for number in ALL_IDS:
        assert number not in text


def test_graph_on_the_pages_and_no_id_number(world, tmp_path: Path) -> None:
    cli = world
    made = json.loads(cli("authority", "key", "create", "samr", "--scopes", "operate", "--json").stdout)
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:
        for lang, word in (("zh", "股权与控制关系"), ("en", "Ownership and control"), ("fr", "Détention et contrôle")):
            page = http.get(f"/entities/{FIRM_DEBTOR}", params={"lang": lang})
            assert page.status_code == 200
            text = html.unescape(page.text)
            assert word in text and '<svg xmlns="http://www.w3.org/2000/svg" id="ownership-graph"' in text
            no_whole_id(page.text)
            # persons named (the pack's legal basis), the firm shareholder linked to its page
            assert "赵六" in text and "孙经理" in text and f'href="/entities/{FIRM_CLEAN}"' in text
        # the held firm shows what it holds
        held = html.unescape(http.get(f"/entities/{FIRM_CLEAN}", params={"lang": "en"}).text)
        assert "Holds 60%" in held and f'href="/entities/{FIRM_DEBTOR}"' in held
        api = http.get(f"/v1/entities/{FIRM_DEBTOR}")
        assert api.status_code == 200
        no_whole_id(api.text)
        parties = api.json()["ownership"]["parties"]
        assert {(p["relation"], p["name"]) for p in parties} >= {("actual_controller", "赵六"), ("principal", "孙经理")}
        assert all("id_number" not in p for p in parties)
        for code in (FIRM_SERIOUS, FIRM_CLEAN):
            for path in (f"/entities/{code}", f"/v1/entities/{code}"):
                no_whole_id(http.get(path).text)
        # the console: the same graph with ID numbers masked, ended relations too
        web = WebSession(base)
        web.get("/console")
        assert web.post("/console/sign-in", {"api_key": made["key"]}).status_code == 200
        console = web.get(f"/console/entities/{FIRM_DEBTOR}")
        assert console.status_code == 200
        no_whole_id(console.text)
        assert mask_person_id(CONTROLLER) in console.text and 'id="ownership-graph"' in console.text


def test_bad_rows_are_named(cli, tmp_path: Path) -> None:
    build_world(cli, tmp_path)
    bad = write_csv(tmp_path / "relations-bad.csv", ["企业名称", "统一社会信用代码", "主要人员", "职务", "出资比例", "证件号码"], [
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "周某", "董事", "", ""],                    # fine
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "吴某", "", "", ""],                        # no role, and 主要人员 implies none
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "郑某", "保安", "", ""],                     # not a role of the pack
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "王某", "股东", "120%", ""],                 # more than the whole
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "冯某", "监事", "", CONTROLLER[:-1] + ("0" if CONTROLLER[-1] != "0" else "1")],
    ])
    done = run(cli, "ingest", bad, "--authority", "samr", "--category", "relations")
    assert (done["accepted"], done["quarantined"]) == (1, 4), done
    rejects = json.loads(cli("batch", "show", str(done["batch_id"]), "--json").stdout)["quarantine"]
    assert [(q["row_number"], q["field"]) for q in rejects] == [(3, "role"), (4, "role"), (5, "share"),
                                                                  (6, "party_code")]
    assert CONTROLLER[:-1] not in json.dumps([q["reason"] for q in rejects], ensure_ascii=False)
    # a column headed 股东 lists shareholders without a role column
    plain = write_csv(tmp_path / "shareholders.csv", ["企业名称", "统一社会信用代码", "股东", "出资比例"], [
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, NAMES[FIRM_CLEAN], "100%"]])
    done = run(cli, "ingest", plain, "--authority", "samr", "--category", "relations")
    assert (done["accepted"], done["quarantined"]) == (1, 0), done
    relations = run(cli, "resolve")["relations"]
    assert (relations["opened"], relations["ended"]) == (2, 1)  # 周某 the director, then the shareholder
    # the second file is the firm's whole set from its day (no date column: the day it arrived): the
    # director ends that day, the day it began, so it never held
    rows = relations_of(cli.url, FIRM_DEBTOR)
    assert [(r["relation"], r["other"], r["share"], r["valid_to"] == r["valid_from"]) for r in rows] == [
        ("key_staff", None, None, True), ("shareholder", FIRM_CLEAN, 100.0, False)]


def test_a_correction_changes_only_its_relation(world, tmp_path: Path) -> None:
    """`record correct` makes a new version in its batch: the batch's set applies again, the
    corrected relation ends and its new form opens, the rest of the set stays as it was."""
    cli = world
    other = resident_id("440305", dt.date(1990, 2, 14), 366)
    fix = tmp_path / "fix.json"
    fix.write_text(json.dumps({"party_code": other}), encoding="utf-8")
    cli("record", "correct", f"samr:孙经理/经理#{FIRM_DEBTOR}", "--file", fix, "--reason", "wrong ID number")
    relations = run(cli, "resolve")["relations"]
    assert relations == {"batches": 1, "firms": 1, "opened": 1, "ended": 1, "kept": 5}, relations
    rows = relations_of(cli.url, FIRM_DEBTOR)
    principals = [(r["person_id"], r["valid_to"] is None) for r in rows if r["relation"] == "principal"]
    assert principals == [(MANAGER, False), (other, True)]
    assert screen(cli, other, "high_consumption", "2026-01-05")["decision"] == "deny"
    # after a later file replaced the set, a correction of the old set changes nothing that is open
    run(cli, "ingest", second_file(tmp_path), "--authority", "samr", "--category", "relations")
    run(cli, "resolve")
    fix.write_text(json.dumps({"share": "50%"}), encoding="utf-8")
    cli("record", "correct", f"samr:赵六/股东#{FIRM_DEBTOR}", "--file", fix, "--reason", "share")
    assert run(cli, "resolve")["relations"] == {"batches": 0, "firms": 0, "opened": 0, "ended": 0, "kept": 0}


def test_a_revoked_relations_record_ends_its_relation_and_its_reach(world) -> None:
    """The actual controller's record annulled: the relation ends on the revocation's date (audited),
    so the measures stop reaching the person from then on, and still reach them before."""
    cli = world
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            rel, r = t.entity_relations.c, t.records.c
            (record_key,) = c.execute(select(r.record_key).join(t.entity_relations, rel.record_id == r.id)
                                      .join(t.entities, t.entities.c.id == rel.entity_id)
                                      .where(t.entities.c.key == FIRM_DEBTOR,
                                             rel.relation == "actual_controller")).scalars().all()
    finally:
        engine.dispose()
    revoked = run(cli, "record", "revoke", record_key, "--on", "2025-11-05", "--actor", "samr",
                  "--reason", "controller registered in error")
    assert revoked["relations_ended"] == 1
    (controller,) = [row for row in relations_of(cli.url, FIRM_DEBTOR) if row["relation"] == "actual_controller"]
    assert str(controller["valid_to"]) == "2025-11-05"
    run(cli, "resolve")  # a later run does not apply the revoked record again
    assert [str(row["valid_to"]) for row in relations_of(cli.url, FIRM_DEBTOR)
            if row["relation"] == "actual_controller"] == ["2025-11-05"]
    assert screen(cli, CONTROLLER, "high_consumption", "2025-11-04")["decision"] == "deny"
    after = screen(cli, CONTROLLER, "high_consumption", "2025-11-06")
    assert all(m["through"]["entity"] != FIRM_DEBTOR for m in after["measures"]), after
    assert json.loads(cli("audit", "verify", "--json").stdout)["intact"] is True


def test_a_relations_record_whose_link_moves_takes_its_relations_along(world) -> None:
    """The manager's record re-linked by a judgement to another firm (as `resolve --all` may move a
    link): the principal relation ends on the firm it left as never held (audited), opens on the firm
    it is linked to now, and no measure reaches the manager through the firm it left. Linked back, it
    comes back."""
    cli = world
    rel, r, e = t.entity_relations.c, t.records.c, t.entities.c
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            record_id = c.execute(select(rel.record_id).join(t.entities, e.id == rel.entity_id)
                                  .where(e.key == FIRM_DEBTOR, rel.relation == "principal")).scalar_one()
    finally:
        engine.dispose()
    assert screen(cli, MANAGER, "high_consumption", "2026-01-05")["decision"] == "deny"

    moved = run(cli, "review", "accept", record_id, "--entity", FIRM_CLEAN, "--reason", "the manager is 周八's")
    assert moved["entity"] == FIRM_CLEAN and moved["moved_from"] == FIRM_DEBTOR
    (left,) = [row for row in relations_of(cli.url, FIRM_DEBTOR) if row["relation"] == "principal"]
    assert left["valid_to"] == left["valid_from"]  # never held there
    (arrived,) = relations_of(cli.url, FIRM_CLEAN)
    assert (arrived["relation"], arrived["person_id"], arrived["valid_to"], arrived["record_id"]) == \
        ("principal", MANAGER, None, record_id)
    after = screen(cli, MANAGER, "high_consumption", "2026-01-05")
    assert after["decision"] == "allow" and all(m["through"]["entity"] != FIRM_DEBTOR for m in after["measures"])
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            (event,) = c.execute(select(t.audit_events.c.payload).where(
                t.audit_events.c.action == "relations.moved")).scalars().all()
            firms = dict(c.execute(select(e.key, e.id).where(e.key.in_([FIRM_DEBTOR, FIRM_CLEAN]))).all())
    finally:
        engine.dispose()
    assert (event["record_id"], event["from_entity_id"], event["to_entity_id"], event["relations"]) == \
        (record_id, firms[FIRM_DEBTOR], firms[FIRM_CLEAN], 1)
    assert run(cli, "resolve")["relations"] == {"batches": 0, "firms": 0, "opened": 0, "ended": 0, "kept": 0}

    # the judgement undone: the record is FIRM_DEBTOR's again (by its code), and so is the relation
    run(cli, "review", "reject", record_id, "--entity", FIRM_CLEAN, "--reason", "judged in error")
    assert [row["valid_to"] is None for row in relations_of(cli.url, FIRM_CLEAN)] == [False]
    principals = [row for row in relations_of(cli.url, FIRM_DEBTOR) if row["relation"] == "principal"]
    assert sorted(row["valid_to"] is None for row in principals) == [False, True]
    assert screen(cli, MANAGER, "high_consumption", "2026-01-05")["decision"] == "deny"
    assert json.loads(cli("audit", "verify", "--json").stdout)["intact"] is True
