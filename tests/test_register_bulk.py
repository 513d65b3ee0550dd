"""Register rows for known entities are written in waves (services.intake.register): a row whose entity
is already in the wave starts the next one, so it sees what the earlier row wrote, as row by row
did. Both engines."""

from __future__ import annotations

from sqlalchemy import select

from test_ingest import REG_NO, VALID, ingest_one, store, write_csv
from xinyong.store import tables as t

HEADERS = ["统一社会信用代码", "企业名称", "英文名称", "法定代表人", "注册号", "成立日期", "登记状态"]
BROKEN = VALID[:-1] + ("0" if VALID[-1] != "0" else "1")  # fails its check: the entity is found by its reg_no


def test_one_entity_twice_in_a_file_keeps_every_change_in_order(cli, tmp_path):
    ingest_one(cli, write_csv(tmp_path / "a.csv", HEADERS, [
        [VALID, "北京某某科技有限公司", "", "张三", REG_NO, "2001-03-05", "存续"]]), category="registration")
    second = ingest_one(cli, write_csv(tmp_path / "b.csv", HEADERS, [
        [VALID, "北京某某数字科技有限公司", "Mou Digital", "李四", "", "2020-01-02", "存续"],
        [BROKEN, "北京某某智能科技有限公司", "Mou AI", "王五", REG_NO, "2022-06-07", "吊销"]]), category="registration")
    assert second["accepted"] == 2
    with store(cli) as engine, engine.connect() as c:
        entities = c.execute(select(t.entities.c.id, t.entities.c.status)).all()
        n, r = t.entity_names.c, t.entity_relations.c
        names = [tuple(row) for row in c.execute(select(n.name, n.current, n.valid_from, n.valid_to, n.language)
                                                  .order_by(n.id))]
        reps = [tuple(row) for row in c.execute(select(r.person_name, r.valid_from, r.valid_to).order_by(r.id))]
    assert len(entities) == 1 and entities[0].status == "吊销"
    day = __import__("datetime").date
    assert names == [
        ("北京某某科技有限公司", False, day(2001, 3, 5), day(2020, 1, 2), None),
        ("Mou Digital", False, day(2020, 1, 2), None, "en"),
        ("北京某某数字科技有限公司", False, day(2020, 1, 2), day(2022, 6, 7), None),
        ("Mou AI", False, day(2022, 6, 7), None, "en"),
        ("北京某某智能科技有限公司", True, day(2022, 6, 7), None, None),
    ]
    assert reps == [("张三", day(2001, 3, 5), day(2020, 1, 2)), ("李四", day(2020, 1, 2), day(2022, 6, 7)),
                    ("王五", day(2022, 6, 7), None)]


def test_a_second_extract_of_many_firms_updates_each(cli, tmp_path):
    from worlds import uscc
    codes = [uscc(f"9111000060{i:07d}") for i in range(1, 40)]
    ingest_one(cli, write_csv(tmp_path / "a.csv", HEADERS, [
        [code, f"北京第{i}科技有限公司", "", "张三", "", "2001-03-05", "存续"] for i, code in enumerate(codes)]),
        category="registration")
    again = ingest_one(cli, write_csv(tmp_path / "b.csv", HEADERS, [
        [code, f"北京第{i}科技有限公司" if i % 2 else f"北京新{i}科技有限公司", "", "张三" if i % 3 else "李四", "",
         "2001-03-05", "存续" if i % 5 else "注销"] for i, code in enumerate(codes)]), category="registration")
    assert again["accepted"] == len(codes)
    with store(cli) as engine, engine.connect() as c:
        n, r, e = t.entity_names.c, t.entity_relations.c, t.entities.c
        current = dict(c.execute(select(e.key, n.name).join(t.entity_names, n.entity_id == e.id).where(n.current)).all())
        open_reps = dict(c.execute(select(e.key, r.person_name).join(t.entity_relations, r.entity_id == e.id)
                                   .where(r.valid_to.is_(None))).all())
        statuses = dict(c.execute(select(e.key, e.status)).all())
    for i, code in enumerate(codes):
        assert current[code] == (f"北京第{i}科技有限公司" if i % 2 else f"北京新{i}科技有限公司")
        assert open_reps[code] == ("张三" if i % 3 else "李四")
        assert statuses[code] == ("存续" if i % 5 else "注销")
