"""A batch is atomic: killing the ingesting process mid-file leaves nothing behind.

The ingest runs as a real process (`python -m xinyong`), is SIGKILLed while it is clearly
writing (the SQLite WAL or PostgreSQL's records heap growing with uncommitted rows), and
the store must then hold no batch, no record, no quarantined row and no audit event. The
same ingest run again completes, once.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from xinyong.store.db import database_url

ROWS = 200_000
BAD_EVERY = 1000  # every 1000th row has an impossible date: quarantine is written too
IN_PROGRESS_BYTES = 10 << 20
TIMEOUT = 90

pytestmark = pytest.mark.slow


def xinyong(url: str, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xinyong", "--db", url, *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def write_big_csv(path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "罚款金额（万元）", "违法事实"])
        for n in range(ROWS):
            writer.writerow([f"测试商贸有限公司{n}", "91110000600037341L", f"京市监罚〔2023〕{n}号",
                             "2023-02-30" if n % BAD_EVERY == 0 else "2023-05-01", "1.5", "未按规定公示年度报告"])


def progress_probe(url: str, tmp_path: Path) -> tuple[Callable[[], int], Callable[[], None]]:
    """Bytes the running ingest has written but not committed, and a cleanup."""
    if url.startswith("sqlite"):
        wal = tmp_path / "store.db-wal"
        return (lambda: wal.stat().st_size if wal.exists() else 0), (lambda: None)
    engine = create_engine(database_url(url), isolation_level="AUTOCOMMIT")

    def size() -> int:
        with engine.connect() as c:  # the heap file grows with uncommitted COPY rows
            return c.execute(text("SELECT pg_relation_size('records')")).scalar_one()
    return size, engine.dispose


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def counts(url: str) -> dict[str, int]:
    result = xinyong(url, "stats", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return {k: data[k] for k in ("batches", "records", "quarantined_rows", "audit_events", "entities")}


def test_killed_ingest_leaves_nothing_and_rerun_completes(db_url, tmp_path):
    big = tmp_path / "big.csv"
    write_big_csv(big)
    init = xinyong(db_url, "init")
    assert init.returncode == 0, init.stderr
    command = [sys.executable, "-m", "xinyong", "--db", db_url, "ingest", str(big),
               "--authority", "samr", "--category", "penalty", "--json"]
    written, cleanup = progress_probe(db_url, tmp_path)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    helpers: list[int] = []
    try:
        deadline = time.monotonic() + TIMEOUT
        while written() < IN_PROGRESS_BYTES:
            assert process.poll() is None, (
                f"ingest finished before it could be killed (exit {process.returncode}); "
                f"raise ROWS. stderr: {process.stderr.read().decode()[-500:]}")
            assert time.monotonic() < deadline, "ingest never showed progress"
            time.sleep(0.05)
        helpers = children_of(process.pid)
        assert process.poll() is None
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
        # A helper process, if the ingest uses any, must not outlive the ingest it served
        # (it could hold the store's connection, and the batch's locks, open).
        give_up = time.monotonic() + 15
        while any(alive(pid) for pid in helpers) and time.monotonic() < give_up:
            time.sleep(0.1)
        orphans = [pid for pid in helpers if alive(pid)]
        assert not orphans, f"helper processes {orphans} still running after their parent was killed"
    finally:
        if process.poll() is None or helpers:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the group this test started, and only it
            except ProcessLookupError:
                pass
        process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()
        cleanup()

    assert counts(db_url) == {"batches": 0, "records": 0, "quarantined_rows": 0, "audit_events": 0, "entities": 0}

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout.strip().splitlines()[-1])
    bad = ROWS // BAD_EVERY
    assert (result["rows"], result["accepted"], result["quarantined"], result["duplicates"]) == (ROWS, ROWS - bad, bad, 0)
    assert result["duplicate_of"] is None
    assert counts(db_url) == {"batches": 1, "records": ROWS - bad, "quarantined_rows": bad, "audit_events": 1,
                              "entities": 0}
    verify = xinyong(db_url, "audit", "verify")
    assert verify.returncode == 0, verify.stderr
    again = xinyong(db_url, "ingest", str(big), "--authority", "samr", "--category", "penalty", "--json")
    assert json.loads(again.stdout)["duplicate_of"] == result["batch_id"]
