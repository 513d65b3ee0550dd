"""`xinyong export --format parquet` and `xinyong evaluate --engine spark`, on SQLite and PostgreSQL.

The store: a small demo jurisdiction ingested and resolved through the CLI, then changed by hand
the way operators change a store (a record revoked, a record disputed) so that the rules' filters
for superseded and disputed records have something to filter. The Spark engine must find exactly
the rows the SQL engine's rule queries find, write them through the normal due-process path, and
re-check its proposals against the store as it is after the snapshot.
"""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from xinyong.domain.pack import load_pack
from xinyong.services.operations.demo import generate
from xinyong.services.lists.evaluate import qualifying_query, rule_in_force
from xinyong.store import tables as t
from xinyong.store.db import open_engine

AS_OF = "2025-07-01"  # the demo's records run to 2025-06-30


def run(cli, *args):
    return json.loads(cli(*args, "--json").stdout)


def build_store(cli, folder: Path, entities: int) -> None:
    manifest = generate(folder / "demo", entities, 7)
    for entry in manifest["files"]:
        cli("ingest", folder / "demo" / entry["file"], "--authority", entry["authority"],
            "--category", entry["category"])
    cli("resolve")


def _first_record(url: str, category: str) -> str:
    engine = open_engine(url)
    with engine.connect() as c:
        key = c.execute(select(t.records.c.record_key).where(t.records.c.category == category)
                        .order_by(t.records.c.id)).scalars().first()
    engine.dispose()
    assert key is not None
    return key


def sql_rows(url: str, as_of: dt.date) -> dict:
    """What the SQL engine's rule queries select on the store: list -> entity -> {record: note}."""
    pack = load_pack("cn")
    engine = open_engine(url)
    found: dict = {}
    with engine.connect() as c:
        for spec in pack.lists:
            rule = rule_in_force(spec, as_of)
            if rule is None:
                continue
            for entity, record, note in c.execute(qualifying_query(pack, spec, rule, as_of)):
                found.setdefault((spec.code, rule.version), {}).setdefault(entity, {})[record] = note
    engine.dispose()
    return found


def proposals(url: str) -> dict:
    """The proposed listings in the store, in the same shape."""
    L, E = t.listings.c, t.listing_evidence.c
    engine = open_engine(url)
    found: dict = {}
    with engine.connect() as c:
        for code, version, entity, record, note in c.execute(
                select(L.list_code, L.rule_version, L.entity_id, E.record_id, E.note)
                .join(t.listing_evidence, E.listing_id == L.id).where(L.state == "proposed")):
            found.setdefault((code, version), {}).setdefault(entity, {})[record] = note
    engine.dispose()
    return found


def test_export_files_are_private_and_audited(cli, tmp_path):
    build_store(cli, tmp_path, 40)
    out = tmp_path / "snapshot"
    manifest = run(cli, "export", "--format", "parquet", "--out", out)
    assert manifest["tables"]["records"]["rows"] > 0 and manifest["max_record_id"] > 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.parent.name for p in files} >= {"records", "record_links", "entities", "listings"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in out.rglob("*"):
        if path.is_dir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    # objections travel without their reasons and filers: only what the rules read
    assert manifest["tables"]["objections"]["columns"] == ["id", "listing_id", "record_key", "state"]
    engine = open_engine(cli.url)
    with engine.connect() as c:
        event = c.execute(select(t.audit_events.c.payload).where(
            t.audit_events.c.action == "snapshot.exported")).scalar_one()
    engine.dispose()
    assert event["rows"]["records"] == manifest["tables"]["records"]["rows"]
    # a snapshot is never written over another folder's content
    refused = cli("export", "--format", "parquet", "--out", out, ok=False)
    assert refused.exit_code == 1 and "not an empty folder" in refused.output


@pytest.mark.spark
def test_spark_proposals_equal_sql_and_are_rechecked(cli, tmp_path):
    pytest.importorskip("pyspark")
    build_store(cli, tmp_path, 150)
    cli("record", "revoke", _first_record(cli.url, "penalty"), "--on", "2025-06-30")
    cli("objection", "file", "--record", _first_record(cli.url, "court_defaulter"), "--reason", "paid",
        "--on", "2025-06-30")
    as_of = dt.date.fromisoformat(AS_OF)
    expected = sql_rows(cli.url, as_of)
    assert len(expected) >= 4 and sum(len(v) for v in expected.values()) >= 20  # most lists fire

    snapshot = tmp_path / "snapshot"
    cli("export", "--format", "parquet", "--out", snapshot)
    first = run(cli, "evaluate", "--engine", "spark", "--snapshot", snapshot, "--as-of", AS_OF, "--full")
    assert first["engine"] == "spark" and first["mode"] == "full"
    assert first["skipped"] == {"already_listed": 0, "record_revoked": 0, "record_disputed": 0}
    written = proposals(cli.url)
    assert written == expected  # row for row: list, rule version, entity, evidence record, note
    assert first["proposals"] == sum(len(v) for v in expected.values())
    # and the SQL engine, run now, finds nothing Spark missed
    assert run(cli, "evaluate", "--as-of", AS_OF, "--full")["proposals"] == 0

    # after the snapshot, one proposal's only evidence record is revoked (its listing withdrawn)
    L, E = t.listings.c, t.listing_evidence.c
    engine = open_engine(cli.url)
    with engine.connect() as c:
        entity, key = c.execute(
            select(L.entity_id, t.records.c.record_key).join(t.listing_evidence, E.listing_id == L.id)
            .join(t.records, t.records.c.id == E.record_id)
            .where(L.list_code == "serious_dishonesty", L.state == "proposed").order_by(L.id)).first()
    engine.dispose()
    assert run(cli, "record", "revoke", key, "--on", AS_OF)["listings_withdrawn"]
    again = run(cli, "evaluate", "--engine", "spark", "--snapshot", snapshot, "--as-of", AS_OF, "--full")
    # the old snapshot still shows the record active and the entity unlisted: the store says otherwise
    assert again["proposals"] == 0
    assert again["skipped"] == {"already_listed": first["proposals"] - 1, "record_revoked": 1,
                                "record_disputed": 0}
    left = {k: {e: r for e, r in v.items() if not (k[0] == "serious_dishonesty" and e == entity)}
            for k, v in expected.items()}
    assert proposals(cli.url) == {k: v for k, v in left.items() if v}


@pytest.mark.spark
def test_spark_needs_a_snapshot(cli, tmp_path):
    refused = cli("evaluate", "--engine", "spark", ok=False)
    assert refused.exit_code == 1 and "--snapshot" in refused.output
    refused = cli("evaluate", "--engine", "spark", "--snapshot", tmp_path, ok=False)
    assert refused.exit_code == 1 and "not a snapshot" in refused.output


@pytest.mark.spark
def test_spark_incremental_run_re_examines_what_the_sql_engine_would(cli, tmp_path):
    """After a full SQL run, a second jurisdiction's files arrive (new firms, persons and records):
    Spark's incremental run over a snapshot re-examines, list by list, the entities those records
    touch in the list's categories (as the SQL engine's temporary table does) and proposes exactly
    the rows the SQL rule queries select over that scope; a full SQL run then finds nothing left."""
    pytest.importorskip("pyspark")
    from xinyong.services.lists.evaluate import TOUCHED, WATERMARK, fill_touched
    from xinyong.store.db import get_setting

    build_store(cli, tmp_path, 60)
    as_of = dt.date.fromisoformat(AS_OF)
    assert run(cli, "evaluate", "--as-of", AS_OF, "--full")["proposals"] > 0
    before = proposals(cli.url)
    manifest = generate(tmp_path / "arrived", 40, 11)
    for entry in manifest["files"]:
        cli("ingest", tmp_path / "arrived" / entry["file"], "--authority", entry["authority"],
            "--category", entry["category"])
    cli("resolve")

    pack = load_pack("cn")
    engine = open_engine(cli.url)
    expected: dict = {}
    with engine.connect() as c, c.begin():
        considered = fill_touched(c, int(get_setting(c, WATERMARK)))
        for spec in pack.lists:
            rule = rule_in_force(spec, as_of)
            if rule is not None:
                for entity, record, note in c.execute(qualifying_query(pack, spec, rule, as_of, TOUCHED)):
                    expected.setdefault((spec.code, rule.version), {}).setdefault(entity, {})[record] = note
        c.rollback()  # the temporary table goes; nothing else was written
    engine.dispose()
    assert considered > 0 and sum(len(v) for v in expected.values()) >= 5

    snapshot = tmp_path / "snapshot"
    cli("export", "--format", "parquet", "--out", snapshot)
    spark = run(cli, "evaluate", "--engine", "spark", "--snapshot", snapshot, "--as-of", AS_OF)
    assert spark["mode"] == "incremental" and spark["entities_considered"] == considered
    after = proposals(cli.url)
    new = {k: {e: r for e, r in v.items() if e not in before.get(k, {})} for k, v in after.items()}
    assert {k: v for k, v in new.items() if v} == expected
    assert run(cli, "evaluate", "--as-of", AS_OF, "--full")["proposals"] == 0


@pytest.mark.spark
def test_spark_incremental_run_re_examines_the_subjects_of_listings_ended_since_the_last_run(cli, tmp_path):
    """格力 and 京东, A-grade taxpayers, were put on the court's list, which ended their redlist. On
    11-03 格力's court listing was withdrawn on an upheld objection and 京东 paid. The SQL engine's
    incremental run of that day gives 格力 its redlist back (it re-examines the subjects of listings
    ended since its last run); Spark's looked only at entities whose records were new, found none,
    and left 格力 off the redlist. Now the snapshot keeps the store's change sequence and Spark's
    incremental run re-examines the same subjects: the same one proposal, and nothing is left for
    a full SQL run."""
    pytest.importorskip("pyspark")
    import time_machine
    from test_trust_adversarial import TODAY
    from test_trust_adversarial_2 import GREE
    from test_trust_adversarial_4 import gree_undone_and_jd_paid_after_an_evaluation

    with time_machine.travel(TODAY, tick=False):
        gree_undone_and_jd_paid_after_an_evaluation(cli, tmp_path)
    snapshot = tmp_path / "snapshot"
    cli("export", "--format", "parquet", "--out", snapshot)
    spark = run(cli, "evaluate", "--engine", "spark", "--snapshot", snapshot, "--as-of", "2026-11-03")
    assert (spark["mode"], spark["per_list"]["tax_a_grade"]) == ("incremental", 1)
    (proposed,) = [(code, entity) for (code, _), entities in proposals(cli.url).items() for entity in entities]
    engine = open_engine(cli.url)
    with engine.connect() as c:
        gree = c.execute(select(t.entities.c.id).where(t.entities.c.key == GREE)).scalar_one()
    engine.dispose()
    assert proposed == ("tax_a_grade", gree)
    for full in ((), ("--full",)):
        assert run(cli, "evaluate", "--as-of", "2026-11-03", *full)["proposals"] == 0
