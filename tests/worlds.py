"""A small jurisdiction taken through due process, and a live server on it, for API and web tests.

The world, as of 2025-10-20 (all through the CLI, as an operator would):
- FIRM_SERIOUS: licence revoked -> serious_dishonesty, notified 2025-09-22, effective 2025-10-13;
- FIRM_DEBTOR: a company on court_defaulters, effective; its legal representative is REP;
- PERSON: an adult judgment debtor, three reminders, notified, effective;
- FIRM_CLEAN: registered, nothing against it;
- FIRM_PROPOSED: a big fine, proposed only (never notified): no measure may apply to it.
"""

from __future__ import annotations

import atexit
import csv
import datetime as dt
import json
import socket
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from stdnum.cn import ric

from xinyong.api.app import create_app
from xinyong.domain.identifiers import is_valid_resident_id, uscc_check_character
from xinyong.domain.pack import load_pack
from xinyong.store.audit import AuditFiles
from xinyong.store.checkpoints import signing_key_path
from xinyong.store.db import open_engine


def uscc(body: str) -> str:
    return body + uscc_check_character(body)


def resident_id(region: str, born: dt.date, serial: int) -> str:
    partial = f"{region}{born:%Y%m%d}{serial:03d}0"  # stdnum wants 18 characters, check as placeholder
    number = partial[:17] + ric.calc_check_digit(partial)
    assert is_valid_resident_id(number), number
    return number


FIRM_SERIOUS = uscc("91310000MA1XC0001")
FIRM_DEBTOR = uscc("91440300MA5DB0002")
FIRM_CLEAN = uscc("91110105MA0CL0003")
FIRM_PROPOSED = uscc("91320100MA1PR0004")
PERSON = resident_id("110101", dt.date(1980, 5, 12), 123)
REP = resident_id("110102", dt.date(1972, 8, 1), 456)
CLEAN_REP = resident_id("110105", dt.date(1969, 2, 3), 789)

EVALUATED, NOTICE, EFFECTIVE = "2025-09-15", "2025-09-22", "2025-10-20"
NAMES = {FIRM_SERIOUS: "上海某某科技有限公司", FIRM_DEBTOR: "深圳某某建设工程有限公司",
         FIRM_CLEAN: "北京某某餐饮管理有限公司", FIRM_PROPOSED: "南京某某贸易有限公司"}


def write_csv(path: Path, headers: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def run(cli, *args: Any) -> Any:
    return json.loads(cli(*args, "--json").stdout)


def build_world(cli, folder: Path) -> dict[str, int]:
    """The world above; returns listing ids by subject code."""
    register = write_csv(folder / "register.csv",
                         ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "法定代表人证件号码", "成立日期", "登记状态"], [
        [FIRM_SERIOUS, NAMES[FIRM_SERIOUS], "有限责任公司", "孙一", "", "2010-01-05", "存续"],
        [FIRM_DEBTOR, NAMES[FIRM_DEBTOR], "有限责任公司", "钱七", REP, "2012-03-07", "存续"],
        [FIRM_CLEAN, NAMES[FIRM_CLEAN], "有限责任公司", "周八", CLEAN_REP, "2015-06-30", "存续"],
        [FIRM_PROPOSED, NAMES[FIRM_PROPOSED], "有限责任公司", "吴九", "", "2008-11-11", "存续"],
    ])
    penalties = write_csv(folder / "penalties.csv",
                          ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"], [
        [NAMES[FIRM_SERIOUS], FIRM_SERIOUS, "沪市监罚〔2025〕1号", "2025-06-03", "吊销许可证", ""],
        [NAMES[FIRM_PROPOSED], FIRM_PROPOSED, "宁市监罚〔2025〕2号", "2025-06-10", "罚款", "150"],
        [NAMES[FIRM_CLEAN], FIRM_CLEAN, "京市监罚〔2025〕3号", "2025-06-12", "罚款", "2"],
    ])
    court = write_csv(folder / "court.csv",
                      ["案号", "被执行人姓名/名称", "身份证号码/组织机构代码", "执行法院", "被执行人的履行情况",
                       "失信被执行人行为具体情形", "担保情况", "发布时间"], [
        ["(2025)京0105执1号", "张三", PERSON, "北京市朝阳区人民法院", "全部未履行", "有履行能力而拒不履行生效法律文书确定义务", "", "2025-08-01"],
        ["(2025)粤0305执2号", NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "深圳市南山区人民法院", "全部未履行", "有履行能力而拒不履行生效法律文书确定义务", "", "2025-08-02"],
    ])
    if (cached := _TEMPLATES.get(_backend(cli.url))) is not None:
        return _clone(cached, cli.url)
    for path, authority, category in ((register, "samr", "registration"), (penalties, "samr", "penalty"),
                                      (court, "court", "court_defaulter")):
        cli("ingest", path, "--authority", authority, "--category", category)
    run(cli, "resolve")
    run(cli, "evaluate", "--as-of", EVALUATED)
    ids = {code: rows[0]["id"] for code in (FIRM_SERIOUS, FIRM_DEBTOR, PERSON, FIRM_PROPOSED)
           if (rows := run(cli, "listing", "list", "--entity", code))}
    for n, day in enumerate(("2025-09-16", "2025-09-17", "2025-09-18"), start=1):
        cli("listing", "remind", ids[PERSON], "--on", day, "--actor", "clerk-li", "--reason", f"reminder {n}")
    for code in (FIRM_SERIOUS, FIRM_DEBTOR, PERSON):
        cli("listing", "notify", ids[code], "--on", NOTICE, "--actor", "officer-wang", "--reason", "served")
    run(cli, "process", "--as-of", EFFECTIVE)
    _TEMPLATES[_backend(cli.url)] = _keep(cli.url, ids)
    return ids


# -- the world is built once per engine and test process, then copied ------------------------------
# Building it takes ~15 CLI steps (~10 s on PostgreSQL); a copy of the finished store (with its
# audit key and head) gives every later test the same world at once.

@dataclass(frozen=True)
class _Template:
    ids: dict[str, int]
    database: str  # a SQLite file, or a PostgreSQL template database
    audit: dict[str, bytes]  # audit file name -> content


_TEMPLATES: dict[str, _Template] = {}


def _backend(url: str) -> str:
    return make_url(url).get_backend_name()


def _keep(url: str, ids: dict[str, int]) -> _Template:
    files = AuditFiles.for_url(url)
    audit = {path.name: path.read_bytes() for path in (files.key_path, files.head_path, signing_key_path(files))}
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # The backup API, not a file copy: closing a file of its own on the store would drop this process's
        # SQLite locks, and a batch-job worker closing the store after it would then delete the WAL in use.
        copy = Path(tempfile.mkdtemp(prefix="xinyong-world-")) / "world.db"
        with closing(sqlite3.connect(parsed.database)) as source, closing(sqlite3.connect(copy)) as target:
            source.backup(target)
        return _Template(dict(ids), str(copy), audit)
    name = f"world_{uuid.uuid4().hex[:12]}"
    with _admin(url) as c:
        _disconnect(c, parsed.database)
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{parsed.database}"'))
    atexit.register(_drop, url, name)
    return _Template(dict(ids), name, audit)


def _clone(template: _Template, url: str) -> dict[str, int]:
    files = AuditFiles.for_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # the backup API, not a file copy: the store's own connections stay valid
        with sqlite3.connect(template.database) as source, sqlite3.connect(parsed.database) as target:
            source.backup(target)
    else:
        with _admin(url) as c:
            _disconnect(c, parsed.database)
            c.execute(text(f'DROP DATABASE "{parsed.database}"'))
            c.execute(text(f'CREATE DATABASE "{parsed.database}" TEMPLATE "{template.database}"'))
    for path in (files.key_path, files.head_path, signing_key_path(files)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(template.audit[path.name])
    return dict(template.ids)


@contextmanager
def _admin(url: str) -> Iterator[Any]:
    engine = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            yield c
    finally:
        engine.dispose()


def _disconnect(c: Any, database: str) -> None:
    c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": database})


def _drop(url: str, name: str) -> None:
    with _admin(url) as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def serving(db_url: str, **options: Any) -> Iterator[str]:
    """`xinyong serve`'s app under uvicorn on a free loopback port; yields the base URL."""
    engine = open_engine(db_url)
    with engine.connect() as c:
        from xinyong.store.db import get_setting

        pack = load_pack(get_setting(c, "pack") or "cn")
    app = create_app(engine, pack, **options)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        engine.dispose()
