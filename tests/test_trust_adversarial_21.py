"""Screening at decision points and the accountability behind it, probed as an insider covering a
measure up, as a listed firm trying to pass and as an unlucky firm: the report-back of applied
measures and the record-to-entity links checked by `audit verify`, screening by codes and names
typed as people type them. Real public firm names, codes with valid check characters. Each test is
a defect found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from test_trust_adversarial import PINGAN, TODAY, XIAOMI, listed_world
from worlds import run
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.store import tables as t
from xinyong.store.db import open_engine


def _verify_problems(cli) -> str:
    broken = cli("audit", "verify", ok=False)
    assert broken.exit_code == 1, broken.output
    return broken.output


def test_audit_verify_names_a_report_back_forged_altered_or_deleted_in_the_store(cli, tmp_path: Path) -> None:
    """A procurement centre reported that it applied 限制参加政府采购活动 to 小米 (`POST /v1/feedback`).
    The report was written with no audit event at all, sealed by nothing: an insider who turned it
    into "not applied" (an UPDATE), deleted it, or INSERTed a report that 中国平安 was excluded under a
    contract number nobody issued, left `audit verify` saying "audit chain intact". Now each report
    is an audit event carrying its digest, and verify names a report that differs, is missing or was
    never audited."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        created = run(cli, "authority", "key", "create", "procurement_centre", "--scopes", "screen")
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                headers = {"X-API-Key": created["key"]}
                answer = http.post("/v1/screen", headers=headers, json={
                    "identifier": XIAOMI, "action": "public_procurement", "purpose": "procurement_review"}).json()
                assert answer["decision"] == "deny"
                sent = http.post("/v1/feedback", headers=headers, json={
                    "query_id": answer["query_id"], "subject": XIAOMI, "measure": "no_public_procurement",
                    "applied": True, "reference": "京财采〔2026〕17号"})
                assert sent.status_code == 201, sent.text
                report_id = sent.json()["id"]
            assert cli("audit", "verify").exit_code == 0
            f = t.feedback.c
            with engine.begin() as c:
                c.execute(update(t.feedback).where(f.id == report_id).values(applied=False, reason="not needed"))
            assert f"feedback {report_id}: " in _verify_problems(cli)
            with engine.begin() as c:
                c.execute(update(t.feedback).where(f.id == report_id).values(applied=True, reason=None))
            assert cli("audit", "verify").exit_code == 0  # put back as it was: intact again
            with engine.begin() as c:
                row = c.execute(select(t.feedback).where(f.id == report_id)).mappings().one()
                forged = c.execute(t.feedback.insert().values(
                    **{**{k: v for k, v in row.items() if k != "id"}, "subject": PINGAN, "query_id": None,
                       "reference": "京财采〔2026〕99号"})).inserted_primary_key[0]
            assert f"feedback {forged} has no audit event" in _verify_problems(cli)
            with engine.begin() as c:
                c.execute(delete(t.feedback).where(f.id.in_([forged, report_id])))
            assert f"feedback {report_id}: audited but missing from the store" in _verify_problems(cli)
        finally:
            engine.dispose()


def _entity_id(engine, code: str) -> int:
    with engine.connect() as c:
        return c.execute(select(t.entity_identifiers.c.entity_id).where(t.entity_identifiers.c.value == code)).scalar_one()


def test_audit_verify_names_a_record_link_moved_or_deleted_in_the_store(cli, tmp_path: Path) -> None:
    """Which firm a record is about is its link (`record_links`): resolution writes it, a reviewer's
    judgement moves it. Links were in no audit event: an insider who moved the court's case against
    小米 onto 中国平安 (an UPDATE of its link's entity) put the case on 中国平安's page and in its
    listing evidence, and one who deleted the link took it off 小米's, while `audit verify` said
    "audit chain intact". Now every write of links is an audit event naming each link's record,
    entity, state and method (a reviewer's judgement too), and verify names a link that differs."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        engine = open_engine(cli.url)
        try:
            xiaomi, pingan = _entity_id(engine, XIAOMI), _entity_id(engine, PINGAN)
            r, link = t.records.c, t.record_links.c
            with engine.connect() as c:
                case = c.execute(select(r.id).where(r.category == "court_defaulter", r.subject_code == XIAOMI)).scalar_one()
                assert c.execute(select(link.entity_id).where(link.record_id == case)).scalar_one() == xiaomi
            assert cli("audit", "verify").exit_code == 0
            with engine.begin() as c:
                c.execute(update(t.record_links).where(link.record_id == case).values(entity_id=pingan))
            assert f"record link {case}: " in _verify_problems(cli)
            with engine.begin() as c:
                c.execute(update(t.record_links).where(link.record_id == case).values(entity_id=xiaomi))
            assert cli("audit", "verify").exit_code == 0
            # a reviewer's judgement moves a link through the audited path: still intact
            judged = run(cli, "review", "reject", case, "--reason", "not 小米's case", "--actor", "reviewer")
            assert judged["moved_from"] == XIAOMI
            assert cli("audit", "verify").exit_code == 0
            with engine.begin() as c:
                c.execute(delete(t.record_links).where(link.record_id == case))
            assert f"record link {case}: " in _verify_problems(cli)
        finally:
            engine.dispose()

