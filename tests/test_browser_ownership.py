"""The ownership and control graph in Chromium at 1280 px, in zh, en and fr (issue 15, item 3).

On the world of tests/worlds.py with the relations file of tests/test_relations.py: the public
page of FIRM_DEBTOR draws its owners above it (a firm linked to its page, a person named),
its officers below; a click on the firm shareholder's box opens that firm's page, which
draws what it holds. The console's page shows the same graph with masked ID numbers.
Screenshots: screenshots/ownership-graph-{zh,en,fr}.png (git-ignored).
"""

from __future__ import annotations

import json
import re

import pytest

from browser import screenshot
from conftest import Cli
from test_relations import ALL_IDS, CONTROLLER, first_file
from worlds import FIRM_CLEAN, FIRM_DEBTOR, NAMES, build_world, serving
from xinyong.domain.identifiers import mask_person_id

LOCALES = {"zh": "zh-CN", "en": "en-GB", "fr": "fr-FR"}
TITLE = {"zh": "股权与控制关系", "en": "Ownership and control", "fr": "Détention et contrôle"}
CONTROLLER_WORD = {"zh": "实际控制人", "en": "Actual controller", "fr": "Contrôleur effectif"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("browser-ownership")
    cli = Cli(f"sqlite:///{folder / 'store.db'}")
    cli("init")
    build_world(cli, folder)
    cli("ingest", first_file(folder), "--authority", "samr", "--category", "relations")
    cli("resolve")
    key = json.loads(cli("authority", "key", "create", "samr", "--scopes", "operate", "--json").stdout)["key"]
    with serving(cli.url) as base:
        yield {"base": base, "key": key}


@pytest.mark.parametrize("lang", ["zh", "en", "fr"])
def test_ownership_graph(browser, site, lang: str) -> None:
    context = browser.new_context(locale=LOCALES[lang], viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        page.goto(f"{site['base']}/entities/{FIRM_DEBTOR}?lang={lang}")
        section = page.locator("section[data-ownership]")
        assert section.locator("h2").inner_text() == TITLE[lang]
        graph = section.locator("svg#ownership-graph[role=img]")
        assert graph.count() == 1
        box = graph.bounding_box()
        assert box is not None and box["width"] > 600 and box["height"] > 200  # drawn, and wide enough to read
        words = graph.inner_html()
        assert "赵六" in words and "孙经理" in words and CONTROLLER_WORD[lang] in words
        assert section.locator("tr[data-relation=actual_controller]").count() == 1
        text = page.content()
        for number in ALL_IDS:
            assert number not in text
        section.scroll_into_view_if_needed()
        screenshot(page, f"ownership-graph-{lang}")
        # the firm shareholder's box is a link to its page, which draws what it holds
        graph.locator(f"a[href='/entities/{FIRM_CLEAN}']").first.click()
        page.wait_for_url(re.compile(f"/entities/{FIRM_CLEAN}"))
        held = page.locator("svg#ownership-graph")
        assert held.count() == 1 and NAMES[FIRM_DEBTOR][:5] in held.inner_html()
        # the console: the same graph, ID numbers masked
        page.goto(site["base"] + "/console")
        page.locator("#api_key").fill(site["key"])
        page.locator("#console-sign-in button[type=submit]").click()
        page.wait_for_url(re.compile(r"/console$"))
        page.goto(f"{site['base']}/console/entities/{FIRM_DEBTOR}?lang={lang}")
        assert page.locator("svg#ownership-graph").count() == 1
        assert mask_person_id(CONTROLLER) in page.locator("section[data-ownership] table").inner_text()
        for number in ALL_IDS:
            assert number not in page.content()
    finally:
        context.close()
