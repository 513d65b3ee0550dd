"""Reading agency files as a header plus a stream of rows: CSV, XLSX, JSON Lines.

Each reader is streaming (memory does not grow with the file), and refuses a file it
cannot read with a one-line FileRefused naming the file and the problem.
"""

from __future__ import annotations

import csv
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any

import orjson
from python_calamine import (
    CalamineError,
    SheetTypeEnum,
    SheetVisibleEnum,
    load_workbook,
)

from xinyong import settings
from xinyong.domain.csvsafe import restore
from xinyong.domain.records import FileRefused
from xinyong.domain.values import delimiter_of, normalise_header, text_encoding

FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
           ".xls": "xlsx", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_SAMPLE = 1 << 20


@dataclass
class Table:
    """What a reader yields: the file's headers and its data rows with their row numbers."""

    file_format: str
    encoding: str | None
    headers: list[str]
    # JSON Lines: `headers` grows as new keys appear, and a malformed line is a RowError.
    rows: Iterator[tuple[int, list[Any] | RowError]]


@dataclass
class SheetMarks:
    """What the spreadsheet reader does not say of a sheet, read from its XML: each row's formula
    errors (column, text), which it gives as empty cells, and the rows hidden in the spreadsheet."""

    errors: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    hidden: set[int] = field(default_factory=set)
    hidden_columns: list[tuple[int, int]] = field(default_factory=list)  # (first, last), counted from 0
    unplaced: bool = False  # a mark without its row's reference, or more than can be held

    def __bool__(self) -> bool:
        return bool(self.errors or self.hidden or self.hidden_columns or self.unplaced)

    def first_hidden_column(self, cells: list[Any]) -> int | None:
        """The first column of `cells` hidden in the spreadsheet that holds anything."""
        return min((index for first, last in self.hidden_columns for index in range(first, min(last + 1, len(cells)))
                    if _cells_filled([cells[index]])), default=None)


@dataclass(frozen=True)
class RowError:
    """A row the reader could not split into cells, or will not give as a record (a row hidden in a
    workbook); it is quarantined, not dropped."""

    reason: str
    raw: str
    cells: list[Any] | None = None  # where the row has them: the rejects file shows them in their columns
    code: str = "unreadable_line"  # domain.values.REASON_CODES


def detect_format(path: Path) -> str:
    file_format = FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise FileRefused(f"{path.name}: unsupported file type {path.suffix or '(none)'!r}; "
                          "send CSV, XLSX or JSON Lines")
    return file_format


def check_regular_file(path: Path) -> None:
    """Refuse what is not a regular, non-empty file, saying what it is instead."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileRefused(f"{path}: no such file") from None
    except OSError as exc:
        raise FileRefused(f"{path}: cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise FileRefused(f"{path}: is a directory, not a file")
    if not stat.S_ISREG(mode):
        what = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise FileRefused(f"{path}: is {what}, not a regular file")
    if path.stat().st_size == 0:
        raise FileRefused(f"{path.name}: the file is empty")


def open_table(path: Path, header_fields: Callable[[list[Any]], set[str]] | None = None) -> Table:
    """`header_fields` says which fields a row of headers names (the pack's synonyms: 当事人名称 and
    行政相对人名称 are one field); without it, each header names itself. It tells a workbook's sheet of
    records from the others."""
    check_regular_file(path)
    file_format = detect_format(path)
    if file_format == "csv":
        table = _read_csv(path, header_fields or _headers_themselves)
    elif file_format == "xlsx":
        table = _read_xlsx(path, header_fields or _headers_themselves)
    else:
        table = _read_jsonl(path)
    check_headers(path, table.headers)
    return table


def _headers_themselves(headers: list[Any]) -> set[str]:
    return {normalise_header(str(h)) for h in headers} - {""}


def check_headers(path: Path, headers: list[str]) -> None:
    """Two columns with one header would leave one of them unused, silently: refuse the file."""
    if any("\x00" in str(h) for h in headers):
        raise FileRefused(f"{path.name}: a header contains a NUL character")
    seen: dict[str, str] = {}
    duplicates: list[str] = []
    for header in headers:
        key = normalise_header(str(header))
        if not key:
            continue
        if key in seen and seen[key] not in duplicates:
            duplicates.append(seen[key])
        seen.setdefault(key, str(header))
    if duplicates:
        raise FileRefused(f"{path.name}: duplicate headers {', '.join(repr(h) for h in duplicates)}; "
                          "each column needs its own header")


def detect_encoding(sample: bytes, path: Path) -> str:
    """`values.text_encoding`, or the file refused with its reason."""
    try:
        return text_encoding(sample)
    except ValueError as exc:
        raise FileRefused(f"{path.name}: {exc}") from None


def _read_csv(path: Path, header_fields: Callable[[list[Any]], set[str]]) -> Table:
    with path.open("rb") as handle:
        sample = handle.read(_SAMPLE)
    encoding = detect_encoding(sample, path)
    lines = sample.decode(encoding, errors="replace").split("\n", _TITLE_ROWS + 1)  # in UTF-16 a byte 0x0A is no line end
    # the header's separator: a title above it may have none (2026年3月行政处罚信息公示, no trailing commas)
    delimiter = delimiter_of(next((line for line in lines[:_TITLE_ROWS + 1] if delimiter_of(line) in line), lines[0]))
    handle = path.open("r", encoding=encoding, errors="strict", newline="")
    csv.field_size_limit(max(1, settings.MAX_CELL_CHARS.value()))
    reader = csv.reader(handle, delimiter=delimiter)
    first: list[list[str]] = []
    try:
        first.append(next(reader))
        # a title above the header (a subtitle, the sending office and date), as in a workbook: only then
        # are the lines below read ahead; `pending`: those that are data
        if _cells_filled(first[0]) and not (_cells_filled(first[0]) > 1 and header_fields(first[0])):
            first += islice(reader, _TITLE_ROWS + 1)
        at = _header_at(first, header_fields) if _cells_filled(first[0]) else 0  # a blank first line is refused
        title, headers, pending = first[:at], first[at], first[at + 1:]
    except UnicodeDecodeError as exc:
        handle.close()
        raise FileRefused(f"{path.name}: undecodable bytes in the header as {encoding}: {exc.reason}") from None
    except (StopIteration, csv.Error) as exc:
        handle.close()
        if first:  # a line read ahead
            raise _broken_line(path, len(first) + 1, exc) from None
        raise FileRefused(f"{path.name}: no header row ({exc or 'file has no lines'})") from None

    if not any(h.strip() for h in headers):
        handle.close()
        raise FileRefused(f"{path.name}: the first line is blank, not a header row")
    width = len(headers)

    def rows() -> Iterator[tuple[int, list[Any] | RowError]]:
        with handle:
            number = 1
            try:
                for number, row in enumerate(chain(pending, reader) if pending else reader, start=2 + len(title)):
                    if row and row[-1].endswith(_END_OF_FILE):
                        row = [*row[:-1], row[-1].rstrip(_END_OF_FILE)]
                    if len(row) > width and any(cell.strip() for cell in row[width:]):
                        # More cells than headers: an unquoted separator shifted the row. Its
                        # cells cannot be trusted to their columns, and none may vanish.
                        yield number, RowError(f"{len(row)} cells but {width} headers "
                                               f"(an unquoted {delimiter!r} in a cell?)", delimiter.join(row))
                    elif (text := "".join(row)).strip():  # a blank line has only white space
                        # restore() only changes a cell that starts with a quote: most rows have none
                        yield number, restore(row) if "'" in text else row
            except UnicodeDecodeError as exc:
                raise FileRefused(f"{path.name}: row {number + 1}: undecodable bytes as {encoding} "
                                  f"({exc.reason})") from None
            except csv.Error as exc:
                raise _broken_line(path, number + 1, exc) from None

    # a byte order mark the decoder keeps (GB18030's, a UTF-8 file's second) is no part of the first header
    headers = [headers[0].lstrip("\ufeff"), *headers[1:]]
    return Table("csv", _label(encoding), [h.strip() for h in headers], rows())


def _broken_line(path: Path, number: int, exc: csv.Error) -> FileRefused:
    """The file refused for its line `number`, which the CSV reader cannot split."""
    if "field larger than field limit" in str(exc):
        return FileRefused(f"{path.name}: row {number}: a cell longer than {settings.MAX_CELL_CHARS.value()} "
                           f"characters ({settings.MAX_CELL_CHARS.name})")
    return FileRefused(f"{path.name}: row {number}: broken CSV ({exc})")


# Ctrl-Z, the end-of-file mark DOS-era tools still append to the text files they write: no cell's value
# nor a row of its own
_END_OF_FILE = "\x1a"


def _label(encoding: str) -> str:
    """How a batch records its encoding: utf-8, utf-8 bom, utf-16 or gb18030."""
    return encoding.replace("-sig", " bom") if encoding.endswith("-sig") else encoding


def _read_xlsx(path: Path, header_fields: Callable[[list[Any]], set[str]]) -> Table:
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic[:2] != b"PK" and path.suffix.lower() != ".xls":
        raise FileRefused(f"{path.name}: not a workbook (an .xlsx file is a zip archive)")
    max_rows = settings.MAX_WORKBOOK_ROWS.value()
    marked: dict[str, SheetMarks] = {}
    if magic[:2] == b"PK":
        marked = check_workbook_size(path)
    elif path.stat().st_size > settings.MAX_WORKBOOK_BYTES.value():
        raise FileRefused(f"{path.name}: workbook of {path.stat().st_size / MIB:.1f} MB, above the limit of "
                          f"{settings.MAX_WORKBOOK_BYTES.value() / MIB:.1f} MB ({settings.MAX_WORKBOOK_BYTES.name})")
    max_cell = settings.MAX_CELL_CHARS.value()
    try:
        workbook = load_workbook(str(path))
        sheets = [(index, meta) for index, meta in enumerate(workbook.sheets_metadata)
                  if meta.typ == SheetTypeEnum.WorkSheet]
        # the data is on the first visible sheet whose headers name fields, else on the first that holds
        # anything (whose headers are then refused as unrecognisable): a hidden sheet is a template or
        # the lists behind a drop-down, an empty Sheet1 is left over, a sheet of instructions (填报说明)
        # may come first
        found = first = None
        for index, meta in sheets:
            if meta.visible == SheetVisibleEnum.Visible:
                header, iterator = _header_row(workbook.get_sheet_by_index(index), header_fields)
                if header is not None and header_fields(header[1]):
                    found = index, meta.name
                    break
                if header is not None and first is None:
                    first = (index, meta.name), header, iterator
        if found is None and first is not None:
            found, header, iterator = first
        if found is not None:
            _refuse_more_data(path, workbook, sheets, found, header[1], header_fields)
            # a formula's error (#N/A, #DIV/0!) comes from the spreadsheet reader as an empty cell: a
            # record would be stored without the value, or by the name a failed lookup left out. Its
            # text goes back in the cell, which the row validator refuses. A hidden row is one its
            # sender chose not to show (a withdrawn decision, last month's rows filtered out):
            # quarantined, never published unsaid.
            marks = SheetMarks()
            if any(marked.values()):
                parts = sheet_parts(path)
                marks = marked.get(parts[found[0]] if found[0] < len(parts) else "", marks)
    except FileRefused:
        raise
    except (CalamineError, OSError, ValueError) as exc:
        raise FileRefused(f"{path.name}: unreadable or truncated workbook ({exc})") from None
    except Exception as exc:  # calamine raises its own zip/xml errors for broken workbooks
        raise FileRefused(f"{path.name}: unreadable or truncated workbook ({type(exc).__name__}: {exc})") from None
    if found is None:
        raise FileRefused(f"{path.name}: no header row (no visible sheet holds anything)")
    headers = header[1]
    if marks.unplaced:
        raise FileRefused(f"{path.name}: sheet {found[1]!r} holds formulas that failed (#N/A, #DIV/0!...) or hidden "
                          f"rows or columns, on more than {_MAX_MARKED_ROWS} rows or where they cannot be placed; "
                          "correct or unhide them (or paste the values), and send the file again")
    # A hidden column is one its sender chose not to show (last month's amounts, a column replaced by the
    # one beside it): read as any other, its values would be published unsaid, even over the visible ones
    if (column := marks.first_hidden_column(headers)) is not None:
        raise FileRefused(f"{path.name}: sheet {found[1]!r}: column {column_letters(column)} "
                          f"({str(headers[column]).strip()!r}) is hidden in the spreadsheet; unhide it to send it, or "
                          "delete it, and send the file again")

    def rows() -> Iterator[tuple[int, list[Any] | RowError]]:
        try:
            for number, row in iterator:
                if number > max_rows + 1:
                    raise FileRefused(f"{path.name}: more than {max_rows} rows ({settings.MAX_WORKBOOK_ROWS.name})")
                if any(isinstance(cell, str) and len(cell) > max_cell for cell in row):
                    yield number, RowError(f"a cell longer than {max_cell} characters "
                                           f"({settings.MAX_CELL_CHARS.name})", "")
                    continue
                if number in marks.hidden:
                    yield number, RowError("the row is hidden in the spreadsheet: unhide it to send it, or delete "
                                           "it", "", list(row), "invalid_value")
                    continue
                if marks.hidden_columns and (column := marks.first_hidden_column(row)) is not None:
                    raise FileRefused(f"{path.name}: sheet {found[1]!r}, row {number}: column "
                                      f"{column_letters(column)} is hidden in the spreadsheet and holds a value; "
                                      "unhide it to send it, or delete it, and send the file again")
                row = list(row)
                for column, error in marks.errors.get(number, ()):
                    if column < len(row):
                        row[column] = error
                yield number, row
        except FileRefused:
            raise
        except Exception as exc:  # noqa: BLE001 - a workbook truncated past the header
            raise FileRefused(f"{path.name}: unreadable or truncated workbook ({exc})") from None

    return Table("xlsx", None, [str(h).strip() for h in headers], rows())


# Rows of one cell that may stand above a sheet's header: a title merged across the columns, a
# subtitle, the line naming the authority and the date
_TITLE_ROWS = 3


def _cells_filled(row: list[Any]) -> int:
    return sum(1 for cell in row if not (cell is None or str(cell).strip() == ""))


def _header_at(rows: list[list[Any]], header_fields: Callable[[list[Any]], set[str]]) -> int:
    """Which of a file's first rows is its header: the first of several cells naming a field (not the
    line 填报单位：… | 填报日期：… above it), else the first of several cells, else the first."""
    several = [index for index, row in enumerate(rows) if _cells_filled(row) > 1]
    return next((index for index in several if header_fields(rows[index])), several[0] if several else 0)


def _header_row(sheet: Any, header_fields: Callable[[list[Any]], set[str]]
                ) -> tuple[tuple[int, list[Any]] | None, Iterator[tuple[int, list[Any]]]]:
    """A sheet's header (its row number, its cells) and the numbered rows below it, blank rows left
    out. The header is one of the first `_TITLE_ROWS` + 1 rows holding anything (`_header_at`): rows
    above it (a title, the sending office and date) are no records, and the rows below keep the
    numbers the agency sees in its spreadsheet. A header cell merged down over the
    rows below (序号 beside 行政处罚决定书 over 文号 | 罚款金额（万元）) makes those rows part of the
    header: each column is headed by its lowest text, the group's heading where nothing is below it,
    and the group's heading before its text where only both name a field (`header_fields`): 名称
    and 日期 under 行政相对人 and 处罚决定 are 行政相对人名称 and 处罚决定日期."""
    filled = ((number, row) for number, row in enumerate(sheet.iter_rows(), start=1)
              if any(not (cell == "" or cell is None) for cell in row))
    first = list(islice(filled, _TITLE_ROWS + 1))
    if not first:
        return None, iter(())
    # merged ranges are ((first row, first column), (last row, last column)), counted from 0
    merged = sheet.merged_cell_ranges or ()
    at = _header_at([row for _, row in first], header_fields)
    # a row above with a cell merged down onto it (序号 over two rows) is where the header begins
    while at and any(start[0] + 1 == first[at - 1][0] and end[0] + 1 >= first[at][0] for start, end in merged):
        at -= 1
    number, header = first[at]
    rows = chain(first[at + 1:], filled)
    last = max((end[0] + 1 for start, end in merged if start[0] + 1 == number), default=number)
    header = list(header)
    # a heading merged across columns is their group's
    groups = {column: str(header[start[1]]).strip() for start, end in merged
              if start[0] + 1 == number and end[1] > start[1] and start[1] < len(header)
              for column in range(start[1], end[1] + 1)}
    for below, row in rows:
        if below > last:
            return (number, header), chain([(below, row)], rows)
        for column, cell in enumerate(row):
            if not (cell is None or str(cell).strip() == ""):
                header += [""] * (column + 1 - len(header))
                group = groups.get(column)
                if group and not header_fields([cell]) and header_fields([joined := group + str(cell).strip()]):
                    cell = joined
                header[column] = cell
    return (number, header), rows


def _refuse_more_data(path: Path, workbook: Any, sheets: list[tuple[int, Any]], found: tuple[int, str],
                      headers: list[Any], header_fields: Callable[[list[Any]], set[str]]) -> None:
    """Only one sheet of a workbook is read: refuse a workbook with records on another sheet (a sheet
    a month, the rest of a long list, a hidden sheet of records, a district's sheet under its own
    synonyms of the headers) rather than leave them out unsaid. A sheet naming other fields
    (instructions, the lists behind a drop-down) holds no records."""
    ours = header_fields(headers)
    for index, meta in sheets:
        if index == found[0]:
            continue
        header, rows = _header_row(workbook.get_sheet_by_index(index), header_fields)
        if header is None or next(rows, None) is None:
            continue
        shared = ours & header_fields(header[1])
        if len(shared) >= min(2, len(ours)):
            hidden = "" if meta.visible == SheetVisibleEnum.Visible else "hidden "
            raise FileRefused(f"{path.name}: {hidden}sheet {meta.name!r} holds rows naming the same fields as sheet "
                              f"{found[1]!r}, and only one sheet of a workbook is read: send each sheet as its "
                              "own file")


MIB = 1024 * 1024
_INFLATE_BLOCK = 1 << 20
_ROW_TAGS = (b"<row ", b"<row>", b":row ", b":row>")
_CELL_TAGS = (b"<c ", b"<c>", b"<c/>", b":c ", b":c>", b":c/>")
# A cell holding a formula's error (#N/A, #DIV/0!, #REF!...), which the spreadsheet reader gives as an
# empty cell: its tag, and its value after the formula
_ERROR_CELL = re.compile(rb'<c\b([^>]*?\bt="e"[^>]*)>(?:<f[^>]*>[^<]*</f>|<f[^>]*/>)?(?:<v>([^<]*)</v>)?')
_CELL_REF = re.compile(rb'\br="([A-Z]+)([0-9]+)"')
_HIDDEN_ROW = re.compile(rb'<row\b([^>]*?\bhidden="(?:1|true)"[^>]*)>')
_HIDDEN_COLUMNS = re.compile(rb'<(?:\w+:)?col\b([^>]*?\bhidden="(?:1|true)"[^>]*)>')
_COLUMN_MIN, _COLUMN_MAX = re.compile(rb'\bmin="([0-9]+)"'), re.compile(rb'\bmax="([0-9]+)"')
_ROW_REF = re.compile(rb'\br="([0-9]+)"')
_MAX_MARKED_ROWS = 10_000  # a sheet with failed formulas or hidden rows on more rows is refused whole


def column_letters(index: int) -> str:
    """A column's name as the spreadsheet shows it (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column_index(letters: bytes) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + letter - 64
    return index - 1


def _inflate(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> Iterator[bytes]:
    """A part's content in blocks, inflated from its compressed bytes until the deflate stream ends.

    Not `ZipFile.open`: it stops at the size the directory declares, so a part whose directory
    (and CRC) lie about a larger content would pass here and be inflated whole by the spreadsheet
    reader. Each step inflates at most one block: memory stays bounded whatever the ratio.
    """
    if member.flag_bits & 0x1:
        raise FileRefused(f"part {member.filename} is encrypted")
    handle = archive.fp
    assert handle is not None
    handle.seek(member.header_offset)
    header = handle.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"no local header for part {member.filename}")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    handle.seek(member.header_offset + 30 + name_length + extra_length)
    remaining = member.compress_size
    if member.compress_type == zipfile.ZIP_STORED:
        while remaining > 0 and (raw := handle.read(min(_INFLATE_BLOCK, remaining))):
            remaining -= len(raw)
            yield raw
        return
    if member.compress_type != zipfile.ZIP_DEFLATED:
        raise NotImplementedError(f"part {member.filename} uses compression method {member.compress_type}")
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    while remaining > 0 and not inflater.eof:
        raw = handle.read(min(1 << 16, remaining))
        if not raw:
            break
        remaining -= len(raw)
        while raw and not inflater.eof:
            block = inflater.decompress(raw, _INFLATE_BLOCK)
            raw = inflater.unconsumed_tail
            if block:
                yield block


def check_workbook_size(path: Path) -> dict[str, SheetMarks]:
    """Refuse a workbook too big to read in bounded memory, before the spreadsheet reader sees it.

    The spreadsheet reader holds a whole sheet in memory, so the limits are checked first: the
    sizes the zip directory declares, then the bytes each part really inflates to (a directory
    can lie: each part is inflated from its compressed bytes, and the count stops at the limit), and the
    rows and cells the sheets' XML holds, counted from their tags while inflating.

    Returns each sheet part's `SheetMarks`: its formula errors (`_ERROR_CELL`) and hidden rows.
    """
    max_bytes = settings.MAX_WORKBOOK_BYTES.value()
    max_rows = settings.MAX_WORKBOOK_ROWS.value()
    max_cells = settings.MAX_WORKBOOK_CELLS.value()
    limit = f"{max_bytes / MIB:.1f} MB ({settings.MAX_WORKBOOK_BYTES.name})"
    marked: dict[str, SheetMarks] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            declared = sum(member.file_size for member in members)
            if declared > max_bytes:
                raise FileRefused(f"{path.name}: workbook of {declared / MIB:.1f} MB uncompressed, above the limit "
                                  f"of {limit}")
            inflated = 0
            for member in members:
                sheet = member.filename.startswith("xl/worksheets/") and member.filename.endswith(".xml")
                rows = cells = 0
                marks = marked.setdefault(member.filename, SheetMarks())
                carry = b""
                for block in _inflate(archive, member):
                    inflated += len(block)
                    if inflated > max_bytes:
                        raise FileRefused(f"{path.name}: workbook inflates to more than the limit of {limit} "
                                          f"(its zip directory declares {declared / MIB:.1f} MB)")
                    if not sheet:
                        continue
                    text = carry + block
                    cut = text.rfind(b"<")  # a tag cut by the block boundary is counted with the next block
                    cut = len(text) if cut < 0 else cut
                    text, carry = text[:cut], text[cut:]
                    rows += sum(text.count(tag) for tag in _ROW_TAGS)
                    cells += sum(text.count(tag) for tag in _CELL_TAGS)
                    if b't="e"' in text:
                        for error in _ERROR_CELL.finditer(text):
                            ref = _CELL_REF.search(error[1])
                            if ref is None:  # where it is cannot be said
                                marks.unplaced = True
                                break
                            marks.errors.setdefault(int(ref[2]), []).append(
                                (_column_index(ref[1]), (error[2] or b"#VALUE!").decode(errors="replace")))
                    if b"hidden=" in text:
                        for hidden in _HIDDEN_ROW.finditer(text):
                            ref = _ROW_REF.search(hidden[1])
                            if ref is None:
                                marks.unplaced = True
                                break
                            marks.hidden.add(int(ref[1]))
                        for hidden in _HIDDEN_COLUMNS.finditer(text):
                            first, last = _COLUMN_MIN.search(hidden[1]), _COLUMN_MAX.search(hidden[1])
                            if first is None or last is None:
                                marks.unplaced = True
                                break
                            marks.hidden_columns.append((int(first[1]) - 1, int(last[1]) - 1))
                    if len(marks.errors) + len(marks.hidden) > _MAX_MARKED_ROWS:
                        marks.unplaced, marks.errors, marks.hidden = True, {}, set()
                    if rows > max_rows + 1:
                        raise FileRefused(f"{path.name}: sheet {member.filename} has more than {max_rows} "
                                          f"rows ({settings.MAX_WORKBOOK_ROWS.name})")
                    if cells > max_cells:
                        raise FileRefused(f"{path.name}: sheet {member.filename} has more than {max_cells} "
                                          f"cells ({settings.MAX_WORKBOOK_CELLS.name})")
    except FileRefused:
        raise
    except zipfile.BadZipFile as exc:
        raise FileRefused(f"{path.name}: unreadable or truncated workbook ({exc})") from None
    except (OSError, EOFError, NotImplementedError, ValueError, RuntimeError, zlib.error) as exc:
        # zlib errors, unsupported compression, encrypted parts
        raise FileRefused(f"{path.name}: unreadable or truncated workbook ({type(exc).__name__}: {exc})") from None
    return marked


def sheet_parts(path: Path) -> list[str]:
    """The part of each sheet, in the workbook's order of sheets (the spreadsheet reader's indexes)."""
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        book = archive.read("xl/workbook.xml").decode("utf-8", errors="replace")
        rels = archive.read("xl/_rels/workbook.xml.rels").decode("utf-8", errors="replace")
    targets = {}
    for tag in re.findall(r"<(?:\w+:)?Relationship\b[^>]*>", rels):
        ident, target = re.search(r'\bId="([^"]*)"', tag), re.search(r'\bTarget="([^"]*)"', tag)
        if ident and target:
            part = target[1].lstrip("/") if target[1].startswith("/") else "xl/" + target[1]
            targets[ident[1]] = part if part in names else target[1]
    return [targets.get(ident, "") for ident in re.findall(r'<(?:\w+:)?sheet\b[^>]*?\br:id="([^"]*)"', book)]


def _read_jsonl(path: Path) -> Table:
    with path.open("rb") as handle:
        sample = handle.read(_SAMPLE)
    encoding = detect_encoding(sample, path)
    keys = _first_keys(path, sample.decode(encoding, errors="replace").split("\n"))
    index = {k: i for i, k in enumerate(keys)}
    max_keys = max(settings.MAX_NEW_KEYS.value(), len(keys))

    def rows() -> Iterator[tuple[int, list[Any] | RowError]]:
        number = 0
        with path.open("r", encoding=encoding, errors="strict") as handle:
            try:
                for number, line in enumerate(handle, start=1):
                    line = line.rstrip(_END_OF_FILE) if _END_OF_FILE in line else line
                    if not line.strip():
                        continue
                    try:
                        obj = orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        yield number, RowError(f"not valid JSON ({exc})", line.rstrip("\n"))
                        continue
                    if not isinstance(obj, dict):
                        yield number, RowError("not a JSON object", line.rstrip("\n"))
                        continue
                    new = [key for key in obj if key not in index]
                    if len(keys) + len(new) > max_keys:
                        # Every row is as wide as the headers: unbounded keys would grow memory with
                        # rows x keys. The record is kept in quarantine, its new keys named.
                        yield number, RowError(f"adds key(s) {', '.join(repr(k[:40]) for k in new[:3])} beyond "
                                               f"the {max_keys} distinct keys a file may have "
                                               f"({settings.MAX_NEW_KEYS.name})", line.rstrip("\n"))
                        continue
                    if any("\x00" in key for key in new):
                        yield number, RowError("a key contains a NUL character", line.rstrip("\n").replace("\x00", ""))
                        continue
                    for key in new:  # a new key: headers grow, nothing is dropped
                        index[key] = len(keys)
                        keys.append(key)
                    row: list[Any] = [None] * len(keys)
                    try:
                        for key, value in obj.items():
                            row[index[key]] = orjson.dumps(value).decode() if isinstance(value, (dict, list)) else value
                    except orjson.JSONEncodeError:
                        # orjson reads up to 1,024 levels and writes up to 255: a value nested between
                        # the two was read, then raised while written back (a crash, a 500 from the API)
                        yield number, RowError("a value nested too deep (more than 255 levels)",
                                               line.rstrip("\n"))
                        continue
                    yield number, row
            except UnicodeDecodeError as exc:
                raise FileRefused(f"{path.name}: line {number + 1}: undecodable bytes ({exc.reason})") from None

    return Table("jsonl", _label(encoding), keys, rows())


def _first_keys(path: Path, lines: list[str]) -> list[str]:
    """The keys of a JSON Lines file's first record: its first line that is not blank, which must be a
    JSON object (else the file is no JSON Lines of records)."""
    number, first = next(((n, line) for n, line in enumerate(lines, start=1) if line.strip(_END_OF_FILE).strip()),
                         (1, ""))
    try:
        value = orjson.loads(first)
    except orjson.JSONDecodeError as exc:
        raise FileRefused(f"{path.name}: line {number} is not valid JSON ({exc}); not a JSON Lines file") from None
    if not isinstance(value, dict):
        raise FileRefused(f"{path.name}: line {number} is not a JSON object; not a JSON Lines file")
    return list(value)
