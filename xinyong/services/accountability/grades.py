"""Explainable supervision grades: a pack-defined class (A-D) per enterprise, from its records.

Every point cites its record, the grade rule and the rule's weight; the grade is computed on
demand as of a date and never stored, except when it is shared with an authority (the
restricted API, the console): then the grade, its points and who received it for what purpose
are kept in `grades_shared` with an audit event. Natural persons are never graded: the pack
schema refuses such a rule, and this module refuses such an entity whatever the pack says.
Objecting to a point is objecting to its record (`services.publication.subjects.object_as_subject`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from sqlalchemy import Engine, select

from xinyong.domain.calendar import add_months
from xinyong.domain.conditions import holds
from xinyong.domain.identifiers import mask_record_key
from xinyong.domain.pack import GradesSpec, Pack, SubjectKind
from xinyong.services.resolution.entities import EntityNotFound, current_records, find_entity_id
from xinyong.store import tables as t
from xinyong.store.audit import append_event


class GradeError(Exception):
    """No grade: the pack defines none, or the entity may not be graded (a person)."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def _fields(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    return orjson.loads(value) if value else {}


def grade_spec(pack: Pack) -> GradesSpec:
    if pack.grades is None:
        raise GradeError(f"pack {pack.code} defines no supervision grades", "no_grades")
    return pack.grades


def compute_grade(engine: Engine, pack: Pack, code: str, as_of: dt.date) -> dict[str, Any]:
    """The grade of one entity as of a date, with every point's record, rule and weight.

    A record counts from its decision date (not after `as_of`) within the rule's window; its
    newest version must be active; a record under an open objection is listed apart
    (`suspended`) and counts for nothing until the objection is decided."""
    spec = grade_spec(pack)
    with engine.connect() as c:
        entity_id = find_entity_id(c, code)
        if entity_id is None:
            raise EntityNotFound(f"no entity with key or identifier {code!r}")
        entity = c.execute(select(t.entities.c.key, t.entities.c.kind).where(t.entities.c.id == entity_id)).one()
        if entity.kind == SubjectKind.natural_person.value:
            raise GradeError("natural persons are never graded", "person_not_graded")
        if entity.kind not in {k.value for k in spec.subject_kinds}:
            raise GradeError(f"entities of kind {entity.kind} are not graded by pack {pack.code}", "kind_not_graded")
        rows = current_records(c, entity_id)
        keys = [row.record_key for row in rows]
        disputed = {k for k, in c.execute(select(t.objections.c.record_key).where(
            t.objections.c.record_key.in_(keys), t.objections.c.state == "open"))} if keys else set()
    points: list[dict[str, Any]] = []
    suspended: list[dict[str, Any]] = []
    for rule in spec.rules:
        if rule.subject_kinds and entity.kind not in {k.value for k in rule.subject_kinds}:
            continue
        since = add_months(as_of, -rule.window_months) if rule.window_months else None
        for row in rows:
            if row.category not in rule.categories or row.status != "active" or row.decision_date is None:
                continue
            if row.decision_date > as_of or (since is not None and row.decision_date <= since):
                continue
            if rule.authorities and row.authority not in rule.authorities:
                continue
            fields = _fields(row.fields)
            types = {f.name: f.type for f in pack.fields_of(pack.category(row.category))}
            if rule.any_of and not any(holds(cond, fields, types) for cond in rule.any_of):
                continue
            if not all(holds(cond, fields, types) for cond in rule.all_of):
                continue
            point = {"record": mask_record_key(row.record_key), "record_id": row.id, "rule": rule.code,
                     "weight": rule.weight, "category": row.category, "authority": row.authority,
                     "decision_date": row.decision_date}
            (suspended if row.record_key in disputed else points).append(point)
    total = sum(p["weight"] for p in points)
    points.sort(key=lambda p: (-p["weight"], p["decision_date"], p["record"]))
    return {"entity": entity.key, "kind": entity.kind, "grade": spec.class_for(total), "total_points": total,
            "as_of": as_of, "pack": pack.code, "pack_version": pack.version, "unverified": spec.unverified,
            "points": points, "suspended": suspended}


def share_grade(engine: Engine, pack: Pack, code: str, as_of: dt.date, *, authority: str, purpose: str,
                actor: str) -> dict[str, Any]:
    """A grade given to an authority: computed, stored in `grades_shared` and audited."""
    grade = compute_grade(engine, pack, code, as_of)
    now = dt.datetime.now(dt.timezone.utc)
    stored = orjson.loads(orjson.dumps(grade, default=str))
    with engine.begin() as c:
        entity_id = find_entity_id(c, grade["entity"])
        shared_id = c.execute(t.grades_shared.insert().returning(t.grades_shared.c.id).values(
            entity_id=entity_id, grade=grade["grade"], as_of=as_of, points=stored, pack_version=pack.version,
            authority=authority, purpose=purpose, actor=actor, shared_at=now)).scalar_one()
        append_event(c, actor=actor, action="grade.shared", object_type="grade", object_id=str(shared_id),
                     legal_basis=pack.grades.legal_basis if pack.grades else None,
                     payload={"entity": grade["entity"], "grade": grade["grade"], "as_of": as_of.isoformat(),
                              "authority": authority, "purpose": purpose, "total_points": grade["total_points"],
                              "points": [{"record": p["record"], "rule": p["rule"], "weight": p["weight"]}
                                         for p in grade["points"]]})
    return {**grade, "shared": shared_id}
