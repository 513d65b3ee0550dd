"""Text from ingested files made safe to print on a terminal.

A cell may hold terminal escape sequences (ESC [ … m recolours, ESC ] … BEL retitles the window,
others move the cursor or rewrite lines already shown) or bare control characters; printed raw by
`entity show` or `screen`, they act on the operator's terminal. Whole escape sequences are dropped,
then every remaining control character (C0, DEL, C1) and the bidirectional overrides that can make
a line read differently from what it holds; a tab and a newline become spaces.
"""

from __future__ import annotations

import re
from typing import Any

_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erasing
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[@-Z\\-_]"  # two-character sequences
    r"|\x9b[0-?]*[ -/]*[@-~]")  # the 8-bit CSI
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SPACING = re.compile("[\t\n]")


def printable(value: Any) -> str:
    """`value` as text, with escape sequences and control characters removed."""
    text = str(value)
    if text.isprintable():
        return text
    return _CONTROLS.sub("", _SPACING.sub(" ", _ESCAPE_SEQUENCE.sub("", text)))
