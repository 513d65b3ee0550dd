"""Scale run on PostgreSQL: a store of N records, and what each stage costs per record there.

    python bench/scale.py                          # 10,000,000 records (within 40 GB and 90 minutes)
    python bench/scale.py --records 1000000        # what fits in ~20 minutes on a shared 2-core machine
    python bench/scale.py --db postgresql://user@host/empty_db --keep   # a given empty database, kept

Set-up (timed, reported): the demo jurisdiction with S register entities (`--seed-entities`,
default 10,000) through the normal pipeline (`init`, `ingest_file` of every file, `resolve`), then
the seed store copied in SQL until it holds N records (bench/evaluate.py's `clone`: ids offset,
every identifier replaced by a fresh valid one). Without `--db`, a new database `xy_scale_<time>`
is made on the local server (`XINYONG_BENCH_PG_ADMIN`, default postgresql+psycopg://postgres@
127.0.0.1:5432/postgres) and dropped at the end unless `--keep`.

Then, on the N-record store, each stage through the service the CLI calls (`services.lists.evaluate.
evaluate`, `services.intake.ingest.ingest_file`, `services.resolution.resolve.resolve`, `ScreeningIndex.load`,
`services.operations.snapshot.export_snapshot`: faster code behind them is measured as soon as it is merged),
timed in this process (no interpreter start-up), beside a baseline from the same run:

  evaluate full   `evaluate(as_of=2025-07-01, full=True)`                vs the floor SQL of
                  bench/evaluate.py (per list, the records the rules read, grouped by entity).
  ingest          `ingest_file` of a CSV of B new samr penalties (default 10,000) for existing
                  register entities                                 vs PostgreSQL COPY of the
                  same file into a bare text table.
  resolve         `resolve` (links those B records)                 vs one SQL join of the same
                  records' subject codes to the register's identifiers (exact code, no model).
  evaluate incr.  `evaluate(as_of=2025-07-01)` (incremental: the B records)
                  vs the floor restricted to the entities the new records touch.
  screening index `ScreeningIndex.load(engine, pack, names=True)` in a fresh process: seconds
                  and RSS growth                                     vs a plain SELECT of the
                  same tables' rows (entities, identifiers, names, relations, listings) in a
                  fresh process.
  export          `export_snapshot` (`xinyong export --format parquet`) of the fresh store (before
                  evaluation): seconds and bytes per record (the snapshot is deleted afterwards).
  spark           with `--spark`: the rule queries on Spark (local mode, `spark_proposals`) over that
                  snapshot, session start apart; their rows compared with evaluate full's proposals.
  size            pg_database_size and each big table's total size, per record.

Prints the load average after each stage, a table, per-record costs and their extrapolation to 10 million
records; writes bench/out/scale.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from xinyong.domain.pack import load_pack
from xinyong.services.lists.evaluate import evaluate
from xinyong.services.intake.ingest import ingest_file
from xinyong.services.resolution.resolve import resolve
from xinyong.services.operations.snapshot import export_snapshot
from xinyong.store import tables as t
from xinyong.store.db import open_engine

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "scale.json"
DEFAULT_RECORDS = 10_000_000
DISK_LIMIT_GB = 40.0
TIME_LIMIT_MINUTES = 90.0
ADMIN = os.environ.get("XINYONG_BENCH_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
AS_OF_DAY = dt.date(2025, 7, 1)

_spec = importlib.util.spec_from_file_location("bench_evaluate", ROOT / "evaluate.py")
bench_evaluate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_evaluate)  # type: ignore[union-attr]


def say(message: str) -> None:
    print(message, flush=True)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} cores)"


def timed(call) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def in_child(code: str, url: str) -> dict[str, Any]:
    """Run `code` in a fresh interpreter; it prints one JSON line."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), url], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        sys.exit(f"child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


INDEX_CHILD = """
    import json, sys, time, psutil
    from xinyong.domain.pack import load_pack
    from xinyong.services.screening.screen import ScreeningIndex
    from xinyong.store.db import open_engine
    engine = open_engine(sys.argv[1]); pack = load_pack("cn")
    with engine.connect() as c: c.exec_driver_sql("select 1")
    before = psutil.Process().memory_info().rss
    started = time.perf_counter()
    index = ScreeningIndex.load(engine, pack, names=True)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rss_mb": (psutil.Process().memory_info().rss - before) / 2**20}))
"""

SELECT_CHILD = """
    import json, sys, time, psutil
    from xinyong.store.db import open_engine
    engine = open_engine(sys.argv[1])
    with engine.connect() as c: c.exec_driver_sql("select 1")
    before = psutil.Process().memory_info().rss
    started = time.perf_counter()
    rows = 0
    kept = []
    with engine.connect() as c:
        for sql in ("SELECT id, key, kind, status, region FROM entities",
                    "SELECT entity_id, scheme, value FROM entity_identifiers",
                    "SELECT entity_id, name, normalised, \\"current\\" FROM entity_names",
                    "SELECT entity_id, relation, person_name, person_id, other_entity_id FROM entity_relations",
                    "SELECT id, entity_id, list_code, state, effective_from, effective_to FROM listings"):
            part = c.exec_driver_sql(sql).all()
            rows += len(part)
            kept.append(part)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rows": rows,
                      "rss_mb": (psutil.Process().memory_info().rss - before) / 2**20}))
"""


def sizes(engine) -> dict[str, int]:
    with engine.connect() as c:
        found = {"database": c.execute(text("SELECT pg_database_size(current_database())")).scalar_one()}
        for table in ("records", "record_links", "entities", "entity_identifiers", "entity_names",
                      "entity_relations", "listings", "listing_evidence", "audit_events"):
            found[table] = c.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar_one()
    return found


def count(engine, table, *where) -> int:
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def copy_baseline(url: str, path: Path) -> float:
    """PostgreSQL COPY of the same CSV into a bare table of text columns, one transaction."""
    import psycopg

    with path.open(encoding="utf-8") as handle:
        headers = next(csv.reader(handle))
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as connection:
        columns = ", ".join(f"c{i} text" for i in range(len(headers)))
        connection.execute(f"CREATE TEMP TABLE bench_copy ({columns})")
        started = time.perf_counter()
        with connection.cursor() as cursor, path.open("rb") as handle, \
                cursor.copy("COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            while block := handle.read(1 << 20):
                copy.write(block)
        connection.commit()
        return time.perf_counter() - started


def resolve_floor(engine, after: int) -> tuple[float, int]:
    """The new records' subject codes joined to the register's identifiers: exact, no model."""
    r, i = t.records.c, t.entity_identifiers.c
    with engine.connect() as c:
        started = time.perf_counter()
        rows = c.execute(select(r.id, i.entity_id).join(t.entity_identifiers, i.value == r.subject_code)
                         .where(r.id > after)).all()
        return time.perf_counter() - started, len(rows)


def prepare_database(args) -> tuple[str, bool]:
    if args.db:
        return args.db, False
    name = f"xy_scale_{int(time.time())}"
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return ADMIN.rsplit("/", 1)[0] + "/" + name, True


def drop_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def free_gb(engine) -> float | None:
    try:
        with engine.connect() as c:
            folder = c.execute(text("SHOW data_directory")).scalar_one()
        return shutil.disk_usage(folder).free / 2**30
    except Exception:  # noqa: BLE001 - not a superuser, or the server is elsewhere
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS, help=f"records (default {DEFAULT_RECORDS:,})")
    parser.add_argument("--seed-entities", type=int, default=10_000, help="register entities of the demo seed")
    parser.add_argument("--batch", type=int, default=10_000, help="new records for ingest, resolve, incremental")
    parser.add_argument("--db", help="an empty PostgreSQL database (default: a new one on the local server)")
    parser.add_argument("--keep", action="store_true", help="keep the database made for the run")
    parser.add_argument("--workdir", type=Path, help="folder for the demo files (default: a temporary one)")
    parser.add_argument("--spark", action="store_true",
                        help="also run the rule queries on Spark (local) over the snapshot, compared row for row")
    parser.add_argument("--bytes-per-record", type=float, default=2600.0,
                        help="disk estimate used to refuse a run over 40 GB before it starts")
    args = parser.parse_args()
    run_started = time.perf_counter()
    estimate_gb = args.records * args.bytes_per_record / 2**30
    if estimate_gb > DISK_LIMIT_GB:
        sys.exit(f"{args.records:,} records x {args.bytes_per_record:.0f} B = {estimate_gb:.1f} GB > {DISK_LIMIT_GB} GB")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="xy-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XINYONG_AUDIT_DIR", str(workdir / "audit"))  # not ~/.xinyong
    say(f"bench/scale.py --records {args.records:,}: {platform.platform()}, Python {platform.python_version()}")
    say(f"start: {load()}")
    url, made = prepare_database(args)
    pack = load_pack("cn")
    try:
        engine = open_engine(url)
        free = free_gb(engine)
        if free is not None and estimate_gb > free:
            sys.exit(f"estimated {estimate_gb:.1f} GB, {free:.1f} GB free where PostgreSQL writes")
        # -- set-up: seed pipeline, then copies ------------------------------------------------
        say(f"set-up: demo seed of {args.seed_entities:,} register entities through the pipeline")
        seed = bench_evaluate.pipeline(url, workdir / "demo", args.seed_entities)
        seed_records = count(engine, t.records)
        copies = max(1, math.ceil(args.records / seed_records))
        say(f"  seed: {seed_records:,} records (ingest {seed['ingest_seconds']:.0f} s, "
            f"resolve {seed['resolve_seconds']:.0f} s); {copies} copies for {args.records:,}")
        cloned = bench_evaluate.clone(url, copies) if copies > 1 else {"seconds": 0.0, "copies": 1}
        with engine.connect() as c:
            c.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        records, entities = count(engine, t.records), count(engine, t.entities)
        say(f"  store: {records:,} records, {entities:,} entities; copies in {cloned['seconds']:.0f} s; {load()}")
        results: dict[str, Any] = {"records": records, "entities": entities, "seed": seed, "clone": cloned}

        # -- the Parquet snapshot for the Spark path ----------------------------------------------
        snapshot = workdir / "snapshot"
        shutil.rmtree(snapshot, ignore_errors=True)
        wall, exported = timed(lambda: export_snapshot(engine, snapshot, actor="bench"))
        parquet_bytes = sum(p.stat().st_size for p in snapshot.rglob("*.parquet"))
        records_bytes = sum(p.stat().st_size for p in (snapshot / "records").rglob("*.parquet"))
        results["export"] = {"wall": wall, "internal": exported["seconds"], "bytes": parquet_bytes,
                             "records_bytes": records_bytes}
        say(f"  export parquet: {wall:.1f} s, {parquet_bytes / 2**20:.0f} MB; {load()}")

        if args.spark:
            from xinyong.services.resolution.dedupe import spark_session
            from xinyong.services.operations.snapshot import spark_proposals

            session_seconds, _ = timed(spark_session)
            wall, (found, _) = timed(lambda: spark_proposals(pack, snapshot, AS_OF_DAY))
            spark_rows = {code: {e: dict(rs) for e, rs in evidence.items()} for code, (_, evidence) in found.items()}
            results["spark"] = {"session": session_seconds, "wall": wall,
                                "proposals": sum(len(v) for v in spark_rows.values())}
            say(f"  spark (local, over the snapshot): session {session_seconds:.1f} s, rule queries {wall:.1f} s, "
                f"{results['spark']['proposals']:,} proposals; {load()}")
        if not args.spark:
            shutil.rmtree(snapshot, ignore_errors=True)

        # -- evaluate, full -------------------------------------------------------------------
        bench_evaluate.run_floor(engine, pack)  # warm-up, untimed
        floor = bench_evaluate.run_floor(engine, pack)
        wall, full = timed(lambda: evaluate(engine, pack, AS_OF_DAY, full=True, actor="bench").as_dict())
        results["evaluate_full"] = {"wall": wall, "internal": full["seconds"], "proposals": full["proposals"],
                                    "floor": floor["seconds"]}
        if args.spark:
            L, E = t.listings.c, t.listing_evidence.c
            sql_rows: dict[str, dict[int, dict[int, Any]]] = {}
            with engine.connect() as c:
                for code, entity, record, note in c.execute(
                        select(L.list_code, L.entity_id, E.record_id, E.note)
                        .join(t.listing_evidence, E.listing_id == L.id)):
                    sql_rows.setdefault(code, {}).setdefault(entity, {})[record] = note
            same = {k: v for k, v in spark_rows.items() if v} == sql_rows
            results["spark"]["equal_to_sql"] = same
            shutil.rmtree(snapshot, ignore_errors=True)
            say(f"  spark proposals equal to the SQL engine's, row for row: {same}")
        say(f"  evaluate full: {wall:.1f} s ({full['seconds']} s inside), {full['proposals']:,} proposals; "
            f"floor {floor['seconds']:.1f} s; {load()}")

        # -- ingest and resolve a new batch ----------------------------------------------------
        with engine.connect() as c:
            watermark = c.execute(select(func.max(t.records.c.id))).scalar_one()
        batch_path = workdir / "scale_penalties.csv"
        batch = bench_evaluate.write_penalty_batch(engine, batch_path, args.batch)
        copy_seconds = copy_baseline(url, batch_path)
        wall, ingested = timed(lambda: ingest_file(engine, pack, batch_path, "samr", "penalty"))
        accepted = ingested.accepted
        results["ingest"] = {"rows": batch["rows"], "accepted": accepted, "wall": wall, "copy": copy_seconds}
        say(f"  ingest: {accepted:,} rows in {wall:.1f} s; COPY {copy_seconds:.2f} s; {load()}")
        wall, resolved = timed(lambda: resolve(engine, pack).as_dict())
        floor_seconds, floor_rows = resolve_floor(engine, watermark)
        results["resolve"] = {"records": batch["rows"], "wall": wall, "floor": floor_seconds,
                              "floor_rows": floor_rows, "result": resolved}
        say(f"  resolve: {wall:.1f} s; floor {floor_seconds:.2f} s; {load()}")

        # -- evaluate, incremental -------------------------------------------------------------
        touched = bench_evaluate.touched_by_records(watermark)
        floor = bench_evaluate.run_floor(engine, pack, touched=touched)
        wall, incremental = timed(lambda: evaluate(engine, pack, AS_OF_DAY, actor="bench").as_dict())
        results["evaluate_incremental"] = {"wall": wall, "internal": incremental["seconds"],
                                           "mode": incremental["mode"], "proposals": incremental["proposals"],
                                           "floor": floor["seconds"]}
        say(f"  evaluate {incremental['mode']}: {wall:.1f} s ({incremental['seconds']} s inside); "
            f"floor {floor['seconds']:.2f} s; {load()}")

        # -- screening index -------------------------------------------------------------------
        index = in_child(INDEX_CHILD, url)
        plain = in_child(SELECT_CHILD, url)
        results["screening_index"] = {"load": index, "select": plain}
        say(f"  screening index: {index['seconds']:.1f} s, +{index['rss_mb']:.0f} MB; plain SELECT "
            f"{plain['seconds']:.1f} s, +{plain['rss_mb']:.0f} MB ({plain['rows']:,} rows); {load()}")

        results["sizes"] = sizes(engine)
        engine.dispose()
    finally:
        if made and not args.keep:
            drop_database(url)
    minutes = (time.perf_counter() - run_started) / 60
    report(results, minutes)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({**results, "minutes": minutes, "load": os.getloadavg()}, indent=2, default=str))


def report(r: dict[str, Any], minutes: float) -> None:
    n, b = r["records"], r["ingest"]["rows"]
    size = r["sizes"]
    ef, ei, ing, res, idx = r["evaluate_full"], r["evaluate_incremental"], r["ingest"], r["resolve"], r["screening_index"]
    per = lambda seconds, k: seconds / k * 1e6  # microseconds per record
    say("")
    say(f"scale run on PostgreSQL: {n:,} records, {r['entities']:,} entities ({minutes:.1f} min in all)")
    say(f"{'stage':<22}{'xinyong':>12}{'baseline':>12}{'ratio':>8}  per record (xinyong)   baseline is")
    rows = [
        ("ingest", ing["wall"], ing["copy"], per(ing["wall"], b), f"COPY of the same {b:,}-row CSV"),
        ("resolve", res["wall"], res["floor"], per(res["wall"], b), "SQL join on the subject code"),
        ("evaluate full", ef["wall"], ef["floor"], per(ef["wall"], n), "floor SQL of bench/evaluate.py"),
        (f"evaluate {ei['mode'][:5]}.", ei["wall"], ei["floor"], per(ei["wall"], b), "floor over touched entities"),
        ("screening index", idx["load"]["seconds"], idx["select"]["seconds"], per(idx["load"]["seconds"], r["entities"]),
         "plain SELECT of its rows (per entity)"),
    ]
    for label, ours, base, micro, what in rows:
        say(f"{label:<22}{ours:>10.2f} s{base:>10.2f} s{ours / base if base else float('inf'):>8.1f}  "
            f"{micro:>10.1f} us          {what}")
    say(f"screening index RSS: +{idx['load']['rss_mb']:.0f} MB (plain SELECT +{idx['select']['rss_mb']:.0f} MB)")
    say(f"database: {size['database'] / 2**30:.2f} GB = {size['database'] / n:,.0f} B per record "
        f"(records {size['records'] / n:,.0f} B, record_links {size['record_links'] / n:,.0f} B, "
        f"entities+identifiers+names+relations {sum(size[k] for k in ('entities', 'entity_identifiers', 'entity_names', 'entity_relations')) / n:,.0f} B)")
    if "spark" in r:
        sp = r["spark"]
        say(f"spark (local mode) over the snapshot: {sp['wall']:.1f} s for the rule queries "
            f"({per(sp['wall'], n):.1f} us per record) + {sp['session']:.1f} s session start; "
            f"{sp['wall'] / ef['wall']:.1f}x evaluate full; equal to SQL row for row: {sp.get('equal_to_sql')}")
    ex = r["export"]
    say(f"export parquet: {ex['wall']:.1f} s ({per(ex['wall'], n):.1f} us per record), {ex['bytes'] / n:,.0f} B "
        f"per record on disk (records {ex['records_bytes'] / n:,.0f} B), {size['database'] / ex['bytes']:.1f}x "
        f"smaller than the database")
    k = 10_000_000 / n
    say(f"extrapolated to 10,000,000 records (linear): database {size['database'] * k / 2**30:.1f} GB, "
        f"evaluate full {ef['wall'] * k / 60:.1f} min, screening index {idx['load']['seconds'] * k:.0f} s "
        f"+{idx['load']['rss_mb'] * k / 1024:.1f} GB, set-up copies {r['clone']['seconds'] * k / 60:.0f} min")
    say("ingest, resolve, evaluate and export are the services the CLI calls, timed in this process; the "
        "screening index and its baseline are timed inside fresh processes")
    say(f"end: {load()}")


if __name__ == "__main__":
    main()
