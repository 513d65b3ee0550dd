"""Orphaned screening jobs (issue 16, item 12): a worker killed with SIGKILL leaves its job running;
the next server start resumes it from its last committed line without logging any decision twice,
or marks it failed with the reason when it cannot be resumed."""

from __future__ import annotations

import csv
import io
import time

import pytest
from sqlalchemy import func, select

from worlds import FIRM_CLEAN, FIRM_DEBTOR, FIRM_SERIOUS, PERSON, build_world, serving
from xinyong.services.screening import jobs
from xinyong.store import tables as t
from xinyong.store.db import open_engine

LINES = 60_000


@pytest.fixture
def world(cli, tmp_path):
    return build_world(cli, tmp_path)


def upload(lines: int) -> bytes:
    """Known firms, a person, unknown and malformed codes, an empty line's worth of nothing."""
    subjects = [FIRM_SERIOUS, FIRM_DEBTOR, FIRM_CLEAN, PERSON, "91110000000000000X", "not-a-code", "=cmd|' /C calc'!A0"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["identifier"])
    for n in range(lines):
        writer.writerow([subjects[n % len(subjects)]])
    return out.getvalue().encode()


def job_row(engine, job_id: str):
    with engine.connect() as c:
        return c.execute(select(t.screen_jobs).where(t.screen_jobs.c.id == job_id)).mappings().one()


def wait_for(engine, job_id: str, states: tuple[str, ...], seconds: float = 240) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = job_row(engine, job_id)
        if row["state"] in states:
            return dict(row)
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job_row(engine, job_id)['state']}")


def test_a_killed_worker_is_resumed_at_serve_start_without_double_logging(cli, world, db_url):
    engine = open_engine(db_url)
    job_id = jobs.create_job(engine, upload(LINES), "csv", key_id=None, authority="samr", purpose="supervision",
                             action="public_procurement", as_of=None)
    worker = jobs.spawn(engine, job_id)
    deadline = time.monotonic() + 240
    while (row := job_row(engine, job_id))["done"] < 2 * jobs.COMMIT_LINES:  # a few commits in, not at the end
        assert time.monotonic() < deadline and row["state"] != "failed", row
        time.sleep(0.02)
    worker.kill()  # SIGKILL: no handler, no cleanup
    worker.wait()
    orphan = job_row(engine, job_id)
    assert orphan["state"] == "running" and 0 < orphan["done"] < LINES, orphan
    with engine.connect() as c:
        logged_before = c.execute(select(func.count()).select_from(t.query_log)
                                  .where(t.query_log.c.endpoint == "screen_job")).scalar_one()

    with serving(db_url):  # serve start finds the dead worker and resumes the job
        finished = wait_for(engine, job_id, ("done", "failed"))
    assert finished["state"] == "done" and finished["done"] == LINES, finished
    assert "died after" in (finished["error"] or "")
    results = (jobs.result_path(engine, job_id, "csv")).read_text(encoding="utf-8-sig").splitlines()
    table = list(csv.DictReader(results))
    assert [int(r["line"]) for r in table] == list(range(2, LINES + 2))  # every line once, in order
    jsonl = (jobs.result_path(engine, job_id, "jsonl")).read_bytes().splitlines()
    assert len(jsonl) == LINES
    with engine.connect() as c:
        logged = c.execute(select(t.query_log.c.query_id).where(t.query_log.c.endpoint == "screen_job")).scalars().all()
    decided = [n for n, r in enumerate(table) if r["decision"]]
    assert decided  # (an unreadable line gets an error and no decision, hence no log row)
    # the decisions logged before the kill were not logged again; none was lost
    assert sum(1 for n in decided if n < orphan["done"]) == logged_before
    assert len(logged) == len(set(logged)) == len(decided)
    assert set(logged) == {jobs.query_id(job_id, n) for n in decided}
    engine.dispose()


def test_a_job_that_cannot_resume_is_marked_failed_with_the_reason(cli, world, db_url):
    engine = open_engine(db_url)
    job_id = jobs.create_job(engine, upload(10), "csv", key_id=None, authority="samr", purpose="supervision",
                             action="public_procurement", as_of=None)
    worker = jobs.spawn(engine, job_id)
    worker.kill()
    worker.wait()
    jobs._set(engine, job_id, state="running", worker_pid=worker.pid)  # as if it had started, then died
    (jobs.jobs_folder(engine) / job_id / "input.csv").unlink()
    with serving(db_url):
        failed = wait_for(engine, job_id, ("failed",), 30)
    assert f"worker {worker.pid} died after 0 lines" in failed["error"] and "input" in failed["error"]
    assert "submit the batch again" in failed["error"]
    engine.dispose()
