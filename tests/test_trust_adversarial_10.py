"""Screening at decision points probed as a listed firm trying to pass and as a clean firm wrongly
stopped: batch files, single answers and the feedback that reports a measure applied. Hand-made
inputs with real public firm names and codes with valid check characters. Each test is a defect
found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import time_machine

from test_trust_adversarial import PINGAN, TODAY, XIAOMI, listed_world
from worlds import run, write_csv


def test_a_batch_naming_its_code_column_as_the_packs_files_do_is_screened_by_the_codes(cli, tmp_path: Path) -> None:
    """A bank's batch headed 社会信用代码 (a header the pack's own files use for the USCC) beside
    企业名称 was screened by name alone, the codes never read: the listed 小米, written by its
    trading name 米家 beside its own code, was allowed for procurement. A JSON Lines batch keyed
    `uscc` the same. Now every header the pack gives a subject's code or name is read, and each row
    is answered as the code screened alone answers it (a name that is not the code's firm's: refer)."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        alone = run(cli, "screen", XIAOMI, "--action", "public_procurement")
        assert alone["decision"] == "deny"
        rows = [[XIAOMI, "米家"], [XIAOMI.lower(), ""], ["", "小米科技有限责任公司"], [PINGAN, "中国平安财产保险股份有限公司"]]
        files = {"csv": write_csv(tmp_path / "bank.csv", ["社会信用代码", "企业名称"], rows)}
        files["jsonl"] = tmp_path / "bank.jsonl"
        files["jsonl"].write_bytes(b"".join(orjson.dumps({"uscc": code, "企业名称": name}) + b"\n" for code, name in rows))
        for kind, path in files.items():
            out = tmp_path / f"results-{kind}.jsonl"
            cli("screen", "--batch", path, "--action", "public_procurement", "-o", out)
            results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
            assert [(r["decision"], r["subject"], r["measures"]) for r in results] == [
                ("deny", XIAOMI, "no_public_procurement")] * 3 + [("deny", PINGAN, "no_public_procurement")], kind
            assert results[0]["match"] == "code_and_name_disagree"  # 米家 is no name of 小米's: a person looks too

