"""The audit chain: intact after real work, and any edit made behind its back is found.

Events are written by ingesting files through the CLI; then the audit table is altered with
plain SQL, as someone with database access could, and `xinyong audit verify` must fail
naming the first event that no longer fits. Both engines.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection

from xinyong.domain.audit import GENESIS, event_hash, verify_chain
from xinyong.store import tables as t
from xinyong.store.audit import _as_utc_iso
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
        assert event_hash(prev, event) == event["hash"]
        prev = event["hash"]
    assert verify_chain(stored) == (2, None)


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


def _rehash_one(c: Connection) -> None:
    """Edit an event and recompute its own hash: the next event no longer follows it."""
    row = dict(c.execute(select(t.audit_events).where(t.audit_events.c.seq == 2)).mappings().one())
    row["reason"] = "tidied"
    new_hash = event_hash(row["prev_hash"], {**row, "at": _as_utc_iso(row["at"])})
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
    forged["hash"] = event_hash(prev, {**forged, "at": _as_utc_iso(forged["at"])})
    c.execute(t.audit_events.insert().values(**forged))
    c.execute(text("UPDATE audit_events SET seq = seq - 99 WHERE seq >= 100"))


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
    """Sanity: editing an event's payload to match edited records is still found."""
    with_events(cli, tmp_path, 2)
    sql(cli, lambda c: c.execute(text("UPDATE batches SET accepted = 0 WHERE id = 1")))
    assert verify(cli)[0] == 0  # batches are not chained; their event is
    sql(cli, _payload_same_keys)
    code, data, _ = verify(cli)
    assert code != 0 and data["problem"].startswith("event 2:")
