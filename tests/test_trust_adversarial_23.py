"""Matching probed as a listed firm trying to pass a screening under a name or code written another
way, and as an innocent firm that must not be sanctioned in another's place: record resolution and
screening by name and code, single and batch. Real public firm names, codes with valid check
characters. Each test is a defect found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import time_machine

from test_trust_adversarial import COURT_HEADERS, TODAY, WANG, court_row, listed_world
from worlds import run, uscc, write_csv

HONGDA_BEIJING = uscc("91110105MA01HD001")
HONGDA_SHANGHAI = uscc("91310115MA1HD0002")
PINGAN = uscc("91310000MA1FP0033")
PINGAN_BEIJING = uscc("91110105MA01P0044")
QIHOO = uscc("91120116MA05X4E00")
REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"]


def court_listed(cli, folder: Path, register: list[list[str]], listed: dict[str, str]) -> None:
    """The register's firms; those in `listed` (code -> name as the court writes it) on the court's
    list, effective from 2026-10-25."""
    cli("ingest", write_csv(folder / "register.csv", REGISTER_HEADERS, register),
        "--authority", "samr", "--category", "registration")
    court = write_csv(folder / "court.csv", COURT_HEADERS, [
        court_row(f"（2026）京0105执{300 + k}号", name, code) for k, (code, name) in enumerate(listed.items())])
    cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    run(cli, "evaluate", "--as-of", "2026-10-10")
    for listing in run(cli, "listing", "list", "--state", "proposed"):
        cli("listing", "notify", listing["id"], "--on", "2026-10-14", "--actor", "officer", "--reason", "served")
    run(cli, "process", "--as-of", "2026-10-30")


def batch_results(cli, folder: Path, rows: list[list[str]]) -> list[dict]:
    batch = write_csv(folder / "batch.csv", ["统一社会信用代码", "企业名称"], rows)
    cli("screen", "--batch", batch, "--action", "public_procurement", "-o", folder / "results.jsonl")
    return [json.loads(line) for line in (folder / "results.jsonl").read_text(encoding="utf-8").splitlines()]


def test_a_listed_firm_giving_its_namesakes_or_head_offices_code_in_a_batch_is_never_allowed(cli, tmp_path: Path) -> None:
    """The court listed 北京宏达贸易有限公司 and the registered 中国平安财产保险股份有限公司北京分公司 (its
    own code). A bank's batch row gave the listed firm's own name beside the code of its clean
    namesake 上海宏达贸易有限公司, or the listed branch's name beside its head office's code: both were
    `allow`. Screening's check of a name beside a code (`name_disagrees`) took any name of the same
    core for the code's firm's, in another place too, and any branch's name for its head office's,
    the branch registered and listed itself; resolution sends such a record to review ("code belongs
    to another firm"). Now the batch answers as resolution judges: refer, with the name's candidates."""
    with time_machine.travel(TODAY, tick=False):
        court_listed(cli, tmp_path, [
            [HONGDA_BEIJING, "北京宏达贸易有限公司", "有限责任公司", "张伟", "2012-03-03", "存续"],
            [HONGDA_SHANGHAI, "上海宏达贸易有限公司", "有限责任公司", "李娜", "2014-05-05", "存续"],
            [PINGAN, "中国平安财产保险股份有限公司", "股份有限公司", "谢永林", "2002-12-24", "存续"],
            [PINGAN_BEIJING, "中国平安财产保险股份有限公司北京分公司", "分公司", "王军", "2003-06-06", "存续"],
        ], {HONGDA_BEIJING: "北京宏达贸易有限公司", PINGAN_BEIJING: "中国平安财产保险股份有限公司北京分公司"})
        results = batch_results(cli, tmp_path, [
            [HONGDA_SHANGHAI, "北京宏达贸易有限公司"],  # the listed firm's name, its namesake's code
            [HONGDA_SHANGHAI, "北京宏达贸易"],  # its short name, place first
            [PINGAN, "中国平安财产保险股份有限公司北京分公司"],  # the listed branch's name, its head office's code
            [HONGDA_SHANGHAI, "上海宏达贸易有限公司"],  # the firm's own name and code
            [HONGDA_SHANGHAI, "宏达贸易有限公司"],  # its name without the place: its own
            [PINGAN, "中国平安财产保险股份有限公司上海分公司"],  # an unregistered branch: the head office's
        ])
        assert [(r["decision"], r["match"]) for r in results] == [
            ("refer", "code_and_name_disagree")] * 3 + [("allow", None)] * 3
        assert [r["best_candidate"] for r in results[:3]] == [HONGDA_BEIJING, HONGDA_BEIJING, PINGAN_BEIJING]


def test_a_listed_firms_name_with_arabic_digits_is_its_registered_name(cli, tmp_path: Path) -> None:
    """A firm's name is registered in Chinese characters, its numbers too: 三六零安全科技股份有限公司. The
    court wrote its case against 360安全科技股份有限公司 with no code, as the firm signs itself: the case
    made a new entity of that name, listed in its place, and 三六零 screened by its code was `allow`.
    Screened by name, 360安全科技股份有限公司 and ３６０安全科技 (full width) were `allow` beside the listed
    三六零, and 三六〇 (the other zero) only `refer`. Now digits compare as the Chinese numerals the
    register writes (〇 as 零): the case is 三六零's, and every writing of its name is its own."""
    with time_machine.travel(TODAY, tick=False):
        court_listed(cli, tmp_path, [
            [QIHOO, "三六零安全科技股份有限公司", "股份有限公司", "周鸿祎", "2016-11-18", "存续"],
            [PINGAN, "中国平安财产保险股份有限公司", "股份有限公司", "谢永林", "2002-12-24", "存续"],
        ], {"": "360安全科技股份有限公司"})
        records = run(cli, "entity", "show", QIHOO)["records"]
        assert [(r["category"], r["subject_name"], r["link"]["method"]) for r in records
                if r["category"] == "court_defaulter"] == [("court_defaulter", "360安全科技股份有限公司", "exact_name")]
        assert run(cli, "screen", QIHOO, "--action", "public_procurement")["decision"] == "deny"
        for name in ("360安全科技股份有限公司", "３６０安全科技", "三六〇安全科技股份有限公司"):
            answer = run(cli, "screen", "--name", name, "--action", "public_procurement")
            assert (answer["decision"], answer["subject"]["key"]) == ("deny", QIHOO), name
        # an English name keeps its digits; a clean firm's name is still its own
        assert run(cli, "screen", "--name", "中国平安财产保险股份有限公司", "--action", "public_procurement")[
            "decision"] == "allow"


WANG_SHOP = uscc("92440305MA5WJG001")  # an individual business without a trade name: its operator's name


def test_a_listed_persons_name_is_referred_when_an_individual_business_bears_it(cli, tmp_path: Path) -> None:
    """The court listed the person 王建国 (by his ID number). An individual business without a trade name
    is registered under its operator's name: a 个体工商户 named 王建国, nothing against it. Screened by
    the name 王建国 (or 王建國, 王 建国), the business was chosen as the only registered name that fits and
    the answer was `allow`: the listed persons of a name were looked up only when no firm was chosen.
    Now they are looked up always: refer, the listed person among the candidates (a bare name never
    decides for a person); the business's own code still answers for the business alone."""
    with time_machine.travel(TODAY, tick=False):
        shop = write_csv(tmp_path / "shop.csv", ["统一社会信用代码", "企业名称", "企业类型", "经营者", "成立日期", "登记状态"],
                         [[WANG_SHOP, "王建国", "个体工商户", "王建国", "2015-01-01", "存续"]])
        cli("ingest", shop, "--authority", "samr", "--category", "registration")
        listed_world(cli, tmp_path)
        person = run(cli, "entity", "show", WANG)["key"]
        for name in ("王建国", "王建國", "王 建国"):
            answer = run(cli, "screen", "--name", name, "--action", "public_procurement")
            assert (answer["decision"], answer["subject"]["key"]) == ("refer", WANG_SHOP), name
            assert [c["entity"] for c in answer["candidates"]] == [WANG_SHOP, person], name
        assert run(cli, "screen", WANG_SHOP, "--action", "public_procurement")["decision"] == "allow"
