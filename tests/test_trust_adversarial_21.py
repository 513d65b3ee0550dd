"""Screening at decision points and the accountability behind it, probed as an insider covering a
measure up, as a listed firm trying to pass and as an unlucky firm: the report-back of applied
measures and the record-to-entity links checked by `audit verify`, screening by codes and names
typed as people type them. Real public firm names, codes with valid check characters. Each test is
a defect found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import time_machine
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from test_trust_adversarial import PINGAN, TODAY, XIAOMI, listed_world
from worlds import run, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.store import tables as t
from xinyong.store.db import get_setting, open_engine


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


def test_a_listed_firms_code_typed_without_a_valid_check_character_is_never_not_found(cli, tmp_path: Path) -> None:
    """小米's code with its check character left off (17 characters, as a clerk copying it from a
    scan stops short), replaced by a character no USCC holds (Z, a question mark from a broken
    encoding) or followed by one character too many, was answered `not_found`: the answer for a firm
    the register does not know, which a procurement system reads as nothing against it, while a
    wrong check character of the alphabet answers 422 invalid_identifier. Now every code shaped as a
    USCC but without a valid check character is 422 invalid_identifier, the batch row an error."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        created = run(cli, "authority", "key", "create", "procurement_centre", "--scopes", "screen")
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                def screened(identifier: str) -> tuple[int, str]:
                    answer = http.post("/v1/screen", headers={"X-API-Key": created["key"]}, json={
                        "identifier": identifier, "action": "public_procurement", "purpose": "procurement_review"})
                    body = answer.json()
                    return answer.status_code, body.get("decision") or body["error"]["code"]

                assert screened(XIAOMI) == (200, "deny")
                for typed in (XIAOMI[:-1], XIAOMI[:-1] + "Z", XIAOMI[:-1] + "?", XIAOMI + "X", XIAOMI[:8] + " " + XIAOMI[8:-1],
                              PINGAN[:-1]):
                    assert screened(typed) == (422, "invalid_identifier"), typed
                assert screened("91110000MA0NF00087") == (200, "not_found")  # a valid code no firm holds
        finally:
            engine.dispose()


def test_a_pack_giving_a_measure_list_or_rule_no_legal_basis_is_refused(cli, tmp_path: Path) -> None:
    """An overlay pack blanking the legal basis of 限制参加政府采购活动 (`legal_basis: "  "`) was
    activated, and screening denied 小米 procurement citing nothing: "no measure without a legal
    basis" was kept by no check. Now a measure, a list or a rule whose legal basis is empty is
    refused when the pack loads, naming the key, and the store keeps its pack."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        for key, entry in (("measures", {"code": "no_public_procurement", "legal_basis": "  "}),
                           ("lists", {"code": "court_defaulters", "legal_basis": ""})):
            overlay = tmp_path / f"no-basis-{key}.yaml"
            overlay.write_text(yaml.safe_dump({"code": "cn-no-basis", "version": "1", "extends": "cn", key: [entry]}),
                               encoding="utf-8")
            refused = cli("init", "--pack", overlay, ok=False)
            assert refused.exit_code != 0, refused.output
            assert f"{key}[{entry['code']}].legal_basis" in refused.output + str(refused.exception), refused.output
        engine = open_engine(cli.url)
        try:
            with engine.connect() as c:
                assert get_setting(c, "pack") == "cn"  # the store keeps the pack it had
        finally:
            engine.dispose()


def test_a_report_back_is_never_dated_before_the_screening_it_acted_on(cli, tmp_path: Path) -> None:
    """The procurement centre screened 小米 on 10 November 2026 (deny) and reported 限制参加政府采购活动
    applied on 1 January 2020, six years before the court's listing took effect and before the
    question was asked; another answer asked as of 26 October was reported applied on 1 October,
    before the listing bound. Both were stored as measures applied on that answer's basis (the date is
    checked only for a report without an answer). Now a report on an answer is dated no earlier than
    the day the answer speaks of (the day it was given, or its as_of when earlier: a decision entered
    late is screened as of its day) (422 date_before_screening); that day or later is stored."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        created = run(cli, "authority", "key", "create", "procurement_centre", "--scopes", "screen")
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                headers = {"X-API-Key": created["key"]}

                def screened(**more: str) -> str:
                    answer = http.post("/v1/screen", headers=headers, json={
                        "identifier": XIAOMI, "action": "public_procurement", "purpose": "procurement_review",
                        **more}).json()
                    assert answer["decision"] == "deny", answer
                    return answer["query_id"]

                today, back_then = screened(), screened(as_of="2026-10-27")
                for query_id, day in ((today, "2020-01-01"), (back_then, "2026-10-01"), (today, "2026-11-09")):
                    sent = http.post("/v1/feedback", headers=headers, json={
                        "query_id": query_id, "subject": XIAOMI, "measure": "no_public_procurement",
                        "applied": True, "on_date": day})
                    assert sent.status_code == 422 and sent.json()["error"]["code"] == "date_before_screening", sent.text
                sent = http.post("/v1/feedback", headers=headers, json={
                    "query_id": today, "subject": XIAOMI, "measure": "no_public_procurement", "applied": True,
                    "on_date": "2026-11-10"})
                assert sent.status_code == 201, sent.text
            with engine.connect() as c:
                assert c.execute(select(t.feedback.c.on_date)).scalars().all() == [dt.date(2026, 11, 10)]
        finally:
            engine.dispose()


def test_a_batch_row_with_a_code_no_firm_holds_is_decided_by_the_name_beside_it(cli, tmp_path: Path) -> None:
    """A bank's batch row gave 小米's exact registered name beside a code no firm holds (a valid
    one, or a word): the row was answered `not_found` by the code and the name never read, so the
    listed 小米 passed by writing any code beside its name. Now a code that names no subject does
    not decide the row: the name beside it does, at least `refer` (match code_and_name_disagree,
    with the name's candidates); a code alone, or with an empty name, is still not_found."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        nobody = "91110000MA0NF00087"  # valid check character, held by no firm
        rows = [[nobody, "小米科技有限责任公司"], ["hello", "小米科技有限责任公司"], [nobody, "中国平安财产保险股份有限公司"],
                [nobody, ""], [XIAOMI, "小米科技有限责任公司"]]
        out = tmp_path / "results.jsonl"
        cli("screen", "--batch", write_csv(tmp_path / "bank.csv", ["统一社会信用代码", "企业名称"], rows),
            "--action", "public_procurement", "-o", out)
        results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [(r["decision"], r.get("match")) for r in results] == [
            ("deny", "code_and_name_disagree"), ("deny", "code_and_name_disagree"),
            ("deny", "code_and_name_disagree"), ("not_found", None), ("deny", None)], results
        assert results[0]["subject"] == XIAOMI and results[0]["measures"] == "no_public_procurement"
        assert results[0]["candidates"][0]["entity"] == XIAOMI and results[2]["candidates"][0]["entity"] == PINGAN


def test_a_link_moved_in_sql_is_not_laundered_by_deleting_the_audited_setting(cli, tmp_path: Path) -> None:
    """Whether the store's links were baselined was a setting (`links_audited`): an insider moving the
    court's case against 小米 onto 中国平安 and deleting that setting had the next `resolve` write the
    moved link into a fresh baseline event, and `audit verify` said intact. The chain decides now."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        engine = open_engine(cli.url)
        try:
            pingan = _entity_id(engine, PINGAN)
            r, link = t.records.c, t.record_links.c
            with engine.begin() as c:
                case = c.execute(select(r.id).where(r.category == "court_defaulter", r.subject_code == XIAOMI)).scalar_one()
                c.execute(update(t.record_links).where(link.record_id == case).values(entity_id=pingan))
                c.execute(delete(t.settings).where(t.settings.c.key == "links_audited"))
            run(cli, "resolve")
            assert f"record link {case}: " in _verify_problems(cli)
        finally:
            engine.dispose()
