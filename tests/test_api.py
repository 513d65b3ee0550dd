"""The screening API over real HTTP (uvicorn on loopback), on SQLite and PostgreSQL.

The world of tests/worlds.py, taken through due process by the CLI, is screened by a
procurement centre and a bank with their own keys: decisions with evidence, reach through
legal representatives, past dates, names, batches, feedback, changes, scopes, purposes.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from worlds import (CLEAN_REP, FIRM_CLEAN, FIRM_DEBTOR, FIRM_PROPOSED, FIRM_SERIOUS, NAMES, PERSON, REP, build_world,
                    serving)
from xinyong.domain.identifiers import is_valid_resident_id
from xinyong.domain.pack import load_pack
from xinyong.store import tables as t
from xinyong.store.db import open_engine


def key(cli, authority: str, *scopes: str, rate: str = "1000", burst: str = "1000") -> str:
    return json.loads(cli("authority", "key", "create", authority, "--scopes", ",".join(scopes), "--rate", rate,
                          "--burst", burst, "--json").stdout)["key"]


@pytest.fixture
def world(cli, tmp_path):
    listings = build_world(cli, tmp_path)
    keys = {"procurement": key(cli, "procurement_centre", "screen"),
            "bank": key(cli, "commercial_bank", "screen"),
            "samr": key(cli, "samr", "submit:penalty", "read_restricted"),
            "court": key(cli, "court", "submit"),
            "slow": key(cli, "commercial_bank", "screen", rate="0.5", burst="2")}
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:
        yield {"http": http, "keys": keys, "listings": listings, "cli": cli}


def screen(world, who: str = "procurement", **body: Any) -> httpx.Response:
    body.setdefault("purpose", "procurement_review")
    return world["http"].post("/v1/screen", json=body, headers={"X-API-Key": world["keys"][who]})


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    return body["error"]["message"]


def no_person_id(text: str) -> None:
    found = [m for m in re.findall(r"\d{17}[\dX]", text) if is_valid_resident_id(m)]
    assert not found, found


def query_log(cli) -> list[dict[str, Any]]:
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            return [dict(r) for r in c.execute(select(t.query_log).order_by(t.query_log.c.id)).mappings()]
    finally:
        engine.dispose()


def test_decisions_with_evidence_reach_and_dates(world):
    # deny, with every measure's basis, authority, listing, records and end
    answer = ok(screen(world, identifier=FIRM_SERIOUS, action="public_procurement", as_of="2026-01-05"))
    assert answer["decision"] == "deny" and answer["subject"]["key"] == FIRM_SERIOUS
    (measure,) = answer["measures"]
    assert measure["code"] == "no_public_procurement"
    assert measure["title"] == {"zh": "限制参加政府采购活动", "en": "Exclusion from government procurement",
                                "fr": "Exclusion des marchés publics"}
    assert "政府采购法" in measure["legal_basis"] and measure["authority"] == "finance"
    assert measure["listing"]["list"] == "serious_dishonesty" and measure["listing"]["state"] == "effective"
    assert [r["record_key"] for r in measure["records"]] == ["samr:沪市监罚〔2025〕1号"]
    assert measure["ends"] == "2028-10-12" and measure["through"] is None
    # conditions: closer scrutiny of a licence
    licensing = ok(screen(world, identifier=FIRM_SERIOUS, action="licensing", as_of="2026-01-05",
                          purpose="licence_review"))
    assert licensing["decision"] == "conditions" and [m["code"] for m in licensing["measures"]] == ["licence_scrutiny"]
    # allow: a clean firm; a proposed listing (no notice yet) binds nobody
    for code in (FIRM_CLEAN, FIRM_PROPOSED):
        clean = ok(screen(world, identifier=code, action="bidding", as_of="2026-01-05", purpose="tender_review"))
        assert (clean["decision"], clean["measures"], clean["subject"]["key"]) == ("allow", [], code)
    # as of a past date, before the listing took effect
    past = ok(screen(world, identifier=FIRM_SERIOUS, action="public_procurement", as_of="2025-10-01"))
    assert (past["decision"], past["measures"]) == ("allow", [])
    # the legal representative of a listed debtor is reached through the company, for consumption only
    rep = ok(screen(world, "bank", identifier=REP, action="high_consumption", as_of="2026-01-05",
                    purpose="credit_approval"))
    assert rep["decision"] == "deny" and rep["subject"] is None
    (reached,) = rep["measures"]
    assert reached["code"] == "high_consumption_ban"
    assert reached["through"] == {"entity": FIRM_DEBTOR, "name": NAMES[FIRM_DEBTOR], "relation": "legal_representative"}
    assert ok(screen(world, "bank", identifier=REP, action="public_procurement", as_of="2026-01-05",
                     purpose="credit_approval"))["decision"] == "allow"
    assert ok(screen(world, "bank", identifier=CLEAN_REP, action="high_consumption",
                     purpose="credit_approval"))["decision"] == "allow"
    # a listed person: opaque key, masked ID number, never the number itself
    person = screen(world, "bank", identifier=PERSON, action="high_consumption", as_of="2026-01-05",
                    purpose="credit_approval")
    data = ok(person)
    assert data["decision"] == "deny" and data["subject"]["kind"] == "natural_person"
    assert data["subject"]["key"].startswith("P") and data["subject"]["id_number"] == PERSON[:6] + "********" + PERSON[-4:]
    no_person_id(person.text)
    # every answer is logged within a second or so, with authority, purpose, subject, action and result
    deadline = time.monotonic() + 5
    while len(logged := query_log(world["cli"])) < 9 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(logged) == 9, logged
    first = logged[0]
    assert (first["authority"], first["purpose"], first["subject"], first["action"], first["result"],
            first["measures"]) == ("procurement_centre", "procurement_review", FIRM_SERIOUS, "public_procurement",
                                   "deny", ["no_public_procurement"])
    assert first["query_id"] == answer["query_id"]
    assert not any(is_valid_resident_id(row["query"]) for row in logged)  # the log keeps IDs masked


def test_name_screening_decides_only_above_the_threshold(world):
    exact = ok(screen(world, name=NAMES[FIRM_SERIOUS], action="bidding", as_of="2026-01-05",
                      purpose="tender_review"))
    assert exact["match"] == "name" and exact["subject"]["key"] == FIRM_SERIOUS and exact["decision"] == "deny"
    top = exact["candidates"][0]
    # the score is the learned model's match probability: an exact registered name is above auto_link
    assert top["entity"] == FIRM_SERIOUS and top["score"] >= load_pack("cn").resolution.auto_link and top["explanation"]
    # a near name (another legal form wording) still finds it, with the score that explains why
    near = ok(screen(world, name="上海某某科技有限责任公司", action="bidding", as_of="2026-01-05", purpose="tender_review"))
    assert near["candidates"] and near["candidates"][0]["entity"] == FIRM_SERIOUS
    # an unrelated name: no candidate above the threshold, no subject, nothing decided against anyone
    other = ok(screen(world, name="广州完全不同物流有限公司", action="bidding", purpose="tender_review"))
    assert other["subject"] is None and other["decision"] == "allow" and other["match"] in ("none", "below_threshold")


def test_keys_scopes_purposes_and_rate_limits(world, tmp_path):
    http, keys = world["http"], world["keys"]
    body = {"identifier": FIRM_SERIOUS, "action": "bidding", "purpose": "tender_review"}
    error(http.post("/v1/screen", json=body), 401, "missing_key")
    error(http.post("/v1/screen", json=body, headers={"X-API-Key": "xy_not-a-key"}), 401, "invalid_key")
    error(http.post("/v1/screen", json=body, headers={"X-API-Key": keys["samr"]}), 403, "scope_missing")
    assert "purpose" in error(screen(world, identifier=FIRM_SERIOUS, action="bidding", purpose="curiosity"),
                              422, "unknown_purpose")
    error(http.post("/v1/screen", json={"identifier": FIRM_SERIOUS, "action": "bidding"},
                    headers={"X-API-Key": keys["procurement"]}), 422, "invalid_request")
    assert "public_procurement" in error(screen(world, identifier=FIRM_SERIOUS, action="fishing"), 422,
                                         "invalid_request")
    error(screen(world, identifier=FIRM_SERIOUS, name="x", action="bidding"), 422, "invalid_request")
    # a burst of 2 at 0.5/s: the third request in a row is refused with Retry-After
    statuses = [screen(world, "slow", identifier=FIRM_CLEAN, action="bidding", purpose="credit_approval")
                for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    error(statuses[2], 429, "rate_limited")
    assert int(statuses[2].headers["Retry-After"]) >= 1
    # restricted reading needs the scope and a stated purpose, and is logged
    public = ok(http.get(f"/v1/entities/{FIRM_SERIOUS}"))
    assert public["key"] == FIRM_SERIOUS and [lst["list"] for lst in public["listings"]] == ["serious_dishonesty"]
    error(http.get(f"/v1/entities/{FIRM_SERIOUS}", headers={"X-API-Key": keys["bank"], "X-Purpose": "credit_approval"}),
          403, "scope_missing")
    error(http.get(f"/v1/entities/{FIRM_SERIOUS}", headers={"X-API-Key": keys["samr"], "X-Purpose": "gossip"}),
          422, "unknown_purpose")
    restricted = ok(http.get(f"/v1/entities/{FIRM_PROPOSED}",
                             headers={"X-API-Key": keys["samr"], "X-Purpose": "supervision"}))
    assert [lst["state"] for lst in restricted["listings"]] == ["proposed"]  # not on the public page
    assert ok(http.get(f"/v1/entities/{FIRM_PROPOSED}"))["listings"] == []
    # a person is found by its opaque key only: an ID number in a URL is refused
    error(http.get(f"/v1/entities/{PERSON}"), 404, "not_found")
    # submitting records needs the category's submit scope and competence
    records = {"category": "penalty", "records": [{"当事人名称": NAMES[FIRM_CLEAN], "统一社会信用代码": FIRM_CLEAN,
                                                   "行政处罚决定书文号": "京市监罚〔2025〕9号", "处罚决定日期": "2025-11-01",
                                                   "处罚类别": "罚款", "罚款金额（万元）": "3"}]}
    error(http.post("/v1/records", json=records, headers={"X-API-Key": keys["bank"]}), 403, "scope_missing")
    error(http.post("/v1/records", json=records, headers={"X-API-Key": keys["court"]}), 403, "not_competent")
    # a revoked key is refused within a couple of seconds by the running server
    key_id = json.loads(world["cli"]("authority", "key", "list", "--json").stdout)[1]["id"]
    world["cli"]("authority", "key", "revoke", key_id, "--reason", "contract ended")
    deadline = time.monotonic() + 5
    while screen(world, "bank", identifier=FIRM_CLEAN, action="bidding", purpose="credit_approval").status_code == 200:
        assert time.monotonic() < deadline, "revoked key still accepted"
        time.sleep(0.2)
    error(screen(world, "bank", identifier=FIRM_CLEAN, action="bidding", purpose="credit_approval"), 401, "invalid_key")


def test_records_through_validation_and_quarantine(world):
    http, keys = world["http"], world["keys"]
    rows = [{"当事人名称": NAMES[FIRM_CLEAN], "统一社会信用代码": FIRM_CLEAN, "行政处罚决定书文号": "京市监罚〔2025〕9号",
             "处罚决定日期": "2025-11-01", "处罚类别": "罚款", "罚款金额（万元）": "3"},
            {"当事人名称": NAMES[FIRM_CLEAN], "统一社会信用代码": FIRM_CLEAN, "行政处罚决定书文号": "京市监罚〔2025〕10号",
             "处罚决定日期": "2025-13-45", "处罚类别": "罚款", "罚款金额（万元）": "3"},
            {"当事人名称": NAMES[FIRM_PROPOSED], "统一社会信用代码": FIRM_PROPOSED, "行政处罚决定书文号": "宁市监罚〔2025〕11号",
             "处罚决定日期": "2025-11-02", "处罚类别": "警告", "罚款金额（万元）": ""}]
    result = ok(http.post("/v1/records", json={"category": "penalty", "records": rows},
                          headers={"X-API-Key": keys["samr"]}), 201)
    assert (result["accepted"], result["quarantined"]) == (2, 1), result
    (reject,) = result["rejects"]
    assert reject["row"] == 2 and reject["field"] == "decision_date" and reject["reason"]
    # the same records again are recognised as the same batch: nothing stored twice
    again = ok(http.post("/v1/records", json={"category": "penalty", "records": rows},
                         headers={"X-API-Key": keys["samr"]}), 201)
    assert again["duplicate_of"] == result["batch_id"]
    error(http.post("/v1/records", json={"category": "penalty", "records": []}, headers={"X-API-Key": keys["samr"]}),
          422, "invalid_request")


def test_batch_job_feedback_changes_and_lists(world):
    http, keys = world["http"], world["keys"]
    upload = "identifier,name,action\n" + "\n".join([
        f"{FIRM_SERIOUS},,public_procurement", f"{FIRM_CLEAN},,public_procurement", f",{NAMES[FIRM_SERIOUS]},bidding",
        f"{REP},,high_consumption", ",,bidding", f"{FIRM_CLEAN},,no_such_action"]) + "\n"
    started = ok(http.post("/v1/screen/jobs", headers={"X-API-Key": keys["procurement"]},
                           files={"file": ("subjects.csv", upload.encode(), "text/csv")},
                           data={"purpose": "procurement_review", "as_of": "2026-01-05"}), 202)
    job_id = started["id"]
    error(http.get(f"/v1/screen/jobs/{job_id}", headers={"X-API-Key": keys["bank"]}), 404, "not_found")
    deadline = time.monotonic() + 120
    while (job := ok(http.get(f"/v1/screen/jobs/{job_id}", headers={"X-API-Key": keys["procurement"]})))["state"] \
            in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
    assert (job["state"], job["total"], job["done"]) == ("done", 6, 6), job
    results = http.get(f"/v1/screen/jobs/{job_id}/results.csv", headers={"X-API-Key": keys["procurement"]})
    rows = list(csv.DictReader(io.StringIO(results.content.decode("utf-8-sig"))))
    assert [(r["line"], r["decision"], r["measures"]) for r in rows] == [
        ("2", "deny", "no_public_procurement"), ("3", "allow", ""), ("4", "deny", "no_bidding"),
        ("5", "deny", "high_consumption_ban"), ("6", "", ""), ("7", "", "")]
    assert rows[4]["error"] == "neither identifier nor name" and "unknown action" in rows[5]["error"]
    no_person_id(results.text)
    lines = http.get(f"/v1/screen/jobs/{job_id}/results.jsonl", headers={"X-API-Key": keys["procurement"]}).text
    assert [json.loads(x)["decision"] for x in lines.splitlines()][:4] == ["deny", "allow", "deny", "deny"]

    # feedback: the measure applied, or why not
    answer = ok(screen(world, identifier=FIRM_SERIOUS, action="public_procurement", as_of="2026-01-05"))
    stored = ok(http.post("/v1/feedback", headers={"X-API-Key": keys["procurement"]}, json={
        "query_id": answer["query_id"], "subject": FIRM_SERIOUS, "measure": "no_public_procurement", "applied": True,
        "reference": "CG-2026-001"}), 201)
    assert stored["applied"] is True
    error(http.post("/v1/feedback", headers={"X-API-Key": keys["procurement"]}, json={
        "subject": FIRM_SERIOUS, "measure": "no_public_procurement", "applied": False}), 422, "reason_missing")
    error(http.post("/v1/feedback", headers={"X-API-Key": keys["bank"]}, json={
        "query_id": answer["query_id"], "subject": FIRM_SERIOUS, "measure": "no_public_procurement",
        "applied": True}), 404, "not_found")  # another authority's screening
    # the answer was about one firm and the report names another: which one was it applied to?
    mismatch = error(http.post("/v1/feedback", headers={"X-API-Key": keys["procurement"]}, json={
        "query_id": answer["query_id"], "subject": FIRM_CLEAN, "measure": "no_public_procurement",
        "applied": True}), 422, "subject_mismatch")
    assert FIRM_SERIOUS in mismatch and FIRM_CLEAN in mismatch
    error(http.post("/v1/feedback", headers={"X-API-Key": keys["procurement"]}, json={
        "query_id": answer["query_id"], "subject": FIRM_SERIOUS, "measure": "no_public_procurement",
        "applied": True, "on_date": "2099-01-01"}), 422, "date_in_future")  # not applied yet
    engine = open_engine(world["cli"].url)
    with engine.connect() as c:
        (row,) = c.execute(select(t.feedback)).mappings().all()
    engine.dispose()
    assert (row["authority"], row["subject"], row["measure"], row["applied"], row["reference"]) == (
        "procurement_centre", FIRM_SERIOUS, "no_public_procurement", True, "CG-2026-001")

    # changes: every transition in order; paging by the sequence number
    feed = ok(http.get("/v1/changes", params={"since": 0, "limit": 2}, headers={"X-API-Key": keys["bank"]}))
    assert [c["seq"] for c in feed["changes"]] == sorted(c["seq"] for c in feed["changes"]) and feed["more"]
    rest = ok(http.get("/v1/changes", params={"since": feed["next"]}, headers={"X-API-Key": keys["bank"]}))
    everything = feed["changes"] + rest["changes"]
    serious = [(c["from"], c["to"]) for c in everything if c["entity"] == FIRM_SERIOUS]
    assert serious == [("notified", "effective")]  # proposals and notices stay within due process
    assert {c["to"] for c in everything} == {"effective"} and len(everything) == 3
    assert "no_public_procurement" in next(c for c in everything if c["entity"] == FIRM_SERIOUS)["measures"]
    assert ok(http.get("/v1/changes", params={"since": rest["next"]}, headers={"X-API-Key": keys["bank"]}))["changes"] == []

    # public lists: effective listings only, paged, exported
    page = ok(http.get("/v1/lists/serious_dishonesty", params={"as_of": "2026-01-05"}))
    assert [i["entity"] for i in page["items"]] == [FIRM_SERIOUS] and page["total"] == 1
    debtors = http.get("/v1/lists/court_defaulters/export.csv", params={"as_of": "2026-01-05"})
    exported = list(csv.DictReader(io.StringIO(debtors.content.decode("utf-8-sig"))))
    assert {r["name"] for r in exported} == {"张三", NAMES[FIRM_DEBTOR]}
    no_person_id(debtors.text)
    jsonl = http.get("/v1/lists/court_defaulters/export.jsonl", params={"as_of": "2026-01-05"}).text
    assert len(jsonl.splitlines()) == 2
    no_person_id(jsonl)
    error(http.get("/v1/lists/no_such_list"), 404, "not_found")


def test_revocation_and_review_reach_every_surface(world):
    """A revoked record leaves the public file and its listing stops binding within seconds; a
    notified listing under review was never in force and is on no public list."""
    http, cli = world["http"], world["cli"]
    assert ok(screen(world, identifier=FIRM_SERIOUS, action="public_procurement"))["decision"] == "deny"
    cli("record", "revoke", "samr:沪市监罚〔2025〕1号", "--actor", "samr", "--reason", "annulled on appeal")
    public = ok(http.get(f"/v1/entities/{FIRM_SERIOUS}"))
    assert [r["category"] for r in public["records"]] == ["registration"] and public["listings"] == []
    deadline = time.monotonic() + 5
    while (answer := ok(screen(world, identifier=FIRM_SERIOUS, action="public_procurement")))["decision"] != "allow":
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)
    assert ok(http.get("/v1/lists/serious_dishonesty"))["items"] == []
    # notified, then objected to before taking effect: under review, in force nowhere
    proposed = world["listings"][FIRM_PROPOSED]
    cli("listing", "notify", proposed, "--on", "2025-10-20", "--actor", "officer-wang", "--reason", "served")
    cli("objection", "file", "--listing", proposed, "--reason", "the fine was paid", "--on", "2025-10-22",
        "--actor", "firm")
    assert [lst["state"] for lst in ok(http.get(f"/v1/entities/{FIRM_PROPOSED}", headers={
        "X-API-Key": world["keys"]["samr"], "X-Purpose": "supervision"}))["listings"]] == ["under_review"]
    assert ok(http.get(f"/v1/entities/{FIRM_PROPOSED}"))["listings"] == []
    assert FIRM_PROPOSED not in {i["entity"] for i in ok(http.get("/v1/lists/serious_dishonesty"))["items"]}
    assert ok(screen(world, identifier=FIRM_PROPOSED, action="bidding", purpose="tender_review"))["decision"] == "allow"
