"""The shipped packs (cn and its Shanghai pilot overlay) and the pack loader's error reporting."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from xinyong.domain.calendar import pack_today
from xinyong.domain.pack import (
    LANGUAGES,
    PACKS_DIR,
    FieldType,
    Names,
    Pack,
    PackError,
    SubjectKind,
    load_raw,
)
from xinyong.domain.pack import load_pack as _load_pack

CN = "cn"
PILOT = "cn-pilot"
ALL_KINDS = {k.value for k in SubjectKind}
CJK = re.compile(r"[\u4e00-\u9fff]")

# Packs are frozen models: the shipped ones are loaded once per reference.
load_pack = functools.cache(_load_pack)


@pytest.fixture(scope="module")
def cn() -> Pack:
    return load_pack(CN)


@pytest.fixture(scope="module")
def pilot() -> Pack:
    return load_pack(PILOT)


def _codes(items: list[Any]) -> set[str]:
    return {i.code for i in items}


def _norm_header(h: str) -> str:
    """As ingestion compares headers: trimmed, no spaces, half-width brackets."""
    return re.sub(r"\s+", "", h).replace("（", "(").replace("）", ")")


# --- loading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", [CN, PILOT])
def test_shipped_pack_loads(ref: str) -> None:
    pack = _load_pack(ref)
    assert isinstance(pack, Pack)
    Pack.model_validate(pack.model_dump(by_alias=True))  # round-trips through the schema


def test_pilot_loads_by_folder_and_by_file_path() -> None:
    by_folder = _load_pack(str(PACKS_DIR / PILOT))
    by_file = _load_pack(str(PACKS_DIR / PILOT / "pack.yaml"))
    assert by_folder == by_file == load_pack(PILOT)


def test_overlay_may_extend_a_shipped_pack_by_code(tmp_path: Path) -> None:
    f = tmp_path / "overlay.yaml"
    f.write_text("code: cn-test\nversion: '0'\nextends: cn\n", encoding="utf-8")
    pack = _load_pack(str(f))
    assert pack.code == "cn-test"
    assert _codes(pack.lists) == _codes(load_pack(CN).lists)


# --- cn: identity, resolution, calendar ---------------------------------------------------------


def test_cn_identity(cn: Pack) -> None:
    assert cn.code == "cn"
    assert isinstance(cn.version, str) and cn.version
    assert cn.extends is None
    assert cn.currency == "CNY"
    assert cn.resolution.auto_link == 0.92
    assert cn.resolution.review == 0.75


def test_cn_calendar(cn: Pack) -> None:
    cal = cn.calendar
    assert cal.timezone == "Asia/Shanghai"
    assert cal.working_days == ["mon", "tue", "wed", "thu", "fri"]
    holidays, extra = set(cal.holidays), set(cal.extra_working_days)
    assert len(holidays) == len(cal.holidays), "a holiday is listed twice"
    assert not holidays & extra
    # adjusted working days (调休) are always weekend days
    assert all(d.weekday() >= 5 for d in extra)
    by_year = {y: {d for d in holidays if d.year == y} for y in (2025, 2026)}
    assert len(by_year[2025]) == 28  # 1 + 8 + 3 + 5 + 3 + 8
    assert len(by_year[2026]) == 33  # 3 + 9 + 3 + 5 + 3 + 3 + 7
    for d in ("2025-01-01", "2025-01-28", "2025-02-04", "2025-04-04", "2025-05-05",
              "2025-05-31", "2025-10-08", "2026-01-02", "2026-02-17", "2026-02-23",
              "2026-04-06", "2026-06-19", "2026-09-25", "2026-10-07"):
        assert dt.date.fromisoformat(d) in holidays, d
    for d in ("2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11",
              "2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"):
        assert dt.date.fromisoformat(d) in extra, d


def test_cn_calendar_tells_the_operator_to_check_the_dates() -> None:
    text = (PACKS_DIR / CN / "pack.yaml").read_text(encoding="utf-8")
    assert "State Council" in text and "each year" in text


def test_cn_kind_synonyms(cn: Pack) -> None:
    expected = {
        "法人及非法人组织": "enterprise", "法人": "enterprise", "企业": "enterprise",
        "自然人": "natural_person", "个人": "natural_person",
        "个体工商户": "individual_business", "社会组织": "social_organisation",
        "事业单位": "public_institution",
    }
    syn = {k: v.value for k, v in cn.kind_synonyms.items()}
    for value, kind in expected.items():
        assert syn[value] == kind, value
    for kind in ALL_KINDS:
        assert syn[kind] == kind


# --- cn: fields ---------------------------------------------------------------------------------


def test_cn_subject_field_set(cn: Pack) -> None:
    fields = {f.name: f for f in cn.field_sets["subject"]}
    expected = {
        "subject_name": ("text", "public"), "subject_kind": ("kind", "public"),
        "uscc": ("code", "public"), "reg_no": ("code", "public"),
        "org_code": ("code", "public"), "tax_no": ("code", "public"),
        "legal_representative": ("text", "public"),
        "legal_rep_id_type": ("text", "restricted"), "legal_rep_id": ("code", "restricted"),
        "person_id_type": ("text", "restricted"), "person_id": ("code", "restricted"),
    }
    assert set(expected) <= set(fields)
    for name, (ftype, classification) in expected.items():
        assert fields[name].type.value == ftype, name
        assert fields[name].classification.value == classification, name
        assert fields[name].headers, name
    assert {"行政相对人名称", "被处罚当事人", "被执行人姓名/名称"} <= set(fields["subject_name"].headers)
    assert "行政相对人类别" in fields["subject_kind"].headers
    assert {"统一社会信用代码", "社会信用代码", "信用代码"} <= set(fields["uscc"].headers)
    assert {"工商注册号", "注册号"} <= set(fields["reg_no"].headers)
    assert "法定代表人或者负责人姓名" in fields["legal_representative"].headers
    assert "身份证号码/组织机构代码" in fields["person_id"].headers


def test_cn_categories_exist(cn: Pack) -> None:
    assert {"registration", "licence", "penalty", "court_defaulter", "abnormal_operation",
            "tax_violation", "env_violation", "tax_grade"} <= _codes(cn.categories)


@pytest.mark.parametrize(
    ("code", "natural_key", "key_includes_subject", "date_field"),
    [
        ("registration", "uscc", False, "established"),
        ("licence", "decision_no", False, "decision_date"),
        ("penalty", "decision_no", False, "decision_date"),
        ("court_defaulter", "case_no", True, "published_on"),
        ("abnormal_operation", "decision_no", False, "listed_on"),
        ("tax_violation", "case_no", False, "decision_date"),
        ("env_violation", "decision_no", False, "decision_date"),
        ("tax_grade", "year", True, "evaluated_on"),
    ],
)
def test_cn_category_keys(cn: Pack, code: str, natural_key: str, key_includes_subject: bool,
                          date_field: str) -> None:
    cat = cn.category(code)
    assert cat.natural_key == natural_key
    assert cat.key_includes_subject is key_includes_subject
    assert cat.date_field == date_field
    fields = {f.name: f for f in cn.fields_of(cat)}
    assert fields[natural_key].required
    assert fields[date_field].type == FieldType.date
    assert cat.subject_kinds
    if code != "registration":
        assert "subject" in cat.include
        assert cat.subject.name_field == "subject_name"
        assert "uscc" in cat.subject.code_fields


def test_cn_registration(cn: Pack) -> None:
    reg = cn.category("registration")
    assert reg.creates_entities
    assert reg.include == []
    assert reg.subject.name_field == "name" and reg.subject.code_fields == ["uscc"]
    fields = {f.name: f for f in cn.fields_of(reg)}
    assert fields["uscc"].required and fields["uscc"].type == FieldType.code
    assert fields["name"].required
    assert fields["former_names"].type == FieldType.names
    assert fields["established"].type == FieldType.date
    assert fields["legal_rep_id"].classification.value == "restricted"
    status = fields["status"]
    assert status.type == FieldType.enum
    assert status.values == ["存续", "在业", "吊销", "注销", "迁出"]
    assert status.value_synonyms["开业"] == "存续"
    assert status.value_synonyms["存续（在营、开业、在册）"] == "存续"
    assert {"企业名称", "名称", "市场主体名称"} <= set(fields["name"].headers)
    assert {"住所", "经营场所", "地址"} <= set(fields["address"].headers)
    assert "region" in fields and "registration_authority" in fields
    assert not any(c.creates_entities for c in cn.categories if c.code != "registration")


def test_cn_penalty(cn: Pack) -> None:
    pen = cn.category("penalty")
    fields = {f.name: f for f in cn.fields_of(pen)}
    for name in ("decision_no", "violation_type", "facts", "legal_basis", "penalty_type",
                 "penalty_content", "fine_amount", "confiscated_amount", "licence_affected",
                 "decision_date", "publicity_end", "authority_name", "authority_uscc",
                 "source_name", "source_uscc", "remarks"):
        assert name in fields, name
    assert fields["decision_no"].required and fields["decision_date"].required
    assert fields["penalty_type"].type == FieldType.text
    for amount in ("fine_amount", "confiscated_amount"):
        assert fields[amount].type == FieldType.amount
        assert fields[amount].units == {"万元": 10000}
    assert "罚款金额（万元）" in fields["fine_amount"].headers
    assert {"公示截止期", "公示期限", "处罚有效期"} <= set(fields["publicity_end"].headers)
    assert fields["publicity_end"].type == FieldType.date
    assert fields["authority_uscc"].type == FieldType.code
    assert (pen.publicity.default_months, pen.publicity.min_months, pen.publicity.max_months) == (12, 3, 36)
    assert pen.publicity.end_field == "publicity_end"


def test_cn_licence_court_tax_env_fields(cn: Pack) -> None:
    def fields(code: str) -> dict[str, Any]:
        return {f.name: f for f in cn.fields_of(cn.category(code))}

    lic = fields("licence")
    assert {"行政许可决定文书号", "许可文书号"} <= set(lic["decision_no"].headers)
    assert lic["valid_from"].type == lic["valid_to"].type == FieldType.date
    assert lic["decision_date"].required

    court = fields("court_defaulter")
    # a later version of the court's record may show the debt paid: that ends the listing (performed_when)
    assert court["performance"].values == ["全部未履行", "部分未履行", "全部履行"]
    assert court["performance"].value_synonyms["已履行"] == "全部履行"
    assert court["published_on"].required and court["filed_on"].type == FieldType.date
    assert "失信被执行人行为具体情形" in court["ground"].headers
    assert "若干规定" in (cn.category("court_defaulter").person_legal_basis or "")

    abn = fields("abnormal_operation")
    assert abn["decision_no"].required and abn["listed_on"].required
    assert "列入经营异常名录原因" in abn["reason"].headers
    assert set(cn.category("abnormal_operation").subject_kinds) == {
        SubjectKind.enterprise, SubjectKind.individual_business}

    tax = fields("tax_violation")
    assert tax["case_no"].required and tax["decision_date"].required
    assert {"案件编号", "检查文书号"} <= set(tax["case_no"].headers)
    assert tax["evaded_amount"].type == FieldType.amount

    env = fields("env_violation")
    assert env["fine_amount"].units == {"万元": 10000}
    assert env["decision_no"].required and env["decision_date"].required

    grade = fields("tax_grade")
    assert grade["grade"].values == ["A", "B", "M", "C", "D"] and grade["grade"].required
    assert grade["year"].type == FieldType.integer and grade["year"].required


@pytest.mark.parametrize("ref", [CN, PILOT])
def test_headers_are_unambiguous_within_each_category(ref: str) -> None:
    pack = load_pack(ref)
    for cat in pack.categories:
        fields = pack.fields_of(cat)
        canonical = {f.name for f in fields}
        owner: dict[str, str] = {}
        for f in fields:
            for h in f.headers:
                key = _norm_header(h)
                assert key not in owner or owner[key] == f.name, (
                    f"{cat.code}: header {h!r} maps to {owner.get(key)} and {f.name}")
                owner[key] = f.name
                assert key not in canonical - {f.name}, f"{cat.code}: header {h!r} is another field's name"


@pytest.mark.parametrize("ref", [CN, PILOT])
def test_natural_persons_only_with_legal_basis_and_ids_restricted(ref: str) -> None:
    pack = load_pack(ref)
    for cat in pack.categories:
        if SubjectKind.natural_person in cat.subject_kinds:
            assert cat.person_legal_basis, f"{cat.code} allows natural persons without a legal basis"
        for f in pack.fields_of(cat):
            if f.name in ("person_id", "legal_rep_id", "person_id_type", "legal_rep_id_type"):
                assert f.classification.value == "restricted", f"{cat.code}.{f.name}"


# --- cn: authorities, lists, measures, actions --------------------------------------------------


def test_cn_authorities(cn: Pack) -> None:
    expected = {
        "samr": {"registration", "licence", "penalty", "abnormal_operation"},
        "tax": {"penalty", "tax_violation", "tax_grade", "licence"},
        "court": {"court_defaulter"},
        "env": {"penalty", "env_violation", "licence"},
        "health": {"penalty", "licence"},
        "safety": {"penalty", "licence"},
        "finance": {"penalty", "licence"},
        "education": {"penalty", "licence"},
    }
    for code, competences in expected.items():
        assert competences <= set(cn.authority(code).competences), code


def test_cn_lists(cn: Pack) -> None:
    assert {"court_defaulters", "abnormal_operations", "serious_dishonesty",
            "major_tax_violations", "tax_a_grade"} <= _codes(cn.lists)

    court = cn.list_("court_defaulters")
    assert (court.kind, court.authority) == ("black", "court")
    assert court.duration.kind == "until_performance" and court.duration.review_interval_months == 6
    assert court.due_process.objection_days == 10
    assert court.due_process.reminders_required == {SubjectKind.natural_person: 3}
    assert court.repair.min_months_served == 0

    abn = cn.list_("abnormal_operations")
    assert (abn.kind, abn.authority, abn.duration.kind, abn.duration.years) == ("black", "samr", "fixed", 3)

    serious = cn.list_("serious_dishonesty")
    assert (serious.kind, serious.authority) == ("black", "samr")
    assert (serious.duration.kind, serious.duration.min_years, serious.duration.max_years) == ("range", 1, 3)
    rule = serious.rules[0]
    assert rule.categories == ["penalty"]
    by_field = {c.field: c for c in rule.any_of}
    assert {"吊销许可证", "暂扣或者吊销许可证", "责令停产停业", "责令关闭"} <= set(by_field["penalty_type"].in_ or [])
    assert by_field["fine_amount"].min == 1_000_000

    tax = cn.list_("major_tax_violations")
    assert (tax.kind, tax.authority, tax.duration.kind, tax.duration.years) == ("black", "tax", "fixed", 3)
    assert tax.rules[0].categories == ["tax_violation"]
    assert any(c.field == "evaded_amount" and c.min == 100_000 for c in tax.rules[0].any_of)

    red = cn.list_("tax_a_grade")
    assert (red.kind, red.authority, red.duration.kind, red.duration.years) == ("red", "tax", "fixed", 1)
    assert red.rules[0].categories == ["tax_grade"]
    conds = red.rules[0].all_of + red.rules[0].any_of
    assert [(c.field, c.in_) for c in conds] == [("grade", ["A"])]



def _field_tests(conditions):
    """The tests on one field inside conditions and their groups (all_of / any_of)."""
    for cond in conditions:
        if cond.field is None:
            yield from _field_tests(cond.all_of + cond.any_of)
        else:
            yield cond

@pytest.mark.parametrize("ref", [CN, PILOT])
def test_every_list_is_complete_and_its_rules_are_sound(ref: str) -> None:
    pack = load_pack(ref)
    for lst in pack.lists:
        assert lst.legal_basis and lst.subject_kinds and lst.rules, lst.code
        authority = pack.authority(lst.authority)
        for rule in lst.rules:
            assert rule.version and rule.legal_basis and rule.categories
            assert rule.effective <= pack_today(pack)
            for cat_code in rule.categories:
                # whoever lists is competent for the evidence it lists on
                assert cat_code in authority.competences, f"{lst.code}: {lst.authority} and {cat_code}"
                cat = pack.category(cat_code)
                assert set(lst.subject_kinds) & set(cat.subject_kinds), lst.code
                fields = {f.name: f for f in pack.fields_of(cat)}
                for cond in _field_tests(rule.any_of + rule.all_of + rule.exclude):
                    assert cond.field in fields, f"{lst.code}: {cond.field} not in {cat_code}"
                    f = fields[cond.field]
                    assert [cond.in_, cond.min, cond.present].count(None) == 2, f"{lst.code}: {cond.field}"
                    if cond.min is not None:
                        assert f.type in (FieldType.amount, FieldType.integer), cond.field
                    if cond.in_ is not None and f.type == FieldType.enum:
                        assert set(cond.in_) <= set(f.values), cond.field


def test_cn_measures(cn: Pack) -> None:
    expected = {
        "no_public_procurement": ("deny", "政府采购法", "第二十二条"),
        "no_bidding": ("deny", "招标投标法", "第五十三条、第五十四条、第六十条"),
        "financing_restricted": ("conditions", "", ""),
        "no_subsidy": ("deny", "", ""),
        "licence_scrutiny": ("conditions", "行政许可法", "第七十八条、第七十九条"),
        "high_consumption_ban": ("deny", "限制被执行人高消费", ""),
        "more_inspections": ("conditions", "", ""),
        "tax_a_fast_track": ("reward", "纳税信用管理办法", ""),
    }
    measures = {m.code: m for m in cn.measures}
    for code, (effect, law, articles) in expected.items():
        m = measures[code]
        assert m.effect == effect, code
        assert m.legal_basis and law in m.legal_basis and articles in m.legal_basis, code
    ban = measures["high_consumption_ban"]
    assert ban.lists == ["court_defaulters"]
    assert set(ban.reaches) == {"legal_representative", "actual_controller", "principal"}
    assert measures["tax_a_fast_track"].lists == ["tax_a_grade"]
    assert {"licensing", "financing"} <= set(measures["tax_a_fast_track"].actions)
    assert "public_procurement" in measures["no_public_procurement"].actions
    assert "bidding" in measures["no_bidding"].actions
    assert "high_consumption" in ban.actions


@pytest.mark.parametrize("ref", [CN, PILOT])
def test_rewards_come_from_red_lists_and_sanctions_from_black_lists(ref: str) -> None:
    pack = load_pack(ref)
    for m in pack.measures:
        kinds = {pack.list_(code).kind for code in m.lists}
        assert kinds == ({"red"} if m.effect == "reward" else {"black"}), m.code


def test_cn_actions(cn: Pack) -> None:
    assert {"public_procurement", "bidding", "financing", "subsidy", "licensing",
            "high_consumption"} <= _codes(cn.actions)


# --- names in every language ---------------------------------------------------------------------


def _names_in(node: Any, where: str = "") -> list[tuple[str, Names]]:
    found: list[tuple[str, Names]] = []
    if isinstance(node, Names):
        return [(where, node)]
    if isinstance(node, BaseModel):
        for key in type(node).model_fields:
            found += _names_in(getattr(node, key), f"{where}.{key}")
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            found += _names_in(item, f"{where}.{i}")
    elif isinstance(node, dict):
        for key, item in node.items():
            found += _names_in(item, f"{where}.{key}")
    return found


def _raw_names_blocks(node: Any, where: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, item in node.items():
            if key == "names":
                found.append((f"{where}.names", item))
            else:
                found += _raw_names_blocks(item, f"{where}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _raw_names_blocks(item, f"{where}.{i}")
    return found


@pytest.mark.parametrize("ref", [CN, PILOT])
def test_every_names_block_has_every_language(ref: str) -> None:
    pack = load_pack(ref)
    found = _names_in(pack)
    # the pack, its categories, lists, measures, actions, authorities, and every field
    assert len(found) >= 1 + len(pack.categories) + len(pack.lists) + len(pack.measures) \
        + len(pack.actions) + len(pack.authorities)
    for where, names in found:
        for lang in LANGUAGES:
            assert getattr(names, lang).strip(), f"{where}: empty {lang}"
        assert CJK.search(names.zh), f"{where}: zh has no Chinese"
        assert not CJK.search(names.en) and not CJK.search(names.fr), f"{where}: en/fr in Chinese"
    # the raw files too: exactly zh, en, fr (an overlay cannot add a block missing a language)
    for path in (PACKS_DIR / CN / "pack.yaml", PACKS_DIR / PILOT / "pack.yaml"):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        for where, block in _raw_names_blocks(raw):
            assert isinstance(block, dict) and set(block) == set(LANGUAGES), f"{path.name}{where}"


def test_every_field_of_cn_is_named(cn: Pack) -> None:
    for set_name, fields in cn.field_sets.items():
        for f in fields:
            assert f.names is not None, f"field_sets.{set_name}.{f.name}"
    for cat in cn.categories:
        for f in cat.fields:
            assert f.names is not None, f"{cat.code}.{f.name}"


# --- the pilot overlay ----------------------------------------------------------------------------


def test_pilot_identity(cn: Pack, pilot: Pack) -> None:
    assert pilot.code == "cn-sh-pilot"
    assert pilot.extends == "../cn/pack.yaml"
    assert pilot.names != cn.names
    assert pilot.version != cn.version
    assert pilot.calendar == cn.calendar


def test_pilot_differs_only_in_one_duration_and_one_measure(cn: Pack, pilot: Pack) -> None:
    a = cn.model_dump(mode="json", by_alias=True)
    b = pilot.model_dump(mode="json", by_alias=True)
    for key in ("code", "version", "names", "extends"):
        a.pop(key), b.pop(key)

    a_lists = {x["code"]: x for x in a.pop("lists")}
    b_lists = {x["code"]: x for x in b.pop("lists")}
    assert a_lists.keys() == b_lists.keys()
    changed = [code for code in a_lists if a_lists[code] != b_lists[code]]
    assert changed == ["serious_dishonesty"]
    before, after = copy.deepcopy(a_lists["serious_dishonesty"]), copy.deepcopy(b_lists["serious_dishonesty"])
    assert before.pop("duration") != after.pop("duration")
    assert before == after
    assert pilot.list_("serious_dishonesty").duration.max_years == 2

    a_measures = {x["code"]: x for x in a.pop("measures")}
    b_measures = {x["code"]: x for x in b.pop("measures")}
    added = set(b_measures) - set(a_measures)
    assert len(added) == 1 and set(a_measures) <= set(b_measures)
    assert all(a_measures[c] == b_measures[c] for c in a_measures)
    new = b_measures[added.pop()]
    assert new["legal_basis"] and set(new["names"]) == set(LANGUAGES)

    assert a == b  # everything else is inherited unchanged


# --- broken packs ---------------------------------------------------------------------------------


def _cn_raw() -> dict[str, Any]:
    data, _ = load_raw(CN)
    return copy.deepcopy(data)


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(PackError) as info:
        _load_pack(str(path))
    message = str(info.value)
    assert str(path.resolve()) in message, message
    return message


def _index(items: list[dict[str, Any]], code: str) -> int:
    return next(i for i, item in enumerate(items) if item["code"] == code)


def test_a_copy_of_cn_written_elsewhere_loads(tmp_path: Path) -> None:
    assert _load_pack(str(_write(tmp_path / "pack.yaml", _cn_raw()))) == load_pack(CN)


def test_measure_with_unknown_list_is_refused(tmp_path: Path) -> None:
    data = _cn_raw()
    i = _index(data["measures"], "no_bidding")
    data["measures"][i]["lists"].append("no_such_list")
    message = _error(_write(tmp_path / "pack.yaml", data))
    assert f"measures.{i}.lists" in message and "no_such_list" in message


def test_missing_required_key_is_refused(tmp_path: Path) -> None:
    data = _cn_raw()
    i = _index(data["lists"], "abnormal_operations")
    del data["lists"][i]["due_process"]
    message = _error(_write(tmp_path / "pack.yaml", data))
    assert "lists[abnormal_operations].due_process" in message and "required" in message.lower()


def test_missing_top_level_key_is_refused(tmp_path: Path) -> None:
    data = _cn_raw()
    del data["calendar"]
    message = _error(_write(tmp_path / "pack.yaml", data))
    assert "calendar" in message


@pytest.mark.parametrize("bad", ["吊销许可证", [1000000], {"a": 1}])
def test_bad_in_value_type_is_refused(tmp_path: Path, bad: Any) -> None:
    data = _cn_raw()
    i = _index(data["lists"], "serious_dishonesty")
    data["lists"][i]["rules"][0]["any_of"][0]["in"] = bad
    message = _error(_write(tmp_path / "pack.yaml", data))
    assert "lists[serious_dishonesty].rules.0.any_of.0.in" in message


def test_missing_language_is_refused(tmp_path: Path) -> None:
    data = _cn_raw()
    del data["actions"][0]["names"]["fr"]
    message = _error(_write(tmp_path / "pack.yaml", data))
    assert f"actions[{data['actions'][0]['code']}].names.fr" in message


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    data = _cn_raw()
    data["lists"][0]["duraton"] = {"kind": "fixed", "years": 1}
    message = _error(_write(tmp_path / "pack.yaml", data))
    assert f"lists[{data['lists'][0]['code']}].duraton" in message


def test_broken_overlay_names_the_overlay_file(tmp_path: Path) -> None:
    overlay = tmp_path / "pilot.yaml"
    overlay.write_text(
        "code: cn-bad\nversion: '0'\nextends: " + str(PACKS_DIR / CN / "pack.yaml") + "\n"
        "measures:\n  - code: no_bidding\n    lists: [nowhere]\n",
        encoding="utf-8",
    )
    message = _error(overlay)
    assert "unknown list 'nowhere'" in message


def test_invalid_yaml_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "pack.yaml"
    bad.write_text("code: cn\nnames: {zh: [\n", encoding="utf-8")
    _error(bad)


def test_missing_pack_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackError, match="no such pack"):
        _load_pack(str(tmp_path / "nowhere.yaml"))


def test_overlay_cycle_is_refused(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("code: a\nversion: '0'\nextends: b.yaml\n", encoding="utf-8")
    b.write_text("code: b\nversion: '0'\nextends: a.yaml\n", encoding="utf-8")
    with pytest.raises(PackError, match="cycle"):
        _load_pack(str(a))


def test_overlay_extending_itself_is_refused(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text("code: a\nversion: '0'\nextends: a.yaml\n", encoding="utf-8")
    with pytest.raises(PackError, match="cycle"):
        _load_pack(str(a))


def test_a_pack_reads_its_own_place_table_and_refuses_a_missing_one(tmp_path: Path) -> None:
    data = _cn_raw()
    data["resolution"]["name_rules"]["places_file"] = "my_places.csv"
    (tmp_path / "my_places.csv").write_text("code,name,level,status\n110000,北京市,province,current\n"
                                            "110105,朝阳区,county,current\n", encoding="utf-8")
    rules = _load_pack(str(_write(tmp_path / "pack.yaml", data))).resolution.name_rules
    assert [(p.code, p.name, p.level) for p in rules.places] == [("110000", "北京市", "province"),
                                                                   ("110105", "朝阳区", "county")]
    data["resolution"]["name_rules"]["places_file"] = "missing.csv"
    message = _error(_write(tmp_path / "pack.yaml", data))
    assert "resolution.name_rules.places_file" in message and "missing.csv" in message
    (tmp_path / "bad.csv").write_text("code,place\n110000,北京市\n", encoding="utf-8")
    data["resolution"]["name_rules"]["places_file"] = "bad.csv"
    assert "needs columns code,name,level" in _error(_write(tmp_path / "pack.yaml", data))
