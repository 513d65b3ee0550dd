"""The listing life cycle: a state machine that no caller can bypass.

proposed -> notified -> effective -> expired | repaired | withdrawn, with objections
sending a notified or effective listing to under_review, from where a decision makes it
effective again or withdraws it. A list that needs no notice (a redlist) goes from
proposed straight to effective. Each transition has a guard; the store applies a
transition only through `check_transition`, and refuses any other change of state.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

STATES = ("proposed", "notified", "under_review", "effective", "expired", "repaired", "withdrawn")
ACTIVE = ("proposed", "notified", "under_review", "effective")
FINAL = ("expired", "repaired", "withdrawn")
# A person's listing whose evidence never named them by a valid ID number: who was listed was never
# established (a store made before evaluation required the number held such listings)
WITHDRAWN_UNIDENTIFIED = "withdrawn_unidentified"
# A listing whose evidence a reviewer found to be about another entity: the record still holds the
# decision, and the entity it is about is evaluated on it (it spends nothing, as the unidentified)
WITHDRAWN_MOVED = "withdrawn_moved"
# ends whose evidence is not spent: it was never about the listed subject
NOT_SPENT = (WITHDRAWN_UNIDENTIFIED, WITHDRAWN_MOVED)
# Why a listing ended; every ended listing has one (shown in the history, the change feed).
END_REASONS = ("term_expired", "repaired", "cured", "performed", "withdrawn_objection", "withdrawn_record",
               WITHDRAWN_UNIDENTIFIED, WITHDRAWN_MOVED, "excluded_by_blacklist", "moved_to_serious")
# Ends that undo a listing rather than close it: never shown in the public history.
UNDONE = ("withdrawn_objection", "withdrawn_record", WITHDRAWN_UNIDENTIFIED, WITHDRAWN_MOVED)

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "proposed": ("notified", "effective", "withdrawn"),
    "notified": ("effective", "under_review", "withdrawn"),
    "under_review": ("effective", "withdrawn"),
    "effective": ("under_review", "expired", "repaired", "withdrawn"),
    "expired": (),
    "repaired": (),
    "withdrawn": (),
}


def last_day_in_force(effective_to: dt.date) -> dt.date:
    """`effective_to` is the first day a listing no longer binds (`process` expires it that day): what a
    page shows "until" is the day before."""
    return effective_to - dt.timedelta(days=1)


class IllegalTransition(Exception):
    """A change of state that the life cycle does not allow, with the reason."""


@dataclass(frozen=True)
class ListingFacts:
    """What the guards look at."""

    state: str
    subject_kind: str
    reminders: int
    reminders_required: int
    notified_on: dt.date | None
    objection_deadline: dt.date | None
    open_objections: int
    effective_to: dt.date | None
    open_ended: bool  # the pack's duration is until_performance
    end_reason: str | None = None  # set by the step that ends the listing
    notice_required: bool = True  # the pack's due process: only a redlist may go without


def check_transition(facts: ListingFacts, target: str, on: dt.date) -> None:
    """Raise IllegalTransition unless `facts.state -> target` may happen on `on`."""
    if target not in STATES:
        raise IllegalTransition(f"unknown state {target!r}")
    if target not in TRANSITIONS[facts.state]:
        raise IllegalTransition(f"a listing that is {facts.state} cannot become {target}")
    if target in FINAL and facts.end_reason not in END_REASONS:
        raise IllegalTransition(f"a listing ends only with a reason among {', '.join(END_REASONS)}; "
                                f"got {facts.end_reason!r}")
    if target == "notified" and facts.reminders < facts.reminders_required:
        raise IllegalTransition(
            f"{facts.reminders_required} formal reminders are required before notice; "
            f"{facts.reminders} recorded")
    if target == "effective" and facts.state == "proposed":
        if facts.notice_required:
            raise IllegalTransition("no listing becomes effective without a notice")
        if facts.effective_to is None and not facts.open_ended:
            raise IllegalTransition("an effective listing needs an end date")
    elif target == "effective":
        if facts.notified_on is None or facts.objection_deadline is None:
            raise IllegalTransition("no listing becomes effective without a notice")
        if on <= facts.objection_deadline:
            raise IllegalTransition(f"the objection window is open until {facts.objection_deadline}")
        if facts.open_objections:
            raise IllegalTransition("an objection is under review")
        if facts.effective_to is None and not facts.open_ended:
            raise IllegalTransition("an effective listing needs an end date")
    if target == "expired" and (facts.effective_to is None or on < facts.effective_to):
        raise IllegalTransition(f"the listing runs until {facts.effective_to or 'performance'}")
