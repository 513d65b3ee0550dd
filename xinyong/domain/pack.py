"""A jurisdiction pack: its whole configuration as data, validated by this schema.

A pack is YAML. An overlay pack names its parent in `extends` and may only add items
or replace items of the parent by code (deep-merged), so a regional pilot stays a
short file. Nothing about any jurisdiction lives in code: codes, fields, headers,
durations and legal bases all come from here.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import json
import re
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from xinyong.domain.identifiers import (BUILTIN_SCHEMES, PERSON_NUMBER_VALIDATORS, CodeReader, code_reader,
                                         stdnum_validator)
from xinyong.domain.privacy import PersonNumbers

PACKS_DIR = Path(__file__).resolve().parent.parent / "packs"
LANGUAGES = ("zh", "en", "fr")
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_\-]*$")]
# names in the zone database that stand for the host's own zone (or none), never a jurisdiction's
HOST_ZONES = ("localtime", "posixrules", "Factory")


def _named_basis(value: str) -> str:
    if not value.strip():  # no measure, list or rule without a legal basis (the national basic list's principle)
        raise ValueError("a legal basis is required: name the law and article")
    return value


LegalBasis = Annotated[str, AfterValidator(_named_basis)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Names(Strict):
    """A label in every UI language: no pack item may lack one."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    fr: str = Field(min_length=1)

    def get(self, lang: str) -> str:
        return getattr(self, lang, self.en)


class Classification(str, Enum):
    public = "public"  # shown to everyone within its publicity period
    shared = "shared"  # authorities and the subject itself
    restricted = "restricted"  # needs a scope and a stated purpose


class SubjectKind(str, Enum):
    enterprise = "enterprise"
    individual_business = "individual_business"
    social_organisation = "social_organisation"
    public_institution = "public_institution"
    natural_person = "natural_person"


class FieldType(str, Enum):
    text = "text"
    date = "date"
    amount = "amount"  # money in the pack's currency, non-negative
    integer = "integer"
    code = "code"  # an identifier: classified into a scheme at ingestion
    enum = "enum"
    names = "names"  # several names in one cell, e.g. former names
    kind = "kind"  # a subject kind, given by the value synonyms of the pack
    share = "share"  # a share of capital in percent, 0 to 100 (出资比例: 60%, 60.00%, 60)


class FieldSpec(Strict):
    name: Code
    type: FieldType = FieldType.text
    required: bool = False
    headers: list[str] = []
    # For amounts: a marker seen in the header and the factor it implies (万元 -> 10000).
    units: dict[str, float] = {}
    # For enums: allowed canonical values and the synonyms that map to them.
    values: list[str] = []
    value_synonyms: dict[str, str] = {}
    classification: Classification = Classification.public
    names: Names | None = None

    @model_validator(mode="after")
    def _enum_has_values(self) -> "FieldSpec":
        if self.type == FieldType.enum and not self.values:
            raise ValueError(f"enum field {self.name!r} needs `values`")
        for target in self.value_synonyms.values():
            if self.values and target not in self.values:
                raise ValueError(f"synonym target {target!r} is not one of {self.values}")
        return self


class SubjectSpec(Strict):
    """Which fields of a row identify the subject the record is about."""

    name_field: Code
    code_fields: list[Code]
    kind_field: Code | None = None
    legal_representative_field: Code | None = None


class Condition(Strict):
    """One test on a record's field: equals one of `in` (mentions one of, for text), at least
    `min`, or has a value (`present`). With `ratio_to`, the value must also be at least
    `min_ratio` of that other field, a test skipped (and said so) when that field is empty.
    Or a group: every condition of `all_of` and at least one of `any_of` hold."""

    field: Code | None = None
    in_: list[str] | None = Field(default=None, alias="in")
    min: float | None = None
    present: bool | None = None
    ratio_to: Code | None = None
    min_ratio: float | None = Field(default=None, gt=0)
    all_of: list["Condition"] = []
    any_of: list["Condition"] = []
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        group = bool(self.all_of or self.any_of)
        tests = [t for t in (self.in_, self.min, self.present) if t is not None]
        if group and (self.field is not None or tests):
            raise ValueError("a condition is either a group (all_of/any_of) or a test on one field")
        if not group and (self.field is None or len(tests) != 1):
            raise ValueError("a condition tests one `field` with exactly one of `in`, `min`, `present`")
        if (self.ratio_to is None) != (self.min_ratio is None) or (self.ratio_to and self.min is None):
            raise ValueError("`ratio_to` and `min_ratio` go together, on a `min` test")
        return self

    def fields(self) -> set[str]:
        names = {n for n in (self.field, self.ratio_to) if n}
        for part in (*self.all_of, *self.any_of):
            names |= part.fields()
        return names


class PublicityTier(Strict):
    """One tier of a publicity regime: which records fall in it and how long they are shown.

    A record falls in the first tier of its regime whose `any_of` holds for it (a tier without
    conditions takes every record), or whose `on_lists` holds a listing of its subject in force."""

    code: Code
    any_of: list[Condition] = []
    on_lists: list[Code] = []
    default_months: int = Field(ge=0)
    min_months: int = Field(default=0, ge=0)
    max_months: int | None = Field(default=None, ge=0)


class PublicityRegime(Strict):
    """The publicity tiers for decisions dated on or after `from`."""

    from_: dt.date = Field(alias="from")
    tiers: list[PublicityTier] = Field(min_length=1)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PublicitySpec(Strict):
    """How long a record of this category stays on public surfaces, in months.

    `default_months`, `min_months` and `max_months` are the regime for decisions older than
    every entry of `regimes`; a later regime tiers records by seriousness."""

    default_months: int | None = Field(default=None, ge=0)
    min_months: int = Field(default=0, ge=0)
    max_months: int | None = Field(default=None, ge=0)
    # field whose value, if present, gives the publicity end date as stated by the authority
    end_field: Code | None = None
    # a record whose `type_field` names only types among these is never published (a warning)
    type_field: Code | None = None
    unpublished_types: list[str] = []
    regimes: list[PublicityRegime] = []
    # the record is a listing's own publication (a court's 失信被执行人 entry): once every listing
    # built on it has ended, it leaves the public surfaces with them (the subject's own file keeps it)
    ends_with_listings: bool = False


class RepairSpec(Strict):
    allowed: bool = True
    min_months_served: int = Field(default=0, ge=0)
    commitment_required: bool = True
    evidence_required: bool = True
    # working days for the answer (application -> acceptance) and the decision (acceptance -> decision)
    answer_working_days: int | None = Field(default=None, ge=0)
    decision_working_days: int | None = Field(default=None, ge=0)


class RelationsSpec(Strict):
    """A category whose rows are a firm's relations (shareholders, actual controller, key staff).

    The record's subject is the firm; `party_field` names the other side, a person or a firm,
    identified by `party_code_field` (a resident ID or a USCC) and `party_kind_field`. Each role
    (the canonical values of `role_field`) is a relation by `relation_of_role`: shareholder, actual
    controller, principal (the manager or person in charge, 主要负责人) or key staff; a row whose
    role cell is empty takes the role its party column's header implies (`role_of_header`: a
    column headed 股东 lists shareholders). A firm's relations from one batch replace its earlier
    set from the set's date (`date_field` of the category)."""

    party_field: Code
    party_code_field: Code | None = None
    party_kind_field: Code | None = None
    role_field: Code
    share_field: Code | None = None
    relation_of_role: dict[str, Literal["shareholder", "actual_controller", "principal", "key_staff"]]
    role_of_header: dict[str, str] = {}


class CategorySpec(Strict):
    code: Code
    names: Names
    description: str = ""
    include: list[Code] = []  # field sets merged before `fields`
    fields: list[FieldSpec] = []
    subject: SubjectSpec
    # The natural key: the field(s) that number a decision. When one number covers
    # several subjects (a court case with several debtors), the key adds the subject.
    natural_key: Code
    key_includes_subject: bool = False
    date_field: Code | None = None
    subject_kinds: list[SubjectKind] = list(SubjectKind)
    # Natural persons may appear only where a legal basis is named.
    person_legal_basis: str | None = None
    classification: Classification = Classification.public
    publicity: PublicitySpec = PublicitySpec()
    # credit repair of a record's publicity (decided by the authority that published it)
    repair: RepairSpec = RepairSpec(allowed=False)
    creates_entities: bool = False  # the market-entity register itself
    relations: RelationsSpec | None = None  # rows are the subject firm's relations (ownership, control)


class DurationTerm(Strict):
    """A term for listings whose evidence records meet `when` (e.g. a court listing ground);
    without `years` the listing lasts until performance."""

    when: Condition
    years: float | None = Field(default=None, gt=0)


class PlausibilitySpec(Strict):
    """Bounds past which a value is a mistake, not a fact: its row is quarantined with the reason."""

    # The largest amount any record may carry, in the pack's currency.
    max_amount: float = Field(default=1e13, gt=0)
    # A decision (the category's date_field) may be dated at most this many days after today
    # (the pack's today), for authorities a time zone ahead.
    decision_days_ahead: int = Field(default=1, ge=0)
    # Values of a date field that mean "no end" (validity ends): stored open-ended (null).
    open_ended: list[str] = ["长期", "永久", "长期有效", "无固定期限"]


class DurationSpec(Strict):
    kind: Literal["fixed", "range", "until_performance"]
    # the first term each evidence record meets decides; an open-ended one wins, else the longest;
    # a listing whose records meet none takes the duration above
    terms: list[DurationTerm] = []
    years: float | None = Field(default=None, gt=0)
    min_years: float | None = Field(default=None, gt=0)
    max_years: float | None = Field(default=None, gt=0)
    extension_max_years: float | None = Field(default=None, gt=0)
    review_interval_months: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> "DurationSpec":
        if self.kind == "fixed" and self.years is None:
            raise ValueError("a fixed duration needs `years`")
        if self.kind == "range" and (self.min_years is None or self.max_years is None):
            raise ValueError("a range duration needs `min_years` and `max_years`")
        if self.kind == "range" and self.min_years > self.max_years:  # type: ignore[operator]
            raise ValueError("`min_years` is above `max_years`")
        if self.kind == "until_performance" and self.review_interval_months is None:
            raise ValueError("an open-ended duration needs `review_interval_months`")
        return self


class DueProcessSpec(Strict):
    notice_required: bool = True
    objection_days: int = Field(ge=0)
    objection_days_in: Literal["working", "calendar"] = "working"
    review_days: int | None = Field(default=None, ge=0)
    # reminders before notice, per subject kind (a natural person judgment debtor: 3)
    reminders_required: dict[SubjectKind, int] = {}
    # days at least between two reminders, and between the last reminder and the notice
    reminder_min_days: int = Field(default=0, ge=0)
    grace_days: int = Field(default=0, ge=0)




class RuleSpec(Strict):
    """The inclusion rule of a list, versioned; evaluated by a later stage."""

    version: str
    effective: dt.date
    legal_basis: LegalBasis
    categories: list[Code]
    any_of: list[Condition] = []
    all_of: list[Condition] = []
    min_count: int = Field(default=1, ge=1)
    window_months: int | None = Field(default=None, gt=0)
    exclude: list[Condition] = []
    # only records submitted by these authorities count (empty: any authority)
    authorities: list[Code] = []
    # only the subject's latest record of the category by this field counts (e.g. the grade year)
    latest_by: Code | None = None
    # natural persons younger than this on the evaluation date are never listed
    min_subject_age: int | None = Field(default=None, gt=0)
    # criteria apply from `effective`, and not before `published` + the comment period
    published: dt.date | None = None
    comment_period_days: int = Field(default=0, ge=0)

    @property
    def applies_from(self) -> dt.date:
        if self.published is None:
            return self.effective
        return max(self.effective, self.published + dt.timedelta(days=self.comment_period_days))


class ListSpec(Strict):
    code: Code
    names: Names
    kind: Literal["black", "red"]
    authority: Code
    legal_basis: LegalBasis
    subject_kinds: list[SubjectKind]
    duration: DurationSpec
    due_process: DueProcessSpec
    repair: RepairSpec = RepairSpec()
    rules: list[RuleSpec] = []
    # while an objection or review is open, the list's measures are suspended (deny -> conditions)
    objection_suspends: bool = False
    # the listing history (listings that took effect and ended) is public, as the list's own
    # publicity system shows it
    history_public: bool = False
    # a later version of an evidence record meeting any of these ends the listing as performed
    performed_when: list[Condition] = []
    # a blacklist: redlists its listings exclude (ended the day it takes effect, never proposed meanwhile)
    excludes: list[Code] = []
    # a date field of the evidence records: once the latest version carries it the record is cured,
    # proposes nothing, and a listing all of whose evidence is cured ends on that date
    cured_by: Code | None = None
    moves_to: "MoveSpec | None" = None
    annual_publication: "AnnualPublicationSpec | None" = None

    @model_validator(mode="after")
    def _notice(self) -> "ListSpec":
        if not self.due_process.notice_required and self.kind != "red":
            raise ValueError(f"list {self.code!r}: only a redlist may go without notice (notice_required: false)")
        return self


class MoveSpec(Strict):
    """After `after_years` in force without cure, a listing ends (moved_to_serious) and its
    subject is proposed for the list `list`, with that list's own notice and objection window."""

    list: Code
    after_years: float = Field(gt=0)


class AnnualPublicationSpec(Strict):
    """A list published once a year: a record of year Y (its `year_field`) counts from the
    publication of year Y+1 (month/day) until the next one; a later year's record ends it."""

    year_field: Code
    month: int = Field(ge=1, le=12)
    day: int = Field(default=1, ge=1, le=28)

    def published(self, year: int) -> dt.date:
        return dt.date(year, self.month, self.day)

    def cycle_year(self, day: dt.date) -> int:
        """The year of the last publication on or before `day`."""
        return day.year if day >= self.published(day.year) else day.year - 1


class MeasureSpec(Strict):
    code: Code
    names: Names
    lists: list[Code] = Field(min_length=1)
    actions: list[Code] = Field(min_length=1)
    effect: Literal["deny", "conditions", "reward"]
    legal_basis: LegalBasis
    authority: Code
    reaches: list[Literal["legal_representative", "actual_controller", "principal"]] = []
    # binding at most this long from the listing's effective date (e.g. a 3-year role bar)
    max_years: float | None = Field(default=None, gt=0)


class IdentifierSpec(Strict):
    """One identifier scheme of the jurisdiction: the codes of files, the register and screening
    are recognised, checked and stored under these schemes only.

    `validator: builtin` is xinyong's own reading of a Chinese scheme (uscc, org_code, reg_no,
    resident_id) or of the LEI, by the scheme's name; else a python-stdnum module (`stdnum.fr.siren`)
    checks the code. `pattern` (a regular expression the whole code matches) narrows a validator's
    codes to the scheme's (`stdnum.ean` checks any GTIN, an NZBN is one starting 94), or alone is the
    scheme's whole check. `person: true` says the scheme numbers natural persons (a national ID,
    social security or personal tax number): every public surface masks its numbers, and search
    never finds anyone by one. The built-in resident_id always is one."""

    scheme: Code
    validator: str | None = None
    pattern: str | None = None
    # the register's key: an entity registered with a valid code of this scheme is known by that code
    primary: bool = False
    # natural persons' numbers: masked wherever the public reads them (a pattern alone cannot say so)
    person: bool = False

    @field_validator("validator")
    @classmethod
    def _known_validator(cls, name: str | None) -> str | None:
        if name is not None and name != "builtin":
            stdnum_validator(name)
        return name

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} is not a regular expression: {exc}") from None
        return pattern

    @model_validator(mode="after")
    def _checked_somehow(self) -> "IdentifierSpec":
        if self.validator is None and self.pattern is None:
            raise ValueError(f"identifier scheme {self.scheme!r} needs a `validator` or a `pattern`")
        if self.validator == "builtin" and (self.scheme not in BUILTIN_SCHEMES or self.pattern is not None):
            raise ValueError(f"identifier scheme {self.scheme!r}: `builtin` reads only the schemes "
                             f"{', '.join(BUILTIN_SCHEMES)}, by their own rules (no pattern)")
        # a person's number shown whole on public pages is the harm: a validator of persons' numbers
        # must be declared as such, and no register is keyed by persons' numbers
        if self.validator in PERSON_NUMBER_VALIDATORS and not self.person:
            raise ValueError(f"identifier scheme {self.scheme!r}: {self.validator} checks natural persons' numbers, "
                             "which public surfaces would show whole: declare it `person: true`")
        if self.person and self.validator == "builtin" and self.scheme != "resident_id":
            raise ValueError(f"identifier scheme {self.scheme!r}: the built-in {self.scheme} numbers organisations, "
                             "not persons (`person: true` is for resident_id or a pack's own scheme)")
        if self.person and self.primary:
            raise ValueError(f"identifier scheme {self.scheme!r}: a person's number cannot be the register's key "
                             "(`primary`): pages link by it")
        return self


# the Chinese schemes, as the cn pack declares them: the identifiers of a pack that declares none
CN_IDENTIFIERS = [IdentifierSpec(scheme="uscc", validator="builtin", primary=True),
                  *(IdentifierSpec(scheme=scheme, validator="builtin", person=scheme == "resident_id")
                    for scheme in BUILTIN_SCHEMES if scheme != "uscc")]
# the built-in scheme of persons' numbers: masked in every pack, declared or not (records and the
# register name it whatever the pack's schemes)
BUILTIN_PERSON_SCHEMES = frozenset({"resident_id"})


@functools.lru_cache(maxsize=16)
def _person_numbers(schemes: tuple[tuple[str, str | None, str | None], ...]) -> PersonNumbers | None:
    return PersonNumbers(schemes) if schemes else None


def reader_of(identifiers: list[IdentifierSpec]) -> CodeReader:
    """The code reader of these schemes (one per set of schemes: validators imported once)."""
    return code_reader(tuple((s.scheme, s.validator, s.pattern) for s in identifiers))


ForeignDecision = Literal["deny", "refer", "conditions", "allow"]


class ForeignEffectSpec(Strict):
    """What a designation on a foreign list implies at one decision point: on an exact identifier
    match, and on a name match. A name alone never denies: `deny` is refused for `name`."""

    identifier: ForeignDecision = "refer"
    name: ForeignDecision = "refer"

    @field_validator("name")
    @classmethod
    def _name_never_denies(cls, value: str) -> str:
        if value == "deny":
            raise ValueError("a name match never denies automatically: use refer, conditions or allow")
        return value


class ForeignListsSpec(Strict):
    """Lists of other jurisdictions and international bodies (kind `foreign`: the UN Security
    Council's consolidated list, OpenSanctions files), imported by `xinyong lists import`. Their
    designations bypass due process and are never domestic listings: they yield only the decision
    named here, per action (`actions`, else `default`)."""

    # persons on a foreign list are imported only where a legal basis is named (else skipped, counted)
    person_legal_basis: str | None = None
    default: ForeignEffectSpec = ForeignEffectSpec()
    actions: dict[Code, ForeignEffectSpec] = {}

    def effect(self, action: str, matched_by: Literal["identifier", "name"]) -> str:
        return getattr(self.actions.get(action, self.default), matched_by)


class ScorecardSpec(Strict):
    """What the authority scorecard measures: the categories whose publication is timed (double
    publicity: licences and penalties) and the working days they have (decision day not counted)."""

    timed_categories: list[Code] = []
    on_time_working_days: int = Field(default=7, ge=0)


class GradeClassSpec(Strict):
    """A supervision class (A is the best): an enterprise whose points are at most `max_points`."""

    code: str = Field(min_length=1, max_length=8)
    names: Names
    max_points: float | None = None  # None: the last class, anything above


def _no_person(kinds: list[SubjectKind]) -> list[SubjectKind]:
    if SubjectKind.natural_person in kinds:
        raise ValueError("grade rules never apply to natural persons (natural_person): this system "
                         "never scores people")
    return kinds


class GradeRuleSpec(Strict):
    """One grade rule: every record meeting it adds `weight` points (within `window_months`)."""

    code: Code
    names: Names
    categories: list[Code] = Field(min_length=1)
    any_of: list[Condition] = []
    all_of: list[Condition] = []
    weight: float = Field(gt=0)
    window_months: int | None = Field(default=None, gt=0)
    authorities: list[Code] = []
    subject_kinds: list[SubjectKind] = []  # empty: the grades' own kinds
    legal_basis: str = ""

    @field_validator("subject_kinds")
    @classmethod
    def _kinds(cls, kinds: list[SubjectKind], info: ValidationInfo) -> list[SubjectKind]:
        if SubjectKind.natural_person in kinds:
            raise ValueError(f"grade rule {info.data.get('code')!r}: grade rules never apply to natural persons "
                             f"(natural_person): this system never scores people")
        return kinds


class GradesSpec(Strict):
    """Supervision grades (risk-based inspections): classes by points from pack rules.

    Never over natural persons; shared with authorities (restricted) and shown to the subject
    itself, never public."""

    names: Names
    authority: Code
    legal_basis: str
    unverified: bool = False
    subject_kinds: list[SubjectKind] = [SubjectKind.enterprise, SubjectKind.individual_business]
    # the purpose (one of the pack's) logged with a grade an operator reads in the console
    purpose: Code = "supervision"
    classes: list[GradeClassSpec] = Field(min_length=2)
    rules: list[GradeRuleSpec] = Field(min_length=1)

    @field_validator("subject_kinds")
    @classmethod
    def _kinds(cls, kinds: list[SubjectKind]) -> list[SubjectKind]:
        return _no_person(kinds)

    def class_for(self, points: float) -> str:
        for grade in self.classes:
            if grade.max_points is None or points <= grade.max_points:
                return grade.code
        return self.classes[-1].code


class ActionSpec(Strict):
    code: Code
    names: Names


class PurposeSpec(Strict):
    """A lawful reason to screen or to read restricted records; every query states one."""

    code: Code
    names: Names


class AuthoritySpec(Strict):
    code: Code
    names: Names
    competences: list[Code]  # category codes it may submit


class CalendarSpec(Strict):
    timezone: str
    working_days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]]
    holidays: list[dt.date] = []
    # weekend days declared working days (adjusted working days)
    extra_working_days: list[dt.date] = []
    # a window counted in calendar days whose last day is no working day (a weekend, a holiday) ends
    # on the next working day, as procedural codes have it (PRC Civil Code art. 203; France CPC art. 642)
    deadlines_end_on_working_days: bool = False

    @field_validator("timezone")
    @classmethod
    def _a_zone_of_the_database(cls, key: str) -> str:
        """An IANA zone the host knows: a mistyped one validated, then stopped every command of the
        store; `localtime` (and its like) is the host's zone, which "today" must never follow."""
        if key in HOST_ZONES:
            raise ValueError(f"{key!r} is the host's time zone, not the jurisdiction's: name an IANA zone "
                             f"(Asia/Shanghai, Pacific/Auckland)")
        try:
            ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {key!r}: name an IANA zone (Asia/Shanghai, Pacific/Auckland)") from None
        return key


class PlaceSpec(Strict):
    code: str = Field(pattern=r"^\d{6}$")
    name: str = Field(min_length=1)
    level: Literal["province", "prefecture", "county"]
    status: Literal["current", "former"] = "current"


class NameRulesSpec(Strict):
    """How entity names are reduced to a comparable core (see domain/matching.py)."""

    # variant -> canonical legal form, e.g. 有限责任公司 -> 有限公司, "co.,ltd." -> 有限公司
    legal_forms: dict[str, str] = {}
    # a name ending in one of these is a branch, distinct from its head office
    branch_markers: list[str] = []
    # place names that prefix a name (北京 / 北京市) or stand in brackets ((北京))
    region_names: list[str] = []
    region_suffixes: list[str] = []  # 省, 市...: may follow a place name
    district_suffixes: list[str] = []  # 区, 县: a known place followed by one is a district
    # words a place prefix must not split: 北京市场营销 is 北京 + 市场营销, not 北京市 + 场营销
    protected_words: list[str] = []
    # the administrative divisions (GB/T 2260): a CSV beside the pack (code,name,level,status),
    # where it comes from and the date its data is as of; `places` is filled from it on loading
    places_file: str | None = None
    places_source: str | None = None
    places_as_of: dt.date | None = None
    places: list[PlaceSpec] = []
    # names of ethnic groups, dropped with 自治州/自治县 to find a place's short name (延边朝鲜族自治州: 延边)
    ethnic_groups: list[str] = []




class PersonNamesSpec(Strict):
    """When a name cell reads as a person's (it decides whether a row's codes are an ID number)."""

    max_length: int = Field(default=4, ge=2)  # Han characters of a name without a middle dot
    # a short name ending in one of these is an organisation's (张记饭店, 红星厂), never a person's
    organisation_endings: list[str] = []
    # family names, single and compound (王, 欧阳): a name that is one of them and a given name of
    # one or two characters is a person's even where a firm's registered name (王伟有限公司) is
    # that name with a legal form. Without them no short name is ever read as a firm's.
    surnames: list[str] = []


class ResolutionSpec(Strict):
    auto_link: float = Field(ge=0, le=1)
    review: float = Field(ge=0, le=1)
    # two candidates closer than this both above auto_link: a human decides
    ambiguity_margin: float = Field(default=0.03, ge=0, le=1)
    # the estimated precision automatic links must meet: training sets the match-probability
    # threshold that meets it; `auto_link` stays a floor under that threshold
    target_precision: float = Field(default=0.995, gt=0, le=1)
    name_rules: NameRulesSpec = NameRulesSpec()

    @model_validator(mode="after")
    def _ordered(self) -> "ResolutionSpec":
        if self.review > self.auto_link:
            raise ValueError("`review` threshold is above `auto_link`")
        return self


# models that name a later one (Condition, "MoveSpec"...), innermost first
for _model in (ListSpec,):
    _model.model_rebuild()


class Pack(Strict):
    code: Code
    version: str
    names: Names
    extends: str | None = None
    currency: str = "CNY"
    # the language a listing's notices are served in unless one is asked for, and of the pages for a
    # browser that asks for none of ours: a French pack's subjects are not served in Chinese
    language: Literal["zh", "en", "fr"] = "zh"
    calendar: CalendarSpec
    resolution: ResolutionSpec
    field_sets: dict[Code, list[FieldSpec]] = {}
    kind_synonyms: dict[str, SubjectKind] = {}
    person_names: PersonNamesSpec = PersonNamesSpec()
    authorities: list[AuthoritySpec]
    categories: list[CategorySpec]
    lists: list[ListSpec]
    measures: list[MeasureSpec]
    actions: list[ActionSpec]
    purposes: list[PurposeSpec] = Field(min_length=1)
    # besides a list's own authority, the one authority that may take its due-process decisions
    reviewing_authority: Code | None = None
    plausibility: PlausibilitySpec = PlausibilitySpec()
    scorecard: ScorecardSpec = ScorecardSpec()
    grades: GradesSpec | None = None
    foreign_lists: ForeignListsSpec = ForeignListsSpec()
    identifiers: list[IdentifierSpec] = CN_IDENTIFIERS

    @model_validator(mode="after")
    def _references(self) -> "Pack":
        problems: list[str] = []
        schemes = [spec.scheme for spec in self.identifiers]
        problems += [f"identifiers: scheme {scheme!r} appears twice" for scheme in sorted(set(schemes))
                     if schemes.count(scheme) > 1]
        if sum(spec.primary for spec in self.identifiers) > 1:
            problems.append("identifiers: only one scheme may be `primary` (the register's key)")
        for kind, items in (
            ("authorities", self.authorities),
            ("categories", self.categories),
            ("lists", self.lists),
            ("measures", self.measures),
            ("actions", self.actions),
            ("purposes", self.purposes),
        ):
            seen: set[str] = set()
            for item in items:
                if item.code in seen:
                    problems.append(f"{kind}: code {item.code!r} appears twice")
                seen.add(item.code)
        categories = {c.code for c in self.categories}
        authorities = {a.code for a in self.authorities}
        lists = {lst.code for lst in self.lists}
        actions = {a.code for a in self.actions}
        for i, a in enumerate(self.authorities):
            for c in a.competences:
                if c not in categories:
                    problems.append(f"authorities.{i}.competences: unknown category {c!r}")
        for i, c in enumerate(self.categories):
            for s in c.include:
                if s not in self.field_sets:
                    problems.append(f"categories.{i}.include: unknown field set {s!r}")
            names = {f.name for f in self.fields_of(c)} if not problems else set()
            if names:
                for ref in [c.natural_key, c.subject.name_field, *c.subject.code_fields,
                            c.date_field, c.subject.kind_field, c.publicity.end_field]:
                    if ref and ref not in names:
                        problems.append(f"categories.{i} ({c.code}): field {ref!r} is not defined")
                problems += _relations_problems(i, c, {f.name: f for f in self.fields_of(c)})
        if self.reviewing_authority is not None and self.reviewing_authority not in authorities:
            problems.append(f"reviewing_authority: unknown authority {self.reviewing_authority!r}")
        for i, lst in enumerate(self.lists):
            if lst.authority not in authorities:
                problems.append(f"lists.{i}.authority: unknown authority {lst.authority!r}")
            for j, rule in enumerate(lst.rules):
                for c in rule.categories:
                    if c not in categories:
                        problems.append(f"lists.{i}.rules.{j}.categories: unknown category {c!r}")
                for a in rule.authorities:
                    if a not in authorities:
                        problems.append(f"lists.{i}.rules.{j}.authorities: unknown authority {a!r}")
                if problems:
                    continue
                tested: set[str] = set()
                for condition in (*rule.any_of, *rule.all_of, *rule.exclude):
                    tested |= condition.fields()
                tested |= {n for n in (rule.latest_by, lst.cured_by,
                                       lst.annual_publication.year_field if lst.annual_publication else None) if n}
                for term in lst.duration.terms:
                    tested |= term.when.fields()
                for c in rule.categories:
                    defined = {f.name for f in self.fields_of(self.category(c))}
                    for name in sorted(tested - defined):
                        problems.append(f"lists.{i}.rules.{j}: field {name!r} is not a field of category {c!r}")
            for code in lst.excludes:
                if code not in lists or self.list_(code).kind != "red":
                    problems.append(f"lists.{i}.excludes: {code!r} is not a redlist of this pack")
            if lst.moves_to and (lst.moves_to.list not in lists or lst.moves_to.list == lst.code):
                problems.append(f"lists.{i}.moves_to: unknown list {lst.moves_to.list!r}")
        for i, c in enumerate(self.categories):
            defined = {f.name for f in self.fields_of(c)}
            if c.publicity.type_field and c.publicity.type_field not in defined:
                problems.append(f"categories.{i}.publicity.type_field: {c.publicity.type_field!r} is not defined")
            for regime in c.publicity.regimes:
                for tier in regime.tiers:
                    for condition in tier.any_of:
                        for name in sorted(condition.fields() - defined):
                            problems.append(f"categories.{i}.publicity: tier {tier.code!r}: field {name!r} "
                                            f"is not defined")
                    for code in tier.on_lists:
                        if code not in lists:
                            problems.append(f"categories.{i}.publicity: tier {tier.code!r}: unknown list {code!r}")
        for i, m in enumerate(self.measures):
            for lst_code in m.lists:
                if lst_code not in lists:
                    problems.append(f"measures.{i}.lists: unknown list {lst_code!r}")
            for a in m.actions:
                if a not in actions:
                    problems.append(f"measures.{i}.actions: unknown action {a!r}")
            if m.authority not in authorities:
                problems.append(f"measures.{i}.authority: unknown authority {m.authority!r}")
        for a in self.foreign_lists.actions:
            if a not in actions:
                problems.append(f"foreign_lists.actions: unknown action {a!r}")
        for c in self.scorecard.timed_categories:
            if c not in categories:
                problems.append(f"scorecard.timed_categories: unknown category {c!r}")
        if self.grades is not None:
            if self.grades.authority not in authorities:
                problems.append(f"grades.authority: unknown authority {self.grades.authority!r}")
            if self.grades.purpose not in {p.code for p in self.purposes}:
                problems.append(f"grades.purpose: unknown purpose {self.grades.purpose!r}")
            for i, rule in enumerate(self.grades.rules):
                for c in rule.categories:
                    if c not in categories:
                        problems.append(f"grades.rules.{i}.categories: unknown category {c!r}")
                        continue
                    defined = {f.name for f in self.fields_of(self.category(c))}
                    for condition in (*rule.any_of, *rule.all_of):
                        for name in sorted(condition.fields() - defined):
                            problems.append(f"grades.rules.{i}: field {name!r} is not a field of category {c!r}")
                for a in rule.authorities:
                    if a not in authorities:
                        problems.append(f"grades.rules.{i}.authorities: unknown authority {a!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # lookups -----------------------------------------------------------------
    def fields_of(self, category: CategorySpec) -> list[FieldSpec]:
        merged: dict[str, FieldSpec] = {}
        for set_name in category.include:
            for f in self.field_sets.get(set_name, []):
                merged[f.name] = f
        for f in category.fields:
            merged[f.name] = f
        return list(merged.values())

    def code_reader(self) -> CodeReader:
        """What a code is under this pack's identifier schemes (validators resolved once per pack)."""
        return reader_of(self.identifiers)

    @property
    def person_schemes(self) -> frozenset[str]:
        """The schemes of natural persons' numbers: resident_id and those the pack declares `person`."""
        return BUILTIN_PERSON_SCHEMES | {s.scheme for s in self.identifiers if s.person}

    @property
    def person_numbers(self) -> PersonNumbers | None:
        """The pack's own schemes of persons' numbers, to mask in free text (resident_id is always
        masked there); None when it declares none."""
        return _person_numbers(tuple((s.scheme, s.validator, s.pattern) for s in self.identifiers
                                     if s.person and s.validator != "builtin"))

    @property
    def primary_scheme(self) -> str | None:
        return next((s.scheme for s in self.identifiers if s.primary), None)

    def category(self, code: str) -> CategorySpec:
        return _by_code(self.categories, code, "category")

    def authority(self, code: str) -> AuthoritySpec:
        return _by_code(self.authorities, code, "authority")

    def list_(self, code: str) -> ListSpec:
        return _by_code(self.lists, code, "list")

    def purpose(self, code: str) -> PurposeSpec:
        return _by_code(self.purposes, code, "purpose")


def _relations_problems(i: int, c: CategorySpec, fields: dict[str, FieldSpec]) -> list[str]:
    spec = c.relations
    if spec is None:
        return []
    problems = [f"categories.{i}.relations: field {ref!r} is not defined"
                for ref in (spec.party_field, spec.party_code_field, spec.party_kind_field, spec.role_field,
                            spec.share_field) if ref and ref not in fields]
    role = fields.get(spec.role_field)
    if role is not None:
        if role.type != FieldType.enum:
            problems.append(f"categories.{i}.relations: the role field {spec.role_field!r} must be an enum")
        for value in role.values:
            if value not in spec.relation_of_role:
                problems.append(f"categories.{i}.relations.relation_of_role: role {value!r} is not mapped")
        for header, value in spec.role_of_header.items():
            if value not in role.values:
                problems.append(f"categories.{i}.relations.role_of_header: {header!r} gives {value!r}, "
                                f"not one of the roles {role.values}")
    return problems


class PackError(Exception):
    """A pack that cannot be used; the message names the file and the key path."""


def _by_code(items: list[Any], code: str, kind: str) -> Any:
    for item in items:
        if item.code == code:
            return item
    known = ", ".join(i.code for i in items)
    raise PackError(f"unknown {kind} {code!r} (known: {known})")


def resolve_pack_path(ref: str) -> Path:
    """A pack reference is a shipped pack's code (`cn`) or a path to a YAML file or folder."""
    shipped = PACKS_DIR / ref / "pack.yaml"
    if "/" not in ref and "\\" not in ref and not ref.endswith((".yaml", ".yml")) and shipped.exists():
        return shipped
    path = Path(ref)
    if path.is_dir():
        path = path / "pack.yaml"
    if not path.exists():
        shipped_codes = sorted(p.name for p in PACKS_DIR.iterdir() if (p / "pack.yaml").exists())
        raise PackError(f"{ref}: no such pack file, and not a shipped pack ({', '.join(shipped_codes)})")
    return path


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        # libyaml's loader when PyYAML has it: the same safe constructors, ~5x faster on the cn pack
        # (0.1 s instead of 0.6 s, at every start of every command and of `serve`)
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise PackError(f"{path}: not valid YAML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise PackError(f"{path}: a pack must be a mapping at the top level")
    return data


def _merge(parent: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge: mappings merge by key, lists of coded items merge by `code`."""
    out = dict(parent)
    for key, value in overlay.items():
        base = out.get(key)
        if isinstance(base, dict) and isinstance(value, dict):
            out[key] = _merge(base, value)
        elif (isinstance(base, list) and isinstance(value, list)
              and all(isinstance(v, dict) and "code" in v for v in base + value)):
            merged = {item["code"]: item for item in base}
            for item in value:
                merged[item["code"]] = _merge(merged[item["code"]], item) if item["code"] in merged else item
            out[key] = list(merged.values())
        else:
            out[key] = value
    return out


def _read_places(data: dict[str, Any], path: Path) -> None:
    """Fill `resolution.name_rules.places` from the CSV its `places_file` names (beside the pack,
    else beside the shipped pack of the same code)."""
    rules = (data.get("resolution") or {}).get("name_rules") if isinstance(data.get("resolution"), dict) else None
    if not isinstance(rules, dict) or not rules.get("places_file"):
        return
    table = path.parent / str(rules["places_file"])
    shipped = PACKS_DIR / str(data.get("code", "")) / str(rules["places_file"])
    if not table.exists() and _plain_name(data.get("code")) and _plain_name(rules["places_file"]) and shipped.exists():
        table = shipped  # a copy of a shipped pack written elsewhere uses the shipped table
    try:
        with table.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"code", "name", "level"} <= set(reader.fieldnames):
                raise PackError(f"{path}: resolution.name_rules.places_file: {table}: "
                                f"needs columns code,name,level (and status)")
            rules["places"] = [{k: v for k, v in row.items() if k in ("code", "name", "level", "status") and v}
                               for row in reader]
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError(f"{path}: resolution.name_rules.places_file: cannot read {table}: {exc}") from exc


def _plain_name(value: Any) -> bool:
    """A file or folder name without any folder in it: it cannot lead out of the folder it is looked up in."""
    text = str(value or "")
    return text not in ("", ".", "..") and "/" not in text and "\\" not in text


def load_uploaded_pack(path: Path, parents: frozenset[str] = frozenset()) -> Pack:
    """A pack file sent through a form (the console's simulation): it may extend a shipped pack or one
    of `parents` (the active pack's reference) and name its places file by a plain name only. Any other
    path in it would have the server read a file of its choosing: a mapping's keys come back in the
    errors, a file's existence in which error it is, and /dev/zero is read without end."""
    data = _read_yaml(path)
    parent = data.get("extends")
    if parent is not None and parent not in parents and not (
            _plain_name(parent) and (PACKS_DIR / str(parent) / "pack.yaml").is_file()):
        shipped = sorted(p.name for p in PACKS_DIR.iterdir() if (p / "pack.yaml").is_file())
        raise PackError(f"{path}: extends: an uploaded pack extends a shipped pack ({', '.join(shipped)}) "
                        "or the active one, never another file")
    resolution = data.get("resolution")
    rules = resolution.get("name_rules") if isinstance(resolution, dict) else None
    if isinstance(rules, dict) and rules.get("places_file") is not None and not _plain_name(rules["places_file"]):
        raise PackError(f"{path}: resolution.name_rules.places_file: a file name, without a folder")
    return load_pack(str(path))


def load_raw(ref: str, _seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], Path]:
    path = resolve_pack_path(ref).resolve()
    if path in _seen:
        raise PackError(f"{path}: `extends` makes a cycle")
    data = _read_yaml(path)
    _read_places(data, path)
    parent_ref = data.get("extends")
    if parent_ref:
        parent_path = path.parent / parent_ref
        parent_ref = str(parent_path) if parent_path.exists() else parent_ref
        try:
            parent, _ = load_raw(parent_ref, (*_seen, path))
        except PackError as exc:  # name the file whose `extends` leads there
            raise PackError(f"{path}: extends: {exc}") from None
        parent.pop("extends", None)
        data = _merge(parent, data)
    return data, path


def fingerprint(pack: Pack) -> str:
    """SHA-256 of the pack as loaded (its parents merged in), keys sorted: a pack file edited in
    place under the same version is another pack. Defaults left out: a later xinyong adding a
    setting with a default does not make the same pack another."""
    return hashlib.sha256(json.dumps(pack.model_dump(mode="json", exclude_defaults=True), sort_keys=True,
                                     ensure_ascii=False)
                          .encode()).hexdigest()


def load_pack(ref: str) -> Pack:
    data, path = load_raw(ref)
    try:
        return Pack.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {_key_path(data, err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise PackError("\n".join(lines)) from None


def _key_path(data: Any, loc: tuple[Any, ...]) -> str:
    """A validation error's place as the pack's author finds it: an item of a coded list by its code
    (`lists[serious_dishonesty].duration`), since an overlay's items sit at other positions than in
    the merged pack the error comes from."""
    parts: list[str] = []
    node = data
    for step in loc:
        item = node[step] if isinstance(node, list) and isinstance(step, int) and step < len(node) else None
        if isinstance(item, dict) and "code" in item:
            parts[-1:] = [f"{parts[-1] if parts else ''}[{item['code']}]"]
        else:
            parts.append(str(step))
        node = item if item is not None else (node.get(step) if isinstance(node, dict) else None)
    return ".".join(parts) or "(top level)"
