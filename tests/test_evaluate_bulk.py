"""Evaluation writes its proposals in bulk under one chained event per batch (issue 12).

The store: the independent evaluation set (bench/evalset: real firms from the Shenzhen exchange's
list, written apart from the demo), its register and the penalties that carry the firm's exact
code (so the links do not depend on the matcher's tuning). A full evaluation after the first
files, an incremental one after the rest. Their proposals must be, row for row, what the per-row
writer on main gave (tests/data/evaluate_proposals.json, taken from main before the change);
`audit verify` must check each proposal of a batch and name one altered inside it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from xinyong.domain.pack import load_pack
from xinyong.store import tables as t
from xinyong.store.db import open_engine

DATA = Path(__file__).resolve().parent.parent / "bench" / "evalset" / "data"
GOLDEN = Path(__file__).resolve().parent / "data" / "evaluate_proposals.json"
AS_OF = "2025-09-15"


def _rows(name: str) -> tuple[list[str], list[list[str]]]:
    encoding = json.loads((DATA / "manifest.json").read_text())["files"][name]["encoding"]
    with (DATA / name).open(encoding=encoding, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def _write(path: Path, headers: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def _exact_code_penalties(name: str, authority: str) -> tuple[list[str], list[list[str]]]:
    with (DATA / "truth.csv").open(encoding="utf-8", newline="") as handle:
        exact = {row["record_key"] for row in csv.DictReader(handle) if row["kind"] == "exact_code"}
    headers, rows = _rows(name)
    number = next(i for i, h in enumerate(headers) if h.lstrip("\ufeff").endswith("决定书文号"))
    return headers, [row for row in rows if f"{authority}:{row[number]}" in exact]


def _json(cli, *args: str):
    return json.loads(cli(*args, "--json").stdout)


def build(cli, folder: Path) -> tuple[dict, dict]:
    """Full evaluation after the register, samr's penalties and half the revocations; incremental
    after env's and tax's penalties and the other half. Returns both results."""
    for name in ("register_utf8.csv", "register_gb18030.csv"):
        headers, rows = _rows(name)
        cli("ingest", _write(folder / name, headers, rows), "--authority", "samr", "--category", "registration")
    revocations = _rows("listing_penalties.csv")
    half = len(revocations[1]) // 2
    cli("ingest", _write(folder / "samr.csv", *_exact_code_penalties("penalties_samr.csv", "samr")),
        "--authority", "samr", "--category", "penalty")
    cli("ingest", _write(folder / "revoked1.csv", revocations[0], revocations[1][:half]),
        "--authority", "samr", "--category", "penalty")
    _json(cli, "resolve")
    full = _json(cli, "evaluate", "--as-of", AS_OF, "--full")
    for name, authority in (("penalties_env.csv", "env"), ("penalties_tax.csv", "tax")):
        cli("ingest", _write(folder / f"{authority}.csv", *_exact_code_penalties(name, authority)),
            "--authority", authority, "--category", "penalty")
    cli("ingest", _write(folder / "revoked2.csv", revocations[0], revocations[1][half:]),
        "--authority", "samr", "--category", "penalty")
    _json(cli, "resolve")
    incremental = _json(cli, "evaluate", "--as-of", AS_OF)
    return full, incremental


def proposals(url: str) -> list[list]:
    """Every listing, row for row: what it is, its evidence and its first transition."""
    L, E, T, r, e = t.listings.c, t.listing_evidence.c, t.listing_transitions.c, t.records.c, t.entities.c
    engine = open_engine(url)
    try:
        with engine.connect() as c:
            evidence: dict[int, list] = {}
            for listing_id, key, version, note in c.execute(
                    select(E.listing_id, r.record_key, r.version, E.note).join(t.records, r.id == E.record_id)
                    .order_by(E.listing_id, r.record_key, r.version)):
                evidence.setdefault(listing_id, []).append([key, version, note])
            steps: dict[int, list] = {}
            for row in c.execute(select(T.listing_id, T.from_state, T.to_state, T.on_date, T.actor, T.reason,
                                        T.authority).order_by(T.id)):
                steps.setdefault(row.listing_id, []).append(
                    [row.from_state, row.to_state, row.on_date.isoformat(), row.actor, row.reason, row.authority])
            out = []
            for row in c.execute(select(L.id, e.key, L.list_code, L.rule_version, L.state, L.subject_kind,
                                        L.language, L.proposed_on, L.notified_on, L.effective_from,
                                        L.effective_to, L.review_due, L.ended_on)
                                 .join(t.entities, e.id == L.entity_id).order_by(L.id)):
                dates = [d.isoformat() if d else None for d in row[7:]]
                out.append([row.id, row.key, row.list_code, row.rule_version, row.state, row.subject_kind,
                            row.language, *dates, evidence.get(row.id, []), steps.get(row.id, [])])
            return out
    finally:
        engine.dispose()


def _verify(cli) -> dict:
    result = cli("audit", "verify", "--json", ok=False)
    return json.loads(result.stdout)


def test_full_and_incremental_proposals_are_those_of_the_per_row_writer(cli, tmp_path):
    full, incremental = build(cli, tmp_path)
    got = {"full": {k: full[k] for k in ("mode", "proposals", "per_list")},
           "incremental": {k: incremental[k] for k in ("mode", "entities_considered", "proposals", "per_list")},
           "listings": proposals(cli.url)}
    if os.environ.get("XINYONG_WRITE_GOLDEN") == "1":  # only ever from main, before a change
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert got["full"] == expected["full"] and got["incremental"] == expected["incremental"]
    assert full["proposals"] > 100 and incremental["proposals"] > 100  # both runs propose in bulk
    assert len(got["listings"]) == len(expected["listings"])
    for mine, theirs in zip(got["listings"], expected["listings"]):
        assert mine == theirs
    report = _verify(cli)
    assert report["intact"], report


def test_audit_verify_names_a_proposal_altered_inside_a_batch(cli, tmp_path, monkeypatch):
    from xinyong.services.lists import evaluate

    monkeypatch.setattr(evaluate, "PROPOSAL_CHUNK", 40)  # several batches from a small store
    headers, rows = _rows("register_utf8.csv")
    cli("ingest", _write(tmp_path / "register.csv", headers, rows), "--authority", "samr", "--category", "registration")
    headers, rows = _rows("listing_penalties.csv")
    cli("ingest", _write(tmp_path / "revoked.csv", headers, rows[:150]), "--authority", "samr", "--category", "penalty")
    _json(cli, "resolve")
    result = _json(cli, "evaluate", "--as-of", AS_OF)
    assert result["proposals"] > 100
    assert _verify(cli)["intact"]
    engine = open_engine(cli.url)
    L, E, e = t.listings.c, t.listing_evidence.c, t.audit_events.c
    try:
        with engine.connect() as c:
            batches = c.execute(select(e.seq, e.payload).where(e.action == "listings.proposed").order_by(e.seq)).all()
            assert len(batches) >= 3 and all(p["count"] == len(p["proposals"]) for _, p in batches)
            # every proposal is in exactly one batch, and there is no event per proposal
            sealed = [listing_id for _, p in batches for listing_id, _ in p["proposals"]]
            assert sorted(sealed) == c.execute(select(L.id).order_by(L.id)).scalars().all()
            assert c.execute(select(e.seq).where(e.action == "listing.proposed")).first() is None
            second = batches[1].payload["proposals"]
            moved, other = second[len(second) // 2][0], second[len(second) // 2 + 1][0]
            original = c.execute(select(E.record_id).where(E.listing_id == moved)).scalar_one()
            spare = c.execute(select(t.records.c.id).where(t.records.c.category == "registration")).scalars().first()
        with engine.begin() as c:  # the evidence of one proposal swapped for another record
            c.execute(update(t.listing_evidence).where(E.listing_id == moved).values(record_id=spare))
        report = _verify(cli)
        assert not report["intact"]
        problems = report.get("problems", [report["problem"]])
        assert problems == [(f"listing {moved}: its proposal (entity, list, rule, date or evidence) differs from "
                             f"the one batch event {batches[1].seq} sealed")]
        with engine.begin() as c:  # put back: intact again
            c.execute(update(t.listing_evidence).where(E.listing_id == moved).values(record_id=original))
        assert _verify(cli)["intact"]
        with engine.begin() as c:  # now the proposal names another firm
            c.execute(update(t.listings).where(L.id == moved).values(
                entity_id=select(L.entity_id).where(L.id == other).scalar_subquery()))
        report = _verify(cli)
        assert report["problem"] == (f"listing {moved}: its proposal (entity, list, rule, date or evidence) differs "
                                     f"from the one batch event {batches[1].seq} sealed")
    finally:
        engine.dispose()


def test_resolve_writes_new_entities_without_a_round_trip_each(cli, tmp_path):
    """The evaluation set's firms absent from the register each get a new entity: the number of
    statements a run sends does not grow with them (before: a look-up and three inserts each)."""
    from sqlalchemy import event

    from xinyong.domain.pack import load_pack
    from xinyong.services.resolution.resolve import resolve

    with (DATA / "truth.csv").open(encoding="utf-8", newline="") as handle:
        absent = {row["record_key"] for row in csv.DictReader(handle) if row["kind"] == "absent"}
    headers, rows = _rows("penalties_samr.csv")
    number = headers.index("行政处罚决定书文号")
    rows = [row for row in rows if f"samr:{row[number]}" in absent]
    assert len(rows) >= 20
    cli("ingest", _write(tmp_path / "absent.csv", headers, rows), "--authority", "samr", "--category", "penalty")
    engine = open_engine(cli.url)
    statements = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        result = resolve(engine, load_pack("cn"), actor="test")
        assert result.new_entities >= 20
        assert len(statements) < 40, len(statements)
        with engine.connect() as c:  # every link names an entity that exists, with its name
            orphans = c.execute(select(t.record_links.c.record_id).outerjoin(
                t.entities, t.entities.c.id == t.record_links.c.entity_id).where(t.entities.c.id.is_(None))).all()
            assert orphans == []
            named = c.execute(select(t.entity_names.c.entity_id).distinct()).scalars().all()
            assert len(named) == result.new_entities
    finally:
        engine.dispose()
    assert _verify(cli)["intact"]


def _small_store(cli, folder: Path) -> None:
    headers, rows = _rows("register_utf8.csv")
    cli("ingest", _write(folder / "register.csv", headers, rows), "--authority", "samr", "--category", "registration")
    headers, rows = _rows("listing_penalties.csv")
    cli("ingest", _write(folder / "revoked.csv", headers, rows[:150]), "--authority", "samr", "--category", "penalty")
    _json(cli, "resolve")


def _triggers(c) -> list:
    if c.dialect.name != "sqlite":
        return c.execute(text("SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE tgname LIKE 'changes_%' "
                              "ORDER BY tgname")).all()
    return c.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")).all()


def test_changes_hold_what_the_row_triggers_would_write(cli, tmp_path, monkeypatch):
    """The bulk writer leaves in `changes` the rows, in the order, that a trigger per inserted row
    leaves (screening's refresh and `/v1/changes` read them), and the triggers as they were."""
    from xinyong.services.lists import evaluate

    monkeypatch.setattr(evaluate, "PROPOSAL_CHUNK", 40)
    _small_store(cli, tmp_path)
    engine = open_engine(cli.url)
    C, L, E, T, a = t.changes.c, t.listings.c, t.listing_evidence.c, t.listing_transitions.c, t.audit_events.c
    try:
        with engine.connect() as c:
            before, triggers = c.execute(select(func.coalesce(func.max(C.seq), 0))).scalar_one(), _triggers(c)
        assert _json(cli, "evaluate", "--as-of", AS_OF)["proposals"] > 100
        with engine.connect() as c:
            assert _triggers(c) == triggers
            written = [tuple(row) for row in c.execute(select(C.kind, C.ref_id).where(C.seq > before).order_by(C.seq))]
            expected = []
            for (payload,) in c.execute(select(a.payload).where(a.action == "listings.proposed").order_by(a.seq)):
                ids = [listing_id for listing_id, _ in payload["proposals"]]
                expected += [("listing", listing_id) for listing_id in ids]
                expected += [("listing", listing_id) for listing_id in c.execute(
                    select(E.listing_id).where(E.listing_id.in_(ids)).order_by(E.listing_id, E.record_id)).scalars()]
                expected += [("transition", transition_id) for transition_id in c.execute(
                    select(T.id).where(T.listing_id.in_(ids)).order_by(T.id)).scalars()]
            assert len(expected) > 300 and written == expected
    finally:
        engine.dispose()


def test_a_failed_evaluation_leaves_the_triggers_and_no_proposal(cli, tmp_path, monkeypatch):
    from xinyong.services.lists import evaluate

    _small_store(cli, tmp_path)
    engine = open_engine(cli.url)
    pack = load_pack("cn")
    try:
        with engine.connect() as c:
            triggers, changes = _triggers(c), c.execute(select(func.count()).select_from(t.changes)).scalar_one()

        def fail(*args, **kwargs):
            raise RuntimeError("the run stops")

        monkeypatch.setattr(evaluate, "append_event", fail)
        with pytest.raises(RuntimeError):
            evaluate.evaluate(engine, pack, dt.date.fromisoformat(AS_OF), actor="test")
        with engine.connect() as c:
            assert _triggers(c) == triggers
            assert c.execute(select(func.count()).select_from(t.listings)).scalar_one() == 0
            assert c.execute(select(func.count()).select_from(t.changes)).scalar_one() == changes
        with engine.begin() as c:  # the triggers still work: a listing written by hand is noted
            entity_id = c.execute(select(t.entities.c.id)).scalars().first()
            c.execute(t.listings.insert().values(id=1, entity_id=entity_id, list_code="court_defaulters",
                                                 rule_version="1", state="proposed", subject_kind="enterprise",
                                                 language="zh", proposed_on=dt.date(2025, 9, 15),
                                                 created_at=dt.datetime(2025, 9, 15, tzinfo=dt.timezone.utc)))
        with engine.connect() as c:  # (on PostgreSQL the triggers write at COMMIT)
            assert c.execute(select(t.changes.c.kind, t.changes.c.ref_id).order_by(t.changes.c.seq.desc())
                             .limit(1)).one() == ("listing", 1)
    finally:
        engine.dispose()
