"""Screening at decision points probed as a listed firm trying to pass and as a clean firm wrongly
stopped: batch files, single answers and the feedback that reports a measure applied. Hand-made
inputs with real public firm names and codes with valid check characters. Each test is a defect
found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import orjson
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select

from test_trust_adversarial import PINGAN, TODAY, WANG, XIAOMI, listed_world
from worlds import resident_id, run, uscc, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.services.screening import jobs
from xinyong.store import tables as t
from xinyong.store.db import open_engine


def test_a_batch_naming_its_code_column_as_the_packs_files_do_is_screened_by_the_codes(cli, tmp_path: Path) -> None:
    """A bank's batch headed 社会信用代码 (a header the pack's own files use for the USCC) beside
    企业名称 was screened by name alone, the codes never read: the listed 小米, written by its
    trading name 米家 beside its own code, was allowed for procurement. A JSON Lines batch keyed
    `uscc` the same; a template's 统一社会信用代码（必填） and 企业名称* hid both columns. Now every header the pack gives a subject's code or name is read, and each row
    is answered as the code screened alone answers it (a name that is not the code's firm's: refer)."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        alone = run(cli, "screen", XIAOMI, "--action", "public_procurement")
        assert alone["decision"] == "deny"
        rows = [[XIAOMI, "米家"], [XIAOMI.lower(), ""], ["", "小米科技有限责任公司"], [PINGAN, "中国平安财产保险股份有限公司"]]
        files = {"csv": write_csv(tmp_path / "bank.csv", ["社会信用代码", "企业名称"], rows)}
        # a template's headers: the required mark and the note in brackets hid both columns
        files["template"] = write_csv(tmp_path / "template.csv", ["统一社会信用代码（必填）", "企业名称*"], rows)
        files["jsonl"] = tmp_path / "bank.jsonl"
        files["jsonl"].write_bytes(b"".join(orjson.dumps({"uscc": code, "企业名称": name}) + b"\n" for code, name in rows))
        for kind, path in files.items():
            out = tmp_path / f"results-{kind}.jsonl"
            cli("screen", "--batch", path, "--action", "public_procurement", "-o", out)
            results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
            assert [(r["decision"], r["subject"], r["measures"]) for r in results] == [
                ("deny", XIAOMI, "no_public_procurement")] * 3 + [("deny", PINGAN, "no_public_procurement")], kind
            assert results[0]["match"] == "code_and_name_disagree"  # 米家 is no name of 小米's: a person looks too


def _feedback_world(cli, tmp_path: Path):
    listed_world(cli, tmp_path)
    return run(cli, "authority", "key", "create", "procurement_centre", "--scopes", "screen")["key"]


def test_feedback_reports_only_a_measure_the_answer_gave_once(cli, tmp_path: Path) -> None:
    """`POST /v1/feedback` took any measure of the pack for a screening answer: a procurement centre
    reported 限制参加政府采购活动 applied to 小米 on an answer about financing (whose measure is
    financing_restricted), and on an `allow` answer given before 中国平安's listing took effect; the
    same report sent twice (a retry) was stored twice; and without a query id, the measure was
    recorded as applied to a firm no listing bound that day. Now a report names a measure of its
    answer (422 measure_not_in_answer), one applied without an answer must bind the subject on its
    day (422 measure_not_binding), the same report again answers 200 with the first one, and a
    contradicting one 409 already_reported."""
    with time_machine.travel(TODAY, tick=False):
        key = _feedback_world(cli, tmp_path)
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                headers = {"X-API-Key": key}

                def screen(code: str, action: str, **more: str) -> dict:
                    answer = http.post("/v1/screen", headers=headers, json={
                        "identifier": code, "action": action, "purpose": "procurement_review", **more})
                    assert answer.status_code == 200, answer.text
                    return answer.json()

                def report(**body) -> tuple[int, dict]:
                    answer = http.post("/v1/feedback", headers=headers, json=body)
                    return answer.status_code, answer.json()

                financing = screen(XIAOMI, "financing")
                assert [m["code"] for m in financing["measures"]] == ["financing_restricted"]
                status, body = report(query_id=financing["query_id"], subject=XIAOMI, measure="no_public_procurement",
                                      applied=True)
                assert (status, body["error"]["code"]) == (422, "measure_not_in_answer")
                assert "financing_restricted" in body["error"]["message"]
                before = screen(PINGAN, "public_procurement", as_of="2026-10-20")
                assert (before["decision"], before["measures"]) == ("allow", [])
                status, body = report(query_id=before["query_id"], subject=PINGAN, measure="no_public_procurement",
                                      applied=True)
                assert (status, body["error"]["code"]) == (422, "measure_not_in_answer")
                # without an answer: the measure must bind the firm on the day reported
                status, body = report(subject=PINGAN, measure="no_public_procurement", applied=True,
                                      on_date="2026-10-20")
                assert (status, body["error"]["code"]) == (422, "measure_not_binding")
                status, _ = report(subject=PINGAN, measure="no_public_procurement", applied=True, on_date="2026-11-02")
                assert status == 201
                # one report per answer and measure: a retry is the first one, a contradiction refused
                procurement = screen(XIAOMI, "public_procurement")
                first = report(query_id=procurement["query_id"], subject=XIAOMI, measure="no_public_procurement",
                               applied=True, reference="CG-2026-118")
                again = report(query_id=procurement["query_id"], subject=XIAOMI, measure="no_public_procurement",
                               applied=True, reference="CG-2026-118")
                assert (first[0], again[0], again[1]["id"]) == (201, 200, first[1]["id"])
                status, body = report(query_id=procurement["query_id"], subject=XIAOMI,
                                      measure="no_public_procurement", applied=False, reason="contract signed earlier")
                assert (status, body["error"]["code"]) == (409, "already_reported")
                status, _ = report(query_id=financing["query_id"], subject=XIAOMI, measure="financing_restricted",
                                   applied=False, reason="loan renewed under the old contract")
                assert status == 201
            with engine.connect() as c:
                stored = c.execute(select(t.feedback.c.subject, t.feedback.c.measure, t.feedback.c.applied)
                                   .order_by(t.feedback.c.id)).all()
            assert [tuple(row) for row in stored] == [(PINGAN, "no_public_procurement", True),
                                                      (XIAOMI, "no_public_procurement", True),
                                                      (XIAOMI, "financing_restricted", False)]
        finally:
            engine.dispose()


PINGAN_BEIJING = uscc("91110105MA01P0044")  # 中国平安财产保险股份有限公司北京分公司
JD = uscc("91110302MA0JD0011")  # 北京京东世纪贸易有限公司
JD_SHANGHAI = uscc("91310115MA1JD0012")


def test_a_registered_branch_of_a_listed_firm_is_never_allowed_on_its_own_file(cli, tmp_path: Path) -> None:
    """A branch (分公司) registered with its own code has no legal personality: its head office answers
    for it. 中国平安's Beijing branch, screened for procurement by its code or its registered name, was
    allowed (its own file is clean) while 中国平安 itself, on the court's list, was denied; a batch
    allowed it in bulk. Now such a branch is `refer` with its head office as the candidate to check,
    by code, name, batch and HTTP alike; a branch of a firm on no list (京东's) is allowed as before,
    and so is the branch before its head office's listing took effect."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        register = write_csv(tmp_path / "branches.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"], [
            [PINGAN_BEIJING, "中国平安财产保险股份有限公司北京分公司", "股份有限公司分公司", "张智勇", "2002-05-05", "存续"],
            [JD, "北京京东世纪贸易有限公司", "有限责任公司", "刘强东", "2007-04-20", "存续"],
            [JD_SHANGHAI, "北京京东世纪贸易有限公司上海分公司", "有限责任公司分公司", "李娅云", "2012-06-01", "存续"]])
        cli("ingest", register, "--authority", "samr", "--category", "registration")
        run(cli, "resolve")
        by_code = run(cli, "screen", PINGAN_BEIJING, "--action", "public_procurement")
        by_name = run(cli, "screen", "--name", "中国平安财产保险股份有限公司北京分公司", "--action", "public_procurement")
        for answer in (by_code, by_name):
            assert (answer["decision"], answer["subject"]["key"], answer["measures"]) == ("refer", PINGAN_BEIJING, [])
            assert PINGAN in [c["entity"] for c in answer["candidates"]]
        assert run(cli, "screen", PINGAN_BEIJING, "--action", "public_procurement", "--as-of", "2026-10-20")[
            "decision"] == "allow"
        assert run(cli, "screen", JD_SHANGHAI, "--action", "public_procurement")["decision"] == "allow"
        batch = write_csv(tmp_path / "batch.csv", ["统一社会信用代码"], [[PINGAN_BEIJING], [JD_SHANGHAI], [PINGAN_BEIJING]])
        cli("screen", "--batch", batch, "--action", "public_procurement", "-o", tmp_path / "results.jsonl")
        results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [(r["decision"], r["subject"], r["best_candidate"]) for r in results] == [
            ("refer", PINGAN_BEIJING, PINGAN), ("allow", JD_SHANGHAI, None), ("refer", PINGAN_BEIJING, PINGAN)]
        key = run(cli, "authority", "key", "create", "procurement_centre", "--scopes", "screen")["key"]
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                answer = http.post("/v1/screen", headers={"X-API-Key": key}, json={
                    "identifier": PINGAN_BEIJING, "action": "bidding", "purpose": "tender_review"}).json()
        finally:
            engine.dispose()
        assert (answer["decision"], [c["entity"] for c in answer["candidates"]]) == ("refer", [PINGAN])
        assert answer["candidates"][0]["explanation"]["head_office_of_branch"] == "北京分公司"


LEI_JUN = resident_id("420111", dt.date(1969, 12, 16), 123)


def test_a_listed_persons_bare_name_is_referred_never_allowed(cli, tmp_path: Path) -> None:
    """Name screening compares a name with organisations only: the court's listed debtor 王建国,
    asked about by his name (a bank's loan, an airline's ticket), was allowed with no candidate, and
    so was 雷军, legal representative (ID number on the register) of the listed 小米, whom the ban on
    high consumption reaches. A bare name never decides for a person (it is many people's), but now a
    person of exactly that name whom a measure of the action binds is a candidate to check: refer,
    by the command line and in a batch alike. Where no measure of the action reaches him (雷军 in
    procurement), or before the listing took effect, the name is still allowed."""
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        register = write_csv(tmp_path / "rep.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人",
                                                    "法定代表人证件号码", "成立日期", "登记状态"],
                             [[XIAOMI, "小米科技有限责任公司", "有限责任公司", "雷军", LEI_JUN, "2010-03-03", "存续"]])
        cli("ingest", register, "--authority", "samr", "--category", "registration")
        run(cli, "resolve")
        wang = run(cli, "listing", "show", ids[WANG])["entity"]
        cases = [("王建国", "high_consumption", None, "refer", wang), ("王建國", "financing", None, "refer", wang),
                 ("雷军", "high_consumption", None, "refer", XIAOMI), ("雷军", "public_procurement", None, "allow", None),
                 ("王建国", "high_consumption", "2026-10-20", "allow", None), ("李娜", "high_consumption", None, "allow", None)]
        for name, action, day, decision, candidate in cases:
            answer = run(cli, "screen", "--name", name, "--action", action, *(("--as-of", day) if day else ()))
            assert (answer["decision"], answer["subject"], answer["measures"]) == (decision, None, []), (name, action)
            assert [c["entity"] for c in answer["candidates"]] == ([candidate] if candidate else []), (name, action)
        assert WANG not in json.dumps(answer, ensure_ascii=False)
        batch = write_csv(tmp_path / "names.csv", ["姓名", "action", "as_of"],
                          [[name, action, day or ""] for name, action, day, _, _ in cases])
        cli("screen", "--batch", batch, "-o", tmp_path / "names.jsonl")
        results = [json.loads(line) for line in (tmp_path / "names.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [(r["decision"], r["best_candidate"]) for r in results] == [(d, c) for _, _, _, d, c in cases]


def test_a_json_lines_row_holding_a_list_where_text_belongs_stops_only_itself(cli, tmp_path: Path) -> None:
    """A JSON Lines batch row whose name was a list (["小米"]) or whose action was an object stopped
    the whole batch: the command line printed a traceback, a batch job failed, and the rows after it
    (小米's own code among them) were never screened. Now such a row says which field is not text,
    a registration number written as a JSON number is read as its digits, and every other row is
    screened, on the command line and in a job alike."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        upload = b"".join(orjson.dumps(row) + b"\n" for row in (
            {"name": ["小米"]}, {"uscc": XIAOMI, "action": {"code": "bidding"}}, {"code": 110108000123456},
            {"uscc": XIAOMI, "as_of": 20261110}, {"统一社会信用代码": XIAOMI}))
        path = tmp_path / "odd.jsonl"
        path.write_bytes(upload)
        expected = [("name: not text", None), ("action: not text", None), (None, "not_found"),
                    ("as_of: not text", None), (None, "deny")]
        cli("screen", "--batch", path, "--action", "bidding", "-o", tmp_path / "odd-results.jsonl")
        results = [json.loads(line) for line in (tmp_path / "odd-results.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [(r["error"], r["decision"]) for r in results] == expected
        engine = open_engine(cli.url)
        try:
            job_id = jobs.create_job(engine, upload, "jsonl", key_id=None, authority="procurement_centre",
                                     purpose="tender_review", action="bidding", as_of=TODAY.date())
            jobs.spawn(engine, job_id).wait(timeout=120)
            assert jobs.job_status(engine, job_id)["state"] == "done"
            lines = jobs.result_path(engine, job_id, "jsonl").read_text(encoding="utf-8").splitlines()
        finally:
            engine.dispose()
        assert [(r["error"], r["decision"]) for r in map(json.loads, lines)] == expected


def test_a_code_written_with_a_cyrillic_or_greek_lookalike_letter_is_the_code(cli, tmp_path: Path) -> None:
    """小米's USCC written with a Cyrillic А (U+0410) or a Greek Μ for the Latin letter (a Russian
    keyboard layout, a document's font, or the listed firm's own copy into a tender form) answered
    not_found: full-width letters were folded, these were not. Now they are read as the Latin
    letters they are drawn like, by the command line, a batch and HTTP alike."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        cyrillic, greek = XIAOMI.replace("A", "\u0410"), XIAOMI.replace("M", "\u039c")
        assert cyrillic != XIAOMI and greek != XIAOMI
        for code in (cyrillic, greek):
            answer = run(cli, "screen", code, "--action", "bidding")
            assert (answer["decision"], answer["subject"]["key"]) == ("deny", XIAOMI), code
        batch = write_csv(tmp_path / "batch.csv", ["统一社会信用代码"], [[cyrillic], [greek]])
        cli("screen", "--batch", batch, "--action", "bidding", "-o", tmp_path / "results.jsonl")
        results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [(r["decision"], r["subject"]) for r in results] == [("deny", XIAOMI)] * 2
        key = run(cli, "authority", "key", "create", "procurement_centre", "--scopes", "screen")["key"]
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                answer = http.post("/v1/screen", headers={"X-API-Key": key}, json={
                    "identifier": cyrillic, "action": "bidding", "purpose": "tender_review"}).json()
        finally:
            engine.dispose()
        assert (answer["decision"], answer["subject"]["key"]) == ("deny", XIAOMI)
