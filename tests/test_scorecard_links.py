"""Every figure of the console's scorecard links to the console list of exactly the cases it counts,
filtered by the figure's authority and month (issue 14), on SQLite and PostgreSQL, over real HTTP.

The store is written here, not the demo: the shared world (tests/worlds.py), a second penalty file
with rows on time, late, with and without a verified code and quarantined for two reasons, a batch
received in an earlier month, a correction and a revocation, objections upheld, rejected and left
open past their deadline, and repair applications decided late. For each scorecard row of two
authorities, each figure's link is followed through every page and its rows counted.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import update

from websession import WebSession, text_of
from worlds import FIRM_DEBTOR, FIRM_SERIOUS, PERSON, build_world, serving, write_csv
from xinyong.domain.calendar import Calendar, pack_today
from xinyong.domain.pack import load_pack
from xinyong.services.accountability.scorecard import month_days, scorecard
from xinyong.services.lists.due_process import (Actor, DueProcessError, apply_repair, correct_record, decide_objection,
                                                decide_repair, file_objection, revoke_record)
from xinyong.store import tables as t
from xinyong.store.db import open_engine

PACK = load_pack("cn")
HEADERS = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"]
# the rows each list shows, one marker per case
ROW_MARKERS = {"/console/records": r'<tr data-record="', "/console/quarantine": r'<tr data-row="',
               "/console/objections": r'<article class="record" id="objection-\d+" data-case="',
               "/console/repairs": r'<article class="record" id="repair-\d+" data-case="',
               "/console/overdue": r'<tr data-kind="'}


def working_days_ago(days: int) -> dt.date:
    calendar, day, counted = Calendar(PACK.calendar), pack_today(PACK), 0
    while counted < days:
        if calendar.is_working_day(day):
            counted += 1
        day -= dt.timedelta(days=1)
    return day


def key(cli, authority: str) -> str:
    return json.loads(cli("authority", "key", "create", authority, "--scopes", "operate", "--json").stdout)["key"]


def write_store(cli, folder: Path, db_url: str) -> None:
    ids = build_world(cli, folder)
    today = pack_today(PACK)
    penalties = write_csv(folder / "more-penalties.csv", HEADERS, [
        ["上海链接甲科技有限公司", "", "沪链罚〔2026〕1号", working_days_ago(2).isoformat(), "罚款", "1"],  # on time, no code
        ["上海链接乙科技有限公司", "", "沪链罚〔2026〕2号", working_days_ago(7).isoformat(), "罚款", "1"],  # on time (7)
        ["上海链接丙科技有限公司", "", "沪链罚〔2026〕3号", working_days_ago(8).isoformat(), "罚款", "1"],  # late (8)
        ["无名公司", "", "沪链罚〔2026〕4号", "2026-13-05", "罚款", "1"],  # no such month: quarantined
        ["", "", "", today.isoformat(), "罚款", "1"],  # no decision number: quarantined
        ["", "", "", today.isoformat(), "罚款", "2"],  # again
    ])
    cli("ingest", penalties, "--authority", "samr", "--category", "penalty")
    engine = open_engine(db_url)
    try:
        b = t.batches.c
        with engine.begin() as c:  # the world's penalties were received some weeks ago, in an earlier month
            (penalty_batch,) = [i for (i,) in c.execute(t.batches.select().with_only_columns(b.id).where(
                b.authority == "samr", b.category == "penalty").order_by(b.id).limit(1))]
            earlier = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=45)
            c.execute(update(t.batches).where(b.id == penalty_batch).values(created_at=earlier))
        fix = folder / "fix.json"
        fix.write_text(json.dumps({"罚款金额（万元）": "3"}, ensure_ascii=False), encoding="utf-8")
        correct_record(engine, PACK, "samr:宁市监罚〔2025〕2号", fix, today, Actor("clerk", "typo"))
        revoke_record(engine, PACK, "samr:沪链罚〔2026〕2号", today, Actor("clerk", "annulled"))
        subject = Actor("subject", "not us")
        upheld = file_objection(engine, PACK, listing_id=None, record_key="samr:京市监罚〔2025〕3号", on=today,
                                actor=subject)["objection"]
        decide_objection(engine, PACK, upheld, True, today, Actor("officer", "right", "samr"))
        rejected = file_objection(engine, PACK, listing_id=ids[FIRM_SERIOUS], record_key=None, on=today,
                                  actor=subject)["objection"]
        decide_objection(engine, PACK, rejected, False, today, Actor("officer", "wrong", "samr"))
        # open since long before its deadline: overdue now, counted in the month it was filed
        file_objection(engine, PACK, listing_id=ids[PERSON], record_key=None, on=today - dt.timedelta(days=50),
                       actor=subject)
        file_objection(engine, PACK, listing_id=None, record_key="samr:沪链罚〔2026〕1号",
                       on=today - dt.timedelta(days=40), actor=subject)
        late = apply_repair(engine, PACK, ids[FIRM_DEBTOR], "", [("paid.pdf", b"paid")],
                            today - dt.timedelta(days=60), Actor("subject"))["repair"]
        decide_repair(engine, PACK, late, True, today, Actor("judge", "paid in full"))
        try:
            apply_repair(engine, PACK, None, "本企业承诺诚信经营。", [("receipt.pdf", b"%PDF-1.4 receipt")],
                         today, Actor("subject"), record_key="samr:沪链罚〔2026〕3号")
        except DueProcessError:  # the pack may want the publicity served longer first: the others suffice
            pass
    finally:
        engine.dispose()


def count_rows(web: WebSession, href: str) -> tuple[int, list[str]]:
    """Follow a figure's link through every page: the cases shown, and each page's HTML."""
    marker = ROW_MARKERS[urlsplit(href).path]
    pages, total = [], 0
    while href:
        page = web.get(href)
        assert page.status_code == 200, (href, text_of(page.text)[:300])
        pages.append(page.text)
        total += len(re.findall(marker, page.text))
        following = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        href = following.group(1).replace("&amp;", "&") if following else None
    return total, pages


def expected(row: dict, figure: str, reason: str | None) -> int:
    if figure == "reason":
        return next(q["count"] for q in row["quarantine_top_reasons"] if q["reason"] == reason)
    if figure == "late":
        return row["timed_records"] - row["on_time"]
    return row[figure]


def test_every_figure_links_to_exactly_its_cases(cli, tmp_path: Path, db_url: str) -> None:
    write_store(cli, tmp_path, db_url)
    engine = open_engine(db_url)
    try:
        rows = scorecard(engine, PACK, pack_today(PACK))
    finally:
        engine.dispose()
    mine = [r for r in rows if r["authority"] in ("samr", "court")]
    assert len({r["month"] for r in mine if r["authority"] == "samr"}) == 2  # two months of receipt
    # the store gives every figure something to count
    for figure in ("records", "on_time", "timed_records", "corrections", "revocations", "quarantined",
                   "objections", "objections_upheld", "objections_decided", "repairs", "repairs_decided", "overdue"):
        assert sum(r[figure] for r in mine) > 0, figure
    assert any(r["timed_records"] > r["on_time"] for r in mine) and any(r["verified"] < r["records"] for r in mine)
    assert any(len(r["quarantine_top_reasons"]) >= 2 for r in mine)

    followed = set()
    with serving(db_url) as base:
        for authority in ("samr", "court"):
            web = WebSession(base)
            web.get("/console")
            web.post("/console/sign-in", {"api_key": key(cli, authority)})
            page = web.get(f"/console/scorecard?authority={authority}")
            for row in (r for r in mine if r["authority"] == authority):
                html = re.search(rf'<tr data-authority="{authority}" data-month="{row["month"]}">(.*?)</tr>',
                                 page.text, re.S).group(1)
                links = re.findall(r'<a href="([^"]+)" data-figure="(\w+)"(?: data-reason="([^"]+)")?', html)
                figures = {figure for _href, figure, _reason in links}
                assert {"records", "on_time", "timed_records", "verified", "corrections", "revocations", "quarantined",
                        "objections", "objections_upheld", "repairs", "repairs_on_time", "overdue"} <= figures, figures
                first, last = month_days(row["month"])
                for href, figure, reason in links:
                    href = href.replace("&amp;", "&")
                    query = parse_qs(urlsplit(href).query)
                    assert (query["authority"], query["from"], query["to"]) == (
                        [authority], [first.isoformat()], [last.isoformat()]), href
                    shown, pages = count_rows(web, href)
                    assert shown == expected(row, figure, reason or None), (authority, row["month"], figure, href)
                    if shown:
                        assert f'data-total="{shown}"' in pages[0], href
                    followed.add(figure)
                    if figure == "timed_records" and shown:
                        delays = [int(d) for p in pages for d in re.findall(r'<td class="delay">(\d+)', p)]
                        assert len(delays) == shown and statistics.median(delays) == row["median_delay_working_days"]
                    if figure == "on_time":
                        assert all('data-on-time="true"' in tr for p in pages for tr in re.findall(
                            r'<tr data-record=[^>]*>', p))
            # another authority's records are not this key's: its figures are shown, not linked
            other = "court" if authority == "samr" else "samr"
            other_row = re.search(rf'<tr data-authority="{other}" data-month="[^"]+">(.*?)</tr>', page.text, re.S)
            if other_row:
                assert 'data-figure="records"' not in other_row.group(1)
                assert 'data-figure="objections"' in other_row.group(1)
            assert web.get(f"/console/records?authority={other}").status_code == 404
            # each column's heading links to its section of docs/scorecard.md, which the method page holds
            sections = set(re.findall(r'href="/statistics/method#(\w+)"', page.text))
            assert sections == {"received", "timeliness", "quality", "fairness"}
            method = web.get("/statistics/method")
            assert method.headers["content-type"].startswith("text/html")
            assert all(f'id="{section}"' in method.text for section in sections)
        public = WebSession(base).get("/statistics").text
        assert "/console/" not in public and "data-figure" not in public
        # samr's one correction and two revocations are under the threshold: suppressed, shown as –
        samr = re.search(r'<tr data-authority="samr">(.*?)</tr>', public, re.S).group(1)
        assert '<td class="corrections">–</td>' in samr and '<td class="revocations">–</td>' in samr
    assert {"records", "on_time", "late", "timed_records", "verified", "corrections", "revocations", "quarantined",
            "reason", "objections", "objections_upheld", "objections_decided", "repairs", "repairs_on_time",
            "repairs_decided", "overdue"} <= followed


def test_the_on_time_filter_is_the_scorecard_s_working_day_count() -> None:
    """`decision_date >= earliest_on_time(received)` holds exactly for delays within the limit."""
    from xinyong.services.accountability.scorecard import WorkingDays

    working = WorkingDays(Calendar(PACK.calendar))
    for received in (dt.date(2026, 10, 8), dt.date(2026, 2, 16), dt.date(2026, 5, 6), dt.date(2026, 12, 5)):
        earliest = working.earliest_on_time(received, 7)
        for back in range(0, 40):
            decided = received - dt.timedelta(days=back)
            assert (working.between(decided, received) <= 7) == (decided >= earliest), (received, decided)


def test_the_corrections_list_starts_from_the_later_versions(tmp_path: Path) -> None:
    """SQLite keeps no statistics here: the plans are fixed by the query's shape. At 1M entities, starting
    from the authority's batches walked 2.5 million first versions for a list of a few corrections."""
    from sqlalchemy import event

    from conftest import Cli
    from xinyong.services.operations.operators import CaseFilter, records_page

    url = f"sqlite:///{tmp_path / 'store.db'}"
    Cli(url)("init")
    engine = open_engine(url)
    statements: list[tuple[str, tuple]] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, sql, params, _ctx, _many: statements.append((sql, params)))
    try:
        for change in ("correction", "revocation", None):
            statements.clear()
            records_page(engine, PACK, "samr", CaseFilter(change=change))
            with engine.connect() as c:
                cursor = c.connection.driver_connection
                plans = [[row[3] for row in cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
                         for sql, params in statements if sql.lstrip().startswith("SELECT")]
            assert len(plans) == 2, statements  # the count and the page
            for plan in plans:
                if change:
                    # the first step reads the records through the later versions' index (SCAN or
                    # SEARCH, however a SQLite version words it), never the authority's batches
                    assert plan[0].split()[1] == "records" and "INDEX ix_records_later_versions" in plan[0], plan
                else:
                    assert not any(step.startswith("SCAN records") for step in plan), plan
                    assert any("ix_records_batch" in step for step in plan), plan
    finally:
        engine.dispose()
