"""An agency's first day: its spreadsheets as they really leave its office (a column hidden over the
one that replaced it, a district's sheet under its own synonyms of the headers, a sheet of
instructions in front, a DOS-era Ctrl-Z at the end), ingested through `xinyong ingest` with real
public firm names and codes whose check characters are computed. Each test is a defect found and
fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from test_trust_adversarial_12 import ingest_one, records, refused, stats, workbook
from worlds import run, uscc

XIAOMI = uscc("91110108551385082")  # 小米科技有限责任公司
GREE = uscc("91440400192548256")  # 珠海格力电器股份有限公司
BYD = uscc("91440300192185379")
assert (XIAOMI, GREE) == ("91110108551385082Q", "91440400192548256N")

HEADERS = ["行政相对人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚机关"]
ROWS = [["小米科技有限责任公司", XIAOMI, "京海市监罚〔2026〕101号", "2026-03-05", "北京市海淀区市场监督管理局"],
        ["珠海格力电器股份有限公司", GREE, "珠市监罚〔2026〕202号", "2026-03-06", "珠海市市场监督管理局"],
        ["比亚迪股份有限公司", BYD, "深市监罚〔2026〕303号", "2026-03-07", "深圳市市场监督管理局"]]


def hide_columns(path: Path, ranges: list[tuple[int, int]], sheet: int = 1) -> Path:
    """The workbook with columns hidden as a spreadsheet saves them: `<cols><col min max hidden>` before
    the sheet's data (1-based, inclusive)."""
    part = f"xl/worksheets/sheet{sheet}.xml"
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    cols = "".join(f'<col min="{first}" max="{last}" width="12" customWidth="1" hidden="1"/>' for first, last in ranges)
    parts[part] = parts[part].replace(b"<sheetData>", f"<cols>{cols}</cols><sheetData>".encode())
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return path


def test_a_column_hidden_in_a_workbook_is_never_published_as_the_records_value(cli, tmp_path: Path) -> None:
    """海淀's clerk kept last year's column 罚款金额 (999999, a placeholder) and hid it, typing the amounts
    into 罚款金额（元） beside it. The reader gave hidden columns like any other: 小米 was published with a
    fine of 999,999 yuan, the visible 15,000 kept aside as an unknown column. A hidden row was already
    quarantined; a hidden column now refuses the file, naming its letter and header, nothing stored.
    Data in a hidden column without a header is refused naming its row; hidden empty columns (the
    unused ones to the right, hidden to tidy the sheet) change nothing."""
    headers = [*HEADERS[:3], "罚款金额", "罚款金额（元）", *HEADERS[3:]]
    first = [*ROWS[0][:3], 999999, 15000, *ROWS[0][3:]]
    path = hide_columns(workbook(tmp_path / "海淀区2026年3月处罚.xlsx",
                                 {"name": "处罚", "rows": [headers, first]}), [(4, 4)])
    said = refused(cli, path)
    assert "海淀区2026年3月处罚.xlsx" in said and "column D ('罚款金额')" in said and "hidden" in said, said
    assert stats(cli)["records"] == 0

    under_no_header = hide_columns(workbook(tmp_path / "no-header.xlsx", {"name": "处罚", "rows": [
        [*HEADERS, ""], [*ROWS[0], ""], [*ROWS[1], "撤销"], ROWS[2]]}), [(6, 6)])
    said = refused(cli, under_no_header)
    assert "row 3" in said and "column F" in said and "hidden" in said, said
    assert stats(cli)["records"] == 0

    tidy = hide_columns(workbook(tmp_path / "tidy.xlsx", {"name": "处罚", "rows": [HEADERS, *ROWS]}), [(6, 16384)])
    assert ingest_one(cli, tidy)["accepted"] == 3


def test_a_second_sheet_under_synonyms_of_the_headers_is_not_left_out_unsaid(cli, tmp_path: Path) -> None:
    """深圳's workbook: the city bureau's sheet headed 行政相对人名称, 统一社会信用代码..., the district's
    sheet below it headed 当事人名称, 社会信用代码, 决定书文号, 处罚日期 (the same fields under the
    synonyms the pack knows). Only the first sheet was read, and the other was judged no records
    because its headers were other words: 格力's and 比亚迪's penalties vanished, the batch said
    1 row, 1 accepted. Sheets are now compared by the fields their headers name."""
    district = [["当事人名称", "社会信用代码", "决定书文号", "处罚日期", "作出决定机关"], ROWS[1], ROWS[2]]
    path = workbook(tmp_path / "深圳2026年3月.xlsx", {"name": "市局", "rows": [HEADERS, ROWS[0]]},
                    {"name": "区局", "rows": district})
    said = refused(cli, path)
    assert "sheet '区局'" in said and "sheet '市局'" in said and "only one sheet" in said, said
    assert stats(cli)["records"] == 0


def test_a_sheet_of_instructions_in_front_of_the_records_does_not_refuse_the_workbook(cli, tmp_path: Path) -> None:
    """The province's template opens on 填报说明, one column of instructions, the records on the sheet
    after it. The first sheet holding anything was taken for the records: the workbook was refused,
    "no recognisable columns (headers: 1. 行政相对人名称：必填…)", and no option picks another sheet.
    The records' sheet is the first whose headers name the category's fields."""
    instructions = [["1. 行政相对人名称：必填，填写法人及非法人组织名称"], ["2. 统一社会信用代码：18位"],
                    ["3. 日期格式：YYYY-MM-DD"]]
    path = workbook(tmp_path / "省模板.xlsx", {"name": "填报说明", "rows": instructions},
                    {"name": "数据", "rows": [HEADERS, *ROWS]})
    result = ingest_one(cli, path)
    assert (result["rows"], result["accepted"], result["quarantined"]) == (3, 3, 0), result
    assert sorted(r["row_number"] for r in records(cli)) == [2, 3, 4]

    only_instructions = workbook(tmp_path / "说明.xlsx", {"name": "填报说明", "rows": instructions})
    assert "no recognisable columns" in refused(cli, only_instructions)


def test_a_ctrl_z_at_the_end_of_a_text_file_is_no_row_and_no_part_of_a_cell(cli, tmp_path: Path) -> None:
    """A county's export tool ends its files with Ctrl-Z (0x1A), as DOS tools did. On its own line it was
    a row: quarantined as "required field decision_no is empty", the authority's quarantine rate up for
    a byte; after the last cell (no line end) it was stored in the record: 处罚机关 "…市场监督管理局\\x1a".
    JSON Lines likewise quarantined the mark as "not valid JSON". The mark ends the file."""
    lines = [",".join(HEADERS), *(",".join(row) for row in ROWS)]
    on_its_own = tmp_path / "own-line.csv"
    on_its_own.write_bytes(("\r\n".join(lines) + "\r\n\x1a").encode("gb18030"))
    result = ingest_one(cli, on_its_own)
    assert (result["rows"], result["accepted"], result["quarantined"]) == (3, 3, 0), result

    glued = tmp_path / "glued.csv"
    glued.write_bytes(("\r\n".join([lines[0], lines[1].replace("〔2026〕101号", "〔2026〕102号")]) + "\x1a").encode())
    result = ingest_one(cli, glued)
    assert (result["rows"], result["accepted"], result["quarantined"]) == (1, 1, 0), result
    (record,) = records(cli, batch_id=result["batch_id"])
    assert record["fields"]["authority_name"] == "北京市海淀区市场监督管理局"

    keys = ["行政相对人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期"]
    jsonl = tmp_path / "records.jsonl"
    jsonl.write_text("\n".join(json.dumps(dict(zip(keys, [*row[:2], row[2] + "J", row[3]])), ensure_ascii=False)
                               for row in ROWS) + "\n\x1a", encoding="utf-8")
    result = ingest_one(cli, jsonl)
    assert (result["rows"], result["accepted"], result["quarantined"]) == (3, 3, 0), result


def test_a_heading_under_its_group_is_read_with_the_groups_words(cli, tmp_path: Path) -> None:
    """朝阳's sheet has two header rows: 行政相对人 merged over 名称 | 统一社会信用代码, 处罚决定 merged over
    文号 | 日期 (序号 merged down). Each column was headed by its lowest text alone: 名称 names no field
    of a penalty, so 小米's name went to the unknown columns and the record was stored with no subject
    name at all (accepted, found by its code alone); with 日期 alone the file was refused for want of a
    decision date. A heading that names a field only with its group's words before it now takes them:
    行政相对人名称, 处罚决定日期."""
    rows = [["序号", "行政相对人", "", "处罚决定", "", ""],
            ["", "名称", "统一社会信用代码", "文号", "罚款金额（万元）", "日期"],
            [1, "小米科技有限责任公司", XIAOMI, "京朝市监罚〔2026〕88号", "1.5", "2026-03-05"],
            [2, "珠海格力电器股份有限公司", GREE, "京朝市监罚〔2026〕89号", "20", "2026-03-06"]]
    path = workbook(tmp_path / "朝阳区.xlsx", {"name": "Sheet1", "rows": rows, "merge": ["A1:A2", "B1:C1", "D1:F1"]})
    result = ingest_one(cli, path)
    assert (result["rows"], result["accepted"], result["quarantined"]) == (2, 2, 0), result
    stored = {r["row_number"]: r for r in records(cli)}
    assert stored[3]["subject_name"] == "小米科技有限责任公司" and stored[4]["subject_name"] == "珠海格力电器股份有限公司"
    assert stored[3]["fields"]["decision_date"] == "2026-03-05" and stored[3]["fields"]["fine_amount"] == 15000.0
    assert "名称" not in stored[3]["extras"], stored[3]["extras"]


def test_the_line_naming_the_sending_office_and_date_above_the_header_is_no_header(cli, tmp_path: Path) -> None:
    """The form every district fills: a title (北京市行政处罚信息公示表), then 填报单位（盖章）：… on the left
    and 填报日期：… on the right, then the header. The first row of several cells was taken for the
    header: the workbook and its CSV export were refused, "no recognisable columns (headers: 填报单位
    （盖章）：北京市海淀区市场监督管理局, , , , 填报日期：2026年10月8日)". The header is now the first of the
    top rows naming a field; the rows keep the numbers the agency sees."""
    headers = ["序号", "行政相对人名称", "统一社会信用代码", "行政处罚决定书文号", "罚款金额（万元）", "处罚决定日期"]
    office = ["填报单位（盖章）：北京市海淀区市场监督管理局", "", "", "", "填报日期：2026年10月8日", ""]
    data = [[1, "小米科技有限责任公司", XIAOMI, "京海市监罚〔2026〕7号", 1.5, "2026-03-05"],
            [2, "珠海格力电器股份有限公司", GREE, "京海市监罚〔2026〕8号", 20, "2026-03-06"]]
    path = workbook(tmp_path / "海淀区.xlsx", {"name": "Sheet1", "rows": [["北京市行政处罚信息公示表"], office, headers, *data],
                                               "merge": ["A1:F1", "A2:D2"]})
    result = ingest_one(cli, path)
    assert (result["rows"], result["accepted"], result["quarantined"]) == (2, 2, 0), result
    exported = tmp_path / "海淀区.csv"
    exported.write_text("\n".join(",".join(str(c) for c in row) for row in [
        ["北京市行政处罚信息公示表", "", "", "", "", ""], office, headers,
        *([*row[:3], row[3].replace("号", "号A"), *row[4:]] for row in data)]) + "\n", encoding="utf-8")
    result = ingest_one(cli, exported)
    assert (result["rows"], result["accepted"], result["quarantined"]) == (2, 2, 0), result
    stored = records(cli, batch_id=result["batch_id"])
    assert [(r["row_number"], r["subject_name"]) for r in stored] == [(4, "小米科技有限责任公司"), (5, "珠海格力电器股份有限公司")]
    assert stored[0]["fields"]["fine_amount"] == 15000.0


def test_a_blank_line_before_the_first_record_does_not_refuse_a_json_lines_file(cli, tmp_path: Path) -> None:
    """The tax bureau's export begins with an empty line (CR LF) before its first record. The file was
    refused whole, "line 1 is not a JSON object; not a JSON Lines file", though a blank line anywhere else
    is skipped. The keys now come from the first line that is not blank; a first record that is broken
    JSON still refuses the file, saying so and on which line."""
    keys = ["纳税人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期"]
    good = [json.dumps(dict(zip(keys, [row[0], row[1], row[2].replace("市监", "税"), row[3]])), ensure_ascii=False)
            for row in ROWS]
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\r\n" + "\n".join(good) + "\n", encoding="utf-8")
    result = ingest_one(cli, blank, authority="tax")
    assert (result["rows"], result["accepted"], result["quarantined"]) == (3, 3, 0), result
    assert [r["row_number"] for r in records(cli, batch_id=result["batch_id"])] == [2, 3, 4]
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n" + good[0][:40] + "\n" + "\n".join(good[1:]) + "\n", encoding="utf-8")
    said = refused(cli, cut)
    assert "cut.jsonl: line 2 is not valid JSON" in said, said
    assert stats(cli)["records"] == 3


def test_a_byte_order_mark_is_no_part_of_the_first_header(cli, tmp_path: Path) -> None:
    """Notepad saves GB18030 with its byte order mark (84 31 95 33), which the decoder keeps as U+FEFF: the
    first header was stored as "\\ufeff序号", so the batch's headers, the rejects file's first column and
    every record's unknown column carried an invisible character (the key "\\ufeff序号", not "序号")."""
    lines = [",".join(["序号", *HEADERS]), *(",".join([str(n), *row]) for n, row in enumerate(ROWS, start=1))]
    path = tmp_path / "gb18030-bom.csv"
    path.write_bytes(b"\x84\x31\x95\x33" + ("\r\n".join(lines) + "\r\n").encode("gb18030"))
    result = ingest_one(cli, path)
    assert (result["encoding"], result["accepted"]) == ("gb18030", 3), result
    stored = records(cli, batch_id=result["batch_id"])
    assert [r["extras"] for r in stored] == [{"序号": "1"}, {"序号": "2"}, {"序号": "3"}]
    assert run(cli, "batch", "show", result["batch_id"])["headers"][0] == "序号"
