"""Audit truncation and state outside the chain, found from the store itself (issue 16, items 10, 11).

Every test tampers as someone who can write to the database and to the head file would: it deletes
the newest events and rewrites the head to match, or edits a listing in SQL. `audit verify` with no
option must exit non-zero, and `--checkpoint FILE` must hold an old checkpoint against the chain.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, select, text

from worlds import FIRM_SERIOUS, build_world, serving, write_csv
from xinyong.domain.audit import GENESIS
from xinyong.store import tables as t
from xinyong.store.audit import AuditFiles
from xinyong.store.checkpoints import signature_problem, signing_key, public_hex, signing_key_path
from xinyong.store.db import open_engine


def verify(cli, *args: str) -> tuple[int, dict]:
    result = cli("audit", "verify", *args, "--json", ok=False)
    return result.exit_code, json.loads(result.stdout)


def penalties(folder: Path, name: str, number: int) -> Path:
    return write_csv(folder / name, ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "罚款金额（万元）"],
                     [["上海甲乙丙科技有限公司", "91310000MA1XC00010", f"沪市监罚〔2025〕{number}号", "2025-06-03", "3"]])


def truncate_after(url: str, keep: int) -> None:
    """Delete every event after `keep` and rewrite the head file to the new last event."""
    engine = open_engine(url)
    with engine.begin() as c:
        c.execute(delete(t.audit_events).where(t.audit_events.c.seq > keep))
        last = c.execute(select(t.audit_events.c.hash).where(t.audit_events.c.seq == keep)).scalar() or GENESIS
    engine.dispose()
    AuditFiles.for_url(url).write_head(keep, last, force=True)


def sql(url: str, statement: str) -> None:
    engine = open_engine(url)
    with engine.begin() as c:
        c.execute(text(statement))
    engine.dispose()


def test_deleted_newest_events_with_rewritten_head_are_found(cli, tmp_path):
    cli("ingest", penalties(tmp_path, "a.csv", 1), "--authority", "samr", "--category", "penalty")
    cli("ingest", penalties(tmp_path, "b.csv", 2), "--authority", "samr", "--category", "penalty")
    cli("authority", "key", "create", "bank_of_x", "--scopes", "screen", ok=False)  # unknown authority: no key
    cli("authority", "key", "create", "commercial_bank", "--scopes", "screen")
    code, data = verify(cli)
    assert code == 0, data
    # the key's creation (seq 3) is deleted and the head rewritten: the chain alone still looks whole
    truncate_after(cli.url, 2)
    code, data = verify(cli)
    assert code != 0
    assert "API key 1 has no audit event (key.created)" in data.get("problems", [data["problem"]])


def test_deleted_rows_and_events_are_found_by_the_signed_checkpoint(cli, tmp_path):
    cli("ingest", penalties(tmp_path, "a.csv", 1), "--authority", "samr", "--category", "penalty")
    cli("ingest", penalties(tmp_path, "b.csv", 2), "--authority", "samr", "--category", "penalty")
    # the second batch, its records and its event all go; only the signed checkpoint remembers them
    sql(cli.url, "DELETE FROM records WHERE batch_id = 2")
    sql(cli.url, "DELETE FROM batches WHERE id = 2")
    truncate_after(cli.url, 1)
    code, data = verify(cli)
    assert code != 0
    assert "signed checkpoint at seq 2" in data["problem"] and "ahead of the chain" in data["problem"], data


def test_saved_checkpoint_anchors_the_chain(cli, tmp_path):
    cli("ingest", penalties(tmp_path, "a.csv", 1), "--authority", "samr", "--category", "penalty")
    saved = tmp_path / "checkpoint.json"
    cli("audit", "checkpoint", "-o", saved)
    anchor = json.loads(saved.read_text(encoding="utf-8"))
    assert anchor["seq"] == 1 and len(anchor["signature"]) == 128 and len(anchor["fingerprint"]) == 16
    cli("ingest", penalties(tmp_path, "b.csv", 2), "--authority", "samr", "--category", "penalty")
    assert verify(cli, "--checkpoint", str(saved))[0] == 0

    # everything back to before the anchor, stored checkpoints included: only the saved file knows
    sql(cli.url, "DELETE FROM chain_checkpoints")
    sql(cli.url, "DELETE FROM records")
    sql(cli.url, "DELETE FROM batches")
    truncate_after(cli.url, 0)
    assert verify(cli)[0] == 0  # an empty store agrees with itself
    code, data = verify(cli, "--checkpoint", str(saved))
    assert code != 0 and "ahead of the chain" in data["problem"], data

    forged = dict(anchor, seq=0)  # a forged anchor does not verify under the store's key
    (tmp_path / "forged.json").write_text(json.dumps(forged), encoding="utf-8")
    code, data = verify(cli, "--checkpoint", str(tmp_path / "forged.json"))
    assert code != 0 and "signature does not verify" in data["problem"], data
    (tmp_path / "junk.json").write_text("{not json", encoding="utf-8")
    code, data = verify(cli, "--checkpoint", str(tmp_path / "junk.json"))
    assert code != 0 and "junk.json: not a checkpoint" in data["problem"], data


def test_the_signing_key_stays_outside_the_database(cli, tmp_path):
    cli("ingest", penalties(tmp_path, "a.csv", 1), "--authority", "samr", "--category", "penalty")
    files = AuditFiles.for_url(cli.url)
    path = signing_key_path(files)
    assert path.parent == files.key_path.parent and oct(path.stat().st_mode & 0o777) == "0o600"
    secret = path.read_text(encoding="ascii").strip()
    engine = open_engine(cli.url)
    with engine.connect() as c:
        stored = [dict(r) for r in c.execute(select(t.chain_checkpoints)).mappings()]
        settings = [r.value for r in c.execute(select(t.settings))]
    engine.dispose()
    assert stored and all(secret not in str(row) for row in stored) and secret not in settings
    public = public_hex(signing_key(files).public_key())
    assert stored[-1]["public_key"] == public


@pytest.fixture
def world(cli, tmp_path):
    build_world(cli, tmp_path)
    return cli


def test_listing_state_changed_in_sql_is_reported(world):
    assert verify(world)[0] == 0
    engine = open_engine(world.url)
    with engine.connect() as c:
        listing = c.execute(select(t.listings.c.id).join(t.entities, t.entities.c.id == t.listings.c.entity_id)
                            .join(t.entity_identifiers, t.entity_identifiers.c.entity_id == t.entities.c.id)
                            .where(t.entity_identifiers.c.value == FIRM_SERIOUS)).scalar_one()
    engine.dispose()
    sql(world.url, f"UPDATE listings SET state = 'withdrawn' WHERE id = {listing}")
    code, data = verify(world)
    assert code != 0
    assert data["problem"] == f"listing {listing}: state is withdrawn, its audited transitions end in effective"

    sql(world.url, f"UPDATE listings SET state = 'effective', effective_to = '2099-01-01' WHERE id = {listing}")
    code, data = verify(world)
    assert code != 0 and data["problem"].startswith(f"listing {listing}: effective_to is 2099-01-01"), data


def test_record_version_changed_in_sql_is_reported(world):
    sql(world.url, "UPDATE records SET status = 'revoked' WHERE id = (SELECT MIN(id) FROM records)")
    code, data = verify(world)
    assert code != 0 and "differ from those its audited ingestion stored" in data["problem"], data


def test_public_endpoint_serves_a_checkpoint_that_verifies(world):
    files = AuditFiles.for_url(world.url)
    public = public_hex(signing_key(files).public_key())
    with serving(world.url) as base:
        answer = httpx.get(f"{base}/v1/checkpoints/latest", timeout=30)
    assert answer.status_code == 200
    document = answer.json()
    assert signature_problem(document, public) is None
    engine = open_engine(world.url)
    with engine.connect() as c:
        last = c.execute(select(t.audit_events.c.seq, t.audit_events.c.hash)
                         .order_by(t.audit_events.c.seq.desc()).limit(1)).one()
    engine.dispose()
    assert (document["seq"], document["hash"]) == (last.seq, last.hash)  # serve signs its head on start
