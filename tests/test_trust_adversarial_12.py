"""Intake from real agencies' spreadsheets and API posts, probed as their exports really come:
workbooks written the way a spreadsheet writes them (a code column left as numbers, a title above
the header, a hidden template sheet, a sheet a month), with real public firm names and codes whose
check characters are computed. Each test is a defect found and fixed (on SQLite and PostgreSQL).

openpyxl is not in every environment the suite runs in: the workbooks are written part by part here.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import zipfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from fastapi.testclient import TestClient
from sqlalchemy import select
from worlds import run, uscc, write_csv

from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.store import tables as t
from xinyong.store.db import open_engine

HEADERS = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"]
REGISTER = ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"]
XIAOMI = uscc("91110108MA0XM0077")
GREE = uscc("91440400MA4GL0018")
JD = "911101080000018048"  # a valid code, all digits: what 美团's code below becomes in a number cell
MEITUAN = "911101080000018110"  # valid; a spreadsheet keeps 15 digits of it: 9.11101080000018E+17
assert uscc(JD[:17]) == JD and uscc(MEITUAN[:17]) == MEITUAN


class Number(str):
    """A cell as a spreadsheet stores a number: its text in the sheet's XML (9.11101080000018E+17)."""


class Serial(float):
    """A date cell: a serial number shown in a date format."""


class Failed(str):
    """A formula that failed: the cell holds its error (#N/A), as a spreadsheet saves it."""


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def _cell(ref: str, value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, Failed):
        return f'<c r="{ref}" t="e"><f>VLOOKUP(A2,名录!A:B,2,FALSE)</f><v>{escape(value)}</v></c>'
    if isinstance(value, Serial):
        return f'<c r="{ref}" s="1"><v>{float(value):g}</v></c>'
    if isinstance(value, (Number, int, float)):
        return f'<c r="{ref}"><v>{value}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{escape(str(value))}</t></is></c>'


_MAIN = ('xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
         'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"')
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def workbook(path: Path, *sheets: dict[str, Any]) -> Path:
    """Sheets as dicts: `name`, `rows`, optionally `first` (the row number of the first row),
    `merge` (ranges such as A1:F1), `hidden` (row numbers) and `state` ("hidden")."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        overrides = "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_TYPE}.worksheet+xml"/>'
                            for i in range(1, len(sheets) + 1))
        archive.writestr("[Content_Types].xml", '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.'
                         'openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType='
                         '"application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
                         f'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="{_TYPE}'
                         f'.sheet.main+xml"/><Override PartName="/xl/styles.xml" ContentType="{_TYPE}.styles+xml"/>'
                         f"{overrides}</Types>")
        archive.writestr("_rels/.rels", '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
                         f'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{_REL}/'
                         'officeDocument" Target="xl/workbook.xml"/></Relationships>')
        listed = "".join(f'<sheet name="{escape(s["name"])}" sheetId="{i}" r:id="rId{i}"'
                         + (f' state="{s["state"]}"' if s.get("state") else "") + "/>"
                         for i, s in enumerate(sheets, start=1))
        archive.writestr("xl/workbook.xml", f'<?xml version="1.0" encoding="UTF-8"?><workbook {_MAIN}><sheets>{listed}'
                         "</sheets></workbook>")
        links = "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                        for i in range(1, len(sheets) + 1))
        links += f'<Relationship Id="rId{len(sheets) + 1}" Type="{_REL}/styles" Target="styles.xml"/>'
        archive.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0" encoding="UTF-8"?><Relationships '
                         f'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{links}</Relationships>')
        archive.writestr("xl/styles.xml", '<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="http://schemas.'
                         'openxmlformats.org/spreadsheetml/2006/main"><fonts count="1"><font/></fonts><fills count="1">'
                         '<fill/></fills><borders count="1"><border/></borders><cellStyleXfs count="1"><xf/>'
                         '</cellStyleXfs><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/>'
                         "</cellXfs></styleSheet>")
        for i, sheet in enumerate(sheets, start=1):
            hidden = sheet.get("hidden", ())
            rows = "".join(f'<row r="{n}"' + (' hidden="1">' if n in hidden else ">")
                           + "".join(_cell(f"{_column(c)}{n}", v) for c, v in enumerate(row)) + "</row>"
                           for n, row in enumerate(sheet["rows"], start=sheet.get("first", 1)))
            merged = "".join(f'<mergeCell ref="{m}"/>' for m in sheet.get("merge", ()))
            archive.writestr(f"xl/worksheets/sheet{i}.xml", f'<?xml version="1.0" encoding="UTF-8"?><worksheet {_MAIN}>'
                             f"<sheetData>{rows}</sheetData>"
                             + (f'<mergeCells count="{len(sheet["merge"])}">{merged}</mergeCells>' if merged else "")
                             + "</worksheet>")
    return path


def ingest_one(cli, path: Path, authority: str = "samr", category: str = "penalty") -> dict[str, Any]:
    return run(cli, "ingest", path, "--authority", authority, "--category", category)


def refused(cli, path: Path, category: str = "penalty") -> str:
    """Ingest a file that must be refused whole; its one-line reason."""
    result = cli("ingest", path, "--authority", "samr", "--category", category, "--json", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output and not result.stdout.strip(), result.output
    (line,) = result.stderr.strip().splitlines()
    return line


def stats(cli) -> dict[str, Any]:
    return run(cli, "stats")


def records(cli, **where: Any) -> list[dict[str, Any]]:
    query = select(t.records).order_by(t.records.c.id)
    for column, value in where.items():
        query = query.where(t.records.c[column] == value)
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            return [dict(row) for row in c.execute(query).mappings()]
    finally:
        engine.dispose()


def register(cli, folder: Path, firms: dict[str, str]) -> None:
    path = write_csv(folder / "register.csv", REGISTER,
                     [[code, name, "有限责任公司", "", "2010-03-03", "存续"] for code, name in firms.items()])
    cli("ingest", path, "--authority", "samr", "--category", "registration")


def rejects(cli, batch: int, folder: Path) -> list[dict[str, str]]:
    path = folder / f"rejects-{batch}.csv"
    cli("batch", "rejects", batch, "-o", path)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def links(cli) -> dict[str, tuple[str, int | None, str]]:
    """Each penalty record's link: record key -> (state, entity id, method)."""
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            rows = c.exec_driver_sql(
                "SELECT r.record_key, l.state, l.entity_id, l.method FROM records r "
                "JOIN record_links l ON l.record_id = r.id WHERE r.category = 'penalty'").all()
    finally:
        engine.dispose()
    return {key: (state, entity, method) for key, state, entity, method in rows}


# -- codes a spreadsheet kept as numbers ------------------------------------------------------------------

def test_a_code_a_spreadsheet_kept_as_a_number_is_never_read_as_another_firms_code(cli, tmp_path: Path) -> None:
    """A workbook whose code column was left as numbers (Excel's default for digits) keeps 15 of a
    code's 18 digits: 美团's 911101080000018110 is 9.11101080000018E+17 in the sheet. It was read as
    911101080000018048, which is 京东's valid code: 美团's penalty was stored under 京东's code as a
    verified code, with no warning, and `resolve` put 京东 forward as its one candidate ("code belongs
    to another firm"), for a reviewer to link. Other codes so read failed their check: a register
    row made an entity under a wrong code, warned "fails its check character" (the agency's code was
    fine), and two firms whose codes differ in their last digits became one key ("already appears in
    row 2 with different content"). The same column exported to CSV reads 9.11101080000018E+17. Now
    each such row is quarantined, naming the field and why, and the code is never stored."""
    register(cli, tmp_path, {JD: "北京京东世纪贸易有限公司", XIAOMI: "小米科技有限责任公司"})
    book = workbook(tmp_path / "处罚.xlsx", {"name": "Sheet1", "rows": [
        HEADERS,
        ["北京三快在线科技有限公司", Number("9.11101080000018E+17"), "京市监罚〔2026〕31号", Serial(46086), "罚款", 2],
        ["小米科技有限责任公司", XIAOMI, "京市监罚〔2026〕32号", "2026年3月5日", "罚款", 1.5],
    ]})
    result = ingest_one(cli, book)
    assert (result["accepted"], result["quarantined"]) == (1, 1), result
    (reject,) = rejects(cli, result["batch_id"], tmp_path)
    assert reject["原始行 row"] == "2" and reject["问题字段 field"] == "uscc", reject
    assert "stored by the spreadsheet as a number" in reject["原因 reason"]
    assert "last digits are lost" in reject["原因 reason"]
    assert not records(cli, subject_code=JD, category="penalty")
    run(cli, "resolve")
    (key,) = [k for k in links(cli) if "32号" in k]
    assert links(cli)[key][0] == "linked"  # the row written as text is read as before

    # the same column exported to CSV, and the register kept as numbers: quarantined, no entity made
    exported = write_csv(tmp_path / "处罚.csv", HEADERS, [
        ["北京三快在线科技有限公司", "9.11101080000018E+17", "京市监罚〔2026〕33号", "2026-03-05", "罚款", "2"]])
    result = ingest_one(cli, exported)
    assert (result["accepted"], result["quarantined"]) == (0, 1), result
    assert "9.11101080000018E+17 was stored by the spreadsheet" in rejects(cli, result["batch_id"], tmp_path)[0]["原因 reason"]
    entities = stats(cli)["entities"]
    book = workbook(tmp_path / "登记.xlsx", {"name": "Sheet1", "rows": [
        REGISTER,
        [Number("9.11101080000018E+17"), "北京三快在线科技有限公司", "有限责任公司", "王兴", Serial(39182), "存续"],
        [Number("9.11101080000018E+17"), "北京三快科技有限公司", "有限责任公司", "王兴", Serial(39183), "存续"],
    ]})
    result = ingest_one(cli, book, category="registration")
    assert (result["accepted"], result["quarantined"]) == (0, 2), result
    assert {r["问题字段 field"] for r in rejects(cli, result["batch_id"], tmp_path)} == {"uscc"}
    assert stats(cli)["entities"] == entities


def test_an_id_number_kept_as_a_number_is_quarantined_without_echoing_it(cli, tmp_path: Path) -> None:
    """A court's workbook with the 身份证号码/组织机构代码 column left as numbers: 王建国's ID number
    came back with its last digits changed, read as a person's number failing its check. Now the row
    is quarantined (the reason never repeats the number: it is a person's) and the same records
    posted to `POST /v1/records` with the number as a JSON float are quarantined alike."""
    headers = ["案号", "被执行人姓名/名称", "身份证号码/组织机构代码", "执行法院", "被执行人的履行情况",
               "失信被执行人行为具体情形", "发布时间"]
    book = workbook(tmp_path / "失信.xlsx", {"name": "Sheet1", "rows": [
        headers, ["（2026）粤0305执100号", "王建国", Number("4.40305197503092E+17"), "深圳市南山区人民法院",
                  "全部未履行", "违反限制消费令", Serial(46086)]]})
    result = ingest_one(cli, book, authority="court", category="court_defaulter")
    assert (result["accepted"], result["quarantined"]) == (0, 1), result
    (reject,) = rejects(cli, result["batch_id"], tmp_path)
    assert reject["问题字段 field"] == "person_id" and "last digits are lost" in reject["原因 reason"]
    assert "44030519750309" not in reject["原因 reason"]

    key = json.loads(cli("authority", "key", "create", "court", "--scopes", "submit", "--json").stdout)["key"]
    engine = open_engine(cli.url)
    try:
        with TestClient(create_app(engine, load_pack("cn"))) as http:
            answer = http.post("/v1/records", headers={"X-API-Key": key}, json={"category": "court_defaulter", "records": [
                dict(zip(headers, ["（2026）粤0305执101号", "王建国", 4.40305197503092e17, "深圳市南山区人民法院",
                                   "全部未履行", "违反限制消费令", "2026-03-05"]))]})
    finally:
        engine.dispose()
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["accepted"], body["quarantined"]) == (0, 1), body
    assert body["rejects"][0]["field"] == "person_id" and "last digits are lost" in body["rejects"][0]["reason"]


def test_a_file_refused_for_its_rejects_says_why_they_were_rejected(cli, tmp_path: Path) -> None:
    """A register of 1,000 branches whose code column a spreadsheet kept as numbers has every row
    quarantined, so the file is refused (more than 90 % rejects), and the one line said only "is it
    the right file for this category?": it is, and the agency could not tell what to fix. Now the
    line names the commonest reason, with a row that has it."""
    rows = [[Number(f"9.1110108{n:07d}E+17"), f"小米科技有限责任公司北京第{n}分公司", "分公司", "", Serial(40000), "存续"]
            for n in range(1, 1001)]
    said = refused(cli, workbook(tmp_path / "分公司.xlsx", {"name": "Sheet1", "rows": [REGISTER, *rows]}),
                   category="registration")
    assert "1000 of 1000 rows would be quarantined" in said, said
    assert "The commonest reason: 1000 rows, e.g. row 2: uscc: the code" in said and "last digits are lost" in said
    assert stats(cli)["records"] == 0


# -- where the records are in a workbook -----------------------------------------------------------------

def test_records_on_a_second_sheet_refuse_the_workbook_rather_than_vanish(cli, tmp_path: Path) -> None:
    """A workbook with a sheet a month (1月: 小米, 2月: 格力) was ingested from its first sheet alone:
    "accepted 1", and 格力's penalty was never stored, with no word of it. A hidden sheet of records
    went the same way. Now such a workbook is refused in one line naming the other sheet, and nothing
    is stored; sheets under other headers (instructions, the lists behind a drop-down) are no records
    and do not stop a workbook."""
    xiaomi = ["小米科技有限责任公司", XIAOMI, "京市监罚〔2026〕41号", "2026-01-15", "罚款", "1"]
    gree = ["珠海格力电器股份有限公司", GREE, "珠市监罚〔2026〕42号", "2026-02-10", "罚款", "3"]
    monthly = workbook(tmp_path / "2026年处罚.xlsx", {"name": "1月", "rows": [HEADERS, xiaomi]},
                       {"name": "2月", "rows": [HEADERS, gree]})
    said = refused(cli, monthly)
    assert "2026年处罚.xlsx" in said and "sheet '2月'" in said and "only one sheet" in said, said
    hidden = workbook(tmp_path / "隐藏.xlsx", {"name": "公示", "rows": [HEADERS, xiaomi]},
                      {"name": "未公示", "rows": [HEADERS, gree], "state": "hidden"})
    said = refused(cli, hidden)
    assert "hidden sheet '未公示'" in said, said
    assert stats(cli)["records"] == 0

    with_notes = workbook(tmp_path / "带说明.xlsx", {"name": "数据", "rows": [HEADERS, xiaomi, gree]},
                          {"name": "填表说明", "rows": [["填表说明"], ["1. 金额单位为万元"], ["2. 日期格式为2026-01-01"]]},
                          {"name": "字典", "rows": [["处罚类别"], ["警告"], ["罚款"]], "state": "hidden"})
    result = ingest_one(cli, with_notes)
    assert (result["accepted"], result["quarantined"]) == (2, 0), result


def test_a_hidden_template_sheet_before_the_data_is_not_the_data(cli, tmp_path: Path) -> None:
    """A filing template whose first sheet is a hidden copy of the header (the data on the visible
    sheet after it) was refused "no data rows, only a header": the hidden sheet was read. Now the
    first visible sheet holding anything is the data."""
    book = workbook(tmp_path / "报送.xlsx", {"name": "模板", "rows": [HEADERS], "state": "hidden"},
                    {"name": "Sheet1", "rows": []},
                    {"name": "数据", "rows": [HEADERS, ["北京京东世纪贸易有限公司", uscc("91110302MA00JD012"),
                                                      "京市监罚〔2026〕51号", "2026.3.5", "罚款", "5,000元"]]})
    result = ingest_one(cli, book)
    assert (result["accepted"], result["quarantined"]) == (1, 0), result
    (record,) = records(cli, category="penalty")
    assert record["fields"]["fine_amount"] == 5000 and record["decision_date"] == dt.date(2026, 3, 5)


def test_a_title_above_the_header_and_blank_rows_keep_the_rows_numbers(cli, tmp_path: Path) -> None:
    """Agencies' published sheets carry a title merged across the columns above the header, often
    with a blank row: such a workbook was refused "no recognisable columns (headers: 2026年3月行政处罚
    信息公示, , , ...)", and one whose header stood below blank rows "the first sheet has no header
    row". Now up to three one-cell rows above a header are a title, blank rows are skipped, and a
    quarantined row keeps the number the agency sees in its spreadsheet (the 合计 row at 6, the
    note below it at 7)."""
    book = workbook(tmp_path / "公示.xlsx", {"name": "行政处罚", "merge": ["A1:F1"], "rows": [
        ["2026年3月行政处罚信息公示"],
        [],
        HEADERS,
        ["小米科技有限责任公司", XIAOMI, "京市监罚〔2026〕61号", Serial(46086), "罚款", 1.5],
        ["珠海格力电器股份有限公司", GREE, "珠市监罚〔2026〕62号", "2026-03-32", "罚款", 2],
        ["合计", "", "", "", "", 3.5],
        ["注：金额单位为万元"],
    ]})
    result = ingest_one(cli, book)
    assert (result["rows"], result["accepted"], result["quarantined"]) == (4, 1, 3), result
    reasons = {r["原始行 row"]: r["问题字段 field"] for r in rejects(cli, result["batch_id"], tmp_path)}
    assert reasons == {"5": "decision_date", "6": "decision_no", "7": "decision_no"}, reasons
    (record,) = records(cli, category="penalty")
    assert (record["row_number"], record["decision_date"], record["fields"]["fine_amount"]) == (4, dt.date(2026, 3, 5), 15000)

    below_blanks = workbook(tmp_path / "空行.xlsx", {"name": "Sheet1", "first": 3, "rows": [
        HEADERS, ["珠海格力电器股份有限公司", GREE, "珠市监罚〔2026〕62号", "20260305", "罚款", "2万元"]]})
    result = ingest_one(cli, below_blanks)
    assert (result["accepted"], result["quarantined"]) == (1, 0), result
    assert [r["row_number"] for r in records(cli, subject_code=GREE)] == [4]


def test_a_csv_export_with_its_title_above_the_header_is_read(cli, tmp_path: Path) -> None:
    """The same sheet saved as CSV (or tab-separated text) keeps its title as the first line,
    "2026年3月行政处罚信息公示,,,,," or with no separator at all: it was refused "no recognisable
    columns", and a tab-separated one was split on commas. Now a one-cell first line (a subtitle or a
    blank line below it) above a header is a title, and rows are numbered as the file's lines."""
    xiaomi = ["小米科技有限责任公司", XIAOMI, "京市监罚〔2026〕91号", "2026年3月5日", "罚款", "1,000元"]
    gree = ["珠海格力电器股份有限公司", GREE, "珠市监罚〔2026〕92号", "2026-03-32", "罚款", "2"]
    path = write_csv(tmp_path / "公示.csv", ["2026年3月行政处罚信息公示", "", "", "", "", ""], [[], HEADERS, xiaomi, gree])
    result = ingest_one(cli, path)
    assert (result["accepted"], result["quarantined"]) == (1, 1), result
    assert [(r["原始行 row"], r["问题字段 field"]) for r in rejects(cli, result["batch_id"], tmp_path)] == [
        ("5", "decision_date")]
    (record,) = records(cli, category="penalty")
    assert (record["row_number"], record["fields"]["fine_amount"]) == (4, 1000)

    tabbed = tmp_path / "公示.txt"
    tabbed.write_text("2026年3月行政处罚信息公示\n" + "\n".join("\t".join(line) for line in [
        HEADERS, [*xiaomi[:2], "京市监罚〔2026〕93号", *xiaomi[3:]]]) + "\n", encoding="utf-16")
    result = ingest_one(cli, tabbed)
    assert (result["accepted"], result["quarantined"]) == (1, 0), result


def test_a_header_over_two_merged_rows_is_one_header(cli, tmp_path: Path) -> None:
    """Published penalty sheets group columns under a heading over two rows: 行政处罚决定书 merged
    over 文号 | 罚款金额（万元）, the other headings merged down over both rows. Such a workbook was
    refused "no column for required field(s) decision_no" (the group's heading is no field, and
    the row under it was not read as a header). Now each column is headed by its lowest text, and
    the records are read from the row after the header, with their spreadsheet row numbers."""
    pingan = uscc("91310000MA1FP0033")
    book = workbook(tmp_path / "双表头.xlsx", {"name": "公示", "rows": [
        ["上海市市场监督管理局行政处罚信息公示（2026年3月）"],
        ["序号", "当事人名称", "统一社会信用代码", "行政处罚决定书", "", "处罚决定日期", "处罚类别"],
        ["", "", "", "文号", "罚款金额（万元）", "", ""],
        [1, "中国平安财产保险股份有限公司", pingan, "沪市监罚〔2026〕71号", 3, Serial(46086), "罚款"],
        [2, "小米科技有限责任公司", XIAOMI, "沪市监罚〔2026〕72号", "", "2026-03-06", "警告"],
    ], "merge": ["A1:G1", "A2:A3", "B2:B3", "C2:C3", "D2:E2", "F2:F3", "G2:G3"]})
    result = ingest_one(cli, book)
    assert (result["rows"], result["accepted"], result["quarantined"]) == (2, 2, 0), result
    stored = {r["subject_code"]: r for r in records(cli, category="penalty")}
    assert (stored[pingan]["row_number"], stored[pingan]["fields"]["fine_amount"]) == (4, 30000)
    assert stored[XIAOMI]["row_number"] == 5 and stored[XIAOMI]["fields"]["decision_no"] == "沪市监罚〔2026〕72号"
    assert stored[pingan]["extras"] == {"序号": "1"}


def test_a_formula_that_failed_is_never_read_as_an_empty_cell_or_a_name(cli, tmp_path: Path) -> None:
    """Agencies fill names, codes and amounts by formulas (a VLOOKUP into the register, a fine worked
    out in 万元). A formula that failed is an error cell: the spreadsheet reader gave it as empty, so
    格力's penalty with 罚款金额 #DIV/0! was stored without its fine and 美团's with 处罚类别 #REF! without
    its type, silently. In the CSV export the error is text: a row whose name lookup failed made a
    firm named "#N/A" with a penalty, and 小米's code "#N/A" was kept as its code. Now the row is
    quarantined, naming the field and the error, from the workbook and from its CSV export alike."""
    book = workbook(tmp_path / "公式.xlsx", {"name": "Sheet1", "rows": [
        HEADERS,
        ["珠海格力电器股份有限公司", GREE, "珠市监罚〔2026〕81号", "2026-03-05", "罚款", Failed("#DIV/0!")],
        ["北京三快在线科技有限公司", MEITUAN, "京市监罚〔2026〕82号", "2026-03-05", Failed("#REF!"), 2],
        [Failed("#N/A"), Failed("#N/A"), "京市监罚〔2026〕83号", "2026-03-05", "罚款", 1],
        ["小米科技有限责任公司", XIAOMI, "京市监罚〔2026〕84号", "2026-03-05", "罚款", 1],
    ]})
    result = ingest_one(cli, book)
    assert (result["accepted"], result["quarantined"]) == (1, 3), result
    found = {(r["原始行 row"], r["问题字段 field"]) for r in rejects(cli, result["batch_id"], tmp_path)}
    assert found == {("2", "fine_amount"), ("3", "penalty_type"), ("4", "subject_name")}, found
    assert all("error of a spreadsheet formula" in r["原因 reason"] for r in rejects(cli, result["batch_id"], tmp_path))

    exported = write_csv(tmp_path / "公式.csv", HEADERS, [
        ["#N/A", "", "京市监罚〔2026〕85号", "2026-03-05", "罚款", "1"],
        ["小米科技有限责任公司", "#N/A", "京市监罚〔2026〕86号", "2026-03-05", "罚款", "1"]])
    result = ingest_one(cli, exported)
    assert (result["accepted"], result["quarantined"]) == (0, 2), result
    assert [r["问题字段 field"] for r in rejects(cli, result["batch_id"], tmp_path)] == ["subject_name", "uscc"]
    run(cli, "resolve")
    assert not [r for r in records(cli) if r["subject_name"] == "#N/A" or r["subject_code"] == "#N/A"]


def test_a_hidden_row_is_kept_in_quarantine_never_published_unsaid(cli, tmp_path: Path) -> None:
    """An officer hides a row rather than delete it (京东's decision withdrawn before publication; or
    last month's rows filtered out of view). The spreadsheet reader reads hidden rows like any
    other: the withdrawn decision was stored and published, with no word. Now a hidden row is
    quarantined with its reason (unhide it to send it) and its cells in their columns of the rejects
    file, and the visible rows are stored."""
    book = workbook(tmp_path / "3月.xlsx", {"name": "Sheet1", "hidden": {3}, "rows": [
        HEADERS,
        ["小米科技有限责任公司", XIAOMI, "京市监罚〔2026〕101号", "2026-03-05", "罚款", "1"],
        ["北京京东世纪贸易有限公司", uscc("91110302MA00JD012"), "京市监罚〔2026〕102号", "2026-03-05", "罚款", "2"],
        ["珠海格力电器股份有限公司", GREE, "珠市监罚〔2026〕103号", "2026-03-05", "罚款", "3"],
    ]})
    result = ingest_one(cli, book)
    assert (result["accepted"], result["quarantined"]) == (2, 1), result
    (reject,) = rejects(cli, result["batch_id"], tmp_path)
    assert reject["原始行 row"] == "3" and "hidden in the spreadsheet" in reject["原因 reason"], reject
    assert (reject["当事人名称"], reject["罚款金额（万元）"]) == ("北京京东世纪贸易有限公司", "2"), reject  # its columns, to send again
    assert sorted(r["subject_code"] for r in records(cli, category="penalty")) == sorted([XIAOMI, GREE])
