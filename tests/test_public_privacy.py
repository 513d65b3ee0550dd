"""No public surface of the demo shows an unmasked ID number or a restricted value.

`xinyong demo --no-serve` builds the demo jurisdiction (listings effective through due
process); the portal and API are served on it, and every public page is crawled: home, lists
with their filters and pages, search results with their pages, every entity's page (a person's
page exists only while they are listed), the list exports and every entity's public JSON.
Each answer is scanned for 18-character candidates that are valid resident ID numbers, for the
values of fields the pack classifies restricted or shared, and for records of categories that
are not public; no URL may hold an ID number.
"""

from __future__ import annotations

import html
import re
from collections import deque
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx
import orjson
import pytest
from sqlalchemy import select

from conftest import Cli
import datetime as dt

from worlds import resident_id, serving, uscc, write_csv
from xinyong.domain.identifiers import is_valid_resident_id, mask_record_key, normalise_code
from xinyong.domain.pack import Classification, load_pack
from xinyong.services.resolution.resolve import PERSON_SCHEMES
from xinyong.store import tables as t
from xinyong.store.db import open_engine

ID_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
WORD = re.compile(r"[0-9A-Za-z]+")
HREF = re.compile(r'href="([^"]+)"')
NOT_CRAWLED = ("/static/", "/docs", "/redoc", "/openapi", "/portal", "/console", "/v1/")
SEARCHES = ("有限公司", "公司", "科技", "贸易", "建设", "北京", "上海", "深圳", "王", "李", "张", "刘")
ENTITY_CODE_FIELDS = {"person_id", "person_id_type"}
MIN_SECRET = 6  # shorter restricted values (an ID type, 身份证) are words any page may use


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("privacy")
    url = f"sqlite:///{folder / 'demo.db'}"
    Cli(url)("demo", "--no-serve", "--entities", "300", "--seed", "11", "--out", str(folder / "demo"))
    with serving(url) as base:
        yield {"url": url, "base": base, "secrets": restricted_values(url)}


def restricted_values(url: str) -> dict[str, Any]:
    """What may never appear: restricted and shared field values, non-public records, full person IDs."""
    engine = open_engine(url)
    pack = load_pack("cn")
    r, i, rel = t.records.c, t.entity_identifiers.c, t.entity_relations.c
    with engine.connect() as c:
        public_codes = {v for s, v in c.execute(select(i.scheme, i.value)) if s not in PERSON_SCHEMES}
        person_ids = {v for s, v in c.execute(select(i.scheme, i.value)) if s in PERSON_SCHEMES}
        person_ids |= {v for (v,) in c.execute(select(rel.person_id).where(rel.person_id.is_not(None)))}
        values: set[str] = set()
        hidden_records: set[str] = set()
        for key, category_code, kind, fields in c.execute(select(r.record_key, r.category, r.subject_kind, r.fields)):
            category = pack.category(category_code)
            fields = fields if isinstance(fields, dict) else orjson.loads(fields)
            if category.classification != Classification.public:
                hidden_records.add(mask_record_key(key))
            for spec in pack.fields_of(category):
                if spec.classification == Classification.public:
                    continue
                if kind != "natural_person" and spec.name in ENTITY_CODE_FIELDS:
                    continue  # a court's ID column holds an enterprise's own code for an enterprise
                value = fields.get(spec.name)
                for item in value if isinstance(value, list) else [value]:
                    text = str(item).strip() if item is not None else ""
                    if len(text) >= MIN_SECRET and normalise_code(text) not in public_codes:
                        values.add(text)
    engine.dispose()
    assert values and person_ids and hidden_records, "the demo should hold restricted data to look for"
    return {"values": values, "person_ids": person_ids, "hidden_records": hidden_records}


def scan(where: str, body: str, secrets: dict[str, Any]) -> None:
    """No ID number, no restricted or shared value, and no record of a category that is not public
    (the tax A-grade redlist's evidence is a shared grade record: named only to authorities)."""
    text = html.unescape(body)
    ids = [c for c in ID_CANDIDATE.findall(text) if is_valid_resident_id(c.upper())]
    assert not ids, f"{where}: unmasked ID numbers {ids[:3]}"
    words = set(WORD.findall(text))  # codes are whole words: a set lookup, not a scan per value
    leaked = [v for v in secrets["person_ids"] if v in words or v.lower() in words]
    assert not leaked, f"{where}: person ID numbers {leaked[:3]}"
    leaked = [v for v in secrets["values"] if (v in words if WORD.fullmatch(v) else v in text)]
    assert not leaked, f"{where}: restricted or shared values {leaked[:3]}"
    leaked = [k for k in secrets["hidden_records"] if k in text]
    assert not leaked, f"{where}: records of a category that is not public {leaked[:3]}"


def clean_url(url: str) -> str | None:
    """A same-site page to crawl, without the language switch (the same page in another language)."""
    parts = urlsplit(url)
    if parts.netloc or not parts.path.startswith("/") or parts.path.startswith(NOT_CRAWLED):
        return None
    if parts.path.endswith(".pdf"):
        return None  # issuing a report writes one; reports are checked in test_report
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "lang"]
    return parts.path + ("?" + urlencode(query) if query else "")


def no_id_in(url: str) -> None:
    for candidate in ID_CANDIDATE.findall(urlsplit(url).path + " " + urlsplit(url).query):
        assert not is_valid_resident_id(candidate.upper()), f"an ID number in a URL: {url}"


def test_no_public_page_shows_an_id_number_or_a_restricted_value(demo: dict[str, Any]) -> None:
    """(One test on one demo: under `pytest -n`, two tests of this module would build it twice.)"""
    check_the_demo_has_effective_listings_and_filters_work(demo)
    check_search_pages_through_results(demo)
    secrets = demo["secrets"]
    seen: set[str] = set()
    statuses: dict[str, int] = {}
    queue = deque(["/", "/lists", "/verify"] + [f"/search?{urlencode({'q': q})}" for q in SEARCHES])
    pages = {"entity": 0, "list": 0, "search": 0, "paged": 0}
    with httpx.Client(base_url=demo["base"], timeout=30) as http:
        while queue:
            path = queue.popleft()
            if path in seen:
                continue
            seen.add(path)
            no_id_in(path)
            response = http.get(path)
            assert response.status_code in (200, 404), (path, response.status_code)
            statuses[path] = response.status_code
            scan(path, response.text, secrets)
            bucket = {"entities": "entity", "lists": "list", "search": "search"}.get(path.split("?")[0].split("/")[1])
            pages[bucket or "other"] = pages.get(bucket or "other", 0) + 1
            pages["paged"] += "page=" in path
            for href in HREF.findall(response.text):
                href = html.unescape(href)
                no_id_in(href)
                target = clean_url(urljoin(path, href))
                if target and target not in seen:
                    queue.append(target)
        # every entity: its page (a person's only while listed) and its public JSON
        engine = open_engine(demo["url"])
        with engine.connect() as c:
            entities = c.execute(select(t.entities.c.key, t.entities.c.kind)).all()
        engine.dispose()
        shown = {"natural_person": 0, "other": 0}
        for key, kind in entities:
            no_id_in(f"/entities/{key}")
            status = statuses.get(f"/entities/{key}")
            if status is None:  # not reached by a link: a person not listed, an entity on no page
                page = http.get(f"/entities/{key}")
                scan(f"/entities/{key}", page.text, secrets)
                status = page.status_code
            assert status in (200, 404) and (status == 200 or kind == "natural_person"), key
            shown["natural_person" if kind == "natural_person" else "other"] += status == 200
            api = http.get(f"/v1/entities/{key}")
            assert api.status_code == status, (key, api.text)  # the API shows exactly whom the pages show
            scan(f"/v1/entities/{key}", api.text, secrets)
        for spec in load_pack("cn").lists:
            for extension in ("csv", "jsonl"):
                export = http.get(f"/v1/lists/{spec.code}/export.{extension}")
                assert export.status_code == 200
                scan(f"export {spec.code}.{extension}", export.text, secrets)
    # the crawl did reach what it should: many entity pages, paged lists and searches, listed persons
    assert pages["entity"] >= 100 and pages["list"] >= 6 and pages["search"] >= len(SEARCHES), pages
    assert pages["paged"] >= 2, pages
    assert shown["natural_person"] >= 5 and shown["other"] >= 250, shown


def check_the_demo_has_effective_listings_and_filters_work(demo: dict[str, Any]) -> None:
    with httpx.Client(base_url=demo["base"], timeout=30) as http:
        data = http.get("/v1/lists/court_defaulters", params={"page_size": 500}).json()
        assert data["total"] >= 20
        regions = [row["region"] for row in data["items"] if row["region"]]
        assert regions
        prefix = regions[0][:2]
        page = html.unescape(http.get("/lists/court_defaulters", params={"region": prefix}).text)
        expected = sum(1 for row in data["items"] if (row["region"] or "").startswith(prefix))
        assert f"{expected}" in page
        shown = re.findall(r'<td><a href="/entities/[^"]+">', page)
        assert len(shown) == min(expected, 50)
        second = http.get("/lists/court_defaulters", params={"page": 2})
        assert second.status_code == 200
        if data["total"] > 50:
            assert 'rel="prev"' in second.text


def check_search_pages_through_results(demo: dict[str, Any]) -> None:
    with httpx.Client(base_url=demo["base"], timeout=30) as http:
        first = http.get("/search", params={"q": "公司"}).text
        total = int(re.search(r"(\d+)", html.unescape(first).split("<h2>", 1)[1]).group(1))
        assert total > 20 and 'rel="next"' in first
        second = http.get("/search", params={"q": "公司", "page": 2}).text
        a = set(re.findall(r'class="name" href="/entities/([^"]+)"', first))
        b = set(re.findall(r'class="name" href="/entities/([^"]+)"', second))
        assert len(a) == 20 and b and not a & b



# -- hostile authority data: ID numbers, phones and addresses where no ID column is --------------------
# Free text, a name cell, the USCC column of a person's row, 15-digit, spaced and dashed numbers. Every
# public surface is crawled (pages, /v1/entities, lists, exports, search, credit reports as text); none
# may show any of them. A test of its own on a small world, on both engines.

HOSTILE_FIRM = "91110108MA0HT0019"  # completed with its check character below
ID_FREE = "110101199003071233"  # 周八, only inside free text
ID_NAME = resident_id("110102", dt.date(1985, 6, 15), 2)  # 吴九, inside the name cell
ID_USCC = "110105199104090025"  # passes the USCC check as well: in the USCC column of a person's row
ID_OLD = "110103790512123"  # 15 digits, GB 11643-1989
ID_SPACED = resident_id("110106", dt.date(1988, 11, 23), 1)
PHONE, ADDRESS = "13812345678", "朝阳区某路1号"
FREE_TEXT = f"被执行人周八（公民身份号码{ID_FREE}，住北京市{ADDRESS}，电话{PHONE}）"
PERSON_EVALUATED, PERSON_NOTICE, PERSON_EFFECTIVE = "2025-09-15", "2025-09-22", "2025-10-20"


def _hostile_world(cli: Cli, folder: Any) -> str:
    firm = uscc(HOSTILE_FIRM)
    for number in (ID_FREE, ID_NAME, ID_USCC, ID_SPACED):
        assert is_valid_resident_id(number), number
    write_csv(folder / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"],
              [[firm, "北京某某信息技术有限公司", "有限责任公司", "郑十", "2011-02-03", "存续"]])
    spaced = f"{ID_SPACED[:6]} {ID_SPACED[6:14]} {ID_SPACED[14:]}"
    dashed = f"{ID_SPACED[:6]}-{ID_SPACED[6:14]}-{ID_SPACED[14:]}"
    headers = ["案号", "被执行人姓名/名称", "行政相对人类别", "统一社会信用代码", "身份证号码/组织机构代码", "执行法院",
               "生效法律文书确定的义务", "被执行人的履行情况", "失信被执行人行为具体情形", "发布时间"]
    ground = "有履行能力而拒不履行生效法律文书确定义务"
    rows = [
        ["(2025)京0105执11号", "北京某某信息技术有限公司", "企业", firm, "", "北京市朝阳区人民法院", FREE_TEXT,
         "全部未履行", ground, "2025-08-01"],
        ["(2025)京0105执12号", "周八", "自然人", "", ID_FREE, "北京市朝阳区人民法院", FREE_TEXT,
         "全部未履行", ground, "2025-08-01"],
        ["(2025)京0105执13号", f"吴九{ID_NAME}", "自然人", "", ID_NAME, "北京市朝阳区人民法院", "给付货款",
         "全部未履行", ground, "2025-08-01"],
        ["(2025)京0105执14号", "冯十一", "自然人", ID_USCC, "", "北京市朝阳区人民法院", "给付货款",
         "全部未履行", ground, "2025-08-01"],
        ["(2025)京0105执15号", "陈十二", "自然人", "", ID_OLD, "北京市朝阳区人民法院", f"见{ID_OLD}",
         "全部未履行", ground, "2025-08-01"],
        ["(2025)京0105执16号", "褚十三", "自然人", "", spaced, "北京市朝阳区人民法院", f"身份证{dashed}",
         "全部未履行", ground, "2025-08-01"],
    ]
    write_csv(folder / "court.csv", headers, rows)
    cli("ingest", folder / "register.csv", "--authority", "samr", "--category", "registration")
    cli("ingest", folder / "court.csv", "--authority", "court", "--category", "court_defaulter")
    cli("resolve")
    cli("evaluate", "--as-of", PERSON_EVALUATED)
    listings = orjson.loads(cli("listing", "list", "--json").stdout)
    for listing in listings:
        for day in ("2025-09-16", "2025-09-17", "2025-09-18"):
            cli("listing", "remind", listing["id"], "--on", day, "--actor", "clerk", "--reason", "reminder", ok=False)
        cli("listing", "notify", listing["id"], "--on", PERSON_NOTICE, "--actor", "officer", "--reason", "served",
            ok=False)
    cli("process", "--as-of", PERSON_EFFECTIVE)
    return firm


HOSTILE_SECRETS = (ID_FREE, ID_NAME, ID_USCC, ID_OLD, ID_SPACED, PHONE, ADDRESS,
                   f"{ID_SPACED[:6]} {ID_SPACED[6:14]}", f"{ID_SPACED[:6]}-{ID_SPACED[6:14]}")
OLD_ID_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])[1-8][0-9]{14}(?![0-9A-Za-z])")


def hostile_scan(where: str, text: str) -> None:
    compact = re.sub(r"[\s\-]", "", text)  # numbers split by spaces, dashes or a PDF's line breaks
    leaked = [s for s in HOSTILE_SECRETS if s in text or re.sub(r"[\s\-]", "", s) in compact]
    assert not leaked, f"{where}: shows {leaked}"
    ids = [c for c in ID_CANDIDATE.findall(compact) if is_valid_resident_id(c.upper())]
    assert not ids, f"{where}: unmasked ID numbers {ids[:3]}"
    from xinyong.domain.privacy import looks_like_old_person_id
    old = [c for c in OLD_ID_CANDIDATE.findall(text) if looks_like_old_person_id(c)]
    assert not old, f"{where}: 15-digit ID numbers {old[:3]}"


def _pdf_text(pdf: bytes, folder: Any, name: str) -> str:
    import subprocess

    path = folder / f"{name}.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def test_ids_phones_and_addresses_in_any_cell_are_masked_on_every_public_surface(cli: Cli, tmp_path: Any) -> None:
    firm = _hostile_world(cli, tmp_path)
    engine = open_engine(cli.url)
    with engine.connect() as c:
        entities = c.execute(select(t.entities.c.key, t.entities.c.kind)).all()
    engine.dispose()
    shown = {"natural_person": 0, "other": 0}
    texts = 0
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=60) as http:
        for key, kind in entities:
            page = http.get(f"/entities/{key}")
            hostile_scan(f"/entities/{key}", html.unescape(page.text))
            api = http.get(f"/v1/entities/{key}")
            hostile_scan(f"/v1/entities/{key}", api.text)
            if page.status_code == 200:
                shown["natural_person" if kind == "natural_person" else "other"] += 1
                texts += "住***" in api.text
                pdf = http.get(f"/entities/{key}/report.pdf")
                assert pdf.status_code == 200
                hostile_scan(f"/entities/{key}/report.pdf", _pdf_text(pdf.content, tmp_path, key))
        for spec in load_pack("cn").lists:
            hostile_scan(f"/lists/{spec.code}", html.unescape(http.get(f"/lists/{spec.code}").text))
            hostile_scan(f"/v1/lists/{spec.code}", http.get(f"/v1/lists/{spec.code}").text)
            for extension in ("csv", "jsonl"):
                export = http.get(f"/v1/lists/{spec.code}/export.{extension}")
                assert export.status_code == 200
                hostile_scan(f"export {spec.code}.{extension}", export.text)
        for query in ("周八", "吴九", "冯十一", "陈十二", "褚十三", "北京某某信息技术", "某某"):
            hostile_scan(f"/search?q={query}", html.unescape(http.get("/search", params={"q": query}).text))
        # a prefix of an ID number is refused like the whole number, with or without separators
        for prefix in (ID_USCC[:8], ID_USCC[:12], ID_USCC[:17], f"{ID_USCC[:6]} {ID_USCC[6:14]}", ID_OLD):
            answer = html.unescape(http.get("/search", params={"q": prefix}).text)
            assert "/entities/" not in answer.split("<main", 1)[-1] or 'class="name"' not in answer, prefix
            hostile_scan(f"/search?q={prefix}", answer.replace(prefix, ""))
    # the surfaces were reached: the firm and listed persons have public pages, the free text is there
    assert shown["other"] >= 1 and shown["natural_person"] >= 2, shown
    assert texts >= 1
    assert firm
