"""The README's shell blocks run as written on a fresh demo store: the docs cannot drift.

Every block fenced ```sh (and not ```sh not-run) runs, in order, in one bash with `set -e`, from
a scratch root laid out like a checkout (the package under `xinyong/`, so pack paths resolve)
after `xinyong demo --no-serve`, which writes demo/tour.env. The PostgreSQL block runs on its
own against the test server, with a database name of its own in place of the example's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from conftest import PG_ADMIN_URL, _pg_admin
from xinyong.services.operations.demo import TOUR_FILE

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


def _run(script: str, scratch: Path, timeout: int = 2400) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-u", "-o", "pipefail", "-x", "-c", script], cwd=scratch,
                          env=_environment(scratch), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def toured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout's root as the README assumes it (the package beside a fresh demo store), after
    every runnable block of the README ran on it, in order. A failing tour fails every test here."""
    root = tmp_path_factory.mktemp("readme")
    (root / "xinyong").symlink_to(ROOT / "xinyong", target_is_directory=True)
    blocks = shell_blocks(README.read_text(encoding="utf-8"))
    runnable = [body for runs, body in blocks if runs]
    assert runnable and any("tour.env" in body for body in runnable)
    demo = _run(f"xinyong demo --no-serve --entities {DEMO_ENTITIES}", root)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    tour = _tour(root)
    assert {"KEY_OPERATE", "KEY_SUBMIT", "KEY_SCREEN", "ENTITY", "REVIEW", "LISTING", "OBJECTION", "OBJECTION2",
            "REPAIR", "REPAIR_LISTING", "REPAIR_RECORD", "EXTEND_LISTING", "COURT_LISTING", "RECORD",
            "SPARE_KEY_ID"} <= tour.keys()
    assert all(tour.values()), tour
    done = _run("\n".join(runnable), root)
    # bash -x traces each command: the last one traced is the one that failed
    assert done.returncode == 0, f"the README drifted:\n{done.stderr[-4000:]}\n{done.stdout[-2000:]}"
    return root


def _tour(root: Path) -> dict[str, str]:
    """tour.env as the shell reads it (values are shell-quoted)."""
    pairs = (line.split("=", 1) for line in (root / "demo" / TOUR_FILE).read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#"))
    return {name: "".join(shlex.split(value)) for name, value in pairs}


def _not_run(word: str) -> str:
    return next(body for runs, body in shell_blocks(README.read_text(encoding="utf-8")) if not runs and word in body)


def test_readme_tour_runs_as_written_on_a_fresh_demo(toured: Path) -> None:
    # what the tour did is in the store: both objections decided (one by the reviewing authority),
    # the extension, the court listing ended, both repair applications, the spare key rotated
    tour = _tour(toured)
    engine = create_engine(f"sqlite:///{toured / 'xinyong.db'}")
    try:
        with engine.connect() as c:
            decided = dict(c.execute(text("select id, state from objections where id in (:a, :b)"),
                                     {"a": int(tour["OBJECTION"]), "b": int(tour["OBJECTION2"])}).all())
            assert decided == {int(tour["OBJECTION"]): "upheld", int(tour["OBJECTION2"]): "upheld"}
            assert c.execute(text("select extended_years from listings where id = :i"),
                             {"i": int(tour["EXTEND_LISTING"])}).scalar() == 2
            assert c.execute(text("select end_reason from listings where id = :i"),
                             {"i": int(tour["COURT_LISTING"])}).scalar() == "performed"
            assert c.execute(text("select count(*) from repairs where record_key = :k"),
                             {"k": tour["REPAIR_RECORD"]}).scalar() == 1
            assert c.execute(text("select state, accepted_on is not null from repairs where id = :i"),
                             {"i": int(tour["REPAIR"])}).one() == ("approved", 1)
            assert c.execute(text("select revoked_at is not null from api_keys where id = :i"),
                             {"i": int(tour["SPARE_KEY_ID"])}).scalar() == 1
    finally:
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readme_serve_block_serves_the_tour_store(toured: Path) -> None:
    """The serve block as written, on a free port in place of 8000: the server starts on the
    toured store, its /docs answer, and the block's curl screens the tour's firm."""
    block = _not_run("xinyong serve")
    serve = next(line for line in block.splitlines() if line.startswith("xinyong serve"))
    assert serve.split("#")[0].split() == ["xinyong", "serve", "--host", "127.0.0.1", "--port", "8000"]
    port = _free_port()
    rest = "\n".join(line for line in block.splitlines() if not line.startswith("xinyong serve"))
    rest = rest.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    server = subprocess.Popen(["bash", "-c", serve.split("#")[0].replace("8000", str(port))], cwd=toured,
                              env=_environment(toured), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/docs", timeout=5) as answer:
                    assert answer.status == 200 and "swagger" in answer.read().decode().lower()
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "serve did not answer within 60 s"
                time.sleep(0.5)
        done = _run("set -a; . demo/tour.env; set +a\n" + rest, toured, timeout=60)
        assert done.returncode == 0, done.stderr[-3000:]
        answer = json.loads(done.stdout)
        # the tour's listed firm, still listed after the tour: a measure applies to it
        assert answer["subject"]["key"] == _tour(toured)["ENTITY"] and answer["measures"], answer
        assert answer["decision"] in ("deny", "conditions"), answer
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_readme_store_copy_block_moves_the_tour_store_to_postgresql(toured: Path, pg_available: bool) -> None:
    if not pg_available or not shutil.which("createdb"):
        pytest.skip(f"PostgreSQL (and createdb) needed, at {PG_ADMIN_URL}")
    block = _not_run("store copy")
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["createdb -h 127.0.0.1 -U postgres registry",
                        "xinyong store copy --to postgresql://postgres@127.0.0.1/registry",
                        "xinyong --db postgresql://postgres@127.0.0.1/registry audit verify"]
    name = f"xy_readme_{uuid.uuid4().hex[:8]}"  # the example's name, made unique for a shared server
    script = "\n".join(re.sub(r"(?<=[ /])registry\b", name, line) for line in commands)
    try:
        # the PostgreSQL store's audit folder is under $HOME (the scratch root), apart from the SQLite one's
        done = _run(script, toured, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
        made = create_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
        source = create_engine(f"sqlite:///{toured / 'xinyong.db'}")
        try:
            with made.connect() as c, source.connect() as s:
                for table in ("listings", "records", "audit_events"):
                    assert c.execute(text(f"select count(*) from {table}")).scalar() == \
                        s.execute(text(f"select count(*) from {table}")).scalar() > 0
        finally:
            made.dispose()
            source.dispose()
    finally:
        with _pg_admin().connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    (tmp_path / "xinyong").symlink_to(ROOT / "xinyong", target_is_directory=True)
    return tmp_path


def test_readme_postgresql_block_runs_on_a_database_of_its_own(scratch: Path, pg_available: bool) -> None:
    if not pg_available or not shutil.which("createdb"):
        pytest.skip(f"PostgreSQL (and createdb) needed, at {PG_ADMIN_URL}")
    block = _not_run("xinyong init")
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
