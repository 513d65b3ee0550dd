"""A firm's relations (shareholders, actual controller, key staff) and how a new set replaces the old.

Pure. A relations record names the firm (its subject) and one party in one role; the pack maps
each role to a relation (`RelationsSpec.relation_of_role`). The relations a measure can reach
(`MeasureSpec.reaches`) are `legal_representative` (from the register), `actual_controller`
(实际控制人) and `principal`: the person in charge of the firm's business, 主要负责人 in the
high-consumption rules (法释〔2015〕17号 art. 3) — the manager (经理) or the person in charge
(负责人), never a director or supervisor (董事, 监事: `key_staff`, which no measure reaches).

A firm's relations from one batch are its whole set from the set's date: each open relation of
an earlier set that the new set repeats (same relation, role, party and share) stays open and
takes the new record as its source; every other one ends on the date; the rest are opened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from xinyong.domain.identifiers import classify_code
from xinyong.domain.names import normalise_name
from xinyong.domain.pack import PersonNamesSpec, RelationsSpec
from xinyong.domain.records import looks_like_person_name

PERSON = "natural_person"


@dataclass(frozen=True, slots=True)
class Party:
    """The other side of a relation: a person (with an ID number when given) or a firm (with its
    USCC when given; `entity_id` once it is found among the store's entities)."""

    name: str
    person: bool
    person_id: str | None = None  # restricted: masked wherever it is shown
    code: str | None = None  # a firm's verified USCC
    entity_id: int | None = None

    @property
    def identity(self) -> tuple[str, str]:
        """What makes two mentions the same party: the entity, else the ID number, else the name."""
        if self.entity_id is not None:
            return ("entity", str(self.entity_id))
        if self.person_id:
            return ("person", self.person_id)
        return ("person" if self.person else "firm", normalise_name(self.name))


@dataclass(frozen=True, slots=True)
class Relation:
    """One relation as two sets compare it."""

    relation: str
    role: str
    party: Party
    share: float | None = None

    @property
    def identity(self) -> tuple[object, ...]:
        return (self.relation, self.role, self.party.identity, self.share)


def classify_party(name: str, code: str | None, kind: str | None, rules: PersonNamesSpec,
                   today: dt.date | None = None) -> Party:
    """A person when the code is a valid resident ID, the kind says so, or (neither given) the name
    reads as a person's; a firm otherwise. Only a verified code is kept."""
    if kind is None and code is None:
        return Party(name, looks_like_person_name(name, rules))
    classified = classify_code(code, "resident_id" if kind == PERSON else "uscc", subject_kind=kind,
                               today=today) if code else None
    if classified is not None and classified.verified and classified.scheme == "resident_id":
        return Party(name, True, person_id=classified.value)
    person = kind == PERSON if kind is not None else looks_like_person_name(name, rules)
    if person:
        return Party(name, True)
    uscc = classified.value if classified is not None and classified.verified and classified.scheme == "uscc" else None
    return Party(name, False, code=uscc)


def relation_of(spec: RelationsSpec, fields: Mapping[str, object], rules: PersonNamesSpec) -> Relation:
    """The relation a validated relations record states (its party not yet looked up among entities)."""
    def value(name: str | None) -> str | None:
        found = fields.get(name) if name else None
        return str(found) if found not in (None, "") else None

    role = str(fields[spec.role_field])
    party = classify_party(str(fields[spec.party_field]), value(spec.party_code_field), value(spec.party_kind_field),
                           rules)
    share = fields.get(spec.share_field) if spec.share_field else None
    return Relation(spec.relation_of_role[role], role, party, float(share) if isinstance(share, (int, float)) else None)


@dataclass(slots=True)
class Replacement:
    kept: dict[int, Relation]  # open relation id -> the new mention that repeats it
    ended: list[int]  # open relation ids that the new set leaves out
    opened: list[Relation]  # new relations, each once


def replace_set(open_relations: Mapping[int, Relation], new: Iterable[Relation]) -> Replacement:
    """What a firm's new set does to its open relations (see the module's docstring)."""
    unmatched: dict[tuple[object, ...], list[int]] = {}
    for relation_id in sorted(open_relations):
        unmatched.setdefault(open_relations[relation_id].identity, []).append(relation_id)
    kept: dict[int, Relation] = {}
    opened: list[Relation] = []
    seen: set[tuple[object, ...]] = set()
    for relation in new:
        identity = relation.identity
        if identity in seen:
            continue  # the same relation twice in one set is one relation
        seen.add(identity)
        waiting = unmatched.get(identity)
        if waiting:
            kept[waiting.pop(0)] = relation
        else:
            opened.append(relation)
    ended = sorted(i for ids in unmatched.values() for i in ids)
    return Replacement(kept, ended, opened)
