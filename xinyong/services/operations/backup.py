"""Backups, restores and moving a store from SQLite to PostgreSQL.

A backup folder holds the database (SQLite's online backup API: `store.db`; PostgreSQL's
`pg_dump` custom format: `store.pgdump`), the audit head file (`audit-head`), the uploaded files
(`files/`) and `manifest.json`. It never holds the audit key or the checkpoint signing key: they
are kept apart from backups, so that whoever holds a backup cannot rewrite its history unnoticed.
`restore` takes the key from `--audit-key FILE` (the signing key from beside it, or
`--signing-key FILE`) unless the target store's own keys are already in place.

The head is read before the database is copied: the copy holds at least the events it names,
and any committed after it verify as a tail the head had not recorded yet.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Integer, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from xinyong.store import tables as t
from xinyong.store.audit import AuditFiles, audit_files
from xinyong.store.checkpoints import latest, signing_key_path
from xinyong.store.db import migrate, open_engine, private_file, require_current, schema_revision, store_folder

SQLITE_FILE = "store.db"
PG_DUMP_FILE = "store.pgdump"
HEAD_FILE = "audit-head"
MANIFEST = "manifest.json"
FILES = "files"
COPY_CHUNK = 5000


class BackupError(Exception):
    """A backup, restore or copy that cannot be done as asked; the message says why."""


# -- helpers ---------------------------------------------------------------------------------------

def _pg_environment(url: Any) -> tuple[list[str], dict[str, str]]:
    """libpq connection options for pg_dump / pg_restore / psql, the password in the environment
    (never on the command line, where `ps` would show it)."""
    parsed = make_url(url)
    environment = dict(os.environ)
    if parsed.password:
        environment["PGPASSWORD"] = str(parsed.password)
    options = ["-h", parsed.host or "localhost", "-p", str(parsed.port or 5432), "-U", parsed.username or "postgres",
               "-d", parsed.database or "postgres"]
    return options, environment


def _major(version_text: str) -> int:
    found = re.search(r"(\d+)\.\d+", version_text)  # "pg_dump (PostgreSQL) 15.20 (Debian ...)": 15
    if not found:
        raise BackupError(f"cannot read a version from {version_text!r}")
    return int(found.group(1))


def _check_pg_tool(engine: Engine, tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BackupError(f"{tool} not found: install postgresql-client (the same major version as the server)")
    client = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout
    with engine.connect() as c:
        server = int(c.execute(text("SHOW server_version_num")).scalar_one()) // 10000
    if _major(client) != server:
        raise BackupError(f"{tool} is version {client.strip()}, the server is PostgreSQL {server}: "
                          f"use the {tool} of PostgreSQL {server}")
    return path


def _is_empty_folder(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def store_is_empty(engine: Engine) -> bool:
    """No table of ours holds a row (a database never initialised is empty too)."""
    names = set(inspect(engine).get_table_names())
    with engine.connect() as c:
        for table in t.metadata.sorted_tables:
            if table.name in names and c.execute(select(func.count()).select_from(table)).scalar_one():
                return False
    return True


# -- backup ------------------------------------------------------------------------------------------

def backup(engine: Engine, folder: Path) -> dict[str, Any]:
    """Write a backup of the store into `folder` (new or empty). Returns the manifest."""
    require_current(engine)
    if not _is_empty_folder(folder):
        raise BackupError(f"{folder}: not an empty folder; give a new one")
    # the copy names persons by their ID numbers like the store (0600): the folder and all in it private
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    files = audit_files(engine)
    head = files.read_head()
    if head is not None:
        with private_file(folder / HEAD_FILE) as handle:
            handle.write(files.head_path.read_bytes())
    url = engine.url
    if url.get_backend_name() == "sqlite":
        target = folder / SQLITE_FILE
        private_file(target).close()  # SQLite writes into the empty file, keeping its mode
        with closing(sqlite3.connect(url.database)) as source, closing(sqlite3.connect(target)) as copy:
            source.backup(copy)  # the online backup API: a consistent copy while others write
        database = SQLITE_FILE
    else:
        pg_dump = _check_pg_tool(engine, "pg_dump")
        options, environment = _pg_environment(url)
        private_file(folder / PG_DUMP_FILE).close()  # pg_dump rewrites the file, keeping its mode
        done = subprocess.run([pg_dump, "--format=custom", "--no-owner", "--file", str(folder / PG_DUMP_FILE),
                               *options], env=environment, capture_output=True, text=True)
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}")
        database = PG_DUMP_FILE
    uploaded = store_folder(engine, "files", "XINYONG_FILES_DIR")
    if uploaded.is_dir():
        shutil.copytree(uploaded, folder / FILES)
    with engine.connect() as c:
        checkpoint = latest(c)
        counts = {table.name: c.execute(select(func.count()).select_from(table)).scalar_one()
                  for table in t.metadata.sorted_tables}
    manifest = {"format": "xinyong-backup-1", "engine": url.get_backend_name(), "database": database,
                "schema": schema_revision(engine), "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                "head": {"seq": head.seq, "hash": head.hash} if head else None, "checkpoint": checkpoint,
                "rows": counts, "keys_included": False}
    with private_file(folder / MANIFEST, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


# -- restore ------------------------------------------------------------------------------------------

def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{folder}: no {MANIFEST}; not an xinyong backup") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{folder / MANIFEST}: unreadable: {exc}") from None
    if manifest.get("format") != "xinyong-backup-1" or manifest.get("database") not in (SQLITE_FILE, PG_DUMP_FILE):
        raise BackupError(f"{folder / MANIFEST}: not an xinyong backup manifest")
    if not (folder / manifest["database"]).is_file():
        raise BackupError(f"{folder}: the backup's database file {manifest['database']} is missing")
    return manifest


def _install_key(source: Path | None, target: Path, what: str) -> None:
    """Put a key file in place (mode 0600); a different key already there is never replaced."""
    if source is None:
        if not target.exists():
            raise BackupError(f"backups hold no {what}: give its file with --{what.replace(' ', '-')} "
                              f"(it is not at {target})")
        return
    try:
        content = source.read_bytes()
    except OSError as exc:
        raise BackupError(f"--{what.replace(' ', '-')} {source}: {exc.strerror or exc}") from None
    if target.exists():
        if target.read_bytes().strip() != content.strip():
            raise BackupError(f"{target} already holds another {what}; move it away first")
        return
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)


def restore(url: str, folder: Path, *, audit_key: Path | None = None, signing_key: Path | None = None,
            force: bool = False) -> dict[str, Any]:
    """Restore a backup into the store at `url`; refuses a store that holds anything unless `force`."""
    manifest = _read_manifest(folder)
    engine = open_engine(url)
    backend = engine.url.get_backend_name()
    if backend != manifest["engine"]:
        raise BackupError(f"{folder} is a {manifest['engine']} backup; restore it into a {manifest['engine']} store "
                          f"(to move SQLite to PostgreSQL, restore it and then use `xinyong store copy --to URL`)")
    if not force and not store_is_empty(engine):
        raise BackupError(f"{engine.url.render_as_string(hide_password=True)} is not empty; "
                          "restore into an empty store, or give --force to replace its content")
    files = audit_files(engine)
    if signing_key is None and audit_key is not None:
        beside = signing_key_path(AuditFiles(audit_key, audit_key))
        signing_key = beside if beside.exists() and beside != audit_key else None
    _install_key(audit_key, files.key_path, "audit key")
    _install_key(signing_key, signing_key_path(files), "signing key")
    if backend == "sqlite":
        engine.dispose()
        with closing(sqlite3.connect(folder / SQLITE_FILE)) as source, closing(sqlite3.connect(engine.url.database)) as target:
            source.backup(target)
    else:
        pg_restore = _check_pg_tool(engine, "pg_restore")
        if force:
            with engine.begin() as c:  # tables the dump may not hold (a newer schema) go too
                c.execute(text("DROP SCHEMA public CASCADE"))
                c.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        options, environment = _pg_environment(engine.url)
        done = subprocess.run([pg_restore, "--no-owner", "--exit-on-error", *options, str(folder / PG_DUMP_FILE)],
                              env=environment, capture_output=True, text=True)
        if done.returncode != 0:
            raise BackupError(f"pg_restore failed: {done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}")
    if (folder / HEAD_FILE).is_file():
        head = json.loads((folder / HEAD_FILE).read_text(encoding="utf-8"))
        files.write_head(int(head["seq"]), str(head["hash"]), force=True)
    if (folder / FILES).is_dir():
        shutil.copytree(folder / FILES, store_folder(engine, "files", "XINYONG_FILES_DIR"), dirs_exist_ok=True)
    return manifest


# -- SQLite -> PostgreSQL ---------------------------------------------------------------------------------

def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:  # SQLite gives UTC back without its zone
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def copy_store(source: Engine, target_url: str) -> dict[str, int]:
    """Copy every table of a SQLite store into an empty PostgreSQL store (its schema made or migrated
    first), with the audit key, signing key and head beside it. Returns rows copied per table."""
    require_current(source)
    if source.url.get_backend_name() != "sqlite":
        raise BackupError("store copy reads a SQLite store (--db sqlite:///FILE)")
    try:
        target = open_engine(target_url)
    except ArgumentError:
        raise BackupError(f"--to {target_url!r}: not a database URL; give postgresql://USER@HOST/DATABASE") from None
    if target.url.get_backend_name() != "postgresql":
        raise BackupError("store copy writes into PostgreSQL: --to postgresql://...")
    try:
        empty = store_is_empty(target)
    except OperationalError as exc:  # no such database, server down, password refused
        raise BackupError(f"cannot open {target.url.render_as_string(hide_password=True)}: "
                          f"{' '.join(str(exc.orig).split())}") from None
    if not empty:
        raise BackupError(f"{target.url.render_as_string(hide_password=True)} is not empty; copy into an empty database")
    source_files, target_files = audit_files(source), audit_files(target)
    if source_files.key_path == target_files.key_path:
        raise BackupError(f"both stores would share the audit folder {target_files.key_path.parent}; "
                          "unset XINYONG_AUDIT_DIR or point it elsewhere for one of them")
    _install_key(source_files.key_path, target_files.key_path, "audit key")
    if signing_key_path(source_files).exists():
        _install_key(signing_key_path(source_files), signing_key_path(target_files), "signing key")
    migrate(target)
    copied: dict[str, int] = {}
    with source.connect() as reader, target.begin() as writer:
        for table in t.metadata.sorted_tables:
            if table.name == "settings":  # the target's own rows (pack) are replaced by the source's
                writer.execute(table.delete())
            count = 0
            rows = reader.execute(select(table).execution_options(yield_per=COPY_CHUNK)).mappings()
            batch: list[dict[str, Any]] = []
            for row in rows:
                batch.append({k: _utc(v) for k, v in row.items()})
                if len(batch) >= COPY_CHUNK:
                    writer.execute(table.insert(), batch)
                    count += len(batch)
                    batch = []
            if batch:
                writer.execute(table.insert(), batch)
                count += len(batch)
            copied[table.name] = count
            for column in table.primary_key.columns:  # serial keys go on after the copied rows
                if isinstance(column.type, Integer) and column.autoincrement in (True, "auto"):
                    writer.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                        f"COALESCE((SELECT MAX({column.name}) FROM {table.name}), 1), "
                        f"(SELECT MAX({column.name}) FROM {table.name}) IS NOT NULL)"))
    head = source_files.read_head()
    if head is not None:
        target_files.write_head(head.seq, head.hash, force=True)
    uploaded = store_folder(source, "files", "XINYONG_FILES_DIR")
    if uploaded.is_dir():
        shutil.copytree(uploaded, store_folder(target, "files", "XINYONG_FILES_DIR"), dirs_exist_ok=True)
    target.dispose()
    return copied
