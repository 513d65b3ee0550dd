"""Privacy and security, probed a fifth time with hand-made inputs the demo never sends: what an
attacker reads, and what an unlucky third party named in somebody else's file loses. Real public
company names, codes with valid check characters. Each test is a defect found and fixed (on SQLite
and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import stat
from pathlib import Path

import time_machine
from fastapi.testclient import TestClient

from test_trust_adversarial import NAMES, TODAY, XIAOMI
from worlds import resident_id, run, uscc, write_csv
from xinyong.api.app import create_app
from xinyong.domain.identifiers import is_valid_org_code, mask_person_id
from xinyong.domain.pack import load_pack
from xinyong.store.db import open_engine

REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"]
COURT_HEADERS = ["案号", "被执行人姓名/名称", "身份证号码/组织机构代码", "执行法院", "生效法律文书确定的义务",
                 "被执行人的履行情况", "失信被执行人行为具体情形", "发布时间"]
# a foreign applicant's passport whose number happens to pass the organisation-code check (1 in 11 do)
PASSPORT = "E98765432"
HKID = "A765432"  # written A765432(1)
GUARANTOR = resident_id("310115", dt.date(1983, 4, 21), 518)  # a third party named in 小米's court record


def _xiaomi_with_court_text(cli, folder: Path, obligation: str) -> None:
    """小米 registered, and a court's record about it whose obligation reads `obligation`."""
    register = write_csv(folder / "register.csv", REGISTER_HEADERS,
                         [[XIAOMI, NAMES[XIAOMI], "有限责任公司", "雷军", "2010-03-03", "存续"]])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    court = write_csv(folder / "court.csv", COURT_HEADERS, [
        ["（2026）京0108执201号", NAMES[XIAOMI], XIAOMI, "北京市海淀区人民法院", obligation, "全部未履行",
         "违反限制消费令", "2026-10-02"]])
    cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")


def _public_texts(url: str) -> dict[str, str]:
    """小米's page and public JSON, as text."""
    engine = open_engine(url)
    try:
        with TestClient(create_app(engine, load_pack("cn"))) as http:
            pages = {path: http.get(path) for path in (f"/entities/{XIAOMI}", f"/v1/entities/{XIAOMI}")}
    finally:
        engine.dispose()
    assert all(page.status_code == 200 for page in pages.values()), pages
    return {path: html.unescape(page.text) for path, page in pages.items()}


def test_a_passport_number_that_passes_the_organisation_code_check_is_masked(cli, tmp_path: Path) -> None:
    """A court wrote into 小米's record that the applicant was "John Smith（护照号码：E98765432）".
    The passport word was found, but the number passes the organisation-code check (as 1 in 11
    numbers of that shape do), so it was taken for a firm's code and shown whole on 小米's page and
    in `/v1/entities`. A number after 护照 shaped like a passport is a passport's, whatever its check."""
    assert is_valid_org_code(PASSPORT)
    with time_machine.travel(TODAY, tick=False):
        _xiaomi_with_court_text(cli, tmp_path, f"向申请人John Smith（护照号码：{PASSPORT}）支付货款")
        for path, text in _public_texts(cli.url).items():
            assert "John Smith" in text, path  # the record is there
            assert PASSPORT not in text and PASSPORT[1:] not in text, path
            assert "护照号码：*******32" in text, path


def test_passport_and_identity_card_numbers_named_in_english_are_masked(cli, tmp_path: Path) -> None:
    """Courts and regulators write a foreign party's documents in English: "Passport No. G12345678",
    "HKID A765432(1)", "ID No. …". Masking knew the Chinese words only (护照, 身份证...), so the
    numbers went out whole on 小米's page and in `/v1/entities`."""
    passport = "G1234567"  # a 7-digit one: not an organisation code's shape
    text = f"支付申请人John Smith (Passport No. {passport}; HKID {HKID}(1)) 及 Mary Chan (ID card no. 12345678) 货款"
    with time_machine.travel(TODAY, tick=False):
        _xiaomi_with_court_text(cli, tmp_path, text)
        for path, shown in _public_texts(cli.url).items():
            assert "John Smith" in shown and "Mary Chan" in shown, path
            for number in (passport, passport[1:], HKID, HKID[1:], "12345678"):
                assert number not in shown, (path, number)
            assert "Passport No. ******67" in shown and "HKID ******21" in shown, path


def test_the_portal_masks_third_parties_named_in_the_subjects_own_records(cli, tmp_path: Path) -> None:
    """小米 signs in to its portal and reads its own court record, whose obligation names the guarantor
    张伟 by his resident ID number, his mobile and his passport. The portal masked only a field that
    was an ID number whole: in free text the guarantor's ID number, passport and mobile went to 小米
    as the court wrote them, while every public surface masks them. 小米's own code stays whole."""
    mobile = "13912345678"
    obligation = f"支付货款，担保人张伟（身份证号{GUARANTOR}，护照号码{PASSPORT}，电话{mobile}）承担连带责任"
    with time_machine.travel(TODAY, tick=False):
        _xiaomi_with_court_text(cli, tmp_path, obligation)
        code = json.loads(cli("subject", "credential", "create", XIAOMI, "--json").stdout)["code"]
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                form = http.get("/portal").text
                token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
                page = http.post("/portal/sign-in", data={"code": code, "csrf_token": token})
        finally:
            engine.dispose()
    assert page.status_code == 200 and page.url.path == "/portal/file", page.text[:300]
    shown = html.unescape(page.text)
    assert "担保人张伟" in shown and XIAOMI in shown  # the record, and 小米's own code
    for secret in (GUARANTOR, GUARANTOR[6:14], PASSPORT, mobile):
        assert secret not in shown, secret
    assert mask_person_id(GUARANTOR) in shown and "139****5678" in shown


def test_files_naming_persons_are_readable_by_their_owner_only(cli, tmp_path: Path) -> None:
    """`export --format parquet` writes 0600 files in a 0700 folder; the other files that name persons
    by their whole ID numbers did not: `batch rejects -o` (the rejected rows as sent), `links export -o`
    (record keys end with the person's ID number), `screen --batch … -o` (who was screened, and the
    answer), and the
    store's folders of screening jobs (each upload and its results) and of subjects' attachments were
    created with the umask's modes (0644 files, 0755 folders: any local user could read them)."""
    from xinyong.services.intake.files import files_folder, store_files
    from xinyong.services.screening.jobs import create_job, jobs_folder

    previous = os.umask(0o022)
    try:
        with time_machine.travel(TODAY, tick=False):
            _xiaomi_with_court_text(cli, tmp_path, "支付货款")
            court = write_csv(tmp_path / "court-2.csv", COURT_HEADERS, [
                ["（2026）京0108执202号", "王建国", GUARANTOR, "北京市海淀区人民法院", "支付货款", "全部未履行",
                 "违反限制消费令", "2026-10-02"],
                ["", "张伟", GUARANTOR, "北京市海淀区人民法院", "支付货款", "全部未履行", "违反限制消费令", "2026-10-02"]])
            batch = run(cli, "ingest", court, "--authority", "court", "--category", "court_defaulter")
            assert batch["quarantined"] == 1
            run(cli, "resolve")
            rejects, links, screened = tmp_path / "rejects.csv", tmp_path / "links.csv", tmp_path / "screened.csv"
            links.write_text("left by an earlier export\n")
            os.chmod(links, 0o644)
            cli("batch", "rejects", batch["batch_id"], "-o", rejects)
            cli("links", "export", "-o", links)
            subjects = write_csv(tmp_path / "subjects.csv", ["identifier"], [[GUARANTOR]])
            cli("screen", "--batch", subjects, "--action", "high_consumption", "-o", screened)
            for path, person in ((rejects, GUARANTOR), (links, GUARANTOR), (screened, "王建国")):
                assert person in path.read_text(encoding="utf-8-sig"), path
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            engine = open_engine(cli.url)
            try:
                job = create_job(engine, f"identifier\n{GUARANTOR}\n".encode(), "csv", key_id=None, authority="court",
                                 purpose="supervision", action=None, as_of=None)
                (stored,) = store_files(engine, [("身份证复印件.pdf", b"%PDF-1.4 " + GUARANTOR.encode(), None)])
                for folder in (jobs_folder(engine), jobs_folder(engine) / job, files_folder(engine),
                               files_folder(engine) / stored.sha256[:2]):
                    assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
            finally:
                engine.dispose()
    finally:
        os.umask(previous)


def _console(http: TestClient, secret: str) -> None:
    form = http.get("/console").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    signed = http.post("/console/sign-in", data={"api_key": secret, "csrf_token": token})
    assert signed.status_code == 200 and signed.url.path == "/console", signed.text[:300]


def test_the_consoles_entity_page_needs_the_operate_scope_and_never_an_id_number(cli, tmp_path: Path) -> None:
    """The market regulator's upload clerk signs in to the console with a `submit:penalty` key: batches,
    its own records and rejects, nothing of due process. `/console/entities/{code}` asked no more than
    a signed-in key, took a resident ID number as the code, and showed the ownership view the console
    keeps for operators (persons named, ended relations): typing 王建国's ID number into the URL gave
    his name and page, where every other page reaches a person by the opaque key, and only with
    `operate`. Now the page needs `operate`, and an ID number in its URL is refused (404)."""
    wang = resident_id("440305", dt.date(1975, 3, 9), 271)
    with time_machine.travel(TODAY, tick=False):
        _xiaomi_with_court_text(cli, tmp_path, "支付货款")
        court = write_csv(tmp_path / "court-2.csv", COURT_HEADERS, [
            ["（2026）粤0305执100号", "王建国", wang, "深圳市南山区人民法院", "支付货款", "全部未履行", "违反限制消费令",
             "2026-10-02"]])
        cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
        run(cli, "resolve")
        person = run(cli, "entity", "show", wang)["key"]
        clerk = run(cli, "authority", "key", "create", "samr", "--scopes", "submit:penalty")["key"]
        officer = run(cli, "authority", "key", "create", "court", "--scopes", "operate")["key"]
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn")), follow_redirects=True) as http:
                _console(http, clerk)
                for code in (wang, person, XIAOMI):
                    page = http.get(f"/console/entities/{code}")
                    assert page.status_code == 403 and "王建国" not in page.text, (code, page.status_code)
            with TestClient(create_app(engine, load_pack("cn")), follow_redirects=True) as http:
                _console(http, officer)
                assert http.get(f"/console/entities/{person}").status_code == 200
                refused = http.get(f"/console/entities/{wang}")
                assert refused.status_code == 404 and "王建国" not in refused.text
        finally:
            engine.dispose()


def test_an_id_number_whose_check_character_is_a_lookalike_or_cut_off_is_masked(cli, tmp_path: Path) -> None:
    """A court typed 李娜's ID number with its check character X picked from the symbol list as the Roman
    numeral Ⅹ (U+2169), and cut 赵强's off (a column too narrow): "44010619900714109Ⅹ",
    "32010219870923456". Neither is 18 characters of digits and X, nor 15 digits, so 小米's page and
    `/v1/entities` showed all 17 digits (the check character follows from them). Now X's lookalikes
    (×, Ⅹ, Greek and Cyrillic X) count as X, and 17 digits with a region and a birth date are masked."""
    li_na = resident_id("440106", dt.date(1990, 7, 14), 109)
    zhao = resident_id("320102", dt.date(1987, 9, 23), 456)
    assert li_na.endswith("X")
    text = f"担保人李娜（{li_na[:17]}Ⅹ）、赵强 {zhao[:17]} 承担连带责任；账号 62220212345678901"
    with time_machine.travel(TODAY, tick=False):
        _xiaomi_with_court_text(cli, tmp_path, text)
        for path, shown in _public_texts(cli.url).items():
            assert "担保人李娜" in shown and "62220212345678901" in shown, path  # a bank account is no ID number
            for number in (li_na[:17], zhao[:17], li_na[6:14], zhao[6:14]):
                assert number not in shown, (path, number)
            assert mask_person_id(li_na) in shown and f"{zhao[:6]}********{zhao[14:17]}" in shown, path


def test_a_mobile_number_written_with_its_country_code_is_masked(cli, tmp_path: Path) -> None:
    """A court copied the guarantor's mobile number from a contact list as "+8613912345678": the 86
    before it is a digit, so the mobile rule (no digit before) never saw it, and 小米's page and
    `/v1/entities` showed it whole, where "+86 139 1234 5678" was masked."""
    with time_machine.travel(TODAY, tick=False):
        _xiaomi_with_court_text(cli, tmp_path, "担保人张伟，联系电话+8613912345678，承担连带责任")
        for path, shown in _public_texts(cli.url).items():
            assert "担保人张伟" in shown, path
            assert "13912345678" not in shown and "+86139****5678" in shown, path


def test_the_console_never_shows_an_id_number_with_a_typo_whole(cli, tmp_path: Path) -> None:
    """A court typed 王建国's ID number with a wrong last digit. The record waits for review, keyed by
    the number; the console masked the key (an ID number with a typo is still somebody's) but showed
    the subject code beside it whole, on the review queue and the court's records page. Now the code
    is masked by the key's rule: a firm's code stays whole."""
    wang = resident_id("440305", dt.date(1975, 3, 9), 271)
    typo = wang[:17] + ("1" if wang[17] != "1" else "2")
    with time_machine.travel(TODAY, tick=False):
        _xiaomi_with_court_text(cli, tmp_path, "支付货款")
        court = write_csv(tmp_path / "court-2.csv", COURT_HEADERS, [
            ["（2026）粤0305执100号", "王建国", typo, "深圳市南山区人民法院", "支付货款", "全部未履行", "违反限制消费令",
             "2026-10-02"]])
        cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
        run(cli, "resolve")
        assert [item["subject_name"] for item in run(cli, "review", "list")] == ["王建国"]
        officer = run(cli, "authority", "key", "create", "court", "--scopes", "operate")["key"]
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn")), follow_redirects=True) as http:
                _console(http, officer)
                pages = {path: html.unescape(http.get(path).text) for path in ("/console/review", "/console/records")}
        finally:
            engine.dispose()
    for path, shown in pages.items():
        assert "王建国" in shown and mask_person_id(typo) in shown, path
        assert typo not in shown and typo[6:14] not in shown, path
    assert XIAOMI in pages["/console/records"]


def test_the_report_verification_page_masks_the_name_as_the_report_does(cli, tmp_path: Path) -> None:
    """An individual business was registered under a name holding its operator's ID number and mobile
    ("海淀区张三小吃店（经营者身份证…，电话…）"). Its page, the search and its credit report mask them;
    `/verify/{code}`, which anyone holding the report opens, printed the name as stored, whole."""
    shop = uscc("92110108MA0GT0015")
    owner = resident_id("110108", dt.date(1979, 2, 14), 315)
    with time_machine.travel(TODAY, tick=False):
        register = write_csv(tmp_path / "register.csv", REGISTER_HEADERS, [
            [shop, f"海淀区张三小吃店（经营者身份证{owner}，电话13812345678）", "个体工商户", "张三", "2015-03-03", "存续"]])
        cli("ingest", register, "--authority", "samr", "--category", "registration")
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                report = http.get(f"/entities/{shop}/report.pdf")
                assert report.status_code == 200
                page = http.get(f"/verify/{report.headers['X-Report-Code']}")
        finally:
            engine.dispose()
    assert page.status_code == 200
    shown = html.unescape(page.text)
    assert "海淀区张三小吃店" in shown
    for secret in (owner, owner[6:14], "13812345678"):
        assert secret not in shown, secret
    assert mask_person_id(owner) in shown and "138****5678" in shown


def test_a_foreigners_permanent_residence_card_number_is_masked(cli, tmp_path: Path) -> None:
    """The court named 小米's foreign guarantor by his permanent residence card (外国人永久居留身份证),
    whose number of the first series starts with a three-letter country code: "USA110073010122".
    The document rule knew numbers with one or two letters in front (passports, permits), so this one
    went out whole on 小米's page and in `/v1/entities`."""
    with time_machine.travel(TODAY, tick=False):
        _xiaomi_with_court_text(cli, tmp_path, "担保人John Smith（外国人永久居留身份证 USA110073010122）承担连带责任")
        for path, shown in _public_texts(cli.url).items():
            assert "担保人John Smith" in shown, path
            assert "110073010122" not in shown and "永久居留身份证 *************22" in shown, path


def test_an_address_after_hukou_suozaidi_is_masked(cli, tmp_path: Path) -> None:
    """Courts write a debtor's or guarantor's registered residence as 户口所在地 as often as 户籍所在地;
    the address rule knew only words with 住, 址, 籍 or 居, so "户口所在地：河北省保定市某某村12号" went
    out whole on 小米's page and in `/v1/entities`."""
    with time_machine.travel(TODAY, tick=False):
        _xiaomi_with_court_text(cli, tmp_path, "担保人王五，户口所在地：河北省保定市某某村12号，承担连带责任")
        for path, shown in _public_texts(cli.url).items():
            assert "担保人王五" in shown, path
            assert "某某村12号" not in shown and "户口所在地：***" in shown, path


def test_a_new_sqlite_store_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """`xinyong init` made the SQLite store (every record, persons' ID numbers whole, key and credential
    hashes) and its WAL with the umask's mode, 0644: any local user could copy the register, while its
    backups, exports and audit key are 0600. (A store on PostgreSQL is the server's to guard: this one
    is SQLite's alone.)"""
    from conftest import Cli

    previous = os.umask(0o022)
    try:
        store = tmp_path / "store.db"
        cli = Cli(f"sqlite:///{store}")
        cli("init")
        with time_machine.travel(TODAY, tick=False):
            _xiaomi_with_court_text(cli, tmp_path, "支付货款")
        files = [store, *(tmp_path / f"store.db{suffix}" for suffix in ("-wal", "-shm")
                          if (tmp_path / f"store.db{suffix}").exists())]
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        os.umask(previous)


def test_the_screening_index_file_is_readable_by_its_owner_only(cli, tmp_path: Path) -> None:
    """The screening index is kept as files beside the store (`x.db.screen-index`), mapped at start: the
    codes and persons' whole ID numbers among them. Its folder was made with the umask's mode (0755,
    files 0644): any local user could read every person's ID number from it. Now the folder is 0700."""
    from xinyong.services.screening.screen import ScreeningIndex
    from xinyong.services.screening.screen_index import index_folder

    wang = resident_id("440305", dt.date(1975, 3, 9), 271)
    previous = os.umask(0o022)
    try:
        with time_machine.travel(TODAY, tick=False):
            _xiaomi_with_court_text(cli, tmp_path, "支付货款")
            court = write_csv(tmp_path / "court-2.csv", COURT_HEADERS, [
                ["（2026）粤0305执100号", "王建国", wang, "深圳市南山区人民法院", "支付货款", "全部未履行",
                 "违反限制消费令", "2026-10-02"]])
            cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
            run(cli, "resolve")
            engine = open_engine(cli.url)
            try:
                ScreeningIndex.load(engine, load_pack("cn"), names=False)
                folder = index_folder(engine)
            finally:
                engine.dispose()
    finally:
        os.umask(previous)
    assert folder is not None and any(wang.encode() in path.read_bytes() for path in folder.rglob("*.bin"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
