"""Comparing a record's subject with an entity: name cores, scores with their components.

Pure. The rules for names (legal forms, branch markers, place names) come from the pack.
A score is in [0, 1] and always comes with the components that made it, so that every
link can be explained and every review shows why it is there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rapidfuzz.fuzz import ratio

from xinyong.domain.names import normalise_name
from xinyong.domain.pack import NameRulesSpec


@dataclass(frozen=True, slots=True)
class NameParts:
    core: str  # the distinctive part: trade name and industry, without place or legal form
    legal_form: str | None
    region: str | None
    branch: str | None  # the branch part (上海分公司), None for a head office or sole entity

    @property
    def key(self) -> str:
        """Exact-match key: everything but the place prefix, legal forms unified."""
        return f"{self.core}|{self.legal_form or ''}|{self.branch or ''}"


class NameAnalyser:
    """Splits names into parts by the pack's rules; compiled once per pack."""

    def __init__(self, rules: NameRulesSpec):
        forms = sorted(((normalise_name(v), c) for v, c in rules.legal_forms.items()),
                       key=lambda p: -len(p[0]))
        self.forms = [(variant, canonical) for variant, canonical in forms if variant]
        self.branch_markers = tuple(normalise_name(m) for m in rules.branch_markers)
        places = "|".join(sorted((re.escape(normalise_name(r)) for r in rules.region_names), key=len, reverse=True))
        suffixes = "|".join(re.escape(x) for x in sorted(rules.region_suffixes, key=len, reverse=True))
        districts = "|".join(re.escape(x) for x in rules.district_suffixes)
        self.protected = frozenset(normalise_name(w) for w in rules.protected_words)
        if places:
            suffix = f"(?P<suffix>{suffixes})?" if suffixes else ""
            district = f"(?:(?:{places})(?:{districts}))?" if districts else ""
            # a place at the start (北京市 / 北京), possibly with a known district (朝阳区)
            self.leading = re.compile(f"^(?P<place>{places}){suffix}{district}")
            self.bracketed = re.compile(f"\\((?P<place>{places})(?:{suffixes})?\\)" if suffixes
                                        else f"\\((?P<place>{places})\\)")
        else:
            self.leading = self.bracketed = None

    def parts(self, name: str) -> NameParts:
        text = normalise_name(name)
        branch = None
        marker = next((m for m in self.branch_markers if text.endswith(m)), None)
        if marker:
            form_end = self._end_of_last_form(text[: -len(marker)]) or len(text) - len(marker)
            text, branch = text[:form_end], text[form_end:]
        region = None
        if self.bracketed is not None:
            found = self.bracketed.search(text)
            if found:
                region = found.group("place")
                text = text[:found.start()] + text[found.end():]
            found = self.leading.match(text)
            if found and found.end() < len(text):
                region = region or found.group("place")
                end = found.end()
                suffix = found.group("suffix") if "suffix" in found.re.groupindex else None
                if suffix and text[found.end("suffix") - 1:found.end("suffix") + 1] in self.protected:
                    end = found.end("place")  # the suffix starts a word of the trade name
                text = text[end:]
        legal_form = None
        for variant, canonical in self.forms:
            if text.endswith(variant) and len(text) > len(variant):
                legal_form, text = canonical, text[: -len(variant)]
                break
        if branch and self.leading is not None:
            # 上海分公司 and 上海市分公司 are the same branch
            branch = self.leading.sub(lambda m: m.group("place"), branch) or branch
        return NameParts(text, legal_form, region, branch)

    def _end_of_last_form(self, text: str) -> int | None:
        """Where the head office's name ends: after its last legal form."""
        best = None
        for variant, _ in self.forms:
            at = text.rfind(variant)
            if at > 0 and (best is None or at + len(variant) > best):
                best = at + len(variant)
        return best


def bigrams(text: str) -> set[str]:
    if len(text) < 2:
        return {text} if text else set()
    return {text[i:i + 2] for i in range(len(text) - 1)}


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


@dataclass(slots=True)
class Profile:
    """What the store knows about an entity, for comparison."""

    entity_id: int
    names: list[NameParts]
    codes: list[str] = field(default_factory=list)
    legal_rep: str | None = None
    person: bool = False


@dataclass(frozen=True, slots=True)
class Scored:
    entity_id: int
    score: float
    components: dict[str, float | str | None]


def score(subject: Subject, profile: Profile) -> Scored:
    """Similarity of a subject and an entity, with the evidence for it.

    name: edit similarity of the name cores (best over current and former names);
    legal form and place: small penalties when both are known and differ; a branch never
    matches its head office; a code one typo away from the entity's, or the same legal
    representative, lifts the score.
    """
    if subject.person != profile.person or subject.name is None:
        return Scored(profile.entity_id, 0.0, {"reason": "different kinds of subject"})
    best, best_name = 0.0, None
    for name in profile.names:
        if (subject.name.branch is None) != (name.branch is None):
            continue
        if subject.name.branch and ratio(subject.name.branch, name.branch) < 90:
            continue
        similarity = ratio(subject.name.core, name.core) / 100
        if subject.name.legal_form and name.legal_form and subject.name.legal_form != name.legal_form:
            similarity *= 0.9
        if subject.name.region and name.region and subject.name.region != name.region:
            similarity *= 0.85
        if similarity > best:
            best, best_name = similarity, name
    if best_name is None:
        return Scored(profile.entity_id, 0.0, {"reason": "branch and head office are different entities"})
    components: dict[str, float | str | None] = {"name": round(best, 4), "matched_name": best_name.key}
    total = best
    if subject.code and any(code_is_near(subject.code, c) for c in profile.codes):
        components["code"] = 1.0
        total = 0.5 + 0.5 * best
    if subject.legal_rep and profile.legal_rep and subject.legal_rep == profile.legal_rep:
        components["legal_representative"] = 1.0
        total = min(1.0, total + 0.15)
    return Scored(profile.entity_id, round(total, 4), components)


def code_halves(code: str) -> tuple[str, str]:
    """Blocking keys for codes: a single typo leaves one half intact."""
    middle = len(code) // 2
    return "<" + code[:middle], ">" + code[middle:]
