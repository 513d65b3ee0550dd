"""Intake from real agencies' spreadsheets and API posts, probed as their exports really come:
workbooks written the way a spreadsheet writes them (a code column left as numbers, a title above
the header, a hidden template sheet, a sheet a month), with real public firm names and codes whose
check characters are computed. Each test is a defect found and fixed (on SQLite and PostgreSQL).

openpyxl is not in every environment the suite runs in: the workbooks are written part by part here.
"""

from __future__ import annotations

import csv
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
    `merge` (ranges such as A1:F1) and `state` ("hidden")."""
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
            rows = "".join(f'<row r="{n}">' + "".join(_cell(f"{_column(c)}{n}", v) for c, v in enumerate(row)) + "</row>"
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
