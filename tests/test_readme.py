"""The README's shell blocks run as written on a fresh demo store: the docs cannot drift.

Every block fenced ```sh (and not ```sh not-run) runs, in order, in one bash with `set -e`, from
a scratch root laid out like a checkout (the package under `xinyong/`, so pack paths resolve)
after `xinyong demo --no-serve`, which writes demo/tour.env. The PostgreSQL block runs on its
own against the test server, with a database name of its own in place of the example's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from conftest import PG_ADMIN_URL, _pg_admin
from xinyong.services.demo import TOUR_FILE

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"^```(?!`)(\w*)([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
DEMO_ENTITIES = "800"  # the smallest demo with a record in review for the tour (seconds, not minutes)


def shell_blocks(markdown: str) -> list[tuple[bool, str]]:
    """Every ```sh block as (runs, body); `not-run` after the language marks one the tour skips."""
    return [("not-run" not in m.group(2), m.group(3)) for m in FENCE.finditer(markdown) if m.group(1) == "sh"]


def _environment(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINYONG_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["XINYONG_JOBS_DIR"], env["XINYONG_FILES_DIR"] = str(scratch / "jobs"), str(scratch / "files")
    env["HOME"] = str(scratch)  # nothing lands in the real ~/.xinyong
    return env


def _run(script: str, scratch: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-u", "-o", "pipefail", "-x", "-c", script], cwd=scratch,
                          env=_environment(scratch), capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A checkout's root as the README assumes it: the package beside a fresh demo store."""
    (tmp_path / "xinyong").symlink_to(ROOT / "xinyong", target_is_directory=True)
    return tmp_path


def test_the_parser_sees_runnable_and_not_run_blocks() -> None:
    sample = ("text\n```sh\nxinyong a\n```\n\n```sh not-run\nxinyong serve\n```\n"
              "```python\nprint()\n```\nsee ```` ```sh ```` inline\n```sh\nxinyong b\n```\n")
    assert shell_blocks(sample) == [(True, "xinyong a\n"), (False, "xinyong serve\n"), (True, "xinyong b\n")]


def test_readme_tour_runs_as_written_on_a_fresh_demo(scratch: Path) -> None:
    blocks = shell_blocks(README.read_text(encoding="utf-8"))
    runnable = [body for runs, body in blocks if runs]
    assert runnable and any("tour.env" in body for body in runnable)
    demo = _run(f"xinyong demo --no-serve --entities {DEMO_ENTITIES}", scratch)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    tour = dict(line.split("=", 1) for line in (scratch / "demo" / TOUR_FILE).read_text(encoding="utf-8").splitlines()
                if line and not line.startswith("#"))
    assert {"KEY_OPERATE", "KEY_SUBMIT", "KEY_SCREEN", "ENTITY", "REVIEW", "LISTING"} <= tour.keys()
    assert all(tour.values()), tour
    done = _run("\n".join(runnable), scratch)
    # bash -x traces each command: the last one traced is the one that failed
    assert done.returncode == 0, f"the README drifted:\n{done.stderr[-4000:]}\n{done.stdout[-2000:]}"


def test_readme_postgresql_block_runs_on_a_database_of_its_own(scratch: Path, pg_available: bool) -> None:
    if not pg_available or not shutil.which("createdb"):
        pytest.skip(f"PostgreSQL (and createdb) needed, at {PG_ADMIN_URL}")
    block = next(body for runs, body in shell_blocks(README.read_text(encoding="utf-8"))
                 if not runs and "createdb" in body)
    commands = [line for line in block.splitlines() if line.startswith(("createdb", "xinyong --db postgresql"))]
    assert commands == ["createdb -h 127.0.0.1 -U postgres xinyong",
                        "xinyong --db postgresql://postgres@127.0.0.1/xinyong init"]
    name = f"xy_readme_{uuid.uuid4().hex[:8]}"  # the example's name, made unique for a shared server
    script = "\n".join(re.sub(r"(?<=[ /])xinyong( init)?$", lambda m: name + (m.group(1) or ""), line)
                       for line in commands)
    try:
        done = _run(f"export XINYONG_AUDIT_DIR={scratch / 'audit'}\n" + script, scratch, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        made = create_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
        try:
            with made.connect() as c:
                assert c.execute(text("select count(*) from listings")).scalar() == 0  # the schema is there
        finally:
            made.dispose()
    finally:
        with _pg_admin().connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
