"""Publication, open data and accountability, probed as a journalist mirroring the open data, a
subject whose listing ended and an insider with write access to the store would: hand-made inputs,
real public company names, codes with valid check characters. Each test is a defect found and
fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from test_trust_adversarial import COURT_HEADERS, PINGAN, TODAY, WANG, XIAOMI, court_row, listed_world
from worlds import run, uscc, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.services.operations.integrity import verify_store
from xinyong.services.publication import opendata
from xinyong.store import tables as t
from xinyong.store.db import open_engine

PINGAN_CASE = f"court:（2026）沪0115执300号#{PINGAN}"


@pytest.mark.parametrize("step", ["correct", "revoke"])
def test_audit_verify_names_a_record_version_made_by_due_process_edited_in_the_store(cli, tmp_path: Path,
                                                                                       step: str) -> None:
    """A record version made by due process (a correction, a revocation) is left out of its batch's
    audited digest, and verify checked only its status. An insider moved the court's corrected case
    from 中国平安 to 小米 and dated it a month later (its publicity running a month longer) by an
    UPDATE of that version: `audit verify` said "audit chain intact" while 小米's page showed the
    case. Now each such step's audit event carries the digest of the version it stored, and verify
    names the version that differs."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        if step == "correct":
            (tmp_path / "fix.json").write_text(json.dumps({"担保情况": "无"}, ensure_ascii=False), encoding="utf-8")
            made = run(cli, "record", "correct", PINGAN_CASE, "--file", tmp_path / "fix.json", "--reason", "typo")
        else:
            made = run(cli, "record", "revoke", PINGAN_CASE, "--reason", "annulled on appeal")
        assert made["version"] == 2
        assert cli("audit", "verify").exit_code == 0
        engine = open_engine(cli.url)
        try:
            with engine.begin() as c:
                r = t.records.c
                c.execute(update(t.records).where(r.record_key == PINGAN_CASE, r.version == 2)
                          .values(subject_code=XIAOMI, decision_date=TODAY.date()))
        finally:
            engine.dispose()
        broken = cli("audit", "verify", ok=False)
        assert broken.exit_code == 1
        assert f"record {PINGAN_CASE} version 2: its subject, decision date or fields differ" in broken.output, \
            broken.output


def test_audit_verify_names_a_repair_or_objection_written_in_the_store(cli, tmp_path: Path) -> None:
    """Objections and repair applications were checked by nothing: an insider who set 中国平安's
    pending application for its court case to approved (an UPDATE; or a row INSERTed for the record)
    ended that case's publicity on its page, the open data and the credit report, and another who
    turned 小米's rejected objection into an upheld one changed the court's public upheld share:
    `audit verify` said "audit chain intact" each time. Now every case must be what its audited
    steps made it, and a deleted one is named."""
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        (tmp_path / "commitment.txt").write_text("本公司承诺依法履行义务", encoding="utf-8")
        (tmp_path / "receipt.txt").write_text("执行款已全部缴纳", encoding="utf-8")
        repair = run(cli, "repair", "apply", ids[PINGAN], "--commitment", tmp_path / "commitment.txt",
                     "--evidence", tmp_path / "receipt.txt", "--on", "2026-11-01")["repair"]
        objection = run(cli, "objection", "file", "--listing", ids[XIAOMI], "--reason", "not our case",
                        "--on", "2026-11-01")["objection"]
        run(cli, "objection", "decide", objection, "--reject", "--on", "2026-11-03", "--reason", "the case is 小米's")
        assert cli("audit", "verify").exit_code == 0
        engine = open_engine(cli.url)
        tampered = {
            f"repair {repair} is approved, its audited steps leave it pending":
                update(t.repairs).where(t.repairs.c.id == repair).values(state="approved", decided_on=TODAY.date()),
            f"objection {objection} is upheld, its audited steps leave it rejected":
                update(t.objections).where(t.objections.c.id == objection).values(state="upheld"),
            f"objection {objection}: decided on 2026-11-09, its audited decision says 2026-11-03":
                update(t.objections).where(t.objections.c.id == objection)
                .values(decided_on=TODAY.date().replace(day=9)),
            f"repair {repair}: what it is about or the day it was applied differs from its audited repair.applied":
                update(t.repairs).where(t.repairs.c.id == repair).values(listing_id=ids[XIAOMI]),
            f"repair {repair + 1} has no audit event (repair.applied)":
                t.repairs.insert().values(id=repair + 1, record_key=PINGAN_CASE, commitment="", commitment_sha256="",
                                          evidence=[], state="approved", applied_on=TODAY.date(),
                                          applied_by="insider", decided_on=TODAY.date()),
            f"objection {objection}: audited but missing from the store":
                t.objections.delete().where(t.objections.c.id == objection),
        }
        try:
            for said, statement in tampered.items():
                with engine.connect() as c:
                    transaction = c.begin()
                    c.execute(statement)
                    problems = verify_store(c).problems
                    transaction.rollback()
                assert said in problems, (said, problems)
        finally:
            engine.dispose()
        engine = open_engine(cli.url)  # the command line says the same (one case, committed)
        try:
            with engine.begin() as c:
                c.execute(tampered[f"repair {repair} is approved, its audited steps leave it pending"])
        finally:
            engine.dispose()
        refused = cli("audit", "verify", ok=False)
        assert refused.exit_code == 1 and f"repair {repair} is approved" in refused.output, refused.output


def test_the_verify_page_says_when_the_file_a_genuine_report_shows_has_changed_since(cli, tmp_path: Path) -> None:
    """中国平安 downloaded its credit report (on the court's list) at midday; that afternoon its objection
    was upheld (the debtor is another firm) and the listing withdrawn, bound on no day. A buyer who
    checked the report at /verify/CODE read "Genuine", nothing more, so the report went on costing
    中国平安 tenders; the same for 王建国's report once his listing ended as performed. Now the page
    says the entity's public file has changed since the report was issued, with a link to it; 小米's
    report, whose file did not change, shows no such notice."""
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        wang = run(cli, "listing", "show", ids[WANG])["entity"]
        engine = open_engine(cli.url)
        codes = {}
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                for key in (PINGAN, XIAOMI, wang):
                    issued = http.get(f"/entities/{key}/report.pdf")
                    assert issued.status_code == 200
                    codes[key] = issued.headers["X-Report-Code"]
                    assert 'id="changed-since"' not in http.get(f"/verify/{codes[key]}").text
        finally:
            engine.dispose()
    with time_machine.travel(TODAY + dt.timedelta(hours=3), tick=False):
        objection = run(cli, "objection", "file", "--listing", ids[PINGAN], "--reason", "not our case",
                        "--on", "2026-11-10")["objection"]
        run(cli, "objection", "decide", objection, "--uphold", "--on", "2026-11-10", "--reason", "another firm")
        run(cli, "listing", "end", ids[WANG], "--reason", "performed", "--on", "2026-11-10")
        run(cli, "resolve", "--all")  # links decided again, unchanged: 小米's file is the same
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                for key in (PINGAN, wang):
                    page = http.get(f"/verify/{codes[key]}")
                    assert page.status_code == 200 and 'id="changed-since"' in page.text, key
                    assert "此后已有变化" in page.text
                assert 'id="changed-since"' not in http.get(f"/verify/{codes[XIAOMI]}").text
        finally:
            engine.dispose()


JD = uscc("91110302MA0JD0011")
GREE = uscc("91440400MA4GL0022")
ABNORMAL_HEADERS = ["企业名称", "统一社会信用代码", "列入决定书文号", "列入经营异常名录原因", "列入日期", "移出日期"]


def test_audit_verify_names_a_moved_listing_given_to_another_firm_in_the_store(cli, tmp_path: Path) -> None:
    """京东 stayed three years on the abnormal operations list uncured, so `process` proposed it for the
    serious illegal and dishonest list on its own (a move, not an evaluation). An insider gave that
    listing to 格力 (`UPDATE listings SET entity_id`), or swapped its evidence for another record: its
    event named the subject, list, rule and evidence, but verify compared only its state and dates,
    and said "audit chain intact" while 格力's page would show the listing once served. Now a
    listing proposed on its own must match its audited proposal."""
    register = write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "成立日期", "登记状态"],
                         [[JD, "北京京东世纪贸易有限公司", "有限责任公司", "2007-04-20", "存续"],
                          [GREE, "珠海格力电器股份有限公司", "股份有限公司", "1989-12-13", "存续"]])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    abnormal = write_csv(tmp_path / "abnormal.csv", ABNORMAL_HEADERS, [
        ["北京京东世纪贸易有限公司", JD, "京市监异〔2022〕7号", "通过登记的住所无法联系", "2022-03-01", ""],
        ["珠海格力电器股份有限公司", GREE, "珠市监异〔2022〕9号", "未按规定报送年度报告", "2022-03-01", "2022-05-01"]])
    cli("ingest", abnormal, "--authority", "samr", "--category", "abnormal_operation")
    run(cli, "resolve")
    run(cli, "evaluate", "--as-of", "2022-03-10")
    (first,) = run(cli, "listing", "list", "--entity", JD)
    served = run(cli, "listing", "notify", first["id"], "--on", "2022-03-14", "--actor", "officer",
                 "--reason", "served")
    after = dt.date.fromisoformat(served["objection_deadline"]) + dt.timedelta(days=1)
    assert run(cli, "process", "--as-of", after.isoformat())["effective"] == 1
    run(cli, "process", "--as-of", "2025-06-01")
    (serious,) = [item for item in run(cli, "listing", "list", "--entity", JD) if item["list"] == "serious_dishonesty"]
    assert cli("audit", "verify").exit_code == 0
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            gree = c.execute(select(t.entities.c.id).where(t.entities.c.key == GREE)).scalar_one()
            other = c.execute(select(t.records.c.id).where(t.records.c.record_key.like("samr:珠市监异%"))).scalar_one()
        for statement in (update(t.listings).where(t.listings.c.id == serious["id"]).values(entity_id=gree),
                          update(t.listing_evidence).where(t.listing_evidence.c.listing_id == serious["id"])
                          .values(record_id=other)):
            with engine.connect() as c:
                transaction = c.begin()
                c.execute(statement)
                problems = verify_store(c).problems
                transaction.rollback()
            said = f"listing {serious['id']}: its subject, list, rule or evidence differs from its audited proposal"
            assert said in problems, problems
    finally:
        engine.dispose()


def test_a_dump_whose_capture_was_overtaken_by_the_servers_is_not_labelled_with_the_newer_seq(
        cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`publish` ran (nightly) while `serve` captured the change log every half second. The court ended
    小米's listing (performed) while publish was computing the facts, and the server's capture
    recorded the end first: publish then gave way but still wrote its full/ (小米's listing in force)
    under the server's newer seq, beside a delta/ ending at that seq that deletes the listing. A
    journalist mirroring full/ and then each later delta kept 小米 on the list for good. Now a
    publish overtaken by a newer capture computes its facts again."""
    out = tmp_path / "open"
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        run(cli, "publish", "--out", out)
        computing = opendata.iter_facts
        raced: list[bool] = []

        def overtaken(*args, **options):
            facts = list(computing(*args, **options))
            if not raced:  # the server's worker captures the court's step first
                raced.append(True)
                run(cli, "listing", "end", ids[XIAOMI], "--reason", "performed", "--on", "2026-11-10")
                engine = open_engine(cli.url)
                try:
                    opendata.capture(engine, load_pack("cn"))
                finally:
                    engine.dispose()
            yield from facts

        monkeypatch.setattr(opendata, "iter_facts", overtaken)
        manifest = run(cli, "publish", "--out", out)
        assert raced
    deleted = [json.loads(line) for line in (out / manifest["delta"] / "listings.jsonl").read_text().splitlines()]
    assert {"op": "delete", "listing": ids[XIAOMI]}.items() <= deleted[0].items()
    dumped = [json.loads(line) for line in (out / "full" / "listings.jsonl").read_text().splitlines()]
    assert ids[XIAOMI] not in [row["listing"] for row in dumped if row["in_force"]], dumped


def test_a_person_who_leaves_the_lists_while_a_dump_is_written_leaves_its_new_delta_too(
        cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second court case against 王建国 reached the store after the last dump, so the nightly publish
    wrote it, with his name, into its new delta/. While it did, the court ended his listing and the
    server's capture forgot him: his earlier events lost their data, and the ranges were left for
    publish to write again. Publish rewrote only the delta folders of the earlier manifest, then
    cleared the ranges: the delta it had just written kept his name and case for good. Now a delta
    written by the same publish is written again too when it holds events redacted meanwhile."""
    out = tmp_path / "open"
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        run(cli, "publish", "--out", out)
        second = write_csv(tmp_path / "court-2.csv", COURT_HEADERS,
                           [court_row("（2026）粤0305执188号", "王建国", WANG, "深圳市南山区人民法院")])
        cli("ingest", second, "--authority", "court", "--category", "court_defaulter")
        run(cli, "resolve")
        writing = opendata._write_delta
        raced: list[bool] = []

        def overtaken(*args, **options):
            entries = writing(*args, **options)
            if not raced:  # the court's step, captured by the server, while publish goes on
                raced.append(True)
                run(cli, "listing", "end", ids[WANG], "--reason", "performed", "--on", "2026-11-10")
                engine = open_engine(cli.url)
                try:
                    opendata.capture(engine, load_pack("cn"))
                finally:
                    engine.dispose()
            return entries

        monkeypatch.setattr(opendata, "_write_delta", overtaken)
        manifest = run(cli, "publish", "--out", out)
        assert raced and manifest["delta"]
        later = run(cli, "publish", "--out", out)
    for path in out.rglob("*.*"):
        if path.suffix in (".jsonl", ".csv"):
            text = path.read_text(encoding="utf-8-sig")
            assert "王建国" not in text and "粤0305执188" not in text, (path, text)
    assert len({f["path"] for f in later["files"]}) == len(later["files"])


def test_a_person_who_left_the_lists_leaves_every_dump_folder_not_only_the_first_published(
        cli, tmp_path: Path) -> None:
    """The registry published its open data twice a night, to the public folder and to a mirror for the
    national platform. Once 王建国's listing ended, his earlier events lost their data and their ranges
    waited for publish; the first publish rewrote its own earlier deltas and cleared the ranges, so the
    mirror's deltas kept his name and case for good. Now the ranges are numbered and kept, and each
    folder's manifest says the last one it applied: every folder rewrites its own deltas."""
    public, mirror = tmp_path / "public", tmp_path / "mirror"
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        for out in (public, mirror):
            run(cli, "publish", "--out", out)
        second = write_csv(tmp_path / "court-2.csv", COURT_HEADERS,
                           [court_row("（2026）粤0305执188号", "王建国", WANG, "深圳市南山区人民法院")])
        cli("ingest", second, "--authority", "court", "--category", "court_defaulter")
        run(cli, "resolve")
        for out in (public, mirror):
            assert "粤0305执188" in (out / run(cli, "publish", "--out", out)["delta"] / "records.jsonl").read_text()
        run(cli, "listing", "end", ids[WANG], "--reason", "performed", "--on", "2026-11-10")
        for out in (public, mirror):
            run(cli, "publish", "--out", out)
    for path in tmp_path.glob("*/delta/*/*.*"):
        if path.suffix in (".jsonl", ".csv"):
            text = path.read_text(encoding="utf-8-sig")
            assert "王建国" not in text and "粤0305执188" not in text, path


def test_a_court_case_leaves_the_public_surfaces_with_the_listing_it_was_published_for(cli, tmp_path: Path) -> None:
    """小米 paid: the court's listing ended as performed on 11-05 and left the list, yet its page, its
    credit report's file and the open data kept showing the court's entry (（2026）京0108执200号,
    全部未履行, 违反限制消费令) under 失信被执行人信息 for good: the category had no publicity period, so
    the defaulter's entry outlived its removal from the list (removed within 3 working days of
    performance). Now a category whose entries are the list's publication (`publicity.ends_with_listings`,
    cn's court_defaulter) is public only while a listing built on the entry is under due process or in
    force; 中国平安's entry, listed still, stays."""
    out = tmp_path / "open"
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        run(cli, "publish", "--out", out)
        run(cli, "listing", "end", ids[XIAOMI], "--reason", "performed", "--on", "2026-11-05")
        manifest = run(cli, "publish", "--out", out)
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                xiaomi = http.get(f"/v1/entities/{XIAOMI}").json()
                assert [record["category"] for record in xiaomi["records"]] == ["registration"]
                assert "京0108执200" not in http.get(f"/entities/{XIAOMI}").text
                assert "沪0115执300" in http.get(f"/entities/{PINGAN}").text
                feed = http.get("/v1/public/changes").json()["events"]
        finally:
            engine.dispose()
    dumped = (out / "full" / "records.jsonl").read_text()
    assert "京0108执200" not in dumped and "沪0115执300" in dumped
    deleted = [json.loads(line) for line in (out / manifest["delta"] / "records.jsonl").read_text().splitlines()]
    assert [(row["op"], row["entity"]) for row in deleted] == [("delete", XIAOMI)]
    assert "京0108执200" not in json.dumps(feed, ensure_ascii=False)
