"""Batch screening by identifier looks codes up many at a time (issue 12: batch by identifier had
become ~2x slower per row with the index file). The array probe must find exactly what the
one-key probe finds, and a batch must answer each row exactly as screening it alone does."""

from __future__ import annotations

import datetime as dt
import tempfile
import zlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from test_screen_index import LATE
from worlds import build_world, write_csv
from xinyong.domain.pack import load_pack
from xinyong.services.screening.screen import BATCH_CHUNK, ScreeningIndex, screen_batch
from xinyong.services.screening.screen_index import PROBE_WINDOW, _open_hashed, _save_hashed
from xinyong.store import tables as t
from xinyong.store.db import open_engine

AS_OF = dt.date(2026, 1, 5)
codes = st.text(alphabet=st.sampled_from("0123456789ABCDXY华信"), min_size=0, max_size=20)


@settings(max_examples=60, deadline=None)
@given(stored=st.dictionaries(codes, st.integers(0, 2**40), max_size=200),
       asked=st.lists(codes, max_size=200))
def test_the_array_probe_finds_what_the_one_key_probe_finds(stored, asked):
    with tempfile.TemporaryDirectory() as folder:
        _save_hashed(Path(folder), "codes", {key: (value,) for key, value in stored.items()})
        table = _open_hashed(Path(folder), "codes")
        keys = [*asked, *stored]  # absent keys (most probe past a collision) and every stored one
        found = table.first_many([key.encode("utf-8") for key in keys]).tolist()
        assert found == [table.first(key, -1) for key in keys]
        assert found == [stored.get(key, -1) for key in keys]


# two codes with the same crc32: a slot holding one has the other's hash
SAME_CRC32 = ("914400000009685295", "914400000012060020")


def test_the_array_probe_compares_strings_when_hashes_agree(tmp_path):
    assert SAME_CRC32[0] != SAME_CRC32[1] and len({zlib.crc32(code.encode()) for code in SAME_CRC32}) == 1
    _save_hashed(tmp_path, "one", {SAME_CRC32[0]: (1,)})
    one = _open_hashed(tmp_path, "one")
    assert one.first_many([code.encode() for code in SAME_CRC32]).tolist() == [1, -1]
    assert [one.first(code, -1) for code in SAME_CRC32] == [1, -1]
    _save_hashed(tmp_path, "both", {SAME_CRC32[0]: (1,), SAME_CRC32[1]: (2,)})
    both = _open_hashed(tmp_path, "both")
    assert both.first_many([code.encode() for code in reversed(SAME_CRC32)]).tolist() == [2, 1]


def test_the_array_probe_follows_a_run_longer_than_its_window(tmp_path):
    # 20 keys in a table of 64 slots whose hashes all start their probe at the same slot
    crowded = [key for key in (f"K{n}" for n in range(100_000)) if zlib.crc32(key.encode()) & 63 == 5][:20]
    assert len(crowded) > PROBE_WINDOW
    _save_hashed(tmp_path, "codes", {key: (n,) for n, key in enumerate(crowded)})
    table = _open_hashed(tmp_path, "codes")
    assert table.mask == 63
    absent = next(key for key in (f"A{n}" for n in range(100_000)) if zlib.crc32(key.encode()) & 63 == 5)
    asked = [*reversed(crowded), absent]
    assert table.first_many([key.encode() for key in asked]).tolist() == [*reversed(range(20)), -1]


def test_a_batch_answers_each_row_as_screening_it_alone(cli, db_url, tmp_path):
    build_world(cli, tmp_path)
    engine = open_engine(db_url)
    pack = load_pack("cn")
    index = ScreeningIndex.load(engine, pack, names=True)
    # a firm registered after the index file was written: it lives in the overlays, not in the file
    late = write_csv(tmp_path / "late.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"],
                     [[LATE, "深圳市晚到科技有限公司", "有限责任公司", "赵晚", "2020-02-02", "存续"]])
    cli("ingest", late, "--authority", "samr", "--category", "registration")
    assert index.refresh(engine)
    with engine.connect() as c:
        stored = [v for (v,) in c.execute(t.entity_identifiers.select().with_only_columns(t.entity_identifiers.c.value))]
        keys = [k for (k,) in c.execute(t.entities.select().with_only_columns(t.entities.c.key))]
    assert LATE in stored
    asked = [*stored, *keys, "91440300MA5LT000X", "not a code", "110105199001011234", 12345]
    # rows giving only their identifier, and rows with an action, date or (empty) name of their own
    own = [{}, {"action": "bidding"}, {"as_of": AS_OF.isoformat()}, {"name": ""},
           {"name": None, "action": None, "as_of": None}]
    rows = [(line, {"identifier": asked[line % len(asked)], **own[line % len(own)]})
            for line in range(BATCH_CHUNK + 300)]  # two chunks
    rows.insert(7, (7, "unreadable line"))
    answers = list(screen_batch(index, rows, "bidding", AS_OF))
    assert len(answers) == len(rows)
    denied = 0
    for (line, row), answer in zip(rows, answers):
        assert answer["line"] == line
        if isinstance(row, str):
            assert answer["error"] == row
            continue
        alone = next(screen_batch(index, [(line, row)], "bidding", AS_OF))  # one row: a chunk of its own
        assert answer == alone
        assert (answer["action"], answer["as_of"], answer["name"]) == ("bidding", AS_OF, row.get("name"))
        try:
            single = index.screen_identifier(str(row["identifier"]), "bidding", AS_OF)
        except ValueError as exc:
            assert answer["error"] == str(exc)
            continue
        assert answer["decision"] == single.decision.decision
        expected = index.info[single.subject_id].key if single.subject_id is not None else None
        assert answer["subject"] == expected
        denied += answer["decision"] == "deny"
    assert denied and any(a["subject"] == LATE for a in answers)
    engine.dispose()
