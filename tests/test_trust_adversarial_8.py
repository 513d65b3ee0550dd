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


def test_store_copy_to_a_database_that_is_not_there_says_so_in_one_line(cli, db_url, tmp_path: Path) -> None:
    """`store copy --to` a PostgreSQL database not yet created (the first step forgotten), a server
    not listening, or a URL mistyped printed a 60-line SQLAlchemy traceback. Now one line names the
    database and what the server answered, and nothing is written."""
    if not db_url.startswith("sqlite"):
        return  # the copy reads a SQLite store
    server = "postgresql://postgres@127.0.0.1"
    for target, said in ((f"{server}/xinyong_never_created", 'database "xinyong_never_created" does not exist'),
                         ("postgresql://postgres@127.0.0.1:1/xinyong", "port 1 failed: Connection refused"),
                         ("127.0.0.1/xinyong", "'127.0.0.1/xinyong': not a database URL")):
        refused = cli("store", "copy", "--to", target, ok=False)
        assert refused.exit_code == 1 and "Traceback" not in refused.output
        assert refused.output.startswith("error: ") and said in refused.output, refused.output
        assert len(refused.output.strip().splitlines()) == 1
