"""Normalising entity names for comparison (never for display: the name as registered is kept)."""

from __future__ import annotations

import re

from xinyong.domain.values import to_half_width

_NOISE = re.compile(r"[\s·・\.,，。\"'“”‘’]+")


def normalise_name(name: str) -> str:
    """Half-width, no spaces or punctuation noise, brackets unified, Latin in lower case."""
    text = to_half_width(name)
    text = text.replace("[", "(").replace("]", ")").replace("【", "(").replace("】", ")")
    return _NOISE.sub("", text).lower()
