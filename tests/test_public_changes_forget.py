"""A natural person is public only while a listing of theirs is in force, in the change log too.

Once the person's listing ends (the debt paid), the public change log (`GET /v1/public/changes`, no
key) keeps the earlier events' key and operation but no longer their data (name, listing, court
record), and the earlier delta folders of `publish` are written again without them; the delete
events remain, so that a downstream copy deletes the person.
"""

from __future__ import annotations

import datetime as dt
import json

import httpx

from test_due_rules import COURT_HEADERS, GROUND_1, run, write_csv
from worlds import resident_id, serving

DEBTOR = resident_id("320102", dt.date(1975, 10, 9), 58)
NAME = "钱多多"


def test_the_public_change_log_forgets_a_person_once_delisted(cli, tmp_path):
    court = write_csv(tmp_path / "court.csv", COURT_HEADERS, [
        ["(2025)苏0102执321号", NAME, DEBTOR, "南京市玄武区人民法院", "全部未履行", GROUND_1, "2025-08-01"]])
    cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    run(cli, "evaluate", "--as-of", "2025-09-01")
    (listing,) = run(cli, "listing", "list")
    for day in ("2025-09-02", "2025-09-03", "2025-09-04"):
        cli("listing", "remind", listing["id"], "--on", day, "--actor", "clerk", "--reason", "reminder")
    cli("listing", "notify", listing["id"], "--on", "2025-09-05", "--actor", "officer", "--reason", "served")
    cli("publish", "--out", tmp_path / "od")  # the baseline: the person is not public yet
    run(cli, "process", "--as-of", "2025-10-01")
    cli("publish", "--out", tmp_path / "od")  # the person is public: events added
    cli("listing", "end", listing["id"], "--reason", "performed", "--actor", "court")
    cli("publish", "--out", tmp_path / "od")  # the person leaves the lists: delete events
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:
        entity = http.get(f"/v1/entities/{listing['entity']}")
        feed = http.get("/v1/public/changes", params={"since": 0}).text
    assert entity.status_code == 404  # the person's page is gone (this holds)
    assert NAME not in feed and DEBTOR[-4:] not in feed, f"the delisted person is still in the change log: {feed[:400]}"
    about = [event for event in json.loads(feed)["events"] if event["entity"] == listing["entity"]]
    assert {event["change"]["op"] for event in about} == {"add", "delete"}
    assert all(event["change"]["data"] is None for event in about)
    assert all(event["change"].get("redacted") for event in about if event["change"]["op"] != "delete")
    for path in (tmp_path / "od" / "delta").rglob("*"):
        if path.is_file() and path.suffix in (".jsonl", ".csv"):
            body = path.read_text(encoding="utf-8")
            assert NAME not in body, f"{path.relative_to(tmp_path)} still names the person"
    deletes = [json.loads(line) for path in (tmp_path / "od" / "delta").rglob("entities.jsonl")
               for line in path.read_text(encoding="utf-8").splitlines() if line]
    assert {"op": "delete", "entity": listing["entity"]}.items() <= next(
        row for row in deletes if row["op"] == "delete").items()
