"""The platform's promises to subjects, probed with hand-made inputs the demo never sends: real
public company names, codes with valid check characters, a court's case numbers written as
courts write them. Each test is a defect found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import time_machine
from fastapi.testclient import TestClient

from worlds import resident_id, run, uscc, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.store.db import open_engine

XIAOMI = uscc("91110108MA0XM0077")
PINGAN = uscc("91310000MA1FP0033")
WANG = resident_id("440305", dt.date(1975, 3, 9), 271)
NAMES = {XIAOMI: "小米科技有限责任公司", PINGAN: "中国平安财产保险股份有限公司"}
COURT_HEADERS = ["案号", "被执行人姓名/名称", "身份证号码/组织机构代码", "执行法院", "被执行人的履行情况",
                 "失信被执行人行为具体情形", "担保情况", "发布时间"]
# the pack's date is Asia/Shanghai's: 04:00 UTC is midday there, whatever the hour the tests run
TODAY = dt.datetime(2026, 11, 10, 4, 0, tzinfo=dt.timezone.utc)


def court_row(case: str, name: str, code: str, court: str = "北京市海淀区人民法院") -> list[str]:
    return [case, name, code, court, "全部未履行", "违反限制消费令", "", "2026-10-02"]


def listed_world(cli, folder: Path) -> dict[str, int]:
    """Two firms and a person on the court's list, effective from 2026-10-27 (notified on 10-14: 10 days
    end on Saturday 10-24, so on Monday 10-26); listing ids by code."""
    register = write_csv(folder / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"],
                         [[code, name, "有限责任公司", "雷军" if code == XIAOMI else "谢永林", "2010-03-03", "存续"]
                          for code, name in NAMES.items()])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    court = write_csv(folder / "court.csv", COURT_HEADERS, [
        court_row("（2026）京0108执200号", NAMES[XIAOMI], XIAOMI),
        court_row("（2026）沪0115执300号", NAMES[PINGAN], PINGAN, "上海市浦东新区人民法院"),
        court_row("（2026）粤0305执100号", "王建国", WANG, "深圳市南山区人民法院"),
    ])
    cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    run(cli, "evaluate", "--as-of", "2026-10-10")
    ids = {code: run(cli, "listing", "list", "--entity", code)[0]["id"] for code in (XIAOMI, PINGAN, WANG)}
    for day in ("2026-10-11", "2026-10-12", "2026-10-13"):
        cli("listing", "remind", ids[WANG], "--on", day, "--actor", "clerk", "--reason", "reminder")
    for listing in ids.values():
        cli("listing", "notify", listing, "--on", "2026-10-14", "--actor", "officer", "--reason", "served")
    run(cli, "process", "--as-of", "2026-10-30")
    return ids


def test_a_public_list_read_as_of_a_past_day_shows_only_what_is_public_today(cli, tmp_path: Path) -> None:
    """`GET /v1/lists/{code}?as_of=` (no key) showed, for a day before: a listing withdrawn since
    on an upheld objection (undone: never shown in any history) and a person whose listing has
    ended since (王建国, his masked ID number beside his name), while his own page answers 404
    "on no public list"; the CSV and JSON Lines exports the same."""
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        run(cli, "listing", "end", ids[WANG], "--reason", "performed", "--on", "2026-11-02")
        objection = run(cli, "objection", "file", "--listing", ids[PINGAN], "--reason", "not our case",
                        "--on", "2026-11-01")
        run(cli, "objection", "decide", objection["objection"], "--uphold", "--on", "2026-11-03",
            "--reason", "the debtor is another firm")
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                today = http.get("/v1/lists/court_defaulters").json()
                assert [item["entity"] for item in today["items"]] == [XIAOMI]
                before = http.get("/v1/lists/court_defaulters", params={"as_of": "2026-10-31"}).json()
                assert before["as_of"] == "2026-10-31"
                assert [item["entity"] for item in before["items"]] == [XIAOMI]
                assert before["items"] == today["items"]
                for extension in ("csv", "jsonl"):
                    exported = http.get(f"/v1/lists/court_defaulters/export.{extension}",
                                        params={"as_of": "2026-10-31"}).text
                    assert XIAOMI in exported and PINGAN not in exported
                    assert "王建国" not in exported and WANG[-4:] not in exported
                assert http.get(f"/v1/entities/{run(cli, 'listing', 'show', ids[WANG])['entity']}").status_code == 404
        finally:
            engine.dispose()


def repaired_world(cli, folder: Path) -> int:
    """小米's listing of the world above, repaired early on 2026-11-02 (paid); its listing id."""
    ids = listed_world(cli, folder)
    (folder / "commitment.txt").write_text("本公司承诺依法履行义务", encoding="utf-8")
    (folder / "receipt.txt").write_text("执行款已全部缴纳", encoding="utf-8")
    repair = run(cli, "repair", "apply", ids[XIAOMI], "--commitment", folder / "commitment.txt",
                 "--evidence", folder / "receipt.txt", "--on", "2026-11-01")
    run(cli, "repair", "decide", repair["repair"], "--approve", "--on", "2026-11-02", "--reason", "paid")
    return ids[XIAOMI]


@pytest.mark.parametrize("case, name, code", [
    ("(2026)京0108执200号", NAMES[XIAOMI], XIAOMI),  # half-width brackets
    ("（2026）京0108执 200号", NAMES[XIAOMI], XIAOMI),  # a space typed in
    ("（２０２６）京０１０８执２００号", NAMES[XIAOMI], XIAOMI),  # full-width digits
    ("〔2026〕京0108执200号", NAMES[XIAOMI], XIAOMI),  # the brackets of administrative decisions
    ("（2026）京0108执200号", NAMES[XIAOMI], ""),  # the firm by its name, the code cell left empty
], ids=["half-width", "space", "full-width-digits", "hexagonal-brackets", "name-for-code"])
def test_a_repaired_listing_never_comes_back_from_its_case_written_another_way(cli, tmp_path: Path, case: str,
                                                                               name: str, code: str) -> None:
    """The court re-sends the repaired case as its next file writes it: a new record key, so the rule
    query took the same decision for a new fact and proposed 小米 again, and its entity page published
    the repaired case again (the repair ended the publicity of one key). A new case still lists it."""
    with time_machine.travel(TODAY, tick=False):
        repaired = repaired_world(cli, tmp_path)
        resend = write_csv(tmp_path / "resend.csv", COURT_HEADERS, [court_row(case, name, code)])
        assert run(cli, "ingest", resend, "--authority", "court", "--category", "court_defaulter")["accepted"] == 1
        run(cli, "resolve")
        engine = open_engine(cli.url)
        try:  # the repaired case is not published again either
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                page = http.get(f"/v1/entities/{XIAOMI}").json()
            assert [record["category"] for record in page["records"]] == ["registration"]
        finally:
            engine.dispose()
        # a rule's impact preview counts whom evaluation would list: the re-send qualifies nobody there either
        simulated = run(cli, "simulate", "--pack", "cn", "--as-of", "2026-11-05")["by_list"]["court_defaulters"]
        assert (simulated["active"], simulated["candidate"]) == (2, 2)  # 中国平安 and 王建国, listed
        for full in ((), ("--full",)):
            assert run(cli, "evaluate", "--as-of", "2026-11-05", *full)["per_list"]["court_defaulters"] == 0
        assert [(row["id"], row["state"]) for row in run(cli, "listing", "list", "--entity", XIAOMI)] == [
            (repaired, "repaired")]
        new_case = write_csv(tmp_path / "new.csv", COURT_HEADERS, [court_row("（2026）京0108执999号", NAMES[XIAOMI], XIAOMI)])
        cli("ingest", new_case, "--authority", "court", "--category", "court_defaulter")
        run(cli, "resolve")
        assert run(cli, "evaluate", "--as-of", "2026-11-06")["per_list"]["court_defaulters"] == 1
        proposed = [row for row in run(cli, "listing", "list", "--entity", XIAOMI) if row["state"] == "proposed"]
        assert [row["evidence"] for row in proposed] == [[f"court:（2026）京0108执999号#{XIAOMI}"]]


PINGAN_BEIJING = uscc("91110105MA01P0044")


def test_a_code_of_another_branch_or_firm_never_links_a_branch_or_head_office_by_it(cli, tmp_path: Path) -> None:
    """A branch quoting its head office's code is the head office's record (documented); but any
    name on either side of a branch was taken for that: the head office's penalty quoting its
    registered branch's code went to the branch, one branch's to another branch, and 小米's
    Beijing branch quoting 中国平安's code went to 中国平安 (which a listing would then sanction)."""
    register = write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "成立日期", "登记状态"], [
        [XIAOMI, NAMES[XIAOMI], "有限责任公司", "2010-03-03", "存续"],
        [PINGAN, NAMES[PINGAN], "股份有限公司", "1998-01-01", "存续"],
        [PINGAN_BEIJING, NAMES[PINGAN] + "北京分公司", "分公司", "2002-05-05", "存续"],
    ])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    penalties = write_csv(tmp_path / "penalties.csv",
                          ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"], [
        [NAMES[PINGAN] + "上海分公司", PINGAN, "沪市监罚〔2026〕1号", "2026-06-01", "罚款", "5"],  # its head office's code
        [NAMES[PINGAN], PINGAN_BEIJING, "京市监罚〔2026〕2号", "2026-06-01", "罚款", "5"],  # a branch's code
        [NAMES[PINGAN] + "上海分公司", PINGAN_BEIJING, "沪市监罚〔2026〕3号", "2026-06-01", "罚款", "5"],  # another branch's
        [NAMES[XIAOMI] + "北京分公司", PINGAN, "京市监罚〔2026〕4号", "2026-06-01", "罚款", "5"],  # another firm's
    ])
    cli("ingest", penalties, "--authority", "samr", "--category", "penalty")
    run(cli, "resolve")
    cli("links", "export", "-o", tmp_path / "links.csv")
    links = {row.split(",")[0]: row.split(",")[1] for row in (tmp_path / "links.csv").read_text(encoding="utf-8-sig")
             .splitlines()[1:]}
    assert links["samr:沪市监罚〔2026〕1号"] == PINGAN
    for number in (2, 3, 4):
        assert links[f"samr:{'京' if number % 2 == 0 else '沪'}市监罚〔2026〕{number}号"] == "", number
    reasons = {item["record_key"]: item["reason"] for item in run(cli, "review", "list")}
    assert set(reasons) == {"samr:京市监罚〔2026〕2号", "samr:沪市监罚〔2026〕3号", "samr:京市监罚〔2026〕4号"}
    assert set(reasons.values()) == {"code belongs to another firm"}


@pytest.mark.parametrize("case, name, code", [
    ("(2026)京0108执200号", NAMES[XIAOMI], XIAOMI),
    ("（2026）京0108执200号", NAMES[XIAOMI], ""),
], ids=["half-width", "name-for-code"])
def test_a_revoked_decision_written_another_way_stays_revoked(cli, tmp_path: Path, case: str, name: str,
                                                              code: str) -> None:
    """The court annulled its case against 小米 (`record revoke`); its next file wrote the same case
    another way: accepted as a new record, 小米 was proposed for the list on an annulled decision.
    A co-debtor of the same case (中国平安, its own code) is still the court's to list."""
    with time_machine.travel(TODAY, tick=False):
        register = write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "成立日期", "登记状态"],
                             [[c, n, "有限责任公司", "2010-03-03", "存续"] for c, n in NAMES.items()])
        cli("ingest", register, "--authority", "samr", "--category", "registration")
        first = write_csv(tmp_path / "court.csv", COURT_HEADERS, [court_row("（2026）京0108执200号", NAMES[XIAOMI], XIAOMI)])
        cli("ingest", first, "--authority", "court", "--category", "court_defaulter")
        run(cli, "resolve")
        run(cli, "record", "revoke", f"court:（2026）京0108执200号#{XIAOMI}", "--on", "2026-10-05", "--reason", "annulled")
        resend = write_csv(tmp_path / "resend.csv", COURT_HEADERS, [
            court_row(case, name, code), court_row(case, NAMES[PINGAN], PINGAN)])
        batch = run(cli, "ingest", resend, "--authority", "court", "--category", "court_defaulter")
        assert (batch["accepted"], batch["quarantined"]) == (1, 1)
        rejects = run(cli, "batch", "show", batch["batch_id"])["quarantine"]
        assert [(row["row_number"], row["reason_code"]) for row in rejects] == [(2, "revoked_record")]
        run(cli, "resolve")
        assert run(cli, "evaluate", "--as-of", "2026-10-10")["per_list"]["court_defaulters"] == 1
        assert run(cli, "listing", "list", "--entity", XIAOMI) == []
