"""Opening a store: engine per URL (SQLite WAL or PostgreSQL), migrations, settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import Connection, make_url

from xinyong.store import tables as t

DEFAULT_URL = "sqlite:///xinyong.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class StoreError(Exception):
    """The store cannot be used as asked; the message says why and what to do."""


def database_url(url: str | None) -> str:
    url = url or os.environ.get("XINYONG_DATABASE_URL") or DEFAULT_URL
    # Accept plain postgresql:// URLs; the driver we ship is psycopg 3.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoint; safe with WAL
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def open_engine(url: str | None = None) -> Engine:
    url = database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_database_file(Path(parsed.database).expanduser())
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    raise StoreError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql://")


def _private_database_file(path: Path) -> None:
    """A new SQLite file made empty and 0600 before SQLite opens it (its WAL and shared-memory files
    take its mode): the store holds persons' ID numbers whole, like the backups and exports made 0600.
    A file already there is left as it is; a folder missing is SQLite's to report."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except (FileExistsError, FileNotFoundError, NotADirectoryError):
        pass


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> str:
    """Create or upgrade the schema to the newest revision; returns that revision."""
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")
        return MigrationContext.configure(connection).get_current_revision() or ""


def schema_revision(engine: Engine) -> str | None:
    """The store's schema revision; None for a database never initialised."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_current(engine: Engine) -> None:
    """Refuse to work on a store that was never initialised or is behind the code."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        head = ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
    if current is None:
        raise StoreError(f"{engine.url.render_as_string(hide_password=True)}: not initialised; run `xinyong init`")
    if current != head:
        raise StoreError(f"schema at {current}, code expects {head}: run `xinyong init` to migrate")


def get_setting(connection: Connection, key: str) -> str | None:
    return connection.execute(select(t.settings.c.value).where(t.settings.c.key == key)).scalar()


def set_setting(connection: Connection, key: str, value: str) -> None:
    if get_setting(connection, key) is None:
        connection.execute(t.settings.insert().values(key=key, value=value))
    else:
        connection.execute(t.settings.update().where(t.settings.c.key == key).values(value=value))


def private_folder(folder: Path) -> Path:
    """`folder`, made with any missing parents readable by the owner only (0700, which no umask widens):
    the store's folders beside the database and what an operator writes out name persons by their ID
    numbers (screening uploads and results, subjects' attachments). A folder already there is left as it is."""
    for path in reversed([folder, *folder.parents]):
        if not path.exists():
            path.mkdir(mode=0o700, exist_ok=True)
    return folder


def private_file(path: Path, mode: str = "wb", **options: Any) -> IO[Any]:
    """`path` opened for writing (emptied), readable by its owner only (0600), whatever the umask and
    whatever mode a file left at the path had: a rejects file, the links, screening results."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, mode, **options)


def store_folder(engine: Engine, purpose: str, override_env: str) -> Path:
    """A folder that belongs to this store, for files kept beside the database (jobs, attachments):
    `$override_env` when set; beside a SQLite file (`x.db.<purpose>`); else
    `~/.xinyong/<purpose>/<host>_<port>_<database>`."""
    override = os.environ.get(override_env)
    if override:
        return Path(override).expanduser().resolve()
    url = make_url(engine.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db_file = Path(url.database).expanduser().resolve()
        return db_file.with_name(f"{db_file.name}.{purpose}")
    safe = "_".join(str(p).replace("/", "_") for p in (url.host or "localhost", url.port or 5432, url.database or ""))
    return Path.home() / ".xinyong" / purpose / safe
