"""Accountability benchmark: the scorecard and the rule-impact simulation beside a full `evaluate`.

    python bench/accountability.py                        # 1,000,000 register entities
    python bench/accountability.py --entities 200000 --workdir /tmp/xy-eval   # reuse bench/evaluate.py's stores

The store is bench/evaluate.py's (its `prepare`: the demo pipeline for a 10,000-entity seed, then
copied in SQL to N register entities; cached in --workdir). On that one store, in one run, as of
bench/evaluate.py's AS_OF:

  (a) scorecard   `services.accountability.scorecard.scorecard` for every authority and month (what
                  `xinyong scorecard --json` prints), overdue cases included;
  (b) simulate    `services.accountability.simulate.simulate` of xinyong/packs/candidates/serious-dishonesty-v2.yaml (one
                  list's rule changed, published for comment a month before AS_OF), writing nothing:
                  the active pack's five rule queries and the changed list's, the other four reused;
  (c) simulate, worst case: the same with `reuse=False` (every list's query run under both packs);
  (d) evaluate    `evaluate(full=True)` with its writes (proposals, evidence, transitions, audit).

(a)-(c) run before (d), so they read the same records; (d) is the baseline. Target: each of (a)
and (b) <= 1x (d). The load average is printed: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evaluate as evaluation_bench  # noqa: E402  (bench/evaluate.py: its store builder and clock)

from xinyong.domain.calendar import pack_today  # noqa: E402
from xinyong.domain.pack import load_pack  # noqa: E402
from xinyong.services.accountability.scorecard import scorecard  # noqa: E402
from xinyong.services.accountability.simulate import simulate  # noqa: E402
from xinyong.store.db import open_engine  # noqa: E402

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "accountability.json"
EXAMPLE = ROOT.parent / "xinyong" / "packs" / "candidates" / "serious-dishonesty-v2.yaml"


def candidate_file(folder: Path) -> Path:
    """The example candidate, published for comment a month before the bench's as-of date."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["extends"] = str((ROOT.parent / "xinyong" / "packs" / "cn" / "pack.yaml").resolve())
    for spec in data["lists"]:
        for rule in spec["rules"]:
            if rule.get("published"):
                rule["published"] = (evaluation_bench.AS_OF.replace(day=1).replace(
                    month=evaluation_bench.AS_OF.month - 1)).isoformat()
                rule["effective"] = evaluation_bench.AS_OF.replace(year=evaluation_bench.AS_OF.year + 1).isoformat()
    path = folder / "candidate.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entities", type=int, default=evaluation_bench.FULL_ENTITIES)
    parser.add_argument("--workdir", type=Path, help="bench/evaluate.py's work folder: stores are reused")
    parser.add_argument("--seed-entities", type=int, default=evaluation_bench.SEED_ENTITIES)
    parser.add_argument("--setup", choices=("auto", "pipeline", "clone"), default="auto")
    parser.add_argument("--db", help="a store URL to build in (PostgreSQL); default SQLite in the workdir")
    args = parser.parse_args()
    load_before = os.getloadavg()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="xinyong-bench-accountability-"))
    workdir.mkdir(parents=True, exist_ok=True)
    as_of = evaluation_bench.AS_OF
    try:
        url, setup = evaluation_bench.prepare(args, workdir)
        engine = open_engine(url)
        pack = load_pack("cn")
        candidate = load_pack(str(candidate_file(workdir)))
        counts = evaluation_bench.store_counts(engine)
        say = evaluation_bench.say
        say(f"store ready: {counts['register_entities']:,} register entities, {counts['records']:,} records")
        with evaluation_bench.clock() as card:
            rows = scorecard(engine, pack, pack_today(pack))
        say(f"(a) scorecard: {card.wall:.2f} s, {len(rows):,} authority-months")
        with evaluation_bench.clock() as sim:
            diff = simulate(engine, pack, candidate, as_of)
        say(f"(b) simulate: {sim.wall:.2f} s, {diff['newly_proposed_count']:,} newly proposed, "
            f"{diff['no_longer_qualify_count']:,} no longer qualify, queries {diff['queries']}")
        with evaluation_bench.clock() as worst:
            worst_diff = simulate(engine, pack, candidate, as_of, reuse=False)
        say(f"(c) simulate, no reuse: {worst.wall:.2f} s, queries {worst_diff['queries']}")
        full = evaluation_bench.run_evaluate(engine, pack, full=True)
        say(f"(d) evaluate(full=True): {full['seconds']:.2f} s, {full['proposals']:,} proposals")
        engine.dispose()
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()
    say("")
    say(f"accountability benchmark: {counts['register_entities']:,} register entities ({counts['entities']:,} in all), "
        f"{counts['records']:,} records, as of {as_of}; {os.cpu_count()} CPUs; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    say(f"{'run':<48}{'wall s':>9}{'CPU s':>9}{'x (d)':>8}")
    ratios = {}
    for key, label, clock in (("scorecard", "(a) scorecard, every authority and month", card),
                              ("simulate", "(b) simulate (one list changed)", sim),
                              ("simulate_no_reuse", "(c) simulate, every query run twice", worst)):
        ratios[key] = clock.wall / full["seconds"] if full["seconds"] else float("inf")
        say(f"{label:<48}{clock.wall:>9.2f}{clock.cpu:>9.2f}{ratios[key]:>8.2f}")
    say(f"{'(d) evaluate(full=True), with its writes':<48}{full['seconds']:>9.2f}{full['cpu_seconds']:>9.2f}{1:>8.2f}")
    for key in ("scorecard", "simulate"):
        say(f"{key} <= 1x a full evaluation: {'PASS' if ratios[key] <= 1 else 'FAIL'} ({ratios[key]:.2f}x)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "store": counts, "setup": setup, "as_of": as_of.isoformat(),
        "load_average_before": load_before, "load_average_after": load_after,
        "seconds": {"scorecard": card.wall, "simulate": sim.wall, "simulate_no_reuse": worst.wall,
                    "evaluate_full": full["seconds"]},
        "ratios": ratios, "simulation": {k: diff[k] for k in ("newly_proposed_count", "no_longer_qualify_count",
                                                              "by_list", "measures_gained", "queries")},
    }, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    say(f"written {OUT.relative_to(ROOT.parent)}")


if __name__ == "__main__":
    main()
