"""The register's chunk-wise writes (services.intake.register: bulk inserts, waves of updates, one
`changes` row per entity of a chunk) leave the store as writing the same files one row at a time
does: the same entities, identifiers, names with their dates, legal representatives, records and
audit payloads, and the same entities in the change feed of each batch. Both engines."""

from __future__ import annotations

import json

from sqlalchemy import text

from conftest import Cli, another_store
from test_ingest import ingest_one, write_csv
from worlds import resident_id, uscc
from xinyong.services.intake import ingest as intake
from xinyong.store.db import open_engine

HEADERS = ["统一社会信用代码", "企业名称", "英文名称", "曾用名", "法定代表人", "法定代表人证件号码", "注册号",
           "成立日期", "登记状态", "住所"]


def _extracts(tmp_path) -> tuple:
    """Two extracts of 60 firms: English and former names, legacy registration numbers beside a
    USCC that fails its check, a firm twice in one file, names going back to a former one, representatives with and
    without ID numbers, rows without a date."""
    import datetime as dt
    codes = [uscc(f"9111000060{i:07d}") for i in range(1, 61)]
    broken = [code[:-1] + ("0" if code[-1] != "0" else "1") for code in codes]  # fails its check: found by reg_no
    person = [resident_id("110101", dt.date(1970 + i % 30, 1 + i % 12, 1 + i % 28), i) for i in range(60)]
    first = []
    for i, code in enumerate(codes):
        legacy = i % 10 == 0
        first.append([broken[i] if legacy else code, f"北京第{i}科技有限公司", f"Beijing No{i} Tech" if i % 4 == 0 else "",
                      f"北京旧{i}商贸有限公司" if i % 3 == 0 else "", "张三" if i % 2 else "李四",
                      person[i] if i % 5 == 0 else "", f"1100000000{i:05d}" if legacy or i % 7 == 0 or i % 11 == 0 else "",
                      "2001-03-05" if i % 6 else "", "存续", f"某路{i}号"])
    second = []
    for i, code in enumerate(codes):
        legacy = i % 10 == 0
        name = (f"北京旧{i}商贸有限公司" if i % 3 == 0 else f"北京第{i}科技有限公司" if i % 2 else f"北京新{i}科技有限公司")
        row = [broken[i] if legacy else code, name, f"Beijing New{i} Tech" if i % 8 == 0 else "",
               f"北京第{i}科技有限公司" if i % 9 == 0 else "", "王五" if i % 3 == 1 else ("张三" if i % 2 else "李四"),
               person[(i + 1) % 60] if i % 4 == 1 else (person[i] if i % 5 == 0 else ""),
               f"1100000000{i:05d}" if legacy or i % 7 == 0 or i % 11 == 0 else "", "2020-01-02" if i % 5 else "",
               "存续" if i % 5 else "注销", f"某路{i}号"]
        second.append(row)
        if i % 11 == 0 and not legacy:  # the same firm again in the file (another record: found by its reg_no)
            second.append([broken[i], f"北京再{i}科技有限公司", "", "", "赵六", "", *row[6:7], "2022-06-07", "吊销",
                           row[9]])
    return (write_csv(tmp_path / "first.csv", HEADERS, first), write_csv(tmp_path / "second.csv", HEADERS, second))


def _dump(url: str, before: list) -> tuple[dict[str, list], list]:
    """The register's tables without ids and times, entity ids as keys; instead of the change feed
    (one row per written row, or per entity of a chunk), the entities it names past `before` (the
    feed as it was); and the feed now."""
    engine = open_engine(url)
    try:
        with engine.connect() as c:
            key = dict(c.execute(text("SELECT id, key FROM entities")).all())

            def rows(sql: str, entity_columns: tuple[int, ...] = (0,)) -> list[tuple]:
                return [tuple(key.get(v, v) if i in entity_columns else (str(v) if v is not None else None)
                              for i, v in enumerate(row)) for row in c.execute(text(sql))]
            payloads = [p if isinstance(p, dict) else json.loads(p)
                        for (p,) in c.execute(text("SELECT payload FROM audit_events ORDER BY seq"))]
            found = {
                "entities": sorted(rows("SELECT key, kind, status, region, address, verified, established, origin "
                                        "FROM entities", ())),
                "identifiers": sorted(rows("SELECT entity_id, scheme, value, verified FROM entity_identifiers")),
                "names": rows("SELECT entity_id, name, normalised, current, valid_from, valid_to, language "
                              "FROM entity_names ORDER BY id"),
                "relations": rows("SELECT entity_id, relation, person_name, person_id, valid_from, valid_to "
                                  "FROM entity_relations ORDER BY id"),
                "records": sorted(rows("SELECT record_key, version, subject_name, subject_code, fields, content_hash, "
                                       "status FROM records", ())),
                "audit": payloads,
                "feed": [k for (k,) in rows("SELECT ref_id FROM changes WHERE kind = 'entity' ORDER BY seq")],
            }
    finally:
        engine.dispose()
    found["changed"] = sorted(set(found["feed"][len(before):]))
    return {k: v for k, v in found.items() if k != "feed"}, found["feed"]


def test_chunk_wise_register_equals_row_by_row(cli, db_url, tmp_path, monkeypatch):
    first, second = _extracts(tmp_path)
    with another_store(db_url, tmp_path, "row_by_row") as other_url:
        one_by_one = Cli(other_url)
        one_by_one("init")
        after, feed = [], []
        for path in (first, second):
            assert ingest_one(cli, path, category="registration")["quarantined"] == 0
            tables, feed = _dump(cli.url, feed)
            after.append(tables)
        feed = []
        with monkeypatch.context() as patch:
            patch.setattr(intake, "CHUNK", 1)  # every row its own chunk: written as row by row
            for path, expected in zip((first, second), after):
                assert ingest_one(one_by_one, path, category="registration")["quarantined"] == 0
                tables, feed = _dump(other_url, feed)
                assert tables == expected
    names = {row[1] for row in after[1]["names"]}
    assert "Beijing New0 Tech" in names and "北京再11科技有限公司" in names  # the cases above were reached
    assert any(row[5] is not None for row in after[1]["relations"])
