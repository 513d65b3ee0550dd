"""Due process of listings, probed as an unlucky subject and as a careless or hurried operator would,
with hand-made inputs: real public firm names, codes with valid check characters, clocks set by
time-machine. Each test is a defect found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import time_machine
from sqlalchemy import select

from worlds import run, uscc, write_csv
from xinyong.store import tables as t
from xinyong.store.db import open_engine

XIAOMI = uscc("91110108551385082")
XIAOMI_NAME = "小米科技有限责任公司"
REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "企业类型", "成立日期", "登记状态"]
COURT_HEADERS = ["案号", "被执行人姓名/名称", "身份证号码/组织机构代码", "执行法院", "被执行人的履行情况",
                 "失信被执行人行为具体情形", "担保情况", "发布时间"]
GROUND_1 = "有履行能力而拒不履行生效法律文书确定义务"
# noon in Beijing: the pack's today and the host's are the same day
MARCH_2 = dt.datetime(2026, 3, 2, 4, 0, tzinfo=dt.timezone.utc)


def _record_id(cli, record_key: str) -> int:
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            return c.execute(select(t.records.c.id).where(t.records.c.record_key == record_key)).scalar_one()
    finally:
        engine.dispose()


def test_a_listing_whose_evidence_a_reviewer_gives_to_another_firm_is_withdrawn(cli, tmp_path: Path) -> None:
    """The court's file names 小米科技有限责任公司 without its code: the record makes an entity of its own,
    which is listed, served and in force from 02-13. 小米's register row arrives: the next `resolve`
    finds the record's exact name on the registered firm too and puts it in review (its link leaves the
    name-only entity). The reviewer accepts it for the registered 小米. The judgement "moved" nothing (the
    link had no entity while in review), so the name-only entity's listing stayed in force for good, on a
    record now about another entity. Now a judgement that leaves the record about one entity withdraws
    every other entity's active listing built on it (`withdrawn_moved`), as a move away from an entity does.
    The record spends nothing (it was never about that entity): the next evaluation proposes the
    registered 小米 on it, with due process from the start. Before, the withdrawn listing spent it for
    every entity, and the firm the court named was never listed."""
    with time_machine.travel(MARCH_2, tick=False):
        court = write_csv(tmp_path / "court.csv", COURT_HEADERS, [
            ["(2026)京0108执1号", XIAOMI_NAME, "", "北京市海淀区人民法院", "全部未履行", GROUND_1, "", "2026-01-05"]])
        cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
        run(cli, "resolve")
        run(cli, "evaluate", "--as-of", "2026-02-01")
        (listing,) = run(cli, "listing", "list")
        run(cli, "listing", "notify", listing["id"], "--on", "2026-02-02", "--actor", "officer", "--reason", "served")
        run(cli, "process", "--as-of", "2026-03-01")
        register = write_csv(tmp_path / "register.csv", REGISTER_HEADERS,
                             [[XIAOMI, XIAOMI_NAME, "有限责任公司", "2010-03-03", "存续"]])
        cli("ingest", register, "--authority", "samr", "--category", "registration")
        assert run(cli, "resolve")["in_review"] == 1
        (waiting,) = run(cli, "review", "list")
        assert {c["entity"] for c in waiting["candidates"]} == {listing["entity"], XIAOMI}
        judged = run(cli, "review", "accept", _record_id(cli, waiting["record_key"]), "--entity", XIAOMI,
                     "--actor", "reviewer", "--reason", "the registered firm")
        assert (judged["entity"], judged["listings_withdrawn"]) == (XIAOMI, [listing["id"]])
        (after,) = run(cli, "listing", "list", "--entity", listing["entity"])
        assert (after["state"], after["end_reason"], after["ended_on"]) == ("withdrawn", "withdrawn_moved",
                                                                            "2026-03-02")
        assert run(cli, "evaluate", "--as-of", "2026-03-02")["per_list"]["court_defaulters"] == 1
        (proposed,) = run(cli, "listing", "list", "--entity", XIAOMI)
        assert (proposed["state"], proposed["proposed_on"], proposed["evidence"]) == (
            "proposed", "2026-03-02", [f"court:(2026)京0108执1号#{XIAOMI_NAME}"]), proposed
        assert run(cli, "audit", "verify")["intact"] is True


GREE = uscc("91440400192548256")
GREE_NAME = "珠海格力电器股份有限公司"
PENALTY_HEADERS = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"]


def test_a_listing_page_shows_the_last_day_in_force_not_the_day_it_ends(cli, tmp_path: Path) -> None:
    """格力's licence revoked: on the serious list from the leap day 2028-02-29 for 3 years, so
    `effective_to` is 2031-02-28, the first day it no longer binds (`process` expires it that day, and
    screening stops then). The entity page, the public list, the portal and the console showed that day
    under "Until" (截止日期, Jusqu'au): one day more than the listing binds. The report's en/fr labels
    read "Listed until" / "Inscrit jusqu'au" over it. Now pages show the last day in force, 2031-02-27,
    and the report (whose zh label 移出日期 names the day it ends) says "Ends on" / "Prend fin le"."""
    from fastapi.testclient import TestClient

    from xinyong.api.app import create_app
    from xinyong.domain import formats
    from xinyong.domain.pack import load_pack
    from xinyong.services.publication.report import render_html, report_context
    from xinyong.services.resolution.entities import public_file

    with time_machine.travel(dt.datetime(2028, 3, 1, 4, 0, tzinfo=dt.timezone.utc), tick=False):
        cli("ingest", write_csv(tmp_path / "register.csv", REGISTER_HEADERS,
                                [[GREE, GREE_NAME, "股份有限公司", "1989-12-13", "存续"]]),
            "--authority", "samr", "--category", "registration")
        cli("ingest", write_csv(tmp_path / "penalty.csv", PENALTY_HEADERS,
                                [[GREE_NAME, GREE, "珠市监罚〔2028〕3号", "2028-01-10", "吊销许可证", ""]]),
            "--authority", "samr", "--category", "penalty")
        run(cli, "resolve")
        run(cli, "evaluate", "--as-of", "2028-02-01")
        (listing,) = run(cli, "listing", "list", "--entity", GREE)
        # 10 working days from 02-14: the window closes on Monday 02-28, the listing binds from the leap day
        assert run(cli, "listing", "notify", listing["id"], "--on", "2028-02-14", "--actor", "officer",
                   "--reason", "served")["objection_deadline"] == "2028-02-28"
        run(cli, "process", "--as-of", "2028-03-01")
        (listing,) = run(cli, "listing", "list", "--entity", GREE)
        assert (listing["effective_from"], listing["effective_to"]) == ("2028-02-29", "2031-02-28")
        last, ends = dt.date(2031, 2, 27), dt.date(2031, 2, 28)
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                for lang in ("en", "zh", "fr"):
                    for page in (f"/entities/{GREE}", "/lists/serious_dishonesty"):
                        html = http.get(page, headers={"accept-language": lang}).text
                        assert formats.day(last, lang) in html, (lang, page)
                        assert formats.day(ends, lang) not in html, (lang, page)
            file = public_file(engine, load_pack("cn"), GREE, dt.date(2028, 3, 1))
        finally:
            engine.dispose()
    # the report prints `effective_to` itself: its header says the listing ends that day
    for lang, header in (("zh", "移出日期"), ("en", "Ends on"), ("fr", "Prend fin le")):
        html = render_html(report_context(load_pack("cn"), file, lang, dt.date(2028, 3, 1), "ABCDEFGHJKLMNPQR",
                                          dt.datetime(2028, 3, 1, tzinfo=dt.timezone.utc)))
        assert f"<th>{header}</th>" in html and formats.day(ends, lang) in html, lang


JD = uscc("91110302562134916")
JD_NAME = "北京京东世纪贸易有限公司"


def test_an_objection_filed_before_the_notice_keeps_the_listing_from_taking_effect_back_in_time(
        cli, tmp_path: Path) -> None:
    """小米 objects to its court listing the day it is proposed (02-01), 京东 to the court record its own
    listing cites; both are served on 02-02 (window to 02-12). The listings stayed `notified` (the
    objections came before the notice: nothing put them under review), so `process` held them while the
    objections were open, and `listing list --as-of 02-20` showed them not in force. The court rejected
    both on 02-25: the next step dated each listing's effect back to 02-13, rewriting history (as of
    02-20: effective, screening denied 京东 procurement on a day its objection was still open). Now a
    notice served on a listing with an open objection puts it under review that day, as one filed after
    the notice would: the rejection starts the term on its own day, and the past stays as it was."""
    with time_machine.travel(MARCH_2, tick=False):
        cli("ingest", write_csv(tmp_path / "register.csv", REGISTER_HEADERS,
                                [[XIAOMI, XIAOMI_NAME, "有限责任公司", "2010-03-03", "存续"],
                                 [JD, JD_NAME, "有限责任公司", "2010-09-19", "存续"]]),
            "--authority", "samr", "--category", "registration")
        cli("ingest", write_csv(tmp_path / "court.csv", COURT_HEADERS, [
            ["(2026)京0108执1号", XIAOMI_NAME, XIAOMI, "北京市海淀区人民法院", "全部未履行", GROUND_1, "", "2026-01-05"],
            ["(2026)京0302执2号", JD_NAME, JD, "北京市大兴区人民法院", "全部未履行", GROUND_1, "", "2026-01-06"]]),
            "--authority", "court", "--category", "court_defaulter")
        run(cli, "resolve")
        run(cli, "evaluate", "--as-of", "2026-02-01")
        (xiaomi,) = run(cli, "listing", "list", "--entity", XIAOMI)
        (jd,) = run(cli, "listing", "list", "--entity", JD)
        objections = [
            run(cli, "objection", "file", "--listing", xiaomi["id"], "--on", "2026-02-01", "--actor", "小米",
                "--reason", "已全部履行")["objection"],
            run(cli, "objection", "file", "--record", "court:(2026)京0302执2号#" + JD, "--on", "2026-02-01",
                "--actor", "京东", "--reason", "案件已撤销")["objection"]]
        for listing in (xiaomi, jd):
            run(cli, "listing", "notify", listing["id"], "--on", "2026-02-02", "--actor", "officer",
                "--reason", "served")
        run(cli, "process", "--as-of", "2026-02-20")
        before = run(cli, "listing", "list", "--as-of", "2026-02-20")
        assert [row["state"] for row in before] == ["under_review", "under_review"]
        for objection in objections:
            run(cli, "objection", "decide", objection, "--reject", "--on", "2026-02-25", "--actor", "judge",
                "--reason", "理由不成立")
        run(cli, "process", "--as-of", "2026-03-01")
        assert run(cli, "listing", "list", "--as-of", "2026-02-20") == before  # the past is not rewritten
        assert [(row["state"], row["effective_from"]) for row in run(cli, "listing", "list")] == [
            ("effective", "2026-02-25"), ("effective", "2026-02-25")]
        assert run(cli, "screen", JD, "--action", "public_procurement", "--as-of", "2026-02-20")["decision"] == "allow"
        assert run(cli, "audit", "verify")["intact"] is True


def test_a_listing_whose_evidence_the_court_resends_showing_security_given_is_withdrawn(cli, tmp_path: Path) -> None:
    """小米 and 京东 on the court's list, both served on 02-02. On 02-10 the court re-sends both cases: 小米's
    now says adequate security was given (已提供充分担保: a debtor never listed), 京东's only names the
    court differently. `process` made both listings effective on 02-13 all the same: a listing was built
    on the record's first version and nothing looked at later ones but for performance (an officer's
    `record correct` with the same change withdraws it). Now `process` withdraws a listing whose evidence's
    newest version no longer meets the listing's rule (`withdrawn_record`, dated the day that version
    was received); 京东's, still qualifying, takes effect."""
    with time_machine.travel(dt.datetime(2026, 2, 10, 4, 0, tzinfo=dt.timezone.utc), tick=False):
        cli("ingest", write_csv(tmp_path / "register.csv", REGISTER_HEADERS,
                                [[XIAOMI, XIAOMI_NAME, "有限责任公司", "2010-03-03", "存续"],
                                 [JD, JD_NAME, "有限责任公司", "2010-09-19", "存续"]]),
            "--authority", "samr", "--category", "registration")
        cases = [["(2026)京0108执1号", XIAOMI_NAME, XIAOMI, "北京市海淀区人民法院", "全部未履行", GROUND_1, "", "2026-01-05"],
                 ["(2026)京0302执2号", JD_NAME, JD, "北京市大兴区人民法院", "全部未履行", GROUND_1, "", "2026-01-06"]]
        cli("ingest", write_csv(tmp_path / "court.csv", COURT_HEADERS, cases),
            "--authority", "court", "--category", "court_defaulter")
        run(cli, "resolve")
        run(cli, "evaluate", "--as-of", "2026-02-01")
        ids = {code: run(cli, "listing", "list", "--entity", code)[0]["id"] for code in (XIAOMI, JD)}
        for listing_id in ids.values():
            run(cli, "listing", "notify", listing_id, "--on", "2026-02-02", "--actor", "officer", "--reason", "served")
        cases[0][6] = "已提供充分担保"
        cases[1][3] = "北京市大兴区人民法院执行局"
        resent = run(cli, "ingest", write_csv(tmp_path / "court-resent.csv", COURT_HEADERS, cases),
                     "--authority", "court", "--category", "court_defaulter")
        assert resent["new_versions"] == 2
        run(cli, "resolve")
    with time_machine.travel(dt.datetime(2026, 2, 20, 4, 0, tzinfo=dt.timezone.utc), tick=False):
        run(cli, "process", "--as-of", "2026-02-20")
        (xiaomi,) = run(cli, "listing", "list", "--entity", XIAOMI)
        (jd,) = run(cli, "listing", "list", "--entity", JD)
        assert (xiaomi["state"], xiaomi["end_reason"], xiaomi["ended_on"], xiaomi["effective_from"]) == (
            "withdrawn", "withdrawn_record", "2026-02-10", None)
        assert (jd["state"], jd["effective_from"]) == ("effective", "2026-02-13")
        assert run(cli, "screen", XIAOMI, "--action", "public_procurement")["decision"] == "allow"
        assert run(cli, "evaluate", "--as-of", "2026-02-20", "--full")["proposals"] == 0
        assert run(cli, "audit", "verify")["intact"] is True
