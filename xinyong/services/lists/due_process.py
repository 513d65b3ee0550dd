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
from zoneinfo import ZoneInfo

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from xinyong.domain.conditions import holds
from xinyong.domain.calendar import Calendar, add_months, add_years, pack_today
from xinyong.domain.identifiers import mask_record_key
from xinyong.domain.listings import ACTIVE, UNDONE, WITHDRAWN_UNIDENTIFIED, IllegalTransition
from xinyong.domain.pack import Pack
from xinyong.domain.privacy import mask_identifier
from xinyong.domain.records import decision_number, is_published
from xinyong.services.lists import listing_time
from xinyong.services.operations.integrity import audit_links, version_digest
from xinyong.store import tables as t
from xinyong.store.audit import append_event
from xinyong.store.listings import ListingNotFound, listing_row, transition

LANGUAGES = ("zh", "en", "fr")
_templates = Environment(loader=PackageLoader("xinyong", "templates"), undefined=StrictUndefined,
                         autoescape=False, keep_trailing_newline=True)


class DueProcessError(Exception):
    """A step that cannot be taken; the message says why (state, deadline, missing input)."""


class AuthorityRefused(DueProcessError):
    """The step belongs to another authority: whoever listed it (or published it) decides."""


@dataclass(frozen=True)
class Actor:
    name: str
    reason: str | None = None
    # the authority the step is taken as; None: the case's own authority
    authority: str | None = None


def deciding_authority(pack: Pack, own: str, named: str | None) -> str:
    """The case's own authority (a list's, or the one that published a record), or the pack's
    reviewing authority when it is the one named; any other is refused."""
    if named is None or named == own:
        return own
    if named not in {a.code for a in pack.authorities}:
        raise AuthorityRefused(f"unknown authority {named!r}")
    if named == pack.reviewing_authority:
        return named
    also = f" or the reviewing authority {pack.reviewing_authority}" if pack.reviewing_authority else ""
    raise AuthorityRefused(f"authority {named} may not decide here: only {own}{also} may")


def _today(pack: Pack, on: dt.date | None) -> dt.date:
    return on or pack_today(pack)


# -- reminders and notices ---------------------------------------------------------------------

def remind(engine: Engine, pack: Pack, listing_id: int, on: dt.date, actor: Actor) -> int:
    """Record a formal reminder (before notice, for subjects whose list requires them)."""
    with engine.begin() as c:
        row = _row(c, listing_id)
        spec = pack.list_(row["list_code"])
        authority = deciding_authority(pack, spec.authority, actor.authority)
        row = _still_in_due_process(c, pack, listing_id, on, "reminder")
        if row["state"] != "proposed":
            raise DueProcessError(f"listing {listing_id} is {row['state']}: reminders come before the notice")
        if on < row["proposed_on"]:
            raise DueProcessError(f"listing {listing_id} was proposed on {row['proposed_on']}: "
                                  f"a reminder on {on} comes before it")
        _after_reminders(c, spec, listing_id, on, "a reminder")
        c.execute(t.reminders.insert().values(listing_id=listing_id, on_date=on, actor=actor.name,
                                              reason=actor.reason, recorded_at=_now()))
        count = c.execute(select(func.count()).select_from(t.reminders)
                          .where(t.reminders.c.listing_id == listing_id)).scalar_one()
        append_event(c, actor=actor.name, action="listing.reminded", object_type="listing",
                     object_id=str(listing_id), reason=actor.reason,
                     payload={"on": on.isoformat(), "reminders": count, "authority": authority})
    return count


def _still_in_due_process(c: Connection, pack: Pack, listing_id: int, on: dt.date, what: str) -> Any:
    """The listing once what time had made due by `on` is applied (`_catch_up`), if it has not ended:
    a reminder or a notice is served only while the evidence still supports the proposal. 小米 was
    served a notice for a debt the court's newer version of the case said was paid in full (the
    next `process` withdrew the listing as performed, the notice already in its hands)."""
    _catch_up(c, pack, [listing_id], on)
    row = _row(c, listing_id)
    if row["state"] not in ACTIVE:
        raise DueProcessError(f"listing {listing_id} ended on {row['ended_on']} ({row['end_reason']}): "
                              f"no {what} is served")
    return row


def _after_reminders(c: Connection, spec: Any, listing_id: int, on: dt.date, what: str) -> None:
    """Reminders fall on distinct dates at the pack's spacing, and the notice comes after them."""
    latest = c.execute(select(func.max(t.reminders.c.on_date))
                       .where(t.reminders.c.listing_id == listing_id)).scalar()
    if latest is None:
        return
    spacing = spec.due_process.reminder_min_days
    if on < latest + dt.timedelta(days=spacing):
        raise DueProcessError(f"listing {listing_id}: {what} on {on} comes too soon after the reminder of "
                              f"{latest} (at least {spacing} day(s) apart)")


def notify(engine: Engine, pack: Pack, listing_id: int, on: dt.date, actor: Actor,
           language: str | None = None) -> dict[str, Any]:
    """Serve the notice: grounds, evidence, legal basis and the objection deadline."""
    calendar = Calendar(pack.calendar)
    with engine.begin() as c:
        row = _row(c, listing_id)
        spec = pack.list_(row["list_code"])
        authority = deciding_authority(pack, spec.authority, actor.authority)
        language = language or row["language"]
        if language not in LANGUAGES:
            raise DueProcessError(f"no notice template for language {language!r} (have {', '.join(LANGUAGES)})")
        row = _still_in_due_process(c, pack, listing_id, on, "notice")
        if row["state"] == "proposed":  # (another state: the machine says why not)
            _after_reminders(c, spec, listing_id, on, "a notice")
        process = spec.due_process
        deadline = calendar.deadline(on, process.objection_days, process.objection_days_in)
        _step(c, pack, listing_id, "notified", on, actor,
              {"notified_on": on, "objection_deadline": deadline, "language": language}, authority=authority)
        if c.execute(_objected_listings(listing_id)).first() is not None:
            # an objection filed before the notice (to the proposal, or to a record it cites) is under
            # review from the notice on, as one filed after it: a rejection after the window starts the
            # term on its own day, where `process` had dated it back to the window's end
            _step(c, pack, listing_id, "under_review", on, actor, authority=authority)
        text = render_notice(c, pack, listing_id, language, on, deadline)
        c.execute(t.notices.insert().values(listing_id=listing_id, language=language, text=text, issued_on=on,
                                            objection_deadline=deadline, recorded_at=_now()))
    return {"listing": listing_id, "notified_on": on, "objection_deadline": deadline, "language": language,
            **_calendar_warning(calendar, on, deadline, process.objection_days_in), "notice": text}


def _calendar_warning(calendar: Calendar, on: dt.date, deadline: dt.date, unit: str) -> dict[str, str]:
    """The operator's warning when a deadline served to a subject ran through a year whose holidays
    the pack does not list yet: the deadline may fall before the day the law gives."""
    years = calendar.unlisted_years(on, deadline, unit)
    if not years:
        return {}
    return {"calendar_warning": f"the pack's calendar lists holidays through {calendar.holidays_listed_through}: "
                                f"this deadline counted {', '.join(map(str, years))} as having none; add that "
                                f"year's holidays to the pack and check the deadline"}


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


def select_listings(engine: Engine, list_code: str, state: str, limit: int | None = None) -> list[int]:
    """IDs of a list's listings in `state`, oldest first (by proposal, then ID): a bulk step's selection."""
    L = t.listings.c
    query = select(L.id).where(L.list_code == list_code, L.state == state).order_by(L.proposed_on, L.id)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as c:
        return list(c.execute(query).scalars())


def bulk_step(step: Any, listing_ids: Sequence[int], *args: Any) -> dict[str, Any]:
    """`step(listing_id, *args)` for each listing, each in its own transaction (its own audited
    step); one that cannot take it is skipped with the reason. An authority refused for one
    is refused for all of them, so it stops the run."""
    done, skipped = [], []
    for listing_id in listing_ids:
        try:
            outcome = step(listing_id, *args)
        except AuthorityRefused:
            raise
        except DueProcessError as exc:
            skipped.append({"listing": listing_id, "reason": str(exc)})
            continue
        done.append(outcome if isinstance(outcome, dict) else {"listing": listing_id, "result": outcome})
    return {"selected": len(listing_ids), "done": done, "skipped": skipped}


# -- deadlines -------------------------------------------------------------------------------------

def overdue(engine: Engine, pack: Pack, today: dt.date) -> list[dict[str, Any]]:
    """Every open case past its deadline, by authority then deadline: objections past the
    list's `review_days`, repair applications past `answer_working_days` (not yet accepted) or
    `decision_working_days` (from acceptance, or from the application without an answer step)."""
    items = []
    with engine.connect() as c:
        for o in c.execute(select(t.objections).where(t.objections.c.state == "open")).mappings().all():
            deadline = objection_deadline(c, pack, o)
            if deadline is not None and today > deadline:
                items.append({"kind": "objection", "id": o["id"], "authority": objection_authority(c, pack, o),
                              "deadline": deadline, "days_late": (today - deadline).days,
                              "listing": o["listing_id"], "record": mask_record_key(o["record_key"])
                              if o["record_key"] else None, "since": o["filed_on"]})
        for repair in c.execute(select(t.repairs).where(t.repairs.c.state == "pending")).mappings().all():
            authority, conditions = _repair_case(c, pack, repair)
            answer, decision = repair_deadlines(pack, conditions, repair["applied_on"], repair["accepted_on"])
            late = [("repair_answer", answer)] if repair["accepted_on"] is None and answer is not None else []
            late += [("repair_decision", decision)] if decision is not None else []
            for kind, deadline in late:
                if today > deadline:
                    items.append({"kind": kind, "id": repair["id"], "authority": authority, "deadline": deadline,
                                  "days_late": (today - deadline).days, "listing": repair["listing_id"],
                                  "record": mask_record_key(repair["record_key"]) if repair["record_key"] else None,
                                  "since": repair["accepted_on"] or repair["applied_on"]})
    items.sort(key=lambda item: (item["authority"], item["deadline"], item["kind"], item["id"]))
    return items


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
    done = {"effective": 0, "expired": 0, "reviews_due": 0, "performed": 0}
    if only is not None and not only:
        return done
    L = t.listings.c
    scope = [] if only is None else [L.id.in_(only)]
    # whom a listing names first: a person no evidence identifies is not listed at all
    unidentified = _withdraw_unidentified(c, pack, as_of, actor, scope)
    # the pack's rules next: a cure, a later grade or a move ends a listing before its term
    by_rules = listing_time.before_terms(c, pack, as_of, actor.name, only)
    done["performed"] = _performed(c, pack, as_of, actor, scope)
    superseded = _evidence_superseded(c, pack, as_of, actor, scope)
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
    by_rules[WITHDRAWN_UNIDENTIFIED] = unidentified
    by_rules["withdrawn_record"] = superseded
    done.update({k: v for k, v in by_rules.items() if v})  # reported when they happened
    return done


def _withdraw_unidentified(c: Connection, pack: Pack, as_of: dt.date, actor: Actor, scope: list[Any]) -> int:
    """A natural person's listing whose evidence holds fewer records naming them by a person's number
    that passes its check (resident ID, or a pack's `person` scheme) than its rule needs (`evaluate`
    proposes on no other since PERSON_NOT_IDENTIFIED; a store made before kept listings of persons
    known by a name alone, or a masked or mistyped number) is withdrawn, whatever its state, and those records go back to review.
    Run by every `process` rather than by a migration: it needs the pack's rules and calendar, the
    state machine and the audit chain, and it re-checks a store restored or copied from an older one."""
    from xinyong.services.resolution.resolve import PERSON_NOT_IDENTIFIED, hold_unidentified

    L, E, r, e = t.listings.c, t.listing_evidence.c, t.records.c, t.entities.c
    identified = and_(r.subject_scheme.in_(sorted(pack.person_schemes)), r.subject_code_verified.is_(True))
    supported = func.count(r.id).filter(identified)
    rows = c.execute(select(L.id, L.list_code, L.rule_version, supported.label("identified"))
                     .join(t.entities, e.id == L.entity_id)
                     .outerjoin(t.listing_evidence, E.listing_id == L.id).outerjoin(t.records, r.id == E.record_id)
                     .where(e.kind == "natural_person", L.state.in_(ACTIVE), *scope)
                     .group_by(L.id, L.list_code, L.rule_version).order_by(L.id)).all()
    withdrawn = []
    for listing_id, list_code, rule_version, count in rows:
        rule = next((rule for rule in pack.list_(list_code).rules if rule.version == rule_version), None)
        if count >= (rule.min_count if rule else 1):
            continue
        on = max(as_of, _last_transition(c, listing_id))
        _step(c, pack, listing_id, "withdrawn", on,
              Actor(actor.name, f"{PERSON_NOT_IDENTIFIED}: too few evidence records name the person by an ID "
                                "number that passes its check"),
              {"ended_on": on, "end_reason": WITHDRAWN_UNIDENTIFIED})
        withdrawn.append(listing_id)
    evidence = [record_id for start in range(0, len(withdrawn), 5000) for record_id in c.execute(
        select(E.record_id).where(E.listing_id.in_(withdrawn[start:start + 5000]))).scalars()]
    hold_unidentified(c, pack, evidence, actor.name)
    return len(withdrawn)


def _performed(c: Connection, pack: Pack, as_of: dt.date, actor: Actor, scope: list[Any]) -> int:
    """Listings whose evidence record has a later version showing performance (the list's
    `performed_when`) end as performed, on the day that version was received."""
    lists = {spec.code: spec.performed_when for spec in pack.lists if spec.performed_when}
    if not lists:
        return 0
    L, E, r = t.listings.c, t.listing_evidence.c, t.records.c
    later_version = t.records.alias("later_version")
    v = later_version.c
    newest: dict[tuple[int, str], Any] = {}  # (listing, record key) -> the newest later version
    for row in c.execute(select(L.id, L.list_code, r.record_key, r.category, v.version, v.status, v.fields,
                                v.created_at)
                         .join(t.listing_evidence, E.listing_id == L.id).join(t.records, r.id == E.record_id)
                         .join(later_version, and_(v.record_key == r.record_key, v.version > r.version))
                         .where(L.state.in_(ACTIVE), L.list_code.in_(sorted(lists)), *scope)
                         .order_by(L.id, v.version)):
        newest[(row.id, row.record_key)] = row
    zone = ZoneInfo(pack.calendar.timezone)
    ended = 0
    for (listing_id, record_key), later in newest.items():
        if later.status != "active":
            continue
        list_code = later.list_code
        fields = later.fields if isinstance(later.fields, dict) else orjson.loads(later.fields)
        types = {f.name: f.type for f in pack.fields_of(pack.category(later.category))}
        if not any(holds(condition, fields, types) for condition in lists[list_code]):
            continue
        received = later.created_at if later.created_at.tzinfo else later.created_at.replace(tzinfo=dt.timezone.utc)
        day = received.astimezone(zone).date()
        if day > as_of or _row(c, listing_id)["state"] not in ACTIVE:  # not known yet; or ended by another record
            continue
        _end(c, pack, listing_id, "performed", max(day, _last_transition(c, listing_id)),
             Actor(actor.name, f"record {record_key} version {later.version} shows performance"), None)
        ended += 1
    return ended


def _evidence_superseded(c: Connection, pack: Pack, as_of: dt.date, actor: Actor, scope: list[Any]) -> int:
    """A listing whose evidence the authority has re-sent since, in a version (resolved, received by
    `as_of`) that no longer meets the listing's rule, is withdrawn (`withdrawn_record`) on the day that
    version was received, as `record correct` withdraws one: the court's version saying adequate
    security was given lists nobody, yet the listing built on its first version took effect. One whose
    evidence still qualifies in its newest versions stays; one under an objection waits for its decision."""
    from xinyong.services.lists.evaluate import qualifying_query

    # (an annual list's later grades end its listings by their own rules: listing_time)
    lists = sorted(spec.code for spec in pack.lists if spec.annual_publication is None)
    L, E, r, link = t.listings.c, t.listing_evidence.c, t.records.c, t.record_links.c
    newest, newer = t.records.alias("newest"), t.records.alias("newer")
    rows = c.execute(select(L.id, L.entity_id, L.list_code, L.rule_version, L.proposed_on,
                            newest.c.id.label("record_id"), newest.c.record_key, newest.c.decision_date,
                            newest.c.created_at, link.state)
                     .join(t.listing_evidence, E.listing_id == L.id).join(t.records, r.id == E.record_id)
                     .join(newest, and_(newest.c.record_key == r.record_key, newest.c.version > r.version))
                     .outerjoin(t.record_links, link.record_id == newest.c.id)
                     .where(L.state.in_(ACTIVE), L.list_code.in_(lists), newest.c.status == "active",
                            L.id.not_in(_objected_listings()),
                            ~select(newer.c.id).where(newer.c.record_key == newest.c.record_key,
                                                      newer.c.version > newest.c.version).exists(), *scope)
                     .order_by(L.id)).all()
    zone = ZoneInfo(pack.calendar.timezone)
    cases: dict[int, list[Any]] = {}
    for row in rows:
        cases.setdefault(row.id, []).append(row)
    withdrawn = 0
    for listing_id, versions in cases.items():
        first = versions[0]
        if any(v.state not in ("linked", "new") for v in versions):
            continue  # a version not resolved yet (or in review): whose it is is not known
        received = max((v.created_at if v.created_at.tzinfo else v.created_at.replace(tzinfo=dt.timezone.utc))
                       .astimezone(zone).date() for v in versions)
        if received > as_of:
            continue
        spec = pack.list_(first.list_code)
        rule = next((rule for rule in spec.rules if rule.version == first.rule_version), None)
        if rule is None:
            continue
        grace = dt.timedelta(days=spec.due_process.grace_days)
        # the rule as of the proposal, over the evidence as it now reads: read on the day a version
        # arrived, a rule's window had closed on evidence reworded a year later (nothing it reads changed)
        on = max([first.proposed_on, *(v.decision_date + grace for v in versions if v.decision_date)])
        qualifying = {row.record_id for row in c.execute(
            qualifying_query(pack, spec, rule, on, [first.entity_id], include_listed=True))}
        current = set(c.execute(select(newest.c.id).join(t.records, r.record_key == newest.c.record_key)
                                .join(t.listing_evidence, E.record_id == r.id)
                                .where(E.listing_id == listing_id, ~select(newer.c.id).where(
                                    newer.c.record_key == newest.c.record_key,
                                    newer.c.version > newest.c.version).exists())).scalars())
        if qualifying & current:  # its evidence, as it stands now, still lists it
            continue
        day = max(received, _last_transition(c, listing_id))
        _step(c, pack, listing_id, "withdrawn", day,
              Actor(actor.name, f"the newest version of evidence record {', '.join(v.record_key for v in versions)} "
                                f"no longer meets rule {spec.code} v{rule.version}"),
              {"ended_on": day, "end_reason": "withdrawn_record"})
        withdrawn += 1
    return withdrawn


def _end(c: Connection, pack: Pack, listing_id: int, end_reason: str, on: dt.date, actor: Actor,
         authority: str | None) -> None:
    """End a listing early for a reason other than its term: an effective one is closed
    (repaired), one still in due process or under review is withdrawn; both carry the reason."""
    state = _row(c, listing_id)["state"]
    if state not in ACTIVE:
        raise DueProcessError(f"listing {listing_id} has already ended ({state})")
    _step(c, pack, listing_id, "repaired" if state == "effective" else "withdrawn", on, actor,
          {"ended_on": on, "end_reason": end_reason}, authority=authority)


# `listing end --reason`: the ways a court listing ends before its term, all recorded as performed
PERFORMANCE_GROUNDS = ("performed", "settled", "creditor_request", "no_assets", "enforcement_ended")


def end_listing(engine: Engine, pack: Pack, listing_id: int, ground: str, on: dt.date,
                actor: Actor) -> dict[str, Any]:
    """End a listing that lasts until performance: the debt paid, settled, the creditor's
    request, no assets, or enforcement ended. `end_reason` is `performed`; the ground is kept."""
    if ground not in PERFORMANCE_GROUNDS:
        raise DueProcessError(f"--reason must be one of {', '.join(PERFORMANCE_GROUNDS)}; got {ground!r}")
    with engine.begin() as c:
        spec = pack.list_(_row(c, listing_id)["list_code"])
        authority = deciding_authority(pack, spec.authority, actor.authority)
        if spec.duration.kind != "until_performance" and not spec.performed_when:
            raise DueProcessError(f"listing {listing_id}: the {spec.code} list does not end on performance")
        _catch_up(c, pack, [listing_id], on)
        _end(c, pack, listing_id, "performed", on, Actor(actor.name, ground), authority)
        append_event(c, actor=actor.name, action="listing.performed", object_type="listing",
                     object_id=str(listing_id), reason=ground, legal_basis=spec.legal_basis,
                     payload={"on": on.isoformat(), "ground": ground, "authority": authority})
        state = _row(c, listing_id)["state"]
    return {"listing": listing_id, "state": state, "end_reason": "performed", "ground": ground, "ended_on": on,
            "authority": authority}


def extend(engine: Engine, pack: Pack, listing_id: int, years: int, on: dt.date, actor: Actor,
           language: str | None = None) -> dict[str, Any]:
    """Extend a listing in force by 1 to 3 years, within the list's `extension_max_years` in
    all; the decision is audited and served with its own notice (and its own objection window)."""
    if not actor.reason:
        raise DueProcessError("an extension gives its reasons (--reason)")
    calendar = Calendar(pack.calendar)
    with engine.begin() as c:
        row = _row(c, listing_id)
        spec = pack.list_(row["list_code"])
        authority = deciding_authority(pack, spec.authority, actor.authority)
        maximum = spec.duration.extension_max_years
        if maximum is None:
            raise DueProcessError(f"the {spec.code} list allows no extension")
        already = row["extended_years"] or 0
        if not 1 <= years <= 3 or already + years > maximum:
            raise DueProcessError(f"--years must be 1 to 3 and at most {maximum:g} in all "
                                  f"({already} already extended); got {years}")
        language = language or row["language"]
        if language not in LANGUAGES:
            raise DueProcessError(f"no notice template for language {language!r} (have {', '.join(LANGUAGES)})")
        _catch_up(c, pack, [listing_id], on)
        row = _row(c, listing_id)
        last = _last_transition(c, listing_id)
        if on < last:  # the state read below is today's, not the one on `on`: history never runs backwards
            raise DueProcessError(f"listing {listing_id}: an extension on {on} cannot come before its last change, "
                                  f"on {last}")
        if row["state"] not in ("effective", "under_review") or row["effective_from"] is None:
            raise DueProcessError(f"listing {listing_id} is {row['state']}: only a listing in force is extended")
        if row["effective_to"] is None:
            raise DueProcessError(f"listing {listing_id} runs until performance: it has no term to extend")
        new_end = add_years(row["effective_to"], years)
        c.execute(update(t.listings).where(t.listings.c.id == listing_id).values(
            effective_to=new_end, extended_years=already + years))
        _same_state_transition(c, listing_id, row["state"], on, actor, authority)  # the feed carries the new end
        append_event(c, actor=actor.name, action="listing.extended", object_type="listing",
                     object_id=str(listing_id), reason=actor.reason, legal_basis=spec.legal_basis,
                     payload={"on": on.isoformat(), "years": years, "from": row["effective_to"].isoformat(),
                              "to": new_end.isoformat(), "authority": authority})
        deadline = calendar.deadline(on, spec.due_process.objection_days, spec.due_process.objection_days_in)
        text = _extension_notice(c, pack, row, language, on, deadline, years, row["effective_to"], new_end,
                                 actor.reason)
        c.execute(t.notices.insert().values(listing_id=listing_id, language=language, text=text, issued_on=on,
                                            objection_deadline=deadline, recorded_at=_now()))
    return {"listing": listing_id, "years": years, "effective_to": new_end, "previous_end": row["effective_to"],
            "authority": authority, "objection_deadline": deadline,
            **_calendar_warning(calendar, on, deadline, spec.due_process.objection_days_in), "notice": text}


def _extension_notice(c: Connection, pack: Pack, row: Any, language: str, on: dt.date, deadline: dt.date,
                      years: int, previous_end: dt.date, new_end: dt.date, reason: str) -> str:
    spec = pack.list_(row["list_code"])
    entity = c.execute(select(t.entities.c.key).where(t.entities.c.id == row["entity_id"])).scalar_one()
    name = c.execute(select(t.entity_names.c.name).where(t.entity_names.c.entity_id == row["entity_id"])
                     .order_by(t.entity_names.c.current.desc())).scalar()
    process = spec.due_process
    return _templates.get_template(f"extension.{language}.txt").render(
        listing_id=row["id"], subject=name or entity, entity_key=entity, list_name=spec.names.get(language),
        list_authority=pack.authority(spec.authority).names.get(language), legal_basis=spec.legal_basis,
        issued_on=on, deadline=deadline, objection_days=process.objection_days,
        days_unit=process.objection_days_in, years=years, previous_end=previous_end, new_end=new_end, reason=reason)


def _catch_up(c: Connection, pack: Pack, listing_ids: list[int], on: dt.date) -> None:
    """Before a human step dated `on`: what time had made due by then, as `process` would have."""
    _time_due(c, pack, on, Actor("process", f"due before a step on {on}"), only=listing_ids)


# -- objections ------------------------------------------------------------------------------------

def file_objection(engine: Engine, pack: Pack, *, listing_id: int | None, record_key: str | None,
                   on: dt.date, actor: Actor, attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An objection puts the listing (or every listing built on the record) under review.

    `attachments`: files already kept by content (`services.intake.files`), as {name, sha256, size,
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
        # a listing undone (withdrawn on an objection or its evidence) bound on no day and a revoked record
        # states nothing: an objection to either could only be rejected, or upheld to no effect
        if listing_id is not None and (undone := _row(c, listing_id)["end_reason"]) in UNDONE:
            raise DueProcessError(f"listing {listing_id} was withdrawn ({undone}): it binds on no day")
        if record_key is not None and _latest(c, record_key)["status"] == "revoked":
            raise DueProcessError(f"record {record_key} is revoked: it states nothing to object to")
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
        under_review, received_late = [], []
        for affected_id in affected:
            row = _row(c, affected_id)
            last = _last_transition(c, affected_id)
            if _in_time_but_received_after_effect(c, row, on, last):
                # filed within the window, received after `process` made the listing effective: it
                # should never have taken effect. Under review from the day it did (history is read
                # by date: it was in force on no day), and a rejection starts its term on its own day.
                _step(c, pack, affected_id, "under_review", last, actor,
                      {"effective_from": None, "effective_to": None, "review_due": None})
                received_late.append(affected_id)
            elif row["state"] in ("notified", "effective"):
                _step(c, pack, affected_id, "under_review", on, actor)
            if row["state"] in ("notified", "effective", "under_review"):
                under_review.append(affected_id)
    return {"objection": objection_id, "listings_under_review": under_review,
            **({"effect_undone": received_late} if received_late else {})}


def _in_time_but_received_after_effect(c: Connection, row: Any, filed_on: dt.date, last_change: dt.date | None) -> bool:
    """An objection dated within the listing's window (posted in time) that reaches the registry
    after the window closed and the listing took effect by it. Not once an objection was decided
    (the listing took effect on its rejection): a second one dated in the window undoes nothing."""
    if not (row["state"] == "effective" and row["objection_deadline"] is not None
            and filed_on <= row["objection_deadline"] and last_change is not None and filed_on < last_change):
        return False
    T = t.listing_transitions.c
    return c.execute(select(T.from_state).where(T.listing_id == row["id"], T.to_state == "effective",
                                                T.from_state != T.to_state)  # (not an extension)
                     .order_by(T.id.desc()).limit(1)).scalar() == "notified"


def decide_objection(engine: Engine, pack: Pack, objection_id: int, uphold: bool, on: dt.date,
                     actor: Actor) -> dict[str, Any]:
    """Upheld: the listing is withdrawn (for a record: the record is revoked). Rejected:
    the listing proceeds; it becomes effective once its objection window has passed."""
    with engine.begin() as c:
        o = c.execute(select(t.objections).where(t.objections.c.id == objection_id)).mappings().first()
        if o is None:
            raise DueProcessError(f"no objection {objection_id}")
        authority = deciding_authority(pack, objection_authority(c, pack, o), actor.authority)
        if o["state"] != "open":
            raise DueProcessError(f"objection {objection_id} was already {o['state']}")
        if on < o["filed_on"]:
            raise DueProcessError(f"objection {objection_id} was filed on {o['filed_on']}: "
                                  f"a decision on {on} comes before it")
        state = "upheld" if uphold else "rejected"
        affected = [o["listing_id"]] if o["listing_id"] else _listings_citing(c, o["record_key"])
        _catch_up(c, pack, affected, on)  # while the objection is still open
        deadline = objection_deadline(c, pack, o)
        late = deadline is not None and on > deadline  # a late decision is still taken, and kept as late
        c.execute(update(t.objections).where(t.objections.c.id == objection_id).values(
            state=state, decided_on=on, decided_by=actor.name, decision_reason=actor.reason, authority=authority,
            late=late))
        append_event(c, actor=actor.name, action=f"objection.{state}", object_type="objection",
                     object_id=str(objection_id), reason=actor.reason,
                     payload={"on": on.isoformat(), "authority": authority,
                              **({"late": True, "deadline": deadline.isoformat()} if late else {})})
        if uphold and o["record_key"] and _latest(c, o["record_key"])["status"] != "revoked":
            _new_version(c, o["record_key"], "revoked", actor)  # (unless revoked meanwhile)
        if uphold:
            undo_ended_under_review(c, o, on, actor, authority)
        for listing_id in affected:
            row = _row(c, listing_id)
            if uphold and row["state"] in ACTIVE:
                _step(c, pack, listing_id, "withdrawn", on, actor,
                      {"ended_on": on, "end_reason": "withdrawn_objection"}, authority=authority)
            elif (not uphold and row["state"] == "under_review" and row["objection_deadline"] < on
                  and c.execute(_objected_listings(listing_id)).first() is None):  # no other objection open
                start = row["effective_from"] or on
                end, review = listing_time.term(c, pack, listing_id, row["list_code"], start)
                _step(c, pack, listing_id, "effective", on, actor,
                      {"effective_from": start, "effective_to": row["effective_to"] or end,
                       "review_due": row["review_due"] or review}, authority=authority)
        if uphold:  # the other open objections to what this one undid are answered by it
            O = t.objections.c
            undone = [listing_id for listing_id in affected if _row(c, listing_id)["end_reason"] in UNDONE]
            answered = or_(O.listing_id.in_(undone), *([O.record_key == o["record_key"]] if o["record_key"] else []))
            _uphold_answered(c, pack, answered, on, actor, f"answered by objection {objection_id}, upheld")
        _catch_up(c, pack, affected, on)  # an end that passed while it was under review
    return {"objection": objection_id, "decision": state, "listings": affected, "authority": authority,
            "late": late}


def undo_ended_under_review(c: Connection, objection: Any, on: dt.date, actor: Actor, authority: str) -> None:
    """Upheld (by a decision, or by a review moving its record away), an objection undoes what
    ended while it was open: a listing (or one citing the record)
    that ended under review meanwhile (performed, cured...) ends as withdrawn on the objection, so it
    bound on no day. Its state stays (a final state is final); the end's reason changes, by an
    audited step stored as a transition from withdrawn to withdrawn. One that ended before the
    objection was filed stays as it ended."""
    L, E, r, T = t.listings.c, t.listing_evidence.c, t.records.c, t.listing_transitions.c
    if objection["listing_id"] is not None:
        concerned = L.id == objection["listing_id"]
    else:
        concerned = L.id.in_(select(E.listing_id).join(t.records, r.id == E.record_id)
                             .where(r.record_key == objection["record_key"]))
    for listing_id, end_reason in c.execute(select(L.id, L.end_reason).where(
            concerned, L.state == "withdrawn", L.ended_on >= objection["filed_on"],
            func.coalesce(L.end_reason, "").not_in(UNDONE)).order_by(L.id)).all():
        ending = c.execute(select(T.from_state).where(T.listing_id == listing_id).order_by(T.id.desc())
                           .limit(1)).scalar()
        if ending != "under_review":
            continue
        c.execute(update(t.listings).where(L.id == listing_id, L.end_reason == end_reason)
                  .values(end_reason="withdrawn_objection"))
        _same_state_transition(c, listing_id, "withdrawn", on, actor, authority)  # the feed carries the new end
        append_event(c, actor=actor.name, action="listing.undone", object_type="listing", object_id=str(listing_id),
                     reason=actor.reason, payload={"on": on.isoformat(), "objection": objection["id"],
                                                   "end_reason": "withdrawn_objection", "was": end_reason,
                                                   "authority": authority})


def objection_authority(c: Connection, pack: Pack, objection: Any) -> str:
    """Whoever listed it decides: the list's authority; for an objection to a record, the
    authority that published the record."""
    if objection["listing_id"] is not None:
        return pack.list_(_row(c, objection["listing_id"])["list_code"]).authority
    return _latest(c, objection["record_key"])["authority"]


def objection_deadline(c: Connection, pack: Pack, objection: Any) -> dt.date | None:
    """`review_days` (calendar days) from the filing: of the listing's list; for a record, the
    shortest among the lists of the listings built on it. Ending on a closed day, it runs to the next
    working day where the pack's calendar says so, as the subject's own windows do."""
    if objection["listing_id"] is not None:
        codes = [_row(c, objection["listing_id"])["list_code"]]
    else:
        E, r = t.listing_evidence.c, t.records.c
        codes = list(c.execute(select(t.listings.c.list_code).distinct()
                               .join(t.listing_evidence, E.listing_id == t.listings.c.id)
                               .join(t.records, r.id == E.record_id)
                               .where(r.record_key == objection["record_key"])).scalars())
    days = [pack.list_(code).due_process.review_days for code in codes]
    days = [d for d in days if d is not None]
    return Calendar(pack.calendar).deadline(objection["filed_on"], min(days), "calendar") if days else None


# -- credit repair ---------------------------------------------------------------------------------

Evidence = Path | tuple[str, bytes]


def apply_repair(engine: Engine, pack: Pack, listing_id: int | None, commitment: Path | str,
                 evidence: Sequence[Evidence], on: dt.date, actor: Actor, *,
                 record_key: str | None = None) -> dict[str, Any]:
    """An application for credit repair, checked against the conditions: of a listing's list, or
    (with `record_key` instead of a listing) of the record's category, for its publicity.

    `commitment`: the signed commitment's text, or a file (UTF-8) holding it; `evidence`:
    files, or (name, content) pairs as a web upload gives them."""
    if (listing_id is None) == (record_key is None):
        raise DueProcessError("repair one listing (LISTING_ID) or one record's publicity (--record)")
    if isinstance(commitment, Path):
        where, text = f"{commitment}: ", _read_text(commitment, "commitment")
    else:
        where, text = "", commitment
    proofs = [(p.name, _read_bytes(p)) if isinstance(p, Path) else p for p in evidence]
    with engine.begin() as c:
        if listing_id is not None:
            _row(c, listing_id)
            _catch_up(c, pack, [listing_id], on)
            row = _row(c, listing_id)
            spec = pack.list_(row["list_code"])
            conditions, legal_basis, what = spec.repair, spec.legal_basis, f"listing {listing_id}"
            if not conditions.allowed:
                raise DueProcessError(f"the {spec.code} list allows no credit repair")
            if row["state"] != "effective":
                raise DueProcessError(f"listing {listing_id} is {row['state']}: only an effective listing is repaired")
            start = row["effective_from"]
        else:
            record = _latest(c, record_key)
            category = pack.category(record["category"])
            conditions, legal_basis, what = category.repair, None, f"record {record_key}"
            if not conditions.allowed:
                raise DueProcessError(f"records of category {category.code} allow no repair of their publicity")
            if record["status"] != "active":
                raise DueProcessError(f"record {record_key} is {record['status']}: nothing is published to repair")
            fields = record["fields"] if isinstance(record["fields"], dict) else orjson.loads(record["fields"])
            if not is_published(category, fields):  # e.g. a penalty that is only a warning
                raise DueProcessError(f"record {record_key} is never published: nothing is published to repair")
            if record_key in publicity_ended(c):
                raise DueProcessError(f"record {record_key}: its publicity has already ended by a repair")
            start = record["decision_date"]
            if start is None:
                raise DueProcessError(f"record {record_key} has no decision date to count its publicity from")
        earliest = add_months(start, conditions.min_months_served)
        if on < earliest:
            raise DueProcessError(f"the minimum period is served on {earliest} "
                                  f"({conditions.min_months_served} months from {start})")
        if conditions.commitment_required and not text.strip():
            raise DueProcessError(f"{where}the signed credit commitment is empty")
        if conditions.evidence_required and not proofs:
            raise DueProcessError("evidence that the fault was corrected is required (--evidence FILE)")
        R = t.repairs.c
        pending = R.listing_id == listing_id if listing_id is not None else R.record_key == record_key
        if c.execute(select(R.id).where(pending, R.state == "pending")).first() is not None:
            raise DueProcessError(f"{what} already has a pending repair application")
        files = [{"name": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                 for name, data in proofs]
        try:
            repair_id = c.execute(t.repairs.insert().values(
                listing_id=listing_id, record_key=record_key, commitment=text,
                commitment_sha256=hashlib.sha256(text.encode()).hexdigest(),
                evidence=files, state="pending", applied_on=on, applied_by=actor.name)
                .returning(R.id)).scalar_one()
        except IntegrityError:  # the same application sent twice at once: uq_repairs_pending(_record)
            raise DueProcessError(f"{what} already has a pending repair application") from None
        append_event(c, actor=actor.name, action="repair.applied", object_type="repair", object_id=str(repair_id),
                     reason=actor.reason, legal_basis=legal_basis,
                     payload={"listing": listing_id, "record": record_key, "evidence": files, "on": on.isoformat()})
    return {"repair": repair_id, "listing": listing_id, "record": record_key, "state": "pending"}


def _repair_case(c: Connection, pack: Pack, repair: Any) -> tuple[str, Any]:
    """The authority that decides a repair (the list's; for a record, the one that published
    it) and the conditions that apply."""
    if repair["listing_id"] is not None:
        spec = pack.list_(_row(c, repair["listing_id"])["list_code"])
        return spec.authority, spec.repair
    record = _latest(c, repair["record_key"])
    return record["authority"], pack.category(record["category"]).repair


def repair_deadlines(pack: Pack, conditions: Any, applied_on: dt.date,
                     accepted_on: dt.date | None) -> tuple[dt.date | None, dt.date | None]:
    """(answer deadline, decision deadline), in working days: the answer (acceptance) from the
    application; the decision from the acceptance, or from the application when the
    conditions have no answer step."""
    calendar = Calendar(pack.calendar)
    answer = (calendar.add_working_days(applied_on, conditions.answer_working_days)
              if conditions.answer_working_days is not None else None)
    decision = None
    if conditions.decision_working_days is not None and (accepted_on is not None or answer is None):
        decision = calendar.add_working_days(accepted_on or applied_on, conditions.decision_working_days)
    return answer, decision


def accept_repair(engine: Engine, pack: Pack, repair_id: int, on: dt.date, actor: Actor) -> dict[str, Any]:
    """The answer to an application: accepted for decision (late if after `answer_working_days`)."""
    with engine.begin() as c:
        repair = _repair(c, repair_id)
        own, conditions = _repair_case(c, pack, repair)
        authority = deciding_authority(pack, own, actor.authority)
        if repair["state"] != "pending" or repair["accepted_on"] is not None:
            raise DueProcessError(f"repair {repair_id} was already "
                                  f"{repair['state'] if repair['state'] != 'pending' else 'accepted'}")
        if on < repair["applied_on"]:
            raise DueProcessError(f"repair {repair_id} was applied for on {repair['applied_on']}: "
                                  f"an answer on {on} comes before it")
        answer, _decision = repair_deadlines(pack, conditions, repair["applied_on"], None)
        late = answer is not None and on > answer
        c.execute(update(t.repairs).where(t.repairs.c.id == repair_id).values(
            accepted_on=on, authority=authority, late=late))
        append_event(c, actor=actor.name, action="repair.accepted", object_type="repair", object_id=str(repair_id),
                     reason=actor.reason, payload={"on": on.isoformat(), "authority": authority,
                                                   **({"late": True, "deadline": answer.isoformat()} if late else {})})
    return {"repair": repair_id, "accepted_on": on, "authority": authority, "late": late}


def decide_repair(engine: Engine, pack: Pack, repair_id: int, approve: bool, on: dt.date,
                  actor: Actor) -> dict[str, Any]:
    """Approval ends the listing early and the publicity of its evidence records (or, for a
    record's repair, that record's publicity); refusal needs reasons. A decision after its
    deadline is taken all the same, and kept as late."""
    if not approve and not actor.reason:
        raise DueProcessError("a refusal gives its reasons (--reason)")
    with engine.begin() as c:
        repair = _repair(c, repair_id)
        own, conditions = _repair_case(c, pack, repair)
        authority = deciding_authority(pack, own, actor.authority)
        if repair["state"] != "pending":
            raise DueProcessError(f"repair {repair_id} was already {repair['state']}")
        if on < repair["applied_on"]:
            raise DueProcessError(f"repair {repair_id} was applied for on {repair['applied_on']}: "
                                  f"a decision on {on} comes before it")
        if repair["accepted_on"] is not None and on < repair["accepted_on"]:
            raise DueProcessError(f"repair {repair_id} was accepted on {repair['accepted_on']}: "
                                  f"a decision on {on} comes before it")
        # not accepted before: accepted by this decision (when the conditions have an answer step)
        accepted_on = repair["accepted_on"] or (on if conditions.answer_working_days is not None else None)
        answer, decision = repair_deadlines(pack, conditions, repair["applied_on"], accepted_on)
        late_answer = repair["accepted_on"] is None and answer is not None and on > answer
        late = bool(repair["late"]) or late_answer or (decision is not None and on > decision)
        state = "approved" if approve else "refused"
        c.execute(update(t.repairs).where(t.repairs.c.id == repair_id).values(
            state=state, decided_on=on, decided_by=actor.name, decision_reason=actor.reason, authority=authority,
            accepted_on=accepted_on or repair["applied_on"], late=late))
        append_event(c, actor=actor.name, action=f"repair.{state}", object_type="repair", object_id=str(repair_id),
                     reason=actor.reason,
                     payload={"listing": repair["listing_id"], "record": repair["record_key"], "on": on.isoformat(),
                              "authority": authority, **({"late": True} if late else {})})
        if approve and repair["listing_id"] is not None:
            _catch_up(c, pack, [repair["listing_id"]], on)
            # a listing that ended meanwhile (expired, performed) stays ended as it did; the approval
            # still ends its evidence's publicity (refusing it left the application pending for good).
            # One under review (an objection filed since) ends as a performance would end it.
            if _row(c, repair["listing_id"])["state"] in ACTIVE:
                _end(c, pack, repair["listing_id"], "repaired", on, actor, authority)
    return {"repair": repair_id, "decision": state, "listing": repair["listing_id"], "record": repair["record_key"],
            "authority": authority, "late": late}


def _repair(c: Connection, repair_id: int) -> Any:
    repair = c.execute(select(t.repairs).where(t.repairs.c.id == repair_id)).mappings().first()
    if repair is None:
        raise DueProcessError(f"no repair application {repair_id}")
    return repair


def publicity_ended(c: Connection, on: dt.date | None = None) -> dict[str, dt.date]:
    """Record keys whose publicity an approved repair ended (by `on`), with the date: a record
    repaired itself, and the evidence records of a repaired listing."""
    R, E, r = t.repairs.c, t.listing_evidence.c, t.records.c
    approved = [R.state == "approved", *([R.decided_on <= on] if on is not None else [])]
    ended: dict[str, dt.date] = {}
    for key, day in c.execute(select(R.record_key, R.decided_on).where(R.record_key.is_not(None), *approved)):
        ended[key] = min(day, ended.get(key, day))
    for key, day in c.execute(select(r.record_key, R.decided_on)
                              .join(t.listing_evidence, E.listing_id == R.listing_id)
                              .join(t.records, r.id == E.record_id).where(*approved)):
        ended[key] = min(day, ended.get(key, day))
    _same_decisions(c, ended)
    return ended


def listings_ended_publicity(c: Connection, pack: Pack, today: dt.date,
                             entity_id: int | None = None) -> dict[str, dt.date]:
    """Record keys of categories published only with their listings (`publicity.ends_with_listings`)
    whose every listing has ended by `today` (its term over, or a final state), with the day the last
    ended. 小米's court case, performed and off the list, is no longer shown as a defaulter's entry; a
    listing still under due process or in force keeps its evidence public. `entity_id`: that entity's
    listings only (an entity's page reads its own, not the whole store's)."""
    categories = sorted(category.code for category in pack.categories if category.publicity.ends_with_listings)
    if not categories:
        return {}
    L, E, r = t.listings.c, t.listing_evidence.c, t.records.c
    ended: dict[str, dt.date] = {}
    still: set[str] = set()
    for key, state, start, end, ended_on in c.execute(
            select(r.record_key, L.state, L.effective_from, L.effective_to, L.ended_on)
            .join(t.listing_evidence, E.record_id == r.id).join(t.listings, L.id == E.listing_id)
            .where(r.category.in_(categories), *([L.entity_id == entity_id] if entity_id is not None else []))):
        over = ended_on if state not in ACTIVE else end if state == "effective" and end is not None else None
        if over is None or over > today:
            still.add(key)
        else:
            ended[key] = max(over, ended.get(key, over))
    _same_decisions(c, ended)  # the court's re-send of the case written another way: ended too
    return {key: day for key, day in ended.items() if key not in still}


def _same_decisions(c: Connection, ended: dict[str, dt.date]) -> None:
    """Add to `ended` the other keys of the same subject carrying a repaired record's decision
    (`domain.records.decision_number`): the authority's re-send of the case written another way
    ((2026) for （2026）, the firm's name for its code) published the repaired case again. A record's
    subject is its newest version's: a version since corrected to another subject names nobody."""
    r, link = t.records.c, t.record_links.c

    def subjects(condition) -> dict[str, int]:  # record key -> entity of its newest version, where linked
        newest: dict[str, int | None] = {}
        for key, entity_id in c.execute(select(r.record_key, link.entity_id)
                                        .outerjoin(t.record_links, link.record_id == r.id)
                                        .where(condition).order_by(r.record_key, r.version.desc())):
            newest.setdefault(key, entity_id)
        return {key: entity_id for key, entity_id in newest.items() if entity_id is not None}

    keys = sorted(ended)
    holders: dict[int, set[str]] = {}  # entity -> its repaired keys
    for start in range(0, len(keys), 900):  # under every engine's bound-parameter limit
        for key, entity_id in subjects(r.record_key.in_(keys[start:start + 900])).items():
            holders.setdefault(entity_id, set()).add(key)
    entities = sorted(holders)
    for start in range(0, len(entities), 900):
        linked = select(r.record_key).join(t.record_links, link.record_id == r.id) \
            .where(link.entity_id.in_(entities[start:start + 900]))
        for key, entity_id in subjects(r.record_key.in_(linked.scalar_subquery())).items():
            if entity_id not in holders or key in ended:
                continue
            number = decision_number(key)
            days = [ended[k] for k in holders[entity_id] if k != key and decision_number(k) == number]
            if days:
                ended[key] = min(days)


# -- records: revocation and correction ---------------------------------------------------------------

def revoke_record(engine: Engine, pack: Pack, record_key: str, on: dt.date, actor: Actor) -> dict[str, Any]:
    with engine.begin() as c:
        others = _same_decision(c, record_key, on)
        version = _new_version(c, record_key, "revoked", actor)
        withdrawn = _withdraw_citing(c, pack, record_key, on, actor)
        relations_ended = _end_relations_of(c, record_key, on, actor)
        for other in others:  # one decision, one fate: its other writings go with it
            _new_version(c, other, "revoked", actor)
            withdrawn += _withdraw_citing(c, pack, other, on, actor)
            relations_ended += _end_relations_of(c, other, on, actor)
        _uphold_answered(c, pack, t.objections.c.record_key.in_([record_key, *others]), on, actor,
                         f"record {mask_record_key(record_key)} revoked")
    return {"record": record_key, "version": version, "status": "revoked", "listings_withdrawn": withdrawn,
            "relations_ended": relations_ended, "same_decision_revoked": others}


def _same_decision(c: Connection, record_key: str, on: dt.date) -> list[str]:
    """The active records of the same decision about the same entity stored under another writing of
    its number (（2026） and (2026), a space inside, the firm's name for its code: `_same_decisions`).
    Revoking one left the other standing on the subject's public file."""
    found = {record_key: on}
    _same_decisions(c, found)
    return sorted(key for key in found if key != record_key and _latest(c, key)["status"] != "revoked")


def _end_relations_of(c: Connection, record_key: str, on: dt.date, actor: Actor) -> int:
    """A revoked relations record (a shareholder, an actual controller) no longer holds: the
    relations it stated end on the revocation's date, so no measure reaches a person through it."""
    rel = t.entity_relations.c
    versions = select(t.records.c.id).where(t.records.c.record_key == record_key).scalar_subquery()
    ended = c.execute(update(t.entity_relations)
                      .where(rel.record_id.in_(versions), rel.valid_to.is_(None) | (rel.valid_to > on))
                      .values(valid_to=on)).rowcount
    if ended:
        append_event(c, actor=actor.name, action="relations.ended", object_type="record", object_id=record_key,
                     reason=actor.reason, payload={"relations": ended, "on": on.isoformat()})
    return ended


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
        # checked as ingestion checks a row, against the pack's today: a decision dated after the
        # pack's plausibility bound, an ID number of somebody not yet born, is a typo here too
        validator = RowValidator(pack, category, current["authority"], map_columns(pack, category, headers),
                                 pack_today(pack))
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
        _carry_link(c, current, outcome.subject_code, outcome.subject_name, version, actor.name)
        append_event(c, actor=actor.name, action="record.corrected", object_type="record", object_id=record_key,
                     reason=actor.reason, payload={"version": version, "fields": data,
                                                   "digest": version_digest(c, record_key, version)})
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
            from xinyong.services.resolution.entities import find_entity_id

            query = query.where(L.entity_id == find_entity_id(c, entity))
        if list_code:
            query = query.where(L.list_code == list_code)
        rows = [dict(r) for r in c.execute(query.order_by(L.id)).mappings()]
        history: dict[int, list[Any]] = {}
        if as_of is not None and rows:
            for tr in c.execute(select(T.listing_id, T.to_state, T.on_date).order_by(T.on_date, T.id)):
                history.setdefault(tr.listing_id, []).append(tr)
        evidence: dict[int, list[str]] = {}
        # a public surface never names a record whose publicity a repair ended
        ended = publicity_ended(c, as_of) if evidence_categories is not None else {}
        for listing_id, key, category in c.execute(
                select(t.listing_evidence.c.listing_id, t.records.c.record_key, t.records.c.category)
                .join(t.records, t.records.c.id == t.listing_evidence.c.record_id)):
            if (evidence_categories is None or category in evidence_categories) and key not in ended:
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
                    "end_reason": row["end_reason"] if row["ended_on"] is not None else None,
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
        transitions = [dict(r) for r in c.execute(select(T.from_state, T.to_state, T.on_date, T.actor, T.reason,
                                                         T.authority)
                                                  .where(T.listing_id == listing_id).order_by(T.id)).mappings()]
        reminders_ = [dict(r) for r in c.execute(select(t.reminders.c.on_date, t.reminders.c.actor)
                                                 .where(t.reminders.c.listing_id == listing_id)).mappings()]
        notices_ = [dict(r) for r in c.execute(select(t.notices.c.language, t.notices.c.issued_on,
                                                      t.notices.c.objection_deadline, t.notices.c.text)
                                               .where(t.notices.c.listing_id == listing_id)).mappings()]
        objections_ = [dict(r) for r in c.execute(select(t.objections).where(
            t.objections.c.listing_id == listing_id)).mappings()]
        R = t.repairs.c
        repairs_ = [dict(r) for r in c.execute(select(R.id, R.state, R.applied_on, R.accepted_on, R.decided_on,
                                                      R.decision_reason, R.authority, R.late)
                                               .where(R.listing_id == listing_id)).mappings()]
        r = t.records.c
        evidence = [dict(e) for e in c.execute(select(r.record_key, r.version, r.category, r.decision_date,
                                                      r.subject_name, r.subject_code, r.subject_scheme,
                                                      t.listing_evidence.c.note)
                                               .join(t.listing_evidence, t.listing_evidence.c.record_id == r.id)
                                               .where(t.listing_evidence.c.listing_id == listing_id)).mappings()]
    for item in evidence:
        item["record_key"] = mask_record_key(item["record_key"])
        scheme = item.pop("subject_scheme")
        if scheme in pack.person_schemes:
            item["subject_code"] = mask_identifier(scheme, item["subject_code"], pack.person_schemes)
    return {**{k: row[k] for k in ("id", "list_code", "state", "rule_version", "subject_kind", "proposed_on",
                                   "notified_on", "objection_deadline", "effective_from", "effective_to",
                                   "review_due", "ended_on", "end_reason", "extended_years")},
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


def _same_state_transition(c: Connection, listing_id: int, state: str, on: dt.date, actor: Actor,
                           authority: str) -> None:
    """A change of a listing's dates or end that keeps its state (an extension, an end undone) is
    stored as a transition from the state to itself, so the change feed, and a consumer mirroring
    it from its cursor, learns of it. Dated no earlier than the last change: history stays in order."""
    c.execute(t.listing_transitions.insert().values(
        listing_id=listing_id, from_state=state, to_state=state, on_date=max(on, _last_transition(c, listing_id)),
        actor=actor.name, reason=actor.reason, recorded_at=_now(), authority=authority))


def _step(c: Connection, pack: Pack, listing_id: int, target: str, on: dt.date, actor: Actor,
          changes: dict[str, Any] | None = None, authority: str | None = None) -> None:
    last = _last_transition(c, listing_id)
    if last is not None and on < last:  # `listing list --as-of` reads the history by date
        raise DueProcessError(f"listing {listing_id}: a step on {on} cannot come before its last change, on {last}")
    try:
        transition(c, pack, listing_id, target, on, actor=actor.name, reason=actor.reason, changes=changes,
                   authority=authority)
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
    if listing_ids:
        _uphold_answered(c, pack, t.objections.c.listing_id.in_(listing_ids), on, actor,
                         f"the listing was withdrawn: evidence record {mask_record_key(record_key)} revoked or corrected")
    return listing_ids


def _uphold_answered(c: Connection, pack: Pack, about: Any, on: dt.date, actor: Actor, because: str) -> None:
    """Open objections that a withdrawal answers, upheld on its day: to a listing its evidence's
    revocation or correction withdrew (it binds on no day), to a record revoked. Left open, the
    authority could still reject them: 小米's file showed its objection to a listing that never bound
    as rejected, and the case stayed on the overdue list until someone did."""
    O = t.objections.c
    for objection in c.execute(select(t.objections).where(about, O.state == "open").order_by(O.id)).mappings().all():
        authority = objection_authority(c, pack, objection)
        deadline = objection_deadline(c, pack, objection)
        day = max(on, objection["filed_on"])  # a revocation dated before the objection answers it when filed
        late = deadline is not None and day > deadline
        c.execute(update(t.objections).where(O.id == objection["id"]).values(
            state="upheld", decided_on=day, decided_by=actor.name, decision_reason=because, authority=authority,
            late=late))
        append_event(c, actor=actor.name, action="objection.upheld", object_type="objection",
                     object_id=str(objection["id"]), reason=because,
                     payload={"on": day.isoformat(), "authority": authority,
                              **({"late": True, "deadline": deadline.isoformat()} if late else {})})


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
                 reason=actor.reason, payload={"version": version, "digest": version_digest(c, record_key, version)})
    return version


def _carry_link(c: Connection, previous: Any, code: str | None, name: str | None, version: int,
                actor: str) -> None:
    """A correction about the same subject keeps its link; a changed subject waits for `resolve`."""
    if (code, name) != (previous["subject_code"], previous["subject_name"]):
        return
    link = c.execute(select(t.record_links).where(t.record_links.c.record_id == previous["id"])).mappings().first()
    if link is None:
        return
    new_id = c.execute(select(t.records.c.id).where(t.records.c.record_key == previous["record_key"],
                                                    t.records.c.version == version)).scalar_one()
    c.execute(t.record_links.insert().values(**{**dict(link), "record_id": new_id, "resolved_at": _now()}))
    audit_links(c, [(new_id, link["entity_id"], link["state"], link["method"])], actor, "correction")


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
