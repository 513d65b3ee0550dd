"""Open-data benchmark: `publish` beside a plain export of the same rows, and webhook fan-out.

    python bench/opendata.py                          # 1,000,000 register entities (evaluate.py's store)
    python bench/opendata.py --entities 200000 --workdir /tmp/xy-eval   # keep and reuse the stores
    python bench/opendata.py --events 10000 --webhooks-only

(1) publish: the store of bench/evaluate.py (`prepare`: the demo pipeline for a seed, cloned in SQL
    to N entities; untimed set-up). The change log's first capture (its baseline: every fact stored,
    as `serve`'s worker makes it) is timed apart, outside the ratios. Then `publish` is timed whole:
    one pass in which the facts stream into the capture (a diff against the stored hashes) and the
    three formats of full/; publish reports each format's own writing time (the Arrow batch shared by
    Parquet and CSV counts in each). Per format, xinyong's rows/s = rows / (facts and capture + that
    format's writing). Baseline, same run, same rows: the plain SQL that selects the rows the dump
    holds (entities with their current name, the newest version of each record of a public category
    linked to an entity; no masking, no publicity rules: a floor), timed, plus DuckDB's
    `COPY (SELECT …) TO` of the published rows (loaded into DuckDB untimed) in that format.
    Target: ≥ 0.5 × per format. Also: publish whole against the floor and all three exports, in wall
    and in CPU seconds of the process (DuckDB's threads included).
(2) webhooks: a fresh SQLite store, one subscription watching 100 entities, 10,000 events in the
    public change log; `fan_out` then `deliver_due` until every delivery is acknowledged by a
    loopback receiver (tests/webhook_receiver.py, threaded, its own process). Target ≥ 500
    events/s, and every event id logged by the receiver (none lost).

Prints a table and writes bench/out/opendata.json.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from xinyong.domain.pack import load_pack  # noqa: E402
from xinyong.services.publication import opendata  # noqa: E402
from xinyong.services.resolution.entities import public_categories  # noqa: E402
from xinyong.store import tables as t  # noqa: E402
from xinyong.store.db import open_engine  # noqa: E402

OUT = ROOT / "bench" / "out"


def say(message: str) -> None:
    print(message, flush=True)


def floor_seconds(engine, pack) -> tuple[float, int]:
    """The plain SQL selecting the dump's rows, fetched: a floor for the 'filtered rows'."""
    e, n, r, link = t.entities.c, t.entity_names.c, t.records.c, t.record_links.c
    began = time.perf_counter()
    rows = 0
    with engine.connect() as c:
        for _ in c.execute(select(e.key, e.kind, e.status, e.region, e.established, e.address, n.name)
                           .outerjoin(t.entity_names, (n.entity_id == e.id) & n.current)
                           .execution_options(yield_per=50_000)):
            rows += 1
        newest = select(r.record_key, func.max(r.version).label("v")).where(
            r.category.in_(sorted(public_categories(pack)))).group_by(r.record_key).subquery()
        for _ in c.execute(select(r.record_key, r.version, r.category, r.authority, r.status, r.decision_date, r.fields,
                                  link.entity_id)
                           .join(newest, (newest.c.record_key == r.record_key) & (newest.c.v == r.version))
                           .join(t.record_links, link.record_id == r.id)
                           .where(link.state.in_(("linked", "new"))).execution_options(yield_per=50_000)):
            rows += 1
    return time.perf_counter() - began, rows


def bench_publish(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import evaluate as ev  # bench/evaluate.py: the 1M-entity store

    prepare_args = argparse.Namespace(entities=args.entities, seed_entities=args.seed_entities, setup="auto", db=None)
    url, info = ev.prepare(prepare_args, workdir)
    say(f"store: {url} ({info['method']}, set-up {info['seconds']:.0f} s, reused={info['reused']})")
    engine = open_engine(url)
    pack = load_pack("cn")
    with engine.connect() as c:
        entities = c.execute(select(func.count()).select_from(t.entities)).scalar()
        records = c.execute(select(func.count()).select_from(t.records)).scalar()
    say(f"  {entities:,} entities, {records:,} record versions")
    # the change log's first capture (its baseline: every fact stored), as `serve`'s worker makes it
    # before any publish; timed apart, not in the ratios
    began = time.perf_counter()
    opendata.capture(engine, pack, force=True)
    baseline_capture = time.perf_counter() - began
    # publish, whole, as the CLI runs it: facts computed once, streamed into the capture (a diff against
    # the stored hashes) and the three formats of full/ in one pass; its own step times
    out = Path(tempfile.mkdtemp(prefix="xy-publish-", dir=workdir))
    steps: dict[str, float] = {}
    began, cpu = time.perf_counter(), time.process_time()
    manifest = opendata.publish(engine, pack, out, seconds=steps)
    publish_seconds, publish_cpu = time.perf_counter() - began, time.process_time() - cpu
    tables = {f["table"]: f["rows"] for f in manifest["files"] if f["kind"] == "full" and f["format"] == "jsonl"}
    rows_total = sum(tables.values())
    shared = steps["facts_and_capture"]
    cpu = time.process_time()
    floor, floor_rows = floor_seconds(engine, pack)
    floor_cpu = time.process_time() - cpu
    # DuckDB: the same rows (as published), loaded untimed, exported per format
    con = duckdb.connect()
    duck = {fmt: 0.0 for fmt in opendata.FORMATS}
    duck_cpu = 0.0
    for table in tables:
        source = out / "full" / f"{table}.jsonl"
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_json_auto('{source}', format='newline_delimited',"
                    " maximum_object_size=104857600, sample_size=-1)")
        for fmt, option in (("jsonl", "FORMAT JSON"), ("csv", "FORMAT CSV, HEADER"), ("parquet", "FORMAT PARQUET")):
            target = workdir / f"duck-{table}.{fmt}"
            began, cpu = time.perf_counter(), time.process_time()
            con.execute(f"COPY (SELECT * FROM {table}) TO '{target}' ({option})")
            duck[fmt] += time.perf_counter() - began
            duck_cpu += time.process_time() - cpu
    results = {}
    for fmt in opendata.FORMATS:
        ours = rows_total / (shared + steps[fmt])
        base = rows_total / (floor + duck[fmt])
        results[fmt] = {"xinyong_rows_per_s": round(ours), "baseline_rows_per_s": round(base),
                        "ratio": round(ours / base, 3), "write_seconds": round(steps[fmt], 2),
                        "duckdb_seconds": round(duck[fmt], 2)}
    ours_all = rows_total / publish_seconds
    base_all = rows_total / (floor + sum(duck.values()))
    return {"entities": entities, "record_versions": records, "rows": rows_total, "floor_rows": floor_rows,
            "baseline_capture_seconds": round(baseline_capture, 2), "facts_and_capture_seconds": round(shared, 2),
            "floor_sql_seconds": round(floor, 2), "publish_seconds": round(publish_seconds, 2),
            "cpu_seconds": {"publish": round(publish_cpu, 2), "floor_sql": round(floor_cpu, 2),
                            "duckdb_three_formats": round(duck_cpu, 2),
                            "ratio_all_formats": round((floor_cpu + duck_cpu) / publish_cpu, 3)},
            "all_formats": {"xinyong_rows_per_s": round(ours_all), "baseline_rows_per_s": round(base_all),
                            "ratio": round(ours_all / base_all, 3)},
            "formats": results, "setup": {k: info[k] for k in ("method", "seconds", "reused")}}


def bench_webhooks(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from xinyong.services.publication import webhooks
    from xinyong.services.operations.keys import create_key

    os.environ["XINYONG_WEBHOOK_ALLOW_PRIVATE"] = "1"
    folder = Path(tempfile.mkdtemp(prefix="xy-hooks-", dir=workdir))
    url = f"sqlite:///{folder / 'store.db'}"
    subprocess.run([sys.executable, "-m", "xinyong", "--db", url, "init", "--pack", "cn"], check=True,
                   capture_output=True)
    engine = open_engine(url)
    pack = load_pack("cn")
    key_secret, stored = create_key(engine, pack, "commercial_bank", ["screen"])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = folder / "received.jsonl"
    receiver = subprocess.Popen([sys.executable, str(ROOT / "tests" / "webhook_receiver.py"), str(port), str(log),
                                 "0", "threaded"], stdout=subprocess.PIPE, text=True)
    assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
    try:
        watched = [f"BENCH{n:05d}" for n in range(100)]
        now = dt.datetime.now(dt.timezone.utc)
        with engine.begin() as c:
            c.execute(t.subscriptions.insert().values(
                id="bench", key_id=stored["id"], authority="commercial_bank", url=f"http://127.0.0.1:{port}/hook",
                secret="s" * 64, entities=watched, purpose=None, legal_basis=None, from_seq=0, created_at=now))
            events = [{"event_id": f"evt_{uuid.uuid4().hex}", "type": "record.published", "entity": watched[n % 100],
                       "fact_id": f"record:{n}", "op": "add", "occurred_at": now,
                       "change": {"op": "add", "fact": "record", "id": f"record:{n}",
                                  "data": {"entity": watched[n % 100], "record_key": f"samr:罚〔2026〕{n}号",
                                           "category": "penalty", "fields": {"fine_amount": n}}}}
                      for n in range(args.events)]
            c.execute(t.public_events.insert(), events)

        began = time.perf_counter()
        fanned = webhooks.fan_out(engine)
        while True:
            done, failed = webhooks.deliver_due(engine)
            if done + failed == 0:
                with engine.connect() as c:
                    left = c.execute(select(func.count()).select_from(t.webhook_deliveries)
                                     .where(t.webhook_deliveries.c.state == "pending")).scalar()
                if not left:
                    break
                time.sleep(0.2)
        seconds = time.perf_counter() - began
    finally:
        receiver.kill()
        receiver.wait()
    got = {json.loads(base64.b64decode(json.loads(line)["body"]))["event_id"]
           for line in log.read_text().splitlines() if line.strip()}
    want = {e["event_id"] for e in events}
    return {"events": args.events, "deliveries": fanned, "seconds": round(seconds, 2),
            "events_per_s": round(args.events / seconds), "lost": len(want - got), "received_unique": len(got & want)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--seed-entities", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--webhooks-only", action="store_true")
    parser.add_argument("--publish-only", action="store_true")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="xy-opendata-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"load_average_start": os.getloadavg()}
    if not args.webhooks_only:
        report["publish"] = bench_publish(args, workdir)
        p = report["publish"]
        say(f"publish: {p['rows']:,} rows ({p['entities']:,} entities) in {p['publish_seconds']} s "
            f"(facts and capture {p['facts_and_capture_seconds']} s, the rest writing); first capture (untimed "
            f"in publish) {p['baseline_capture_seconds']} s; floor SQL {p['floor_sql_seconds']} s "
            f"for {p['floor_rows']:,} rows")
        a = p["all_formats"]
        say(f"  all three xinyong {a['xinyong_rows_per_s']:>9,} rows/s   SQL+DuckDB {a['baseline_rows_per_s']:>9,} "
            f"rows/s   ratio {a['ratio']:.3f} (publish whole vs the floor SQL and the three DuckDB exports)")
        cpu = p["cpu_seconds"]
        say(f"  CPU seconds (this process, DuckDB's threads included): publish {cpu['publish']}, floor SQL "
            f"{cpu['floor_sql']} + DuckDB's three exports {cpu['duckdb_three_formats']}: "
            f"ratio {cpu['ratio_all_formats']:.3f}")
        for fmt, r in p["formats"].items():
            verdict = "ok" if r["ratio"] >= 0.5 else "BELOW TARGET"
            say(f"  {fmt:8} xinyong {r['xinyong_rows_per_s']:>9,} rows/s   SQL+DuckDB {r['baseline_rows_per_s']:>9,} rows/s"
                f"   ratio {r['ratio']:.3f} (target >= 0.5: {verdict})")
    if not args.publish_only:
        report["webhooks"] = w = bench_webhooks(args, workdir)
        verdict = "ok" if w["events_per_s"] >= 500 and w["lost"] == 0 else "BELOW TARGET"
        say(f"webhooks: {w['events']:,} events, {w['deliveries']:,} deliveries in {w['seconds']} s = "
            f"{w['events_per_s']:,} events/s, lost {w['lost']} (target >= 500/s, none lost: {verdict})")
    report["load_average_end"] = os.getloadavg()
    say(f"load average: start {report['load_average_start']}, end {report['load_average_end']}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "opendata.json").write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
