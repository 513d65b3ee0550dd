"""The first day and the operations of a real deployment, probed as a new and unlucky operator
would: `init`, packs and their upgrades, backups, moving a store, bad input on the command line.
Hand-made inputs with real public firm names and codes with valid check characters. Each test is
a defect found and fixed (on SQLite and PostgreSQL where the engine matters)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import time_machine
from typer.testing import CliRunner

from xinyong.cli import app
from xinyong.domain.pack import PACKS_DIR
from xinyong.store.audit import AuditFiles

from test_trust_adversarial import TODAY, XIAOMI, listed_world


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


def test_pack_validate_names_the_overlay_file_and_the_item_by_its_code(tmp_path: Path) -> None:
    """An overlay (like cn-pilot) shortening serious_dishonesty to `max_years: two` was reported as
    `lists.2.duration.max_years`: the position in the pack merged with its parent, while the overlay
    holds one list, at position 0, and its author looks for the list's code. An overlay whose
    `extends` points nowhere was reported under the parent's relative path only, never naming the
    overlay that holds the bad line. Now items of coded lists are named by code and a missing parent
    by the overlay's file and its `extends` key."""
    pilot = (PACKS_DIR / "cn-pilot" / "pack.yaml").read_text(encoding="utf-8")
    parent = f"extends: {PACKS_DIR / 'cn' / 'pack.yaml'}"
    cases = {
        "two-years.yaml": (pilot.replace("extends: ../cn/pack.yaml", parent).replace("max_years: 2}", "max_years: two}"),
                           "two-years.yaml: lists[serious_dishonesty].duration.max_years: Input should be a valid number"),
        "typo.yaml": (pilot.replace("extends: ../cn/pack.yaml", parent).replace("code: sh_procurement_review\n",
                                                                               "code: sh_procurement_review\n    lsts: []\n"),
                      "typo.yaml: measures[sh_procurement_review].lsts: Extra inputs are not permitted"),
        "orphan.yaml": (pilot, "orphan.yaml: extends: ../cn/pack.yaml: no such pack file"),
    }
    for name, (text, said) in cases.items():
        path = tmp_path / "上海 试点" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        refused = CliRunner().invoke(app, ["pack", "validate", str(path)])
        assert refused.exit_code == 1 and said in refused.output, refused.output
        assert "Traceback" not in refused.output


COURT_RULE_1 = '      - version: "1"\n        effective: 2017-05-01\n'
COURT_RULE_2 = ('      - version: "2"\n        effective: 2027-01-01\n'
                '        legal_basis: 《最高人民法院关于公布失信被执行人名单信息的若干规定》（2027年修正）第一条\n'
                '        categories: [court_defaulter]\n')


def test_a_new_pack_version_dropping_a_rule_listings_stand_on_is_refused(cli, tmp_path: Path) -> None:
    """A new version of the national pack whose court_defaulters list holds a new rule and the old one
    renumbered, no longer v1, was recorded by `init --pack` without a word: 小米's and
    中国平安's listings in force, made under rule v1, were left with no rule in the store's pack, so
    no legal basis of their own. Now `init` refuses such a pack, naming the list, the rule and its
    listings, and keeps the store's pack; a version that keeps rule v1 beside the new one goes in,
    and the listings in force keep their rule and their term."""
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        before = json.loads(cli("listing", "show", ids[XIAOMI], "--json").stdout)
        national = (PACKS_DIR / "cn" / "pack.yaml").read_text(encoding="utf-8")
        assert national.count(COURT_RULE_1) == 1 and 'version: "2026.1"' in national
        replaced = tmp_path / "新版 pack" / "replaced.yaml"
        replaced.parent.mkdir()
        replaced.write_text(national.replace('version: "2026.1"', 'version: "2027.1"')
                            .replace(COURT_RULE_1, COURT_RULE_2 + "      - version: \"1-old\"\n"
                                     "        effective: 2017-05-01\n"), encoding="utf-8")
        assert cli("pack", "validate", replaced).exit_code == 0
        refused = cli("init", "--pack", replaced, ok=False)
        assert refused.exit_code == 1 and "Traceback" not in refused.output
        assert f"court_defaulters v1 (3 listings, e.g. {min(ids.values())})" in refused.output, refused.output
        assert json.loads(cli("pack", "show", "--json").stdout)["version"] == "2026.1"

        kept = tmp_path / "新版 pack" / "kept.yaml"
        kept.write_text(national.replace('version: "2026.1"', 'version: "2027.1"')
                        .replace(COURT_RULE_1, COURT_RULE_2 + COURT_RULE_1)
                        .replace("      kind: until_performance\n", "      kind: fixed\n      years: 1\n", 1),
                        encoding="utf-8")
        cli("init", "--pack", kept)
        assert json.loads(cli("pack", "show", "--json").stdout)["version"] == "2027.1"
        after = json.loads(cli("listing", "show", ids[XIAOMI], "--json").stdout)
        assert {k: after[k] for k in ("state", "rule_version", "effective_from", "effective_to")} == \
            {k: before[k] for k in ("state", "rule_version", "effective_from", "effective_to")}
        assert cli("audit", "verify").exit_code == 0


DISK_FULL = """
import errno, os, sys
from xinyong.cli.common import run
from xinyong.store.audit import AuditFiles

def full(*_args, **_options):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

AuditFiles.write_head = full
sys.argv = ["xinyong", *sys.argv[1:]]
run()
"""


def test_a_head_file_the_disk_cannot_take_is_one_warning_line(cli, db_url) -> None:
    """With the disk full under the audit head file, `authority key create` committed its event and
    then printed a Python warning: a source location inside SQLAlchemy (`event/attr.py:512`), the
    line `fn(*args, **kw)`, and the name of a temporary file. Now the operator reads one line naming
    the head file and the cause; the command succeeds, `audit verify` passes, and the next write,
    once the disk has room, records the head."""
    done = subprocess.run([sys.executable, "-c", DISK_FULL, "--db", db_url, "authority", "key", "create",
                           "samr", "--scopes", "screen"], capture_output=True, text=True, env=os.environ, timeout=120)
    assert done.returncode == 0 and "Shown once" in done.stdout, done.stderr
    head = AuditFiles.for_url(db_url).head_path
    assert done.stderr.strip().splitlines() == [
        f"warning: audit events up to 1 committed, but the head file {head} could not be written "
        "(No space left on device); `xinyong audit verify` accepts them, and the next write records the "
        "head once the file can be written"], done.stderr
    assert cli("audit", "verify").exit_code == 0
    cli("authority", "key", "create", "tax", "--scopes", "screen")
    assert json.loads(head.read_text(encoding="utf-8"))["seq"] == 2


def test_an_output_path_that_cannot_be_made_is_one_error_line(cli, db_url, tmp_path: Path) -> None:
    """`audit checkpoint -o` or `links export -o` into a folder that is not there (a typo, a backup
    disk not mounted), and `backup DIR` or `publish --out DIR` under a path that is a file, ended in a
    Python traceback (FileNotFoundError, NotADirectoryError). Now one line names the path and the
    cause, and the exit status is 1."""
    cli("authority", "key", "create", "samr", "--scopes", "screen")  # an event for the checkpoint to sign
    missing, blocked = tmp_path / "未挂载 disk", tmp_path / "备份盘.txt"
    blocked.write_text("not a folder", encoding="utf-8")
    for args, path, cause in ((["audit", "checkpoint", "-o"], missing / "checkpoint.json", "No such file or directory"),
                              (["links", "export", "-o"], missing / "links.csv", "No such file or directory"),
                              (["backup"], blocked / "first", "Not a directory"),
                              (["publish", "--out"], blocked / "opendata", "Not a directory")):
        done = subprocess.run([sys.executable, "-m", "xinyong", "--db", db_url, *args, str(path)],
                              capture_output=True, text=True, env=os.environ, timeout=120)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines() == [f"error: {path}: {cause}"], done.stderr
