"""Ingestion through the CLI, on SQLite and PostgreSQL: every class of input an agency may send.

Each test writes small files into tmp_path, runs `xinyong ingest ... --json`, and checks the
batch (`batch show --json`), its rejects file, `stats --json` and, where no command shows it
yet, the stored records themselves.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import json
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import yaml
from sqlalchemy import Engine, func, select

from xinyong.domain.identifiers import org_code_check_character, uscc_check_character
from xinyong.store import tables as t
from xinyong.store.db import open_engine

VALID = "91110000600037341L"
VALID_2 = "91310000" + "MA1FL0001"
VALID_2 += uscc_check_character(VALID_2)
BAD_CHECK = "91110000600037341A"
REG_NO = "110000000000001"
ORG_CODE = "60003734" + org_code_check_character("60003734")  # 600037341

PENALTY = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "罚款金额（万元）"]


# -- helpers ------------------------------------------------------------------------------------

def write_csv(path: Path, headers: list[str], rows: list[list[Any]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, headers: list[str], rows: list[list[Any]],
               formats: dict[tuple[int, int], str] | None = None) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    for (r, c), number_format in (formats or {}).items():
        sheet.cell(row=r, column=c).number_format = number_format
    workbook.save(path)
    return path


def write_jsonl(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n")
    return path


def penalty_row(n: int, name: str = "北京某某科技有限公司", code: str = VALID, date: str = "2023-05-01",
                amount: str = "1.5") -> list[str]:
    return [name, code, f"京市监罚〔2023〕{n}号", date, amount]


def ingest(cli, *paths: Path, authority: str = "samr", category: str = "penalty",
           options: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    result = cli("ingest", *paths, "--authority", authority, "--category", category, *options, "--json")
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def ingest_one(cli, path: Path, **kwargs: Any) -> dict[str, Any]:
    (result,) = ingest(cli, path, **kwargs)
    return result


def refused(cli, path: Path, authority: str = "samr", category: str = "penalty",
            options: tuple[str, ...] = ()) -> str:
    """Ingest a file that must be refused; returns the one-line reason."""
    result = cli("ingest", path, "--authority", authority, "--category", category, *options, "--json", ok=False)
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stdout.strip() == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def show(cli, batch_id: int) -> dict[str, Any]:
    return json.loads(cli("batch", "show", batch_id, "--json").stdout)


def stats(cli) -> dict[str, Any]:
    return json.loads(cli("stats", "--json").stdout)


def assert_nothing_stored(cli) -> None:
    s = stats(cli)
    assert (s["batches"], s["records"], s["quarantined_rows"], s["audit_events"], s["entities"]) == (0, 0, 0, 0, 0), s


@contextmanager
def store(cli) -> Iterator[Engine]:
    engine = open_engine(cli.url)
    try:
        yield engine
    finally:
        engine.dispose()


def records(cli, **where: Any) -> list[dict[str, Any]]:
    r = t.records.c
    query = select(t.records).order_by(r.record_key, r.version)
    for column, value in where.items():
        query = query.where(r[column] == value)
    with store(cli) as engine, engine.connect() as c:
        return [dict(row) for row in c.execute(query).mappings()]


def read_rejects(cli, batch_id: int, path: Path) -> tuple[bytes, list[list[str]]]:
    cli("batch", "rejects", batch_id, "-o", path)
    raw = path.read_bytes()
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return raw, list(csv.reader(handle))


# -- codes ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "scheme"), [
    (BAD_CHECK, "uscc"),                  # fails its check character
    ("ABC-123", "unknown"),               # malformed
    ("9111000060003734", "unknown"),      # one character short
    (ORG_CODE[:8] + ("1" if ORG_CODE[8] != "1" else "2"), "org_code"),  # organisation code, wrong check
])
def test_failed_or_malformed_code_with_name_is_accepted_unverified(cli, tmp_path, given, scheme):
    path = write_csv(tmp_path / "p.csv", PENALTY, [penalty_row(1, code=given), penalty_row(2, name="上海某某贸易有限公司", code=VALID_2)])
    result = ingest_one(cli, path)
    assert (result["rows"], result["accepted"], result["quarantined"], result["warnings"]) == (2, 2, 0, 1)
    batch = show(cli, result["batch_id"])
    assert batch["warnings"] == 1 and batch["quarantine"] == []
    (record,) = records(cli, subject_name="北京某某科技有限公司")
    assert record["subject_code"] == given  # kept as given, never corrected
    assert record["subject_scheme"] == scheme
    assert record["subject_code_verified"] is False
    assert len(record["warnings"]) == 1 and record["warnings"][0].startswith("uscc:")
    (good,) = records(cli, subject_name="上海某某贸易有限公司")
    assert (good["subject_code"], good["subject_scheme"], good["subject_code_verified"], good["warnings"]) == (
        VALID_2, "uscc", True, [])


def test_legacy_codes_recognised(cli, tmp_path):
    path = write_csv(tmp_path / "legacy.csv", PENALTY, [
        penalty_row(1, name="甲公司", code=REG_NO),            # 15-digit registration number
        penalty_row(2, name="乙公司", code=ORG_CODE),          # 9-character organisation code
        penalty_row(3, name="丙公司", code=ORG_CODE[:8] + "-" + ORG_CODE[8]),  # as printed: 60003734-1
        penalty_row(4, name="丁公司", code=" 1100 0000 0000 001 "),
    ])
    result = ingest_one(cli, path)
    assert (result["accepted"], result["quarantined"], result["warnings"]) == (4, 0, 0)
    found = {r["subject_name"]: (r["subject_scheme"], r["subject_code"], r["subject_code_verified"])
             for r in records(cli)}
    assert found == {
        "甲公司": ("reg_no", REG_NO, True),
        "乙公司": ("org_code", ORG_CODE, True),
        "丙公司": ("org_code", ORG_CODE, True),
        "丁公司": ("reg_no", REG_NO, True),
    }


def test_legacy_code_columns_without_uscc_column(cli, tmp_path):
    path = write_csv(tmp_path / "legacy2.csv", ["单位名称", "注册号", "组织机构代码", "文号", "处罚日期"], [
        ["甲公司", REG_NO, "", "罚1", "2023-05-01"],
        ["", "", ORG_CODE, "罚2", "2023-05-01"],  # no name, but a verified organisation code
    ])
    result = ingest_one(cli, path)
    assert (result["accepted"], result["quarantined"]) == (2, 0)
    found = {r["fields"]["decision_no"]: (r["subject_scheme"], r["subject_code"]) for r in records(cli)}
    assert found == {"罚1": ("reg_no", REG_NO), "罚2": ("org_code", ORG_CODE)}


def test_legacy_codes_in_a_workbook_typed_as_numbers(cli, tmp_path):
    path = write_xlsx(tmp_path / "legacy.xlsx", PENALTY, [
        ["甲公司", int(REG_NO), "罚1", "2023-05-01", 1],
        ["乙公司", ORG_CODE, "罚2", "2023-05-01", 1],
    ])
    result = ingest_one(cli, path)
    assert (result["accepted"], result["quarantined"]) == (2, 0)
    assert {r["subject_code"]: r["subject_scheme"] for r in records(cli)} == {REG_NO: "reg_no", ORG_CODE: "org_code"}


# -- quarantine ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "code"), [("", ""), ("", BAD_CHECK), ("  ", "ABC-123"), ("", "无")])
def test_neither_name_nor_usable_code_is_quarantined(cli, tmp_path, name, code):
    path = write_csv(tmp_path / "p.csv", PENALTY, [penalty_row(1), penalty_row(2, name=name, code=code),
                                                  penalty_row(3, name="", code=VALID_2)])
    result = ingest_one(cli, path)
    assert (result["rows"], result["accepted"], result["quarantined"]) == (3, 2, 1)
    batch = show(cli, result["batch_id"])
    (rejected,) = batch["quarantine"]
    assert rejected["row_number"] == 3  # the header is row 1
    assert rejected["field"] == "subject_name"
    assert "name" in rejected["reason"] and "code" in rejected["reason"]
    assert len(records(cli)) == 2
    assert stats(cli)["quarantined_rows"] == 1


@pytest.mark.parametrize(("column", "field"), [(2, "decision_no"), (3, "decision_date")])
def test_required_field_missing_is_quarantined(cli, tmp_path, column, field):
    row = penalty_row(2)
    row[column] = "  "
    path = write_csv(tmp_path / "p.csv", PENALTY, [penalty_row(1), row])
    result = ingest_one(cli, path)
    assert (result["accepted"], result["quarantined"]) == (1, 1)
    (rejected,) = show(cli, result["batch_id"])["quarantine"]
    assert (rejected["row_number"], rejected["field"]) == (3, field)
    assert "required" in rejected["reason"]


@pytest.mark.parametrize(("column", "value", "field", "words"), [
    (3, "2023-02-30", "decision_date", "impossible"),
    (3, "2023年13月1日", "decision_date", "impossible"),
    (3, "2023-02-29", "decision_date", "impossible"),
    (3, "昨天", "decision_date", "unreadable"),
    (3, "05/01/2023", "decision_date", "unreadable"),
    (4, "一万元", "fine_amount", "not a number"),
    (4, "abc", "fine_amount", "not a number"),
    (4, "NaN", "fine_amount", "not a number"),
    (4, "-5", "fine_amount", "negative"),
    (4, "-0.5万元", "fine_amount", "negative"),
])
def test_bad_date_or_amount_is_quarantined(cli, tmp_path, column, value, field, words):
    row = penalty_row(2)
    row[column] = value
    path = write_csv(tmp_path / "p.csv", PENALTY, [penalty_row(1), row, penalty_row(3)])
    result = ingest_one(cli, path)
    assert (result["rows"], result["accepted"], result["quarantined"]) == (3, 2, 1)
    (rejected,) = show(cli, result["batch_id"])["quarantine"]
    assert (rejected["row_number"], rejected["field"]) == (3, field)
    assert words in rejected["reason"]
    assert value.strip() in rejected["reason"] or value == "NaN"


# -- duplicates, extras ------------------------------------------------------------------------

def test_exact_duplicate_in_the_same_batch_is_stored_once(cli, tmp_path):
    path = write_csv(tmp_path / "p.csv", PENALTY, [penalty_row(1), penalty_row(2), penalty_row(1), penalty_row(1)])
    result = ingest_one(cli, path)
    assert (result["rows"], result["accepted"], result["duplicates"], result["quarantined"]) == (4, 2, 2, 0)
    assert show(cli, result["batch_id"])["duplicates"] == 2
    assert len(records(cli)) == 2
    assert stats(cli)["records"] == 2


def test_duplicate_differing_only_in_spacing_and_width_is_a_duplicate(cli, tmp_path):
    path = write_csv(tmp_path / "p.csv", PENALTY, [
        penalty_row(1, amount="1.5"),
        [" 北京某某科技有限公司 ", VALID.lower(), "京市监罚〔2023〕1号", "2023/5/1", "１.５"],
    ])
    result = ingest_one(cli, path)
    assert (result["accepted"], result["duplicates"], result["quarantined"]) == (1, 1, 0)


def test_same_decision_with_different_content_in_one_file_is_quarantined(cli, tmp_path):
    path = write_csv(tmp_path / "p.csv", PENALTY, [penalty_row(1, amount="1.5"), penalty_row(1, amount="2")])
    result = ingest_one(cli, path)
    assert (result["accepted"], result["quarantined"], result["duplicates"]) == (1, 1, 0)
    (rejected,) = show(cli, result["batch_id"])["quarantine"]
    assert rejected["row_number"] == 3 and "row 2" in rejected["reason"]
    (record,) = records(cli)
    assert record["fields"]["fine_amount"] == 15000


def test_unknown_columns_are_kept_as_extra_facts(cli, tmp_path):
    headers = PENALTY + ["内部编号", "经办人", "备 注"]  # 备注 is known (remarks), even with a space
    path = write_csv(tmp_path / "p.csv", headers, [
        penalty_row(1) + ["A-001", "张三", "已缴纳"],
        penalty_row(2) + ["", "李四", ""],
    ])
    result = ingest_one(cli, path)
    assert (result["accepted"], result["quarantined"]) == (2, 0)
    batch = show(cli, result["batch_id"])
    assert batch["headers"] == headers
    assert batch["mapping"]["内部编号"] is None and batch["mapping"]["经办人"] is None
    assert batch["mapping"]["备 注"] == "remarks"
    first, second = records(cli)
    assert first["extras"] == {"内部编号": "A-001", "经办人": "张三"}
    assert first["fields"]["remarks"] == "已缴纳"
    assert second["extras"] == {"经办人": "李四"}  # blank extras are not facts


# -- whole file refused -------------------------------------------------------------------------

def _empty(p: Path) -> Path:
    p.write_bytes(b"")
    return p


def _only_newlines(p: Path) -> Path:
    p.write_bytes(b"\n\n\r\n")
    return p


def _undecodable(p: Path) -> Path:
    p.write_bytes("当事人名称,文号\n".encode() + b"\xff\xfe\x80\xff,\x80\x80\n")
    return p


def _undecodable_far_in(p: Path) -> Path:
    """Valid UTF-8 for more than the encoding sniffer reads, then bytes no codec accepts."""
    write_csv(p, PENALTY, [penalty_row(n) for n in range(20000)])
    with p.open("ab") as handle:
        handle.write("乙公司,".encode() + b"\xff\xfe\xfd" + b",x,2023-05-01,1\n")
    assert p.stat().st_size > 1 << 20
    return p


def _binary_as_csv(p: Path) -> Path:
    p.write_bytes(b"PK\x03\x04\x00\x00\x00\x00binary\x00\x00content")
    return p


def _pdf(p: Path) -> Path:
    p.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n")
    return p


def _docx(p: Path) -> Path:
    with zipfile.ZipFile(p, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return p


def _truncated_xlsx(p: Path) -> Path:
    write_xlsx(p, PENALTY, [penalty_row(n) for n in range(2000)])
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def _text_as_xlsx(p: Path) -> Path:
    p.write_text(",".join(PENALTY) + "\n", encoding="utf-8")
    return p


def _empty_workbook(p: Path) -> Path:
    openpyxl.Workbook().save(p)
    return p


def _no_known_columns(p: Path) -> Path:
    return write_csv(p, ["甲", "乙", "丙"], [["1", "2", "3"]])


def _no_date_column(p: Path) -> Path:
    return write_csv(p, ["当事人名称", "文号"], [["甲公司", "罚1"]])


def _not_jsonl(p: Path) -> Path:
    p.write_text("this is not json\n{\"a\": 1}\n", encoding="utf-8")
    return p


def _json_array(p: Path) -> Path:
    p.write_text('[{"subject_name": "甲公司"}]\n', encoding="utf-8")
    return p


REFUSALS: dict[str, tuple[str, Callable[[Path], Path], str]] = {
    "empty file": ("empty.csv", _empty, "empty"),
    "only blank lines": ("blank.csv", _only_newlines, "header"),
    "undecodable": ("bad.csv", _undecodable, "neither UTF-8 nor GB18030"),
    "undecodable past the sniffed sample": ("late.csv", _undecodable_far_in, "undecodable"),
    "binary content named .csv": ("binary.csv", _binary_as_csv, "binary"),
    "pdf": ("report.pdf", _pdf, "unsupported file type"),
    "docx": ("report.docx", _docx, "unsupported file type"),
    "truncated workbook": ("cut.xlsx", _truncated_xlsx, "workbook"),
    "text named .xlsx": ("text.xlsx", _text_as_xlsx, "not a workbook"),
    "empty workbook": ("blank.xlsx", _empty_workbook, "header"),
    "no recognisable columns": ("unknown.csv", _no_known_columns, "no recognisable columns"),
    "no column for a required field": ("nodate.csv", _no_date_column, "decision_date"),
    "jsonl that is not json": ("bad.jsonl", _not_jsonl, "JSON"),
    "json array, not lines of objects": ("array.jsonl", _json_array, "JSON"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_unusable_file_is_refused_whole(cli, tmp_path, case):
    name, make, words = REFUSALS[case]
    path = make(tmp_path / name)
    reason = refused(cli, path)
    assert name in reason
    assert words in reason
    assert_nothing_stored(cli)


def test_missing_file_is_refused(cli, tmp_path):
    reason = refused(cli, tmp_path / "nowhere.csv")
    assert "no such file" in reason
    assert_nothing_stored(cli)


def test_refused_file_does_not_stop_the_others(cli, tmp_path):
    good = write_csv(tmp_path / "good.csv", PENALTY, [penalty_row(1)])
    bad = _pdf(tmp_path / "bad.pdf")
    result = cli("ingest", bad, good, "--authority", "samr", "--category", "penalty", "--json", ok=False)
    assert result.exit_code == 1
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["accepted"] == 1
    assert "bad.pdf" in result.stderr
    s = stats(cli)
    assert (s["batches"], s["records"]) == (1, 1)


@pytest.mark.parametrize(("authority", "category", "words"), [
    ("court", "penalty", "not competent"),
    ("samr", "court_defaulter", "not competent"),
    ("tax", "registration", "not competent"),
    ("nobody", "penalty", "nobody"),
    ("samr", "no_such_category", "no_such_category"),
])
def test_authority_not_competent_is_refused(cli, tmp_path, authority, category, words):
    path = write_csv(tmp_path / "p.csv", PENALTY, [penalty_row(1)])
    reason = refused(cli, path, authority=authority, category=category)
    assert words in reason
    assert_nothing_stored(cli)


# -- headers ------------------------------------------------------------------------------------

SYNONYM_VARIANTS = {
    "full-width brackets, 万元": (
        ["行政相对人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "罚款金额（万元）"], 15000.0),
    "half-width brackets, 万元": (
        ["被处罚单位名称", "社会信用代码", "决定书文号", "作出处罚决定的日期", "罚款金额(万元)"], 15000.0),
    "spaces inside headers": (
        [" 当事人名称 ", "信用代码", "处罚决定书文号 ", "处罚日期", "罚款金额 （ 万元 ）"], 15000.0),
    "yuan": (["企业名称", "信用代码", "文号", "决定日期", "罚没金额"], 1.5),
    "canonical names": (["subject_name", "uscc", "decision_no", "decision_date", "fine_amount"], 1.5),
}


@pytest.mark.parametrize("variant", list(SYNONYM_VARIANTS))
def test_header_synonyms_load_without_mapping(cli, tmp_path, variant):
    headers, amount = SYNONYM_VARIANTS[variant]
    path = write_csv(tmp_path / "p.csv", headers, [penalty_row(1)])
    result = ingest_one(cli, path)
    assert (result["accepted"], result["quarantined"]) == (1, 0)
    batch = show(cli, result["batch_id"])
    assert list(batch["mapping"].values()) == ["subject_name", "uscc", "decision_no", "decision_date", "fine_amount"]
    (record,) = records(cli)
    assert record["fields"]["fine_amount"] == amount
    assert record["subject_code"] == VALID
    assert record["decision_date"] == dt.date(2023, 5, 1)


def test_confiscated_amount_in_wan_yuan(cli, tmp_path):
    path = write_csv(tmp_path / "p.csv", PENALTY + ["没收违法所得、没收非法财物的金额（万元）"],
                     [penalty_row(1) + ["0.25"]])
    ingest_one(cli, path)
    (record,) = records(cli)
    assert record["fields"]["confiscated_amount"] == 2500.0


def test_mapping_file_covers_unknown_headers(cli, tmp_path):
    headers = ["单位", "代码", "编号", "日子", "金额（万元）", "其他"]
    path = write_csv(tmp_path / "odd.csv", headers, [["甲公司", VALID, "罚1", "2023/5/1", "2", "x"]])
    refused(cli, path)  # nothing recognisable without the mapping
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(yaml.safe_dump({"单位": "subject_name", "代码": "uscc", "编号": "decision_no",
                                       "日子": "decision_date", "金额（万元）": "fine_amount"},
                                      allow_unicode=True), encoding="utf-8")
    result = ingest_one(cli, path, options=("--mapping", str(mapping)))
    assert (result["accepted"], result["quarantined"]) == (1, 0)
    batch = show(cli, result["batch_id"])
    assert batch["mapping"] == {"单位": "subject_name", "代码": "uscc", "编号": "decision_no",
                                "日子": "decision_date", "金额（万元）": "fine_amount", "其他": None}
    (record,) = records(cli)
    assert record["fields"]["fine_amount"] == 20000.0
    assert record["extras"] == {"其他": "x"}


def test_mapping_overrides_a_synonym(cli, tmp_path):
    # The file's 文号 is an internal number; the decision number is under 决定编号.
    path = write_csv(tmp_path / "p.csv", ["当事人名称", "文号", "决定编号", "处罚日期"],
                     [["甲公司", "INT-1", "罚1", "2023-05-01"]])
    mapping = tmp_path / "m.yaml"
    mapping.write_text("决定编号: decision_no\n", encoding="utf-8")
    ingest_one(cli, path, options=("--mapping", str(mapping)))
    (record,) = records(cli)
    assert record["fields"]["decision_no"] == "罚1"
    assert record["extras"] == {"文号": "INT-1"}


@pytest.mark.parametrize(("text", "words"), [
    ("单位: no_such_field\n", "no_such_field"),
    ("- just\n- a list\n", "mapping"),
    ("单位: [unclosed\n", "mapping"),
])
def test_bad_mapping_file_is_refused(cli, tmp_path, text, words):
    path = write_csv(tmp_path / "p.csv", PENALTY, [penalty_row(1)])
    mapping = tmp_path / "m.yaml"
    mapping.write_text(text, encoding="utf-8")
    result = cli("ingest", path, "--authority", "samr", "--category", "penalty", "--mapping", mapping, ok=False)
    assert result.exit_code != 0
    assert words in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # a FileRefused is one line
    assert_nothing_stored(cli)


# -- dates --------------------------------------------------------------------------------------

def test_date_forms_in_csv(cli, tmp_path):
    forms = ["2023-05-01", "2023/5/1", "2023年5月1日", "20230501", "2023/05/01", "2023.5.1",
             "2023-05-01 10:30:00", "２０２３年５月１日"]
    path = write_csv(tmp_path / "dates.csv", PENALTY, [penalty_row(n, date=d) for n, d in enumerate(forms)])
    result = ingest_one(cli, path)
    assert (result["accepted"], result["quarantined"]) == (len(forms), 0)
    stored = records(cli)
    assert {r["decision_date"] for r in stored} == {dt.date(2023, 5, 1)}
    assert {r["fields"]["decision_date"] for r in stored} == {"2023-05-01"}


def test_date_cells_and_serial_numbers_in_xlsx(cli, tmp_path):
    rows = [
        ["甲公司", VALID, "罚1", dt.datetime(2023, 5, 1, 9, 30), 1.5],   # date-time cell
        ["甲公司", VALID, "罚2", dt.date(2023, 5, 1), 1.5],              # date cell
        ["甲公司", VALID, "罚3", 45047, 1.5],                            # serial number, number format
        ["甲公司", VALID, "罚4", "2023年5月1日", 1.5],                    # text
        ["甲公司", VALID, "罚5", 20230501, 1.5],                         # 20230501 typed as a number
        ["甲公司", VALID, "罚6", "2023/5/1", "1.5"],
    ]
    path = write_xlsx(tmp_path / "dates.xlsx", PENALTY, rows, formats={(4, 4): "0"})
    result = ingest_one(cli, path)
    assert result["file_format"] == "xlsx"
    assert (result["accepted"], result["quarantined"]) == (6, 0), show(cli, result["batch_id"])["quarantine"]
    stored = records(cli)
    assert {r["decision_date"] for r in stored} == {dt.date(2023, 5, 1)}
    assert {r["fields"]["fine_amount"] for r in stored} == {15000.0}


def test_xlsx_bad_rows_quarantined_with_rejects(cli, tmp_path):
    rows = [["甲公司", VALID, "罚1", dt.date(2023, 5, 1), 1],
            ["乙公司", VALID_2, "罚2", 99999999, 1],       # a number that is no date
            ["丙公司", VALID_2, "罚3", dt.date(2023, 5, 1), -1]]
    path = write_xlsx(tmp_path / "bad.xlsx", PENALTY, rows)
    result = ingest_one(cli, path)
    assert (result["accepted"], result["quarantined"]) == (1, 2)
    _, table = read_rejects(cli, result["batch_id"], tmp_path / "rejects.csv")
    assert table[0][:5] == PENALTY
    assert [row[0] for row in table[1:]] == ["乙公司", "丙公司"]


# -- idempotence and versions -------------------------------------------------------------------

def test_same_file_twice_changes_nothing(cli, tmp_path):
    path = write_csv(tmp_path / "p.csv", PENALTY, [penalty_row(1), penalty_row(2, amount="x")])
    first = ingest_one(cli, path)
    before = stats(cli)
    second = ingest_one(cli, path)
    assert second["duplicate_of"] == first["batch_id"]
    assert second["batch_id"] is None
    assert stats(cli) == before
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(path.read_bytes())
    assert ingest_one(cli, copy)["duplicate_of"] == first["batch_id"]
    assert stats(cli) == before
    # Human output says so too.
    assert f"batch {first['batch_id']}" in cli("ingest", path, "--authority", "samr", "--category", "penalty").stdout
    # The same file from another authority is another batch.
    other = ingest_one(cli, path, authority="env")
    assert other["duplicate_of"] is None and other["batch_id"] != first["batch_id"]


def test_corrected_row_becomes_a_new_version(cli, tmp_path):
    first = ingest_one(cli, write_csv(tmp_path / "a.csv", PENALTY, [penalty_row(1, amount="1.5"), penalty_row(2)]))
    second = ingest_one(cli, write_csv(tmp_path / "b.csv", PENALTY, [
        penalty_row(1, amount="2.5"),   # corrected
        penalty_row(2),                 # unchanged
        penalty_row(3),                 # new
    ]))
    assert (second["accepted"], second["new_versions"], second["unchanged"], second["duplicates"]) == (3, 1, 1, 0)
    assert show(cli, second["batch_id"])["new_versions"] == 1
    versions = records(cli, record_key="samr:京市监罚〔2023〕1号")
    assert [(r["version"], r["fields"]["fine_amount"], r["batch_id"]) for r in versions] == [
        (1, 15000.0, first["batch_id"]), (2, 25000.0, second["batch_id"])]
    assert len(records(cli, record_key="samr:京市监罚〔2023〕2号")) == 1
    assert stats(cli)["records"] == 4
    # A third file restating version 2 changes nothing; going back to the first content is version 3.
    third = ingest_one(cli, write_csv(tmp_path / "c.csv", PENALTY, [penalty_row(1, amount="2.5")]))
    assert (third["unchanged"], third["new_versions"]) == (1, 0)
    fourth = ingest_one(cli, write_csv(tmp_path / "d.csv", PENALTY, [penalty_row(1, amount="1.5")]))
    assert fourth["new_versions"] == 1
    assert [r["version"] for r in records(cli, record_key="samr:京市监罚〔2023〕1号")] == [1, 2, 3]


def test_same_decision_number_from_two_authorities_is_two_records(cli, tmp_path):
    path = write_csv(tmp_path / "p.csv", PENALTY, [penalty_row(1)])
    ingest_one(cli, path)
    ingest_one(cli, path, authority="env")
    assert {r["record_key"] for r in records(cli)} == {"samr:京市监罚〔2023〕1号", "env:京市监罚〔2023〕1号"}


# -- rejects --------------------------------------------------------------------------------------

def test_rejects_file_has_original_headers_and_reasons_and_can_be_fixed(cli, tmp_path):
    headers = PENALTY + ["经办人"]
    rows = [
        penalty_row(1) + ["张三"],
        penalty_row(2, date="2023-02-30") + ["李四"],
        penalty_row(3, amount="-1") + ["王五"],
        penalty_row(4, name="", code="") + [""],
    ]
    first = ingest_one(cli, write_csv(tmp_path / "p.csv", headers, rows))
    assert (first["accepted"], first["quarantined"]) == (1, 3)
    raw, table = read_rejects(cli, first["batch_id"], tmp_path / "rejects.csv")
    assert raw.startswith(codecs.BOM_UTF8)
    assert table[0][: len(headers)] == headers
    assert len(table[0]) == len(headers) + 3
    body = table[1:]
    neutralised = [f"'{cell}" if cell.startswith("-") else cell for cell in rows[2]]  # -1: no formula
    assert [row[: len(headers)] for row in body] == [
        rows[1], neutralised, ["", "", "京市监罚〔2023〕4号", "2023-05-01", "1.5", ""]]
    assert [row[len(headers)] for row in body] == ["3", "4", "5"]
    assert [row[len(headers) + 1] for row in body] == ["decision_date", "fine_amount", "subject_name"]
    assert all(row[-1] for row in body)
    # The authority fixes the cells in the rejects file and sends it back as it is.
    body[0][3] = "2023-02-28"
    body[1][4] = "1"
    body[2][0] = "天津某某物流有限公司"
    fixed = tmp_path / "fixed.csv"
    with fixed.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows([table[0], *body])
    again = ingest_one(cli, fixed)
    assert again["encoding"] == "utf-8 bom"
    assert (again["accepted"], again["quarantined"], again["new_versions"]) == (3, 0, 0)
    assert stats(cli)["records"] == 4
    (fixed_date,) = records(cli, record_key="samr:京市监罚〔2023〕2号")
    assert fixed_date["decision_date"] == dt.date(2023, 2, 28)
    assert fixed_date["extras"].get("经办人") == "李四"


def test_rejects_of_a_batch_without_rejects(cli, tmp_path):
    result = ingest_one(cli, write_csv(tmp_path / "p.csv", PENALTY, [penalty_row(1)]))
    _, table = read_rejects(cli, result["batch_id"], tmp_path / "r.csv")
    assert table == [PENALTY + ["原始行 row", "问题字段 field", "原因 reason"]]


def test_unknown_batch(cli, tmp_path):
    result = cli("batch", "show", "99", "--json", ok=False)
    assert result.exit_code != 0 and "no batch 99" in result.stderr
    result = cli("batch", "rejects", "99", "-o", tmp_path / "r.csv", ok=False)
    assert result.exit_code != 0 and "no batch 99" in result.stderr


# -- encodings ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("encoding", "reported"), [
    ("gb18030", "gb18030"), ("gbk", "gb18030"), ("utf-8-sig", "utf-8 bom"), ("utf-8", "utf-8")])
def test_encoding_detected(cli, tmp_path, encoding, reported):
    rows = [penalty_row(1, name="北京市朝阳区某某餐饮管理有限公司"), penalty_row(2, name="䶮公司")]
    if encoding == "gbk":
        rows = rows[:1]  # 䶮 is beyond GBK
    path = write_csv(tmp_path / "p.csv", PENALTY, rows, encoding=encoding)
    result = ingest_one(cli, path)
    assert result["encoding"] == reported
    assert (result["accepted"], result["quarantined"]) == (len(rows), 0)
    assert show(cli, result["batch_id"])["encoding"] == reported
    assert {r["subject_name"] for r in records(cli)} == {row[0] for row in rows}
    assert show(cli, result["batch_id"])["headers"] == PENALTY  # the BOM is not part of the first header


def test_tab_and_semicolon_separated(cli, tmp_path):
    for n, delimiter in enumerate(("\t", ";")):
        path = tmp_path / f"p{n}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter=delimiter)
            writer.writerow(PENALTY)
            writer.writerow(penalty_row(n, amount="1,500"))
            writer.writerow(penalty_row(n + 10, amount="1,5"))  # not a grouping: quarantined, not 15
        result = ingest_one(cli, path)
        assert (result["accepted"], result["quarantined"]) == (1, 1), show(cli, result["batch_id"])
    assert {r["fields"]["fine_amount"] for r in records(cli)} == {15_000_000.0}


# -- JSON Lines -------------------------------------------------------------------------------------

def test_jsonl_with_a_broken_line(cli, tmp_path):
    good = {"subject_name": "甲公司", "uscc": VALID, "decision_no": "罚1", "decision_date": "2023-05-01",
            "fine_amount": 5000}
    path = write_jsonl(tmp_path / "p.jsonl", [
        good,
        '{"subject_name": "乙公司", "decision_no": "罚2", ',   # broken
        "",
        {**good, "decision_no": "罚3", "违法事实": "未公示年报", "tags": ["a", "b"]},  # keys grow
        "[1, 2]",                                                  # JSON, not an object
    ])
    result = ingest_one(cli, path)
    assert result["file_format"] == "jsonl"
    assert (result["rows"], result["accepted"], result["quarantined"]) == (4, 2, 2)
    quarantine = show(cli, result["batch_id"])["quarantine"]
    assert [q["row_number"] for q in quarantine] == [2, 5]
    assert "JSON" in quarantine[0]["reason"]
    stored = {r["fields"]["decision_no"]: r for r in records(cli)}
    assert stored["罚1"]["fields"]["fine_amount"] == 5000  # canonical names are in yuan
    assert stored["罚3"]["fields"]["facts"] == "未公示年报"
    assert json.loads(stored["罚3"]["extras"]["tags"]) == ["a", "b"]
    _, table = read_rejects(cli, result["batch_id"], tmp_path / "r.csv")
    assert table[1][0].startswith('{"subject_name": "乙公司"')
    assert table[2][0] == "[1, 2]"


def test_jsonl_with_bom_and_gb18030(cli, tmp_path):
    line = json.dumps({"当事人名称": "甲公司", "统一社会信用代码": VALID, "文号": "罚1", "处罚日期": "2023/5/1",
                       "罚款金额（万元）": "0.5"}, ensure_ascii=False) + "\n"
    (tmp_path / "bom.jsonl").write_bytes(codecs.BOM_UTF8 + line.encode())
    (tmp_path / "gb.jsonl").write_bytes(line.replace("罚1", "罚2").encode("gb18030"))
    first, second = ingest(cli, tmp_path / "bom.jsonl", tmp_path / "gb.jsonl")
    assert (first["encoding"], first["accepted"]) == ("utf-8 bom", 1)
    assert (second["encoding"], second["accepted"]) == ("gb18030", 1)
    assert {r["fields"]["fine_amount"] for r in records(cli)} == {5000.0}
    assert {r["subject_name"] for r in records(cli)} == {"甲公司"}


def test_id_number_with_a_region_stdnum_cannot_place_does_not_break_the_file(cli, tmp_path):
    path = write_csv(tmp_path / "p.csv", ["当事人名称", "行政相对人类别", "证件号码", "文号", "处罚日期"], [
        ["张三", "自然人", "212154596112112492", "罚1", "2023-05-01"],
        ["", "自然人", "212154596112112492", "罚2", "2023-05-01"],
    ])
    result = ingest_one(cli, path)
    assert (result["accepted"], result["quarantined"], result["warnings"]) == (1, 1, 1)
    (record,) = records(cli)
    assert (record["subject_scheme"], record["subject_code_verified"]) == ("resident_id", False)


# -- court defaulters: one case, several debtors ----------------------------------------------

COURT = ["被执行人姓名/名称", "身份证号码/组织机构代码", "案号", "执行法院", "发布时间", "被执行人的履行情况"]


def test_court_defaulters(cli, tmp_path):
    person = "110101199003071233"
    path = write_csv(tmp_path / "court.csv", COURT, [
        ["北京某某科技有限公司", ORG_CODE, "（2023）京0105执123号", "北京市朝阳区人民法院", "2023-06-01", "全部未履行"],
        ["张三", person, "（2023）京0105执123号", "北京市朝阳区人民法院", "2023-06-01", "全部未履行"],
        ["李四", "", "", "北京市朝阳区人民法院", "2023-06-01", "全部未履行"],               # no case number
        ["王五", "", "（2023）京0105执124号", "北京市朝阳区人民法院", "", "全部未履行"],     # no publication date
        ["赵六", "", "（2023）京0105执125号", "北京市朝阳区人民法院", "2023-06-01", "履行中"],  # not a listed value
    ])
    result = ingest_one(cli, path, authority="court", category="court_defaulter")
    assert (result["accepted"], result["quarantined"]) == (2, 3)
    assert [(q["row_number"], q["field"]) for q in show(cli, result["batch_id"])["quarantine"]] == [
        (4, "case_no"), (5, "published_on"), (6, "performance")]
    stored = {r["subject_name"]: r for r in records(cli)}
    assert stored["张三"]["subject_scheme"] == "resident_id" and stored["张三"]["subject_kind"] == "natural_person"
    assert stored["北京某某科技有限公司"]["subject_scheme"] == "org_code"
    assert len({r["record_key"] for r in stored.values()}) == 2  # one record per debtor of the case


# -- the register -----------------------------------------------------------------------------------

REGISTRATION = ["统一社会信用代码", "企业名称", "曾用名", "企业类型", "法定代表人", "住所", "成立日期", "登记状态"]


def test_registration_creates_entities_with_former_names(cli, tmp_path):
    rows = [
        [VALID, "北京某某科技有限公司", "北京某某电子有限公司；北京某某通讯设备厂", "有限责任公司", "张三",
         "北京市海淀区", "2001-03-05", "存续（在营、开业、在册）"],
        [VALID_2, "上海某某贸易有限公司", "", "有限责任公司", "李四", "上海市浦东新区", "2015/7/1", "在业"],
        [BAD_CHECK, "天津某某物流有限公司", "天津某某运输队、天津某某车队", "个体工商户", "王五", "天津市", "20100101",
         "吊销，未注销"],
    ]
    result = ingest_one(cli, write_csv(tmp_path / "reg.csv", REGISTRATION, rows), category="registration")
    assert (result["accepted"], result["quarantined"], result["warnings"]) == (3, 0, 1)
    s = stats(cli)
    assert s["entities"] == 3
    assert s["records_per_category"] == {"registration": 3}
    with store(cli) as engine, engine.connect() as c:
        n = t.entity_names.c
        names = {(row.name, row.current) for row in c.execute(select(n.name, n.current))}
        entities = {row.key: row for row in c.execute(select(t.entities))}
    assert names == {
        ("北京某某科技有限公司", True), ("北京某某电子有限公司", False), ("北京某某通讯设备厂", False),
        ("上海某某贸易有限公司", True),
        ("天津某某物流有限公司", True), ("天津某某运输队", False), ("天津某某车队", False),
    }
    assert entities[VALID].verified and entities[VALID_2].verified
    assert entities[VALID].status == "存续"
    unverified = [e for key, e in entities.items() if key not in (VALID, VALID_2)]
    assert len(unverified) == 1 and not unverified[0].verified  # a failed USCC is no public key
    assert unverified[0].status == "吊销"


def test_registration_rename_keeps_the_old_name(cli, tmp_path):
    ingest_one(cli, write_csv(tmp_path / "a.csv", REGISTRATION, [
        [VALID, "北京某某科技有限公司", "", "有限责任公司", "张三", "北京", "2001-03-05", "存续"]]), category="registration")
    second = ingest_one(cli, write_csv(tmp_path / "b.csv", REGISTRATION, [
        [VALID, "北京某某数字科技有限公司", "北京某某科技有限公司", "有限责任公司", "张三", "北京", "2001-03-05", "存续"]]),
        category="registration")
    assert second["new_versions"] == 1
    assert stats(cli)["entities"] == 1
    with store(cli) as engine, engine.connect() as c:
        n = t.entity_names.c
        names = {(row.name, row.current) for row in c.execute(select(n.name, n.current))}
        count = c.execute(select(func.count()).select_from(t.entity_identifiers)).scalar_one()
    assert names == {("北京某某数字科技有限公司", True), ("北京某某科技有限公司", False)}
    assert count == 2  # the USCC and the organisation code embedded in it


def test_registration_with_legacy_code_and_bad_status(cli, tmp_path):
    path = write_csv(tmp_path / "reg.csv", ["统一社会信用代码", "企业名称", "登记状态"], [
        [REG_NO, "老字号商店", "存续"],
        [VALID, "北京某某科技有限公司", "歇业中"],  # not a known status
    ])
    result = ingest_one(cli, path, category="registration")
    assert (result["accepted"], result["quarantined"]) == (1, 1)
    (rejected,) = show(cli, result["batch_id"])["quarantine"]
    assert rejected["field"] == "status"
    (record,) = records(cli)
    assert record["subject_scheme"] == "reg_no"
    assert stats(cli)["entities"] == 1


# -- the audit trail of ingestion --------------------------------------------------------------------

def test_each_batch_is_one_audit_event(cli, tmp_path):
    ingest_one(cli, write_csv(tmp_path / "a.csv", PENALTY, [penalty_row(1)]))
    ingest_one(cli, write_csv(tmp_path / "a.csv", PENALTY, [penalty_row(1)]))  # same content again
    ingest_one(cli, write_csv(tmp_path / "b.csv", PENALTY, [penalty_row(2)]))
    refused(cli, _pdf(tmp_path / "c.pdf"))
    s = stats(cli)
    assert (s["batches"], s["audit_events"]) == (2, 2)
    verify = json.loads(cli("audit", "verify", "--json").stdout)
    assert verify == {"events": 2, "intact": True, "problem": None}


# -- big files: several chunks --------------------------------------------------------------------

def _big_rows(count: int) -> list[list[str]]:
    return [penalty_row(n, name=f"测试商贸有限公司{n}") + ["未按规定公示年度报告" * 4] for n in range(count)]


def test_duplicates_and_conflicts_across_chunks_of_a_big_file(cli, tmp_path):
    rows = _big_rows(30000)  # > 4 MB, six chunks
    rows.append(rows[1])                      # exact duplicate, thousands of rows later
    rows.append(rows[2][:4] + ["9"] + rows[2][5:])  # same decision, other content
    rows.append(penalty_row(40000, date="2023-02-30") + [""])
    path = write_csv(tmp_path / "big.csv", PENALTY + ["违法事实"], rows)
    assert path.stat().st_size > 4 << 20
    result = ingest_one(cli, path)
    assert (result["rows"], result["accepted"], result["duplicates"], result["quarantined"]) == (30003, 30000, 1, 2)
    quarantine = show(cli, result["batch_id"])["quarantine"]
    assert [(q["row_number"], q["field"]) for q in quarantine] == [(30003, "decision_no"), (30004, "decision_date")]
    assert "row 4" in quarantine[0]["reason"]
    s = stats(cli)
    assert (s["records"], s["quarantined_rows"], s["batches"]) == (30000, 2, 1)


def test_big_file_undecodable_near_its_end_is_refused_whole(cli, tmp_path):
    path = write_csv(tmp_path / "big.csv", PENALTY + ["违法事实"], _big_rows(30000))
    with path.open("ab") as handle:
        handle.write("乙公司,".encode() + b"\xff\xfe\xfd" + b",x,2023-05-01,1,\n")
    reason = refused(cli, path)
    assert "big.csv" in reason and "undecodable" in reason
    assert_nothing_stored(cli)


def test_workbook_of_several_chunks(cli, tmp_path):
    rows = [["甲公司%d" % n, VALID, f"罚{n}", dt.date(2023, 5, 1), n % 7] for n in range(12000)]
    rows[100][3] = "2023-02-30"
    rows[11000] = list(rows[10])  # duplicate, two chunks later
    path = write_xlsx(tmp_path / "big.xlsx", PENALTY, rows)
    result = ingest_one(cli, path)
    assert (result["rows"], result["accepted"], result["quarantined"], result["duplicates"]) == (12000, 11998, 1, 1)


# -- rows that do not fit their header ---------------------------------------------------------

def test_row_with_more_cells_than_headers_is_not_silently_truncated(cli, tmp_path):
    # An unquoted comma in a cell shifts the row: the cell beyond the header must not vanish.
    path = tmp_path / "ragged.csv"
    path.write_text(",".join(PENALTY) + "\n"
                    + ",".join(penalty_row(1)) + "\n"
                    + ",".join(penalty_row(2)) + ",多出来的内容\n"
                    + ",".join(penalty_row(3)) + ",\n", encoding="utf-8")  # a trailing comma is harmless
    result = ingest_one(cli, path)
    assert (result["rows"], result["accepted"], result["quarantined"]) == (3, 2, 1)
    assert {r["fields"]["decision_no"] for r in records(cli)} == {"京市监罚〔2023〕1号", "京市监罚〔2023〕3号"}
    (rejected,) = show(cli, result["batch_id"])["quarantine"]
    assert rejected["row_number"] == 3 and "6 cells but 5 headers" in rejected["reason"]
    _, table = read_rejects(cli, result["batch_id"], tmp_path / "r.csv")
    assert "多出来的内容" in table[1][0]  # the line as sent, nothing lost


def test_row_with_fewer_cells_than_headers(cli, tmp_path):
    path = tmp_path / "short.csv"
    path.write_text(",".join(PENALTY + ["备注"]) + "\n" + ",".join(penalty_row(1)) + "\n", encoding="utf-8")
    result = ingest_one(cli, path)
    assert (result["accepted"], result["quarantined"]) == (1, 0)
    path.write_text(",".join(PENALTY) + "\n" + ",".join(penalty_row(2)[:3]) + "\n", encoding="utf-8")
    result = ingest_one(cli, path)
    assert (result["accepted"], result["quarantined"]) == (0, 1)
    assert show(cli, result["batch_id"])["quarantine"][0]["field"] == "decision_date"


def test_reingested_rejects_do_not_carry_old_reasons(cli, tmp_path):
    first = ingest_one(cli, write_csv(tmp_path / "p.csv", PENALTY, [penalty_row(1, date="2023-02-30")]))
    _, table = read_rejects(cli, first["batch_id"], tmp_path / "rejects.csv")
    table[1][3] = "2023-02-28"
    fixed = tmp_path / "fixed.csv"
    with fixed.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows(table)
    assert ingest_one(cli, fixed)["accepted"] == 1
    (record,) = records(cli)
    assert record["decision_date"] == dt.date(2023, 2, 28)
    # The reason a row was once rejected is not a fact about the subject.
    assert not any("impossible date" in str(v) for v in record["extras"].values()), record["extras"]


def test_natural_person_in_a_penalty_file(cli, tmp_path):
    person_id = "11010119900307123" + "3"
    path = write_csv(tmp_path / "p.csv", ["当事人名称", "行政相对人类别", "证件号码", "文号", "处罚日期"], [
        ["张三", "自然人", person_id, "罚1", "2023-05-01"],
        ["李四", "自然人", person_id[:17] + "4", "罚2", "2023-05-01"],  # fails its check
    ])
    result = ingest_one(cli, path)
    assert (result["accepted"], result["quarantined"], result["warnings"]) == (2, 0, 1)
    stored = {r["subject_name"]: r for r in records(cli)}
    assert (stored["张三"]["subject_kind"], stored["张三"]["subject_scheme"], stored["张三"]["subject_code_verified"]) == (
        "natural_person", "resident_id", True)
    assert stored["李四"]["subject_scheme"] == "resident_id" and not stored["李四"]["subject_code_verified"]
    assert "19900307" not in json.dumps(stored["李四"]["warnings"])  # warnings never carry the ID in clear
