"""The public portal in a real browser: Playwright driving the system Chromium.

search (typed in Chinese) -> entity page -> credit report download -> verification; the same
pages in zh, en and fr; keyboard use. Screenshots of the main pages go to screenshots/
(git-ignored), one per page and language.
"""

from __future__ import annotations

import re

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright: pip install -e '.[test]'").expect

from browser import screenshot
from conftest import Cli
from worlds import FIRM_DEBTOR, FIRM_SERIOUS, NAMES, PERSON, build_world, serving
from xinyong.domain.calendar import pack_today
from xinyong.domain.identifiers import mask_person_id
from xinyong.domain.pack import load_pack
from xinyong.services.publication.report import issue_report
from xinyong.store.db import open_engine


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    """The world of tests/worlds.py on SQLite, served; one for the module (browsers only read it)."""
    folder = tmp_path_factory.mktemp("browser-world")
    cli = Cli(f"sqlite:///{folder / 'store.db'}")
    cli("init")
    build_world(cli, folder)
    engine = open_engine(cli.url)
    code = issue_report(engine, load_pack("cn"), FIRM_SERIOUS, "zh", pack_today(load_pack("cn"))).code
    engine.dispose()
    with serving(cli.url) as base:
        yield {"base": base, "code": code}


def test_search_entity_report_verify(page, site, tmp_path) -> None:
    base = site["base"]
    page.goto(base + "/")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    # keyboard: the first Tab reaches the skip link, which takes focus to the main content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    screenshot(page, "zh-home")

    search = page.get_by_label("名称、代码或法定代表人")
    search.click()
    search.press_sequentially("深圳某某建设")  # typed, character by character, in Chinese
    search.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q="))
    results = page.locator("ol.results li")
    assert results.count() == 1
    assert "失信被执行人" in results.first.inner_text() or "黑名单" in results.first.inner_text()
    screenshot(page, "zh-search")

    page.get_by_role("link", name=NAMES[FIRM_DEBTOR]).click()
    page.wait_for_url(f"**/entities/{FIRM_DEBTOR}")
    assert page.locator("h1").inner_text() == NAMES[FIRM_DEBTOR]
    assert page.locator("h1").count() == 1
    status = page.locator("#lists").locator("xpath=..").inner_text()
    assert "失信被执行人名单" in status and "有效" in status
    screenshot(page, "zh-entity")

    with page.expect_download() as downloading:
        page.get_by_role("link", name="下载信用报告（PDF）").click()
    download = downloading.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")
    code = re.fullmatch(r"credit-report-([0-9A-Z]+)\.pdf", download.suggested_filename).group(1)

    page.goto(base + "/verify")
    page.get_by_label("报告上的验证码").fill(code.lower())
    page.get_by_role("button", name="核验").click()
    page.wait_for_url(re.compile(r"/verify/[0-9A-Z-]+$"))
    assert "真实报告" in page.locator("[role=status]").inner_text()
    assert NAMES[FIRM_DEBTOR] in page.locator("main").inner_text()
    screenshot(page, "zh-verify")
    page.get_by_label("报告文件（PDF）").set_input_files(str(saved))
    page.get_by_role("button", name="核验文件").click()
    assert "真实且未被篡改" in page.locator("[role=status]").inner_text()
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(saved.read_bytes() + b"\n%")
    page.get_by_label("报告文件（PDF）").set_input_files(str(tampered))
    page.get_by_role("button", name="核验文件").click()
    assert "已被篡改" in page.locator("[role=status]").inner_text()


def test_live_search_with_htmx(page, site) -> None:
    page.goto(site["base"] + "/search")
    page.get_by_label("名称、代码或法定代表人").press_sequentially("张三")
    expect(page.locator("ol.results li")).to_have_count(1)  # (no page load: HTMX swapped the results in)
    assert "张三" in page.locator("ol.results").inner_text()
    assert re.search(r"/search\?q=", page.url)  # the address follows, so the result can be shared
    page.get_by_role("link", name="张三").click()
    text = page.locator("main").inner_text()
    assert mask_person_id(PERSON) in text and PERSON not in page.content()


@pytest.mark.parametrize("lang", ["zh", "en", "fr"])
def test_the_same_pages_in_three_languages(page, site, lang: str) -> None:
    base, expected = site["base"], {
        "zh": ("名单状态", "严重违法失信名单", "公开名单", "真实报告"),
        "en": ("List status", "List of serious illegal and dishonest", "Public lists", "Genuine."),
        "fr": ("Inscription sur les listes", "Liste des entités", "Listes publiques", "Authentique."),
    }[lang]
    page.goto(f"{base}/?lang={lang}")
    assert page.locator("html").get_attribute("lang").startswith(lang)
    screenshot(page, f"{lang}-home")
    page.goto(f"{base}/search?q=某某")
    assert page.locator("ol.results li").count() >= 4
    screenshot(page, f"{lang}-search")
    page.goto(f"{base}/entities/{FIRM_SERIOUS}")  # the language chosen stays (cookie)
    main = page.locator("main").inner_text()
    assert expected[0] in main and expected[1] in main
    screenshot(page, f"{lang}-entity")
    page.goto(f"{base}/lists")
    assert page.locator("h1").inner_text() == expected[2]
    page.goto(f"{base}/lists/court_defaulters")
    assert "张三" in page.locator("table").inner_text()
    screenshot(page, f"{lang}-list")
    page.goto(f"{base}/verify/{site['code']}")
    assert expected[3] in page.locator("[role=status]").inner_text()
    screenshot(page, f"{lang}-verify")


def test_language_follows_the_browser_and_the_switcher(browser, site) -> None:
    context = browser.new_context(locale="fr-FR")
    try:
        page = context.new_page()
        page.goto(site["base"] + "/lists")
        assert page.locator("h1").inner_text() == "Listes publiques"
        page.get_by_role("link", name="English").click()
        assert page.locator("h1").inner_text() == "Public lists"
        page.get_by_role("link", name="Search").click()
        assert page.locator("h1").inner_text() == "Search"  # the choice is remembered
    finally:
        context.close()
