"""Turning one row of an agency's file into a validated record, or a reasoned rejection.

Pure: the ingestion service feeds rows (lists of cell values) and stores what comes out.
Column headers are matched to the category's fields through the pack's synonyms (after
unifying full-/half-width forms and spaces), plus an optional explicit mapping.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from xinyong.domain.calendar import add_months
from xinyong.domain.identifiers import classify_code
from xinyong.domain.pack import CategorySpec, Classification, FieldSpec, FieldType, Pack, SubjectKind
from xinyong.domain.values import (
    clean_text,
    normalise_header,
    parse_amount,
    parse_date,
    parse_integer,
    split_names,
    to_half_width,
)

PERSON_CODE_FIELDS = frozenset({"person_id", "legal_rep_id"})
# Columns that `xinyong batch rejects` adds after the original headers.
REJECT_COLUMNS = ("原始行 row", "问题字段 field", "原因 reason")
REJECT_KEYS = frozenset(normalise_header(h) for h in REJECT_COLUMNS)


class FileRefused(Exception):
    """The whole file is unusable; nothing of it is stored. The message is one line."""


@dataclass(frozen=True, slots=True)
class Rejection:
    field: str | None
    reason: str


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
    warnings: list[str] = field(default_factory=list)
    content_hash: str = ""


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    headers: tuple[str, ...]
    field_of: dict[int, str]  # column index -> field name
    factor_of: dict[int, float]  # column index -> unit factor for amounts
    extras: tuple[int, ...]  # columns the pack does not know

    def as_dict(self) -> dict[str, str | None]:
        return {h: self.field_of.get(i) for i, h in enumerate(self.headers)}


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
    for index, key in enumerate(keys):
        name = by_header.get(key)
        if index not in field_of and key not in REJECT_KEYS and name and name not in field_of.values():
            field_of[index] = name
    factor_of = {index: factor for index, name in field_of.items()
                 for marker, factor in specs[name].units.items() if normalise_header(marker) in keys[index]}
    # The reason columns of our own rejects file are not facts of the record.
    extras = [i for i, key in enumerate(keys) if i not in field_of and key not in REJECT_KEYS]
    return ColumnMapping(tuple(str(h) for h in headers), field_of, factor_of, tuple(extras))


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


def _identity(value: Any) -> Any:
    """Text fields: the reader's cell, already trimmed."""
    return value


MAX_INTEGER = 2**53  # beyond it a JSON number loses digits: no count or amount of a record is that large


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
        self.specs = {f.name: f for f in pack.fields_of(category)}
        self.required = [f.name for f in self.specs.values() if f.required]
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
        self.classify = _memoised(lambda key: classify_code(*key))
        self.columns: list[tuple[int, str, Callable[[Any], Any]]] = [
            (index, name, self._converter(self.specs[name], mapping.factor_of.get(index, 1.0)))
            for index, name in mapping.field_of.items()
        ]

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
        for index, name, convert in self.columns:
            if index >= width:
                continue
            cell = cells[index]
            text = cell.strip() if isinstance(cell, str) else (None if cell is None else clean_text(cell))
            if not text:
                continue
            if "\x00" in text:  # no agency means it, and PostgreSQL text cannot hold it
                return Rejection(name, "contains a NUL character")
            try:
                values[name] = convert(text if isinstance(cell, str) or convert is _identity else cell)
            except ValueError as exc:
                return Rejection(name, str(exc))
            raw_text[name] = text
        for name in self.required:
            if name not in values:
                return Rejection(name, f"required field {name} is empty")
        extras = {}
        headers = self.mapping.headers
        for index in self.mapping.extras:
            if index < width:
                cell = cells[index]
                text = cell.strip() if isinstance(cell, str) else (None if cell is None else clean_text(cell))
                if text:
                    if "\x00" in text:
                        return Rejection(None, f"column {headers[index]!r} contains a NUL character")
                    extras[headers[index]] = text
        return self._subject(values, raw_text, extras)

    def _subject(self, values: dict[str, Any], raw_text: dict[str, str],
                 extras: dict[str, str]) -> ValidRecord | Rejection:
        subject = self.category.subject
        warnings: list[str] = []
        name = values.get(subject.name_field)
        if isinstance(name, str):
            name = to_half_width(name).strip() if name else None
            values[subject.name_field] = name
        code = scheme = None
        verified = False
        code_text = None
        for code_field, prefer in self.code_fields:
            if code_field not in values:
                continue
            classified = self.classify((values[code_field], prefer))
            if classified is None:
                continue
            code, scheme, verified = classified.value, classified.scheme, classified.verified
            code_text = raw_text[code_field]
            values[code_field] = classified.value
            if classified.warning:
                warnings.append(f"{code_field}: {classified.warning}")
            break
        usable_code = code is not None and verified
        if not name and not usable_code:
            reason = ("neither a subject name nor a usable code" if code is None
                      else f"no subject name, and the code is not usable ({warnings[-1]})")
            return Rejection(subject.name_field, reason)
        kind = values.get(subject.kind_field) if subject.kind_field else None
        if kind is None and scheme == "resident_id":
            kind = SubjectKind.natural_person.value
        if kind == SubjectKind.natural_person.value and not self.allows_persons:
            return Rejection(subject.kind_field or subject.code_fields[0],
                             f"natural persons cannot be recorded in category {self.category.code} "
                             "(the pack names no legal basis)")
        # Other code fields (legal representative's ID...) are classified but not the subject.
        for code_field in self.other_person_fields:
            if code_field not in values:
                continue
            classified = self.classify((values[code_field], "resident_id"))
            if classified is not None:
                values[code_field] = classified.value
                if classified.warning:
                    warnings.append(f"{code_field}: {classified.warning}")
        natural_key = raw_text[self.category.natural_key]
        if self.category.key_includes_subject:
            # as written in the file: the authority's own spelling identifies its record
            natural_key = f"{natural_key}#{code_text or raw_text.get(subject.name_field)}"
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
        )
        record.content_hash = content_hash(values, extras)
        return record


def content_hash(values: dict[str, Any], extras: dict[str, str]) -> str:
    """Identity of a record's content, independent of row order and column order."""
    blob = orjson.dumps([values, extras], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(blob, digest_size=16).hexdigest()



def publicity_end(category: CategorySpec, decision_date: dt.date | None, fields: dict[str, Any]) -> dt.date | None:
    """The last day a record is shown on public surfaces; None when the pack sets no limit.

    The authority's own end date (the category's `end_field`) wins within the pack's
    minimum and maximum; without it the pack's default period runs from the decision.
    """
    spec = category.publicity
    if decision_date is None or (spec.default_months is None and spec.end_field is None):
        return None
    stated = fields.get(spec.end_field) if spec.end_field else None
    if isinstance(stated, str):
        try:
            stated = dt.date.fromisoformat(stated[:10])
        except ValueError:
            stated = None
    end = stated if isinstance(stated, dt.date) else (
        add_months(decision_date, spec.default_months) if spec.default_months is not None else None)
    if end is None:
        return None
    end = max(end, add_months(decision_date, spec.min_months))
    if spec.max_months is not None:
        end = min(end, add_months(decision_date, spec.max_months))
    return end


def public_fields(pack: Pack, category: CategorySpec, fields: dict[str, Any]) -> dict[str, Any]:
    """Only the fields the pack classifies as public: what any public surface may show."""
    public = {f.name for f in pack.fields_of(category) if f.classification == Classification.public}
    return {k: v for k, v in fields.items() if k in public}
