"""Screening at decision points probed as a listed firm trying to pass and as a clean firm wrongly
stopped: batch files, single answers and the feedback that reports a measure applied. Hand-made
inputs with real public firm names and codes with valid check characters. Each test is a defect
found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select

from test_trust_adversarial import PINGAN, TODAY, XIAOMI, listed_world
from worlds import run, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.store import tables as t
from xinyong.store.db import open_engine


def test_a_batch_naming_its_code_column_as_the_packs_files_do_is_screened_by_the_codes(cli, tmp_path: Path) -> None:
    """A bank's batch headed 社会信用代码 (a header the pack's own files use for the USCC) beside
    企业名称 was screened by name alone, the codes never read: the listed 小米, written by its
    trading name 米家 beside its own code, was allowed for procurement. A JSON Lines batch keyed
    `uscc` the same. Now every header the pack gives a subject's code or name is read, and each row
    is answered as the code screened alone answers it (a name that is not the code's firm's: refer)."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        alone = run(cli, "screen", XIAOMI, "--action", "public_procurement")
        assert alone["decision"] == "deny"
        rows = [[XIAOMI, "米家"], [XIAOMI.lower(), ""], ["", "小米科技有限责任公司"], [PINGAN, "中国平安财产保险股份有限公司"]]
        files = {"csv": write_csv(tmp_path / "bank.csv", ["社会信用代码", "企业名称"], rows)}
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

