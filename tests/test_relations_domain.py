"""Ownership and control, pure parts: a new set replacing the old (a property over random sets),
the share parser, the validator's role from a header, and the effect of each `relations` pack field."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worlds import FIRM_CLEAN, resident_id
from xinyong.domain.pack import load_pack
from xinyong.domain.records import Rejection, RowValidator, map_columns
from xinyong.domain.relations import Party, Relation, relation_of, replace_set
from xinyong.domain.values import ValueProblem, parse_share

CN = load_pack("cn")
RELATIONS = CN.category("relations")
SPEC = RELATIONS.relations
assert SPEC is not None
PERSON_ID = resident_id("440305", dt.date(1975, 3, 9), 311)

parties = st.sampled_from([Party("赵六", True, PERSON_ID), Party("钱七", True), Party("某某投资有限公司", False),
                           Party("某某集团有限公司", False, None, FIRM_CLEAN, 7)])
relations = st.builds(Relation, st.sampled_from(["shareholder", "actual_controller", "principal", "key_staff"]),
                      st.sampled_from(["股东", "实际控制人", "经理", "董事"]), parties,
                      st.sampled_from([None, 10.0, 60.0]))


@given(st.dictionaries(st.integers(1, 50), relations, max_size=8), st.lists(relations, max_size=8))
def test_a_new_set_replaces_the_open_one(open_relations: dict[int, Relation], new: list[Relation]) -> None:
    change = replace_set(open_relations, new)
    # every open relation is either kept (repeated by the new set) or ended, never both
    assert set(change.kept) | set(change.ended) == set(open_relations)
    assert not set(change.kept) & set(change.ended)
    for relation_id, relation in change.kept.items():
        assert open_relations[relation_id].identity == relation.identity
    # what is open afterwards is exactly the new set, each relation once
    after = [open_relations[i].identity for i in change.kept] + [r.identity for r in change.opened]
    assert sorted(after, key=repr) == sorted({r.identity for r in new}, key=repr)
    # the same set again changes nothing
    again = replace_set({i: r for i, r in enumerate([*change.kept.values(), *change.opened])}, new)
    assert not again.ended and not again.opened


@given(st.floats(0, 100, allow_nan=False))
def test_share_reads_a_percentage(share: float) -> None:
    assert parse_share(f"{share}%") == parse_share(str(share)) == round(share, 4)


@pytest.mark.parametrize("text", ["120%", "-1", "abc", "60%%", "nan"])
def test_share_refuses_what_is_not_a_share(text: str) -> None:
    with pytest.raises(ValueProblem):
        parse_share(text)


def validate(headers: list[str], row: list[str], category=RELATIONS):
    mapping = map_columns(CN, category, headers, None)
    return RowValidator(CN, category, "samr", mapping, dt.date(2026, 1, 1)).validate(row)


FIELDS = {"name": "深圳某某建设工程有限公司", "party_name": "某某投资", "party_code": PERSON_ID, "role": "经理", "position": "董事", "share": 30.0}


@pytest.mark.parametrize("path, change, before, after", [
    ("categories.relations.party_field", {"party_field": "name"}, "某某投资", "深圳某某建设工程有限公司"),
    ("categories.relations.party_code_field", {"party_code_field": None}, PERSON_ID, None),
    ("categories.relations.party_kind_field", {"party_kind_field": None, "party_code_field": None}, False, True),
    ("categories.relations.role_field", {"role_field": "position"}, "principal", "key_staff"),
    ("categories.relations.share_field", {"share_field": None}, 30.0, None),
    ("categories.relations.relation_of_role", {"relation_of_role": {**SPEC.relation_of_role, "经理": "key_staff"}},
     "principal", "key_staff"),
])
def test_relations_pack_field(path: str, change: dict, before: object, after: object) -> None:
    """Each field of the category's `relations` changes the relation a record states."""
    def seen(relation: Relation) -> object:
        leaf = path.rsplit(".", 1)[1]
        return {"party_field": relation.party.name, "party_code_field": relation.party.person_id,
                "party_kind_field": relation.party.person, "role_field": relation.relation,
                "share_field": relation.share, "relation_of_role": relation.relation}[leaf]

    # the kind decides for a name that reads as a person's (某某投资: four characters), given no ID number
    kind_check = {"party_kind_field": {**FIELDS, "party_kind": "enterprise", "party_code": None}}.get(
        path.rsplit(".", 1)[1], FIELDS)
    assert seen(relation_of(SPEC, kind_check, CN.person_names)) == before
    assert seen(relation_of(SPEC.model_copy(update=change), kind_check, CN.person_names)) == after


def test_relations_role_of_header() -> None:
    """A column headed 股东 lists shareholders: the row needs no role column, unless the pack says nothing."""
    row = ["深圳某某建设工程有限公司", "某某投资有限公司", "60%"]
    found = validate(["企业名称", "股东", "出资比例"], row)
    assert not isinstance(found, Rejection) and found.fields["role"] == "股东" and found.fields["share"] == 60.0
    assert found.natural_key == "某某投资有限公司/股东#深圳某某建设工程有限公司"
    silent = RELATIONS.model_copy(update={"relations": SPEC.model_copy(update={"role_of_header": {}})})
    refused = validate(["企业名称", "股东", "出资比例"], row, silent)
    assert isinstance(refused, Rejection) and refused.field == "role" and refused.code == "required_empty"
