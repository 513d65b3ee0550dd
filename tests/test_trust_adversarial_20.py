"""First-day intake of real agency spreadsheets, probed as an unlucky clerk would send them: codes a
spreadsheet turned into numbers (9.14401E+17), hand-made CSV and workbooks with real public firm
names and computed valid codes. Above all, the column-wise fast path (domain/columnar.py) must give
what the row-wise validator gives on every input: a property here feeds the same generated rows to
both, for every category the fast path serves (not only the three of tests/test_columnar_property.py),
with the cells that property's grammar lacks. Each defect: failing test first, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from worlds import uscc, write_csv
from xinyong.store import tables as t
from xinyong.store.db import open_engine

XIAOMI = uscc("91110108MA0XM0077")
GREE = uscc("91440400192548256")  # 珠海格力电器股份有限公司's shape, check character computed
SAMR_BEIJING = uscc("11110000MB0143286")  # an authority's own code (机关 11...)
PENALTY = ["行政相对人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "罚款金额（万元）"]


def ingested(cli, path: Path, authority: str = "samr", category: str = "penalty") -> dict[str, Any]:
    result = cli("ingest", path, "--authority", authority, "--category", category, "--json")
    return json.loads(result.stdout.strip().splitlines()[-1])


def stored(cli, batch_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(records, quarantined rows) of one batch."""
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            records = [dict(r) for r in c.execute(select(t.records).where(t.records.c.batch_id == batch_id)
                                                  .order_by(t.records.c.row_number)).mappings()]
            quarantine = [dict(r) for r in c.execute(select(t.quarantine).where(t.quarantine.c.batch_id == batch_id)
                                                     .order_by(t.quarantine.c.row_number)).mappings()]
    finally:
        engine.dispose()
    return records, quarantine


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    fields = record["fields"]
    return json.loads(fields) if isinstance(fields, str) else fields


def test_a_code_column_a_spreadsheet_turned_into_a_number_is_refused_on_the_fast_path_too(cli, tmp_path: Path) -> None:
    """The clerk's export kept the subject's USCC as text, but the column of the authority's own code
    (处罚机关统一社会信用代码) and the legacy 工商注册号 as numbers: Excel wrote them 1.11E+17 and
    1.10108E+14, their digits gone. The row validator refuses such a cell (the code is lost, and may be
    another's); the column-wise fast path, which checks only the subject's code, stored 1.11E+17 as the
    authority's code and 1.10108E+14 as the firm's registration number on every plain row. Now those
    rows go to the row validator, quarantined with the reason, the row and the field."""
    path = write_csv(tmp_path / "处罚.csv", [*PENALTY, "处罚机关统一社会信用代码", "工商注册号"], [
        ["小米科技有限责任公司", XIAOMI, "京市监罚〔2026〕101号", "2026-03-05", "5", "1.11E+17", ""],
        ["珠海格力电器股份有限公司", GREE, "京市监罚〔2026〕102号", "2026-03-06", "1.5", SAMR_BEIJING, "1.10108E+14"],
        ["美团", uscc("91110108MA0A1B2C3"), "京市监罚〔2026〕103号", "2026-03-07", "2", SAMR_BEIJING, ""],
    ])
    result = ingested(cli, path)
    assert (result["accepted"], result["quarantined"]) == (1, 2), result
    records, quarantine = stored(cli, result["batch_id"])
    assert [r["row_number"] for r in records] == [4]
    assert _fields(records[0])["authority_uscc"] == SAMR_BEIJING
    assert [(q["row_number"], q["field"]) for q in quarantine] == [(2, "authority_uscc"), (3, "reg_no")]
    assert all("stored by the spreadsheet as a number" in q["reason"] for q in quarantine)



def test_a_firm_with_a_short_name_keeps_its_code_typed_with_o_for_zero(cli, tmp_path: Path) -> None:
    """A clerk typed 美团's and an individual business's USCC with the letter O for the digit 0. A code
    with a firm's name is read as the valid USCC it makes, with a warning; but a name of two or three
    Han characters (美团, or 王记 an individual business named like a person) made the validator read
    the code as a person's ID number first, which letters never are: the code was kept unrecognised,
    and the firm was recorded as a natural person (a person's due process and privacy, no code to find
    it by). A code that can be no ID number is read as its column says, whatever the name."""
    meituan = uscc("91110108MA0A1B2C3")
    shop = uscc("92110105MA0B7K8L9")
    path = write_csv(tmp_path / "处罚.csv", PENALTY, [
        ["美团", meituan.replace("0", "O"), "京市监罚〔2026〕201号", "2026-03-05", "5"],
        ["王记", shop.replace("0", "O"), "京市监罚〔2026〕202号", "2026-03-06", "0.2"],
    ])
    result = ingested(cli, path)
    assert (result["accepted"], result["quarantined"]) == (2, 0), result
    records, _ = stored(cli, result["batch_id"])
    assert [(r["subject_name"], r["subject_kind"], r["subject_code"], r["subject_scheme"], r["subject_code_verified"])
            for r in records] == [("美团", None, meituan, "uscc", True), ("王记", None, shop, "uscc", True)]
    assert all("read as" in json.dumps(r["warnings"], ensure_ascii=False) for r in records)



def test_a_case_number_a_spreadsheet_turned_into_a_number_is_refused_not_merged(cli, tmp_path: Path) -> None:
    """The tax bureau's 案件编号 are 17 digits. Kept as numbers, the workbook holds 14403002024000123
    as 14403002024000124 (a float keeps 15 to 17 significant digits), and its CSV export writes
    1.44030E+16: the record key was another case's number, or one shared by every case of the month
    (华为's row of March and 格力's of April, both exported as 1.44030E+16, became one record: 格力's
    case stored as version 2 of 华为's; two such rows of one workbook, a conflicting duplicate). A code column so damaged is refused; the record key is as much an identifier: now such a
    row is quarantined, named by its row and field, in a workbook and in a CSV, on both paths."""
    huawei, gree = uscc("91440300708461136"), GREE
    headers = ["行政相对人名称", "统一社会信用代码", "案件编号", "处理处罚决定日期", "偷税金额"]
    march = write_csv(tmp_path / "3月.csv", headers, [
        ["华为技术有限公司", huawei, "1.44030E+16", "2026-03-05", "10000"],
        ["小米科技有限责任公司", XIAOMI, "14403002024000125", "2026-03-06", "200"],
    ])
    result = ingested(cli, march, authority="tax", category="tax_violation")
    assert (result["accepted"], result["quarantined"]) == (1, 1), result
    _, quarantine = stored(cli, result["batch_id"])
    assert [(q["row_number"], q["field"]) for q in quarantine] == [(2, "case_no")]
    assert "stored by the spreadsheet as a number" in quarantine[0]["reason"]

    import openpyxl
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(headers)
    sheet.append(["珠海格力电器股份有限公司", gree, 14403002024000124, "2026-04-02", 5000])
    sheet.append(["华为技术有限公司", huawei, 14403002024000123, "2026-04-03", 10000])
    book.save(tmp_path / "4月.xlsx")
    result = ingested(cli, tmp_path / "4月.xlsx", authority="tax", category="tax_violation")
    assert (result["accepted"], result["quarantined"], result["new_versions"]) == (0, 2, 0), result
    _, quarantine = stored(cli, result["batch_id"])
    assert [(q["row_number"], q["field"]) for q in quarantine] == [(2, "case_no"), (3, "case_no")]



def test_two_amounts_on_two_lines_of_one_cell_are_not_one_amount(cli, tmp_path: Path) -> None:
    """The clerk typed the fine and the confiscated gains on two lines of one cell (Alt+Enter): 1 and
    500 (万元). Saved as CSV, the cell is "1\r\n500" in quotes. A line break was read as a thousands
    separator, as a space is in 3 000: the record said a fine of 1,500 万元 (15 million yuan), a
    number no one wrote. A line break separates no thousands: the row is quarantined, saying why."""
    path = tmp_path / "处罚.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        import csv
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(PENALTY)
        writer.writerow(["小米科技有限责任公司", XIAOMI, "京市监罚〔2026〕301号", "2026-03-05", "1\r\n500"])
        writer.writerow(["珠海格力电器股份有限公司", GREE, "京市监罚〔2026〕302号", "2026-03-06", "1 500"])
    result = ingested(cli, path)
    assert (result["accepted"], result["quarantined"]) == (1, 1), result
    records, quarantine = stored(cli, result["batch_id"])
    assert [(r["row_number"], _fields(r)["fine_amount"]) for r in records] == [(3, 15000000.0)]
    assert [(q["row_number"], q["field"], q["reason_code"]) for q in quarantine] == [(2, "fine_amount", "not_a_number")]



def test_an_amount_header_with_its_unit_in_brackets_is_read_in_that_unit(cli, tmp_path: Path) -> None:
    """Agencies head the fine 罚没金额 or 罚款金额, and add the unit in brackets: 罚没金额（万元）,
    没收违法所得金额（万元）, 罚款金额（元）. Only the exact headers of the pack were known: these columns
    went to the unknown columns, silently, and 小米's fine of 150 万元 was stored with no fine at all
    (the rule listing fines of 100 万元 and more never saw it). A known header with a unit in brackets
    is its field, read in that unit."""
    first = write_csv(tmp_path / "处罚-万元.csv", [*PENALTY[:4], "罚没金额（万元）", "没收违法所得金额(万元)"], [
        ["小米科技有限责任公司", XIAOMI, "京市监罚〔2026〕401号", "2026-03-05", "150", "1.5"],
    ])
    result = ingested(cli, first)
    records, _ = stored(cli, result["batch_id"])
    fields = _fields(records[0])
    assert (fields.get("fine_amount"), fields.get("confiscated_amount")) == (1500000.0, 15000.0), fields
    second = write_csv(tmp_path / "处罚-元.csv", [*PENALTY[:4], "罚款金额（元）"], [
        ["珠海格力电器股份有限公司", GREE, "京市监罚〔2026〕402号", "2026-03-06", "20,000"],
    ])
    result = ingested(cli, second)
    records, _ = stored(cli, result["batch_id"])
    assert _fields(records[0]).get("fine_amount") == 20000.0, records[0]


# -- the property: both paths, every category the fast path serves -------------------------------------

from tempfile import TemporaryDirectory  # noqa: E402
from unittest import mock  # noqa: E402
import os  # noqa: E402

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import test_columnar  # noqa: E402
import test_columnar_property as grammar  # noqa: E402
from xinyong.domain.pack import load_pack  # noqa: E402
from xinyong.services.intake import ingest  # noqa: E402

PACK = load_pack("cn")
# the category's authority; relations rows never take the fast path
AUTHORITY = {"penalty": "samr", "court_defaulter": "court", "registration": "samr", "licence": "samr",
             "abnormal_operation": "samr", "tax_violation": "tax", "tax_grade": "tax", "env_violation": "env"}
# what a spreadsheet does to a code column left as numbers, and a clerk's other slips in one
SPREADSHEET_CODES = st.sampled_from([
    "9.14401E+17", "9.1110E+17", "1.10108E+14", "5.51385E+8", "1.1e+17", "9.14401e+017", "٣E+17", "1E+17",
    "9.14401E17", "110108000000000", "12345678", "05513850X", "5513850X", "91110108ma0xm0077", XIAOMI.lower(),
    XIAOMI.replace("0", "O"), " " + XIAOMI, XIAOMI[:9] + " " + XIAOMI[9:], "91110108MA0XM0077E+1", "+", "E+",
])
INTEGERS = st.sampled_from(["2025", "02025", "2025.0", "２０２５", "0", "-1", "1e3", "999999999999999",
                            "9999999999999999", "1,000", "1E+3", " 2025", "2025 ", "", "20 25", "٢٠٢٥"])
ENUM_MESS = ["", " ", "Ａ", "a", "其他", "未复议", "已复议"]


def _kind_of(field, category) -> str:
    """Which cells of the grammar a field's column gets."""
    kind = field.type.value
    if field.name == category.subject.name_field:
        return "name"
    if field.name == category.natural_key and kind == "text":
        return "case" if category.code == "court_defaulter" else "key"
    if field.name in ("person_id", "legal_rep_id"):
        return "person_id"
    return {"code": "code", "date": "date", "amount": "amount", "integer": "integer", "enum": "enum",
            "kind": "kind", "names": "names"}.get(kind, "text")


@st.composite
def cell(draw, field, kind: str, plain: bool) -> Any:
    if kind == "integer":
        return draw(st.sampled_from(["2024", "2025", "1", "0"]) if plain else INTEGERS)
    if kind == "enum":
        values = list(field.values) + list(field.value_synonyms)
        return draw(st.sampled_from(values) if plain else st.sampled_from(values + ENUM_MESS))
    if kind == "code" and not plain and draw(st.integers(0, 2)) == 0:
        return draw(SPREADSHEET_CODES)
    if kind in ("key", "case") and not plain and draw(st.integers(0, 3)) == 0:  # a case number kept as a number
        return draw(st.sampled_from(["1.44030E+16", "1.4403E+16", "1.44030e+016", "14403002024000123", "2E+3"]))
    strategy = (grammar.PLAIN if plain else grammar.KINDS)[kind]
    value = draw(strategy)
    if not plain and draw(st.integers(0, 9)) < 3:
        value = draw(grammar.worse(value))
    return value


@st.composite
def tables(draw, category_code: str):
    category = PACK.category(category_code)
    fields = PACK.fields_of(category)
    chosen = [f for f in fields if f.required or f.name == category.subject.name_field
              or (f.name == "uscc" and draw(st.integers(0, 9)) < 8) or draw(st.integers(0, 9)) < 4]
    chosen = draw(st.permutations(chosen))
    def header_choices(f) -> list[str]:
        known = list(f.headers) or [f.name]
        if f.type.value == "amount":  # the unit in brackets after a known header
            known += [known[-1] + "（万元）", known[-1] + "(元)", known[-1] + "（万）"]
        return known

    headers = [draw(st.sampled_from(header_choices(f))) for f in chosen]
    kinds = [_kind_of(f, category) for f in chosen]
    extra = draw(st.sampled_from([0, 0, 1, 2]))
    headers += ["序号", "内部备注"][:extra]
    fmt = draw(st.sampled_from(["csv", "csv", "jsonl", "xlsx"]))
    rows = []
    for _ in range(draw(st.integers(1, 8))):
        plain = draw(st.booleans())
        row = [draw(cell(f, k, plain)) for f, k in zip(chosen, kinds)]
        row += [draw(st.sampled_from(["", "1", "备注", " x"])) for _ in range(extra)]
        if fmt != "csv" and draw(st.integers(0, 5)) == 0:  # numbers a workbook or JSON holds
            at = draw(st.integers(0, len(row) - 1))
            row[at] = draw(st.sampled_from([2025, 2025.0, 9.14401e17, 14403002024000124.0, 110108000000000, 46297,
                                            1.5, True, None]))
        rows.append(row)
    chunk = draw(st.sampled_from([1, 2, ingest.CHUNK]))
    return headers, rows, fmt, chunk


def same_on_both_paths(category: str, table) -> None:
    headers, rows, fmt, chunk = table
    with TemporaryDirectory() as folder, mock.patch.object(ingest, "CHUNK", chunk), \
            mock.patch.object(test_columnar, "CHUNK", chunk), mock.patch.dict(grammar.AUTHORITY, AUTHORITY):
        path = grammar.write_table(Path(folder), headers, rows, fmt)
        try:
            grammar.same_on_both_paths(path, category)
        except AssertionError:
            print(f"{category} table: {headers!r}, {rows!r}, {fmt!r}, chunk {chunk}")
            raise


SETTINGS = settings(max_examples=int(os.environ.get("XINYONG_PROPERTY_EXAMPLES", "120")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(st.sampled_from(sorted(AUTHORITY)).flatmap(lambda c: st.tuples(st.just(c), tables(c))))
# found by this property: a code column other than the subject's in scientific notation (the row
# validator refuses it; the fast path stored it)
@example(("penalty", ([*PENALTY, "处罚机关统一社会信用代码"],
                      [["小米科技有限责任公司", XIAOMI, "京市监罚〔2026〕101号", "2026-03-05", "5", "1.11E+17"]],
                      "csv", ingest.CHUNK)))
@example(("tax_grade", (["行政相对人名称", "统一社会信用代码", "税务登记号", "纳税信用级别", "评价年度"],
                        [["珠海格力电器股份有限公司", GREE, "9.14404E+17", "A", "2025"]], "csv", ingest.CHUNK)))
@example(("tax_violation", (["行政相对人名称", "统一社会信用代码", "案件编号", "处理处罚决定日期"],
                            [["华为技术有限公司", uscc("91440300708461136"), "1.44030E+16", "2026-03-05"]],
                            "csv", ingest.CHUNK)))
def test_fast_path_and_row_validator_agree_in_every_category(case) -> None:
    category, table = case
    same_on_both_paths(category, table)
