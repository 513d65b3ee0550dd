"""The pages a newcomer sees first, in a real browser (system Chromium): every table cell at least
2 em wide at 1280 px and 390 px in zh, en and fr; the console's listings paged and filtered; the
review queue comparing names; the dashboard's legend in the bars' colours. Screenshots go to
screenshots/ (git-ignored)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright: pip install -e '.[test]'")

from browser import screenshot
from conftest import Cli
from worlds import serving

WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}

# Every cell narrower than 2 em (its own font size): a cell squeezed to a character per line.
NARROW_CELLS = """() => [...document.querySelectorAll('td, th')].filter(c => c.offsetParent !== null).map(c => {
  const size = parseFloat(getComputedStyle(c).fontSize);
  const width = c.getBoundingClientRect().width;
  return width < 2 * size ? `${c.tagName} ${width.toFixed(0)}px '${c.innerText.slice(0, 20)}'` : null;
}).filter(Boolean)"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("first-day")
    cli = Cli(f"sqlite:///{folder / 'store.db'}")
    cli("demo", "--no-serve", "--entities", "800", "--out", folder / "demo")
    tour = dict(line.split("=", 1) for line in (folder / "demo" / "tour.env").read_text(encoding="utf-8").splitlines()
                if line and not line.startswith("#"))
    with serving(cli.url) as base:
        yield base, tour


def _sign_in(page, base: str, key: str) -> None:
    page.goto(base + "/console")
    page.locator("input[name=api_key]").fill(key)
    page.locator("form[action='/console/sign-in'] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/console/?$"))


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("lang", ("zh", "en", "fr"))
def test_table_cells_are_never_squeezed(browser, demo, lang: str, width: str) -> None:
    base, tour = demo
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h}, locale={"zh": "zh-CN"}.get(lang, lang))
    page = context.new_page()
    try:
        pages = {"entity": f"/entities/{tour['ENTITY']}", "lists": "/lists/court_defaulters",
                 "search": "/search?q=有限公司"}
        console = {"console-listings": "/console/listings", "console-review": "/console/review",
                   "console-batch": f"/console/batches/{tour['BATCH']}", "console-dashboard": "/console"}
        squeezed = {}
        for name, path in pages.items():
            page.goto(f"{base}{path}{'&' if '?' in path else '?'}lang={lang}")
            squeezed[name] = page.evaluate(NARROW_CELLS)
            screenshot(page, f"first-day-{name}-{lang}-{width}")
        _sign_in(page, base, tour["KEY_OPERATE"])
        for name, path in console.items():
            page.goto(f"{base}{path}?lang={lang}")
            squeezed[name] = page.evaluate(NARROW_CELLS)
            screenshot(page, f"first-day-{name}-{lang}-{width}")
        assert {k: v for k, v in squeezed.items() if v} == {}
        if width == "desktop":  # the list-status table: state and dates on one line each
            page.goto(f"{base}/entities/{tour['ENTITY']}?lang={lang}")
            lines = page.evaluate("""() => [...document.querySelectorAll('td.nowrap')].map(c => {
                const range = document.createRange(); range.selectNodeContents(c);
                return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size; })""")
            assert lines and max(lines) == 1, lines
    finally:
        context.close()


def test_console_listings_page_and_filter(page, demo) -> None:
    base, tour = demo
    _sign_in(page, base, tour["KEY_OPERATE"])
    page.goto(base + "/console/listings?lang=en")
    count = page.locator("#listings-count").inner_text()
    total = int(re.search(r"[\d,]+", count).group(0).replace(",", ""))
    assert total > 50 and page.locator("#listings-table tbody tr").count() == 50
    first_page_ids = page.locator("#listings-table tbody tr td:first-child").all_inner_texts()
    page.get_by_role("link", name="Next page").click()
    page.wait_for_url(re.compile(r"page=2"))
    assert set(page.locator("#listings-table tbody tr td:first-child").all_inner_texts()).isdisjoint(first_page_ids)
    screenshot(page, "first-day-console-listings-page-2")
    # filter: a list and a state; every row says that list and that state, with the entity's name
    page.goto(base + "/console/listings?lang=en")
    page.locator("#list").select_option("court_defaulters")
    page.locator("#state").select_option("effective")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"list=court_defaulters"))
    rows = page.locator("#listings-table tbody tr")
    assert rows.count() > 0
    for text in rows.all_inner_texts()[:10]:
        assert "List of dishonest judgment debtors" in text and "in force" in text.lower()
        assert not re.match(r"^\d+\t[0-9A-Z]{18}\t", text)  # a name, not a bare code, names the entity
    screenshot(page, "first-day-console-listings-filtered")
    page.goto(base + "/console/listings?lang=en&authority=court&from=2099-01-01")
    assert page.get_by_text("No listing matches.").is_visible()


def test_review_queue_shows_the_names_side_by_side_with_differences_marked(page, demo) -> None:
    base, tour = demo
    _sign_in(page, base, tour["KEY_OPERATE"])
    page.goto(base + "/console/review?lang=zh")
    record = page.locator(f"#record-{tour['REVIEW']}")
    assert record.is_visible()
    ours = record.locator("td.name-record").first.inner_text()
    theirs = record.locator("td.name-candidate").first.inner_text()
    heading = record.locator("h2").inner_text()
    assert ours == heading and theirs and theirs != ours
    marks = record.locator("mark.differs").all_inner_texts()
    assert marks and all(m for m in marks)
    screenshot(page, "first-day-console-review")


def test_dashboard_legend_colours_are_the_bars_colours(page, demo) -> None:
    base, tour = demo
    _sign_in(page, base, tour["KEY_OPERATE"])
    page.goto(base + "/console?lang=fr")
    for figure in page.locator("figure.chart").all():
        bars = figure.evaluate("f => [...new Set([...f.querySelectorAll('svg rect[fill]')].filter(r => "
                               "!r.closest('.legend')).map(r => r.getAttribute('fill')))]")
        legend = figure.evaluate("f => [...f.querySelectorAll('.legend svg rect')].map(r => r.getAttribute('fill'))")
        assert legend and set(bars) <= set(legend) and len(legend) == len(set(legend))
        assert figure.locator(".legend .badge").count() == 0  # plain labels: no colour of their own
    screenshot(page, "first-day-console-dashboard-fr")
