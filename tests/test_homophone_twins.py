"""A record naming a firm by a homophone typo, where the register holds two firms of that sound.

Found on the independent evaluation set (bench/evalset), not on the demo: the environment bureau's
penalty on 浙江锌柴股份有限公司 (锌 typed for 新, no code) was linked to the twin 浙江芯柴股份有限公司,
score 0.9969, instead of waiting for a person beside 浙江新柴股份有限公司, which it names. All three
read xīn chái. 新柴 also has an English name, Zhejiang Xinchai Co.,Ltd., which spells the typo's sound
as closely as its Chinese name does; the matcher compared the record with that name (its legal form
"different") and scored the true firm 0.8909, so the twin alone was near. Among names at one level
it now takes the one whose legal form and place agree (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
from pathlib import Path

from test_matching import parts, profile, subject
from worlds import run, uscc, write_csv

from xinyong.domain.matching import compare

XINCHAI = uscc("91330600MA2BX0C01")
XINCHAI_TWIN = uscc("91330600MA2BX0C02")
REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "英文名称", "企业类型", "法定代表人", "成立日期", "登记状态"]
PENALTY_HEADERS = ["行政相对人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚类别", "罚款金额（万元）",
                   "处罚决定日期", "处罚机关"]


def test_a_name_is_compared_with_the_entitys_name_whose_legal_form_agrees() -> None:
    levels, facts = compare(subject("浙江锌柴股份有限公司"),
                            profile("浙江新柴股份有限公司", "Zhejiang Xinchai Co.,Ltd."))
    assert (levels["name"], levels["legal_form"], levels["place"]) == ("homophone", "same", "same")
    assert facts["matched_name"] == parts("浙江新柴股份有限公司").key
    # the English name still decides where it is the closer one
    levels, facts = compare(subject("Zhejiang Xinchai Co., Ltd."),
                            profile("浙江新柴股份有限公司", "Zhejiang Xinchai Co.,Ltd."))
    assert levels["name"] == "exact" and facts["matched_name"] == parts("Zhejiang Xinchai Co.,Ltd.").key


def test_a_homophone_of_two_registered_firms_waits_for_a_person(cli, tmp_path: Path) -> None:
    cli("ingest", write_csv(tmp_path / "register.csv", REGISTER_HEADERS, [
        [XINCHAI, "浙江新柴股份有限公司", "Zhejiang Xinchai Co.,Ltd.", "股份有限公司", "余春", "2013-06-07", "存续"],
        [XINCHAI_TWIN, "浙江芯柴股份有限公司", "", "股份有限公司", "叶胜家", "2013-06-07", "存续"],
    ]), "--authority", "samr", "--category", "registration")
    cli("ingest", write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS, [
        ["浙江锌柴股份有限公司", "", "绍环罚〔2025〕770号", "罚款", "2.0", "2025-06-15", "绍兴市生态环境局"],
        # the twin's own name, and the true firm's, still link at once
        ["浙江芯柴股份有限公司", "", "绍环罚〔2025〕771号", "罚款", "2.0", "2025-06-15", "绍兴市生态环境局"],
        ["浙江新柴股份有限公司", "", "绍环罚〔2025〕772号", "罚款", "2.0", "2025-06-15", "绍兴市生态环境局"],
    ]), "--authority", "env", "--category", "penalty")
    resolved = run(cli, "resolve")
    assert (resolved["in_review"], resolved["new_entities"]) == (1, 0), resolved
    (waiting,) = run(cli, "review", "list")
    assert waiting["record_key"].endswith("绍环罚〔2025〕770号")
    assert {c["entity"] for c in waiting["candidates"]} == {XINCHAI, XINCHAI_TWIN}
    cli("links", "export", "-o", tmp_path / "links.csv")
    with (tmp_path / "links.csv").open(encoding="utf-8") as handle:
        links = {row["record_key"].split(":")[-1]: row["entity_key"] for row in csv.DictReader(handle)}
    assert links["绍环罚〔2025〕771号"] == XINCHAI_TWIN and links["绍环罚〔2025〕772号"] == XINCHAI
