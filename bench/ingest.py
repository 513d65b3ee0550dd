"""Ingestion benchmark: `xinyong ingest` against the limit and against what people write by hand.

    python bench/ingest.py [--rows N] [--keep]

One CSV of N administrative-penalty rows (cn pack headers, valid USCCs, unique decision
numbers, ISO dates) is generated in a temporary folder (not timed), then loaded four ways:

  (a) xinyong    `python -m xinyong --db sqlite:///DIR/a.db ingest FILE --authority samr
                 --category penalty --json` as a subprocess: wall time of that subprocess only
                 (interpreter start-up included), and the peak of its process tree's summed RSS
                 (psutil, every 50 ms: ingest may fork a worker). Run at N/4 too: peak memory must
                 not grow with the file.
  (b) limit      csv module + executemany of raw text into a bare SQLite table, one transaction,
                 the same pragmas as xinyong (WAL, synchronous=NORMAL).
  (c) pandas     read_csv(dtype=str) + to_sql(chunksize=10_000) on one sqlite3 connection, same
                 pragmas: what an agency's IT would write by hand.
  (d) duckdb     CREATE TABLE ... AS SELECT * FROM read_csv(FILE), for reference.

Prints a table and writes bench/out/ingest.json.
"""

from __future__ import annotations

import argparse
import compileall
import csv
import datetime as dt
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from xinyong.domain.identifiers import org_code_check_character, uscc_check_character

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "ingest.json"

TARGET_A_OVER_B = 0.35   # xinyong at least 35% of the raw-insert limit
TARGET_A_OVER_C = 0.70   # and at least 70% of pandas read_csv + to_sql
TARGET_MEMORY_FLAT = 1.25  # peak RSS at N over peak RSS at N/4; a leak would show ~4x
TARGET_REGISTER_ROWS_PER_S = 20_000  # registration ingest, new firms or changes (issue 12)

HEADERS = ["行政相对人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚类别", "处罚内容",
           "罚款金额（万元）", "处罚决定日期", "处罚机关"]
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")

# -- data -------------------------------------------------------------------------------------

CITIES = [("北京", "110105", "京"), ("上海", "310115", "沪"), ("广州", "440106", "穗"),
          ("深圳", "440305", "深"), ("杭州", "330106", "杭"), ("成都", "510107", "蓉"),
          ("武汉", "420106", "汉"), ("南京", "320106", "宁"), ("西安", "610113", "西"),
          ("重庆", "500103", "渝"), ("天津", "120104", "津"), ("苏州", "320505", "苏")]
WORDS = ["华信", "宏达", "鑫源", "恒通", "瑞丰", "金诚", "永盛", "天成", "博远", "嘉禾", "中科",
         "新锐", "东方", "锦程", "海纳", "盛世", "云帆", "长青", "德润", "汇丰", "启明", "正阳"]
TRADES = ["商贸", "科技", "餐饮管理", "建筑工程", "食品", "医药", "物流", "电子", "服装", "文化传媒",
          "房地产开发", "环保科技", "机械设备", "信息技术"]
FORMS = ["有限公司", "有限责任公司", "股份有限公司"]
PENALTY_TYPES = ["罚款", "警告", "罚款；没收违法所得", "通报批评", "警告；罚款", "责令停产停业"]
VIOLATIONS = ["未按规定公示年度报告", "销售不符合食品安全标准的食品", "发布虚假广告",
              "未经许可从事经营活动", "使用未经检验的特种设备", "价格违法行为",
              "侵犯注册商标专用权", "虚假宣传"]


def _subjects(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(name, USCC) pairs: enterprise codes 91 + region + organisation code + check character."""
    subjects = []
    for i in range(count):
        city, region, _ = CITIES[i % len(CITIES)]
        first8 = f"{rng.randrange(10**8):08d}"
        org = first8 + org_code_check_character(first8)
        body = "91" + region + org
        name = f"{city}{rng.choice(WORDS)}{rng.choice(WORDS)}{rng.choice(TRADES)}{rng.choice(FORMS)}"
        subjects.append((name, body + uscc_check_character(body)))
    return subjects


def generate(path: Path, rows: int, seed: int = 20260101) -> None:
    """N penalty rows; companies drawn from a pool (a company has several penalties).

    Lines are joined by hand rather than through csv.writer: no cell holds a comma, a quote
    or a line break, so no quoting is needed, and this is several times faster.
    """
    rng = random.Random(seed)
    subjects = [f"{name},{code}" for name, code in _subjects(min(rows, 20_000), rng)]
    cities = [(short, f"{city}市市场监督管理局") for city, _, short in CITIES]
    start = dt.date(2023, 1, 1).toordinal()
    dates = [(day.isoformat(), day.year) for day in map(dt.date.fromordinal, range(start, start + 3 * 365))]
    middles = [f"{kind},当事人{violation}，依法予以{kind}" for kind in PENALTY_TYPES for violation in VIOLATIONS]
    fines = [f"{cents / 100:.2f}" for cents in range(1, 5_000)]
    pieces = "".join(WORDS + TRADES + FORMS + PENALTY_TYPES + VIOLATIONS + [c for c, _, _ in CITIES])
    assert not any(c in pieces for c in ',"\r\n'), "cells must need no quoting"
    block = 100_000
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(HEADERS) + "\n")
        for first in range(0, rows, block):
            n = min(block, rows - first)
            handle.write("".join(
                f"{subject},{short}市监处罚〔{year}〕{number}号,{middle},{fine},{date},{authority}\n"
                for number, subject, (short, authority), middle, fine, (date, year) in zip(
                    range(first + 1, first + n + 1), rng.choices(subjects, k=n), rng.choices(cities, k=n),
                    rng.choices(middles, k=n), rng.choices(fines, k=n), rng.choices(dates, k=n))))


REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "住所", "登记机关", "成立日期", "登记状态"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚"


def generate_register(path: Path, rows: int, seed: int = 20260102, variant: int = 0) -> None:
    """N register rows, one per firm (distinct valid USCCs), cn pack register headers. Another
    `variant` gives the same firms (same codes, in the same order) with other names, legal
    representatives, addresses and dates: a later extract of the same register."""
    codes = random.Random(seed)
    rng = random.Random(seed * 31 + variant)
    start = dt.date(2000, 1, 1).toordinal()
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(REGISTER_HEADERS) + "\n")
        seen: set[str] = set()
        lines = []
        while len(seen) < rows:
            city, region, _ = CITIES[len(seen) % len(CITIES)]
            first8 = f"{codes.randrange(10**8):08d}"
            body = "91" + region + first8 + org_code_check_character(first8)
            code = body + uscc_check_character(body)
            if code in seen:
                continue
            seen.add(code)
            name = f"{city}{rng.choice(WORDS)}{rng.choice(WORDS)}{rng.choice(TRADES)}{len(seen)}{rng.choice(FORMS)}"
            person = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
            day = dt.date.fromordinal(start + rng.randrange(8000)).isoformat()
            lines.append(f"{code},{name},{rng.choice(FORMS)},{person},{city}市某区某路{len(seen)}号,"
                         f"{city}市市场监督管理局,{day},存续\n")
            if len(lines) >= 100_000:
                handle.write("".join(lines))
                lines = []
        handle.write("".join(lines))


# -- (a) xinyong ------------------------------------------------------------------------------

class TreeMemory(threading.Thread):
    """Peak of the summed RSS of a process and all its descendants, polled every 50 ms.

    `xinyong ingest` may fork a worker for reading and validation, and os.wait4 only gives
    the largest single process, so the tree is summed here. RSS counts pages shared after
    fork in each process, which makes this an upper bound. The list of descendants is
    refreshed every 200 ms, because walking /proc costs far more than reading RSS.
    """

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak_bytes = 0
        self.most_processes = 0
        self._done = threading.Event()

    def run(self) -> None:
        processes = {self.root.pid: self.root}
        tick = 0
        while True:
            try:
                if tick % 4 == 0:
                    for process in self.root.children(recursive=True):
                        processes.setdefault(process.pid, process)
            except psutil.Error:
                pass
            total = 0
            for pid, process in list(processes.items()):
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    del processes[pid]
            self.peak_bytes = max(self.peak_bytes, total)
            self.most_processes = max(self.most_processes, len(processes))
            tick += 1
            if self._done.wait(0.05):
                return

    def stop(self) -> None:
        self._done.set()
        self.join()


def run_xinyong(folder: Path, csv_path: Path, rows: int, tag: str, db: str | None = None,
                category: str = "penalty", init: bool = True) -> dict:
    db = db or f"sqlite:///{folder / f'{tag}.db'}"
    base = [sys.executable, "-m", "xinyong", "--db", db]
    env = {**os.environ, "XINYONG_AUDIT_DIR": str(folder / f"{tag}-audit")} if db.startswith("postgresql") else None
    if init:
        subprocess.run(base + ["init"], cwd=folder, check=True, capture_output=True, env=env)
    out_path, err_path = folder / f"{tag}.out", folder / f"{tag}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        child = subprocess.Popen(base + ["ingest", str(csv_path), "--authority", "samr",
                                         "--category", category, "--json"],
                                 cwd=folder, stdout=out, stderr=err, env=env)
        memory = TreeMemory(child.pid)
        memory.start()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        memory.stop()
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"xinyong ingest failed ({child.returncode}):\n{err_path.read_text()[-3000:]}")
    result = json.loads(out_path.read_text().strip().splitlines()[-1])
    if result["accepted"] != rows:
        sys.exit(f"xinyong accepted {result['accepted']} of {rows} rows: {result}")
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,  # the child's own (not PostgreSQL's server)
            "peak_rss_mb": memory.peak_bytes / 2**20,  # whole process tree, summed
            "processes": memory.most_processes,
            "largest_process_rss_mb": usage.ru_maxrss / 1024,  # os.wait4, KiB on Linux
            "result": result}


# -- (b), (c), (d) --------------------------------------------------------------------------------

def _sqlite(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        connection.execute(pragma)
    return connection


def _count_sqlite(path: Path, table: str) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def run_limit(folder: Path, csv_path: Path, rows: int) -> dict:
    db = folder / "b.db"
    started = time.perf_counter()
    connection = _sqlite(db)
    columns = ", ".join(f"c{i} TEXT" for i in range(len(HEADERS)))
    connection.execute(f"CREATE TABLE penalty ({columns})")
    with csv_path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        connection.execute("BEGIN")
        connection.executemany(f"INSERT INTO penalty VALUES ({', '.join('?' * len(HEADERS))})", reader)
        connection.execute("COMMIT")
    connection.close()
    seconds = time.perf_counter() - started
    return _checked("limit", db, "penalty", rows, seconds)


def run_pandas(folder: Path, csv_path: Path, rows: int) -> dict:
    import pandas as pd  # imported before the clock starts

    db = folder / "c.db"
    started = time.perf_counter()
    connection = sqlite3.connect(db)
    for pragma in PRAGMAS:
        connection.execute(pragma)
    frame = pd.read_csv(csv_path, dtype=str, encoding="utf-8")
    frame.to_sql("penalty", connection, index=False, chunksize=10_000)
    connection.commit()
    connection.close()
    seconds = time.perf_counter() - started
    return _checked("pandas", db, "penalty", rows, seconds)


def run_duckdb(folder: Path, csv_path: Path, rows: int) -> dict:
    import duckdb  # imported before the clock starts

    db = folder / "d.duckdb"
    started = time.perf_counter()
    connection = duckdb.connect(str(db))
    path = str(csv_path).replace("'", "''")
    connection.execute(f"CREATE TABLE penalty AS SELECT * FROM read_csv('{path}', header = true)")
    count = connection.execute("SELECT count(*) FROM penalty").fetchall()[0][0]
    connection.close()
    seconds = time.perf_counter() - started
    if count != rows:
        sys.exit(f"duckdb loaded {count} of {rows} rows")
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


def _checked(name: str, db: Path, table: str, rows: int, seconds: float) -> dict:
    count = _count_sqlite(db, table)
    if count != rows:
        sys.exit(f"{name} loaded {count} of {rows} rows")
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


# -- report -----------------------------------------------------------------------------------

def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _pg_database(admin_url: str, name: str) -> str:
    """A fresh PostgreSQL database on the server of `admin_url`; its URL."""
    import psycopg

    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.execute(f"CREATE DATABASE {name}")
    return admin_url.rsplit("/", 1)[0] + "/" + name


def _drop_pg_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _median_run(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda r: r["seconds"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["all_seconds"] = [round(r["seconds"], 3) for r in runs]
    return chosen


def _load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the file (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a), (b), (c); the median is kept (default 3)")
    parser.add_argument("--register", type=int, default=100_000,
                        help="rows of the register file for (e) and (f) (default 100,000; 0 to skip)")
    parser.add_argument("--pg", metavar="URL", default=None,
                        help="also run (a), (e) and (f) on PostgreSQL: an admin URL such as "
                             "postgresql+psycopg://postgres@127.0.0.1:5432/postgres (databases are made and dropped)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (files and databases)")
    args = parser.parse_args()
    rows, quarter = args.rows, max(1, args.rows // 4)
    load_before = _load()
    print(load_before, flush=True)

    # (a) is timed from interpreter start, as an installed package would start: with its bytecode
    # (pip compiles it at install; where PYTHONDONTWRITEBYTECODE is set no run would write it)
    compileall.compile_dir(ROOT.parent / "xinyong", quiet=1)
    folder = Path(tempfile.mkdtemp(prefix="xinyong-bench-"))
    pg_names: list[str] = []
    try:
        full_csv, quarter_csv = folder / "penalty.csv", folder / "penalty_quarter.csv"
        register_csv, register_again_csv = folder / "register.csv", folder / "register_again.csv"
        started = time.perf_counter()
        generate(full_csv, rows)
        generate(quarter_csv, quarter, seed=7)
        if args.register:
            generate_register(register_csv, args.register)
            generate_register(register_again_csv, args.register, variant=1)
        generated = time.perf_counter() - started
        size_mb = full_csv.stat().st_size / 2**20
        print(f"generated {rows:,} rows ({size_mb:.0f} MB) + {quarter:,} rows + 2 x {args.register:,} register rows "
              f"in {generated:.1f} s in {folder}", flush=True)

        runs: dict[str, dict] = {}
        print("(a) xinyong ingest at N/4 ...", flush=True)
        a_quarter = run_xinyong(folder, quarter_csv, quarter, "a_quarter")
        repeated: dict[str, list[dict]] = {"a": [], "b": [], "c": []}
        for attempt in range(args.repeat):
            for key, label, run in (
                    ("a", "(a) xinyong ingest", lambda: run_xinyong(folder, full_csv, rows, f"a{attempt}")),
                    ("b", "(b) csv + executemany (limit)", lambda: run_limit(folder, full_csv, rows)),
                    ("c", "(c) pandas read_csv + to_sql", lambda: run_pandas(folder, full_csv, rows))):
                print(f"{label} [{attempt + 1}/{args.repeat}] ...", flush=True)
                repeated[key].append(run())
                for leftover in (folder / "b.db", folder / "c.db", folder / f"a{attempt}.db"):
                    leftover.unlink(missing_ok=True)
        runs.update({key: _median_run(values) for key, values in repeated.items()})
        print("(d) duckdb read_csv ...", flush=True)
        runs["d"] = run_duckdb(folder, full_csv, rows)
        if args.register:
            print("(e) xinyong ingest of the register (new firms), (f) the same firms again with changes ...", flush=True)
            runs["e"] = run_xinyong(folder, register_csv, args.register, "e", category="registration")
            runs["f"] = run_xinyong(folder, register_again_csv, args.register, "e", category="registration",
                                    init=False)
        if args.pg:
            name = f"xinyong_bench_{os.getpid()}"
            pg_names.append(name)
            url = _pg_database(args.pg, name)
            print("(a') xinyong ingest on PostgreSQL ...", flush=True)
            runs["a_pg"] = run_xinyong(folder, full_csv, rows, "a_pg", db=url)
            if args.register:
                name_e = f"{name}_e"
                pg_names.append(name_e)
                url_e = _pg_database(args.pg, name_e)
                print("(e') (f') register on PostgreSQL ...", flush=True)
                runs["e_pg"] = run_xinyong(folder, register_csv, args.register, "e_pg", db=url_e, category="registration")
                runs["f_pg"] = run_xinyong(folder, register_again_csv, args.register, "e_pg", db=url_e,
                                           category="registration", init=False)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
            for name in pg_names:
                _drop_pg_database(args.pg, name)
    load_after = _load()

    a, b, c = runs["a"], runs["b"], runs["c"]
    a_over_b = a["rows_per_s"] / b["rows_per_s"]
    a_over_c = a["rows_per_s"] / c["rows_per_s"]
    growth = a["peak_rss_mb"] / a_quarter["peak_rss_mb"]
    checks = {"a_over_b": a_over_b >= TARGET_A_OVER_B, "a_over_c": a_over_c >= TARGET_A_OVER_C,
              "memory_flat": growth <= TARGET_MEMORY_FLAT}
    for key in ("e", "f", "e_pg", "f_pg"):
        if key in runs:
            checks[f"register_{key}"] = runs[key]["rows_per_s"] >= TARGET_REGISTER_ROWS_PER_S

    print()
    print(f"ingest benchmark: {rows:,} penalty rows, {len(HEADERS)} columns, {size_mb:.0f} MB CSV, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    print(f"{load_before} at the start, {load_after} at the end; (a), (b), (c): median of {args.repeat}")
    print(f"{'method':<40}{'seconds':>10}{'rows/s':>12}")
    labels = [("a", "(a) xinyong ingest (subprocess)"), ("b", "(b) csv + executemany (limit)"),
              ("c", "(c) pandas read_csv + to_sql"), ("d", "(d) duckdb read_csv"),
              ("a_pg", "(a') xinyong ingest, PostgreSQL"),
              ("e", "(e) register, new firms"), ("f", "(f) register again, changes"),
              ("e_pg", "(e') register, new firms, PostgreSQL"), ("f_pg", "(f') register again, PostgreSQL")]
    for key, label in labels:
        if key in runs:
            print(f"{label:<40}{runs[key]['seconds']:>10.2f}{runs[key]['rows_per_s']:>12,.0f}")
    print()
    print(f"{'a/b':<40}{a_over_b:>10.2f}   target >= {TARGET_A_OVER_B:.2f}  {_verdict(checks['a_over_b'])}")
    print(f"{'a/c':<40}{a_over_c:>10.2f}   target >= {TARGET_A_OVER_C:.2f}  {_verdict(checks['a_over_c'])}")
    if "a_pg" in runs:
        print(f"{'a_pg/b, a_pg/c (PostgreSQL, no target)':<40}{runs['a_pg']['rows_per_s'] / b['rows_per_s']:>10.2f}"
              f"{runs['a_pg']['rows_per_s'] / c['rows_per_s']:>8.2f}")
    for label, run in ((f"N/4 = {quarter:,}", a_quarter), (f"N = {rows:,}", a)):
        print(f"{'(a) peak RSS at ' + label:<40}{run['peak_rss_mb']:>7.0f} MB   "
              f"({run['processes']} process{'es' if run['processes'] > 1 else ''} summed; "
              f"largest alone {run['largest_process_rss_mb']:.0f} MB)")
    print(f"{'memory growth N vs N/4':<40}{growth:>9.2f}x   target <= {TARGET_MEMORY_FLAT:.2f}x (flat)  "
          f"{_verdict(checks['memory_flat'])}")
    for key, label in labels[5:]:
        if key in runs:
            print(f"{label + ' rows/s':<40}{runs[key]['rows_per_s']:>10,.0f}   target >= {TARGET_REGISTER_ROWS_PER_S:,}  "
                  f"{_verdict(checks[f'register_{key}'])}")
    for key, label in labels[5:]:
        if key in runs:  # steadier than wall seconds on a shared machine; PostgreSQL's server work not counted
            cpu = runs[key]["cpu_seconds"]
            print(f"{label + ' CPU s':<40}{cpu:>10.2f}   {runs[key]['rows'] / cpu:,.0f} rows per CPU-second of the child")

    report = {
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "rows": rows, "csv_mb": round(size_mb, 1), "columns": HEADERS, "repeat": args.repeat,
        "load": {"start": load_before, "end": load_after},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "sqlite": sqlite3.sqlite_version, "platform": platform.platform()},
        "runs": {"xinyong": a, "xinyong_quarter": a_quarter, "limit_csv_executemany": b,
                 "pandas_to_sql": c, "duckdb_read_csv": runs["d"],
                 **{k: runs[k] for k in ("a_pg", "e", "f", "e_pg", "f_pg") if k in runs}},
        "ratios": {"a_over_b": a_over_b, "a_over_c": a_over_c, "memory_growth": growth},
        "targets": {"a_over_b": TARGET_A_OVER_B, "a_over_c": TARGET_A_OVER_C,
                    "memory_growth_max": TARGET_MEMORY_FLAT, "register_rows_per_s": TARGET_REGISTER_ROWS_PER_S},
        "passed": checks,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten {OUT.relative_to(ROOT.parent)}")


if __name__ == "__main__":
    main()
