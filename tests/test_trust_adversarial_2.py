"""The platform's promises to subjects, probed a second time with hand-made inputs the demo never
sends: real public company names, codes with valid check characters. Each test is a defect found
and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import time_machine
from fastapi.testclient import TestClient

from test_trust_adversarial import COURT_HEADERS, NAMES, PINGAN, TODAY, WANG, XIAOMI, court_row, listed_world
from worlds import run, uscc, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.services.publication.lists import changes
from xinyong.store.db import open_engine


def screened(cli, identifier: str, as_of: str, action: str = "bidding") -> tuple[str, list[int]]:
    answer = json.loads(cli("screen", identifier, "--action", action, "--as-of", as_of, "--json").stdout)
    return answer["decision"], [measure["listing"]["id"] for measure in answer["measures"]]


def test_an_undone_listing_binds_on_no_day_screening_asks_about(cli, tmp_path: Path) -> None:
    """中国平安's listing was withdrawn on an upheld objection (the debtor was another firm) and
    小米's when the court revoked its case: both undone, never shown in any history. Screened as of
    a day before (a tender decided then, checked again), both answered `deny` under the undone
    listing. A listing that ended by performance (王建国) did bind on its days, and still says so."""
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        objection = run(cli, "objection", "file", "--listing", ids[PINGAN], "--reason", "not our case",
                        "--on", "2026-11-01")
        run(cli, "objection", "decide", objection["objection"], "--uphold", "--on", "2026-11-03",
            "--reason", "the debtor is another firm")
        run(cli, "record", "revoke", f"court:（2026）京0108执200号#{XIAOMI}", "--on", "2026-11-03",
            "--reason", "annulled on appeal")
        run(cli, "listing", "end", ids[WANG], "--reason", "performed", "--on", "2026-11-02")
        assert {code: run(cli, "listing", "show", ids[code])["end_reason"] for code in ids} == {
            PINGAN: "withdrawn_objection", XIAOMI: "withdrawn_record", WANG: "performed"}
        for day in ("2026-10-31", "2026-11-02", "2026-11-05"):
            assert screened(cli, PINGAN, day) == ("allow", []), day
            assert screened(cli, XIAOMI, day) == ("allow", []), day
        assert screened(cli, WANG, "2026-10-31") == ("deny", [ids[WANG]])
        assert screened(cli, WANG, "2026-11-05") == ("allow", [])
        key = run(cli, "authority", "key", "create", "procurement_centre", "--scopes", "screen")["key"]
        engine = open_engine(cli.url)
        try:  # the API answers from the same index
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                answer = http.post("/v1/screen", headers={"X-API-Key": key},
                                   json={"identifier": PINGAN, "action": "bidding", "as_of": "2026-10-31",
                                         "purpose": "procurement_review"}).json()
                assert (answer["decision"], answer["measures"]) == ("allow", []), answer
        finally:
            engine.dispose()


REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "企业类型", "成立日期", "登记状态"]
PENALTY_HEADERS = ["统一社会信用代码", "当事人名称", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"]


@pytest.mark.parametrize("encoding, mark", [("gb18030", "\ufeff"), ("utf-8", "\ufeff\ufeff"), ("utf-8", "\u200b")],
                         ids=["gb18030-bom", "utf-8-two-boms", "zero-width-space"])
def test_a_byte_order_mark_in_the_first_header_loses_no_column(cli, tmp_path: Path, encoding: str,
                                                                mark: str) -> None:
    """A GB18030 file saved with a byte order mark (or a UTF-8 file with two, or a header with a
    zero-width space pasted in) kept the mark in its first header, `\\ufeff统一社会信用代码`, which
    matched no field: the code column was dropped without a word, the penalty quoting 小米's code
    was resolved by the name alone (小米科技, its short name: no firm of that name) and 小米 was
    never linked to its own penalty."""
    register = write_csv(tmp_path / "register.csv", REGISTER_HEADERS,
                         [[code, name, "有限责任公司", "2010-03-03", "存续"] for code, name in NAMES.items()])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    text = (",".join(PENALTY_HEADERS) + "\n"
            + f"{XIAOMI},小米科技,京市监罚〔2026〕9号,2026-06-01,罚款,5\n")
    penalties = tmp_path / "penalties.csv"
    penalties.write_bytes((mark + text).encode(encoding))
    batch = run(cli, "ingest", penalties, "--authority", "samr", "--category", "penalty")
    assert batch["encoding"].startswith(encoding) and batch["accepted"] == 1
    mapping = run(cli, "batch", "show", batch["batch_id"])["mapping"]
    assert [field for header, field in mapping.items() if header.endswith("统一社会信用代码")] == ["uscc"]
    run(cli, "resolve")
    cli("links", "export", "-o", tmp_path / "links.csv")
    links = {row.split(",")[0]: row.split(",")[1:3] for row in (tmp_path / "links.csv").read_text(encoding="utf-8-sig")
             .splitlines()[1:]}
    assert links["samr:京市监罚〔2026〕9号"] == [XIAOMI, "identifier"]


BYD = uscc("91440300192317458")


def test_a_name_copied_with_a_zero_width_space_is_still_the_listed_firm(cli, tmp_path: Path) -> None:
    """A name copied from a web page or a PDF carries invisible characters: 比亚迪股份有限公司 with a
    zero-width space (U+200B) or a word joiner (U+2060) after it. Name screening answered `refer`
    (below threshold) for the listed firm typed so, where its traditional, full-width, spaced or
    former name answered `deny`; and a court's record naming it so with its code cell empty was
    not linked to it by its exact name."""
    with time_machine.travel(TODAY, tick=False):
        register = write_csv(tmp_path / "register.csv", REGISTER_HEADERS + ["曾用名"],
                             [[BYD, "比亚迪股份有限公司", "股份有限公司", "1995-02-10", "存续", "深圳市比亚迪实业有限公司"]])
        cli("ingest", register, "--authority", "samr", "--category", "registration")
        court = write_csv(tmp_path / "court.csv", COURT_HEADERS, [
            court_row("（2026）粤0307执55号", "比亚迪股份有限公司", BYD, "深圳市龙岗区人民法院"),
            court_row("（2026）粤0307执56号", "比亚迪股份有限公司\u2060", "", "深圳市龙岗区人民法院")])
        cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
        run(cli, "resolve")
        cli("links", "export", "-o", tmp_path / "links.csv")
        links = {row.split(",")[0]: row.split(",")[1] for row in
                 (tmp_path / "links.csv").read_text(encoding="utf-8-sig").splitlines()[1:]}
        assert links["court:（2026）粤0307执56号#比亚迪股份有限公司\u2060"] == BYD
        run(cli, "evaluate", "--as-of", "2026-10-10")
        (listing,) = run(cli, "listing", "list", "--entity", BYD)
        cli("listing", "notify", listing["id"], "--on", "2026-10-14", "--actor", "officer", "--reason", "served")
        run(cli, "process", "--as-of", "2026-10-30")
        for name in ("比亞迪股份有限公司", "深圳市比亚迪实业有限公司", "比亚迪股份有限公司\u200b", "\ufeff比亚迪股份有限公司",
                     "深圳市比亚迪\u200b实业有限公司"):
            answer = json.loads(cli("screen", "--name", name, "--action", "bidding", "--json").stdout)
            assert (answer["decision"], answer["match"], answer["subject"]["key"]) == ("deny", "name", BYD), name


GREE = uscc("91440400192548256")
JD = uscc("91110302MA01JD009")
GRADE_HEADERS = ["纳税人名称", "纳税人识别号", "评价年度", "纳税信用级别", "评价日期"]



def gree_and_jd_on_the_court_list(cli, tmp_path: Path) -> tuple[dict[str, str], dict[str, int]]:
    """格力 and 京东, A-grade taxpayers for 2025 (the redlist from the April publication), put on the
    court's list (notified 10-14, in force from 10-25), which ended both A-grade listings; their
    names, and their court listings' ids."""
    firms = {GREE: "珠海格力电器股份有限公司", JD: "北京京东世纪贸易有限公司"}
    register = write_csv(tmp_path / "register.csv", REGISTER_HEADERS,
                         [[code, name, "股份有限公司", "1989-12-13", "存续"] for code, name in firms.items()])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    grades = write_csv(tmp_path / "grades.csv", GRADE_HEADERS,
                       [[name, code, "2025", "A", "2026-03-20"] for code, name in firms.items()])
    cli("ingest", grades, "--authority", "tax", "--category", "tax_grade")
    court = write_csv(tmp_path / "court.csv", COURT_HEADERS, [
        court_row("（2026）粤0402执77号", firms[GREE], GREE, "珠海市香洲区人民法院"),
        court_row("（2026）京0302执78号", firms[JD], JD, "北京市大兴区人民法院")])
    cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    run(cli, "evaluate", "--as-of", "2026-10-10")
    run(cli, "process", "--as-of", "2026-10-10")
    court_listing = {}
    for code in firms:
        (listing,) = [row for row in run(cli, "listing", "list", "--entity", code) if row["list"] == "court_defaulters"]
        court_listing[code] = listing["id"]
        cli("listing", "notify", listing["id"], "--on", "2026-10-14", "--actor", "officer", "--reason", "served")
    run(cli, "process", "--as-of", "2026-10-30")
    return firms, court_listing

def test_a_blacklist_listing_undone_gives_back_the_redlist_it_excluded(cli, tmp_path: Path) -> None:
    """格力 and 京东, A-grade taxpayers for 2025 (the redlist from the April publication), were put on
    the court's list, which excludes the redlist: both A-grade listings ended (excluded_by_blacklist).
    格力's court listing was then withdrawn on an upheld objection (the debt was not its own): undone,
    as if it had never been; yet the evidence of its A-grade listing stayed spent and no evaluation
    listed it again, so 格力 lost the fast track for good. 京东 paid (performed): a listing that did
    bind, whose exclusion stands."""
    with time_machine.travel(TODAY, tick=False):
        firms, court_listing = gree_and_jd_on_the_court_list(cli, tmp_path)
        for code in firms:
            assert [(row["list"], row["state"], row["end_reason"]) for row in run(cli, "listing", "list", "--entity", code)
                    if row["list"] == "tax_a_grade"] == [("tax_a_grade", "expired", "excluded_by_blacklist")]
            assert screened(cli, code, "2026-10-31", "licensing") == ("allow", [])
        objection = run(cli, "objection", "file", "--listing", court_listing[GREE], "--reason", "not our debt",
                        "--on", "2026-11-01")
        run(cli, "objection", "decide", objection["objection"], "--uphold", "--on", "2026-11-03",
            "--reason", "the debtor is another firm")
        run(cli, "listing", "end", court_listing[JD], "--reason", "performed", "--on", "2026-11-03")
        for full in ((), ("--full",)):
            assert run(cli, "evaluate", "--as-of", "2026-11-05", *full)["per_list"]["tax_a_grade"] == (1 if not full else 0)
        run(cli, "process", "--as-of", "2026-11-05")
        redlist = [row for row in run(cli, "listing", "list", "--entity", GREE) if row["list"] == "tax_a_grade"]
        assert [(row["state"], row["effective_from"]) for row in redlist] == [("expired", "2026-10-10"),
                                                                              ("effective", "2026-11-05")]
        decision, listings = screened(cli, GREE, "2026-11-06", "licensing")
        assert (decision, listings) == ("conditions", [redlist[1]["id"]])
        assert [row["state"] for row in run(cli, "listing", "list", "--entity", JD) if row["list"] == "tax_a_grade"] == [
            "expired"]
        assert screened(cli, JD, "2026-11-06", "licensing") == ("allow", [])


def test_a_correction_is_checked_against_the_pack_today_as_ingestion_is(cli, tmp_path: Path) -> None:
    """Ingestion refuses a decision dated after the pack's today plus its plausibility bound (a
    typo); `record correct` validated the corrected row without a today: 小米's penalty of
    2026-06-01 corrected to 2062-06-01 was stored, its publicity counted from 2062 (shown until
    2063 on every public surface). A correction within the bound is still taken."""
    with time_machine.travel(TODAY, tick=False):
        register = write_csv(tmp_path / "register.csv", REGISTER_HEADERS,
                             [[XIAOMI, NAMES[XIAOMI], "有限责任公司", "2010-03-03", "存续"]])
        cli("ingest", register, "--authority", "samr", "--category", "registration")
        penalties = write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS,
                              [[XIAOMI, NAMES[XIAOMI], "京市监罚〔2026〕9号", "2026-06-01", "罚款", "5"]])
        cli("ingest", penalties, "--authority", "samr", "--category", "penalty")
        run(cli, "resolve")
        fix = tmp_path / "fix.json"
        fix.write_text(json.dumps({"decision_date": "2062-06-01"}), encoding="utf-8")
        refused = cli("record", "correct", "samr:京市监罚〔2026〕9号", "--file", fix, "--on", "2026-11-04",
                      "--reason", "date retyped", ok=False)
        assert refused.exit_code != 0 and "decision date 2062-06-01 is implausible" in refused.output
        fix.write_text(json.dumps({"decision_date": "2026-06-02"}), encoding="utf-8")
        assert run(cli, "record", "correct", "samr:京市监罚〔2026〕9号", "--file", fix, "--on", "2026-11-04",
                   "--reason", "date retyped")["version"] == 2
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                page = http.get(f"/v1/entities/{XIAOMI}").json()
            assert [(r["record_key"], r["decision_date"]) for r in page["records"] if r["category"] == "penalty"] == [
                ("samr:京市监罚〔2026〕9号", "2026-06-02")]
        finally:
            engine.dispose()


@pytest.mark.parametrize("encoding, mark", [("gb18030", "\ufeff"), ("utf-8", "\ufeff\ufeff")],
                         ids=["gb18030-bom", "utf-8-two-boms"])
def test_a_screening_batch_with_a_byte_order_mark_is_screened_by_its_codes(cli, tmp_path: Path, encoding: str,
                                                                           mark: str) -> None:
    """A bank's batch in GB18030 saved with a byte order mark, codes first and names after: the mark
    stayed in the first header, the code column was not found, and every line was screened by its
    name alone: 小米 and 中国平安, listed, written by their trading names (Xiaomi, 平安产险), answered
    `allow`."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        batch = tmp_path / "batch.csv"
        batch.write_bytes((mark + "统一社会信用代码,企业名称\n" + f"{XIAOMI},Xiaomi\n{PINGAN},平安产险\n").encode(encoding))
        cli("screen", "--batch", batch, "--action", "bidding", "--as-of", "2026-11-05", "-o", tmp_path / "out.csv")
        with (tmp_path / "out.csv").open(encoding="utf-8-sig", newline="") as handle:
            results = list(csv.DictReader(handle))
        assert [(row["subject"], row["decision"]) for row in results] == [(XIAOMI, "deny"), (PINGAN, "deny")]


def test_a_code_copied_with_a_zero_width_character_names_the_listed_subject(cli, tmp_path: Path) -> None:
    """小米's code copied from a web page with a zero-width space after it, a byte order mark before
    it or a word joiner inside it, and 王建国's ID number with a zero-width space after the region,
    were screened `not_found` (an unknown code: no such subject), while the same code with a
    visible space answered `deny`; a penalty quoting 中国平安's code so kept it as an unrecognised
    code, with a warning, and was linked by the name alone."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        for code in (XIAOMI + "\u200b", "\ufeff" + XIAOMI, XIAOMI[:9] + "\u2060" + XIAOMI[9:], XIAOMI + " "):
            assert screened(cli, code, "2026-11-05")[0] == "deny", repr(code)
        assert screened(cli, WANG[:6] + "\u200b" + WANG[6:], "2026-11-05", "high_consumption")[0] == "deny"
        penalties = write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS,
                              [[PINGAN + "\u200b", NAMES[PINGAN], "沪市监罚〔2026〕7号", "2026-06-01", "罚款", "5"]])
        cli("ingest", penalties, "--authority", "samr", "--category", "penalty")
        run(cli, "resolve")
        cli("links", "export", "-o", tmp_path / "links.csv")
        links = {row.split(",")[0]: row.split(",")[1:3] for row in (tmp_path / "links.csv").read_text(encoding="utf-8-sig")
                 .splitlines()[1:]}
        assert links["samr:沪市监罚〔2026〕7号"] == [PINGAN, "identifier"]


def test_an_objection_posted_in_time_and_received_after_the_listing_took_effect_undoes_its_effect(
        cli, tmp_path: Path) -> None:
    """中国平安 was notified on 10-14 (window to 10-24, a Saturday: to Monday 10-26) and posted its
    objection on 10-20; it reached the registry after `process` had made the listing effective from
    10-27. Recording it with its real
    date was refused ("a step on 2026-10-20 cannot come before its last change"), so the firm stayed
    sanctioned on an objection it had made in time. Now the listing goes under review from the day it
    took effect (in force on no day), and a rejection starts its term on the decision's day."""
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        listing = ids[PINGAN]
        shown = run(cli, "listing", "show", listing)
        assert (shown["state"], shown["objection_deadline"], shown["effective_from"]) == (
            "effective", "2026-10-26", "2026-10-27")
        filed = run(cli, "objection", "file", "--listing", listing, "--reason", "posted on 10-20",
                    "--on", "2026-10-20")
        assert (filed["listings_under_review"], filed["effect_undone"]) == ([listing], [listing])
        shown = run(cli, "listing", "show", listing)
        assert (shown["state"], shown["effective_from"], shown["effective_to"]) == ("under_review", None, None)
        engine = open_engine(cli.url)
        try:  # a bank keeping its copy in sync through /v1/changes learns it binds no more
            feed = [(item["from"], item["to"], item["effective_from"])
                    for item in changes(engine, load_pack("cn"), 0, 1000)["changes"] if item["listing"] == listing]
        finally:
            engine.dispose()
        assert feed == [("notified", "effective", None), ("effective", "under_review", None)]
        for day in ("2026-10-25", "2026-10-28", "2026-11-01"):
            assert screened(cli, PINGAN, day) == ("allow", []), day
        # posted after its window (小米's, on 10-28): reviewed, and in force meanwhile, as before
        late = run(cli, "objection", "file", "--listing", ids[XIAOMI], "--reason", "late", "--on", "2026-10-28")
        assert (late["listings_under_review"], "effect_undone" in late) == ([ids[XIAOMI]], False)
        for day in ("2026-10-27", "2026-10-29"):
            assert screened(cli, XIAOMI, day) == ("deny", [ids[XIAOMI]]), day
        run(cli, "objection", "decide", filed["objection"], "--reject", "--on", "2026-11-03", "--reason", "its debt")
        shown = run(cli, "listing", "show", listing)
        assert (shown["state"], shown["effective_from"]) == ("effective", "2026-11-03")
        assert screened(cli, PINGAN, "2026-10-28") == ("allow", [])
        assert screened(cli, PINGAN, "2026-11-04") == ("deny", [listing])
        # once an objection was decided, another dated in the window undoes nothing (refused as before)
        with pytest.raises(AssertionError, match="cannot come before"):
            run(cli, "objection", "file", "--listing", listing, "--reason", "again", "--on", "2026-10-21")
        assert screened(cli, PINGAN, "2026-11-04") == ("deny", [listing])


def test_a_repair_approved_after_its_listing_ended_is_recorded_and_ends_the_publicity(cli, tmp_path: Path) -> None:
    """小米 applied for repair on 11-01; the court ended its listing on 11-02 (performed). Approving the
    repair on 11-03 failed (a performed listing cannot be repaired) and was rolled back: the application
    stayed pending for good, late, and the court case stayed published on 小米's page. Now the approval
    is recorded, the listing stays performed, and the case's publicity ends."""
    with time_machine.travel(TODAY, tick=False):
        listing = listed_world(cli, tmp_path)[XIAOMI]
        (tmp_path / "commitment.txt").write_text("本公司承诺依法履行义务", encoding="utf-8")
        (tmp_path / "receipt.txt").write_text("执行款已全部缴纳", encoding="utf-8")
        repair = run(cli, "repair", "apply", listing, "--commitment", tmp_path / "commitment.txt",
                     "--evidence", tmp_path / "receipt.txt", "--on", "2026-11-01")
        run(cli, "listing", "end", listing, "--reason", "performed", "--on", "2026-11-02")
        ended = run(cli, "listing", "show", listing)
        assert (ended["end_reason"], ended["ended_on"]) == ("performed", "2026-11-02")
        decided = run(cli, "repair", "decide", repair["repair"], "--approve", "--on", "2026-11-03", "--reason", "paid")
        assert decided["decision"] == "approved"
        shown = run(cli, "listing", "show", listing)
        assert (shown["state"], shown["end_reason"], shown["ended_on"], len(shown["transitions"])) == (
            ended["state"], "performed", "2026-11-02", len(ended["transitions"]))
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                page = http.get(f"/v1/entities/{XIAOMI}").json()
            assert [record["category"] for record in page["records"]] == ["registration"]
        finally:
            engine.dispose()
