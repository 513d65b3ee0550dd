"""The same rows in GBK and in UTF-8 give the same counts, in a fresh store or after each other
(the second file's rows are unchanged, its in-file duplicates still duplicates, its warnings
still counted)."""

from __future__ import annotations

import json
from pathlib import Path

from worlds import uscc

GOOD = uscc("91310000MA1XC0001")
BAD_CHECK = GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1")
ROWS = [
    "当事人名称,统一社会信用代码,行政处罚决定书文号,处罚决定日期,罚款金额（万元）",
    f"上海某某科技有限公司,{GOOD},沪市监罚〔2026〕1号,2026-01-05,1.5",
    f"上海某某科技有限公司,{GOOD},沪市监罚〔2026〕1号,2026-01-05,1.5",   # the same row again
    f"上海某某贸易有限公司,{BAD_CHECK},沪市监罚〔2026〕2号,2026-01-06,2",  # a warning
    "上海某某餐饮有限公司,,沪市监罚〔2026〕3号,2026-02-30,1",              # quarantined
]
COUNTS = ("rows", "accepted", "quarantined", "duplicates", "warnings")


def _ingest(cli, path: Path) -> dict:
    result = json.loads(cli("ingest", path, "--authority", "samr", "--category", "penalty", "--json").stdout)
    return {k: result[k] for k in COUNTS}


def test_gbk_and_utf8_give_the_same_counts(cli, tmp_path: Path) -> None:
    text = "\n".join(ROWS) + "\n"
    utf8, gbk = tmp_path / "utf8.csv", tmp_path / "gbk.csv"
    utf8.write_text(text, encoding="utf-8")
    gbk.write_bytes(text.encode("gbk"))
    first = _ingest(cli, utf8)
    assert first == {"rows": 4, "accepted": 2, "quarantined": 1, "duplicates": 1, "warnings": 1}
    assert _ingest(cli, gbk) == first
