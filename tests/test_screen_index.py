"""Screening's index file (issue 12, item 4): the same answers as the in-memory index it replaces.

The name index used to be `resolve.load_index`'s `EntityIndex`, every entity a Python object.
It is now read from a file of arrays mapped at start (`services/screening/screen_index.py`). On the
world of tests/worlds.py and tests/test_screen_decisions.py, every registered name and variants
of it (place dropped, one character changed, legal form changed, an unknown name) must get
the same decision, subject, match and candidates with the same scores either way; a restart
maps the file instead of building it; a file that does not fit the store is rebuilt; a firm
registered after the file was written is found by code and by name.
"""

from __future__ import annotations

import datetime as dt

from test_screen_decisions import own_world
from worlds import build_world, uscc, write_csv
from xinyong.domain.matching import NameAnalyser
from xinyong.domain.pack import load_pack
from xinyong.services.resolution.resolve import load_index
from xinyong.services.screening.screen import ScreeningIndex
from xinyong.services.screening.screen_index import CompactEntityIndex, index_folder
from xinyong.store import tables as t
from xinyong.store.db import open_engine

AS_OF = dt.date(2026, 1, 5)
ACTIONS = ("bidding", "public_procurement")
LATE = uscc("91440300MA5LT0009")


def _variants(name: str) -> list[str]:
    out = [name, name[2:], name[:3] + "鑫" + name[4:], name.replace("有限公司", "有限责任公司"),
           name.replace("有限责任公司", "有限公司"), name + "上海分公司", "某某" + name[-6:]]
    return [v for v in dict.fromkeys(out) if v]


def _answer(index: ScreeningIndex, name: str, action: str) -> tuple:
    a = index.screen_name(name, action, AS_OF)
    return (a.decision.decision, a.subject_id, a.match,
            [(c["entity"], c["score"], c["explanation"].get("matched_name")) for c in a.candidates])


def test_same_answers_as_the_in_memory_index(cli, db_url, tmp_path):
    build_world(cli, tmp_path)
    own_world(cli, tmp_path)
    engine = open_engine(db_url)
    pack = load_pack("cn")
    mapped = ScreeningIndex.load(engine, pack, names=True)
    assert mapped.built and isinstance(mapped.names, CompactEntityIndex)
    assert index_folder(engine).is_dir()
    in_memory = ScreeningIndex.load(engine, pack, names=True)
    with engine.connect() as c:
        in_memory.names = load_index(c, NameAnalyser(pack.resolution.name_rules))  # the index of earlier versions
        names = [n for (n,) in c.execute(t.entity_names.select().with_only_columns(t.entity_names.c.name))]
        codes = [v for (v,) in c.execute(t.entity_identifiers.select().with_only_columns(t.entity_identifiers.c.value))]
    assert len(names) >= 8
    queries = [v for n in names for v in _variants(n)] + ["完全无关的名字", "hello"]
    compared = 0
    for query in queries:
        for action in ACTIONS:
            assert _answer(mapped, query, action) == _answer(in_memory, query, action), query
            compared += 1
    assert compared == 2 * len(queries)
    assert any(_answer(mapped, n, "bidding")[0] == "deny" for n in names)  # listed firms are found by name
    for code in codes:  # and by code, with the same subject
        assert mapped.screen_identifier(code, "bidding", AS_OF).subject_id == \
            in_memory.screen_identifier(code, "bidding", AS_OF).subject_id
    engine.dispose()


def test_restart_maps_the_file_and_catches_up(cli, db_url, tmp_path):
    build_world(cli, tmp_path)
    engine = open_engine(db_url)
    pack = load_pack("cn")
    first = ScreeningIndex.load(engine, pack, names=True)
    assert first.built
    again = ScreeningIndex.load(engine, pack, names=True)
    assert not again.built and again.file.folder == first.file.folder

    # a firm registered after the file was written: found by code and by name, after a refresh
    # and after a restart (which maps the same file and reads what changed since its stamp)
    late = write_csv(tmp_path / "late.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"],
                     [[LATE, "深圳市晚到科技有限公司", "有限责任公司", "赵晚", "2020-02-02", "存续"]])
    cli("ingest", late, "--authority", "samr", "--category", "registration")
    assert again.refresh(engine)
    for index in (again, ScreeningIndex.load(engine, pack, names=True)):
        assert not index.built
        found = index.screen_identifier(LATE, "bidding", AS_OF)
        assert found.decision.decision == "allow" and index.info[found.subject_id].key == LATE
        assert index.screen_name("深圳市晚到科技有限公司", "bidding", AS_OF).subject_id == found.subject_id

    # a file that does not fit the store (here: other name rules) is rebuilt, not used
    meta = first.file.folder / "meta.json"
    meta.write_text(meta.read_text(encoding="utf-8").replace('"rules": "', '"rules": "x'), encoding="utf-8")
    rebuilt = ScreeningIndex.load(engine, pack, names=True)
    assert rebuilt.built and rebuilt.file.folder != first.file.folder
    assert rebuilt.screen_name("深圳市晚到科技有限公司", "bidding", AS_OF).subject_id is not None
    engine.dispose()
