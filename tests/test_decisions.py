"""The decision engine alone: which listings are in force on a date, which measures they
trigger for an action, and how effects combine (deny > conditions > allow)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xinyong.domain.decisions import Bearing, Evidence, ListingView, UnknownAction, decide, measures_for
from xinyong.domain.pack import load_pack

PACK = load_pack("cn")
D = dt.date


def listing(list_code: str, history: list[tuple[str, str]], effective_from: str | None = None,
            effective_to: str | None = None, entity: str = "E1") -> ListingView:
    return ListingView(1, entity, list_code, tuple((D.fromisoformat(d), s) for d, s in history),
                       D.fromisoformat(effective_from) if effective_from else None,
                       D.fromisoformat(effective_to) if effective_to else None, None,
                       (Evidence("samr:罚1号", 1, "penalty", "samr", D(2025, 6, 3)),))


SERIOUS = listing("serious_dishonesty", [("2025-09-15", "proposed"), ("2025-09-22", "notified"),
                                         ("2025-10-12", "effective")], "2025-10-12", "2028-10-12")


def test_an_effective_listing_denies_procurement_with_its_measure_and_end():
    decision = decide(measures_for(PACK, "public_procurement"), "public_procurement", D(2026, 1, 5), [Bearing(SERIOUS)])
    assert decision.decision == "deny"
    (applied,) = decision.measures
    assert applied.measure.code == "no_public_procurement" and applied.ends == D(2028, 10, 12)
    assert "政府采购法" in applied.measure.legal_basis


def test_conditions_when_only_a_conditions_measure_applies():
    decision = decide(measures_for(PACK, "licensing"), "licensing", D(2026, 1, 5), [Bearing(SERIOUS)])
    assert decision.decision == "conditions"
    assert [m.measure.code for m in decision.measures] == ["licence_scrutiny"]


@pytest.mark.parametrize("day", ["2025-09-01", "2025-09-30", "2025-10-11", "2028-10-12", "2030-01-01"])
def test_nothing_applies_before_effect_or_after_the_end(day):
    decision = decide(measures_for(PACK, "public_procurement"), "public_procurement", D.fromisoformat(day),
                      [Bearing(SERIOUS)])
    assert (decision.decision, decision.measures) == ("allow", [])


def test_a_withdrawn_listing_stops_applying_on_the_day_of_withdrawal():
    withdrawn = listing("serious_dishonesty", [("2025-09-15", "proposed"), ("2025-09-22", "notified"),
                                               ("2025-10-12", "effective"), ("2026-02-01", "withdrawn")],
                        "2025-10-12", "2028-10-12")
    measures = measures_for(PACK, "bidding")
    assert decide(measures, "bidding", D(2026, 1, 31), [Bearing(withdrawn)]).decision == "deny"
    assert decide(measures, "bidding", D(2026, 2, 1), [Bearing(withdrawn)]).decision == "allow"


def test_review_of_an_effective_listing_does_not_suspend_it():
    reviewed = listing("serious_dishonesty", [("2025-09-15", "proposed"), ("2025-09-22", "notified"),
                                              ("2025-10-12", "effective"), ("2025-11-01", "under_review")],
                       "2025-10-12", "2028-10-12")
    assert decide(measures_for(PACK, "bidding"), "bidding", D(2025, 11, 5), [Bearing(reviewed)]).decision == "deny"


def test_a_measure_reaches_a_representative_only_where_the_pack_says_so():
    debtor = listing("court_defaulters", [("2025-09-15", "proposed"), ("2025-09-22", "notified"),
                                          ("2025-10-03", "effective")], "2025-10-03", None, entity="FIRM")
    through = Bearing(debtor, "legal_representative")
    consumption = decide(measures_for(PACK, "high_consumption"), "high_consumption", D(2026, 1, 1), [through])
    assert consumption.decision == "deny" and consumption.measures[0].relation == "legal_representative"
    procurement = decide(measures_for(PACK, "public_procurement"), "public_procurement", D(2026, 1, 1), [through])
    assert procurement.decision == "allow"  # no_public_procurement does not reach the person


def test_a_redlist_reward_gives_conditions():
    grade_a = listing("tax_a_grade", [("2025-04-01", "proposed"), ("2025-04-02", "notified"),
                                      ("2025-04-03", "effective")], "2025-04-03", "2026-04-03")
    decision = decide(measures_for(PACK, "financing"), "financing", D(2025, 6, 1), [Bearing(grade_a)])
    assert decision.decision == "conditions" and decision.measures[0].measure.effect == "reward"


def test_an_unknown_action_is_refused_with_the_known_ones():
    with pytest.raises(UnknownAction, match="public_procurement"):
        measures_for(PACK, "fishing")


STATES = st.sampled_from(["proposed", "notified", "under_review", "effective", "expired", "repaired", "withdrawn"])


@given(st.lists(st.tuples(st.integers(0, 2000), STATES), min_size=1, max_size=6),
       st.sampled_from([a.code for a in PACK.actions]), st.integers(0, 2500),
       st.sampled_from([lst.code for lst in PACK.lists]))
def test_deny_exactly_when_an_in_force_listing_triggers_a_deny_measure(steps, action, offset, list_code):
    start = D(2024, 1, 1)
    history = sorted((start + dt.timedelta(days=d), s) for d, s in steps)
    effective = next((d for d, s in history if s == "effective"), None)
    view = ListingView(1, "E", list_code, tuple(history), effective,
                       effective + dt.timedelta(days=365) if effective else None, None, ())
    day = start + dt.timedelta(days=offset)
    decision = decide(measures_for(PACK, action), action, day, [Bearing(view)])
    expected_measures = [m for m in measures_for(PACK, action) if list_code in m.lists] if view.in_force_on(day) else []
    assert [m.measure for m in decision.measures] == expected_measures
    effects = {m.effect for m in expected_measures}
    assert decision.decision == ("deny" if "deny" in effects else "conditions" if effects else "allow")
