"""`batch show` names the rows behind its warning count, and what each warning was."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from worlds import uscc

GOOD = uscc("91310000MA1XC0001")
BAD = GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1")  # the check character broken


def test_batch_show_says_which_row_warned(cli, tmp_path: Path) -> None:
    path = tmp_path / "penalties.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([
            ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期"],
            ["上海某某科技有限公司", GOOD, "沪市监罚〔2026〕1号", "2026-01-05"],
            ["上海某某贸易有限公司", BAD, "沪市监罚〔2026〕2号", "2026-01-06"],
        ])
    batch = json.loads(cli("ingest", path, "--authority", "samr", "--category", "penalty", "--json").stdout)
    assert batch["warnings"] == 1
    shown = json.loads(cli("batch", "show", batch["batch_id"], "--json").stdout)
    assert [(w["row_number"], w["record_key"]) for w in shown["warned_rows"]] == [(3, "samr:沪市监罚〔2026〕2号")]
    assert BAD in shown["warned_rows"][0]["warnings"][0]
    table = cli("batch", "show", batch["batch_id"]).stdout
    assert "rows stored with warnings" in table and "沪市监罚〔2026〕2号" in table and BAD in table
