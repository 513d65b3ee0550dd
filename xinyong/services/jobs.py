"""Batch screening jobs: an upload is stored, screened by a separate process, and its
results written as CSV and JSON Lines into the store's jobs folder.

The worker is `xinyong screen --job ID`, a separate process that lowers its own CPU priority
(nice 10) so that a million-row batch cannot starve the real-time endpoint; it loads its own
screening index.
Every decision of the batch is logged, like a single screening, in chunks.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, select, update

from xinyong.domain.calendar import pack_today
from xinyong.domain.csvsafe import SafeDictWriter
from xinyong.domain.pack import Pack
from xinyong.services.querylog import QueryLog
from xinyong.services.screen import BATCH_COLUMNS, ScreeningIndex, batch_rows, screen_batch
from xinyong.store import tables as t
from xinyong.store.db import store_folder

JOBS_DIR_ENV = "XINYONG_JOBS_DIR"
PROGRESS_EVERY = 10_000
WORKER_NICENESS = 10


def jobs_folder(engine: Engine) -> Path:
    """XINYONG_JOBS_DIR; else beside a SQLite file; else ~/.xinyong/jobs/HOST_PORT_DB."""
    return store_folder(engine, "jobs", JOBS_DIR_ENV)


def _folder(engine: Engine, job_id: str) -> Path:
    return jobs_folder(engine) / job_id


def create_job(engine: Engine, data: bytes, input_format: str, *, key_id: int | None, authority: str, purpose: str,
               action: str | None, as_of: dt.date | None) -> str:
    job_id = uuid.uuid4().hex
    folder = _folder(engine, job_id)
    folder.mkdir(parents=True)
    (folder / f"input.{input_format}").write_bytes(data)
    with engine.begin() as c:
        c.execute(t.screen_jobs.insert().values(
            id=job_id, key_id=key_id, authority=authority, purpose=purpose, state="queued", input_format=input_format,
            action=action, as_of=as_of, total=None, done=0, created_at=dt.datetime.now(dt.timezone.utc)))
    return job_id


def spawn(engine: Engine, job_id: str) -> None:
    """Start the worker. The database URL goes in its environment, not its command line (where
    `ps` would show a password); it lowers its own priority (see `run_job`)."""
    folder = _folder(engine, job_id)
    environment = {**os.environ, "XINYONG_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    with (folder / "worker.log").open("wb") as log_file:
        subprocess.Popen([sys.executable, "-m", "xinyong", "screen", "--job", job_id], env=environment,
                         stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def job_status(engine: Engine, job_id: str) -> dict[str, Any] | None:
    if "\x00" in job_id:  # names no job, and PostgreSQL cannot even compare it
        return None
    j = t.screen_jobs.c
    with engine.connect() as c:
        row = c.execute(select(t.screen_jobs).where(j.id == job_id)).mappings().first()
    if row is None:
        return None
    out = {k: row[k] for k in ("id", "authority", "purpose", "state", "action", "as_of", "total", "done", "error",
                               "created_at", "finished_at")}
    if row["state"] == "done":
        out["results"] = {"csv": f"/v1/screen/jobs/{job_id}/results.csv",
                          "jsonl": f"/v1/screen/jobs/{job_id}/results.jsonl"}
    return out


def result_path(engine: Engine, job_id: str, extension: str) -> Path:
    return _folder(engine, job_id) / f"results.{extension}"


def _set(engine: Engine, job_id: str, **values: Any) -> None:
    with engine.begin() as c:
        c.execute(update(t.screen_jobs).where(t.screen_jobs.c.id == job_id).values(**values))


def run_job(engine: Engine, pack: Pack, job_id: str) -> dict[str, Any]:
    """Screen every line of a stored job; the job ends done or failed, never half-reported."""
    j = t.screen_jobs.c
    with engine.connect() as c:
        job = c.execute(select(t.screen_jobs).where(j.id == job_id)).mappings().first()
    if job is None:
        raise ValueError(f"no screening job {job_id!r}")
    folder = _folder(engine, job_id)
    os.nice(WORKER_NICENESS)  # behind real-time screening on the same machine
    try:
        rows = list(batch_rows((folder / f"input.{job['input_format']}").read_bytes(), job["input_format"]))
        _set(engine, job_id, state="running", total=len(rows))
        needs_names = any(isinstance(r, dict) and r.get("name") and not r.get("identifier") for _, r in rows)
        index = ScreeningIndex.load(engine, pack, names=needs_names)
        log = QueryLog(engine)
        done = 0
        partial_csv, partial_jsonl = folder / "results.csv.part", folder / "results.jsonl.part"
        with partial_csv.open("w", encoding="utf-8-sig", newline="") as csv_file, partial_jsonl.open("wb") as jsonl:
            writer = SafeDictWriter(csv_file, fieldnames=BATCH_COLUMNS)
            writer.writeheader()
            for result in screen_batch(index, rows, job["action"], job["as_of"] or pack_today(pack)):
                writer.writerow(result)
                jsonl.write(orjson.dumps(result) + b"\n")
                if result["decision"] is not None:
                    log.add(query_id=uuid.uuid4().hex, key_id=job["key_id"], authority=job["authority"],
                            purpose=job["purpose"], endpoint="screen_job", query=result["identifier"] or result["name"],
                            subject=result["subject"], action=result["action"], as_of=result["as_of"],
                            result=result["decision"], measures=result["measures"].split(";") if result["measures"] else [])
                done += 1
                if done % PROGRESS_EVERY == 0:
                    log.flush()
                    _set(engine, job_id, done=done)
        log.flush()
        partial_csv.rename(folder / "results.csv")
        partial_jsonl.rename(folder / "results.jsonl")
        _set(engine, job_id, state="done", done=done, finished_at=dt.datetime.now(dt.timezone.utc))
        return {"id": job_id, "state": "done", "done": done}
    except Exception as exc:
        _set(engine, job_id, state="failed", error=f"{type(exc).__name__}: {exc}",
             finished_at=dt.datetime.now(dt.timezone.utc))
        raise
