"""Name screening and resolution with a learned linkage model: a near name is never allowed blind.

A registry of 300 firms (real-looking names) and 420 penalty and register records, no noise: the
record-linkage model learned from them (`domain.linkage`, EM) never sees a homophone pair or a
legal-form change among true matches. Such a level keeps a share of the starting model's m (m is
the posterior mean under a prior centred on it), and whatever the weights, the matcher never
scores a homophone, a name one character away or the same core in another legal form below
`review` (in a place that does not disagree). So a query for 上海赣峰科技有限公司 (峰 for 锋, the same
reading fēng) or 上海赣锋科技股份有限公司 (股份有限公司 for 有限公司), while 上海赣锋科技有限公司 is on the
serious dishonesty list, is `refer` with the listed firm among the candidates, never `allow`; and a
penalty naming the firm so goes to review, never to a new (phantom) entity.
"""


from __future__ import annotations

import random

import pytest

from test_due_rules import PENALTY_HEADERS, run, uscc, write_csv

PLACES = ["上海", "北京", "深圳市", "广州", "杭州", "南京", "成都", "武汉", "苏州", "天津"]
TRADES = ["华美", "金蝶", "海康", "恒瑞", "立讯", "汇川", "迈瑞", "宁德", "三一", "中联", "鹏鼎", "欣旺达", "德赛", "兆易",
          "韦尔", "卓胜", "晶盛", "阳光", "隆基", "通威", "天齐", "赣锋", "华友", "亿纬", "先导", "璞泰", "当升", "容百",
          "贝特瑞", "杉杉"]
TRADE_KINDS = ["电器", "科技", "软件", "电子", "材料", "能源", "医疗器械", "机械", "贸易", "建设工程"]
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
LISTED = "上海赣锋科技有限公司"


def firms() -> list[tuple[str, str, str]]:
    rng = random.Random(3)
    made: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    while len(made) < 300:
        name = f"{rng.choice(PLACES)}{rng.choice(TRADES)}{rng.choice(TRADE_KINDS)}有限公司"
        if name in seen:
            continue
        seen.add(name)
        body = "9131" + "".join(rng.choice("0123456789") for _ in range(4)) + "MA" + \
            "".join(rng.choice(ALPHABET) for _ in range(7))
        made.append((uscc(body), name, rng.choice("李王张刘陈") + rng.choice("伟芳敏静强磊")))
    return made


@pytest.fixture
def registry(cli, tmp_path):
    world = firms()
    rng = random.Random(3)
    write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"],
              [[code, name, "有限责任公司", rep, "2010-01-05", "存续"] for code, name, rep in world])
    write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS, [
        [name, code if rng.random() < 0.6 else "", f"市监罚〔2025〕{1000 + i}号", "2025-06-03",
         "吊销许可证" if i < 5 else "罚款", "5"] for i, (code, name, _) in enumerate(world[:120])])
    cli("ingest", tmp_path / "register.csv", "--authority", "samr", "--category", "registration")
    cli("ingest", tmp_path / "penalties.csv", "--authority", "samr", "--category", "penalty")
    run(cli, "resolve")
    run(cli, "evaluate", "--as-of", "2025-09-15")
    for listing in run(cli, "listing", "list", "--state", "proposed"):
        cli("listing", "notify", listing["id"], "--on", "2025-09-16", "--actor", "officer", "--reason", "served")
    run(cli, "process", "--as-of", "2025-11-01")
    assert run(cli, "screen", "--name", LISTED, "--action", "public_procurement",
               "--as-of", "2025-11-02")["decision"] == "deny"
    return cli


@pytest.mark.parametrize("query", ["上海赣峰科技有限公司", "上海赣锋科技股份有限公司"], ids=["homophone", "legal-form"])
def test_a_name_one_homophone_or_legal_form_from_a_listed_firm_is_never_allowed_blind(registry, query):
    answer = run(registry, "screen", "--name", query, "--action", "public_procurement", "--as-of", "2025-11-02")
    candidates = [(c["name"], c["score"]) for c in answer.get("candidates") or []]
    assert answer["decision"] == "refer" and LISTED in [name for name, _ in candidates], \
        f"{query}: {answer['decision']}, candidates {candidates}"


def test_a_penalty_naming_a_firm_by_a_homophone_or_another_legal_form_makes_no_phantom_entity(registry, tmp_path):
    """Architecture, Resolve step 5: at or above `review` a record goes to review, and "a record that
    nearly matches an entity never makes a phantom entity"; an authority's homophone in the same place
    and legal form links. Neither record below makes a new entity."""
    write_csv(tmp_path / "later.csv", PENALTY_HEADERS, [
        ["上海赣峰科技有限公司", "", "沪市监罚〔2025〕9001号", "2025-08-03", "罚款", "5"],
        ["上海赣锋科技股份有限公司", "", "沪市监罚〔2025〕9002号", "2025-08-03", "罚款", "5"]])
    registry("ingest", tmp_path / "later.csv", "--authority", "samr", "--category", "penalty")
    resolved = run(registry, "resolve")
    assert resolved["new_entities"] == 0, resolved
