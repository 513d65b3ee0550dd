"""The public web pages over real HTTP (uvicorn on loopback), on SQLite and PostgreSQL.

The world of tests/worlds.py, plus a firm with a former name, a recent penalty and a recent
licence (in their publicity period) beside the world's old ones (publicity ended): search in
Chinese by current and former name, code and legal representative; entity pages with list
status, dates and legal basis, public records only, masked person IDs; lists with filters;
languages; credit report download and verification; CSRF, sessions and headers.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from worlds import FIRM_CLEAN, FIRM_DEBTOR, FIRM_PROPOSED, FIRM_SERIOUS, NAMES, PERSON, REP, build_world, serving, uscc, \
    write_csv
from xinyong.domain.calendar import pack_today
from xinyong.domain.pack import load_pack
from xinyong.domain.identifiers import is_valid_resident_id, mask_person_id

pytestmark = pytest.mark.clock  # pages show what holds on the pack's today

FIRM_RENAMED = uscc("91330100MA2RN0005")
RENAMED_NOW, RENAMED_BEFORE = "杭州新名字网络科技有限公司", "杭州旧名字贸易有限公司"
TODAY = pack_today(load_pack("cn"))
RECENT = (TODAY - dt.timedelta(days=20)).isoformat()
OLD_PENALTY, NEW_PENALTY, NEW_LICENCE = "京市监罚〔2025〕3号", "京市监罚〔2026〕99号", "京市监许〔2026〕7号"
ID_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")


def add_recent_records(cli, folder: Path) -> None:
    register = write_csv(folder / "register2.csv", ["统一社会信用代码", "企业名称", "曾用名", "企业类型", "法定代表人",
                                                    "成立日期", "登记状态"], [
        [FIRM_RENAMED, RENAMED_NOW, RENAMED_BEFORE, "有限责任公司", "欧阳明", "2016-04-01", "存续"]])
    penalties = write_csv(folder / "penalties2.csv",
                          ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）",
                           "违法事实"], [
        [NAMES[FIRM_CLEAN], FIRM_CLEAN, NEW_PENALTY, RECENT, "罚款", "1.5", "未按规定公示年度报告"]])
    licences = write_csv(folder / "licences.csv",
                         ["行政相对人名称", "统一社会信用代码", "行政许可决定文书号", "许可证书名称", "许可决定日期", "有效期至"], [
        [NAMES[FIRM_CLEAN], FIRM_CLEAN, NEW_LICENCE, "食品经营许可证", RECENT, "2031-01-01"]])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    cli("ingest", penalties, "--authority", "samr", "--category", "penalty")
    cli("ingest", licences, "--authority", "samr", "--category", "licence")
    cli("resolve")


@pytest.fixture
def site(cli, tmp_path):
    build_world(cli, tmp_path)
    add_recent_records(cli, tmp_path)
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:
        yield http


def text_of(response: httpx.Response) -> str:
    assert response.status_code == 200, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("text/html")
    return html.unescape(response.text)


def person_key(http: httpx.Client) -> str:
    page = text_of(http.get("/search", params={"q": "张三"}))
    keys = re.findall(r'href="/entities/([^"]+)"', page)
    assert len(keys) == 1, keys
    return keys[0]


def no_full_ids(text: str) -> None:
    found = [c for c in ID_CANDIDATE.findall(text) if is_valid_resident_id(c.upper())]
    assert not found, found


def check_home_search_and_entity_pages(site: httpx.Client) -> None:
    home = text_of(site.get("/"))
    assert '<html lang="zh-Hans">' in home and 'href="#main"' in home
    assert home.count("<h1") == 1 and '<label for="q">' in home and 'id="q"' in home
    assert "/static/htmx.min.js" in home and site.get("/static/htmx.min.js").status_code == 200
    assert "严重违法失信名单" in home or "失信" in home  # the pack's lists in Chinese

    def found(query: str) -> list[str]:
        return re.findall(r'href="/entities/([^"]+)"', text_of(site.get("/search", params={"q": query})))

    assert found(NAMES[FIRM_SERIOUS]) == [FIRM_SERIOUS]                     # full current name
    assert FIRM_SERIOUS in found("上海某某")                                  # part of a name
    assert found(RENAMED_BEFORE) == [FIRM_RENAMED]                           # a former name
    assert found("旧名字") == [FIRM_RENAMED]
    assert found(FIRM_DEBTOR) == [FIRM_DEBTOR]                               # the USCC
    assert found(FIRM_DEBTOR.lower()) == [FIRM_DEBTOR]
    assert found(FIRM_DEBTOR[:12]) == [FIRM_DEBTOR]                          # a code's beginning
    assert found("钱七") == [FIRM_DEBTOR]                                     # the legal representative
    assert found("ＭＡ５ＤＢ") == [] and found("不存在的名字") == []
    assert len(found("某某")) >= 4
    # a listed person is found by name (the public list names them), never by ID number
    assert len(found("张三")) == 1
    refused = text_of(site.get("/search", params={"q": PERSON}))
    assert "不能按身份证号码查询" in refused and "/entities/" not in refused.split("<main", 1)[1]
    # HTMX asks for the results alone
    fragment = text_of(site.get("/search", params={"q": "上海某某"}, headers={"HX-Request": "true"}))
    assert "<html" not in fragment and FIRM_SERIOUS in fragment

    serious = text_of(site.get(f"/entities/{FIRM_SERIOUS}"))
    assert serious.count("<h1") == 1 and NAMES[FIRM_SERIOUS] in serious
    assert "严重违法失信" in serious and "国家市场监督管理总局令第44号" in serious   # list and legal basis
    assert "2025年10月" in serious  # the date it took effect
    assert "孙一" in serious  # legal representative
    # the proposed firm: never on a public list; its page says so
    proposed = text_of(site.get(f"/entities/{FIRM_PROPOSED}"))
    assert "目前未列入任何公开名单" in proposed and "宁市监罚" not in proposed

    # public records within publicity only: the recent penalty and licence, not the 2025 fine
    clean = text_of(site.get(f"/entities/{FIRM_CLEAN}"))
    assert NEW_PENALTY in clean and NEW_LICENCE in clean and "食品经营许可证" in clean
    assert OLD_PENALTY not in clean
    assert "未按规定公示年度报告" in clean  # a public field, with its label
    assert "行政处罚" in clean and "行政许可" in clean

    # a person: by opaque key only, ID masked, never by ID number
    key = person_key(site)
    assert not is_valid_resident_id(key)
    person = text_of(site.get(f"/entities/{key}"))
    assert mask_person_id(PERSON) in person and PERSON not in person
    assert "失信被执行人" in person
    assert site.get(f"/entities/{PERSON}").status_code == 404
    assert site.get(f"/entities/{PERSON.lower()}").status_code == 404
    assert site.get("/entities/NOSUCHKEY").status_code == 404
    # another code of an entity leads to its page
    assert site.get(f"/entities/{FIRM_SERIOUS.lower()}", follow_redirects=False).status_code in (301, 404)

    for page in (home, serious, clean, person, proposed):
        no_full_ids(page)
        assert REP not in page and PERSON not in page


def check_lists_filters_and_languages(site: httpx.Client) -> None:
    site.cookies.clear()  # a new visitor: no language chosen yet
    lists = text_of(site.get("/lists"))
    assert lists.count("<h1") == 1
    assert "/lists/court_defaulters" in lists and "/lists/serious_dishonesty" in lists
    court = text_of(site.get("/lists/court_defaulters"))
    assert NAMES[FIRM_DEBTOR] in court and "张三" in court and mask_person_id(PERSON) in court
    assert PERSON not in court
    assert "/v1/lists/court_defaulters/export.csv" in court
    assert '<label for="name">' in court and '<label for="region">' in court
    by_name = text_of(site.get("/lists/court_defaulters", params={"q": "深圳"}))
    assert NAMES[FIRM_DEBTOR] in by_name and "张三" not in by_name
    by_region = text_of(site.get("/lists/court_defaulters", params={"region": "1101"}))  # (the world has none)
    assert "张三" not in by_region and NAMES[FIRM_DEBTOR] not in by_region
    empty = text_of(site.get("/lists/court_defaulters", params={"q": "没有这个名字"}))
    assert "没有符合条件的记录" in empty
    assert site.get("/lists/no_such_list").status_code == 404
    assert site.get("/lists/court_defaulters", params={"region": "abc"}).status_code == 422
    fragment = text_of(site.get("/lists/court_defaulters", params={"q": "深圳"}, headers={"HX-Request": "true"}))
    assert "<html" not in fragment and NAMES[FIRM_DEBTOR] in fragment

    # the same page in three languages: the language follows the browser, and can be switched
    zh = text_of(site.get(f"/entities/{FIRM_SERIOUS}"))
    en = text_of(site.get(f"/entities/{FIRM_SERIOUS}", headers={"Accept-Language": "en-GB,en;q=0.9"}))
    fr = text_of(site.get(f"/entities/{FIRM_SERIOUS}", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}))
    assert '<html lang="zh-Hans">' in zh and "名单状态" in zh and "严重违法失信名单" in zh
    assert '<html lang="en">' in en and "List status" in en and "List of serious illegal and dishonest" in en
    assert '<html lang="fr">' in fr and "Inscription sur les listes" in fr and "Liste des entités" in fr
    assert "12 Oct 2025" in en and "12 oct. 2025" in fr and "2025年10月12日" in zh
    # ?lang= switches and is remembered in a cookie, over the browser's preference
    switched = site.get("/lists", params={"lang": "fr"}, headers={"Accept-Language": "en"})
    assert "Listes publiques" in text_of(switched) and switched.cookies.get("lang") == "fr"
    again = text_of(site.get("/lists", headers={"Accept-Language": "en"}))
    assert "Listes publiques" in again
    site.cookies.clear()
    assert "Public lists" in text_of(site.get("/lists", headers={"Accept-Language": "en"}))
    # the language switcher links keep the page's query
    page = site.get("/lists/court_defaulters", params={"q": "深圳"}).text
    assert 'href="/lists/court_defaulters?q=%E6%B7%B1%E5%9C%B3&amp;lang=en"' in page


def check_report_download_verify_csrf_and_sessions(site: httpx.Client) -> None:
    # a forged Host header does not reach the report: its footer prints no address it was not given
    response = site.get(f"/entities/{FIRM_DEBTOR}/report.pdf", params={"lang": "en"},
                        headers={"Host": "evil.example"})
    assert response.status_code == 200, response.text[:500]
    printed = subprocess.run(["pdftotext", "-", "-"], input=response.content, capture_output=True, check=True).stdout
    assert b"evil.example" not in printed and b"/verify/" in printed
    assert response.headers["content-type"] == "application/pdf" and response.content.startswith(b"%PDF")
    assert "attachment" in response.headers["content-disposition"]
    code = response.headers["x-report-code"]
    pdf = response.content
    assert site.get(f"/entities/{PERSON}/report.pdf").status_code == 404

    genuine = site.get(f"/verify/{code}")
    assert genuine.status_code == 200
    page = text_of(genuine)
    assert "真实报告" in page and NAMES[FIRM_DEBTOR] in page  # (?lang= of the download was for the PDF only)
    assert site.get("/verify", params={"code": code.lower()}, follow_redirects=False).status_code == 303
    assert site.get("/verify/AAAA-BBBB-CCCC-DDDD").status_code == 404
    assert "Not genuine" in html.unescape(site.get("/verify/nonsense", params={"lang": "en"}).text)

    # the upload form is CSRF-protected: no token, a wrong token: 403; the session's token: checked
    files = {"pdf": ("report.pdf", pdf, "application/pdf")}
    assert site.post(f"/verify/{code}", files=files).status_code == 403
    assert site.post(f"/verify/{code}", files=files, data={"csrf_token": "forged"}).status_code == 403
    token = re.search(r'name="csrf_token" value="([^"]+)"', genuine.text).group(1)
    session = genuine.cookies.get("xinyong_session") or site.cookies.get("xinyong_session")
    assert session
    set_cookie = genuine.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie and "max-age=1800" in set_cookie
    checked = site.post(f"/verify/{code}", files=files, data={"csrf_token": token})
    assert "Genuine and unaltered" in text_of(checked)
    altered = pdf.replace(b"%PDF", b"%PDF ", 1)
    assert "Altered." in text_of(site.post(f"/verify/{code}", files={"pdf": ("r.pdf", altered)},
                                           data={"csrf_token": token}))
    assert site.post(f"/verify/{code}", files=files, headers={"X-CSRF-Token": token}).status_code == 200
    # another browser (no session) cannot replay the token
    with httpx.Client(base_url=str(site.base_url), timeout=30) as other:
        assert other.post(f"/verify/{code}", files=files, data={"csrf_token": token}).status_code == 403

    # headers: pages cannot be framed or sniffed; the API stays JSON
    home = site.get("/")
    assert home.headers["x-frame-options"] == "DENY" and home.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]
    with httpx.Client(base_url=str(site.base_url), timeout=30) as newcomer:  # (a session's cookie is renewed)
        assert "set-cookie" not in newcomer.get("/").headers  # a page without a form starts no session
    assert site.get("/v1/lists/court_defaulters").headers["content-type"].startswith("application/json")
    # a browser gets pages for errors, an API client JSON
    browser = {"Accept": "text/html,application/xhtml+xml"}
    missing = site.get("/no/such/page", headers=browser)
    assert missing.status_code == 404 and "<h1>" in missing.text
    assert site.get("/no/such/page").json()["error"]["code"] == "not_found"
    invalid = site.get("/lists/court_defaulters", params={"page": "x"}, headers=browser)
    assert invalid.status_code == 422 and "<h1>" in invalid.text
    assert site.get("/v1/lists/nope", headers=browser).json()["error"]["code"] == "not_found"


def test_public_site(site: httpx.Client) -> None:
    """One world per engine (building it is most of the time), three parts checked on it."""
    check_home_search_and_entity_pages(site)
    check_report_download_verify_csrf_and_sessions(site)
    check_lists_filters_and_languages(site)
