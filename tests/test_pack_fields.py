"""Every field of the pack schema has an effect: a table maps each one to a test that shows it.

A pack field that no code reads is a defect (issue 10): an operator changes it and nothing
happens. `EFFECTS` maps every field path of the schema to a test that takes the `cn` pack,
changes that one field (and, where the field only matters in a context, first sets that
context in both packs), and sees a different outcome of the code that reads it.

Which paths (rule of `schema_paths`):
- A path is the chain of field names from `Pack`, by alias (`in` for `Condition.in_`):
  `lists.due_process.objection_days`, `categories.fields.units`.
- Lists, dicts and optionals of models are walked through without a segment of their own
  (`field_sets` is `dict[code, list[FieldSpec]]`, so `field_sets.headers`): the keys of a dict
  are data, not schema.
- A field whose type contains a model (`lists.due_process`, `resolution.name_rules`) is a
  container and is covered by its leaves; every other field is a leaf and must be in the table.
- A model nested in itself (a condition grouping conditions) is not walked again: the nesting
  field is a leaf (`lists.rules.any_of.all_of`), and the inner fields are those of the outer one.
- A leaf reached through two routes is two paths (`categories.fields.headers` and
  `field_sets.headers`): each route is its own place in a pack file.

The table's values name a test of this file (`test_name`) or another file's
(`tests/test_x.py::test_name`). A field missing from the table fails: a pack field that no
code reads is a defect (issue 10), to be read by the code or removed from the schema.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import typing
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from pydantic import BaseModel
from sqlalchemy import select

from conftest import Cli
from worlds import FIRM_CLEAN, FIRM_DEBTOR, FIRM_PROPOSED, FIRM_SERIOUS, NAMES, build_world, resident_id, uscc, write_csv
from xinyong.domain.calendar import Calendar, listing_end, pack_today, term_end
from xinyong.domain.conditions import holds
from xinyong.domain.decisions import Bearing, ListingView, decide, measures_for
from xinyong.domain.matching import NameAnalyser
from xinyong.domain.pack import (
    Classification,
    Condition,
    DurationTerm,
    FieldSpec,
    FieldType,
    GradeRuleSpec,
    MoveSpec,
    Names,
    Pack,
    PACKS_DIR,
    PackError,
    PublicityRegime,
    PublicityTier,
    RuleSpec,
    SubjectKind,
    load_pack,
)
from xinyong.domain.records import (
    FileRefused,
    RowValidator,
    check_mapping,
    is_published,
    map_columns,
    public_fields,
    publicity_end,
)
from xinyong.services.lists.due_process import (
    Actor,
    AuthorityRefused,
    DueProcessError,
    apply_repair,
    deciding_authority,
    extend,
    notify,
    objection_deadline,
    process,
    remind,
    render_notice,
    repair_deadlines,
)
from xinyong.services.resolution.entities import public_categories, public_file
from xinyong.services.lists.evaluate import qualifying_query, rule_in_force
from xinyong.services.accountability.grades import GradeError, compute_grade, share_grade
from xinyong.services.accountability.scorecard import scorecard
from xinyong.services.intake.ingest import check_authority
from xinyong.services.publication.lists import list_page
from xinyong.services.publication.report import report_context
from xinyong.services.resolution.resolve import EntityIndex, Resolver, load_index, load_judgements, train
from xinyong.services.screening.screen import Answer, ScreeningIndex
from xinyong.store import tables as t
from xinyong.store.db import open_engine

CN = load_pack("cn")
LANGS = ("zh", "en", "fr")


# -- the schema's field paths ------------------------------------------------------------------------

def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def schema_paths(model: type[BaseModel] = Pack, prefix: str = "",
                 within: tuple[type[BaseModel], ...] = ()) -> list[str]:
    """Every leaf field path of the schema, in declaration order (see the module's rule)."""
    paths: list[str] = []
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name)
        models = _models_in(info.annotation)
        if not models:
            paths.append(path)
        for inner in models:
            if inner in (*within, model):  # a model nested in itself: the nesting is the leaf
                paths.append(path)
            else:
                paths += schema_paths(inner, path + ".", (*within, model))
    return paths


# -- changing one field of the cn pack ------------------------------------------------------------------

def _replace(items: list[Any], code: str, /, **update: Any) -> list[Any]:
    assert code in {i.code for i in items}, code
    return [i.model_copy(update=update) if i.code == code else i for i in items]


def valid(pack: Pack) -> Pack:
    """A changed pack passes the schema as a pack file would: a test never runs on a pack no
    operator could load."""
    return Pack.model_validate(pack.model_dump(by_alias=True))


def changed(pack: Pack, **update: Any) -> Pack:
    return valid(pack.model_copy(update=update))


def recoded(pack: Pack, old: str, new: str) -> Pack:
    """The pack with one item's code renamed everywhere it is referred to."""
    text = json.dumps(pack.model_dump(mode="json", by_alias=True), ensure_ascii=False)
    assert f'"{old}"' in text
    return Pack.model_validate(json.loads(text.replace(f'"{old}"', f'"{new}"')))


def with_list(pack: Pack, code: str, /, **update: Any) -> Pack:
    return changed(pack, lists=_replace(pack.lists, code, **update))


def with_category(pack: Pack, code: str, /, **update: Any) -> Pack:
    return changed(pack, categories=_replace(pack.categories, code, **update))


def with_due_process(pack: Pack, code: str, /, **update: Any) -> Pack:
    return with_list(pack, code, due_process=pack.list_(code).due_process.model_copy(update=update))


def with_repair(pack: Pack, code: str, /, **update: Any) -> Pack:
    return with_list(pack, code, repair=pack.list_(code).repair.model_copy(update=update))


def with_rule(pack: Pack, code: str, /, **update: Any) -> Pack:
    rules = pack.list_(code).rules
    return with_list(pack, code, rules=[rules[-1].model_copy(update=update)])


def renamed(names: Names, lang: str) -> Names:
    return names.model_copy(update={lang: getattr(names, lang) + " (renamed)"})


def outcome(action: Callable[[], Any]) -> Any:
    """What a call gives, or the refusal it ends with: a refusal is an outcome too."""
    try:
        return action()
    except (PackError, DueProcessError, AuthorityRefused, FileRefused, ValueError, KeyError) as exc:
        return f"refused: {type(exc).__name__}: {exc}"


def assert_differs(before: Any, after: Any) -> None:
    assert before != after, f"changing the field changed nothing: {before!r}"


# -- stores -------------------------------------------------------------------------------------------------

@pytest.fixture
def fresh_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A factory of copies of tests/worlds.py's world on SQLite (one engine is enough to show an
    effect): each call gives a new store, so a step can be taken once with each pack."""
    monkeypatch.delenv("XINYONG_AUDIT_DIR", raising=False)
    monkeypatch.setenv("XINYONG_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setenv("XINYONG_FILES_DIR", str(tmp_path / "files"))
    made: list[Any] = []

    def make():
        folder = tmp_path / f"world{len(made)}"
        folder.mkdir()
        cli = Cli(f"sqlite:///{folder / 'store.db'}")
        cli("init")
        ids = build_world(cli, folder)
        engine = open_engine(cli.url)
        made.append(engine)
        return engine, ids, cli

    yield make
    for engine in made:
        engine.dispose()


# A small register of records for the inclusion rules: resolved, never evaluated, so that no entity
# is kept out of a rule's query by a listing it already has.
FIRM_BIG_FINE = uscc("91310000MA1RU0001")   # fine of 1.5 million yuan, June 2025
FIRM_REVOKED = uscc("91310000MA1RU0002")    # licence revoked, 1 September 2025
FIRM_SMALL_FINE = uscc("91310000MA1RU0003")  # fine of 20,000 yuan
FIRM_TWO_FINES = uscc("91310000MA1RU0004")  # two fines of 1.2 million yuan
ADULT = resident_id("110101", dt.date(1980, 5, 12), 123)
MINOR = resident_id("440305", dt.date(2010, 3, 1), 456)
SECURED = resident_id("110105", dt.date(1975, 1, 20), 321)
RULES_AS_OF = dt.date(2025, 9, 15)


@pytest.fixture(scope="module")
def rules_store(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("rules")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("XINYONG_AUDIT_DIR", raising=False)
        cli = Cli(f"sqlite:///{folder / 'store.db'}")
        cli("init")
        firms = {FIRM_BIG_FINE: "上海甲科技有限公司", FIRM_REVOKED: "上海乙餐饮有限公司",
                 FIRM_SMALL_FINE: "上海丙贸易有限公司", FIRM_TWO_FINES: "上海丁建设有限公司"}
        register = write_csv(folder / "register.csv", ["统一社会信用代码", "企业名称", "成立日期", "登记状态"],
                             [[code, name, "2012-01-01", "存续"] for code, name in firms.items()])
        penalties = write_csv(folder / "penalties.csv",
                              ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"], [
            [firms[FIRM_BIG_FINE], FIRM_BIG_FINE, "沪罚〔2025〕11号", "2025-06-03", "罚款", "150"],
            [firms[FIRM_REVOKED], FIRM_REVOKED, "沪罚〔2025〕12号", "2025-09-01", "吊销许可证", ""],
            [firms[FIRM_SMALL_FINE], FIRM_SMALL_FINE, "沪罚〔2025〕13号", "2025-06-12", "罚款", "2"],
            [firms[FIRM_TWO_FINES], FIRM_TWO_FINES, "沪罚〔2025〕14号", "2025-03-03", "罚款", "120"],
            [firms[FIRM_TWO_FINES], FIRM_TWO_FINES, "沪罚〔2025〕15号", "2025-07-07", "罚款", "120"],
        ])
        court = write_csv(folder / "court.csv", ["案号", "被执行人姓名/名称", "身份证号码/组织机构代码", "执行法院",
                                                  "被执行人的履行情况", "担保情况", "发布时间"], [
            ["(2025)京0105执21号", "张成年", ADULT, "北京市朝阳区人民法院", "全部未履行", "", "2025-08-01"],
            ["(2025)粤0305执22号", "李未成", MINOR, "深圳市南山区人民法院", "全部未履行", "", "2025-08-02"],
            ["(2025)京0105执23号", "王担保", SECURED, "北京市朝阳区人民法院", "全部未履行", "已提供充分担保", "2025-08-03"],
        ])
        grades = write_csv(folder / "grades.csv", ["纳税人名称", "统一社会信用代码", "纳税信用级别", "评价年度", "评价日期"], [
            [firms[FIRM_SMALL_FINE], FIRM_SMALL_FINE, "A", "2024", "2025-04-20"],
            [firms[FIRM_TWO_FINES], FIRM_TWO_FINES, "A", "2024", "2025-04-20"],
            [firms[FIRM_TWO_FINES], FIRM_TWO_FINES, "B", "2025", "2025-08-20"],
        ])
        abnormal = write_csv(folder / "abnormal.csv", ["企业名称", "统一社会信用代码", "列入决定书文号", "列入原因", "列入日期",
                                                        "移出日期"], [
            [firms[FIRM_BIG_FINE], FIRM_BIG_FINE, "沪市监异〔2025〕1号", "未按规定报送年度报告", "2025-03-03", "2025-06-02"],
            [firms[FIRM_REVOKED], FIRM_REVOKED, "沪市监异〔2025〕2号", "通过登记的住所无法联系", "2025-04-01", ""],
        ])
        for path, authority, category in ((register, "samr", "registration"), (penalties, "samr", "penalty"),
                                          (court, "court", "court_defaulter"), (grades, "tax", "tax_grade"),
                                          (abnormal, "samr", "abnormal_operation")):
            cli("ingest", path, "--authority", authority, "--category", category)
        cli("resolve")
        engine = open_engine(cli.url)
        yield engine
        engine.dispose()


def qualifying(engine: Any, pack: Pack, list_code: str, as_of: dt.date = RULES_AS_OF) -> list[tuple[str, str]]:
    """(subject code, record key) of the records that make a subject qualify for the list."""
    spec = pack.list_(list_code)
    rule = rule_in_force(spec, as_of)
    assert rule is not None
    query = qualifying_query(pack, spec, rule, as_of).subquery()
    r = t.records.c
    with engine.connect() as c:
        rows = c.execute(select(r.subject_code, r.record_key).join(query, query.c.record_id == r.id)).all()
    return sorted((code, key) for code, key in rows)


# == effect tests ===========================================================================================

# -- calendar -------------------------------------------------------------------------------------------------

CALENDAR_CHANGES = {
    "calendar.working_days": {"working_days": ["mon", "tue", "wed", "thu", "fri", "sat"]},
    "calendar.holidays": {"holidays": []},
    "calendar.extra_working_days": {"extra_working_days": []},
}


@pytest.mark.parametrize("path", sorted(CALENDAR_CHANGES))
def test_calendar_days_move_a_working_day_deadline(path: str) -> None:
    # 10 working days from 22 September 2025 run over National Day and its make-up Sunday (28 Sept)
    other = CN.calendar.model_copy(update=CALENDAR_CHANGES[path])
    before = Calendar(CN.calendar).deadline(dt.date(2025, 9, 22), 10, "working")
    after = Calendar(other).deadline(dt.date(2025, 9, 22), 10, "working")
    assert before == dt.date(2025, 10, 11)
    assert_differs(before, after)


def test_calendar_deadlines_end_on_working_days() -> None:
    # 10 calendar days from 21 September 2026 end on National Day (1 October): or the first working day after it
    # (the cn pack moves them, as the law does: the probe turns that off)
    unrolled = CN.calendar.model_copy(update={"deadlines_end_on_working_days": False})
    assert_differs(Calendar(CN.calendar).deadline(dt.date(2026, 9, 21), 10, "calendar"),
                   Calendar(unrolled).deadline(dt.date(2026, 9, 21), 10, "calendar"))


def test_calendar_timezone_decides_today() -> None:
    # UTC+14 and UTC-12 are 26 hours apart: their dates differ at every instant
    east = changed(CN, calendar=CN.calendar.model_copy(update={"timezone": "Pacific/Kiritimati"}))
    west = changed(CN, calendar=CN.calendar.model_copy(update={"timezone": "Etc/GMT+12"}))
    assert_differs(pack_today(east), pack_today(west))


# -- record fields, in a category's own fields and in a shared field set ---------------------------------------

PROBE_NAMES = Names(zh="探针", en="Probe", fr="Sonde")
# path leaf -> (probe field before, probe field after, header, cell)
FIELD_CHANGES: dict[str, tuple[FieldSpec, FieldSpec, str, str]] = {
    "name": (FieldSpec(name="probe"), FieldSpec(name="probe_renamed"), "probe", "x"),
    "type": (FieldSpec(name="probe", headers=["探针"]),
             FieldSpec(name="probe", type=FieldType.integer, headers=["探针"]), "探针", "0012"),
    "required": (FieldSpec(name="probe", headers=["探针"]),
                 FieldSpec(name="probe", required=True, headers=["探针"]), "探针", ""),
    "headers": (FieldSpec(name="probe"), FieldSpec(name="probe", headers=["探针"]), "探针", "x"),
    "units": (FieldSpec(name="probe", type=FieldType.amount, headers=["探针（万元）"]),
              FieldSpec(name="probe", type=FieldType.amount, headers=["探针（万元）"], units={"万元": 10000}),
              "探针（万元）", "2"),
    "values": (FieldSpec(name="probe", type=FieldType.enum, values=["甲", "乙"], headers=["探针"]),
               FieldSpec(name="probe", type=FieldType.enum, values=["甲", "乙", "丙"], headers=["探针"]), "探针", "丙"),
    "value_synonyms": (FieldSpec(name="probe", type=FieldType.enum, values=["甲", "乙"], headers=["探针"]),
                       FieldSpec(name="probe", type=FieldType.enum, values=["甲", "乙"], headers=["探针"],
                                 value_synonyms={"A": "甲"}), "探针", "A"),
    "classification": (FieldSpec(name="probe", headers=["探针"]),
                       FieldSpec(name="probe", headers=["探针"], classification=Classification.restricted), "探针", "x"),
    **{f"names.{lang}": (FieldSpec(name="probe", headers=["探针"], names=PROBE_NAMES),
                         FieldSpec(name="probe", headers=["探针"], names=renamed(PROBE_NAMES, lang)), "探针", "x")
       for lang in LANGS},
}


def with_probe(pack: Pack, route: str, probe: FieldSpec) -> Pack:
    """The pack with `probe` as a field of the penalty category: its own, or from the `subject` set."""
    if route == "field_sets":
        return changed(pack, field_sets={**pack.field_sets, "subject": [*pack.field_sets["subject"], probe]})
    penalty = pack.category("penalty")
    return with_category(pack, "penalty", fields=[*penalty.fields, probe])


def _report_file(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A public file as services.resolution.entities.public_file hands it to the report."""
    return {"key": FIRM_SERIOUS, "kind": "enterprise", "verified": True, "status": "存续", "region": "310000",
            "established": dt.date(2010, 1, 5), "name": "上海某某科技有限公司",
            "names": [{"name": "上海某某科技有限公司", "current": True}],
            "identifiers": [{"scheme": "uscc", "value": FIRM_SERIOUS}], "address": "上海市", "legal_representative": "孙一",
            "listings": [], "records": records}


def _report_record(category: str, fields: dict[str, Any], authority: str = "samr") -> dict[str, Any]:
    return {"record_key": f"{authority}:沪罚〔2025〕1号", "version": 1, "category": category,
            "category_title": CN.category(category).names.model_dump(), "authority": authority, "status": "active",
            "decision_date": dt.date(2025, 6, 3), "publicity_ends": None, "fields": fields}


def report(pack: Pack, records: list[dict[str, Any]], language: str = "zh") -> dict[str, Any]:
    context = report_context(pack, _report_file(records), language, dt.date(2025, 10, 20), "ABCD2345EFGH",
                             dt.datetime(2025, 10, 20, 8, tzinfo=dt.timezone.utc))
    return {k: context[k] for k in ("jurisdiction", "identity", "listings", "records")}


def observe_row(pack: Pack, header: str, cell: str, language: str = "zh") -> dict[str, Any]:
    """What one penalty row becomes: its column mapping, the record or its rejection, the fields
    any public surface may show, and the report's lines for it."""
    category = pack.category("penalty")
    headers = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", header]
    mapping = map_columns(pack, category, headers)
    refused = outcome(lambda: check_mapping(pack, category, mapping))
    result = RowValidator(pack, category, "samr", mapping).validate(
        ["上海某某科技有限公司", FIRM_SERIOUS, "沪罚〔2025〕1号", "2025-06-03", cell])
    fields = getattr(result, "fields", None)
    return {"mapping": mapping.as_dict(), "refused": refused, "record": fields or result,
            "public": sorted(public_fields(pack, category, fields or {})),
            "report": report(pack, [_report_record("penalty", fields)], language)["records"] if fields else None}


@pytest.mark.parametrize("route", ["categories.fields", "field_sets"])
@pytest.mark.parametrize("leaf", sorted(FIELD_CHANGES))
def test_record_field_spec(route: str, leaf: str) -> None:
    before_spec, after_spec, header, cell = FIELD_CHANGES[leaf]
    language = leaf.split(".")[1] if leaf.startswith("names.") else "zh"
    before = observe_row(with_probe(CN, route, before_spec), header, cell, language)
    after = observe_row(with_probe(CN, route, after_spec), header, cell, language)
    assert_differs(before, after)


def test_kind_synonyms_name_a_subject_kind() -> None:
    more = changed(CN, kind_synonyms={**CN.kind_synonyms, "公司制企业": SubjectKind.enterprise})
    assert_differs(observe_row(CN, "行政相对人类别", "公司制企业"), observe_row(more, "行政相对人类别", "公司制企业"))


# -- categories -----------------------------------------------------------------------------------------

PENALTY = CN.category("penalty")
# a penalty record's fields, for the conditions tested in Python (publicity tiers, listing terms)
FINED = {"penalty_type": "罚款", "fine_amount": 1_500_000.0}
PENALTY_TYPES = {f.name: f.type for f in CN.fields_of(PENALTY)}
CATEGORY_CHANGES: dict[str, dict[str, Any]] = {
    "categories.subject.name_field": {"subject": PENALTY.subject.model_copy(update={"name_field": "legal_representative"})},
    "categories.subject.code_fields": {"subject": PENALTY.subject.model_copy(update={"code_fields": ["reg_no"]})},
    "categories.subject.kind_field": {"subject": PENALTY.subject.model_copy(update={"kind_field": None})},
    "categories.natural_key": {"natural_key": "violation_type"},
    "categories.key_includes_subject": {"key_includes_subject": True},
    "categories.date_field": {"date_field": "publicity_end"},
}


def observe_penalty(pack: Pack) -> Any:
    category = pack.category("penalty")
    headers = ["当事人名称", "行政相对人类别", "统一社会信用代码", "法定代表人", "行政处罚决定书文号", "违法行为类型",
               "处罚决定日期", "公示截止期"]
    mapping = map_columns(pack, category, headers)
    result = RowValidator(pack, category, "samr", mapping).validate(
        ["上海某某科技有限公司", "法人及非法人组织", FIRM_SERIOUS, "孙一", "沪罚〔2025〕1号", "虚假广告", "2025-06-03",
         "2026-06-03"])
    return outcome(lambda: check_mapping(pack, category, mapping)), result


@pytest.mark.parametrize("path", sorted(CATEGORY_CHANGES))
def test_category_reads_a_row(path: str) -> None:
    assert_differs(observe_penalty(CN), observe_penalty(with_category(CN, "penalty", **CATEGORY_CHANGES[path])))


def test_category_include_brings_a_field_set() -> None:
    extra = changed(CN, field_sets={**CN.field_sets, "probe": [FieldSpec(name="probe", headers=["探针"])]})
    assert_differs(observe_row(extra, "探针", "x"),
                   observe_row(with_category(extra, "penalty", include=[*PENALTY.include, "probe"]), "探针", "x"))


PERSON_ROW = ["许可文书号", "许可决定日期", "行政相对人名称", "证件号码"]


@pytest.mark.parametrize("path, update", [
    ("categories.subject_kinds", {"subject_kinds": [SubjectKind.enterprise]}),
    ("categories.person_legal_basis", {"person_legal_basis": None}),
])
def test_category_admits_persons(path: str, update: dict[str, Any]) -> None:
    def observe(pack: Pack) -> Any:
        category = pack.category("licence")
        mapping = map_columns(pack, category, PERSON_ROW)
        return RowValidator(pack, category, "samr", mapping).validate(["京许〔2025〕1号", "2025-06-03", "张三", ADULT])
    assert_differs(observe(CN), observe(with_category(CN, "licence", **update)))


def test_category_classification_decides_public_categories() -> None:
    other = with_category(CN, "tax_grade", classification=Classification.public)
    assert_differs(sorted(public_categories(CN)), sorted(public_categories(other)))


PUBLICITY_CHANGES = {
    "categories.publicity.default_months": {"default_months": 6},
    "categories.publicity.min_months": {"min_months": 24},
    "categories.publicity.max_months": {"max_months": 6},
    "categories.publicity.end_field": {"end_field": None},
}


@pytest.mark.parametrize("path", sorted(PUBLICITY_CHANGES))
def test_publicity_period_of_a_record(path: str) -> None:
    # the authority says one year and a half; the pack says 12 months by default, within 3 to 36
    fields = {"publicity_end": "2026-12-03"}
    other = PENALTY.model_copy(update={"publicity": PENALTY.publicity.model_copy(update=PUBLICITY_CHANGES[path])})
    without_end = {} if path == "categories.publicity.default_months" else fields
    assert_differs(publicity_end(PENALTY, dt.date(2025, 6, 3), without_end),
                   publicity_end(other, dt.date(2025, 6, 3), without_end))


@pytest.mark.parametrize("path, update", [
    ("categories.publicity.type_field", {"type_field": "violation_type"}),
    ("categories.publicity.unpublished_types", {"unpublished_types": []}),
])
def test_a_warning_is_published_or_not(path: str, update: dict[str, Any]) -> None:
    other = PENALTY.model_copy(update={"publicity": PENALTY.publicity.model_copy(update=update)})
    assert_differs(is_published(PENALTY, {"penalty_type": "警告"}), is_published(other, {"penalty_type": "警告"}))


def with_tier(category: Any, code: str, **update: Any) -> Any:
    regime = category.publicity.regimes[-1]
    regime = regime.model_copy(update={"tiers": _replace(regime.tiers, code, **update)})
    return category.model_copy(update={"publicity": category.publicity.model_copy(update={"regimes": [regime]})})


FROM_LATER = PENALTY.publicity.regimes[-1].model_copy(update={"from_": dt.date(2026, 6, 1)})
# path -> (changed category, the record's fields, the subject's lists in force); decided 4 May 2026
TIER_CHANGES: dict[str, tuple[Any, dict[str, Any], tuple[str, ...]]] = {
    # the authority states 18 months: the 2026 general tier clamps it to 12, the older regime allows 36
    "categories.publicity.regimes.from": (
        PENALTY.model_copy(update={"publicity": PENALTY.publicity.model_copy(update={"regimes": [FROM_LATER]})}),
        {**FINED, "publicity_end": "2027-11-04"}, ()),
    "categories.publicity.regimes.tiers.on_lists": (with_tier(PENALTY, "serious", on_lists=[]), FINED,
                                                    ("serious_dishonesty",)),
    "categories.publicity.regimes.tiers.default_months": (with_tier(PENALTY, "general", default_months=6), FINED, ()),
    "categories.publicity.regimes.tiers.min_months": (with_tier(PENALTY, "general", min_months=2),
                                                      {**FINED, "publicity_end": "2026-06-04"}, ()),
    "categories.publicity.regimes.tiers.max_months": (with_tier(PENALTY, "general", max_months=24),
                                                      {**FINED, "publicity_end": "2027-11-04"}, ()),
}


@pytest.mark.parametrize("path", sorted(TIER_CHANGES))
def test_publicity_tiers(path: str) -> None:
    other, fields, lists = TIER_CHANGES[path]
    day = dt.date(2026, 5, 4)
    assert_differs(publicity_end(PENALTY, day, fields, lists, PENALTY_TYPES),
                   publicity_end(other, day, fields, lists, PENALTY_TYPES))


def test_term_years_of_a_court_ground() -> None:
    duration = CN.list_("court_defaulters").duration
    longer = duration.model_copy(update={"terms": [duration.terms[0], duration.terms[1].model_copy(update={"years": 3})]})
    evidence = [{"ground": "违反限制消费令"}]
    types = {f.name: f.type for f in CN.fields_of(CN.category("court_defaulter"))}
    start = dt.date(2025, 10, 13)
    assert_differs(term_end(duration, start, evidence, types), term_end(longer, start, evidence, types))


def test_category_creates_entities_keeps_the_register_out_of_the_report_records() -> None:
    record = _report_record("registration", {"uscc": FIRM_SERIOUS, "name": "上海某某科技有限公司", "address": "上海市"})
    assert_differs(report(CN, [record])["records"],
                   report(with_category(CN, "registration", creates_entities=False), [record])["records"])


def test_currency_of_amounts_in_the_report() -> None:
    record = _report_record("penalty", {"fine_amount": 20000.0})
    assert_differs(report(CN, [record], "en")["records"], report(changed(CN, currency="EUR"), [record], "en")["records"])


def test_language_serves_a_browser_asking_for_none_of_ours(fresh_world) -> None:
    from fastapi.testclient import TestClient

    from xinyong.api.app import create_app

    engine, _, _ = fresh_world()

    def served(pack: Pack) -> str:
        with TestClient(create_app(engine, pack)) as http:
            return http.get("/lists", headers={"Accept-Language": "pt-BR"}).headers["Content-Language"]
    assert_differs(served(CN), served(changed(CN, language="fr")))


@pytest.mark.parametrize("lang", LANGS)
def test_pack_names_head_the_report(lang: str) -> None:
    assert_differs(report(CN, [], lang)["jurisdiction"],
                   report(changed(CN, names=renamed(CN.names, lang)), [], lang)["jurisdiction"])


@pytest.mark.parametrize("lang", LANGS)
def test_authority_names_in_the_report(lang: str) -> None:
    record = _report_record("penalty", {"facts": "虚假广告"})
    other = changed(CN, authorities=_replace(CN.authorities, "samr", names=renamed(CN.authority("samr").names, lang)))
    assert_differs(report(CN, [record], lang)["records"], report(other, [record], lang)["records"])


def test_authority_competences_admit_a_file() -> None:
    other = changed(CN, authorities=_replace(CN.authorities, "env", competences=["env_violation"]))
    assert_differs(outcome(lambda: check_authority(CN, "env", "penalty")),
                   outcome(lambda: check_authority(other, "env", "penalty")))


# -- resolution -------------------------------------------------------------------------------------------

def link(pack: Pack, name: str, known: list[str]) -> tuple[str, int | None]:
    """How a record naming `name` links to entities known by `known` names (ids 1, 2...)."""
    index = EntityIndex(NameAnalyser(pack.resolution.name_rules))
    for entity_id, known_name in enumerate(known, start=1):
        index.add(entity_id, f"E{entity_id}", "register", False, [known_name], [], None)
    decision = Resolver(pack, index, {}, {}).decide("samr:1", name, "enterprise", None, None, False, None)
    return decision.state, decision.entity_id


def with_resolution(**update: Any) -> Pack:
    return changed(CN, resolution=CN.resolution.model_copy(update=update))


# path -> (context set in both packs, the change, a record's name, the names of the known entities)
THRESHOLD_CHANGES: dict[str, tuple[dict[str, Any], dict[str, Any], str, list[str]]] = {
    # a one-character typo in a six-character core, nothing else known: review with cn
    "resolution.auto_link": ({}, {"auto_link": 0.8}, "上海华东精密机械有限公司", ["上海华东精密器械有限公司"]),
    "resolution.review": ({}, {"review": 0.91}, "上海华东精密机械有限公司", ["上海华东精密器械有限公司"]),
    # two candidates a few thousandths apart, the first above a lowered auto_link: a wide margin makes them a tie
    "resolution.ambiguity_margin": ({"auto_link": 0.85, "ambiguity_margin": 0.001}, {"ambiguity_margin": 0.03},
                                    "上海华东精密机械有限公司", ["上海华东精密器械有限公司", "上海华东精密机械有限公司（分公司）"]),
}


def test_family_names_keep_a_person_s_name_from_a_firm_registered_under_it() -> None:
    """王伟, no code, no kind written (intake read it as a person's), beside the one firm 王伟有限公司:
    with 王 a family name of the pack it stays a person's; without, it is the firm's short name."""
    def decide(pack: Pack) -> tuple[str, int | None]:
        index = EntityIndex(NameAnalyser(pack.resolution.name_rules))
        index.add(1, "E1", "register", False, ["王伟有限公司"], [], None)
        decision = Resolver(pack, index, {}, {}).decide("samr:1", "王伟", "natural_person", None, None, False,
                                                        None, category="penalty", kind_written=False)
        return decision.state, decision.entity_id
    without_wang = [family for family in CN.person_names.surnames if family != "王"]
    assert decide(CN) == ("new", None)
    assert_differs(decide(CN), decide(changed(CN, person_names=CN.person_names.model_copy(
        update={"surnames": without_wang}))))


@pytest.mark.parametrize("path", sorted(THRESHOLD_CHANGES))
def test_resolution_thresholds_decide_a_link(path: str) -> None:
    context, update, name, known = THRESHOLD_CHANGES[path]
    before = with_resolution(**context)
    after = changed(before, resolution=before.resolution.model_copy(update=update))
    assert_differs(link(before, name, known), link(after, name, known))


def test_target_precision_sets_the_learned_threshold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sixty firms and their penalties under near names: training sets the lowest link
    probability whose links reach the target precision (the model is rolled back after each)."""
    monkeypatch.delenv("XINYONG_AUDIT_DIR", raising=False)
    cli = Cli(f"sqlite:///{tmp_path / 'store.db'}")
    cli("init")
    trades = ["华东", "华西", "东方", "南方", "北方", "中天", "天元", "恒通", "宏达", "金桥", "银河", "长城", "黄河", "长江",
              "泰山", "昆仑", "东海", "南海", "西湖", "太湖"]
    firms = [(uscc(f"91310000MA1TP{n:04d}"), f"上海{trade}{industry}有限公司")
             for n, (trade, industry) in enumerate(((t, i) for t in trades for i in ("精密机械", "食品贸易", "建筑工程")), 1)]
    register = write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "成立日期", "登记状态"],
                         [[code, name, "2012-01-01", "存续"] for code, name in firms])
    penalties = write_csv(tmp_path / "penalties.csv", ["当事人名称", "行政处罚决定书文号", "处罚决定日期", "处罚类别"], [
        row for n, (_, name) in enumerate(firms) for row in (
            [name.replace("有限公司", "有限责任公司") if n % 2 else name.replace("上海", "上海市"),
             f"沪罚〔2025〕{n + 100}号", "2025-06-03", "罚款"],
            [name[:-4] + "股份有限公司", f"沪罚〔2025〕{n + 300}号", "2025-06-04", "罚款"])])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    cli("ingest", penalties, "--authority", "samr", "--category", "penalty")
    engine = open_engine(cli.url)

    def threshold(pack: Pack) -> float:
        with engine.connect() as c, c.begin() as transaction:
            matches, ruled_out = load_judgements(c)
            model, model_id = train(c, pack, load_index(c, NameAnalyser(pack.resolution.name_rules)), matches, ruled_out)
            transaction.rollback()
        assert model_id is not None, "too few pairs to train on"
        return model.threshold
    try:
        assert_differs(threshold(CN), threshold(with_resolution(target_precision=0.5)))
    finally:
        engine.dispose()


RULES = CN.resolution.name_rules
# a pack without a division table: the place names it lists stand for themselves
NAME_LIST = {"places": [], "region_names": ["北京", "上海"]}


def with_place(code: str, /, **update: Any) -> list[Any]:
    assert code in {p.code for p in RULES.places}, code
    return [p.model_copy(update=update) if p.code == code else p for p in RULES.places]


# path -> (context set in both, the change, a name)
NAME_RULE_CHANGES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "resolution.name_rules.legal_forms": ({}, {"legal_forms": {}}, "北京某某科技有限责任公司"),
    "resolution.name_rules.branch_markers": ({}, {"branch_markers": []}, "北京某某科技有限公司上海分公司"),
    "resolution.name_rules.region_names": (NAME_LIST, {"region_names": []}, "北京某某科技有限公司"),
    "resolution.name_rules.region_suffixes": ({}, {"region_suffixes": []}, "北京市某某科技有限公司"),
    "resolution.name_rules.district_suffixes": ({}, {"district_suffixes": []}, "朝阳区某某科技有限公司"),
    "resolution.name_rules.protected_words": ({}, {"protected_words": []}, "北京市场营销有限公司"),
    "resolution.name_rules.ethnic_groups": ({}, {"ethnic_groups": []}, "延边某某科技有限公司"),
    "resolution.name_rules.places.code": ({}, {"places": with_place("130600", code="130699")}, "保定某某科技有限公司"),
    "resolution.name_rules.places.name": ({}, {"places": with_place("130600", name="保州市")}, "保定某某科技有限公司"),
    # a county's short name is not a place (东方, 城关 are words)
    "resolution.name_rules.places.level": ({}, {"places": with_place("130600", level="county")}, "保定某某科技有限公司"),
    # 那曲 is 那曲市 now, not the former 那曲地区
    "resolution.name_rules.places.status": ({}, {"places": with_place("542400", status="current")}, "那曲某某科技有限公司"),
}


@pytest.mark.parametrize("path", sorted(NAME_RULE_CHANGES))
def test_name_rules_split_a_name(path: str) -> None:
    context, update, name = NAME_RULE_CHANGES[path]
    before = RULES.model_copy(update=context)
    assert_differs(NameAnalyser(before).parts(name), NameAnalyser(before.model_copy(update=update)).parts(name))


def test_places_file_fills_the_division_table(tmp_path: Path) -> None:
    """An overlay naming its own table beside it: its places join the parent's."""
    (tmp_path / "places.csv").write_text("code,name,level,status\n139900,新保定市,prefecture,current\n", encoding="utf-8")
    overlay = tmp_path / "pack.yaml"
    overlay.write_text(yaml.safe_dump({"code": "cn-bd", "version": "1", "extends": "cn",
                                       "resolution": {"name_rules": {"places_file": "places.csv"}}}), encoding="utf-8")
    assert_differs(len(CN.resolution.name_rules.places), len(load_pack(str(overlay)).resolution.name_rules.places))


# -- measures and screening ----------------------------------------------------------------------------------

def _listing(list_code: str, entity_key: str = "E1", effective_to: dt.date | None = dt.date(2028, 1, 2)) -> ListingView:
    return ListingView(1, entity_key, list_code, ((dt.date(2025, 1, 2), "effective"),), dt.date(2025, 1, 2),
                       effective_to, None, ())


def screening(pack: Pack, action: str, bearings: list[Bearing]) -> Any:
    """The screening answer as the API and CLI give it (without its query id)."""
    def answer() -> dict[str, Any]:
        decision = decide(measures_for(pack, action), action, dt.date(2025, 10, 20), bearings)
        data = ScreeningIndex(pack).answer_data(Answer("q", decision, None))
        del data["query_id"]
        return data
    return outcome(answer)


def with_measure(pack: Pack, code: str, /, **update: Any) -> Pack:
    return changed(pack, measures=_replace(pack.measures, code, **update))


SCREENING_CHANGES: dict[str, tuple[Pack, str, list[Bearing]]] = {
    "measures.code": (with_measure(CN, "no_bidding", code="bidding_ban"), "bidding", [Bearing(_listing("serious_dishonesty"))]),
    "measures.lists": (with_measure(CN, "no_bidding", lists=["abnormal_operations"]), "bidding",
                       [Bearing(_listing("serious_dishonesty"))]),
    "measures.actions": (with_measure(CN, "no_bidding", actions=["subsidy"]), "bidding",
                         [Bearing(_listing("serious_dishonesty"))]),
    "measures.effect": (with_measure(CN, "no_bidding", effect="conditions"), "bidding",
                        [Bearing(_listing("serious_dishonesty"))]),
    "measures.legal_basis": (with_measure(CN, "no_bidding", legal_basis="《某法》第一条"), "bidding",
                             [Bearing(_listing("serious_dishonesty"))]),
    "measures.authority": (with_measure(CN, "no_bidding", authority="finance"), "bidding",
                           [Bearing(_listing("serious_dishonesty"))]),
    # the legal representative of a firm on the court list: high consumption reaches them
    "measures.reaches": (with_measure(CN, "high_consumption_ban", reaches=[]), "high_consumption",
                         [Bearing(_listing("court_defaulters"), "legal_representative")]),
    # the bar on a listed firm's legal representative: at most 3 years from the listing's effect
    "measures.max_years": (with_measure(CN, "no_legal_representative_role", max_years=5),
                           "legal_representative_appointment",
                           [Bearing(_listing("serious_dishonesty", effective_to=None), "legal_representative")]),
    "lists.legal_basis": (with_list(CN, "serious_dishonesty", legal_basis="《某办法》"), "bidding",
                          [Bearing(_listing("serious_dishonesty"))]),
    "code": (changed(CN, code="cn-sh"), "bidding", []),
    "version": (changed(CN, version="2026.2"), "bidding", []),
    "actions.code": (recoded(CN, "bidding", "tendering"), "bidding", []),
    **{f"measures.names.{lang}": (with_measure(CN, "no_bidding", names=renamed(CN.measures[1].names, lang)), "bidding",
                                  [Bearing(_listing("serious_dishonesty"))]) for lang in LANGS},
}


@pytest.mark.parametrize("path", sorted(SCREENING_CHANGES))
def test_screening_answer(path: str) -> None:
    changed, action, bearings = SCREENING_CHANGES[path]
    assert_differs(screening(CN, action, bearings), screening(changed, action, bearings))


# -- list durations and rules, pure -----------------------------------------------------------------------

DURATION_CHANGES = {
    "lists.duration.kind": ("abnormal_operations", {"kind": "until_performance", "review_interval_months": 6}),
    "lists.duration.years": ("abnormal_operations", {"years": 2}),
    "lists.duration.min_years": ("serious_dishonesty", {"min_years": 2}),
    "lists.duration.max_years": ("serious_dishonesty", {"max_years": 2}),
}


@pytest.mark.parametrize("path", sorted(DURATION_CHANGES))
def test_duration_sets_the_end_of_a_listing(path: str) -> None:
    code, update = DURATION_CHANGES[path]
    duration = CN.list_(code).duration
    severity = 1.5 if path == "lists.duration.min_years" else None  # a severity below the new minimum
    start = dt.date(2025, 10, 13)
    assert_differs(listing_end(duration, start, severity),
                   listing_end(duration.model_copy(update=update), start, severity))


RULE_DATES = {
    "lists.rules.effective": ({}, {"effective": dt.date(2021, 10, 1)}),
    "lists.rules.published": ({}, {"published": dt.date(2021, 9, 20)}),
    "lists.rules.comment_period_days": ({"published": dt.date(2021, 8, 1)}, {"comment_period_days": 60}),
}


@pytest.mark.parametrize("path", sorted(RULE_DATES))
def test_rule_dates_decide_the_rule_in_force(path: str) -> None:
    base, change = RULE_DATES[path]
    before = with_rule(CN, "serious_dishonesty", **base)
    after = with_rule(before, "serious_dishonesty", **change)
    day = dt.date(2021, 9, 15)
    assert_differs(rule_in_force(before.list_("serious_dishonesty"), day),
                   rule_in_force(after.list_("serious_dishonesty"), day))


# -- inclusion rules, on a small store ------------------------------------------------------------------------

def probe_rule(kind: str, condition: Condition) -> Pack:
    """The serious list with one rule made of one condition, under any_of, all_of or exclude."""
    rule = RuleSpec(version="probe", effective=dt.date(2021, 9, 1), legal_basis="probe", categories=["penalty"],
                    **{kind: [condition]})
    return with_list(CN, "serious_dishonesty", rules=[rule])


BIG_FINE = Condition(field="fine_amount", min=1_000_000)
HUGE_FINE = Condition(field="fine_amount", min=100_000_000)
# a fine at least twice itself never holds; against an empty base the ratio is not checked
TWICE_ITSELF = Condition(field="fine_amount", min=1, ratio_to="fine_amount", min_ratio=2)
CONDITION_CHANGES = {
    "field": (BIG_FINE, Condition(field="confiscated_amount", min=1_000_000)),
    "min": (BIG_FINE, HUGE_FINE),
    "in": (Condition(field="penalty_type", **{"in": ["吊销许可证"]}), Condition(field="penalty_type", **{"in": ["罚款"]})),
    "present": (Condition(field="fine_amount", present=True), Condition(field="fine_amount", present=False)),
    "ratio_to": (TWICE_ITSELF.model_copy(update={"ratio_to": "confiscated_amount"}), TWICE_ITSELF),
    "min_ratio": (TWICE_ITSELF.model_copy(update={"min_ratio": 0.5}), TWICE_ITSELF),
    "all_of": (Condition(all_of=[BIG_FINE]), Condition(all_of=[HUGE_FINE])),
    "any_of": (Condition(any_of=[BIG_FINE]), Condition(any_of=[HUGE_FINE])),
}


@pytest.mark.parametrize("leaf", sorted(CONDITION_CHANGES))
def test_publicity_tier_condition(leaf: str) -> None:
    """A tier of 24 months for the records its condition takes, 6 months for the others."""
    def end(condition: Condition) -> Any:
        regime = PublicityRegime(**{"from": dt.date(2026, 4, 1)}, tiers=[
            PublicityTier(code="probe", any_of=[condition], default_months=24, min_months=24, max_months=24),
            PublicityTier(code="rest", default_months=6, min_months=6, max_months=6)])
        category = PENALTY.model_copy(update={"publicity": PENALTY.publicity.model_copy(update={"regimes": [regime]})})
        return publicity_end(category, dt.date(2026, 5, 4), FINED, (), PENALTY_TYPES)
    before, after = CONDITION_CHANGES[leaf]
    assert_differs(end(before), end(after))


@pytest.mark.parametrize("leaf", sorted(CONDITION_CHANGES))
def test_listing_term_condition(leaf: str) -> None:
    """A term of 5 years for the evidence its condition takes; 3 years (the list's) otherwise."""
    def end(condition: Condition) -> Any:
        duration = CN.list_("abnormal_operations").duration.model_copy(
            update={"terms": [DurationTerm(when=condition, years=5)]})
        return term_end(duration, dt.date(2025, 10, 13), [FINED], PENALTY_TYPES)
    before, after = CONDITION_CHANGES[leaf]
    assert_differs(end(before), end(after))


RULE_CONDITIONS = [(kind, leaf) for kind in ("any_of", "all_of", "exclude") for leaf in sorted(CONDITION_CHANGES)]


@pytest.mark.parametrize("kind, leaf", RULE_CONDITIONS)
def test_rule_condition(rules_store, kind: str, leaf: str) -> None:
    before, after = CONDITION_CHANGES[leaf]
    found = qualifying(rules_store, probe_rule(kind, before), "serious_dishonesty")
    assert found, "the unchanged rule must find someone"
    assert_differs(found, qualifying(rules_store, probe_rule(kind, after), "serious_dishonesty"))


RULE_CHANGES = {
    "lists.rules.min_count": ("serious_dishonesty", {"min_count": 2}),
    "lists.rules.window_months": ("serious_dishonesty", {"window_months": 1}),
    "lists.rules.min_subject_age": ("court_defaulters", {"min_subject_age": None}),
}


@pytest.mark.parametrize("path", sorted(RULE_CHANGES))
def test_rule_proposes_or_not(rules_store, path: str) -> None:
    code, update = RULE_CHANGES[path]
    found = qualifying(rules_store, CN, code)
    assert found
    assert_differs(found, qualifying(rules_store, with_rule(CN, code, **update), code))


def test_rule_categories(rules_store) -> None:
    fine = probe_rule("any_of", Condition(field="fine_amount", min=1_000_000))
    rule = fine.list_("serious_dishonesty").rules[0]
    elsewhere = with_list(fine, "serious_dishonesty", rules=[rule.model_copy(update={"categories": ["env_violation"]})])
    found = qualifying(rules_store, fine, "serious_dishonesty")
    assert found
    assert_differs(found, qualifying(rules_store, elsewhere, "serious_dishonesty"))


def with_annual(pack: Pack, **update: Any) -> Pack:
    annual = pack.list_("tax_a_grade").annual_publication
    return with_list(pack, "tax_a_grade", annual_publication=annual.model_copy(update=update))


# path -> (list, changed pack, evaluation date)
SCOPE_CHANGES: dict[str, tuple[str, Pack, dt.date]] = {
    "lists.rules.authorities": ("serious_dishonesty", with_rule(CN, "serious_dishonesty", authorities=["tax"]), RULES_AS_OF),
    # a grade A of 2024 followed by a B of 2025: only the latest grade counts
    "lists.rules.latest_by": ("tax_a_grade", with_rule(CN, "tax_a_grade", latest_by=None), RULES_AS_OF),
    # an abnormal-operations record removed in June is cured
    "lists.cured_by": ("abnormal_operations", with_list(CN, "abnormal_operations", cured_by=None), RULES_AS_OF),
    # grades of 2024 count from the publication of April 2025
    "lists.annual_publication.month": ("tax_a_grade", with_annual(CN, month=10), RULES_AS_OF),
    "lists.annual_publication.day": ("tax_a_grade", with_annual(CN, day=20), dt.date(2025, 4, 15)),
    "lists.annual_publication.year_field": ("tax_a_grade", with_annual(CN, year_field="evaluated_on"), RULES_AS_OF),
}


@pytest.mark.parametrize("path", sorted(SCOPE_CHANGES))
def test_which_records_a_list_counts(rules_store, path: str) -> None:
    code, other, as_of = SCOPE_CHANGES[path]
    found = qualifying(rules_store, CN, code, as_of)
    assert found
    assert_differs(found, qualifying(rules_store, other, code, as_of))


def test_list_subject_kinds(rules_store) -> None:
    other = with_list(CN, "serious_dishonesty", subject_kinds=[SubjectKind.individual_business])
    assert_differs(qualifying(rules_store, CN, "serious_dishonesty"), qualifying(rules_store, other, "serious_dishonesty"))


# -- due process, on a copy of the world of tests/worlds.py ---------------------------------------------------

NOTICE_ON = dt.date(2025, 10, 20)
OFFICER = Actor("officer-wang", "served")


def notice_text(engine: Any, pack: Pack, listing_id: int, language: str) -> Any:
    with engine.connect() as c:
        return outcome(lambda: render_notice(c, pack, listing_id, language, NOTICE_ON, dt.date(2025, 11, 3)))


NOTICE_CHANGES: dict[str, tuple[Pack, str]] = {
    "lists.authority": (with_list(CN, "serious_dishonesty", authority="tax"), "zh"),
    "lists.rules.version": (with_rule(CN, "serious_dishonesty", version="9"), "zh"),
    "lists.rules.legal_basis": (with_rule(CN, "serious_dishonesty", legal_basis="《某办法》第九条"), "zh"),
    "lists.code": (recoded(CN, "serious_dishonesty", "serious"), "zh"),
    "categories.code": (recoded(CN, "penalty", "sanction"), "zh"),
    "authorities.code": (recoded(CN, "samr", "aic"), "zh"),
    **{f"lists.names.{lang}": (with_list(CN, "serious_dishonesty", names=renamed(CN.list_("serious_dishonesty").names, lang)),
                               lang) for lang in LANGS},
    **{f"categories.names.{lang}": (with_category(CN, "penalty", names=renamed(PENALTY.names, lang)), lang)
       for lang in LANGS},
}


def test_notice_reads_the_pack(fresh_world) -> None:
    """One world for every case: rendering a notice writes nothing."""
    engine, ids, _ = fresh_world()
    for path, (changed, lang) in NOTICE_CHANGES.items():
        before = notice_text(engine, CN, ids[FIRM_PROPOSED], lang)
        assert isinstance(before, str) and not before.startswith("refused"), before
        assert before != notice_text(engine, changed, ids[FIRM_PROPOSED], lang), f"{path}: the notice did not change"


NOTIFY_CHANGES = {
    "lists.due_process.objection_days": {"objection_days": 20},
    "lists.due_process.objection_days_in": {"objection_days_in": "calendar"},
    "lists.due_process.reminders_required": {"reminders_required": {SubjectKind.enterprise: 1}},
}


@pytest.mark.parametrize("path", sorted(NOTIFY_CHANGES))
def test_notice_step(fresh_world, path: str) -> None:
    def served(pack: Pack) -> Any:
        engine, ids, _ = fresh_world()
        result = outcome(lambda: notify(engine, pack, ids[FIRM_PROPOSED], NOTICE_ON, OFFICER))
        return result if isinstance(result, str) else result["objection_deadline"]
    assert_differs(served(CN), served(with_due_process(CN, "serious_dishonesty", **NOTIFY_CHANGES[path])))


REPAIR_CHANGES = {
    "lists.repair.allowed": ({}, {"allowed": False}),
    "lists.repair.min_months_served": ({}, {"min_months_served": 0}),
    "lists.repair.commitment_required": ({"min_months_served": 0}, {"commitment_required": False}),
    "lists.repair.evidence_required": ({"min_months_served": 0, "commitment_required": False},
                                       {"evidence_required": False}),
}


@pytest.mark.parametrize("path", sorted(REPAIR_CHANGES))
def test_repair_application(fresh_world, path: str) -> None:
    """An application without commitment or evidence, three weeks into a serious listing."""
    base, change = REPAIR_CHANGES[path]
    before = with_repair(CN, "serious_dishonesty", **base)
    after = with_repair(before, "serious_dishonesty", **change)
    engine, ids, _ = fresh_world()

    def apply(pack: Pack) -> Any:
        result = outcome(lambda: apply_repair(engine, pack, ids[FIRM_SERIOUS], "", [], dt.date(2025, 11, 3),
                                              Actor("firm", "repair")))
        return result if isinstance(result, str) else "applied"
    first = apply(before)
    assert first.startswith("refused"), first  # a refusal writes nothing: the same store serves both
    assert_differs(first, apply(after))


def test_review_interval_of_an_open_ended_listing(fresh_world) -> None:
    def next_review(pack: Pack) -> Any:
        engine, ids, _ = fresh_world()
        process(engine, pack, dt.date(2026, 4, 10))
        with engine.connect() as c:
            return c.execute(select(t.listings.c.review_due).where(t.listings.c.id == ids[FIRM_DEBTOR])).scalar_one()
    other = with_list(CN, "court_defaulters", duration=CN.list_("court_defaulters").duration.model_copy(
        update={"review_interval_months": 1}))
    assert_differs(next_review(CN), next_review(other))


def test_list_kind_on_the_public_list(fresh_world) -> None:
    engine, _, _ = fresh_world()
    other = with_list(CN, "serious_dishonesty", kind="red")
    assert_differs(list_page(engine, CN, "serious_dishonesty", NOTICE_ON)["kind"],
                   list_page(engine, other, "serious_dishonesty", NOTICE_ON)["kind"])


def grade_a(cli: Cli, folder: Path, code: str) -> None:
    """A grade A of 2024 for one firm of the world, published in April 2025."""
    grades = write_csv(folder / f"grade-{code}.csv", ["纳税人名称", "统一社会信用代码", "纳税信用级别", "评价年度"],
                       [[NAMES[code], code, "A", "2024"]])
    cli("ingest", grades, "--authority", "tax", "--category", "tax_grade")
    cli("resolve")


def test_excludes_keep_a_blacklisted_firm_off_a_redlist(fresh_world, tmp_path: Path) -> None:
    engine, _, cli = fresh_world()
    grade_a(cli, tmp_path, FIRM_SERIOUS)  # the firm is on the serious list, in force since October 2025
    other = with_list(CN, "serious_dishonesty", excludes=[])
    assert_differs(qualifying(engine, CN, "tax_a_grade", NOTICE_ON), qualifying(engine, other, "tax_a_grade", NOTICE_ON))


def states_of(engine: Any, code: str) -> list[tuple[str, str]]:
    L, e, i = t.listings.c, t.entities.c, t.entity_identifiers.c
    with engine.connect() as c:
        return sorted(c.execute(select(L.list_code, L.state).join(t.entities, e.id == L.entity_id)
                                .join(t.entity_identifiers, i.entity_id == e.id).where(i.value == code)).all())


def test_notice_required_on_a_redlist(fresh_world, tmp_path: Path) -> None:
    def after_process(pack: Pack, n: int) -> list[tuple[str, str]]:
        engine, _, cli = fresh_world()
        folder = tmp_path / f"w{n}"
        folder.mkdir()
        grade_a(cli, folder, FIRM_CLEAN)
        cli("evaluate", "--as-of", NOTICE_ON)
        process(engine, pack, NOTICE_ON + dt.timedelta(days=1))
        return states_of(engine, FIRM_CLEAN)
    assert_differs(after_process(CN, 0), after_process(with_due_process(CN, "tax_a_grade", notice_required=True), 1))


MOVE = MoveSpec(list="major_tax_violations", after_years=1)
MOVES = with_list(CN, "serious_dishonesty", moves_to=MOVE)


@pytest.mark.parametrize("path, update", [
    ("lists.moves_to.after_years", {"after_years": 2}),
    ("lists.moves_to.list", {"list": "court_defaulters"}),
])
def test_a_listing_moves_to_another_list(fresh_world, path: str, update: dict[str, Any]) -> None:
    """The serious listing of the world, in force since October 2025, a year on."""
    def after_process(pack: Pack) -> list[tuple[str, str]]:
        engine, _, _ = fresh_world()
        process(engine, pack, dt.date(2026, 11, 2))
        return states_of(engine, FIRM_SERIOUS)
    assert_differs(after_process(MOVES),
                   after_process(with_list(MOVES, "serious_dishonesty", moves_to=MOVE.model_copy(update=update))))


# -- due-process cases: deadlines, authorities, suspension, history, performance -----------------------------

def with_category_repair(pack: Pack, code: str, /, **update: Any) -> Pack:
    return with_category(pack, code, repair=pack.category(code).repair.model_copy(update=update))


@pytest.mark.parametrize("leaf", sorted(p.rsplit(".", 1)[1] for p in REPAIR_CHANGES))
def test_record_repair_application(fresh_world, leaf: str) -> None:
    """A repair of a penalty record's publicity without commitment or evidence, three weeks after it."""
    base, change = REPAIR_CHANGES[f"lists.repair.{leaf}"]
    before = with_category_repair(CN, "penalty", **base)
    after = with_category_repair(before, "penalty", **change)
    engine, _, _ = fresh_world()

    def apply(pack: Pack) -> Any:
        result = outcome(lambda: apply_repair(engine, pack, None, "", [], dt.date(2025, 7, 1), Actor("firm", "repair"),
                                              record_key="samr:宁市监罚〔2025〕2号"))
        return result if isinstance(result, str) else "applied"
    first = apply(before)
    assert first.startswith("refused"), first
    assert_differs(first, apply(after))


REPAIR_DAYS = {
    "lists.repair.answer_working_days": lambda days: CN.list_("serious_dishonesty").repair.model_copy(
        update={"answer_working_days": days}),
    "lists.repair.decision_working_days": lambda days: CN.list_("serious_dishonesty").repair.model_copy(
        update={"decision_working_days": days}),
    "categories.repair.answer_working_days": lambda days: PENALTY.repair.model_copy(update={"answer_working_days": days}),
    "categories.repair.decision_working_days": lambda days: PENALTY.repair.model_copy(
        update={"decision_working_days": days}),
}


@pytest.mark.parametrize("path", sorted(REPAIR_DAYS))
def test_repair_deadlines(path: str) -> None:
    """Applied on Monday 22 September 2025, accepted two days later."""
    def deadlines(days: int | None) -> Any:
        return repair_deadlines(CN, REPAIR_DAYS[path](days), dt.date(2025, 9, 22), dt.date(2025, 9, 24))
    assert_differs(deadlines(7), deadlines(15))


def test_review_days_of_an_objection(fresh_world) -> None:
    engine, ids, _ = fresh_world()
    objection = {"listing_id": ids[FIRM_DEBTOR], "record_key": None, "filed_on": dt.date(2025, 10, 21)}
    with engine.connect() as c:
        before = objection_deadline(c, CN, objection)
        after = objection_deadline(c, with_due_process(CN, "court_defaulters", review_days=30), objection)
    assert_differs(before, after)


def test_reminder_min_days(fresh_world) -> None:
    engine, ids, _ = fresh_world()
    spaced = with_due_process(CN, "serious_dishonesty", reminder_min_days=1)
    day = dt.date(2025, 10, 20)
    remind(engine, spaced, ids[FIRM_PROPOSED], day, OFFICER)
    again = outcome(lambda: remind(engine, spaced, ids[FIRM_PROPOSED], day, OFFICER))  # refused: nothing written
    assert_differs(again, outcome(lambda: remind(engine, with_due_process(spaced, "serious_dishonesty",
                                                                          reminder_min_days=0),
                                                 ids[FIRM_PROPOSED], day, OFFICER)))


def test_reviewing_authority_may_decide() -> None:
    assert_differs(outcome(lambda: deciding_authority(CN, "samr", "ndrc")),
                   outcome(lambda: deciding_authority(changed(CN, reviewing_authority="finance"), "samr", "ndrc")))


def test_history_public(fresh_world) -> None:
    """The world's serious listing, expired at the end of its three years."""
    engine, _, _ = fresh_world()
    day = dt.date(2029, 1, 2)
    process(engine, CN, day)
    hidden = with_list(CN, "serious_dishonesty", history_public=False)
    assert_differs(public_file(engine, CN, FIRM_SERIOUS, day)["listing_history"],
                   public_file(engine, hidden, FIRM_SERIOUS, day)["listing_history"])


PERFORMED = Condition(field="performance", **{"in": ["全部履行"]})
PERFORMED_CHANGES = {
    "lists.performed_when.field": Condition(field="ground", **{"in": ["全部履行"]}),
    "lists.performed_when.in": Condition(field="performance", **{"in": ["部分未履行"]}),
    "lists.performed_when.min": Condition(field="performance", min=1),
}


def test_performance_ends_a_court_listing(fresh_world, tmp_path: Path) -> None:
    """The debtor firm of the world: a later version of its court record says it performed."""
    def state(condition: Condition, n: int) -> Any:
        engine, ids, cli = fresh_world()
        court = write_csv(tmp_path / f"court{n}.csv", ["案号", "被执行人姓名/名称", "身份证号码/组织机构代码", "执行法院",
                                                       "被执行人的履行情况", "失信被执行人行为具体情形", "担保情况", "发布时间"], [
            ["(2025)粤0305执2号", NAMES[FIRM_DEBTOR], FIRM_DEBTOR, "深圳市南山区人民法院", "全部履行",
             "有履行能力而拒不履行生效法律文书确定义务", "", "2025-08-02"]])
        cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
        process(engine, with_list(CN, "court_defaulters", performed_when=[condition]), pack_today(CN) + dt.timedelta(days=1))
        with engine.connect() as c:
            return c.execute(select(t.listings.c.state).where(t.listings.c.id == ids[FIRM_DEBTOR])).scalar_one()
    before = state(PERFORMED, 0)
    for n, (path, condition) in enumerate(sorted(PERFORMED_CHANGES.items()), start=1):
        assert before != state(condition, n), f"{path}: the listing ended the same"




def test_extension_max_years(fresh_world) -> None:
    """Two more years for the world's serious listing, a few weeks after it took effect."""
    engine, ids, _ = fresh_world()

    def extended(pack: Pack) -> Any:
        result = outcome(lambda: extend(engine, pack, ids[FIRM_SERIOUS], 2, dt.date(2025, 11, 3),
                                        Actor("officer-wang", "a serious case")))
        return result if isinstance(result, str) else result["effective_to"]
    first = extended(CN)
    assert first.startswith("refused"), first  # a refusal writes nothing: the same store serves both
    longer = with_list(CN, "serious_dishonesty", duration=CN.list_("serious_dishonesty").duration.model_copy(
        update={"extension_max_years": 3}))
    assert_differs(first, extended(longer))


# -- performance conditions, plausibility, persons' names ------------------------------------------------------

COURT_TYPES = {f.name: f.type for f in CN.fields_of(CN.category("court_defaulter"))}
LATER_VERSION = {"performance": "全部履行", "paid": 80, "owed": 100}  # a later version of a court record
PERFORMED_PARTS = {
    "lists.performed_when.present": (Condition(field="performance", present=True),
                                     Condition(field="performance", present=False)),
    "lists.performed_when.ratio_to": (Condition(field="paid", min=1),
                                      Condition(field="paid", min=1, ratio_to="owed", min_ratio=1.0)),
    "lists.performed_when.min_ratio": (Condition(field="paid", min=1, ratio_to="owed", min_ratio=0.5),
                                       Condition(field="paid", min=1, ratio_to="owed", min_ratio=1.0)),
    "lists.performed_when.all_of": (Condition(all_of=[PERFORMED]),
                                    Condition(all_of=[PERFORMED, Condition(field="paid", min=1000)])),
    "lists.performed_when.any_of": (Condition(any_of=[PERFORMED]), Condition(any_of=[Condition(field="paid", min=1000)])),
}


@pytest.mark.parametrize("path", sorted(PERFORMED_PARTS))
def test_performed_when_condition_parts(path: str) -> None:
    """The list's performance conditions, read from the pack, on a later version of a court record
    (the mechanism `process` applies, end to end in test_performance_ends_a_court_listing)."""
    def performed(condition: Condition) -> bool:
        spec = with_list(CN, "court_defaulters", performed_when=[condition]).list_("court_defaulters")
        return any(holds(c, LATER_VERSION, COURT_TYPES) for c in spec.performed_when)
    before, after = PERFORMED_PARTS[path]
    assert_differs(performed(before), performed(after))


PLAUSIBILITY_CASES = {  # the change, and the row (fine in 万元, decision date, publicity end) it decides
    "plausibility.max_amount": ({"max_amount": 1e15}, ("20000000000", "2026-03-01", "2027-03-01")),
    "plausibility.decision_days_ahead": ({"decision_days_ahead": 30}, ("1", "2026-03-20", "2027-03-01")),
    "plausibility.open_ended": ({"open_ended": []}, ("1", "2026-03-01", "长期")),
}


@pytest.mark.parametrize("path", sorted(PLAUSIBILITY_CASES))
def test_plausibility_bounds(path: str) -> None:
    update, (amount, decided, ends) = PLAUSIBILITY_CASES[path]

    def validate(pack: Pack) -> Any:
        category = pack.category("penalty")
        mapping = map_columns(pack, category, ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期",
                                               "罚款金额（万元）", "公示截止期"])
        return RowValidator(pack, category, "samr", mapping, dt.date(2026, 3, 10)).validate(
            ["上海某某科技有限公司", FIRM_SERIOUS, "沪罚〔2026〕1号", decided, amount, ends])
    assert_differs(validate(CN), validate(changed(CN, plausibility=CN.plausibility.model_copy(update=update))))


PERSON_NAME_CHANGES = {
    "person_names.max_length": {"max_length": 3},
    "person_names.organisation_endings": {"organisation_endings": [*CN.person_names.organisation_endings, "娜"]},
}


@pytest.mark.parametrize("path", sorted(PERSON_NAME_CHANGES))
def test_person_names_decide_what_a_code_is(path: str) -> None:
    """A four-character person's name with an ID number in the code column and no subject kind."""
    def validate(pack: Pack) -> Any:
        category = pack.category("penalty")
        mapping = map_columns(pack, category, ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期"])
        return RowValidator(pack, category, "samr", mapping, dt.date(2026, 3, 10)).validate(
            ["欧阳娜娜", ADULT, "沪罚〔2026〕2号", "2026-03-01"])
    changed_names = CN.person_names.model_copy(update=PERSON_NAME_CHANGES[path])
    assert_differs(validate(CN), validate(changed(CN, person_names=changed_names)))


def test_publicity_tier_code_in_the_public_file(fresh_world, tmp_path: Path) -> None:
    """A fine of May 2026 (the 2026 regime): the public file names the tier it falls in."""
    engine, _, cli = fresh_world()
    penalties = write_csv(tmp_path / "fine-2026.csv", ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期",
                                                       "处罚类别", "罚款金额（万元）"],
                          [[NAMES[FIRM_CLEAN], FIRM_CLEAN, "京市监罚〔2026〕9号", "2026-05-04", "罚款", "2"]])
    cli("ingest", penalties, "--authority", "samr", "--category", "penalty")
    cli("resolve")
    regime = PENALTY.publicity.regimes[-1]
    renamed_tiers = [tier.model_copy(update={"code": f"{tier.code}_probe"}) for tier in regime.tiers]
    other = with_category(CN, "penalty", publicity=PENALTY.publicity.model_copy(
        update={"regimes": [*PENALTY.publicity.regimes[:-1], regime.model_copy(update={"tiers": renamed_tiers})]}))

    def tiers(pack: Pack) -> list[Any]:
        return [r["publicity_tier"] for r in public_file(engine, pack, FIRM_CLEAN, dt.date(2026, 6, 1))["records"]]
    assert_differs(tiers(CN), tiers(other))


def test_legal_representative_field_of_the_register(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The register names each firm's legal representative in the field the pack says."""
    monkeypatch.delenv("XINYONG_AUDIT_DIR", raising=False)
    register = write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "法定代表人", "成立日期"],
                         [[FIRM_CLEAN, NAMES[FIRM_CLEAN], "周八", "2015-06-30"]])
    registration = CN.category("registration")
    other = with_category(CN, "registration",
                          subject=registration.subject.model_copy(update={"legal_representative_field": None}))

    def relations(n: int, pack: Pack) -> Any:
        cli = Cli(f"sqlite:///{tmp_path / f'rep{n}.db'}")
        cli("init", "--pack", write_pack(tmp_path, pack, f"rep{n}.yaml"))
        cli("ingest", register, "--authority", "samr", "--category", "registration")
        return json.loads(cli("entity", "show", FIRM_CLEAN, "--json").stdout)["relations"]
    assert_differs(relations(0, CN), relations(1, other))


# -- whole pack files, through the CLI ---------------------------------------------------------------------

def write_pack(folder: Path, pack: Pack, name: str = "pack.yaml") -> Path:
    path = folder / name
    data = pack.model_dump(mode="json", by_alias=True, exclude_none=True)
    rules = data["resolution"]["name_rules"]
    if rules.get("places_file"):  # the shipped table, by its path, rather than thousands of places inline
        rules["places_file"] = str(PACKS_DIR / CN.code / rules["places_file"])
        del rules["places"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def pack_shown(tmp_path: Path, *packs: Pack) -> list[str]:
    return [Cli("sqlite://")("pack", "show", write_pack(tmp_path, pack, f"{n}.yaml")).stdout
            for n, pack in enumerate(packs)]


@pytest.mark.parametrize("lang", LANGS)
def test_action_names_in_pack_show(tmp_path: Path, lang: str) -> None:
    other = changed(CN, actions=_replace(CN.actions, "bidding", names=renamed(CN.actions[1].names, lang)))
    assert_differs(*pack_shown(tmp_path, CN, other))


@pytest.mark.parametrize("lang", LANGS)
def test_purpose_names_in_pack_show(tmp_path: Path, lang: str) -> None:
    purpose = CN.purpose("tender_review")
    other = changed(CN, purposes=_replace(CN.purposes, "tender_review", names=renamed(purpose.names, lang)))
    assert_differs(*pack_shown(tmp_path, CN, other))


def test_category_description_in_pack_show(tmp_path: Path) -> None:
    assert_differs(*pack_shown(tmp_path, CN, with_category(CN, "penalty", description="行政处罚（探针）")))


@pytest.mark.parametrize("path, update", [
    ("resolution.name_rules.places_source", {"places_source": "probe source"}),
    ("resolution.name_rules.places_as_of", {"places_as_of": dt.date(2020, 1, 1)}),
])
def test_place_table_provenance_in_pack_show(tmp_path: Path, path: str, update: dict[str, Any]) -> None:
    rules = CN.resolution.name_rules.model_copy(update=update)
    other = changed(CN, resolution=CN.resolution.model_copy(update={"name_rules": rules}))
    assert_differs(*pack_shown(tmp_path, CN, other))


def test_purpose_codes_admit_a_screening(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XINYONG_AUDIT_DIR", raising=False)
    other = recoded(CN, "tender_review", "bid_review")

    def screen(n: int, pack: Pack) -> int:
        cli = Cli(f"sqlite:///{tmp_path / f'{n}.db'}")
        cli("init", "--pack", write_pack(tmp_path, pack, f"{n}.yaml"))
        return cli("screen", FIRM_SERIOUS, "--action", "bidding", "--purpose", "tender_review",
                   "--as-of", "2025-10-20", ok=False).exit_code
    assert_differs(screen(0, CN), screen(1, other))


def test_extends_takes_the_parent(tmp_path: Path) -> None:
    overlay = {"code": "cn-sh", "version": "1", "extends": "cn"}
    with_parent = tmp_path / "with.yaml"
    with_parent.write_text(yaml.safe_dump(overlay), encoding="utf-8")
    alone = tmp_path / "alone.yaml"
    alone.write_text(yaml.safe_dump({k: v for k, v in overlay.items() if k != "extends"}), encoding="utf-8")
    assert_differs(outcome(lambda: load_pack(str(with_parent)).lists[0].code),
                   outcome(lambda: load_pack(str(alone)).lists[0].code))


# -- the authority scorecard and the supervision grades -------------------------------------------------

SCORECARD_CHANGES = {
    "scorecard.timed_categories": {"timed_categories": ["licence"]},
    "scorecard.on_time_working_days": {"on_time_working_days": 100_000},
}


@pytest.mark.parametrize("path", sorted(SCORECARD_CHANGES))
def test_scorecard_times_the_publication(rules_store, path: str) -> None:
    """The rules' register holds fines decided in 2025 and received when the store was built."""
    def figures(pack: Pack) -> list[Any]:
        return [(r["authority"], r["month"], r["timed_records"], r["on_time"], r["on_time_share"],
                 r["median_delay_working_days"]) for r in scorecard(rules_store, pack, RULES_AS_OF)]
    before = figures(CN)
    assert any(timed for _, _, timed, *_ in before), "the unchanged pack must time some records"
    assert_differs(before, figures(changed(CN, scorecard=CN.scorecard.model_copy(update=SCORECARD_CHANGES[path]))))


assert CN.grades is not None
GRADES = CN.grades
GRADED = (FIRM_BIG_FINE, FIRM_REVOKED, FIRM_SMALL_FINE, FIRM_TWO_FINES)


def with_grades(pack: Pack, /, **update: Any) -> Pack:
    assert pack.grades is not None
    return changed(pack, grades=pack.grades.model_copy(update=update))


def with_grade_rule(pack: Pack, code: str, /, **update: Any) -> Pack:
    assert pack.grades is not None
    return with_grades(pack, rules=_replace(pack.grades.rules, code, **update))


def with_grade_class(pack: Pack, code: str, /, **update: Any) -> Pack:
    assert pack.grades is not None
    return with_grades(pack, classes=_replace(pack.grades.classes, code, **update))


def graded(engine: Any, pack: Pack, as_of: dt.date = RULES_AS_OF) -> list[Any]:
    """What `xinyong grade show --json` answers for each firm of the rules' register, or its refusal."""
    out: list[Any] = []
    for firm in GRADED:
        try:
            grade = compute_grade(engine, pack, firm, as_of)
        except GradeError as exc:
            out.append(f"refused: {exc.code}: {exc}")
            continue
        out.append({"grade": grade["grade"], "total_points": grade["total_points"], "unverified": grade["unverified"],
                    "points": [(p["record"], p["rule"], p["weight"]) for p in grade["points"]]})
    return out


GRADE_CHANGES: dict[str, Pack] = {
    "grades.unverified": with_grades(CN, unverified=not GRADES.unverified),
    "grades.subject_kinds": with_grades(CN, subject_kinds=[SubjectKind.individual_business]),
    "grades.classes.code": with_grades(CN, classes=[c.model_copy(update={"code": f"{c.code}x"}) for c in GRADES.classes]),
    "grades.classes.max_points": with_grade_class(CN, "B", max_points=100),
    "grades.rules.code": with_grade_rule(CN, "penalty", code="penalty_probe"),
    "grades.rules.categories": with_grade_rule(CN, "penalty", categories=["env_violation"]),
    "grades.rules.weight": with_grade_rule(CN, "penalty", weight=1),
    "grades.rules.window_months": with_grade_rule(CN, "penalty", window_months=1),
    "grades.rules.authorities": with_grade_rule(CN, "penalty", authorities=["tax"]),
    "grades.rules.subject_kinds": with_grade_rule(CN, "penalty", subject_kinds=[SubjectKind.individual_business]),
}


@pytest.mark.parametrize("path", sorted(GRADE_CHANGES))
def test_grade_of_the_register(rules_store, path: str) -> None:
    before = graded(rules_store, CN)
    assert any(isinstance(g, dict) and g["points"] for g in before), "the cn rules must grade someone"
    assert_differs(before, graded(rules_store, GRADE_CHANGES[path]))


GRADE_RULE_CONDITIONS = [(kind, leaf) for kind in ("any_of", "all_of") for leaf in sorted(CONDITION_CHANGES)]


@pytest.mark.parametrize("kind, leaf", GRADE_RULE_CONDITIONS)
def test_grade_rule_condition(rules_store, kind: str, leaf: str) -> None:
    """One grade rule over fines, its condition as in a list rule's (the same schema)."""
    def grades(condition: Condition) -> list[Any]:
        rule = GradeRuleSpec(code="probe", names=PROBE_NAMES, categories=["penalty"], weight=1,
                             **{kind: [condition]})
        return graded(rules_store, with_grades(CN, rules=[rule]))
    before, after = CONDITION_CHANGES[leaf]
    found = grades(before)
    assert any(g["points"] for g in found), "the unchanged condition must take some fine"
    assert_differs(found, grades(after))


def test_grades_legal_basis_recorded_with_a_shared_grade(fresh_world) -> None:
    engine, _, _ = fresh_world()

    def basis(pack: Pack) -> Any:
        shared = share_grade(engine, pack, FIRM_SERIOUS, dt.date(2025, 10, 20), authority="samr",
                             purpose="supervision", actor="test")["shared"]
        a = t.audit_events.c
        with engine.connect() as c:
            return c.execute(select(a.legal_basis).where(a.action == "grade.shared",
                                                         a.object_id == str(shared))).scalar_one()
    assert_differs(basis(CN), basis(with_grades(CN, legal_basis="probe basis")))


GRADE_SHOWN: dict[str, Pack] = {
    **{f"grades.names.{lang}": with_grades(CN, names=renamed(GRADES.names, lang)) for lang in LANGS},
    "grades.authority": with_grades(CN, authority="tax"),
    **{f"grades.classes.names.{lang}": with_grade_class(CN, "A", names=renamed(GRADES.classes[0].names, lang))
       for lang in LANGS},
    **{f"grades.rules.names.{lang}": with_grade_rule(CN, "penalty", names=renamed(GRADES.rules[0].names, lang))
       for lang in LANGS},
    "grades.rules.legal_basis": with_grade_rule(CN, "penalty", legal_basis="probe basis"),
}


@pytest.mark.parametrize("path", sorted(GRADE_SHOWN))
def test_grade_texts_in_pack_show(tmp_path: Path, path: str) -> None:
    assert_differs(*pack_shown(tmp_path, CN, GRADE_SHOWN[path]))



# == the table ===========================================================================================

EFFECTS: dict[str, str] = {
    "code": "test_screening_answer",
    "version": "test_screening_answer",
    **{f"names.{lang}": "test_pack_names_head_the_report" for lang in LANGS},
    "extends": "test_extends_takes_the_parent",
    "currency": "test_currency_of_amounts_in_the_report",
    "language": "test_language_serves_a_browser_asking_for_none_of_ours",
    "grades.purpose": "tests/test_trust_adversarial_9.py::test_a_grade_read_in_the_console_is_logged_with_the_packs_purpose",
    "calendar.timezone": "test_calendar_timezone_decides_today",
    "calendar.deadlines_end_on_working_days": "test_calendar_deadlines_end_on_working_days",
    **{path: "test_calendar_days_move_a_working_day_deadline" for path in CALENDAR_CHANGES},
    **{path: "test_resolution_thresholds_decide_a_link" for path in THRESHOLD_CHANGES},
    "resolution.target_precision": "test_target_precision_sets_the_learned_threshold",
    **{path: "test_name_rules_split_a_name" for path in NAME_RULE_CHANGES},
    "resolution.name_rules.places_file": "test_places_file_fills_the_division_table",
    **{f"{route}.{leaf}": "test_record_field_spec" for route in ("categories.fields", "field_sets")
       for leaf in FIELD_CHANGES},
    "kind_synonyms": "test_kind_synonyms_name_a_subject_kind",
    "authorities.code": "test_notice_reads_the_pack",
    **{f"authorities.names.{lang}": "test_authority_names_in_the_report" for lang in LANGS},
    "authorities.competences": "test_authority_competences_admit_a_file",
    "categories.code": "test_notice_reads_the_pack",
    **{f"categories.names.{lang}": "test_notice_reads_the_pack" for lang in LANGS},
    "categories.include": "test_category_include_brings_a_field_set",
    **{path: "test_category_reads_a_row" for path in CATEGORY_CHANGES},
    "categories.subject_kinds": "test_category_admits_persons",
    "categories.person_legal_basis": "test_category_admits_persons",
    "categories.classification": "test_category_classification_decides_public_categories",
    **{path: "test_publicity_period_of_a_record" for path in PUBLICITY_CHANGES},
    "categories.publicity.type_field": "test_a_warning_is_published_or_not",
    "categories.publicity.regimes.tiers.code": "test_publicity_tier_code_in_the_public_file",
    "categories.publicity.unpublished_types": "test_a_warning_is_published_or_not",
    "categories.publicity.ends_with_listings": "tests/test_trust_adversarial_11.py::"
                                               "test_a_court_case_leaves_the_public_surfaces_with_the_listing_it_was_published_for",
    **{path: "test_publicity_tiers" for path in TIER_CHANGES},
    "lists.duration.terms.years": "test_term_years_of_a_court_ground",
    **{path: "test_which_records_a_list_counts" for path in SCOPE_CHANGES},
    "lists.excludes": "test_excludes_keep_a_blacklisted_firm_off_a_redlist",
    "lists.moves_to.after_years": "test_a_listing_moves_to_another_list",
    "lists.moves_to.list": "test_a_listing_moves_to_another_list",
    "measures.max_years": "test_screening_answer",
    "lists.due_process.notice_required": "test_notice_required_on_a_redlist",
    "lists.due_process.grace_days": "tests/test_due_rules.py::test_the_grace_period_delays_the_proposal",
    **{f"categories.repair.{p.rsplit('.', 1)[1]}": "test_record_repair_application" for p in REPAIR_CHANGES},
    **{path: "test_repair_deadlines" for path in REPAIR_DAYS},
    "lists.due_process.review_days": "test_review_days_of_an_objection",
    "lists.due_process.reminder_min_days": "test_reminder_min_days",
    "reviewing_authority": "test_reviewing_authority_may_decide",
    "lists.history_public": "test_history_public",
    "lists.duration.extension_max_years": "test_extension_max_years",
    "lists.objection_suspends": "tests/test_due_cases.py::test_an_open_objection_suspends_measures_only_where_the_pack_says_so",
    **{path: "test_performance_ends_a_court_listing" for path in PERFORMED_CHANGES},
    **{path: "test_performed_when_condition_parts" for path in PERFORMED_PARTS},
    **{path: "test_plausibility_bounds" for path in PLAUSIBILITY_CASES},
    **{path: "test_person_names_decide_what_a_code_is" for path in PERSON_NAME_CHANGES},
    "person_names.surnames": "test_family_names_keep_a_person_s_name_from_a_firm_registered_under_it",
    "categories.creates_entities": "test_category_creates_entities_keeps_the_register_out_of_the_report_records",
    "lists.code": "test_notice_reads_the_pack",
    **{f"lists.names.{lang}": "test_notice_reads_the_pack" for lang in LANGS},
    "lists.kind": "test_list_kind_on_the_public_list",
    "lists.authority": "test_notice_reads_the_pack",
    "lists.legal_basis": "test_screening_answer",
    "lists.subject_kinds": "test_list_subject_kinds",
    **{path: "test_duration_sets_the_end_of_a_listing" for path in DURATION_CHANGES},
    "lists.duration.review_interval_months": "test_review_interval_of_an_open_ended_listing",
    **{path: "test_notice_step" for path in NOTIFY_CHANGES},
    **{path: "test_repair_application" for path in REPAIR_CHANGES},
    "lists.rules.version": "test_notice_reads_the_pack",
    "lists.rules.legal_basis": "test_notice_reads_the_pack",
    **{path: "test_rule_dates_decide_the_rule_in_force" for path in RULE_DATES},
    **{f"lists.rules.{kind}.{leaf}": "test_rule_condition" for kind, leaf in RULE_CONDITIONS},
    **{f"categories.publicity.regimes.tiers.any_of.{leaf}": "test_publicity_tier_condition"
       for leaf in CONDITION_CHANGES},
    **{f"lists.duration.terms.when.{leaf}": "test_listing_term_condition" for leaf in CONDITION_CHANGES},
    **{path: "test_rule_proposes_or_not" for path in RULE_CHANGES},
    "lists.rules.categories": "test_rule_categories",
    **{path: "test_screening_answer" for path in SCREENING_CHANGES if path.startswith("measures.")},
    "actions.code": "test_screening_answer",
    **{f"actions.names.{lang}": "test_action_names_in_pack_show" for lang in LANGS},
    **{f"purposes.names.{lang}": "test_purpose_names_in_pack_show" for lang in LANGS},
    "categories.description": "test_category_description_in_pack_show",
    "categories.subject.legal_representative_field": "test_legal_representative_field_of_the_register",
    **{f"categories.relations.{leaf}": "tests/test_relations_domain.py::test_relations_pack_field"
       for leaf in ("party_field", "party_code_field", "party_kind_field", "role_field", "share_field",
                    "relation_of_role")},
    "categories.relations.role_of_header": "tests/test_relations_domain.py::test_relations_role_of_header",
    "resolution.name_rules.places_source": "test_place_table_provenance_in_pack_show",
    "resolution.name_rules.places_as_of": "test_place_table_provenance_in_pack_show",
    "purposes.code": "test_purpose_codes_admit_a_screening",
    **{path: "test_scorecard_times_the_publication" for path in SCORECARD_CHANGES},
    **{path: "test_grade_of_the_register" for path in GRADE_CHANGES},
    **{f"grades.rules.{kind}.{leaf}": "test_grade_rule_condition" for kind, leaf in GRADE_RULE_CONDITIONS},
    "grades.legal_basis": "test_grades_legal_basis_recorded_with_a_shared_grade",
    **{path: "test_grade_texts_in_pack_show" for path in GRADE_SHOWN},
    "foreign_lists.person_legal_basis": "tests/test_foreign_lists.py::test_persons_kept_under_a_legal_basis",
    **{f"foreign_lists.{where}.{way}": "tests/test_foreign_lists.py::test_pack_decides_what_a_designation_implies"
       for where in ("default", "actions") for way in ("identifier", "name")},
    **{f"identifiers.{leaf}": "tests/test_pack_identifiers.py::test_identifier_scheme_decides_what_a_code_is"
       for leaf in ("scheme", "validator", "pattern")},
    "identifiers.primary": "tests/test_pack_identifiers.py::test_identifier_primary_keys_the_register",
    "identifiers.person":
        "tests/test_trust_adversarial_19.py::test_a_packs_own_scheme_of_persons_numbers_is_masked_and_never_searched",
}

# == meta-tests ==========================================================================================

def _resolve(reference: str) -> Callable[..., Any] | None:
    if "::" in reference:
        file, name = reference.split("::", 1)
        module = importlib.import_module(Path(file).stem)
    else:
        module, name = importlib.import_module(__name__), reference
    found = getattr(module, name, None)
    return found if callable(found) and name.startswith("test_") else None


def test_every_schema_field_has_an_effect_test() -> None:
    paths = schema_paths()
    missing = [p for p in paths if p not in EFFECTS]
    assert not missing, f"pack fields with no effect test in EFFECTS: {', '.join(missing)}"


def test_the_table_names_only_schema_fields() -> None:
    paths = set(schema_paths())
    stale = sorted(p for p in EFFECTS if p not in paths)
    assert not stale, f"not fields of the pack schema (any more): {', '.join(stale)}"


def test_the_table_names_existing_tests() -> None:
    unknown = sorted(f"{path} -> {ref}" for path, ref in EFFECTS.items() if _resolve(ref) is None)
    assert not unknown, f"tests named in EFFECTS that do not exist: {'; '.join(unknown)}"


def test_schema_paths_follow_the_rule() -> None:
    paths = schema_paths()
    assert "lists.due_process.objection_days" in paths and "categories.fields.units" in paths
    assert "lists.rules.any_of.in" in paths and "field_sets.headers" in paths
    assert "lists.due_process" not in paths and "resolution.name_rules" not in paths  # containers
    assert len(paths) == len(set(paths))
