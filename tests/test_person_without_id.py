"""A natural person's court record whose ID cell is empty, masked by the court, or mistyped.

The Supreme People's Court publishes defaulters' ID numbers partly masked (4403051990****0271), and
clerks leave the cell empty or mistype a digit. Such a row, in a category that records persons, has
a person's name (pack `person_names`) and no usable code: a natural person, but not an identified
one. Due process lists a person only on records naming them by a resident ID number that passes its
check (GB 11643): the record waits in review ("person not identified: no valid ID number"), gets no
entity, no public page and no listing. The three engines that run the pack's rules (SQL `evaluate`,
`evaluate --engine spark` over a snapshot, `simulate`) share one rule compiler and agree: even a
record a reviewer attached to an identified person counts for nothing unless it carries the number.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from pathlib import Path

from test_due_rules import COURT_HEADERS, GROUND_1, register, resident_id, run, uscc, write_csv
from xinyong.domain.pack import load_pack
from xinyong.services.lists.evaluate import qualifying_query, rule_in_force
from xinyong.store import tables as t
from xinyong.store.db import open_engine

AS_OF = "2025-09-15"
PACK_FILE = Path(__file__).parent.parent / "xinyong" / "packs" / "cn" / "pack.yaml"
WANG = resident_id("440305", dt.date(1990, 1, 1), 27)
LI = resident_id("440305", dt.date(1985, 6, 1), 31)
MISTYPED = WANG[:17] + ("0" if WANG[17] != "0" else "1")  # a wrong check character


def _count(url: str, table) -> int:
    engine = open_engine(url)
    try:
        with engine.connect() as c:
            return c.execute(select(func.count()).select_from(table)).scalar_one()
    finally:
        engine.dispose()


@pytest.mark.parametrize("id_cell", ["", "4403051990****0271", MISTYPED], ids=["empty", "masked-by-the-court", "mistyped"])
def test_a_court_debtor_without_a_valid_id_number_waits_in_review_and_is_never_listed(cli, tmp_path, id_cell):
    court = write_csv(tmp_path / "court.csv", COURT_HEADERS, [
        ["(2025)粤0305执903号", "王小红", id_cell, "深圳市南山区人民法院", "全部未履行", GROUND_1, "2025-08-02"]])
    cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
    resolved = run(cli, "resolve")
    assert (resolved["in_review"], resolved["new_entities"]) == (1, 0), resolved
    (waiting,) = run(cli, "review", "list")
    assert waiting["reason"] == "person not identified: no valid ID number" and waiting["candidates"] == []
    assert run(cli, "evaluate", "--as-of", AS_OF)["proposals"] == 0
    assert run(cli, "listing", "list") == []
    assert _count(cli.url, t.entities) == 0  # nobody's file, no public page
    # a second run holds it again: no entity is ever made of it
    assert run(cli, "resolve")["in_review"] == 1 and _count(cli.url, t.entities) == 0


def test_a_penalty_on_a_person_without_an_id_number_keeps_its_unlisted_file(cli, tmp_path):
    """Categories no list counts against persons (a penalty) keep the person's own unverified entity."""
    penalties = write_csv(tmp_path / "penalties.csv", ["当事人名称", "统一社会信用代码", "行政处罚决定书文号",
                                                        "处罚决定日期", "处罚类别", "罚款金额"],
                          [["王小明", "", "深市监罚〔2025〕1号", "2025-08-02", "警告", "0"]])
    cli("ingest", penalties, "--authority", "samr", "--category", "penalty")
    resolved = run(cli, "resolve")
    assert (resolved["in_review"], resolved["new_entities"]) == (0, 1), resolved


def _identified_and_not(cli, tmp_path) -> tuple[str, int]:
    """王小红's ID-less record attached by a reviewer to her identified entity (her other, performed,
    case names her by her ID number), and 李四's record with his: (her entity key, his entity id)."""
    court = write_csv(tmp_path / "court.csv", COURT_HEADERS, [
        ["(2025)粤0305执901号", "王小红", WANG, "深圳市南山区人民法院", "全部履行", GROUND_1, "2025-07-02"],
        ["(2025)粤0305执903号", "王小红", "", "深圳市南山区人民法院", "全部未履行", GROUND_1, "2025-08-02"],
        ["(2025)粤0305执905号", "李四", LI, "深圳市南山区人民法院", "全部未履行", GROUND_1, "2025-08-02"]])
    cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
    assert run(cli, "resolve")["in_review"] == 1
    (waiting,) = run(cli, "review", "list")
    i = t.entity_identifiers.c
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            wang = c.execute(select(t.entities.c.key).join(t.entity_identifiers, i.entity_id == t.entities.c.id)
                             .where(i.value == WANG)).scalar_one()
            li = c.execute(select(i.entity_id).where(i.value == LI)).scalar_one()
    finally:
        engine.dispose()
    accepted = run(cli, "review", "accept", waiting["id"], "--entity", wang, "--reason", "same name, same court")
    assert (accepted["state"], accepted["entity"]) == ("linked", wang)
    return wang, li


def test_sql_and_simulation_count_no_record_without_the_person_s_id_number(cli, tmp_path):
    """The record attached to 王小红 by a reviewer makes no proposal; 李四's, with his number, does
    (his age checked: no note), in the rules' SQL, in `evaluate` and in `simulate`."""
    wang, li = _identified_and_not(cli, tmp_path)
    pack, as_of = load_pack("cn"), dt.date.fromisoformat(AS_OF)
    spec = next(s for s in pack.lists if s.code == "court_defaulters")
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            sql = c.execute(qualifying_query(pack, spec, rule_in_force(spec, as_of), as_of)).all()
    finally:
        engine.dispose()
    assert [(entity, note) for entity, _record, note in sql] == [(li, None)]
    simulated = run(cli, "simulate", "--pack", PACK_FILE, "--as-of", AS_OF)
    assert simulated["by_list"]["court_defaulters"]["active"] == 1
    evaluated = run(cli, "evaluate", "--as-of", AS_OF)
    assert evaluated["per_list"]["court_defaulters"] == 1
    assert [listing["entity"] != wang for listing in run(cli, "listing", "list")] == [True]


@pytest.mark.spark
def test_spark_counts_no_record_without_the_person_s_id_number(cli, tmp_path):
    pytest.importorskip("pyspark")
    wang, _li = _identified_and_not(cli, tmp_path)
    snapshot = tmp_path / "snapshot"
    cli("export", "--format", "parquet", "--out", snapshot)
    spark = run(cli, "evaluate", "--engine", "spark", "--snapshot", snapshot, "--as-of", AS_OF, "--full")
    assert spark["per_list"]["court_defaulters"] == 1, spark
    assert [listing["entity"] != wang for listing in run(cli, "listing", "list")] == [True]
    assert run(cli, "evaluate", "--as-of", AS_OF, "--full")["proposals"] == 0  # SQL finds nothing Spark missed


def _linked_to(url: str) -> dict[str, tuple[str, str | None]]:
    """Each record's decision number -> (its link's state, the key of the entity it is linked to)."""
    engine = open_engine(url)
    r, link, e = t.records.c, t.record_links.c, t.entities.c
    try:
        with engine.connect() as c:
            return {key.split(":", 1)[1].split("#")[0]: (state, entity) for key, state, entity in c.execute(
                select(r.record_key, link.state, e.key).join(t.record_links, link.record_id == r.id)
                .outerjoin(t.entities, e.id == link.entity_id))}
    finally:
        engine.dispose()


def test_a_firm_s_registered_name_without_its_legal_form_is_the_firm_not_a_person(cli, tmp_path):
    """九阳股份 and 厦门信达, with no code, are shaped like persons' names (four Han characters) and intake
    reads them so; but the register holds exactly one firm each whose registered name is that name with
    its legal form (a person's name is never a firm's whole trade name and industry): the penalties are
    the firms'. A kind written 自然人, a name no firm carries, or a category a list counts against
    persons keeps the person reading."""
    jiuyang, xinda = uscc("91370100163745802"), uscc("91350200154859603")
    register(cli, tmp_path, [(jiuyang, "九阳股份有限公司"), (xinda, "厦门信达股份有限公司")])
    headers = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额",
               "行政相对人类别"]
    cli("ingest", write_csv(tmp_path / "penalties.csv", headers, [
        ["九阳股份", "", "深市监罚〔2025〕11号", "2025-08-02", "警告", "0", ""],
        ["厦门信达", "", "深市监罚〔2025〕12号", "2025-08-02", "警告", "0", ""],
        ["王小明", "", "深市监罚〔2025〕13号", "2025-08-02", "警告", "0", ""],
        ["厦门信达", "", "深市监罚〔2025〕14号", "2025-08-02", "警告", "0", "自然人"]]),
        "--authority", "samr", "--category", "penalty")
    court = write_csv(tmp_path / "court.csv", COURT_HEADERS, [
        ["(2025)粤0305执907号", "厦门信达", "", "深圳市南山区人民法院", "全部未履行", GROUND_1, "2025-08-02"]])
    cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    links = _linked_to(cli.url)
    assert links["深市监罚〔2025〕11号"] == ("linked", jiuyang)
    assert links["深市监罚〔2025〕12号"] == ("linked", xinda)
    for person in ("深市监罚〔2025〕13号", "深市监罚〔2025〕14号"):  # each a person's own unlisted entity
        state, key = links[person]
        assert state == "new" and key.startswith("P"), (person, links[person])
    assert links["(2025)粤0305执907号"] == ("review", None)


def test_a_person_s_name_stays_a_person_s_where_a_firm_is_registered_under_it(cli, tmp_path):
    """王伟有限公司 is the only firm whose core is 王伟, and 歐陽娜娜有限公司 the only one for 欧阳娜娜: a
    penalty naming 王伟 or 歐陽娜娜 without a code is a person's (a family name and a given name), never
    that firm's; 九阳股份 beside them is still the firm's."""
    wang, ouyang, jiuyang = uscc("91440300MA5F0W1X8"), uscc("91440300MA5F0W2X6"), uscc("91370100163745802")
    register(cli, tmp_path, [(wang, "王伟有限公司"), (ouyang, "欧阳娜娜有限公司"), (jiuyang, "九阳股份有限公司")])
    headers = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额"]
    cli("ingest", write_csv(tmp_path / "penalties.csv", headers, [
        ["王伟", "", "深卫罚〔2025〕21号", "2025-08-02", "警告", "0"],
        ["歐陽娜娜", "", "深卫罚〔2025〕22号", "2025-08-02", "警告", "0"],
        ["九阳股份", "", "深卫罚〔2025〕23号", "2025-08-02", "警告", "0"]]),
        "--authority", "samr", "--category", "penalty")
    run(cli, "resolve")
    links = _linked_to(cli.url)
    for person in ("深卫罚〔2025〕21号", "深卫罚〔2025〕22号"):
        state, key = links[person]
        assert state == "new" and key.startswith("P"), (person, links[person])
    assert links["深卫罚〔2025〕23号"] == ("linked", jiuyang)
