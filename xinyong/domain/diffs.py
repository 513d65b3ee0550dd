"""Where two names differ, character by character: for a reviewer comparing a record's subject
name with a candidate entity's (Chinese names differ by one character as often as by a word)."""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import NamedTuple


class Piece(NamedTuple):
    text: str
    same: bool


def name_diff(ours: str, theirs: str) -> tuple[list[Piece], list[Piece]]:
    """Both names cut into pieces that are the same in the other name or not (difflib's opcodes;
    no junk heuristics, which would treat frequent characters such as 公 or 司 as noise)."""
    matcher = SequenceMatcher(None, ours, theirs, autojunk=False)
    left: list[Piece] = []
    right: list[Piece] = []
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if a2 > a1:
            left.append(Piece(ours[a1:a2], op == "equal"))
        if b2 > b1:
            right.append(Piece(theirs[b1:b2], op == "equal"))
    return left, right
