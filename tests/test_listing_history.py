"""The public listing history (issue 10, "History, keys and scope"), on SQLite and PostgreSQL.

`GET /v1/entities/{key}` gives `listing_history`: one item per listing that took effect, with
its list, dates, end and reason for ending, while `listings` keeps those in force. Public only
for lists whose pack entry says `history_public` (cn: the market regulator's and the tax
lists, not the court's), and never a listing undone (withdrawn after an upheld objection, a
revoked or moved record). The entity page (zh/en/fr) and the credit report show it too.
"""

from __future__ import annotations

import datetime as dt
import json

import httpx

from worlds import FIRM_DEBTOR, FIRM_SERIOUS, PERSON, build_world, run, serving
from xinyong.domain.pack import load_pack
from xinyong.services.resolution.entities import public_file
from xinyong.services.publication.report import render_html, report_context
from xinyong.store.db import open_engine

PACK = load_pack("cn")
HISTORY_KEYS = {"list", "list_title", "effective_from", "effective_to", "ended_on", "end_reason"}


def _repair_serious(cli, tmp_path, listing: int) -> None:
    """The serious list's repair needs 12 months served: applied a year after it took effect."""
    commitment = tmp_path / "commitment.txt"
    commitment.write_text("本单位承诺依法诚信经营。", encoding="utf-8")
    proof = tmp_path / "licence.pdf"
    proof.write_bytes(b"%PDF-1.4 new licence")
    repair = run(cli, "repair", "apply", listing, "--commitment", commitment, "--evidence", proof,
                 "--on", "2026-10-14")["repair"]
    run(cli, "repair", "decide", repair, "--approve", "--on", "2026-10-20", "--reason", "已整改")


def test_a_repaired_listing_stays_in_the_public_history_with_its_dates_and_reason(cli, tmp_path):
    ids = build_world(cli, tmp_path)
    serious = ids[FIRM_SERIOUS]
    effective = run(cli, "listing", "show", serious)
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:
        in_force = http.get(f"/v1/entities/{FIRM_SERIOUS}").json()
        assert [item["list"] for item in in_force["listings"]] == ["serious_dishonesty"]
        assert in_force["listing_history"] == [{
            "list": "serious_dishonesty", "list_title": PACK.list_("serious_dishonesty").names.model_dump(),
            "effective_from": effective["effective_from"], "effective_to": effective["effective_to"],
            "ended_on": None, "end_reason": None}]
        _repair_serious(cli, tmp_path, serious)
        data = http.get(f"/v1/entities/{FIRM_SERIOUS}").json()
        assert data["listings"] == []  # no longer in force
        (item,) = data["listing_history"]
        assert set(item) == HISTORY_KEYS  # list, dates and reason: never the record whose publicity ended
        assert (item["list"], item["effective_from"], item["ended_on"], item["end_reason"]) == \
            ("serious_dishonesty", effective["effective_from"], "2026-10-20", "repaired")
        for lang, title, reason in (("zh", "列入记录", "信用修复"), ("en", "Listing history", "Credit repaired"),
                                    ("fr", "Historique des inscriptions", "Réhabilitation")):
            page = http.get(f"/entities/{FIRM_SERIOUS}", params={"lang": lang})
            assert page.status_code == 200, page.text
            assert title in page.text and reason in page.text and 'data-end-reason="repaired"' in page.text
    engine = open_engine(cli.url)
    try:
        file = public_file(engine, PACK, FIRM_SERIOUS, dt.date(2026, 12, 1))
    finally:
        engine.dispose()
    for lang, title, reason in (("zh", "列入记录", "信用修复"), ("en", "Listing history", "Credit repaired"),
                                ("fr", "Historique des inscriptions", "Réhabilitation")):
        context = report_context(PACK, file, lang, dt.date(2026, 12, 1), "ABCDEFGHJKLMNPQR",
                                 dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc))
        assert [row["reason"] for row in context["history"]] == [reason]
        html = render_html(context)
        assert title in html and reason in html


def test_court_listings_and_undone_listings_never_appear_in_the_public_history(cli, tmp_path):
    ids = build_world(cli, tmp_path)
    reader = json.loads(cli("authority", "key", "create", "samr", "--scopes", "read_restricted",
                            "--json").stdout)["key"]
    run(cli, "listing", "end", ids[FIRM_DEBTOR], "--reason", "performed", "--on", "2025-11-03")
    objection = run(cli, "objection", "file", "--listing", ids[FIRM_SERIOUS], "--reason", "处罚决定已被撤销",
                    "--on", "2025-10-21")["objection"]
    run(cli, "objection", "decide", objection, "--uphold", "--on", "2025-10-22", "--reason", "异议成立")
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:
        debtor = http.get(f"/v1/entities/{FIRM_DEBTOR}").json()
        assert debtor["listing_history"] == []  # the court list's history is not public (history_public: false)
        serious = http.get(f"/v1/entities/{FIRM_SERIOUS}").json()
        assert serious["listing_history"] == [] and serious["listings"] == []  # withdrawn: undone, never shown
        assert "列入记录" not in http.get(f"/entities/{FIRM_SERIOUS}", params={"lang": "zh"}).text
        restricted = http.get(f"/v1/entities/{FIRM_SERIOUS}",
                              headers={"X-API-Key": reader, "X-Purpose": "supervision"}).json()
        assert [(i["list"], i["end_reason"]) for i in restricted["listing_history"]] == \
            [("serious_dishonesty", "withdrawn_objection")]  # an authority with the scope sees every one
        person = run(cli, "entity", "show", PERSON)["key"]
        listed = http.get(f"/v1/entities/{person}").json()
        assert [i["list"] for i in listed["listings"]] == ["court_defaulters"] and listed["listing_history"] == []
        run(cli, "listing", "end", ids[PERSON], "--reason", "settled", "--on", "2025-11-03")
        assert http.get(f"/v1/entities/{person}").status_code == 404  # a person is public only while listed
