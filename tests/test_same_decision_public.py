"""One decision written two ways is one penalty on every public surface. The market regulator's case
system sent 小米's penalty as 京市监罚〔2026〕12号, its publicity system again as 京市监罚[2026]12号
through the API: the store holds two records (each writing as sent), and evaluation already counts
one decision. But 小米's public file (page, `/v1/entities`, the PDF report) and the open data showed
two penalties where the regulator decided one. Each public surface now shows the writing stored
last; a reader with the restricted scope, and the subject's own file, still see both (SQLite and
PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import time_machine
from hypothesis import given
from hypothesis import strategies as st
from fastapi.testclient import TestClient

from test_trust_adversarial_13 import HEADERS, MEITUAN, TODAY, XIAOMI, _penalty, _posted, _registered
from worlds import run, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.domain.records import decision_number, superseded_writings
from xinyong.store.db import open_engine

FIRST, LATER = "samr:京市监罚〔2026〕12号", "samr:京市监罚[2026]12号"


def _sent_twice(cli, folder: Path) -> None:
    """小米's one penalty in two writings; 美团 fined on a decision with the same number by another
    authority's writing (a city's bureau, its own decision) and on one of the regulator's: three
    decisions of 美团's stay three."""
    _registered(cli, folder)
    cli("ingest", write_csv(folder / "case-system.csv", HEADERS, [
        _penalty("京市监罚〔2026〕12号"), _penalty("京市监罚〔2026〕12号-1", MEITUAN),
        _penalty("京市监罚〔2026〕30号", MEITUAN)]), "--authority", "samr", "--category", "penalty")
    _posted(cli, [_penalty("京市监罚[2026]12号"), _penalty("京市监罚[2026]31号", MEITUAN)])
    run(cli, "resolve")


def _penalties(file: dict) -> list[str]:
    return sorted(r["record_key"] for r in file["records"] if r["category"] == "penalty")


def test_one_decision_in_two_writings_is_one_penalty_on_the_public_file(cli, tmp_path: Path) -> None:
    with time_machine.travel(TODAY, tick=False):
        _sent_twice(cli, tmp_path)
        reader = run(cli, "authority", "key", "create", "samr", "--scopes", "read_restricted")["key"]
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                assert _penalties(http.get(f"/v1/entities/{XIAOMI}").json()) == [LATER]
                page = http.get(f"/entities/{XIAOMI}").text
                assert "京市监罚[2026]12号" in page and "京市监罚〔2026〕12号" not in page
                assert _penalties(http.get(f"/v1/entities/{MEITUAN}").json()) == [
                    "samr:京市监罚[2026]31号", "samr:京市监罚〔2026〕12号-1", "samr:京市监罚〔2026〕30号"]
                restricted = http.get(f"/v1/entities/{XIAOMI}", headers={
                    "X-API-Key": reader, "X-Purpose": "credit_approval"}).json()
                assert _penalties(restricted) == [LATER, FIRST]
        finally:
            engine.dispose()


def test_one_decision_in_two_writings_is_one_penalty_in_the_open_data(cli, tmp_path: Path) -> None:
    out = tmp_path / "open"
    with time_machine.travel(TODAY, tick=False):
        _sent_twice(cli, tmp_path)
        run(cli, "publish", "--out", out)
    dumped = [json.loads(line) for line in (out / "full" / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    penalties = [row for row in dumped if row["category"] == "penalty"]
    assert sorted(row["record_key"] for row in penalties if row["entity"] == XIAOMI) == [LATER]
    assert len([row for row in penalties if row["entity"] == MEITUAN]) == 3


WRITINGS = ["京市监罚〔2026〕12号", "京市监罚[2026]12号", "京市监罚(２０２６)12 号", "京市监罚〔2026〕13号", "（2026）京0108执200号"]


@given(st.lists(st.tuples(st.sampled_from(WRITINGS), st.sampled_from(["penalty", "court_defaulter"])),
                unique_by=lambda record: record[0], max_size=8), st.randoms())
def test_each_decision_keeps_exactly_its_writing_stored_last(records, random) -> None:
    """Whatever the order the writings were stored in: one key per (category, decision) remains,
    the one with the highest id (a key is of one category)."""
    ids = list(range(len(records)))
    random.shuffle(ids)
    rows = [(i, f"samr:{number}", category, "active") for i, (number, category) in zip(ids, records)]
    kept = {key for _, key, _, _ in rows} - superseded_writings(rows)
    last: dict[tuple[str, str], tuple[int, str]] = {}
    for i, key, category, _ in rows:
        group = (category, decision_number(key))
        last[group] = max(last.get(group, (i, key)), (i, key))
    assert kept == {key for _, key in last.values()}


def test_a_revoked_later_writing_supersedes_nothing() -> None:
    """京市监罚[2026]12号, stored later and revoked as a duplicate: the active 京市监罚〔2026〕12号 (the
    one a listing cites) stays on the public file."""
    rows = [(10, "samr:京市监罚〔2026〕12号", "penalty", "active"), (20, "samr:京市监罚[2026]12号", "penalty", "revoked")]
    assert superseded_writings(rows) == set()
