"""The column-wise fast path gives exactly what the row-wise validator gives.

`services.intake.ingest.validated_chunks` validates each chunk column-wise (`domain.columnar`) and
sends the rows its fast path cannot decide to `RowValidator.validate`. Here every file of the
test corpus (the malformed-input corpus of test_malformed_corpus.py: CSV in UTF-8, BOM,
GB18030, TSV, XLSX, JSON Lines; the independent evaluation set in bench/evalset/data: UTF-8
and GB18030 registers and penalty files of three authorities; and a file of awkward values
written here) is read twice: through `validated_chunks`, and through the row-wise loop as it
was on main before the fast path (below, verbatim but for the loop's own names). Accepted rows
(every column the store gets), rejected rows, their fields, reasons, reason codes and
parameters must be identical, row for row.
"""

from __future__ import annotations

import csv
import io
import random
from itertools import islice
from pathlib import Path

import orjson
import pytest

from test_malformed_corpus import CASES, HEADERS, FIRM, OTHER
from worlds import uscc
from xinyong.domain.calendar import pack_today
from xinyong.domain.pack import load_pack
from xinyong.domain.records import FileRefused, Rejection, RowValidator, map_columns
from xinyong.services.intake.ingest import CHUNK, Accepted, Rejected, raw_row, validated_chunks
from xinyong.services.intake.readers import RowError, open_table

EVALSET = Path(__file__).resolve().parent.parent / "bench" / "evalset" / "data"


def rowwise_chunks(pack, category, authority, table, mapping, today):
    """The row-wise loop of main before the fast path: every row through RowValidator.validate."""
    spec = pack.category(category)
    validator = RowValidator(pack, spec, authority, map_columns(pack, spec, table.headers, mapping), today)
    rows = iter(table.rows)
    dumps = orjson.dumps
    while chunk := list(islice(rows, CHUNK)):
        if len(table.headers) != len(validator.mapping.headers):
            validator = RowValidator(pack, spec, authority, map_columns(pack, spec, table.headers, mapping), today)
        headers = validator.mapping.headers
        accepted, rejected = [], []
        for number, cells in chunk:
            if isinstance(cells, RowError):
                rejected.append(Rejected(number, None, cells.reason, dumps({"line": cells.raw}).decode(),
                                         "unreadable_line", dumps({"text": cells.reason}).decode()))
                continue
            r = validator.validate(cells)
            if isinstance(r, Rejection):
                rejected.append(Rejected(number, r.field, r.reason, raw_row(headers, cells), r.code,
                                         dumps(r.params).decode()))
                continue
            accepted.append(Accepted(
                number, r.record_key, r.natural_key, r.content_hash, r.subject_name, r.subject_kind,
                r.subject_code, r.subject_scheme, r.subject_code_verified, r.decision_date,
                dumps(r.fields).decode(), dumps(r.extras).decode(), dumps(r.warnings).decode(),
                len(r.warnings), dumps(r.notes).decode(), len(r.notes), dumps(r.fields, option=orjson.OPT_SORT_KEYS),
                cells))
        yield list(table.headers), validator.mapping.as_dict(), accepted, rejected


def _run(chunks):
    try:
        return [(h, m, a, r) for h, m, a, r in chunks], None
    except FileRefused as exc:
        return None, str(exc)


def compare(path: Path, category: str, authority: str) -> tuple[int, int]:
    """Both paths over one file; (rows accepted, rows the fast path decided)."""
    pack = load_pack("cn")
    today = pack_today(pack)
    try:
        open_table(path)
    except FileRefused:
        return 0, 0
    expected, expected_error = _run(rowwise_chunks(pack, category, authority, open_table(path), None, today))
    actual, actual_error = _run(validated_chunks(pack, category, authority, open_table(path), None, today))
    assert actual_error == expected_error
    if expected is None:
        return 0, 0
    assert len(actual) == len(expected)
    accepted = 0
    for (h1, m1, a1, r1), (h2, m2, a2, r2) in zip(actual, expected):
        assert (h1, m1) == (h2, m2)
        assert r1 == r2, f"{path.name}: rejects differ"
        for got, want in zip(a1, a2, strict=True):
            assert got == want, f"{path.name} row {want.number}:\n fast {got}\n rows {want}"
        accepted += len(a2)
    # how many rows the fast path decided (the rest went through the row validator)
    spec = pack.category(category)
    table = open_table(path)
    from xinyong.domain.columnar import ColumnValidator
    validator = RowValidator(pack, spec, authority, map_columns(pack, spec, table.headers, None), today)
    rows = [cells for _, cells in table.rows if not isinstance(cells, RowError)]
    fast = 0
    if len(table.headers) == len(validator.mapping.headers):
        fast = sum(r is not None for r in ColumnValidator(validator).fast(rows[:CHUNK]))
    return accepted, fast


SMALL_CASES = [c for c in CASES if c.refused is None and "million" not in c.name and "share" not in c.name]


@pytest.mark.parametrize("case", SMALL_CASES, ids=[c.name for c in SMALL_CASES])
def test_corpus_file_same_on_both_paths(case, tmp_path: Path) -> None:
    compare(case.make(tmp_path), "penalty", "samr")


def test_mostly_bad_files_same_on_both_paths(tmp_path: Path) -> None:
    for case in CASES:
        if "share" in case.name:
            compare(case.make(tmp_path), "penalty", "samr")


EVALSET_FILES = [("register_utf8.csv", "registration", "samr"), ("register_gb18030.csv", "registration", "samr"),
                 ("penalties_samr.csv", "penalty", "samr"), ("penalties_env.csv", "penalty", "env"),
                 ("penalties_tax.csv", "penalty", "tax"), ("listing_penalties.csv", "penalty", "samr")]


@pytest.mark.parametrize("name,category,authority", EVALSET_FILES, ids=[f[0] for f in EVALSET_FILES])
def test_evaluation_set_same_on_both_paths(name: str, category: str, authority: str) -> None:
    accepted, fast = compare(EVALSET / name, category, authority)
    assert accepted > 0 and fast > 0


# -- a file of awkward values: every form the fast path must leave to the row validator --------------

NAMES = ["北京某某科技有限公司", "上海（浦东）某某贸易有限公司", "上海(浦东)某某贸易有限公司", "张三", "阿依古丽·买买提",
         "吴九110101199003071234", "王五 11010119900307123X", " 北京某某科技有限公司", "北京某某科技有限公司\u3000",
         "ＡＢＣ科技有限公司", 'A"B科技有限公司', "A\\B科技有限公司", "某某个体工商户2", "", "李四有限公司",
         "北京某某\n科技有限公司", "深圳市某某电子有限公司分公司", "Acme Trading Co., Ltd."]
CODES = [FIRM, OTHER, FIRM.lower(), FIRM[:-1] + ("0" if FIRM[-1] != "0" else "1"), "", "110101199003071234",
         "110101900307123", "91110000 MA01CP001" + FIRM[-1], "12345678-9", "ＡＢＣ", uscc("91440300MA5DC0001"),
         uscc("12100000400000001"), "91110000MA01CP00I" + "X"]
DAYS = ["2024-03-05", "2024-3-5", "2024/03/05", "2024年3月5日", "20240305", "2024-02-30", "1899-12-31",
        "2099-01-01", "2023-12-31 10:00", "", " 2024-03-05", "２０２４-03-05", "2024-02-29", "2100-12-31"]
AMOUNTS = ["1.5", "0", "0.01", "12", "0012.50", "1,234.5", "1,5", "12万元", "3元", "-5", "1e3", "abc", "",
           "123456789012.34", "9999999999999", "99999999999.99", "5.", ".5", "1.234", " 7", "0.005", "1 234"]
KINDS = ["罚款", "警告", "罚款；没收违法所得", "", "通报批评"]


def awkward_rows(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)

    def pick(pool: list[str]) -> str:  # the plain form (first) more often than not
        return pool[0] if rng.random() < 0.6 else rng.choice(pool)
    rows = []
    for n in range(count):
        rows.append([pick(NAMES), pick(CODES), f"京市监罚〔2024〕aw-{n % (count - 5)}号",
                     pick(DAYS), pick(KINDS), pick(AMOUNTS), pick(["", "备注", 'a"b', "x\ty"])])
    return rows


def test_awkward_values_same_on_both_paths(tmp_path: Path) -> None:
    path = tmp_path / "awkward.csv"
    out = io.StringIO()
    csv.writer(out).writerows([HEADERS + ["内部备注"], *awkward_rows(3000, 20261204)])
    path.write_text(out.getvalue(), encoding="utf-8")
    accepted, fast = compare(path, "penalty", "samr")
    assert accepted > 100 and fast > 50  # both paths were exercised


def test_awkward_values_in_a_court_category_and_a_workbook(tmp_path: Path) -> None:
    """court_defaulter keys include the subject; a workbook brings numbers and dates as cells."""
    from test_malformed_corpus import workbook
    headers = ["被执行人姓名/名称", "统一社会信用代码", "案号", "发布时间", "法定代表人或者负责人姓名"]
    rows = [[r[0], r[1], f"（2024）京01执{n % 50}号", r[3], "张三"] for n, r in enumerate(awkward_rows(600, 7))]
    path = tmp_path / "court.csv"
    out = io.StringIO()
    csv.writer(out).writerows([headers, *rows])
    path.write_text(out.getvalue(), encoding="utf-8")
    compare(path, "court_defaulter", "court")
    cells = [[r[0], r[1], r[2], 45356 if n % 3 == 0 else r[3], "罚款", 1.5 if n % 2 else r[5]]
             for n, r in enumerate(awkward_rows(300, 11))]
    book = workbook("awk.xlsx", [HEADERS, *cells])(tmp_path)
    compare(book, "penalty", "samr")


def test_the_fast_path_decides_plain_rows(tmp_path: Path) -> None:
    """Not a vacuous comparison: plain rows are decided column-wise, not by the row validator."""
    path = tmp_path / "plain.csv"
    out = io.StringIO()
    csv.writer(out).writerows([HEADERS, *[["北京某某科技有限公司", FIRM, f"京罚{n}号", "2024-03-05", "罚款", "1.5"]
                                          for n in range(100)]])
    path.write_text(out.getvalue(), encoding="utf-8")
    accepted, fast = compare(path, "penalty", "samr")
    assert accepted == 100 and fast == 100


def test_the_listed_white_space_is_what_str_strip_removes() -> None:
    """The fast path leaves a cell with white space at an edge to the row path; its list of such
    characters must be Python's own, all of it."""
    from xinyong.domain.columnar import SPACE_CODES

    assert SPACE_CODES == tuple(c for c in range(0x110000) if chr(c).isspace())


def test_cells_under_one_repeated_header_are_all_kept(tmp_path: Path) -> None:
    """A file's trailing commas make several columns under a blank header, and an agency may name two
    columns alike: every unknown cell is kept, the second and later under "header (2)", ..., never
    one overwriting another (the row validator kept only the last; the fast path defers such rows)."""
    pack = load_pack("cn")
    spec = pack.category("penalty")
    headers = [*HEADERS, "", "", "内部编号", "内部编号", "内部编号 (2)"]
    validator = RowValidator(pack, spec, "samr", map_columns(pack, spec, headers), pack_today(pack))
    cells = ["北京某某科技有限公司", FIRM, "京市监罚〔2024〕9号", "2024-03-05", "罚款", "1.5", "a", "b", "x", "y", "z"]
    assert validator.validate(cells).extras == {"": "a", " (2)": "b", "内部编号": "x", "内部编号 (3)": "y",
                                                "内部编号 (2)": "z"}
    path = tmp_path / "repeated.csv"
    out = io.StringIO()
    csv.writer(out).writerows([headers, cells, [*cells[:6], "", "b", "", "y", ""]])
    path.write_text(out.getvalue(), encoding="utf-8")
    compare(path, "penalty", "samr")
