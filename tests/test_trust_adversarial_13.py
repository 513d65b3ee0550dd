"""One administrative decision written two ways by the authority that sends it: its case system
exports 京市监罚〔2026〕12号, its publicity system 京市监罚[2026]12号 or 京市监罚(２０２６)12 号 (full-width
digits, a space). The record key compares the raw text, so each writing is a record of its own, and
evaluation counted keys: a rule needing two penalties listed a firm on its one decision sent twice,
and a listing cited the one decision twice as its evidence (screening showed it twice). Each test is
a defect found and fixed (on SQLite and PostgreSQL); the Spark engine proposes the same."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select

from worlds import run, uscc, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import PACKS_DIR, load_pack
from xinyong.services.lists.evaluate import qualifying_query, rule_in_force, without_spent_decisions
from xinyong.store import tables as t
from xinyong.store.db import open_engine

XIAOMI = uscc("91110108MA0XM0077")
MEITUAN = uscc("91110108MA0MT0012")
JD = uscc("91110302MA0JD0019")
GREE = uscc("91440400MA4GL0018")
NAMES = {XIAOMI: "小米科技有限责任公司", MEITUAN: "北京三快在线科技有限公司", JD: "北京京东世纪贸易有限公司",
         GREE: "珠海格力电器股份有限公司"}
HEADERS = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"]
REGISTER = ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"]
CASE = "京市监罚〔2026〕12号"
# the pack's date is Asia/Shanghai's: 04:00 UTC is midday there
TODAY = dt.datetime(2026, 11, 10, 4, 0, tzinfo=dt.timezone.utc)
# two fined penalties of the market regulator within a year: a rule that needs two decisions
TWO_PENALTIES = """  - code: serious_dishonesty
    rules:
      - version: "2"
        effective: 2021-09-01
        legal_basis: 《市场监督管理严重违法失信名单管理办法》（国家市场监督管理总局令第44号）第二条
        categories: [penalty]
        authorities: [samr]
        min_count: 2
        window_months: 12
        any_of:
          - field: fine_amount
            min: 10000
"""


def _two_penalty_pack(folder: Path) -> Path:
    path = folder / "pack.yaml"
    path.write_text(f"code: cn-two\nversion: \"1\"\nextends: {PACKS_DIR / 'cn' / 'pack.yaml'}\n"
                    f"names: {{zh: 测试, en: Test, fr: Test}}\nlists:\n{TWO_PENALTIES}", encoding="utf-8")
    return path


def _penalty(number: str, firm: str = XIAOMI, *, by_code: bool = True, fine: str = "5",
             kind: str = "罚款") -> list[str]:
    return [NAMES[firm], firm if by_code else "", number, "2026-09-01", kind, fine]


def _registered(cli, folder: Path) -> None:
    register = write_csv(folder / "register.csv", REGISTER, [
        [code, name, "有限责任公司", "法定代表人", "2010-03-03", "存续"] for code, name in NAMES.items()])
    cli("ingest", register, "--authority", "samr", "--category", "registration")


def _posted(cli, rows: list[list[str]]) -> dict[str, Any]:
    """The rows through POST /v1/records with the market regulator's key."""
    key = run(cli, "authority", "key", "create", "samr", "--scopes", "submit:penalty")["key"]
    engine = open_engine(cli.url)
    try:
        with TestClient(create_app(engine, load_pack("cn"))) as http:
            answer = http.post("/v1/records", json={"category": "penalty",
                                                    "records": [dict(zip(HEADERS, row)) for row in rows]},
                               headers={"X-API-Key": key})
            assert answer.status_code == 201, answer.text
            return answer.json()
    finally:
        engine.dispose()


def _one_decision_sent_twice(cli, folder: Path) -> None:
    """A pack whose serious list needs two fined penalties; 小米's one penalty sent three times in
    three writings (file, API, next file); 京东's penalty first sent by name alone, then by code
    written another way, beside a second penalty; 美团's two penalties. Evaluated once between."""
    cli("init", "--pack", _two_penalty_pack(folder))
    _registered(cli, folder)
    first = write_csv(folder / "case-system.csv", HEADERS, [
        _penalty(CASE), _penalty("京市监罚〔2026〕30号", MEITUAN), _penalty("京市监罚〔2026〕31号", MEITUAN),
        _penalty("京市监罚〔2026〕40号", JD, by_code=False), _penalty("京市监罚〔2026〕41号", JD)])
    cli("ingest", first, "--authority", "samr", "--category", "penalty")
    _posted(cli, [_penalty("京市监罚[2026]12号")])
    run(cli, "resolve")


def _sent_again(cli, folder: Path) -> None:
    again = write_csv(folder / "publicity-system.csv", HEADERS, [
        _penalty("京市监罚(２０２６)12 号"), _penalty("京市监罚(2026)40号", JD)])
    cli("ingest", again, "--authority", "samr", "--category", "penalty")
    run(cli, "resolve")


def _evidence(cli, code: str) -> list[list[str]]:
    return [sorted(e["record_key"] for e in run(cli, "listing", "show", listing["id"])["evidence"])
            for listing in run(cli, "listing", "list", "--entity", code)]


LISTED = {XIAOMI: [], MEITUAN: [["samr:京市监罚〔2026〕30号", "samr:京市监罚〔2026〕31号"]],
          JD: [["samr:京市监罚〔2026〕40号", "samr:京市监罚〔2026〕41号"]]}


def test_one_penalty_sent_twice_in_two_writings_lists_nobody_on_a_two_penalty_rule(cli, tmp_path: Path) -> None:
    """小米's one penalty, sent as 京市监罚〔2026〕12号 by file and 京市监罚[2026]12号 through the API,
    then 京市监罚(２０２６)12 号 in the next file: three records, and the list needing two penalties
    proposed 小米 on its one decision (a full run, then an incremental one on the third writing).
    京东, its penalty sent by name and then by code written another way, has two decisions, each
    cited once; 美团 two. Evaluation counts decisions, not keys."""
    with time_machine.travel(TODAY, tick=False):
        _one_decision_sent_twice(cli, tmp_path)
        assert run(cli, "evaluate", "--as-of", "2026-10-10")["per_list"]["serious_dishonesty"] == 2
        _sent_again(cli, tmp_path)
        incremental = run(cli, "evaluate", "--as-of", "2026-10-10")
        assert (incremental["mode"], incremental["per_list"]["serious_dishonesty"]) == ("incremental", 0)
        assert run(cli, "evaluate", "--as-of", "2026-10-10", "--full")["per_list"]["serious_dishonesty"] == 0
        assert {code: _evidence(cli, code) for code in LISTED} == LISTED
        assert run(cli, "audit", "verify")["intact"] is True


def test_a_decision_sent_by_name_then_by_code_in_another_writing_counts_once(cli, tmp_path: Path) -> None:
    """京东's only penalty, first sent by its name alone (京市监罚〔2026〕50号), then with its code
    written 京市监罚(2026)50号: two records linked to 京东, and the two-penalty rule listed it."""
    with time_machine.travel(TODAY, tick=False):
        cli("init", "--pack", _two_penalty_pack(tmp_path))
        _registered(cli, tmp_path)
        cli("ingest", write_csv(tmp_path / "first.csv", HEADERS, [_penalty("京市监罚〔2026〕50号", JD, by_code=False)]),
            "--authority", "samr", "--category", "penalty")
        cli("ingest", write_csv(tmp_path / "second.csv", HEADERS, [_penalty("京市监罚(2026)50号", JD)]),
            "--authority", "samr", "--category", "penalty")
        run(cli, "resolve")
        for full in ((), ("--full",)):
            assert run(cli, "evaluate", "--as-of", "2026-10-10", *full)["per_list"]["serious_dishonesty"] == 0
        assert run(cli, "listing", "list", "--entity", JD) == []


def test_a_listing_cites_one_decision_sent_in_two_writings_once(cli, tmp_path: Path) -> None:
    """格力's licence revoked, one decision sent by file as 粤市监罚〔2026〕7号 and again through the
    API as 粤市监罚[2026]7 号: the listing's evidence (what `listing show`, the notice and screening
    give) cited the one decision twice. It cites it once: the writing the authority sent last."""
    with time_machine.travel(TODAY, tick=False):
        _registered(cli, tmp_path)
        revoked = _penalty("粤市监罚〔2026〕7号", GREE, fine="", kind="吊销许可证")
        cli("ingest", write_csv(tmp_path / "gree.csv", HEADERS, [revoked]), "--authority", "samr",
            "--category", "penalty")
        _posted(cli, [_penalty("粤市监罚[2026]7 号", GREE, fine="", kind="吊销许可证")])
        run(cli, "resolve")
        assert run(cli, "evaluate", "--as-of", "2026-10-10")["per_list"]["serious_dishonesty"] == 1
        assert _evidence(cli, GREE) == [["samr:粤市监罚[2026]7 号"]]


def _sql_engine_would_propose(cli, pack_path: Path, as_of: dt.date) -> dict[str, list[str]]:
    """The serious list's proposals as the SQL engine's evaluation makes them (its rule query, then
    `without_spent_decisions`), read without writing: entity key -> evidence record keys."""
    pack = load_pack(str(pack_path))
    spec = pack.list_("serious_dishonesty")
    rule = rule_in_force(spec, as_of)
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            evidence: dict[int, dict[int, str | None]] = {}
            for entity, record, note in c.execute(qualifying_query(pack, spec, rule, as_of)):
                evidence.setdefault(entity, {})[record] = note
            without_spent_decisions(c, spec, rule, evidence)
            keys = dict(c.execute(select(t.records.c.id, t.records.c.record_key)).all())
            entities = dict(c.execute(select(t.entities.c.id, t.entities.c.key)).all())
    finally:
        engine.dispose()
    return {entities[entity]: sorted(keys[r] for r in records) for entity, records in evidence.items()}


@pytest.mark.spark
def test_spark_counts_decisions_as_the_sql_engine_does(cli, tmp_path: Path) -> None:
    """The store above, all three writings in and never evaluated, evaluated by `evaluate --engine
    spark` from a snapshot: the proposals the SQL engine makes, 京东's penalty cited by the writing
    sent last, 小米 on none."""
    pytest.importorskip("pyspark")
    _one_decision_sent_twice(cli, tmp_path)
    _sent_again(cli, tmp_path)
    as_of = dt.date(2026, 10, 10)
    expected = {MEITUAN: ["samr:京市监罚〔2026〕30号", "samr:京市监罚〔2026〕31号"],
                JD: ["samr:京市监罚(2026)40号", "samr:京市监罚〔2026〕41号"]}
    assert _sql_engine_would_propose(cli, tmp_path / "pack.yaml", as_of) == expected
    snapshot = tmp_path / "snapshot"
    cli("export", "--format", "parquet", "--out", snapshot)
    spark = run(cli, "evaluate", "--engine", "spark", "--snapshot", snapshot, "--as-of", as_of.isoformat(), "--full")
    assert spark["per_list"]["serious_dishonesty"] == 2
    assert {code: _evidence(cli, code) for code in (XIAOMI, MEITUAN, JD)} == {
        XIAOMI: [], **{code: [keys] for code, keys in expected.items()}}
    assert run(cli, "evaluate", "--as-of", as_of.isoformat(), "--full")["per_list"]["serious_dishonesty"] == 0
