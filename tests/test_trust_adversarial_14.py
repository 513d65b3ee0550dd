"""Name screening at a decision point probed as a clerk types a listed firm's name and as a clean firm
wrongly stopped: a name copied out of a sentence with its mark, quoted, carrying an invisible
character; the trade name with its industry written another way; a real firm whose trade name is a
place's name. Real public firm names, codes with valid check characters. Each test is a defect found
and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import time_machine

from test_trust_adversarial import COURT_HEADERS, TODAY, court_row
from worlds import run, uscc, write_csv

XIAOMI = uscc("91110108MA0XM0141")
HUAWEI = uscc("91440300MA5HW0142")
HUAWEI_DEVICE = uscc("91441900MA4HD0143")  # 华为终端: another legal person, registered, never listed
HUNAN_SILVER = uscc("91431000MA4BY0144")  # 湖南白银: its trade name is also the name of a city (白银市, 甘肃)
REGISTER = {XIAOMI: "小米科技有限责任公司", HUAWEI: "华为技术有限公司", HUAWEI_DEVICE: "华为终端有限公司",
            HUNAN_SILVER: "湖南白银股份有限公司"}
LISTED = (XIAOMI, HUAWEI, HUNAN_SILVER)


def names_world(cli, folder: Path) -> None:
    """Three firms on the court's list, effective from 2026-10-25, and a clean firm beside one of them."""
    register = write_csv(folder / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"],
                         [[code, name, "有限责任公司", "法人" + str(k), "2010-03-03", "存续"]
                          for k, (code, name) in enumerate(REGISTER.items())])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    court = write_csv(folder / "court.csv", COURT_HEADERS, [
        court_row(f"（2026）京0108执{200 + k}号", REGISTER[code], code) for k, code in enumerate(LISTED)])
    cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    run(cli, "evaluate", "--as-of", "2026-10-10")
    for code in LISTED:
        listing = run(cli, "listing", "list", "--entity", code)[0]["id"]
        cli("listing", "notify", listing, "--on", "2026-10-14", "--actor", "officer", "--reason", "served")
    run(cli, "process", "--as-of", "2026-10-30")


def screen(cli, name: str) -> dict:
    return run(cli, "screen", "--name", name, "--action", "public_procurement")


def test_a_listed_name_copied_with_a_mark_or_an_invisible_character_is_denied(cli, tmp_path: Path) -> None:
    """小米科技有限责任公司 copied out of a sentence with its mark (；！：?), between corner quotes
    「」, or with a soft hyphen a PDF left in it answered `refer` — or `allow`, for the quotes — while
    the same name with 。 or a comma was denied: normalisation dropped a hand-picked list of marks.
    Now every punctuation mark but the brackets, and every invisible character, is noise; alone, in a
    batch row, it is the listed firm's exact name and denied."""
    with time_machine.travel(TODAY, tick=False):
        names_world(cli, tmp_path)
        copied = ["小米科技有限责任公司；", "小米科技有限责任公司！", "小米科技有限责任公司：", "小米科技有限责任公司?",
                  "「小米科技有限责任公司」", "『小米科技有限责任公司』", "小米科技有限责任公司\u00ad", "小\u00ad米科技有限责任公司",
                  "华为技术有限公司；"]
        answers = [screen(cli, name) for name in copied]
        assert [(a["decision"], a["subject"] and a["subject"]["key"], a["match"]) for a in answers] == [
            ("deny", XIAOMI, "name")] * 8 + [("deny", HUAWEI, "name")]
        batch = write_csv(tmp_path / "batch.csv", ["企业名称"], [[name] for name in copied])
        out = tmp_path / "out.jsonl"
        cli("screen", "--batch", batch, "--action", "public_procurement", "-o", out)
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [(r["decision"], r["subject"]) for r in rows] == [("deny", XIAOMI)] * 8 + [("deny", HUAWEI)]


def test_a_listed_firms_trade_name_with_its_industry_written_another_way_is_referred(cli, tmp_path: Path) -> None:
    """With 小米科技有限责任公司 on the court's list, 小米技术有限责任公司 (技术 for 科技, as a clerk
    writes it) and 小米通讯技术有限公司 were `allow`: the cores shared their trade name's start but
    only an industry word's worth of similarity ("fair", capped below review). Now, at a decision
    point, a fair name with the same trade name's start is near: `refer`, the listed firm the
    candidate. 小米集团 (the group, named by its trade name) was `allow` too: now read as a short name
    of 小米's firms. A clean firm of another legal person is still never denied for its likeness."""
    with time_machine.travel(TODAY, tick=False):
        names_world(cli, tmp_path)
        for name, listed in (("小米技术有限责任公司", XIAOMI), ("小米通讯技术有限公司", XIAOMI), ("小米集团", XIAOMI),
                             ("华为科技有限公司", HUAWEI), ("湖南白银有色股份有限公司", HUNAN_SILVER)):
            answer = screen(cli, name)
            assert (answer["decision"], answer["subject"]) == ("refer", None), (name, answer)
            assert answer["candidates"][0]["entity"] == listed, name
        # the clean 华为终端 by its own name is itself; a firm of another trade name stays clear
        device = screen(cli, "华为终端有限公司")
        assert (device["decision"], device["subject"]["key"]) == ("allow", HUAWEI_DEVICE)
        assert screen(cli, "大米科技有限责任公司")["decision"] != "deny"
        assert screen(cli, "广州完全不同物流有限公司")["decision"] == "allow"


def test_a_listed_firm_whose_trade_name_is_a_city_is_screened_by_its_name(cli, tmp_path: Path) -> None:
    """湖南白银股份有限公司 (a real firm: 白银 of 湖南) could not be screened by name at all: `names no
    one`, as if it were two places and a legal form (白银 is a city of 甘肃), though resolution reads
    its trade name as 白银. Listed, its exact name must be denied; a bare place and a legal form still
    name no one."""
    with time_machine.travel(TODAY, tick=False):
        names_world(cli, tmp_path)
        answer = screen(cli, "湖南白银股份有限公司")
        assert (answer["decision"], answer["subject"]["key"]) == ("deny", HUNAN_SILVER)
        refused = cli("screen", "--name", "湖南长沙有限公司", "--action", "public_procurement", ok=False)
        assert refused.exit_code == 1 and "names no one" in refused.output
