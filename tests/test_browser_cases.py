"""Subjects and authorities in a real browser: Playwright driving the system Chromium.

(a) a subject signs in with its one-time link, objects to its listing with an attachment, an
    operator upholds the objection in the console, and the subject sees the listing withdrawn
    (in Chinese, keyboard only where a subject types);
(b) a subject applies for credit repair, an operator approves, the listing has ended (English);
(c) an authority uploads a batch with bad rows, sees the quarantine and downloads the rejected
    rows (French).
Screenshots of the portal's and the console's main pages go to screenshots/ (git-ignored).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright: pip install -e '.[test]'").expect

from browser import screenshot
from conftest import Cli
from worlds import FIRM_DEBTOR, FIRM_SERIOUS, NAMES, build_world, serving, write_csv


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    """The world of tests/worlds.py on SQLite, served; the three stories touch different listings."""
    folder = tmp_path_factory.mktemp("browser-cases")
    mp = pytest.MonkeyPatch()
    mp.setenv("XINYONG_FILES_DIR", str(folder / "files"))
    cli = Cli(f"sqlite:///{folder / 'store.db'}")
    cli("init")
    ids = build_world(cli, folder)
    try:
        with serving(cli.url) as base:
            yield {"base": base, "cli": cli, "ids": ids, "folder": folder}
    finally:
        mp.undo()


def sign_in_link(site, code: str) -> str:
    issued = json.loads(site["cli"]("subject", "credential", "create", code, "--base-url", site["base"],
                                    "--json").stdout)
    return issued["link"]


def api_key(site, authority: str, scopes: str) -> str:
    return json.loads(site["cli"]("authority", "key", "create", authority, "--scopes", scopes, "--json").stdout)["key"]


def console_page(browser, site, key: str, lang: str):
    context = browser.new_context(accept_downloads=True, locale={"zh": "zh-CN", "en": "en-GB", "fr": "fr-FR"}[lang],
                                  viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(site["base"] + "/console")
    page.locator("#api_key").fill(key)
    page.locator("#console-sign-in button[type=submit]").click()
    page.wait_for_url(re.compile(r"/console$"))
    return context, page


def test_a_subject_objects_and_the_authority_upholds(page, browser, site, tmp_path: Path) -> None:
    listing = site["ids"][FIRM_SERIOUS]
    page.goto(site["base"] + "/portal")
    screenshot(page, "portal-sign-in-zh")
    page.goto(sign_in_link(site, FIRM_SERIOUS))
    assert page.locator("h1").inner_text() == "登录查看我的信用档案"
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/portal/file")
    assert page.locator("h1").count() == 1 and NAMES[FIRM_SERIOUS] in page.locator("h1").inner_text()
    row = page.locator(f"#listing-{listing}")
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "effective")
    screenshot(page, "portal-file-zh")

    row.get_by_role("link", name=re.compile("提出异议")).click()
    page.wait_for_url(re.compile(rf"/portal/object\?listing={listing}$"))
    # keyboard only: the reason is typed, the attachment chosen, the form sent with Enter
    reason = page.get_by_label("异议理由")
    reason.focus()
    page.keyboard.type("该许可证吊销决定已被复议机关撤销。")
    proof = tmp_path / "复议决定书.txt"
    proof.write_text("复议决定：撤销原处罚决定。", encoding="utf-8")
    page.get_by_label("附件（可选）").set_input_files(str(proof))
    screenshot(page, "portal-object-zh")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "attachments"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent").strip() == "提交异议"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/portal/cases/objection/\d+$"))
    objection = int(page.url.rsplit("/", 1)[1])
    facts = page.locator("#case-facts").inner_text()
    assert "复议决定书.txt" in facts and "该许可证吊销决定已被复议机关撤销" in facts
    expect(page.locator("h1 [data-state]")).to_have_attribute("data-state", "open")
    screenshot(page, "portal-case-open-zh")

    context, console = console_page(browser, site, api_key(site, "ndrc", "operate"), "zh")
    try:
        screenshot(console, "console-dashboard-zh")
        console.get_by_role("link", name="异议", exact=True).click()
        article = console.locator(f"#objection-{objection}")
        assert "该许可证吊销决定已被复议机关撤销" in article.inner_text()
        with console.expect_download() as downloading:  # the operator reads the attachment
            article.get_by_role("link", name="复议决定书.txt").click()
        assert Path(downloading.value.path()).read_text(encoding="utf-8") == "复议决定：撤销原处罚决定。"
        screenshot(console, "console-objection-to-decide-zh")
        article.get_by_label("异议成立（撤销列入）").check()
        article.get_by_label("理由").fill("复议决定书属实，撤销列入。")
        article.get_by_role("button", name="作出决定").click()
        expect(console.locator("[role=status]").first).to_contain_text(f"异议 {objection} 成立")
        console.goto(f"{site['base']}/console/listings/{listing}")
        expect(console.locator("h1 [data-state]")).to_have_attribute("data-state", "withdrawn")
        screenshot(console, "console-listing-zh")
        console.goto(site["base"] + "/console/audit")
        assert console.locator("#audit-status").get_attribute("data-intact") == "true"
        screenshot(console, "console-audit-zh")
    finally:
        context.close()

    page.reload()
    expect(page.locator("h1 [data-state]")).to_have_attribute("data-state", "upheld")
    assert "复议决定书属实" in page.locator("#case-facts").inner_text()
    expect(page.locator("h2 [data-state]")).to_have_attribute("data-state", "withdrawn")
    screenshot(page, "portal-case-upheld-zh")
    page.goto(site["base"] + "/portal/file")
    expect(page.locator(f"#listing-{listing} [data-state]")).to_have_attribute("data-state", "withdrawn")
    assert "已撤销" in page.locator(f"#listing-{listing}").inner_text()


def test_b_subject_applies_for_repair_and_the_authority_approves(page, browser, site, tmp_path: Path) -> None:
    listing = site["ids"][FIRM_DEBTOR]
    page.goto(sign_in_link(site, FIRM_DEBTOR) + "?lang=en")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/portal/file")
    screenshot(page, "portal-file-en")
    page.locator(f"#listing-{listing}").get_by_role("link", name=re.compile("Apply for credit repair")).click()
    page.wait_for_url(re.compile(rf"/portal/repair\?listing={listing}$"))
    assert page.locator("h1").inner_text() == f"Apply for credit repair of listing {listing}"
    page.get_by_label("Credit commitment").fill("We have paid the judgment debt in full and will act in good faith.")
    proof = tmp_path / "court-receipt.pdf"
    proof.write_bytes(b"%PDF-1.4\n% paid in full\n")
    page.get_by_label("Evidence files").set_input_files(str(proof))
    screenshot(page, "portal-repair-en")
    page.get_by_role("button", name="Apply", exact=True).click()
    page.wait_for_url(re.compile(r"/portal/cases/repair/\d+$"))
    repair = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("h1 [data-state]")).to_have_attribute("data-state", "pending")
    assert "court-receipt.pdf" in page.locator("#case-facts").inner_text()

    context, console = console_page(browser, site, api_key(site, "ndrc", "operate"), "en")
    try:
        console.get_by_role("link", name="Repairs", exact=True).click()
        article = console.locator(f"#repair-{repair}")
        assert "court-receipt.pdf" in article.inner_text()
        screenshot(console, "console-repairs-en")
        article.get_by_label("Approve (end the listing)").check()
        article.get_by_label("Reason").fill("The court confirms full performance.")
        article.get_by_role("button", name="Decide").click()
        expect(console.locator("[role=status]").first).to_contain_text(f"Repair {repair} approved")
        console.goto(f"{site['base']}/console/listings?state=repaired")
        assert f"/console/listings/{listing}" in console.content()
        screenshot(console, "console-listings-en")
    finally:
        context.close()

    page.goto(site["base"] + "/portal/cases")
    screenshot(page, "portal-cases-en")
    page.get_by_role("link", name=f"Credit repair {repair}").click()
    expect(page.locator("h1 [data-state]")).to_have_attribute("data-state", "approved")
    expect(page.locator("h2 [data-state]")).to_have_attribute("data-state", "repaired")
    assert "Ended" in page.locator("#listing-facts").inner_text()
    screenshot(page, "portal-case-approved-en")
    page.goto(site["base"] + "/portal/file")
    row = page.locator(f"#listing-{listing}")
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "repaired")
    assert "Ended" in row.inner_text() and row.get_by_role("link").count() == 0


def test_c_upload_with_bad_rows_quarantine_and_rejects(browser, site, tmp_path: Path) -> None:
    headers = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"]
    rows = [
        [NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "深市监罚〔2026〕21号", "2026-04-01", "罚款", "3"],
        ["无名公司", "", "深市监罚〔2026〕22号", "2026-02-30", "罚款", "1"],  # no such day
        [NAMES[FIRM_SERIOUS], FIRM_SERIOUS, "", "2026-04-03", "罚款", "1"],  # no decision number
    ]
    path = write_csv(tmp_path / "samr-penalties-2026-04.csv", headers, rows)
    context, page = console_page(browser, site, api_key(site, "samr", "submit:penalty,submit:licence"), "fr")
    try:
        screenshot(page, "console-dashboard-fr")
        page.get_by_role("link", name="Téléversement").click()
        page.get_by_label("Catégorie des enregistrements").select_option("penalty")
        page.get_by_label("Fichier").set_input_files(str(path))
        screenshot(page, "console-upload-fr")
        page.get_by_role("button", name="Téléverser le fichier").click()
        page.wait_for_url(re.compile(r"/console/uploads/[0-9a-f]{32}$"))
        # HTMX polls the progress until the batch is written, without reloading the page
        expect(page.locator("#progress")).to_have_attribute("data-state", "done", timeout=30_000)
        assert "3 lignes, 1 acceptées, 2 en quarantaine" in page.locator("#progress").inner_text()
        screenshot(page, "console-upload-done-fr")
        page.get_by_role("link", name="Voir le lot et sa quarantaine").click()
        page.wait_for_url(re.compile(r"/console/batches/\d+$"))
        batch_id = int(page.url.rsplit("/", 1)[1])
        assert page.locator("table tbody tr").count() == 2
        assert page.locator("#quarantined-count").inner_text() == "2"
        screenshot(page, "console-batch-fr")
        with page.expect_download() as downloading:
            page.get_by_role("link", name="Télécharger les lignes rejetées (CSV)").click()
        download = downloading.value
        assert download.suggested_filename == f"batch-{batch_id}-rejects.csv"
        data = Path(download.path()).read_bytes()
        assert data.startswith("\ufeff".encode())
        table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        assert table[0][:6] == headers and table[0][6:] == ["原始行 row", "问题字段 field", "原因 reason"]
        assert [r[:6] for r in table[1:]] == rows[1:]
        assert [r[6] for r in table[1:]] == ["3", "4"] and all(r[8] for r in table[1:])
    finally:
        context.close()


def test_d_console_pages_in_three_languages(browser, site, tmp_path: Path) -> None:
    key = api_key(site, "ndrc", "operate")
    for lang in ("zh", "en", "fr"):
        context, page = console_page(browser, site, key, lang)
        try:
            assert page.locator("html").get_attribute("lang").startswith(lang)
            for path, name in (("/console", "dashboard"), ("/console/review", "review"),
                               ("/console/batches", "batches"), ("/console/objections", "objections")):
                page.goto(site["base"] + path)
                assert page.locator("h1").count() == 1
                screenshot(page, f"console-{name}-{lang}")
        finally:
            context.close()
