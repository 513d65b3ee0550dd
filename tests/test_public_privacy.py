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
from worlds import serving
from xinyong.domain.identifiers import is_valid_resident_id, mask_record_key, normalise_code
from xinyong.domain.pack import Classification, load_pack
from xinyong.services.resolve import PERSON_SCHEMES
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

