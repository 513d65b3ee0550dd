"""A command run on a store that was never initialised says so and leaves no empty SQLite file
behind (a mistyped --db made one, which the next `init` then had to find and remove)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_a_command_before_init_makes_no_store_file(tmp_path: Path) -> None:
    store = tmp_path / "xinyong.db"
    for command in (["stats"], ["listing", "list"], ["ingest", str(tmp_path / "penalties.csv"), "--authority", "samr",
                                                   "--category", "penalty"]):
        done = subprocess.run([sys.executable, "-m", "xinyong", "--db", f"sqlite:///{store}", *command],
                              capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode != 0 and "not initialised; run `xinyong init`" in done.stdout + done.stderr, done
        assert not store.exists(), command
    subprocess.run([sys.executable, "-m", "xinyong", "--db", f"sqlite:///{store}", "init", "--pack", "cn"],
                   check=True, capture_output=True, cwd=tmp_path)
    assert store.exists()
