"""Comparing a record's subject with an entity: name parts, comparison levels, learned scores.

Pure. The rules for names (legal forms, branch markers, the division table) come from the
pack; the weights of the comparisons come from a `LinkageModel` learned from the data
(domain/linkage.py). A score is a match probability in [0, 1] and always comes with the
levels and weights that made it, so that every link can be explained.

A name that agrees only by sound (a homophone typed by a pinyin input method: 华/化, 鑫/新), or
differs by a character, or agrees in another place or legal form, is never enough alone to
link: such a pair is capped below `auto_link` unless other evidence about the firm itself
(its legal representative, its address, a code one typo away) agrees. Twin firms whose names
differ by one real character are common; the record about one must not move to the other.
Nor is such a near name ever below `review` by the model's arithmetic alone (in a place that
does not disagree): a person looks, so screening never allows, nor resolution makes a new
entity, when a candidate is that near.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz.distance import Levenshtein
from rapidfuzz.fuzz import ratio

from xinyong.domain.linkage import LinkageModel
from xinyong.domain.names import normalise_name, readings, sounds_alike, spelled_in_pinyin
from xinyong.domain.pack import NameRulesSpec

NAME_LEVELS = ("exact", "homophone", "near", "short", "fair", "other")
COMPARISONS: dict[str, tuple[str, ...]] = {
    "name": NAME_LEVELS,
    "legal_form": ("same", "different"),
    "place": ("same", "different"),
    "legal_representative": ("same", "different"),
    "address": ("same", "different"),
    "code": ("near",),
}
# Where EM starts, and the weights of a store too small to train on: Splink-like starting values.
STARTING_MODEL = LinkageModel(
    m={"name": {"exact": 0.70, "homophone": 0.08, "near": 0.10, "short": 0.05, "fair": 0.04, "other": 0.03},
       "legal_form": {"same": 0.9, "different": 0.1},
       "place": {"same": 0.95, "different": 0.05},
       "legal_representative": {"same": 0.9, "different": 0.1},
       "address": {"same": 0.7, "different": 0.3},
       "code": {"near": 1.0}},
    u={"name": {"exact": 1e-4, "homophone": 1e-5, "near": 5e-4, "short": 1e-4, "fair": 5e-3, "other": 0.9943},
       "legal_form": {"same": 0.8, "different": 0.2},
       "place": {"same": 0.3, "different": 0.7},
       "legal_representative": {"same": 1e-3, "different": 0.999},
       "address": {"same": 5e-4, "different": 0.9995},
       "code": {"near": 1e-4}},
    prior=0.05)
# What a name alone can reach, whatever the learned weights say, as a share of the way between
# the pack's `review` and `auto_link`: a near name (a homophone, one character, a short name)
# without evidence about the firm itself waits for a person (between them); a name sharing
# little more than an industry word ("fair") is below `review` (with evidence, a person looks);
# an unrelated name is never a candidate, even when a common legal representative's name agrees.
UNCONFIRMED_SHARE = 0.85  # review + 85% of the way to auto_link
BELOW_REVIEW_FAIR, BELOW_REVIEW_UNRELATED = 0.9, 0.5  # shares of `review`
CAP_BAND_SHARE = 0.25  # under a cap, the closer name ranks first within this share of (cap - review)
# the cn pack's thresholds: the default matcher's (screening's index without a pack at hand)
DEFAULT_REVIEW, DEFAULT_AUTO_LINK = 0.75, 0.92
NEAR, FAIR = 80, 60  # rapidfuzz ratios of the name cores for the `near` (or one edit) and `fair` levels
# a short name (简称, no legal form or the bare 股份) against a longer name: the lowest similarity
# of its start, of a pick of its characters from the start, of a run inside it (abbreviation_fit)
ABBREVIATION_FITS = (0.93, 0.86, 0.8)
# under a cap, the similarity that ranks a candidate is lowered by this factor for a place or a
# legal form written in the name that disagrees: 浙江华业 is more likely 浙江华业塑料机械 than 安徽华业香料
DISAGREEING_PART = 0.9


@dataclass(frozen=True, slots=True)
class NameParts:
    core: str  # the distinctive part: trade name and industry, without place or legal form
    legal_form: str | None
    region: str | None  # the outermost place named, as written (北京 for 北京市朝阳区...)
    branch: str | None  # the branch part (上海分公司), None for a head office or sole entity
    places: tuple[str, ...] = ()  # division codes of the most specific place named
    full: str = field(default="", compare=False)  # the whole normalised name: an exact full name beats a normalised match
    # the name without legal form or branch, places kept: compared when a place was not
    # recognised on one side (a variant character in it, 寜波 for 宁波)
    written: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        """Exact-match key: everything but the place prefix, legal forms unified."""
        return f"{self.core}|{self.legal_form or ''}|{self.branch or ''}"


# A firm's name is registered in Chinese characters, numbers too (企业名称登记管理规定: no Arabic
# digits): the listed 三六零安全科技 is typed 360安全科技 or ３６０安全科技, 三六〇 beside 三六零. Compared
# as the register writes them, 〇 as 零. An English name (Latin letters only) keeps its digits.
_CHINESE_NUMERALS = str.maketrans("0123456789〇", "零一二三四五六七八九零")


def chinese_numerals(normalised: str) -> str:
    """A normalised name's digits as Chinese numerals, one character each (360 -> 三六零), unless it is a Latin name."""
    if normalised.isascii() and any(c.isalpha() for c in normalised):
        return normalised
    return normalised.translate(_CHINESE_NUMERALS)


@lru_cache(maxsize=8192)
def _code_prefix(code: str) -> str:
    """110000 -> 11, 110100 -> 1101, 110105 -> 110105: a place contains every code it prefixes."""
    if not code.isdigit():
        return code
    while len(code) > 2 and code.endswith("00"):
        code = code[:-2]
    return code


def places_agree(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """One place within the other (北京 and 北京市朝阳区), for any reading of an ambiguous name."""
    for x in map(_code_prefix, a):
        for y in map(_code_prefix, b):
            if x.startswith(y) or y.startswith(x):
                return True
    return False


class NameAnalyser:
    """Splits names into parts by the pack's rules; compiled once per pack.

    `remember`: keep each name's parts for the analyser's life (a resolution run meets the
    register's names again in most records, and splitting a name is its costliest step);
    screening, which lives for weeks and sees every name once, does not.
    """

    def __init__(self, rules: NameRulesSpec, remember: bool = False):
        self.remembered: dict[str, NameParts] | None = {} if remember else None
        forms = sorted(((normalise_name(v), c) for v, c in rules.legal_forms.items()),
                       key=lambda p: -len(p[0]))
        self.forms = [(variant, canonical) for variant, canonical in forms if variant]
        # the same forms by length, longest first, for a look-up of a name's tail at each length
        # (the first of a length in `forms` order wins, as the scan over `forms` found it)
        self.forms_by_length: list[tuple[int, dict[str, str]]] = []
        for variant, canonical in self.forms:
            if not self.forms_by_length or self.forms_by_length[-1][0] != len(variant):
                self.forms_by_length.append((len(variant), {}))
            self.forms_by_length[-1][1].setdefault(variant, canonical)
        self.branch_markers = tuple(normalise_name(m) for m in rules.branch_markers)
        self.protected = frozenset(normalise_name(w) for w in rules.protected_words)
        suffixes = _Endings([*rules.region_suffixes, *rules.district_suffixes])
        ethnic = _Endings(list(rules.ethnic_groups))
        # full names (北京市, 朝阳区) of every level; short names (北京, 延边) of provinces and
        # prefectures only: a county's short name is too often a word (东方, 城关, 新华)
        self.full: dict[str, set[str]] = {}
        self.short: dict[str, set[str]] = {}
        current_stems: set[str] = set()
        for place in sorted(rules.places, key=lambda p: p.status != "current"):
            name = normalise_name(place.name)
            self.full.setdefault(name, set()).add(place.code)
            stem = _stem(name, suffixes, ethnic)
            if place.level != "county" and stem != name and len(stem) >= 2:
                if place.status == "current":
                    current_stems.add(stem)
                elif stem in current_stems:  # 那曲 is 那曲市 now, not the former 那曲地区
                    continue
                self.short.setdefault(stem, set()).add(place.code)
        for name in rules.region_names:  # a pack without a division table: names stand for themselves
            name = normalise_name(name)
            self.short.setdefault(name, set()).add(name)
            for suffix in rules.region_suffixes:
                self.full.setdefault(name + suffix, set()).add(name)
        districts = "|".join(re.escape(x) for x in rules.district_suffixes)
        self.region_names = sorted(self.short, key=len, reverse=True)
        self.longest = max(map(len, [*self.full, *self.short]), default=0)
        # the lengths of the place names beginning with each character, longest first: a name's
        # place is looked for only at those (most characters begin none)
        lengths: dict[str, set[int]] = {}
        for place in [*self.full, *self.short]:
            if len(place) >= 2:
                lengths.setdefault(place[0], set()).add(len(place))
        self.place_lengths = {char: sorted(found, reverse=True) for char, found in lengths.items()}
        self.suffixes, self.ethnic = suffixes, ethnic
        self.district = re.compile(f"^(?:{'|'.join(map(re.escape, self.region_names))})(?:{districts})") \
            if districts and self.region_names and not rules.places else None

    def _place_at(self, text: str, at: int) -> tuple[int, set[str], str] | None:
        """The longest place name starting at `at`: (end, codes, its short name)."""
        room = len(text) - at
        for length in self.place_lengths.get(text[at:at + 1], ()):
            if length > room:
                continue
            piece = text[at:at + length]
            codes = self.full.get(piece)
            if codes is not None:
                end = at + length
                if text[end - 1:end + 1] in self.protected:  # 北京市场: the 市 starts a word of the trade name
                    continue
                return end, codes, _stem(piece, self.suffixes, self.ethnic)
            codes = self.short.get(piece)
            if codes is not None:
                return at + length, codes, piece
        return None

    def _leading_places(self, text: str) -> tuple[int, tuple[str, ...], str | None]:
        at, codes, outer = 0, (), None
        while at < len(text):
            found = self._place_at(text, at)
            if found is None or found[0] >= len(text):
                break
            end, found_codes, short = found
            within = tuple(sorted(c for c in found_codes if not codes or places_agree((c,), codes)))
            if codes and not within and text[at:end] not in self.full:
                # a short place name (no 市/区/县/省) right after a place that does not contain it
                # starts the trade name: 山东新北洋 is 新北洋 of 山东, not 新北 (新北市) in 山东
                break
            inner = within or tuple(sorted(found_codes))
            at, codes, outer = end, inner, outer or short
        if self.district is not None and at:  # name-list packs: 北京朝阳区 with a known district
            found = self.district.match(text, at)
            if found and found.end() < len(text):
                at = found.end()
        return at, codes, outer

    def parts(self, name: str) -> NameParts:
        if self.remembered is None:
            return self._parts(name)
        found = self.remembered.get(name)
        if found is None:
            found = self.remembered[name] = self._parts(name)
        return found

    def _parts(self, name: str) -> NameParts:
        text = full = chinese_numerals(normalise_name(name))
        branch = None
        marker = next((m for m in self.branch_markers if text.endswith(m)), None)
        if marker:
            form_end = self._end_of_last_form(text[: -len(marker)]) or len(text) - len(marker)
            text, branch = text[:form_end], text[form_end:]
        region, places = None, ()
        for found in re.finditer(r"\(([^()]+)\)", text):
            inside = found.group(1)
            place = self._place_at(inside, 0)
            if place is not None and place[0] == len(inside):
                region, places = place[2], tuple(sorted(place[1]))
                text = text[:found.start()] + text[found.end():]
                break
        end, leading, outer = self._leading_places(text)
        if end:
            rest = text[end:]
            if self._strip_form(rest)[0]:  # a place followed by nothing but a legal form is the name
                text = rest
                region = region or outer
                places = places if places and not places_agree(places, leading) else leading
        core, legal_form = self._strip_form(text)
        if branch:  # 上海分公司 and 上海市分公司 are the same branch
            at, _, outer_branch = self._leading_places(branch)
            branch = (outer_branch + branch[at:]) if at and outer_branch else branch
        written = self._strip_form(full[:len(full) - len(branch)] if branch else full)[0]
        return NameParts(core, legal_form, region, branch, places, full, written)

    def names_no_one(self, name: str) -> bool:
        """Nothing but legal forms, branch markers and places (有限公司, 分公司, 北京市), once brackets,
        punctuation and spaces are left out: no firm's name."""
        text, around = re.sub(r"[\W_]+", "", normalise_name(name)), ()  # around: the place stripped last
        while text:
            first = self._place_at(text, 0)
            if first is not None and around and text[:first[0]] not in self.full \
                    and not places_agree(tuple(first[1]), around):
                # a short place name after a place that does not contain it starts the trade name, as
                # `parts` reads it: 湖南白银股份有限公司 (a real firm) is 白银 of 湖南, not two places
                return False
            if text in self.full or text in self.short:
                return True
            end, codes, _ = self._leading_places(text)
            if end:
                text, around = text[end:], codes
                continue
            ending = next((m for m in self.branch_markers if text.endswith(m)), None) or \
                next((v for v, _ in self.forms if text.endswith(v)), None)
            if ending is None:
                return False
            text = text[:-len(ending)]
        return True

    def _strip_form(self, text: str) -> tuple[str, str | None]:
        for length, variants in self.forms_by_length:
            if len(text) > length:
                canonical = variants.get(text[-length:])
                if canonical is not None:
                    return text[:-length], canonical
        return text, None

    def _end_of_last_form(self, text: str) -> int | None:
        """Where the head office's name ends: after its last legal form."""
        best = None
        for variant, _ in self.forms:
            at = text.rfind(variant)
            if at > 0 and (best is None or at + len(variant) > best):
                best = at + len(variant)
        return best


class _Endings:
    """Words a name may end with, by length, longest first: the first that ends a name is found by
    looking up each length's tail in a set (a place table of 3,500 names against ~60 suffixes and 56
    ethnic groups took ~0.5 s of every start by trying each word in turn). Two words of one length
    cannot both end the same name, so this finds the word the longest-first scan found."""

    def __init__(self, words: list[str]):
        by_length: dict[int, set[str]] = {}
        for word in words:
            by_length.setdefault(len(word), set()).add(word)
        self.lengths = sorted(by_length, reverse=True)
        self.by_length = by_length

    def longest(self, name: str, keep: int) -> int:
        """Length of the longest word ending `name` that leaves more than `keep` characters; 0 if none."""
        for length in self.lengths:
            if len(name) - length > keep and length and name[-length:] in self.by_length[length]:
                return length
        return 0


def _stem(name: str, suffixes: _Endings, ethnic: _Endings) -> str:
    """A place's short name: 延边朝鲜族自治州 -> 延边, 北京市 -> 北京, 内蒙古自治区 -> 内蒙古."""
    cut = suffixes.longest(name, 0)
    if cut:
        name = name[:-cut]
    while cut := ethnic.longest(name, 1):
        name = name[:-cut]
    return name


def abbreviation_keys(parts: NameParts, registered: bool) -> set[str]:
    """Blocking keys for short names: the first character of the trade name (or of the name as
    written, place first) with each later one. A registered name gives them all; a short name
    (科拓生物) its own, and one of them is a registered name's (科拓 ... 生 of 科拓恒通生物技术)."""
    keys = set()
    for text in {parts.core, parts.written} if registered else {parts.core}:
        if len(text) >= 2 and not text.isascii():
            keys.update(text[0] + char for char in text[1:])
    return keys


def bigrams(text: str) -> set[str]:
    if len(text) < 2:
        return {text} if text else set()
    return {text[i:i + 2] for i in range(len(text) - 1)}


def substitution_keys(core: str) -> list[str]:
    """One key per character of a Chinese core, the core with that character left out and its place:
    two cores of one length share a key exactly when they differ in one character. 南京红形阳 for the
    registered 南京红太阳, 海亭药业 for 海翔药业: no character bigram of theirs is shared (or only an
    industry word's, too common to block on). Cores under three characters have none: one character
    of two changed makes another name (沙印, 沙钢)."""
    if len(core) < 3 or core.isascii():
        return []
    return [f"{i}{core[:i]}{core[i + 1:]}" for i in range(len(core))]


def sound_bigrams(text: str) -> set[str]:
    """Bigrams of syllables, every reading of a polyphone (强: qiang, jiang): a homophone typo shares them."""
    if len(text) < 2:
        return set(readings(text)) if text else set()
    return {gram for i in range(len(text) - 1) for gram in _syllable_pairs(text[i], text[i + 1])}


@lru_cache(maxsize=1 << 16)
def _syllable_pairs(a: str, b: str) -> tuple[str, ...]:
    """The syllable bigrams of two characters, in reading order (names repeat few character pairs:
    有限, 科技; an index of every registered name makes them millions of times)."""
    return tuple(f"{x}-{y}" for x in readings(a) for y in readings(b))


def code_is_near(given: str, known: str) -> bool:
    """A mistyped code: one character changed, or two neighbours swapped."""
    if len(given) != len(known) or given == known:
        return given == known
    diff = [i for i, (a, b) in enumerate(zip(given, known)) if a != b]
    if len(diff) == 1:
        return True
    return (len(diff) == 2 and diff[1] == diff[0] + 1
            and given[diff[0]] == known[diff[1]] and given[diff[1]] == known[diff[0]])


@dataclass(slots=True)
class Subject:
    """What a record says about who it is about."""

    name: NameParts | None
    code: str | None = None  # an unverified code, as evidence
    legal_rep: str | None = None
    person: bool = False
    address: str | None = None


@dataclass(slots=True)
class Profile:
    """What the store knows about an entity, for comparison."""

    entity_id: int
    names: list[NameParts]
    codes: list[str] = field(default_factory=list)
    legal_rep: str | None = None
    person: bool = False
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Scored:
    entity_id: int
    score: float
    components: dict[str, object]

    @property
    def exact_full_name(self) -> bool:
        return bool(self.components.get("exact_full_name"))

    @property
    def corroborated(self) -> bool:
        return bool(self.components.get("corroborated"))


def name_level(a: str, b: str) -> tuple[str, float]:
    """How close two name cores are, and their edit similarity in [0, 1]."""
    if a == b:
        return "exact", 1.0
    if a.isascii() != b.isascii():  # a name typed in pinyin (xiaomikeji) against the Chinese name it spells
        latin, han = (a, b) if a.isascii() else (b, a)
        spelled = spelled_in_pinyin(latin, han) if latin.isalpha() else 0
        if spelled == len(han):
            return "homophone", 1.0
        if spelled >= 2:
            return "short", spelled / len(han)
    similarity = ratio(a, b)
    if len(a) == len(b) and all(sounds_alike(x, y) for x, y in zip(a, b)):
        return "homophone", similarity / 100
    if similarity >= NEAR or (min(len(a), len(b)) >= 3 and Levenshtein.distance(a, b) <= 1):
        return "near", similarity / 100
    shorter, longer = sorted((a, b), key=len)
    if len(shorter) >= 2 and longer.startswith(shorter):
        return "short", similarity / 100
    return ("fair" if similarity >= FAIR else "other"), similarity / 100


def abbreviation_fit(short: str, full: str) -> float | None:
    """How well `short` reads as a short name (简称) of the name `full`, in [0, 1]; None: it does not.

    A Chinese short name keeps the first character of the trade name: the start of the name
    itself fits best (海源 for 海源复合材料), then a pick of later characters in their order
    (科拓生物 for 科拓恒通生物技术, 北玻 for 北方玻璃技术, 宝新能源 for 宝丽华新能源); a run
    of characters inside the name, not at its start (太阳能 for 中节能太阳能), fits least: it is
    also how a different firm's name contains another's. Within each, the more of the name the
    short name covers, the better.
    """
    if not 2 <= len(short) < len(full):
        return None
    coverage = len(short) / len(full)
    prefix, pick, inside = ABBREVIATION_FITS
    if full.startswith(short):
        return prefix + (1 - prefix) * coverage
    if short[0] == full[0]:
        at = 1
        for char in short[1:]:
            at = full.find(char, at) + 1
            if not at:
                break
        else:
            return pick + (prefix - pick) * coverage
    if short in full:
        return inside + (pick - inside) * coverage
    return None


_RANK = {level: i for i, level in enumerate(NAME_LEVELS)}


def is_short_name(parts: NameParts) -> bool:
    """A Chinese name written as a short name (简称): no legal form, or the bare 股份 of 万科股份.
    (Latin names are not abbreviated this way: an English name or a person's is never one.)"""
    return (parts.legal_form is None or parts.full.endswith("股份")) and not parts.core.isascii()


# a group (企业集团) is named by its parent's trade name and 集团: 小米集团 is the group of 小米科技
GROUP = "集团"


def _closest(a: NameParts, b: NameParts) -> tuple[str, float]:
    """Cores compared; when one side has no recognised place, the names as written too; a short
    name (`a` without a legal form) against the longer name `b` as an abbreviation of it, and a
    group's short name (小米集团) by its trade name as well."""
    level, similarity = name_level(a.core, b.core)
    if level != "exact" and bool(a.places) != bool(b.places) and a.written and b.written:
        written = name_level(a.written, b.written)
        if (-_RANK[written[0]], written[1]) > (-_RANK[level], similarity):
            level, similarity = written
    if level != "exact" and is_short_name(a):
        shorts = [a.core, a.core[:-len(GROUP)]] if a.core.endswith(GROUP) else [a.core]
        fits = [abbreviation_fit(short, b.core) for short in shorts]
        if not a.places and b.written:  # 青农商行 for 青岛农村商业银行: the place's first character leads
            fits += [abbreviation_fit(short, b.written) for short in shorts]
        fit = max((f for f in fits if f is not None), default=None)
        if fit is not None:
            if _RANK[level] > _RANK["short"]:
                level, similarity = "short", fit
            elif level in ("near", "short"):
                similarity = max(similarity, fit)
    return level, similarity


# a legal representative's name or an address, normalised once for the many pairs it is in
_folded = lru_cache(maxsize=1 << 16)(normalise_name)


def comparable_names(name: NameParts, profile: Profile) -> Iterator[NameParts]:
    """The entity's names a subject's name is compared with: a branch's only with a branch's of a
    like name, a head office's only with a head office's (a branch and its head office are
    different entities; an entity with none of them can never be the subject)."""
    for known in profile.names:
        if (name.branch is None) != (known.branch is None):
            continue
        if name.branch and ratio(name.branch, known.branch) < 90:
            continue
        yield known


def compare(subject: Subject, profile: Profile) -> tuple[dict[str, str | None], dict[str, object]] | None:
    """The comparison levels of a subject and an entity (None: they can never be the same)."""
    mine = subject.name
    best: tuple[tuple[int, int, float], NameParts, str, dict[str, str | None]] | None = None
    for name in comparable_names(mine, profile):
        level, similarity = _closest(mine, name)
        if best is not None and -_RANK[level] < best[0][0]:  # a worse level: its form and place cannot matter
            continue
        parts = _form_and_place(mine, name)
        # at the same level, the name whose legal form and place agree: 浙江锌柴股份有限公司 is as
        # close to 浙江新柴股份有限公司 as to its English name in pinyin, whose legal form differs
        rank = (-_RANK[level], -list(parts.values()).count("different"), similarity)
        if best is None or rank > best[0]:
            best = (rank, name, level, parts)
    if best is None:
        return None
    (_, _, similarity), matched, level, parts = best
    levels: dict[str, str | None] = {
        "name": level,
        **parts,
        "legal_representative": None if not (subject.legal_rep and profile.legal_rep)
        else "same" if _folded(subject.legal_rep) == _folded(profile.legal_rep) else "different",
        "address": None if not (subject.address and profile.address)
        else "same" if _folded(subject.address) == _folded(profile.address) else "different",
        "code": "near" if subject.code and any(code_is_near(subject.code, c) for c in profile.codes) else None,
    }
    facts: dict[str, object] = {"name": round(similarity, 4), "matched_name": matched.key,
                                "exact_full_name": bool(mine.full) and any(mine.full == n.full for n in profile.names),
                                "starts_alike": level == "short" and _starts_alike(mine, matched),
                                "same_start": level == "fair" and _same_start(mine, matched)}
    return levels, facts


def _form_and_place(mine: NameParts, known: NameParts) -> dict[str, str | None]:
    """Whether two names' legal forms and places agree (None: one of them does not say)."""
    return {
        "legal_form": None if not (mine.legal_form and known.legal_form)
        else "same" if mine.legal_form == known.legal_form else "different",
        "place": None if not (mine.places and known.places) and not (mine.region and known.region)
        else "same" if (places_agree(mine.places, known.places) if mine.places and known.places
                        else mine.region == known.region) else "different",
    }


def _same_start(a: NameParts, b: NameParts) -> bool:
    """Chinese cores that begin with the same characters, two or more and at least half the shorter
    core: the trade name (字号) leads a firm's name and its industry follows, so 小米技术 for 小米科技
    is the same trade name with the industry written another way (a shorter shared start, 东方 or
    通达 of a six-character core, is too common a word). Latin cores are compared as they are: an
    English name's first letters are no trade name."""
    start = len(os.path.commonprefix((a.core, b.core)))
    return not a.core.isascii() and start >= 2 and 2 * start >= min(len(a.core), len(b.core))


def _starts_alike(a: NameParts, b: NameParts) -> bool:
    """One name begins with the other (core, or as written): the one kind of short name that a
    matching detail may confirm. Characters picked from a name, or a run inside it (中信 in
    中国信达, 农商行 in 青岛农村商业银行), fit many firms that share an agent's address or a person."""
    pairs = [(a.core, b.core)] + ([(a.written, b.written)] if a.written and b.written else [])
    for x, y in pairs:
        shorter, longer = sorted((x, y), key=len)
        if len(shorter) >= 2 and longer.startswith(shorter):
            return True
    return False


def ranking_similarity(levels: dict[str, str | None], facts: dict[str, object]) -> float:
    """What ranks a capped candidate: the names' similarity, lowered for a place or legal form that disagrees."""
    similarity = float(facts["name"])
    for part in ("place", "legal_form"):
        if levels[part] == "different":
            similarity *= DISAGREEING_PART
    return similarity


class Matcher:
    """Scores subjects against entities with a learned model.

    `records`: the subject is a record from an authority (resolution), not a bare name typed
    into screening. Then a homophone in the same place with the same legal form is the same
    firm mistyped by a pinyin input method; a screened name alone never says so much.
    """

    def __init__(self, model: LinkageModel | None = None, review: float = DEFAULT_REVIEW,
                 auto_link: float = DEFAULT_AUTO_LINK, records: bool = False):
        self.model = model or STARTING_MODEL
        self.review = review
        self.cap = review + UNCONFIRMED_SHARE * (auto_link - review)
        self.records = records

    def score(self, subject: Subject, profile: Profile) -> Scored:
        if subject.person != profile.person or subject.name is None:
            return Scored(profile.entity_id, 0.0, {"reason": "different kinds of subject"})
        compared = compare(subject, profile)
        if compared is None:
            return Scored(profile.entity_id, 0.0, {"reason": "branch and head office are different entities"})
        levels, facts = compared
        probability, weights = self.model.probability(levels)
        corroborated = (levels["legal_representative"] == "same" or levels["address"] == "same"
                        or levels["code"] == "near")
        name = levels["name"]
        # the name alone decides only when it is the same name, in no other place or legal form
        # one real character apart (near) is a twin as often as a typo, and twins share their
        # legal representative or address often enough: only a code one typo away confirms it
        confirmed = (name == "exact" and levels["place"] != "different" and levels["legal_form"] != "different") \
            or (corroborated and (name in ("exact", "homophone") or (name == "short" and facts["starts_alike"]))) \
            or (name == "near" and levels["code"] == "near") \
            or (self.records and name == "homophone" and levels["place"] != "different"
                and not subject.name.core.isascii()  # a name all in pinyin: every character is a homophone
                and levels["legal_form"] == "same" and "different" not in (
                    levels["legal_representative"], levels["address"]))
        if name == "other":
            cap = self.review * BELOW_REVIEW_UNRELATED
        elif name == "fair" and not corroborated:
            cap = self.review * BELOW_REVIEW_FAIR
        else:
            cap = self.cap
        # under a cap, the closer name still ranks first (within a band just under the cap)
        band = CAP_BAND_SHARE * (self.cap - self.review)
        value = probability if confirmed or probability <= cap else cap - band * (1 - ranking_similarity(levels, facts))
        # allow only when no candidate is near: a homophone, a name one character away or the same
        # name in another legal form, in a place that does not disagree, waits for a person whatever
        # the learned weights say (a model that never saw such a level among matches scores it low)
        # At a decision point (not for an authority's record, whose code usually decides) a name sharing
        # most of the core and its trade name's start is near too: 小米技术 was allowed beside the
        # listed 小米科技 ("fair", as is any name sharing an industry word).
        near = name in ("homophone", "near") or (name == "exact" and levels["legal_form"] == "different") \
            or (not self.records and facts["same_start"])
        floored = near and levels["place"] != "different" and value < self.review
        if floored:
            value = self.review + band * ranking_similarity(levels, facts)
        components: dict[str, object] = {
            **facts, "levels": levels, "weights": {k: round(v, 3) for k, v in weights.items()},
            "match_probability": round(probability, 6), "corroborated": corroborated}
        if not confirmed and probability > cap:
            components["capped"] = ("the names are unrelated" if name == "other" else
                                    "the name alone is not enough: no legal representative, address or code agrees")
        if floored:
            components["floored"] = "a near name is never below review: a person looks"
        if levels["code"] == "near":
            components["code"] = 1.0
        if levels["legal_representative"] == "same":
            components["legal_representative"] = 1.0
        return Scored(profile.entity_id, round(value, 4), components)


DEFAULT_MATCHER = Matcher()


def score(subject: Subject, profile: Profile) -> Scored:
    """The score with the starting weights (a store's learned model: `Matcher(model).score`)."""
    return DEFAULT_MATCHER.score(subject, profile)


def code_halves(code: str) -> tuple[str, str]:
    """Blocking keys for codes: a single typo leaves one half intact."""
    middle = len(code) // 2
    return "<" + code[:middle], ">" + code[middle:]
