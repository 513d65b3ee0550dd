"""Privacy of persons' ID numbers written into free text, probed as a court clerk in a hurry and as a
data broker would read the public surfaces: an ID number whose digits a form, a spreadsheet or a word
processor set apart more loosely than `mask_text` read (four spaces, 、 ~ • | * or commas, the birth
date in brackets), or wrote in superscript or circled digits. Real public firm names, ID numbers with
valid check characters. Each test is a defect found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import time_machine
from fastapi.testclient import TestClient

from test_trust_adversarial import TODAY
from test_trust_adversarial_16 import XIAOMI, court_row, listed
from worlds import resident_id
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.domain.privacy import mask_text
from xinyong.store.db import open_engine

ZHANG = resident_id("440305", dt.date(1988, 6, 15), 532)  # 张伟, Shenzhen 南山区: 440305198806155324
LI = resident_id("310104", dt.date(1985, 11, 23), 412)  # 李秀英, Shanghai 徐汇区: 310104198511234125
OLD_WANG = "440305750309271"  # 王建国's first-generation number (GB 11643-1989): born 1975-03-09

# How the digits of an ID number come set apart: as a form's boxes are copied (spaces of every kind, four
# or more), as a clerk lists or groups them (、 ~ ～ • · | * or a comma)
SEPARATORS = {"ideographic-spaces": "\u3000" * 4, "no-break-spaces": "\u00a0" * 4, "spaces": " " * 5,
              "enumeration-comma": "、", "tilde": "~", "fullwidth-tilde": "～", "bullet": "•",
              "middle-dots": "····", "asterisk": "*", "bar": "|", "comma": ",", "fullwidth-comma": "，"}


def _apart(number: str, separator: str) -> str:
    """Region, birth date and the rest, with `separator` between them."""
    born = 12 if len(number) == 15 else 14
    return separator.join((number[:6], number[6:born], number[born:]))


@pytest.mark.parametrize("separator", SEPARATORS.values(), ids=SEPARATORS.keys())
def test_an_id_number_set_apart_loosely_is_masked_whole(separator: str) -> None:
    """The guarantor's ID number written as a form's boxes copy it (`440305　　　　19880615　　　　5324`) or
    grouped with 、, ~, •, |, * or commas: `mask_text` read up to three spaces, dashes, dots or slashes
    between digits only, so every surface showed the number whole, birth date and all. Now a run of
    digits with anything but letters between them is read against an ID number's structure (a
    first-generation number's too, and one whose check character was cut off)."""
    for number, masked, born in ((ZHANG, "440305********5324", "19880615"), (OLD_WANG, "440305*****9271", "750309"),
                                 (ZHANG[:17], "440305********532", "19880615")):  # its check character cut off
        for text in (f"担保人张伟（身份证号码{_apart(number, separator)}）", f"担保人张伟{_apart(number, separator)}，"):
            shown = mask_text(text)
            assert masked in shown and born not in shown, (text, shown)


def test_an_id_number_with_its_birth_date_in_brackets_is_masked_whole() -> None:
    """`身份证号码为110101（19900307）7774`, the birth date bracketed as a clerk stresses it: the region was
    masked as a document's number (`****01（19900307）7774`), the birth date and the rest shown."""
    for text in (f"身份证号码为{ZHANG[:6]}（{ZHANG[6:14]}）{ZHANG[14:]}", f"担保人李秀英{LI[:6]}({LI[6:14]}){LI[14:]}"):
        shown = mask_text(text)
        assert "********" in shown and "19880615" not in shown and "19851123" not in shown, shown
        assert shown.endswith(("440305********5324", "310104********4125")), shown


@pytest.mark.parametrize("digits", ["⁰¹²³⁴⁵⁶⁷⁸⁹", "⓪①②③④⑤⑥⑦⑧⑨", "₀₁₂₃₄₅₆₇₈₉", "⓿❶❷❸❹❺❻❼❽❾"],
                         ids=["superscript", "circled", "subscript", "negative-circled"])
def test_an_id_number_in_superscript_or_circled_digits_is_masked(digits: str) -> None:
    """The ID number typed in superscript or circled digits (a font's or a symbol picker's): no decimal
    digits to `\\d`, so nothing read them, though anyone does. Now they are digits like any other."""
    for number in (ZHANG, OLD_WANG):
        written = number.translate(str.maketrans("0123456789", digits))
        for text in (f"担保人张伟{written}", f"担保人张伟{_apart(written, ' ')}"):
            shown = mask_text(text)
            assert shown.startswith("担保人张伟440305*") and written[6:12] not in shown, shown


@pytest.mark.parametrize("text", [
    "罚款1,234,567.89元，没收违法所得12,345,678.90元、23,456,789.01元",
    "2026年3月5日立案，（2026）京0108执200号，（2025）粤0305民初12345号",
    "执行期间2023.01.01-2024.12.31，联系电话010-62345678、0755-26543210，传真 021 5345 6789",
    "时间 2026-03-05 12:30:45.123，订单号 123456789012，凭证 1 2 3 4 5 6 7 8 9 0",
    "小米科技有限责任公司 91110108551385082Q，格力电器 91440400192548256N",
])
def test_ordinary_numbers_in_text_stay(text: str) -> None:
    """Amounts, dates, case numbers, phone numbers and firms' codes have no ID number's structure: shown."""
    assert mask_text(text) == text


def test_loosely_written_id_numbers_are_masked_on_the_entity_page_and_in_the_open_data(cli, tmp_path: Path) -> None:
    """The court wrote into 小米's obligation its guarantors' ID numbers, one with the birth date in
    brackets, one as a form's boxes copy it, one in circled digits, one first-generation grouped with 、:
    `/v1/entities`, the entity page and the open data (`xinyong publish`) showed all four whole."""
    circled = LI.translate(str.maketrans("0123456789", "⓪①②③④⑤⑥⑦⑧⑨"))
    obligation = (f"支付货款，由张伟（身份证号码为{ZHANG[:6]}（{ZHANG[6:14]}）{ZHANG[14:]}）、"
                  f"李秀英（{_apart(LI, chr(0x3000) * 4)}）、李秀英之女（{circled}）、"
                  f"王建国（{_apart(OLD_WANG, '、')}）承担连带保证责任")
    births = ("19880615", "19851123", "①⑨⑧⑤①①②③", "750309")
    with time_machine.travel(TODAY, tick=False):
        listed(cli, tmp_path, [court_row("（2026）京0108执200号", "小米科技有限责任公司", XIAOMI, obligation)])
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                for path in (f"/v1/entities/{XIAOMI}", f"/entities/{XIAOMI}"):
                    shown = http.get(path).text
                    assert "承担连带保证责任" in shown, path
                    assert "440305********5324" in shown and "440305*****9271" in shown, path
                    assert not [born for born in births if born in shown], path
        finally:
            engine.dispose()
        out = tmp_path / "site"
        cli("publish", "--out", out)
        dumped = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in out.rglob("*") if p.is_file()
                           and p.suffix in (".json", ".jsonl", ".csv", ".ndjson"))
        assert "承担连带保证责任" in dumped and not [born for born in births if born in dumped]


def test_an_id_number_set_apart_in_the_debtors_name_cell_is_masked_on_lists_exports_and_search(cli,
                                                                                             tmp_path: Path) -> None:
    """The court's system put the debtor's ID number into the name cell too, set apart as its form's boxes
    copy it (`张伟（440305　　　　19880615　　　　5324）`), or in superscript digits: the public list, its CSV
    and JSONL exports and the search results showed the name whole, birth date and all."""
    superscript = LI.translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
    rows = [court_row("（2026）粤0305执100号", f"张伟（{_apart(ZHANG, chr(0x3000) * 4)}）", ZHANG),
            court_row("（2026）沪0104执200号", f"李秀英{superscript}", LI)]
    with time_machine.travel(TODAY, tick=False):
        listed(cli, tmp_path, rows)
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                pages = {path: http.get(path).text for path in (
                    "/lists/court_defaulters", "/v1/lists/court_defaulters", "/v1/lists/court_defaulters/export.csv",
                    "/v1/lists/court_defaulters/export.jsonl", "/search?q=张伟", "/search?q=李秀英")}
        finally:
            engine.dispose()
    for path, shown in pages.items():
        assert "张伟(440305********5324)" in shown or path == "/search?q=李秀英", path
        assert "19880615" not in shown and superscript[6:14] not in shown, path
