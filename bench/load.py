"""Load held: `POST /v1/screen` at a fixed rate while a 300,000-row `xinyong ingest` runs.

    python bench/load.py                    # 200 req/s, 15 s idle, then through the ingest (<= 240 s)
    python bench/load.py --rate 100 --rows 50000 --idle 10     # a quicker look

Set-up (not measured): a SQLite store in a temporary folder, `xinyong init`, a register of
`--entities` companies ingested, one key with the `screen` scope, and a CSV of `--rows`
administrative penalties about those companies (bench/ingest.py's generator).

Then, on loopback only:
  1. `xinyong serve` on a free port, as its own process;
  2. an open-loop generator in its own process: request i is due at start + i / rate and goes
     out then on the first free one of 64 keep-alive connections, whether or not earlier answers
     came back; latency counts from the due time, so a stalled server shows as latency, not as
     fewer requests (no coordinated omission). Its HTTP client is a few lines of asyncio: a
     general-purpose client costs as much CPU per request as the server does;
  3. after `--idle` seconds, `xinyong ingest` of the penalty file as a third process, at default
     priority; the generator stops when the ingest has ended (or after `--max-seconds`).
The server is then stopped with SIGINT (a clean shutdown flushes the query log), and every
answer's `query_id` is looked up in the store's query log.

Prints requests/s, p50 and p99 with and without the ingest (same run), errors, and answers
missing from the query log, against the targets: 0 errors, p99 under ingest <= 3x idle p99,
none missing. Bounded: at most rate x max-seconds requests, and every process has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import _subjects, generate  # noqa: E402 - the ingest benchmark's penalty generator

SEED = 20260101
TARGET_P99_RATIO = 3.0
ACTION, PURPOSE = "public_procurement", "procurement_review"
CONNECTIONS = 64
DRAIN_SECONDS = 30.0  # after the load stops, answers still in flight get this long
REQUEST_TIMEOUT = 30.0
QUERY_ID = re.compile(rb'"query_id":"([0-9a-f]+)"')


def xinyong(url: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xinyong", "--db", url, *args], capture_output=True, text=True,
                          check=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def set_up(folder: Path, entities: int, rows: int) -> tuple[str, str, list[str], Path]:
    url = f"sqlite:///{folder / 'load.db'}"
    xinyong(url, "init")
    subjects = _subjects(min(rows, 20_000), random.Random(SEED))  # the companies the penalties are about
    register = folder / "register.csv"
    with register.open("w", encoding="utf-8") as handle:
        handle.write("统一社会信用代码,企业名称,企业类型,成立日期,登记状态\n")
        handle.writelines(f"{code},{name},有限责任公司,2015-01-01,存续\n" for name, code in subjects[:entities])
    xinyong(url, "ingest", str(register), "--authority", "samr", "--category", "registration", "--json")
    key = json.loads(xinyong(url, "authority", "key", "create", "procurement_centre", "--scopes", "screen",
                             "--rate", "100000", "--burst", "100000", "--json").stdout)["key"]
    penalties = folder / "penalties.csv"
    generate(penalties, rows, SEED)
    return url, key, [code for _, code in subjects], penalties


# -- the generator (its own process) -----------------------------------------------------------------

def generator(port: int, key: str, codes: list[str], rate: float, max_seconds: float,
              stop: multiprocessing.Event, out: str) -> None:
    asyncio.run(_generate(port, key, codes, rate, max_seconds, stop, Path(out)))


class _Connection:
    """One keep-alive HTTP/1.1 connection on loopback, written by hand: a generator that costs a
    millisecond of CPU per request (as httpx does) would itself be the bottleneck on two cores."""

    def __init__(self, port: int, key: str):
        self.port, self.key = port, key
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def screen(self, code: str) -> tuple[int, str | None]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        body = json.dumps({"identifier": code, "action": ACTION, "purpose": PURPOSE}).encode()
        self.writer.write(b"POST /v1/screen HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"X-API-Key: " + self.key.encode() + b"\r\nContent-Length: "
                          + str(len(body)).encode() + b"\r\n\r\n" + body)
        await self.writer.drain()
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = await self.reader.readexactly(length)
        if status != 200:
            return status, None
        found = QUERY_ID.search(answer)
        return status, found.group(1).decode() if found else None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def _generate(port: int, key: str, codes: list[str], rate: float, max_seconds: float,
                    stop: multiprocessing.Event, out: Path) -> None:
    results: list[tuple[float, float, int, str | None]] = []  # (due, latency, status, query_id or error)
    due_requests: asyncio.Queue[tuple[float, str] | None] = asyncio.Queue()

    async def worker() -> None:
        connection = _Connection(port, key)
        while (item := await due_requests.get()) is not None:
            due, code = item
            try:
                status, query_id = await asyncio.wait_for(connection.screen(code), REQUEST_TIMEOUT)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as exc:
                connection.close()
                status, query_id = 0, type(exc).__name__
            results.append((due, time.monotonic() - due, status, query_id))
        connection.close()

    workers = [asyncio.create_task(worker()) for _ in range(CONNECTIONS)]
    start = time.monotonic()
    i = 0
    while not stop.is_set() and i < rate * max_seconds:
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        due_requests.put_nowait((due, codes[i % len(codes)]))  # sent when due, by the first free connection
        i += 1
    for _ in workers:
        due_requests.put_nowait(None)
    _, late = await asyncio.wait(workers, timeout=DRAIN_SECONDS)
    for task in late:  # answers still in flight after the drain: counted as errors, not waited for
        task.cancel()
    while not due_requests.empty():
        item = due_requests.get_nowait()
        if item is not None:
            results.append((item[0], DRAIN_SECONDS, 0, "not sent"))
    out.write_text(json.dumps({"start": start, "results": results}), encoding="utf-8")


# -- the run --------------------------------------------------------------------------------------------

def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second offered (open loop)")
    parser.add_argument("--rows", type=int, default=300_000, help="rows of the ingested penalty file")
    parser.add_argument("--entities", type=int, default=5_000, help="companies in the register")
    parser.add_argument("--idle", type=float, default=15.0, help="seconds of load before the ingest starts")
    parser.add_argument("--max-seconds", type=float, default=240.0, help="bound on the whole measured run")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="xinyong-load-") as temp:
        folder = Path(temp)
        print(f"set-up: register of {options.entities} companies, {options.rows} penalty rows ...", flush=True)
        url, key, codes, penalties = set_up(folder, options.entities, options.rows)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "xinyong", "--db", url, "serve", "--host", "127.0.0.1",
                                   "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.post(f"{base}/v1/ping", headers={"X-API-Key": key}, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)

            stop = multiprocessing.Event()
            out = folder / "results.json"
            load = multiprocessing.Process(target=generator, args=(port, key, codes[:options.entities], options.rate,
                                                                    options.max_seconds, stop, str(out)))
            load.start()
            time.sleep(options.idle)
            ingest_start = time.monotonic()
            ingest = subprocess.Popen([sys.executable, "-m", "xinyong", "--db", url, "ingest", str(penalties),
                                       "--authority", "samr", "--category", "penalty", "--json"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                ingest_out, ingest_err = ingest.communicate(timeout=max(1.0, options.max_seconds - options.idle))
            except subprocess.TimeoutExpired:
                ingest.kill()
                ingest_out, ingest_err = ingest.communicate()
            ingest_end = time.monotonic()
            stop.set()
            load.join(timeout=DRAIN_SECONDS + 60)
            if load.is_alive():
                load.kill()
                raise SystemExit("the load generator did not stop")
        finally:
            server.send_signal(signal.SIGINT)  # a clean shutdown: the query log is flushed
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        clean = server.returncode == 0

        data = json.loads(out.read_text(encoding="utf-8"))
        results = data["results"]
        idle = [r for r in results if r[0] < ingest_start]
        busy = [r for r in results if ingest_start <= r[0] < ingest_end]
        errors = [r for r in results if r[2] != 200]
        answered = {r[3] for r in results if r[2] == 200}
        with sqlite3.connect(folder / "load.db") as db:
            logged = {row[0] for row in db.execute("SELECT query_id FROM query_log")}
        missing = len(answered - logged)
        ingested = json.loads(ingest_out.splitlines()[-1]) if ingest.returncode == 0 and ingest_out else None

    def line(name: str, rows: list, seconds: float) -> dict:
        latencies = [r[1] * 1000 for r in rows if r[2] == 200]
        figures = {"requests": len(rows), "req_per_s": round(len(rows) / seconds, 1) if seconds > 0 else 0.0,
                   "p50_ms": round(percentile(latencies, 0.50), 2), "p99_ms": round(percentile(latencies, 0.99), 2),
                   "mean_ms": round(statistics.fmean(latencies), 2) if latencies else float("nan")}
        print(f"  {name:<14} {figures['requests']:>7} requests  {figures['req_per_s']:>7} req/s  "
              f"p50 {figures['p50_ms']:>7} ms  p99 {figures['p99_ms']:>7} ms", flush=True)
        return figures

    print(f"\nopen loop at {options.rate:g} req/s on {base} (loopback); ingest of {options.rows} rows "
          f"{'took ' + format(ingest_end - ingest_start, '.1f') + ' s' if ingested else 'FAILED: ' + ingest_err.strip()[-300:]}"
          + (f" ({ingested['accepted']} accepted)" if ingested else ""))
    idle_figures = line("idle", idle, ingest_start - data["start"])
    busy_figures = line("under ingest", busy, ingest_end - ingest_start)
    ratio = busy_figures["p99_ms"] / idle_figures["p99_ms"] if idle_figures["p99_ms"] else float("inf")
    checks = [("errors", len(errors), len(errors) == 0, "0"),
              ("p99 under ingest / idle p99", round(ratio, 2), ratio <= TARGET_P99_RATIO, f"<= {TARGET_P99_RATIO:g}"),
              ("answers missing from the query log", missing, missing == 0 and clean, "0, after a clean stop"),
              ("ingest completed", bool(ingested), bool(ingested), "yes")]
    for name, value, ok, target in checks:
        print(f"  {name:<36} {value!s:>8}   target {target:<22} {'PASS' if ok else 'FAIL'}")
    if errors:
        kinds: dict[str, int] = {}
        for r in errors:
            kinds[str(r[2] or r[3])] = kinds.get(str(r[2] or r[3]), 0) + 1
        print(f"  error kinds: {kinds}")
    os.makedirs(Path(__file__).resolve().parent / "out", exist_ok=True)
    (Path(__file__).resolve().parent / "out" / "load.json").write_text(json.dumps({
        "rate": options.rate, "rows": options.rows, "idle": idle_figures, "under_ingest": busy_figures,
        "errors": len(errors), "p99_ratio": ratio, "missing": missing, "clean_stop": clean,
        "ingest_seconds": ingest_end - ingest_start,
        "pass": all(ok for _, _, ok, _ in checks)}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
