"""Test fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL comes from XINYONG_TEST_PG_URL (default: the local server, database `test`).
Each test gets a fresh database cloned from a migrated template, so tests are isolated
and can run in parallel. With XINYONG_REQUIRE_PG=1 (set by .ci/run) an unreachable
PostgreSQL fails the run instead of skipping its half.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from xinyong.cli import app

PG_ADMIN_URL = os.environ.get("XINYONG_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_admin():
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_available() -> bool:
    try:
        with _pg_admin().connect() as c:
            c.execute(text("select 1"))
        return True
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("XINYONG_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL required but unreachable at {PG_ADMIN_URL}: {exc}")
        return False


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A URL of an empty (not yet initialised) database on each engine.

    The audit key and head go where they go by default for SQLite (beside the database
    file); for PostgreSQL into the test's own folder, through XINYONG_AUDIT_DIR (which
    subprocesses inherit), not into ~/.xinyong.
    """
    if request.param == "sqlite":
        monkeypatch.delenv("XINYONG_AUDIT_DIR", raising=False)
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    monkeypatch.setenv("XINYONG_AUDIT_DIR", str(tmp_path / "audit"))
    if not request.getfixturevalue("pg_available"):
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}")
    name = f"xy_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_url(name)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Cli:
    """Runs `xinyong` in-process against one store, as a user would type it."""

    def __init__(self, url: str):
        self.url = url
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True):
        result = self.runner.invoke(app, ["--db", self.url, *[str(a) for a in args]])
        if ok and result.exit_code != 0:
            raise AssertionError(f"xinyong {' '.join(map(str, args))} exited {result.exit_code}:\n"
                                 f"{result.output}\n{result.exception!r}")
        return result


@pytest.fixture
def cli(db_url: str) -> Cli:
    runner = Cli(db_url)
    runner("init")
    return runner
