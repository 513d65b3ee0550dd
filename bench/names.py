"""Name screening on real company names it has never seen: top-1 per kind of variant, and false denials.

    python bench/names.py                 # ~1 min: builds a store from bench/evalset/data, screens ~3,200 names
    python bench/names.py --keep DIR      # keep the store in DIR

The set is bench/evalset (see its README.md): 2,880 firms from the Shenzhen Stock Exchange's
list, variants made with hanziconv and pypinyin, registered twins and unregistered look-alikes.
The store is built through the project's public path, as an operator would: `xinyong init`,
`ingest` of the two register files and of licence revocations for the `listed` firms,
`resolve`, `evaluate`, the notice of each proposed listing (`services.lists.due_process.notify`) and
`process`, so that those firms are effectively listed on the screening date. Then every query
of name_queries.csv goes through `ScreeningIndex.screen_name` in this process.

Per kind it prints:
  top-1      the first candidate (the chosen subject comes first) is the expected entity
  chosen     the answer names the expected entity as its subject
  deny / refer / allow / other   the decisions given
  false deny a `deny` whose subject is not the expected entity (for an unregistered look-alike: any deny)

Writes bench/out/names.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "evalset" / "data"
OUT = ROOT / "out" / "names.json"
ACTION = "public_procurement"
EVALUATED, NOTICE, EFFECTIVE = "2025-09-15", "2025-09-22", "2025-10-20"
AS_OF = dt.date(2026, 1, 1)
KIND_ORDER = ["exact", "traditional", "homophone", "short_name", "legal_form", "place", "english",
              "twin_char", "twin_homophone", "lookalike_unregistered"]


def _xinyong(db: Path, *args: str) -> dict | None:
    command = [sys.executable, "-m", "xinyong", "--db", f"sqlite:///{db}", *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[3:])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    if "--json" not in args:
        return None
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        return json.loads(done.stdout.strip().splitlines()[-1])


def build_store(folder: Path) -> tuple[Path, dict]:
    """The evaluation set's register and listings, through the CLI and the due-process service."""
    db = folder / "store.db"
    manifest = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
    started = time.perf_counter()
    _xinyong(db, "init")
    for file in ("register_utf8.csv", "register_gb18030.csv"):
        result = _xinyong(db, "ingest", str(DATA / file), "--authority", "samr", "--category", "registration", "--json")
        if result["quarantined"]:
            sys.exit(f"{file}: {result['quarantined']} rows quarantined: {result}")
    result = _xinyong(db, "ingest", str(DATA / "listing_penalties.csv"), "--authority", "samr",
                      "--category", "penalty", "--json")
    if result["accepted"] != manifest["listed"]:
        sys.exit(f"listing_penalties.csv: {result['accepted']} of {manifest['listed']} rows accepted: {result}")
    _xinyong(db, "resolve", "--json")
    evaluated = _xinyong(db, "evaluate", "--as-of", EVALUATED, "--json")

    from xinyong.domain.pack import load_pack
    from xinyong.services.lists.due_process import Actor, notify, process
    from xinyong.store.db import open_engine

    engine = open_engine(f"sqlite:///{db}")
    pack = load_pack("cn")
    with engine.connect() as c:
        ids = [r[0] for r in c.exec_driver_sql("SELECT id FROM listings WHERE state = 'proposed' ORDER BY id")]
    actor = Actor("bench", "served")
    for listing_id in ids:
        notify(engine, pack, listing_id, dt.date.fromisoformat(NOTICE), actor)
    process(engine, pack, dt.date.fromisoformat(EFFECTIVE))
    engine.dispose()
    with sqlite3.connect(db) as c:
        effective = c.execute("SELECT count(*) FROM listings WHERE state = 'effective'").fetchone()[0]
    info = {"registered": manifest["registered"], "listed_in_set": manifest["listed"], "listings_effective": effective,
            "evaluated": evaluated, "build_seconds": round(time.perf_counter() - started, 1)}
    return db, info


def _key(entity) -> str | None:
    """A candidate's or subject's entity key, whether the answer gives an object or the key itself."""
    if entity is None:
        return None
    return entity.get("key") if isinstance(entity, dict) else str(entity)


def screen_all(db: Path) -> tuple[dict, dict]:
    from xinyong.domain.pack import load_pack
    from xinyong.services.screening.screen import ScreeningIndex
    from xinyong.store.db import open_engine

    with (DATA / "name_queries.csv").open(encoding="utf-8", newline="") as handle:
        queries = list(csv.DictReader(handle))
    engine = open_engine(f"sqlite:///{db}")
    index = ScreeningIndex.load(engine, load_pack("cn"), names=True)
    stats: dict[str, Counter] = defaultdict(Counter)
    false_denials: list[dict] = []
    timings: list[float] = []
    for q in queries:
        kind, expected = q["kind"], q["expected"]
        started = time.perf_counter()
        data = index.answer_data(index.screen_name(q["query"], ACTION, AS_OF))
        timings.append(time.perf_counter() - started)
        subject = _key(data.get("subject"))
        candidates = data.get("candidates") or []
        first = _key(candidates[0].get("entity")) if candidates else None
        s = stats[kind]
        s["queries"] += 1
        s["top1"] += first == expected
        s["chosen"] += subject == expected
        decision = data["decision"]
        s[decision if decision in ("deny", "refer", "allow") else "other"] += 1
        if decision == "deny" and subject != expected:
            s["false_deny"] += 1
            false_denials.append({"kind": kind, "query": q["query"], "expected": expected, "subject": subject})
    engine.dispose()
    timings.sort()
    latency = {"p50_ms": 1000 * timings[len(timings) // 2], "p99_ms": 1000 * timings[int(len(timings) * 0.99)],
               "max_ms": 1000 * timings[-1]}
    return {k: dict(v) for k, v in stats.items()}, {"false_denials": false_denials, "latency": latency}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="build and keep the store in this folder")
    parser.add_argument("--quick", action="store_true", help="accepted for `./dev bench --quick`: the set is small, "
                                                             "the run is the same")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="xinyong-bench-names-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("store.db*"):
        stale.unlink()
    load_before = os.getloadavg()
    try:
        print("building the store from bench/evalset/data ...", flush=True)
        db, store = build_store(folder)
        print(f"screening {sum(1 for _ in (DATA / 'name_queries.csv').open(encoding='utf-8')) - 1:,} names ...",
              flush=True)
        stats, extra = screen_all(db)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)

    print()
    print(f"names benchmark: {os.cpu_count()} CPUs, Python {platform.python_version()}; 1-min load average "
          f"{load_before[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    print(f"store: {store['registered']:,} registered entities, {store['listings_effective']:,} effective listings "
          f"({store['listed_in_set']:,} listed in the set); action {ACTION}, as of {AS_OF}")
    print()
    print(f"{'kind':<24}{'queries':>8}{'top-1':>8}{'chosen':>8}{'deny':>6}{'refer':>6}{'allow':>6}{'other':>6}"
          f"{'false deny':>11}")
    kinds = [k for k in KIND_ORDER if k in stats] + sorted(k for k in stats if k not in KIND_ORDER)
    for kind in kinds:
        s = stats[kind]
        n = s["queries"]
        top1 = "-" if kind == "lookalike_unregistered" else f"{s.get('top1', 0) / n:.1%}"
        chosen = "-" if kind == "lookalike_unregistered" else f"{s.get('chosen', 0) / n:.1%}"
        print(f"{kind:<24}{n:>8,}{top1:>8}{chosen:>8}{s.get('deny', 0):>6}{s.get('refer', 0):>6}"
              f"{s.get('allow', 0):>6}{s.get('other', 0):>6}{s.get('false_deny', 0):>11}")
    total_false = sum(s.get("false_deny", 0) for s in stats.values())
    lookalike_false = sum(stats[k].get("false_deny", 0) for k in ("twin_char", "twin_homophone",
                                                                  "lookalike_unregistered") if k in stats)
    print()
    print(f"false deny, all queries (deny with another firm as subject): {total_false}   target 0  "
          f"{'PASS' if total_false == 0 else 'FAIL'}")
    print(f"false deny on look-alikes (twins and unregistered):           {lookalike_false}   target 0  "
          f"{'PASS' if lookalike_false == 0 else 'FAIL'}")
    variants = ["traditional", "homophone", "short_name", "legal_form", "place", "english"]
    low = [k for k in variants if k in stats and stats[k].get("top1", 0) / stats[k]["queries"] < 0.95]
    print(f"top-1 >= 95% on every variant kind:                          "
          f"{'PASS' if not low else 'FAIL (' + ', '.join(low) + ')'}")
    lat = extra["latency"]
    print(f"screen_name latency: p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.1f} ms "
          f"(on {store['registered']:,} entities)")
    for example in extra["false_denials"][:10]:
        print(f"    false deny [{example['kind']}] {example['query']} -> {example['subject']} "
              f"(expected {example['expected']})")

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                               "store": store, "by_kind": stats, **extra}, ensure_ascii=False, indent=2) + "\n",
                   encoding="utf-8")
    print(f"\nwritten {OUT.relative_to(ROOT.parent)}")


if __name__ == "__main__":
    main()
