"""Test fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL comes from XINYONG_TEST_PG_URL (default: the local server, database `test`).
Each test gets a fresh database cloned from a migrated template, so tests are isolated
and can run in parallel. With XINYONG_REQUIRE_PG=1 (set by .ci/run) an unreachable
PostgreSQL fails the run instead of skipping its half.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from xinyong.cli import app

# No deadline per example: the machine is shared and noisy, a first call pays for lazy imports
# (pypinyin, OpenCC's dictionaries), and speed is measured in bench/, never in unit tests.
settings.register_profile("xinyong", deadline=None)
settings.load_profile("xinyong")

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


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for the block: its URL; dropped after, even with sessions open."""
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


@contextlib.contextmanager
def another_store(db_url: str, folder: Path, name: str) -> Iterator[str]:
    """A second empty store on the same engine as `db_url`: `folder/name.db` on SQLite."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{folder / name}.db"
        return
    with pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A URL of an empty (not yet initialised) database on each engine.

    The audit key and head go where they go by default for SQLite (beside the database
    file); for PostgreSQL into the test's own folder, through XINYONG_AUDIT_DIR (which
    subprocesses inherit), not into ~/.xinyong. Batch-job results and uploaded files go
    and screening's index file go into the test's folder on both engines (`tmp_path/jobs`,
    `tmp_path/files`, `tmp_path/screen-index`).
    """
    monkeypatch.setenv("XINYONG_JOBS_DIR", str(tmp_path / "jobs"))  # batch screening results
    monkeypatch.setenv("XINYONG_FILES_DIR", str(tmp_path / "files"))  # attachments, evidence
    monkeypatch.setenv("XINYONG_SCREEN_INDEX_DIR", str(tmp_path / "screen-index"))  # screening's index file
    if request.param == "sqlite":
        monkeypatch.delenv("XINYONG_AUDIT_DIR", raising=False)
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    monkeypatch.setenv("XINYONG_AUDIT_DIR", str(tmp_path / "audit"))
    if not request.getfixturevalue("pg_available"):
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}")
    with pg_database() as url:
        yield url


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


# -- browser tests: Playwright driving the system Chromium (never a downloaded browser) ----------------

CHROMIUM = os.environ.get("XINYONG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """One Chromium per test worker. Skipped where Chromium or Playwright is missing, unless
    XINYONG_REQUIRE_BROWSER=1 (set by .ci/run, which installs Debian's chromium)."""
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        if os.environ.get("XINYONG_REQUIRE_BROWSER") == "1":
            pytest.fail(f"playwright is not installed: {exc}")
        pytest.skip("playwright is not installed")
    if not Path(CHROMIUM).exists():
        if os.environ.get("XINYONG_REQUIRE_BROWSER") == "1":
            pytest.fail(f"no Chromium at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies) per test, downloads accepted."""
    context = browser.new_context(accept_downloads=True, locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()
