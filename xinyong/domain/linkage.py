"""Fellegi-Sunter weights learned from the data: m and u probabilities of each comparison.

Pure. A comparison (name, place, legal representative...) takes one of its levels for a pair
of a record and an entity, or is missing (no weight, as Splink's null level). u, the chance of
a level among pairs that are not the same firm, is counted over random pairs; m, its chance
among pairs that are, is counted on labelled matches where they are representative
(`m_from_labels`), and otherwise estimated with the share of matches by expectation
maximisation over the blocked pairs, labels held fixed (`estimate`); the share of matches
alone by EM with m and u held (`estimate_prior`).
The match probability of a pair is the posterior of that mixture; its components (the log2
Bayes factor of each comparison) explain every link.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Levels = dict[str, str | None]  # comparison -> level (None: missing, no evidence either way)

FLOOR = 1e-6  # no level is impossible: an unseen level keeps a finite weight
# How many matched pairs the starting model's m counts for (a Dirichlet prior centred on it):
# m is the posterior mean, so a level never seen among true matches (a homophone, another legal
# form, in a store where none occurred yet) keeps a share of its prior m instead of falling to
# FLOOR, which would make such a pair look like no match at all.
PRIOR_PAIRS = 10.0
EM_ITERATIONS = 40
EM_TOLERANCE = 1e-6
LABEL_PSEUDO_PAIRS = 20.0  # weight of the starting m beside labelled matches


@dataclass
class LinkageModel:
    m: dict[str, dict[str, float]]
    u: dict[str, dict[str, float]]
    prior: float  # share of matches among blocked pairs
    threshold: float | None = None  # match probability meeting the target precision
    trained_on: int = 0  # blocked pairs EM saw
    labelled: int = 0  # of which judged by a person
    notes: dict[str, Any] = field(default_factory=dict)

    def weights(self, levels: Levels) -> dict[str, float]:
        """log2 Bayes factor of each present comparison."""
        out = {}
        for comparison, level in levels.items():
            if level is None or comparison not in self.m:
                continue
            m = self.m[comparison].get(level, FLOOR)
            u = self.u[comparison].get(level, FLOOR)
            out[comparison] = math.log2(max(m, FLOOR) / max(u, FLOOR))
        return out

    def probability(self, levels: Levels) -> tuple[float, dict[str, float]]:
        weights = self.weights(levels)
        return self.posterior(sum(weights.values())), weights

    def posterior(self, evidence: float) -> float:
        """The match probability of a pair whose weights sum to `evidence` (log2)."""
        total = math.log2(self.prior / (1 - self.prior)) + evidence
        total = max(-60.0, min(60.0, total))
        return 1 - 1 / (1 + 2 ** total)

    def probabilities(self, pairs: Sequence[Levels], patterns: Sequence[tuple] | None = None) -> list[float]:
        """`probability` of each pair, computed once per distinct pattern of levels (blocked pairs
        repeat few patterns); `patterns`: the pairs' `level_patterns`, when at hand."""
        patterns = patterns if patterns is not None else level_patterns(pairs)
        known: dict[tuple, float] = {}
        out = []
        for levels, pattern in zip(pairs, patterns):
            p = known.get(pattern)
            if p is None:
                p = known[pattern] = self.probability(levels)[0]
            out.append(p)
        return out

    def as_json(self) -> dict[str, Any]:
        return {"m": self.m, "u": self.u, "prior": self.prior, "threshold": self.threshold,
                "trained_on": self.trained_on, "labelled": self.labelled, "notes": self.notes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "LinkageModel":
        return cls(m=data["m"], u=data["u"], prior=data["prior"], threshold=data.get("threshold"),
                   trained_on=data.get("trained_on", 0), labelled=data.get("labelled", 0),
                   notes=data.get("notes", {}))


def level_patterns(pairs: Sequence[Levels]) -> list[tuple]:
    """Each pair's levels as a hashable pattern (the same levels in the same order: the same weights)."""
    return [tuple(levels.items()) for levels in pairs]


def _smoothed(counts: dict[str, float], levels: Sequence[str], prior: dict[str, float],
              pseudo_pairs: float = PRIOR_PAIRS) -> dict[str, float]:
    """m of each level: the posterior mean of its share among matches, `pseudo_pairs` pseudo-matches
    spread as the starting m (`prior`; evenly when it has none for these levels)."""
    weights = {level: prior.get(level, 0.0) for level in levels}
    spread = sum(weights.values())
    weights = {level: w / spread for level, w in weights.items()} if spread > 0 \
        else {level: 1 / len(levels) for level in levels}
    total = sum(counts.get(level, 0.0) for level in levels) + pseudo_pairs
    return {level: max(FLOOR, (counts.get(level, 0.0) + pseudo_pairs * weights[level]) / total) for level in levels}


def estimate_u(samples: Iterable[Levels], comparisons: dict[str, Sequence[str]]) -> dict[str, dict[str, float]]:
    """u of each level: its share among random pairs (add-one smoothing: a level never seen is rare, not impossible)."""
    counts: dict[str, dict[str, float]] = {c: {level: 0.0 for level in levels} for c, levels in comparisons.items()}
    for levels in samples:
        for comparison, level in levels.items():
            if level is not None and comparison in counts:
                counts[comparison][level] = counts[comparison].get(level, 0.0) + 1
    out = {}
    for comparison, levels in comparisons.items():
        seen = sum(counts[comparison].values())
        out[comparison] = {level: (counts[comparison][level] + 0.5) / (seen + 0.5 * len(levels)) for level in levels}
    return out


def estimate(pairs: Sequence[Levels], labels: Sequence[bool | None], start: LinkageModel,
             comparisons: dict[str, Sequence[str]]) -> LinkageModel:
    """EM over blocked pairs: m of each level and the prior; u stays as counted on random pairs.
    m is smoothed toward the starting model's (see PRIOR_PAIRS): what the data never showed keeps its prior.

    A pair with a label (a judgement) keeps it: its posterior is 1 or 0 at every step.
    """
    if not pairs:
        return start
    m, prior = {c: dict(v) for c, v in start.m.items()}, start.prior
    model = LinkageModel(m, start.u, prior)
    patterns = level_patterns(pairs)
    for _ in range(EM_ITERATIONS):
        counts: dict[str, dict[str, float]] = {c: {} for c in comparisons}
        matched = 0.0
        for levels, label, probability in zip(pairs, labels, model.probabilities(pairs, patterns)):
            p = (1.0 if label else 0.0) if label is not None else probability
            matched += p
            for comparison, level in levels.items():
                if level is not None and comparison in counts:
                    counts[comparison][level] = counts[comparison].get(level, 0.0) + p
        new_m = {c: _smoothed(counts[c], levels, start.m.get(c, {})) for c, levels in comparisons.items()}
        new_prior = min(1 - FLOOR, max(FLOOR, matched / len(pairs)))
        change = abs(new_prior - model.prior) + max(
            abs(new_m[c][level] - model.m[c].get(level, 0.0)) for c in comparisons for level in comparisons[c])
        model = LinkageModel(new_m, model.u, new_prior)
        if change < EM_TOLERANCE:
            break
    model.trained_on = len(pairs)
    model.labelled = sum(label is not None for label in labels)
    return model


def m_from_labels(pairs: Sequence[Levels], labels: Sequence[bool | None], start: dict[str, dict[str, float]],
                  comparisons: dict[str, Sequence[str]], pseudo_pairs: float = LABEL_PSEUDO_PAIRS
                  ) -> dict[str, dict[str, float]]:
    """m of each level: its share among the pairs labelled as matches, as a supervised linker
    counts it. The starting m counts as `pseudo_pairs` labelled matches, so that a level no
    labelled match shows (labels from codes quote names as registered: few homophones) is rare,
    not impossible."""
    counts: dict[str, dict[str, float]] = {c: {} for c in comparisons}
    for levels, label in zip(pairs, labels):
        if not label:
            continue
        for comparison, level in levels.items():
            if level is not None and comparison in counts:
                counts[comparison][level] = counts[comparison].get(level, 0.0) + 1
    return {c: _smoothed(counts[c], levels, start.get(c, {}), pseudo_pairs) for c, levels in comparisons.items()}


def estimate_prior(pairs: Sequence[Levels], labels: Sequence[bool | None], model: LinkageModel,
                   patterns: Sequence[tuple] | None = None) -> float:
    """The share of matches among blocked pairs by EM with m and u held: the one free parameter
    of the mixture (labelled pairs keep their label). `patterns`: the pairs' `level_patterns`, when at hand."""
    prior = model.prior
    # m and u are held: each pair's evidence (its weights' sum) is the same at every step
    known: dict[tuple, float] = {}
    evidence = []
    for levels, pattern in zip(pairs, patterns if patterns is not None else level_patterns(pairs)):
        weight = known.get(pattern)
        if weight is None:
            weight = known[pattern] = sum(model.weights(levels).values())
        evidence.append(weight)
    for _ in range(EM_ITERATIONS):
        current = LinkageModel(model.m, model.u, prior)
        matched = sum((1.0 if label else 0.0) if label is not None else current.posterior(weight)
                      for weight, label in zip(evidence, labels))
        new_prior = min(1 - FLOOR, max(FLOOR, matched / len(pairs)))
        if abs(new_prior - prior) < EM_TOLERANCE:
            return new_prior
        prior = new_prior
    return prior


def threshold_for_precision(probabilities: Iterable[float], target: float) -> float:
    """The lowest match probability such that the pairs at or above it are, by the model's own
    estimate (the mean of their probabilities), at least `target` precise."""
    ranked = sorted(probabilities, reverse=True)
    best, running = 1.0, 0.0
    for count, p in enumerate(ranked, start=1):
        running += p
        if running / count >= target:
            best = p
    return best
