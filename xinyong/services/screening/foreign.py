"""Screening against foreign lists: the designations in force, by identifier and by name.

Loaded with the screening index and again when a list is imported (a `changes` row of kind
`foreign`, see migration 0022): the designations are few beside the register (tens of thousands
at most), so they are held as objects. Names and aliases go into an `EntityIndex` of their own,
keyed by designation id, so a screened name is compared with the resolution stage's own blocking
and `Matcher` (the screening name path's matcher, the store's learned model); a designation
matches at or above the pack's `review` threshold, or as an exact name. By identifier, only an
exact match of a verified identifier (a USCC in an FtM `registrationNumber`...) counts.

What a match implies is the pack's (`foreign_lists`, per action and per way of matching):
`effects` gives it; `domain.decisions.with_foreign` folds it into the domestic decision.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.engine import Connection

from xinyong.domain.identifiers import normalise_code
from xinyong.domain.matching import Matcher, NameAnalyser, Subject
from xinyong.domain.pack import Pack
from xinyong.services.resolution.resolve import EntityIndex
from xinyong.store import tables as t

CHANGE_KIND = "foreign"
MAX_DESIGNATIONS = 5  # name matches given per answer, best first


@dataclass(frozen=True, slots=True)
class ForeignEntry:
    list_code: str
    list_version: str
    name: str
    source_id: str
    reference: str | None


class ForeignIndex:
    """The designations in force on every foreign list, by verified identifier and by name."""

    def __init__(self, entries: dict[int, ForeignEntry], by_code: dict[str, list[int]], names: EntityIndex | None):
        self.entries, self.by_code, self.names = entries, by_code, names

    @classmethod
    def empty(cls) -> ForeignIndex:
        return cls({}, {}, None)

    @classmethod
    def load(cls, c: Connection, analyser: NameAnalyser | None, matcher: Matcher | None) -> ForeignIndex:
        D, F = t.foreign_designations.c, t.foreign_lists.c
        entries: dict[int, ForeignEntry] = {}
        by_code: dict[str, list[int]] = defaultdict(list)
        names = EntityIndex(analyser, matcher) if analyser is not None else None
        for row in c.execute(select(D.id, F.code, D.list_version, D.name, D.aliases, D.identifiers, D.source_id,
                                    D.details).join(t.foreign_lists, F.id == D.list_id)
                             .where(D.ended_on.is_(None)).order_by(D.id)):
            reference = (row.details or {}).get("reference_number") if isinstance(row.details, dict) else None
            entries[row.id] = ForeignEntry(row.code, row.list_version, row.name, row.source_id, reference)
            for _scheme, value in row.identifiers or ():
                by_code[value].append(row.id)
            if names is not None:
                # compared as names alone: a screened name says nothing of the kind of subject
                names.add(row.id, row.source_id, "foreign", False, [row.name, *(row.aliases or ())], (), None)
        return cls(entries, dict(by_code), names)

    def __len__(self) -> int:
        return len(self.entries)

    def by_identifier(self, identifier: str) -> list[dict[str, Any]]:
        """Designations carrying exactly this (verified) identifier."""
        code = normalise_code(identifier)
        return [self._item(d, 1.0, {"identifier": code}) for d in self.by_code.get(code, ())]

    def by_name(self, name: str, review: float) -> list[dict[str, Any]]:
        """Designations whose name or an alias scores at or above `review` (or is the same name), best first."""
        if self.names is None or not self.entries:
            return []
        parts = self.names.analyser.parts(name)
        if not parts.core:
            return []
        exact = self.names.exact(parts)
        found = []
        for scored in self.names.rank(Subject(parts, None, None, False)):
            if scored.score >= review or scored.entity_id in exact:
                found.append(self._item(scored.entity_id, scored.score, dict(scored.components)))
            if len(found) == MAX_DESIGNATIONS:
                break
        return found

    def _item(self, designation_id: int, score: float, explanation: dict[str, Any]) -> dict[str, Any]:
        entry = self.entries[designation_id]
        if entry.reference:
            explanation["reference_number"] = entry.reference
        return {"list": entry.list_code, "list_version": entry.list_version, "name": entry.name,
                "score": round(score, 4), "explanation": explanation, "source_id": entry.source_id}


def effects(pack: Pack, action: str, by_identifier: list[dict[str, Any]], by_name: list[dict[str, Any]]) -> list[str]:
    """What the designations found imply for `action` (the pack's `foreign_lists`)."""
    spec = pack.foreign_lists
    return ([spec.effect(action, "identifier")] if by_identifier else []) + \
        ([spec.effect(action, "name")] if by_name else [])


def merged(*groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Designations found in several ways, each once (the first way found: identifiers come first)."""
    seen, out = set(), []
    for group in groups:
        for item in group:
            key = (item["list"], item["source_id"])
            if key not in seen:
                seen.add(key)
                out.append(item)
    return out


def imported_between(c: Connection, after: int, upto: int) -> bool:
    """Whether a foreign list was imported in the changes (after, upto]."""
    C = t.changes.c
    return bool(c.execute(select(exists().where(C.kind == CHANGE_KIND, C.seq > after, C.seq <= upto))).scalar())
