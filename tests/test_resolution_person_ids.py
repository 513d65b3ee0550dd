"""A person's valid ID number under another person's name.

A court file named 王建国 with the ID number the register gives 小米's legal representative 雷军:
resolution made a person entity 王建国 holding 雷军's number, the court-defaulter rule proposed
listing it, and a listing reaches every firm whose legal representative bears that number (小米).
A second case naming 李四 with the number a first case gave 张三 was linked to 张三. The number or
the name is wrong; which, only a human (or the court's corrected record) can say: such a record
now waits in review ("ID number belongs to another person"). A name written another way (spaces,
traditional characters, a homophone typed for a character, Latin words in another order) is the
same person's.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from worlds import resident_id, run, uscc, write_csv

from xinyong.domain.names import same_person_name
from xinyong.store import tables as t
from xinyong.store.db import open_engine

XIAOMI = uscc("91110108551385082")
LEI_JUN = resident_id("110108", dt.date(1969, 12, 16), 111)
ZHANG_SAN = resident_id("110105", dt.date(1975, 3, 2), 222)
COURT = ["案号", "被执行人姓名/名称", "身份证号码/组织机构代码", "执行法院", "被执行人的履行情况",
         "失信被执行人行为具体情形", "担保情况", "发布时间"]
REFUSES = "有履行能力而拒不履行生效法律文书确定义务"


def _links(url: str) -> dict[str, tuple[str, str | None, str | None]]:
    """record key -> (link state, entity key, reason)"""
    engine = open_engine(url)
    r, link, e = t.records.c, t.record_links.c, t.entities.c
    try:
        with engine.connect() as c:
            return {row.record_key: (row.state, row.key, (row.explanation or {}).get("reason"))
                    for row in c.execute(select(r.record_key, link.state, e.key, link.explanation)
                                         .join(t.record_links, link.record_id == r.id)
                                         .outerjoin(t.entities, e.id == link.entity_id)
                                         .where(r.category == "court_defaulter"))}
    finally:
        engine.dispose()


def test_a_court_case_under_another_name_with_a_legal_representatives_id_number_waits_for_a_human(cli, tmp_path):
    write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "法定代表人证件号码",
                                          "成立日期", "登记状态"], [
        [XIAOMI, "小米科技有限责任公司", "有限责任公司", "雷军", LEI_JUN, "2010-03-03", "存续"]])
    cli("ingest", tmp_path / "register.csv", "--authority", "samr", "--category", "registration")
    write_csv(tmp_path / "court.csv", COURT, [
        ["(2026)京0105执1号", "王建国", LEI_JUN, "北京市朝阳区人民法院", "全部未履行", REFUSES, "", "2026-08-01"],
        ["(2026)京0105执2号", "雷 军", LEI_JUN, "北京市朝阳区人民法院", "全部未履行", REFUSES, "", "2026-08-02"]])
    cli("ingest", tmp_path / "court.csv", "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    found = _links(cli.url)
    wrong = found[f"court:(2026)京0105执1号#{LEI_JUN}"]
    assert wrong == ("review", None, "ID number belongs to another person"), wrong
    assert found[f"court:(2026)京0105执2号#{LEI_JUN}"][0] == "new"  # 雷军's own case, his name spaced out
    run(cli, "evaluate", "--as-of", "2026-09-01")
    listed = run(cli, "listing", "list", "--entity", LEI_JUN)  # 雷军's own case only (keys shown masked)
    assert [key.split("#")[0] for listing in listed for key in listing["evidence"]] == ["court:(2026)京0105执2号"], listed


def test_a_case_under_another_name_with_an_id_number_a_person_already_holds_is_not_linked_to_that_person(cli, tmp_path):
    write_csv(tmp_path / "court.csv", COURT, [
        ["(2026)京0105执11号", "张三", ZHANG_SAN, "北京市朝阳区人民法院", "全部未履行", REFUSES, "", "2026-08-01"]])
    cli("ingest", tmp_path / "court.csv", "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    write_csv(tmp_path / "court2.csv", COURT, [
        ["(2026)京0105执12号", "李四", ZHANG_SAN, "北京市朝阳区人民法院", "全部未履行", REFUSES, "", "2026-08-05"],
        ["(2026)京0105执13号", "張三", ZHANG_SAN, "北京市朝阳区人民法院", "全部未履行", REFUSES, "", "2026-08-06"],
        ["(2026)京0105执14号", "张叁", ZHANG_SAN, "北京市朝阳区人民法院", "全部未履行", REFUSES, "", "2026-08-07"]])
    cli("ingest", tmp_path / "court2.csv", "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    found = _links(cli.url)
    holder = found[f"court:(2026)京0105执11号#{ZHANG_SAN}"][1]
    assert found[f"court:(2026)京0105执12号#{ZHANG_SAN}"] == ("review", None, "ID number belongs to another person")
    assert found[f"court:(2026)京0105执13号#{ZHANG_SAN}"][:2] == ("linked", holder)  # traditional characters
    assert found[f"court:(2026)京0105执14号#{ZHANG_SAN}"][:2] == ("linked", holder)  # a homophone typed
    # the human who settles it links the case to the holder (the name was the court's typo)
    queue = run(cli, "review", "list")
    record_id = next(item["id"] for item in queue if item["record_key"].startswith("court:(2026)京0105执12号"))
    judged = run(cli, "review", "accept", record_id, "--actor", "clerk-li", "--reason", "name typo, ID checked")
    assert (judged["state"], judged["entity"]) == ("linked", holder), judged


names = st.text(alphabet="王李张刘陈杨赵黄周吴建国伟芳娜敏静丽强磊军洋勇艳杰涛明超秀英华", min_size=2, max_size=4)


@given(names, st.sampled_from(["", " ", "\u3000", "·"]))
def test_a_name_written_with_spaces_or_dots_is_the_same_persons(name, gap):
    written = gap.join(name) if gap else name
    assert same_person_name(name, written)
    assert same_person_name(written, name)


def test_names_of_two_people_are_not_the_same_persons():
    assert not same_person_name("王建国", "雷军")
    assert not same_person_name("张三", "李四")
    assert not same_person_name("张三", "张三丰")
    assert same_person_name("SMITH John", "john smith")
    assert not same_person_name("John Smith", "Jane Smith")
