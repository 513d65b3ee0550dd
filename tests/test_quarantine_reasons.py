"""Quarantine reasons are stored as a code with parameters and shown in the reader's language;
`batch show --json` and the rejects file keep the English `reason` beside them."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.store.db import open_engine

HEADERS = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "罚款金额（万元）"]
ROWS = [
    ["上海某某贸易有限公司", "", "沪市监罚〔2026〕1号", "2026-13-01", "1"],      # impossible date
    ["上海某某贸易有限公司", "", "沪市监罚〔2026〕2号", "2026-01-05", "-3"],      # negative amount
    ["上海某某贸易有限公司", "", "", "2026-01-05", "1"],                           # required number empty
    ["", "", "沪市监罚〔2026〕4号", "2026-01-05", "1"],                           # no subject at all
    ["上海某某贸易有限公司", "", "沪市监罚〔2026〕5号", "2026-01-05", "1,00,0"],  # misplaced separators
]


def _file(folder: Path) -> Path:
    path = folder / "penalties.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([HEADERS, *ROWS])
    return path


def test_reasons_have_codes_and_params_and_pages_translate_them(cli, tmp_path: Path) -> None:
    result = json.loads(cli("ingest", _file(tmp_path), "--authority", "samr", "--category", "penalty",
                            "--json").stdout)
    assert result["quarantined"] == 5
    shown = json.loads(cli("batch", "show", result["batch_id"], "--json").stdout)["quarantine"]
    by_row = {r["row_number"]: r for r in shown}
    assert by_row[2]["reason_code"] == "impossible_date" and by_row[2]["params"] == {"text": "2026-13-01"}
    assert by_row[2]["reason"] == "impossible date '2026-13-01'"  # English, as before
    assert by_row[3]["reason_code"] == "negative_amount"
    assert by_row[4]["reason_code"] == "required_empty" and by_row[4]["params"]["field"]
    assert by_row[5]["reason_code"] == "no_subject" and by_row[6]["reason_code"] == "misplaced_separators"
    out = tmp_path / "rejects.csv"
    cli("batch", "rejects", result["batch_id"], "-o", out)
    rejects = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert rejects[1][-1] == "impossible date '2026-13-01'"

    key = re.search(r"xy_\S+", cli("authority", "key", "create", "samr", "--scopes", "operate,submit").stdout).group(0)
    engine = open_engine(cli.url)
    try:
        with TestClient(create_app(engine, load_pack("cn"))) as client:
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console").text).group(1)
            client.post("/console/sign-in", data={"api_key": key, "csrf_token": token})
            pages = {lang: client.get(f"/console/batches/{result['batch_id']}?lang={lang}").text
                     for lang in ("zh", "en", "fr")}
    finally:
        engine.dispose()
    assert "不存在的日期“2026-13-01”" in pages["zh"] and "impossible date" not in pages["zh"]
    assert "金额“-3”为负数" in pages["zh"] and "必填字段“" in pages["zh"]
    assert "Impossible date “2026-13-01”" in pages["en"]
    assert "Date impossible « 2026-13-01 »" in pages["fr"] and "Ni nom du sujet ni code utilisable" in pages["fr"]
