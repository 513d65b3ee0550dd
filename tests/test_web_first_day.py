"""What a newcomer reads first on the public pages: search results give the USCC (not a legacy code)
and one badge per list with its name; numbers and colons follow the page's language."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from worlds import FIRM_DEBTOR, NAMES, build_world, uscc, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.store.db import open_engine
from xinyong.web.common import environment


def _results(html: str) -> str:
    return re.search(r'<ol class="results".*?</ol>', html, re.S).group(0)


LEGACY_FIRM = uscc("91330100MA2RN0005")
LEGACY_NAME = "杭州某某老字号贸易有限公司"


def test_search_results_give_the_uscc_and_one_named_badge_per_list(cli, tmp_path) -> None:
    build_world(cli, tmp_path)
    register = write_csv(tmp_path / "register-legacy.csv", ["统一社会信用代码", "企业名称", "组织机构代码", "注册号", "成立日期"],
                         [[LEGACY_FIRM, LEGACY_NAME, LEGACY_FIRM[8:17], "330100000012345", "2001-04-01"]])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    engine = open_engine(cli.url)
    try:
        with TestClient(create_app(engine, load_pack("cn"))) as client:
            legacy = _results(client.get("/search", params={"q": LEGACY_NAME, "lang": "zh"}).text)
            zh = _results(client.get("/search", params={"q": NAMES[FIRM_DEBTOR], "lang": "zh"}).text)
            en = _results(client.get("/search", params={"q": FIRM_DEBTOR, "lang": "en"}).text)
            fr = _results(client.get("/search", params={"q": FIRM_DEBTOR, "lang": "fr"}).text)
    finally:
        engine.dispose()
    assert f"统一社会信用代码 {FIRM_DEBTOR}" in zh and "组织机构代码" not in zh
    assert f"统一社会信用代码 {LEGACY_FIRM}" in legacy and LEGACY_FIRM[8:17] + "<" not in legacy
    assert f"Unified social credit code {FIRM_DEBTOR}" in en and "Organisation code" not in en
    badges = re.findall(r'<span class="badge (\w+)"[^>]*>([^<]+)</span>', zh)
    assert badges and len(badges) == len(set(badges))
    assert ("black", "失信被执行人名单") in badges
    assert "Représentant légal : " in fr


def test_numbers_follow_the_language() -> None:
    rendered = {lang: environment(lang).from_string("{{ n | number }}").render(n=2291, lang=lang)
                for lang in ("zh", "en", "fr")}
    assert rendered["zh"] == "2,291" and rendered["en"] == "2,291"
    assert rendered["fr"].replace("\u202f", " ").replace("\xa0", " ") == "2 291"
