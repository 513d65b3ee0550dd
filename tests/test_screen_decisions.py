"""Screening never says "allow" for what it does not know (issue 11, item 7).

The world of tests/worlds.py, plus a hand-made register: a clean firm whose name is a
homophone of a listed one (某谋 / 某某, both "mou"), a firm with a registered English
name, and a penalty naming a firm by a code that fails its check (an unverified
identifier). Screened through the CLI and over HTTP, on SQLite and PostgreSQL: "hello",
a corrupted USCC, a valid code nobody holds, a near name, the homophone, English names.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from worlds import CLEAN_REP, FIRM_SERIOUS, NAMES, REP, build_world, resident_id, serving, uscc, write_csv
from xinyong.domain.identifiers import USCC_ALPHABET, is_valid_uscc
from xinyong.services.publication.search import PersonIdQuery, search
from xinyong.store.db import open_engine

HOMOPHONE = uscc("91310115MA1HP0005")
ENGLISH = uscc("91310104MA1EN0006")
OWN_NAMES = {HOMOPHONE: "上海某谋科技有限公司", ENGLISH: "上海华新精密仪器有限公司"}
ENGLISH_NAME = "Shanghai Huaxin Precision Instruments Co., Ltd."
NOBODY = uscc("91110000MA0NF0008")  # valid, held by no entity
CORRUPTED = FIRM_SERIOUS[:-1] + USCC_ALPHABET[(USCC_ALPHABET.index(FIRM_SERIOUS[-1]) + 1) % 31]
UNVERIFIED = uscc("91330100MA2UW0007")[:-1] + "0"
STRANGER = resident_id("310104", dt.date(1991, 4, 17), 88)  # valid, reached by nothing
NEAR_NAME = "上海某某科技发展有限公司"  # the listed firm's name with a word more: possible, not certain
BATCH_HEAD = ["line", "identifier", "name", "action", "as_of", "decision", "subject", "subject_name", "measures",
              "ends", "match", "error"]


def own_world(cli, folder: Path) -> None:
    assert not is_valid_uscc(CORRUPTED) and not is_valid_uscc(UNVERIFIED)
    register = write_csv(folder / "own-register.csv",
                         ["统一社会信用代码", "企业名称", "企业英文名称", "企业类型", "法定代表人", "成立日期", "登记状态"], [
        [HOMOPHONE, OWN_NAMES[HOMOPHONE], "", "有限责任公司", "冯十一", "2016-02-02", "存续"],
        [ENGLISH, OWN_NAMES[ENGLISH], ENGLISH_NAME, "有限责任公司", "陈十二", "2011-07-19", "存续"],
    ])
    penalties = write_csv(folder / "own-penalties.csv",
                          ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"], [
        ["杭州某某校验错误贸易有限公司", UNVERIFIED, "杭市监罚〔2025〕9号", "2025-07-01", "警告", ""],
    ])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    cli("ingest", penalties, "--authority", "samr", "--category", "penalty")
    cli("resolve")


def check_candidates(answer: dict[str, Any]) -> list[dict[str, Any]]:
    candidates = answer["candidates"]
    assert isinstance(candidates, list)
    for c in candidates:
        assert set(c) >= {"entity", "score", "explanation"} and isinstance(c["entity"], str) and c["explanation"]
    if answer["subject"] is not None:
        assert candidates[0]["entity"] == answer["subject"]["key"]  # a chosen subject comes first
        rest = candidates[1:]
    else:
        rest = candidates
    assert [c["score"] for c in rest] == sorted((c["score"] for c in rest), reverse=True)
    return candidates


def check_name_answers(screen) -> None:
    """`screen(name=...)` returns the answer as data; the same checks for the CLI and HTTP."""
    # an exact registered name beats a homophone: the clean firm, never the listed one
    homophone = screen(name=OWN_NAMES[HOMOPHONE], action="bidding")
    assert (homophone["decision"], homophone["subject"]["key"], homophone["match"]) == ("allow", HOMOPHONE, "name")
    check_candidates(homophone)
    listed = screen(name=NAMES[FIRM_SERIOUS], action="bidding")
    assert (listed["decision"], listed["subject"]["key"]) == ("deny", FIRM_SERIOUS)
    # near but not certain: a person must check, with the candidates and why
    near = screen(name=NEAR_NAME, action="bidding")
    assert (near["decision"], near["subject"], near["measures"]) == ("refer", None, [])
    assert FIRM_SERIOUS in [c["entity"] for c in check_candidates(near)]
    # nothing near: allow, and nothing decided against anybody
    far = screen(name="广州完全不同物流有限公司", action="bidding")
    assert (far["decision"], far["subject"], far["candidates"]) == ("allow", None, [])
    # the registered English name, however it is cased, punctuated or its legal form written
    for english in (ENGLISH_NAME, "SHANGHAI HUAXIN PRECISION INSTRUMENTS COMPANY LIMITED",
                    "shanghai huaxin precision instruments corp."):
        found = screen(name=english, action="bidding")
        assert (found["decision"], found["subject"]["key"]) == ("allow", ENGLISH), english


def check_identifier_answers(screen) -> None:
    for unknown in ("hello", NOBODY, STRANGER):
        answer = screen(identifier=unknown, action="bidding")
        assert (answer["decision"], answer["subject"], answer["measures"]) == ("not_found", None, []), unknown
    clean = screen(identifier=HOMOPHONE, action="bidding")
    assert (clean["decision"], clean["subject"]["key"]) == ("allow", HOMOPHONE)
    # a valid ID number reached through a relation is decided as before
    assert screen(identifier=REP, action="high_consumption")["decision"] == "deny"
    reached = screen(identifier=CLEAN_REP, action="high_consumption")
    assert (reached["decision"], reached["subject"]) == ("allow", None)


@pytest.fixture
def world(cli, tmp_path):
    build_world(cli, tmp_path)
    own_world(cli, tmp_path)
    return cli


def test_cli_answers(world, tmp_path):
    cli = world

    def screen(identifier: str | None = None, name: str | None = None, action: str = "bidding") -> dict[str, Any]:
        args = [identifier] if identifier is not None else ["--name", name]
        return json.loads(cli("screen", *args, "--action", action, "--as-of", "2026-01-05", "--json").stdout)

    check_identifier_answers(screen)
    check_name_answers(screen)
    for broken in (CORRUPTED, UNVERIFIED, CORRUPTED.lower()):
        failed = cli("screen", broken, "--action", "bidding", ok=False)
        assert failed.exit_code == 1
        lines = failed.output.strip().splitlines()
        assert len(lines) == 1 and "fails its check" in lines[0], failed.output
    # search refuses a prefix of an ID number as it refuses the whole number
    engine = open_engine(cli.url)
    try:
        for query in (REP, REP[:14], REP[:10], f"{REP[:6]} {REP[6:12]}"):
            with pytest.raises(PersonIdQuery):
                search(engine, query, dt.date(2026, 1, 5))
        assert search(engine, HOMOPHONE[:10], dt.date(2026, 1, 5)).total >= 1
    finally:
        engine.dispose()
    shown = cli("screen", "--name", NEAR_NAME, "--action", "bidding").stdout
    assert "REFER" in shown and FIRM_SERIOUS in shown
    # a batch: one result per input line, the columns in order, new ones after
    subjects = write_csv(tmp_path / "subjects.csv", ["identifier", "name", "action"], [
        ["hello", "", "bidding"], [CORRUPTED, "", "bidding"], ["", NEAR_NAME, "bidding"],
        ["", OWN_NAMES[HOMOPHONE], "bidding"], [FIRM_SERIOUS, "", "public_procurement"]])
    out = tmp_path / "out.csv"
    cli("screen", "--batch", subjects, "--as-of", "2026-01-05", "-o", out)
    with out.open(encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames[:12] == BATCH_HEAD and {"best_candidate", "best_score"} <= set(reader.fieldnames[12:])
    assert [(r["line"], r["decision"]) for r in rows] == [
        ("2", "not_found"), ("3", ""), ("4", "refer"), ("5", "allow"), ("6", "deny")]
    assert "fails its check" in rows[1]["error"] and rows[2]["best_candidate"] == FIRM_SERIOUS
    assert float(rows[2]["best_score"]) >= 0.75 and rows[3]["subject"] == HOMOPHONE
    jsonl = tmp_path / "out.jsonl"
    cli("screen", "--batch", subjects, "--as-of", "2026-01-05", "-o", jsonl)
    results = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [r["decision"] for r in results] == ["not_found", None, "refer", "allow", "deny"]
    assert FIRM_SERIOUS in [c["entity"] for c in results[2]["candidates"]]
    assert results[3]["candidates"][0]["entity"] == HOMOPHONE and results[0]["candidates"] is None


def test_http_answers(world):
    cli = world
    key = json.loads(cli("authority", "key", "create", "procurement_centre", "--scopes", "screen", "--rate", "1000",
                         "--burst", "1000", "--json").stdout)["key"]
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:
        headers = {"X-API-Key": key}

        def post(**body: Any) -> httpx.Response:
            body.setdefault("purpose", "procurement_review")
            body.setdefault("as_of", "2026-01-05")
            return http.post("/v1/screen", json=body, headers=headers)

        def screen(**body: Any) -> dict[str, Any]:
            response = post(**body)
            assert response.status_code == 200, response.text
            return response.json()

        check_identifier_answers(screen)
        check_name_answers(screen)
        for broken in (CORRUPTED, UNVERIFIED):
            response = post(identifier=broken, action="bidding")
            assert response.status_code == 422, response.text
            error = response.json()["error"]
            assert error["code"] == "invalid_identifier" and "fails its check" in error["message"]
        # the entity's public page shows its English name, not as a former name
        page = http.get(f"/entities/{ENGLISH}", params={"lang": "en"})
        assert page.status_code == 200 and ENGLISH_NAME in page.text and "Former names" not in page.text
        # the contract says so
        schema = http.get("/openapi.json").json()["components"]["schemas"]
        assert set(schema["ScreenAnswer"]["properties"]["decision"]["enum"]) == {
            "allow", "deny", "conditions", "refer", "not_found"}
        assert schema["Candidate"]["properties"]["entity"]["type"] == "string"
        # a batch job answers the same, row by row
        upload = "identifier,name,action\n" + "\n".join([
            "hello,,bidding", f"{CORRUPTED},,bidding", f",{NEAR_NAME},bidding", f",\"{ENGLISH_NAME}\",bidding"]) + "\n"
        started = http.post("/v1/screen/jobs", headers=headers, files={"file": ("s.csv", upload.encode(), "text/csv")},
                            data={"purpose": "procurement_review", "as_of": "2026-01-05"})
        assert started.status_code == 202, started.text
        job_url = started.json()["status_url"]
        deadline = time.monotonic() + 120
        while (job := http.get(job_url, headers=headers).json())["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.3)
        assert job["state"] == "done", job
        text = http.get(f"{job_url}/results.csv", headers=headers).content.decode("utf-8-sig")
        reader = csv.DictReader(io.StringIO(text))
        rows = list(reader)
        assert reader.fieldnames[:12] == BATCH_HEAD
        assert [r["decision"] for r in rows] == ["not_found", "", "refer", "allow"]
        assert "fails its check" in rows[1]["error"] and rows[3]["subject"] == ENGLISH
        lines = http.get(f"{job_url}/results.jsonl", headers=headers).text.splitlines()
        assert FIRM_SERIOUS in [c["entity"] for c in json.loads(lines[2])["candidates"]]
