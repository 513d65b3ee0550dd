"""Every word on a page is translated: the catalogues are complete in zh and fr, every string the
code and templates mark for translation is in them, and no page shows a raw code as a label.

The crawl serves a small demo store, signs in to the console (the demo's operating key) and the
subject portal, follows every same-site link up to a bound, in zh, en and fr, and looks at the
text a reader sees (not attributes, URLs, <code> or form values) for the pack's codes and the
store's identifiers' scheme names."""

from __future__ import annotations

import re
from collections import deque
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from conftest import Cli

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "xinyong" / "locales"
TRANSLATED = ("zh", "fr")


def _catalogue(lang: str, domain: str):
    with (LOCALES / lang / "LC_MESSAGES" / f"{domain}.po").open("rb") as handle:
        return read_po(handle, locale=lang, domain=domain)


def _msgid(message) -> str:
    return message.id if isinstance(message.id, str) else message.id[0]


DOMAINS = sorted(p.stem for p in (LOCALES / "zh" / "LC_MESSAGES").glob("*.po"))


@pytest.mark.parametrize("lang", TRANSLATED)
@pytest.mark.parametrize("domain", DOMAINS)
def test_every_msgid_has_a_translation(domain: str, lang: str) -> None:
    untranslated = [_msgid(m) for m in _catalogue(lang, domain) if m.id and (
        m.fuzzy or not (m.string if isinstance(m.string, str) else all(m.string)))]
    assert untranslated == [], f"{lang}/{domain}.po: {len(untranslated)} without a translation: {untranslated[:10]}"


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_languages_hold_the_same_msgids_with_the_same_placeholders(domain: str) -> None:
    zh = {_msgid(m): m for m in _catalogue("zh", domain) if m.id}
    for lang in ("fr", "en"):
        other = {_msgid(m) for m in _catalogue(lang, domain) if m.id}
        assert other == set(zh), f"{lang}/{domain}.po differs from zh: {sorted(other ^ set(zh))[:10]}"
    for lang in TRANSLATED:
        for message in _catalogue(lang, domain):
            if not message.id:
                continue
            wanted = sorted(re.findall(r"%\(\w+\)[sd]", _msgid(message)))
            strings = [message.string] if isinstance(message.string, str) else list(message.string)
            for string in strings:
                assert sorted(re.findall(r"%\(\w+\)[sd]", string)) == wanted, (lang, _msgid(message), string)


def test_every_marked_string_is_in_a_catalogue() -> None:
    known = set()
    for domain in DOMAINS:
        known |= {_msgid(m) for m in _catalogue("zh", domain) if m.id}
    method_map = [("xinyong/web/**.py", "python"), ("xinyong/templates/web/**.html", "jinja2")]
    options = {"xinyong/templates/web/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true",
                                                 "lstrip_blocks": "true"}}
    missing = sorted({(message if isinstance(message, str) else message[0]) + f"  ({file}:{line})"
                      for file, line, message, _comments, _context in
                      extract_from_dir(str(ROOT), method_map, options)
                      if (message if isinstance(message, str) else message[0]) not in known})
    assert missing == [], f"{len(missing)} strings in no catalogue: {missing[:15]}"


# -- the crawl -------------------------------------------------------------------------------------------

class _Text(HTMLParser):
    """The text a reader sees, and the links to follow."""

    SKIPPED = {"code", "pre", "script", "style", "textarea", "title", "kbd", "samp"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIPPED:
            self._skip += 1
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.links.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def raw_codes_in(text: str, codes: set[str], lang: str) -> set[str]:
    """Codes written as they are stored (snake_case, or any pack code on a Chinese page)."""
    found = set()
    for token in re.findall(r"(?<![\w/.:-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w/.-]|:\S)", text):
        found.add(token)
    if lang == "zh":
        # (a record key, `samr:京市监罚〔2023〕1号`, is an identifier: its authority prefix is not a label)
        for token in re.findall(r"(?<![\w/.:@-])[a-z][a-z0-9_]+(?![\w/.@-]|:\S)", text):
            if token in codes:
                found.add(token)
    return found


def test_raw_code_detector() -> None:
    codes = {"samr", "court_defaulters", "uscc"}
    assert raw_codes_in("名单：court_defaulters · uscc 9131", codes, "zh") == {"court_defaulters", "uscc"}
    assert raw_codes_in("samr/1 issued https://x.cn/a_b", codes, "en") == set()
    assert raw_codes_in("Market regulator (samr)", codes, "en") == set()
    assert raw_codes_in("市场监管 samr", codes, "zh") == {"samr"}
    assert raw_codes_in("证据：samr:京市监罚〔2023〕1号", codes, "zh") == set()


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory):
    from fastapi.testclient import TestClient

    from xinyong.api.app import create_app
    from xinyong.domain.pack import load_pack
    from xinyong.services.publication.subjects import issue_credential_details
    from xinyong.store.db import open_engine

    folder = tmp_path_factory.mktemp("crawl")
    cli = Cli(f"sqlite:///{folder / 'store.db'}")
    cli("demo", "--no-serve", "--entities", "300", "--out", folder / "demo")
    tour = dict(line.split("=", 1) for line in (folder / "demo" / "tour.env").read_text(encoding="utf-8").splitlines()
                if line and not line.startswith("#"))
    engine = open_engine(cli.url)
    pack = load_pack("cn")
    with TestClient(create_app(engine, pack), base_url="http://testserver") as client:
        yield client, tour, pack, engine, issue_credential_details
    engine.dispose()


def _codes(pack) -> set[str]:
    codes = {x.code for group in (pack.lists, pack.categories, pack.authorities, pack.actions, pack.measures,
                                  pack.purposes) for x in group}
    return codes | {"uscc", "org_code", "reg_no", "resident_id", "lei", "proposed", "notified", "effective",
                    "under_review", "expired", "repaired", "withdrawn", "enterprise", "natural_person", "open",
                    "pending", "upheld", "rejected", "approved", "refused", "penalty", "licence"}


PAGES_PER_LANGUAGE = 90


def _crawl(client, lang: str, starts: list[str], codes: set[str]) -> dict[str, set[str]]:
    client.cookies.set("lang", lang)
    seen: set[str] = set()
    queue = deque(starts)
    problems: dict[str, set[str]] = {}
    prefixes: dict[str, int] = {}
    while queue and len(seen) < PAGES_PER_LANGUAGE:
        url = queue.popleft()
        path = urlsplit(url).path
        shape = re.sub(r"/[^/]*\d[^/]*", "/N", path)  # a few pages of each kind, not every entity
        if url in seen or prefixes.get(shape, 0) >= 4:
            continue
        seen.add(url)
        prefixes[shape] = prefixes.get(shape, 0) + 1
        answer = client.get(url)
        if not answer.headers.get("content-type", "").startswith("text/html"):
            continue
        parser = _Text()
        parser.feed(answer.text)
        found = raw_codes_in(" ".join(parser.parts), codes, lang)
        if found:
            problems[url] = found
        for href in parser.links:
            target = urljoin(url, href)
            parts = urlsplit(target)
            # /statistics/method is docs/scorecard.md, in English as written, like /docs and /redoc
            if parts.netloc not in ("", "testserver") or parts.path.endswith((".pdf", ".csv", ".jsonl")) \
                    or "sign-out" in parts.path or parts.path.startswith(("/docs", "/redoc", "/static", "/v1")) \
                    or parts.path == "/statistics/method" \
                    or "lang=" in parts.query:  # the language switcher: this crawl keeps to one language
                continue
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    assert len(seen) >= len(starts), seen  # every start page answered, and more found from them
    return problems


@pytest.mark.parametrize("lang", ("zh", "en", "fr"))
def test_no_page_shows_a_raw_code_as_a_label(demo_site, lang: str) -> None:
    client, tour, pack, engine, issue = demo_site
    codes = _codes(pack)
    client.cookies.clear()
    public = _crawl(client, lang, ["/", f"/search?q={tour['ENTITY']}", "/search?q=有限公司", "/lists",
                                   f"/entities/{tour['ENTITY']}", "/verify", "/nowhere"], codes)
    page = client.get("/console")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/console/sign-in", data={"api_key": tour["KEY_OPERATE"], "csrf_token": token})
    console = _crawl(client, lang, ["/console", "/console/review", "/console/listings", "/console/batches",
                                    f"/console/batches/{tour['BATCH']}", "/console/objections", "/console/repairs",
                                    "/console/audit", f"/console/listings/{tour['LISTING']}"], codes)
    client.cookies.clear()
    code, _stored = issue(engine, tour["ENTITY"], 1, actor="test")
    page = client.get(f"/portal/sign-in/{code}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/portal/sign-in", data={"code": code, "csrf_token": token})
    portal = _crawl(client, lang, ["/portal/file", "/portal/cases", "/portal/object", "/portal/repair"], codes)
    problems = {**public, **console, **portal}
    assert problems == {}, "\n".join(f"{url}: {sorted(found)}" for url, found in sorted(problems.items()))
