"""Measure decisions: (subject, action, as-of date) -> allow, deny or conditions, with why.

The vocabulary of every screening answer is `allow | deny | conditions | refer | not_found`:
`refer` is a possible match a person must check (name screening), `not_found` an identifier
that names nothing known. Their precedence is deny > refer > conditions > allow.

Pure: the caller hands over the listings that bear on the subject (its own, and those of
entities it represents), each with its dated state history; this module says which are in
force on the date, which of the pack's measures they trigger for the action, and what that
means. A measure applies while its listing is effective, and keeps applying while an
objection against an effective listing is under review: review does not suspend a
sanction that due process already made effective, unless the list's pack entry says
`objection_suspends`; then a measure that would deny only sets conditions while the
objection is open, and says so (`suspended`). A measure with `max_years` binds at most
that long from the listing's effective date, even while the listing stays in force.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from xinyong.domain.calendar import add_years
from xinyong.domain.listings import UNDONE
from xinyong.domain.pack import MeasureSpec, Pack

IN_FORCE = ("effective", "under_review")


def in_force(state: str | None, effective_from: dt.date | None, effective_to: dt.date | None, day: dt.date) -> bool:
    """A listing binds on `day` when due process made it effective (an objection reviewed
    after that does not suspend it), from its first day until the day before its end."""
    return (state in IN_FORCE and effective_from is not None and effective_from <= day
            and (effective_to is None or day < effective_to))


@dataclass(frozen=True, slots=True)
class Evidence:
    record_key: str  # masked where it embeds a person's ID number
    version: int
    category: str
    authority: str
    decision_date: dt.date | None


@dataclass(frozen=True, slots=True)
class ListingView:
    """A listing as screening sees it: its dated history and its evidence."""

    id: int
    entity_key: str
    list_code: str
    history: tuple[tuple[dt.date, str], ...]  # (on_date, state), in order
    effective_from: dt.date | None
    effective_to: dt.date | None
    ended_on: dt.date | None
    evidence: tuple[Evidence, ...]
    # objections to the listing or to its evidence: (objection id, filed on, decided on or None)
    objections: tuple[tuple[int, dt.date, dt.date | None], ...] = ()
    # why it ended, if it did: a listing undone (`domain.listings.UNDONE`: an objection upheld, its
    # evidence revoked) never bound anyone, whatever the day asked
    end_reason: str | None = None

    def open_objection_on(self, day: dt.date) -> tuple[int, dt.date] | None:
        """The earliest objection open on `day`, as (id, filed on)."""
        open_ = [(filed, oid) for oid, filed, decided in self.objections
                 if filed <= day and (decided is None or decided > day)]
        return (min(open_)[1], min(open_)[0]) if open_ else None

    def state_on(self, day: dt.date) -> str | None:
        """The state in effect on `day` (None: not yet proposed)."""
        state = None
        for on_date, to_state in self.history:
            if on_date > day:
                break
            state = to_state
        return state

    def in_force_on(self, day: dt.date) -> bool:
        if self.end_reason in UNDONE:
            return False
        return in_force(self.state_on(day), self.effective_from, self.effective_to, day)


@dataclass(frozen=True, slots=True)
class Bearing:
    """A listing that bears on the subject, directly or through a relation."""

    listing: ListingView
    relation: str | None = None  # e.g. legal_representative: the subject represents the listed entity
    # False: the relation carries the subject's ID number under another person's name; whether the
    # subject is the one the register names is for a human to check (refer, never deny)
    confirmed: bool = True


@dataclass(frozen=True, slots=True)
class AppliedMeasure:
    measure: MeasureSpec
    listing: ListingView
    relation: str | None
    suspended: dict[str, object] | None = None  # {objection, filed_on}: the measure is suspended
    confirmed: bool = True  # the bearing's (`Bearing.confirmed`)

    @property
    def ends(self) -> dt.date | None:
        ends = [self.listing.effective_to]
        if self.measure.max_years is not None and self.listing.effective_from is not None:
            ends.append(add_years(self.listing.effective_from, self.measure.max_years))
        known = [d for d in ends if d is not None]
        return min(known) if known else None


@dataclass(slots=True)
class Decision:
    decision: str  # one of DECISIONS; `decide` gives allow, deny or conditions
    action: str
    as_of: dt.date
    measures: list[AppliedMeasure] = field(default_factory=list)


EFFECT_DECISION = {"deny": "deny", "conditions": "conditions", "reward": "conditions"}
DECISIONS = ("allow", "deny", "conditions", "refer", "not_found")
SEVERITY = {"allow": 0, "conditions": 1, "refer": 2, "deny": 3}  # precedence when answers combine


def strongest(decisions: Iterable[str]) -> str:
    """The decision that prevails among several (deny > refer > conditions > allow)."""
    return max(decisions, key=SEVERITY.__getitem__, default="allow")


def with_foreign(decision: str, effects: Iterable[str]) -> str:
    """The decision once foreign designations are counted: each adds the pack's effect for how it
    matched (never a listing's measure). `allow` adds nothing, so an unknown identifier with no
    designation stays `not_found`; otherwise deny > refer > conditions > allow."""
    added = [effect for effect in effects if effect != "allow"]
    if not added:
        return decision
    return strongest(added if decision == "not_found" else (decision, *added))


def _within_max(measure: MeasureSpec, listing: ListingView, day: dt.date) -> bool:
    return (measure.max_years is None or listing.effective_from is None
            or day < add_years(listing.effective_from, measure.max_years))


class UnknownAction(ValueError):
    pass


def measures_for(pack: Pack, action: str) -> tuple[MeasureSpec, ...]:
    if action not in {a.code for a in pack.actions}:
        known = ", ".join(a.code for a in pack.actions)
        raise UnknownAction(f"unknown action {action!r}; the pack's actions are: {known}")
    return tuple(m for m in pack.measures if action in m.actions)


def decide(measures: tuple[MeasureSpec, ...], action: str, as_of: dt.date,
           bearings: Iterable[Bearing], suspending_lists: frozenset[str] = frozenset()) -> Decision:
    """The decision for one subject. `measures` are the action's (see `measures_for`);
    `suspending_lists`: the lists whose measures an open objection suspends."""
    decision = Decision("allow", action, as_of)
    for bearing in bearings:
        listing = bearing.listing
        if not listing.in_force_on(as_of):
            continue
        for measure in measures:
            if listing.list_code not in measure.lists:
                continue
            if bearing.relation is not None and bearing.relation not in measure.reaches:
                continue
            if not _within_max(measure, listing, as_of):
                continue
            effect = EFFECT_DECISION[measure.effect]
            suspended = None
            if listing.list_code in suspending_lists:
                objection = listing.open_objection_on(as_of)
                if objection is not None:
                    suspended = {"objection": objection[0], "filed_on": objection[1]}
                    effect = "conditions" if effect == "deny" else effect
            if not bearing.confirmed and effect in ("deny", "conditions"):
                effect = "refer"
            decision.measures.append(AppliedMeasure(measure, listing, bearing.relation, suspended, bearing.confirmed))
            decision.decision = strongest((decision.decision, effect))
    return decision
