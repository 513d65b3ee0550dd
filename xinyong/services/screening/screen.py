"""Screening: may this entity do this, on this date, and why not?

Screening reads an index of the store, so that the hot path makes no database round trip:
every identifier and entity key and (for name screening) the resolution stage's name index,
from a file of arrays mapped at start (services/screening/screen_index.py); each entity's listings with
their dated history and evidence and the relations through which a measure reaches a person,
as objects. `refresh` follows the store's commit-ordered `changes` sequence: entities changed
since the last look are read again, listings and relations reloaded. The decision itself is
`domain.decisions.decide`.

Screening never says "allow" for what it does not know. By identifier: an entity key or a
verified identifier answers for its entity; a well-formed code whose check fails is an
`InvalidIdentifier`; a valid ID number reached through a relation is decided through it;
anything else is `not_found`, with no subject. By name: a candidate at or above `auto_link`,
alone at the top (or the only exact match of a registered name), is the subject; a best
candidate at or above `review` that is not chosen answers `refer`, with the candidates;
`allow` only when no candidate is near.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from xinyong.domain.calendar import pack_today
from xinyong.domain.decisions import (
    Bearing,
    Decision,
    Evidence,
    ListingView,
    decide,
    measures_for,
    strongest,
    with_foreign,
)
from xinyong.domain.identifiers import (
    USCC_ALPHABET,
    could_start_a_resident_id,
    first_generation_to_18,
    is_valid_resident_id,
    is_valid_uscc,
    mask_person_id,
    mask_record_key,
    normalise_code,
    split_person_id,
)
from xinyong.domain.matching import NameAnalyser, Subject
from xinyong.domain.names import normalise_name, same_person_name
from xinyong.domain.pack import MeasureSpec, Pack
from xinyong.domain.values import delimiter_of, normalise_header, text_encoding
from xinyong.services.resolution.resolve import PERSON_SCHEMES, EntityIndex, code_holder_fit
from xinyong.services.screening.foreign import ForeignIndex, effects, imported_between, merged
from xinyong.services.screening.screen_index import IndexFile, change_seq, changed_since, load_names, open_index, rules_hash
from xinyong.store import tables as t

REACHING_RELATIONS = ("legal_representative", "actual_controller", "principal")
MAX_CANDIDATES = 5


_QUERY_IDS = threading.local()  # per thread: ids not yet handed out
os.register_at_fork(after_in_child=lambda: _QUERY_IDS.__dict__.clear())  # a child never repeats its parent's


def _query_id() -> str:
    """32 hex digits, in time order as a UUIDv7: the milliseconds since the epoch (12), then 80
    random bits of the OS's generator (20). The query log's unique index takes time-ordered ids at
    its end; random ones landed each on a random page, and the log's writer, sharing the server's
    cores, slowed as the log grew (~375,000 answers in one benchmark run). The random parts are cut
    from one read per 256 answers: a system call per answer cost more than the identifier's lookup."""
    ids = getattr(_QUERY_IDS, "ids", None)
    if not ids:
        text = os.urandom(10 * 256).hex()
        ids = _QUERY_IDS.ids = [text[start:start + 20] for start in range(0, len(text), 20)]
    return f"{time.time_ns() // 1_000_000:012x}{ids.pop()}"


class ScreenError(ValueError):
    """A screening question that cannot be answered as asked (unknown action, bad date...)."""


class InvalidIdentifier(ScreenError):
    """A well-formed code whose check character fails: a typo, never an unknown subject."""


_USCC_BODY = re.compile(r"[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{9}")


def lacks_a_check_character(code: str) -> bool:
    """A normalised code that is a USCC's first 17 characters with no valid 18th: none, one no USCC
    holds, or a valid code followed by one more. The value is never echoed (17 digits may be most
    of a person's ID number)."""
    return bool(_USCC_BODY.fullmatch(code[:17])) and (
        len(code) == 17 or (len(code) == 18 and code[17] not in USCC_ALPHABET)
        or (len(code) == 19 and is_valid_uscc(code[:18])))




@dataclass(frozen=True, slots=True)
class EntityInfo:
    key: str
    name: str | None
    kind: str


@dataclass(frozen=True, slots=True)
class Reach:
    entity_id: int
    relation: str
    valid_from: dt.date | None
    valid_to: dt.date | None
    person_name: str | None  # the person the relation names under that ID number

    def holds_on(self, day: dt.date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day < self.valid_to)


@dataclass(slots=True)
class Answer:
    """One screening answer, ready to be logged and turned into JSON."""

    query_id: str
    decision: Decision
    subject_id: int | None
    candidates: list[dict[str, Any]] | None = None
    match: str | None = None  # name screening: name | ambiguous | below_threshold | none; batch: code_and_name_disagree
    foreign: list[dict[str, Any]] | None = None  # designations on foreign lists (services.screening.foreign)


class _Info(Mapping):
    """entity id -> EntityInfo: entities read since the index file was written, else the file's row."""

    def __init__(self, index: IndexFile | None):
        self.file = index
        self.overlay: dict[int, EntityInfo] = {}

    def get(self, entity_id: int, default: Any = None) -> Any:
        found = self.overlay.get(entity_id)
        if found is not None or self.file is None:
            return found if found is not None else default
        row = self.file.row(entity_id)
        if row < 0:
            return default
        f = self.file
        return EntityInfo(f.key[row], f.name[row] or None, f.kinds[int(f.kind[row])])

    def __getitem__(self, entity_id: int) -> EntityInfo:
        found = self.get(entity_id)
        if found is None:
            raise KeyError(entity_id)
        return found

    def __setitem__(self, entity_id: int, info: EntityInfo) -> None:
        self.overlay[entity_id] = info

    def keys_and_names(self, entity_ids: np.ndarray) -> tuple[list[str | None], list[str | None]]:
        """The key and current name of each entity (int64 array), None for an unknown one, without
        building an EntityInfo: the batch's fast path (the file's rows looked up as arrays)."""
        if self.file is None:
            keys: list[str | None] = [None] * len(entity_ids)
            names: list[str | None] = [None] * len(entity_ids)
        else:
            keys, names = self.file.keys_and_names(entity_ids)
        if self.overlay:
            for k, entity_id in enumerate(entity_ids.tolist()):
                if (found := self.overlay.get(entity_id)) is not None:
                    keys[k], names[k] = found.key, found.name
        return keys, names

    def __contains__(self, entity_id: object) -> bool:
        return self.get(entity_id) is not None  # type: ignore[arg-type]

    def __len__(self) -> int:
        return (len(self.file) if self.file is not None else 0) + len(self.overlay)

    def __iter__(self) -> Iterator[int]:
        yield from self.overlay
        if self.file is not None:
            yield from (int(e) for e in self.file.ids)


class _Codes(Mapping):
    """code or entity key -> entity id: codes read since the index file was written, else the file's table."""

    def __init__(self, index: IndexFile | None):
        self.file = index
        self.overlay: dict[str, int] = {}
        self._first = index.codes.first if index is not None else None

    def get(self, code: str, default: Any = None) -> Any:
        found = self.overlay.get(code)
        if found is not None:
            return found
        if self._first is not None and type(code) is str:
            return self._first(code, default)
        return default

    def __getitem__(self, code: str) -> int:
        found = self.get(code)
        if found is None:
            raise KeyError(code)
        return found

    def get_many(self, codes: list[str]) -> np.ndarray:
        """`get` of many codes (strings) at once, as an int64 array (-1: absent): the overlay first,
        then the file's table, probed as arrays."""
        overlay = self.overlay
        if self.file is None:
            return np.fromiter((overlay.get(code, -1) for code in codes), dtype=np.int64, count=len(codes))
        found = self.file.codes.first_many(list(map(str.encode, codes)))  # UTF-8
        if overlay:
            for position, code in enumerate(codes):
                if (entity_id := overlay.get(code)) is not None:
                    found[position] = entity_id
        return found

    def __setitem__(self, code: str, entity_id: int) -> None:
        self.overlay[code] = entity_id

    def __contains__(self, code: object) -> bool:
        return self.get(code) is not None  # type: ignore[arg-type]

    def __len__(self) -> int:
        return (len(self.file.codes.keys) if self.file is not None else 0) + len(self.overlay)

    def __iter__(self) -> Iterator[str]:
        yield from self.overlay
        if self.file is not None:
            keys = self.file.codes.keys
            yield from (keys[k] for k in range(len(keys)))


class ScreeningIndex:
    """The store as screening needs it. Entities, codes and names are read from the index file
    (services/screening/screen_index.py, mapped at start); listings, their evidence and the relations
    that reach persons are held as objects: a decision needs them and they are few."""

    def __init__(self, pack: Pack):
        self.pack = pack
        self.codes = pack.code_reader()
        self.file: IndexFile | None = None
        self.by_code = _Codes(None)
        self.info = _Info(None)
        self.person_ids: dict[int, str] = {}  # natural-person entity -> its resident ID number
        self.listings_of: dict[int, list[ListingView]] = {}
        self.reaches: dict[str, list[Reach]] = {}  # person ID number -> entities the person represents
        # a person's name as `normalise_name` folds it -> the listed natural persons of that name, and
        # (ID number, entity) of each relation reaching a person of that name: name screening never
        # compares a name with persons, so these are what a bare name may be
        self.listed_persons: dict[str, list[int]] = {}
        self.reached_names: dict[str, list[tuple[str, int]]] = {}
        self.names: EntityIndex | None = None
        self.foreign = ForeignIndex.empty()
        self.seq = -1  # the store's `changes` sequence read up to
        self.audit_seq = -1
        self.loaded_at: dt.datetime | None = None
        self.built = False  # the index file was (re)built by this load
        self._measures: dict[str, tuple[MeasureSpec, ...]] = {}
        self.suspending_lists = frozenset(spec.code for spec in pack.lists if spec.objection_suspends)
        self.branch_endings = tuple(pack.resolution.name_rules.branch_markers)  # a registered name ends with one
        self._lock = threading.Lock()

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def load(cls, engine: Engine, pack: Pack, *, names: bool = True) -> ScreeningIndex:
        """Map the store's index file (built first when there is none that fits), then read
        what changed since it was written, the listings and the relations."""
        index = cls(pack)
        analyser = NameAnalyser(pack.resolution.name_rules) if names else None
        with engine.connect() as c:
            index.audit_seq = _audit_seq(c)
            seq = change_seq(c)  # before reading anything: what commits later is caught up below
            index.loaded_at = dt.datetime.now(dt.timezone.utc)
            file, index.built = open_index(engine, c, analyser, rules_hash(pack.resolution.name_rules), seq)
            index.file = file
            index.by_code, index.info = _Codes(file), _Info(file)
            index.person_ids = file.persons()
            if analyser is not None:
                index.names = load_names(file, c, analyser)
            index.seq, changed = changed_since(c, file.seq)
            if changed:
                index._load_entities(c, sorted(changed))
                if index.names is not None:
                    index._add_names(c, sorted(changed))
            index._load_listings(c)
            index._load_reaches(c)
            index._load_foreign(c)
        return index

    def refresh(self, engine: Engine) -> bool:
        """Catch up with the store if anything was recorded since the last look.

        The store's `changes` sequence is commit-ordered (migration 0015): every entity changed
        after the last sequence read is read again, whenever its transaction began. The audit
        sequence moving (keys, settings) reloads listings and relations too."""
        with self._lock, engine.connect() as c:
            audit = _audit_seq(c)
            newest, changed = changed_since(c, self.seq)
            if newest == self.seq and audit == self.audit_seq:
                return False
            if changed:
                self._load_entities(c, sorted(changed))
                if self.names is not None:
                    self._add_names(c, sorted(changed))
            self._load_listings(c)
            self._load_reaches(c)
            if imported_between(c, self.seq, newest):
                self._load_foreign(c)
            self.seq, self.audit_seq = newest, audit
            self.loaded_at = dt.datetime.now(dt.timezone.utc)
        return True

    def _load_entities(self, c: Connection, entity_ids: list[int]) -> None:
        """Entities added or changed since the index file was written, into the overlays."""
        e, n, i = t.entities.c, t.entity_names.c, t.entity_identifiers.c
        for chunk in _chunks(entity_ids, 5000):
            found = []
            for entity_id, key, kind, name in c.execute(
                    select(e.id, e.key, e.kind, n.name).outerjoin(t.entity_names, (n.entity_id == e.id) & n.current)
                    .where(e.id.in_(chunk))):
                self.info[entity_id] = EntityInfo(key, name, kind)
                self.by_code[key] = entity_id
                found.append(entity_id)
            for entity_id, scheme, value, verified in c.execute(
                    select(i.entity_id, i.scheme, i.value, i.verified).where(i.entity_id.in_(found))):
                if verified:  # an unverified identifier never answers for an entity
                    self.by_code[value] = entity_id
                if scheme in PERSON_SCHEMES and self.info[entity_id].kind == "natural_person":
                    self.person_ids[entity_id] = value

    def _load_listings(self, c: Connection) -> None:
        # every result fetched whole (`.all()`): iterating a Result fetches row by row through
        # SQLAlchemy, which was most of a restart's load at 1M entities (40,000 rows, 10,000 listings)
        L, T, E, r = t.listings.c, t.listing_transitions.c, t.listing_evidence.c, t.records.c
        history: dict[int, list[tuple[dt.date, str]]] = defaultdict(list)
        for listing_id, on_date, to_state in c.execute(
                select(T.listing_id, T.on_date, T.to_state).order_by(T.listing_id, T.on_date, T.id)).all():
            history[listing_id].append((on_date, to_state))
        evidence: dict[int, list[Evidence]] = defaultdict(list)
        for listing_id, key, version, category, authority, decided in c.execute(
                select(E.listing_id, r.record_key, r.version, r.category, r.authority, r.decision_date)
                .join(t.records, r.id == E.record_id).order_by(E.listing_id, r.record_key)).all():
            evidence[listing_id].append(Evidence(mask_record_key(key), version, category, authority, decided))
        O = t.objections.c
        objections: dict[int, set[tuple[int, dt.date, dt.date | None]]] = defaultdict(set)
        for listing_id, oid, filed, decided in c.execute(
                select(O.listing_id, O.id, O.filed_on, O.decided_on).where(O.listing_id.is_not(None))).all():
            objections[listing_id].add((oid, filed, decided))
        for listing_id, oid, filed, decided in c.execute(
                select(E.listing_id, O.id, O.filed_on, O.decided_on).join(t.records, r.id == E.record_id)
                .join(t.objections, O.record_key == r.record_key)).all():
            objections[listing_id].add((oid, filed, decided))
        listings_of: dict[int, list[ListingView]] = defaultdict(list)
        rows = c.execute(select(L.id, L.entity_id, L.list_code, L.effective_from, L.effective_to, L.ended_on,
                                L.end_reason).order_by(L.id)).all()
        keys, _ = self.info.keys_and_names(np.fromiter((row.entity_id for row in rows), dtype=np.int64,
                                                       count=len(rows)))  # read together from the file
        for row, key in zip(rows, keys):
            listings_of[row.entity_id].append(ListingView(
                row.id, key or "", row.list_code, tuple(history.get(row.id, ())),
                row.effective_from, row.effective_to, row.ended_on, tuple(evidence.get(row.id, ())),
                tuple(sorted(objections.get(row.id, ()))), row.end_reason))
        self.listings_of = dict(listings_of)  # swapped whole: readers never see it half-built
        listed_persons: dict[str, list[int]] = defaultdict(list)
        for entity_id in self.listings_of:
            info = self.info.get(entity_id)
            if info is not None and info.kind == "natural_person" and info.name:
                listed_persons[normalise_name(info.name)].append(entity_id)
        self.listed_persons = dict(listed_persons)

    def _load_reaches(self, c: Connection) -> None:
        rel = t.entity_relations.c
        reaches: dict[str, list[Reach]] = defaultdict(list)
        reached_names: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for entity_id, relation, person_id, person_name, valid_from, valid_to in c.execute(
                select(rel.entity_id, rel.relation, rel.person_id, rel.person_name, rel.valid_from, rel.valid_to)
                .where(rel.person_id.is_not(None), rel.relation.in_(REACHING_RELATIONS))).all():
            reaches[normalise_code(person_id)].append(Reach(entity_id, relation, valid_from, valid_to, person_name))
            if person_name and entity_id in self.listings_of:  # only a listed entity's relation can reach
                reached_names[normalise_name(person_name)].append((normalise_code(person_id), entity_id))
        self.reaches, self.reached_names = dict(reaches), dict(reached_names)

    def _load_foreign(self, c: Connection) -> None:
        names = self.names
        self.foreign = ForeignIndex.load(c, names.analyser if names else None, names.matcher if names else None)

    def _add_names(self, c: Connection, entity_ids: list[int]) -> None:
        assert self.names is not None
        n, i, rel = t.entity_names.c, t.entity_identifiers.c, t.entity_relations.c
        for chunk in _chunks(entity_ids, 5000):
            names: dict[int, list[str]] = defaultdict(list)
            for entity_id, name, current in c.execute(select(n.entity_id, n.name, n.current)
                                                      .where(n.entity_id.in_(chunk))):
                names[entity_id].insert(0, name) if current else names[entity_id].append(name)
            identifiers: dict[int, list[tuple[str, str, bool]]] = defaultdict(list)
            for entity_id, scheme, value, verified in c.execute(select(i.entity_id, i.scheme, i.value, i.verified)
                                                                .where(i.entity_id.in_(chunk))):
                identifiers[entity_id].append((scheme, value, bool(verified)))
            reps = dict(c.execute(select(rel.entity_id, rel.person_name).where(
                rel.entity_id.in_(chunk), rel.relation == "legal_representative", rel.valid_to.is_(None))).all())
            for entity_id in chunk:
                info = self.info.get(entity_id)
                if info is None:  # a change whose entity is gone
                    continue
                self.names.add(entity_id, info.key, "", info.kind == "natural_person", names.get(entity_id, ()),
                               identifiers.get(entity_id, ()), reps.get(entity_id))

    # -- answering ----------------------------------------------------------------------------

    def measures(self, action: str) -> tuple[MeasureSpec, ...]:
        found = self._measures.get(action)
        if found is None:
            try:
                found = self._measures[action] = measures_for(self.pack, action)
            except ValueError as exc:
                raise ScreenError(str(exc)) from None
        return found

    def lookup(self, identifier: str) -> int | None:
        found = self.by_code.get(identifier)
        return found if found is not None else self.by_code.get(normalise_code(identifier))

    def bearings(self, entity_id: int | None, person_id: str | None, as_of: dt.date) -> list[Bearing]:
        found = [Bearing(listing) for listing in self.listings_of.get(entity_id, ())] if entity_id else []
        if entity_id is not None and person_id is None:
            person_id = self.person_ids.get(entity_id)
        if person_id:
            info = self.info.get(entity_id) if entity_id is not None else None
            name = info.name if info is not None and info.kind == "natural_person" else None
            for reach in self.reaches.get(person_id, ()):
                if reach.entity_id != entity_id and reach.holds_on(as_of):
                    # the register naming another person under this number: which of the two it is, a
                    # human decides (resolution sends such a record to review)
                    confirmed = not (name and reach.person_name) or same_person_name(name, reach.person_name)
                    found.extend(Bearing(listing, reach.relation, confirmed)
                                 for listing in self.listings_of.get(reach.entity_id, ()))
        return found

    def screen_identifier(self, identifier: str, action: str, as_of: dt.date) -> Answer:
        """The register's answer, then foreign designations carrying exactly this identifier."""
        answer = self._with_head_office(self._screen_identifier_here(identifier, action, as_of), action, as_of)
        return self._with_foreign(answer, action, self.foreign.by_identifier(identifier), [])

    def is_branch_name(self, name: str | None) -> bool:
        return bool(name) and name.rstrip().endswith(self.branch_endings)  # type: ignore[union-attr]

    def _with_head_office(self, answer: Answer, action: str, as_of: dt.date) -> Answer:
        """A registered branch (分公司) has its own code but no legal personality: its head office answers
        for it, and a measure on the head office is one on the firm the branch acts for. The branch was
        allowed on its own clean file while its head office, registered under the branch's name less the
        branch, was denied. Now such a branch is at least `refer`, its head office a candidate to check;
        its own measures stay its own (no measure is widened to it by a name)."""
        subject, index = answer.subject_id, self.names
        info = self.info.get(subject) if subject is not None else None
        if info is None or index is None or info.kind == "natural_person" or not self.is_branch_name(info.name):
            return answer
        parts = index.analyser.parts(info.name)
        if parts.branch is None:
            return answer
        head = replace(parts, branch=None)
        measures = self.measures(action)
        checked, shown = [], {c["entity"] for c in answer.candidates or ()}
        for e in sorted(index.exact(head, {subject})):
            if decide(measures, action, as_of, self.bearings(e, None, as_of), self.suspending_lists).decision != "allow":
                s = index.matcher.score(Subject(head, None, None, False), index.profiles[e])
                checked.append(self.candidate(e, s.score, {**s.components, "head_office_of_branch": parts.branch}))
        if checked:
            answer.decision.decision = strongest((answer.decision.decision, "refer"))
            answer.candidates = [*(answer.candidates or ()), *(c for c in checked if c["entity"] not in shown)]
        return answer

    def _with_foreign(self, answer: Answer, action: str, by_identifier: list[dict[str, Any]],
                      by_name: list[dict[str, Any]]) -> Answer:
        answer.foreign = merged(answer.foreign or [], by_identifier, by_name)
        if by_identifier or by_name:
            answer.decision.decision = with_foreign(answer.decision.decision,
                                                    effects(self.pack, action, by_identifier, by_name))
        return answer

    def _screen_identifier_here(self, identifier: str, action: str, as_of: dt.date) -> Answer:
        measures = self.measures(action)
        entity_id = self.lookup(identifier)
        if entity_id is not None:
            return Answer(_query_id(), decide(measures, action, as_of, self.bearings(entity_id, None, as_of),
                                              self.suspending_lists), entity_id)
        code = normalise_code(identifier)
        today = pack_today(self.pack)
        person_id = code if is_valid_resident_id(code, today) else None
        if person_id is None and len(code) == 15:
            person_id = first_generation_to_18(code)
            if person_id is not None and person_id in self.by_code:
                entity_id = self.by_code[person_id]
                return Answer(_query_id(), decide(measures, action, as_of, self.bearings(entity_id, None, as_of),
                                                  self.suspending_lists),
                              entity_id)
        if person_id is not None and person_id in self.reaches:
            return Answer(_query_id(), decide(measures, action, as_of, self.bearings(None, person_id, as_of),
                                              self.suspending_lists), None)
        classified = self.codes.classify(identifier, today=today)
        # a code of one of the pack's schemes failing its check (an unrecognised one is merely not found)
        if classified is not None and classified.scheme != "unknown" and not classified.verified:
            raise InvalidIdentifier(classified.warning or "the identifier fails its check")
        if classified is not None and classified.value != code and classified.value in self.by_code:
            # a USCC typed with an O for a 0 (a letter no USCC holds): the code it can only be
            return self._screen_identifier_here(classified.value, action, as_of)
        if lacks_a_check_character(code):
            # not_found reads as "nothing against this firm": a listed firm's code cut short would pass
            raise InvalidIdentifier(f"a USCC has 18 characters, the last a check character of "
                                    f"{USCC_ALPHABET}: {len(code)} given, no valid check character")
        return Answer(_query_id(), Decision("not_found", action, as_of), None)

    def screen_name(self, name: str, action: str, as_of: dt.date) -> Answer:
        """The register's answer, then foreign designations: by the chosen subject's codes, by the name."""
        answer = self._with_head_office(self._screen_name_here(name, action, as_of), action, as_of)
        split = split_person_id(name)
        profile = self.names.profiles.get(answer.subject_id) if answer.subject_id is not None and self.names else None
        by_code = merged(*(self.foreign.by_identifier(code) for code in profile.codes)) if profile else []
        return self._with_foreign(answer, action, by_code,
                                  self.foreign.by_name(split[0] if split else name, self.pack.resolution.review))

    def _screen_name_here(self, name: str, action: str, as_of: dt.date) -> Answer:
        """Decide only for a chosen candidate; refer when a near one is not chosen; allow when none is near.

        Chosen: the only exact match of a registered name (current, former or English, in a
        compatible place), else a candidate at or above `auto_link` with no other within
        `ambiguity_margin`. An exact name beats a homophone or near match to another firm.
        """
        split = split_person_id(name)
        if split is not None:  # "李四 1101…": the person's ID number decides, as it would at ingestion
            answer = self.screen_identifier(split[1], action, as_of)
            found = answer.subject_id
            answer.candidates = [] if found is None else [
                self.candidate(found, 1.0, {"id_number": 1.0, "name_given": split[0]})]
            answer.match = "none" if found is None else "name"  # chosen for this query (by its ID number)
            return answer
        measures = self.measures(action)
        if self.names is None:
            raise ScreenError("name screening is not available: the name index is not loaded")
        spec = self.pack.resolution
        index = self.names
        if index.analyser.names_no_one(name):  # 有限公司 was `allow`: as if a firm had been looked for and cleared
            raise ScreenError(f"{name!r} names no one (only a legal form, a branch or a place): give the firm's "
                              "name or its code")
        parts = index.analyser.parts(name)
        subject = Subject(parts, None, None, False)
        # the store's learned model, and resolution's ranking: score, then exact full name, then evidence
        exact = index.exact(parts)
        ranked = [(s.entity_id, (s.score, s.components)) for s in index.rank(subject)
                  if s.score >= spec.review or s.entity_id in exact]
        chosen, match = None, "none"
        if len(exact) == 1:
            chosen, match = next(iter(exact)), "name"
        elif ranked:
            top = ranked[0][1][0]
            tied = len(ranked) > 1 and ranked[1][1][0] >= top - spec.ambiguity_margin
            if top >= spec.auto_link and not tied:
                chosen, match = ranked[0][0], "name"
            else:
                match = "ambiguous" if top >= spec.auto_link else "below_threshold"
        if chosen is not None:  # the subject comes first
            ranked.sort(key=lambda item: item[0] != chosen)
        elif parts.branch is not None:
            # a branch is an entity of its own, never its head office; but a registered head office
            # of that name is a possible match that a person must check (refer), never allow
            head = replace(parts, branch=None)
            seen = {e for e, _ in ranked}
            for e in sorted(index.exact(head) - seen):
                s = index.matcher.score(Subject(head, None, None, False), index.profiles[e])
                ranked.append((e, (s.score, {**s.components, "head_office_of_branch": parts.branch})))
        candidates = [self.candidate(e, s, components) for e, (s, components) in ranked[:MAX_CANDIDATES]]
        # a listed person of this very name is checked whether or not a firm is chosen: an individual
        # business is registered under its operator's name (王建国), and the court's listed 王建国 was
        # allowed as that business
        persons = self._persons_named(name, measures, action, as_of)
        if chosen is not None:
            decision = decide(measures, action, as_of, self.bearings(chosen, None, as_of), self.suspending_lists)
            if persons:
                decision.decision = strongest((decision.decision, "refer"))
        else:  # every scored candidate is at or above `review`: any at all is a possible match
            decision = Decision("refer" if candidates or persons else "allow", action, as_of)
        return Answer(_query_id(), decision, chosen, candidates + persons, match)

    def _persons_named(self, name: str, measures: tuple[MeasureSpec, ...], action: str,
                       as_of: dt.date) -> list[dict[str, Any]]:
        """The persons of exactly this name whom a measure of the action binds: their own listing, or a
        relation to a listed firm the measure reaches. A bare name never decides for a person (the same
        name is many people's; the ID number does), but the court's listed 王建国 asked about as 王建国
        was allowed: name screening compares names with organisations only. Now each is a candidate
        to check (refer), a person by its key, one reached through a relation by the firm and relation."""
        folded = normalise_name(name)
        found: list[dict[str, Any]] = []
        for entity_id in self.listed_persons.get(folded, ()):
            if decide(measures, action, as_of, self.bearings(entity_id, None, as_of), self.suspending_lists).measures:
                found.append(self.candidate(entity_id, 1.0, {"person_name": "exact", "decide_by": "id_number"}))
        for person_id, entity_id in self.reached_names.get(folded, ()):
            applied = decide(measures, action, as_of, self.bearings(None, person_id, as_of), self.suspending_lists)
            relations = sorted({m.relation for m in applied.measures if m.listing.entity_key == self.info[entity_id].key
                                and m.relation})
            if relations and self.by_code.get(person_id) not in self.listed_persons.get(folded, ()):
                found.append(self.candidate(entity_id, 1.0, {"person_name": "exact", "decide_by": "id_number",
                                                             "through": relations}))
        return found

    def measure_binds(self, entity_key: str, measure_code: str, day: dt.date) -> bool:
        """Whether the measure binds the entity on the day, for any of its decision points (through a
        relation the measure reaches as well): what a report of it applied needs."""
        entity_id = self.by_code.get(entity_key)
        measure = next((m for m in self.pack.measures if m.code == measure_code), None)
        if entity_id is None or measure is None:
            return False
        bearings = self.bearings(entity_id, None, day)
        return any(decide((measure,), action, day, bearings, self.suspending_lists).measures
                   for action in measure.actions)

    def name_disagrees(self, entity_id: int, name: str) -> bool:
        """A name given beside a code that is not the code's firm's, as resolution judges a record's
        (`resolve.code_holder_fit`): far from every name of it, the same name in another place or a
        registered branch's (北京宏达贸易 beside 上海宏达贸易's code, a listed branch beside its head
        office's), or exactly another registered firm's name and not one of its own."""
        index = self.names
        profile = index.profiles.get(entity_id) if index is not None else None
        if profile is None or profile.person or not profile.names or split_person_id(name) is not None:
            return False
        return code_holder_fit(index, index.analyser.parts(name), entity_id, set(), self.pack.resolution.review) is None

    def candidate(self, entity_id: int, score_: float, explanation: dict[str, Any]) -> dict[str, Any]:
        info = self.info[entity_id]
        return {"entity": info.key, "name": info.name, "kind": info.kind, "score": score_,
                "explanation": explanation}

    # -- answers as data ----------------------------------------------------------------------

    def subject(self, entity_id: int | None) -> dict[str, Any] | None:
        if entity_id is None:
            return None
        info = self.info[entity_id]
        out = {"key": info.key, "name": info.name, "kind": info.kind}
        if entity_id in self.person_ids:
            out["id_number"] = mask_person_id(self.person_ids[entity_id])
        return out

    def answer_data(self, answer: Answer) -> dict[str, Any]:
        decision = answer.decision
        measures = []
        for applied in decision.measures:
            listing, measure = applied.listing, applied.measure
            through = None
            if applied.relation is not None:
                entity_id = self.by_code.get(listing.entity_key)
                info = self.info.get(entity_id) if entity_id is not None else None
                through = {"entity": listing.entity_key, "name": info.name if info else None,
                           "relation": applied.relation, **({} if applied.confirmed else {"unconfirmed": True})}
            list_spec = self.pack.list_(listing.list_code)
            measures.append({
                "code": measure.code, "title": measure.names.model_dump(), "effect": measure.effect,
                "legal_basis": measure.legal_basis, "authority": measure.authority,
                "listing": {"id": listing.id, "list": listing.list_code, "list_title": list_spec.names.model_dump(),
                            "list_legal_basis": list_spec.legal_basis, "entity": listing.entity_key,
                            "state": listing.state_on(decision.as_of), "effective_from": listing.effective_from,
                            "effective_to": listing.effective_to},
                "records": [{"record_key": ev.record_key, "version": ev.version, "category": ev.category,
                             "authority": ev.authority, "decision_date": ev.decision_date}
                            for ev in listing.evidence],
                "ends": applied.ends, "through": through,
                **({"suspended": applied.suspended} if applied.suspended is not None else {})})
        data: dict[str, Any] = {"query_id": answer.query_id, "decision": decision.decision, "action": decision.action,
                                "as_of": decision.as_of, "subject": self.subject(answer.subject_id),
                                "measures": measures, "pack": f"{self.pack.code} {self.pack.version}"}
        if answer.candidates is not None:
            data["candidates"] = answer.candidates
            data["match"] = answer.match
        data["foreign_designations"] = answer.foreign or []
        return data


def _audit_seq(c: Connection) -> int:
    return c.execute(select(func.coalesce(func.max(t.audit_events.c.seq), 0))).scalar_one()


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# -- batch screening ------------------------------------------------------------------------------

BATCH_COLUMNS = ("line", "identifier", "name", "action", "as_of", "decision", "subject", "subject_name",
                 "measures", "ends", "match", "error", "best_candidate", "best_score",
                 "foreign_designations", "foreign_best_score")
# JSON Lines results carry every candidate of a name screening as well; a CSV cell cannot.
JSONL_ONLY = ("candidates",)
# A subject's code and name under every header the cn pack's files give them (its subject fields'
# synonyms), best first: a column left unrecognised was ignored without a word, so a file heading its
# codes 社会信用代码 beside a 企业名称 column was screened by name alone (a listed firm written by a
# trading name of its own was allowed, its code never looked at). A row's first non-empty one counts.
IDENTIFIER_HEADERS = ("identifier", "code", "uscc", "统一社会信用代码", "社会信用代码", "信用代码", "证件号码",
                      "身份证号码", "身份证号", "身份证号码/组织机构代码", "组织机构代码", "工商注册号", "注册号",
                      "纳税人识别号", "税务登记号")
NAME_HEADERS = ("name", "名称", "企业名称", "主体名称", "单位名称", "市场主体名称", "公司名称", "当事人名称",
                "行政相对人名称", "纳税人名称", "被执行人姓名/名称", "姓名")


def _first_given(values: Mapping[str, Any], headers: tuple[str, ...]) -> Any:
    return next((values[h] for h in headers if values.get(h) not in (None, "")), None)


def batch_rows(data: bytes, input_format: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, row) for each subject of a CSV or JSON Lines upload; a str row is why the line is unreadable."""
    if input_format == "jsonl":
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield number, f"not JSON: {exc}"
                continue
            if not isinstance(row, dict):
                yield number, "not a JSON object"
                continue
            keyed = {normalise_header(str(key)): value for key, value in row.items()}
            subject = {"identifier": _first_given(keyed, IDENTIFIER_HEADERS), "name": _first_given(keyed, NAME_HEADERS),
                       "action": row.get("action"), "as_of": row.get("as_of")}
            # a list, an object or true where text belongs stopped the whole batch (a traceback, a job
            # failed) at the first row so written: that row says why, the others are screened
            if type(subject["identifier"]) is int:  # a registration number written as a JSON number
                subject["identifier"] = str(subject["identifier"])
            wrong = [field for field, value in subject.items() if value is not None and type(value) is not str]
            yield number, f"{', '.join(wrong)}: not text" if wrong else subject
        return
    text = data.decode(text_encoding(data[:1 << 20]))  # ValueError: why it is no text (UnicodeDecodeError among them)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter_of(text.split("\n", 1)[0]))
    written = [h.strip().lower() for h in next(reader, [])]
    # headers compared as ingestion compares them: a byte order mark left in the first one (a GB18030
    # file saved with one, a UTF-8 file with two), full-width letters or spaces inside never hide a column;
    # nor does a template's mark of a required column (统一社会信用代码*, 统一社会信用代码（必填）)
    headers = [normalise_header(h) for h in written]
    column = {h: i for i, h in enumerate(headers)}
    idents = [column[h] for h in IDENTIFIER_HEADERS if h in column]
    names = [column[h] for h in NAME_HEADERS if h in column]
    if not idents and not names:
        yield 1, f"no identifier or name column; headers are: {', '.join(written)}"
        return
    action, as_of = column.get("action"), column.get("as_of")
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        def cell(i: int | None) -> str | None:
            return cells[i].strip() or None if i is not None and i < len(cells) else None
        yield number, {"identifier": next(filter(None, map(cell, idents)), None),
                       "name": next(filter(None, map(cell, names)), None), "action": cell(action), "as_of": cell(as_of)}


def parse_day(value: Any, default: dt.date) -> dt.date:
    if value in (None, ""):
        return default
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ScreenError(f"as_of {value!r} is not a date (YYYY-MM-DD)") from None


BATCH_CHUNK = 4096  # rows whose codes are looked up together
# A result without foreign designations holds an empty tuple (written as [] like a list): a dict of
# strings, dates, None and () is not tracked by the cyclic collector, so the 100,000 results a caller
# may hold add no full collection passes over the whole process (they took half a batch's time).
NO_DESIGNATIONS: tuple[()] = ()


def screen_batch(index: ScreeningIndex, rows: Iterable[tuple[int, dict[str, Any] | str]],
                 action: str | None, as_of: dt.date) -> Iterator[dict[str, Any]]:
    """One result per input line, in order; a line that cannot be screened says why.

    Most subjects of a batch have nothing against them: an entity with no listing that
    is not a person who could be reached through a relation is allowed without building a
    decision (the same answer `decide` gives it, at a fraction of the cost). The codes of
    `BATCH_CHUNK` rows at a time are looked up together in the index file's table, the entities
    with a listing or an ID number set apart as arrays, and the keys and names of the others read
    together (`_Codes.get_many`, `_Info.keys_and_names`); such a row's result is then one dict,
    made at once when the row gives no action, date or name of its own. Every other row is
    screened alone (`_screen_row`).
    """
    days: dict[Any, dt.date] = {}
    checked: set[str] = set()  # actions known to the pack
    decided_from: tuple[Any, Any] | None = None
    decided = np.zeros(0, dtype=np.int64)
    allowed = None  # copies a plain row's result: a copy of a dict is made at once, a dict display key by key
    rows = iter(rows)
    while chunk := list(islice(rows, BATCH_CHUNK)):
        if decided_from != (index.listings_of, index.person_ids):  # swapped whole when the index is refreshed
            decided_from = (index.listings_of, index.person_ids)
            decided = np.unique(np.fromiter((*index.listings_of, *index.person_ids), dtype=np.int64))
        if action and action not in checked:
            try:
                index.measures(action)
                checked.add(action)
            except ScreenError:
                pass  # each row says why
        if allowed is None and action in checked and as_of is not None:
            allowed = _result(0, None, None, action, as_of, "allow").copy
        foreign_codes = index.foreign.by_code
        identifiers = [None if isinstance(row, str) else row.get("identifier") or row.get("code") for _, row in chunk]
        asked = [i for i, code in enumerate(identifiers) if type(code) is str]
        codes = identifiers if len(asked) == len(chunk) else [identifiers[i] for i in asked]
        found = index.by_code.get_many(codes)
        plain = (found >= 0) & ~_among(found, decided)
        if foreign_codes:
            plain &= np.fromiter((code not in foreign_codes for code in codes), dtype=bool, count=len(codes))
        results: list[Any] = [None] * len(chunk)  # each row's dict, None until answered
        about: dict[int, tuple[str, str | None]] = {}  # plain rows with an action, date or name of their own
        at = np.asarray(asked, dtype=np.int64)[plain].tolist()
        keys, names = index.info.keys_and_names(found[plain])
        answered = 0
        for i, key, subject_name in zip(at, keys, names):
            if key is None or index.is_branch_name(subject_name):  # a branch: its head office is looked at too
                continue
            line, row = chunk[i]
            # `or` gives the last value when all are empty: then `own` is the row's name (None, "" or absent)
            if allowed is not None and not (own := row.get("action") or row.get("as_of") or row.get("name")):
                results[i] = result = allowed()
                result["line"] = line
                result["identifier"] = identifiers[i]
                result["name"] = own
                result["subject"] = key
                result["subject_name"] = subject_name
                answered += 1
            else:
                about[i] = (key, subject_name)
        if answered == len(chunk):
            yield from results
            continue
        done = 0  # the rows screened alone, in order and as they come: a job's heartbeat keeps beating
        for i in [i for i, result in enumerate(results) if result is None]:
            yield from results[done:i]
            line, row = chunk[i]
            yield _screen_row(index, line, row, about.get(i), action, as_of, checked, days)
            done = i + 1
        yield from results[done:]


def _among(values: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Whether each value is in `ordered` (sorted, distinct): a binary search each, where `np.isin`
    sorted both arrays again for every chunk."""
    if not len(ordered):
        return np.zeros(len(values), dtype=bool)
    return ordered[np.minimum(np.searchsorted(ordered, values), len(ordered) - 1)] == values


def _screen_row(index: ScreeningIndex, line: int, row: dict[str, Any] | str, known: tuple[str, str | None] | None,
                action: str | None, as_of: dt.date, checked: set[str], days: dict[Any, dt.date]) -> dict[str, Any]:
    """One row of a batch: `known` is the (key, name) of an entity allowed without a decision."""
    if isinstance(row, str):
        return _result(line, None, None, action, as_of, error=row)
    identifier, name = row.get("identifier") or row.get("code"), row.get("name")
    act, raw_day = row.get("action") or action, row.get("as_of")
    try:
        if act not in checked:
            if not act:
                raise ScreenError("no action: give one per row or for the whole batch")
            index.measures(act)
            checked.add(act)
        day = days.get(raw_day) if raw_day else as_of
        if day is None:
            day = days[raw_day] = parse_day(raw_day, as_of)
        if identifier:
            # a name beside the code that is not the code's firm's: the code may be another firm's, quoted
            # in the subject's place (a listed firm giving a clean firm's code): a person looks
            found = index.lookup(str(identifier)) if name else None
            disagrees = found is not None and index.name_disagrees(found, str(name))
            if known is not None and not disagrees:
                key, subject_name = known
                return _result(line, identifier, _masked_name(name), act, day, "allow", key, subject_name)
            answer = index.screen_identifier(str(identifier), act, day)
            if disagrees:
                by_name = index.screen_name(str(name), act, day)
                answer.candidates, answer.match = by_name.candidates, "code_and_name_disagree"
                if answer.decision.decision != "deny":
                    answer.decision.decision = "refer"
            elif name and answer.decision.decision == "not_found":
                # a code naming no subject decides nothing: a listed firm writing any code beside its own
                # name passed as unknown. The name does, at least refer (the code is nobody's), when it
                # finds a measure or a candidate to check; a clean firm's name leaves the code unknown
                # (a new firm not yet in the register screened with its own name)
                by_name = index.screen_name(str(name), act, day)
                if by_name.decision.decision not in ("allow", "not_found") and (
                        by_name.subject_id is not None or by_name.candidates):
                    answer.candidates, answer.match = by_name.candidates, "code_and_name_disagree"
                    answer.decision.decision = strongest((by_name.decision.decision, "refer"))
                    answer.decision.measures, answer.subject_id = by_name.decision.measures, by_name.subject_id
                    answer.foreign = merged(answer.foreign or [], by_name.foreign or [])
        elif name:
            answer = index.screen_name(str(name), act, day)
        else:
            raise ScreenError("neither identifier nor name")
    except ScreenError as exc:
        return _result(line, identifier and _masked(identifier), _masked_name(name), act, as_of, error=str(exc))
    decision, subject = answer.decision, answer.subject_id
    info = index.info[subject] if subject is not None else None
    out = _result(line, _masked(identifier) if identifier else None, _masked_name(name), act, day,
                  decision.decision, info.key if info else None, info.name if info else None, match=answer.match)
    if answer.candidates is not None:
        out["candidates"] = answer.candidates
        if answer.candidates:
            out["best_candidate"], out["best_score"] = answer.candidates[0]["entity"], answer.candidates[0]["score"]
    if answer.foreign:
        out["foreign_designations"] = answer.foreign
        out["foreign_best_score"] = max(item["score"] for item in answer.foreign)
    if decision.measures:
        out["measures"] = ";".join(sorted({m.measure.code for m in decision.measures}))
        ends = [m.ends for m in decision.measures if m.ends is not None]
        out["ends"] = max(ends) if ends else None
    return out


def _result(line: int, identifier: Any, name: Any, action: str | None, as_of: dt.date, decision: str | None = None,
            subject: str | None = None, subject_name: str | None = None, match: str | None = None,
            error: str | None = None) -> dict[str, Any]:
    return {"line": line, "identifier": identifier, "name": name, "action": action, "as_of": as_of,
            "decision": decision, "subject": subject, "subject_name": subject_name, "measures": "", "ends": None,
            "match": match, "error": error, "best_candidate": None, "best_score": None, "candidates": None,
            "foreign_designations": NO_DESIGNATIONS, "foreign_best_score": None}


def csv_row(result: dict[str, Any]) -> dict[str, Any]:
    """A batch result as a CSV row: each foreign designation as LIST:SOURCE_ID@VERSION, `;`-separated
    (JSON Lines results carry them whole)."""
    designations = result.get("foreign_designations") or ()
    return {**result, "foreign_designations": ";".join(f"{d['list']}:{d['source_id']}@{d['list_version']}"
                                                       for d in designations)}


def _masked(identifier: Any) -> str:
    """An identifier as echoed or logged: anything that may be a person's ID number masked
    (a mistyped ID number is still somebody's), a valid USCC or other code as given."""
    code = normalise_code(str(identifier))
    if len(code) == 18 and code[:17].isdigit() and (is_valid_resident_id(code) or not is_valid_uscc(code)):
        return mask_person_id(code)
    if len(code) == 15 and first_generation_to_18(code) is not None:
        return mask_person_id(code)
    if could_start_a_resident_id(code):  # the first digits of an ID number: region kept, birth date hidden
        return code[:6] + "*" * (len(code) - 6)
    return str(identifier)


def _masked_name(name: Any) -> Any:
    """A name as echoed or logged: an ID number written after it ("李四 1101…") masked."""
    split = split_person_id(name) if isinstance(name, str) else None
    return f"{split[0]} {mask_person_id(split[1])}" if split is not None else name


def masked_query(identifier: str | None, name: str | None) -> str:
    """What the query log keeps of the question: a person's ID number only masked."""
    return _masked(identifier) if identifier else (_masked_name(name) or "")
