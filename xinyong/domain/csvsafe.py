"""Every CSV the system writes goes through here: no cell may start a spreadsheet formula.

A cell beginning with `=`, `+`, `-` or `@` (or a tab or carriage return, which some programs skip
before reading one of those) is run as a formula when the file is opened in a spreadsheet:
`=HYPERLINK(...)` sent in a name cell would come back in a rejects file or a list export as a
live link. Their fullwidth forms `＝`, `＋`, `－`, `＠` (what a Chinese input method types) and every
other character NFKC folds into one of them count too: a spreadsheet that folds input by NFKC, or a
user pasting the cell into the formula bar, reads them as the ASCII ones. OWASP's rule: prefix such
a cell with a single quote, so it is shown as text. Numbers are written as numbers (a negative
amount stays a number); only text is neutralised.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

# ASCII, then every character NFKC folds into one of = + - @: fullwidth ＝＋－＠, small ﹦﹢﹣﹫,
# super- and subscript ⁼⁺₌₊, ⩵ ⩶ (== and ===), Hebrew alternative plus ﬩
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20", "\ufe66", "\ufe62", "\ufe63",
                  "\ufe6b", "\u207c", "\u207a", "\u208c", "\u208a", "\u2a75", "\u2a76", "\ufb29")


def neutralise(value: Any) -> Any:
    """A text cell that would start a formula, prefixed with a single quote; anything else as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def restore(row: list[str]) -> list[str]:
    """A row of a CSV file as written before neutralisation: an authority sends its rejects file back
    as it is, and its `'-1` means -1 (a cell really starting with `'=` loses nothing that matters)."""
    if not any(cell[:1] == "'" and cell[1:2] and cell[1] in FORMULA_STARTS for cell in row):
        return row
    return [cell[1:] if cell[:1] == "'" and cell[1:2] and cell[1] in FORMULA_STARTS else cell for cell in row]


class SafeWriter:
    """`csv.writer` whose every cell is neutralised."""

    def __init__(self, handle: IO[str], **options: Any):
        self._writer = csv.writer(handle, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([neutralise(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter:
    """`csv.DictWriter` whose every cell (the header row included) is neutralised."""

    def __init__(self, handle: IO[str], fieldnames: Sequence[str], **options: Any):
        self.fieldnames = list(fieldnames)
        self._writer = SafeWriter(handle, **options)

    def writeheader(self) -> None:
        self._writer.writerow(self.fieldnames)

    def writerow(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow([row.get(name) for name in self.fieldnames])

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.writerow(row)
