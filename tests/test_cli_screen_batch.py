"""`screen --batch` with no action anywhere: refused in one line (exit 1) after writing one result per
input row; a file whose rows carry actions runs whatever its rows' failures."""

from __future__ import annotations

import csv
from pathlib import Path

from worlds import FIRM_DEBTOR, build_world


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_no_action_anywhere_is_refused_after_the_results_are_written(cli, tmp_path: Path) -> None:
    build_world(cli, tmp_path)
    subjects = tmp_path / "subjects.csv"
    subjects.write_text(f"identifier,name\n{FIRM_DEBTOR},\n,某某不存在的公司\nnot-a-code!,\n", encoding="utf-8")
    results = tmp_path / "results.csv"
    refused = cli("screen", "--batch", subjects, "-o", results, ok=False)
    assert refused.exit_code == 1
    assert len(refused.output.strip().splitlines()) == 1 and "--action" in refused.output and "action column" in refused.output
    rows = _rows(results)
    assert [r["line"] for r in rows] == ["2", "3", "4"] and all(r["error"] for r in rows)


def test_an_action_column_or_flag_lets_every_row_run_even_when_some_fail(cli, tmp_path: Path) -> None:
    build_world(cli, tmp_path)
    subjects = tmp_path / "subjects.csv"
    subjects.write_text(f"identifier,action\n{FIRM_DEBTOR},public_procurement\n{FIRM_DEBTOR},\n"
                        f"{FIRM_DEBTOR},no_such_action\n", encoding="utf-8")
    results = tmp_path / "results.csv"
    ran = cli("screen", "--batch", subjects, "-o", results)
    rows = _rows(results)
    assert ran.exit_code == 0 and len(rows) == 3
    assert rows[0]["decision"] == "deny" and rows[1]["error"] and rows[2]["error"]
    flagged = cli("screen", "--batch", subjects, "--action", "bidding", "-o", results)
    assert flagged.exit_code == 0 and [r["decision"] for r in _rows(results)][:2] == ["deny", "deny"]
