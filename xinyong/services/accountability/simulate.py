"""Rule-impact simulation: whom a candidate pack would list, against the active pack, writing nothing.

Both evaluations run here, at the same as-of date, over the same store: the active pack's
rules in force and the candidate's (an overlay such as `cn-pilot`, or a new rule version in
its comment period, applied as if in force). The diff is between the two evaluations, never
against current listings. The queries are the evaluation stage's own
(`services.lists.evaluate.rule_in_force`, `qualifying_query(..., include_listed=True)` and
`without_spent_decisions`), run in a read-only connection that is rolled back: no row is written
and the audit chain does not move.

A list whose query is the same SQL with the same parameters under both packs is run once.
Examples name enterprises only, never natural persons (they are counted in the summaries).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import Engine, select

from xinyong.domain.decisions import IN_FORCE
from xinyong.domain.identifiers import mask_record_key
from xinyong.domain.pack import ListSpec, Pack, RuleSpec
from xinyong.services.lists.evaluate import qualifying_query, rule_in_force, without_spent_decisions
from xinyong.store import tables as t
from xinyong.store.plans import plan_for_the_whole_register

EXAMPLES_PER_LIST = 50
CHUNK = 900  # under every engine's bound-parameter limit

Pairs = dict[str, dict[int, set[int]]]  # list -> entity id -> evidence record ids


def candidate_rule(spec: ListSpec, as_of: dt.date) -> RuleSpec | None:
    """The candidate's rule as of `as_of`, a version in its comment period applied as if in force.

    A version published on or before `as_of` whose comment period (or effective date) is still
    ahead wins over the rule in force, and reaches back as far as the rule it would replace (so
    the two evaluations look at the same records): its `applies_from` becomes that rule's."""
    current = rule_in_force(spec, as_of)
    pending = [(r.published, i, r) for i, r in enumerate(spec.rules)
               if r.applies_from > as_of and r.published is not None and r.published <= as_of]
    if not pending:
        return current
    _, _, rule = max(pending, key=lambda item: item[:2])
    reach = current.applies_from if current is not None else min(rule.effective, rule.published or rule.effective)
    return rule.model_copy(update={"effective": reach, "published": None, "comment_period_days": 0})


def _compiled(engine: Engine, query: Any) -> tuple[str, str]:
    compiled = query.compile(dialect=engine.dialect)
    return str(compiled), repr(sorted((k, repr(v)) for k, v in compiled.params.items()))


def _qualifying(engine: Engine, connection: Any, pack: Pack, as_of: dt.date, candidate: bool,
                cache: dict[tuple[str, Any], dict[int, set[int]]], runs: Counter, reuse: bool = True) -> Pairs:
    found: Pairs = {}
    for spec in pack.lists:
        rule = candidate_rule(spec, as_of) if candidate else rule_in_force(spec, as_of)
        if rule is None:
            found[spec.code] = {}
            continue
        query = qualifying_query(pack, spec, rule, as_of, include_listed=True)
        signature = _compiled(engine, query) if reuse else (f"{candidate} {spec.code}", "")
        if signature not in cache:
            evidence: dict[int, set[int]] = defaultdict(set)
            for entity_id, record_id, _note in connection.execute(query):
                evidence[entity_id].add(record_id)
            cache[signature] = dict(evidence)
            runs["queries"] += 1
        else:
            runs["reused"] += 1
        # as evaluation proposes: an ended listing's decision re-sent under another key qualifies nobody
        evidence = {entity_id: dict.fromkeys(records) for entity_id, records in cache[signature].items()}
        without_spent_decisions(connection, spec, rule, evidence)
        found[spec.code] = {entity_id: set(records) for entity_id, records in evidence.items()}
    return found


def _bound(pack: Pack, pairs: Pairs) -> dict[tuple[str, str], set[int]]:
    """(measure, action) -> entities the measure would bind: those qualifying for one of its lists."""
    bound: dict[tuple[str, str], set[int]] = {}
    for measure in pack.measures:
        entities: set[int] = set()
        for code in measure.lists:
            entities |= set(pairs.get(code, {}))
        for action in measure.actions:
            bound[(measure.code, action)] = entities
    return bound


def _entities(connection: Any, ids: set[int]) -> dict[int, dict[str, Any]]:
    e, i = t.entities.c, t.entity_identifiers.c
    out: dict[int, dict[str, Any]] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        part = ordered[start:start + CHUNK]
        for row in connection.execute(select(e.id, e.key, e.kind, e.region).where(e.id.in_(part))):
            out[row.id] = {"key": row.key, "kind": row.kind, "region": row.region}
        # every identifier of these entities (a few each), the scheme tested here: with `scheme = 'uscc'`
        # in the query SQLite walks the (scheme, value) index, every USCC of the register per chunk
        for entity_id, scheme, value in connection.execute(select(i.entity_id, i.scheme, i.value).where(
                i.entity_id.in_(part))):
            entry = out.get(entity_id)
            if scheme == "uscc" and entry is not None and not entry["region"] and len(value) >= 8:
                entry["region"] = value[2:8]  # positions 3-8 of the USCC: the registering division
    return out


def _record_keys(connection: Any, ids: set[int]) -> dict[int, str]:
    r = t.records.c
    out: dict[int, str] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        out.update(connection.execute(select(r.id, r.record_key).where(r.id.in_(ordered[start:start + CHUNK]))).all())
    return out


def _in_force(connection: Any, as_of: dt.date) -> list[Any]:
    L = t.listings.c
    return connection.execute(select(L.id, L.entity_id, L.list_code).where(
        L.state.in_(IN_FORCE), L.effective_from <= as_of,
        (L.effective_to.is_(None)) | (L.effective_to > as_of)).order_by(L.id)).all()


def simulate(engine: Engine, active: Pack, candidate: Pack, as_of: dt.date, *, public: bool = False,
             examples: int = EXAMPLES_PER_LIST, candidate_ref: str | None = None,
             reuse: bool = True) -> dict[str, Any]:
    """The diff between the active pack's and the candidate's evaluations as of `as_of`.

    `reuse=False` runs every list's query under both packs even when it is the same (the bench's
    worst case)."""
    started = time.perf_counter()
    cache: dict[tuple[str, Any], dict[int, set[int]]] = {}
    runs: Counter = Counter()
    with engine.connect() as connection:
        try:
            plan_for_the_whole_register(connection)
            before = _qualifying(engine, connection, active, as_of, False, cache, runs, reuse)
            after = _qualifying(engine, connection, candidate, as_of, True, cache, runs, reuse)
            listings = _in_force(connection, as_of)
            gained_pairs = [(code, e) for code, found in after.items() for e in found if e not in before.get(code, {})]
            lost_pairs = [(code, e) for code, found in before.items() for e in found if e not in after.get(code, {})]
            candidate_lists = {spec.code: spec for spec in candidate.lists}
            unsupported = [row for row in listings
                           if row.entity_id not in after.get(row.list_code, {})
                           and (row.entity_id in before.get(row.list_code, {})
                                or row.list_code not in candidate_lists
                                or candidate_rule(candidate_lists[row.list_code], as_of) is None)]
            people = {e for _, e in gained_pairs} | {e for _, e in lost_pairs} | {r.entity_id for r in unsupported}
            info = _entities(connection, people)
            evidence_ids: set[int] = set()
            if not public:
                for pairs, found in ((gained_pairs, after), (lost_pairs, before)):
                    for code, e in pairs:
                        evidence_ids |= found[code][e]
            listing_evidence: dict[int, list[int]] = defaultdict(list)
            if not public and unsupported:
                ids = [row.id for row in unsupported]
                for start in range(0, len(ids), CHUNK):
                    for listing_id, record_id in connection.execute(select(
                            t.listing_evidence.c.listing_id, t.listing_evidence.c.record_id).where(
                            t.listing_evidence.c.listing_id.in_(ids[start:start + CHUNK]))):
                        listing_evidence[listing_id].append(record_id)
                        evidence_ids.add(record_id)
            keys = _record_keys(connection, evidence_ids) if evidence_ids else {}
        finally:
            connection.rollback()  # nothing was written; say so to the engine as well

    def authority_of(pack: Pack, code: str) -> str:
        return next((s.authority for s in pack.lists if s.code == code), "?")

    def examples_of(pairs: list[tuple[str, int]], found: Pairs) -> list[dict[str, Any]]:
        shown: Counter = Counter()
        out = []
        for code, e in sorted(pairs, key=lambda p: (p[0], info[p[1]]["key"])):
            if info[e]["kind"] == "natural_person" or shown[code] >= examples:
                continue  # never a person in an example; they are counted below
            shown[code] += 1
            out.append({"entity": info[e]["key"], "list": code, "region": info[e]["region"],
                        "evidence": sorted(mask_record_key(keys[r]) for r in found[code][e])})
        return out

    by_list: dict[str, dict[str, int]] = {}
    for code in sorted(set(before) | set(after)):
        by_list[code] = {"active": len(before.get(code, {})), "candidate": len(after.get(code, {})),
                         "newly_proposed": 0, "no_longer_qualify": 0, "no_longer_supported": 0}
    by_region: dict[str, dict[str, int]] = defaultdict(lambda: {"newly_proposed": 0, "no_longer_qualify": 0})
    by_authority: dict[str, dict[str, int]] = defaultdict(lambda: {"newly_proposed": 0, "no_longer_qualify": 0})
    for direction, pairs, pack in (("newly_proposed", gained_pairs, candidate), ("no_longer_qualify", lost_pairs, active)):
        for code, e in pairs:
            by_list[code][direction] += 1
            by_region[info[e]["region"] or "unknown"][direction] += 1
            by_authority[authority_of(pack, code)][direction] += 1
    for row in unsupported:
        by_list.setdefault(row.list_code, {"active": 0, "candidate": 0, "newly_proposed": 0, "no_longer_qualify": 0,
                                           "no_longer_supported": 0})["no_longer_supported"] += 1
    bound_before, bound_after = _bound(active, before), _bound(candidate, after)
    gained: Counter = Counter()
    lost: Counter = Counter()
    for pair in set(bound_before) | set(bound_after):
        old, new = bound_before.get(pair, set()), bound_after.get(pair, set())
        if len(new - old):
            gained[pair[1]] += len(new - old)
        if len(old - new):
            lost[pair[1]] += len(old - new)
    result: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "pack": candidate_ref or candidate.code,
        "candidate": {"code": candidate.code, "version": candidate.version},
        "active": {"code": active.code, "version": active.version},
        "public": public,
        "newly_proposed_count": len(gained_pairs),
        "no_longer_qualify_count": len(lost_pairs),
        "no_longer_supported_count": len(unsupported),
        "newly_proposed": [] if public else examples_of(gained_pairs, after),
        "no_longer_qualify": [] if public else examples_of(lost_pairs, before),
        "no_longer_supported": [] if public else [
            {"listing": row.id, "entity": info[row.entity_id]["key"], "list": row.list_code,
             "evidence": sorted(mask_record_key(keys[r]) for r in listing_evidence.get(row.id, []))}
            for row in unsupported if info[row.entity_id]["kind"] != "natural_person"][:examples * 4],
        "measures_gained": dict(sorted(gained.items())),
        "measures_lost": dict(sorted(lost.items())),
        "by_list": by_list,
        "by_region": dict(sorted(by_region.items())),
        "by_authority": dict(sorted(by_authority.items())),
        "queries": {"run": runs["queries"], "reused": runs["reused"]},
        "seconds": round(time.perf_counter() - started, 2),
    }
    return result
