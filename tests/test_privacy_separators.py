"""Probe: a person's ID number written in free text with a no-break space between its groups.

Court and penalty texts are often pasted from web pages or word processors, where the space between
the groups of an ID number is U+00A0 (no-break space). `domain.privacy.mask_text` knows one ASCII
space, dashes and the ideographic space as separators, not U+00A0, a tab or a line break: the
whole number is shown on the firm's public page, in /v1/entities and in the open-data dump.
"""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest

from worlds import resident_id, serving, uscc, write_csv
from xinyong.domain.privacy import mask_text

FIRM = uscc("91110108MA01JQ8R3")
NAME = "北京京东方显示技术有限公司"
DEBTOR_ID = resident_id("110108", dt.date(1979, 4, 2), 31)
NBSP = "\u00a0"
GROUPED = f"{DEBTOR_ID[:6]}{NBSP}{DEBTOR_ID[6:14]}{NBSP}{DEBTOR_ID[14:]}"


@pytest.mark.parametrize("separator", ["\u00a0", "\t", "\n", "  ", "\u2009", "\u202f"],
                         ids=["nbsp", "tab", "newline", "two-spaces", "thin-space", "narrow-nbsp"])
def test_an_id_number_grouped_by_any_white_space_is_masked(separator: str) -> None:
    text = f"被执行人李四，公民身份号码{DEBTOR_ID[:6]}{separator}{DEBTOR_ID[6:14]}{separator}{DEBTOR_ID[14:]}"
    assert DEBTOR_ID not in re.sub(r"\s", "", mask_text(text)), repr(mask_text(text))


def test_an_id_number_with_no_break_spaces_in_a_court_text_is_not_public(cli, tmp_path) -> None:
    write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"],
              [[FIRM, NAME, "有限责任公司", "陈炎顺", "2003-05-12", "存续"]])
    headers = ["案号", "被执行人姓名/名称", "统一社会信用代码", "执行法院", "生效法律文书确定的义务", "被执行人的履行情况",
               "失信被执行人行为具体情形", "发布时间"]
    write_csv(tmp_path / "court.csv", headers, [
        ["(2025)京0108执501号", NAME, FIRM, "北京市海淀区人民法院",
         f"被执行人与担保人李四（公民身份号码{GROUPED}）连带给付货款", "全部未履行",
         "有履行能力而拒不履行生效法律文书确定义务", "2025-08-01"]])
    cli("ingest", tmp_path / "register.csv", "--authority", "samr", "--category", "registration")
    cli("ingest", tmp_path / "court.csv", "--authority", "court", "--category", "court_defaulter")
    cli("resolve")
    cli("publish", "--out", tmp_path / "opendata")
    dump = (tmp_path / "opendata" / "full" / "records.jsonl").read_text(encoding="utf-8")
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=60) as http:
        api = http.get(f"/v1/entities/{FIRM}").text
        page = http.get(f"/entities/{FIRM}").text
    leaked = []
    for where, body in (("/v1/entities", api), ("/entities page", page), ("full/records.jsonl", dump)):
        assert "连带给付货款" in body, f"{where}: the court text is not there"
        compact = re.sub(r"\s|\\u00a0|&nbsp;|&#160;", "", body)
        if DEBTOR_ID in compact:
            leaked.append(where)
    assert not leaked, f"the ID number {DEBTOR_ID} is shown whole on: {', '.join(leaked)}"


@pytest.mark.parametrize("text", ["被执行人李四，户籍所在地江苏省南京市玄武区中山路18号", "被执行人李四，现居南京市玄武区中山路18号"],
                         ids=["huji", "xianju"])
def test_a_persons_address_after_other_usual_words_is_masked(text: str) -> None:
    """Court texts give a person's address as 户籍所在地 (registered residence) or 现居 (lives at) as often
    as 住址; `_ADDRESS` in domain/privacy.py knows only 住, 住址, 住所 and 地址."""
    assert "中山路18号" not in mask_text(text), mask_text(text)


@pytest.mark.parametrize("text", ["执行期间2023.01.1-2024.12.31", "文号2023/123/4567/8901", "第2019-12-3456-7890号"])
def test_fifteen_digits_broken_up_without_a_birth_date_are_no_id_number(text: str) -> None:
    """A date range or a document number broken up by dots, slashes or dashes stays whole; a
    first-generation ID number (a real YYMMDD after the region) broken up the same way does not."""
    assert mask_text(text) == text
    old = "110105650101123"
    for separator in (".", "/", "-", " "):
        written = f"身份证{old[:6]}{separator}{old[6:12]}{separator}{old[12:]}"
        assert "650101" not in mask_text(written), mask_text(written)
