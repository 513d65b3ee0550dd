"""The synthetic demo jurisdiction: valid identifiers, claimed formats, truth, planted noise."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import openpyxl
import pytest
from stdnum.iso7064 import mod_11_10

from xinyong.domain.identifiers import classify_code, is_valid_org_code, is_valid_resident_id, is_valid_uscc
from xinyong.services.operations.demo import DIVISIONS, NOISE, generate

ENTITIES = 2000
# Headers that carry each part of a record, across the files (the spec, restated independently).
NAME_HEADERS = {"行政相对人名称", "企业名称", "当事人名称", "单位名称", "被处罚单位名称", "被执行人姓名/名称", "subject_name"}
CODE_HEADERS = {"统一社会信用代码", "社会信用代码", "信用代码", "身份证号码/组织机构代码", "uscc"}
KEY_HEADERS = {"行政处罚决定书文号", "行政许可决定文书号", "列入决定书文号", "案件编号", "决定书文号", "处罚决定书文号",
               "decision_no", "案号", "关联方名称"}
ROLE_WORDS = {"总经理": "经理", "执行董事兼总经理": "经理"}  # the pack's synonyms of the roles the demo writes
DATE_STYLES = {
    "samr_penalties.csv": ("处罚决定日期", r"^\d{4}/\d{1,2}/\d{1,2}$"),
    "samr_licences.csv": ("许可决定日期", r"^\d{4}-\d{2}-\d{2}$"),
    "samr_abnormal_operations.csv": ("列入日期", r"^\d{4}年\d{1,2}月\d{1,2}日$"),
    "tax_violations.csv": ("处罚决定日期", r"^\d{8}$"),
    "court_defaulters.csv": ("发布时间", r"^\d{4}年\d{1,2}月\d{1,2}日$"),
    "health_penalties.jsonl": ("decision_date", r"^\d{4}-\d{2}-\d{2}$"),
    "safety_penalties.csv": ("作出处罚决定的日期", r"^\d{8}$"),
}


def read_rows(path: Path, fmt: str, encoding: str | None) -> list[dict]:
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if fmt == "csv":
        lines = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig" if encoding == "utf-8-sig" else encoding))))
    else:
        wb = openpyxl.load_workbook(path, read_only=True)
        lines = [["" if v is None else v for v in row] for row in wb.active.iter_rows(values_only=True)]
        wb.close()
    header, *body = lines
    return [dict(zip(header, row)) for row in body]


def field(row: dict, headers: set[str]) -> str:
    for h, v in row.items():
        if h in headers:
            return "" if v is None else str(v)
    raise KeyError(headers)


def natural_key(entry: dict, row: dict) -> str:
    subject = field(row, CODE_HEADERS) or field(row, NAME_HEADERS)
    if entry["category"] == "tax_grade":
        return f"tax:{row['year']}#{subject}"
    if entry["category"] == "relations":  # one party in one role of one firm
        return f"samr:{row['关联方名称']}/{ROLE_WORDS.get(row['职务'], row['职务'])}#{subject}"
    key = field(row, KEY_HEADERS)
    return f"{entry['authority']}:{key}#{subject}" if entry["category"] == "court_defaulter" else f"{entry['authority']}:{key}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    return out, generate(out, ENTITIES, 42)


@pytest.fixture(scope="module")
def register(demo: tuple[Path, dict]) -> list[dict]:
    return read_rows(demo[0] / "registration.xlsx", "xlsx", None)


@pytest.fixture(scope="module")
def batches(demo: tuple[Path, dict]) -> list[tuple[dict, list[dict]]]:
    out, manifest = demo
    return [(e, read_rows(out / e["file"], e["format"], e["encoding"])) for e in manifest["files"][1:]]


@pytest.fixture(scope="module")
def truth(demo: tuple[Path, dict]) -> list[list[str]]:
    return list(csv.reader(io.StringIO((demo[0] / "truth.csv").read_text(encoding="utf-8"))))[1:]


@pytest.fixture(scope="module")
def rejects(demo: tuple[Path, dict]) -> dict[tuple[str, int], str]:
    rows = list(csv.reader(io.StringIO((demo[0] / "expected_rejects.csv").read_text(encoding="utf-8"))))[1:]
    return {(f, int(n)): reason for f, n, reason in rows}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, 300, 7)
    # another process with another string-hash seed: no set or dict order may leak into the files
    script = f"from pathlib import Path; from xinyong.services.operations.demo import generate; generate(Path({str(b)!r}), 300, 7)"
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, "PYTHONHASHSEED": "123"})
    generate(c, 300, 8)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "registration.xlsx").read_bytes() != (c / "registration.xlsx").read_bytes()


def test_manifest_lists_every_file_registration_first(demo: tuple[Path, dict]) -> None:
    out, manifest = demo
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8")) == manifest
    assert (manifest["seed"], manifest["entities"]) == (42, ENTITIES)
    first = manifest["files"][0]
    assert (first["file"], first["authority"], first["category"], first["format"]) == (
        "registration.xlsx", "samr", "registration", "xlsx")
    assert {e["authority"] for e in manifest["files"]} >= {"samr", "tax", "env", "court", "health", "safety"}
    assert {e["format"] for e in manifest["files"]} == {"csv", "xlsx", "jsonl"}
    for e in manifest["files"]:
        assert (out / e["file"]).is_file()
    # about three records per entity across the batches
    assert 2.5 * ENTITIES < manifest["counts"]["rows"] < 3.5 * ENTITIES


def test_divisions_are_real_county_codes() -> None:
    by_code = {d.code: d.full for d in DIVISIONS}
    assert len(by_code) == len(DIVISIONS) >= 60
    assert by_code["110101"] == "北京市东城区"
    assert by_code["110105"] == "北京市朝阳区"
    assert by_code["310115"] == "上海市浦东新区"
    assert by_code["440305"] == "广东省深圳市南山区"
    assert by_code["330106"] == "浙江省杭州市西湖区"
    assert by_code["510107"] == "四川省成都市武侯区"


def test_register_identifiers_are_valid(register: list[dict]) -> None:
    assert len(register) == ENTITIES
    usccs = [r["统一社会信用代码"] for r in register]
    assert len(set(usccs)) == ENTITIES
    assert len({r["企业名称"] for r in register}) == ENTITIES
    divisions = {d.code for d in DIVISIONS}
    for r in register:
        code = r["统一社会信用代码"]
        assert is_valid_uscc(code), code
        assert is_valid_org_code(code[8:17]) and r["组织机构代码"] == code[8:17], code
        assert code[2:8] == r["所属行政区划"] and code[2:8] in divisions
        assert is_valid_resident_id(r["法定代表人证件号码"]), r["法定代表人证件号码"]
        if r["注册号"]:
            assert re.fullmatch(r"\d{15}", r["注册号"]) and mod_11_10.is_valid(r["注册号"])
            assert r["注册号"][:6] == r["所属行政区划"]
        assert isinstance(r["成立日期"], dt.datetime)  # a real date cell
    prefixes = Counter(code[:2] for code in usccs)
    assert prefixes["91"] > 0.7 * ENTITIES and prefixes["92"] > 0.08 * ENTITIES
    assert prefixes["52"] and prefixes["12"]
    assert any(not code[0].isdigit() for code in usccs)  # N2..., Y1...
    assert Counter(r["登记状态"] for r in register).most_common(1)[0][0] == "存续"
    assert {"吊销", "注销"} <= {r["登记状态"] for r in register}
    branches = [r for r in register if r["企业名称"].endswith("分公司")]
    assert 0.02 * ENTITIES < len(branches) < 0.04 * ENTITIES
    with_former = [r for r in register if r["曾用名"]]
    assert 0.08 * ENTITIES < len(with_former) < 0.2 * ENTITIES
    assert any("；" in r["曾用名"] for r in with_former)
    # the legacy codes of market entities are unique, so they can resolve
    reg_nos = [r["注册号"] for r in register if r["注册号"]]
    assert len(reg_nos) == len(set(reg_nos)) > 0.9 * ENTITIES


def test_encodings_are_as_claimed(demo: tuple[Path, dict]) -> None:
    out, manifest = demo
    for e in manifest["files"]:
        data = (out / e["file"]).read_bytes()
        if e["format"] == "xlsx":
            assert data[:2] == b"PK"
        elif e["encoding"] == "gb18030":
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
            assert "统一社会信用代码" in data.decode("gb18030")
        elif e["encoding"] == "utf-8-sig":
            assert data.startswith(b"\xef\xbb\xbf")
        else:
            assert e["encoding"] == "utf-8" and not data.startswith(b"\xef\xbb\xbf")
            data.decode("utf-8")
    assert any(e["encoding"] == "gb18030" for e in manifest["files"])
    assert any(e["encoding"] == "utf-8-sig" for e in manifest["files"])


def test_date_styles_vary_between_files(demo: tuple[Path, dict], batches, rejects) -> None:
    for e, rows in batches:
        if e["file"] in DATE_STYLES:
            header, pattern = DATE_STYLES[e["file"]]
            good = [r[header] for n, r in enumerate(rows, 1 if e["format"] == "jsonl" else 2)
                    if (e["file"], n) not in rejects]
            assert all(re.match(pattern, v) for v in good), e["file"]
    env = next(rows for e, rows in batches if e["file"] == "env_penalties.xlsx")
    assert sum(isinstance(r["处罚日期"], dt.datetime) for r in env) > 0.9 * len(env)


def test_truth_covers_every_accepted_record_once(demo, batches, truth, rejects, register) -> None:
    keys = [k for k, _ in truth]
    assert len(keys) == len(set(keys))
    expected: dict[str, str] = {}
    for e, rows in batches:
        first = 1 if e["format"] == "jsonl" else 2
        for n, row in enumerate(rows, first):
            if (e["file"], n) in rejects:
                continue
            expected.setdefault(natural_key(e, row), "")
    assert set(expected) == set(keys)
    usccs = {r["统一社会信用代码"] for r in register}
    assert all(ek in usccs for _, ek in truth if ek)
    # a record written with a register USCC is about that entity
    by_key = dict(truth)
    for e, rows in batches:
        for n, row in enumerate(rows, 1 if e["format"] == "jsonl" else 2):
            code = field(row, CODE_HEADERS)
            if code in usccs and (e["file"], n) not in rejects:
                assert by_key[natural_key(e, row)] == code


def test_rejects_are_detectably_malformed(demo, batches, rejects) -> None:
    manifest = demo[1]
    rows_by_file = {e["file"]: (e, rows) for e, rows in batches}
    assert 0.015 < len(rejects) / manifest["counts"]["rows"] < 0.05
    assert set(rejects.values()) == {"missing_key", "invalid_date", "invalid_amount", "no_subject"}
    for (file, n), reason in rejects.items():
        e, rows = rows_by_file[file]
        row = rows[n - (1 if e["format"] == "jsonl" else 2)]
        if reason == "no_subject":
            assert not field(row, NAME_HEADERS) and not field(row, CODE_HEADERS)
        elif reason == "missing_key":
            assert not field(row, KEY_HEADERS)
        elif reason == "invalid_date":
            values = " ".join(str(v) for v in row.values())
            assert re.search(r"\d{4}(-|/|年)?0?(2|4|6|9|11)(-|/|月)?3[01]", values), row
        else:
            amount = next(str(v) for h, v in row.items() if "金额" in h or h == "fine_amount")
            assert amount.startswith("-") or not re.fullmatch(r"[\d.,]+", amount), amount


def test_noise_is_planted_at_roughly_the_stated_rates(demo, batches, register, truth) -> None:
    counts = demo[1]["counts"]
    subject_records = counts["subject_records"]
    for kind in ("missing_code", "mistyped_code", "unregistered", "whitespace", "name_typo", "legal_form_variant"):
        rate = counts["noise"][kind] / subject_records
        assert NOISE[kind] / 2 < rate < NOISE[kind] * 2, (kind, rate)
    for kind in ("legacy_code", "former_name", "bracket_variant"):
        assert 0.01 < counts["noise"][kind] / subject_records < 0.08, kind
    assert 0.01 < counts["duplicates"] / counts["rows"] < 0.04

    # and measured independently, from the files themselves
    former = {n for r in register for n in r["曾用名"].split("；") if n}
    schemes: Counter[str] = Counter()
    names: Counter[str] = Counter()
    total = duplicates = 0
    for e, rows in batches:
        seen = set()
        for row in rows:
            frozen = json.dumps(row, ensure_ascii=False, sort_keys=True, default=str)
            duplicates += frozen in seen
            seen.add(frozen)
            code = classify_code(field(row, CODE_HEADERS))
            if code is not None and code.scheme == "resident_id":
                continue  # a natural person in the court list
            total += 1
            schemes["missing" if code is None else f"{code.scheme}{'' if code.verified else '?'}"] += 1
            name = field(row, NAME_HEADERS)
            names["former"] += name in former
            names["trailing_space"] += name != name.rstrip()
            names["half_width_bracket"] += "(" in name
            names["branch"] += name.rstrip().endswith("分公司")
    assert 0.03 < schemes["missing"] / total < 0.1
    assert 0.015 < schemes["uscc?"] / total < 0.05
    assert 0.01 < (schemes["reg_no"] + schemes["org_code"]) / total < 0.06
    assert 0.01 < names["former"] / total < 0.06
    assert 0.015 < names["trailing_space"] / total < 0.05
    assert names["half_width_bracket"] > 0.005 * total
    assert names["branch"] > 0.01 * total  # branches are entities of their own, not their head office
    assert 0.01 < duplicates / counts["rows"] < 0.04
    no_entity = sum(1 for _, ek in truth if not ek)
    assert 0.02 < no_entity / len(truth) < 0.15  # outsiders and natural persons


def test_lists_have_something_to_hit(batches) -> None:
    samr = next(rows for e, rows in batches if e["file"] == "samr_penalties.csv")
    types = Counter(r["处罚类别"] for r in samr)
    assert types["责令停产停业"] and types["暂扣或者吊销许可证"] and types["警告"]
    assert any(float(r["罚款金额（万元）"]) >= 100 for r in samr if re.fullmatch(r"\d+(\.\d+)?", r["罚款金额（万元）"]))
    court = next(rows for e, rows in batches if e["file"] == "court_defaulters.csv")
    cases = Counter(r["案号"] for r in court if r["案号"])
    assert any(n >= 2 for n in cases.values())
    persons = [r["身份证号码/组织机构代码"] for r in court if len(r["身份证号码/组织机构代码"]) == 18
               and is_valid_resident_id(r["身份证号码/组织机构代码"])]
    assert len(persons) > 0.1 * len(court)
    assert all(re.fullmatch(r"\(\d{4}\)[\u4e00-\u9fff]\d{4}执\d+号", k) for k in cases)
    grades = next(rows for e, rows in batches if e["file"] == "tax_grades.jsonl")
    assert Counter(r["grade"] for r in grades)["D"] > 0


def test_two_thousand_entities_are_quick(tmp_path: Path) -> None:
    start = time.perf_counter()
    manifest = generate(tmp_path, 2000, 1)
    assert time.perf_counter() - start < 15
    assert manifest["counts"]["accepted"] > 5000


def test_tiny_demo_still_has_every_file(tmp_path: Path) -> None:
    manifest = generate(tmp_path, 1, 0)
    assert manifest["files"][0]["file"] == "registration.xlsx"
    assert all((tmp_path / e["file"]).is_file() for e in manifest["files"])
    with pytest.raises(ValueError):
        generate(tmp_path, 0, 0)
