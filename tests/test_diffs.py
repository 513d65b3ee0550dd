"""The reviewer's side-by-side names: differing characters marked, nothing lost or invented."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from xinyong.domain.diffs import Piece, name_diff


def test_one_character_typo_and_a_suffix() -> None:
    left, right = name_diff("杭州安得信息技术有限公司", "杭州安德信息技术有限责任公司")
    assert [p for p in left if not p.same] == [Piece("得", False)]
    assert [p.text for p in right if not p.same] == ["德", "责任"]


def test_identical_names_have_no_difference() -> None:
    assert name_diff("上海恒泰贸易有限公司", "上海恒泰贸易有限公司") == ([Piece("上海恒泰贸易有限公司", True)],
                                                                 [Piece("上海恒泰贸易有限公司", True)])


@given(st.text(alphabet="华信科技有限公司北京上海（）() ab", max_size=20),
       st.text(alphabet="华信科技有限公司北京上海（）() ab", max_size=20))
def test_pieces_rebuild_both_names_and_agree_on_what_is_shared(ours: str, theirs: str) -> None:
    left, right = name_diff(ours, theirs)
    assert "".join(p.text for p in left) == ours and "".join(p.text for p in right) == theirs
    assert [p.text for p in left if p.same] == [p.text for p in right if p.same]
