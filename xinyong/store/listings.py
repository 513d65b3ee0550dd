"""The only way a listing changes state: the domain machine's guard, then the write.

`transition` reads the listing's facts under a row lock, asks the domain state machine
whether the change may happen, updates the listing only if its state is still the one
it read (so two writers cannot both move it), and records the transition and its audit
event in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from xinyong.domain.listings import IllegalTransition, ListingFacts, check_transition
from xinyong.domain.pack import Pack
from xinyong.store import tables as t
from xinyong.store.audit import append_event


class ListingNotFound(Exception):
    pass


def listing_row(connection: Connection, listing_id: int) -> Any:
    query = select(t.listings).where(t.listings.c.id == listing_id)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    row = connection.execute(query).mappings().first()
    if row is None:
        raise ListingNotFound(f"no listing {listing_id}")
    return row


def facts(connection: Connection, pack: Pack, row: Any) -> ListingFacts:
    spec = pack.list_(row["list_code"])
    reminders = connection.execute(select(func.count()).select_from(t.reminders)
                                   .where(t.reminders.c.listing_id == row["id"])).scalar_one()
    open_objections = connection.execute(
        select(func.count()).select_from(t.objections)
        .where(t.objections.c.state == "open", t.objections.c.listing_id == row["id"])).scalar_one()
    required = spec.due_process.reminders_required.get(row["subject_kind"], 0)
    return ListingFacts(
        state=row["state"], subject_kind=row["subject_kind"], reminders=reminders,
        reminders_required=required, notified_on=row["notified_on"],
        objection_deadline=row["objection_deadline"], open_objections=open_objections,
        effective_to=row["effective_to"], open_ended=spec.duration.kind == "until_performance",
        end_reason=row.get("end_reason"), notice_required=spec.due_process.notice_required)


def transition(connection: Connection, pack: Pack, listing_id: int, target: str, on: dt.date, *,
               actor: str, reason: str | None, changes: dict[str, Any] | None = None,
               authority: str | None = None) -> None:
    """Move a listing to `target` on date `on`, with `changes` to its dates; or raise.
    `authority`: the authority the step is taken as (None: a step that time takes)."""
    row = listing_row(connection, listing_id)
    # the guards see the listing as it will be (e.g. with its notice date and deadline)
    check_transition(facts(connection, pack, {**row, **(changes or {})}), target, on)
    done = connection.execute(update(t.listings)
                              .where(t.listings.c.id == listing_id, t.listings.c.state == row["state"])
                              .values(state=target, **(changes or {})))
    if done.rowcount != 1:
        raise IllegalTransition(f"listing {listing_id} changed while this step ran; try again")
    now = dt.datetime.now(dt.timezone.utc)
    connection.execute(t.listing_transitions.insert().values(
        listing_id=listing_id, from_state=row["state"], to_state=target, on_date=on, actor=actor,
        reason=reason, recorded_at=now, authority=authority))
    spec = pack.list_(row["list_code"])
    append_event(connection, actor=actor, action=f"listing.{target}", object_type="listing",
                 object_id=str(listing_id), reason=reason, legal_basis=spec.legal_basis,
                 payload={"from": row["state"], "to": target, "on": on.isoformat(),
                          **({"authority": authority} if authority else {}),
                          **{k: v.isoformat() if isinstance(v, dt.date) else v
                             for k, v in (changes or {}).items()}})
