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
import json
import os
from pathlib import Path

from sqlalchemy import select, text, update

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
