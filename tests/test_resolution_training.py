"""Training the resolution model with labels from verified codes (issue 11, "scores learned from the data").

The set is written here: a register of firms in four industries and penalty records of three
sorts: records quoting their firm's own valid code and a near name (labels), records naming a
registered firm without a code, and records of unregistered firms that share only an industry
word with many registered ones (the "fair" pairs on which EM alone settles as matches).
"""

from __future__ import annotations

import json

from sqlalchemy import select
from test_resolve import ingest, resolve, store, uscc, write_csv

from xinyong.domain.matching import STARTING_MODEL
from xinyong.store import tables as t

TRADES = ["华信", "恒泰", "宏远", "鑫盛", "博瑞", "安德", "瑞康", "德恒", "金桥", "银河", "天成", "远航",
          "东方", "南星", "北辰", "西岭", "中和", "新元", "光明", "百川", "长青", "万通", "永安", "嘉禾",
          "盛世", "宝丰", "富源", "吉祥", "合众", "同心", "汇丰", "利达", "振华", "兴业", "昌盛", "隆基"]
UNREGISTERED_TRADES = ["青松", "碧海", "蓝天", "白云", "红叶", "紫光", "黄河", "绿洲", "彩虹", "晨曦",
                       "星辰", "明月", "清泉", "翠竹", "丹枫", "金秋", "春雨", "夏荷", "冬梅", "秋实"]
INDUSTRIES = ["科技", "贸易", "建筑工程", "食品"]
PLACES = [("北京", "110105"), ("上海", "310115"), ("广州", "440106"), ("成都", "510107")]
REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "法定代表人", "成立日期", "登记状态"]
PENALTY_HEADERS = ["当事人名称", "统一社会信用代码", "法定代表人", "行政处罚决定书文号", "处罚决定日期"]


def representative(i: int) -> str:
    return "王李张刘陈杨黄赵吴周"[i % 10] + "建国志强海军"[i // 10]


def firm(i: int) -> tuple[str, str]:
    place, division = PLACES[i % len(PLACES)]
    name = f"{place}{TRADES[i]}{INDUSTRIES[i % len(INDUSTRIES)]}有限公司"
    return uscc(f"91{division}MA{i:07d}"), name


def test_verified_codes_label_the_training_and_the_prior_is_not_degenerate(cli, tmp_path):
    firms = [firm(i) for i in range(len(TRADES))]
    ingest(cli, write_csv(tmp_path / "register.csv", REGISTER_HEADERS,
                          [[code, name, representative(i), "2015-01-01", "存续"]
                           for i, (code, name) in enumerate(firms)]), "samr", "registration")
    rows = []
    for i, (code, name) in enumerate(firms):  # its own code, its name as registered, its legal rep: a label
        rows.append([name, code, representative(i), f"C{i:03d}", "2024-03-01"])
    for i, (_, name) in enumerate(firms[::2]):  # no code, the legal form dropped
        rows.append([name.removesuffix("有限公司"), "", "", f"N{i:03d}", "2024-03-01"])
    for i, trade in enumerate(UNREGISTERED_TRADES * 2):  # not registered: shares an industry word only
        place = PLACES[i % len(PLACES)][0]
        rows.append([f"{place}{trade}{INDUSTRIES[i % len(INDUSTRIES)]}有限公司", "", representative(i + 1),
                     f"U{i:03d}", "2024-03-01"])
    ingest(cli, write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS, rows), "samr", "penalty")

    resolve(cli)

    with store(cli) as engine, engine.connect() as c:
        saved = c.execute(select(t.resolution_models.c.model).order_by(t.resolution_models.c.id.desc())).first()[0]
    model = saved if isinstance(saved, dict) else json.loads(saved)
    notes = model["notes"]
    assert notes["method"].startswith("m from verified-code labels")
    assert notes["code_labelled_records"] == len(firms)
    # the prior agrees with the labelled records' own share of matches among their blocked pairs
    labelled_share = notes["labelled_match_share"]
    assert 0 < labelled_share < 0.5
    assert labelled_share / 3 <= model["prior"] <= labelled_share * 3, (model["prior"], labelled_share)
    # learned from the labels: a match has the legal representative the register gives
    assert model["m"]["legal_representative"]["same"] > 0.9
    # what is read from the name is not counted on code labels (they quote names as registered)
    for comparison in ("name", "legal_form", "place"):
        assert model["m"][comparison] == STARTING_MODEL.m[comparison]
    # and the threshold meeting the target precision is stored with it
    assert 0 < model["threshold"] <= 1
