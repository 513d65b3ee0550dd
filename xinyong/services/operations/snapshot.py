"""Beyond one machine: a Parquet snapshot of the store, and the pack's rules run on Spark over it.

`export_snapshot` writes what the rules read (records, record links, entities, listings, their
evidence, and the record keys of open objections) as Parquet, one folder per table, part files
of `PART_ROWS` rows, and a `snapshot.json` manifest with row counts, the newest record id and
every file's SHA-256. Export is not publication: the snapshot holds restricted data (names,
identity numbers, decisions), so the folder is made mode 0700 and every file 0600, it is never
served, and each export is an audit event (`snapshot.exported`).

`evaluate_on_spark` compiles each list's rule with the same rule compiler as the SQL engine
(`evaluate.qualifying_query`, rendered for PostgreSQL and transpiled to Spark SQL by sqlglot:
one rule compiler, not two), runs it over the snapshot's tables registered as Spark views, and
writes the proposals back through the normal path (`evaluate._propose`: listing, evidence,
first transition, audit event), after re-checking each one against the store as it is now:

- already listed: the entity has a listing of that list in an active state (proposed since the
  snapshot, by SQL or by another Spark run) -> skipped, counted as `already_listed`;
- record revoked: an evidence record is no longer the newest active version of its record key
  (revoked or corrected since the snapshot) -> skipped, counted as `record_revoked`;
- record disputed: an objection on an evidence record was opened since the snapshot -> skipped,
  counted as `record_disputed`.

A skipped entity is proposed by a later run if it still qualifies then.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Text, and_, cast, exists, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import JSON, Boolean, Date, DateTime, Float, Integer, String

from xinyong.domain.listings import ACTIVE
from xinyong.domain.pack import Pack
from xinyong.store import tables as t
from xinyong.store.audit import append_event
from xinyong.store.db import get_setting, set_setting

FORMAT = "xinyong-snapshot/1"
MANIFEST = "snapshot.json"
PART_ROWS = 1_000_000  # rows per Parquet part file (Spark reads a table's folder in parallel)
READ_ROWS = 50_000  # rows fetched from the store at a time
# the tables the rules read, and for objections only what they read (no reasons, no names)
TABLES: dict[str, tuple[str, ...] | None] = {
    "records": None, "record_links": None, "entities": None, "listings": None, "listing_evidence": None,
    "objections": ("id", "listing_id", "record_key", "state"),
}
SKIP_REASONS = ("already_listed", "record_revoked", "record_disputed")


class SnapshotError(Exception):
    """The snapshot folder is not usable (not empty to write, not a snapshot to read...)."""


# -- export ---------------------------------------------------------------------------------------

def _arrow_type(column):
    import pyarrow as pa

    kind = column.type
    if isinstance(kind, JSON):
        return pa.string()  # the JSON text, read by Spark's get_json_object
    if isinstance(kind, Boolean):
        return pa.bool_()
    if isinstance(kind, DateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(kind, Date):
        return pa.date32()
    if isinstance(kind, Integer):
        return pa.int64()
    if isinstance(kind, Float):
        return pa.float64()
    if isinstance(kind, (String, Text)):
        return pa.string()
    raise SnapshotError(f"no Parquet type for {column.table.name}.{column.name} ({kind})")


def _private_file(path: Path):
    """A new file, mode 0600 from its creation (never readable by others, whatever the umask)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _export_table(connection, folder: Path, name: str, columns: tuple[str, ...] | None) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = t.metadata.tables[name]
    chosen = [table.c[c] for c in columns] if columns else list(table.c)
    schema = pa.schema([(c.name, _arrow_type(c)) for c in chosen])
    selected = [cast(c, Text).label(c.name) if isinstance(c.type, JSON) else c for c in chosen]
    order = list(table.primary_key.columns) or chosen[:1]
    folder.mkdir(mode=0o700)
    files: list[str] = []
    rows = 0
    writer = handle = None
    in_part = 0
    result = connection.execution_options(yield_per=READ_ROWS).execute(select(*selected).order_by(*order))
    try:
        for chunk in result.partitions():
            if writer is None or in_part >= PART_ROWS:
                if writer is not None:
                    writer.close()
                    handle.close()
                part = folder / f"part-{len(files):05d}.parquet"
                handle = _private_file(part)
                writer = pq.ParquetWriter(handle, schema, compression="zstd")
                files.append(part.name)
                in_part = 0
            columns_of_chunk = list(zip(*chunk))
            data = {c.name: ([_utc(v) for v in columns_of_chunk[i]] if isinstance(c.type, DateTime)
                             else list(columns_of_chunk[i])) for i, c in enumerate(chosen)}
            writer.write_table(pa.Table.from_pydict(data, schema=schema))
            in_part += len(chunk)
            rows += len(chunk)
        if writer is None:  # an empty table still has its schema on disk
            part = folder / "part-00000.parquet"
            handle = _private_file(part)
            writer = pq.ParquetWriter(handle, schema, compression="zstd")
            files.append(part.name)
    finally:
        if writer is not None:
            writer.close()
            handle.close()
    return {"rows": rows, "columns": [c.name for c in chosen],
            "files": {f: _sha256(folder / f) for f in files}}


def export_snapshot(engine: Engine, out: Path, *, actor: str = "cli") -> dict[str, Any]:
    """Write the snapshot into `out` (new, or an empty folder); returns the manifest."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SnapshotError(f"{out} is not an empty folder: a snapshot is written into a new or empty one")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    started = time.perf_counter()
    # one repeatable view of the store: every table read in the same transaction
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        else:  # SQLite (WAL): reads inside one explicit transaction share one snapshot
            connection.exec_driver_sql("BEGIN")
        max_record = connection.execute(select(func.max(t.records.c.id))).scalar() or 0
        # how far the store's changes went: an incremental run over the snapshot re-examines the
        # subjects of listings ended up to here, and the next run those ended after
        max_change = connection.execute(select(func.max(t.changes.c.seq))).scalar() or 0
        pack = get_setting(connection, "pack")
        taken_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        tables = {name: _export_table(connection, out / name, name, columns) for name, columns in TABLES.items()}
        connection.rollback()
    manifest = {"format": FORMAT, "taken_at": taken_at, "backend": engine.dialect.name, "pack": pack,
                "max_record_id": max_record, "max_change_seq": max_change, "tables": tables,
                "seconds": round(time.perf_counter() - started, 2)}
    with _private_file(out / MANIFEST) as handle:
        handle.write(json.dumps(manifest, indent=2, ensure_ascii=False).encode())
    with engine.begin() as connection:
        append_event(connection, actor=actor, action="snapshot.exported", object_type="snapshot",
                     object_id=str(out.resolve()),
                     payload={"format": FORMAT, "taken_at": taken_at, "max_record_id": max_record,
                              "max_change_seq": max_change,
                              "rows": {name: info["rows"] for name, info in tables.items()},
                              "manifest_sha256": _sha256(out / MANIFEST)})
    return manifest


def read_manifest(snapshot: Path) -> dict[str, Any]:
    path = Path(snapshot) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"{snapshot} is not a snapshot written by `xinyong export` ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise SnapshotError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT}")
    return manifest


# -- evaluation on Spark ----------------------------------------------------------------------------

def spark_sql(query) -> str:
    """A SQLAlchemy query of the rule compiler as Spark SQL: rendered for PostgreSQL with its
    values inline, then transpiled by sqlglot (JSON `->>` becomes get_json_object, FLOAT DOUBLE)."""
    import sqlglot

    rendered = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    return sqlglot.transpile(rendered, read="postgres", write="spark")[0]


def _recheck(connection, list_code: str, evidence: dict[int, dict[int, str | None]]) -> dict[str, set[int]]:
    """Entities whose proposal the store, as it is now, no longer supports; by reason."""
    r, L, o = t.records.c, t.listings.c, t.objections.c
    newer = t.records.alias("newer")
    skipped: dict[str, set[int]] = {reason: set() for reason in SKIP_REASONS}
    entities = sorted(evidence)
    for start in range(0, len(entities), 900):  # under every engine's bound-parameter limit
        part = entities[start:start + 900]
        skipped["already_listed"].update(connection.execute(
            select(L.entity_id).where(L.list_code == list_code, L.state.in_(ACTIVE), L.entity_id.in_(part))
        ).scalars())
    owner = {rid: e for e, records in evidence.items() for rid in records}
    ids = sorted(owner)
    for start in range(0, len(ids), 900):
        part = ids[start:start + 900]
        current = set(connection.execute(select(r.id).where(
            r.id.in_(part), r.status == "active",
            ~exists().where(newer.c.record_key == r.record_key, newer.c.version > r.version))).scalars())
        skipped["record_revoked"].update(owner[rid] for rid in part if rid not in current)
        skipped["record_disputed"].update(owner[rid] for rid in connection.execute(
            select(r.id).where(r.id.in_(part), exists().where(
                and_(o.record_key == r.record_key, o.state == "open")))).scalars())
    # one reason per entity, in the order of SKIP_REASONS
    seen: set[int] = set()
    for reason in SKIP_REASONS:
        skipped[reason] -= seen
        seen |= skipped[reason]
    return skipped


def spark_proposals(pack: Pack, snapshot: Path, as_of: dt.date, watermark: int | None = None,
                    ended: set[tuple[int, str]] = frozenset()
                    ) -> tuple[dict[str, tuple[Any, dict[int, dict[int, str | None]]]], int | None]:
    """Run each list's rule query on Spark over the snapshot: list -> (rule, entity -> {record: note}),
    and the number of entities considered (None: all; with a watermark, those its newer records touch
    and the (entity, category) pairs of `ended`, as `fill_touched` gives the SQL engine)."""
    from xinyong.services.resolution.dedupe import spark_session
    from xinyong.services.lists.evaluate import TOUCHED, qualifying_query, rule_in_force, touched_by

    spark = spark_session()
    for name in TABLES:
        spark.read.parquet(str(Path(snapshot) / name)).createOrReplaceTempView(name)
    touched, considered = None, None
    if watermark is not None:  # as the SQL engine does: each list re-examines the entities its categories touch
        touched_rows = spark.sql(spark_sql(touched_by(watermark)))
        if ended:
            touched_rows = touched_rows.unionByName(spark.createDataFrame(
                sorted(ended), touched_rows.select("entity_id", "category").schema)).distinct()
        touched_rows.cache().createOrReplaceTempView(TOUCHED.name)
        touched = TOUCHED
        considered = spark.sql(spark_sql(select(func.count(TOUCHED.c.entity_id.distinct())))).collect()[0][0]
    found: dict[str, tuple[Any, dict[int, dict[int, str | None]]]] = {}
    for spec in pack.lists:
        rule = rule_in_force(spec, as_of)
        if rule is None:
            continue
        evidence: dict[int, dict[int, str | None]] = defaultdict(dict)
        for entity_id, record_id, note in spark.sql(
                spark_sql(qualifying_query(pack, spec, rule, as_of, touched))).toLocalIterator():
            evidence[int(entity_id)][int(record_id)] = note
        found[spec.code] = (rule, evidence)
    return found, considered


def evaluate_on_spark(engine: Engine, pack: Pack, snapshot: Path, as_of: dt.date, *, full: bool = False,
                      actor: str = "evaluator") -> dict[str, Any]:
    """The pack's rules over a snapshot on Spark; proposals re-checked and written to the store."""
    from xinyong.services.lists.evaluate import (
        LAST_AS_OF,
        LAST_CHANGE,
        WATERMARK,
        _propose,
        ended_since,
        proposal_writer,
        without_spent_decisions,
    )

    started = time.perf_counter()
    snapshot = Path(snapshot)
    manifest = read_manifest(snapshot)
    with engine.connect() as connection:
        pack_ref = get_setting(connection, "pack")
        watermark = get_setting(connection, WATERMARK)
        last_change = get_setting(connection, LAST_CHANGE)
        same_day = get_setting(connection, LAST_AS_OF) == as_of.isoformat()
        snapshot_change = manifest.get("max_change_seq")  # absent from snapshots of before: a full run
        # as the SQL engine: an incremental run also looks at the subjects of listings that ended
        # since the last run, up to the snapshot (an end changes what qualifies)
        incremental = (watermark is not None and last_change is not None and snapshot_change is not None
                       and not full and same_day)
        ended = ended_since(connection, pack, int(last_change), snapshot_change) if incremental else set()
    if manifest.get("pack") != pack_ref:
        raise SnapshotError(f"the snapshot was taken of a store with pack {manifest.get('pack')!r}, "
                            f"this store has {pack_ref!r}")
    result: dict[str, Any] = {
        "engine": "spark", "snapshot": str(snapshot), "snapshot_taken_at": manifest["taken_at"],
        "as_of": as_of.isoformat(), "mode": "incremental" if incremental else "full",
        "entities_considered": None, "proposals": 0, "per_list": {},
        "skipped": {reason: 0 for reason in SKIP_REASONS}, "spark_seconds": 0.0, "seconds": 0.0,
    }
    found, result["entities_considered"] = spark_proposals(pack, snapshot, as_of,
                                                           int(watermark) if incremental else None, ended)
    result["spark_seconds"] = round(time.perf_counter() - started, 2)
    with engine.begin() as connection, proposal_writer(connection) as writer:
        for spec in pack.lists:
            if spec.code not in found:
                continue
            rule, evidence = found[spec.code]
            skipped = _recheck(connection, spec.code, evidence)
            for reason, entities in skipped.items():
                result["skipped"][reason] += len(entities)
                for entity in entities:
                    evidence.pop(entity, None)
            without_spent_decisions(connection, spec, rule, evidence)
            result["per_list"][spec.code] = len(evidence)
            result["proposals"] += len(evidence)
            _propose(connection, writer, spec, rule, as_of, evidence, actor, language=pack.language)
        # the snapshot's newest record is what this run has seen; a later SQL run's mark stays
        current = int(get_setting(connection, WATERMARK) or 0)
        set_setting(connection, WATERMARK, str(max(current, int(manifest["max_record_id"]))))
        if snapshot_change is not None:  # listings ended after the snapshot are the next run's
            seen = int(get_setting(connection, LAST_CHANGE) or 0)
            set_setting(connection, LAST_CHANGE, str(max(seen, int(snapshot_change))))
        set_setting(connection, LAST_AS_OF, as_of.isoformat())
        result["seconds"] = round(time.perf_counter() - started, 2)
        append_event(connection, actor=actor, action="evaluation.run", object_type="evaluation",
                     object_id=as_of.isoformat(), payload=result)
    return result
