"""Evaluation: the pack's published rules, run set-based in SQL, propose listings.

Each list's rule in force on the evaluation date becomes one SQL query over the newest
active version of every record linked to an entity: category, field conditions, a count
within a window, subject kinds and exclusions. Entities that qualify and are not already
on the list get a proposal citing the rule version and the evidence records. A run is
incremental by default: only entities whose records arrived, or whose listings ended, since the
last run, when it is as of the same date (a run as of another date, earlier or later, is a full one).

A listing that ended never comes back from the records it cited: a record cited by an ended
listing of a list never counts again for that list; a corrected version is a new record only
when the correction undid the listing (one that bound spent the decision, corrected or not). A
person's listing withdrawn as not identified spends nothing: it never reached a known person.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    exists,
    false,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    text,
    union,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from xinyong.domain.audit import leaf_digest, merkle_root_of, proposal_leaf
from xinyong.domain.calendar import add_months, add_years
from xinyong.domain.decisions import IN_FORCE
from xinyong.domain.listings import ACTIVE, FINAL, NOT_SPENT, UNDONE
from xinyong.domain.pack import Condition, FieldType, ListSpec, Pack, RuleSpec
from xinyong.domain.records import decision_number
from xinyong.store import tables as t
from xinyong.store.audit import append_event
from xinyong.store.bulk import Ids, bulk_session, collector_paused, render_value
from xinyong.store.changes import ChangeNotingWriter
from xinyong.store.db import get_setting, set_setting
from xinyong.store.plans import not_by_index, plan_for_the_whole_register

WATERMARK = "evaluate.last_record_id"
LAST_AS_OF = "evaluate.last_as_of"
LAST_CHANGE = "evaluate.last_change_seq"  # the store's `changes` sequence as the last SQL run began
RATIO_NOT_CHECKED = "ratio not checked"
AGE_NOT_CHECKED = "age not checked: no ID number giving a birth date"  # none, or a scheme without one (an SSN)
PROPOSAL_CHUNK = 5000  # proposals per batch: one audit event each
FETCH_ROWS = 10_000  # qualifying rows read from the driver at a time
PROPOSED_BATCH = "listings.proposed"
# what differs between the proposals of one list (the rest is the same for all: `_propose`)
LISTING_COLUMNS = ("id", "entity_id", "subject_kind")
EVIDENCE_COLUMNS = ("listing_id", "record_id", "note")
TRANSITION_COLUMNS = ("id", "listing_id")


@dataclass
class EvaluateResult:
    as_of: str
    mode: str  # full | incremental
    entities_considered: int | None = None  # None: the whole register
    proposals: int = 0
    per_list: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rule_in_force(spec: ListSpec, as_of: dt.date) -> RuleSpec | None:
    """The rule that applies latest on `as_of`; of two applying from the same day, the later in the pack."""
    applicable = [(r.applies_from, i, r) for i, r in enumerate(spec.rules) if r.applies_from <= as_of]
    return max(applicable, key=lambda item: item[:2])[2] if applicable else None


def _field(name: str, numeric: bool) -> ColumnElement:
    value = t.records.c.fields[name]
    return value.as_float() if numeric else value.as_string()


def _condition(pack: Pack, rule: RuleSpec, condition: Condition) -> ColumnElement:
    """`min`: a number at least that (and, with `ratio_to`, that share of another field when it
    is given); `in`: equals one of (enums) or mentions one of (text); `present`: has a value;
    a group: all of `all_of` and one of `any_of`."""
    if condition.field is None:
        parts = [_condition(pack, rule, c) for c in condition.all_of]
        if condition.any_of:
            parts.append(or_(*(_condition(pack, rule, c) for c in condition.any_of)))
        return and_(*parts)
    types = {f.name: f.type for c in rule.categories for f in pack.fields_of(pack.category(c))}
    if condition.present is not None:
        column = _field(condition.field, False)
        return column.is_not(None) if condition.present else column.is_(None)
    if condition.min is not None:
        amount = _field(condition.field, True) >= condition.min
        if condition.ratio_to is None:
            return amount
        base = _field(condition.ratio_to, True)
        return and_(amount, or_(base.is_(None), _field(condition.field, True) >= base * condition.min_ratio))
    values = condition.in_ or []
    column = _field(condition.field, False)
    if types.get(condition.field) in (FieldType.enum, FieldType.integer, FieldType.code):
        return column.in_(values)
    return or_(*(column.contains(v, autoescape=True) for v in values))


def _ratio_tests(conditions: list[Condition]) -> list[Condition]:
    found = []
    for c in conditions:
        if c.ratio_to is not None:
            found.append(c)
        found += _ratio_tests([*c.all_of, *c.any_of])
    return found


def _note(rule: RuleSpec) -> ColumnElement:
    """What the evidence says about a test it could not make: a ratio whose base is missing, or
    the age of a person named without an ID number on a record a reviewer attached to an entity
    of another kind (an individual business); a natural person's own entity never gets this far."""
    r = t.records.c
    unchecked = [and_(_field(c.field, True) >= c.min, _field(c.ratio_to, True).is_(None))  # type: ignore[arg-type]
                 for c in _ratio_tests([*rule.any_of, *rule.all_of])]
    whens = [(or_(*unchecked), literal(RATIO_NOT_CHECKED))] if unchecked else []
    if rule.min_subject_age:
        whens.append((and_(r.subject_kind == "natural_person",
                           func.coalesce(r.subject_scheme, "") != "resident_id"), literal(AGE_NOT_CHECKED)))
    if not whens:
        return literal(None, t.listing_evidence.c.note.type).label("note")
    return case(*whens, else_=None).label("note")


def _latest_only(field_name: str) -> ColumnElement:
    """No later record (by `field_name`) of the same category for the same entity counts."""
    r, link = t.records.c, t.record_links.c
    later, later_link, newer = t.records.alias("later"), t.record_links.alias("later_link"), t.records.alias("later_newer")
    return ~exists().where(
        later_link.c.record_id == later.c.id, later_link.c.entity_id == link.entity_id,
        later_link.c.state.in_(("linked", "new")), later.c.category == r.category, later.c.status == "active",
        ~exists().where(newer.c.record_key == later.c.record_key, newer.c.version > later.c.version),
        later.c.fields[field_name].as_float() > r.fields[field_name].as_float())


def _in_force_on(as_of: dt.date) -> tuple[ColumnElement, ...]:
    L = t.listings.c
    return (L.state.in_(IN_FORCE), L.effective_from <= as_of, or_(L.effective_to.is_(None), L.effective_to > as_of))


def qualifying_query(pack: Pack, spec: ListSpec, rule: RuleSpec, as_of: dt.date,
                     entity_ids: ColumnElement | Table | None = None, *, include_listed: bool = False):
    """(entity_id, record_id, note) rows of the records that make entities qualify, set-based.

    `entity_ids`: only these entities, a subquery of ids or a table with `entity_id` and `category`
    columns (the incremental run's temporary table of touched entities: its rows of the rule's
    categories drive the query, each entity's links found by the index on `record_links.entity_id`).
    Entities already on the list (an active listing) are left out, unless `include_listed`
    (the rule-impact simulation compares whom two packs qualify, listed or not)."""
    r, link, e, L = t.records.c, t.record_links.c, t.entities.c, t.listings.c
    newer = t.records.alias("newer")
    disputed = select(t.objections.c.record_key).where(t.objections.c.state == "open",
                                                         t.objections.c.record_key.is_not(None))
    # evidence of a listing of this list that ended served once and never serves again, nor does
    # any later version the authority sends of the same record (the court's version saying the
    # debt is paid, a re-send): only an officer's `record correct` makes a new fact of it
    few = isinstance(entity_ids, Table)  # a few touched entities: their records drive every test
    # (except a person's listing withdrawn as not identified: the decision never reached a known
    # person, so a version naming them by a valid ID number still may)
    # (nor a redlist listing ended by a blacklist listing of its subject that was undone since, an
    # objection upheld or its evidence revoked: what never bound excludes nothing, and the grade that
    # listed the firm lists it again)
    blockers = [other.code for other in pack.lists if spec.code in other.excludes]

    def still_spent(listing: Any) -> list[ColumnElement]:
        if not blockers:
            return []
        black = t.listings.alias("spent_black")
        return [or_(func.coalesce(listing.end_reason, "") != "excluded_by_blacklist",
                    exists().where(black.c.entity_id == listing.entity_id, black.c.list_code.in_(blockers),
                                   black.c.effective_from.is_not(None),
                                   func.coalesce(black.c.end_reason, "").not_in(UNDONE)))]

    spent_versions = (select(t.listing_evidence.c.record_id)
                      .join(t.listings, L.id == t.listing_evidence.c.listing_id)
                      .where(L.list_code == spec.code, L.state.in_(FINAL),
                             func.coalesce(L.end_reason, "").not_in(NOT_SPENT), *still_spent(L)))
    spent_keys = select(t.records.c.record_key).where(t.records.c.id.in_(spent_versions))
    if few:  # each candidate's own evidence looked up (index on record_id), not every listing of the list
        spent_evidence, spent_listing, spent_record = (t.listing_evidence.alias("spent_evidence"),
                                                       t.listings.alias("spent_listing"), t.records.alias("spent_record"))
        spent_by = (spent_listing.c.id == spent_evidence.c.listing_id, spent_listing.c.list_code == spec.code,
                    spent_listing.c.state.in_(FINAL),
                    func.coalesce(spent_listing.c.end_reason, "").not_in(NOT_SPENT),
                    *still_spent(spent_listing.c))
        unspent_version = ~exists().where(spent_evidence.c.record_id == r.id, *spent_by)

        def unspent_key_by(*ended: ColumnElement) -> ColumnElement:
            # nested, so that the versions of the key are found first (by key), then their evidence
            return ~exists().where(spent_record.c.record_key == r.record_key,
                                   exists().where(spent_evidence.c.record_id == spent_record.c.id, *spent_by, *ended))

        unspent_key = unspent_key_by()
        unbound_key = unspent_key_by(func.coalesce(spent_listing.c.end_reason, "").not_in(UNDONE))
    else:  # the whole register: one pass over the list's ended listings
        unspent_version, unspent_key = r.id.not_in(spent_versions), r.record_key.not_in(spent_keys)
        bound_versions = spent_versions.where(func.coalesce(L.end_reason, "").not_in(UNDONE))
        unbound_key = r.record_key.not_in(select(t.records.c.record_key).where(t.records.c.id.in_(bound_versions)))
    corrected_from = t.records.alias("corrected_from")
    # a correction keeps the batch and row of the version it corrects (`correct_record`), while an
    # authority's version always comes in a batch of its own (one batch holds one version of a key);
    # it is a new fact only for a listing it undid: one that bound (repaired, performed, expired...)
    # spent the decision, and fixing a typo in it lists nobody again
    made_by_correction = exists().where(corrected_from.c.record_key == r.record_key,
                                        corrected_from.c.version == r.version - 1,
                                        corrected_from.c.batch_id == r.batch_id)
    date_column = r.decision_date
    where = [
        r.category.in_(rule.categories),
        r.status == "active",
        ~exists().where(newer.c.record_key == r.record_key, newer.c.version > r.version),
        r.record_key.not_in(disputed),  # a disputed record counts for nothing
        unspent_version,
        or_(unspent_key, and_(made_by_correction, unbound_key)),
        # "new": the record made its own entity (a person...). Nearly every link is in one of these:
        # starting from the state's index and fetching each record by id cost 1.5 times a scan of
        # the records (200,000 entities)
        not_by_index(link.state).in_(("linked", "new")),
        link.entity_id.is_not(None),
        e.kind.in_([k.value for k in spec.subject_kinds]),
        # due process: a natural person is listed only on records naming them by a person's number
        # that passes its check (a resident ID number, GB 11643, or a scheme the pack declares
        # `person`); a name alone, or a number masked or mistyped, establishes nobody (resolution
        # holds such a record in review: PERSON_NOT_IDENTIFIED)
        or_(e.kind != "natural_person", and_(r.subject_scheme.in_(sorted(pack.person_schemes)),
                                             r.subject_code_verified)),
    ]
    annual = spec.annual_publication
    if annual is not None:
        # grades of year Y count from the publication of Y+1 until the next publication
        cycle = annual.cycle_year(as_of)
        where.append(_field(annual.year_field, True) == cycle - 1)
        if annual.published(cycle) < rule.applies_from:
            where.append(false())
    else:
        # a grace period delays the proposal: not before the record's date + grace_days
        where += [date_column <= as_of - dt.timedelta(days=spec.due_process.grace_days),
                  date_column >= rule.applies_from]  # a rule never reaches back before it applied
    if rule.authorities:
        where.append(r.authority.in_(rule.authorities))
    if rule.latest_by:
        where.append(_latest_only(rule.latest_by))
    if spec.cured_by:  # a record cured on or before the evaluation date proposes nothing
        cured = _field(spec.cured_by, False)
        where.append(or_(cured.is_(None), cured > as_of.isoformat()))
    if blockers and few:  # no redlist proposal while a blacklist that excludes it is in force
        where.append(~exists().where(L.entity_id == link.entity_id, L.list_code.in_(blockers), *_in_force_on(as_of)))
    elif blockers:
        where.append(link.entity_id.not_in(select(L.entity_id).where(L.list_code.in_(blockers),
                                                                      *_in_force_on(as_of))))
    if rule.window_months:
        where.append(date_column > add_months(as_of, -rule.window_months))
    if rule.any_of:
        where.append(or_(*(_condition(pack, rule, c) for c in rule.any_of)))
    where += [_condition(pack, rule, c) for c in rule.all_of]
    for condition in spec.performed_when:  # a record showing performance ends a listing: it never makes one
        where.append(not_(func.coalesce(_condition(pack, rule, condition), false())))
    for condition in rule.exclude:
        # a test on an empty field (NULL) excludes nothing, for one field or a group of them
        where.append(not_(func.coalesce(_condition(pack, rule, condition), false())))
    if rule.min_subject_age:
        # a person's birth date is in positions 7-14 of the resident ID number
        born_before = add_years(as_of, -rule.min_subject_age).strftime("%Y%m%d")
        where.append(or_(r.subject_scheme != "resident_id", r.subject_scheme.is_(None),
                         func.substr(r.subject_code, 7, 8) <= born_before))
    if few:  # the links are looked up by entity, from the table's rows for the rule's categories
        where.append(link.entity_id.in_(select(entity_ids.c.entity_id)
                                        .where(entity_ids.c.category.in_(rule.categories))))
    elif entity_ids is not None:
        where.append(link.entity_id.in_(entity_ids))
    if not include_listed:
        if few:  # a few entities: look each one's listings up (index on entity_id)
            where.append(~exists().where(L.entity_id == link.entity_id, L.list_code == spec.code,
                                         L.state.in_(ACTIVE)))
        else:  # the whole register: one pass over the list's listings
            already = select(L.entity_id).where(L.list_code == spec.code, L.state.in_(ACTIVE))
            where.append(link.entity_id.not_in(already))
    base = (select(link.entity_id, r.id.label("record_id"), _note(rule))
            .select_from(t.records.join(t.record_links, link.record_id == r.id)
                         .join(t.entities, e.id == link.entity_id))
            .where(and_(*where)))
    if rule.min_count > 1:
        counted = base.subquery()
        enough = (select(counted.c.entity_id).group_by(counted.c.entity_id)
                  .having(func.count() >= rule.min_count))
        return (select(counted.c.entity_id, counted.c.record_id, counted.c.note)
                .where(counted.c.entity_id.in_(enough)))
    return base


TOUCHED = Table("evaluate_touched", MetaData(), Column("entity_id", Integer, primary_key=True),
                Column("category", String(32), primary_key=True), prefixes=["TEMPORARY"])


def touched_by(watermark: int) -> Any:
    """(entity, category) of the records that arrived after `watermark`, and of the versions they
    supersede whatever their category (a superseded record may have been what kept an older one
    from being the latest): the incremental run's scope, on the SQL engine and on Spark.

    A link's key is its record's id: a range of it drives the query, never the index on entity_id
    (which SQLite prefers, and which walks every link)."""
    r, link = t.records.c, t.record_links.c
    older = t.records.alias("older")
    arrived = (link.record_id > watermark, not_by_index(link.entity_id).is_not(None))
    new_links = t.record_links.join(t.records, r.id == link.record_id)
    return union(
        select(link.entity_id, r.category).select_from(new_links).where(*arrived),
        select(link.entity_id, older.c.category)
        .select_from(new_links.join(older, and_(older.c.record_key == r.record_key, older.c.version < r.version)))
        .where(*arrived))


def fill_touched(connection: Connection, watermark: int, ended: set[tuple[int, str]] = frozenset()) -> int:
    """Fill the session's temporary table of the entities whose records arrived after `watermark`,
    each with the categories those records touch (`touched_by`), and the (entity, category) pairs
    of `ended` (`ended_since`: the subjects of listings that ended); returns how many entities.

    A list's rule reads only records of its categories, so an entity is examined again only for
    the lists of those categories: a penalty never changes whom the court list qualifies."""
    TOUCHED.drop(connection, checkfirst=True)
    TOUCHED.create(connection)
    connection.execute(insert(TOUCHED).from_select(["entity_id", "category"], touched_by(watermark)))
    entities = sorted({entity_id for entity_id, _ in ended})
    present = {pair for start in range(0, len(entities), 900)  # under every engine's bound-parameter limit
               for pair in connection.execute(select(TOUCHED.c.entity_id, TOUCHED.c.category)
                                              .where(TOUCHED.c.entity_id.in_(entities[start:start + 900])))}
    rows = [{"entity_id": entity_id, "category": category} for entity_id, category in sorted(set(ended) - present)]
    if rows:
        connection.execute(insert(TOUCHED), rows)
    if connection.dialect.name == "sqlite":
        connection.execute(text("ANALYZE temp.evaluate_touched"))
    else:
        connection.execute(text("ANALYZE evaluate_touched"))
    return connection.execute(select(func.count(TOUCHED.c.entity_id.distinct()))).scalar_one()


def ended_since(connection: Connection, pack: Pack, since_seq: int,
                until_seq: int | None = None) -> set[tuple[int, str]]:
    """(entity, category) of the subjects of listings that ended after `since_seq` (the `changes`
    sequence; up to `until_seq`, a snapshot's, where given), with the categories of their list's
    rules and of the lists it excludes: no record
    arrived, yet an end changes what qualifies. A blacklist listing undone (an objection upheld, its
    evidence revoked) gives back the redlist it excluded, one that stopped binding lets a redlist it
    held off be proposed, and a subject's other records may list it again on the list it left."""
    categories = {spec.code: {category for listed in (spec.code, *spec.excludes)
                              for rule in pack.list_(listed).rules for category in rule.categories}
                  for spec in pack.lists}
    L, C = t.listings.c, t.changes.c
    changed = select(C.ref_id).where(C.kind == "listing", C.seq > since_seq)
    if until_seq is not None:
        changed = changed.where(C.seq <= until_seq)
    return {(entity_id, category)
            for entity_id, list_code in connection.execute(
                select(L.entity_id, L.list_code).distinct().where(L.id.in_(changed), L.state.in_(FINAL)))
            for category in categories.get(list_code, ())}


def evaluate(engine: Engine, pack: Pack, as_of: dt.date, *, full: bool = False,
             actor: str = "evaluator") -> EvaluateResult:
    started = time.perf_counter()
    with collector_paused(), engine.connect() as connection, bulk_session(connection), connection.begin():
        watermark = get_setting(connection, WATERMARK)
        last_change = get_setting(connection, LAST_CHANGE)
        newest = connection.execute(select(func.max(t.records.c.id))).scalar() or 0
        # read before the rules run: a listing that ends while they do is seen by the next run
        change = connection.execute(select(func.coalesce(func.max(t.changes.c.seq), 0))).scalar_one()
        # what qualifies depends on the date (windows, grace, ages, cures, publications):
        # only a run as of the same date as the last one may look at new records and ended
        # listings alone (a store whose last run kept no change sequence gets one full run)
        same_day = get_setting(connection, LAST_AS_OF) == as_of.isoformat()
        incremental = watermark is not None and last_change is not None and not full and same_day
        result = EvaluateResult(as_of.isoformat(), "incremental" if incremental else "full")
        touched, touched_categories = None, set()
        if incremental:
            result.entities_considered = fill_touched(connection, int(watermark),
                                                      ended_since(connection, pack, int(last_change)))
            touched = TOUCHED
            touched_categories = set(connection.execute(select(TOUCHED.c.category).distinct()).scalars())
        else:
            plan_for_the_whole_register(connection)
        with proposal_writer(connection) as writer:
            for spec in pack.lists:
                rule = rule_in_force(spec, as_of)
                if rule is None:
                    continue
                evidence: dict[int, dict[int, str | None]] = defaultdict(dict)
                # a list none of whose categories the new records touch has nobody to re-examine: no
                # query (PostgreSQL, guessing the touched rows of the category at one, planned it over
                # every link: 7.5 s for none at 300,000 records)
                if touched is None or touched_categories.intersection(rule.categories):
                    rows = connection.execute(qualifying_query(pack, spec, rule, as_of, touched))
                    for part in rows.partitions(FETCH_ROWS):  # the driver's fetchmany, not a call per row
                        for entity_id, record_id, note in part:
                            evidence[entity_id][record_id] = note
                without_spent_decisions(connection, spec, rule, evidence)
                result.per_list[spec.code] = len(evidence)
                result.proposals += len(evidence)
                _propose(connection, writer, spec, rule, as_of, evidence, actor, language=pack.language)
        if touched is not None:
            TOUCHED.drop(connection)
        set_setting(connection, WATERMARK, str(newest))
        set_setting(connection, LAST_AS_OF, as_of.isoformat())
        set_setting(connection, LAST_CHANGE, str(change))
        result.seconds = round(time.perf_counter() - started, 2)
        append_event(connection, actor=actor, action="evaluation.run", object_type="evaluation",
                     object_id=as_of.isoformat(), payload=result.as_dict())
    return result


def without_spent_decisions(connection: Connection, spec: ListSpec, rule: RuleSpec,
                            evidence: dict[int, dict[int, str | None]]) -> None:
    """Leave out of `evidence` each record that is an ended listing's evidence written another way:
    the same authority's decision number for the same entity (`domain.records.decision_number`)
    under another key, which the rule query, comparing keys, took for a new fact. A court re-sending
    its repaired case with (2026) for （2026）, a space, or the firm's name for its code made the
    listing come back. And count decisions, not keys: one decision the authority sent twice, written
    京市监罚〔2026〕12号 and 京市监罚[2026]12号 (two keys, two records), is cited once, by the record
    stored last (the authority's latest word on it), so a rule needing two penalties never lists a
    firm on one. An entity left with fewer decisions than the rule needs is not proposed."""
    L, E, r = t.listings.c, t.listing_evidence.c, t.records.c
    spent: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))  # entity -> number -> keys
    proposed = sorted(evidence)
    for start in range(0, len(proposed), 900):  # only the entities proposed, under every engine's parameter limit
        for entity_id, key in connection.execute(
                select(L.entity_id, r.record_key).join(t.listing_evidence, E.listing_id == L.id)
                .join(t.records, r.id == E.record_id)
                .where(L.list_code == spec.code, L.entity_id.in_(proposed[start:start + 900]), L.state.in_(FINAL),
                       func.coalesce(L.end_reason, "").not_in(NOT_SPENT))):
            spent[entity_id][decision_number(key)].add(key)
    # an entity cited on one record has one decision: only the others' keys are read
    checked = sorted(set(spent) | {entity_id for entity_id, records in evidence.items() if len(records) > 1})
    cited = sorted(record_id for entity_id in checked for record_id in evidence[entity_id])
    keys: dict[int, str] = {}
    for start in range(0, len(cited), 900):  # under every engine's bound-parameter limit
        keys.update(connection.execute(select(r.id, r.record_key).where(r.id.in_(cited[start:start + 900]))).all())
    for entity_id in checked:
        numbers = spent.get(entity_id, {})
        kept: dict[int, str | None] = {}
        decisions: set[str] = set()
        for record_id in sorted(evidence[entity_id], reverse=True):
            number = decision_number(keys[record_id])
            # the same key is the rule query's to judge (a version made by `record correct` is a new fact)
            if number in decisions or numbers.get(number, set()) - {keys[record_id]}:
                continue
            decisions.add(number)
            kept[record_id] = evidence[entity_id][record_id]
        if len(kept) < rule.min_count:
            del evidence[entity_id]
        else:
            evidence[entity_id] = kept


def proposal_writer(connection: Connection) -> ChangeNotingWriter:
    """What `_propose` writes through: the tables a proposal fills, with their change-feed rows."""
    return ChangeNotingWriter(connection, (t.listings.name, t.listing_evidence.name, t.listing_transitions.name))


def _propose(connection: Connection, writer: ChangeNotingWriter, spec: ListSpec, rule: RuleSpec, as_of: dt.date,
             evidence: dict[int, dict[int, str | None]], actor: str, *, language: str) -> None:
    """Proposals in bulk, a batch at a time (their notices to be served in `language`, the pack's):
    listings, their evidence and first transitions, and one
    chained audit event per batch (`listings.proposed`) carrying the Merkle root of the batch's
    proposals and each proposal's leaf digest (`domain.audit.proposal_leaf`), which `audit verify`
    recomputes from the store one proposal at a time."""
    if not evidence:
        return
    kinds = _kinds(connection, list(evidence))
    now = dt.datetime.now(dt.timezone.utc)
    on = as_of.isoformat()
    reason = f"rule {spec.code} v{rule.version}"
    day = render_value(connection, t.listings.c.proposed_on, as_of)
    at = render_value(connection, t.listings.c.created_at, now)
    ids, transition_ids = Ids(connection, t.listings), Ids(connection, t.listing_transitions)
    listing = {"list_code": spec.code, "rule_version": rule.version, "state": "proposed", "language": language,
               "proposed_on": day, "created_at": at}
    step = {"from_state": None, "to_state": "proposed", "on_date": day, "actor": actor, "reason": reason,
            "recorded_at": at}
    entity_ids = sorted(evidence)
    for start in range(0, len(entity_ids), PROPOSAL_CHUNK):
        part = entity_ids[start:start + PROPOSAL_CHUNK]
        listing_ids = ids.take_many(len(part))
        cited = [sorted(evidence[e].items()) for e in part]  # (record id, note), by record id
        writer.insert(t.listings, LISTING_COLUMNS, [(listing_id, e, kinds[e]) for listing_id, e in zip(listing_ids, part)],
                      listing)
        writer.insert(t.listing_evidence, EVIDENCE_COLUMNS, [
            (listing_id, record_id, note) for listing_id, items in zip(listing_ids, cited) for record_id, note in items],
            {})
        writer.insert(t.listing_transitions, TRANSITION_COLUMNS,
                      list(zip(transition_ids.take_many(len(listing_ids)), listing_ids)), step)
        digests = [leaf_digest(proposal_leaf(listing_id, e, spec.code, rule.version, "proposed", on, kinds[e], items))
                   for listing_id, e, items in zip(listing_ids, part, cited)]
        append_event(connection, actor=actor, action=PROPOSED_BATCH, object_type="listings",
                     object_id=f"{listing_ids[0]}..{listing_ids[-1]}", reason=reason,
                     legal_basis=rule.legal_basis,
                     payload={"list": spec.code, "rule_version": rule.version, "on": on, "count": len(listing_ids),
                              "root": merkle_root_of(digests),
                              "proposals": [[listing_id, d.hex()] for listing_id, d in zip(listing_ids, digests)]})


def _kinds(connection: Connection, entity_ids: list[int]) -> dict[int, str]:
    """Each entity's kind, 900 ids a statement (under every engine's bound-parameter limit), sent
    through the driver: one prepared statement for every full chunk, not one compiled each time."""
    mark = "%s" if connection.dialect.name == "postgresql" else "?"
    kinds: dict[int, str] = {}
    cursor = connection.connection.driver_connection.cursor()
    try:
        for start in range(0, len(entity_ids), 900):
            part = entity_ids[start:start + 900]
            cursor.execute(f"SELECT id, kind FROM entities WHERE id IN ({', '.join([mark] * len(part))})", part)
            kinds.update(cursor.fetchall())
    finally:
        cursor.close()
    return kinds
