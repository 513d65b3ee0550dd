"""Column-wise validation of a chunk of rows: ingestion's fast path.

A chunk of rows is turned into columns and validated with array operations (pyarrow compute,
numpy): the plain forms agencies use for nearly every cell are recognised, converted and
checked, and each valid row's `fields` JSON, `extras` JSON and content-hash input (the fields
alone) are built as string columns. A row with anything outside those forms is not decided here: it goes to
`RowValidator.validate`, the one row-wise validator, so every rejection and every unusual row
(a person, a code that fails its check, a date written 2023年5月1日, a spreadsheet number...)
is its work. `tests/test_columnar.py` runs both over the test corpus and compares.

A row takes the fast path when all of these hold:

- every mapped or extra cell is text or empty (a cell of white space and invisible characters only,
  a zero-width space or a byte order mark, is empty: `values.is_blank`), with no surrounding white
  space and no character JSON escapes (control characters, quote, backslash, U+2028/9), no NUL;
- no cell in an unknown column whose header another unknown column shares (blank headers, mostly);
- every required field is present;
- dates are ISO `YYYY-MM-DD`, a real day between 1900 and 2100, the decision date no later than
  the pack allows (array parse and a round trip);
- amounts are plain decimals (digits, at most two decimals, below 10^13), converted by integer
  arithmetic so the value equals `parse_amount`'s; integers are plain; enums and name lists go
  through the row validator's own converter once per distinct value of the chunk;
- the subject: a name that NFKC leaves unchanged, not shaped like a person's name, not ending
  in an ID number; no subject kind written; its code, if any, in the first code column and a
  USCC whose check character holds (weighted sum mod 31 over the chunk's codes as an array);
  no other person's ID number on the row;
- no code column (the subject's or another's, an authority's USCC) nor the record key holds a
  number a spreadsheet wrote in scientific notation (9.14401E+17).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from xinyong.domain.identifiers import USCC_ALPHABET
from xinyong.domain.pack import FieldType
from xinyong.domain.records import RowValidator, _identity
from xinyong.domain.values import INVISIBLE, SPREADSHEET_ERRORS

# Every character Python's str.strip() removes: a cell with one at an edge is left to the row path.
# Listed rather than found by testing all 1.1 million code points at import (~0.2 s of every
# `xinyong ingest`); tests/test_columnar.py checks the list against str.isspace.
SPACE_CODES = (0x9, 0xA, 0xB, 0xC, 0xD, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002,
               0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000)
_SPACE_CHARS = "".join(f"\\x{{{c:x}}}" for c in SPACE_CODES)
_UNSAFE = (f"^[{_SPACE_CHARS}]|[{_SPACE_CHARS}]$"
           r"|[\x{0}-\x{1f}\x{7f}\x{2028}\x{2029}\x{22}\x{5c}]"
           # a failed formula's text (#N/A): the row validator refuses it
           "|^(?:" + "|".join(sorted(error.replace("?", r"\?") for error in SPREADSHEET_ERRORS)) + ")$")
# a cell of white space and invisible characters only: empty, as values.is_blank says
_BLANK = "^[" + _SPACE_CHARS + "".join(f"\\x{{{ord(c):x}}}" for c in INVISIBLE) + "]*$"
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_PLAIN_AMOUNT = r"^[0-9]{1,13}(\.[0-9]{1,2})?$"
_PLAIN_INTEGER = r"^(0|[1-9][0-9]{0,14})$"
_ENDS_IN_NUMBER = f"[0-9Xx][{_SPACE_CHARS})）]*$"  # what split_person_id needs at the end of a name
_USCC_SHAPE = r"^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$"
_CODE_AS_WRITTEN = r"^[0-9A-Z]+$"  # normalise_code leaves it as it is
# a code a spreadsheet wrote as a number (9.14401E+17), which the row validator refuses
# (records.code_digits_lost); wider than its pattern, so every such cell reaches it
_SPREADSHEET_NUMBER = r"[Ee]\+"
_HAN = r"\x{3400}-\x{9fff}"
_USCC_VALUE = np.full(256, 0, dtype=np.int64)
for _i, _c in enumerate(USCC_ALPHABET):
    _USCC_VALUE[ord(_c)] = _i
_USCC_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
_MAX_EXACT = 2**53


class FastRecord(NamedTuple):
    """A row the fast path validated: what `ValidRecord` carries, JSON already serialised."""

    record_key: str
    natural_key: str
    content_hash: str
    subject_name: str
    subject_code: str | None
    subject_scheme: str | None
    subject_code_verified: bool
    decision_date: str | None
    fields: str
    extras: str
    sorted_fields: bytes  # the fields' JSON with its keys sorted: what the content hash covers


def _quoted(text: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise('"', text, '"', "")


def _true(mask: Any) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


class ColumnValidator:
    """The fast path beside one `RowValidator` (same pack, category, authority and mapping)."""

    def __init__(self, validator: RowValidator):
        self.row = validator
        category = validator.category
        subject = category.subject
        self.width = len(validator.mapping.headers)
        self.columns = validator.columns
        self.types = {name: validator.specs[name].type for _, name, _ in self.columns}
        self.index_of = {name: index for index, name, _ in self.columns}
        self.extras = validator.mapping.extras
        self.alternates = validator.mapping.alternates
        self.headers = validator.mapping.headers
        self.name_field = subject.name_field
        self.kind_field = subject.kind_field
        self.code_fields = [f for f, _ in validator.code_fields]
        # the fast path knows the USCC alone: a pack whose codes are read otherwise takes the row path
        self.first_code_is_uscc = (bool(validator.code_fields) and validator.code_fields[0][1] == "uscc"
                                   and validator.codes.only_builtin)
        self.other_person_fields = validator.other_person_fields
        self.required = validator.required
        self.date_field = category.date_field
        self.latest = validator.latest_decision
        self.max_amount = validator.plausibility.max_amount
        self.factor_of = {name: validator.mapping.factor_of.get(index, 1.0) for index, name, _ in self.columns}
        self.key_field = category.natural_key
        self.key_is_code = validator.key_is_code
        self.key_includes_subject = category.key_includes_subject
        self.authority = validator.authority
        rules = validator.person_names
        self.person_patterns = (f"^[{_HAN}]{{2,{rules.max_length}}}$",
                                f"^[{_HAN}]{{1,10}}[·・][{_HAN}][{_HAN}·・]{{0,20}}$")
        self.organisation_endings = tuple(rules.organisation_endings)
        # without a name column every row takes the row path; so does a relations row (its role and
        # party code are checked by the row validator alone: such files are a firm's few rows)
        self.usable = self.name_field in self.index_of and category.relations is None

    def fast(self, rows: Sequence[Sequence[Any]]) -> list[FastRecord | None]:
        """One entry per row: its record, or None where the row validator must decide."""
        n = len(rows)
        if not n or not self.usable:
            return [None] * n
        ok = np.ones(n, dtype=bool)
        if all(len(r) == self.width for r in rows):
            transposed = list(zip(*rows))

            def cells(index: int) -> Sequence[Any]:
                return transposed[index]
        else:
            def cells(index: int) -> Sequence[Any]:
                return [r[index] if index < len(r) else None for r in rows]

        def column(index: int) -> tuple[pa.Array, np.ndarray]:
            """A column as text (empty -> null) and where a cell is present."""
            values = cells(index)
            try:
                array = pa.array(values, type=pa.string())
            except (pa.ArrowTypeError, pa.ArrowInvalid):  # numbers and dates from a workbook or JSON
                other = np.fromiter((not (v is None or type(v) is str) for v in values), dtype=bool, count=n)
                ok[other] = False
                array = pa.array([v if type(v) is str else None for v in values], type=pa.string())
            present = ~_true(pc.match_substring_regex(array, _BLANK)) & _true(pc.is_valid(array))
            ok[_true(pc.match_substring_regex(array, _UNSAFE))] = False
            return array, present

        texts: dict[str, pa.Array] = {}
        jsons: dict[str, pa.Array] = {}
        presents: dict[str, np.ndarray] = {}
        for index, name, convert in self.columns:
            array, present = column(index)
            texts[name], presents[name] = array, present
            kind = self.types[name]
            if convert is _identity:
                jsons[name] = _quoted(array)
            elif kind == FieldType.date:
                jsons[name] = self._dates(name, array, present, ok)
            elif kind == FieldType.amount:
                jsons[name] = self._amounts(name, array, present, ok)
            elif kind == FieldType.integer:
                ok[present & ~_true(pc.match_substring_regex(array, _PLAIN_INTEGER))] = False
                jsons[name] = array
            else:  # enums, subject kinds, name lists: the row validator's converter, once per distinct value
                jsons[name] = self._by_value(array, present, convert, ok)
            if name in self.row.code_names or name == self.key_field:  # any code column (an authority's
                # too, not only the subject's), and the record key (a 17-digit case number)
                ok[_true(pc.match_substring_regex(array, _SPREADSHEET_NUMBER))] = False
        for index, others in self.alternates.items():  # the field under another key: the row path reads it
            field = self.row.mapping.field_of[index]
            for other in others:
                ok[~presents[field] & column(other)[1]] = False
        for name in self.required:
            if name not in presents:
                return [None] * n
            ok &= presents[name]
        name = texts[self.name_field]
        ok &= presents[self.name_field]
        ok &= _true(pc.equal(pc.utf8_normalize(name, "NFKC"), name))
        ok[_true(pc.match_substring_regex(name, _ENDS_IN_NUMBER))] = False
        person = _true(pc.or_(pc.match_substring_regex(name, self.person_patterns[0]),
                              pc.match_substring_regex(name, self.person_patterns[1])))
        for ending in self.organisation_endings:
            person &= ~_true(pc.ends_with(name, ending))
        ok &= ~person
        if self.kind_field in presents:
            ok &= ~presents[self.kind_field]
        for field in self.other_person_fields:
            if field in presents:
                ok &= ~presents[field]
        # the subject's code: a verified USCC in the first code column, or no code at all
        code_fields = [f for f in self.code_fields if f in presents]
        first = self.code_fields[0] if self.code_fields else None
        has_code = np.zeros(n, dtype=bool)
        if first in presents and self.first_code_is_uscc:
            has_code = presents[first]
            ok[has_code & ~self._uscc_valid(texts[first])] = False
        for field in code_fields:
            if field != first or not self.first_code_is_uscc:
                ok[~has_code & presents[field]] = False
        key = texts[self.key_field]
        if self.key_is_code:
            ok[~_true(pc.match_substring_regex(key, _CODE_AS_WRITTEN))] = False
        if not ok.any():
            return [None] * n

        chosen = pa.array(ok)
        pick = lambda a: pc.filter(a, chosen)  # noqa: E731
        order = [name for _, name, _ in self.columns]
        pieces = {f: pc.if_else(pa.array(presents[f]), pc.binary_join_element_wise(
            orjson.dumps(f).decode() + ":", jsons[f], ""), None) for f in order}
        extras = {}
        repeated = {h for h, count in Counter(self.headers[i] for i in self.extras).items() if count > 1}
        for index in self.extras:
            array, present = column(index)
            header = self.headers[index]
            if header in repeated:
                # columns under one header (blank ones, mostly: a file's trailing commas) make one
                # key of the row's extras, which the row validator fills cell by cell
                ok[present] = False
                continue
            extras[header] = pc.if_else(pa.array(present), pc.binary_join_element_wise(
                orjson.dumps(header).decode() + ":", _quoted(array), ""), None)
        chosen = pa.array(ok)  # column() may have cleared rows of the extras
        if not ok.any():
            return [None] * n

        def joined(parts: dict[str, pa.Array], keys: list[str]) -> pa.Array:
            if not keys:
                return pa.array([""] * int(ok.sum()), type=pa.string())
            if len(keys) == 1:  # a single array and a separator would be read as a list to join
                return pc.fill_null(pick(parts[keys[0]]), "")
            # pyarrow's join skipping nulls gives no element at all for a row whose parts are all null
            # (26.0.1; narwhals-dev/narwhals#3965): the rows after it took their neighbours' JSON (two
            # unknown columns, both empty on one row). An empty part in front, never null, keeps every
            # row; its comma is cut.
            whole = pc.binary_join_element_wise("", *(pick(parts[k]) for k in keys), ",", null_handling="skip")
            return pc.utf8_slice_codeunits(whole, 1)

        fields_json = pc.binary_join_element_wise("{", joined(pieces, order), "}", "")
        extras_json = pc.binary_join_element_wise("{", joined(extras, list(extras)), "}", "")
        blob = pc.binary_join_element_wise("{", joined(pieces, sorted(order)), "}", "")  # records.content_hash
        if not len(fields_json) == len(extras_json) == len(blob) == int(ok.sum()):
            return [None] * n  # a kernel that dropped an element would give rows their neighbours' JSON
        blake2b = hashlib.blake2b
        blobs = pc.cast(blob, pa.binary()).to_pylist()
        hashes = [blake2b(b, digest_size=16).hexdigest() for b in blobs]
        names = pick(name).to_pylist()
        keys = pick(key).to_pylist()
        codes = pick(pc.if_else(pa.array(has_code), texts[first], None)).to_pylist() if first in texts \
            else [None] * len(names)
        dates = (pick(pc.if_else(pa.array(presents[self.date_field]), texts[self.date_field], None)).to_pylist()
                 if self.date_field in texts else [None] * len(names))
        prefix = f"{self.authority}:"
        out: list[FastRecord | None] = [None] * n
        for position, fields, extra, digest, sorted_fields, subject, code, natural, date in zip(
                np.flatnonzero(ok).tolist(), fields_json.to_pylist(), extras_json.to_pylist(),
                hashes, blobs, names, codes, keys, dates):
            if self.key_includes_subject:
                natural = f"{natural}#{code or subject}"
            out[position] = FastRecord(prefix + natural, natural, digest, subject, code,
                                       "uscc" if code else None, code is not None, date, fields, extra, sorted_fields)
        return out

    def _dates(self, name: str, array: pa.Array, present: np.ndarray, ok: np.ndarray) -> pa.Array:
        iso = pc.match_substring_regex(array, _ISO_DATE)
        text = pc.if_else(iso, array, None)
        parsed = pc.cast(pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True), pa.date32())
        # no 2023-02-30 rolled over; a date cast to text is ISO (strftime gives the same, 10 times slower)
        good = pc.equal(pc.cast(parsed, pa.string()), text)
        year = pc.year(parsed)
        good = pc.and_(good, pc.and_(pc.greater_equal(year, 1900), pc.less_equal(year, 2100)))
        if name == self.date_field and self.latest is not None:
            good = pc.and_(good, pc.less_equal(parsed, pa.scalar(self.latest, pa.date32())))
        ok[present & ~_true(good)] = False
        return _quoted(array)

    def _amounts(self, name: str, array: pa.Array, present: np.ndarray, ok: np.ndarray) -> pa.Array:
        """parse_amount's value by exact arithmetic: the digits times the unit, divided by 10^decimals
        (one correctly rounded division), which is what round(float(text) * unit, 2) gives."""
        factor = self.factor_of[name]
        plain = _true(pc.match_substring_regex(array, _PLAIN_AMOUNT))
        ok[present & ~plain] = False
        if factor != int(factor) or not plain.any():
            ok[present] = False
            return pa.nulls(len(array), pa.string())
        text = pc.if_else(pa.array(plain), array, "0")
        dot = pc.find_substring(text, ".").to_numpy(zero_copy_only=False)
        length = pc.utf8_length(text).to_numpy(zero_copy_only=False)
        decimals = np.where(dot >= 0, length - dot - 1, 0)
        digits = pc.cast(pc.replace_substring(text, ".", ""), pa.int64()).to_numpy(zero_copy_only=False)
        scaled = digits * int(factor)
        exact = (digits < _MAX_EXACT // max(int(factor), 1))
        value = scaled.astype(np.float64) / np.array([1.0, 10.0, 100.0])[decimals]
        fine = exact & (value <= self.max_amount) & (value < 1e13)
        ok[present & ~fine] = False
        encoded = pc.dictionary_encode(pa.array(np.where(present & fine, value, 0.0)))
        texts = pa.array([orjson.dumps(v).decode() for v in encoded.dictionary.to_pylist()], type=pa.string())
        return pc.take(texts, encoded.indices)

    @staticmethod
    def _by_value(array: pa.Array, present: np.ndarray, convert: Any, ok: np.ndarray) -> pa.Array:
        encoded = pc.dictionary_encode(array)
        converted = []
        for value in encoded.dictionary.to_pylist():
            try:
                converted.append(orjson.dumps(convert(value)).decode())
            except ValueError:
                converted.append(None)  # the row validator rejects it, with its reason
        result = pc.take(pa.array(converted, type=pa.string()), encoded.indices)
        ok[present & ~_true(pc.is_valid(result))] = False
        return result

    @staticmethod
    def _uscc_valid(codes: pa.Array) -> np.ndarray:
        """Shape and check character of each code, the weighted sum mod 31 as array arithmetic."""
        shaped = _true(pc.match_substring_regex(codes, _USCC_SHAPE))
        valid = np.zeros(len(codes), dtype=bool)
        if not shaped.any():
            return valid
        chosen = pc.filter(codes, pa.array(shaped))  # each exactly 18 ASCII bytes, back to back
        offsets = np.frombuffer(chosen.buffers()[1], dtype=np.int32)[chosen.offset:chosen.offset + len(chosen) + 1]
        raw = np.frombuffer(chosen.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
        values = _USCC_VALUE[raw.reshape(-1, 18)]
        check = (31 - (values[:, :17] @ _USCC_WEIGHTS) % 31) % 31
        valid[shaped] = check == values[:, 17]
        return valid
