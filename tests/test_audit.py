"""The audit chain: intact after real work, and any edit made behind its back is found.

Events are written by ingesting files through the CLI; then the audit table is altered with
plain SQL, as someone with database access could, and `xinyong audit verify` must fail
naming the first event that no longer fits. The chain is keyed (HMAC, key outside the
database) and its head is recorded outside the database, so a chain recomputed without the
key, and a deleted tail, are found too. Both engines.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection

from xinyong.domain.audit import GENESIS, HASHED_FIELDS, Head, event_hash, verify_chain
from xinyong.store import tables as t
from xinyong.store.audit import AuditError, AuditFiles, _as_utc_iso, append_event
from xinyong.store.db import open_engine

HEADERS = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "罚款金额（万元）"]


def write_batch(path: Path, first: int, count: int = 3) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        for n in range(first, first + count):
            writer.writerow([f"某某公司{n}", "91110000600037341L", f"罚〔2023〕{n}号", "2023-05-01", "1"])
        writer.writerow(["", "", f"罚〔2023〕{first + count}号", "2023-05-01", "1"])  # quarantined
    return path


def ingest(cli, path: Path, category: str = "penalty") -> None:
    cli("ingest", path, "--authority", "samr", "--category", category, "--json")


def verify(cli) -> tuple[int, dict, str]:
    result = cli("audit", "verify", "--json", ok=False)
    return result.exit_code, json.loads(result.stdout), result.stderr


def with_events(cli, tmp_path: Path, n: int = 4) -> None:
    for i in range(n):
        ingest(cli, write_batch(tmp_path / f"b{i}.csv", 10 * i))


def sql(cli, change: Callable[[Connection], None]) -> None:
    engine = open_engine(cli.url)
    try:
        with engine.begin() as connection:
            change(connection)
    finally:
        engine.dispose()


def files(cli) -> AuditFiles:
    return AuditFiles.for_url(cli.url)


def key(cli) -> bytes:
    return files(cli).key()


def events(cli) -> list[dict]:
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            return [dict(r) for r in c.execute(select(t.audit_events).order_by(t.audit_events.c.seq)).mappings()]
    finally:
        engine.dispose()


# -- intact ------------------------------------------------------------------------------------

def test_empty_chain_verifies(cli):
    code, data, _ = verify(cli)
    assert code == 0
    assert data == {"events": 0, "intact": True, "problem": None}


def test_chain_verifies_after_ingests(cli, tmp_path):
    with_events(cli, tmp_path, 3)
    ingest(cli, tmp_path / "b0.csv")  # the same file again: no new batch, no new event
    registration = tmp_path / "reg.csv"
    registration.write_text("统一社会信用代码,企业名称,曾用名\n91110000600037341L,北京某某科技有限公司,旧名\n", encoding="utf-8")
    ingest(cli, registration, category="registration")
    code, data, _ = verify(cli)
    assert code == 0, data
    assert data == {"events": 4, "intact": True, "problem": None}
    human = cli("audit", "verify")
    assert "intact" in human.stdout and "4 events" in human.stdout
    stored = events(cli)
    assert [e["seq"] for e in stored] == [1, 2, 3, 4]
    assert stored[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(stored, stored[1:]))
    assert {e["action"] for e in stored} == {"batch.ingested"}
    assert [e["object_id"] for e in stored] == ["1", "2", "3", "4"]
    assert stored[0]["payload"]["quarantined"] == 1 and stored[0]["payload"]["accepted"] == 3


def test_stored_events_rehash_identically(cli, tmp_path):
    """What the store gives back (JSON, timestamps) is exactly what was hashed, on each engine."""
    with_events(cli, tmp_path, 2)
    stored = [{**e, "at": _as_utc_iso(e["at"])} for e in events(cli)]
    prev = GENESIS
    for event in stored:
        assert event_hash(prev, event, key(cli)) == event["hash"]
        prev = event["hash"]
    assert verify_chain(stored, key(cli)) == (2, None)
    assert verify_chain(stored, b"another key" * 3)[1].startswith("event 1:")
    assert files(cli).read_head() == Head(2, stored[-1]["hash"])


# -- tampered ----------------------------------------------------------------------------------

def _reason(c: Connection) -> None:
    c.execute(text("UPDATE audit_events SET reason = 'corrected by hand' WHERE seq = 2"))


def _payload(c: Connection) -> None:
    c.execute(text("UPDATE audit_events SET payload = :p WHERE seq = 2"),
              {"p": json.dumps({"file": "b1.csv", "rows": 1, "accepted": 0, "quarantined": 0, "duplicates": 0})})


def _payload_same_keys(c: Connection) -> None:
    payload = c.execute(select(t.audit_events.c.payload).where(t.audit_events.c.seq == 2)).scalar_one()
    c.execute(update(t.audit_events).where(t.audit_events.c.seq == 2).values(payload={**payload, "accepted": 0}))


def _actor(c: Connection) -> None:
    c.execute(text("UPDATE audit_events SET actor = 'someone else' WHERE seq = 2"))


def _action(c: Connection) -> None:
    c.execute(text("UPDATE audit_events SET action = 'batch.revoked' WHERE seq = 2"))


def _object_id(c: Connection) -> None:
    c.execute(text("UPDATE audit_events SET object_id = '99' WHERE seq = 2"))


def _legal_basis(c: Connection) -> None:
    c.execute(text("UPDATE audit_events SET legal_basis = '无' WHERE seq = 2"))


def _time(c: Connection) -> None:
    at = c.execute(select(t.audit_events.c.at).where(t.audit_events.c.seq == 2)).scalar_one()
    c.execute(update(t.audit_events).where(t.audit_events.c.seq == 2).values(at=at - dt.timedelta(days=1)))


def _delete_middle(c: Connection) -> None:
    c.execute(text("DELETE FROM audit_events WHERE seq = 2"))


def _delete_first(c: Connection) -> None:
    c.execute(text("DELETE FROM audit_events WHERE seq = 1"))


def _key_of(c: Connection) -> bytes:
    """The tamperings below that rehash use the real key: even a key holder who edits events
    in the middle of the chain is found, by the links after the edit."""
    return AuditFiles.for_url(c.engine.url).key()


def _rehash_one(c: Connection) -> None:
    """Edit an event and recompute its own hash: the next event no longer follows it."""
    row = dict(c.execute(select(t.audit_events).where(t.audit_events.c.seq == 2)).mappings().one())
    row["reason"] = "tidied"
    new_hash = event_hash(row["prev_hash"], {**row, "at": _as_utc_iso(row["at"])}, _key_of(c))
    c.execute(update(t.audit_events).where(t.audit_events.c.seq == 2).values(reason="tidied", hash=new_hash))


def _swap_contents(c: Connection) -> None:
    """Events 2 and 3 exchange everything but their sequence numbers."""
    cols = [col for col in t.audit_events.c if col.name != "seq"]
    rows = {r["seq"]: dict(r) for r in c.execute(select(t.audit_events).where(
        t.audit_events.c.seq.in_([2, 3]))).mappings()}
    # hash is unique: park one first
    c.execute(update(t.audit_events).where(t.audit_events.c.seq == 2).values(hash="parked"))
    c.execute(update(t.audit_events).where(t.audit_events.c.seq == 3).values(
        **{col.name: rows[2][col.name] for col in cols}))
    c.execute(update(t.audit_events).where(t.audit_events.c.seq == 2).values(
        **{col.name: rows[3][col.name] for col in cols}))


def _swap_sequence_numbers(c: Connection) -> None:
    c.execute(text("UPDATE audit_events SET seq = 1000 WHERE seq = 2"))
    c.execute(text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
    c.execute(text("UPDATE audit_events SET seq = 3 WHERE seq = 1000"))


def _insert_forged(c: Connection) -> None:
    """A forged event slipped in between 2 and 3, chained to 2 but leaving 3 untouched."""
    row = dict(c.execute(select(t.audit_events).where(t.audit_events.c.seq == 3)).mappings().one())
    prev = c.execute(select(t.audit_events.c.hash).where(t.audit_events.c.seq == 2)).scalar_one()
    c.execute(text("UPDATE audit_events SET seq = seq + 100 WHERE seq >= 3"))
    forged = {**row, "seq": 3, "object_id": "77", "prev_hash": prev}
    forged["hash"] = event_hash(prev, {**forged, "at": _as_utc_iso(forged["at"])}, _key_of(c))
    c.execute(t.audit_events.insert().values(**forged))
    c.execute(text("UPDATE audit_events SET seq = seq - 99 WHERE seq >= 100"))


def _plain_sha256(prev_hash: str, event: dict) -> str:
    """The chain's old, unkeyed hash: what someone without the key can compute."""
    body = {k: event.get(k) for k in HASHED_FIELDS}
    blob = orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    return hashlib.sha256(prev_hash.encode() + blob).hexdigest()


def _recompute_chain(c: Connection, edit: Callable[[dict], None], mac: Callable[[str, dict], str]) -> None:
    """Rewrite every event's links after `edit`-ing event 2, as a forger would."""
    rows = [dict(r) for r in c.execute(select(t.audit_events).order_by(t.audit_events.c.seq)).mappings()]
    prev = GENESIS
    for row in rows:
        if row["seq"] == 2:
            edit(row)
        row["prev_hash"] = prev
        row["hash"] = prev = mac(prev, {**row, "at": _as_utc_iso(row["at"])})
        c.execute(update(t.audit_events).where(t.audit_events.c.seq == row["seq"]).values(
            {k: row[k] for k in ("actor", "reason", "payload", "prev_hash", "hash")}))


def _forged_without_key(c: Connection) -> None:
    """The whole chain recomputed with plain SHA-256 after an edit: the key is what it lacks."""
    _recompute_chain(c, lambda row: row.update(actor="someone else"), _plain_sha256)


def _forged_with_wrong_key(c: Connection) -> None:
    _recompute_chain(c, lambda row: row.update(reason="tidied"),
                     lambda prev, event: event_hash(prev, event, os.urandom(32)))


TAMPERING: dict[str, tuple[Callable[[Connection], None], int]] = {
    "reason changed": (_reason, 2),
    "payload replaced": (_payload, 2),
    "one payload value changed": (_payload_same_keys, 2),
    "actor changed": (_actor, 2),
    "action changed": (_action, 2),
    "object changed": (_object_id, 2),
    "legal basis added": (_legal_basis, 2),
    "time moved": (_time, 2),
    "middle event deleted": (_delete_middle, 3),
    "first event deleted": (_delete_first, 2),
    "event edited and rehashed": (_rehash_one, 3),
    "contents swapped": (_swap_contents, 2),
    "sequence numbers swapped": (_swap_sequence_numbers, 2),
    "forged event inserted": (_insert_forged, 4),
    "chain recomputed with plain SHA-256": (_forged_without_key, 1),
    "chain recomputed with a guessed key": (_forged_with_wrong_key, 1),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_is_found(cli, tmp_path, case):
    tamper, first_broken = TAMPERING[case]
    with_events(cli, tmp_path, 4)
    assert verify(cli)[0] == 0
    sql(cli, tamper)
    code, data, stderr = verify(cli)
    assert code != 0
    assert data["intact"] is False
    assert data["problem"].startswith(f"event {first_broken}:"), data["problem"]
    assert f"event {first_broken}" in stderr
    assert "audit chain broken" in stderr
    human = cli("audit", "verify", ok=False)
    assert human.exit_code != 0
    assert f"event {first_broken}" in human.stderr
    assert "Traceback" not in human.output


def test_tampering_with_records_is_outside_the_chain_but_events_are_not(cli, tmp_path):
    """Editing a batch is found against its audited event; editing that event's payload to match
    is found by the chain."""
    with_events(cli, tmp_path, 2)
    sql(cli, lambda c: c.execute(text("UPDATE batches SET accepted = 0 WHERE id = 1")))
    code, data, _ = verify(cli)
    assert code != 0 and data["problem"].startswith("batch 1: accepted is 0"), data
    sql(cli, _payload_same_keys)
    code, data, _ = verify(cli)
    assert code != 0 and data["problem"].startswith("event 2:")


# -- the key and the head, outside the database -----------------------------------------------------

def _delete_newest(count: int) -> Callable[[Connection], None]:
    def change(c: Connection) -> None:
        c.execute(text("DELETE FROM audit_events WHERE seq > (SELECT max(seq) FROM audit_events) - :n"), {"n": count})
    return change


def _rewrite_newest_with_key(c: Connection) -> None:
    """Even with the key, rewriting the newest event (no link after it) is found by the head."""
    row = dict(c.execute(select(t.audit_events).where(t.audit_events.c.seq == 4)).mappings().one())
    row["reason"] = "tidied"
    new_hash = event_hash(row["prev_hash"], {**row, "at": _as_utc_iso(row["at"])}, _key_of(c))
    c.execute(update(t.audit_events).where(t.audit_events.c.seq == 4).values(reason="tidied", hash=new_hash))


@pytest.mark.parametrize("case, tamper, problem", [
    ("newest event deleted", _delete_newest(1), "tail deleted: head file says seq 4, database ends at 3"),
    ("two newest deleted", _delete_newest(2), "tail deleted: head file says seq 4, database ends at 2"),
    ("every event deleted", _delete_newest(4), "tail deleted: head file says seq 4, database ends at 0"),
    ("newest rewritten with the key", _rewrite_newest_with_key, "event 4: differs from the recorded head"),
])
def test_tail_tampering_is_found_by_the_head(cli, tmp_path, case, tamper, problem):
    with_events(cli, tmp_path, 4)
    sql(cli, tamper)
    assert verify_chain([{**e, "at": _as_utc_iso(e["at"])} for e in events(cli)], key(cli))[1] is None, \
        "the chain alone cannot see this"
    code, data, stderr = verify(cli)
    assert code != 0 and data["intact"] is False
    assert data["problem"] == problem
    assert problem in stderr and "audit chain broken" in stderr


def test_appending_after_a_deleted_tail_keeps_the_evidence(cli, tmp_path):
    """New work after a truncation does not move the head over it: verify keeps failing."""
    with_events(cli, tmp_path, 4)
    head = files(cli).read_head()
    sql(cli, _delete_newest(1))
    ingest(cli, write_batch(tmp_path / "after.csv", 100))  # becomes a new event 4
    assert [e["seq"] for e in events(cli)] == [1, 2, 3, 4]
    assert files(cli).read_head() == head
    code, data, _ = verify(cli)
    assert code != 0 and data["problem"] == "event 4: differs from the recorded head"


def test_key_and_head_files(cli, tmp_path, db_url):
    audit = files(cli)
    if db_url.startswith("sqlite"):
        assert audit.key_path == tmp_path / "store.db.audit-key"
        assert audit.head_path == tmp_path / "store.db.audit-head"
    else:
        assert audit.key_path == tmp_path / "audit" / "audit-key"
        assert audit.head_path == tmp_path / "audit" / "audit-head"
    assert stat.S_IMODE(audit.key_path.stat().st_mode) == 0o600
    assert len(bytes.fromhex(audit.key_path.read_text().strip())) == 32
    assert audit.read_head() == Head(0, GENESIS)
    with_events(cli, tmp_path, 2)
    assert audit.read_head() == Head(2, events(cli)[-1]["hash"])
    assert not list(audit.head_path.parent.glob(f".{audit.head_path.name}.*")), "no temp file left behind"


def test_init_again_keeps_key_and_head(cli, tmp_path):
    with_events(cli, tmp_path, 2)
    before = files(cli).key_path.read_bytes(), files(cli).head_path.read_bytes()
    result = cli("init")
    assert str(files(cli).key_path) in result.stdout and str(files(cli).head_path) in result.stdout
    assert (files(cli).key_path.read_bytes(), files(cli).head_path.read_bytes()) == before
    assert verify(cli)[:2] == (0, {"events": 2, "intact": True, "problem": None})


def test_missing_key_is_reported_clearly(cli, tmp_path):
    with_events(cli, tmp_path, 2)
    key_path = files(cli).key_path
    key_path.unlink()
    code, data, _ = verify(cli)
    assert code != 0 and data["events"] == 2
    assert data["problem"].startswith(f"audit key file missing: {key_path}"), data["problem"]
    result = cli("ingest", write_batch(tmp_path / "more.csv", 100), "--authority", "samr",
                 "--category", "penalty", ok=False)
    assert result.exit_code != 0
    assert isinstance(result.exception, AuditError)
    assert str(key_path) in str(result.exception) and "xinyong init" in str(result.exception)
    assert len(events(cli)) == 2, "the batch rolled back with its event"
    # init will not make a new key that could never verify the events already there
    again = cli("init", ok=False)
    assert again.exit_code != 0
    assert str(key_path) in again.stderr and "restore the key" in again.stderr
    assert not key_path.exists()


def test_missing_head_is_reported(cli, tmp_path):
    with_events(cli, tmp_path, 2)
    head_path = files(cli).head_path
    head_path.unlink()
    code, data, _ = verify(cli)
    assert code != 0
    assert data["problem"] == f"no head recorded for a chain of 2 events: head file {head_path} missing"
    cli("init")  # does not paper over it with a new head
    assert not head_path.exists()


def test_malformed_head_is_reported(cli, tmp_path):
    with_events(cli, tmp_path, 1)
    files(cli).head_path.write_text("seq 1\n")
    code, data, _ = verify(cli)
    assert code != 0 and "malformed" in data["problem"] and str(files(cli).head_path) in data["problem"]


def test_head_behind_the_chain_is_accepted_with_a_note(cli, tmp_path):
    """A process stopped between its commit and its head write: the later events verify."""
    with_events(cli, tmp_path, 3)
    first = events(cli)[0]
    files(cli).write_head(1, first["hash"], force=True)
    code, data, _ = verify(cli)
    assert code == 0, data
    assert data["intact"] is True and data["problem"] is None
    assert "events 2..3" in data["note"]
    assert "note: events 2..3" in cli("audit", "verify").stdout
    ingest(cli, write_batch(tmp_path / "next.csv", 100))  # the next commit brings the head up to date
    assert files(cli).read_head() == Head(4, events(cli)[-1]["hash"])
    assert verify(cli)[1] == {"events": 4, "intact": True, "problem": None}


def test_rolled_back_transaction_leaves_the_head_alone(cli, tmp_path):
    with_events(cli, tmp_path, 1)
    head = files(cli).read_head()
    engine = open_engine(cli.url)
    try:
        with pytest.raises(RuntimeError, match="stop"), engine.begin() as connection:
            append_event(connection, actor="t", action="test.rolled_back", object_type="test",
                         object_id="1", payload={})
            raise RuntimeError("stop")
        with engine.connect() as connection:  # explicit rollback, same connection used again after
            append_event(connection, actor="t", action="test.rolled_back", object_type="test",
                         object_id="2", payload={})
            connection.rollback()
            assert files(cli).read_head() == head
            append_event(connection, actor="t", action="test.committed", object_type="test",
                         object_id="3", payload={"n": 3})
            connection.commit()
    finally:
        engine.dispose()
    assert [e["action"] for e in events(cli)] == ["batch.ingested", "test.committed"]
    assert files(cli).read_head() == Head(2, events(cli)[-1]["hash"])
    assert verify(cli)[0] == 0


def test_concurrent_appends_keep_chain_and_head(cli):
    """Writers in parallel: one chain, and the head ends at its last event, never behind it."""
    if cli.url.startswith("sqlite"):
        pytest.skip("SQLite writers do not run in parallel")
    engine = open_engine(cli.url)
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                with engine.begin() as connection:
                    append_event(connection, actor=f"w{n}", action="test.parallel", object_type="test",
                                 object_id=f"{n}-{i}", payload={"i": i})
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    try:
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        engine.dispose()
    assert not failures, failures
    stored = events(cli)
    assert len(stored) == 40
    assert files(cli).read_head() == Head(40, stored[-1]["hash"])
    assert verify(cli)[1] == {"events": 40, "intact": True, "problem": None}


def test_a_new_database_in_the_same_place_starts_a_new_head(tmp_path, monkeypatch):
    """Deleting an SQLite store and initialising again: the old head belonged to the old store."""
    from conftest import Cli

    monkeypatch.delenv("XINYONG_AUDIT_DIR", raising=False)
    cli = Cli(f"sqlite:///{tmp_path / 'store.db'}")
    cli("init")
    with_events(cli, tmp_path, 2)
    key_before = files(cli).key_path.read_bytes()
    for leftover in tmp_path.glob("store.db*"):
        if "audit" not in leftover.name:
            leftover.unlink()
    result = cli("init")
    assert "audit head reset" in result.stdout
    assert files(cli).key_path.read_bytes() == key_before
    assert verify(cli)[:2] == (0, {"events": 0, "intact": True, "problem": None})
    with_events(cli, tmp_path, 1)
    assert verify(cli)[:2] == (0, {"events": 1, "intact": True, "problem": None})


# -- where the audit files live -----------------------------------------------------------------

def test_audit_folder_locations(tmp_path, monkeypatch):
    monkeypatch.delenv("XINYONG_AUDIT_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    db = tmp_path / "data" / "x.db"
    sqlite = AuditFiles.for_url(f"sqlite:///{db}")
    assert (sqlite.key_path, sqlite.head_path) == (tmp_path / "data" / "x.db.audit-key",
                                                  tmp_path / "data" / "x.db.audit-head")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert AuditFiles.for_url("sqlite:///rel.db").key_path == tmp_path / "work" / "rel.db.audit-key"
    pg = AuditFiles.for_url("postgresql://u:secret@db.example:6543/registry")
    folder = tmp_path / "home" / ".xinyong" / "audit" / "db.example_6543_registry"
    assert (pg.key_path, pg.head_path) == (folder / "audit-key", folder / "audit-head")
    assert AuditFiles.for_url("postgresql+psycopg://localhost/registry").key_path.parent.name == "localhost_5432_registry"
    monkeypatch.setenv("XINYONG_AUDIT_DIR", str(tmp_path / "elsewhere"))
    for url in (f"sqlite:///{db}", "postgresql://u@db.example:6543/registry"):
        chosen = AuditFiles.for_url(url)
        assert (chosen.key_path, chosen.head_path) == (tmp_path / "elsewhere" / "audit-key",
                                                      tmp_path / "elsewhere" / "audit-head")
    monkeypatch.delenv("XINYONG_AUDIT_DIR")
    with pytest.raises(AuditError, match="XINYONG_AUDIT_DIR"):
        AuditFiles.for_url("sqlite://")


def test_ensure_never_replaces_a_key(tmp_path):
    audit = AuditFiles(tmp_path / "k" / "audit-key", tmp_path / "k" / "audit-head")
    audit.ensure()
    key_before = audit.key()
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o700
    assert audit.ensure() == []
    assert audit.key() == key_before
    assert audit.write_head(3, "a" * 64)
    assert not audit.write_head(2, "b" * 64), "a head never moves back"
    assert audit.read_head() == Head(3, "a" * 64)
    audit.key_path.unlink()
    with pytest.raises(AuditError, match="restore the key"):
        audit.ensure(events=3)
