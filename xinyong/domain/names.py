"""Normalising entity names for comparison (never for display: the name as registered is kept).

Traditional characters are folded to simplified ones with OpenCC (its `t2s` dictionary, the
one maintained for this); full-width forms to half width (NFKC); every kind of bracket to
ASCII parentheses; spaces, punctuation and invisible characters dropped; Latin letters to lower case, so that
"Huawei Technologies Co., Ltd." and "HUAWEI TECHNOLOGIES CO.,LTD" compare equal. Pinyin
(pypinyin, without tones) lets a character typed by a pinyin input method as its homophone
be recognised as such.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

import opencc

from xinyong.domain.values import to_half_width

_BRACKETS = str.maketrans({"[": "(", "]": ")", "【": "(", "】": ")", "〔": "(", "〕": ")", "{": "(", "}": ")",
                           "〈": "(", "〉": ")", "《": "(", "》": ")", "〖": "(", "〗": ")"})


def _noise() -> re.Pattern[str]:
    """Every punctuation mark but the parentheses (the brackets above become them), every space and
    separator, and the invisible characters (control and format: zero-width spaces and joiners, soft
    hyphen, byte order mark, tags), by their Unicode category. A hand-picked list let the next mark
    through: 小米科技有限责任公司； (a name copied out of a sentence) or 「…」 (corner quotes) no longer
    matched the listed firm's name. The Basic Multilingual Plane and the tags block hold every such
    character a name is typed or pasted with (the whole code space took ten times as long to scan)."""
    def noise(char: str) -> bool:
        category = unicodedata.category(char)
        return (category[0] in "PZ" or category in ("Cc", "Cf")) and char not in "()"

    spans: list[list[int]] = []
    for point in (*range(0x10000), *range(0xE0000, 0xE0080)):
        if noise(chr(point)):
            if spans and spans[-1][1] == point - 1:
                spans[-1][1] = point
            else:
                spans.append([point, point])
    return re.compile("[" + "".join(re.escape(chr(a)) + (f"-{re.escape(chr(b))}" if b > a else "")
                                    for a, b in spans) + "]+")


_NOISE = _noise()
_T2S = opencc.OpenCC("t2s")


def normalise_name(name: str) -> str:
    """Simplified, half-width, no spaces or punctuation noise, brackets unified, Latin in lower case."""
    text = _T2S.convert(to_half_width(name)).translate(_BRACKETS)
    return _NOISE.sub("", text).lower()


def normalise_names(names: Sequence[str]) -> list[str]:
    """`normalise_name` of each name, folded as one text: calls into OpenCC and the regular
    expression cost more than folding a name (a register chunk's names at once: half the time).
    The names are joined by a private-use character that every step leaves alone (NFKC keeps it,
    OpenCC has no phrase with it, it is no noise and has no case), so the text splits back into
    one result per name; names holding that character are folded one by one."""
    if any(_APART in name for name in names):
        return [normalise_name(name) for name in names]
    text = _T2S.convert(to_half_width(_APART.join(names))).translate(_BRACKETS)
    return _NOISE.sub("", text).lower().split(_APART) if names else []


_APART = "\ue000"


def _pinyin():
    """pypinyin's `pinyin` and `Style`, imported when first needed, without its phrase dictionary.

    Only single characters are ever asked for, and the phrase dictionary holds phrases: every
    character from U+3400 to U+2A6DF has the same readings with it and without it (checked for
    issue 12). Decoding it was ~2 s of the first name screened after a restart. The variable must
    be set while pypinyin is first imported (its `constants` reads it then, and only then); it is
    taken back after, so that processes started from this one (the CLI a test or a bench runs)
    do not inherit it."""
    was = os.environ.get("PYPINYIN_NO_PHRASES")
    os.environ["PYPINYIN_NO_PHRASES"] = "true"
    try:
        from pypinyin import Style, pinyin
    finally:
        if was is None:
            del os.environ["PYPINYIN_NO_PHRASES"]
        else:
            os.environ["PYPINYIN_NO_PHRASES"] = was
    return pinyin, Style


@lru_cache(maxsize=65536)
def readings(char: str) -> frozenset[str]:
    """Every toneless pinyin reading of a character (polyphones have several); the character for others."""
    pinyin, Style = _pinyin()
    found = pinyin(char, style=Style.NORMAL, heteronym=True, errors="default")
    return frozenset(found[0]) if found and found[0] else frozenset((char,))


@lru_cache(maxsize=65536)
def reading(char: str) -> str:
    """The usual toneless reading of a character (pypinyin's first), the character itself for others."""
    pinyin, Style = _pinyin()
    found = pinyin(char, style=Style.NORMAL, errors="default")
    return found[0][0] if found and found[0] else char


def sounds_alike(a: str, b: str) -> bool:
    """Two characters a pinyin input method offers for one syllable: the usual reading of one is a
    reading of the other (强 qiang and 墙 qiang; not 枝 zhi and 技 ji, though both may be read qi)."""
    return a == b or reading(a) in readings(b) or reading(b) in readings(a)


def same_person_name(a: str, b: str) -> bool:
    """Two writings of one person's name, as far as a name can say: equal once folded (spaces, the
    dot of 阿卜杜拉·买买提, traditional characters, case), a character typed as its homophone
    (王建国 and 王剑国), or Latin words in another order (SMITH JOHN and John Smith)."""
    x, y = normalise_name(a), normalise_name(b)
    if x == y:
        return True
    if len(x) == len(y) and not x.isascii() and all(sounds_alike(i, j) for i, j in zip(x, y)):
        return True
    words = lambda name: sorted(_NOISE.split(to_half_width(name).lower()))  # noqa: E731
    return a.isascii() and b.isascii() and words(a) == words(b)


@lru_cache(maxsize=1)
def pinyin_syllables() -> frozenset[str]:
    """Every toneless syllable pypinyin gives a character (ü written v, as `readings` writes it):
    about 425, read from its character dictionary on first use (a tenth of a second)."""
    _, Style = _pinyin()
    from pypinyin.pinyin_dict import pinyin_dict
    from pypinyin.style import convert

    found = {convert(p, Style.NORMAL, strict=False) for py in set(pinyin_dict.values()) for p in py.split(",")}
    return frozenset(s for s in found if s.isascii() and s.isalpha())


def pinyin_bigrams(latin: str) -> set[str]:
    """The syllable bigrams (xiao-mi, mi-ke, ke-ji) of every way of cutting `latin` wholly into pinyin
    syllables, as `sound_bigrams` writes a Chinese name's; none when it cannot be cut so (an English word)."""
    syllables, longest, end = pinyin_syllables(), 6, len(latin)
    ends_at: dict[int, list[tuple[int, str]]] = {}  # a syllable's end -> (its start, it), from a reachable start
    reachable = {0}
    for start in range(end):
        if start in reachable:
            for stop in range(start + 1, min(start + longest, end) + 1):
                if latin[start:stop] in syllables:
                    reachable.add(stop)
                    ends_at.setdefault(stop, []).append((start, latin[start:stop]))
    if end not in reachable:
        return set()
    # only the syllables on a cut that reaches the end, each followed by those starting where it ends
    on_a_cut, pending = set(), [end]
    while pending:
        stop = pending.pop()
        for start, syllable in ends_at.get(stop, ()):
            if (start, stop, syllable) not in on_a_cut:
                on_a_cut.add((start, stop, syllable))
                pending.append(start)
    return {f"{a}-{b}" for start, stop, a in on_a_cut for start2, _, b in on_a_cut if start2 == stop}


def spelled_in_pinyin(latin: str, han: str) -> int:
    """How many of `han`'s first characters the letters `latin` spell wholly, one reading after another
    (xiaomikeji: all 4 of 小米科技; xiaomi: 2); 0 when it spells none of them to its end."""
    spelled, reached = 0, {0}
    for count, char in enumerate(han, start=1):
        reached = {at + len(r) for at in reached for r in readings(char) if latin.startswith(r, at)}
        if not reached:
            break
        if len(latin) in reached:
            spelled = count
    return spelled
