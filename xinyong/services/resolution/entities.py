"""An entity's file: identity, names, identifiers, relations and linked records with how."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import orjson
from sqlalchemy import Engine, select

from xinyong.domain.decisions import in_force
from xinyong.domain.identifiers import is_valid_resident_id, mask_person_id, mask_record_key, normalise_code
from xinyong.domain.listings import UNDONE
from xinyong.domain.pack import Classification, Pack
from xinyong.domain.privacy import mask_identifier, mask_public, may_be_person_id
from xinyong.domain.records import is_published, publicity_end_in_tier, publicity_tier, superseded_writings
from xinyong.domain.relations import classify_party
from xinyong.services.resolution.resolve import PERSON_SCHEMES
from xinyong.store import tables as t


class EntityNotFound(Exception):
    pass


def find_entity_id(connection, code: str, not_by: frozenset[str] = frozenset()) -> int | None:
    """By entity key, else by any identifier (normalised as codes are) except those of the schemes
    `not_by` (persons' numbers, for the public: finding an entity by one would confirm it)."""
    if "\x00" in code:  # names nothing, and PostgreSQL cannot even compare it
        return None
    found = connection.execute(select(t.entities.c.id).where(t.entities.c.key == code)).scalar()
    if found is None:
        i = t.entity_identifiers.c
        query = select(i.entity_id).where(i.value == normalise_code(code))
        if not_by:
            query = query.where(i.scheme.notin_(sorted(not_by)))
        found = connection.execute(query).scalar()
    return found


def entity_file(engine: Engine, code: str, person_schemes: frozenset[str] = PERSON_SCHEMES, *,
                public: bool = False) -> dict[str, Any]:
    """An entity's identity, names, relations and records, its identifiers of persons' schemes
    (`person_schemes`, the pack's) masked. `public`: never found by a person's number."""
    with engine.connect() as c:
        entity_id = find_entity_id(c, code, person_schemes if public else frozenset())
        if entity_id is None:
            raise EntityNotFound(f"no entity with key or identifier {code!r}")
        e = c.execute(select(t.entities).where(t.entities.c.id == entity_id)).mappings().one()
        n = t.entity_names.c
        names = [dict(r) for r in c.execute(select(n.name, n.current, n.valid_from, n.valid_to, n.language)
                                             .where(n.entity_id == entity_id)
                                             .order_by(n.current.desc(), n.id)).mappings()]
        i = t.entity_identifiers.c
        identifiers = [{"scheme": s, "value": mask_identifier(s, v, person_schemes), "verified": bool(ok)}
                       for s, v, ok in c.execute(select(i.scheme, i.value, i.verified).where(i.entity_id == entity_id)
                                                 .order_by(i.scheme, i.value))]  # the dump's order too
        rel = t.entity_relations.c
        relations = [{"relation": r.relation, "role": r.role, "person_name": r.person_name,
                      "person_id": mask_person_id(r.person_id) if r.person_id else None,
                      "other_name": r.other_name, "share": r.share,
                      "valid_from": r.valid_from, "valid_to": r.valid_to}
                     for r in c.execute(select(rel.relation, rel.role, rel.person_name, rel.person_id, rel.other_name,
                                               rel.share, rel.valid_from, rel.valid_to)
                                        .where(rel.entity_id == entity_id).order_by(rel.id))]
        r, link = t.records.c, t.record_links.c
        records = []
        for row in c.execute(select(r.record_key, r.version, r.category, r.authority, r.decision_date,
                                    r.subject_name, link.state, link.method, link.score, link.explanation)
                             .join(t.record_links, link.record_id == r.id)
                             .where(link.entity_id == entity_id).order_by(r.decision_date, r.record_key)):
            explanation = row.explanation if isinstance(row.explanation, dict) else orjson.loads(row.explanation)
            records.append({"record_key": mask_record_key(row.record_key), "version": row.version, "category": row.category,
                            "authority": row.authority, "decision_date": row.decision_date,
                            "subject_name": row.subject_name,
                            "link": {"state": row.state, "method": row.method, "score": row.score,
                                     "explanation": explanation}})
    current = next((x["name"] for x in names if x["current"]), names[0]["name"] if names else None)
    return {"key": e["key"], "kind": e["kind"], "origin": e["origin"], "verified": bool(e["verified"]),
            "status": e["status"], "region": e["region"], "address": e["address"],
            "established": e["established"], "name": current, "names": names,
            "identifiers": identifiers, "relations": relations, "records": records}


LINKED = ("linked", "new")  # a record's subject is this entity (found, or made for it)


def current_records(connection, entity_id: int) -> list[Any]:
    """The newest version of each record whose newest version is linked to the entity: what
    its file holds today. An older version linked here (before a correction moved the record
    to another subject) is not the entity's any more; a revoked record shows as revoked."""
    r, link = t.records.c, t.record_links.c
    keys = select(r.record_key).join(t.record_links, link.record_id == r.id).where(link.entity_id == entity_id)
    rows = connection.execute(select(r.id, r.record_key, r.version, r.category, r.authority, r.status,
                                     r.decision_date, r.fields, link.entity_id, link.state)
                              .outerjoin(t.record_links, link.record_id == r.id)
                              .where(r.record_key.in_(keys.scalar_subquery()))
                              .order_by(r.record_key, r.version.desc())).all()
    newest: dict[str, Any] = {}
    for row in rows:
        newest.setdefault(row.record_key, row)
    return [row for row in newest.values() if row.entity_id == entity_id and row.state in LINKED]


def public_categories(pack: Pack) -> set[str]:
    return {c.code for c in pack.categories if c.classification == Classification.public}


def refuse_person_id_in_url(code: str, engine: Engine | None = None) -> None:
    """A natural person is looked up by its opaque key: an ID number never goes in a URL, nor one
    mistyped or of the first generation (`may_be_person_id`: the pages show them masked, so finding
    an entity by one, such as an individual business registered by its owner's number, would
    confirm it). A firm's all-digit USCC can pass the ID-number check too (1 in 31 does): when it is
    exactly the key of an entity that is not a person (`engine` given), it names that firm and is
    not refused."""
    if may_be_person_id(code):
        if engine is not None and "\x00" not in code:
            with engine.connect() as c:
                kind = c.execute(select(t.entities.c.kind).where(t.entities.c.key == code)).scalar()
            if kind is not None and kind != "natural_person":
                return
        raise EntityNotFound("a person is looked up by its entity key, never by an ID number")


def public_file(engine: Engine, pack: Pack, code: str, today: dt.date, *, restricted: bool = False) -> dict[str, Any]:
    """What any public surface may show of an entity: identity, listings in force, the history
    of its listings that took effect (lists with `history_public`; never one withdrawn as
    undone), public records within their publicity period (unless a credit repair ended it)
    with their public fields only. A natural person is public
    only by its opaque key and while a listing of theirs is in force (else EntityNotFound).
    With `restricted` (a reader with that scope and a stated purpose), every record and
    field, and listings in any state."""
    from xinyong.services.lists.due_process import list_listings, listings_ended_publicity, publicity_ended

    data = entity_file(engine, code, pack.person_schemes, public=True)
    with engine.connect() as c:
        entity_id = find_entity_id(c, data["key"])
        rows = current_records(c, entity_id)
        if not restricted:  # one decision in two writings is one record (a restricted reader sees both)
            superseded = superseded_writings((row.id, row.record_key, row.category, row.status) for row in rows)
            rows = [row for row in rows if row.record_key not in superseded]
        repaired = publicity_ended(c, today)  # credit repair ended their publicity
        if not restricted:  # and the listings they were published with ended
            repaired = {**listings_ended_publicity(c, pack, today, entity_id), **repaired}
    listings, history = [], []
    for listing in list_listings(engine, entity=data["key"], as_of=today,
                                 evidence_categories=None if restricted else public_categories(pack)):
        spec = pack.list_(listing["list"])
        if listing["effective_from"] is not None and (restricted or (
                spec.history_public and listing["end_reason"] not in UNDONE)):
            history.append({"list": listing["list"], "list_title": spec.names.model_dump(),
                            "effective_from": listing["effective_from"], "effective_to": listing["effective_to"],
                            "ended_on": listing["ended_on"], "end_reason": listing["end_reason"]})
        if not restricted and not in_force(listing["state"], listing["effective_from"], listing["effective_to"],
                                           today):
            continue  # public only while in force
        listings.append({**{k: listing[k] for k in ("id", "list", "state", "effective_from", "effective_to",
                                                    "ended_on", "rule_version")},
                         "list_title": spec.names.model_dump(), "kind": spec.kind, "legal_basis": spec.legal_basis,
                         "evidence": listing["evidence"]})
    # a record's publicity tier may depend on the lists its subject is on today
    on_lists = {listing["list"] for listing in listings
                if in_force(listing["state"], listing["effective_from"], listing["effective_to"], today)}
    rows.sort(key=lambda row: (row.decision_date or dt.date.min, row.record_key), reverse=True)
    records = [view for view in (record_view(pack, row, on_lists, today, repaired, restricted=restricted)
                                 for row in rows) if view is not None]
    person = data["kind"] == "natural_person"
    if person and not restricted:
        if data["key"] != code:
            raise EntityNotFound("a person is looked up by its entity key")
        if not listings:
            raise EntityNotFound("this person is on no public list")  # persons are public only while listed
    out = {k: data[k] for k in ("key", "kind", "verified", "status", "region", "established", "name", "names")}
    out["address"] = None if person else data["address"]
    out["identifiers"] = data["identifiers"]
    out["legal_representative"] = next((r["person_name"] for r in data["relations"]
                                        if r["relation"] == "legal_representative" and r["valid_to"] is None), None)
    with engine.connect() as c:
        out["ownership"] = ownership(c, pack, find_entity_id(c, code), today, restricted=restricted)
    out["listings"] = listings
    # every listing that took effect, newest first: listed -> removed, as a publicity system shows it
    out["listing_history"] = sorted(history, key=lambda item: (item["effective_from"], item["list"]), reverse=True)
    out["records"] = records
    if restricted:
        return out
    # Free text anywhere in the file (a court's obligation, a name cell) may hold an ID number,
    # a phone or an address; identifiers are masked by scheme above (a firm's 注册号 stays).
    identifiers = out.pop("identifiers")
    return {**mask_public(out, person_numbers=pack.person_numbers), "identifiers": identifiers}


def ownership(connection, pack: Pack, entity_id: int, today: dt.date, *, restricted: bool = False) -> dict[str, Any]:
    """The entity's ownership and control on `today`: who holds it (shareholders with their share,
    actual controller, legal representative, principal, key staff) and which firms it holds.

    A person is named where the pack gives a legal basis: the legal representative as the register
    publishes it, other persons when their record's category names `person_legal_basis`; else
    shown as "a natural person". An ID number never: `restricted` (an authority's console) adds it
    masked, with the relations that ended."""
    rel, e, n, r = t.entity_relations.c, t.entities.c, t.entity_names.c, t.records.c
    named = {c.code for c in pack.categories if c.relations is not None and c.person_legal_basis}
    held = rel.valid_from.is_(None) | (rel.valid_from <= today)
    open_ = rel.valid_to.is_(None) | (rel.valid_to > today)
    current_name = select(n.name).where(n.entity_id == e.id, n.current).limit(1).scalar_subquery()
    query = (select(rel.id, rel.relation, rel.role, rel.person_name, rel.person_id, rel.other_name, rel.share,
                    rel.valid_from, rel.valid_to, r.category, e.key, current_name.label("entity_name"))
             .outerjoin(t.records, r.id == rel.record_id).outerjoin(t.entities, e.id == rel.other_entity_id)
             .where(rel.entity_id == entity_id).order_by(rel.id))
    if not restricted:
        query = query.where(held, open_)
    parties = []
    for row in connection.execute(query):
        person = row.person_name is not None or row.person_id is not None
        shown = row.relation == "legal_representative" or row.category in named
        party = {"relation": row.relation, "role": row.role, "person": person,
                 "name": (row.person_name if shown or restricted else None) if person
                 else (row.entity_name or row.other_name),
                 "entity": row.key, "share": row.share, "valid_from": row.valid_from, "valid_to": row.valid_to}
        if restricted:
            party["id_number"] = mask_person_id(row.person_id) if row.person_id else None
        parties.append(party)
    firm_name = select(n.name).where(n.entity_id == rel.entity_id, n.current).limit(1).scalar_subquery()
    holds = (select(e.key, firm_name.label("name"), rel.role, rel.share, rel.valid_from, rel.valid_to)
             .join(t.entities, e.id == rel.entity_id)
             .where(rel.other_entity_id == entity_id).order_by(rel.id))
    if not restricted:
        holds = holds.where(held, open_)
    holdings = [{"entity": row.key, "name": row.name, "role": row.role, "share": row.share,
                 "valid_from": row.valid_from, "valid_to": row.valid_to} for row in connection.execute(holds)]
    return {"parties": parties, "holdings": holdings}
_FIELDS: dict[int, tuple[Pack, dict[str, tuple[dict[str, Any], frozenset[str], dict[str, Any]]]]] = {}


def _category_fields(pack: Pack, category: Any) -> tuple[dict[str, Any], frozenset[str], dict[str, Any]]:
    """A category's field types, public field names (`domain.records.public_fields`' rule) and
    title, once per pack and category: a dump asks for them per record."""
    kept = _FIELDS.get(id(pack))
    if kept is None or kept[0] is not pack:  # the pack itself is kept, so its id is not reused
        if len(_FIELDS) >= 8:  # a few packs live at once; tests make many
            _FIELDS.clear()
        kept = _FIELDS[id(pack)] = (pack, {})
    found = kept[1].get(category.code)
    if found is None:
        specs = pack.fields_of(category)
        found = kept[1][category.code] = ({f.name: f.type for f in specs},
                                          frozenset(f.name for f in specs
                                                    if f.classification == Classification.public),
                                          category.names.model_dump())
    return found


@functools.lru_cache(maxsize=1 << 18)
def _id_masked(value: str) -> str:
    """A field value that is a person's ID number, masked (cached: a dump meets the same values often)."""
    return mask_person_id(value) if is_valid_resident_id(normalise_code(value)) else value


def _unnamed_person_party(pack: Pack, category: Any, fields: dict[str, Any]) -> bool:
    """A relations record about a natural person (a shareholder, controller, key staff) in a category
    that names no legal basis for persons: the record is the person's (their name is its key and a
    field), so no public surface shows it; the ownership graph shows the relation unnamed. The party
    is read as registration reads it (`domain.relations.classify_party`)."""
    spec = category.relations
    if spec is None or category.person_legal_basis:
        return False

    def value(name: str | None) -> str | None:
        found = fields.get(name) if name else None
        return str(found) if found not in (None, "") else None

    return classify_party(str(fields.get(spec.party_field) or ""), value(spec.party_code_field),
                          value(spec.party_kind_field), pack.person_names).person


def record_view(pack: Pack, row: Any, on_lists: set[str], today: dt.date, repaired: dict[str, dt.date], *,
                restricted: bool = False) -> dict[str, Any] | None:
    """One record version as a surface shows it (before `mask_public`), or None when the public may
    not see it: a revoked version, a category that is not public, a record not published (a penalty
    that is only a warning), one past its publicity period or whose publicity a repair ended.
    `row` has record_key, version, category, authority, status, decision_date and fields; `on_lists`
    are the lists its subject is on today (a publicity tier may depend on them). The entity page and
    the open-data dump (`services.publication.opendata`) both call this."""
    category = pack.category(row.category)
    fields = row.fields if isinstance(row.fields, dict) else orjson.loads(row.fields)
    types, public, title = _category_fields(pack, category)
    tier = publicity_tier(category, row.decision_date, fields, on_lists, types) if row.decision_date else None
    ends = publicity_end_in_tier(category, row.decision_date, fields, tier) if row.decision_date else None
    if not restricted:
        if row.status != "active" or category.classification != Classification.public:
            return None
        if not is_published(category, fields):
            return None  # e.g. a penalty that is only a warning
        if ends is not None and ends < today:
            return None
        if row.record_key in repaired:
            return None
        if _unnamed_person_party(pack, category, fields):
            return None
        fields = {k: v for k, v in fields.items() if k in public}  # public_fields, its names computed once
    if not restricted:
        fields = {k: _id_masked(v) if isinstance(v, str) else v for k, v in fields.items()}
    return {"record_key": mask_record_key(row.record_key), "version": row.version,
            "category": row.category, "category_title": dict(title),
            "authority": row.authority, "status": row.status, "decision_date": row.decision_date,
            "publicity_ends": ends, "publicity_tier": tier.code if tier else None, "fields": fields,
            **({"publicity_repaired_on": repaired[row.record_key]}
               if restricted and row.record_key in repaired else {})}
