"""Parsing the values agencies write: dates, amounts, headers, lists of names.

Every parser raises ValueError with a message fit to show the authority that sent the
file; nothing is guessed silently.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
import unicodedata

class ValueProblem(ValueError):
    """A value that cannot be read: the English message, and a code with parameters that pages
    render in their reader's language (the codes are `REASON_CODES`)."""

    def __init__(self, message: str, code: str, **params: str):
        super().__init__(message)
        self.code, self.params = code, params


# Why a row is quarantined: the parsers' problems here, and the record checks of domain.records.
REASON_CODES = ("impossible_date", "implausible_year", "unreadable_date", "not_spreadsheet_date",
                "spreadsheet_day_60", "misplaced_separators", "not_a_number", "negative_amount",
                "not_whole_number", "invalid_value", "nul_character", "required_empty", "no_subject",
                "no_subject_name_code_unusable", "persons_not_allowed", "unreadable_line",
                "conflicting_duplicate", "revoked_record")

# What a spreadsheet shows for a formula that failed: an error cell of a workbook, written out as
# this text in its CSV export. Never a value: a name a failed lookup left as #N/A is no firm's.
SPREADSHEET_ERRORS = frozenset({"#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!", "#SPILL!",
                                "#CALC!", "#GETTING_DATA"})

_EXCEL_EPOCH = dt.date(1899, 12, 30)
_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})(?: \d{1,2}:\d{2}(?::\d{2})?)?$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)
# a space groups thousands (3 000), a line break does not: "1\n500" is two amounts typed on two lines
# of one cell, never 1500
_GROUP_SPACE = r"[^\S\n\r\v\f\x1c-\x1e\x85\u2028\u2029]"
_GROUP_SEPARATOR = re.compile(f"(?:,|{_GROUP_SPACE})+")
_GROUPED = re.compile(f"[+-]?\\d{{1,3}}(?:(?:,|{_GROUP_SPACE}+)\\d{{3}})+(?:\\.\\d*)?")
_NAME_SEPARATORS = re.compile(r"[;；、,，\n]+")
_SPACE = re.compile(r"\s+")
# Invisible characters that are no part of a header or a value: a byte order mark left in the first
# cell (a GB18030 file saved with one, a UTF-8 file with two), zero-width spaces and joiners, the word
# joiner, pasted in from a web page or a PDF.
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
_INVISIBLE = re.compile(f"[{INVISIBLE}]")
_BLANK = re.compile(f"[\\s{INVISIBLE}]*")


def text_encoding(sample: bytes) -> str:
    """The encoding of a text file from its first bytes: UTF-8 (with or without BOM), UTF-16 with its BOM
    (what a spreadsheet saves as "Unicode text"), or GB18030 (which covers GBK and GB2312). A ValueError
    says why it is none of them."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not sample.startswith(codecs.BOM_UTF32_LE):
        return "utf-16"  # the codec reads the BOM for the byte order
    if b"\x00" in sample:
        raise ValueError("binary content, not a text file")
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        return encoding
    raise ValueError("text is neither UTF-8 nor GB18030/GBK")


def delimiter_of(first_line: str) -> str:
    """The separator a CSV's header line uses most: comma, tab, semicolon or bar."""
    return max(",\t;|", key=first_line.count)


def to_half_width(text: str) -> str:
    """NFKC folds full-width letters, digits and brackets to their ASCII forms."""
    return unicodedata.normalize("NFKC", text)


def is_blank(text: str) -> bool:
    """Nothing but white space (NBSP and the ideographic space among it) and invisible characters:
    a cell that looks empty is empty, so a required field written so is missing."""
    return _BLANK.fullmatch(text) is not None


# what an agency's template marks a column with, beside its name: *当事人名称, 文号（必填）
_COLUMN_MARKS = re.compile(r"^\*+|\*+$|\((?:必填|选填|非必填|必填项|选填项|可选)\)$")


def normalise_header(header: str) -> str:
    return _COLUMN_MARKS.sub("", _SPACE.sub("", _INVISIBLE.sub("", to_half_width(header))).lower())


def parse_date(value: object) -> dt.date:
    """A date from the forms seen in agency files, or from a spreadsheet cell."""
    if type(value) is str and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:  # fast path: most files use ISO dates
            date = dt.date.fromisoformat(value)
        except ValueError:
            pass
        else:
            if 1900 <= date.year <= 2100:
                return date
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if float(value).is_integer() and 10_000_000 <= value <= 99_999_999:
            value = str(int(value))  # 20230501 typed into a number cell: far beyond any serial
        else:
            return _from_excel_serial(float(value))
    text = to_half_width(str(value)).strip()
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            year, month, day = (int(g) for g in match.groups())
            try:
                date = dt.date(year, month, day)
            except ValueError:
                raise ValueProblem(f"impossible date {text!r}", "impossible_date", text=text) from None
            if not 1900 <= year <= 2100:
                raise ValueProblem(f"implausible year in date {text!r}", "implausible_year", text=text)
            return date
    raise ValueProblem(f"unreadable date {text!r} (expected e.g. 2023-05-01, 2023/5/1, 2023年5月1日, 20230501)",
                       "unreadable_date", text=text)


def _from_excel_serial(serial: float) -> dt.date:
    # Serials between 1 (1900-01-01) and 73050 (2099-12-31); anything else is not a date.
    if not 1 <= serial < 73051:
        raise ValueProblem(f"number {serial:g} is not a spreadsheet date", "not_spreadsheet_date", text=f"{serial:g}")
    days = int(serial)
    if days < 60:  # before Excel's fictitious 1900-02-29 (serial 60) the epoch is one day later
        return _EXCEL_EPOCH + dt.timedelta(days=days + 1)
    if days == 60:
        raise ValueProblem("spreadsheet date 60 is 1900-02-29, a day that does not exist", "spreadsheet_day_60")
    return _EXCEL_EPOCH + dt.timedelta(days=days)


# the units an amount is written in, in a cell (5万元) or a header's brackets (罚没金额（万元）): longest first
AMOUNT_UNITS = (("万元", 10000.0), ("元", 1.0), ("万", 10000.0))
_CURRENCY = re.compile(r"^(?:¥|人民币|RMB|CNY)\s*", re.IGNORECASE)


def parse_amount(value: object, factor: float = 1.0) -> float:
    """A non-negative amount; `factor` converts the header's unit (万元 -> 10000)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        amount = float(value)
    else:
        text = to_half_width(str(value)).strip()
        for suffix, unit in AMOUNT_UNITS:
            if text.endswith(suffix):
                text, factor = text[: -len(suffix)].rstrip(), unit
                break
        # the currency written in front (¥5,000, 人民币5000元, RMB 5000): the amount is what follows
        text = _CURRENCY.sub("", text, count=1)
        if _GROUP_SEPARATOR.search(text):
            # 1,234.5 and 1 234 are grouped thousands; 1,5 is not (a decimal comma? a typo?).
            if not _GROUPED.fullmatch(text):
                raise ValueProblem(f"amount {str(value).strip()!r} has misplaced thousands separators",
                                   "misplaced_separators", text=str(value).strip())
            text = _GROUP_SEPARATOR.sub("", text)
        try:
            amount = float(text)
        except ValueError:
            raise ValueProblem(f"amount {str(value).strip()!r} is not a number", "not_a_number",
                               text=str(value).strip()) from None
    if amount != amount or amount in (float("inf"), float("-inf")):
        raise ValueProblem(f"amount {value!r} is not a number", "not_a_number", text=str(value))
    if amount < 0:
        raise ValueProblem(f"amount {value!r} is negative", "negative_amount", text=str(value))
    return round(amount * factor, 2) + 0.0  # + 0.0: never a -0.0


def parse_share(value: object) -> float:
    """A share of capital in percent, 0 to 100: 60%, 60.00%, ６０％ or 60 (a bare number is a percentage)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        share = float(value)
    else:
        text = to_half_width(str(value)).strip().removesuffix("%").rstrip()
        try:
            share = float(text)
        except ValueError:
            raise ValueProblem(f"share {str(value).strip()!r} is not a percentage", "invalid_value",
                               text=f"share {str(value).strip()!r} is not a percentage") from None
    if not 0 <= share <= 100:  # NaN fails both
        raise ValueProblem(f"share {value!r} is not between 0 and 100 %", "invalid_value",
                           text=f"share {value!r} is not between 0 and 100 %")
    return round(share, 4) + 0.0


def parse_integer(value: object) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = to_half_width(str(value)).strip()
    try:
        return int(text)
    except ValueError:
        raise ValueProblem(f"{text!r} is not a whole number", "not_whole_number", text=text) from None


def split_names(value: str) -> list[str]:
    """Several names in one cell (former names), separated by ；, ;, 、 or commas."""
    return [n.strip() for n in _NAME_SEPARATORS.split(value) if n.strip()]


def clean_text(value: object) -> str:
    """A cell as text: trimmed; spreadsheet floats that are whole lose their `.0`."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value).strip()
