"""One clock: "today" is the pack's date in the pack's time zone, on every surface, at any hour.

The instants below sit on both sides of Beijing's midnight (16:00 UTC) and of UTC's midnight.
Between 16:00 and 24:00 UTC the host's date (on a UTC or American host) is a day behind
Beijing's: a withdrawal decided "today" in Beijing must reach screening, the public lists and the
entity page at once, not when the host's date changes. `.ci/run` runs these tests under several
host time zones (TZ=Asia/Shanghai, UTC, America/Los_Angeles).
"""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
import time_machine

from worlds import FIRM_SERIOUS, build_world, serving
from xinyong.domain.calendar import pack_today
from xinyong.domain.pack import load_pack

pytestmark = pytest.mark.clock

UTC = dt.timezone.utc
BEIJING = dt.timezone(dt.timedelta(hours=8))  # no summer time in China since 1991

# (instant in UTC, Beijing's date at that instant): before and after each midnight
INSTANTS = [
    (dt.datetime(2026, 3, 10, 15, 30, tzinfo=UTC), dt.date(2026, 3, 10)),  # 23:30 in Beijing
    (dt.datetime(2026, 3, 10, 16, 30, tzinfo=UTC), dt.date(2026, 3, 11)),  # Beijing past midnight, UTC not
    (dt.datetime(2026, 3, 10, 23, 30, tzinfo=UTC), dt.date(2026, 3, 11)),  # just before UTC midnight
    (dt.datetime(2026, 3, 11, 0, 30, tzinfo=UTC), dt.date(2026, 3, 11)),  # just after UTC midnight
]
IDS = [f"{instant:%H%M}Z" for instant, _ in INSTANTS]


@pytest.mark.parametrize(("instant", "beijing_date"), INSTANTS, ids=IDS)
def test_today_is_the_packs_date_in_its_time_zone(instant: dt.datetime, beijing_date: dt.date) -> None:
    assert instant.astimezone(BEIJING).date() == beijing_date  # the table above is right
    with time_machine.travel(instant, tick=False):
        assert pack_today(load_pack("cn")) == beijing_date


@pytest.mark.parametrize(("instant", "beijing_date"), INSTANTS, ids=IDS)
def test_a_withdrawal_decided_today_in_beijing_binds_every_surface_at_once(
        cli, tmp_path, instant: dt.datetime, beijing_date: dt.date) -> None:
    listings = build_world(cli, tmp_path)
    screen_key = json.loads(cli("authority", "key", "create", "procurement_centre", "--scopes", "screen",
                                "--json").stdout)["key"]
    with time_machine.travel(instant, tick=True):
        # the objection and its decision take the CLI's default date: the pack's today
        filed = json.loads(cli("objection", "file", "--listing", listings[FIRM_SERIOUS], "--reason",
                               "the licence revocation was annulled", "--actor", "subject", "--json").stdout)
        cli("objection", "decide", filed["objection"], "--uphold", "--actor", "reviewer", "--reason", "annulled")
        shown = json.loads(cli("listing", "list", "--entity", FIRM_SERIOUS, "--json").stdout)
        assert shown[0]["state"] == "withdrawn" and shown[0]["ended_on"] == beijing_date.isoformat()

        with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:
            answer = http.post("/v1/screen", headers={"X-API-Key": screen_key}, json={
                "identifier": FIRM_SERIOUS, "action": "public_procurement", "purpose": "procurement_review"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["decision"] == "allow", answer.json()
            assert answer.json()["as_of"] == beijing_date.isoformat()

            listed = http.get("/v1/lists/serious_dishonesty").json()
            assert FIRM_SERIOUS not in json.dumps(listed, ensure_ascii=False)

            entity = http.get(f"/v1/entities/{FIRM_SERIOUS}").json()
            assert not entity["listings"], entity["listings"]

        # the command line's screening takes the same today
        cli_answer = json.loads(cli("screen", FIRM_SERIOUS, "--action", "public_procurement", "--json").stdout)
        assert cli_answer["decision"] == "allow" and cli_answer["as_of"] == beijing_date.isoformat()
