"""Evaluation benchmark: `evaluate` over the demo register, full and incremental, beside a SQL floor.

    python bench/evaluate.py                     # 1,000,000 register entities
    python bench/evaluate.py --quick             # 20,000
    python bench/evaluate.py --entities 200000 --workdir /tmp/xy-eval   # keep and reuse the stores
    python bench/evaluate.py --db postgresql://user@host/empty_db     # PostgreSQL instead of SQLite

Set-up (timed, reported, never counted in the results):

  pipeline  the demo jurisdiction (`xinyong.services.operations.demo.generate`, seed 20260101) with N register
            entities, `xinyong init --pack cn`, every file through `ingest_file`, then `resolve`.
  clone     the normal pipeline for a seed of S register entities (default 10,000), then the seed
            store is copied in SQL N/S - 1 times: entities, identifiers, names, relations, batches,
            records and record_links, ids offset, and every identifier replaced by a fresh valid
            one of its scheme (USCC and its embedded organisation code, registration number,
            resident ID with the same region and birth date), in the records' subject codes too.
            Categories, field values, dates, link states and methods, subject kinds and the share
            of records each rule fires on are the pipeline's own; names repeat across copies and
            codes inside `fields` are the seed's (evaluation reads neither). Used when N > S
            (`--setup auto`): ingesting and resolving a 1,000,000-entity demo through the pipeline
            takes hours on 2 cores (registration rows ingest at ~200/s).

Then, with `as_of` = 2025-07-01 (the demo's records run to 2025-06-30):

  (1) full       `evaluate(engine, pack, as_of, full=True)` on the fresh store (no listings yet).
                 Beside it, what it spends in SQL: `qualifying_query` of every list in force,
                 executed and fetched, on the same state just before (the rest is writing proposals).
  (2) floor      per list in force, `SELECT l.entity_id, count(*) FROM records r JOIN record_links l
                 ON l.record_id = r.id WHERE r.category IN (the rule's categories) AND l.state IN
                 ('linked', 'new') GROUP BY l.entity_id`, fetched: the records the rules read, no rule
                 logic, no writes. Run once untimed first (warm-up).
  (3) batch      10,000 new administrative-penalty records (samr, cn pack headers) for 10,000 existing
                 register entities drawn at random, the penalty contents drawn from the store's own samr
                 penalties (so the heavy share is the demo's); `ingest_file`, then each record linked in
                 SQL to the entity its USCC names, as `resolve` links it (set-up, not counted; resolve
                 itself re-reads the whole register: see `link_batch`). Then `evaluate(engine, pack,
                 as_of)` (incremental: the full run left a watermark), beside its rule queries
                 restricted to the touched entities, and
                 (4) the floor restricted to the new records (`... AND records.id > watermark`), and
                 for reference the floor over every record of the touched entities.

Wall seconds and process CPU seconds are both reported: the machine may be shared, and on SQLite
all the work is in this process. Ratios are against the floor of the same run, same store.
`--rules-only` skips the two `evaluate` calls (rule queries and floors only; the incremental rule
queries then run with no listings in the store). Prints a table and writes bench/out/evaluate.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, func, literal, select, text
from sqlalchemy.engine import Engine, make_url
from stdnum.cn import ric
from stdnum.iso7064 import mod_11_10

from xinyong.domain.identifiers import USCC_ALPHABET, org_code_check_character, uscc_check_character
from xinyong.domain.pack import load_pack
from xinyong.services.operations.demo import BATCHES, generate
from xinyong.services.lists.evaluate import TOUCHED, evaluate, fill_touched, qualifying_query, rule_in_force
from xinyong.services.intake.ingest import ingest_file
from xinyong.services.intake.register import opaque_key
from xinyong.services.resolution.resolve import resolve
from xinyong.store import tables as t
from xinyong.store.bulk import insert_rows
from xinyong.store.db import database_url, open_engine

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "evaluate.json"

FULL_ENTITIES = 1_000_000
QUICK_ENTITIES = 20_000
SEED_ENTITIES = 10_000
DEMO_SEED = 20260101
CLONE_SEED = 7
CLONE_VERSION = 2  # part of the cache key: a change to the copying rebuilds cached copies
AS_OF = dt.date(2025, 7, 1)
BATCH_RECORDS = 10_000
TARGET_FULL_SECONDS = 60.0
TARGET_INCREMENTAL_SECONDS = 2.0
FLOOR_LINK_STATES = ("linked", "new")  # the link states `qualifying_query` counts (with an entity)


# -- timing -------------------------------------------------------------------------------------

class Clock:
    wall = cpu = 0.0


@contextmanager
def clock():
    c = Clock()
    wall, cpu = time.perf_counter(), time.process_time()
    yield c
    c.wall, c.cpu = time.perf_counter() - wall, time.process_time() - cpu


def say(message: str) -> None:
    print(message, flush=True)


# -- set-up: the normal pipeline -------------------------------------------------------------------

def _cli(url: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "xinyong", "--db", url, *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"xinyong {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def pipeline(url: str, demo_dir: Path, entities: int) -> dict[str, Any]:
    """Demo files -> `xinyong init` -> `ingest_file` for each -> `resolve`, on an empty store."""
    pack = load_pack("cn")
    with clock() as c:
        manifest = generate(demo_dir, entities, DEMO_SEED)
    say(f"  demo generated: {entities:,} register entities, {manifest['counts']['rows']:,} record rows "
        f"in {c.wall:.0f} s")
    _cli(url, "init", "--pack", "cn")
    engine = open_engine(url)
    if _count(engine, t.records):
        sys.exit(f"{database_url(url)} already holds records: the benchmark needs an empty store")
    ingest_seconds = 0.0
    for entry in manifest["files"]:
        with clock() as c:
            result = ingest_file(engine, pack, demo_dir / entry["file"], entry["authority"], entry["category"])
        ingest_seconds += c.wall
        say(f"  ingested {entry['file']:<30}{result.accepted:>9,} rows in {c.wall:6.1f} s")
    with clock() as c:
        resolved = resolve(engine, pack)
    say(f"  resolved {resolved.records:,} records in {c.wall:.0f} s")
    engine.dispose()
    return {"entities": entities, "demo_seed": DEMO_SEED, "demo_rows": manifest["counts"]["rows"],
            "ingest_seconds": round(ingest_seconds, 1), "resolve_seconds": round(c.wall, 1),
            "resolve": resolved.as_dict()}


def _count(engine: Engine, table: Table, *where: Any) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


# -- set-up: copies of the seed store ----------------------------------------------------------------

class Codes:
    """Fresh valid identifiers, never one already used, deterministic for a seed."""

    def __init__(self, seed: int, taken: set[str]):
        self.rng = random.Random(seed)
        self.taken = taken  # every identifier and organisation code in use

    def _fresh(self, make) -> str:
        while (code := make()) in self.taken:
            pass
        self.taken.add(code)
        return code

    def org(self, old_org9: str) -> str:
        """An organisation code (8 + check) in the style of the old one (post-2015 MA... or digits)."""
        rng = self.rng
        if old_org9.startswith("MA"):
            make8 = lambda: "MA" + "".join(rng.choices(USCC_ALPHABET, k=6))
        else:
            make8 = lambda: f"{rng.randrange(10**8):08d}"
        return self._fresh(lambda: (body := make8()) + org_code_check_character(body))

    def reg_no(self, old: str) -> str:
        return self._fresh(lambda: (body := old[:6] + f"{self.rng.randrange(10**8):08d}")
                           + mod_11_10.calc_check_digit(body))

    def resident_id(self, old: str) -> str:
        """Same province, city and birth date (the age rule reads it), sex digit's parity kept. A
        region and birth date hold 500 numbers of a parity: two seed persons sharing them use
        those up by copy 250, and the search never ended (the 10M scale run hung there). After
        1,000 draws in the county, the county digits move too (the draws before are as they
        were, so smaller stores come out the same)."""
        parity = int(old[16]) % 2
        rng, draws = self.rng, count()

        def make() -> str:
            county = old[4:6] if next(draws) < 1000 else f"{rng.randrange(1, 100):02d}"
            body = f"{old[:4]}{county}{old[6:14]}{rng.randrange(500) * 2 + parity:03d}"
            # stdnum's ric.calc_check_digit takes the number with a check digit in place and ignores it
            return body + ric.calc_check_digit(body + "0")
        return self._fresh(make)


def code_map(identifiers: list[tuple[str, str]], codes: Codes) -> dict[str, str]:
    """old value -> new value for one copy; a USCC and its embedded organisation code move together."""
    mapping: dict[str, str] = {}
    for scheme, value in sorted(identifiers, key=lambda sv: sv[0] != "uscc"):  # USCCs first
        if value in mapping:
            continue
        if scheme == "uscc" and len(value) == 18:
            old_org = value[8:17]
            new_org = mapping.get(old_org) or codes.org(old_org)
            mapping[old_org] = new_org
            first17 = value[:8] + new_org
            mapping[value] = first17 + uscc_check_character(first17)
        elif scheme == "org_code" and len(value) == 9:
            mapping[value] = codes.org(value)
        elif scheme == "reg_no" and len(value) == 15:
            mapping[value] = codes.reg_no(value)
        elif scheme == "resident_id" and len(value) == 18:
            mapping[value] = codes.resident_id(value)
        else:
            mapping[value] = codes._fresh(lambda v=value: f"{v}~{codes.rng.randrange(10**6)}")
    return mapping


_map_meta = MetaData()
bench_map = Table("bench_map", _map_meta, Column("kind", String), Column("old", String), Column("new", String))

_CLONE_SQL = {
    "entities": """
        INSERT INTO entities (id, "key", kind, status, region, address, verified, origin, established,
                              created_at, updated_at)
        SELECT e.id + :entity_offset, m.new, e.kind, e.status, e.region, e.address, e.verified, e.origin,
               e.established, e.created_at, e.updated_at
        FROM entities e JOIN bench_map m ON m.kind = 'key' AND m.old = e."key"
        WHERE e.id <= :max_entity""",
    "entity_identifiers": """
        INSERT INTO entity_identifiers (entity_id, scheme, value, verified)
        SELECT i.entity_id + :entity_offset, i.scheme, m.new, i.verified
        FROM entity_identifiers i JOIN bench_map m ON m.kind = 'code' AND m.old = i.value
        WHERE i.entity_id <= :max_entity""",
    "entity_names": """
        INSERT INTO entity_names (id, entity_id, name, normalised, "current", valid_from, valid_to)
        SELECT id + :name_offset, entity_id + :entity_offset, name, normalised, "current", valid_from, valid_to
        FROM entity_names WHERE entity_id <= :max_entity""",
    "entity_relations": """
        INSERT INTO entity_relations (id, entity_id, relation, person_name, person_id, other_entity_id,
                                      valid_from, valid_to)
        SELECT id + :relation_offset, entity_id + :entity_offset, relation, person_name, person_id,
               other_entity_id + :entity_offset, valid_from, valid_to
        FROM entity_relations WHERE entity_id <= :max_entity""",
    "records": """
        INSERT INTO records (id, record_key, version, authority, category, status, subject_name, subject_kind,
                             subject_code, subject_scheme, subject_code_verified, decision_date, fields, extras,
                             warnings, content_hash, batch_id, row_number, created_at)
        SELECT r.id + :record_offset, r.record_key || :suffix, r.version, r.authority, r.category, r.status,
               r.subject_name, r.subject_kind, COALESCE(m.new, r.subject_code), r.subject_scheme,
               r.subject_code_verified, r.decision_date, r.fields, r.extras, r.warnings, r.content_hash,
               r.batch_id + :batch_offset, r.row_number, r.created_at
        FROM records r LEFT JOIN bench_map m ON m.kind = 'code' AND m.old = r.subject_code
                                            AND r.subject_code_verified
        WHERE r.id <= :max_record""",
    "record_links": """
        INSERT INTO record_links (record_id, state, entity_id, method, score, explanation, resolved_at)
        SELECT record_id + :record_offset, state, entity_id + :entity_offset, method, score, explanation,
               resolved_at
        FROM record_links WHERE record_id <= :max_record""",
}


def clone(url: str, copies: int) -> dict[str, Any]:
    """Add copies - 1 copies of the store's content (the seed) to itself, one transaction per copy."""
    engine = open_engine(url)
    started = time.perf_counter()
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA cache_size = -262144")  # 256 MB, set-up only
        maxima = {name: connection.execute(select(func.max(column))).scalar() or 0 for name, column in (
            ("entity", t.entities.c.id), ("record", t.records.c.id), ("batch", t.batches.c.id),
            ("name", t.entity_names.c.id), ("relation", t.entity_relations.c.id))}
        identifiers = connection.execute(select(t.entity_identifiers.c.scheme, t.entity_identifiers.c.value)).all()
        identifiers += connection.execute(select(t.records.c.subject_scheme, t.records.c.subject_code).where(
            t.records.c.subject_code_verified.is_(True), t.records.c.subject_code.is_not(None)).distinct()).all()
        identifiers = sorted({(scheme or "unknown", value) for scheme, value in identifiers})
        keys = connection.execute(select(t.entities.c.key)).scalars().all()
        batches = [dict(row) for row in connection.execute(select(t.batches)).mappings()]
        connection.execute(text("CREATE TEMP TABLE bench_map (kind VARCHAR(8), old TEXT, new TEXT, "
                                "PRIMARY KEY (kind, old))"))
        connection.commit()
        taken = {value for _, value in identifiers} | {value[8:17] for scheme, value in identifiers
                                                       if scheme == "uscc" and len(value) == 18}
        codes = Codes(CLONE_SEED, taken)
        for copy in range(1, copies):
            mapping = code_map(identifiers, codes)
            rows = [("code", old, new) for old, new in mapping.items()]
            for key in keys:
                new_key = mapping.get(key) if len(key) == 18 and key[0] not in "XP" else None
                rows.append(("key", key, new_key or opaque_key(key[0], f"{key}#copy{copy}")))
            connection.execute(text("DELETE FROM bench_map"))
            insert_rows(connection, bench_map, ("kind", "old", "new"), rows)
            params = {"entity_offset": copy * maxima["entity"], "record_offset": copy * maxima["record"],
                      "batch_offset": copy * maxima["batch"], "name_offset": copy * maxima["name"],
                      "relation_offset": copy * maxima["relation"], "max_entity": maxima["entity"],
                      "max_record": maxima["record"], "suffix": f"#copy{copy}"}
            connection.execute(t.batches.insert(), [{
                **batch, "id": batch["id"] + params["batch_offset"],
                "file_name": f"{batch['file_name']} (copy {copy})",
                "file_hash": hashlib.sha256(f"{batch['file_hash']}#copy{copy}".encode()).hexdigest(),
            } for batch in batches])
            for table, sql in _CLONE_SQL.items():
                connection.execute(text(sql), params)
            connection.commit()
            if copy % 10 == 0 or copy == copies - 1:
                say(f"  copy {copy:>4} of {copies - 1}: {time.perf_counter() - started:6.0f} s")
        connection.execute(text("DROP TABLE bench_map"))
        if connection.dialect.name == "postgresql":  # explicit ids were inserted: move the sequences on
            for table in ("entities", "entity_names", "entity_relations", "batches", "records"):
                connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                        f"(SELECT max(id) FROM {table}))"))
        connection.commit()
    engine.dispose()
    return {"copies": copies, "seconds": round(time.perf_counter() - started, 1), "seed_maxima": maxima}


# -- set-up: stores on disk (SQLite) -----------------------------------------------------------------

def sqlite_path(url: str) -> Path | None:
    parsed = make_url(database_url(url))
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" else None


def copy_sqlite(source: Path, target: Path) -> None:
    """The database (checkpointed first) and its audit key and head beside it."""
    for stale in target.parent.glob(target.name + "*"):
        stale.unlink()
    with sqlite3.connect(source) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(source, target)
    for companion in source.parent.glob(source.name + ".audit-*"):
        shutil.copy2(companion, target.with_name(target.name + companion.name[len(source.name):]))


def cached(folder: Path, key: dict[str, Any], build) -> dict[str, Any]:
    """Build folder/store.db unless a marker says the same thing was built there before."""
    marker = folder / "prepared.json"
    if marker.exists() and (folder / "store.db").exists():
        info = json.loads(marker.read_text())
        if info.get("key") == key:
            say(f"  reusing {folder / 'store.db'} (built in {info['seconds']:.0f} s)")
            return {**info, "reused": True}
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("store.db*"):
        stale.unlink()
    started = time.perf_counter()
    info = {"key": key, **build(), "seconds": round(time.perf_counter() - started, 1)}
    with sqlite3.connect(folder / "store.db") as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    marker.write_text(json.dumps(info))
    return {**info, "reused": False}


def prepare(args: argparse.Namespace, workdir: Path) -> tuple[str, dict[str, Any]]:
    """The store to measure, at its pre-evaluation state; returns its URL and how it was made."""
    n, seed = args.entities, args.seed_entities
    method = args.setup if args.setup != "auto" else ("pipeline" if n <= seed else "clone")
    if method == "clone" and n % seed:
        sys.exit(f"--entities {n:,} is not a multiple of --seed-entities {seed:,}")
    copies = n // seed if method == "clone" else 1
    started = time.perf_counter()
    if args.db:  # PostgreSQL (or another given store): built in place, nothing cached
        url = args.db
        say(f"set-up in {database_url(url)}: {method}")
        if method == "pipeline":
            began = time.perf_counter()
            info = {"pipeline": {**pipeline(url, workdir / "demo", n), "seconds": time.perf_counter() - began}}
        else:
            began = time.perf_counter()
            info = {"pipeline": {**pipeline(url, workdir / "demo", seed), "seconds": time.perf_counter() - began},
                    "clone": clone(url, copies)}
    else:
        demo_entities = n if method == "pipeline" else seed
        seed_dir = workdir / f"pipeline-{demo_entities}"
        say(f"set-up: {method}" + (f", {copies} copies of a {seed:,}-entity seed" if method == "clone" else ""))
        built = cached(seed_dir, {"entities": demo_entities, "demo_seed": DEMO_SEED},
                       lambda: pipeline(f"sqlite:///{seed_dir / 'store.db'}", seed_dir / "demo", demo_entities))
        info = {"pipeline": built}
        source = seed_dir / "store.db"
        if method == "clone" and copies > 1:
            clone_dir = workdir / f"clone-{n}"

            def build_clone() -> dict[str, Any]:
                copy_sqlite(source, clone_dir / "store.db")
                return clone(f"sqlite:///{clone_dir / 'store.db'}", copies)

            info["clone"] = cached(clone_dir, {"seed": seed, "copies": copies, "demo_seed": DEMO_SEED,
                                               "clone_seed": CLONE_SEED, "clone_version": CLONE_VERSION}, build_clone)
            source = clone_dir / "store.db"
        run_dir = workdir / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        copy_sqlite(source, run_dir / "store.db")
        url = f"sqlite:///{run_dir / 'store.db'}"
    parts = [info[step] for step in ("pipeline", "clone") if step in info]
    info.update(method=method, seed_entities=seed if method == "clone" else None, copies=copies,
                seconds=round(time.perf_counter() - started, 1),
                build_seconds=round(sum(part.get("seconds", 0) for part in parts), 1),
                reused=any(part.get("reused") for part in parts))
    return url, info


# -- the new batch --------------------------------------------------------------------------------

def write_penalty_batch(engine: Engine, path: Path, rows: int) -> dict[str, Any]:
    """`rows` samr penalties for as many register entities, contents drawn from stored samr penalties."""
    rng = random.Random(DEMO_SEED + 1)
    r, e, n, rel = t.records.c, t.entities.c, t.entity_names.c, t.entity_relations.c
    with engine.connect() as connection:
        register = connection.execute(select(e.id).where(e.origin == "register")).scalars().all()
        chosen = sorted(rng.sample(register, min(rows, len(register))))
        subjects = {}
        for first in range(0, len(chosen), 5000):
            part = chosen[first:first + 5000]
            found = connection.execute(
                select(e.id, e.key, n.name, rel.person_name)
                .join(t.entity_names, (n.entity_id == e.id) & n.current.is_(True))
                .outerjoin(t.entity_relations, (rel.entity_id == e.id) & (rel.relation == "legal_representative")
                           & rel.valid_to.is_(None))
                .where(e.id.in_(part))).all()
            for entity_id, key, name, rep in found:
                subjects.setdefault(entity_id, (key, name, rep))
        contents = [row if isinstance(row, dict) else json.loads(row) for row in connection.execute(
            select(r.fields).where(r.category == "penalty", r.authority == "samr").order_by(r.id)
            .limit(20_000)).scalars()]
    spec = next(b for b in BATCHES if b.file == "samr_penalties.csv")
    headers = [header for _, header in spec.columns]
    first_day, days = dt.date(2025, 1, 1), (dt.date(2025, 6, 30) - dt.date(2025, 1, 1)).days
    heavy = Counter()
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        for number, entity_id in enumerate(sorted(subjects), 1):
            key, name, rep = subjects[entity_id]
            content = rng.choice(contents)
            day = first_day + dt.timedelta(days=rng.randrange(days + 1))
            fine = content.get("fine_amount")
            years = 3 if content.get("penalty_type") in ("责令停产停业", "暂扣或者吊销许可证") else 1
            heavy[content.get("penalty_type")] += 1
            heavy["fine >= 1,000,000"] += bool(fine and fine >= 1_000_000)
            values = {
                "subject_name": name, "uscc": key, "legal_representative": rep or "",
                "decision_no": f"基准市监罚〔2025〕{number}号", "violation_type": content.get("violation_type", ""),
                "facts": content.get("facts", ""), "legal_basis": content.get("legal_basis", ""),
                "penalty_type": content.get("penalty_type", ""), "penalty_content": content.get("penalty_content", ""),
                "fine_amount": "" if fine is None else f"{fine / 10000:.4f}".rstrip("0").rstrip("."),
                "decision_date": day.isoformat(), "publicity_end": day.replace(year=day.year + years).isoformat(),
                "authority_name": content.get("authority_name", ""),
            }
            writer.writerow([values[field] for field, _ in spec.columns])
    return {"rows": len(subjects), "file": path.name, "penalty_types": dict(heavy.most_common())}


def link_batch(engine: Engine, watermark: int, accepted: int) -> int:
    """Link the batch's records (past `watermark`) to the register entity each names by its USCC,
    as `resolve` decides a record whose verified code an entity holds: linked, by identifier,
    score 1. In SQL, not through `resolve`: a run of it first indexes every name of the register
    and decides again every record that made its own entity (2,137 s for this batch at 200,000
    register entities on 2 shared cores; hours at 1,000,000). `bench/resolve.py` measures resolution."""
    r, i = t.records.c, t.entity_identifiers.c
    links = t.record_links
    matched = (select(r.id, literal("linked"), i.entity_id, literal("identifier"), literal(1.0),
                      literal({"identifier": "uscc"}, links.c.explanation.type),
                      literal(dt.datetime.now(dt.timezone.utc), links.c.resolved_at.type))
               .join(t.entity_identifiers, (i.scheme == "uscc") & (i.value == r.subject_code))
               .where(r.id > watermark, r.subject_code_verified.is_(True)))
    with engine.begin() as connection:
        connection.execute(links.insert().from_select(
            ["record_id", "state", "entity_id", "method", "score", "explanation", "resolved_at"], matched))
        # Counted, not read off rowcount: psycopg reports -1 for this INSERT ... SELECT.
        linked = connection.execute(select(func.count()).select_from(links)
                                    .where(links.c.record_id > watermark)).scalar_one()
    if linked != accepted:
        sys.exit(f"{linked:,} of the batch's {accepted:,} records name a register entity by its USCC: "
                 "the batch must name each by its key")
    return linked


# -- what is timed --------------------------------------------------------------------------------

def rules_in_force(pack):
    return [(spec, rule) for spec in pack.lists if (rule := rule_in_force(spec, AS_OF)) is not None]


def touched_entities(watermark: int):
    """The entities an incremental run considers: as `evaluate` builds them."""
    return (select(t.record_links.c.entity_id)
            .join(t.records, t.records.c.id == t.record_links.c.record_id)
            .where(t.records.c.id > watermark, t.record_links.c.entity_id.is_not(None))
            .distinct())


def floor_query(categories: list[str], *, after: int | None = None, touched: Any = None):
    """The plain aggregate: per entity, the records of the categories linked to it.

    The same link states as `qualifying_query` counts; the NULL group (no entity) is dropped
    when the rows are read.
    """
    r, link = t.records.c, t.record_links.c
    query = (select(link.entity_id, func.count())
             .select_from(t.records.join(t.record_links, link.record_id == r.id))
             .where(r.category.in_(categories), link.state.in_(FLOOR_LINK_STATES)))
    if after is not None:
        query = query.where(r.id > after)
    if touched is not None:
        query = query.where(link.entity_id.in_(touched))
    return query.group_by(link.entity_id)


def touched_by_records(watermark: int):
    """The same entities as `touched_entities`, written so that the new records drive the join."""
    return (select(t.record_links.c.entity_id)
            .join(t.records, t.records.c.id == t.record_links.c.record_id)
            .where(t.records.c.id > watermark))


def run_floor(engine: Engine, pack, **kwargs: Any) -> dict[str, Any]:
    per_list = {}
    with engine.connect() as connection, clock() as c:
        for spec, rule in rules_in_force(pack):
            rows = [row for row in connection.execute(floor_query(list(rule.categories), **kwargs))
                    if row[0] is not None]
            per_list[spec.code] = {"entities": len(rows), "records": sum(count for _, count in rows)}
    return {"seconds": c.wall, "cpu_seconds": c.cpu, "per_list": per_list,
            "entities": sum(v["entities"] for v in per_list.values()),
            "records": sum(v["records"] for v in per_list.values())}


def run_rule_queries(engine: Engine, pack, watermark: int | None = None) -> dict[str, Any]:
    """`qualifying_query` of every list in force, executed and fetched as `evaluate` does, no writes;
    with `watermark`, over the touched entities as an incremental `evaluate` gathers them (its
    temporary table, filled inside the timing)."""
    per_list = {}
    touched = None
    with engine.connect() as connection, clock() as c:
        if watermark is not None:
            fill_touched(connection, watermark)
            touched = TOUCHED
        for spec, rule in rules_in_force(pack):
            evidence: dict[int, int] = defaultdict(int)
            for entity_id, *_ in connection.execute(qualifying_query(pack, spec, rule, AS_OF, touched)):
                evidence[entity_id] += 1
            per_list[spec.code] = {"entities": len(evidence), "records": sum(evidence.values())}
        connection.rollback()
    return {"seconds": c.wall, "cpu_seconds": c.cpu, "per_list": per_list,
            "entities": sum(v["entities"] for v in per_list.values()),
            "records": sum(v["records"] for v in per_list.values())}


def run_evaluate(engine: Engine, pack, *, full: bool) -> dict[str, Any]:
    with clock() as c:
        result = evaluate(engine, pack, AS_OF, full=full, actor="bench")
    return {"seconds": c.wall, "cpu_seconds": c.cpu, "result": result.as_dict(),
            "proposals": result.proposals, "per_list": result.per_list}


def store_counts(engine: Engine) -> dict[str, int]:
    return {
        "entities": _count(engine, t.entities),
        "register_entities": _count(engine, t.entities, t.entities.c.origin == "register"),
        "records": _count(engine, t.records),
        "records_linked": _count(engine, t.record_links, t.record_links.c.state == "linked"),
        "listings": _count(engine, t.listings),
    }


# -- report ---------------------------------------------------------------------------------------

def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _setup_time(setup: dict[str, Any]) -> str:
    parts = [f"{label} {setup[step]['seconds']:.0f} s" + (" (earlier run, reused)" if setup[step].get("reused") else "")
             for step, label in (("pipeline", "pipeline"), ("clone", "copies")) if step in setup]
    return f"{setup['build_seconds']:.0f} s ({', '.join(parts)}); this run {setup['seconds']:.0f} s"


def _brief(run: dict[str, Any]) -> str:
    return f"{run['seconds']:.2f} s wall, {run['cpu_seconds']:.2f} s CPU"


def code_version() -> dict[str, Any]:
    """Which code was measured: the tree may hold uncommitted changes."""
    package = Path(__file__).resolve().parent.parent / "xinyong"
    digest = lambda path: hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=package.parent, capture_output=True,
                          text=True, check=False).stdout.strip()
    return {"git_head": head or None, "evaluate_py_sha256": digest(package / "services" / "lists" / "evaluate.py"),
            "pack_cn_sha256": digest(package / "packs" / "cn" / "pack.yaml")}


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entities", type=int, default=FULL_ENTITIES,
                        help=f"register entities (default {FULL_ENTITIES:,})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ENTITIES:,} register entities")
    parser.add_argument("--db", help="a store URL to build in and measure (e.g. an empty PostgreSQL "
                                     "database); default: SQLite files in the work folder")
    parser.add_argument("--workdir", type=Path, help="keep the demo and stores here and reuse them when present")
    parser.add_argument("--setup", choices=("auto", "pipeline", "clone"), default="auto",
                        help="how the store is built (auto: pipeline up to --seed-entities, clone above)")
    parser.add_argument("--seed-entities", type=int, default=SEED_ENTITIES,
                        help=f"register entities of the pipeline-built seed that is cloned (default {SEED_ENTITIES:,})")
    parser.add_argument("--rules-only", action="store_true",
                        help="time the rule queries and the floors, not the evaluate() calls")
    args = parser.parse_args()
    if args.quick:
        args.entities = QUICK_ENTITIES
    load_before = os.getloadavg()
    pack = load_pack("cn")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="xinyong-bench-evaluate-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        url, setup = prepare(args, workdir)
        engine = open_engine(url)
        counts = store_counts(engine)
        say(f"store ready: {counts['register_entities']:,} register entities ({counts['entities']:,} in all), "
            f"{counts['records']:,} records; set-up {_setup_time(setup)} (not counted)")

        say("floor over the full store (warm-up, untimed) ...")
        run_floor(engine, pack)
        floor_full = run_floor(engine, pack)
        say(f"(2) floor over the full store: {_brief(floor_full)}")
        rules_full = run_rule_queries(engine, pack)
        say(f"(1) rule queries alone (no writes): {_brief(rules_full)}")
        full = None
        if not args.rules_only:
            say("(1) evaluate(full=True) ...")
            full = run_evaluate(engine, pack, full=True)
            say(f"(1) evaluate(full=True): {_brief(full)}, {full['proposals']:,} proposals")

        with engine.connect() as connection:
            watermark = connection.execute(select(func.max(t.records.c.id))).scalar_one()
        batch_path = workdir / "penalty_batch.csv"
        with clock() as written:
            batch = write_penalty_batch(engine, batch_path, BATCH_RECORDS)
        with clock() as ingested:
            ingest = ingest_file(engine, pack, batch_path, "samr", "penalty", actor="bench")
        say(f"(3) batch: {ingest.accepted:,} penalty records written in {written.wall:.1f} s, "
            f"ingested in {ingested.wall:.1f} s ...")
        with clock() as linked_clock:
            linked = link_batch(engine, watermark, ingest.accepted)
        say(f"    linked {linked:,} records by their USCC in {linked_clock.wall:.1f} s")
        touched = touched_entities(watermark)
        touched_count = _count(engine, touched.subquery())
        run_floor(engine, pack, after=watermark)  # warm-up
        floor_new = run_floor(engine, pack, after=watermark)
        say(f"(4) floor over the new records: {_brief(floor_new)}")
        floor_touched = run_floor(engine, pack, touched=touched_by_records(watermark))
        say(f"    floor over the touched entities: {_brief(floor_touched)}")
        rules_incremental = run_rule_queries(engine, pack, watermark)
        say(f"(3) rule queries alone on {touched_count:,} touched entities: {_brief(rules_incremental)}")
        incremental = None
        if not args.rules_only:
            say("(3) evaluate() incremental ...")
            incremental = run_evaluate(engine, pack, full=False)
            say(f"(3) evaluate() incremental: {_brief(incremental)}, {incremental['proposals']:,} proposals")
        after = store_counts(engine)
        engine.dispose()
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()

    made = (f"{setup['copies']} copies of a {setup['seed_entities']:,}-entity pipeline store (SQL bulk copy)"
            if setup["method"] == "clone" else "the normal pipeline (generate, ingest_file, resolve)")
    backend = make_url(database_url(url)).get_backend_name()
    engine_text = f"SQLite {sqlite3.sqlite_version}" if backend == "sqlite" else backend
    say("")
    say(f"evaluation benchmark: {counts['register_entities']:,} register entities ({counts['entities']:,} in all), "
        f"{counts['records']:,} records, as of {AS_OF}; {engine_text}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    say(f"store built by {made}: {_setup_time(setup)} (not counted)")
    say(f"{'run':<56}{'wall s':>9}{'CPU s':>9}{'entities':>10}{'records':>11}")

    def line(label: str, run: dict[str, Any] | None, entities: Any = None, records: Any = None) -> None:
        if run is None:
            say(f"{label:<56}{'skipped':>9}")
            return
        entities = run.get("entities") if entities is None else entities
        records = run.get("records") if records is None else records
        say(f"{label:<56}{run['seconds']:>9.2f}{run['cpu_seconds']:>9.2f}"
            f"{entities if isinstance(entities, str) else f'{entities:,}':>10}"
            f"{records if isinstance(records, str) else f'{records:,}':>11}")

    line("(1) evaluate(full=True): proposals", full, full and full["proposals"], "")
    line("    its rule queries alone (qualifying_query, fetched)", rules_full)
    if full:
        writing = {"seconds": full["seconds"] - rules_full["seconds"],
                   "cpu_seconds": full["cpu_seconds"] - rules_full["cpu_seconds"]}
        line("    the rest: writing proposals, evidence, audit", writing, full["proposals"], "")
    line("(2) floor: GROUP BY entity over the same records", floor_full)
    line(f"(3) evaluate() incremental after {ingest.accepted:,} records", incremental,
         incremental and incremental["proposals"], "")
    line(f"    its rule queries alone, {touched_count:,} touched entities", rules_incremental)
    line("(4) floor restricted to the new records", floor_new)
    line("    floor over all records of the touched entities", floor_touched)
    say("")

    ratios: dict[str, float] = {}
    checks: dict[str, bool] = {}
    if full:
        ratios["full_over_floor"] = _ratio(full["seconds"], floor_full["seconds"])
        ratios["full_over_floor_cpu"] = _ratio(full["cpu_seconds"], floor_full["cpu_seconds"])
    ratios["full_rules_over_floor"] = _ratio(rules_full["seconds"], floor_full["seconds"])
    ratios["full_rules_over_floor_cpu"] = _ratio(rules_full["cpu_seconds"], floor_full["cpu_seconds"])
    if incremental:
        ratios["incremental_over_floor"] = _ratio(incremental["seconds"], floor_new["seconds"])
        ratios["incremental_over_floor_cpu"] = _ratio(incremental["cpu_seconds"], floor_new["cpu_seconds"])
        ratios["incremental_over_touched_floor"] = _ratio(incremental["seconds"], floor_touched["seconds"])
        ratios["incremental_over_touched_floor_cpu"] = _ratio(incremental["cpu_seconds"], floor_touched["cpu_seconds"])
    ratios["incremental_rules_over_floor"] = _ratio(rules_incremental["seconds"], floor_new["seconds"])
    for key, label in (("full_over_floor", "(1) / (2)"), ("full_rules_over_floor", "(1) rule queries / (2)"),
                       ("incremental_over_floor", "(3) / (4)"),
                       ("incremental_over_touched_floor", "(3) / floor over touched entities"),
                       ("incremental_rules_over_floor", "(3) rule queries / (4)")):
        if key in ratios:
            cpu = ratios.get(key + "_cpu")
            say(f"{label:<56}{ratios[key]:>8.1f}x wall" + (f"{cpu:>8.1f}x CPU" if cpu is not None else ""))
    full_scale = counts["register_entities"] == FULL_ENTITIES
    for key, label, run, target in (("full", "full run", full, TARGET_FULL_SECONDS),
                                    ("incremental", "incremental run", incremental, TARGET_INCREMENTAL_SECONDS)):
        if run is None:
            continue
        checks[key] = run["seconds"] < target
        say(f"{label:<56}{run['seconds']:>8.2f} s   target < {target:.0f} s"
            f"{'' if full_scale else ' (set for 1,000,000 entities)'}  {_verdict(checks[key])}")
    if full and full["per_list"] != {k: v["entities"] for k, v in rules_full["per_list"].items()}:
        say(f"note: evaluate's proposals per list {full['per_list']} differ from its rule queries "
            f"{ {k: v['entities'] for k, v in rules_full['per_list'].items()} }")
    if incremental and incremental["per_list"] != {k: v["entities"] for k, v in rules_incremental["per_list"].items()}:
        say(f"note: incremental proposals per list {incremental['per_list']} differ from its rule queries")
    say("proposals per list: " + ", ".join(
        f"{code} {v['entities']:,}" for code, v in rules_full["per_list"].items()) + " (full)"
        + ("; " + ", ".join(f"{code} {n:,}" for code, n in incremental["per_list"].items() if n)
           + " (incremental)" if incremental else ""))

    report = {
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full", "rules_only": args.rules_only, "as_of": AS_OF.isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "database": engine_text, "load_average_before": load_before, "load_average_after": load_after},
        "code": code_version(), "setup": setup, "store": counts, "store_after": after,
        "batch": {**batch, "accepted": ingest.accepted, "write_seconds": written.wall,
                  "ingest_seconds": ingested.wall, "link_seconds": linked_clock.wall, "linked": linked,
                  "watermark": watermark, "touched_entities": touched_count},
        "runs": {"full": full, "full_rule_queries": rules_full, "floor_full": floor_full,
                 "incremental": incremental, "incremental_rule_queries": rules_incremental,
                 "floor_new_records": floor_new, "floor_touched_entities": floor_touched},
        "ratios": ratios,
        "targets": {"full_seconds": TARGET_FULL_SECONDS, "incremental_seconds": TARGET_INCREMENTAL_SECONDS,
                    "at_entities": FULL_ENTITIES},
        "passed": checks,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    say(f"\nwritten {OUT.relative_to(ROOT.parent)}")


if __name__ == "__main__":
    main()
