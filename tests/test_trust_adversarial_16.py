"""Security and privacy of the public surfaces, probed as a curious neighbour, a data broker and an
operator in a hurry would: a court's file whose cells hold more than they should (an ID number and an
address written into the debtor's name cell, an ID number that the court's own system masked its way,
one broken by invisible characters pasted from a web page), real public firm names, codes with valid
check characters. Each test is a defect found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import httpx
import time_machine
from fastapi.testclient import TestClient

from test_trust_adversarial import TODAY
from worlds import resident_id, run, serving, uscc, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.store.db import open_engine

XIAOMI = uscc("91110108MA0XM0077")
ZHANG = resident_id("110101", dt.date(1990, 3, 7), 777)  # 张建国, Beijing 东城区
LI = resident_id("310104", dt.date(1985, 11, 23), 412)  # 李秀英, Shanghai 徐汇区
COURT_HEADERS = ["案号", "被执行人姓名/名称", "身份证号码/组织机构代码", "执行法院", "生效法律文书确定的义务",
                 "被执行人的履行情况", "失信被执行人行为具体情形", "发布时间"]


def court_row(case: str, name: str, code: str, obligation: str = "") -> list[str]:
    return [case, name, code, "北京市朝阳区人民法院", obligation, "全部未履行", "违反限制消费令", "2026-10-02"]


def listed(cli, folder: Path, rows: list[list[str]]) -> None:
    """小米 registered; the court's `rows` (persons and 小米) listed on court_defaulters, effective
    from 2026-10-25 (persons reminded three times first, as due process has it)."""
    register = write_csv(folder / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"],
                         [[XIAOMI, "小米科技有限责任公司", "有限责任公司", "雷军", "2010-03-03", "存续"]])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    cli("ingest", write_csv(folder / "court.csv", COURT_HEADERS, rows), "--authority", "court",
        "--category", "court_defaulter")
    run(cli, "resolve")
    run(cli, "evaluate", "--as-of", "2026-10-10")
    for row in rows:
        listing = run(cli, "listing", "list", "--entity", row[2])[0]["id"]
        if row[2] != XIAOMI:
            for day in ("2026-10-11", "2026-10-12", "2026-10-13"):
                cli("listing", "remind", listing, "--on", day, "--actor", "clerk", "--reason", "reminder")
        cli("listing", "notify", listing, "--on", "2026-10-14", "--actor", "officer", "--reason", "served")
    run(cli, "process", "--as-of", "2026-10-30")


def _visible(text: str) -> str:
    """The text as a reader sees it: invisible (format) characters drawn as nothing."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def test_public_search_never_confirms_what_the_pages_mask_in_a_name(cli, tmp_path: Path) -> None:
    """The court wrote 张建国's ID number and home address into his name cell. Every page shows the
    name masked (张建国(身份证号:110101********7774,住***)), but the search matched the stored name:
    `/search?q=19900307` found him, and so did his birth date with the last four digits the pages
    show (`199003077774`, while `199003077775` found nothing) and his street (`建国路`): a public
    oracle that confirmed his birth date and address. Now a name matches only in what the pages show."""
    with time_machine.travel(TODAY, tick=False):
        listed(cli, tmp_path, [
            court_row("（2026）京0105执100号", f"张建国（身份证号：{ZHANG}，住北京市朝阳区建国路1号）", ZHANG),
            court_row("（2026）京0108执200号", "小米科技有限责任公司", XIAOMI),
        ])
        zhuzong = uscc("91110000101123456")  # a firm whose name a page masks as an address: still found
        cli("ingest", write_csv(tmp_path / "register-2.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人",
                                                              "成立日期", "登记状态"],
                                [[zhuzong, "北京住总集团有限责任公司", "有限责任公司", "刘某", "1983-03-01", "存续"]]),
            "--authority", "samr", "--category", "registration")
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                def found(term: str, what: str = "张建国") -> bool:
                    answer = http.get("/search", params={"q": term})
                    assert answer.status_code == 200, (term, answer.status_code)
                    return what in answer.text

                assert found("张建国") and found("110101")  # his name, and the region the pages show
                for term in ("19900307", ZHANG[6:], "0307777", "建国路", "朝阳区建国路1号"):
                    assert not found(term), f"searching {term!r} confirms what the pages mask"
                assert not found("199003077775")
                assert found("住总集团", f"/entities/{zhuzong}")
        finally:
            engine.dispose()


def test_an_id_number_masked_another_way_or_cut_by_invisible_characters_is_masked(cli, tmp_path: Path) -> None:
    """Two court texts that kept a person's birth date on every public surface:
    - 张建国's obligation names him with his ID number as the court's own system masks it
      (11010119900307****): beside the list's 110101********7774 it gives the whole number back;
    - 李秀英's names her ID number copied from a web page with a soft hyphen and a left-to-right mark
      in it, invisible in any browser, PDF or spreadsheet: the number read whole, unmasked.
    Now both are masked to the public form (region and last four), in the page, the API, the list
    export and the open-data dump."""
    zhang_masked_by_court = ZHANG[:14] + "****"
    li_pasted = f"{LI[:6]}\u00ad{LI[6:10]}\u200e{LI[10:]}"
    with time_machine.travel(TODAY, tick=False):
        listed(cli, tmp_path, [
            court_row("（2026）京0105执100号", "张建国", ZHANG,
                      f"被执行人张建国（身份证号{zhang_masked_by_court}）支付申请执行人货款人民币12万元"),
            court_row("（2026）京0105执101号", "李秀英", LI,
                      f"被执行人李秀英（公民身份号码{li_pasted}）返还借款5万元"),
        ])
        out = tmp_path / "open"
        cli("publish", "--out", out)
        dumped = "".join(path.read_text(encoding="utf-8-sig") for path in (out / "full").glob("*.[cj]s*"))
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                items = http.get("/v1/lists/court_defaulters").json()["items"]
                assert sorted(item["id_number"] for item in items) == sorted(
                    [f"{ZHANG[:6]}********{ZHANG[-4:]}", f"{LI[:6]}********{LI[-4:]}"])
                surfaces = {"export": http.get("/v1/lists/court_defaulters/export.csv").text, "dump": dumped}
                for item in items:
                    surfaces[f"api {item['entity']}"] = http.get(f"/v1/entities/{item['entity']}").text
                    surfaces[f"page {item['entity']}"] = http.get(f"/entities/{item['entity']}").text
        finally:
            engine.dispose()
    assert "支付申请执行人货款" in surfaces["api " + items[0]["entity"]] + surfaces["api " + items[1]["entity"]]
    for where, text in surfaces.items():
        seen = _visible(text)
        for birth in ("19900307", "19851123"):
            assert birth not in seen, f"{where} shows a birth date: {re.findall(r'.{20}' + birth + r'.{8}', seen)}"


def test_data_serves_only_what_publish_lists_never_an_operators_snapshot(cli, tmp_path: Path) -> None:
    """`serve --data-dir DIR` served every file under DIR: an operator who wrote the restricted
    snapshot (`export --out DIR/snapshot`: records with persons' ID numbers and restricted fields,
    "mode 0600, never served") beside the open data had it downloadable by anyone at
    /data/snapshot/. Now /data/ serves only manifest.json, datapackage.json and the files the
    manifest lists."""
    with time_machine.travel(TODAY, tick=False):
        listed(cli, tmp_path, [court_row("（2026）京0105执100号", "张建国", ZHANG)])
    out = tmp_path / "open"
    manifest = json.loads(cli("publish", "--out", out, "--json").stdout)
    cli("export", "--format", "parquet", "--out", out / "snapshot")
    restricted = sorted(path.relative_to(out).as_posix() for path in (out / "snapshot").rglob("*") if path.is_file())
    assert "snapshot/snapshot.json" in restricted and any(p.startswith("snapshot/records/") for p in restricted)
    assert ZHANG.encode() in b"".join((out / p).read_bytes() for p in restricted if p.startswith("snapshot/records/"))
    with serving(cli.url, webhooks=False, data_dir=out) as base:
        def status(path: str) -> int:
            return httpx.get(f"{base}/data/{path}").status_code

        assert status("manifest.json") == 200 and status("datapackage.json") == 200
        assert all(status(f["path"]) == 200 for f in manifest["files"])
        served: dict[str, Any] = {path: status(path) for path in restricted}
    assert set(served.values()) == {404}, served


def test_a_pack_uploaded_to_the_console_reads_no_file_of_the_server(cli, tmp_path: Path) -> None:
    """The console's simulation (any `operate` key: an authority's clerk) loaded the uploaded pack with
    every path in it: `extends: /srv/.../config.yaml` read a server file and the refusal listed its
    top-level keys ("database: Extra inputs are not permitted"); `extends: /etc/passwd` answered "must
    be a mapping" where a missing file answered "no such pack file" (which files exist); a
    `places_file` with a folder, or a `code` climbing out of the shipped packs, read any CSV. Now an
    uploaded pack extends a shipped pack or the active one, and names its places file by a plain name."""
    from test_web_console import console, key
    from websession import text_of

    secrets = tmp_path / "server" / "config.yaml"
    secrets.parent.mkdir()
    secrets.write_text("database:\n  url: postgresql://registry:s3cret@10.0.0.5/xinyong\nsigning_key: k\n",
                       encoding="utf-8")
    (tmp_path / "server" / "people.csv").write_text("code,name,level\n110101,张建国 110101199003077774,1\n",
                                                     encoding="utf-8")
    operate, _ = key(cli, "samr", "operate")
    climb = "/".join([".."] * 12) + str(tmp_path / "server")
    uploads = {
        "a server file": f"code: cn\nversion: x\nextends: {secrets}\n",
        "a file that exists": "code: cn\nversion: x\nextends: /etc/passwd\n",
        "a missing file": "code: cn\nversion: x\nextends: /etc/no-such-file\n",
        "a places file by path": ("code: cn\nversion: x\nextends: cn\nresolution:\n  name_rules:\n"
                                  f"    places_file: {tmp_path / 'server' / 'people.csv'}\n"),
        "a code climbing out": f"code: {climb}\nversion: x\nresolution:\n  name_rules:\n    places_file: config.yaml\n",
    }
    with serving(cli.url) as base:
        web = console(base, operate)
        refusals = {}
        for what, text in uploads.items():
            web.get("/console/simulate")
            page = web.post("/console/simulate", files={"pack": ("candidate.yaml", text.encode(), "application/yaml")})
            refusals[what] = text_of(page.text)
        web.get("/console/simulate")
        overlay = web.post("/console/simulate", files={"pack": (
            "candidate.yaml", b"code: cn\nversion: candidate\nextends: cn\n", "application/yaml")})
    assert overlay.status_code == 200 and "The pack file was refused" not in text_of(overlay.text)
    for what, text in refusals.items():
        assert "The pack file was refused" in text, (what, text[:300])
        assert "database" not in text and "signing_key" not in text and "110101" not in text, (what, text[:600])
        assert "must be a mapping" not in text and "no such pack file" not in text, (what, text[:600])
        assert str(tmp_path / "server") not in text, (what, text[:600])


def test_a_mobile_number_exported_with_86_before_it_is_masked(cli, tmp_path: Path) -> None:
    """A court pasted the guarantor's mobile number from an address-book export, where numbers are
    written with the country code and no plus: "8613912345678". The 86 is a digit before the number,
    so 小米's page and `/v1/entities` showed it whole, where "+8613912345678" was masked."""
    from test_trust_adversarial_5 import _public_texts, _xiaomi_with_court_text

    with time_machine.travel(TODAY, tick=False):
        _xiaomi_with_court_text(cli, tmp_path, "担保人张伟，联系电话8613912345678，承担连带责任")
        for path, shown in _public_texts(cli.url).items():
            assert "担保人张伟" in shown, path
            assert "13912345678" not in shown and "86139****5678" in shown, path


def test_an_individual_business_keyed_by_its_owners_id_number_never_gives_it_back(cli, tmp_path: Path) -> None:
    """A register extract lists 张建国's hardware shop (个体工商户) with his ID number in the code
    column, his repair shop with the same number mistyped (its check digit), and 李四's restaurant under
    a 15-digit registration number shaped like an old ID number. The mistyped number was shown whole
    in the search results, the page and `/v1/entities` (only valid ID numbers were masked among
    identifiers), and `/entities/{number}` led to its page as a firm's code does. The others were shown
    masked (110101********7774), but every key, in every URL, was an unsalted hash of "scheme:number":
    hashing the 40,000 birth dates between the region and the last four digits shown gave the whole
    number back at once. Now a code that may be a person's is masked among identifiers as in free
    text, refused in a URL, and keyed with the store's secret, as persons are."""
    from xinyong.services.intake.register import opaque_key

    typo = ZHANG[:-1] + ("0" if ZHANG[-1] != "0" else "1")
    old_id = "110101900307777"  # 1990-03-07, first generation
    shops = {"张建国五金店": ZHANG, "张建国修车铺": typo, "李四餐馆": old_id}
    owners = {"张建国五金店": "张建国", "张建国修车铺": "张建国", "李四餐馆": "李四"}
    register = write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"],
                         [[code, f"北京市东城区{name}", "个体工商户", owners[name], "2010-03-03", "存续"]
                          for name, code in shops.items()])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    run(cli, "resolve")
    engine = open_engine(cli.url)
    keys = {}
    try:
        with TestClient(create_app(engine, load_pack("cn"))) as http:
            for name, code in shops.items():
                found = http.get("/search", params={"q": name}).text
                items = set(re.findall(r'href="/entities/([^"?]+)"', found))
                assert len(items) == 1, (name, items)
                keys[name] = key = items.pop()
                shown = {"search": found, "page": http.get(f"/entities/{key}").text,
                         "api": http.get(f"/v1/entities/{key}").text}
                for where, text in shown.items():
                    assert code not in text and f"{code[:6]}{'*' * (len(code) - 10)}{code[-4:]}" in text, (name, where)
                # nor is the number a way in: a page found by it would confirm whose it is
                assert http.get(f"/entities/{code}", follow_redirects=False).status_code == 404, name
                assert http.get(f"/v1/entities/{code}").status_code == 404, name
    finally:
        engine.dispose()
    born = [dt.date(1900, 1, 1) + dt.timedelta(days=n) for n in range(0, 110 * 366)]
    guesses = {opaque_key("X", f"uscc:{code[:6]}{day:%Y%m%d}{code[14:]}") for day in born for code in (ZHANG, typo)}
    guesses |= {opaque_key("X", f"{scheme}:{old_id[:6]}{day:%y%m%d}{old_id[12:]}") for day in born
                for scheme in ("uscc", "reg_no")}
    assert not guesses & set(keys.values()), keys


def test_the_api_answers_alike_for_every_key_it_may_not_show(cli, tmp_path: Path) -> None:
    """`GET /v1/entities/{key}` without a key told its refusals apart: "no entity with key or identifier
    'PFFFF…'" for a key never issued, "this person is on no public list" for the key of 张建国, whose
    listing had ended (he paid): anyone holding a key seen on an old list page learnt that it is a
    person on record, delisted since; and "…never by an ID number" for an ID number. Now one answer."""
    with time_machine.travel(TODAY, tick=False):
        listed(cli, tmp_path, [court_row("（2026）京0105执100号", "张建国", ZHANG)])
        listing = run(cli, "listing", "list", "--entity", ZHANG)[0]
        run(cli, "listing", "end", listing["id"], "--reason", "performed", "--on", "2026-11-02")
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                answers = {what: http.get(f"/v1/entities/{key}") for what, key in (
                    ("delisted person", listing["entity"]), ("never issued", "P" + "F" * 16), ("ID number", ZHANG))}
        finally:
            engine.dispose()
    assert {answer.status_code for answer in answers.values()} == {404}
    assert len({answer.text for answer in answers.values()}) == 1, {w: a.text for w, a in answers.items()}


def test_an_id_number_wrapped_onto_an_indented_line_is_masked(cli, tmp_path: Path) -> None:
    """A court pasted a judgment's paragraph as its text was laid out: the guarantor's ID number wrapped
    at the line's end, the next line indented with a Chinese paragraph's two ideographic spaces (or
    a text export's spaces). A line break alone between digits was read through, but not with the
    indentation after it: 小米's page and `/v1/entities` showed 王芳's number, in two pieces."""
    from test_trust_adversarial_5 import _public_texts, _xiaomi_with_court_text

    wang_fang = resident_id("320102", dt.date(1988, 6, 30), 145)
    text = (f"担保人王芳（公民身份号码{wang_fang[:12]}\r\n\u3000\u3000{wang_fang[12:]}）、"
            f"赵强（{LI[:10]}\n    {LI[10:]}）承担连带责任")
    with time_machine.travel(TODAY, tick=False):
        _xiaomi_with_court_text(cli, tmp_path, text)
        for path, shown in _public_texts(cli.url).items():
            assert "担保人王芳" in shown, path
            seen = re.sub(r"\s", "", shown)
            assert "19880630" not in seen and "19851123" not in seen, path
            assert f"{wang_fang[:6]}********{wang_fang[-4:]}" in shown and f"{LI[:6]}********{LI[-4:]}" in shown, path


def test_a_firm_whose_name_holds_an_address_word_is_named_whole(cli, tmp_path: Path) -> None:
    """北京住总集团有限责任公司 (a state-owned builder) and 北京地址科技有限公司: the address rule read
    住 and 地址 as the start of a person's address, so every public surface named the firms 北京住***
    and 北京地址***: the page, `/v1/entities`, the search results, the list export. An address word
    glued to the rest of a name ending in a legal form, with no place in it, is a firm's name."""
    firms = {uscc("91110000101123456"): "北京住总集团有限责任公司", uscc("91110108MA01AD001"): "北京地址科技有限公司"}
    cli("ingest", write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"],
                            [[code, name, "有限责任公司", "刘某", "1993-03-01", "存续"] for code, name in firms.items()]),
        "--authority", "samr", "--category", "registration")
    engine = open_engine(cli.url)
    try:
        with TestClient(create_app(engine, load_pack("cn"))) as http:
            for code, name in firms.items():
                assert http.get(f"/v1/entities/{code}").json()["name"] == name
                assert name in http.get(f"/entities/{code}").text
                assert name in http.get("/search", params={"q": name[2:6]}).text
    finally:
        engine.dispose()
    from xinyong.domain.privacy import mask_text

    assert mask_text("被执行人周八，住北京市朝阳区某某公司") == "被执行人周八，住***"  # a person's address still
