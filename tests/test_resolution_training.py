"""Training the resolution model with labels from verified codes (issue 11, "scores learned from the data").

The set is written here: a register of firms in four industries and penalty records of three
sorts: records quoting their firm's own valid code and a near name (labels), records naming a
registered firm without a code, and records of unregistered firms that share only an industry
word with many registered ones (the "fair" pairs on which EM alone settles as matches).
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from test_resolve import ingest, resolve, store, uscc, write_csv

from xinyong.domain.matching import STARTING_MODEL, NameAnalyser, Subject, compare
from xinyong.domain.pack import load_pack
from xinyong.services.resolution import resolve as resolution
from xinyong.services.resolution.resolve import PERSON_SCHEMES, code_label, legal_representative
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


def build_training_set(cli, tmp_path) -> list[tuple[str, str]]:
    """The register and the three sorts of penalty records; returns the firms (code, name)."""
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
    return firms


def test_verified_codes_label_the_training_and_the_prior_is_not_degenerate(cli, tmp_path):
    firms = build_training_set(cli, tmp_path)

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


def every_pair_compared(index, resolver, rows):
    """`training_pairs` as it was: every candidate of every record compared, labelled by its code or not."""
    pairs, labels, owners, coded = [], [], [], set()
    for number, row in enumerate(rows):
        person = row.subject_kind == "natural_person" or row.subject_scheme in PERSON_SCHEMES
        if person or not row.subject_name or row.category in resolver.registrations:
            continue
        fields = row.fields if isinstance(row.fields, dict) else json.loads(row.fields)
        subject = Subject(index.analyser.parts(row.subject_name), None if row.subject_code_verified else row.subject_code,
                          legal_representative(resolver, row.category, fields), False, fields.get("address"))
        judged = resolver.matches.get(row.record_key)
        ruled_out = resolver.ruled_out.get(row.record_key, set())
        candidates = index.candidates(subject)
        if judged is None and row.subject_code_verified:
            labelled = code_label(index, subject, row.subject_scheme, row.subject_code, ruled_out)
            if labelled is not None:
                judged = labelled[0]
                coded.add(number)
                if judged not in candidates:
                    candidates.append(judged)
        for entity_id in candidates:
            compared = compare(subject, index.profiles[entity_id])
            if compared is None:
                continue
            pairs.append(compared[0])
            labels.append(True if judged == entity_id else False if judged is not None or entity_id in ruled_out
                          else None)
            owners.append(number)
    return pairs, labels, owners, coded


@pytest.mark.parametrize("code_labels_needed", [resolution.MIN_CODE_LABELS, 10**9], ids=["labels", "em"])
def test_the_model_is_the_same_without_comparing_the_code_labelled_non_matches(cli, tmp_path, monkeypatch,
                                                                              code_labels_needed):
    """A code-labelled record's other candidates are not compared (their levels count for nothing):
    the model, threshold and notes are those of every pair compared, on both ways of training."""
    build_training_set(cli, tmp_path)
    monkeypatch.setattr(resolution, "MIN_CODE_LABELS", code_labels_needed)
    pack = load_pack("cn")
    with store(cli) as engine, engine.connect() as c:
        index = resolution.load_index(c, NameAnalyser(pack.resolution.name_rules, remember=True))
        matches, ruled_out = resolution.load_judgements(c)
        rows = c.execute(select(t.records).order_by(t.records.c.id)).all()
        skipped = resolution.training_pairs(index, resolution.Resolver(pack, index, matches, ruled_out), rows)
        compared = every_pair_compared(index, resolution.Resolver(pack, index, matches, ruled_out), rows)
        assert skipped[1:] == compared[1:]  # the same pairs, labels, owners and code-labelled records
        left_out = [i for i, levels in enumerate(skipped[0]) if levels != compared[0][i]]
        assert left_out and all(skipped[0][i] == {} and skipped[1][i] is False and skipped[2][i] in skipped[3]
                                for i in left_out)
        models = []
        for pairing in (resolution.training_pairs, every_pair_compared):
            monkeypatch.setattr(resolution, "training_pairs", pairing)
            with c.begin_nested() as savepoint:
                models.append(resolution.train(c, pack, index, matches, ruled_out)[0].as_json())
                savepoint.rollback()
    assert models[0] == models[1]
    assert models[0]["notes"]["method"].startswith("EM" if code_labels_needed > 100 else "m from verified-code labels")


def test_the_training_sample_is_every_step_th_record_in_id_order(cli, tmp_path, monkeypatch):
    build_training_set(cli, tmp_path)
    with store(cli) as engine, engine.connect() as c:
        ids = c.execute(select(t.records.c.id).order_by(t.records.c.id)).scalars().all()
        for wanted in (7, 10, len(ids), 10**6):
            monkeypatch.setattr(resolution, "TRAINING_RECORDS", wanted)
            assert resolution.training_sample_ids(c) == (len(ids), ids[::max(1, len(ids) // wanted)])
