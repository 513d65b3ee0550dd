"""What a public surface may show of free text: persons' ID numbers, mobile numbers and addresses masked.

One function, `mask_text`, for every public field's text on every surface (entity pages and
`/v1/entities`, lists and their exports, search, credit reports), whatever column or cell the
text came from: an authority writes "被执行人周八（公民身份号码…，住…，电话…）" into an obligation
as readily as into an ID column. What it masks:

- resident ID numbers of 18 characters (GB 11643-1999) and of 15 digits (GB 11643-1989), in any
  script's digits (fullwidth, pasted from another script or font), the check character X also
  typed ×, Ⅹ (Roman ten) or a Greek or Cyrillic X, or cut off (17 digits with a region and a birth
  date: the check character follows from them), written with spaces of any kind, dashes, dots,
  slashes, underscores, middle dots or invisible characters (soft hyphens, direction marks) between
  digits, whether or not their check holds: a mistyped ID number is still somebody's. Set apart more
  loosely (four spaces, 、 ~ • | * or commas, the birth date in brackets) or written in superscript or
  circled digits, they are masked where region and birth date make them one. One that
  another system masked its own way (11010119900307****) is masked again to this module's form, which
  it would complete. Fifteen digits broken up by separators
  are a first-generation ID number only with its layout (a region's first digit, a real YYMMDD
  birth date): `2023.01.1-2024.12.31` and `2023/123/4567/8901` are a date range and a document
  number. An 18-digit value that is a valid USCC and not a valid ID number is a firm's code and
  stays; a USCC with letters never looks like an ID number. A firm's 15-digit registration number in free text is masked too (the
  price of catching first-generation ID numbers);
- mobile numbers (1[3-9] and nine digits, fullwidth too, also grouped 3-4-4, also right after +86,
  86 or 0086);
- a person's address: from 住, 住址, 地址, 户籍所在地, 户口所在地, 现居 or 居住地 to the next punctuation
  (not such a word inside a firm's name: 北京住总集团有限责任公司);
- a Hong Kong or Macau identity card's number by its shape (A123456(7), 1234567(8): the check
  character in brackets), with or without a word naming it;
- a passport's, travel permit's or (Hong Kong, Macau, Taiwan) identity card's number after the word
  naming it (护照, 通行证, 回乡证, 台胞证, 居留证, 身份证, 证件号码; in English or French too: Passport No.,
  HKID, ID card, ID No., carte d'identité...): its last two characters kept.

`could_be_person_id` says whether a search term is an ID number or the beginning of one.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

from xinyong.domain.identifiers import (INVISIBLE, code_reader, is_document_number, is_valid_org_code,
                                         is_valid_resident_id, is_valid_uscc, mask_document_number, mask_person_id,
                                         normalise_code)

# Between two digits: up to three spaces of any kind (a no-break or thin space pasted from a web
# page, a tab, a line break), dashes (small ones too), dots, slashes, underscores, middle dots (half
# or full width) or invisible characters (`identifiers.INVISIBLE`: they show nothing, the number reads whole).
_SEP_CHARACTER = (r"[\s\-\u2010-\u2015\u2212\uff0d\ufe58\ufe63" + INVISIBLE
                  + r"./_\u00b7\u2027\u30fb\uff65\uff0e\uff0f\uff3f]")
_SEP = _SEP_CHARACTER + "{0,3}"
# or, in a text with line breaks, a line break with the indentation around it (a judgment's text
# wrapped, its lines indented with spaces or the ideographic spaces of a Chinese paragraph): a pattern
# of its own, run only on such texts (the alternative costs every text two thirds more time)
_WRAP_SEP = rf"(?:{_SEP}|[ \t\u3000]{{0,4}}(?:\r\n|\r|\n)[ \t\u3000]{{0,4}})"
_SEPARATORS = re.compile(_SEP_CHARACTER)
# Typed for the check character X by input methods and symbol pickers: × (times), Ⅹ ⅹ (Roman ten),
# Greek Χ χ and Cyrillic Х х (another keyboard layout)
_X_LOOKALIKES = "\u00d7\u2169\u2179\u03a7\u03c7\u0425\u0445"
_AS_X = str.maketrans(dict.fromkeys(_X_LOOKALIKES, "X"))
_DIGIT = r"\d"  # any decimal digit: ASCII, fullwidth, and those pasted from other scripts or fonts
# 18 characters; 17 digits (an ID number whose check character was cut off: the rest gives it back);
# 15 digits (first generation)


def _id_in_text(sep: str) -> re.Pattern[str]:
    return re.compile(
        rf"(?<!\d)"
        rf"(?:{_DIGIT}(?:{sep}{_DIGIT}){{16}}{sep}[\dXx\uff38\uff58{_X_LOOKALIKES}]|{_DIGIT}(?:{sep}{_DIGIT}){{16}}"
        rf"|{_DIGIT}(?:{sep}{_DIGIT}){{14}})"
        rf"(?!\d)")


_ID_IN_TEXT = _id_in_text(_SEP)
_ID_IN_WRAPPED_TEXT = _id_in_text(_WRAP_SEP)
# An ID number written more loosely than the patterns above read: its digits apart by anything that is
# no letter, Han character or digit (4 or more spaces, 、 ~ ～ • | * commas, brackets around the birth date
# "110101（19900307）7774"), or in superscript or circled digits (¹¹⁰¹⁰¹…, ①①⓪①⓪①…). Such a run of
# digits is read group by group (a group: digits written together), and 18, 17 or 15 digits from a group's
# start to a group's end are a person's number when they have an ID number's structure (a region's first
# digit and a real birth date): a mistyped check character still somebody's, an amount or a date range
# over-masked now and then the lesser harm.
_DIGIT_LOOKING = ("\u00b2\u00b3\u00b9\u2070\u2074-\u2079\u2080-\u2089\u2460-\u2468\u2474-\u247c"
                  "\u2488-\u2490\u24ea\u24f5-\u24fd\u24ff\u2776-\u277e\u2780-\u2788\u278a-\u2792"
                  "\U0001f100-\U0001f10a")  # superscript, subscript, circled, bracketed, with a full stop
_LOOSE_DIGIT = rf"[\d{_DIGIT_LOOKING}]"
_LOOSE_GAP_CHARACTER = r"(?:[^\w]|_)"  # \w: letters, Han characters, digits of every kind
_LOOSE_GAP = rf"{_LOOSE_GAP_CHARACTER}{{0,16}}"
# from a group's start, only where the first group is of such digits or is set apart from the next: digits
# written together are the patterns above's (a USCC, an ID number, an account number cost no second reading)
_LOOSE_ID = re.compile(rf"(?<!{_LOOSE_DIGIT})(?=\d*(?:[{_DIGIT_LOOKING}]|{_LOOSE_GAP_CHARACTER}{{1,16}}{_LOOSE_DIGIT}))"
                       rf"{_LOOSE_DIGIT}(?:{_LOOSE_GAP}{_LOOSE_DIGIT}){{14,}}"
                       rf"(?:{_LOOSE_GAP}[Xx\uff38\uff58{_X_LOOKALIKES}])?")
# a group: digits written together, the check character X glued to the last
_LOOSE_GROUP = re.compile(rf"{_LOOSE_DIGIT}+[Xx\uff38\uff58{_X_LOOKALIKES}]?|[Xx\uff38\uff58{_X_LOOKALIKES}]")


def _is_person_number(code: str) -> bool:
    """18 characters, 17 digits (the check character cut off) or 15 digits with an ID number's
    structure, and no firm's USCC."""
    if len(code) == 15:
        return looks_like_old_person_id(code)
    return (code[0] in "12345678" and _could_begin_date(code[6:14])
            and (is_valid_resident_id(code) or not is_valid_uscc(code)))


def _mask_loose_id(match: re.Match[str]) -> str:
    written = match.group()
    groups = [(m.start(), m.end()) for m in _LOOSE_GROUP.finditer(written)]
    # each group's digits as ASCII digits, its check character as X
    values = [group.upper() if group.isascii() else "".join(str(unicodedata.digit(c, "X")) for c in group)
              for group in (written[start:end] for start, end in groups)]
    shown, kept, first = [], 0, 0
    while first < len(groups):
        found, code, size = None, "", 0
        for last in range(first, len(groups)):  # the longest from this group's start: 18 characters, 17 or 15 digits
            size += len(values[last])
            if size > 18:
                break
            if size in (15, 17, 18):
                window = "".join(values[first:last + 1])
                if "X" not in window[:-1] and (size == 18 or window.isdigit()) and _is_person_number(window):
                    found, code = last, window
        if found is None:
            first += 1
            continue
        shown += [written[kept:groups[first][0]], mask_person_id(code)]
        kept, first = groups[found][1], found + 1
    return "".join(shown) + written[kept:] if shown else written


# An ID number another system has already masked its own way (11010119900307****, 1101011990****7774):
# shown beside this module's form (110101********7774) it gives the whole number back, so it is masked
# again to that form. 18 or 15 characters, digits and asterisks (half or full width).
_MASK_MARK = "*\uff0a"
_PARTLY_MASKED_ID = re.compile(
    rf"(?<![\d{_MASK_MARK}])"
    rf"(?:[\d{_MASK_MARK}](?:{_SEP}[\d{_MASK_MARK}]){{16}}{_SEP}[\d{_MASK_MARK}Xx\uff38\uff58{_X_LOOKALIKES}]"
    rf"|[\d{_MASK_MARK}](?:{_SEP}[\d{_MASK_MARK}]){{14}})"
    rf"(?![\d{_MASK_MARK}])")
_ALNUM = re.compile(r"[0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
# after no digit, with the country code before it or not: +86, 86 or 0086 (+8613812345678,
# 8613812345678, 008613812345678: as phones, contact lists and address books export a number)
_MOBILE = re.compile(rf"(?<!\d)((?:[0\uff10]{{2}})?[8\uff18][6\uff16])?"
                     rf"([1\uff11][3-9\uff13-\uff19]{_DIGIT}){_SEP}({_DIGIT}{{4}}){_SEP}({_DIGIT}{{4}})(?!\d)")
# 住 as in 住北京市…, 住址, 住所; not 住房 (housing), 住宅, 住院 (hospital), 住宿 (lodging), 住户.
# Longer words first: 户籍所在地 (registered residence), 现居 (lives at), 居住地 (place of residence).
_ADDRESS = re.compile(r"(户籍所在地|户籍地|户口所在地|户口地|经常居住地|现居住地|现居地|现居|居住地|住址|地址|住所地|住所|住(?![房宅院宿户]))"
                      r"([:：]?\s*)([^，,。；;、）)\]】\n\r]+)")
ADDRESS_MASK = "***"
# An address word inside a firm's name (北京住总集团有限责任公司, 北京地址科技有限公司, 居住地产有限公司):
# glued to what follows, which ends in a legal form and names no place (province, city, district,
# county, town, village, road, street, number). A person's address names one.
_FIRM_NAME_END = re.compile(r"(?:公司|集团|合作社|事务所)$")
_PLACE_WORD = re.compile(r"[省市区县镇乡村路街巷弄号]")


def _mask_address(match: re.Match[str]) -> str:
    if not match.group(2) and _FIRM_NAME_END.search(match.group(3)) and not _PLACE_WORD.search(match.group(3)):
        return match.group()
    return match.group(1) + match.group(2) + ADDRESS_MASK
# A travel document's or identity card's number after the word naming it (护照号码：E12345678, 回乡证
# H1234567801, 香港身份证A123456(3), 证件号码 M12345678, a foreigner's permanent residence card
# 永久居留身份证 USA110073010122 with its three-letter country code): its shape alone is too common to find it.
_DOCUMENT_WORDS = ("护照", "通行证", "回乡证", "台胞证", "居留", "身份证", "证件")
# The same in English and French, as a foreign party's documents are written ("Passport No. G1234567",
# "HKID A123456(3)", "ID card no.", "carte d'identité"): whole words, with the "number" after them (no
# letter may stand between word and number); a bare "ID" only with its "No.", "number" or "#".
_NUMBER_WORD = r"\s*(?:no|nos|number|n°|nº|numéro|#)\.?"
_FOREIGN_DOCUMENT_WORDS = (r"(?<![A-Za-z])(?:(?:passports?|passeports?|hkid(?:\s*card)?|identity\s+card|id\s*card"
                           r"|carte\s+d['’]identité|(?:home[\s-]+return|travel|exit[\s-]+entry)\s+permit)"
                           rf"(?:{_NUMBER_WORD})?|id{_NUMBER_WORD})(?![A-Za-z])")
_FOREIGN_DOCUMENT_HINT = re.compile(r"passe?port|hkid|identit|permit|(?<![A-Za-z])id(?![A-Za-z])", re.IGNORECASE)
_LETTER = r"[A-Za-z\uff21-\uff3a\uff41-\uff5a]"
_DOCUMENT = re.compile(rf"((?:{'|'.join(_DOCUMENT_WORDS)}|{_FOREIGN_DOCUMENT_WORDS})"
                       rf"[^0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a，,。；;]{{0,6}}?)"
                       rf"((?:{_LETTER}{{1,3}}{_SEP})?{_DIGIT}(?:{_SEP}{_DIGIT}){{4,17}}{_LETTER}?"
                       rf"(?:[(（][0-9A-Za-z][)）])?)(?![0-9A-Za-z*\uff0a\uff10-\uff19\uff21-\uff3a\uff41-\uff5a])",
                       re.IGNORECASE)
# A Hong Kong identity card's number (A123456(3), AB987654(A)) or a Macau one's (1234567(8), its first
# digit 1, 5 or 7): the check character in brackets makes the shape theirs, with or without a word
# naming it (香港居民陈大文（A123456(7)）).
_CODE_EDGE = r"[0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]"
_BRACKETED_ID = re.compile(rf"(?<!{_CODE_EDGE})(?:{_LETTER}{{1,2}}{_DIGIT}{{6}}|[157\uff11\uff15\uff17]{_DIGIT}{{6}})"
                           rf"[ \u3000]?[(（][ \u3000]?[0-9Aa\uff10-\uff19\uff21\uff41][ \u3000]?[)）]")
# Only these digits can begin an ID or mobile number above: a text without any needs no regex.
_ANY_DIGIT = re.compile(_LOOSE_DIGIT)
# A text with none of those digits and none of the address words below is never changed: one search says so.
_MAYBE_MASKED = re.compile(rf"[\d{_DIGIT_LOOKING}住址籍居]|户口")


def _token(text: str, start: int, end: int) -> str:
    """The letters and digits around a match: the code it is part of."""
    while start > 0 and _ALNUM.match(text[start - 1]):
        start -= 1
    while end < len(text) and _ALNUM.match(text[end]):
        end += 1
    return normalise_code(text[start:end])


def _mask_id(match: re.Match[str]) -> str:
    code = normalise_code(_SEPARATORS.sub("", match.group()).translate(_AS_X))
    if is_valid_resident_id(code):
        return mask_person_id(code)
    if len(code) == 15 and _SEPARATORS.search(match.group()) and not looks_like_old_person_id(code):
        return match.group()  # 15 digits broken up, without a birth date: a date range, a document number
    if len(code) == 17 and not (code[0] in "12345678" and _could_begin_date(code[6:14])):
        return match.group()  # 17 digits without a region and birth date: an account, a serial number
    # A firm's USCC, all digits or with letters around these digits, is not a person's number.
    for candidate in (code, _token(match.string, match.start(), match.end())):
        if len(candidate) == 18 and is_valid_uscc(candidate):
            return match.group()
    return mask_person_id(code)


def _mask_partly_masked_id(match: re.Match[str]) -> str:
    written = match.group()
    if not any(mark in written for mark in _MASK_MARK):
        return written  # a whole number: `_mask_id` decided
    code = normalise_code(_SEPARATORS.sub("", written).translate(_AS_X))
    if not any(c.isdigit() for c in code[6:-4]):
        return written  # shows nothing this module's form hides (1101**********7774, 110101********7774)
    return mask_person_id(code)


def _mask_mobile(match: re.Match[str]) -> str:
    return f"{match.group(1) or ''}{match.group(2)}****{match.group(4)}"


def _mask_document(match: re.Match[str]) -> str:
    code = normalise_code(re.sub(r"[(（)）]", "", _SEPARATORS.sub("", match.group(2))))
    # A firm's code after 证件号码, or no number at all; a passport's or permit's number is one even where
    # it passes the organisation-code check (E12345678: 1 in 11 do)
    if (is_valid_uscc(code) or is_valid_org_code(code) and not is_document_number(code)
            or sum(c.isdigit() for c in code) < 6):
        return match.group()
    return match.group(1) + mask_document_number(code)


# A code written in free text: letters and digits, with at least one digit, spaces, dashes, dots or
# slashes only before a digit ("219-09-9999", "1 85 05 78 006 084 36", "RSSMRA85T10A562S")
_CODE_CHARACTER = r"[0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]"
_CODE_IN_TEXT = re.compile(rf"(?<!{_CODE_CHARACTER}){_CODE_CHARACTER}*\d(?:{_CODE_CHARACTER}|[ \-./](?=\d))*")


class PersonNumbers:
    """A pack's own schemes of persons' numbers (`person: true`: a French NIR, a US SSN), found in free
    text: a court writes the debtor's number into the obligation as readily as into the code column.
    A code of such a scheme's shape (its pattern, or its validator's length and alphabet) keeps its
    last two characters only, whether or not its check holds. `Pack.person_numbers` gives one."""

    def __init__(self, schemes: tuple[tuple[str, str | None, str | None], ...]):
        """`schemes`: (scheme, validator, pattern) as the pack declares them."""
        self._schemes = code_reader(schemes).others

    def _mask(self, match: re.Match[str]) -> str:
        code = normalise_code(match.group())
        if any(scheme.read(code) is not None for scheme in self._schemes):
            return mask_document_number(code)
        return match.group()

    def mask(self, text: str) -> str:
        return _CODE_IN_TEXT.sub(self._mask, text)


def _mask_bracketed_id(match: re.Match[str]) -> str:
    return mask_document_number(re.sub(r"[(（)）\s]", "", match.group()))


def mask_text(text: str, person_numbers: PersonNumbers | None = None) -> str:
    """The text with persons' ID numbers, mobile numbers and addresses masked (see the module), and
    the numbers of the pack's own schemes of persons' numbers (`person_numbers`)."""
    if not text or not _MAYBE_MASKED.search(text):
        return text
    if person_numbers is not None and _ANY_DIGIT.search(text):
        text = person_numbers.mask(text)
    if _ANY_DIGIT.search(text):
        text = _LOOSE_ID.sub(_mask_loose_id, text)
        text = _ID_IN_TEXT.sub(_mask_id, text)
        if "\n" in text or "\r" in text:
            text = _ID_IN_WRAPPED_TEXT.sub(_mask_id, text)
        if "*" in text or "\uff0a" in text:
            text = _PARTLY_MASKED_ID.sub(_mask_partly_masked_id, text)
        text = _MOBILE.sub(_mask_mobile, text)
        # a fast path: no document word, no document
        if "证" in text or "护照" in text or "居留" in text or _FOREIGN_DOCUMENT_HINT.search(text):
            text = _DOCUMENT.sub(_mask_document, text)
        if "(" in text or "（" in text:
            text = _BRACKETED_ID.sub(_mask_bracketed_id, text)
    if any(word in text for word in ("住", "址", "籍", "居", "户口")):  # a fast path: no address word, no address
        text = _ADDRESS.sub(_mask_address, text)
    return text


_PLAIN = frozenset({bool, int, float, dt.date, dt.datetime})  # values no mask touches
# The keys of a public document that hold an entity key (opaque, or a firm's USCC): never masked.
ENTITY_KEYS = frozenset({"key", "entity"})
# The key holding a record's fields as the authority sent them: their names are the pack's (a field
# may be called `key` or `entity`), so nothing inside is an entity key and every value is masked.
RECORD_FIELDS = "fields"


class Masker:
    """`mask_text` and `mask_public` with each distinct string masked once: a dump repeats the
    same names, authorities, categories and field values across millions of rows. Up to `limit`
    strings of at most `longest` characters are remembered (a long text seldom repeats, and would
    hold memory); the rest are masked each time: the same results either way."""

    def __init__(self, limit: int = 1_000_000, longest: int = 64, person_numbers: PersonNumbers | None = None):
        self._seen: dict[str, str] = {}
        self._limit, self._longest = limit, longest
        self._person_numbers = person_numbers

    @property
    def seen(self) -> dict[str, str]:
        """The strings masked so far and their masked text (a hot loop looks them up inline)."""
        return self._seen

    def text(self, value: str) -> str:
        masked = self._seen.get(value)
        if masked is None:
            masked = mask_text(value, self._person_numbers)
            if len(value) <= self._longest and len(self._seen) < self._limit:
                self._seen[value] = masked
        return masked

    def column(self, values: list[Any]) -> list[Any]:
        """One column of text (None kept): each value as `mask_text` gives it."""
        return [None if v is None else self.text(v) for v in values]

    def public(self, value: Any, keep: frozenset[str] = ENTITY_KEYS) -> Any:
        """`mask_public`, cached (the hot loop of a dump: exact types first, cache looked up inline)."""
        kind = type(value)
        if kind is str or isinstance(value, str):
            masked = self._seen.get(value)
            return masked if masked is not None else self.text(value)
        if kind is dict or isinstance(value, dict):
            public, seen = self.public, self._seen
            return {k: v if k in keep or v is None or type(v) in _PLAIN
                    else (seen.get(v) or self.text(v)) if type(v) is str
                    else public(v, frozenset() if k == RECORD_FIELDS else keep)
                    for k, v in value.items()}
        if kind is list or isinstance(value, list):
            return [self.public(v, keep) for v in value]
        return value


def mask_value(value: Any, person_numbers: PersonNumbers | None = None) -> Any:
    """`mask_text` through lists and mappings (a record's fields); other values as they are."""
    if isinstance(value, str):
        return mask_text(value, person_numbers)
    if isinstance(value, list):
        return [mask_value(v, person_numbers) for v in value]
    if isinstance(value, dict):
        return {k: mask_value(v, person_numbers) for k, v in value.items()}
    return value


_ID_PREFIX = re.compile(r"^[1-8][0-9]{5}(?P<rest>[0-9]*X?)$")


def _could_begin_date(digits: str) -> bool:
    """Could these digits begin a birth date YYYYMMDD from 1800 to 2099?"""
    if not any(century.startswith(digits[:2]) for century in ("18", "19", "20")):
        return False
    if len(digits) >= 5 and digits[4] not in "01":
        return False
    if len(digits) >= 6 and not "01" <= digits[4:6] <= "12":
        return False
    if len(digits) >= 7 and digits[6] not in "0123":
        return False
    if len(digits) >= 8:
        try:
            dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
        except ValueError:
            return False
    return True


def could_be_person_id(term: str) -> bool:
    """A search term that is a person's ID number, or its first 8 characters or more.

    Region (6 digits, first 1-8), then the start of a birth date: 18xx/19xx/20xx for an 18-digit
    number; any valid YYMMDD for a 15-digit one, which is then recognised only whole.
    """
    code = normalise_code(term)
    if is_valid_resident_id(code):
        return True
    match = _ID_PREFIX.match(code)
    if not match or len(code) < 8 or len(code) > 18:
        return False
    rest = match.group("rest")
    if rest.endswith("X") and len(code) != 18:
        return False
    if len(code) == 15 and _could_begin_date("19" + rest[:6]):
        return True
    return _could_begin_date(rest[:8])


def looks_like_old_person_id(code: str) -> bool:
    """A 15-digit number with the layout of a first-generation ID number (GB 11643-1989): region,
    birth date YYMMDD of the 1900s, sequence. Some firms' registration numbers fit it too."""
    code = normalise_code(code)
    if len(code) != 15 or not code.isdigit() or code[0] not in "12345678":
        return False
    try:
        dt.date(1900 + int(code[6:8]), int(code[8:10]), int(code[10:12]))
    except ValueError:
        return False
    return True


def may_be_person_id(code: str) -> bool:
    """A code that is, or may be, a person's ID number, whatever column it came in: a valid one, one
    mistyped (18 characters with a region and a birth date that are no firm's valid USCC), or 15
    digits with a first-generation number's layout."""
    code = normalise_code(code)
    if is_valid_resident_id(code) or looks_like_old_person_id(code):
        return True
    return len(code) == 18 and could_be_person_id(code) and not is_valid_uscc(code)


def mask_identifier(scheme: str, value: str, person_schemes: frozenset[str] | set[str]) -> str:
    """An identifier as a public surface shows it: a person's masked, whatever scheme it was filed under
    (an individual business registered by its owner's ID number, mistyped or not). `person_schemes`:
    the pack's (`Pack.person_schemes`). A number of a pack's own person scheme keeps its last two
    characters only: the first six that a resident ID's region is would be a French NIR's sex, birth
    year, month and département."""
    if scheme in person_schemes and scheme != "resident_id":  # first: a 15-digit NIR reads as an old ID too
        return mask_document_number(value)
    if scheme == "resident_id" or may_be_person_id(value):
        return mask_person_id(value)
    return value


def mask_public(value: Any, keep: frozenset[str] = ENTITY_KEYS, person_numbers: PersonNumbers | None = None) -> Any:
    """`mask_value` over a public document, except the entity keys in it (`keep`): they are opaque
    or a firm's USCC, and pages link by them. A record's fields (`RECORD_FIELDS`) are masked whole,
    whatever their names."""
    if isinstance(value, dict):
        return {k: v if k in keep else mask_value(v, person_numbers) if k == RECORD_FIELDS
                else mask_public(v, keep, person_numbers) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_public(v, keep, person_numbers) for v in value]
    return mask_text(value, person_numbers) if isinstance(value, str) else value
