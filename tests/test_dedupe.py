"""Batch de-duplication with Splink: planted duplicates found, identifiers respected, model reused.

A demo register (400 entities) is ingested, then duplicates are planted the way they happen:
the same company entered again without its USCC, under a bracket, legal-form or place
variant, with a typo in its trade name, or under its former name, some with the address
cut short or the legal representative missing. Two other companies share one name and one
legal representative but each has its own valid USCC: they must never be paired.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from xinyong.cli import app
from xinyong.domain.identifiers import is_valid_uscc, org_code_check_character, uscc_check_character
from xinyong.domain.names import normalise_name
from xinyong.services.resolution import dedupe
from xinyong.services.operations.demo import generate
from xinyong.store import tables as t
from xinyong.store.db import open_engine

ENTITIES = 400
SEED = 31
TYPOS = {"鑫": "新", "华": "化", "盛": "胜", "泰": "太", "达": "大", "源": "元", "昌": "长", "宏": "洪", "德": "得",
         "瑞": "锐", "丰": "峰", "祥": "翔", "嘉": "佳", "博": "搏", "汇": "会", "通": "同", "恒": "衡", "锦": "金"}


@pytest.fixture(scope="module")
def register(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, ENTITIES, SEED)
    return out / "registration.xlsx"


# -- planting ----------------------------------------------------------------------------------

def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _uscc(n: int) -> str:
    org8 = f"{77000000 + n:08d}"
    first17 = "91310101" + org8 + org_code_check_character(org8)
    code = first17 + uscc_check_character(first17)
    assert is_valid_uscc(code)
    return code


def _add_entity(connection, key: str, name: str, legal_rep: str | None, address: str | None,
                region: str | None, uscc: str | None = None, origin: str = "resolution") -> int:
    now = _now()
    entity_id = connection.execute(t.entities.insert().values(
        key=uscc or key, kind="enterprise", status="存续", region=region, address=address,
        verified=uscc is not None, origin=origin, created_at=now, updated_at=now,
    ).returning(t.entities.c.id)).scalar_one()
    connection.execute(t.entity_names.insert().values(
        entity_id=entity_id, name=name, normalised=normalise_name(name), current=True))
    if legal_rep:
        connection.execute(t.entity_relations.insert().values(
            entity_id=entity_id, relation="legal_representative", person_name=legal_rep))
    if uscc:
        connection.execute(t.entity_identifiers.insert().values(
            entity_id=entity_id, scheme="uscc", value=uscc, verified=True))
    return entity_id


def _register_entities(connection) -> list[dict]:
    """Register companies (head offices) with what a duplicate would copy from them."""
    e, n, r = t.entities.c, t.entity_names.c, t.entity_relations.c
    names: dict[int, dict] = {}
    for entity_id, name, current in connection.execute(select(n.entity_id, n.name, n.current).order_by(n.id)):
        slot = names.setdefault(entity_id, {"name": None, "former": []})
        if current:
            slot["name"] = name
        else:
            slot["former"].append(name)
    reps = dict(connection.execute(select(r.entity_id, r.person_name).where(r.valid_to.is_(None))).all())
    out = []
    for entity_id, region, address in connection.execute(select(e.id, e.region, e.address).order_by(e.id)):
        name = names[entity_id]["name"]
        if name and name.endswith("公司") and "分公司" not in name and "股份" not in name:
            out.append({"id": entity_id, "name": name, "former": names[entity_id]["former"],
                        "legal_rep": reps.get(entity_id), "address": address, "region": region})
    return out


def _typo(name: str) -> str | None:
    match = re.search("|".join(TYPOS), name[2:])  # past the place prefix
    if not match:
        return None
    at = match.start() + 2
    return name[:at] + TYPOS[name[at]] + name[at + 1:]


def _other_brackets(name: str) -> str:
    if "（" in name:
        return name.replace("（", "(").replace("）", ")")
    return name.replace("(", "（").replace(")", "）")


def _short(address: str) -> str:
    return re.sub(r"\d+号楼\d+室$", "", address)


def plant(engine) -> dict:
    """Plant duplicates and a pair of namesakes; returns {"duplicates": {(a, b): kind}, "namesakes": (a, b)}."""
    duplicates: dict[tuple[int, int], str] = {}
    with engine.begin() as c:
        companies = _register_entities(c)
        used: set[int] = set()

        def pick(test) -> dict:
            found = next(x for x in companies if x["id"] not in used and test(x))
            used.add(found["id"])
            return found

        def add(kind: str, source: dict, name: str, **changes) -> None:
            values = {"legal_rep": source["legal_rep"], "address": source["address"], "region": source["region"]}
            values.update(changes)
            new = _add_entity(c, f"XDUP{len(duplicates):04d}", name, **values)
            duplicates[(source["id"], new)] = kind

        for i in range(2):
            s = pick(lambda x: True)
            add("same name, no USCC", s, s["name"], address=_short(s["address"]) if i else s["address"])
        for i in range(2):
            s = pick(lambda x: "（" in x["name"] or "(" in x["name"])
            add("bracket variant", s, _other_brackets(s["name"]), legal_rep=None if i else s["legal_rep"])
        for i in range(2):
            s = pick(lambda x: x["name"].endswith("有限公司") and "有限责任公司" not in x["name"])
            add("legal form variant", s, s["name"].replace("有限公司", "有限责任公司"),
                address=_short(s["address"]) if i else s["address"])
        for i in range(3):
            s = pick(lambda x: _typo(x["name"]) is not None)
            add("typo", s, _typo(s["name"]), address=_short(s["address"]) if i == 1 else s["address"],
                region=None if i == 2 else s["region"])
        for _ in range(2):
            s = pick(lambda x: bool(x["former"]))
            add("former name", s, s["former"][0])
        # Namesakes: one name, one legal representative, two valid USCCs: two legal persons.
        s = pick(lambda x: True)
        name = "上海鼎臻精密机械有限公司"
        a = _add_entity(c, "", name, s["legal_rep"], s["address"], "310101", uscc=_uscc(1), origin="register")
        b = _add_entity(c, "", name, s["legal_rep"], s["address"], "310101", uscc=_uscc(2), origin="register")
    return {"duplicates": duplicates, "namesakes": (a, b)}


@pytest.fixture
def store(cli, register):
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    engine = open_engine(cli.url)
    yield engine
    engine.dispose()


def _pairs(engine) -> dict[tuple[int, int], dict]:
    with engine.connect() as c:
        return {(row.entity_a, row.entity_b): row._asdict() for row in c.execute(select(t.duplicate_pairs))}


# -- tests ---------------------------------------------------------------------------------------

def test_entity_rows_describe_each_entity(store):
    planted = plant(store)
    with store.connect() as c:
        rows = {row["unique_id"]: row for row in dedupe.entity_rows(c)}
        entities = c.execute(select(t.entities.c.id)).scalars().all()
    assert sorted(rows) == sorted(entities)
    a, b = planted["namesakes"]
    assert rows[a]["uscc"] == _uscc(1) and rows[b]["uscc"] == _uscc(2)
    assert rows[a]["name"] == "上海鼎臻精密机械有限公司"
    assert rows[a]["name_core"] == "鼎臻精密机械"  # no place prefix, no legal form
    assert rows[a]["region"] == "310101" and rows[a]["legal_rep"]
    for (source, duplicate), kind in planted["duplicates"].items():
        assert rows[duplicate]["uscc"] is None
        assert rows[source]["uscc"] and is_valid_uscc(rows[source]["uscc"])
        if kind in ("bracket variant", "legal form variant"):
            assert rows[duplicate]["name_core"] == rows[source]["name_core"]
        if kind == "former name":
            assert rows[duplicate]["name"] in rows[source]["former_names"]
            assert set(rows[source]["all_names"]) == {rows[source]["name"], *rows[source]["former_names"]}
    with_address = [r for r in rows.values() if r["address"]]
    assert with_address and all(r["address"].startswith(r["address_key"]) and r["address_key"].endswith("号")
                                for r in with_address)


def test_dedupe_finds_planted_duplicates_and_reuses_its_model(store):
    planted = plant(store)
    first = dedupe.run_dedupe(store)
    assert first["trained"] is True and first["engine"] == "duckdb"
    assert first["entities"] == ENTITIES + len(planted["duplicates"]) + 2
    found = _pairs(store)
    missed = {pair: kind for pair, kind in planted["duplicates"].items() if pair not in found}
    assert not missed, f"planted duplicates not found: {missed}"
    assert first["pairs"] == len(found) and len(found) <= len(planted["duplicates"]) + 2
    assert all(row["state"] == "open" and row["probability"] >= 0.9 and row["model_id"] == first["model_id"]
               and row["engine"] == "duckdb" for row in found.values())

    # two valid, different USCCs: never a pair, whatever the names say
    assert planted["namesakes"] not in found
    assert first["blocked_by_identifier"] >= 1

    # the model is Splink's JSON, trained by Splink's estimators, stored with its purpose
    with store.connect() as c:
        models = c.execute(select(t.resolution_models)).all()
    assert len(models) == 1 and models[0].id == first["model_id"] and models[0].purpose == "entity_dedupe"
    model = models[0].model
    assert models[0].trained_on == first["entities"]
    assert [c["output_column_name"] for c in model["comparisons"]] == ["name", "legal_rep", "address", "region"]
    assert 0 < model["probability_two_random_records_match"] < 0.01
    levels = [level for c in model["comparisons"] for level in c["comparison_levels"]]
    assert sum("m_probability" in level for level in levels) >= 8  # estimated by EM, not set by hand
    assert sum("u_probability" in level for level in levels) >= 10  # estimated by random sampling

    # a human decides one pair; the next run reuses the model and leaves that decision alone
    decided = next(iter(planted["duplicates"]))
    with store.begin() as c:
        c.execute(update(t.duplicate_pairs).where(t.duplicate_pairs.c.entity_a == decided[0],
                                                  t.duplicate_pairs.c.entity_b == decided[1])
                  .values(state="same", probability=0.5))  # (`different` is 9 characters: column is String(8))
    second = dedupe.run_dedupe(store)
    assert second["trained"] is False and second["model_id"] == first["model_id"]
    assert second["pairs"] == first["pairs"] and second["blocked_by_identifier"] == first["blocked_by_identifier"]
    again = _pairs(store)
    assert again.keys() == found.keys()
    assert again[decided]["state"] == "same" and again[decided]["probability"] == 0.5
    assert sum(row["state"] == "open" for row in again.values()) == len(found) - 1

    third = dedupe.run_dedupe(store, retrain=True)
    assert third["trained"] is True and third["model_id"] != first["model_id"]
    assert {pair for pair in _pairs(store)} == set(found)


def test_identifiers_overrule_the_model(store):
    planted = plant(store)
    with store.connect() as c:
        rows = dedupe.entity_rows(c)
    model = dedupe.train(rows)
    scored = {(a, b): p for a, b, p in dedupe.predict(rows, model)}
    # the model alone calls the namesakes one company (same name, representative, address)...
    assert scored.get(planted["namesakes"], 0) >= 0.9
    # ...the identifier rule does not let it through
    with store.begin() as c:
        c.execute(t.resolution_models.insert().values(purpose="entity_dedupe", model=model, trained_on=len(rows),
                                                      created_at=_now()))
    summary = dedupe.run_dedupe(store)
    assert summary["trained"] is False and summary["blocked_by_identifier"] >= 1
    assert planted["namesakes"] not in _pairs(store)


def test_a_register_without_evident_duplicates_trains_nothing(store):
    summary = dedupe.run_dedupe(store)
    assert summary["model_id"] is None and summary["trained"] is False and summary["pairs"] == 0
    assert "evident duplicate" in summary["note"]
    with store.connect() as c:
        assert c.execute(select(t.resolution_models.c.id)).first() is None
    with pytest.raises(dedupe.NotEnoughEvidence), store.connect() as c:
        dedupe.train(dedupe.entity_rows(c))


def test_unknown_engine_is_refused():
    with pytest.raises(dedupe.DedupeError, match="unknown engine"):
        dedupe.run_dedupe(open_engine("sqlite://"), backend="oracle")


@pytest.fixture
def sqlite_store(tmp_path, register):
    """A SQLite store only: the Spark test is slow, and the store code it runs is engine-blind."""
    runner, url = CliRunner(), f"sqlite:///{tmp_path / 'store.db'}"
    for args in (["init"], ["ingest", str(register), "--authority", "samr", "--category", "registration"]):
        result = runner.invoke(app, ["--db", url, *args])
        assert result.exit_code == 0, result.output
    engine = open_engine(url)
    yield engine
    engine.dispose()


@pytest.mark.spark
def test_spark_applies_the_same_saved_model(sqlite_store):
    pytest.importorskip("pyspark")
    store = sqlite_store
    planted = plant(store)
    on_duckdb = dedupe.run_dedupe(store)  # trains and saves the model on DuckDB
    duckdb_pairs = _pairs(store)
    assert duckdb_pairs.keys() >= planted["duplicates"].keys()

    on_spark = dedupe.run_dedupe(store, backend="spark")  # the saved model, read by Spark
    assert on_spark["engine"] == "spark" and on_spark["trained"] is False
    assert on_spark["model_id"] == on_duckdb["model_id"]
    assert on_spark["blocked_by_identifier"] == on_duckdb["blocked_by_identifier"] >= 1
    spark_pairs = _pairs(store)
    assert spark_pairs.keys() == duckdb_pairs.keys()
    for pair, row in spark_pairs.items():
        assert row["engine"] == "spark"
        assert row["probability"] == pytest.approx(duckdb_pairs[pair]["probability"], abs=1e-6)
