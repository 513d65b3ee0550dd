"""Security and privacy of the public surfaces under a pack of another jurisdiction, probed as a data
broker would: a pack declares a scheme of persons' numbers with a bare `pattern` (a US social security
number, which no python-stdnum validator checks here), and a court lists a judgment debtor by it. Each
test is a defect found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import time_machine
from fastapi.testclient import TestClient

from test_trust_adversarial import TODAY
from test_trust_adversarial_16 import COURT_HEADERS, XIAOMI, court_row, listed
from worlds import run, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import PACKS_DIR, PackError, load_pack
from xinyong.store.db import open_engine

SSN = "219099999"  # the Social Security Administration's own specimen number (printed on sample cards)
PERSON_SSN = """
identifiers:
  - {scheme: uscc, validator: builtin, primary: true}
  - {scheme: resident_id, validator: builtin}
  - {scheme: ssn, pattern: '[0-9]{9}', person: true}
"""


def pack_file(folder: Path, identifiers: str) -> Path:
    path = folder / "us-test.yaml"
    path.write_text(f"extends: {PACKS_DIR / 'cn' / 'pack.yaml'}\ncode: us-test\nversion: '1'\nlanguage: en\n"
                    f"{identifiers}", encoding="utf-8")
    return path


def listed_by_ssn(cli, folder: Path, name: str = "周八", obligation: str = "") -> Path:
    """小米 registered; 周八, a judgment debtor the court names by his SSN, listed and in force."""
    pack = pack_file(folder, PERSON_SSN)
    cli("init", "--pack", pack)
    register = write_csv(folder / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"],
                         [[XIAOMI, "小米科技有限责任公司", "有限责任公司", "雷军", "2010-03-03", "存续"]])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    cli("ingest", write_csv(folder / "court.csv", COURT_HEADERS, [court_row("（2026）京0105执100号", name, SSN, obligation)]),
        "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    run(cli, "evaluate", "--as-of", "2026-10-10")
    (listing,) = run(cli, "listing", "list")
    for day in ("2026-10-11", "2026-10-12", "2026-10-13"):
        cli("listing", "remind", listing["id"], "--on", day, "--actor", "clerk", "--reason", "reminder")
    cli("listing", "notify", listing["id"], "--on", "2026-10-14", "--actor", "officer", "--reason", "served")
    run(cli, "process", "--as-of", "2026-10-30")
    return pack


def test_a_packs_own_scheme_of_persons_numbers_is_masked_and_never_searched(cli, tmp_path: Path) -> None:
    """A pack declared `ssn` (a bare pattern: the schema refused only python-stdnum's validators of
    persons' numbers) and a court listed 周八 by his SSN. Every public surface masked only resident_id:
    the entity's API file and page showed `ssn 219099999` whole, the search page listed it under his
    name, `/search?q=219099999` found him by it and `/v1/entities/219099999` answered with his file (an
    oracle confirming whose number it is). Now a scheme declared `person: true` is masked (last two
    characters kept), never searched and never a public lookup key."""
    with time_machine.travel(TODAY, tick=False):
        pack_path = listed_by_ssn(cli, tmp_path)
        pack = load_pack(str(pack_path))
        assert pack.person_schemes == {"resident_id", "ssn"}
        (listing,) = run(cli, "listing", "list")
        key = listing["entity"]
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, pack)) as http:
                file = http.get(f"/v1/entities/{key}")
                assert file.status_code == 200 and SSN not in file.text
                assert {"scheme": "ssn", "value": "*******99", "verified": True} in file.json()["identifiers"]
                page = http.get(f"/entities/{key}")
                assert page.status_code == 200 and "周八" in page.text and SSN not in page.text
                by_name = http.get("/search", params={"q": "周八"})
                assert key in by_name.text and SSN not in by_name.text
                by_number = http.get("/search", params={"q": SSN})
                assert key not in by_number.text
                assert http.get(f"/v1/entities/{SSN}").status_code == 404
                assert http.get(f"/entities/{SSN}").status_code == 404
                assert SSN not in http.get("/v1/lists/court_defaulters/export.csv").text
        finally:
            engine.dispose()
        # the open data files too
        out = tmp_path / "site"
        cli("publish", "--out", out)
        dumped = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in out.rglob("*") if p.is_file()
                           and p.suffix in (".json", ".jsonl", ".csv", ".ndjson"))
        assert "周八" in dumped or key in dumped
        assert SSN not in dumped


@pytest.mark.parametrize(("entry", "problem"), [
    # a validator of persons' numbers is declared as such...
    ("{scheme: nir, validator: stdnum.fr.nir}", "checks natural persons' numbers"),
    # ...a firm's built-in scheme is not a person's, and no register is keyed by persons' numbers
    ("{scheme: uscc, validator: builtin, person: true}", "numbers organisations"),
    ("{scheme: ssn, pattern: '[0-9]{9}', person: true, primary: true}", "register's key"),
])
def test_the_schema_reads_which_schemes_number_persons(tmp_path: Path, entry: str, problem: str) -> None:
    with pytest.raises(PackError, match="identifiers") as refused:
        load_pack(str(pack_file(tmp_path, f"identifiers:\n  - {entry}\n")))
    assert problem in str(refused.value)
    accepted = load_pack(str(pack_file(tmp_path, "identifiers:\n  - {scheme: uscc, validator: builtin, primary: true}\n"
                                                 "  - {scheme: nir, validator: stdnum.fr.nir, person: true}\n")))
    assert accepted.person_schemes == {"resident_id", "nir"}
    assert load_pack("cn").person_schemes == {"resident_id"}


def test_a_persons_number_of_the_packs_own_scheme_written_in_free_text_is_masked(cli, tmp_path: Path) -> None:
    """The court wrote 周八's SSN into his name cell and into the obligation, as American clerks write
    it (219-09-9999). mask_text knew only Chinese ID, mobile and travel document numbers: the entity's
    API file and page, the search page, the list's export, the PDF report and the open data files
    showed both whole. Now the pack's own schemes of persons' numbers (`Pack.person_numbers`) are
    masked in every free text of every public surface, written with dashes or spaces or not."""
    written = "219-09-9999"
    with time_machine.travel(TODAY, tick=False):
        pack_path = listed_by_ssn(cli, tmp_path, name=f"周八（SSN {written}）",
                                  obligation=f"被执行人周八（SSN {written}）支付货款人民币10万元")
        pack = load_pack(str(pack_path))
        (listing,) = run(cli, "listing", "list")
        key = listing["entity"]

        def leaks(text: str) -> bool:
            return SSN in text or written in text or "9999" in text.replace("*******99", "")

        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, pack)) as http:
                file = http.get(f"/v1/entities/{key}")
                assert file.status_code == 200 and "支付货款" in file.text and not leaks(file.text)
                assert "SSN *******99" in json.dumps(file.json(), ensure_ascii=False)
                page = http.get(f"/entities/{key}")
                assert page.status_code == 200 and "支付货款" in page.text and not leaks(page.text)
                by_name = http.get("/search", params={"q": "周八"})
                assert key in by_name.text and not leaks(by_name.text)
                assert key not in http.get("/search", params={"q": "周八（SSN 219"}).text  # no oracle by the name
                export = http.get("/v1/lists/court_defaulters/export.csv")
                assert "周八" in export.text and not leaks(export.text)
                report = http.get(f"/entities/{key}/report.pdf")
                assert report.status_code == 200
                (tmp_path / "report.pdf").write_bytes(report.content)
                text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(tmp_path / "report.pdf"), "-"],
                                      capture_output=True, text=True, check=True).stdout
                assert "支付货款" in text and not leaks(text)
        finally:
            engine.dispose()
        out = tmp_path / "site"
        cli("publish", "--out", out)
        dumped = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in out.rglob("*") if p.is_file()
                           and p.suffix in (".json", ".jsonl", ".csv", ".ndjson"))
        assert "支付货款" in dumped and not leaks(dumped)



def test_a_subscription_never_finds_an_entity_by_a_persons_number_of_the_packs_scheme(
        cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bank's screening key subscribed to `219099999`, 周八's SSN: the subscription was made and named
    his entity key (a confirmation of whose number it is, and a watch of a person not by key). Now a
    number of the pack's persons' schemes finds no entity, as an unknown code does."""
    from xinyong.services.operations.keys import ApiKey, create_key
    from xinyong.services.publication.webhooks import SubscriptionError, create_subscription

    monkeypatch.setenv("XINYONG_WEBHOOK_ALLOW_PRIVATE", "1")
    with time_machine.travel(TODAY, tick=False):
        pack = load_pack(str(listed_by_ssn(cli, tmp_path)))
        (listing,) = run(cli, "listing", "list")
        engine = open_engine(cli.url)
        try:
            _secret, stored = create_key(engine, pack, "commercial_bank", ["screen"])
            key = ApiKey(stored["id"], "commercial_bank", "test", frozenset({"screen"}), 50.0, 100)
            for code in (SSN, "219-09-9999"):
                with pytest.raises(SubscriptionError) as refused:
                    create_subscription(engine, pack, key, [code], "http://127.0.0.1:9/hook")
                assert refused.value.status == 404 and listing["entity"] not in str(refused.value), code
        finally:
            engine.dispose()


def test_a_hong_kong_or_macau_identity_card_number_is_masked_by_its_shape(cli, tmp_path: Path) -> None:
    """The court wrote into 小米's obligation the guarantors a Hong Kong and a Macau resident, by their
    identity cards' numbers and no word naming them (香港居民陈大文（A123456(7)）, 澳门居民李四1234567(8)).
    mask_text found such numbers only after 身份证, 证件号码, HKID...: the entity's API file and page and
    the open data showed both whole. The check character in brackets makes the shape theirs: now masked
    (last two characters kept), with or without the word."""
    obligation = "支付货款，由香港居民陈大文（A123456(7)）、澳门居民李四1234567（8）承担连带保证责任"
    with time_machine.travel(TODAY, tick=False):
        listed(cli, tmp_path, [court_row("（2026）京0108执200号", "小米科技有限责任公司", XIAOMI, obligation)])
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                for path in (f"/v1/entities/{XIAOMI}", f"/entities/{XIAOMI}"):
                    shown = http.get(path).text
                    assert "承担连带保证责任" in shown, path
                    assert "123456" not in shown and "1234567" not in shown, path
                    assert "陈大文（******67）" in shown and "李四******78" in shown, path
        finally:
            engine.dispose()
        out = tmp_path / "site"
        cli("publish", "--out", out)
        dumped = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in out.rglob("*") if p.is_file()
                           and p.suffix in (".json", ".jsonl", ".csv", ".ndjson"))
        assert "承担连带保证责任" in dumped and "123456" not in dumped


def test_a_fifteen_digit_number_of_a_packs_person_scheme_keeps_only_its_last_two_characters() -> None:
    """A French NIR has 15 digits, as an old Chinese ID number: it was masked as one, its first six
    (sex, birth year and month, département) shown. A pack's own person scheme is masked first."""
    from xinyong.domain.privacy import mask_identifier

    masked = mask_identifier("nir", "185057800608491", frozenset({"resident_id", "nir"}))
    assert masked.endswith("91") and "1850" not in masked and "0084" not in masked
