"""Reading agency files as a header plus a stream of rows: CSV, XLSX, JSON Lines.

Each reader is streaming (memory does not grow with the file), and refuses a file it
cannot read with a one-line FileRefused naming the file and the problem.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from python_calamine import CalamineError, load_workbook

from xinyong.domain.records import FileRefused

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


@dataclass(frozen=True)
class RowError:
    """A row the reader could not split into cells; it is quarantined, not dropped."""

    reason: str
    raw: str


def detect_format(path: Path) -> str:
    file_format = FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise FileRefused(f"{path.name}: unsupported file type {path.suffix or '(none)'!r}; "
                          "send CSV, XLSX or JSON Lines")
    return file_format


def open_table(path: Path) -> Table:
    if not path.is_file():
        raise FileRefused(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise FileRefused(f"{path.name}: the file is empty")
    file_format = detect_format(path)
    if file_format == "csv":
        return _read_csv(path)
    if file_format == "xlsx":
        return _read_xlsx(path)
    return _read_jsonl(path)


def detect_encoding(sample: bytes, path: Path) -> str:
    """UTF-8 (with or without BOM) or GB18030 (which covers GBK and GB2312)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if b"\x00" in sample:
        raise FileRefused(f"{path.name}: binary content, not a text file")
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        return encoding
    raise FileRefused(f"{path.name}: text is neither UTF-8 nor GB18030/GBK")


def _read_csv(path: Path) -> Table:
    with path.open("rb") as handle:
        sample = handle.read(_SAMPLE)
    encoding = detect_encoding(sample, path)
    first_line = sample.split(b"\n", 1)[0].decode(encoding, errors="replace")
    delimiter = max(",\t;|", key=first_line.count)
    handle = path.open("r", encoding=encoding, errors="strict", newline="")
    reader = csv.reader(handle, delimiter=delimiter)
    try:
        headers = next(reader)
    except UnicodeDecodeError as exc:
        handle.close()
        raise FileRefused(f"{path.name}: undecodable bytes in the header as {encoding}: {exc.reason}") from None
    except (StopIteration, csv.Error) as exc:
        handle.close()
        raise FileRefused(f"{path.name}: no header row ({exc or 'file has no lines'})") from None

    if not any(h.strip() for h in headers):
        handle.close()
        raise FileRefused(f"{path.name}: the first line is blank, not a header row")
    width = len(headers)

    def rows() -> Iterator[tuple[int, list[Any] | RowError]]:
        with handle:
            number = 1
            try:
                for number, row in enumerate(reader, start=2):
                    if len(row) > width and any(cell.strip() for cell in row[width:]):
                        # More cells than headers: an unquoted separator shifted the row. Its
                        # cells cannot be trusted to their columns, and none may vanish.
                        yield number, RowError(f"{len(row)} cells but {width} headers "
                                               f"(an unquoted {delimiter!r} in a cell?)", delimiter.join(row))
                    elif any(cell.strip() for cell in row):
                        yield number, row
            except UnicodeDecodeError as exc:
                raise FileRefused(f"{path.name}: row {number + 1}: undecodable bytes as {encoding} "
                                  f"({exc.reason})") from None
            except csv.Error as exc:
                raise FileRefused(f"{path.name}: row {number + 1}: broken CSV ({exc})") from None

    return Table("csv", _label(encoding), [h.strip() for h in headers], rows())


def _label(encoding: str) -> str:
    """How a batch records its encoding: utf-8, utf-8 bom or gb18030."""
    return encoding.replace("-sig", " bom") if encoding.endswith("-sig") else encoding


def _read_xlsx(path: Path) -> Table:
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic[:2] != b"PK" and path.suffix.lower() != ".xls":
        raise FileRefused(f"{path.name}: not a workbook (an .xlsx file is a zip archive)")
    try:
        workbook = load_workbook(str(path))
        sheet = workbook.get_sheet_by_index(0)
        iterator = iter(sheet.iter_rows())
        headers = next(iterator, None)
    except (CalamineError, OSError, ValueError) as exc:
        raise FileRefused(f"{path.name}: unreadable or truncated workbook ({exc})") from None
    except Exception as exc:  # calamine raises its own zip/xml errors for broken workbooks
        raise FileRefused(f"{path.name}: unreadable or truncated workbook ({type(exc).__name__}: {exc})") from None
    if headers is None or not any(str(h).strip() for h in headers):
        raise FileRefused(f"{path.name}: the first sheet has no header row")

    def rows() -> Iterator[tuple[int, list[Any] | RowError]]:
        try:
            for number, row in enumerate(iterator, start=2):
                if any(not (cell == "" or cell is None) for cell in row):
                    yield number, list(row)
        except Exception as exc:  # noqa: BLE001 - a workbook truncated past the header
            raise FileRefused(f"{path.name}: unreadable or truncated workbook ({exc})") from None

    return Table("xlsx", None, [str(h).strip() for h in headers], rows())


def _read_jsonl(path: Path) -> Table:
    with path.open("rb") as handle:
        sample = handle.read(_SAMPLE)
    encoding = detect_encoding(sample, path)
    first = sample.split(b"\n", 1)[0].decode(encoding, errors="replace")
    try:
        keys = list(orjson.loads(first).keys())
    except (orjson.JSONDecodeError, AttributeError):
        raise FileRefused(f"{path.name}: line 1 is not a JSON object; not a JSON Lines file") from None
    index = {k: i for i, k in enumerate(keys)}

    def rows() -> Iterator[tuple[int, list[Any] | RowError]]:
        number = 0
        with path.open("r", encoding=encoding, errors="strict") as handle:
            try:
                for number, line in enumerate(handle, start=1):
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
                    for key in obj:
                        if key not in index:  # a new key: headers grow, nothing is dropped
                            index[key] = len(keys)
                            keys.append(key)
                    row: list[Any] = [None] * len(keys)
                    for key, value in obj.items():
                        row[index[key]] = orjson.dumps(value).decode() if isinstance(value, (dict, list)) else value
                    yield number, row
            except UnicodeDecodeError as exc:
                raise FileRefused(f"{path.name}: line {number + 1}: undecodable bytes ({exc.reason})") from None

    return Table("jsonl", _label(encoding), keys, rows())
