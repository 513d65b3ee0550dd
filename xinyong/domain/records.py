"""Turning one row of an agency's file into a validated record, or a reasoned rejection.

Pure: the ingestion service feeds rows (lists of cell values) and stores what comes out.
Column headers are matched to the category's fields through the pack's synonyms (after
unifying full-/half-width forms and spaces), plus an optional explicit mapping.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from xinyong.domain.calendar import add_months
from xinyong.domain.conditions import holds
from xinyong.domain.identifiers import mask_person_id, normalise_code, split_person_id
from xinyong.domain.pack import (
    CategorySpec,
    Classification,
    FieldSpec,
    FieldType,
    Pack,
    PersonNamesSpec,
    PublicityTier,
    SubjectKind,
)
from xinyong.domain.names import normalise_name
from xinyong.domain.values import (
    AMOUNT_UNITS,
    SPREADSHEET_ERRORS,
    clean_text,
    is_blank,
    normalise_header,
    parse_amount,
    parse_date,
    parse_integer,
    parse_share,
    split_names,
    to_half_width,
)

PERSON_CODE_FIELDS = frozenset({"person_id", "legal_rep_id"})


def looks_like_person_name(name: str | None, rules: PersonNamesSpec) -> bool:
    """A person's name as agencies write it: 2 to `max_length` Han characters, or a transcribed
    name with a middle dot (阿依古丽·买买提), not ending like an organisation's name."""
    if not name:
        return False
    han = r"[\u3400-\u9fff]"
    if not (re.fullmatch(f"{han}{{2,{rules.max_length}}}", name)
            or re.fullmatch(f"{han}{{1,10}}[·・]{han}[{han[1:-1]}·・]{{0,20}}", name)):
        return False
    return not name.endswith(tuple(rules.organisation_endings))


def family_and_given_name(name: str, rules: PersonNamesSpec) -> bool:
    """A family name of the pack and a given name of one or two characters (王伟, 欧阳娜娜), or a
    transcribed name (阿依古丽·买买提): a person's name whatever else it may also be. A pack without
    family names cannot tell, and says every name may be a person's."""
    if not rules.surnames or re.search("[·・]", name):
        return True
    name = normalise_name(name)  # 歐陽娜娜 is 欧阳娜娜
    return any(name.startswith(family) and 1 <= len(name) - len(family) <= 2 for family in rules.surnames)


# Columns that `xinyong batch rejects` adds after the original headers.
REJECT_COLUMNS = ("原始行 row", "问题字段 field", "原因 reason")
REJECT_KEYS = frozenset(normalise_header(h) for h in REJECT_COLUMNS)


class FileRefused(Exception):
    """The whole file is unusable; nothing of it is stored. The message is one line."""


@dataclass(frozen=True, slots=True)
class Rejection:
    field: str | None
    reason: str  # in English
    code: str = "invalid_value"  # domain.values.REASON_CODES
    params: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ValidRecord:
    natural_key: str
    record_key: str
    fields: dict[str, Any]
    extras: dict[str, str]
    subject_name: str | None
    subject_kind: str | None
    subject_code: str | None
    subject_scheme: str | None
    subject_code_verified: bool
    decision_date: str | None
    warnings: list[str] = field(default_factory=list)  # identifier problems only
    notes: list[str] = field(default_factory=list)  # other observations on the row
    content_hash: str = ""


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    headers: tuple[str, ...]
    field_of: dict[int, str]  # column index -> field name
    factor_of: dict[int, float]  # column index -> unit factor for amounts (alternates' included)
    extras: tuple[int, ...]  # columns the pack does not know, and alternates
    # a mapped column -> later columns under other headers of its field (a JSON Lines file whose
    # records name a field by different keys): read, in order, where the mapped column's cell is
    # empty; else they stay extras, as before
    alternates: dict[int, tuple[int, ...]]

    def as_dict(self) -> dict[str, str | None]:
        named = {other: self.field_of[index] for index, others in self.alternates.items() for other in others}
        return {h: self.field_of.get(i) or named.get(i) for i, h in enumerate(self.headers)}


_UNIT_FACTOR = {normalise_header(unit): factor for unit, factor in AMOUNT_UNITS}
_BRACKETED_UNIT = re.compile(r"(.+)\((" + "|".join(map(re.escape, _UNIT_FACTOR)) + r")\)")


def map_columns(pack: Pack, category: CategorySpec, headers: Sequence[str],
                explicit: dict[str, str] | None = None) -> ColumnMapping:
    """Match headers to fields: explicit mapping first, then canonical names, then synonyms."""
    specs = {f.name: f for f in pack.fields_of(category)}
    by_header: dict[str, str] = {}
    for spec in specs.values():
        for synonym in spec.headers:
            by_header.setdefault(normalise_header(synonym), spec.name)
    for name in specs:
        by_header[normalise_header(name)] = name
    explicit_norm = {normalise_header(h): f for h, f in (explicit or {}).items()}
    keys = [normalise_header(str(h)) for h in headers]
    field_of: dict[int, str] = {}
    # Explicitly mapped headers claim their fields first; then canonical names and synonyms.
    for index, key in enumerate(keys):
        if key in explicit_norm and explicit_norm[key] not in field_of.values():
            field_of[index] = explicit_norm[key]
    alternates: dict[int, list[int]] = {}
    unit_of: dict[int, float] = {}  # a column headed by a known header and its unit in brackets
    for index, key in enumerate(keys):
        name = by_header.get(key)
        if name is None and (bracketed := _BRACKETED_UNIT.fullmatch(key)) is not None:
            # 罚没金额（万元）, 罚款金额（元）: the amount's header, in the unit the brackets say
            base = by_header.get(bracketed[1])
            if base is not None and specs[base].type == FieldType.amount:
                name, unit_of[index] = base, _UNIT_FACTOR[bracketed[2]]
        if index in field_of or key in REJECT_KEYS or not name:
            continue
        holder = next((i for i, field in field_of.items() if field == name), None)
        if holder is None:
            field_of[index] = name
        else:
            alternates.setdefault(holder, []).append(index)
    named = {**field_of, **{i: field_of[holder] for holder, others in alternates.items() for i in others}}
    factor_of = {index: factor for index, name in named.items()
                 for marker, factor in specs[name].units.items() if normalise_header(marker) in keys[index]}
    factor_of.update({index: factor for index, factor in unit_of.items() if index in named})
    # The reason columns of our own rejects file are not facts of the record.
    extras = [i for i, key in enumerate(keys) if i not in field_of and key not in REJECT_KEYS]
    return ColumnMapping(tuple(str(h) for h in headers), field_of, factor_of, tuple(extras),
                         {holder: tuple(others) for holder, others in alternates.items()})


def check_mapping(pack: Pack, category: CategorySpec, mapping: ColumnMapping) -> None:
    """Refuse a file whose columns cannot make a single valid record."""
    mapped = set(mapping.field_of.values())
    if not mapped:
        raise FileRefused(f"no recognisable columns for category {category.code!r} "
                          f"(headers: {', '.join(mapping.headers[:8]) or 'none'})")
    specs = pack.fields_of(category)
    missing = [f.name for f in specs if f.required and f.name not in mapped]
    if missing:
        raise FileRefused(f"no column for required field(s) {', '.join(missing)} "
                          f"(headers: {', '.join(mapping.headers[:8])})")
    subject = category.subject
    if subject.name_field not in mapped and not mapped.intersection(subject.code_fields):
        raise FileRefused("no column naming the subject (neither a name nor a code column)")


def _memoised(convert: Callable[[Any], Any], size: int = 65536) -> Callable[[Any], Any]:
    """Agency files repeat the same dates, amounts and codes: convert each value once."""
    cache: dict[Any, Any] = {}

    def memo(value: Any) -> Any:
        if value.__class__ is bool:  # True == 1 as a key: a JSON true would take the converted number 1's value
            return convert(value)
        try:
            return cache[value]
        except KeyError:
            pass
        result = convert(value)  # a ValueError is not cached: it rejects the row
        if len(cache) >= size:
            cache.clear()
        cache[value] = result
        return result
    return memo


def _text(cell: Any) -> str | None:
    """A cell as the validator reads it: trimmed text; empty (None or "") when it holds nothing but white
    space and invisible characters, which is as empty as it looks."""
    text = cell.strip() if isinstance(cell, str) else (None if cell is None else clean_text(cell))
    return None if text is None or is_blank(text) else text


def _identity(value: Any) -> Any:
    """Text fields: the reader's cell, already trimmed."""
    return value


MAX_INTEGER = 2**53  # beyond it a JSON number loses digits: no count or amount of a record is that large
# How a spreadsheet writes a long number it holds (Excel's CSV export of a code column left as numbers)
_SCIENTIFIC = re.compile(r"\d(?:\.\d+)?E\+\d+", re.IGNORECASE)


def code_digits_lost(cell: Any, text: str) -> bool:
    """A code a spreadsheet turned into a number: a number cell of 16 digits or more (a spreadsheet
    keeps 15 significant digits, a float 15 to 17: an 18-digit USCC or ID number comes back with its
    last digits changed, a valid-looking wrong code), or such a number written in scientific notation."""
    if isinstance(cell, float):
        return abs(cell) >= 1e15
    return _SCIENTIFIC.fullmatch(text) is not None


class RowValidator:
    """Validates rows of one file against one category, with one column mapping.

    With `today` (the pack's today), the category's decision date may not be later than the
    pack's plausibility bound allows; amounts are bounded by the pack whatever the day.
    """

    def __init__(self, pack: Pack, category: CategorySpec, authority: str, mapping: ColumnMapping,
                 today: dt.date | None = None):
        self.category = category
        self.plausibility = pack.plausibility
        self.open_ended = frozenset(normalise_header(v) for v in pack.plausibility.open_ended)
        self.latest_decision = (today + dt.timedelta(days=pack.plausibility.decision_days_ahead)
                                if today is not None else None)
        self.authority = authority
        self.mapping = mapping
        # each unknown column its own key: columns under one header (blank ones, mostly: a file's
        # trailing commas) are "header", "header (2)", ... in file order, none overwriting another
        real = {mapping.headers[index] for index in mapping.extras}
        self.extra_keys: dict[int, str] = {}
        for index in mapping.extras:
            header = mapping.headers[index]
            key, n = header, 1
            while key in self.extra_keys.values() or (n > 1 and key in real):
                n += 1
                key = f"{header} ({n})"
            self.extra_keys[index] = key
        self.specs = {f.name: f for f in pack.fields_of(category)}
        self.person_names = pack.person_names
        self.person_schemes = pack.person_schemes
        self.required = [f.name for f in self.specs.values() if f.required]
        self.code_names = frozenset(f.name for f in self.specs.values() if f.type == FieldType.code)
        self.kind_synonyms = {normalise_header(k): v.value for k, v in pack.kind_synonyms.items()}
        for kind in SubjectKind:
            self.kind_synonyms.setdefault(kind.value, kind.value)
        self.allows_persons = (category.person_legal_basis is not None
                               and SubjectKind.natural_person in category.subject_kinds)
        subject = category.subject
        self.code_fields = tuple((f, "resident_id" if f in PERSON_CODE_FIELDS else "uscc")
                                 for f in subject.code_fields)
        self.other_person_fields = tuple(f for f in sorted(PERSON_CODE_FIELDS)
                                         if f in self.specs and f not in subject.code_fields)
        self.codes = pack.code_reader()
        classify = self.codes.classify
        self.classify = _memoised(lambda key: classify(key[0], key[1], subject_kind=key[2], today=today))
        self.key_field = category.natural_key
        self.key_is_code = self.specs[category.natural_key].type == FieldType.code
        # the subject's code column for a person's ID number (restricted), if the category has one
        self.person_holder = next((f for f, prefer in self.code_fields if prefer == "resident_id"), None)
        self.relations = category.relations
        # a relations file whose party column is headed 股东 (董事, ...) lists parties in that role
        party_headers = [mapping.headers[i] for i, name in mapping.field_of.items()
                         if self.relations and name == self.relations.party_field]
        implied = {normalise_header(h): role for h, role in (self.relations.role_of_header.items()
                                                            if self.relations else ())}
        self.implied_role = implied.get(normalise_header(party_headers[0])) if party_headers else None
        self.columns: list[tuple[int, str, Callable[[Any], Any]]] = [
            (index, name, self._converter(self.specs[name], mapping.factor_of.get(index, 1.0)))
            for index, name in mapping.field_of.items()
        ]
        self.alternates = {index: [(other, self._converter(self.specs[mapping.field_of[index]],
                                                            mapping.factor_of.get(other, 1.0))) for other in others]
                           for index, others in mapping.alternates.items()}

    def _converter(self, spec: FieldSpec, factor: float) -> Callable[[Any], Any]:
        kind = spec.type
        if kind == FieldType.date:
            latest = self.latest_decision if spec.name == self.category.date_field else None
            days_ahead = self.plausibility.decision_days_ahead
            open_ended = self.open_ended if spec.name != self.category.date_field else frozenset()

            def date(v: Any) -> str | None:
                if open_ended and isinstance(v, str) and normalise_header(v) in open_ended:
                    return None  # 长期: no end, stored open-ended
                day = parse_date(v)
                if latest is not None and day > latest:
                    raise ValueError(f"decision date {day.isoformat()} is implausible: later than "
                                     f"{latest.isoformat()} (the pack's today + {days_ahead} day(s))")
                return day.isoformat()
            return _memoised(date)
        if kind == FieldType.amount:
            bound = self.plausibility.max_amount

            def amount(v: Any) -> float:
                value = parse_amount(v, factor)
                if value > bound:
                    raise ValueError(f"amount {clean_text(v)!r} is implausible (above the pack's bound of {bound:g})")
                return value
            return _memoised(amount)
        if kind == FieldType.integer:
            def integer(v: Any) -> int:
                value = parse_integer(v)
                if abs(value) > MAX_INTEGER:
                    raise ValueError(f"number {clean_text(v)[:40]!r} is implausibly large")
                return value
            return _memoised(integer)
        if kind == FieldType.names:
            return lambda v: split_names(clean_text(v))
        if kind == FieldType.share:
            return _memoised(parse_share)
        if kind == FieldType.enum:
            synonyms = {normalise_header(k): v for k, v in spec.value_synonyms.items()}
            allowed = {normalise_header(v): v for v in spec.values}

            def enum(v: Any) -> str:
                key = normalise_header(clean_text(v))
                if key in allowed:
                    return allowed[key]
                if key in synonyms:
                    return synonyms[key]
                raise ValueError(f"value {clean_text(v)!r} is not one of {', '.join(spec.values)}")
            return _memoised(enum)
        if kind == FieldType.kind:
            def subject_kind(v: Any) -> str:
                key = normalise_header(clean_text(v))
                if key not in self.kind_synonyms:
                    raise ValueError(f"unknown subject kind {clean_text(v)!r}")
                return self.kind_synonyms[key]
            return _memoised(subject_kind)
        return _identity

    def validate(self, cells: Sequence[Any]) -> ValidRecord | Rejection:
        values: dict[str, Any] = {}
        raw_text: dict[str, str] = {}
        width = len(cells)
        used: set[int] = set()  # alternates read for their field: no extras then
        for index, name, convert in self.columns:
            if index >= width:
                continue
            cell = cells[index]
            text = _text(cell)
            if not text:
                for other, convert_other in self.alternates.get(index, ()):  # the field under another key
                    if other < width and (text := _text(cells[other])):
                        cell, convert = cells[other], convert_other
                        used.add(other)
                        break
                else:
                    continue
            if "\x00" in text:  # no agency means it, and PostgreSQL text cannot hold it
                return Rejection(name, "contains a NUL character", "nul_character")
            if text in SPREADSHEET_ERRORS:
                reason = (f"{name}: {text} is the error of a spreadsheet formula, not a value; correct the "
                          "formula, or paste the values, and send the row again")
                return Rejection(name, reason, "invalid_value", {"text": reason})
            if (name in self.code_names or name == self.key_field) and code_digits_lost(cell, text):
                # never the code: its digits were changed by the spreadsheet, and may be another's code; nor
                # the record key (a 17-digit case number): it would be another case's, and replace it
                shown = "" if name in PERSON_CODE_FIELDS else f" {clean_text(cell)}"
                what = "code" if name in self.code_names else "number"
                reason = (f"{name}: the {what}{shown} was stored by the spreadsheet as a number, which keeps 15 "
                          "digits: its last digits are lost; format the column as text and send the row again")
                return Rejection(name, reason, "invalid_value", {"text": reason})
            try:
                values[name] = convert(text if isinstance(cell, str) or convert is _identity else cell)
            except ValueError as exc:
                return Rejection(name, str(exc), getattr(exc, "code", "invalid_value"),
                                 getattr(exc, "params", {"text": str(exc)}))
            raw_text[name] = text
        for name in self.required:
            if name not in values:
                return Rejection(name, f"required field {name} is empty", "required_empty", {"field": name})
        if self.relations is not None:
            problem = self._relation_fields(values)
            if problem is not None:
                return problem
        extras = {}
        headers = self.mapping.headers
        for index in self.mapping.extras:
            if index < width and index not in used:
                text = _text(cells[index])
                if text:
                    if "\x00" in text:
                        return Rejection(None, f"column {headers[index]!r} contains a NUL character")
                    extras[self.extra_keys[index]] = text
        return self._subject(values, raw_text, extras)

    def _relation_fields(self, values: dict[str, Any]) -> Rejection | None:
        """A relations row: its role (else the one its party column's header implies) and the
        party's code, which must be a valid resident ID number or USCC when given."""
        spec = self.relations
        assert spec is not None
        if spec.role_field not in values:
            if self.implied_role is None:
                return Rejection(spec.role_field, f"required field {spec.role_field} is empty", "required_empty",
                                 {"field": spec.role_field})
            values[spec.role_field] = self.implied_role
        code_field = spec.party_code_field
        if code_field and code_field in values:
            kind = values.get(spec.party_kind_field) if spec.party_kind_field else None
            classified = self.classify((values[code_field], "resident_id" if kind == "natural_person" else "uscc",
                                        kind))
            if classified is None or not classified.verified or classified.scheme not in ("resident_id", "uscc"):
                text = (f"the party's code {mask_person_id(normalise_code(str(values[code_field])))} is neither a "
                        "valid resident ID number nor a valid unified social credit code")
                return Rejection(code_field, text, "invalid_value", {"text": text})
            values[code_field] = classified.value
        return None

    def _subject(self, values: dict[str, Any], raw_text: dict[str, str],
                 extras: dict[str, str]) -> ValidRecord | Rejection:
        subject = self.category.subject
        person = SubjectKind.natural_person.value
        warnings: list[str] = []
        notes: list[str] = []
        name = values.get(subject.name_field)
        if isinstance(name, str):
            name = to_half_width(name).strip() if name else None
        kind = values.get(subject.kind_field) if subject.kind_field else None
        # An ID number written after a person's name is the person's ID, never part of the name.
        split = split_person_id(name) if name else None
        if split is not None:
            name, name_id = split
            notes.append(f"{subject.name_field}: the ID number after the name was taken as the person's ID number")
        if name is not None:
            values[subject.name_field] = name or None
            name = name or None
        # The subject kind decides what a code is. Without one: an ID number in the name cell
        # makes a person; a person's name makes codes read as an ID number where they can be
        # one (else as given: an individual business named like its owner has a USCC); any
        # other name is an organisation's, whose 18 digits failing the USCC check are a
        # corrupted USCC even when they pass an ID number's check.
        code_kind = kind or (person if split is not None else None)
        person_named = code_kind is None and looks_like_person_name(name, self.person_names)
        if code_kind is None and not person_named and name:
            code_kind = SubjectKind.enterprise.value
        code = scheme = code_key = None
        verified = False
        for code_field, prefer in self.code_fields:
            if code_field not in values:
                continue
            classified = self.classify((values[code_field], "resident_id" if person_named else prefer, code_kind))
            if person_named and prefer != "resident_id" and classified is not None and classified.scheme == "unknown":
                # no ID number, whatever the name: read as its column says (美团's USCC typed with O for 0)
                classified = self.classify((values[code_field], prefer, code_kind))
            if classified is None:
                continue
            code, scheme, verified = classified.value, classified.scheme, classified.verified
            code_key = classified.value if scheme != "unknown" else normalise_code(raw_text[code_field])
            if scheme == "resident_id" and prefer != "resident_id":
                notes.append(f"{code_field}: read as a person's ID number")
            if scheme == "resident_id" and len(normalise_code(raw_text[code_field])) == 15:
                notes.append(f"{code_field}: 15-digit ID number converted to 18 digits")
            values[code_field] = classified.value
            if scheme == "resident_id" and self.person_holder and code_field != self.person_holder:
                # a person's number is restricted wherever it was written: never left in a public column
                values.setdefault(self.person_holder, values.pop(code_field))
            if classified.warning:
                warnings.append(f"{code_field}: {classified.warning}")
            break
        if split is not None and code is None:
            classified = self.classify((name_id, "resident_id", person))
            code, scheme, verified, code_key = classified.value, classified.scheme, classified.verified, classified.value
            if classified.warning:
                warnings.append(f"{subject.name_field}: {classified.warning}")
            if self.person_holder:  # where a correction of the record finds it again
                values[self.person_holder] = code
        usable_code = code is not None and verified
        if not name and not usable_code:
            if code is None:
                return Rejection(subject.name_field, "neither a subject name nor a usable code", "no_subject")
            return Rejection(subject.name_field, f"no subject name, and the code is not usable ({warnings[-1]})",
                             "no_subject_name_code_unusable", {"code": code or ""})
        if kind is None and scheme in self.person_schemes:  # a person's number (a pack's own scheme too)
            kind = person
        if kind is None and person_named and not usable_code and self.allows_persons:
            # a person's name with no usable code (the cell empty, or masked by the court as
            # 4403051990****0271) in a category that records persons: a person, owed what persons
            # are owed (reminders, the age test, no public page before a listing), never a firm
            kind = person
        if kind == person and not self.allows_persons:
            return Rejection(subject.kind_field or subject.code_fields[0],
                             f"natural persons cannot be recorded in category {self.category.code} "
                             "(the pack names no legal basis)", "persons_not_allowed",
                             {"category": self.category.code})
        # Other code fields (legal representative's ID...) are classified but not the subject.
        for code_field in self.other_person_fields:
            if code_field not in values:
                continue
            classified = self.classify((values[code_field], "resident_id", None))
            if classified is not None:
                values[code_field] = classified.value
                if classified.warning:
                    warnings.append(f"{code_field}: {classified.warning}")
        # Codes differing only in case, spaces or width are one code: one record key.
        natural_key = raw_text[self.category.natural_key]
        if self.key_is_code:
            natural_key = normalise_code(natural_key)
        if self.relations is not None:  # one party holds several roles: 股东 and 董事 are two records
            natural_key = f"{natural_key}/{values[self.relations.role_field]}"
        if self.category.key_includes_subject:
            natural_key = f"{natural_key}#{code_key or raw_text.get(subject.name_field)}"
        date_field = self.category.date_field
        record = ValidRecord(
            natural_key=natural_key,
            record_key=f"{self.authority}:{natural_key}",
            fields=values,
            extras=extras,
            subject_name=name,
            subject_kind=kind,
            subject_code=code,
            subject_scheme=scheme,
            subject_code_verified=verified,
            decision_date=values.get(date_field) if date_field else None,
            warnings=warnings,
            notes=notes,
        )
        record.content_hash = content_hash(values)
        return record


_SPACES = re.compile(r"\s+")
_BRACKETS = str.maketrans("〔〕[]【】〖〗", "()()()()")


def decision_number(record_key: str) -> str:
    """A record key's authority and decision (or case) number (`AUTHORITY:NUMBER[/role][#subject]`),
    written one way: NFKC (full-width brackets and digits), every bracket as (), no spaces, upper
    case. A court's case written （2026）京0108执200号 in one file and (2026)京0108执 200号 in the next
    is one decision, whatever key each version was stored under."""
    authority, _, natural = record_key.partition(":")
    number = unicodedata.normalize("NFKC", natural.split("#", 1)[0])
    return authority + ":" + _SPACES.sub("", number).translate(_BRACKETS).upper()


def superseded_writings(records: Iterable[tuple[int, str, str, str]]) -> set[str]:
    """Of one subject's records, each as (id, key, category, status) of its newest version, the keys
    that an active writing of the same decision (`decision_number`) stored later supersedes: public
    surfaces show one decision once, as the authority sent it last (evaluation cites the same one).
    A revoked writing supersedes nothing. Another category's record of the same case number (a
    court's defaulter and debtor records) stays."""
    last: dict[tuple[str, str], str] = {}
    superseded: set[str] = set()
    for _, key, category, status in sorted(records):
        if status == "revoked":
            continue
        earlier = last.get(group := (category, decision_number(key)))
        if earlier is not None and earlier != key:
            superseded.add(earlier)
        last[group] = key
    return superseded


def content_hash(values: dict[str, Any]) -> str:
    """Identity of a record's content: its pack fields alone, independent of row order and column
    order. Columns the pack does not know (a remark, a running number) are kept with the version
    they arrived with but never make a version: the same decision re-sent with one more column
    is the same decision."""
    blob = orjson.dumps(values, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(blob, digest_size=16).hexdigest()



TYPE_SEPARATORS = re.compile(r"[；;、，,/\\|\s]+")


def is_published(category: CategorySpec, fields: dict[str, Any]) -> bool:
    """False for a record whose types are all among the category's `unpublished_types` (a
    penalty that is only a warning and/or a circulated criticism is never published)."""
    spec = category.publicity
    if not spec.type_field or not spec.unpublished_types:
        return True
    types = [x for x in TYPE_SEPARATORS.split(str(fields.get(spec.type_field) or "")) if x]
    return not types or any(x not in spec.unpublished_types for x in types)


def publicity_tier(category: CategorySpec, decision_date: dt.date, fields: dict[str, Any],
                   on_lists: Collection[str] = (), types: dict[str, FieldType] | None = None) -> PublicityTier | None:
    """The tier of the regime in force on the decision date that the record falls in; None
    under the base regime (decisions before every regime of the category)."""
    regimes = [r for r in category.publicity.regimes if r.from_ <= decision_date]
    if not regimes:
        return None
    regime = max(regimes, key=lambda r: r.from_)
    for tier in regime.tiers:
        if not tier.any_of and not tier.on_lists:
            return tier
        if set(tier.on_lists) & set(on_lists) or any(holds(c, fields, types or {}) for c in tier.any_of):
            return tier
    return regime.tiers[-1]


def publicity_end(category: CategorySpec, decision_date: dt.date | None, fields: dict[str, Any],
                  on_lists: Collection[str] = (), types: dict[str, FieldType] | None = None) -> dt.date | None:
    """The last day a record is shown on public surfaces; None when the pack sets no limit.

    The record's tier (`publicity_tier`; the subject's lists in force are `on_lists`) or, for
    an older decision, the category's base regime gives a default period and bounds; the
    authority's own end date (the category's `end_field`) is clamped into those bounds.
    Whether the record is published at all is `is_published`.
    """
    spec = category.publicity
    if decision_date is None or (spec.default_months is None and spec.end_field is None and not spec.regimes):
        return None
    return publicity_end_in_tier(category, decision_date, fields, publicity_tier(category, decision_date, fields,
                                                                                 on_lists, types))


def publicity_end_in_tier(category: CategorySpec, decision_date: dt.date, fields: dict[str, Any],
                          tier: PublicityTier | None) -> dt.date | None:
    """`publicity_end` once the record's tier is known (a surface that shows the tier too finds it once)."""
    spec = category.publicity
    if spec.default_months is None and spec.end_field is None and not spec.regimes:
        return None
    default, low, high = ((tier.default_months, tier.min_months, tier.max_months) if tier is not None
                          else (spec.default_months, spec.min_months, spec.max_months))
    stated = fields.get(spec.end_field) if spec.end_field else None
    if isinstance(stated, str):
        try:
            stated = dt.date.fromisoformat(stated[:10])
        except ValueError:
            stated = None
    end = stated if isinstance(stated, dt.date) else (
        add_months(decision_date, default) if default is not None else None)
    if end is None:
        return None
    end = max(end, add_months(decision_date, low))
    if high is not None:
        end = min(end, add_months(decision_date, high))
    return end


def public_fields(pack: Pack, category: CategorySpec, fields: dict[str, Any]) -> dict[str, Any]:
    """Only the fields the pack classifies as public: what any public surface may show."""
    public = {f.name for f in pack.fields_of(category) if f.classification == Classification.public}
    return {k: v for k, v in fields.items() if k in public}
