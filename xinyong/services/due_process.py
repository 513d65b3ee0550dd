"""Due process: reminders, notices, the objection window, objections, repair, expiry.

Every step goes through `store.listings.transition`, so the domain state machine decides
what may happen; every step names its actor and reason and leaves an audit event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import Engine, and_, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from xinyong.domain.calendar import Calendar, add_months, pack_today
from xinyong.domain.identifiers import mask_person_id, mask_record_key
from xinyong.domain.listings import ACTIVE, IllegalTransition
from xinyong.domain.pack import Pack
from xinyong.services import listing_time
from xinyong.store import tables as t
from xinyong.store.audit import append_event
from xinyong.store.listings import ListingNotFound, listing_row, transition

LANGUAGES = ("zh", "en", "fr")
_templates = Environment(loader=PackageLoader("xinyong", "templates"), undefined=StrictUndefined,
                         autoescape=False, keep_trailing_newline=True)


class DueProcessError(Exception):
    """A step that cannot be taken; the message says why (state, deadline, missing input)."""


@dataclass(frozen=True)
class Actor:
    name: str
    reason: str | None = None


def _today(pack: Pack, on: dt.date | None) -> dt.date:
    return on or pack_today(pack)


# -- reminders and notices ---------------------------------------------------------------------

def remind(engine: Engine, pack: Pack, listing_id: int, on: dt.date, actor: Actor) -> int:
    """Record a formal reminder (before notice, for subjects whose list requires them)."""
    with engine.begin() as c:
        row = _row(c, listing_id)
        if row["state"] != "proposed":
            raise DueProcessError(f"listing {listing_id} is {row['state']}: reminders come before the notice")
        if on < row["proposed_on"]:
            raise DueProcessError(f"listing {listing_id} was proposed on {row['proposed_on']}: "
                                  f"a reminder on {on} comes before it")
        c.execute(t.reminders.insert().values(listing_id=listing_id, on_date=on, actor=actor.name,
                                              reason=actor.reason, recorded_at=_now()))
        count = c.execute(select(func.count()).select_from(t.reminders)
                          .where(t.reminders.c.listing_id == listing_id)).scalar_one()
        append_event(c, actor=actor.name, action="listing.reminded", object_type="listing",
                     object_id=str(listing_id), reason=actor.reason,
                     payload={"on": on.isoformat(), "reminders": count})
    return count


def notify(engine: Engine, pack: Pack, listing_id: int, on: dt.date, actor: Actor,
           language: str | None = None) -> dict[str, Any]:
    """Serve the notice: grounds, evidence, legal basis and the objection deadline."""
    calendar = Calendar(pack.calendar)
    with engine.begin() as c:
        row = _row(c, listing_id)
        spec = pack.list_(row["list_code"])
        language = language or row["language"]
        if language not in LANGUAGES:
            raise DueProcessError(f"no notice template for language {language!r} (have {', '.join(LANGUAGES)})")
        latest_reminder = c.execute(select(func.max(t.reminders.c.on_date))
                                    .where(t.reminders.c.listing_id == listing_id)).scalar()
        if latest_reminder is not None and latest_reminder > on:
            raise DueProcessError(f"listing {listing_id}: a notice on {on} cannot precede the reminder "
                                  f"of {latest_reminder}")
        process = spec.due_process
        deadline = calendar.deadline(on, process.objection_days, process.objection_days_in)
        _step(c, pack, listing_id, "notified", on, actor,
              {"notified_on": on, "objection_deadline": deadline, "language": language})
        text = render_notice(c, pack, listing_id, language, on, deadline)
        c.execute(t.notices.insert().values(listing_id=listing_id, language=language, text=text, issued_on=on,
                                            objection_deadline=deadline, recorded_at=_now()))
    return {"listing": listing_id, "notified_on": on, "objection_deadline": deadline, "language": language,
            "notice": text}


def render_notice(c: Connection, pack: Pack, listing_id: int, language: str, on: dt.date,
                  deadline: dt.date) -> str:
    row = _row(c, listing_id)
    spec = pack.list_(row["list_code"])
    rule = next((r for r in spec.rules if r.version == row["rule_version"]), None)
    entity = c.execute(select(t.entities.c.key, t.entities.c.kind).where(t.entities.c.id == row["entity_id"])).one()
    name = c.execute(select(t.entity_names.c.name).where(t.entity_names.c.entity_id == row["entity_id"])
                     .order_by(t.entity_names.c.current.desc())).scalar()
    r = t.records.c
    evidence = [dict(e) for e in c.execute(
        select(r.record_key, r.category, r.decision_date, r.authority, r.subject_code, r.subject_scheme)
        .join(t.listing_evidence, t.listing_evidence.c.record_id == r.id)
        .where(t.listing_evidence.c.listing_id == listing_id).order_by(r.decision_date)).mappings()]
    for item in evidence:
        item["record_key"] = mask_record_key(item["record_key"])
        item["category_name"] = pack.category(item["category"]).names.get(language)
        item["authority_name"] = pack.authority(item["authority"]).names.get(language)
    process = spec.due_process
    return _templates.get_template(f"notice.{language}.txt").render(
        listing_id=listing_id, subject=name or entity.key, entity_key=entity.key,
        list_name=spec.names.get(language), list_authority=pack.authority(spec.authority).names.get(language),
        rule_version=row["rule_version"], rule_basis=rule.legal_basis if rule else spec.legal_basis,
        legal_basis=spec.legal_basis, evidence=evidence, issued_on=on, deadline=deadline,
        objection_days=process.objection_days, days_unit=process.objection_days_in,
        duration=spec.duration, repair=spec.repair)


# -- time ----------------------------------------------------------------------------------------

def process(engine: Engine, pack: Pack, as_of: dt.date, actor: Actor = Actor("process")) -> dict[str, int]:
    """Every transition that time makes due by `as_of`, each dated the day it fell due."""
    with engine.begin() as c:
        done = _time_due(c, pack, as_of, actor)
        append_event(c, actor=actor.name, action="process.run", object_type="process",
                     object_id=as_of.isoformat(), payload=done)
    return done


def _time_due(c: Connection, pack: Pack, as_of: dt.date, actor: Actor,
              only: list[int] | None = None) -> dict[str, int]:
    """`process` for every listing, or `only` some: each transition dated the day it fell due,
    or the day of the listing's last transition if that is later (history never runs backwards)."""
    done = {"effective": 0, "expired": 0, "reviews_due": 0}
    if only is not None and not only:
        return done
    # the pack's rules first: a cure, a later grade or a move ends a listing before its term
    by_rules = listing_time.before_terms(c, pack, as_of, actor.name, only)
    L = t.listings.c
    scope = [] if only is None else [L.id.in_(only)]
    due = c.execute(select(L.id, L.objection_deadline, L.list_code).where(
        L.state.in_(("notified", "under_review")), L.objection_deadline < as_of,
        L.id.not_in(_objected_listings()), *scope).order_by(L.id)).all()
    for listing_id, deadline, list_code in due:
        start = max(deadline + dt.timedelta(days=1), _last_transition(c, listing_id))
        end, review = listing_time.term(c, pack, listing_id, list_code, start)
        _step(c, pack, listing_id, "effective", start, actor,
              {"effective_from": start, "effective_to": end, "review_due": review})
        done["effective"] += 1
    for listing_id, end in c.execute(select(L.id, L.effective_to).where(
            L.state == "effective", L.effective_to.is_not(None), L.effective_to <= as_of, *scope)).all():
        on = max(end, _last_transition(c, listing_id))
        _step(c, pack, listing_id, "expired", on, actor, {"ended_on": on, "end_reason": "term_expired"})
        done["expired"] += 1
    # open-ended listings (until performance) come up for review at the pack's interval
    for listing_id, review, list_code in c.execute(select(L.id, L.review_due, L.list_code).where(
            L.state == "effective", L.review_due.is_not(None), L.review_due <= as_of, *scope)).all():
        interval = pack.list_(list_code).duration.review_interval_months or 6
        c.execute(update(t.listings).where(L.id == listing_id).values(review_due=add_months(review, interval)))
        append_event(c, actor=actor.name, action="listing.review_due", object_type="listing",
                     object_id=str(listing_id), reason="periodic review of an open-ended listing",
                     payload={"due": review.isoformat()})
        done["reviews_due"] += 1
    # blacklist listings that took effect above end the redlist listings they exclude; then
    # notice-free redlist proposals take effect
    for key, count in listing_time.after_terms(c, pack, as_of, actor.name, only).items():
        by_rules[key] = by_rules.get(key, 0) + count
    done.update({k: v for k, v in by_rules.items() if v})  # reported when they happened
    return done


def _catch_up(c: Connection, pack: Pack, listing_ids: list[int], on: dt.date) -> None:
    """Before a human step dated `on`: what time had made due by then, as `process` would have."""
    _time_due(c, pack, on, Actor("process", f"due before a step on {on}"), only=listing_ids)


# -- objections ------------------------------------------------------------------------------------

def file_objection(engine: Engine, pack: Pack, *, listing_id: int | None, record_key: str | None,
                   on: dt.date, actor: Actor, attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An objection puts the listing (or every listing built on the record) under review.

    `attachments`: files already kept by content (`services.files`), as {name, sha256, size,
    content_type}; they are recorded with the objection in the same transaction."""
    if (listing_id is None) == (record_key is None):
        raise DueProcessError("object to one listing (--listing) or one record (--record)")
    if not actor.reason:
        raise DueProcessError("an objection needs its reason (--reason)")
    with engine.begin() as c:
        if record_key is not None:
            if c.execute(select(t.records.c.id).where(t.records.c.record_key == record_key)).first() is None:
                raise DueProcessError(f"no record {record_key!r}")
            affected = _listings_citing(c, record_key)
        else:
            _row(c, listing_id)
            affected = [listing_id]
        _catch_up(c, pack, affected, on)
        objection_id = c.execute(t.objections.insert().values(
            listing_id=listing_id, record_key=record_key, reason=actor.reason, state="open", filed_on=on,
            filed_by=actor.name).returning(t.objections.c.id)).scalar_one()
        for item in attachments or []:
            c.execute(t.objection_attachments.insert().values(
                objection_id=objection_id, name=item["name"], sha256=item["sha256"], size=item["size"],
                content_type=item.get("content_type")))
        append_event(c, actor=actor.name, action="objection.filed", object_type="objection",
                     object_id=str(objection_id), reason=actor.reason,
                     payload={"listing": listing_id, "record": record_key, "on": on.isoformat(),
                              **({"attachments": [{k: a[k] for k in ("name", "sha256", "size")} for a in attachments]}
                                 if attachments else {})})
        under_review = []
        for affected_id in affected:
            row = _row(c, affected_id)
            if row["state"] in ("notified", "effective"):
                _step(c, pack, affected_id, "under_review", on, actor)
            if row["state"] in ("notified", "effective", "under_review"):
                under_review.append(affected_id)
    return {"objection": objection_id, "listings_under_review": under_review}


def decide_objection(engine: Engine, pack: Pack, objection_id: int, uphold: bool, on: dt.date,
                     actor: Actor) -> dict[str, Any]:
    """Upheld: the listing is withdrawn (for a record: the record is revoked). Rejected:
    the listing proceeds; it becomes effective once its objection window has passed."""
    with engine.begin() as c:
        o = c.execute(select(t.objections).where(t.objections.c.id == objection_id)).mappings().first()
        if o is None:
            raise DueProcessError(f"no objection {objection_id}")
        if o["state"] != "open":
            raise DueProcessError(f"objection {objection_id} was already {o['state']}")
        state = "upheld" if uphold else "rejected"
        affected = [o["listing_id"]] if o["listing_id"] else _listings_citing(c, o["record_key"])
        _catch_up(c, pack, affected, on)  # while the objection is still open
        c.execute(update(t.objections).where(t.objections.c.id == objection_id).values(
            state=state, decided_on=on, decided_by=actor.name, decision_reason=actor.reason))
        append_event(c, actor=actor.name, action=f"objection.{state}", object_type="objection",
                     object_id=str(objection_id), reason=actor.reason, payload={"on": on.isoformat()})
        if uphold and o["record_key"] and _latest(c, o["record_key"])["status"] != "revoked":
            _new_version(c, o["record_key"], "revoked", actor)  # (unless revoked meanwhile)
        for listing_id in affected:
            row = _row(c, listing_id)
            if uphold and row["state"] in ACTIVE:
                _step(c, pack, listing_id, "withdrawn", on, actor,
                      {"ended_on": on, "end_reason": "withdrawn_objection"})
            elif (not uphold and row["state"] == "under_review" and row["objection_deadline"] < on
                  and c.execute(_objected_listings(listing_id)).first() is None):  # no other objection open
                start = row["effective_from"] or on
                end, review = listing_time.term(c, pack, listing_id, row["list_code"], start)
                _step(c, pack, listing_id, "effective", on, actor,
                      {"effective_from": start, "effective_to": row["effective_to"] or end,
                       "review_due": row["review_due"] or review})
        _catch_up(c, pack, affected, on)  # an end that passed while it was under review
    return {"objection": objection_id, "decision": state, "listings": affected}


# -- credit repair ---------------------------------------------------------------------------------

Evidence = Path | tuple[str, bytes]


def apply_repair(engine: Engine, pack: Pack, listing_id: int, commitment: Path | str, evidence: Sequence[Evidence],
                 on: dt.date, actor: Actor) -> dict[str, Any]:
    """An application for credit repair, checked against the list's conditions.

    `commitment`: the signed commitment's text, or a file (UTF-8) holding it; `evidence`:
    files, or (name, content) pairs as a web upload gives them."""
    if isinstance(commitment, Path):
        where, text = f"{commitment}: ", _read_text(commitment, "commitment")
    else:
        where, text = "", commitment
    proofs = [(p.name, _read_bytes(p)) if isinstance(p, Path) else p for p in evidence]
    with engine.begin() as c:
        _row(c, listing_id)
        _catch_up(c, pack, [listing_id], on)
        row = _row(c, listing_id)
        spec = pack.list_(row["list_code"])
        conditions = spec.repair
        if not conditions.allowed:
            raise DueProcessError(f"the {spec.code} list allows no credit repair")
        if row["state"] != "effective":
            raise DueProcessError(f"listing {listing_id} is {row['state']}: only an effective listing is repaired")
        earliest = add_months(row["effective_from"], conditions.min_months_served)
        if on < earliest:
            raise DueProcessError(f"the minimum period is served on {earliest} "
                                  f"({conditions.min_months_served} months from {row['effective_from']})")
        if conditions.commitment_required and not text.strip():
            raise DueProcessError(f"{where}the signed credit commitment is empty")
        if conditions.evidence_required and not proofs:
            raise DueProcessError("evidence that the fault was corrected is required (--evidence FILE)")
        if c.execute(select(t.repairs.c.id).where(t.repairs.c.listing_id == listing_id,
                                                  t.repairs.c.state == "pending")).first() is not None:
            raise DueProcessError(f"listing {listing_id} already has a pending repair application")
        files = [{"name": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                 for name, data in proofs]
        try:
            repair_id = c.execute(t.repairs.insert().values(
                listing_id=listing_id, commitment=text, commitment_sha256=hashlib.sha256(text.encode()).hexdigest(),
                evidence=files, state="pending", applied_on=on, applied_by=actor.name)
                .returning(t.repairs.c.id)).scalar_one()
        except IntegrityError:  # the same application sent twice at once: uq_repairs_pending
            raise DueProcessError(f"listing {listing_id} already has a pending repair application") \
                from None
        append_event(c, actor=actor.name, action="repair.applied", object_type="repair", object_id=str(repair_id),
                     reason=actor.reason, legal_basis=spec.legal_basis,
                     payload={"listing": listing_id, "evidence": files, "on": on.isoformat()})
    return {"repair": repair_id, "listing": listing_id, "state": "pending"}


def decide_repair(engine: Engine, pack: Pack, repair_id: int, approve: bool, on: dt.date,
                  actor: Actor) -> dict[str, Any]:
    """Approval ends the listing early (and its evidence's publicity); refusal needs reasons."""
    if not approve and not actor.reason:
        raise DueProcessError("a refusal gives its reasons (--reason)")
    with engine.begin() as c:
        repair = c.execute(select(t.repairs).where(t.repairs.c.id == repair_id)).mappings().first()
        if repair is None:
            raise DueProcessError(f"no repair application {repair_id}")
        if repair["state"] != "pending":
            raise DueProcessError(f"repair {repair_id} was already {repair['state']}")
        state = "approved" if approve else "refused"
        c.execute(update(t.repairs).where(t.repairs.c.id == repair_id).values(
            state=state, decided_on=on, decided_by=actor.name, decision_reason=actor.reason))
        append_event(c, actor=actor.name, action=f"repair.{state}", object_type="repair", object_id=str(repair_id),
                     reason=actor.reason, payload={"listing": repair["listing_id"], "on": on.isoformat()})
        if approve:
            _catch_up(c, pack, [repair["listing_id"]], on)
            _step(c, pack, repair["listing_id"], "repaired", on, actor, {"ended_on": on, "end_reason": "repaired"})
    return {"repair": repair_id, "decision": state, "listing": repair["listing_id"]}


# -- records: revocation and correction ---------------------------------------------------------------

def revoke_record(engine: Engine, pack: Pack, record_key: str, on: dt.date, actor: Actor) -> dict[str, Any]:
    with engine.begin() as c:
        version = _new_version(c, record_key, "revoked", actor)
        withdrawn = _withdraw_citing(c, pack, record_key, on, actor)
    return {"record": record_key, "version": version, "status": "revoked", "listings_withdrawn": withdrawn}


def correct_record(engine: Engine, pack: Pack, record_key: str, row_file: Path, on: dt.date,
                   actor: Actor) -> dict[str, Any]:
    """A corrected record is a new version validated like any row; listings built on the old withdraw."""
    from xinyong.domain.records import Rejection, RowValidator, map_columns

    data = orjson.loads(_read_bytes(row_file)) if row_file.suffix.lower() == ".json" else None
    if not isinstance(data, dict):
        raise DueProcessError(f"{row_file}: a correction is one JSON object of field: value")
    with engine.begin() as c:
        current = _latest(c, record_key)
        category = pack.category(current["category"])
        merged = {**(current["fields"] if isinstance(current["fields"], dict) else orjson.loads(current["fields"])),
                  **data}
        headers = list(merged)
        validator = RowValidator(pack, category, current["authority"], map_columns(pack, category, headers))
        outcome = validator.validate([merged[h] for h in headers])
        if isinstance(outcome, Rejection):
            raise DueProcessError(f"{row_file}: field {outcome.field}: {outcome.reason}")
        if outcome.record_key != record_key:
            raise DueProcessError(f"{row_file}: the correction changes the record's key to {outcome.record_key}")
        version = current["version"] + 1
        c.execute(t.records.insert().values(
            record_key=record_key, version=version, authority=current["authority"], category=current["category"],
            status="active", subject_name=outcome.subject_name, subject_kind=outcome.subject_kind,
            subject_code=outcome.subject_code, subject_scheme=outcome.subject_scheme,
            subject_code_verified=outcome.subject_code_verified,
            decision_date=dt.date.fromisoformat(outcome.decision_date) if outcome.decision_date else None,
            fields=outcome.fields, extras=current["extras"] if isinstance(current["extras"], dict)
            else orjson.loads(current["extras"]), warnings=outcome.warnings, content_hash=outcome.content_hash,
            batch_id=current["batch_id"], row_number=current["row_number"], created_at=_now()))
        _carry_link(c, current, outcome.subject_code, outcome.subject_name, version)
        append_event(c, actor=actor.name, action="record.corrected", object_type="record", object_id=record_key,
                     reason=actor.reason, payload={"version": version, "fields": data})
        withdrawn = _withdraw_citing(c, pack, record_key, on, actor)
    return {"record": record_key, "version": version, "status": "active", "listings_withdrawn": withdrawn}


# -- reading -----------------------------------------------------------------------------------------

def list_listings(engine: Engine, *, entity: str | None = None, list_code: str | None = None,
                  state: str | None = None, as_of: dt.date | None = None,
                  evidence_categories: set[str] | None = None) -> list[dict[str, Any]]:
    """Listings with their state; with `as_of`, the state in effect on that date as known now.
    With `evidence_categories`, only evidence records of those categories are named (public
    surfaces pass the pack's public categories)."""
    L, T = t.listings.c, t.listing_transitions.c
    with engine.connect() as c:
        query = select(t.listings, t.entities.c.key.label("entity")).join(t.entities, t.entities.c.id == L.entity_id)
        if entity:
            from xinyong.services.entities import find_entity_id

            query = query.where(L.entity_id == find_entity_id(c, entity))
        if list_code:
            query = query.where(L.list_code == list_code)
        rows = [dict(r) for r in c.execute(query.order_by(L.id)).mappings()]
        history: dict[int, list[Any]] = {}
        if as_of is not None and rows:
            for tr in c.execute(select(T.listing_id, T.to_state, T.on_date).order_by(T.on_date, T.id)):
                history.setdefault(tr.listing_id, []).append(tr)
        evidence: dict[int, list[str]] = {}
        for listing_id, key, category in c.execute(
                select(t.listing_evidence.c.listing_id, t.records.c.record_key, t.records.c.category)
                .join(t.records, t.records.c.id == t.listing_evidence.c.record_id)):
            if evidence_categories is None or category in evidence_categories:
                evidence.setdefault(listing_id, []).append(mask_record_key(key))
    out = []
    for row in rows:
        current = row["state"]
        if as_of is not None:
            known = [tr for tr in history.get(row["id"], []) if tr.on_date <= as_of]
            if not known:
                continue  # not yet proposed on that date
            current = known[-1].to_state
            for date_field in ("notified_on", "objection_deadline", "effective_from", "ended_on"):
                if row[date_field] and row[date_field] > as_of:
                    row[date_field] = None
        if state and current != state:
            continue
        out.append({"id": row["id"], "entity": row["entity"], "list": row["list_code"], "state": current,
                    "proposed_on": row["proposed_on"], "notified_on": row["notified_on"],
                    "objection_deadline": row["objection_deadline"], "effective_from": row["effective_from"],
                    "effective_to": row["effective_to"], "ended_on": row["ended_on"],
                    "rule_version": row["rule_version"], "evidence": sorted(evidence.get(row["id"], []))})
    return out


def show_listing(engine: Engine, pack: Pack, listing_id: int) -> dict[str, Any]:
    with engine.connect() as c:
        try:
            row = dict(_row(c, listing_id))
        except ListingNotFound as exc:
            raise DueProcessError(str(exc)) from None
        spec = pack.list_(row["list_code"])
        entity = c.execute(select(t.entities.c.key).where(t.entities.c.id == row["entity_id"])).scalar()
        T = t.listing_transitions.c
        transitions = [dict(r) for r in c.execute(select(T.from_state, T.to_state, T.on_date, T.actor, T.reason)
                                                  .where(T.listing_id == listing_id).order_by(T.id)).mappings()]
        reminders_ = [dict(r) for r in c.execute(select(t.reminders.c.on_date, t.reminders.c.actor)
                                                 .where(t.reminders.c.listing_id == listing_id)).mappings()]
        notices_ = [dict(r) for r in c.execute(select(t.notices.c.language, t.notices.c.issued_on,
                                                      t.notices.c.objection_deadline, t.notices.c.text)
                                               .where(t.notices.c.listing_id == listing_id)).mappings()]
        objections_ = [dict(r) for r in c.execute(select(t.objections).where(
            t.objections.c.listing_id == listing_id)).mappings()]
        repairs_ = [dict(r) for r in c.execute(select(t.repairs.c.id, t.repairs.c.state, t.repairs.c.applied_on,
                                                      t.repairs.c.decided_on, t.repairs.c.decision_reason)
                                               .where(t.repairs.c.listing_id == listing_id)).mappings()]
        r = t.records.c
        evidence = [dict(e) for e in c.execute(select(r.record_key, r.version, r.category, r.decision_date,
                                                      r.subject_name, r.subject_code, r.subject_scheme,
                                                      t.listing_evidence.c.note)
                                               .join(t.listing_evidence, t.listing_evidence.c.record_id == r.id)
                                               .where(t.listing_evidence.c.listing_id == listing_id)).mappings()]
    for item in evidence:
        item["record_key"] = mask_record_key(item["record_key"])
        if item.pop("subject_scheme") == "resident_id":
            item["subject_code"] = mask_person_id(item["subject_code"])
    return {**{k: row[k] for k in ("id", "list_code", "state", "rule_version", "subject_kind", "proposed_on",
                                   "notified_on", "objection_deadline", "effective_from", "effective_to",
                                   "review_due", "ended_on")},
            "entity": entity, "list_name": spec.names.model_dump(), "legal_basis": spec.legal_basis,
            "evidence": evidence, "transitions": transitions, "reminders": reminders_, "notices": notices_,
            "objections": objections_, "repairs": repairs_}


# -- helpers -------------------------------------------------------------------------------------------

def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _row(c: Connection, listing_id: int) -> Any:
    try:
        return listing_row(c, listing_id)
    except ListingNotFound as exc:
        raise DueProcessError(str(exc)) from None


def _last_transition(c: Connection, listing_id: int) -> dt.date:
    T = t.listing_transitions.c
    return c.execute(select(func.max(T.on_date)).where(T.listing_id == listing_id)).scalar_one()


def _step(c: Connection, pack: Pack, listing_id: int, target: str, on: dt.date, actor: Actor,
          changes: dict[str, Any] | None = None) -> None:
    last = _last_transition(c, listing_id)
    if last is not None and on < last:  # `listing list --as-of` reads the history by date
        raise DueProcessError(f"listing {listing_id}: a step on {on} cannot come before its last change, on {last}")
    try:
        transition(c, pack, listing_id, target, on, actor=actor.name, reason=actor.reason, changes=changes)
    except IllegalTransition as exc:
        raise DueProcessError(f"listing {listing_id}: {exc}") from None


def _objected_listings(listing_id: int | None = None):
    """IDs of listings with an open objection: to the listing itself, or to a record it cites."""
    O, E, r = t.objections.c, t.listing_evidence.c, t.records.c
    direct = select(O.listing_id.label("listing_id")).where(O.state == "open", O.listing_id.is_not(None))
    via_record = (select(E.listing_id.label("listing_id"))
                  .join(t.records, r.id == E.record_id)
                  .join(t.objections, and_(O.record_key == r.record_key, O.state == "open")))
    if listing_id is not None:
        direct = direct.where(O.listing_id == listing_id)
        via_record = via_record.where(E.listing_id == listing_id)
    return direct.union(via_record)


def _listings_citing(c: Connection, record_key: str) -> list[int]:
    E, r = t.listing_evidence.c, t.records.c
    return [row[0] for row in c.execute(
        select(t.listings.c.id).distinct()
        .join(t.listing_evidence, E.listing_id == t.listings.c.id)
        .join(t.records, r.id == E.record_id)
        .where(and_(r.record_key == record_key, t.listings.c.state.in_(ACTIVE)))
        .order_by(t.listings.c.id))]


def _withdraw_citing(c: Connection, pack: Pack, record_key: str, on: dt.date, actor: Actor) -> list[int]:
    _catch_up(c, pack, _listings_citing(c, record_key), on)  # one that had ended is not withdrawn
    listing_ids = _listings_citing(c, record_key)
    for listing_id in listing_ids:
        _step(c, pack, listing_id, "withdrawn", on, Actor(actor.name, actor.reason or
                                                           f"evidence record {record_key} revoked or corrected"),
              {"ended_on": on, "end_reason": "withdrawn_record"})
    return listing_ids


def _latest(c: Connection, record_key: str) -> Any:
    row = c.execute(select(t.records).where(t.records.c.record_key == record_key)
                    .order_by(t.records.c.version.desc()).limit(1)).mappings().first()
    if row is None:
        raise DueProcessError(f"no record {record_key!r}")
    return row


def _new_version(c: Connection, record_key: str, status: str, actor: Actor) -> int:
    current = _latest(c, record_key)
    if current["status"] == status:
        raise DueProcessError(f"record {record_key} is already {status}")
    version = current["version"] + 1
    c.execute(t.records.insert().values(
        **{k: current[k] for k in ("record_key", "authority", "category", "subject_name", "subject_kind",
                                   "subject_code", "subject_scheme", "subject_code_verified", "decision_date",
                                   "fields", "extras", "warnings", "content_hash", "batch_id", "row_number")},
        version=version, status=status, created_at=_now()))
    append_event(c, actor=actor.name, action=f"record.{status}", object_type="record", object_id=record_key,
                 reason=actor.reason, payload={"version": version})
    return version


def _carry_link(c: Connection, previous: Any, code: str | None, name: str | None, version: int) -> None:
    """A correction about the same subject keeps its link; a changed subject waits for `resolve`."""
    if (code, name) != (previous["subject_code"], previous["subject_name"]):
        return
    link = c.execute(select(t.record_links).where(t.record_links.c.record_id == previous["id"])).mappings().first()
    if link is None:
        return
    new_id = c.execute(select(t.records.c.id).where(t.records.c.record_key == previous["record_key"],
                                                    t.records.c.version == version)).scalar_one()
    c.execute(t.record_links.insert().values(**{**dict(link), "record_id": new_id, "resolved_at": _now()}))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DueProcessError(f"{path}: cannot read ({exc.strerror})") from None


def _read_text(path: Path, what: str) -> str:
    try:
        return _read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DueProcessError(f"{path}: the {what} must be UTF-8 text") from None
