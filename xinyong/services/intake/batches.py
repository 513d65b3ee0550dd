"""Ingested batches: listing, one batch with its quarantine, and the rejects file.

The rejects file is what an authority fixes and sends again: the batch's original headers,
each rejected row as it was sent, and the columns of `domain.records.REJECT_COLUMNS`
(row number, field, reason); CSV in UTF-8 with a BOM, so spreadsheet programs read it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import Engine, func, select

from xinyong.domain.csvsafe import SafeWriter
from xinyong.domain.records import REJECT_COLUMNS
from xinyong.store import tables as t


class BatchNotFound(Exception):
    pass


def list_batches(engine: Engine, *, authority: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Batches, newest first; of one authority when given."""
    b = t.batches.c
    query = select(b.id, b.authority, b.category, b.file_name, b.rows, b.accepted, b.quarantined, b.duplicates,
                   b.warnings, b.notes, b.created_at).order_by(b.id.desc()).limit(limit)
    if authority is not None:
        query = query.where(b.authority == authority)
    with engine.connect() as c:
        return [dict(r) for r in c.execute(query).mappings()]


def batch_row(engine: Engine, batch_id: int) -> dict[str, Any]:
    with engine.connect() as c:
        row = c.execute(select(t.batches).where(t.batches.c.id == batch_id)).mappings().first()
    if row is None:
        raise BatchNotFound(f"no batch {batch_id}")
    return dict(row)


def quarantine_rows(engine: Engine, batch_id: int, *, limit: int | None = None,
                    with_raw: bool = False) -> list[dict[str, Any]]:
    q = t.quarantine.c
    columns = [q.row_number, q.field, q.reason, q.reason_code, q.params] + ([q.raw] if with_raw else [])
    query = select(*columns).where(q.batch_id == batch_id).order_by(q.row_number)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as c:
        rows = [dict(r) for r in c.execute(query).mappings()]
    for r in rows:
        if isinstance(r["params"], (str, bytes)):
            r["params"] = orjson.loads(r["params"])
    if with_raw:
        for r in rows:
            r["raw"] = r["raw"] if isinstance(r["raw"], dict) else orjson.loads(r["raw"])
    return rows


def quarantine_count(engine: Engine, batch_id: int) -> int:
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(t.quarantine)
                         .where(t.quarantine.c.batch_id == batch_id)).scalar_one()


def rejects_csv(engine: Engine, batch_id: int) -> Iterator[bytes]:
    """The batch's rejected rows with their original headers and the reason columns, as CSV in chunks.

    Streamed from the store (a batch may hold millions of rejects: the file is never whole in
    memory), every cell neutralised against formulas (`domain.csvsafe`). Raises BatchNotFound
    before the first chunk.
    """
    batch = batch_row(engine, batch_id)
    headers = list(batch["headers"] if isinstance(batch["headers"], list) else orjson.loads(batch["headers"]))

    def chunks() -> Iterator[bytes]:
        handle = io.StringIO(newline="")
        writer = SafeWriter(handle)
        writer.writerow(headers + list(REJECT_COLUMNS))
        yield "\ufeff".encode() + _drain(handle)
        q = t.quarantine.c
        query = (select(q.row_number, q.field, q.reason, q.raw).where(q.batch_id == batch_id)
                 .order_by(q.row_number).execution_options(yield_per=REJECTS_CHUNK))
        with engine.connect() as c:
            for number, (row_number, field, reason, raw) in enumerate(c.execute(query), start=1):
                raw = raw if isinstance(raw, dict) else orjson.loads(raw)
                if "line" in raw and "line" not in headers:  # an unparseable JSON line
                    cells = [raw["line"]] + [""] * (len(headers) - 1)
                else:
                    cells = ["" if raw.get(h) is None else raw.get(h) for h in headers]
                writer.writerow(cells + [row_number, field or "", reason])
                if number % REJECTS_CHUNK == 0:
                    yield _drain(handle)
        yield _drain(handle)
    return chunks()


REJECTS_CHUNK = 1000


def _drain(handle: io.StringIO) -> bytes:
    data = handle.getvalue().encode("utf-8")
    handle.seek(0)
    handle.truncate()
    return data
