"""Integrity of the independent evaluation set in bench/evalset/data (not the matcher's accuracy)."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from stdnum.cn import uscc

DATA = Path(__file__).resolve().parent.parent / "bench" / "evalset" / "data"
SOURCE = DATA.parent / "source" / "szse_a_shares.csv"
NAME_KINDS = ["traditional", "homophone", "short_name", "legal_form", "place", "english",
              "twin_char", "twin_homophone", "lookalike_unregistered"]
RECORD_KINDS = ["exact_code", "missing_code", "typo_code", "wrong_code", "traditional", "homophone", "legal_form",
                "place", "former_name", "branch", "twin", "absent"]


def _rows(name: str, encoding: str = "utf-8-sig") -> list[dict]:
    with (DATA / name).open(encoding=encoding, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def entities() -> dict[str, dict]:
    return {row["entity_key"]: row for row in _rows("entities.csv")}


@pytest.fixture(scope="module")
def register() -> list[dict]:
    a = _rows("register_utf8.csv")
    b = [{"统一社会信用代码": r["社会信用代码"], "企业名称": r["市场主体名称"], "曾用名": r["曾用名"],
          "企业类型": r["市场主体类型"]} for r in _rows("register_gb18030.csv", "gb18030")]
    return a + b


@pytest.fixture(scope="module")
def penalties() -> dict[str, dict]:
    """record_key -> (name, code) as the files give them, keyed like ingest does (authority:decision_no)."""
    manifest = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
    out = {}
    for file in ("penalties_samr.csv", "penalties_env.csv", "penalties_tax.csv"):
        spec = manifest["files"][file]
        with (DATA / file).open(encoding=spec["encoding"], newline="") as handle:
            for name, code, decision_no, *_ in list(csv.reader(handle))[1:]:
                out[f"{spec['authority']}:{decision_no}"] = {"name": name, "code": code}
    return out


def test_at_least_1000_real_firms_from_the_committed_source(entities):
    with SOURCE.open(encoding="utf-8", newline="") as handle:
        source = {row["full_name"] for row in csv.DictReader(handle)}
    real = [e for e in entities.values() if e["kind"] in ("firm", "renamed", "absent")]
    assert len(real) >= 1000
    assert all(e["name"] in source for e in real)
    # a renamed firm's former name is another real firm of the source, never registered under that name
    registered_names = {e["name"] for e in entities.values() if e["in_register"] == "1"}
    renamed = [e for e in entities.values() if e["kind"] == "renamed"]
    assert renamed and all(e["former_names"] in source and e["former_names"] not in registered_names
                           for e in renamed)


def test_register_codes_are_valid_unique_and_match_the_entities(register, entities):
    codes = [row["统一社会信用代码"] for row in register]
    assert len(codes) == len(set(codes))
    assert all(uscc.is_valid(code) for code in codes)
    in_register = {k for k, e in entities.items() if e["in_register"] == "1"}
    assert set(codes) == in_register
    # absent firms have valid codes of their own that the register does not hold
    absent = [k for k, e in entities.items() if e["kind"] == "absent"]
    assert absent and all(uscc.is_valid(k) and k not in in_register for k in absent)
    branches = [row for row in register if row["企业类型"] == "分公司"]
    assert len(branches) >= 300 and all(row["企业名称"].endswith("分公司") for row in branches)


def test_truth_is_complete_and_each_record_kind_is_what_it_claims(penalties, entities):
    truth = _rows("truth.csv", "utf-8")
    assert {row["record_key"] for row in truth} == set(penalties)
    counts = Counter(row["kind"] for row in truth)
    assert all(counts[kind] >= 300 for kind in RECORD_KINDS if kind != "wrong_code"), counts
    # another firm's code is rare in real files: its documented share of all records, and enough to measure
    manifest = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
    share = manifest["wrong_code_share"]
    assert counts["wrong_code"] >= 30
    assert abs(counts["wrong_code"] / len(truth) - share) < 0.001 or counts["wrong_code"] == 30, (counts, share)
    registered = {k for k, e in entities.items() if e["in_register"] == "1"}
    for row in truth:
        record, want, kind = penalties[row["record_key"]], row["entity_key"], row["kind"]
        assert want == "absent" if kind == "absent" else want in registered, row
        code = record["code"]
        if kind in ("exact_code",):
            assert code == want and record["name"] == entities[want]["name"]
        elif kind == "typo_code":
            assert not uscc.is_valid(code) and sum(a != b for a, b in zip(code, want)) == 1
        elif kind == "wrong_code":
            assert code != want and code in registered and record["name"] == entities[want]["name"]
        elif kind == "former_name":
            assert not code and record["name"] == entities[want]["former_names"]
        elif kind == "absent":
            assert not code or (uscc.is_valid(code) and code not in registered)
        elif kind == "branch":
            assert entities[want]["kind"] == "branch" and code in ("", want)
        elif kind == "twin":
            assert entities[want]["kind"].startswith("twin_") and entities[want]["listed"] == "0"
        else:
            assert not code


def _reader_in_context(texts: list[str]):
    """Toneless pinyin of whole names read in context (银行 is yin hang), as the generator read them:
    in a fresh interpreter, since xinyong loads pypinyin in this one without its phrase dictionary."""
    script = ("import json, sys; from pypinyin import Style, lazy_pinyin; texts = json.load(sys.stdin); "
              "json.dump({t: lazy_pinyin(t, style=Style.NORMAL) for t in texts}, sys.stdout)")
    env = {k: v for k, v in os.environ.items() if k != "PYPINYIN_NO_PHRASES"}
    done = subprocess.run([sys.executable, "-c", script], input=json.dumps(sorted(set(texts))), env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout).__getitem__


def test_name_queries_per_kind_and_their_expected_entities(entities):
    from hanziconv import HanziConv

    queries = _rows("name_queries.csv", "utf-8")
    counts = Counter(q["kind"] for q in queries)
    assert all(counts[kind] >= 300 for kind in NAME_KINDS), counts
    registered_names = {e["name"] for e in entities.values() if e["in_register"] == "1"}
    sound = _reader_in_context([q["query"] for q in queries] + [e["name"] for e in entities.values()])
    for q in queries:
        kind, query, want = q["kind"], q["query"], q["expected"]
        if kind == "lookalike_unregistered":
            assert want == "absent" and query not in registered_names
            continue
        expected = entities[want]
        name = expected["name"]
        if kind == "exact":
            assert query == name
        elif kind == "traditional":
            assert query != name and HanziConv.toSimplified(query) == HanziConv.toSimplified(name)
        elif kind == "homophone":
            assert len(query) == len(name) and sum(a != b for a, b in zip(query, name)) == 1
            assert sound(query) == sound(name) and query not in registered_names
        elif kind in ("twin_char", "twin_homophone"):
            base = entities[expected["base"]]
            assert query == name and base["listed"] == "1" and expected["listed"] == "0"
            assert sum(a != b for a, b in zip(name, base["name"])) == 1 and len(name) == len(base["name"])
            assert (sound(name) == sound(base["name"])) == (kind == "twin_homophone")
        elif kind == "english":
            # "Co., Ltd." may be written out as "Company Limited": both fold to the same letters
            letters = lambda text: re.sub(  # noqa: E731
                r"[^a-z0-9]", "", re.sub(r"company limited", "co ltd", text.lower()))
            assert expected["name_en"] and letters(query)[:6] == letters(expected["name_en"])[:6]
        elif kind == "short_name":
            assert query == expected["short_name"]
        else:
            assert query not in registered_names


def test_listing_penalties_name_the_listed_firms(entities):
    listed = {k for k, e in entities.items() if e["listed"] == "1"}
    rows = _rows("listing_penalties.csv", "utf-8")
    assert {row["统一社会信用代码"] for row in rows} == listed
    assert all(uscc.is_valid(row["统一社会信用代码"]) for row in rows)
