"""The first day and the operations of a real deployment, probed as a new and unlucky operator
would: `init`, packs and their upgrades, backups, moving a store, bad input on the command line.
Hand-made inputs with real public firm names and codes with valid check characters. Each test is
a defect found and fixed (on SQLite and PostgreSQL where the engine matters)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import time_machine

from test_trust_adversarial import TODAY, listed_world


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_backup_is_readable_by_its_owner_only(cli, db_url, tmp_path: Path) -> None:
    """`xinyong backup DIR` wrote the folder 0755 and the database copy (SQLite file or pg_dump
    archive), the head and the manifest 0644 under the usual umask: any local user could read every
    person's ID number, whole, from a backup of a store that is itself kept 0600. Now the folder is
    0700 and each file 0600, as for the store's snapshots and exports."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)  # 王建国's ID number is in the store, whole
    folder = tmp_path / "backups" / "first"
    made = json.loads(cli("backup", folder, "--json").stdout)
    assert mode(folder) == 0o700
    written = sorted(path.name for path in folder.iterdir())
    assert written == sorted(["audit-head", "manifest.json", made["database"]])
    assert {name: mode(folder / name) for name in written} == {name: 0o600 for name in written}
