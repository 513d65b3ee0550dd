"""Backup, restore and moving a store (issue 16, item 18), on SQLite and PostgreSQL.

Backups never hold the audit key or the checkpoint signing key; the head file is in them.
`restore` refuses a store that is not empty without --force; `audit verify` passes on what it
restored, and on a SQLite store copied into PostgreSQL by `store copy --to`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import Cli, another_store, pg_database
from worlds import write_csv
from xinyong.store import tables as t
from xinyong.store.audit import AuditFiles
from xinyong.store.checkpoints import signing_key_path
from xinyong.store.db import open_engine

HEADERS = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "罚款金额（万元）", "备注"]


def fill(cli: Cli, folder: Path) -> None:
    """Two batches (one with a quarantined row and an unknown column), a key, a credential, a checkpoint."""
    cli("ingest", write_csv(folder / "a.csv", HEADERS, [
        ["上海甲乙丙科技有限公司", "91310000MA1XC00010", "沪市监罚〔2025〕1号", "2025-06-03", "3", "含\"引号\"与，逗号"],
        ["", "", "沪市监罚〔2025〕2号", "2025-06-04", "-1", ""]]), "--authority", "samr", "--category", "penalty")
    cli("ingest", write_csv(folder / "b.csv", HEADERS, [
        ["北京某某有限公司", "", "京市监罚〔2025〕3号", "2025-07-01", "1e3", "𠀀 rare character"]]),
        "--authority", "samr", "--category", "penalty")
    cli("authority", "key", "create", "samr", "--scopes", "screen,operate")
    cli("audit", "checkpoint")


@pytest.fixture
def second_store(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict]]:
    """Another empty database on the same engine, with its own audit folder (env to set while using it)."""
    with another_store(db_url, tmp_path, "restored") as url:
        yield url, ({} if url.startswith("sqlite") else {"XINYONG_AUDIT_DIR": str(tmp_path / "audit-restored")})


def counts(url: str) -> dict[str, int]:
    engine = open_engine(url)
    with engine.connect() as c:
        out = {table.name: c.execute(select(func.count()).select_from(table)).scalar_one()
               for table in t.metadata.sorted_tables}
    engine.dispose()
    return out


def test_backup_holds_no_key_and_restores_a_store_that_verifies(cli, db_url, second_store, tmp_path, monkeypatch):
    fill(cli, tmp_path)
    source = AuditFiles.for_url(db_url)
    audit_key, signing_key = source.key_path, signing_key_path(source)
    folder = tmp_path / "backup"
    made = json.loads(cli("backup", folder, "--json").stdout)
    assert made["keys_included"] is False and made["head"]["seq"] >= 3
    assert (folder / "audit-head").is_file() and (folder / "manifest.json").is_file()
    secrets = [audit_key.read_text().strip(), signing_key.read_text().strip()]
    for path in folder.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(secret.encode() in content for secret in secrets), path
    assert cli("backup", folder, ok=False).exit_code == 1  # never over an earlier backup
    before = counts(db_url)

    other_url, environment = second_store
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    other = Cli(other_url)
    refused = other("restore", folder, ok=False)
    assert refused.exit_code == 1 and "backups hold no audit key" in refused.output
    other("restore", folder, "--audit-key", audit_key)
    assert other("audit", "verify").exit_code == 0
    assert counts(other_url) == before

    # a store that holds anything is replaced only with --force
    other("authority", "key", "create", "tax", "--scopes", "screen")
    refused = other("restore", folder, "--audit-key", audit_key, ok=False)
    assert refused.exit_code == 1 and "is not empty" in refused.output
    other("restore", folder, "--audit-key", audit_key, "--force")
    assert other("audit", "verify").exit_code == 0
    assert counts(other_url) == before


def test_restore_refuses_what_is_not_a_backup(cli, db_url, second_store, tmp_path, monkeypatch):
    other_url, environment = second_store
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    other = Cli(other_url)
    (tmp_path / "empty").mkdir()
    refused = other("restore", tmp_path / "empty", ok=False)
    assert refused.exit_code == 1 and "no manifest.json; not an xinyong backup" in refused.output
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "manifest.json").write_text("{\"format\": 1}", encoding="utf-8")
    refused = other("restore", tmp_path / "junk", ok=False)
    assert refused.exit_code == 1 and "not an xinyong backup manifest" in refused.output


def test_a_sqlite_store_copied_into_postgresql_verifies(cli, db_url, tmp_path, monkeypatch, pg_available):
    if not db_url.startswith("sqlite"):
        pytest.skip("the copy reads a SQLite store")
    if not pg_available:
        pytest.skip("PostgreSQL unreachable")
    fill(cli, tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the PostgreSQL store's audit folder: ~/.xinyong/audit/…
    with pg_database() as target:
        copied = json.loads(cli("store", "copy", "--to", target, "--json").stdout)
        assert copied["audit_events"] >= 3 and copied["records"] == 2 and copied["quarantine"] == 1
        target_cli = Cli(target)
        verified = target_cli("audit", "verify", "--json")
        assert json.loads(verified.stdout)["intact"] is True
        assert counts(target) == counts(db_url)
        # the copy goes on working: new events chain on, serial keys continue after the copied rows
        target_cli("authority", "key", "create", "tax", "--scopes", "screen")
        assert target_cli("audit", "verify").exit_code == 0
        again = cli("store", "copy", "--to", target, ok=False)
        assert again.exit_code == 1 and "is not empty" in again.output
