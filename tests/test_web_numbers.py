"""Every number and date a French page shows goes through Babel (issue 13, item 4): a register of
2,291 firms (written here, not by the demo) must read `2 291` on every fr page that counts it,
the dashboard's charts included, never `2,291` or a bare `2291`; the audit page's timestamps
and the dashboard's months are written the French way, never as ISO text."""

from __future__ import annotations

import json
import re

from websession import WebSession, text_of
from worlds import serving, uscc, write_csv

FIRMS = 2291
SPACES = "[\u202f\xa0 ]"


def _register(tmp_path):
    rows = [[uscc(f"91310000MA1{i:06d}"), f"上海数码{i:04d}贸易有限公司", f"2026-03-{1 + i % 28:02d}"]
            for i in range(FIRMS)]
    return write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "成立日期"], rows)


def _raw(text: str) -> list[str]:
    """2,291 or a bare 2291: the count not written the French way."""
    return re.findall(r"\b2,291\b|(?<![\d/:.-])2291(?![\d/:.-])", text)


def test_a_french_page_never_shows_a_raw_2291(cli, db_url, tmp_path) -> None:
    cli("init", "--pack", "cn")
    cli("ingest", _register(tmp_path), "--authority", "samr", "--category", "registration")
    cli("resolve")  # an audit event whose object is a run named by its time
    cli("process")  # and one named by its day
    made = json.loads(cli("authority", "key", "create", "samr", "--scopes", "operate", "--json").stdout)
    with serving(db_url) as base:
        web = WebSession(base, "fr")
        web.get("/console?lang=fr")
        assert web.post("/console/sign-in", {"api_key": made["key"]}).status_code == 200
        pages = {path: web.get(path) for path in ("/console?lang=fr", "/console/batches?lang=fr",
                                                  "/console/audit?lang=fr", "/search?q=贸易有限公司&lang=fr")}
    for path, page in pages.items():
        assert page.status_code == 200, path
    dashboard = pages["/console?lang=fr"].text
    # the figures, the charts' totals (SVG text and tooltips) and the table beside them
    assert re.search(rf">2{SPACES}291<", dashboard), "the records chart's column total"
    for path, page in pages.items():
        assert not _raw(text_of(page.text)), (path, _raw(text_of(page.text)))
        assert not _raw(re.sub(r"<[^>]*>", " ", page.text)), path  # SVG text and tooltips too
    assert "mars 2026" in text_of(dashboard)  # the month of the column, not 2026-03
    audit = text_of(pages["/console/audit?lang=fr"].text)
    assert not re.search(r"\d{4}-\d{2}-\d{2}", audit), "an ISO date or time on a French page (a run's id too)"
    assert re.search(r"\d{1,2} \w+\.? 20\d\d(,| à) \d{2}:\d{2}:\d{2}", audit), audit[:600]
