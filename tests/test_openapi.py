"""The API against its own OpenAPI schema: schemathesis, over HTTP, on a live uvicorn server.

Every operation of `/openapi.json` gets the schemathesis phases that run under pytest - explicit
examples, the coverage phase (boundary and invalid values, missing parameters, unexpected
methods) and a fuzzing phase of generated cases, positive and negative - and every answer goes
through all of its default checks: no 5xx, status code, content type, headers and body as
declared, schema-valid requests accepted and schema-violating ones rejected, and so the error
format `{"error": {"code", "message"}}` of every 4xx.

The server runs on the small jurisdiction of `worlds.py`. Generated requests carry a key of all
scopes (X-API-Key), so that the operations are exercised beyond 401. Realistic requests - the
world's codes and the pack's actions, purposes, lists and measures, the answers' query ids, a
finished batch job - are explicit examples, each with the status it must get, among them the
401, 403 and 429 of other keys.

The batch-job start (POST /v1/screen/jobs) stays in the run with very few cases, since each
accepted upload starts a worker process: 3 generated ones, no coverage phase, and the one
realistic upload made before the run (its finished job is the example of the progress and
results operations).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.config import SchemathesisConfig

from worlds import (EFFECTIVE, FIRM_CLEAN, FIRM_DEBTOR, FIRM_PROPOSED, FIRM_SERIOUS, NAMES, PERSON, REP, build_world,
                    serving)
from xinyong.domain.pack import load_pack

PACK = load_pack("cn")
ACTIONS = [a.code for a in PACK.actions]
PURPOSES = [p.code for p in PACK.purposes]
SEED = 20251020
FUZZ_EXAMPLES = 25  # generated cases per operation, beside the explicit and coverage ones
JOB_START = "POST /v1/screen/jobs"
FOREIGN = Path(__file__).parent / "data" / "foreign"
FOREIGN_ONLY = "91110000MA0NF00087"  # a valid USCC held by no entity, on the FtM test list


def _config(key: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "seed": SEED,
        "headers": {"X-API-Key": key},  # generated cases only: explicit ones say their own
        "request-timeout": 30,
        "generation": {"max-examples": FUZZ_EXAMPLES, "deterministic": True, "database": "none"},
        "operations": [{
            "include-name": JOB_START,  # one filter: include-method and include-path would be either-or
            "generation": {"max-examples": 3},
            "phases": {"coverage": {"enabled": False}},
        }],
    })


def _key(cli, scopes: str, rate: str = "100000", burst: str = "100000") -> str:
    return json.loads(cli("authority", "key", "create", "samr", "--scopes", scopes, "--rate", rate, "--burst", burst,
                          "--json").stdout)["key"]


def _finished_job(base: str, key: str) -> str:
    started = httpx.post(f"{base}/v1/screen/jobs", headers={"X-API-Key": key},
                         data={"purpose": "procurement_review", "action": "public_procurement", "as_of": EFFECTIVE},
                         files={"file": ("batch.csv", "\n".join(["identifier", FIRM_SERIOUS, FIRM_DEBTOR, PERSON,
                                                                 FIRM_CLEAN]).encode(), "text/csv")})
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    deadline = time.monotonic() + 90
    while (job := httpx.get(f"{base}/v1/screen/jobs/{job_id}", headers={"X-API-Key": key}).json())["state"] != "done":
        assert job["state"] != "failed" and time.monotonic() < deadline, job
        time.sleep(0.2)
    return job_id


def _realistic(base: str, keys: dict[str, str]) -> list[tuple[str, int, dict[str, Any]]]:
    """(operation, status it must get, request) as the world's users send them; the key is `keys["all"]`
    unless the request names another (`"key": None` sends none)."""
    headers = {"X-API-Key": keys["all"]}
    screened = httpx.post(f"{base}/v1/screen", headers=headers, json={"identifier": FIRM_SERIOUS, "as_of": EFFECTIVE,
                                                                      "action": "public_procurement",
                                                                      "purpose": "procurement_review"})
    assert screened.status_code == 200 and screened.json()["decision"] == "deny", screened.text
    person = httpx.post(f"{base}/v1/screen", headers=headers, json={
        "identifier": PERSON, "action": "high_consumption", "purpose": "enforcement", "as_of": EFFECTIVE}).json()
    person_key = person["subject"]["key"]
    foreign = httpx.post(f"{base}/v1/screen", headers=headers, json={
        "identifier": FOREIGN_ONLY, "action": "bidding", "purpose": "tender_review", "as_of": EFFECTIVE}).json()
    assert foreign["decision"] == "refer" and foreign["foreign_designations"][0]["list"] == "os_test", foreign
    job_id = _finished_job(base, keys["all"])
    assert httpx.post(f"{base}/v1/ping", headers={"X-API-Key": keys["slow"]}).status_code == 200  # its one token

    subjects = [FIRM_SERIOUS, FIRM_DEBTOR, PERSON, FIRM_CLEAN, FIRM_PROPOSED, REP]
    penalty = {"当事人名称": NAMES[FIRM_CLEAN], "统一社会信用代码": FIRM_CLEAN, "行政处罚决定书文号": "京市监罚〔2025〕9号",
               "处罚决定日期": "2025-07-01", "处罚类别": "罚款", "罚款金额（万元）": "5"}
    return [
        ("POST /v1/ping", 200, {}),
        ("POST /v1/ping", 401, {"key": None}),
        ("POST /v1/ping", 401, {"key": "xy_not-a-key"}),
        ("POST /v1/ping", 429, {"key": keys["slow"]}),
        *(("POST /v1/screen", 200, {"body": {"identifier": code, "action": ACTIONS[n % len(ACTIONS)],
                                             "purpose": PURPOSES[n % len(PURPOSES)], "as_of": EFFECTIVE}})
          for n, code in enumerate(subjects)),
        ("POST /v1/screen", 200, {"body": {"identifier": FIRM_SERIOUS, "action": "public_procurement",
                                           "purpose": "procurement_review"}}),
        ("POST /v1/screen", 200, {"body": {"identifier": FIRM_DEBTOR, "action": "bidding", "purpose": "tender_review",
                                           "as_of": "2025-09-01"}}),
        ("POST /v1/screen", 422, {"body": {"identifier": FIRM_SERIOUS + "\x00", "action": "public_procurement",
                                           "purpose": "procurement_review"}}),
        ("POST /v1/screen", 200, {"body": {"name": NAMES[FIRM_DEBTOR], "action": "bidding", "purpose": "tender_review",
                                           "as_of": EFFECTIVE}}),
        ("POST /v1/screen", 200, {"body": {"name": NAMES[FIRM_CLEAN], "action": "subsidy",
                                           "purpose": "subsidy_review"}}),
        ("POST /v1/screen", 200, {"body": {"name": "某某有限公司", "action": "financing", "purpose": "credit_approval"}}),
        ("POST /v1/screen", 200, {"body": {"identifier": FOREIGN_ONLY, "action": "financing",
                                           "purpose": "credit_approval"}}),
        ("POST /v1/screen", 200, {"body": {"name": "Koryo Example Trading Corp.", "action": "bidding",
                                           "purpose": "tender_review"}}),
        ("POST /v1/screen", 422, {"body": {"identifier": FIRM_SERIOUS, "action": "no_such_action",
                                           "purpose": "procurement_review"}}),
        ("POST /v1/screen", 422, {"body": {"identifier": FIRM_SERIOUS, "action": "bidding", "purpose": "curiosity"}}),
        ("POST /v1/screen", 422, {"body": {"identifier": FIRM_SERIOUS, "name": NAMES[FIRM_SERIOUS], "action": "bidding",
                                           "purpose": "tender_review"}}),
        ("POST /v1/screen", 422, {"body": {"identifier": FIRM_SERIOUS, "action": "bidding", "purpose": "tender_review",
                                           "as_of": "2025-10-20T00:00:00"}}),
        ("POST /v1/screen", 401, {"key": None, "body": {"identifier": FIRM_SERIOUS, "action": "bidding",
                                                        "purpose": "tender_review"}}),
        ("POST /v1/feedback", 201, {"body": {"query_id": screened.json()["query_id"], "subject": FIRM_SERIOUS,
                                             "measure": "no_public_procurement", "applied": True,
                                             "reference": "采购〔2025〕17号", "on_date": EFFECTIVE}}),
        ("POST /v1/feedback", 201, {"body": {"subject": FIRM_DEBTOR, "measure": "no_bidding", "applied": False,
                                             "reason": "contract signed before the listing"}}),
        ("POST /v1/feedback", 422, {"body": {"subject": FIRM_DEBTOR, "measure": "no_bidding", "applied": False}}),
        ("POST /v1/feedback", 422, {"body": {"subject": FIRM_DEBTOR, "measure": "no_bidding", "applied": False,
                                             "reason": "\x00"}}),
        ("POST /v1/feedback", 422, {"body": {"subject": FIRM_DEBTOR, "measure": "no_such_measure", "applied": True}}),
        ("POST /v1/feedback", 404, {"body": {"subject": "91000000MA0000000X", "measure": "no_bidding",
                                             "applied": True}}),
        ("POST /v1/feedback", 404, {"body": {"query_id": "0" * 32, "subject": FIRM_SERIOUS,
                                             "measure": "no_public_procurement", "applied": True}}),
        ("POST /v1/records", 201, {"body": {"category": "penalty", "records": [penalty]}}),
        ("POST /v1/records", 201, {"body": {"category": "penalty", "records": [  # its row quarantined
            {**penalty, "行政处罚决定书文号": "京市监罚〔2025〕\x0010号"}]}}),
        ("POST /v1/records", 201, {"body": {"category": "penalty", "records": [{**penalty, "罚款金额（万元）": 10**30}]}}),
        ("POST /v1/records", 422, {"body": {"category": "penalty", "records": [{"当事人名称": "某公司"}]}}),
        ("POST /v1/records", 403, {"body": {"category": "court_defaulter", "records": [penalty]}}),
        ("POST /v1/records", 403, {"key": keys["screen"], "body": {"category": "penalty", "records": [penalty]}}),
        ("GET /v1/changes", 200, {}),
        ("GET /v1/changes", 200, {"query": {"since": 3, "limit": 2}}),
        ("GET /v1/changes", 403, {"key": keys["read"]}),
        *(("GET /v1/entities/{key}", 200, {"path_parameters": {"key": code}})
          for code in (FIRM_SERIOUS, FIRM_DEBTOR, FIRM_PROPOSED, person_key)),
        *(("GET /v1/entities/{key}", status, {"path_parameters": {"key": code}, "headers": {"X-Purpose": purpose}})
          for status, code, purpose in ((200, FIRM_DEBTOR, "supervision"), (200, person_key, "enforcement"),
                                        (422, FIRM_DEBTOR, "curiosity"))),
        ("GET /v1/entities/{key}", 403, {"key": keys["screen"], "path_parameters": {"key": FIRM_DEBTOR},
                                         "headers": {"X-Purpose": "supervision"}}),
        ("GET /v1/entities/{key}", 404, {"path_parameters": {"key": PERSON}}),  # an ID number never goes in a URL
        ("GET /v1/entities/{key}", 422, {"path_parameters": {"key": FIRM_DEBTOR + "\x00"}}),  # NUL: refused
        *(("GET /v1/lists/{code}", 200, {"path_parameters": {"code": entry.code}, "query": {"as_of": EFFECTIVE}})
          for entry in PACK.lists),
        ("GET /v1/lists/{code}", 200, {"path_parameters": {"code": "court_defaulters"},
                                       "query": {"q": "某某", "page": 1, "page_size": 1}}),
        ("GET /v1/lists/{code}", 200, {"path_parameters": {"code": "court_defaulters"}, "query": {"region": "110000"}}),
        ("GET /v1/lists/{code}", 404, {"path_parameters": {"code": "no_such_list"}}),
        *(("GET /v1/lists/{code}/export.{extension}", 200, {"path_parameters": {"code": code, "extension": extension},
                                                            "query": {"as_of": EFFECTIVE}})
          for code in ("court_defaulters", "serious_dishonesty") for extension in ("csv", "jsonl")),
        ("GET /v1/screen/jobs/{job_id}", 200, {"path_parameters": {"job_id": job_id}}),
        ("GET /v1/screen/jobs/{job_id}", 404, {"path_parameters": {"job_id": "0" * 32}}),
        ("GET /v1/screen/jobs/{job_id}", 422, {"path_parameters": {"job_id": "\x00"}}),
        *(("GET /v1/screen/jobs/{job_id}/results.{extension}", 200,
           {"path_parameters": {"job_id": job_id, "extension": extension}}) for extension in ("csv", "jsonl")),
    ]


@pytest.fixture
def expected_statuses() -> dict[int, int]:
    """The status each explicit example must get, by the identity of its case."""
    return {}


@pytest.fixture
def api_schema(cli, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               expected_statuses: dict[int, int]) -> Iterator[schemathesis.BaseSchema]:
    monkeypatch.setenv("XINYONG_JOBS_DIR", str(tmp_path / "jobs"))  # not ~/.xinyong for PostgreSQL
    build_world(cli, tmp_path)
    cli("lists", "import", FOREIGN / "un_consolidated.xml", "--format", "un", "--list", "un_sc")
    cli("lists", "import", FOREIGN / "opensanctions.ftm.jsonl", "--format", "ftm", "--list", "os_test")
    keys = {"all": _key(cli, "screen,read_restricted,operate,submit"), "screen": _key(cli, "screen"),
            "read": _key(cli, "read_restricted"), "slow": _key(cli, "screen", rate="0.0001", burst="1")}
    with serving(db_url) as base:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json", config=_config(keys["all"]))
        realistic = _realistic(base, keys)
        assert {name for name, _, _ in realistic} <= {op.ok().label for op in schema.get_all_operations()}

        @schema.hook
        def before_add_examples(context: schemathesis.HookContext, examples: list[Case]) -> None:
            operation = context.operation
            for name, status, parts in realistic:
                if name == operation.label:
                    key = parts.get("key", keys["all"])
                    headers = {**({"X-API-Key": key} if key else {}), **parts.get("headers", {})}
                    rest = {k: v for k, v in parts.items() if k not in ("key", "headers")}
                    case = operation.Case(headers=headers, **rest)
                    expected_statuses[id(case)] = status
                    examples.append(case)

        yield schema
    assert not expected_statuses, f"{len(expected_statuses)} explicit examples were never sent"


if not hasattr(pytest.Function, "_nodeid"):
    # schemathesis 4.32 names each operation's subtest by rewriting `node._nodeid`, which pytest 9.2 no longer
    # has (the id lives in `node._id`): without it the lazy schema fails before testing anything. The
    # property gives it the node id to read and makes its renaming a no-op (subtests still name the operation).
    pytest.Function._nodeid = property(lambda node: node.nodeid, lambda node, value: None)

schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_api_conforms_to_its_schema(case: Case, expected_statuses: dict[int, int]) -> None:
    response = case.call_and_validate()
    expected = expected_statuses.pop(id(case), None)
    assert expected in (None, response.status_code), (
        f"{response.status_code}, not {expected}: {response.text[:300]}\n{case.as_curl_command()}")
