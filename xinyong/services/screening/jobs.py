"""Batch screening jobs: an upload is stored, screened by a separate process, and its
results written as CSV and JSON Lines into the store's jobs folder.

The worker is `xinyong screen --job ID`, a separate process that lowers its own CPU priority
(nice 10) so that a million-row batch cannot starve the real-time endpoint; it loads its own
screening index.
Every decision of the batch is logged, like a single screening, in chunks committed with the
results they belong to. The worker beats a heartbeat; when a server starts, a job whose worker
died (`recover_jobs`) is resumed from its last committed line, or marked failed with the reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, select, update

from xinyong.domain.calendar import pack_today
from xinyong.domain.csvsafe import SafeDictWriter
from xinyong.domain.pack import Pack
from xinyong.services.screening.screen import BATCH_COLUMNS, ScreeningIndex, batch_rows, csv_row, screen_batch
from xinyong.store import tables as t
from xinyong.store.db import private_folder, store_folder

JOBS_DIR_ENV = "XINYONG_JOBS_DIR"
COMMIT_LINES = 1000  # results and their log rows are committed together this often ...
COMMIT_SECONDS = 1.0  # ... or after this long, whichever comes first
HEARTBEAT_SECONDS = 5.0
STALE_SECONDS = 30.0  # no heartbeat for this long: the worker is gone (e.g. on another host)
WORKER_NICENESS = 10


def jobs_folder(engine: Engine) -> Path:
    """XINYONG_JOBS_DIR; else beside a SQLite file; else ~/.xinyong/jobs/HOST_PORT_DB."""
    return store_folder(engine, "jobs", JOBS_DIR_ENV)


def _folder(engine: Engine, job_id: str) -> Path:
    return jobs_folder(engine) / job_id


def create_job(engine: Engine, data: bytes, input_format: str, *, key_id: int | None, authority: str, purpose: str,
               action: str | None, as_of: dt.date | None) -> str:
    job_id = uuid.uuid4().hex
    folder = private_folder(jobs_folder(engine)) / job_id
    folder.mkdir(mode=0o700)  # the upload and its results name persons by their ID numbers
    (folder / f"input.{input_format}").write_bytes(data)
    with engine.begin() as c:
        c.execute(t.screen_jobs.insert().values(
            id=job_id, key_id=key_id, authority=authority, purpose=purpose, state="queued", input_format=input_format,
            action=action, as_of=as_of, total=None, done=0, created_at=dt.datetime.now(dt.timezone.utc)))
    return job_id


def spawn(engine: Engine, job_id: str) -> subprocess.Popen:
    """Start the worker. The database URL goes in its environment, not its command line (where
    `ps` would show a password); it lowers its own priority (see `run_job`)."""
    folder = _folder(engine, job_id)
    environment = {**os.environ, "XINYONG_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    with (folder / "worker.log").open("ab") as log_file:
        return subprocess.Popen([sys.executable, "-m", "xinyong", "screen", "--job", job_id], env=environment,
                                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def query_id(job_id: str, position: int) -> str:
    """The query log's id of a job's answer: the same line always gets the same id, so a resumed
    job can never log a decision twice (the id is unique in the log)."""
    return hashlib.sha256(f"{job_id}:{position}".encode()).hexdigest()[:32]


class _Heartbeat:
    """While the worker lives, `heartbeat_at` moves every HEARTBEAT_SECONDS (a thread: the index load
    and a long screening both keep it beating)."""

    def __init__(self, engine: Engine, job_id: str):
        self.engine, self.job_id = engine, job_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="job-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(HEARTBEAT_SECONDS):
            try:
                _set(self.engine, self.job_id, heartbeat_at=_now())
            except Exception:  # noqa: BLE001 - a missed beat is retried; a dead store ends the job anyway
                continue

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _truncated(path: Path, size: int) -> None:
    """Drop what was written after the last commit: those lines are screened again."""
    with path.open("r+b") as handle:
        handle.truncate(size)


def run_job(engine: Engine, pack: Pack, job_id: str) -> dict[str, Any]:
    """Screen every line of a stored job; the job ends done or failed, never half-reported.

    Results and query-log rows are committed together every COMMIT_LINES lines or COMMIT_SECONDS
    (`resume`: lines done and the result files' sizes then). A worker started again for the same job
    (`recover_jobs`) cuts the files back to that point and goes on from the next line, so nothing
    is logged twice and nothing is lost.
    """
    j = t.screen_jobs.c
    with engine.connect() as c:
        job = c.execute(select(t.screen_jobs).where(j.id == job_id)).mappings().first()
    if job is None:
        raise ValueError(f"no screening job {job_id!r}")
    if job["state"] in ("done", "failed"):
        return {"id": job_id, "state": job["state"], "done": job["done"]}
    folder = _folder(engine, job_id)
    os.nice(WORKER_NICENESS)  # behind real-time screening on the same machine
    _set(engine, job_id, state="running", worker_pid=os.getpid(), heartbeat_at=_now())
    try:
        with _Heartbeat(engine, job_id):
            return _screen_job(engine, pack, job_id, dict(job), folder)
    except Exception as exc:
        _set(engine, job_id, state="failed", error=f"{type(exc).__name__}: {exc}", finished_at=_now())
        raise


def _screen_job(engine: Engine, pack: Pack, job_id: str, job: dict[str, Any], folder: Path) -> dict[str, Any]:
    rows = list(batch_rows((folder / f"input.{job['input_format']}").read_bytes(), job["input_format"]))
    resume = job["resume"] if isinstance(job["resume"], dict) else orjson.loads(job["resume"] or "{}")
    done = int(resume.get("done", 0))
    _set(engine, job_id, total=len(rows))
    # the name index is needed for any batch: a name beside a code is read too (screen.name_disagrees),
    # and a registered branch's head office is found by its name (ScreeningIndex._with_head_office)
    index = ScreeningIndex.load(engine, pack)
    partial_csv, partial_jsonl = folder / "results.csv.part", folder / "results.jsonl.part"
    if done and partial_csv.exists() and partial_jsonl.exists():
        _truncated(partial_csv, int(resume["csv_bytes"]))
        _truncated(partial_jsonl, int(resume["jsonl_bytes"]))
        mode = "a"
    else:
        done, mode = 0, "w"
    pending: list[dict[str, Any]] = []
    with partial_csv.open(mode, encoding="utf-8-sig", newline="") as csv_file, \
            partial_jsonl.open(mode + "b") as jsonl:
        writer = SafeDictWriter(csv_file, fieldnames=BATCH_COLUMNS)  # candidates: JSON only
        if mode == "w":
            writer.writeheader()

        def commit() -> None:
            for handle in (csv_file, jsonl):
                handle.flush()
                os.fsync(handle.fileno())
            state = {"done": done, "csv_bytes": os.fstat(csv_file.fileno()).st_size,
                     "jsonl_bytes": os.fstat(jsonl.fileno()).st_size}
            with engine.begin() as c:  # the log rows and the point they reach, in one transaction
                if pending:
                    c.execute(t.query_log.insert(), pending)
                c.execute(update(t.screen_jobs).where(t.screen_jobs.c.id == job_id)
                          .values(done=done, resume=state, heartbeat_at=_now()))
            pending.clear()

        last_commit = time.monotonic()
        for result in screen_batch(index, rows[done:], job["action"], job["as_of"] or pack_today(pack)):
            writer.writerow(csv_row(result))
            jsonl.write(orjson.dumps(result) + b"\n")
            if result["decision"] is not None:
                query = str(result["identifier"] or result["name"]).replace("\x00", "\ufffd")
                pending.append({
                    "query_id": query_id(job_id, done), "at": _now(), "key_id": job["key_id"],
                    "authority": job["authority"], "purpose": job["purpose"], "endpoint": "screen_job",
                    "query": query, "subject": result["subject"], "action": result["action"],
                    "as_of": result["as_of"], "result": result["decision"],
                    "measures": result["measures"].split(";") if result["measures"] else []})
            done += 1
            if done % COMMIT_LINES == 0 or time.monotonic() - last_commit >= COMMIT_SECONDS:
                commit()
                last_commit = time.monotonic()
        commit()
    partial_csv.rename(folder / "results.csv")
    partial_jsonl.rename(folder / "results.jsonl")
    _set(engine, job_id, state="done", done=done, finished_at=_now())
    return {"id": job_id, "state": "done", "done": done}


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now holds that number
        return False
    return True


def recover_jobs(engine: Engine) -> list[tuple[str, str]]:
    """On serve start: every job left queued or running whose worker is gone (its process ended, or
    no heartbeat for STALE_SECONDS) is resumed by a new worker from its last committed line, or
    marked failed with the reason when it cannot be. Returns (job id, "resumed" | "failed")."""
    j = t.screen_jobs.c
    with engine.connect() as c:
        jobs = c.execute(select(j.id, j.state, j.worker_pid, j.heartbeat_at, j.input_format, j.done)
                         .where(j.state.in_(("queued", "running")))).all()
    outcomes = []
    now = _now()
    for job in jobs:
        beat = job.heartbeat_at
        if beat is not None and beat.tzinfo is None:  # SQLite gives naive UTC back
            beat = beat.replace(tzinfo=dt.timezone.utc)
        if _alive(job.worker_pid) and beat is not None and (now - beat).total_seconds() < STALE_SECONDS:
            continue
        source = _folder(engine, job.id) / f"input.{job.input_format}"
        if not source.is_file():
            _set(engine, job.id, state="failed", finished_at=now,
                 error=f"worker {job.worker_pid or '(none)'} died after {job.done} lines and the job's input "
                       f"{source} is gone; submit the batch again")
            outcomes.append((job.id, "failed"))
            continue
        _set(engine, job.id, state="queued", worker_pid=None,
             error=f"worker {job.worker_pid} died after {job.done} lines; resumed" if job.worker_pid else None)
        spawn(engine, job.id)
        outcomes.append((job.id, "resumed"))
    return outcomes
