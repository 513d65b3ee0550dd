"""Entity resolution through the CLI, on SQLite and PostgreSQL.

A tiny register (XLSX) and a penalty file exercise every path a record can take: a valid
identifier, a legacy registration number, an exact name written another way, a scored
candidate, the review queue, a new entity. Then human judgements, re-runs, the entity file,
the links export and the evaluation against a truth file; finally the generated demo.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine, select

from xinyong.domain.identifiers import mask_person_id, uscc_check_character
from xinyong.store import tables as t
from xinyong.store.db import open_engine


def uscc(body17: str) -> str:
    return body17 + uscc_check_character(body17)


A = uscc("91110105MA01HX001")  # 北京华信科技有限公司, formerly 北京华信电子有限公司
B = uscc("91310115MA1HT0002")  # 上海恒泰贸易有限公司
C = uscc("91440300MA5HY0003")  # 深圳宏远建筑工程有限公司
D = uscc("91110108MA01XW004")  # 北京鑫盛餐饮管理有限公司 (head office)
E = uscc("91440101MA59BR005")  # 广州博瑞医药有限公司
F = uscc("91330106MA2AD0006")  # 杭州安德信息技术有限公司
G = uscc("91510100MA6RK0007")  # 成都瑞康食品贸易有限公司
H = uscc("91350200MA3DH0008")  # 厦门德恒（集团）有限公司
NOT_REGISTERED = uscc("91440101MA59BR999")  # valid, but no register entity holds it
REG_NO_A = "110105000012345"  # A's pre-2015 registration number
C_MISTYPED = C[:10] + ("6" if C[10] != "6" else "7") + C[11:]  # one character changed: fails its check
PERSON_ID = "11010519491231002X"

REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "曾用名", "注册号", "法定代表人", "所属行政区划", "成立日期", "登记状态"]
REGISTER = [
    [A, "北京华信科技有限公司", "北京华信电子有限公司", REG_NO_A, "王五", "110105", "2012-03-01", "存续"],
    [B, "上海恒泰贸易有限公司", "", "", "张三", "310115", "2016-05-10", "存续"],
    [C, "深圳宏远建筑工程有限公司", "", "", "李明", "440300", "2017-01-20", "存续"],
    [D, "北京鑫盛餐饮管理有限公司", "", "", "赵六", "110108", "2015-11-11", "存续"],
    [E, "广州博瑞医药有限公司", "", "", "陈七", "440101", "2018-07-07", "存续"],
    [F, "杭州安德信息技术有限公司", "", "", "周八", "330106", "2019-09-09", "存续"],
    [G, "成都瑞康食品贸易有限公司", "", "", "吴九", "510100", "2020-02-02", "存续"],
    [H, "厦门德恒（集团）有限公司", "", "", "郑十", "350200", "2010-10-10", "在业"],
]

PENALTY_HEADERS = ["当事人名称", "统一社会信用代码", "注册号", "行政相对人类别", "证件号码", "行政处罚决定书文号", "处罚决定日期"]
# decision number -> (name, USCC, registration number, kind, person ID)
PENALTIES: dict[str, tuple[str, str, str, str, str]] = {
    "P01": ("恒泰贸易", B, "", "", ""),                                  # valid USCC
    "P02": ("华信科技", "", REG_NO_A, "", ""),                          # legacy registration number
    "P03": ("厦门德恒(集团)有限公司", "", "", "", ""),                  # half-width brackets
    "P04": ("上海恒泰贸易有限责任公司", "", "", "", ""),                # 有限责任公司 for 有限公司
    "P05": ("北京市华信科技有限公司", "", "", "", ""),                  # 北京市 for 北京
    "P06": ("北京华信电子有限公司", "", "", "", ""),                    # former name
    "P07": ("上海华信科技有限公司", "", "", "", ""),                    # A's name, in another place
    "P08": ("宏远建筑工程", C_MISTYPED, "", "", ""),                    # mistyped code + name without legal form
    "P09": ("杭州安通信息技术有限公司", "", "", "", ""),                # one real character apart (a twin?)
    "P10": ("成都瑞糖食品贸易有限公司", "", "", "", ""),                # one real character apart (a twin?)
    "P11": ("西安云帆文化传媒有限公司", "", "", "", ""),                # unrelated
    "P12": ("北京鑫盛餐饮管理有限公司上海分公司", "", "", "", ""),      # branch of D
    "P13": ("广州博瑞医药有限公司", NOT_REGISTERED, "", "", ""),        # E's name, another valid USCC
    "P14": ("李四", "", "", "自然人", PERSON_ID),                       # a person
    "P15": ("李四", "", "", "自然人", PERSON_ID),                       # the same person again
}

# decision number -> (state, method, entity) after the first run; entity None: a new entity
EXPECTED: dict[str, tuple[str, str, str | None]] = {
    "P01": ("linked", "identifier", B),
    "P02": ("linked", "identifier", A),
    "P03": ("linked", "exact_name", H),
    "P04": ("linked", "exact_name", B),
    "P05": ("linked", "exact_name", A),
    "P06": ("linked", "exact_name", A),
    "P07": ("review", "score", None),
    "P08": ("linked", "score", C),
    "P09": ("review", "score", None),
    "P10": ("review", "score", None),
    "P11": ("new", "new_entity", None),
    "P12": ("new", "new_entity", None),
    "P13": ("new", "new_entity", None),
    "P14": ("new", "new_entity", None),
    "P15": ("linked", "identifier", None),
}


# -- helpers ------------------------------------------------------------------------------------

def write_xlsx(path: Path, headers: list[str], rows: list[list[Any]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def write_csv(path: Path, headers: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def ingest(cli, path: Path, authority: str, category: str) -> dict[str, Any]:
    result = json.loads(cli("ingest", path, "--authority", authority, "--category", category, "--json").stdout)
    assert result["quarantined"] == 0, result
    return result


def build(cli, tmp_path: Path, penalties: dict[str, tuple[str, str, str, str, str]] = PENALTIES) -> None:
    ingest(cli, write_xlsx(tmp_path / "register.xlsx", REGISTER_HEADERS, REGISTER), "samr", "registration")
    if not penalties:
        return
    rows = [[name, code, reg_no, kind, person, no, "2024-03-01"]
            for no, (name, code, reg_no, kind, person) in penalties.items()]
    ingest(cli, write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS, rows), "samr", "penalty")


def resolve(cli, *options: str) -> dict[str, Any]:
    return json.loads(cli("resolve", *options, "--json").stdout)


def links(cli, tmp_path: Path, name: str = "links.csv") -> dict[str, dict[str, str]]:
    path = tmp_path / name
    cli("links", "export", "-o", path)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["record_key", "entity_key", "method", "score"]
        return {row["record_key"]: row for row in reader}


def entity(cli, code: str) -> dict[str, Any]:
    return json.loads(cli("entity", "show", code, "--json").stdout)


def review_queue(cli) -> dict[str, dict[str, Any]]:
    return {item["record_key"]: item for item in json.loads(cli("review", "list", "--json").stdout)}


@contextmanager
def store(cli) -> Iterator[Engine]:
    engine = open_engine(cli.url)
    try:
        yield engine
    finally:
        engine.dispose()


def record_id(cli, record_key: str) -> int:
    with store(cli) as engine, engine.connect() as c:
        return c.execute(select(t.records.c.id).where(t.records.c.record_key == record_key)
                         .order_by(t.records.c.version.desc())).scalars().first()


def entity_origin(cli, key: str) -> tuple[str, bool, str]:
    with store(cli) as engine, engine.connect() as c:
        row = c.execute(select(t.entities.c.origin, t.entities.c.verified, t.entities.c.kind)
                        .where(t.entities.c.key == key)).one()
    return row.origin, bool(row.verified), row.kind


def key(no: str) -> str:
    return f"samr:{no}"


# -- every path ---------------------------------------------------------------------------------

def test_every_record_takes_its_path(cli, tmp_path):
    build(cli, tmp_path)
    result = resolve(cli)
    assert result["records"] == len(REGISTER) + len(PENALTIES)
    assert (result["by_identifier"], result["by_exact_name"], result["by_score"], result["by_judgement"],
            result["in_review"], result["new_entities"]) == (len(REGISTER) + 3, 4, 1, 0, 3, 4)

    exported = links(cli, tmp_path)
    assert set(exported) == {key(no) for no in PENALTIES} | {f"samr:{row[0]}" for row in REGISTER}
    for row in REGISTER:  # the register's own records link to the entities they created
        assert (exported[f"samr:{row[0]}"]["entity_key"], exported[f"samr:{row[0]}"]["method"]) == (row[0], "identifier")
    for no, (state, method, expected_entity) in EXPECTED.items():
        link = exported[key(no)]
        assert link["method"] == method, (no, link)
        if expected_entity is not None:
            assert link["entity_key"] == expected_entity, (no, link)
        if state == "review":
            assert link["entity_key"] == "", (no, link)  # no entity while a human has to decide
            assert 0.75 <= float(link["score"]) < 0.92, (no, link)
        if state == "new":
            assert link["entity_key"] not in {row[0] for row in REGISTER}, (no, link)
            assert link["score"] == "", (no, link)
    assert float(exported[key("P08")]["score"]) >= 0.92
    for no in ("P01", "P02", "P03", "P04", "P05", "P06"):
        assert float(exported[key(no)]["score"]) == 1.0

    # the unrelated name got an unverified entity of its own, made by resolution
    assert entity_origin(cli, exported[key("P11")]["entity_key"]) == ("resolution", False, "enterprise")

    # the second run has nothing new to link; review and new records are looked at again
    again = resolve(cli)
    assert again["records"] == 3 + 4  # in review, and given a new entity
    assert again["in_review"] == 3
    rerun = links(cli, tmp_path, "again.csv")
    assert {k: v["entity_key"] for k, v in rerun.items()} == {k: v["entity_key"] for k, v in exported.items()}


def test_same_name_in_another_place_is_not_an_exact_match(cli, tmp_path):
    build(cli, tmp_path, {"P07": PENALTIES["P07"], "P05": PENALTIES["P05"]})
    resolve(cli)
    queue = review_queue(cli)
    assert set(queue) == {key("P07")}
    (candidate,) = queue[key("P07")]["candidates"]
    assert candidate["entity"] == A and candidate["score"] < 0.92
    assert links(cli, tmp_path)[key("P05")]["method"] == "exact_name"


def test_a_branch_is_never_linked_to_its_head_office(cli, tmp_path):
    build(cli, tmp_path, {"P12": PENALTIES["P12"],
                          "P16": ("北京鑫盛餐饮管理有限责任公司上海市分公司", "", "", "", ""),
                          "P17": ("北京鑫盛餐饮管理有限公司", "", "", "", "")})
    resolve(cli)
    exported = links(cli, tmp_path)
    branch = exported[key("P12")]["entity_key"]
    assert branch not in ("", D)
    assert exported[key("P17")]["entity_key"] == D
    # the same branch written another way is the branch, not the head office
    assert exported[key("P16")]["entity_key"] == branch
    assert exported[key("P16")]["method"] == "exact_name"
    head = entity(cli, D)
    assert {r["record_key"] for r in head["records"]} == {f"samr:{D}", key("P17")}
    assert review_queue(cli) == {}


def test_two_valid_codes_are_never_merged(cli, tmp_path):
    build(cli, tmp_path, {"P13": PENALTIES["P13"]})
    resolve(cli)
    exported = links(cli, tmp_path)
    assert exported[key("P13")]["entity_key"] == NOT_REGISTERED  # a verified USCC is the new entity's key
    assert exported[key("P13")]["method"] == "new_entity"
    assert entity_origin(cli, NOT_REGISTERED) == ("resolution", True, "enterprise")
    assert key("P13") not in {r["record_key"] for r in entity(cli, E)["records"]}

    # a later record with that code links to that entity by its identifier, never to E
    rows = [["广州博瑞医药有限公司", NOT_REGISTERED, "", "", "", "P18", "2024-04-01"],
            ["广州博瑞医药有限公司", E, "", "", "", "P19", "2024-04-01"]]
    ingest(cli, write_csv(tmp_path / "more.csv", PENALTY_HEADERS, rows), "samr", "penalty")
    resolve(cli, "--all")
    exported = links(cli, tmp_path, "after.csv")
    assert (exported[key("P18")]["entity_key"], exported[key("P18")]["method"]) == (NOT_REGISTERED, "identifier")
    assert (exported[key("P19")]["entity_key"], exported[key("P19")]["method"]) == (E, "identifier")
    assert exported[key("P13")]["entity_key"] == NOT_REGISTERED
    assert entity(cli, NOT_REGISTERED)["identifiers"] == [{"scheme": "uscc", "value": NOT_REGISTERED, "verified": True}]


def test_a_person_gets_an_entity_whose_key_hides_the_id_number(cli, tmp_path):
    build(cli, tmp_path, {"P14": PENALTIES["P14"], "P15": PENALTIES["P15"]})
    resolve(cli)
    exported = links(cli, tmp_path)
    person = exported[key("P14")]["entity_key"]
    assert exported[key("P15")]["entity_key"] == person
    assert (exported[key("P14")]["method"], exported[key("P15")]["method"]) == ("new_entity", "identifier")
    assert PERSON_ID not in person and PERSON_ID[:6] + PERSON_ID[-4:] not in person
    assert PERSON_ID not in (tmp_path / "links.csv").read_text(encoding="utf-8")
    assert entity_origin(cli, person) == ("resolution", False, "natural_person")

    shown = cli("entity", "show", person, "--json").stdout
    assert PERSON_ID not in shown
    data = json.loads(shown)
    assert data["kind"] == "natural_person" and data["key"] == person
    assert data["identifiers"] == [{"scheme": "resident_id", "value": mask_person_id(PERSON_ID), "verified": True}]
    methods = {r["record_key"]: (r["link"]["method"], r["link"]["score"]) for r in data["records"]}
    assert methods == {key("P14"): ("new_entity", None), key("P15"): ("identifier", 1.0)}
    # the table form masks it too
    assert PERSON_ID not in cli("entity", "show", person).stdout


def test_entity_file_shows_how_each_record_was_linked(cli, tmp_path):
    build(cli, tmp_path)
    resolve(cli)
    data = entity(cli, A)
    assert data["key"] == A and data["origin"] == "register" and data["name"] == "北京华信科技有限公司"
    assert {n["name"]: n["current"] for n in data["names"]} == {"北京华信科技有限公司": True, "北京华信电子有限公司": False}
    found = {r["record_key"]: r["link"] for r in data["records"]}
    assert {k: (v["state"], v["method"], v["score"]) for k, v in found.items()} == {
        f"samr:{A}": ("linked", "identifier", 1.0),
        key("P02"): ("linked", "identifier", 1.0),
        key("P05"): ("linked", "exact_name", 1.0),
        key("P06"): ("linked", "exact_name", 1.0),
    }
    assert found[key("P02")]["explanation"] == {"identifier": "reg_no"}
    assert found[key("P05")]["explanation"]["name"] == "华信科技|有限公司|"
    # the same file by its legacy registration number
    assert entity(cli, REG_NO_A)["key"] == A

    scored = {r["record_key"]: r["link"] for r in entity(cli, C)["records"]}[key("P08")]
    assert scored["method"] == "score" and scored["score"] >= 0.92
    assert scored["explanation"]["components"]["code"] == 1.0
    assert scored["explanation"]["entity_id"] is not None


def test_a_trade_word_ending_in_qu_is_not_swallowed_into_an_exact_match(cli, tmp_path):
    """北京物业管理有限公司 is not 北京小区物业管理有限公司 (小区 is no district)."""
    estate = uscc("91110105MA01XQ009")
    ingest(cli, write_xlsx(tmp_path / "register2.xlsx", REGISTER_HEADERS,
                           [[estate, "北京小区物业管理有限公司", "", "", "钱一", "110105", "2014-04-04", "存续"]]),
           "samr", "registration")
    rows = [["北京物业管理有限公司", "", "", "", "", "P23", "2024-03-01"]]
    ingest(cli, write_csv(tmp_path / "p.csv", PENALTY_HEADERS, rows), "samr", "penalty")
    resolve(cli)
    link = links(cli, tmp_path)[key("P23")]
    assert link["entity_key"] != estate, link


# -- data the world sends (issue 11) ------------------------------------------------------------

def test_a_code_that_belongs_to_another_firm_goes_to_review_showing_both(cli, tmp_path):
    """B's valid code on a record named for A: not linked by code; A (by name) and B (by code) shown."""
    build(cli, tmp_path, {"P30": ("北京华信科技有限公司", B, "", "", ""),
                          "P31": ("西安云帆文化传媒有限公司", F, "", "", ""),
                          "P32": ("恒泰贸易", B, "", "", "")})  # a short name of B's: near, linked by code
    result = resolve(cli)
    queue = review_queue(cli)
    assert set(queue) == {key("P30"), key("P31")}
    for no, by_code in (("P30", B), ("P31", F)):
        item = queue[key(no)]
        assert item["reason"] == "code belongs to another firm"
        assert item["candidates"][0]["entity"] == by_code
    assert [c["entity"] for c in queue[key("P30")]["candidates"]] == [B, A]  # the name auto-links to A: both
    assert [c["entity"] for c in queue[key("P31")]["candidates"]] == [F]  # the name is near nothing else
    exported = links(cli, tmp_path)
    assert exported[key("P30")]["entity_key"] == exported[key("P31")]["entity_key"] == ""
    assert (exported[key("P32")]["entity_key"], exported[key("P32")]["method"]) == (B, "identifier")
    assert result["in_review"] == 2


def test_a_register_row_under_a_new_name_is_a_rename_not_a_contradiction(cli, tmp_path):
    build(cli, tmp_path, {})
    renamed = [[B, "上海云帆文化传媒有限公司", "上海恒泰贸易有限公司", "", "张三", "310115", "2016-05-10", "存续"]]
    ingest(cli, write_xlsx(tmp_path / "renamed.xlsx", REGISTER_HEADERS, renamed), "samr", "registration")
    resolve(cli)
    assert review_queue(cli) == {}
    assert {row["entity_key"] for k, row in links(cli, tmp_path).items() if k == f"samr:{B}"} == {B}


def test_a_homophone_typo_links_on_evidence_and_otherwise_waits_never_a_new_entity(cli, tmp_path):
    """化 for 华 (pinyin input): with the legal representative it is A; without, a person looks."""
    headers = PENALTY_HEADERS + ["法定代表人"]
    rows = [["北京化信科技有限公司", "", "", "", "", "P40", "2024-03-01", "王五"],
            ["北京化信科技有限公司", "", "", "", "", "P41", "2024-03-01", "孙二"],
            ["深圳宏远建筑工程有限公司", "", "", "", "", "P42", "2024-03-01", ""],
            ["深圳宏达建筑工程有限公司", "", "", "", "", "P43", "2024-03-01", "李明"],  # 达 is no typo of 远
            ["杭州安德信息技朮有限公司", "", "", "", "", "P44", "2024-03-01", ""]]  # 朮: traditional 术
    build(cli, tmp_path, {})
    ingest(cli, write_csv(tmp_path / "typos.csv", headers, rows), "samr", "penalty")
    resolve(cli)
    exported = links(cli, tmp_path)
    assert (exported[key("P40")]["entity_key"], exported[key("P40")]["method"]) == (A, "score")
    # the same sound in the same place and legal form, another legal representative: a person decides
    assert exported[key("P41")]["entity_key"] == ""
    assert exported[key("P42")]["entity_key"] == C
    # one real character apart, even with the same legal representative: a twin may share it
    assert exported[key("P43")]["entity_key"] == ""
    assert review_queue(cli)[key("P43")]["candidates"][0]["entity"] == C
    assert exported[key("P44")]["entity_key"] == F
    explanation = {r["record_key"]: r["link"] for r in entity(cli, A)["records"]}[key("P40")]["explanation"]
    components = explanation["components"]
    assert components["levels"]["name"] == "homophone" and components["legal_representative"] == 1.0
    assert set(components["weights"]) >= {"name", "legal_representative"}


def test_no_phantom_entity_for_a_near_name_and_ties_broken_by_the_exact_full_name(cli, tmp_path):
    twin = uscc("91110105MA01HX010")
    build(cli, tmp_path, {})
    ingest(cli, write_xlsx(tmp_path / "twin.xlsx", REGISTER_HEADERS,
                           [[twin, "华信科技有限公司", "", "", "刘一", "110105", "2013-03-01", "存续"]]),
           "samr", "registration")
    rows = [["华信科技有限公司", "", "", "", "", "P50", "2024-03-01"],   # both A and the twin have this key
            ["北京华信科技有限公司", "", "", "", "", "P51", "2024-03-01"],
            ["北京华信科枝有限公司", "", "", "", "", "P52", "2024-03-01"]]  # near A and the twin: review
    ingest(cli, write_csv(tmp_path / "p.csv", PENALTY_HEADERS, rows), "samr", "penalty")
    resolve(cli)
    exported = links(cli, tmp_path)
    assert exported[key("P50")]["entity_key"] == twin  # its exact full name decides between them
    assert exported[key("P51")]["entity_key"] == A
    assert exported[key("P52")]["entity_key"] == ""
    with store(cli) as engine, engine.connect() as c:
        made = c.execute(select(t.entities.c.id).where(t.entities.c.origin == "resolution")).all()
    assert made == []


def test_the_model_is_learned_and_saved_with_its_threshold(cli, tmp_path):
    build(cli, tmp_path)
    result = resolve(cli)
    with store(cli) as engine, engine.connect() as c:
        rows = c.execute(select(t.resolution_models.c.purpose, t.resolution_models.c.model)).all()
    models = [json.loads(m) if isinstance(m, str) else m for purpose, m in rows if purpose == "record_linkage"]
    if result["model_id"] is None:  # too few blocked pairs in this small store: the starting weights stay
        assert models == [] and result["threshold"] == 0.92
    else:
        (model,) = models
        assert set(model["m"]) == {"name", "legal_form", "place", "legal_representative", "address", "code"}
        assert result["threshold"] == max(0.92, model["threshold"])


def test_resolve_all_dry_run_lists_the_moves_and_changes_nothing(cli, tmp_path):
    build(cli, tmp_path, {"P05": PENALTIES["P05"], "P60": ("华信科技有限公司", "", "", "", "")})
    resolve(cli)
    before = links(cli, tmp_path)
    assert before[key("P60")]["entity_key"] == A
    # a second 华信科技 registers: the record's exact-name link would now be a tie
    other = uscc("91310115MA1HT0061")
    ingest(cli, write_xlsx(tmp_path / "more.xlsx", REGISTER_HEADERS,
                           [[other, "上海华信科技有限公司", "", "", "钱一", "310115", "2020-01-01", "存续"]]),
           "samr", "registration")
    resolve(cli)  # an ordinary run never moves an existing link
    assert links(cli, tmp_path, "ordinary.csv")[key("P60")]["entity_key"] == A
    dry = resolve(cli, "--all", "--dry-run")
    assert dry["dry_run"] is True
    moved = {m["record_key"]: m for m in dry["moves"]}
    assert set(moved) == {key("P60")}
    assert moved[key("P60")]["from"] == {"state": "linked", "entity": A}
    assert moved[key("P60")]["to"]["state"] == "review" and moved[key("P60")]["listings"] == []
    assert links(cli, tmp_path, "after.csv")[key("P60")]["entity_key"] == A
    text = cli("resolve", "--all", "--dry-run").stdout
    assert key("P60") in text and "nothing was changed" in text
    failed = cli("resolve", "--dry-run", ok=False)
    assert failed.exit_code == 1 and "--dry-run goes with --all" in failed.output


# -- judgements ---------------------------------------------------------------------------------

def test_review_list_shows_candidates_with_scores(cli, tmp_path):
    build(cli, tmp_path)
    resolve(cli)
    queue = review_queue(cli)
    assert set(queue) == {key("P07"), key("P09"), key("P10")}
    expected = {key("P07"): A, key("P09"): F, key("P10"): G}
    for record_key, item in queue.items():
        assert item["id"] == record_id(cli, record_key)
        assert item["candidates"][0]["entity"] == expected[record_key]
        assert 0.75 <= item["candidates"][0]["score"] == item["score"] < 0.92
        assert item["reason"]
    table = cli("review", "list").stdout
    assert "3 records in review" in table


def test_accepted_judgement_survives_every_rerun(cli, tmp_path):
    build(cli, tmp_path)
    resolve(cli)
    record = record_id(cli, key("P09"))
    outcome = json.loads(cli("review", "accept", record, "--actor", "analyst", "--reason", "typo", "--json").stdout)
    assert (outcome["state"], outcome["entity"], outcome["verdict"]) == ("linked", F, "match")
    assert key("P09") not in review_queue(cli)
    for options in ((), ("--all",), ("--all",)):
        result = resolve(cli, *options)
        exported = links(cli, tmp_path)
        assert exported[key("P09")] == {"record_key": key("P09"), "entity_key": F, "method": "judgement", "score": "1.0"}
    assert result["by_judgement"] == 0  # a judgement's link is kept as it is, never decided again
    assert result["records"] == len(REGISTER) + len(PENALTIES) - 1
    linked = {r["record_key"]: r["link"] for r in entity(cli, F)["records"]}
    assert (linked[key("P09")]["method"], linked[key("P09")]["score"]) == ("judgement", 1.0)


def test_rejected_judgement_moves_to_a_new_entity_and_survives_reruns(cli, tmp_path):
    build(cli, tmp_path)
    resolve(cli)
    record = record_id(cli, key("P10"))
    outcome = json.loads(cli("review", "reject", record, "--json").stdout)
    assert outcome["verdict"] == "no_match" and outcome["state"] == "new"
    new_key = outcome["entity"]
    assert new_key not in (None, G)
    assert entity_origin(cli, new_key)[0] == "resolution"
    for options in ((), ("--all",), ("--all",)):
        resolve(cli, *options)
        link = links(cli, tmp_path)[key("P10")]
        assert link["entity_key"] == new_key, options
        assert link["entity_key"] != G
        assert key("P10") not in review_queue(cli)
    assert key("P10") not in {r["record_key"] for r in entity(cli, G)["records"]}


def test_a_judgement_moves_a_record_between_entities(cli, tmp_path):
    build(cli, tmp_path)
    resolve(cli)
    # P05 was linked to A by its exact name; a person says it is H
    record = record_id(cli, key("P05"))
    outcome = json.loads(cli("review", "accept", record, "--entity", H, "--json").stdout)
    assert (outcome["state"], outcome["entity"]) == ("linked", H)
    assert outcome["moved_from"] is not None
    assert key("P05") not in {r["record_key"] for r in entity(cli, A)["records"]}
    assert {r["record_key"]: r["link"]["method"] for r in entity(cli, H)["records"]}[key("P05")] == "judgement"
    # P06 was linked to A by a former name; a person says it is not A (no candidates: the link is rejected)
    record = record_id(cli, key("P06"))
    outcome = json.loads(cli("review", "reject", record, "--json").stdout)
    assert outcome["entity"] not in (A, None) and outcome["moved_from"] is not None
    moved = outcome["entity"]
    resolve(cli, "--all")
    exported = links(cli, tmp_path)
    assert (exported[key("P05")]["entity_key"], exported[key("P05")]["method"]) == (H, "judgement")
    assert exported[key("P06")]["entity_key"] == moved
    assert {r["record_key"] for r in entity(cli, A)["records"]} == {f"samr:{A}", key("P02")}
    # both moves are in the audit trail, with where the record came from
    with store(cli) as engine, engine.connect() as c:
        events = c.execute(select(t.audit_events.c.action, t.audit_events.c.object_id, t.audit_events.c.payload)
                           .where(t.audit_events.c.action.like("judgement.%"))
                           .order_by(t.audit_events.c.seq)).all()
        ids = dict(c.execute(select(t.entities.c.key, t.entities.c.id)).all())
    assert [(e.action, e.object_id) for e in events] == [("judgement.match", key("P05")),
                                                         ("judgement.no_match", key("P06"))]
    payloads = [e.payload if isinstance(e.payload, dict) else json.loads(e.payload) for e in events]
    assert [(p["entity_id"], p["previous_entity_id"]) for p in payloads] == [(ids[H], ids[A]), (ids[A], ids[A])]
    assert cli("audit", "verify").exit_code == 0


def test_judgement_outcome_names_the_entity_it_moved_from(cli, tmp_path):
    build(cli, tmp_path, {"P05": PENALTIES["P05"]})
    resolve(cli)
    outcome = json.loads(cli("review", "accept", record_id(cli, key("P05")), "--entity", H, "--json").stdout)
    assert outcome["entity"] == H
    assert outcome["moved_from"] == A  # entities are named by key, as everywhere else in the CLI


def test_the_newest_judgement_wins(cli, tmp_path):
    build(cli, tmp_path, {"P05": PENALTIES["P05"]})
    resolve(cli)
    record = record_id(cli, key("P05"))
    for target in (H, B, H):  # a person changes their mind, then changes it back
        outcome = json.loads(cli("review", "accept", record, "--entity", target, "--json").stdout)
        assert outcome["entity"] == target
    resolve(cli, "--all")
    assert links(cli, tmp_path)[key("P05")]["entity_key"] == H


@pytest.mark.parametrize("no", ["P01", "P15"])
def test_rejecting_an_identifier_link_moves_the_record_off_that_entity(cli, tmp_path, no):
    """A person says the code the agency wrote is not this subject's: the judgement wins."""
    build(cli, tmp_path, {"P14": PENALTIES["P14"], no: PENALTIES[no]})
    resolve(cli)
    before = links(cli, tmp_path)[key(no)]
    assert before["method"] == "identifier"
    outcome = json.loads(cli("review", "reject", record_id(cli, key(no)), "--json").stdout)
    assert outcome["verdict"] == "no_match"
    assert outcome["entity"] != before["entity_key"]
    resolve(cli, "--all")
    assert links(cli, tmp_path, "after.csv")[key(no)]["entity_key"] != before["entity_key"]


def test_persons_without_an_id_number_are_never_merged_by_name(cli, tmp_path):
    build(cli, tmp_path, {"P20": ("王伟", "", "", "自然人", ""), "P21": ("王伟", "", "", "自然人", "")})
    result = resolve(cli)
    assert result["new_entities"] == 2
    exported = links(cli, tmp_path)
    assert exported[key("P20")]["entity_key"] != exported[key("P21")]["entity_key"]


def test_a_legacy_organisation_code_inside_a_registered_uscc_resolves(cli, tmp_path):
    """GB 32100: characters 9-17 of a USCC are the entity's organisation code."""
    build(cli, tmp_path, {})
    rows = [["上海恒泰贸易有限公司", B[8:17], "P22", "2024-03-01"]]
    ingest(cli, write_csv(tmp_path / "org.csv", ["当事人名称", "组织机构代码", "行政处罚决定书文号", "处罚决定日期"], rows),
           "samr", "penalty")
    resolve(cli)
    assert links(cli, tmp_path)[key("P22")]["entity_key"] == B


def test_judging_an_unknown_record_fails_cleanly(cli, tmp_path):
    build(cli, tmp_path, {"P11": PENALTIES["P11"]})
    resolve(cli)
    result = cli("review", "accept", 999999, ok=False)
    assert result.exit_code == 1 and "999999" in result.stderr
    # a record given a new entity has no candidate to accept without --entity
    result = cli("review", "accept", record_id(cli, key("P11")), ok=False)
    assert result.exit_code == 1 and "--entity" in result.stderr


# -- evaluation ---------------------------------------------------------------------------------

def test_evaluate_counts_by_hand(cli, tmp_path):
    build(cli, tmp_path)
    resolve(cli)
    truth = write_csv(tmp_path / "truth.csv", ["record_key", "entity_key"], [
        [key("P01"), B],    # TP: identifier link to the true entity
        [key("P05"), A],    # TP: exact name link to the true entity
        [key("P06"), B],    # FP: linked to A, truth says B
        [key("P04"), ""],   # FP: linked to a register entity, truth says none
        [key("P09"), F],    # FN: in review
        [key("P13"), E],    # FN: given a new entity while truth names a register entity
        [key("P11"), ""],   # nothing: new entity, truth says none
        [key("P07"), ""],   # nothing: in review, truth says none
        ["samr:NOPE", A],   # FN: not in the store
    ])
    report = json.loads(cli("resolve", "--evaluate", truth, "--json").stdout)
    tp, fp, fn = 2, 2, 3
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    f1 = 2 * precision * recall / (precision + recall)
    assert (report["true_positives"], report["false_positives"], report["false_negatives"]) == (tp, fp, fn)
    assert report["precision"] == round(precision, 4) == 0.5
    assert report["recall"] == round(recall, 4) == 0.4
    assert report["f1"] == round(f1, 4) == 0.4444
    assert report["truth_records_not_in_store"] == 1
    # over the whole store: linked to a register entity, in review, linked to an entity made by resolution
    assert report["auto_linked"] == len(REGISTER) + 7
    assert report["in_review"] == 3
    assert report["new_entities"] == 5
    table = cli("resolve", "--evaluate", truth).stdout
    assert "precision" in table and "0.4444" in table


def test_evaluate_refuses_a_file_without_the_columns(cli, tmp_path):
    bad = write_csv(tmp_path / "bad.csv", ["record", "entity"], [["samr:P01", B]])
    result = cli("resolve", "--evaluate", bad, ok=False)
    assert result.exit_code == 1 and "record_key" in result.stderr
    result = cli("resolve", "--evaluate", tmp_path / "missing.csv", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output


# -- the demo jurisdiction ----------------------------------------------------------------------

def test_demo_resolves_with_high_precision_and_recall(cli, tmp_path):
    from xinyong.services.operations.demo import generate

    out = tmp_path / "demo"
    manifest = generate(out, 600, 11)
    for entry in manifest["files"]:
        cli("ingest", out / entry["file"], "--authority", entry["authority"], "--category", entry["category"], "--json")
    result = resolve(cli)
    assert result["records"] > 600
    report = json.loads(cli("resolve", "--evaluate", out / manifest["truth"], "--json").stdout)
    assert report["truth_records_not_in_store"] == 0
    assert report["precision"] >= 0.995, report
    assert report["f1"] >= 0.98, report
    assert report["in_review"] == result["in_review"]
    # re-running everything changes no record's entity
    before = links(cli, tmp_path, "before.csv")
    resolve(cli, "--all")
    after = links(cli, tmp_path, "after.csv")
    assert {k: v["entity_key"] for k, v in after.items()} == {k: v["entity_key"] for k, v in before.items()}
