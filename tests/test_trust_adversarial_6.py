"""Matching and intake probed as an attacker and as an unlucky subject would, with hand-made inputs
the demo never sends: real public company names, codes with valid check characters. Each test is a
defect found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import time_machine
from sqlalchemy import select

from test_columnar import compare
from test_trust_adversarial import TODAY
from worlds import run, uscc, write_csv
from xinyong.store import tables as t
from xinyong.store.db import open_engine

XIAOMI = uscc("91110108MA0XM0077")
GREE = uscc("91440400192548256")
HUAWEI = uscc("91440300192203821")  # 华为技术有限公司's real code
REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态", "曾用名"]
PENALTY_HEADERS = ["行政处罚决定书文号", "当事人名称", "统一社会信用代码", "处罚决定日期", "处罚类别", "罚款金额（万元）", "备注"]


def quarantined(cli, batch: dict) -> list[tuple[int, str, str]]:
    shown = run(cli, "batch", "show", batch["batch_id"])
    return [(row["row_number"], row["field"], row["reason_code"]) for row in shown["quarantine"]]


def test_a_cell_of_invisible_characters_only_is_empty_on_both_paths(cli, tmp_path: Path) -> None:
    """A register row whose 企业名称 cell held only a zero-width space (U+200B), or a byte order mark
    and a word joiner, was accepted: the entity got a name nobody can see, and a penalty whose
    decision number was a zero-width space was stored under the key `samr:\\u200b`. Only white space
    (NBSP, the ideographic space) counted as empty. Now such a cell is empty on the row path and the
    column-wise path alike: a required field so written rejects the row naming the field, an
    optional one is left out."""
    invisible = ("\u200b", "\ufeff\u2060", "\u00a0\u200b", "\u3000", "\u200c\u200d")
    with time_machine.travel(TODAY, tick=False):
        register = write_csv(tmp_path / "register.csv", REGISTER_HEADERS, [
            [XIAOMI, invisible[0], "有限责任公司", "雷军", "2010-03-03", "存续", ""],
            [GREE, invisible[1], "股份有限公司", "董明珠", "1989-12-13", "存续", ""],
            [HUAWEI, "华为技术有限公司", "有限责任公司", "赵明路", "1987-09-15", "存续", invisible[4]],
        ])
        penalties = write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS, [
            [cell, "华为技术有限公司", HUAWEI, "2026-06-01", "罚款", "5", ""] for cell in invisible
        ] + [["深市监罚〔2026〕7号", "华为技术有限公司", HUAWEI, "2026-06-01", "罚款", "5", invisible[0]],
             ["深市监罚〔2026〕8号", invisible[0], invisible[1], "2026-06-01", "罚款", "5", ""]])
        for path, category in ((register, "registration"), (penalties, "penalty")):
            assert compare(path, category, "samr")[0] == 1  # the fast path and the row path agree row for row
        batch = run(cli, "ingest", register, "--authority", "samr", "--category", "registration")
        assert (batch["accepted"], batch["quarantined"]) == (1, 2)
        assert quarantined(cli, batch) == [(2, "name", "required_empty"), (3, "name", "required_empty")]
        entity = run(cli, "entity", "show", HUAWEI)
        assert [n["name"] for n in entity["names"]] == ["华为技术有限公司"]
        batch = run(cli, "ingest", penalties, "--authority", "samr", "--category", "penalty")
        assert (batch["accepted"], batch["quarantined"]) == (1, 6)
        assert quarantined(cli, batch) == [(n, "decision_no", "required_empty") for n in range(2, 7)] + [
            (8, "subject_name", "no_subject")]
        engine = open_engine(cli.url)
        try:
            with engine.connect() as c:
                (record,) = c.execute(select(t.records.c.record_key, t.records.c.fields, t.records.c.extras)
                                      .where(t.records.c.category == "penalty")).all()
        finally:
            engine.dispose()
        fields = record.fields if isinstance(record.fields, dict) else json.loads(record.fields)
        assert record.record_key == "samr:深市监罚〔2026〕7号" and "remarks" not in fields
