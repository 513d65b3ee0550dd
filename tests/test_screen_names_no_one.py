"""A name that names no one (有限公司, 分公司, 北京市, a bracket pair) answered `allow`, as if a firm
had been looked for and found clean: a clerk who pasted the legal-form column, or an empty name
with its brackets, cleared a bid. Now such a name is refused with the reason, by the CLI, the HTTP
API and a batch row (SQLite and PostgreSQL); a firm's name, even a short one, is screened as before."""

from __future__ import annotations

import json
from pathlib import Path

import time_machine
from fastapi.testclient import TestClient

from test_trust_adversarial import TODAY, XIAOMI, listed_world
from worlds import run, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.store.db import open_engine

NO_ONE = ("有限公司", "股份有限公司", "分公司", "北京市朝阳区有限公司", "（）", "Co., Ltd.")


def test_a_name_of_only_a_legal_form_branch_or_place_is_refused(cli, tmp_path: Path) -> None:
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        for name in NO_ONE:
            refused = cli("screen", "--name", name, "--action", "public_procurement", ok=False)
            assert refused.exit_code == 1 and "names no one" in refused.output, (name, refused.output)
        assert run(cli, "screen", "--name", "小米科技有限责任公司", "--action", "public_procurement")["decision"] == "deny"
        batch = write_csv(tmp_path / "batch.csv", ["企业名称", "统一社会信用代码"],
                          [["有限公司", ""], ["小米科技有限责任公司", XIAOMI]])
        out = tmp_path / "out.jsonl"
        cli("screen", "--batch", batch, "--action", "public_procurement", "-o", out)
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert ["names no one" in (row["error"] or "") for row in rows] == [True, False]
        assert [row["decision"] for row in rows] == [None, "deny"]
        key = run(cli, "authority", "key", "create", "procurement_centre", "--scopes", "screen")["key"]
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                answer = http.post("/v1/screen", headers={"X-API-Key": key}, json={
                    "name": "有限公司", "action": "public_procurement", "purpose": "procurement_review"})
                error = answer.json()["error"]
                assert answer.status_code == 422 and error["code"] == "invalid_request", answer.text
                assert "names no one" in error["message"]
        finally:
            engine.dispose()
