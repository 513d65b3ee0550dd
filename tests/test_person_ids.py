"""Person ID numbers as authorities really write them: counties missing from every table,
15-digit first-generation numbers, numbers in the name cell or in the USCC column, and codes
differing only in case or spaces; identifier warnings apart from other notes.

Every number here is made by hand with the GB 11643 check character computed, never drawn
from the demo generator.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from xinyong.domain.identifiers import (
    USCC_ALPHABET,
    classify_code,
    could_start_a_resident_id,
    first_generation_to_18,
    is_valid_resident_id,
    is_valid_uscc,
    mask_person_id,
    resident_id_check_character,
    split_person_id,
    uscc_check_character,
)
from xinyong.domain.pack import load_pack
from xinyong.domain.records import ColumnMapping, RowValidator, ValidRecord, map_columns
from xinyong.store import tables as t
from xinyong.store.db import open_engine

TODAY = dt.date(2026, 12, 4)
PACK = load_pack(str(Path(__file__).parents[1] / "xinyong" / "packs" / "cn" / "pack.yaml"))


def ric(region: str, born: str, serial: str) -> str:
    first17 = region + born + serial
    return first17 + resident_id_check_character(first17)


def uscc(body: str) -> str:
    return body + uscc_check_character(body)


# counties that python-stdnum's table does not hold (it raises KeyError('county') on them)
UNKNOWN_COUNTY = ric("449999", "19850612", "123")
UNLISTED_DISTRICT = ric("110199", "19761130", "046")
ABROAD = ric("910000", "19900101", "021")
HONG_KONG = ric("810000", "19881212", "315")
# the same person's number, written in 1990 with 15 digits and today with 18
FIRST_GENERATION = "320102720815031"
FIRST_GENERATION_18 = ric("320102", "19720815", "031")


def person_id_passing_uscc_check() -> str:
    """A real-format ID number that also passes the USCC check (about 1 in 31 do)."""
    for serial in range(1000):
        number = ric("110105", "19830921", f"{serial:03d}")
        if is_valid_uscc(number):
            return number
    raise AssertionError("no ID number passes the USCC check")


TWIN = person_id_passing_uscc_check()


# -- the pure core --------------------------------------------------------------------------------

@pytest.mark.parametrize("number", [UNKNOWN_COUNTY, UNLISTED_DISTRICT, ABROAD, HONG_KONG])
def test_a_county_missing_from_the_tables_is_no_reason_to_refuse(number: str):
    assert is_valid_resident_id(number, TODAY)
    found = classify_code(number, "resident_id", today=TODAY)
    assert (found.scheme, found.verified, found.warning) == ("resident_id", True, None)


@pytest.mark.parametrize("province", ["00", "10", "66", "70", "72", "80", "84", "90", "92", "99"])
def test_an_unknown_province_is_invalid(province: str):
    assert not is_valid_resident_id(ric(province + "0101", "19850612", "123"), TODAY)


def test_birth_date_must_exist_and_not_be_after_today():
    assert not is_valid_resident_id(ric("110101", "19850230", "123"), TODAY)  # 30 February
    assert not is_valid_resident_id(ric("110101", "19851301", "123"), TODAY)
    assert is_valid_resident_id(ric("110101", "20261204", "123"), TODAY)  # born today
    tomorrow = ric("110101", "20261205", "123")
    assert not is_valid_resident_id(tomorrow, TODAY)
    found = classify_code(tomorrow, "resident_id", today=TODAY)
    assert not found.verified and "20261205" not in found.warning


@given(st.sampled_from(sorted({*range(11, 66), 71, 81, 82, 83, 91})), st.dates(dt.date(1900, 1, 1), TODAY),
       st.integers(0, 999))
def test_any_province_birth_date_and_sequence_is_valid(province: int, born: dt.date, serial: int):
    number = ric(f"{province}0000", f"{born:%Y%m%d}", f"{serial:03d}")
    assert is_valid_resident_id(number, TODAY)
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    assert not is_valid_resident_id(wrong, TODAY)


def test_a_prefix_of_an_id_number_is_recognised_and_a_uscc_prefix_is_not():
    for length in range(10, 18):
        assert could_start_a_resident_id(UNKNOWN_COUNTY[:length])
        assert could_start_a_resident_id(FIRST_GENERATION_18[:length])
    for code in ("91310115MA1HP0005", "913101156000373", "9131011560", "310115000123456", "11010119"):
        assert not could_start_a_resident_id(code), code


def test_first_generation_numbers_convert_to_18_digits():
    assert first_generation_to_18(FIRST_GENERATION) == FIRST_GENERATION_18
    found = classify_code(FIRST_GENERATION, "resident_id", today=TODAY)
    assert (found.value, found.scheme, found.verified) == (FIRST_GENERATION_18, "resident_id", True)
    assert mask_person_id(FIRST_GENERATION) == "320102*****" + FIRST_GENERATION[-4:]
    # a firm's 15-digit registration number stays one outside person columns
    assert classify_code(FIRST_GENERATION).scheme == "reg_no"
    assert classify_code(FIRST_GENERATION, subject_kind="natural_person").value == FIRST_GENERATION_18
    # no real birth date or province: not an ID number
    assert first_generation_to_18("320102721315031") is None
    assert first_generation_to_18("990102720815031") is None


def test_the_subject_kind_decides_over_the_column():
    assert is_valid_uscc(TWIN) and is_valid_resident_id(TWIN, TODAY)
    assert classify_code(TWIN).scheme == "uscc"  # kind unknown: the column decides, as before
    for prefer in ("uscc", "resident_id"):
        found = classify_code(TWIN, prefer, subject_kind="natural_person", today=TODAY)
        assert (found.scheme, found.verified) == ("resident_id", True)
        assert classify_code(TWIN, prefer, subject_kind="enterprise").scheme == "uscc"
    # a firm's code column: an ID number's check is no excuse for a USCC that fails its own
    not_uscc = next(n for n in (ric("110105", "19830921", f"{s:03d}") for s in range(100)) if not is_valid_uscc(n))
    found = classify_code(not_uscc, subject_kind="enterprise")
    assert (found.scheme, found.verified) == ("uscc", False) and not_uscc not in found.warning
    # an individual business's operator, or a person column, keeps the ID number
    for prefer, kind in (("uscc", "individual_business"), ("resident_id", "enterprise")):
        assert classify_code(not_uscc, prefer, subject_kind=kind).scheme == "resident_id"


@pytest.mark.parametrize("cell, name", [
    (f"吴九{UNKNOWN_COUNTY}", "吴九"),
    (f"吴九 {UNKNOWN_COUNTY.lower()}", "吴九"),
    (f"吴九（身份证号码：{UNKNOWN_COUNTY}）", "吴九"),
    (f"阿依古丽·买买提{FIRST_GENERATION}", "阿依古丽·买买提"),
])
def test_an_id_number_after_a_name_is_split_off(cell: str, name: str):
    found = split_person_id(cell)
    assert found is not None and found[0] == name


@pytest.mark.parametrize("cell", ["北京某某科技有限公司", UNKNOWN_COUNTY, "第12345678901234567号门店", "张三"])
def test_no_split_without_a_name_before_a_whole_number(cell: str):
    assert split_person_id(cell) is None


def validator(headers: list[str], category: str = "penalty") -> tuple[RowValidator, ColumnMapping]:
    spec = PACK.category(category)
    mapping = map_columns(PACK, spec, headers)
    return RowValidator(PACK, spec, "samr", mapping, TODAY), mapping


PENALTY = ["当事人名称", "行政相对人类别", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期"]


@given(st.sampled_from(["91", "92", "93", "11", "12", "51", "N2", "Y1"]), st.text(USCC_ALPHABET, min_size=9, max_size=9),
       st.integers(0, 17), st.sampled_from(USCC_ALPHABET))
def test_a_one_character_corruption_of_a_firms_uscc_is_always_flagged(head: str, org: str, position: int,
                                                                       replacement: str):
    code = uscc(head + "110105" + org)
    changed = code[:position] + replacement + code[position + 1:]
    if changed == code:
        return
    check, _ = validator(PENALTY)
    for kind in ("", "法人及非法人组织"):
        record = check.validate(["北京某某科技有限公司", kind, changed, "京市监罚〔2026〕1号", "2026-03-01"])
        assert isinstance(record, ValidRecord)
        assert not record.subject_code_verified and record.subject_kind != "natural_person"
        assert len(record.warnings) == 1  # flagged: fails its check, or is no identifier at all
        assert changed[6:14] not in record.warnings[0] or not is_valid_resident_id(changed)


# -- through the CLI, on SQLite and PostgreSQL ---------------------------------------------------

def write_csv(path: Path, headers: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def ingest(cli, path: Path, category: str, authority: str = "samr") -> dict[str, Any]:
    return json.loads(cli("ingest", path, "--authority", authority, "--category", category, "--json").stdout)


def stored_records(url: str) -> dict[int, dict[str, Any]]:
    engine = open_engine(url)
    try:
        with engine.connect() as c:
            r = t.records.c
            return {row.row_number: dict(row._mapping) for row in c.execute(
                select(r.row_number, r.record_key, r.subject_name, r.subject_kind, r.subject_code, r.subject_scheme,
                       r.subject_code_verified, r.fields, r.warnings, r.notes))}
    finally:
        engine.dispose()


def as_dict(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def test_person_numbers_as_authorities_write_them(cli, tmp_path):
    path = write_csv(tmp_path / "penalties.csv", PENALTY, [
        [f"吴九{UNKNOWN_COUNTY}", "", "", "京市监罚〔2026〕1号", "2026-03-01"],            # ID in the name cell
        ["郑十", "自然人", TWIN, "京市监罚〔2026〕2号", "2026-03-02"],                       # passes the USCC check too
        ["王五", "", FIRST_GENERATION, "京市监罚〔2026〕3号", "2026-03-03"],                 # 15 digits, no kind
        ["赵六", "自然人", UNLISTED_DISTRICT, "京市监罚〔2026〕4号", "2026-03-04"],          # county in no table
        ["北京某某科技有限公司", "", uscc("91110105MA01ABC2X")[:-1] + "0", "京市监罚〔2026〕5号", "2026-03-05"],
        ["北京另一科技有限公司", "", "hello", "京市监罚〔2026〕6号", "2026-03-06"],
    ])
    result = ingest(cli, path, "penalty")
    assert (result["accepted"], result["quarantined"]) == (6, 0), result
    # identifier problems only: the corrupted USCC and "hello"; the rest are notes
    assert result["warnings"] == 2 and result["notes"] >= 4, result
    rows = stored_records(cli.url)
    name_cell = rows[2]
    assert (name_cell["subject_name"], name_cell["subject_kind"], name_cell["subject_code"],
            name_cell["subject_scheme"], name_cell["subject_code_verified"]) == (
        "吴九", "natural_person", UNKNOWN_COUNTY, "resident_id", True)
    assert UNKNOWN_COUNTY not in json.dumps(as_dict(name_cell["fields"]).get("subject_name"))
    assert as_dict(name_cell["notes"])
    twin = rows[3]
    assert (twin["subject_scheme"], twin["subject_code_verified"], twin["subject_kind"]) == (
        "resident_id", True, "natural_person")
    assert "uscc" not in as_dict(twin["fields"])  # never left in the public USCC column
    assert as_dict(twin["fields"])["person_id"] == TWIN
    first_generation = rows[4]
    assert (first_generation["subject_kind"], first_generation["subject_code"],
            first_generation["subject_scheme"]) == ("natural_person", FIRST_GENERATION_18, "resident_id")
    assert (rows[5]["subject_code_verified"], as_dict(rows[5]["warnings"])) == (True, [])
    assert rows[6]["subject_kind"] != "natural_person" and not rows[6]["subject_code_verified"]
    # the console's batch views show both counts
    shown = cli("batch", "show", str(result["batch_id"])).stdout
    assert "warnings: 2" in shown and f"notes: {result['notes']}" in shown
    listed = json.loads(cli("batch", "list", "--json").stdout)
    assert (listed[0]["warnings"], listed[0]["notes"]) == (2, result["notes"])
    # the person's entity answers to the 18-digit number and to the 15-digit one
    cli("resolve")
    for written in (FIRST_GENERATION_18, FIRST_GENERATION):
        screened = json.loads(cli("screen", written, "--action", "high_consumption", "--as-of", "2026-04-01",
                                  "--json").stdout)
        assert screened["subject"] is not None and screened["subject"]["kind"] == "natural_person"
        assert FIRST_GENERATION_18 not in json.dumps(screened) and FIRST_GENERATION not in json.dumps(screened)


def test_codes_differing_in_case_or_spaces_are_one_code_in_a_file(cli, tmp_path):
    court = ["案号", "被执行人姓名/名称", "身份证号码/组织机构代码", "执行法院", "被执行人的履行情况", "发布时间"]
    # a number ending in X, written in lower case once
    number = next(n for n in (ric("110105", "19690203", f"{s:03d}") for s in range(100)) if n.endswith("X"))
    path = write_csv(tmp_path / "court.csv", court, [
        ["(2026)京0105执1号", "周八", number.lower(), "北京市朝阳区人民法院", "全部未履行", "2026-03-01"],
        ["(2026)京0105执1号", "周八", f"{number[:6]} {number[6:14]} {number[14:]}", "北京市朝阳区人民法院",
         "部分未履行", "2026-03-02"],
    ])
    result = ingest(cli, path, "court_defaulter", authority="court")
    # the second row is the same debtor in the same case with other content: a conflict, not a new record
    assert (result["accepted"], result["quarantined"], result["warnings"]) == (1, 1, 0), result
    rejects = json.loads(cli("batch", "show", str(result["batch_id"]), "--json").stdout)["quarantine"]
    assert "already appears in row 2" in rejects[0]["reason"]
