"""The national pack's deadlines on closed days: a period whose last day is a rest day or a
statutory holiday ends on the first working day after it (《民法典》第二百零三条,
《民事诉讼法》第八十五条), and the operator is warned when a deadline runs into a year whose
holidays the pack does not list yet. Real firm names, codes with valid check characters."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import time_machine

from test_trust_adversarial_18 import GREE, listing_of, registered_and_judged
from websession import WebSession, text_of
from worlds import run, serving
from xinyong.domain.calendar import Calendar
from xinyong.domain.pack import load_pack

CN = load_pack("cn")
UTC = dt.timezone.utc


def test_a_calendar_window_ending_on_national_day_ends_on_the_first_working_day_after() -> None:
    calendar = Calendar(CN.calendar)
    # 10 days from 22 September 2025 end on 2 October, inside the 1-8 October holidays
    assert calendar.deadline(dt.date(2025, 9, 22), 10, "calendar") == dt.date(2025, 10, 9)
    # 10 days from 16 September 2026 end on Saturday 26 September, inside 中秋 (25-27): Monday 28
    assert calendar.deadline(dt.date(2026, 9, 16), 10, "calendar") == dt.date(2026, 9, 28)
    # a make-up working Sunday (调休, 20 September 2026) is a working day: the window ends on it
    assert calendar.deadline(dt.date(2026, 9, 10), 10, "calendar") == dt.date(2026, 9, 20)
    # a window ending on a working day is not moved
    assert calendar.deadline(dt.date(2026, 11, 2), 10, "calendar") == dt.date(2026, 11, 12)


def test_years_whose_holidays_are_not_listed_are_named_only_where_holidays_count() -> None:
    calendar = Calendar(CN.calendar)
    assert calendar.holidays_listed_through == 2026
    assert calendar.unlisted_years(dt.date(2026, 12, 24), dt.date(2027, 1, 8), "working") == [2027]
    assert calendar.unlisted_years(dt.date(2026, 12, 1), dt.date(2026, 12, 11), "calendar") == []
    plain = Calendar(CN.calendar.model_copy(update={"deadlines_end_on_working_days": False}))
    assert plain.unlisted_years(dt.date(2026, 12, 24), dt.date(2027, 1, 3), "calendar") == []
    assert Calendar(CN.calendar.model_copy(update={"holidays": []})).unlisted_years(
        dt.date(2026, 12, 24), dt.date(2027, 1, 8), "working") == []


def test_an_objection_on_the_first_working_day_after_national_day_is_in_time(cli, tmp_path: Path) -> None:
    """格力 was notified on Monday 21 September 2026; the court list's 10 calendar days ended on
    1 October, National Day. Its objection on Thursday 8 October, the first working day after the
    holidays, was refused as late and the listing took effect on 2 October. The window now runs to
    8 October: the objection is in time and the listing waits for its review."""
    with time_machine.travel(dt.datetime(2026, 10, 8, 4, 0, tzinfo=UTC), tick=False):
        registered_and_judged(cli, tmp_path)
        run(cli, "evaluate", "--as-of", "2026-09-14")
        listing = listing_of(cli, GREE)["id"]
        served = run(cli, "listing", "notify", listing, "--on", "2026-09-21", "--actor", "officer",
                     "--reason", "served")
        assert served["objection_deadline"] == "2026-10-08"
        assert "calendar_warning" not in served
        run(cli, "process", "--as-of", "2026-10-07")
        assert listing_of(cli, GREE)["state"] == "notified"
        run(cli, "objection", "file", "--listing", listing, "--on", "2026-10-08", "--reason", "判决已履行完毕",
            "--actor", "subject")
        run(cli, "process", "--as-of", "2026-10-08")
        assert listing_of(cli, GREE)["state"] == "under_review"


def test_a_notice_whose_window_runs_into_an_unlisted_year_warns_the_operator(cli, tmp_path: Path) -> None:
    """Served on 24 December 2026, 格力's 10 days end on Sunday 3 January 2027, moved to Monday the
    4th: whether 4 January is a holiday depends on the State Council's 2027 notice, which the pack
    does not list. The notice is served, and the operator is told to add that year."""
    with time_machine.travel(dt.datetime(2026, 12, 24, 4, 0, tzinfo=UTC), tick=False):
        registered_and_judged(cli, tmp_path, published="2026-12-01")
        run(cli, "evaluate", "--as-of", "2026-12-14")
        listing = listing_of(cli, GREE)["id"]
        served = cli("listing", "notify", "--list", "court_defaulters", "--state", "proposed", "--on", "2026-12-24",
                     "--actor", "officer", "--reason", "served").output
        assert "1 selected, 1 done" in served
        assert f"listing {listing}: the pack's calendar lists holidays through 2026" in served, served
        assert run(cli, "listing", "show", listing)["objection_deadline"] == "2027-01-04"


def test_the_warning_is_a_key_of_the_notice_served(cli, tmp_path: Path) -> None:
    with time_machine.travel(dt.datetime(2026, 12, 24, 4, 0, tzinfo=UTC), tick=False):
        registered_and_judged(cli, tmp_path, published="2026-12-01")
        run(cli, "evaluate", "--as-of", "2026-12-14")
        served = run(cli, "listing", "notify", listing_of(cli, GREE)["id"], "--on", "2026-12-24",
                     "--actor", "officer", "--reason", "served")
        assert served["objection_deadline"] == "2027-01-04"
        assert "through 2026" in served["calendar_warning"] and "2027" in served["calendar_warning"]


def test_the_console_shows_the_warning_to_the_officer_who_served_the_notice(cli, tmp_path: Path, db_url: str) -> None:
    with time_machine.travel(dt.datetime(2026, 12, 24, 4, 0, tzinfo=UTC), tick=True):
        registered_and_judged(cli, tmp_path, published="2026-12-01")
        run(cli, "evaluate", "--as-of", "2026-12-14")
        listing = listing_of(cli, GREE)["id"]
        secret = run(cli, "authority", "key", "create", "court", "--scopes", "operate")["key"]
        with serving(db_url) as base:
            web = WebSession(base)
            web.get("/console")
            web.post("/console/sign-in", {"api_key": secret})
            page = web.post(f"/console/listings/{listing}/notify", {"language": "zh", "reason": "送达"})
            assert 'data-state="notified"' in page.text
            assert "lists holidays through 2026" in text_of(page.text), text_of(page.text)[:600]
