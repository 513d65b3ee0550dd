"""Accountability pages in a real browser (Playwright, the system Chromium), in zh, en and fr:
the console's scorecard (SVG charts drawn on the server, figures linking to their cases), the
public /statistics page (aggregates, small cells suppressed), the simulation diff of an uploaded
candidate pack, and a supervision grade in the console and in the subject's own file.
Screenshots go to screenshots/ (git-ignored).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import yaml

expect = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright: pip install -e '.[test]'").expect

from browser import screenshot
from conftest import Cli
from worlds import FIRM_CLEAN, FIRM_PROPOSED, FIRM_SERIOUS, build_world, serving
from xinyong.domain.calendar import pack_today
from xinyong.domain.pack import load_pack

PACK = load_pack("cn")
LOCALES = {"zh": "zh-CN", "en": "en-GB", "fr": "fr-FR"}
WORDS = {  # the page's own words, per language, from the catalogues
    "zh": {"scorecard": "部门评分卡", "statistics": "各部门如何维护信用信息", "simulation": "规则影响模拟",
           "newly": "新拟列入"},
    "en": {"scorecard": "Authority scorecard", "statistics": "How the authorities keep the registry",
           "simulation": "Rule-impact simulation", "newly": "Newly proposed"},
    "fr": {"scorecard": "Bilan des autorités", "statistics": "Comment les autorités tiennent le registre",
           "simulation": "Simulation de l’effet des règles", "newly": "Nouvellement proposées"},
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("browser-accountability")
    cli = Cli(f"sqlite:///{folder / 'store.db'}")
    cli("init")
    build_world(cli, folder)
    key = json.loads(cli("authority", "key", "create", "samr", "--scopes", "operate", "--json").stdout)["key"]
    with serving(cli.url) as base:
        yield {"base": base, "cli": cli, "key": key, "folder": folder}


def candidate(folder: Path) -> Path:
    """serious_dishonesty v2, in its comment period: any samr fine of 10,000 yuan or more."""
    base = [r for r in yaml.safe_load((Path(__file__).parent.parent / "xinyong/packs/cn/pack.yaml")
                                      .read_text(encoding="utf-8"))["lists"] if r["code"] == "serious_dishonesty"][0]
    today = pack_today(PACK)
    v1 = {**base["rules"][0], "effective": base["rules"][0]["effective"].isoformat()}
    v2 = {**v1, "version": "2", "effective": (today + dt.timedelta(days=40)).isoformat(),
          "published": (today - dt.timedelta(days=3)).isoformat(), "comment_period_days": 30,
          "any_of": [*v1["any_of"][:1], {"field": "fine_amount", "min": 10000}]}
    path = folder / "candidate.yaml"
    path.write_text(yaml.safe_dump({"code": "cn", "version": "candidate", "extends": "cn",
                                    "lists": [{"code": "serious_dishonesty", "rules": [v1, v2]}]},
                                   allow_unicode=True), encoding="utf-8")
    return path


def console(browser, site, lang: str):
    context = browser.new_context(locale=LOCALES[lang], viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(site["base"] + "/console")
    page.locator("#api_key").fill(site["key"])
    page.locator("#console-sign-in button[type=submit]").click()
    page.wait_for_url(re.compile(r"/console$"))
    return context, page


@pytest.mark.parametrize("lang", ["zh", "en", "fr"])
def test_scorecard_statistics_and_simulation_pages(browser, site, lang: str) -> None:
    context, page = console(browser, site, lang)
    try:
        page.goto(site["base"] + "/console/scorecard")
        assert page.locator("h1").inner_text() == WORDS[lang]["scorecard"]
        assert page.locator("svg#chart-timeliness[role=img]").count() == 1
        assert page.locator("svg#chart-quality[role=img]").count() == 1
        samr = page.locator("#scorecard tr[data-authority=samr]")
        assert samr.count() == 1
        # every count links to the cases behind it, filtered by its authority and month; the method
        # is one click away
        month = samr.get_attribute("data-month")
        assert samr.locator("a[data-figure=records]").get_attribute("href").startswith(
            f"/console/records?authority=samr&from={month}-01&to=")
        assert samr.locator("a[data-figure=objections]").count() == 1
        assert page.locator("a[href^='/statistics/method#']").count() >= 14
        screenshot(page, f"scorecard-{lang}")

        page.goto(site["base"] + "/console/simulate")
        assert page.locator("h1").inner_text() == WORDS[lang]["simulation"]
        page.locator("input[type=file][name=pack]").set_input_files(str(candidate(site["folder"])))
        page.locator("form[action='/console/simulate'] button[type=submit]").click()
        page.wait_for_selector("#by-list")
        row = page.locator("#newly_proposed tbody tr")
        assert row.count() == 1 and FIRM_CLEAN in row.inner_text()
        assert page.locator("svg#chart-simulation").count() == 1
        assert WORDS[lang]["newly"] in page.locator("#by-list thead").inner_text()
        screenshot(page, f"simulation-{lang}")

        page.goto(site["base"] + "/console/grade?entity=" + FIRM_PROPOSED)
        points = page.locator("#points tbody tr")
        assert points.count() == 2 and "宁市监罚〔2025〕2号" in points.first.inner_text()
        screenshot(page, f"grade-console-{lang}")
    finally:
        context.close()

    public = browser.new_context(locale=LOCALES[lang], viewport={"width": 1280, "height": 900})
    try:
        page = public.new_page()
        page.goto(site["base"] + f"/statistics?lang={lang}")
        assert page.locator("h1").inner_text() == WORDS[lang]["statistics"]
        samr = page.locator("#statistics tr[data-authority=samr]")
        assert samr.count() == 1
        # no subject anywhere; the world's few objections and repairs are under the threshold
        text = page.locator("main").inner_text()
        assert FIRM_SERIOUS not in text and "上海某某科技有限公司" not in text
        assert samr.locator("td.repairs").inner_text() in ("–", "0")
        assert page.locator("svg#chart-public-timeliness").count() == 1
        screenshot(page, f"statistics-{lang}")
    finally:
        public.close()


def test_a_figure_clicked_opens_exactly_its_cases(browser, site) -> None:
    """samr's records received this month, on time and late: a click on each figure shows as many rows."""
    from xinyong.services.accountability.scorecard import scorecard
    from xinyong.store.db import open_engine

    engine = open_engine(site["cli"].url)
    try:
        (row,) = [r for r in scorecard(engine, PACK, pack_today(PACK)) if r["authority"] == "samr"]
    finally:
        engine.dispose()
    assert row["records"] > 0 and row["timed_records"] - row["on_time"] > 0
    context, page = console(browser, site, "en")
    try:
        for figure, rows, expected in (("records", "#records-table tbody tr", row["records"]),
                                       ("late", "#records-table tbody tr", row["timed_records"] - row["on_time"])):
            page.goto(site["base"] + "/console/scorecard")
            cell = page.locator(f"#scorecard tr[data-authority=samr][data-month='{row['month']}'] "
                                f"a[data-figure={figure}]")
            cell.click()
            page.wait_for_url(re.compile(r"/console/records\?authority=samr&from="))
            expect(page.locator(rows)).to_have_count(expected)
            if figure == "late":
                assert page.locator("select#timeliness").input_value() == "late"
                screenshot(page, "scorecard-figure-late-en")
    finally:
        context.close()


def test_the_subject_sees_its_grade_and_objects_to_a_point(browser, site) -> None:
    issued = json.loads(site["cli"]("subject", "credential", "create", FIRM_PROPOSED, "--base-url", site["base"],
                                    "--json").stdout)
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        page.goto(issued["link"])
        page.locator("form[action='/portal/sign-in'] button[type=submit]").click()
        page.goto(site["base"] + "/portal/file")
        assert page.locator("#grade-h").count() == 1
        assert page.locator("#points tbody tr").count() == 2
        screenshot(page, "grade-portal-zh")
        page.locator("#points a", has_text="对此项提出异议").first.click()
        page.wait_for_url(re.compile(r"/portal/object\?record=\d+"))
        page.locator("textarea[name=reason]").fill("罚款决定已被撤销")
        page.locator("form[action='/portal/object'] button[type=submit]").click()
        page.wait_for_url(re.compile(r"/portal/cases/objection/\d+"))
        page.goto(site["base"] + "/portal/file")
        assert page.locator("#points tbody tr").count() == 1  # the "no point" row: both points suspended
    finally:
        context.close()
