"""What time and new records do to listings by the pack's rules, beside notices and terms.

`services.lists.due_process` calls these from its timed step (`process`, and the catch-up before a
human step): `before_terms` ends a listing whose evidence is cured (`cured_by`), a redlist
listing that a later annual record replaced (`annual_publication`), moves a listing that
stayed its time without cure (`moves_to`), ends redlist listings that a blacklist in force
excludes (`excludes`), and makes notice-free redlist proposals effective; `after_terms` applies
the exclusions of blacklist listings that have just taken effect. `term` gives the end of a
listing that takes effect (`duration.terms`, `annual_publication`).

Each end is dated the day it fell due, or the listing's last change if that is later.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from xinyong.domain.calendar import add_months, add_years, term_end
from xinyong.domain.conditions import holds
from xinyong.domain.decisions import IN_FORCE
from xinyong.domain.listings import ACTIVE
from xinyong.domain.pack import ListSpec, Pack
from xinyong.store import tables as t
from xinyong.store.audit import append_event
from xinyong.store.listings import transition

L, E, R = t.listings.c, t.listing_evidence.c, t.records.c


def _fields(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else orjson.loads(value)


def _types(pack: Pack, category: str) -> dict[str, Any]:
    return {f.name: f.type for f in pack.fields_of(pack.category(category))}


def _evidence(c: Connection, listing_id: int) -> list[Any]:
    return c.execute(select(R.id, R.record_key, R.category, R.fields).join(t.listing_evidence, E.record_id == R.id)
                     .where(E.listing_id == listing_id).order_by(R.id)).all()


def _latest(c: Connection, record_key: str) -> Any:
    return c.execute(select(R.id, R.status, R.category, R.fields, R.decision_date).where(R.record_key == record_key)
                     .order_by(R.version.desc()).limit(1)).first()


def _year(spec: ListSpec, evidence: list[Any]) -> int | None:
    annual = spec.annual_publication
    years = [int(float(_fields(e.fields)[annual.year_field])) for e in evidence  # type: ignore[union-attr]
             if _fields(e.fields).get(annual.year_field) not in (None, "")]  # type: ignore[union-attr]
    return max(years) if years else None


def term(c: Connection, pack: Pack, listing_id: int, list_code: str,
         start: dt.date) -> tuple[dt.date | None, dt.date | None]:
    """(effective_to, review_due) of a listing that takes effect on `start`."""
    spec = pack.list_(list_code)
    evidence = _evidence(c, listing_id)
    if spec.annual_publication is not None and (year := _year(spec, evidence)) is not None:
        return spec.annual_publication.published(year + 2), None  # until the next publication
    types: dict[str, Any] = {}
    for e in evidence:
        types.update(_types(pack, e.category))
    end = term_end(spec.duration, start, [_fields(e.fields) for e in evidence], types)
    review = (add_months(start, spec.duration.review_interval_months)
              if end is None and spec.duration.review_interval_months else None)
    return end, review


def _last_change(c: Connection, listing_id: int) -> dt.date:
    T = t.listing_transitions.c
    return c.execute(select(func.max(T.on_date)).where(T.listing_id == listing_id)).scalar_one()


def end_listing(c: Connection, pack: Pack, listing_id: int, due: dt.date, end_reason: str, actor: str,
                reason: str) -> dt.date:
    """End an active listing on `due` (or its last change, if later), saying why: one that took
    effect runs until that day (expired), one that had not is withdrawn."""
    row = c.execute(select(L.state).where(L.id == listing_id)).one()
    on = max(due, _last_change(c, listing_id))
    if row.state == "effective":
        transition(c, pack, listing_id, "expired", on, actor=actor, reason=reason,
                   changes={"effective_to": on, "ended_on": on, "end_reason": end_reason})
    else:
        transition(c, pack, listing_id, "withdrawn", on, actor=actor, reason=reason,
                   changes={"ended_on": on, "end_reason": end_reason})
    return on


def _scope(only: list[int] | None) -> list[Any]:
    return [] if only is None else [L.id.in_(only)]


def before_terms(c: Connection, pack: Pack, as_of: dt.date, actor: str,
                 only: list[int] | None = None) -> dict[str, int]:
    done = {"cured": 0, "replaced": 0, "moved": 0, "excluded": 0}
    for spec in pack.lists:
        if spec.cured_by:
            done["cured"] += _cure(c, pack, spec, as_of, actor, only)
        if spec.annual_publication:
            done["replaced"] += _replace(c, pack, spec, as_of, actor, only)
        if spec.moves_to:
            done["moved"] += _move(c, pack, spec, as_of, actor, only)
    done["excluded"] += _exclude(c, pack, as_of, actor, only)
    return done


def after_terms(c: Connection, pack: Pack, as_of: dt.date, actor: str,
                only: list[int] | None = None) -> dict[str, int]:
    """After notices' windows closed: the exclusions of blacklist listings that took effect,
    then notice-free proposals (redlists) take effect, once no blacklist excludes them."""
    done = {"excluded": _exclude(c, pack, as_of, actor, only), "effective_without_notice": 0}
    for spec in pack.lists:
        if not spec.due_process.notice_required:
            done["effective_without_notice"] += _effective_without_notice(c, pack, spec, as_of, actor, only)
    return done


def _exclude(c: Connection, pack: Pack, as_of: dt.date, actor: str, only: list[int] | None) -> int:
    """A blacklist listing in force ends, from its first day, every redlist listing it excludes."""
    ended = 0
    for spec in pack.lists:
        if not spec.excludes:
            continue
        black = t.listings.alias("black")
        scope = [] if only is None else [(L.id.in_(only)) | (black.c.id.in_(only))]
        rows = c.execute(select(L.id, black.c.effective_from, black.c.id.label("black_id"))
                         .join(black, and_(black.c.entity_id == L.entity_id, black.c.list_code == spec.code))
                         .where(L.list_code.in_(spec.excludes), L.state.in_(ACTIVE),
                                black.c.state.in_(IN_FORCE), black.c.effective_from <= as_of, *scope)
                         .order_by(L.id)).all()
        for listing_id, starts, black_id in rows:
            if c.execute(select(L.state).where(L.id == listing_id)).scalar_one() not in ACTIVE:
                continue  # two blacklist listings of the subject: the first ended it
            end_listing(c, pack, listing_id, starts, "excluded_by_blacklist", actor,
                        f"excluded by listing {black_id} on {spec.code}")
            ended += 1
    return ended


def _cure(c: Connection, pack: Pack, spec: ListSpec, as_of: dt.date, actor: str, only: list[int] | None) -> int:
    """Every evidence record's latest version carries its cure date: the listing ends on the last one."""
    ended = 0
    cited, latest, newer = t.records.alias("cited"), t.records.alias("latest"), t.records.alias("newer")
    candidates = (select(L.id).distinct()  # a listing with at least one cured evidence record
                  .join(t.listing_evidence, E.listing_id == L.id)
                  .join(cited, cited.c.id == E.record_id)
                  .join(latest, latest.c.record_key == cited.c.record_key)
                  .where(L.list_code == spec.code, L.state.in_(ACTIVE), *_scope(only),
                         ~select(newer.c.id).where(newer.c.record_key == latest.c.record_key,
                                                   newer.c.version > latest.c.version).exists(),
                         latest.c.fields[spec.cured_by].as_string().is_not(None)))
    for (listing_id,) in c.execute(candidates.order_by(L.id)).all():
        dates = []
        for e in _evidence(c, listing_id):
            value = _fields(_latest(c, e.record_key).fields).get(spec.cured_by)
            dates.append(dt.date.fromisoformat(str(value)[:10]) if value not in (None, "") else None)
        if not dates or None in dates or max(dates) > as_of:  # type: ignore[operator]
            continue
        end_listing(c, pack, listing_id, max(dates), "cured", actor,  # type: ignore[type-var]
                    f"{spec.cured_by} recorded on every evidence record")
        ended += 1
    return ended


def _replace(c: Connection, pack: Pack, spec: ListSpec, as_of: dt.date, actor: str, only: list[int] | None) -> int:
    """A later annual record that does not meet the rule (a later B, C, D or M grade) ends the listing."""
    from xinyong.services.lists.evaluate import rule_in_force

    annual = spec.annual_publication
    ended = 0
    cited, later = t.records.alias("cited"), t.records.alias("later")
    link = t.record_links.c
    year_field = annual.year_field  # type: ignore[union-attr]
    candidates = (select(L.id, L.entity_id, L.effective_to).distinct()  # the subject has a later record
                  .join(t.listing_evidence, E.listing_id == L.id)
                  .join(cited, cited.c.id == E.record_id)
                  .join(t.record_links, link.entity_id == L.entity_id)
                  .join(later, later.c.id == link.record_id)
                  .where(L.list_code == spec.code, L.state.in_(ACTIVE), *_scope(only),
                         later.c.category == cited.c.category,
                         later.c.fields[year_field].as_float() > cited.c.fields[year_field].as_float()))
    for listing_id, entity_id, effective_to in c.execute(candidates.order_by(L.id)).all():
        evidence = _evidence(c, listing_id)
        year = _year(spec, evidence)
        rule = rule_in_force(spec, as_of)
        if year is None or rule is None:
            continue
        later = []
        for row in c.execute(select(R.record_key).distinct().join(t.record_links, t.record_links.c.record_id == R.id)
                             .where(t.record_links.c.entity_id == entity_id, R.category.in_(rule.categories))):
            latest = _latest(c, row.record_key)
            fields = _fields(latest.fields)
            value = fields.get(annual.year_field)  # type: ignore[union-attr]
            if latest.status != "active" or value in (None, "") or int(float(value)) <= year:
                continue
            types = _types(pack, latest.category)
            meets = (all(holds(x, fields, types) for x in rule.all_of)
                     and (not rule.any_of or any(holds(x, fields, types) for x in rule.any_of)))
            known = latest.decision_date or annual.published(int(float(value)) + 1)  # type: ignore[union-attr]
            if not meets and known <= as_of and (effective_to is None or known < effective_to):
                later.append(known)
        if later:
            end_listing(c, pack, listing_id, min(later), "term_expired", actor,
                        f"a later {annual.year_field} replaced the one listed")  # type: ignore[union-attr]
            ended += 1
    return ended


def _move(c: Connection, pack: Pack, spec: ListSpec, as_of: dt.date, actor: str, only: list[int] | None) -> int:
    """In force `after_years` without cure: the listing ends and the subject is proposed for the next list."""
    move = spec.moves_to
    moved = 0
    # a day's margin for month-end clamping; the exact date is checked below
    latest_start = add_years(as_of, -move.after_years) + dt.timedelta(days=1)  # type: ignore[union-attr]
    for row in c.execute(select(L.id, L.entity_id, L.subject_kind, L.language, L.effective_from).where(
            L.list_code == spec.code, L.state == "effective", L.effective_from <= latest_start,
            *_scope(only)).order_by(L.id)).all():
        due = add_years(row.effective_from, move.after_years)  # type: ignore[union-attr]
        if due > as_of:
            continue
        on = end_listing(c, pack, row.id, due, "moved_to_serious", actor,
                         f"{move.after_years:g} years on {spec.code} without cure")  # type: ignore[union-attr]
        moved += 1
        target = move.list  # type: ignore[union-attr]
        if c.execute(select(L.id).where(L.entity_id == row.entity_id, L.list_code == target,
                                        L.state.in_(ACTIVE))).first() is not None:
            continue  # already on its way to the target list
        now = dt.datetime.now(dt.timezone.utc)
        version = f"moved:{spec.code}"[:32]
        reason = f"moved from {spec.code} (listing {row.id}) after {move.after_years:g} years"  # type: ignore[union-attr]
        new_id = c.execute(t.listings.insert().values(
            entity_id=row.entity_id, list_code=target, rule_version=version, state="proposed",
            subject_kind=row.subject_kind, language=row.language or pack.language, proposed_on=on, created_at=now)
            .returning(L.id)).scalar_one()
        evidence = [e.id for e in _evidence(c, row.id)]
        if evidence:
            c.execute(t.listing_evidence.insert(), [{"listing_id": new_id, "record_id": rid} for rid in evidence])
        c.execute(t.listing_transitions.insert().values(listing_id=new_id, from_state=None, to_state="proposed",
                                                        on_date=on, actor=actor, reason=reason, recorded_at=now))
        append_event(c, actor=actor, action="listing.proposed", object_type="listing", object_id=str(new_id),
                     reason=reason, legal_basis=pack.list_(target).legal_basis,
                     payload={"entity_id": row.entity_id, "list": target, "rule_version": version,
                              "evidence": evidence, "on": on.isoformat(), "moved_from": row.id})
    return moved


def _effective_without_notice(c: Connection, pack: Pack, spec: ListSpec, as_of: dt.date, actor: str,
                              only: list[int] | None) -> int:
    """A proposal on a list that needs no notice takes effect at the next `process` (and ends
    there too if its term is already over by then)."""
    count = 0
    for listing_id, proposed_on in c.execute(select(L.id, L.proposed_on).where(
            L.list_code == spec.code, L.state == "proposed", *_scope(only)).order_by(L.id)).all():
        start = max(proposed_on, _last_change(c, listing_id))
        year = _year(spec, _evidence(c, listing_id)) if spec.annual_publication else None
        if year is not None:
            start = max(start, spec.annual_publication.published(year + 1))  # type: ignore[union-attr]
        if start > as_of:
            continue
        end, review = term(c, pack, listing_id, spec.code, start)
        if end is not None and end <= start:  # its term passed before it could take effect
            end_listing(c, pack, listing_id, start, "term_expired", actor, "term over before it took effect")
            continue
        transition(c, pack, listing_id, "effective", start, actor=actor, reason="no notice required",
                   changes={"effective_from": start, "effective_to": end, "review_due": review})
        count += 1
        if end is not None and end <= as_of:
            transition(c, pack, listing_id, "expired", end, actor=actor, reason="term over",
                       changes={"ended_on": end, "end_reason": "term_expired"})
    return count
