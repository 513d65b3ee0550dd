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
    _more_cases(cli.url, folder)
    with serving(cli.url) as base:
        yield base, tour


EXTRA = 60  # more than a console page (50) of batches, objections and repair applications


def _more_cases(url: str, folder) -> None:
    """A queue longer than a page: record objections and record repairs filed by subjects on the
    demo's published penalties, and small batches sent by the market regulator (the demo's
    operating key's authority)."""
    import datetime as dt

    from sqlalchemy import select

    from xinyong.domain.calendar import add_months, pack_today
    from xinyong.domain.pack import load_pack
    from xinyong.services.lists.due_process import Actor, DueProcessError, apply_repair, file_objection
    from xinyong.services.intake.ingest import ingest_file
    from xinyong.store import tables as t
    from xinyong.store.db import open_engine

    engine = open_engine(url)
    pack = load_pack("cn")
    today = pack_today(pack)
    r = t.records.c
    try:
        with engine.connect() as c:
            keys = [k for (k,) in c.execute(select(r.record_key).where(
                r.status == "active", r.category == "penalty", r.decision_date <= add_months(today, -4))
                .order_by(r.id))]
        objected = repaired = 0
        for key in keys:
            try:
                if objected < EXTRA:
                    file_objection(engine, pack, listing_id=None, record_key=key, on=today,
                                   actor=Actor(f"subject-{objected}", "the decision was annulled"))
                    objected += 1
                elif repaired < EXTRA:
                    apply_repair(engine, pack, None, "本企业承诺诚信经营。", [("receipt.pdf", b"%PDF-1.4 receipt")],
                                 today, Actor(f"subject-{repaired}", None), record_key=key)
                    repaired += 1
            except DueProcessError:
                continue
        assert objected == EXTRA and repaired == EXTRA, (objected, repaired)
        for i in range(EXTRA):
            path = folder / f"penalties-{i:02d}.csv"
            path.write_text("当事人名称,统一社会信用代码,行政处罚决定书文号,处罚决定日期,处罚类别,罚款金额（万元）\n"
                            f"测试{i:02d}贸易有限公司,,测试市监罚〔{today.year}〕{i + 1}号,"
                            f"{(today - dt.timedelta(days=i)).isoformat()},罚款,1\n", encoding="utf-8")
            ingest_file(engine, pack, path, "samr", "penalty", actor="test")
    finally:
        engine.dispose()


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
                   "console-batches": "/console/batches", "console-objections": "/console/objections",
                   "console-repairs": "/console/repairs",
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


CASES = {  # page, its table or list of items, the id prefix of an item, a state for the filter
    "batches": ("#batches-table tbody tr", None),
    "objections": ("article[id^=objection-]", "open"),
    "repairs": ("article[id^=repair-]", "pending"),
}


def _items(page, selector: str) -> list[str]:
    return [t.split("\n", 1)[0] for t in page.locator(selector).all_inner_texts()]


@pytest.mark.parametrize("kind", CASES)
def test_console_batches_objections_repairs_paged_and_filtered(page, demo, kind: str) -> None:
    base, tour = demo
    selector, state = CASES[kind]
    _sign_in(page, base, tour["KEY_OPERATE"])
    page.goto(f"{base}/console/{kind}?lang=en")
    total = int(re.search(r"[\d,]+", page.locator(f"#{kind}-count").inner_text()).group(0).replace(",", ""))
    assert total > 50 and page.locator(selector).count() == 50, total
    first = _items(page, selector)
    page.get_by_role("link", name="Next page").click()
    page.wait_for_url(re.compile(r"page=2"))
    second = _items(page, selector)
    assert second and set(second).isdisjoint(first) and len(first) + len(second) <= total
    screenshot(page, f"first-day-console-{kind}-page-2")
    today = tour["TODAY"]
    if kind == "batches":  # by category and by the day received
        page.goto(f"{base}/console/batches?lang=en")
        page.locator("#category").select_option("registration")
        page.get_by_role("button", name="Show").click()
        page.wait_for_url(re.compile(r"category=registration"))
        rows = page.locator(selector).all_inner_texts()
        assert rows and all("Registration" in row or "registration" in row.lower() for row in rows), rows
        page.goto(f"{base}/console/batches?lang=en&from=2099-01-01")
        assert page.get_by_text("No batch matches.").is_visible()
    else:  # by state, by the deciding authority, by the day filed
        page.goto(f"{base}/console/{kind}?lang=en")
        page.locator("#state").select_option(state)
        page.locator("#authority").select_option("samr")
        page.locator("#from").fill(today)
        page.locator("#to").fill(today)
        page.get_by_role("button", name="Show").click()
        page.wait_for_url(re.compile(r"state=" + state))
        headings = page.locator(f"{selector} h2").all_inner_texts()
        shown = int(re.search(r"[\d,]+", page.locator(f"#{kind}-count").inner_text()).group(0).replace(",", ""))
        assert headings and shown <= total  # the demo's cases may all match (one authority, filed today)
        label = state
        assert all(label in h.lower() for h in headings), headings
        page.goto(f"{base}/console/{kind}?lang=en&list=court_defaulters&from=2099-01-01")
        assert page.get_by_text("No objection." if kind == "objections" else "No application.").is_visible()
    screenshot(page, f"first-day-console-{kind}-filtered")
