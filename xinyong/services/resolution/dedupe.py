"""Batch de-duplication of entities with Splink: one model, trained on the store's own data.

Several entities in a register can be one company: created twice without a USCC, under a
bracket or legal-form variant of the name, under a typo, or under a former name. This job
compares every entity with the others that share a blocking key (name core, any current or
former name, legal representative within a province, building), scores each pair with a Splink
(Fellegi-Sunter) model and lists the likely duplicates in `duplicate_pairs` for a human:
nothing is merged here.

The model is Splink's own: u probabilities by random sampling, m probabilities by
expectation maximisation over blocked pairs, the prior (`probability_two_random_records_match`)
from deterministic rules. It is saved as Splink's JSON in `resolution_models` and reused
until retrained, on DuckDB (the default, embedded) or on Spark (the scale-out path,
local mode here); the same saved model gives the same pairs on both.

Two entities whose verified USCCs differ are never proposed: two valid identifiers mean
two legal persons, whatever their names say.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from copy import deepcopy
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, desc, select
from sqlalchemy.engine import Connection, Engine

from xinyong.domain.names import normalise_name
from xinyong.store import tables as t
from xinyong.store.db import get_setting

if TYPE_CHECKING:  # heavy imports (Splink, pyarrow, pyspark) wait until a job runs
    import pyarrow as pa
    from pyspark.sql import SparkSession
    from splink import Linker, SettingsCreator
    from splink.internals.database_api import DatabaseAPI

PURPOSE = "entity_dedupe"
BACKENDS = ("duckdb", "spark")
DEFAULT_THRESHOLD = 0.9
SEED = 20240611  # u sampling: the same data always trains the same model
U_PAIRS = 2e6  # random pairs for u: enough for levels as rare as 1e-5
# Pairs these rules generate are taken as duplicates to estimate the prior (with this recall),
# and training needs a few of them at least.
DETERMINISTIC_RULES = (("name",), ("name_core", "legal_rep"))
DETERMINISTIC_RECALL = 0.7
MIN_EVIDENT_PAIRS = 5
# EM passes, each blocking on one column; a pass needs this many pairs.
EM_RULES = ("name_core", "legal_rep", "address_key")
MIN_EM_PAIRS = 10
EM_MAX_PAIRS = 5e6  # a pass over more pairs (a common legal representative's name) is sampled down
COMPARISONS = ("name", "legal_rep", "address", "region")
NOT_OBSERVED = 1e-6  # what Splink uses for a level its estimator never saw

# Rows handed to Splink: the columns the model compares (uscc stays out of the model and
# is applied as a hard rule afterwards).
MODEL_COLUMNS = ("unique_id", "name", "name_core", "former_names", "all_names", "region", "legal_rep", "address",
                 "address_key")
# The building of an address: everything up to the house number (…路161号), without floor or room.
_BUILDING = re.compile(r"^(.*?\d+号)")

logger = logging.getLogger(__name__)


class DedupeError(Exception):
    """De-duplication cannot run as asked; the message says why."""


# -- the rows ------------------------------------------------------------------------------

def _name_core_function(connection: Connection) -> Callable[[str], str]:
    """name -> core (trade name and industry, with any branch part), by the store's pack rules.

    Falls back to the normalised name when the pack has no name rules.
    """
    try:
        from xinyong.domain.matching import NameAnalyser
        from xinyong.domain.pack import load_pack

        pack = load_pack(get_setting(connection, "pack") or "cn")
        rules = pack.resolution.name_rules
    except Exception as exc:  # noqa: BLE001 - no pack, or a pack without name rules
        logger.warning("name cores unavailable (%s): comparing whole names", exc)
        return normalise_name
    analyser = NameAnalyser(rules)

    def core(name: str) -> str:
        parts = analyser.parts(name)
        return (parts.core + (parts.branch or "")) or normalise_name(name)

    return core


def entity_rows(connection: Connection) -> list[dict[str, Any]]:
    """One row per entity, in the shape the model compares.

    unique_id (entities.id), name (current name, normalised), name_core (without place
    prefix and legal form; a branch keeps its branch part), former_names (normalised, or
    None), all_names (current and former), region (division code), legal_rep (current
    legal representative), address (normalised), address_key (the building: the address up to
    its house number, None without one), uscc (verified USCC or None).
    """
    e, n, r, i = t.entities.c, t.entity_names.c, t.entity_relations.c, t.entity_identifiers.c
    rows: dict[int, dict[str, Any]] = {}
    for entity_id, region, address in connection.execute(select(e.id, e.region, e.address).order_by(e.id)):
        rows[entity_id] = {"unique_id": entity_id, "name": None, "name_core": None, "former_names": None,
                           "all_names": None, "region": region or None,
                           "legal_rep": None, "address": None, "address_key": None, "uscc": None}
        if address and (text := normalise_name(address)):
            building = _BUILDING.match(text)
            # no house number, no building: such an address ("上海市") would block half a city
            rows[entity_id].update(address=text, address_key=building.group(1) if building else None)
    core = _name_core_function(connection)
    names: dict[int, tuple[str | None, list[str]]] = {}
    for entity_id, name, current in connection.execute(
            select(n.entity_id, n.name, n.current).order_by(n.entity_id, n.id)):
        _, former = names.setdefault(entity_id, (None, []))
        if current:
            names[entity_id] = (name, former)
        else:
            former.append(name)
    for entity_id, (current, former) in names.items():
        row = rows.get(entity_id)
        if row is None:
            continue
        if current is None and former:  # no current name: the latest former one stands in
            current, former = former[-1], former[:-1]
        if current:
            row["name"] = normalise_name(current) or None
            row["name_core"] = core(current) or None
        former_norm = sorted({normalise_name(f) for f in former} - {row["name"], ""})
        row["former_names"] = former_norm or None
        row["all_names"] = sorted({*former_norm, *([row["name"]] if row["name"] else [])}) or None
    for entity_id, person in connection.execute(
            select(r.entity_id, r.person_name)
            .where(and_(r.relation == "legal_representative", r.valid_to.is_(None), r.person_name.is_not(None)))
            .order_by(r.entity_id, r.id)):
        if entity_id in rows:
            rows[entity_id]["legal_rep"] = normalise_name(person) or None
    for entity_id, value in connection.execute(
            select(i.entity_id, i.value).where(and_(i.scheme == "uscc", i.verified.is_(True)))
            .order_by(i.entity_id, i.value)):
        if entity_id in rows and rows[entity_id]["uscc"] is None:
            rows[entity_id]["uscc"] = value
    return list(rows.values())


# -- Splink: settings, backends --------------------------------------------------------------

def _settings() -> SettingsCreator:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import ColumnExpression, SettingsCreator, block_on

    # Only exact and edit-distance levels: integer results, identical on every engine.
    name = cl.CustomComparison(
        output_column_name="name",
        comparison_description="current names, their cores and former names",
        comparison_levels=[
            cll.NullLevel("name_core"),
            cll.ExactMatchLevel("name").configure(label_for_charts="same name"),
            cll.ExactMatchLevel("name_core").configure(label_for_charts="same core (place, brackets, legal form)"),
            # written so that sqlglot translates it (DuckDB's list_intersect has no Spark twin)
            cll.CustomLevel('array_length(array_intersect("all_names_l", "all_names_r")) >= 1',
                            label_for_charts="a former name of the other", base_dialect_str="duckdb"),
            cll.LevenshteinLevel("name_core", 1).configure(label_for_charts="core one edit apart"),
            cll.LevenshteinLevel("name_core", 2).configure(label_for_charts="core two edits apart"),
            cll.ElseLevel(),
        ],
    )
    region = cl.CustomComparison(
        output_column_name="region",
        comparison_description="administrative division (GB/T 2260)",
        comparison_levels=[
            cll.NullLevel("region"),
            cll.ExactMatchLevel("region").configure(label_for_charts="same county"),
            cll.ExactMatchLevel(ColumnExpression("region").substr(1, 4)).configure(label_for_charts="same city"),
            cll.ExactMatchLevel(ColumnExpression("region").substr(1, 2)).configure(
                label_for_charts="same province"),
            cll.ElseLevel(),
        ],
    )
    # Exact levels only: an edit distance over long CJK addresses costs more than all the rest.
    address = cl.CustomComparison(
        output_column_name="address",
        comparison_description="registered address",
        comparison_levels=[
            cll.NullLevel("address"),
            cll.ExactMatchLevel("address").configure(label_for_charts="same address"),
            cll.ExactMatchLevel("address_key").configure(label_for_charts="same building"),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            name,
            cl.LevenshteinAtThresholds("legal_rep", [1]),
            address,
            region,
        ],
        blocking_rules_to_generate_predictions=[
            block_on("name_core"),
            block_on("legal_rep", "substr(region, 1, 2)"),
            block_on("address_key"),
            block_on("all_names", arrays_to_explode=["all_names"]),
            # (a trade-name prefix within a city was tried: where a core keeps its district,
            # 区 names of shops, it made 400k pairs of 50k entities for no duplicate found)
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        max_iterations=25,
    )


def _arrow_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    import pyarrow as pa

    schema = pa.schema([
        ("unique_id", pa.int64()), ("name", pa.string()), ("name_core", pa.string()),
        ("former_names", pa.list_(pa.string())), ("all_names", pa.list_(pa.string())),
        ("region", pa.string()), ("legal_rep", pa.string()), ("address", pa.string()),
        ("address_key", pa.string()),
    ])
    return pa.Table.from_pylist([{c: row.get(c) for c in MODEL_COLUMNS} for row in rows], schema=schema)


def _spark_partitions() -> int:
    return max(2, (os.cpu_count() or 2) * 2)


_spark_lock = threading.RLock()
_spark_session = None


def spark_session() -> SparkSession:
    """A local Spark session with Splink's similarity jar, created on first use and reused."""
    global _spark_session
    with _spark_lock:
        if _spark_session is not None and _spark_session._jsc is not None:
            return _spark_session
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        try:
            from pyspark.sql import SparkSession
            from splink.backends.spark import similarity_jar_location
        except ImportError as exc:
            raise DedupeError("the Spark engine needs pyspark: pip install 'xinyong[spark]'") from exc
        cores = os.cpu_count() or 2
        _spark_session = (
            SparkSession.builder.master(os.environ.get("XINYONG_SPARK_MASTER", f"local[{cores}]"))
            .appName("xinyong-dedupe")
            .config("spark.jars", similarity_jar_location())
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.memory", os.environ.get("XINYONG_SPARK_DRIVER_MEMORY", "2g"))
            .config("spark.ui.enabled", "false")
            .config("spark.sql.warehouse.dir", tempfile.mkdtemp(prefix="xinyong-spark-"))
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(_spark_partitions()))
            .config("spark.default.parallelism", str(_spark_partitions()))
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
        _spark_session.sparkContext.setLogLevel("ERROR")
        return _spark_session


def _database_api(backend: str) -> DatabaseAPI:
    if backend == "duckdb":
        import duckdb
        from splink import DuckDBAPI

        connection = duckdb.connect()
        connection.execute("SET enable_progress_bar = false")
        return DuckDBAPI(connection)
    if backend == "spark":
        from splink import SparkAPI

        # persist: small local runs need no checkpoint directory
        return SparkAPI(spark_session=spark_session(), break_lineage_method="persist",
                        num_partitions_on_repartition=_spark_partitions())
    raise DedupeError(f"unknown engine {backend!r}: use one of {', '.join(BACKENDS)}")


def _for_dialect(model: dict[str, Any], dialect: str) -> dict[str, Any]:
    """The saved model, readable by another engine.

    Comparison levels are saved as SQL of the dialect the model was trained on, without
    saying which; tell Splink, which then translates them (blocking rules carry theirs).
    """
    source = model.get("sql_dialect")
    if not source or source == dialect:
        return model
    model = deepcopy(model)
    for comparison in model.get("comparisons", []):
        for level in comparison.get("comparison_levels", []):
            if level.get("sql_condition", "").strip().upper() != "ELSE":
                level.setdefault("base_dialect_str", source)
    return model


@contextmanager
def _linker(rows: Sequence[dict[str, Any]], settings: Any, backend: str) -> Iterator[Linker]:
    """A Linker over the rows on a fresh backend; its tables are dropped afterwards."""
    from splink import Linker

    with _spark_lock if backend == "spark" else nullcontext():  # one Splink job per Spark session
        db_api = _database_api(backend)
        name = f"xinyong_entities_{uuid.uuid4().hex[:12]}"
        try:
            data: Any = _arrow_table(rows)
            if backend == "spark":
                # materialise once: left as a local relation, every Splink query re-reads it
                data = db_api.spark.createDataFrame(data).repartition(_spark_partitions()).persist()
                data.count()
            table = db_api.register(data, table_name=name, dataset_display_name="entities")
            # Splink's warnings (levels unseen in small data) are for notebooks, not a batch job
            yield Linker(table, settings, log_level=logging.ERROR)
        finally:
            _clean_up(db_api, backend, name)


def _clean_up(db_api: DatabaseAPI, backend: str, input_name: str) -> None:
    """Drop what the job left in the backend; best effort, never masking the job's own error."""
    try:
        db_api.delete_tables_created_by_splink_from_db()
        if backend == "spark":
            catalog = db_api.spark.catalog
            for table in catalog.listTables():
                if table.isTemporary and (table.name.startswith("__splink__") or table.name == input_name):
                    catalog.dropTempView(table.name)
            catalog.clearCache()
        else:
            db_api.duckdb_con.close()
    except Exception as exc:  # noqa: BLE001
        logger.warning("cleaning up after Splink on %s: %s", backend, exc)


# -- training and prediction -------------------------------------------------------------------

def _groups(rows: Sequence[dict[str, Any]], *columns: str) -> dict[tuple[Any, ...], list[int]]:
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for row in rows:
        key = tuple(row.get(c) for c in columns)
        if all(v is not None for v in key):
            groups[key].append(row["unique_id"])
    return groups


def _pair_count(rows: Sequence[dict[str, Any]], *columns: str) -> int:
    """Pairs a blocking rule on these columns would generate."""
    return sum(len(ids) * (len(ids) - 1) // 2 for ids in _groups(rows, *columns).values())


def evident_pairs(rows: Sequence[dict[str, Any]]) -> int:
    """Pairs the deterministic rules call the same entity: same name, or same core and legal
    representative; pairs of two different verified USCCs do not count."""
    uscc = {row["unique_id"]: row.get("uscc") for row in rows}
    pairs: set[tuple[int, int]] = set()
    for columns in DETERMINISTIC_RULES:
        for ids in _groups(rows, *columns).values():
            pairs.update((a, b) if a < b else (b, a) for i, a in enumerate(ids) for b in ids[i + 1:]
                         if not (uscc[a] and uscc[b] and uscc[a] != uscc[b]))
    return len(pairs)


class NotEnoughEvidence(DedupeError):
    """The data shows too few evident duplicates for EM to learn what a duplicate looks like."""


def train(rows: Sequence[dict[str, Any]], backend: str = "duckdb") -> dict[str, Any]:
    """Train a Splink de-duplication model on these rows; returns Splink's model JSON (a dict).

    Raises NotEnoughEvidence when fewer than MIN_EVIDENT_PAIRS pairs are evidently the same
    entity: expectation maximisation without duplicates to find would fit noise, and a clean
    register then gets confident false pairs (seen: companies sharing a legal representative).
    """
    from splink import block_on

    evident = evident_pairs(rows)
    if evident < MIN_EVIDENT_PAIRS:
        raise NotEnoughEvidence(
            f"{len(rows)} entities, {evident} evident duplicate pair(s) (same name, or same name core and "
            f"legal representative); at least {MIN_EVIDENT_PAIRS} are needed to train a model")
    total = len(rows) * (len(rows) - 1) / 2
    if evident > total * DETERMINISTIC_RECALL:
        raise NotEnoughEvidence(f"{len(rows)} entities, {evident} of whose pairs are evident duplicates: "
                                "too few distinct entities to learn from")
    with _linker(rows, _settings(), backend) as linker:
        # The prior: pairs that deterministic rules call the same, scaled up by their recall.
        linker.training.estimate_probability_two_random_records_match(
            [block_on(*columns) for columns in DETERMINISTIC_RULES], recall=DETERMINISTIC_RECALL)
        # u: agreement among random pairs, nearly all non-matches.
        linker.training.estimate_u_using_random_sampling(max_pairs=min(U_PAIRS, total), seed=SEED)
        # m: EM over blocked pairs; each pass estimates the comparisons its rule does not fix.
        # A rule with no pairs is skipped beforehand: a failed pass leaves Splink's settings
        # without the comparisons it had set aside.
        passes = []
        for column in EM_RULES:
            count = _pair_count(rows, column)
            if count >= MIN_EM_PAIRS:
                linker.training.estimate_parameters_using_expectation_maximisation(
                    block_on(column), estimate_without_term_frequencies=True,
                    max_pairs=EM_MAX_PAIRS if count > EM_MAX_PAIRS else None)
                passes.append(column)
        if not passes:
            raise NotEnoughEvidence("no blocking rule gives pairs to estimate m probabilities on")
        model = _with_unobserved_levels(linker.misc.save_model_to_json())
    if [c["output_column_name"] for c in model["comparisons"]] != list(COMPARISONS):
        raise DedupeError(f"Splink returned a model without all of the comparisons {COMPARISONS}")
    return model


def _with_unobserved_levels(model: dict[str, Any]) -> dict[str, Any]:
    """The saved model, scoring as the trained linker did.

    A level never seen by the estimator (no random pair with the same name; no duplicate
    pair two edits apart) is held by Splink at probability 1e-6 while the linker lives, but
    left out of the saved JSON, and a linker loading it falls back on Splink's default
    weights for the level's position instead. Write the value down so that every engine
    loading the model scores the same way. u: every comparison is sampled; m: only in
    comparisons that an EM pass estimated (the others keep their defaults, and say so).
    """
    model = deepcopy(model)
    for comparison in model["comparisons"]:
        levels = [level for level in comparison["comparison_levels"] if not level.get("is_null_level")]
        for key in ("u_probability", "m_probability"):
            if any(key in level for level in levels):
                for level in levels:
                    level.setdefault(key, NOT_OBSERVED)
    return model


def predict(rows: Sequence[dict[str, Any]], model: dict[str, Any], backend: str = "duckdb",
            threshold: float = DEFAULT_THRESHOLD) -> list[tuple[int, int, float]]:
    """Score the rows' blocked pairs with a saved model: (lower id, higher id, probability), sorted."""
    if len(rows) < 2:
        return []
    dialect = "spark" if backend == "spark" else backend
    pairs: dict[tuple[int, int], float] = {}
    with _linker(rows, _for_dialect(model, dialect), backend) as linker:
        predictions = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
        for record in predictions.as_record_list():
            a, b = sorted((int(record["unique_id_l"]), int(record["unique_id_r"])))
            probability = float(record["match_probability"])
            if probability >= threshold:
                pairs[(a, b)] = max(probability, pairs.get((a, b), 0.0))
    return sorted((a, b, round(p, 6)) for (a, b), p in pairs.items())


# -- the job over a store ------------------------------------------------------------------------

def latest_model(connection: Connection) -> tuple[int, dict[str, Any]] | None:
    m = t.resolution_models.c
    found = connection.execute(select(m.id, m.model).where(m.purpose == PURPOSE)
                               .order_by(desc(m.created_at), desc(m.id)).limit(1)).first()
    return (found.id, found.model) if found else None


def _identifier_conflict(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["uscc"] and b["uscc"] and a["uscc"] != b["uscc"])


def _upsert_pairs(connection: Connection, pairs: Iterable[tuple[int, int, float]], backend: str,
                  model_id: int, now: dt.datetime) -> None:
    p = t.duplicate_pairs.c
    pairs = list(pairs)
    existing: dict[tuple[int, int], tuple[int, str]] = {}
    ids = sorted({a for a, _, _ in pairs})
    for start in range(0, len(ids), 900):
        for pair_id, a, b, state in connection.execute(
                select(p.id, p.entity_a, p.entity_b, p.state).where(p.entity_a.in_(ids[start:start + 900]))):
            existing[(a, b)] = (pair_id, state)
    new, changed = [], []
    for a, b, probability in pairs:
        found = existing.get((a, b))
        if found is None:
            new.append({"entity_a": a, "entity_b": b, "probability": probability, "engine": backend,
                        "model_id": model_id, "state": "open", "created_at": now})
        elif found[1] == "open":
            changed.append({"pair_id": found[0], "probability": probability, "engine": backend,
                            "model_id": model_id})
        # decided pairs (same / different) stay as a human left them
    if new:
        connection.execute(t.duplicate_pairs.insert(), new)
    if changed:
        connection.execute(
            t.duplicate_pairs.update().where(p.id == bindparam("pair_id"))
            .values(probability=bindparam("probability"), engine=bindparam("engine"),
                    model_id=bindparam("model_id")),
            changed)


def run_dedupe(engine: Engine, backend: str = "duckdb", retrain: bool = False,
               threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Find likely duplicate entities in the store and list them in `duplicate_pairs`.

    Uses the newest saved `entity_dedupe` model, or trains and saves one (also when
    `retrain`). Pairs of two different verified USCCs are dropped and counted; new pairs are
    listed `open`, open ones get the new probability, decided ones are left as they are.
    Returns engine, model_id, trained, entities, pairs, blocked_by_identifier and seconds,
    plus a `note` when there was too little evidence to train (then model_id is None).
    """
    if backend not in BACKENDS:
        raise DedupeError(f"unknown engine {backend!r}: use one of {', '.join(BACKENDS)}")
    if not 0 < threshold <= 1:
        raise DedupeError(f"threshold {threshold} is not a probability in (0, 1]")
    started = time.perf_counter()
    with engine.connect() as connection:
        rows = entity_rows(connection)
        saved = None if retrain else latest_model(connection)
    summary: dict[str, Any] = {"engine": backend, "model_id": None, "trained": False, "entities": len(rows),
                               "pairs": 0, "blocked_by_identifier": 0}
    trained = saved is None
    if trained:
        try:
            model = train(rows, backend=backend)
        except NotEnoughEvidence as exc:
            # a register without evident duplicates: nothing to learn from, nothing to list
            summary.update(note=str(exc), seconds=round(time.perf_counter() - started, 3))
            return summary
        with engine.begin() as connection:
            model_id = connection.execute(t.resolution_models.insert().values(
                purpose=PURPOSE, model=model, trained_on=len(rows),
                created_at=dt.datetime.now(dt.timezone.utc)).returning(t.resolution_models.c.id)).scalar_one()
    else:
        model_id, model = saved
    by_id = {row["unique_id"]: row for row in rows}
    found = predict(rows, model, backend=backend, threshold=threshold)
    kept = [(a, b, p) for a, b, p in found if not _identifier_conflict(by_id[a], by_id[b])]
    with engine.begin() as connection:
        _upsert_pairs(connection, kept, backend, model_id, dt.datetime.now(dt.timezone.utc))
    summary.update(model_id=model_id, trained=trained, pairs=len(kept),
                   blocked_by_identifier=len(found) - len(kept),
                   seconds=round(time.perf_counter() - started, 3))
    return summary
