"""Agencies' templates mark their columns: `*当事人名称` for a required one, `文号（必填）`,
`处罚机关（选填）`. Such a file was refused for want of the subject's name and decision number,
though every column was there; now the marks are no part of the column's name (SQLite and
PostgreSQL). A unit in brackets, `罚款金额（万元）`, still says the unit."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from xinyong.store import tables as t
from xinyong.store.db import open_engine

from test_trust_adversarial import NAMES, XIAOMI
from worlds import run, write_csv


def test_columns_marked_required_or_optional_are_read(cli, tmp_path: Path) -> None:
    headers = ["*行政相对人名称", "＊统一社会信用代码", "行政处罚决定书文号（必填）", "处罚类别*", "处罚内容(选填)",
               "罚款金额（万元）", "处罚决定日期（必填项）", "处罚机关"]
    path = write_csv(tmp_path / "marked.csv", headers, [
        [NAMES[XIAOMI], XIAOMI, "京海市监罚〔2026〕101号", "罚款", "未按规定公示年度报告", "1.5", "2026-03-05",
         "北京市海淀区市场监督管理局"]])
    result = run(cli, "ingest", path, "--authority", "samr", "--category", "penalty")
    assert (result["accepted"], result["quarantined"]) == (1, 0)
    engine = open_engine(cli.url)
    with engine.connect() as c:
        (code, fields), = c.execute(select(t.records.c.subject_code, t.records.c.fields)).all()
    engine.dispose()
    assert (code, fields["decision_no"], fields["penalty_type"]) == (XIAOMI, "京海市监罚〔2026〕101号", "罚款")
    assert (fields["penalty_content"], fields["fine_amount"]) == ("未按规定公示年度报告", 15000.0)
