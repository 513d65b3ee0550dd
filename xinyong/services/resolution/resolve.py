"""Resolution: link every record to the entity it is about, and say how.

Order of evidence: a human judgement; a valid identifier (USCC, legacy codes, a person's
ID number), unless the name in the record is far from every name of the code's entity, or
is exactly another firm's (the code belongs to another firm: review); the exact normalised
name (current or former);
scored candidates found by blocking on name bigrams, syllable bigrams (homophones), code
halves and the legal representative. Scores are match probabilities of a Fellegi-Sunter
model learned from the store (domain/linkage.py: u over random pairs; m counted on labelled
matches, the records whose verified code names an entity with a near name, with judgements,
for what is not read from the name (EM over the blocked pairs when there are too few); the
prior by EM), saved in `resolution_models` with the threshold that meets the pack's
`target_precision`. At or above that threshold (never below the pack's `auto_link`) a
candidate is linked; a record that nearly matches an entity (at or above `review`) waits for
a human; only a record near nothing gets a new unverified entity (a person without a valid ID
number, in a category a list counts against persons, waits for a human instead). Two
different valid identifiers are never merged: a record with a valid code links only by that
code (a legacy code no entity holds, a pre-2015 registration number or organisation code, leaves
the name to decide, never for an entity holding another code of that scheme).
"""

from __future__ import annotations

import csv
import datetime as dt
import heapq
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, delete, func, or_, select, update
from sqlalchemy.engine import Connection

from xinyong.domain.calendar import pack_today
from xinyong.domain.identifiers import mask_record_key, org_code_check_character, uscc_check_character
from xinyong.domain.csvsafe import SafeWriter
from xinyong.domain.listings import ACTIVE, WITHDRAWN_MOVED
from xinyong.domain.linkage import (
    LinkageModel,
    estimate,
    estimate_prior,
    estimate_u,
    level_patterns,
    m_from_labels,
    threshold_for_precision,
)
from xinyong.domain.matching import (
    COMPARISONS,
    STARTING_MODEL,
    Matcher,
    NameAnalyser,
    NameParts,
    Profile,
    Scored,
    Subject,
    abbreviation_keys,
    bigrams,
    code_halves,
    comparable_names,
    compare,
    is_short_name,
    places_agree,
    sound_bigrams,
    substitution_keys,
)
from xinyong.domain.names import normalise_name, pinyin_bigrams, same_person_name
from xinyong.domain.pack import Pack, SubjectKind
from xinyong.domain.records import family_and_given_name
from xinyong.services.intake.register import entity_key_for, key_salt, opaque_key
from xinyong.services.lists.due_process import Actor, undo_ended_under_review
from xinyong.store import tables as t
from xinyong.services.resolution.relations import apply_relations
from xinyong.services.operations.integrity import audit_links, audit_links_removed, audit_stored_links
from xinyong.store.audit import append_event, subject_actor
from xinyong.store.bulk import Ids, bulk_session, collector_paused, insert_rows, render_value, select_in
from xinyong.store.db import private_file
from xinyong.store.listings import transition

CHUNK = 5000
MAX_CANDIDATES = 30
COMMON_BIGRAM_SHARE = 0.01  # a bigram in more than 1% of names does not block
LINK_COLUMNS = ("record_id", "state", "entity_id", "method", "score", "explanation", "resolved_at")
ENTITY_COLUMNS = ("id", "key", "kind", "verified", "origin", "created_at", "updated_at")
IDENTIFIER_COLUMNS = ("entity_id", "scheme", "value", "verified")
NAME_COLUMNS = ("entity_id", "name", "normalised", "current")
PERSON_SCHEMES = frozenset({"resident_id"})
LEGACY_SCHEMES = frozenset({"reg_no", "org_code"})  # codes of pre-2015 entities, which bear a USCC since
MODEL_PURPOSE = "record_linkage"
U_SAMPLES = 20000  # random record-entity pairs counted for u
TRAINING_RECORDS = 50000  # records (sampled evenly) whose blocked pairs EM sees
MIN_TRAINING_PAIRS = 50  # fewer blocked pairs: the starting weights stay
CODE_BELONGS_TO_ANOTHER_FIRM = "code belongs to another firm"
# a person named without a valid ID number in a category that can put persons on a list: who it is
# is not established, so nothing of it may reach anyone's file or a list until a human or a
# corrected record with the ID number settles it
PERSON_NOT_IDENTIFIED = "person not identified: no valid ID number"
# a valid ID number under a name that is not its holder's (another person's entity, or the legal
# representative the register names with it): the number or the name is wrong, and a list would
# reach the other person (and the firms they represent) until a human settles which
ID_OF_ANOTHER_PERSON = "ID number belongs to another person"
# a record's verified code labels its pair with the code's entity when the names are this close
LABELLING_NAME_LEVELS = frozenset({"exact", "homophone", "near", "short"})
MIN_CODE_LABELS = 30  # matches labelled by codes needed to count m on them (fewer: EM alone)
READ_FROM_THE_NAME = ("name", "legal_form", "place")  # comparisons code labels say nothing of
# a code failing its check, written with the check character its other characters give
CHECK_CORRECTED: dict[str, Callable[[str], str]] = {
    "uscc": lambda code: code[:17] + uscc_check_character(code[:17]) if len(code) == 18 else code,
    "org_code": lambda code: code[:8] + org_code_check_character(code[:8]) if len(code) == 9 else code,
}


@dataclass
class ResolveResult:
    records: int = 0
    by_identifier: int = 0
    by_exact_name: int = 0
    by_score: int = 0
    by_judgement: int = 0
    in_review: int = 0
    new_entities: int = 0
    still_alone: int = 0  # records matching nothing again, kept with the entity an earlier run gave them
    seconds: float = 0.0
    model_id: int | None = None
    threshold: float | None = None
    dry_run: bool = False
    # with a dry run: the links that would move, and the active listings built on them
    moves: list[dict[str, Any]] = field(default_factory=list)
    # relations records applied at the run's end (services.resolution.relations): batches, firms, opened...
    relations: dict[str, int] = field(default_factory=dict)
    # active listings of another entity built on a record the run linked elsewhere: withdrawn (withdrawn_moved)
    listings_withdrawn: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Decision:
    state: str  # linked | review | new
    method: str
    entity_id: int | None = None
    score: float | None = None
    explanation: dict[str, Any] = field(default_factory=dict)


def name_blocks(p: NameParts, substitutions: bool = False) -> list[str]:
    """The blocking keys of a registered name (one list for resolution's index and screening's
    file): its core's character bigrams (n), their sound bigrams (s), its abbreviation keys (a);
    with `substitutions`, its core's substitution keys (d)."""
    grams = bigrams(p.core)
    return (["n" + g for g in grams] + ["s" + g for g in sound_bigrams(p.core) - grams]
            + ["a" + k for k in abbreviation_keys(p, registered=True)]
            + (["d" + k for k in substitution_keys(p.core)] if substitutions else []))


class EntityIndex:
    """What resolution needs to know of every entity, held in memory for one run."""

    # Screening's index also blocks on a core's substitution keys: a listed firm's name with one
    # character changed found no candidate and was `allow`. Resolution does without them, as before:
    # such a record, at most `near` (review), would wait for a person instead of making its own
    # entity; the keys grew screening's file by a third (651 -> 857 MB at 1,000,000 entities).
    substitution_blocks = False

    def __init__(self, analyser: NameAnalyser, matcher: Matcher | None = None):
        self.analyser = analyser
        self.matcher = matcher or Matcher()
        self.by_identifier: dict[tuple[str, str], int] = {}
        self.by_name_key: dict[str, set[tuple[int, str | None]]] = defaultdict(set)  # -> (entity, place)
        self.by_core: dict[str, set[int]] = defaultdict(set)  # name core (any legal form) -> entities
        self.by_block: dict[str, list[int]] = defaultdict(list)
        self.profiles: dict[int, Profile] = {}
        self.origin: dict[int, str] = {}
        self.key: dict[int, str] = {}

    def add(self, entity_id: int, key: str, origin: str, person: bool, names: Iterable[str],
            identifiers: Iterable[tuple[str, str, bool]], legal_rep: str | None, address: str | None = None) -> None:
        parts = [self.analyser.parts(n) for n in names if n]
        profile = self.profiles.get(entity_id)
        if profile is None:  # adding an entity again (screening's refresh) adds only what is new
            profile = self.profiles[entity_id] = Profile(entity_id, [], [], None, person)
            self.origin[entity_id], self.key[entity_id] = origin, key
        if address:
            profile.address = address
        by_block = self.by_block
        for p in parts:
            if p in profile.names:
                continue
            profile.names.append(p)
            self.by_name_key[p.key].add((entity_id, p.region))
            self.by_core[p.core].add(entity_id)
            # an entity once per block: two names sharing a bigram count once
            for block in name_blocks(p, self.substitution_blocks):
                ids = by_block[block]
                if not ids or ids[-1] != entity_id:
                    ids.append(entity_id)
        for scheme, value, verified in identifiers:
            if verified:
                self.by_identifier[(scheme, value)] = entity_id
            if scheme not in PERSON_SCHEMES and value not in profile.codes:
                profile.codes.append(value)
                for half in code_halves(value):
                    self.by_block["c" + half].append(entity_id)
        if legal_rep and legal_rep != profile.legal_rep:
            profile.legal_rep = legal_rep
            self.by_block["r" + legal_rep].append(entity_id)

    def candidates(self, subject: Subject) -> list[int]:
        """Entities sharing blocking keys with the subject, most shared first (capped)."""
        counts: Counter[int] = Counter()  # counted in C, first seen first among equals
        common = max(50, int(len(self.profiles) * COMMON_BIGRAM_SHARE))
        # keys in a fixed order, not a set's: the first seen wins a tie at the cap, and a set of
        # str iterates in an order PYTHONHASHSEED changes from one process to the next
        keys = ["n" + g for g in sorted(bigrams(subject.name.core))] if subject.name else []
        if subject.name:
            keys += ["s" + g for g in sorted(sound_bigrams(subject.name.core) - bigrams(subject.name.core))]
            if subject.name.core.isascii():  # typed in pinyin: the syllables of the Chinese name it spells
                keys += ["s" + g for g in sorted(pinyin_bigrams(subject.name.core))]
            if is_short_name(subject.name):
                keys += ["a" + k for k in sorted(abbreviation_keys(subject.name, registered=False))]
            if self.substitution_blocks:
                keys += ["d" + k for k in substitution_keys(subject.name.core)]
        if subject.code:
            keys += ["c" + h for h in code_halves(subject.code)]
        if subject.legal_rep:
            keys.append("r" + subject.legal_rep)
        for block in keys:
            ids = self.by_block.get(block, ())
            if block[0] in "nsad" and len(ids) > common:
                continue
            # a sound, substitution, code or person block weighs 3
            for _ in range(1 if block[0] in "na" else 3):
                counts.update(ids)
        # as sorted(..., reverse=True)[:MAX_CANDIDATES]: the most shared first, ties in first-seen order
        return heapq.nlargest(MAX_CANDIDATES, counts, key=counts.__getitem__)

    def exact(self, parts: NameParts, excluded: set[int] = frozenset()) -> set[int]:
        """Organisations with a name of the same key, in no other place (the same name elsewhere is another firm)."""
        found = set()
        for entity_id, _ in tuple(self.by_name_key.get(parts.key, ())):  # a copy: a refresh may add to it
            profile = self.profiles[entity_id]
            if entity_id in excluded or profile.person:
                continue
            if any(name.key == parts.key and _same_place(parts, name) for name in profile.names):
                found.add(entity_id)
        return found

    def same_core(self, parts: NameParts, excluded: set[int] = frozenset()) -> set[int]:
        """Organisations with a name of the same core and branch, in no other place, whatever its
        legal form or none (a short name 华美电气 or 上海华美电气 has the core of 上海华美电气有限公司)."""
        found = set()
        for entity_id in tuple(self.holding_core(parts)):
            profile = self.profiles[entity_id]
            if entity_id in excluded or profile.person:
                continue
            if any(name.core == parts.core and name.branch == parts.branch and _same_place(parts, name)
                   for name in profile.names):
                found.add(entity_id)
        return found

    def holding_core(self, parts: NameParts) -> Iterable[int]:
        """The entities with a name of this core (any legal form, place or branch)."""
        return self.by_core.get(parts.core, ())

    def rank(self, subject: Subject, excluded: set[int] = frozenset()) -> list[Scored]:
        """Candidates best first: score, then an exact full name, then corroborating evidence."""
        scored = [self.matcher.score(subject, self.profiles[e]) for e in self.candidates(subject)
                  if e not in excluded]
        if subject.name is not None:
            seen = {s.entity_id for s in scored}
            scored += [self.matcher.score(subject, self.profiles[e]) for e in self.exact(subject.name, excluded)
                       if e not in seen]
        return sorted(scored, key=lambda s: (-s.score, not s.exact_full_name, not s.corroborated, s.entity_id))


def _same_place(a: NameParts, b: NameParts) -> bool:
    """No place on one side, or places within one another (division codes; names for packs without a table)."""
    if a.places and b.places:
        return places_agree(a.places, b.places)
    return a.region is None or b.region is None or a.region == b.region


HOLDERS_OWN, NEAR_THE_HOLDERS = "own", "near"


def code_holder_fit(index: EntityIndex, name: NameParts, holder_id: int, excluded: set[int],
                    review: float) -> str | None:
    """How a name given beside a verified code fits the code's holder: `HOLDERS_OWN` (one of its names
    in a place that agrees, or a branch of it quoting its code), whatever else the index holds;
    `NEAR_THE_HOLDERS` (near one of its names, current, former or English, and no other firm's
    exactly); None: the code is another firm's. One test for a record (resolution) and for a batch
    row giving a code and a name (screening): a listed firm quoting a clean firm's code passes neither."""
    holder = index.profiles[holder_id]
    if not holder.names:
        return NEAR_THE_HOLDERS
    others = excluded | {holder_id}
    by_name_alone = index.matcher.score(Subject(name), holder)
    if name.branch is not None and "branch" in str(by_name_alone.components.get("reason", "")):
        # a branch quoting its head office's code: the name less its branch is near the holder's.
        # Not a head office quoting a branch's code, nor a branch another firm's or branch's
        # (they were linked to the code's branch or firm, which the sanction then reached).
        # Unless the branch is registered itself (its own code): then its record is not the head office's.
        head = index.matcher.score(Subject(replace(name, branch=None)), holder)
        if head.score >= review and not index.exact(name, others):
            return HOLDERS_OWN
    levels = by_name_alone.components.get("levels", {})
    # the holder's name is the record's only where its place agrees too: 北京宏达贸易有限公司
    # quoting 上海宏达贸易有限公司's code names another firm, which the register holds
    holder_exact = levels.get("name") == "exact" and levels.get("place") != "different"
    if by_name_alone.score < review:
        return None
    if holder_exact:
        return HOLDERS_OWN
    # another firm's name fits the record's exactly where the holder's does not: its full name
    # key, or its core in a compatible place (a twin's short name quoting the other twin's code).
    # Looked up last: screening's index reads a core's firms from a block of the file
    if index.exact(name, others) or index.same_core(name, others):
        return None
    return NEAR_THE_HOLDERS


def load_index(connection: Connection, analyser: NameAnalyser, model: LinkageModel | None = None) -> EntityIndex:
    """Every entity, and the store's learned model (the newest saved one unless `model` is given).

    Read in key order: the order entities enter the index is the order tied candidates are kept
    in, so the same content gives the same model and links whatever order the rows lie in on disk
    (PostgreSQL after updates, a restored dump, a scan another one joined midway)."""
    if model is None:
        model = load_model(connection)
    index = EntityIndex(analyser, Matcher(model))
    names: dict[int, list[str]] = defaultdict(list)
    n = t.entity_names.c
    for entity_id, name, current in connection.execute(select(n.entity_id, n.name, n.current).order_by(n.id)):
        names[entity_id].insert(0, name) if current else names[entity_id].append(name)
    identifiers: dict[int, list[tuple[str, str, bool]]] = defaultdict(list)
    i = t.entity_identifiers.c
    for entity_id, scheme, value, verified in connection.execute(
            select(i.entity_id, i.scheme, i.value, i.verified).order_by(i.entity_id, i.scheme, i.value)):
        identifiers[entity_id].append((scheme, value, bool(verified)))
    rel = t.entity_relations.c
    reps = dict(connection.execute(select(rel.entity_id, rel.person_name).where(
        rel.relation == "legal_representative", rel.valid_to.is_(None)).order_by(rel.id)).all())
    e = t.entities.c
    for entity_id, key, origin, kind, address in connection.execute(
            select(e.id, e.key, e.origin, e.kind, e.address).order_by(e.id)):
        index.add(entity_id, key, origin, kind == "natural_person", names.get(entity_id, ()),
                  identifiers.get(entity_id, ()), reps.get(entity_id), address)
    return index


def load_model(connection: Connection) -> LinkageModel | None:
    m = t.resolution_models.c
    row = connection.execute(select(m.model).where(m.purpose == MODEL_PURPOSE).order_by(m.id.desc()).limit(1)).first()
    if row is None:
        return None
    data = row.model if isinstance(row.model, dict) else orjson.loads(row.model)
    return LinkageModel.from_json(data)


def load_judgements(connection: Connection) -> tuple[dict[str, int], dict[str, set[int]]]:
    """Judgements in the order they were made: the newest decision about a record wins."""
    j = t.judgements.c
    match: dict[str, int] = {}
    ruled_out: dict[str, set[int]] = defaultdict(set)
    for record_key, entity_id, verdict in connection.execute(
            select(j.record_key, j.entity_id, j.verdict).order_by(j.id)):
        if verdict == "match":
            match[record_key] = entity_id
            ruled_out[record_key].discard(entity_id)
        else:
            ruled_out[record_key].add(entity_id)
            if match.get(record_key) == entity_id:
                del match[record_key]
    return match, ruled_out


class Resolver:
    def __init__(self, pack: Pack, index: EntityIndex, matches: dict[str, int],
                 ruled_out: dict[str, set[int]], relation_names: Callable[[str], list[str]] | None = None):
        self.spec = pack.resolution
        # the names the register's relations give an ID number no entity holds (its legal representatives)
        self.relation_names = relation_names
        self.index = index
        self.matches = matches
        self.ruled_out = ruled_out
        self.registrations = frozenset(c.code for c in pack.categories if c.creates_entities)
        self.listing_persons = persons_listed_from(pack)
        self.person_names = pack.person_names
        # where each category's records name the subject's legal representative, and its kind (pack data)
        self.rep_fields = {c.code: c.subject.legal_representative_field for c in pack.categories}
        self.kind_fields = {c.code: c.subject.kind_field for c in pack.categories}
        learned = index.matcher.model.threshold
        self.auto_link = max(self.spec.auto_link, learned or 0.0)
        # (normalised name, entity) of records whose name agrees with their code's entity whatever
        # else the index holds (a branch of it, or the same name scoring at or above review; the
        # holder's names never change during a run): the other records of that firm skip the check.
        # Parts are a function of the normalised name, so the normalised name stands for them.
        self.names_agreeing: set[tuple[str, int]] = set()

    def decide(self, record_key: str, name: str | None, kind: str | None, code: str | None,
               scheme: str | None, verified: bool, legal_rep: str | None,
               category: str | None = None, address: str | None = None, kind_written: bool = True) -> Decision:
        """`kind_written`: the record's kind column has a value (without it and without a code,
        intake reads a short name as a person's from its shape alone)."""
        index = self.index
        if record_key in self.matches:
            return Decision("linked", "judgement", self.matches[record_key], 1.0,
                            {"judgement": "a person decided this link"})
        excluded = self.ruled_out.get(record_key, set())
        person = kind == "natural_person" or scheme in PERSON_SCHEMES
        parts = index.analyser.parts(name) if name and not person else None
        subject = Subject(parts, None if verified else code, legal_rep, person, address)
        if code and verified:
            entity_id = index.by_identifier.get((scheme, code))
            if person and name and category not in self.registrations:
                contradiction = self._id_of_another_person(name, code, entity_id)
                if contradiction is not None:
                    return contradiction
            if entity_id is not None and entity_id not in excluded:
                if parts is not None and category not in self.registrations:
                    contradiction = self._code_of_another_firm(subject, entity_id, excluded)
                    if contradiction is not None:
                        return contradiction
                return Decision("linked", "identifier", entity_id, 1.0, {"identifier": scheme})
            if entity_id is not None or scheme not in LEGACY_SCHEMES or parts is None:
                return Decision("new", "new_entity", None, None,
                                {"reason": f"valid {scheme} not held by any entity; never linked by name"})
            # A pre-2015 registration number or organisation code the register does not hold: the firm
            # has borne a USCC since, and its name decides as if no code were given (else a second
            # entity of its name, made with the old code, split its records and made its name
            # ambiguous to screening). Never an entity holding another code of that scheme.
            excluded = excluded | self._holding_another(subject, scheme, code)
        elif code and parts is not None and category not in self.registrations:
            contradiction = self._check_typo_of_another_firm(subject, scheme, code, excluded)
            if contradiction is not None:
                return contradiction
        if person:
            if category in self.listing_persons:
                return person_not_identified()
            if code is None and not kind_written and name:
                firm = self._firm_named(name, excluded)
                if firm is not None:
                    return firm
            return Decision("new", "new_entity", None, None,
                            {"reason": "a person without a valid ID number is never linked by name"})
        if parts is not None:
            exact = index.exact(parts, excluded)
            if len(exact) == 1:
                return Decision("linked", "exact_name", exact.pop(), 1.0, {"name": parts.key})
        return self._by_score(index.rank(subject, excluded))

    def _id_of_another_person(self, name: str, code: str, entity_id: int | None) -> Decision | None:
        """A valid ID number whose holder bears another name: review, the holder shown."""
        if entity_id is not None:
            known = [p.full for p in self.index.profiles[entity_id].names]
        else:
            known = self.relation_names(code) if self.relation_names else []
        if not known or any(same_person_name(name, other) for other in known):
            return None
        holder = [{"entity_id": entity_id, "score": None, "components": {"identifier": "the record's ID number"}}]
        return Decision("review", "identifier", None, None, {
            "reason": ID_OF_ANOTHER_PERSON, "code_entity_id": entity_id,
            "candidates": holder if entity_id is not None else [],
            **({} if entity_id is not None else {"held_by": "a legal representative in the register"})})

    def _check_typo_of_another_firm(self, subject: Subject, scheme: str | None, code: str,
                                    excluded: set[int]) -> Decision | None:
        """A code failing its check only in its check character is, but for that character, a registered
        firm's code: as that code would, against a name far from the holder's (another firm's), review
        with both shown. Read as no code at all, the name alone linked the record to the firm it names,
        on a row whose code says it is another's (which of the two is wrong, a human settles)."""
        correct = CHECK_CORRECTED.get(scheme or "")
        try:
            corrected = correct(code) if correct else code
        except (KeyError, ValueError):  # a character no code of the scheme holds: no check character to fix
            return None
        holder = self.index.by_identifier.get((scheme, corrected)) if corrected != code else None
        if holder is None or holder in excluded:
            return None
        contradiction = self._code_of_another_firm(subject, holder, excluded)
        if contradiction is not None:
            contradiction.explanation["code_read_as"] = corrected
            contradiction.explanation["candidates"][0]["components"] = {
                "identifier": "the record's code, its check character corrected"}
        return contradiction

    def _holding_another(self, subject: Subject, scheme: str, code: str) -> set[int]:
        """The entities a record's name could reach (candidates, exact names) holding a code of `scheme`
        other than `code`: two valid codes of one scheme are two firms."""
        index = self.index
        found = set()
        for entity_id in {*index.candidates(subject), *index.exact(subject.name)}:
            if any(value != code and index.by_identifier.get((scheme, value)) == entity_id
                   for value in index.profiles[entity_id].codes):
                found.add(entity_id)
        return found

    def _firm_named(self, name: str, excluded: set[int]) -> Decision | None:
        """The one organisation whose registered name (with its legal form) is this name with the
        legal form left out (九阳股份, 厦门信达, 牧原食品: a firm's short name, shaped like a person's):
        a person's name is never a registered firm's whole trade name and industry. A name that is a
        family name and a given name (王伟) stays a person's even where a firm is registered as
        王伟有限公司: the person's penalty must not become that firm's."""
        if family_and_given_name(name, self.person_names):
            return None
        index = self.index
        parts = index.analyser.parts(name)
        firms = [e for e in index.same_core(parts, excluded)
                 if any(n.legal_form and n.core == parts.core for n in index.profiles[e].names)]
        if len(firms) != 1:
            return None
        return Decision("linked", "exact_name", firms[0], 1.0,
                        {"name": parts.key, "reason": "a firm's registered name without its legal form"})

    def _code_of_another_firm(self, subject: Subject, entity_id: int, excluded: set[int]) -> Decision | None:
        """A verified code whose entity has no name near the record's (another firm's code): review, both shown."""
        agreeing = (subject.name.full, entity_id)
        if agreeing in self.names_agreeing:
            return None
        fit = code_holder_fit(self.index, subject.name, entity_id, excluded, self.spec.review)
        if fit == HOLDERS_OWN:
            self.names_agreeing.add(agreeing)
        if fit is not None:
            return None
        # the record's name decided as a record without a code would be: an exact name first
        exact = self.index.exact(subject.name, excluded | {entity_id})
        by_name = Decision("linked", "exact_name", next(iter(exact)), 1.0,
                           {"components": {"exact_name": subject.name.key}}) if len(exact) == 1 \
            else self._by_score(self.index.rank(subject, excluded | {entity_id}))
        shown = [{"entity_id": entity_id, "score": None, "components": {"identifier": "the record's code"}}]
        if by_name.state == "linked":
            shown.append({"entity_id": by_name.entity_id, "score": by_name.score,
                          "components": {**by_name.explanation.get("components", {}), "by": "the record's name"}})
        else:
            shown += by_name.explanation.get("candidates", [])
        return Decision("review", "identifier", None, None, {
            "reason": CODE_BELONGS_TO_ANOTHER_FIRM, "code_entity_id": entity_id,
            "name_entity_id": by_name.entity_id if by_name.state == "linked" else None,
            "candidates": shown})

    def _by_score(self, scored: list[Scored]) -> Decision:
        spec = self.spec
        if not scored or scored[0].score < spec.review:
            best = scored[0] if scored else None
            return Decision("new", "new_entity", None, None, {
                "reason": "no candidate reaches the review threshold",
                "best": _explain(best) if best else None})
        top = scored[0]
        rivals = [s for s in scored[1:] if s.score >= top.score - spec.ambiguity_margin]
        decided_by = None
        if rivals:
            # evidence breaks a tie: an exact full name over a normalised match (whichever of the
            # tied ranks first: learned weights may put a homophone a hair above the exact name),
            # then a legal representative, address or code that agrees with only one of them
            tied = [top, *rivals]
            exact = [s for s in tied if s.exact_full_name]
            corroborated = [s for s in exact or tied if s.corroborated]
            if len(exact) == 1:
                top, decided_by = exact[0], "exact full name"
            elif len(corroborated) == 1:
                top, decided_by = corroborated[0], "legal representative, address or code agrees"
            rivals = [s for s in tied if s is not top]
        if top.score >= self.auto_link and (not rivals or decided_by):
            explanation = _explain(top)
            if decided_by:
                explanation["tie_broken_by"] = decided_by
            return Decision("linked", "score", top.entity_id, top.score, explanation)
        candidates = [_explain(s) for s in scored[:5] if s.score >= spec.review]
        return Decision("review", "score", None, top.score, {
            "reason": "ambiguous: candidates too close" if rivals and top.score >= self.auto_link
            else "score between review and auto-link thresholds",
            "candidates": candidates})


def relation_names(connection: Connection, person_ids: list[str]) -> dict[str, list[str]]:
    """The names the register's relations give each of these persons' ID numbers."""
    found: dict[str, list[str]] = defaultdict(list)
    for person_id, name in select_in(connection, t.entity_relations, ("person_id", "person_name"), "person_id",
                                     person_ids):
        if name and name not in found[person_id]:
            found[person_id].append(name)
    return found


def person_not_identified() -> Decision:
    """The review a person named without a valid ID number waits in (see PERSON_NOT_IDENTIFIED)."""
    return Decision("review", "identifier", None, None, {"reason": PERSON_NOT_IDENTIFIED, "candidates": []})


def hold_unidentified(connection: Connection, pack: Pack, record_ids: Iterable[int], actor: str) -> list[int]:
    """Of `record_ids`, those naming a natural person without a valid number of a person's scheme
    (resident ID, or the pack's `person` schemes: evaluation's test), in a category some list counts
    against persons, and linked by a run (not by a person's judgement), go back to review as `decide`
    now holds them: a store made before that rule kept each on an entity of its own. Returns the
    records moved (audited)."""
    r, link = t.records.c, t.record_links.c
    candidates = sorted(set(record_ids))
    person_schemes = sorted(pack.person_schemes)
    moved = [row.id for start in range(0, len(candidates), CHUNK) for row in connection.execute(
        select(r.id).join(t.record_links, link.record_id == r.id)
        .where(r.id.in_(candidates[start:start + CHUNK]), r.category.in_(sorted(persons_listed_from(pack))),
               or_(r.subject_kind == "natural_person", r.subject_scheme.in_(person_schemes)),
               or_(r.subject_scheme.is_(None), r.subject_scheme.not_in(person_schemes),
                   r.subject_code_verified.is_not(True)),
               link.method != "judgement", link.state.in_(("linked", "new"))))]
    if not moved:
        return moved
    held = person_not_identified()
    now = dt.datetime.now(dt.timezone.utc)
    for start in range(0, len(moved), CHUNK):
        connection.execute(update(t.record_links).where(link.record_id.in_(moved[start:start + CHUNK])).values(
            state=held.state, entity_id=None, method=held.method, score=None, explanation=held.explanation,
            resolved_at=now))
    audit_links(connection, [(record_id, None, held.state, held.method) for record_id in moved], actor,
                "held_unidentified")
    append_event(connection, actor=actor, action="resolution.held_unidentified", object_type="resolution",
                 object_id=now.isoformat(), reason=PERSON_NOT_IDENTIFIED, payload={"records": moved})
    return moved


def persons_listed_from(pack: Pack) -> frozenset[str]:
    """The categories whose records some list's rule counts against natural persons."""
    return frozenset(category for spec in pack.lists if SubjectKind.natural_person in spec.subject_kinds
                     for rule in spec.rules for category in rule.categories)


def _explain(scored: Scored) -> dict[str, Any]:
    return {"entity_id": scored.entity_id, "score": scored.score, "components": scored.components}


def resolve(engine: Engine, pack: Pack, *, everything: bool = False, actor: str = "cli",
            progress: Callable[[int], None] | None = None, dry_run: bool = False) -> ResolveResult:
    """Resolve records without a link, in review or given a new entity (all with `everything`).

    Judgement links are kept on every run. One transaction: a run is all or nothing. With
    `everything` the model is trained anew (links made by an older model move only then);
    `dry_run` does all of it, lists in `moves` each record whose link would change and the
    active listings built on it, and rolls everything back.
    """
    started = time.perf_counter()
    result = ResolveResult(dry_run=dry_run)
    analyser = NameAnalyser(pack.resolution.name_rules, remember=True)
    # a page cache sized for the run: 1.2M links and their indexes spill out of SQLite's 2 MB default;
    # the index's millions of lists and sets, which hold no cycles, set off full passes of the
    # cyclic collector over the whole process all run long (a fifth of `load_index` alone)
    with collector_paused(), engine.connect() as connection, bulk_session(connection), \
            connection.begin() as transaction:
        _resolve(connection, pack, result, analyser, everything, actor, progress, started)
        if dry_run:
            transaction.rollback()
    return result


def _resolve(connection: Connection, pack: Pack, result: ResolveResult, analyser: NameAnalyser, everything: bool,
             actor: str, progress: Callable[[int], None] | None, started: float) -> None:
    index = load_index(connection, analyser)
    matches, ruled_out = load_judgements(connection)
    if everything or load_model(connection) is None:
        model, model_id = train(connection, pack, index, matches, ruled_out)
        result.model_id = model_id
    spec = pack.resolution
    index.matcher = Matcher(index.matcher.model, spec.review, spec.auto_link, records=True)
    salt = key_salt(connection)
    held_in_relations: dict[str, list[str]] = {}  # the chunk's persons' ID numbers no entity holds -> their names
    resolver = Resolver(pack, index, matches, ruled_out,
                        relation_names=lambda code: held_in_relations.get(code, []))
    result.threshold = resolver.auto_link
    now = dt.datetime.now(dt.timezone.utc)
    resolved_at = render_value(connection, t.record_links.c.resolved_at, now)
    r, link = t.records.c, t.record_links.c
    due = or_(link.record_id.is_(None), link.state.in_(("review", "new")))
    if everything:
        due = or_(due, link.method != "judgement")
    # of a record's fields only its address, legal representative and kind are read, by the database
    # (parsing every record's JSON in Python cost more than deciding most of them)
    rep_columns = {name: f"rep{i}" for i, name in enumerate(sorted({f for f in resolver.rep_fields.values() if f}))}
    kind_columns = {name: f"kind{i}" for i, name in enumerate(sorted({f for f in resolver.kind_fields.values() if f}))}
    query = (select(r.id, r.record_key, r.authority, r.subject_name, r.subject_kind, r.subject_code, r.category,
                    r.subject_scheme, r.subject_code_verified, link.entity_id, link.state,
                    r.fields["address"].as_string().label("address"),
                    *(r.fields[name].as_string().label(label) for name, label in rep_columns.items()),
                    *(r.fields[name].as_string().label(label) for name, label in kind_columns.items()))
             .select_from(t.records.outerjoin(t.record_links, link.record_id == r.id))
             .where(due).order_by(r.id).limit(CHUNK))
    rep_column = {category: rep_columns.get(name) for category, name in resolver.rep_fields.items()}
    kind_column = {category: kind_columns.get(name) for category, name in resolver.kind_fields.items()}
    made = NewEntities(connection, index, now, salt, pack.primary_scheme)
    audit_stored_links(connection, actor)
    last = 0
    while rows := connection.execute(query.where(r.id > last)).all():
        last = rows[-1].id
        links = []
        resettled: dict[int, tuple[Any, int]] = {}  # record version -> (its row, the entity it now names)
        held_in_relations.clear()
        held_in_relations.update(relation_names(connection, sorted({
            row.subject_code for row in rows if row.subject_code_verified and row.subject_scheme in PERSON_SCHEMES
            and (row.subject_scheme, row.subject_code) not in index.by_identifier})))
        for row in rows:
            rep, kind = rep_column.get(row.category), kind_column.get(row.category)
            decision = resolver.decide(row.record_key, row.subject_name, row.subject_kind,
                                       row.subject_code, row.subject_scheme, bool(row.subject_code_verified),
                                       getattr(row, rep) if rep else None, row.category, row.address,
                                       kind_written=bool(kind and getattr(row, kind)))
            if decision.state == "new" and row.state == "new" and row.entity_id:
                decision.entity_id = row.entity_id  # matching nothing again: the entity it was given stays
                result.still_alone += 1
            else:
                if decision.state == "new":
                    decision.entity_id = made.make(row)
                _count(result, decision)
            if result.dry_run and row.state is not None and (row.state, row.entity_id) != (
                    decision.state, decision.entity_id):
                result.moves.append({"record_id": row.id, "record_key": row.record_key,
                                     "from": {"state": row.state, "entity_id": row.entity_id},
                                     "to": {"state": decision.state, "entity_id": decision.entity_id,
                                            "method": decision.method, "score": decision.score,
                                            "reason": decision.explanation.get("reason")}})
            if decision.entity_id is not None and row.state is not None and (
                    row.state == "review" or row.entity_id != decision.entity_id):
                resettled[row.id] = (row, decision.entity_id)
            links.append((row.id, decision.state, decision.entity_id, decision.method, decision.score,
                          orjson.dumps(decision.explanation).decode(), resolved_at))
        made.flush()
        if resettled and not result.dry_run:
            result.listings_withdrawn += _withdraw_moved_evidence(connection, pack, resettled, actor)
        linked_before = [row.id for row in rows if row.state is not None]  # a record never resolved has no link
        if linked_before:
            connection.execute(delete(t.record_links).where(link.record_id.in_(linked_before)))
        insert_rows(connection, t.record_links, LINK_COLUMNS, links)
        audit_links(connection, [(record_id, entity_id, state, method)
                                 for record_id, state, entity_id, method, *_ in links], actor, "resolve")
        result.records += len(rows)
        if progress:
            progress(len(rows))
    if result.dry_run:
        _describe_moves(connection, result.moves)
    # relations records whose firm is now known become its relations (ownership and control)
    result.relations = apply_relations(connection, pack, actor=actor).as_dict()
    result.seconds = round(time.perf_counter() - started, 2)
    append_event(connection, actor=actor, action="resolution.run", object_type="resolution",
                 object_id=now.isoformat(), payload={k: v for k, v in result.as_dict().items() if k != "moves"})


def _withdraw_moved_evidence(connection: Connection, pack: Pack, resettled: dict[int, tuple[Any, int]],
                             actor: str) -> list[int]:
    """The active listings of other entities citing a record version that this run linked to an entity
    it did not name before (moved by `--all`, or out of review): withdrawn (`withdrawn_moved`), and the
    old subject's open objections to the record upheld, as a reviewer's judgement moving it does
    (`judge`). Left in force, a firm stayed sanctioned on a record now about another firm, and the
    firm the record names could not be proposed (the record was spent by the listing)."""
    L, E = t.listings.c, t.listing_evidence.c
    ids = sorted(resettled)
    found: dict[tuple[int, int], list[int]] = defaultdict(list)  # (record version, old entity) -> listings
    for start in range(0, len(ids), CHUNK):
        for listing_id, entity_id, record_id in connection.execute(
                select(L.id, L.entity_id, E.record_id).join(t.listing_evidence, E.listing_id == L.id)
                .where(E.record_id.in_(ids[start:start + CHUNK]), L.state.in_(ACTIVE))
                .order_by(E.record_id, L.id)):
            if entity_id != resettled[record_id][1] and listing_id not in found[(record_id, entity_id)]:
                found[(record_id, entity_id)].append(listing_id)
    if not found:
        return []
    entity_ids = {entity_id for _, entity_id in found} | {resettled[record_id][1] for record_id, _ in found}
    keys = dict(connection.execute(select(t.entities.c.id, t.entities.c.key)
                                   .where(t.entities.c.id.in_(sorted(entity_ids)))).all())
    today = pack_today(pack)
    withdrawn: list[int] = []
    for (record_id, old), listing_ids in sorted(found.items()):
        row, new = resettled[record_id]
        because = (f"evidence record {mask_record_key(row.record_key)} is now resolved to {keys[new]}, not this "
                   "entity (re-resolution)")
        for listing_id in listing_ids:
            if listing_id in withdrawn:
                continue  # a listing citing two moved records ends once
            transition(connection, pack, listing_id, "withdrawn", today, actor=actor, reason=because,
                       changes={"ended_on": today, "end_reason": WITHDRAWN_MOVED})
            withdrawn.append(listing_id)
        _uphold_objections_of(connection, pack, row.record_key, keys[old], keys[new], listing_ids, row.authority,
                              actor)
    return withdrawn


def _describe_moves(connection: Connection, moves: list[dict[str, Any]]) -> None:
    """Entity keys of both ends of each move, and the active listings of the old entity built on the record."""
    ids = {m[end]["entity_id"] for m in moves for end in ("from", "to")} - {None}
    keys: dict[int, str] = {}
    for chunk in (sorted(ids)[i:i + CHUNK] for i in range(0, len(ids), CHUNK)):
        keys.update(connection.execute(select(t.entities.c.id, t.entities.c.key).where(t.entities.c.id.in_(chunk))).all())
    L, E = t.listings.c, t.listing_evidence.c
    for move in moves:
        for end in ("from", "to"):
            move[end]["entity"] = keys.get(move[end].pop("entity_id"))
        old = move["from"]["entity"]
        move["listings"] = [{"id": listing_id, "list": list_code, "state": state} for listing_id, list_code, state in
                            connection.execute(
                                select(L.id, L.list_code, L.state).distinct()
                                .join(t.listing_evidence, E.listing_id == L.id)
                                .join(t.entities, t.entities.c.id == L.entity_id)
                                .where(E.record_id == move.pop("record_id"), t.entities.c.key == old,
                                       L.state.in_(ACTIVE)).order_by(L.id))] if old else []


def legal_representative(resolver: Resolver, category: str, fields: dict[str, Any]) -> str | None:
    """A record's legal representative, from the field its category names in the pack."""
    field = resolver.rep_fields.get(category)
    return fields.get(field) if field else None


def training_pairs(index: EntityIndex, resolver: Resolver, rows: Iterable[Any]
                   ) -> tuple[list[dict[str, str | None]], list[bool | None], list[int], set[int]]:
    """Blocked pairs of records and entities with their comparison levels; labels from judgements
    and from verified codes whose entity's name is near the record's (`code_label`).

    Returns the pairs, their labels (True/False, None unknown), per pair the index of its record
    (to take each record's best pair when setting the threshold), and the records labelled by
    their code.

    A record labelled by its code is compared only with its code's entity: its other candidates
    are labelled non-matches, and such a pair adds nothing to m's counts (its weight in them is
    0) nor to the prior's share of matches, and no record linked by its code sets the threshold.
    Such a pair only counts (the prior's denominator, `trained_on`), so its levels are left
    empty (`{}`), not computed: the model is the same, bit for bit, as with every pair compared.
    """
    pairs: list[dict[str, str | None]] = []
    labels: list[bool | None] = []
    owners: list[int] = []
    coded: set[int] = set()
    for number, row in enumerate(rows):
        person = row.subject_kind == "natural_person" or row.subject_scheme in PERSON_SCHEMES
        if person or not row.subject_name or row.category in resolver.registrations:
            continue
        fields = row.fields if isinstance(row.fields, dict) else orjson.loads(row.fields)
        code = None if row.subject_code_verified else row.subject_code
        subject = Subject(index.analyser.parts(row.subject_name), code,
                          legal_representative(resolver, row.category, fields), False, fields.get("address"))
        judged = resolver.matches.get(row.record_key)
        ruled_out = resolver.ruled_out.get(row.record_key, set())
        candidates = index.candidates(subject)
        label_levels = None
        if judged is None and row.subject_code_verified:
            labelled = code_label(index, subject, row.subject_scheme, row.subject_code, ruled_out)
            if labelled is not None:
                judged, label_levels = labelled
                coded.add(number)
                if judged not in candidates:
                    candidates.append(judged)
        for entity_id in candidates:
            profile = index.profiles[entity_id]
            if label_levels is not None:  # labelled by its code: see the docstring
                if entity_id == judged:
                    pairs.append(label_levels)
                elif next(comparable_names(subject.name, profile), None) is not None:
                    pairs.append({})
                else:
                    continue
            else:
                compared = compare(subject, profile)
                if compared is None:
                    continue
                pairs.append(compared[0])
            labels.append(True if judged == entity_id else False if judged is not None or entity_id in ruled_out
                          else None)
            owners.append(number)
    return pairs, labels, owners, coded


def code_label(index: EntityIndex, subject: Subject, scheme: str, code: str, ruled_out: set[int]
               ) -> tuple[int, dict[str, str | None]] | None:
    """The entity a record's verified code names, when the record's name is near one of its names,
    and the pair's levels: a label as good as a judgement (the record is about that firm, and
    about no other candidate).
    A code whose entity's names are all far from the record's is no label: it may be another
    firm's code copied from the wrong row."""
    holder = index.by_identifier.get((scheme, code))
    if holder is None or holder in ruled_out or index.profiles[holder].person:
        return None
    compared = compare(subject, index.profiles[holder])
    if compared is None or compared[0]["name"] not in LABELLING_NAME_LEVELS:
        return None
    return holder, compared[0]


def training_sample_ids(connection: Connection) -> tuple[int, list[int]]:
    """The number of records, and the ids of an even sample of about TRAINING_RECORDS of them:
    every step-th id in id order, numbered by the database (fetching every id cost more than
    EM at a million records)."""
    r = t.records.c
    records = connection.execute(select(func.count()).select_from(t.records)).scalar_one()
    step = max(1, records // TRAINING_RECORDS)
    numbered = select(r.id, func.row_number().over(order_by=r.id).label("number")).subquery()
    chosen = connection.execute(select(numbered.c.id).where((numbered.c.number - 1) % step == 0)
                                .order_by(numbered.c.id)).scalars().all()
    return records, list(chosen)


def train(connection: Connection, pack: Pack, index: EntityIndex, matches: dict[str, int],
          ruled_out: dict[str, set[int]]) -> tuple[LinkageModel, int | None]:
    """Learn the weights from the store's records and register, save them with the threshold.

    u: comparison levels of random record-entity pairs. m: counted on the labelled matches
    among the blocked pairs of (an even sample of) the records, a judgement or a verified code
    whose entity has a near name (`code_label`: the record's other candidates are non-matches),
    except those read from the name (READ_FROM_THE_NAME), which keep their starting values;
    with fewer than MIN_CODE_LABELS such matches, EM over the blocked pairs, labels held. The
    prior: EM with m and u held, beside the labelled records' own share of matches in `notes`.
    Threshold: the lowest match probability whose links the model itself estimates
    `target_precision` precise, over the records a score decides (not those linked by code).
    Returns the model and its id (None when the store is too small to train on: starting weights).
    """
    r = t.records.c
    # the even sample's ids first: only its rows (and their fields) are read, not the whole store's
    records, chosen = training_sample_ids(connection)
    sample = []
    for at in range(0, len(chosen), CHUNK):
        sample += connection.execute(select(r.record_key, r.subject_name, r.subject_kind, r.subject_code,
                                            r.subject_scheme, r.subject_code_verified, r.category, r.fields)
                                     .where(r.id.in_(chosen[at:at + CHUNK])).order_by(r.id)).all()
    resolver = Resolver(pack, index, matches, ruled_out)
    pairs, labels, owners, coded = training_pairs(index, resolver, sample)
    if len(pairs) < MIN_TRAINING_PAIRS:
        return STARTING_MODEL, None
    chooser = random.Random(records)
    entity_ids = [e for e, p in index.profiles.items() if not p.person and p.names]
    subjects = [row for row in sample if row.subject_name and row.subject_kind != "natural_person"]
    randoms = []
    for _ in range(U_SAMPLES if entity_ids and subjects else 0):
        row = chooser.choice(subjects)
        fields = row.fields if isinstance(row.fields, dict) else orjson.loads(row.fields)
        subject = Subject(index.analyser.parts(row.subject_name), None,
                          legal_representative(resolver, row.category, fields), False, fields.get("address"))
        compared = compare(subject, index.profiles[chooser.choice(entity_ids)])
        if compared is not None:
            randoms.append(compared[0])
    comparisons = {c: list(levels) for c, levels in COMPARISONS.items()}
    patterns = level_patterns(pairs)
    start = LinkageModel(STARTING_MODEL.m, estimate_u(randoms, comparisons), STARTING_MODEL.prior)
    # a code one typo away is not counted on random pairs (it is almost never there): its u stays
    start.u["code"] = dict(STARTING_MODEL.u["code"])
    matched_by_code = sum(1 for label, owner in zip(labels, owners) if label and owner in coded)
    if matched_by_code >= MIN_CODE_LABELS:
        # EM alone over these pairs settles on names sharing an industry word ("fair") as the
        # matches (prior ~0.2); labelled matches say what a match looks like. But a record
        # quoting its code copies the name as registered, so what is read from the name (the
        # name itself, its legal form, its place) never differs on them: counted there, a
        # homophone, a short name or a place read differently would weigh as if impossible and
        # screening would answer `allow` for them; EM moving those over the other records
        # settles on "fair" names again. They keep their starting m. m of the legal
        # representative and address: counted on the labelled matches. EM moves the prior alone.
        learned = m_from_labels(pairs, labels, STARTING_MODEL.m, comparisons)
        for comparison in READ_FROM_THE_NAME:
            learned[comparison] = dict(STARTING_MODEL.m[comparison])
        model = LinkageModel(learned, start.u, STARTING_MODEL.prior)
        model.prior = estimate_prior(pairs, labels, model, patterns)
        method = "m from verified-code labels (name, legal form, place: starting values), prior by EM"
        model.trained_on, model.labelled = len(pairs), sum(label is not None for label in labels)
    else:
        model = estimate(pairs, labels, start, comparisons)
        method = "EM"
    best: dict[int, float] = {}
    for probability, owner in zip(model.probabilities(pairs, patterns), owners):
        if owner in coded:
            continue  # linked by its code, never by a score: not among the links the threshold governs
        best[owner] = max(best.get(owner, 0.0), probability)
    # no record decided by a score to measure it on: no learned threshold, the pack's floor alone
    model.threshold = round(threshold_for_precision(best.values(), pack.resolution.target_precision), 6) \
        if best else None
    labelled = [label for label in labels if label is not None]
    model.notes = {"target_precision": pack.resolution.target_precision, "records": len(sample),
                   "random_pairs": len(randoms), "method": method, "code_labelled_records": len(coded),
                   # the prior checked against the labelled records' own share of matches
                   "labelled_match_share": round(sum(labelled) / len(labelled), 6) if labelled else None}
    now = dt.datetime.now(dt.timezone.utc)
    model_id = connection.execute(t.resolution_models.insert().values(
        purpose=MODEL_PURPOSE, model=model.as_json(), trained_on=len(pairs), created_at=now)
        .returning(t.resolution_models.c.id)).scalar_one()
    return model, model_id


def _count(result: ResolveResult, decision: Decision) -> None:
    if decision.state == "review":
        result.in_review += 1
    elif decision.state == "new":
        result.new_entities += 1
    else:
        attribute = {"identifier": "by_identifier", "exact_name": "by_exact_name",
                     "score": "by_score", "judgement": "by_judgement"}[decision.method]
        setattr(result, attribute, getattr(result, attribute) + 1)


class NewEntities:
    """The entities a run makes for subjects that matched nothing, without a round trip each.

    Each one gets its id at once (`store.bulk.Ids`: PostgreSQL's sequence, a few hundred at a
    time; on SQLite, which has one writer, the next ids past the highest, once the run holds the
    write lock) and goes into the in-memory index at once, so that a later record of the same
    run links to it by name or code exactly as before; the rows (entity, identifier, name) are
    written in bulk before the links of each chunk (`flush`).
    """

    RESERVE = 500

    def __init__(self, connection: Connection, index: EntityIndex, now: dt.datetime, salt: str,
                 primary: str | None):
        self.connection, self.index, self.salt = connection, index, salt
        self.primary = primary  # the pack's scheme whose valid code keys an entity (cn: the USCC)
        self.by_key = {key: entity_id for entity_id, key in index.key.items()}
        self.at = render_value(connection, t.entities.c.created_at, now)
        self.ids = Ids(connection, t.entities, self.RESERVE)
        self.entities: list[tuple] = []
        self.identifiers: list[tuple] = []
        self.names: list[tuple] = []

    def make(self, row: Any) -> int:
        """An entity for a subject that matched nothing; later records of it link by name or code.

        A person without a valid ID number gets an entity of its own for each record: people are
        never joined by name. A code that a judgement ruled out for its holder is not attached
        to the new entity (it stays with its holder).
        """
        index = self.index
        verified = bool(row.subject_code_verified) and row.subject_code is not None
        person = row.subject_kind == "natural_person" or row.subject_scheme in PERSON_SCHEMES
        held = verified and (row.subject_scheme, row.subject_code) in index.by_identifier
        if person:  # a salted key: it never reveals (nor lets anyone recompute) the ID number
            key = opaque_key("P", f"{self.salt}:{row.subject_code if verified and not held else row.record_key}")
        elif held:
            key = opaque_key("X", f"{self.salt}:ruled-out:{row.record_key}")
        else:
            key = entity_key_for(row.subject_scheme, row.subject_code if verified else None, verified,
                                 row.subject_name or row.record_key, self.primary, self.salt)
        existing = self.by_key.get(key)
        if existing is not None:
            return existing
        entity_id = self.ids.take()
        self.by_key[key] = entity_id
        self.entities.append((entity_id, key, "natural_person" if person else (row.subject_kind or "enterprise"),
                              verified and not held and row.subject_scheme == self.primary, "resolution", self.at,
                              self.at))
        identifiers = [(row.subject_scheme, row.subject_code, True)] if verified and not held else []
        if identifiers:
            self.identifiers.append((entity_id, row.subject_scheme, row.subject_code, True))
        if row.subject_name:
            self.names.append((entity_id, row.subject_name, normalise_name(row.subject_name), True))
        unverified = ([(row.subject_scheme or "unknown", row.subject_code, False)]
                      if row.subject_code and not verified else [])
        # a person's name too, as the next run's index reads it from the store: a later record of the run
        # quoting the same ID number under another name is checked against it (`_id_of_another_person`)
        index.add(entity_id, key, "resolution", person, [row.subject_name] if row.subject_name else [],
                  identifiers + unverified, None)
        return entity_id

    def flush(self) -> None:
        """Write the entities made since the last flush (before any link names them)."""
        if not self.entities:
            return
        c = self.connection
        insert_rows(c, t.entities, ENTITY_COLUMNS, self.entities)
        if self.identifiers:
            insert_rows(c, t.entity_identifiers, IDENTIFIER_COLUMNS, self.identifiers)
        if self.names:
            insert_rows(c, t.entity_names, NAME_COLUMNS, self.names)
        self.entities, self.identifiers, self.names = [], [], []


# -- judgements ------------------------------------------------------------------------------

class ResolveError(Exception):
    """A resolution command that cannot be carried out; the message says why."""


def _entity_id(connection: Connection, key: str) -> int:
    found = connection.execute(select(t.entities.c.id).where(t.entities.c.key == key)).scalar()
    if found is None:
        raise ResolveError(f"no entity {key!r}")
    return found


def review_queue(engine: Engine, authority: str | None = None) -> list[dict[str, Any]]:
    """Records waiting for a human; with `authority`, only that authority's own records (an operator
    reviews the subjects of its own records, never another authority's)."""
    r, link = t.records.c, t.record_links.c
    query = (select(r.id, r.record_key, r.subject_name, r.subject_code, link.score, link.explanation)
             .join(t.record_links, link.record_id == r.id).where(link.state == "review"))
    if authority is not None:
        query = query.where(r.authority == authority)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(link.score.desc(), r.id)).all()
        explanations = [row.explanation if isinstance(row.explanation, dict) else orjson.loads(row.explanation)
                        for row in rows]
        # the candidates' keys only: the whole register's would be read for every look at the queue
        shown = sorted({c["entity_id"] for e in explanations for c in e.get("candidates", [])
                        if c.get("entity_id") is not None})
        keys = dict(select_in(connection, t.entities, ("id", "key"), "id", shown))
    queue = []
    for row, explanation in zip(rows, explanations):
        candidates = [{**c, "entity": keys.get(c["entity_id"])} for c in explanation.get("candidates", [])]
        queue.append({"id": row.id, "record_key": row.record_key, "subject_name": row.subject_name,
                      "subject_code": row.subject_code, "score": row.score, "reason": explanation.get("reason"),
                      "candidates": candidates})
    return queue


def judge(engine: Engine, pack: Pack, record_id: int, verdict: str, *, entity_key: str | None,
          actor: str, reason: str | None, authority: str | None = None) -> dict[str, Any]:
    """Record a human decision on a record's subject, then re-resolve that record.

    accept: the record is about `entity_key` (default: the top candidate). reject: it is
    not about that candidate (default: every candidate shown). The judgement is kept and
    wins over the scorer on every later run. With `authority` (a console operator), only
    that authority's own records may be judged.
    """
    if verdict not in ("match", "no_match"):
        raise ResolveError(f"unknown verdict {verdict!r}")
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as connection:
        row = connection.execute(select(t.records.c.record_key, t.records.c.authority, t.record_links.c.entity_id,
                                        t.record_links.c.explanation, t.record_links.c.state)
                                 .join(t.record_links, t.record_links.c.record_id == t.records.c.id)
                                 .where(t.records.c.id == record_id)).first()
        if row is None or (authority is not None and row.authority != authority):
            raise ResolveError(f"no resolved record {record_id}" + (f" of {authority}" if authority else
                                                                      "; run `xinyong resolve` first"))
        explanation = row.explanation if isinstance(row.explanation, dict) else orjson.loads(row.explanation)
        shown = [c["entity_id"] for c in explanation.get("candidates", [])]
        if entity_key:
            targets = [_entity_id(connection, entity_key)]
        elif verdict == "match":
            if not shown:
                raise ResolveError(f"record {record_id} has no candidate: name the entity with --entity")
            targets = shown[:1]
        else:
            targets = shown or ([row.entity_id] if row.entity_id else [])
            if not targets:
                raise ResolveError(f"record {record_id} has no candidate or link to reject")
        previous = row.entity_id
        for entity_id in targets:
            connection.execute(t.judgements.insert().values(
                record_key=row.record_key, entity_id=entity_id, verdict=verdict, actor=actor,
                reason=reason, at=now))
            append_event(connection, actor=actor, action=f"judgement.{verdict}", object_type="record",
                         object_id=row.record_key, reason=reason,
                         payload={"record_id": record_id, "entity_id": entity_id, "previous_entity_id": previous})
        # every version of the record is re-resolved with the judgement in force
        versions = list(connection.execute(select(t.records.c.id).join(
            t.record_links, t.record_links.c.record_id == t.records.c.id)
            .where(t.records.c.record_key == row.record_key)).scalars())
        connection.execute(delete(t.record_links).where(t.record_links.c.record_id.in_(versions)))
        audit_links_removed(connection, sorted(versions), actor, f"judgement.{verdict}")
    result = resolve(engine, pack, actor=actor)
    with engine.begin() as connection:
        state, entity_id = connection.execute(select(t.record_links.c.state, t.record_links.c.entity_id)
                                              .where(t.record_links.c.record_id == record_id)).one()
        away = {previous} - {None, entity_id}
        if entity_id is not None:
            # the record now names one entity: a listing of any other built on it lost its evidence,
            # though its link had already left that entity (a name-only court record's own entity,
            # the record in review since a registered firm of that name arrived, accepted for the firm)
            away |= _listing_holders(connection, row.record_key) - {entity_id}
        keys = dict(connection.execute(select(t.entities.c.id, t.entities.c.key)
                                       .where(t.entities.c.id.in_([entity_id or 0, *away]))).all())
        withdrawn, settled = [], []
        for old in sorted(away):
            withdrawn += _withdraw_listings_of(connection, pack, row.record_key, old, actor, reason)
            settled += _uphold_objections_of(connection, pack, row.record_key, keys[old], keys.get(entity_id),
                                             _listings_built_on(connection, row.record_key, old),
                                             row.authority, actor)
    return {"record_id": record_id, "record_key": row.record_key, "verdict": verdict, "state": state,
            "entity": keys.get(entity_id), "moved_from": keys.get(previous) if previous != entity_id else None,
            "re_resolved": result.records, "listings_withdrawn": withdrawn,
            **({"objections_upheld": settled} if settled else {})}


def _withdraw_listings_of(connection: Connection, pack: Pack, record_key: str, entity_id: int, actor: str,
                          reason: str | None) -> list[int]:
    """Listings of the entity a record was moved away from, built on that record, end
    (`withdrawn_moved`: the record spends nothing, as it was never about that entity).

    The entity it moved to is re-evaluated by the next `xinyong evaluate` (its records
    changed), which proposes anew with due process if the rules say so.
    """
    listing_ids = _listings_built_on(connection, record_key, entity_id, ACTIVE)
    today = pack_today(pack)
    for listing_id in listing_ids:
        transition(connection, pack, listing_id, "withdrawn", today, actor=actor,
                   reason=reason or f"evidence record {record_key} is not about this entity (judgement)",
                   changes={"ended_on": today, "end_reason": WITHDRAWN_MOVED})
    return listing_ids


def _listing_holders(connection: Connection, record_key: str) -> set[int]:
    """The entities with an active listing citing a version of the record."""
    L, E, r = t.listings.c, t.listing_evidence.c, t.records.c
    return set(connection.execute(select(L.entity_id).distinct().join(t.listing_evidence, E.listing_id == L.id)
                                  .join(t.records, r.id == E.record_id)
                                  .where(r.record_key == record_key, L.state.in_(ACTIVE))).scalars())


def _listings_built_on(connection: Connection, record_key: str, entity_id: int,
                       states: tuple[str, ...] | None = None) -> list[int]:
    """The entity's listings citing a version of the record (in `states`, if given)."""
    L, E, r = t.listings.c, t.listing_evidence.c, t.records.c
    query = (select(L.id).distinct().join(t.listing_evidence, E.listing_id == L.id).join(t.records, r.id == E.record_id)
             .where(r.record_key == record_key, L.entity_id == entity_id).order_by(L.id))
    if states is not None:
        query = query.where(L.state.in_(states))
    return list(connection.execute(query).scalars())


def _uphold_objections_of(connection: Connection, pack: Pack, record_key: str, entity_key: str,
                          moved_to: str | None, listing_ids: list[int], authority: str, actor: str) -> list[int]:
    """The open objections of the subject a record was moved away from, to that record (its claim,
    "not ours", now holds) or to its listings built on it: upheld by the judgement, dated the
    pack's today. The record is not revoked, as upholding an objection to a record otherwise does: it
    stands, about the entity it now belongs to. Left open, 中国平安's objection stayed in its portal as
    pending for good, and a reviewer upholding it later would have revoked the penalty, now 小米's.
    A listing that ended under review while it was open is undone, as `objection decide` does."""
    O = t.objections.c
    about = or_(O.record_key == record_key, O.listing_id.in_(listing_ids)) if listing_ids else O.record_key == record_key
    objections = connection.execute(select(t.objections).where(
        about, O.state == "open", O.filed_by == subject_actor(entity_key)).order_by(O.id)).mappings().all()
    today = pack_today(pack)
    because = f"evidence record {record_key} is not about {entity_key} (judgement)"
    for objection in objections:
        connection.execute(update(t.objections).where(O.id == objection["id"]).values(
            state="upheld", decided_on=today, decided_by=actor, decision_reason=because, authority=authority))
        append_event(connection, actor=actor, action="objection.upheld", object_type="objection",
                     object_id=str(objection["id"]), reason=because,
                     payload={"on": today.isoformat(), "authority": authority, "record": record_key,
                              "moved_to": moved_to})
        # as a decision upholding it would: a listing that ended under review meanwhile bound on no day
        undo_ended_under_review(connection, objection, today, Actor(actor, because), authority)
    return [objection["id"] for objection in objections]


# -- evaluation and export -----------------------------------------------------------------------

def current_links(connection: Connection) -> dict[str, tuple[str, str | None, str | None, float | None]]:
    """record_key -> (state, entity key, entity origin, score) of its newest version."""
    r, link, e = t.records.c, t.record_links.c, t.entities.c
    rows = connection.execute(
        select(r.record_key, r.version, link.state, link.method, e.key, e.origin, link.score)
        .join(t.record_links, link.record_id == r.id)
        .outerjoin(t.entities, e.id == link.entity_id)
        .order_by(r.record_key, r.version))
    return {row.record_key: (row.state, row.key, row.origin, row.score, row.method) for row in rows}


def evaluate(engine: Engine, truth_path: Path) -> dict[str, Any]:
    """Precision, recall and F1 of record-to-entity links against a ground-truth file."""
    with engine.connect() as connection:
        links = current_links(connection)
    tp = fp = fn = missing = 0
    with truth_path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"record_key", "entity_key"} <= set(reader.fieldnames):
            raise ResolveError(f"{truth_path}: needs columns record_key,entity_key")
        for row in reader:
            truth = (row["entity_key"] or "").strip() or None
            link = links.get(row["record_key"])
            if link is None:
                missing += 1
                fn += truth is not None
                continue
            state, key, origin = link[0], link[1], link[2]
            if state == "linked" and origin == "register":
                if key == truth:
                    tp += 1
                else:
                    fp += 1
            elif truth is not None:
                fn += 1
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    states = [v for v in links.values()]
    return {
        "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
        "true_positives": tp, "false_positives": fp, "false_negatives": fn,
        "auto_linked": sum(1 for s in states if s[0] == "linked" and s[2] == "register"),
        "in_review": sum(1 for s in states if s[0] == "review"),
        "new_entities": sum(1 for s in states if s[2] == "resolution"),
        "truth_records_not_in_store": missing,
    }


def export_links(engine: Engine, output: Path) -> int:
    with engine.connect() as connection:
        links = current_links(connection)
    with private_file(output, "w", encoding="utf-8", newline="") as handle:  # record keys end with ID numbers
        writer = SafeWriter(handle)
        writer.writerow(["record_key", "entity_key", "method", "score"])
        for record_key, (state, key, _origin, link_score, method) in sorted(links.items()):
            writer.writerow([record_key, key if state != "review" else "", method,
                             "" if link_score is None else link_score])
    return len(links)

