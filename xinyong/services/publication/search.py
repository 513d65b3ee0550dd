"""Public search: by name (current or former), by code, or by legal representative's name.

What the public may find: every market entity, and a natural person only while a listing
of theirs is in force (a public list names them; nothing else makes a person public). A
person's ID number is never a search term: the ID number would travel in a URL, and the
search would confirm who is on record. Plain LIKE queries on the normalised names: enough at
the scale of a portal page; national scale belongs to a search engine behind the same
function.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, or_, select

from xinyong.domain.decisions import IN_FORCE
from xinyong.domain.identifiers import normalise_code
from xinyong.domain.names import normalise_name
from xinyong.domain.privacy import PersonNumbers, could_be_person_id, mask_identifier, mask_text
from xinyong.services.resolution.resolve import PERSON_SCHEMES
from xinyong.store import tables as t

MAX_CANDIDATES = 1000  # per kind of match: a search is not an export
PERSON = "natural_person"


class PersonIdQuery(Exception):
    """A person's ID number was typed as a search term."""


@dataclass
class SearchPage:
    query: str
    total: int
    page: int
    page_size: int
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def in_force_clause(day: dt.date) -> tuple[Any, ...]:
    """`domain.decisions.in_force` in SQL, on a listing's current state."""
    L = t.listings.c
    return (L.state.in_(IN_FORCE), L.effective_from <= day, or_(L.effective_to.is_(None), L.effective_to > day))


def public_persons(connection: Any, today: dt.date, entity_ids: set[int] | None = None) -> set[int]:
    """Natural persons with a listing in force today: the only persons a public page shows."""
    L, e = t.listings.c, t.entities.c
    query = (select(L.entity_id).join(t.entities, e.id == L.entity_id)
             .where(e.kind == PERSON, *in_force_clause(today)))
    if entity_ids is not None:
        query = query.where(L.entity_id.in_(sorted(entity_ids)))
    return {row[0] for row in connection.execute(query)}


def search(engine: Engine, query: str, today: dt.date, *, page: int = 1, page_size: int = 20,
           person_schemes: frozenset[str] = PERSON_SCHEMES,
           person_numbers: PersonNumbers | None = None) -> SearchPage:
    """Entities by code, name or legal representative; never by a person's number (`person_schemes`,
    the pack's; `person_numbers`, its own schemes' numbers written in a name): the results would confirm it."""
    text = " ".join(query.split())[:100]
    if not text:
        return SearchPage(text, 0, page, page_size)
    code = normalise_code(text)
    if could_be_person_id(code):  # the whole number, or its beginning: a prefix search returns the rest
        raise PersonIdQuery(text)
    e, n, i, rel = t.entities.c, t.entity_names.c, t.entity_identifiers.c, t.entity_relations.c
    found: dict[int, tuple[int, str]] = {}  # entity id -> (rank, how it matched)

    def add(ids: Any, rank: int, how: str) -> None:
        for entity_id in ids:
            if entity_id not in found or found[entity_id][0] > rank:
                found[entity_id] = (rank, how)

    with engine.connect() as c:
        if len(code) >= 6 and code.isalnum():
            add(c.execute(select(e.id).where(e.key == code)).scalars(), 0, "code")
            not_persons = i.scheme.notin_(sorted(person_schemes))
            add(c.execute(select(i.entity_id).where(i.value == code, not_persons)).scalars(),
                0, "code")
            if len(code) >= 8:
                add(c.execute(select(i.entity_id).where(i.value.like(code + "%"),
                                                        not_persons)
                              .limit(MAX_CANDIDATES)).scalars(), 1, "code")
        norm = normalise_name(text)
        if norm:
            names = select(n.entity_id, n.name, e.kind).join(t.entities, e.id == n.entity_id)
            add(_as_shown(c.execute(names.where(n.normalised == norm, n.current)), norm, person_numbers), 0, "name")
            add(_as_shown(c.execute(names.where(n.normalised == norm, ~n.current)), norm, person_numbers), 1,
                "former_name")
            add(_as_shown(c.execute(names.where(n.normalised.like(_like(norm), escape="\\"), n.current)
                                    .limit(MAX_CANDIDATES)), norm, person_numbers), 2, "name")
            add(_as_shown(c.execute(names.where(n.normalised.like(_like(norm), escape="\\"), ~n.current)
                                    .limit(MAX_CANDIDATES)), norm, person_numbers), 3, "former_name")
        if len(text) >= 2:
            reps = c.execute(select(rel.entity_id, rel.person_name)
                             .where(rel.relation == "legal_representative", rel.valid_to.is_(None),
                                    or_(rel.person_name == text, rel.person_name.like(_like(text)[1:], escape="\\")))
                             .limit(MAX_CANDIDATES))
            add((entity_id for entity_id, name in reps if mask_text(name, person_numbers).startswith(text)), 2,
                "legal_representative")
        if not found:
            return SearchPage(text, 0, page, page_size)
        kinds = {}
        for chunk in _chunks(sorted(found), 5000):
            kinds.update(dict(c.execute(select(e.id, e.kind).where(e.id.in_(chunk))).all()))
        persons = {entity_id for entity_id, kind in kinds.items() if kind == PERSON}
        visible_persons = public_persons(c, today, persons) if persons else set()
        ids = [entity_id for entity_id in found if kinds.get(entity_id) != PERSON or entity_id in visible_persons]
        names = {}
        for chunk in _chunks(ids, 5000):
            names.update(dict(c.execute(select(n.entity_id, n.name).where(n.entity_id.in_(chunk), n.current)).all()))
        ids.sort(key=lambda entity_id: (found[entity_id][0], names.get(entity_id) or "", entity_id))
        start = (page - 1) * page_size
        shown = ids[start:start + page_size]
        items = _details(c, shown, found, names, today, person_schemes, person_numbers)
    return SearchPage(text, len(ids), page, page_size, items)


def _as_shown(rows: Any, norm: str, person_numbers: PersonNumbers | None = None) -> Iterator[int]:
    """The entities of (entity id, name, kind) rows whose name holds `norm`, a person's as public pages
    show it. A person's name cell may hold what they mask (张建国（身份证号：…，住…）): a match in that
    part would confirm an ID number's birth date or an address digit by digit, though the results
    show it masked. A firm's name is found as registered, but for a number of the pack's own schemes
    of persons' numbers (`person_numbers`) in it: a person named only by one is no person to resolution."""
    for entity_id, name, kind in rows:
        if kind != PERSON:
            if person_numbers is None or person_numbers.mask(name) == name \
                    or norm in normalise_name(person_numbers.mask(name)):
                yield entity_id
            continue
        shown = mask_text(name, person_numbers)
        if shown == name or norm in normalise_name(shown):
            yield entity_id


def _details(c: Any, ids: list[int], found: dict[int, tuple[int, str]], names: dict[int, str],
             today: dt.date, person_schemes: frozenset[str],
             person_numbers: PersonNumbers | None) -> list[dict[str, Any]]:
    if not ids:
        return []
    e, n, i, rel, L = t.entities.c, t.entity_names.c, t.entity_identifiers.c, t.entity_relations.c, t.listings.c
    rows = {r.id: r for r in c.execute(select(e.id, e.key, e.kind, e.region, e.status).where(e.id.in_(ids)))}
    former: dict[int, list[str]] = {}
    for entity_id, name in c.execute(select(n.entity_id, n.name).where(n.entity_id.in_(ids), ~n.current)
                                     .order_by(n.id)):
        former.setdefault(entity_id, []).append(name)
    codes: dict[int, list[tuple[str, str]]] = {}
    for entity_id, scheme, value in c.execute(select(i.entity_id, i.scheme, i.value)
                                              .where(i.entity_id.in_(ids), i.scheme.notin_(sorted(person_schemes)))
                                              .order_by(i.scheme)):
        codes.setdefault(entity_id, []).append((scheme, value))
    reps = dict(c.execute(select(rel.entity_id, rel.person_name)
                          .where(rel.entity_id.in_(ids), rel.relation == "legal_representative",
                                 rel.valid_to.is_(None))).all())
    lists: dict[int, list[str]] = {}
    for entity_id, code in c.execute(select(L.entity_id, L.list_code).distinct()  # one badge per list
                                     .where(L.entity_id.in_(ids), *in_force_clause(today))
                                     .order_by(L.entity_id, L.list_code)):
        lists.setdefault(entity_id, []).append(code)
    out = []
    for entity_id in ids:
        row = rows[entity_id]
        name, rep = names.get(entity_id), reps.get(entity_id) if row.kind != PERSON else None
        out.append({"key": row.key, "kind": row.kind, "region": row.region, "status": row.status,
                    "name": mask_text(name, person_numbers) if name else name,
                    "former_names": [mask_text(n, person_numbers) for n in former.get(entity_id, [])],
                    # the USCC first: the legacy codes it replaced follow
                    "codes": [{"scheme": s, "value": mask_identifier(s, v, person_schemes)} for s, v in
                              sorted(codes.get(entity_id, []), key=lambda code: code[0] != "uscc")],
                    "legal_representative": mask_text(rep, person_numbers) if rep else rep,
                    "lists": lists.get(entity_id, []), "matched": found[entity_id][1]})
    return out


def _chunks(items: list[int], size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]

