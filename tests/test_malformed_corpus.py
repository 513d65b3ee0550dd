"""The malformed-input corpus: every file an agency (or an attacker) might send, with what must happen.

Each file is made at test time in a temporary folder (zip bombs and million-row sheets are never
committed) and ingested by `xinyong ingest` in a child process, as an operator would run it. Each
case names its expected outcome: a one-line refusal (a fragment of it), or rows stored and rows
quarantined with a reason. The child's peak memory (its own high-water RSS since exec) must stay
under 512 MB for every file of the corpus.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from worlds import uscc

PEAK_RSS_BOUND = 512 * 1024 * 1024
FIRM = uscc("91110000MA01CP001")
OTHER = uscc("91310000MA1CP0002")
HEADERS = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"]


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], Path]
    refused: str | None = None  # a fragment of the one-line refusal
    accepted: int | None = None
    quarantined: int = 0
    reason: str | None = None  # a fragment of every quarantine reason


def row(case: str, n: int, *, name: str = "北京某某科技有限公司", code: str = FIRM, day: str = "2024-03-05",
        kind: str = "罚款", amount: str = "1.5") -> list[str]:
    return [name, code, f"京市监罚〔2024〕{case}-{n}号", day, kind, amount]


def csv_text(rows: list[list[str]], headers: list[str] = HEADERS, sep: str = ",", newline: str = "\n") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=sep, lineterminator=newline).writerows([headers, *rows])
    return out.getvalue()


def write(name: str, data: bytes | str, encoding: str = "utf-8") -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
        return path
    return make


def good(case: str, n: int = 2) -> list[list[str]]:
    return [row(case, i) for i in range(n)]


# -- workbooks, written part by part (a sheet streams straight into the zip) ---------------------------

_PARTS = {
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml"'
    ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName='
    '"/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet'
    '+xml"/></Types>',
    "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
    'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
    'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
    '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
    'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
}
SHEET_HEAD = (b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
              b'spreadsheetml/2006/main">')


def xml_row(cells: list[object]) -> bytes:
    parts = []
    for value in cells:
        if isinstance(value, bytes):
            parts.append(value.decode())  # a raw cell: a formula
        elif isinstance(value, (int, float)):
            parts.append(f"<c><v>{value}</v></c>")
        else:
            parts.append(f'<c t="inlineStr"><is><t>{escape(str(value))}</t></is></c>')
    return f"<row>{''.join(parts)}</row>".encode()


def workbook(name: str, rows: Callable[[], object] | list[list[object]], *, dimension: str | None = None,
             level: int = 6, zip64: bool = True) -> Callable[[Path], Path]:
    """`rows`: the rows, or a function giving byte blocks of <sheetData> (for the big ones)."""
    def make(folder: Path) -> Path:
        path = folder / name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
            for part, text in _PARTS.items():
                archive.writestr(part, text)
            with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=zip64) as sheet:
                sheet.write(SHEET_HEAD + (f'<dimension ref="{dimension}"/>'.encode() if dimension else b""))
                sheet.write(b"<sheetData>")
                blocks = rows() if callable(rows) else (xml_row(r) for r in rows)
                for block in blocks:
                    sheet.write(block)
                sheet.write(b"</sheetData></worksheet>")
        return path
    return make


def repeated(header: list[object], one: bytes, count: int, spare: bytes = b"") -> Callable[[], object]:
    def blocks():
        yield xml_row(header)
        per_block = max(1, (1 << 20) // len(one))  # blocks of about 1 MB: the test process stays small
        batch = one * per_block
        for _ in range(count // per_block):
            yield batch
        yield one * (count % per_block)
        if spare:
            yield spare
    return blocks


def lying_directory(name: str, inflated_mb: int) -> Callable[[Path], Path]:
    """A workbook whose sheet inflates to `inflated_mb` MB while its zip directory says 1 KB."""
    def make(folder: Path) -> Path:
        path = workbook(name, repeated(HEADERS, b"<row>" + b" " * 1019, inflated_mb * 1024), level=1,
                        zip64=False)(folder)
        data = bytearray(path.read_bytes())
        with zipfile.ZipFile(path) as archive:
            member = archive.getinfo("xl/worksheets/sheet1.xml")
        name_bytes = member.filename.encode()
        at = data.find(b"PK\x01\x02")  # central directory entries: the size at +24, the name at +46
        while at >= 0:
            length = int.from_bytes(data[at + 28:at + 30], "little")
            if bytes(data[at + 46:at + 46 + length]) == name_bytes:
                assert int.from_bytes(data[at + 24:at + 28], "little") == member.file_size
                data[at + 24:at + 28] = (1024).to_bytes(4, "little")
            at = data.find(b"PK\x01\x02", at + 4)
        path.write_bytes(bytes(data))
        with zipfile.ZipFile(path) as archive:
            assert archive.getinfo("xl/worksheets/sheet1.xml").file_size == 1024
        return path
    return make


def truncated(name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = workbook(name, [HEADERS, *good("trunc", 50)])(folder)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path
    return make


def special(kind: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        if kind == "directory":
            path = folder / "a-folder.csv"
            path.mkdir()
        elif kind == "fifo":
            path = folder / "a-pipe.csv"
            os.mkfifo(path)
        elif kind == "missing":
            path = folder / "nowhere.csv"
        else:
            path = Path("/dev/zero")
        return path
    return make


def mostly_bad(case: str, total: int, bad: int) -> str:
    rows = [row(case, i, amount="abc" if i < bad else "2") for i in range(total)]
    return csv_text(rows)


def jsonl(lines: list[object]) -> str:
    return "".join((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n" for line in lines)


def record(case: str, n: int, **extra: object) -> dict[str, object]:
    return {**dict(zip(HEADERS, row(case, n))), **extra}


BIG_CELL = "违" * 140_000

CASES = [
    # -- CSV: encodings, BOMs, line endings, delimiters
    Case("csv-utf8", write("utf8.csv", csv_text(good("utf8"))), accepted=2),
    Case("csv-utf8-bom", write("bom.csv", "\ufeff" + csv_text(good("bom"))), accepted=2),
    Case("csv-gb18030", write("gbk.csv", csv_text(good("gbk")), "gb18030"), accepted=2),
    Case("csv-utf16", write("utf16.csv", codecs.BOM_UTF16_LE + csv_text(good("u16")).encode("utf-16-le")),
         accepted=2),
    Case("csv-utf16-be-tabs", write("utf16be.txt", codecs.BOM_UTF16_BE
                                     + csv_text(good("u16be")).replace(",", "\t").encode("utf-16-be")), accepted=2),
    Case("csv-utf32", write("utf32.csv", codecs.BOM_UTF32_LE + csv_text(good("u32")).encode("utf-32-le")),
         refused="binary content"),
    Case("csv-undecodable", write("latin.csv", csv_text(good("lat")).encode() + b"\xff\xfe\xfd,\x80\x81\n"),
         refused="neither UTF-8 nor GB18030"),
    Case("csv-mixed-line-endings", write("mixed.csv", "".join(
        ",".join(r) + end for r, end in zip([HEADERS, *good("mix", 3)], ("\r\n", "\n", "\r\n", "\n")))), accepted=3),
    Case("csv-crlf", write("crlf.csv", csv_text(good("crlf"), newline="\r\n")), accepted=2),
    Case("csv-semicolon", write("semi.csv", csv_text(good("semi"), sep=";")), accepted=2),
    Case("tsv-tabs", write("tabs.tsv", csv_text(good("tab"), sep="\t")), accepted=2),
    Case("csv-quoted-newline", write("qnl.csv", csv_text([row("qnl", 0, name="北京某某\n科技有限公司")])), accepted=1),
    # -- CSV: empty, header-only, headers
    Case("csv-empty", write("empty.csv", b""), refused="the file is empty"),
    Case("csv-header-only", write("header.csv", csv_text([])), refused="only a header"),
    Case("csv-header-and-blank-lines", write("blank.csv", csv_text([]) + "\n,,,,,\n\n"), refused="only a header"),
    Case("csv-first-line-blank", write("first.csv", ",,,\n" + csv_text(good("first"))),
         refused="first line is blank"),
    Case("csv-duplicate-headers", write("dup.csv", csv_text(good("dup"), headers=HEADERS[:5] + ["处罚类别"])),
         refused="duplicate headers '处罚类别'"),
    Case("csv-duplicate-headers-width", write("dupw.csv", csv_text(
        [r + ["x"] for r in good("dupw")], headers=HEADERS + ["当事人名称 "])), refused="duplicate headers"),
    Case("csv-no-known-columns", write("alien.csv", "foo,bar\n1,2\n"), refused="no recognisable columns"),
    Case("csv-required-column-missing", write("noreq.csv", csv_text(
        [r[:2] + r[3:] for r in good("noreq")], headers=HEADERS[:2] + HEADERS[3:])), refused="required field"),
    # -- CSV: NUL, giant cells, control characters, formulas
    Case("csv-nul-in-sample", write("nul.csv", csv_text(good("nul")).replace("罚款", "罚\x00款", 1)),
         refused="binary content"),
    Case("csv-nul-after-sample", write("nul2.csv", csv_text(good("nul2", 25000)) + ",".join(row("nul2", 9999))
                                       .replace("罚款", "罚\x00款") + "\n"), accepted=25000, quarantined=1, reason="NUL"),
    Case("csv-giant-cell", write("giant.csv", csv_text([row("giant", 0, name=BIG_CELL)])),
         refused="longer than 131072 characters"),
    Case("csv-control-characters", write("ctrl.csv", csv_text([row("ctrl", 0, name="北京\x1b[31m某某\x07有限公司\x1b]0;x\x07")])),
         accepted=1),
    Case("csv-formula-cells", write("formula.csv", csv_text([row("formula", 0, name='=HYPERLINK("http://x","y")'),
                                                             row("formula", 1, name="@SUM(A1)"),
                                                             row("formula", 2, name="+cmd|' /C calc'!A0")])),
         accepted=3),
    Case("csv-unquoted-separator", write("shift.csv", csv_text(good("shift", 1)) + ",".join(row("shift", 7))
                                         + ",extra,cells\n"), accepted=1, quarantined=1, reason="cells but"),
    Case("csv-unclosed-quote", write("quote.csv", csv_text(good("quote", 1)) + '"北京某某,' + ",".join(row("quote", 5)[1:])),
         accepted=1, quarantined=1, reason="required field"),
    # -- values: wrong types, implausible values
    Case("csv-amount-not-number", write("nan.csv", csv_text([row("nan", 0, amount="abc"), *good("nan2", 1)])),
         accepted=1, quarantined=1, reason="not a number"),
    Case("csv-amount-1e29", write("e29.csv", csv_text([row("e29", 0, amount="1e29"), *good("e29b", 1)])),
         accepted=1, quarantined=1, reason="implausible"),
    Case("csv-amount-overflow", write("inf.csv", csv_text([row("inf", 0, amount="1e400")])),
         accepted=0, quarantined=1, reason="not a number"),
    Case("csv-amount-negative", write("neg.csv", csv_text([row("neg", 0, amount="-5")])),
         accepted=0, quarantined=1, reason="negative"),
    Case("csv-amount-separators", write("sep.csv", csv_text([row("sep", 0, amount="1,5")])),
         accepted=0, quarantined=1, reason="thousands separators"),
    Case("csv-date-2099", write("2099.csv", csv_text([row("2099", 0, day="2099-01-01"), *good("2099b", 1)])),
         accepted=1, quarantined=1, reason="later than"),
    Case("csv-date-impossible", write("feb30.csv", csv_text([row("feb30", 0, day="2024-02-30")])),
         accepted=0, quarantined=1, reason="impossible date"),
    Case("csv-date-year-1800", write("1800.csv", csv_text([row("1800", 0, day="1800-01-01")])),
         accepted=0, quarantined=1, reason="implausible year"),
    Case("csv-date-words", write("words.csv", csv_text([row("words", 0, day="去年三月")])),
         accepted=0, quarantined=1, reason="unreadable date"),
    Case("csv-required-empty", write("reqempty.csv", csv_text([row("req", 0, day="")])),
         accepted=0, quarantined=1, reason="required field"),
    Case("csv-no-subject", write("nosub.csv", csv_text([row("nosub", 0, name="", code="")])),
         accepted=0, quarantined=1, reason="neither a subject name"),
    Case("csv-duplicate-key-conflict", write("conflict.csv", csv_text([row("conf", 0), row("conf", 0, amount="9")])),
         accepted=1, quarantined=1, reason="already appears"),
    Case("csv-share-refused", write("share.csv", mostly_bad("share", 1000, 950)), refused="more than 90%"),
    Case("csv-share-kept-half", write("half.csv", mostly_bad("half", 1000, 500)),
         accepted=500, quarantined=500, reason="not a number"),
    Case("csv-share-small-file", write("small.csv", mostly_bad("smallf", 999, 999)),
         accepted=0, quarantined=999, reason="not a number"),
    # -- not files, wrong types of file
    Case("unsupported-extension", write("report.pdf", b"%PDF-1.4"), refused="unsupported file type"),
    Case("directory", special("directory"), refused="is a directory"),
    Case("fifo", special("fifo"), refused="named pipe (FIFO)"),
    Case("dev-zero", special("dev-zero"), refused="is a device"),
    Case("missing-file", special("missing"), refused="no such file"),
    # -- XLSX
    Case("xlsx-good", workbook("good.xlsx", [HEADERS, *good("xgood")]), accepted=2),
    Case("xlsx-numbers-and-serial-dates", workbook("serial.xlsx", [
        HEADERS, ["北京某某科技有限公司", FIRM, "京市监罚〔2024〕serial号", 45356, "罚款", 1.5]]), accepted=1),
    Case("xlsx-formula-cell", workbook("f.xlsx", [HEADERS, [
        "北京某某科技有限公司", FIRM, "京市监罚〔2024〕fx号", "2024-03-05", "罚款",
        b"<c><f>1+0.5</f><v>1.5</v></c>"]]), accepted=1),
    Case("xlsx-not-a-zip", write("fake.xlsx", csv_text(good("fake"))), refused="not a workbook"),
    Case("xlsx-truncated", truncated("cut.xlsx"), refused="unreadable or truncated workbook"),
    Case("xlsx-header-only", workbook("hdr.xlsx", [HEADERS]), refused="only a header"),
    Case("xlsx-empty-sheet", workbook("nothing.xlsx", []), refused="no header row"),
    Case("xlsx-duplicate-headers", workbook("dup.xlsx", [HEADERS + ["处罚类别"], *[r + ["x"] for r in good("xdup")]]),
         refused="duplicate headers"),
    Case("xlsx-giant-cell", workbook("giant.xlsx", [HEADERS, row("xgiant", 0, name=BIG_CELL), *good("xgiant2", 1)]),
         accepted=1, quarantined=1, reason="longer than 131072"),
    Case("xlsx-bad-values", workbook("bad.xlsx", [HEADERS, row("xbad", 0, amount="1e29"), row("xbad", 1, day="2099-12-31")]),
         accepted=0, quarantined=2, reason="implausible"),
    Case("xlsx-zip-bomb", workbook("bomb.xlsx", repeated(HEADERS, b" " * 1024 * 1024, 260), level=9),
         refused="uncompressed, above the limit"),
    Case("xlsx-lying-zip-directory", lying_directory("liar.xlsx", 260), refused="inflates to more than the limit"),
    Case("xlsx-million-rows", workbook("million.xlsx", repeated(HEADERS, b'<row><c t="inlineStr"><is><t>x</t></is></c></row>',
                                                                1_000_001), dimension="A1:F1000002", level=1),
         refused="more than 1000000 rows"),
    Case("xlsx-million-rows-lying-dimension", workbook("dim.xlsx", repeated(HEADERS, b"<row><c><v>1</v></c></row>",
                                                                            1_000_100), dimension="A1:F3", level=1),
         refused="more than 1000000 rows"),
    Case("xlsx-too-many-cells", workbook("cells.xlsx", repeated(HEADERS, b"<row>" + b"<c><v>1</v></c>" * 20 + b"</row>",
                                                                320_000), level=1), refused="cells"),
    # -- JSON Lines
    Case("jsonl-good", write("good.jsonl", jsonl([record("jgood", 0), record("jgood", 1)])), accepted=2),
    Case("jsonl-bom", write("bom.jsonl", "\ufeff" + jsonl([record("jbom", 0)])), accepted=1),
    Case("jsonl-first-line-not-object", write("arr.jsonl", jsonl([[1, 2], record("jarr", 0)])),
         refused="not a JSON object"),
    Case("jsonl-broken-line", write("broken.jsonl", jsonl([record("jbr", 0), '{"当事人名称": "x", ', record("jbr", 1)])),
         accepted=2, quarantined=1, reason="not valid JSON"),
    Case("jsonl-array-line", write("arrline.jsonl", jsonl([record("jal", 0), [1, 2, 3]])),
         accepted=1, quarantined=1, reason="not a JSON object"),
    Case("jsonl-new-key-every-record", write("keys.jsonl", jsonl([record("jkeys", i, **{f"k{i}": i}) for i in range(400)])),
         accepted=194, quarantined=206, reason="beyond the 200 distinct keys"),
    Case("jsonl-nul-in-field", write("nul.jsonl", jsonl([record("jnul", 0, 当事人名称="北京\u0000某某")])),
         accepted=0, quarantined=1, reason="NUL"),
    Case("jsonl-nul-in-unknown-key", write("nulx.jsonl", jsonl([record("jnulx", 0, 备忘="a\u0000b")])),
         accepted=0, quarantined=1, reason="NUL"),
    Case("jsonl-huge-integer", write("bigint.jsonl", jsonl([
        '{"当事人名称": "北京某某科技有限公司", "统一社会信用代码": "%s", "行政处罚决定书文号": "京罚big号", '
        '"处罚决定日期": "2024-03-05", "罚款金额（万元）": 123456789012345678901234567890}' % FIRM])),
         accepted=0, quarantined=1, reason="implausible"),
    Case("jsonl-nested-values", write("nested.jsonl", jsonl([record("jnest", 0, 附加={"a": [1, 2]})])), accepted=1),
    Case("jsonl-wrong-types", write("types.jsonl", jsonl([record("jtypes", 0, 处罚决定日期=True)])),
         accepted=0, quarantined=1, reason="date"),
]


def test_the_corpus_has_at_least_50_files() -> None:
    assert len(CASES) >= 50
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("corpus-store")
    url = f"sqlite:///{folder / 'corpus.db'}"
    subprocess.run([sys.executable, "-m", "xinyong", "--db", url, "init"], check=True, capture_output=True,
                   env=_environment(folder))
    return url


def _environment(folder: Path) -> dict[str, str]:
    limits = {k: v for k, v in os.environ.items() if not k.startswith("XINYONG_MAX")}  # the defaults are tested
    root = str(Path(__file__).resolve().parents[1])
    return {**limits, "PYTHONPATH": os.pathsep.join([root, limits.get("PYTHONPATH", "")]), "COLUMNS": "400"}


# Runs the CLI, then writes its own peak RSS (VmHWM: of this program since exec) to the file named
# first. The child's rusage would not do: `ru_maxrss` keeps the size of the test worker it was
# forked from, however small the program it became.
PEAK_WRAPPER = """
import atexit, sys
peak_file = sys.argv.pop(1)

def write_peak():
    with open('/proc/self/status') as status:
        kib = next(line.split()[1] for line in status if line.startswith('VmHWM:'))
    with open(peak_file, 'w') as out:
        out.write(kib)

atexit.register(write_peak)
from xinyong.cli import run
sys.argv[0] = 'xinyong'
run()
"""


def ingest(url: str, path: Path, folder: Path) -> tuple[int, str, str, int]:
    """Run `xinyong ingest` in a child; (exit status, stdout, stderr, its own peak RSS in bytes)."""
    out, err, peak = folder / "stdout", folder / "stderr", folder / "peak-kib"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        done = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, str(peak), "--db", url, "ingest", str(path),
                               "--authority", "samr", "--category", "penalty", "--json"],
                              stdout=stdout, stderr=stderr, env=_environment(folder))
    return done.returncode, out.read_text(), err.read_text(), int(peak.read_text()) * 1024


SLOW = {"xlsx-lying-zip-directory"}  # ~12 s on a loaded 2-core machine: inflating 260 MB to find the lie


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c.name in SLOW else c for c in CASES],
                         ids=[c.name for c in CASES])
def test_corpus_file(case: Case, store: str, tmp_path: Path) -> None:
    path = case.make(tmp_path)
    if path.is_file():
        assert path.stat().st_size < 50 * 1024 * 1024, "corpus files stay small on disk"
    status, stdout, stderr, peak = ingest(store, path, tmp_path)
    assert peak < PEAK_RSS_BOUND, f"{case.name}: peak RSS {peak / 2**20:.0f} MB"
    if case.refused is not None:
        assert status == 1, (status, stdout, stderr)
        message = " ".join(stderr.split())
        assert "refused:" in message and case.refused in message, message
        assert "Traceback" not in stderr
        assert len(stderr.strip().splitlines()) == 1, stderr  # one line
        return
    assert status == 0, (stdout, stderr)
    result = json.loads(stdout)
    assert result["duplicate_of"] is None, "each corpus file has its own content"
    assert (result["accepted"], result["quarantined"]) == (case.accepted, case.quarantined), result
    with sqlite3.connect(store.removeprefix("sqlite:///")) as db:
        reasons = [r for (r,) in db.execute("SELECT reason FROM quarantine WHERE batch_id = ?", (result["batch_id"],))]
    assert len(reasons) == case.quarantined
    assert all(case.reason in r for r in reasons), reasons[:3]
