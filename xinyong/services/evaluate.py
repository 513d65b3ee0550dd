"""Evaluation: the pack's published rules, run set-based in SQL, propose listings.

Each list's rule in force on the evaluation date becomes one SQL query over the newest
active version of every record linked to an entity: category, field conditions, a count
within a window, subject kinds and exclusions. Entities that qualify and are not already
on the list get a proposal citing the rule version and the evidence records. A run is
incremental by default: only entities whose records arrived since the last run.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, exists, func, not_, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from xinyong.domain.calendar import add_months, add_years
from xinyong.domain.listings import ACTIVE
from xinyong.domain.pack import Condition, FieldType, ListSpec, Pack, RuleSpec
from xinyong.store import tables as t
from xinyong.store.audit import append_event, append_events
from xinyong.store.db import get_setting, set_setting

WATERMARK = "evaluate.last_record_id"
PROPOSAL_CHUNK = 2000


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
    applicable = [r for r in spec.rules if r.applies_from <= as_of]
    return max(applicable, key=lambda r: r.applies_from) if applicable else None


def _field(name: str, numeric: bool) -> ColumnElement:
    value = t.records.c.fields[name]
    return value.as_float() if numeric else value.as_string()


def _condition(pack: Pack, rule: RuleSpec, condition: Condition) -> ColumnElement:
    """`min`: a number at least that; `in`: equals one of (enums) or mentions one of (text)."""
    types = {f.name: f.type for c in rule.categories for f in pack.fields_of(pack.category(c))}
    if condition.min is not None:
        return _field(condition.field, True) >= condition.min
    values = condition.in_ or []
    column = _field(condition.field, False)
    if types.get(condition.field) in (FieldType.enum, FieldType.integer, FieldType.code):
        return column.in_(values)
    return or_(*(column.contains(v, autoescape=True) for v in values))


def qualifying_query(pack: Pack, spec: ListSpec, rule: RuleSpec, as_of: dt.date,
                     entity_ids: ColumnElement | None = None):
    """(entity_id, record_id) rows of the records that make entities qualify, set-based."""
    r, link, e = t.records.c, t.record_links.c, t.entities.c
    newer = t.records.alias("newer")
    disputed = select(t.objections.c.record_key).where(t.objections.c.state == "open",
                                                         t.objections.c.record_key.is_not(None))
    date_column = r.decision_date
    where = [
        r.category.in_(rule.categories),
        r.status == "active",
        ~exists().where(newer.c.record_key == r.record_key, newer.c.version > r.version),
        r.record_key.not_in(disputed),  # a disputed record counts for nothing
        link.state.in_(("linked", "new")),  # "new": the record made its own entity (a person...)
        link.entity_id.is_not(None),
        e.kind.in_([k.value for k in spec.subject_kinds]),
        date_column <= as_of,
        date_column >= rule.applies_from,  # a rule never reaches back before it applied
    ]
    if rule.window_months:
        where.append(date_column > add_months(as_of, -rule.window_months))
    if rule.any_of:
        where.append(or_(*(_condition(pack, rule, c) for c in rule.any_of)))
    where += [_condition(pack, rule, c) for c in rule.all_of]
    for condition in rule.exclude:
        excluded = _condition(pack, rule, condition)
        where.append(or_(not_(excluded), _field(condition.field, False).is_(None)))
    if rule.min_subject_age:
        # a person's birth date is in positions 7-14 of the resident ID number
        born_before = add_years(as_of, -rule.min_subject_age).strftime("%Y%m%d")
        where.append(or_(r.subject_scheme != "resident_id", r.subject_scheme.is_(None),
                         func.substr(r.subject_code, 7, 8) <= born_before))
    if entity_ids is not None:
        where.append(link.entity_id.in_(entity_ids))
    already = select(t.listings.c.entity_id).where(t.listings.c.list_code == spec.code,
                                                   t.listings.c.state.in_(ACTIVE))
    where.append(link.entity_id.not_in(already))
    base = (select(link.entity_id, r.id.label("record_id"))
            .select_from(t.records.join(t.record_links, link.record_id == r.id)
                         .join(t.entities, e.id == link.entity_id))
            .where(and_(*where)))
    if rule.min_count > 1:
        counted = base.subquery()
        enough = (select(counted.c.entity_id).group_by(counted.c.entity_id)
                  .having(func.count() >= rule.min_count))
        return select(counted.c.entity_id, counted.c.record_id).where(counted.c.entity_id.in_(enough))
    return base


def evaluate(engine: Engine, pack: Pack, as_of: dt.date, *, full: bool = False,
             actor: str = "evaluator") -> EvaluateResult:
    started = time.perf_counter()
    with engine.begin() as connection:
        watermark = get_setting(connection, WATERMARK)
        newest = connection.execute(select(func.max(t.records.c.id))).scalar() or 0
        incremental = watermark is not None and not full
        result = EvaluateResult(as_of.isoformat(), "incremental" if incremental else "full")
        touched = None
        if incremental:
            touched = (select(t.record_links.c.entity_id)
                       .join(t.records, t.records.c.id == t.record_links.c.record_id)
                       .where(t.records.c.id > int(watermark), t.record_links.c.entity_id.is_not(None))
                       .distinct())
            result.entities_considered = connection.execute(
                select(func.count()).select_from(touched.subquery())).scalar_one()
        for spec in pack.lists:
            rule = rule_in_force(spec, as_of)
            if rule is None:
                continue
            evidence: dict[int, list[int]] = defaultdict(list)
            for entity_id, record_id in connection.execute(qualifying_query(pack, spec, rule, as_of, touched)):
                evidence[entity_id].append(record_id)
            result.per_list[spec.code] = len(evidence)
            result.proposals += len(evidence)
            _propose(connection, pack, spec, rule, as_of, evidence, actor)
        set_setting(connection, WATERMARK, str(newest))
        result.seconds = round(time.perf_counter() - started, 2)
        append_event(connection, actor=actor, action="evaluation.run", object_type="evaluation",
                     object_id=as_of.isoformat(), payload=result.as_dict())
    return result


def _propose(connection: Connection, pack: Pack, spec: ListSpec, rule: RuleSpec, as_of: dt.date,
             evidence: dict[int, list[int]], actor: str) -> None:
    """Proposals in bulk: listings, their evidence, first transitions and audit events."""
    if not evidence:
        return
    kinds = _kinds(connection, list(evidence))
    now = dt.datetime.now(dt.timezone.utc)
    entity_ids = sorted(evidence)
    for start in range(0, len(entity_ids), PROPOSAL_CHUNK):
        part = entity_ids[start:start + PROPOSAL_CHUNK]
        listing_ids = connection.execute(
            t.listings.insert().returning(t.listings.c.id, sort_by_parameter_order=True),
            [{"entity_id": e, "list_code": spec.code, "rule_version": rule.version, "state": "proposed",
              "subject_kind": kinds[e], "language": "zh", "proposed_on": as_of, "created_at": now}
             for e in part]).scalars().all()
        reason = f"rule {spec.code} v{rule.version}"
        connection.execute(t.listing_evidence.insert(), [
            {"listing_id": listing_id, "record_id": rid}
            for listing_id, e in zip(listing_ids, part) for rid in sorted(set(evidence[e]))])
        connection.execute(t.listing_transitions.insert(), [
            {"listing_id": listing_id, "from_state": None, "to_state": "proposed", "on_date": as_of,
             "actor": actor, "reason": reason, "recorded_at": now} for listing_id in listing_ids])
        append_events(connection, [
            {"actor": actor, "action": "listing.proposed", "object_type": "listing", "object_id": str(listing_id),
             "reason": reason, "legal_basis": rule.legal_basis,
             "payload": {"entity_id": e, "list": spec.code, "rule_version": rule.version,
                         "evidence": sorted(set(evidence[e])), "on": as_of.isoformat()}}
            for listing_id, e in zip(listing_ids, part)])


def _kinds(connection: Connection, entity_ids: list[int]) -> dict[int, str]:
    kinds: dict[int, str] = {}
    for start in range(0, len(entity_ids), 900):  # under every engine's bound-parameter limit
        kinds.update(connection.execute(select(t.entities.c.id, t.entities.c.kind)
                                        .where(t.entities.c.id.in_(entity_ids[start:start + 900]))).all())
    return kinds
