"""A store written before content hashes left unknown columns out (each version's hash was taken over
its fields and its extra columns together) needs no migration: a re-sent row whose pack fields equal
a stored version's is unchanged, whatever its other columns, and a changed one is a new version.
`_BatchWriter._latest_versions` hashes such versions' stored fields again. Both engines."""

from __future__ import annotations

import hashlib

import orjson
from sqlalchemy import select, update

from test_ingest import PENALTY, ingest_one, penalty_row, write_csv
from xinyong.store import tables as t
from xinyong.store.db import open_engine


def _hash_as_before(fields: dict, extras: dict) -> str:
    """`domain.records.content_hash` before it covered the pack fields alone."""
    return hashlib.blake2b(orjson.dumps([fields, extras], option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def test_versions_hashed_the_old_way_are_recognised(cli, tmp_path):
    headers = PENALTY + ["内部编号"]
    sent = write_csv(tmp_path / "first.csv", headers, [penalty_row(n) + [f"A-{n}"] for n in (1, 2, 3)])
    assert ingest_one(cli, sent)["accepted"] == 3
    engine = open_engine(cli.url)
    try:
        with engine.begin() as connection:
            r = t.records.c
            for record_id, fields, extras in connection.execute(select(r.id, r.fields, r.extras)).all():
                connection.execute(update(t.records).where(r.id == record_id).values(
                    content_hash=_hash_as_before(fields, extras)))
    finally:
        engine.dispose()
    again = write_csv(tmp_path / "again.csv", headers + ["经办人"], [
        penalty_row(1) + ["B-1", "张三"],  # other unknown columns only: unchanged
        penalty_row(2) + ["A-2", ""],  # as sent before: unchanged
        penalty_row(3, amount="2.5") + ["A-3", ""],  # another fine: a new version
    ])
    result = ingest_one(cli, again)
    assert (result["accepted"], result["unchanged"], result["new_versions"]) == (3, 2, 1)
