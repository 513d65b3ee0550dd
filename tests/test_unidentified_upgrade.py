"""A store made before evaluation required a person's valid ID number, upgraded.

Before that rule, a court debtor named with the ID cell empty, masked by the court
(4403051990****0271) or mistyped got a natural person's entity of its own, and the rules listed it.
The rows below are built as such a store holds them: the records as ingested, each linked by a run
(`new`) to a person entity made for it, and listings proposed, notified and in force, written
through evaluation's own writer and the store's transition (so the audit chain holds them).
After the upgrade, `process` withdraws each listing no record naming the person by a valid ID
number supports (with its reason, an audit event, never deleted) and sends those records back to
review; a person identified by the number keeps their listing.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select

from test_due_process import assert_audit_intact
from test_due_rules import COURT_HEADERS, GROUND_1, TAX_HEADERS, resident_id, run, write_csv
from test_person_without_id import MISTYPED, WANG
from xinyong.domain.pack import load_pack
from xinyong.services.lists.evaluate import AGE_NOT_CHECKED, _propose, proposal_writer, rule_in_force
from xinyong.services.operations.integrity import audit_links
from xinyong.store import tables as t
from xinyong.store.db import open_engine
from xinyong.store.listings import transition

PROPOSED, NOTIFIED, EFFECTIVE = dt.date(2025, 8, 10), dt.date(2025, 8, 20), dt.date(2025, 9, 1)
AS_OF = "2025-09-15"
ZHAO = resident_id("440305", dt.date(1980, 3, 1), 45)
UNIDENTIFIED = {"(2025)粤0305执903号": "", "(2025)粤0305执904号": "4403051990****0271",
                "(2025)粤0305执906号": MISTYPED}


def _court_row(case: str, name: str, id_cell: str) -> list[str]:
    return [case, name, id_cell, "深圳市南山区人民法院", "全部未履行", GROUND_1, "2025-08-02"]


def _as_the_old_run_linked_it(c, record_id: int, name: str) -> int:
    """An entity of the record's own, the record linked to it as `new`: the entity's id."""
    now = dt.datetime.now(dt.timezone.utc)
    entity_id = c.execute(t.entities.insert().values(
        key=f"P{secrets.token_hex(8).upper()}", kind="natural_person", verified=False, origin="resolution",
        created_at=now, updated_at=now).returning(t.entities.c.id)).scalar_one()
    c.execute(t.entity_names.insert().values(entity_id=entity_id, name=name, normalised=name, current=True))
    c.execute(t.record_links.update().where(t.record_links.c.record_id == record_id).values(
        state="new", entity_id=entity_id, method="new_entity", score=None,
        explanation={"reason": "a person without a valid ID number is never linked by name"}))
    # as that run wrote it: a run's links are audited, and `audit verify` checks each against its event
    audit_links(c, [(record_id, entity_id, "new", "new_entity")], "resolver", "resolve")
    return entity_id


def _old_store(cli, tmp_path) -> dict[str, int]:
    """Listing ids by case number: three persons known by a name alone (proposed, notified,
    effective), and 赵六, named by his valid ID number (effective)."""
    names = dict(zip(UNIDENTIFIED, ("王小红", "张三", "王小明")))
    rows = [_court_row(case, names[case], id_cell) for case, id_cell in UNIDENTIFIED.items()]
    rows.append(_court_row("(2025)粤0305执905号", "赵六", ZHAO))
    cli("ingest", write_csv(tmp_path / "court.csv", COURT_HEADERS, rows), "--authority", "court",
        "--category", "court_defaulter")
    assert run(cli, "resolve")["in_review"] == 3
    pack = load_pack("cn")
    spec = pack.list_("court_defaulters")
    engine = open_engine(cli.url)
    r, link = t.records.c, t.record_links.c
    now = dt.datetime.now(dt.timezone.utc)
    try:
        with engine.connect() as c, c.begin():
            # a court's key names the debtor too (a case may have several): by case number here
            records = {key.split("#")[0]: record_id for key, record_id in c.execute(select(r.record_key, r.id))}
            evidence = {}
            for case in UNIDENTIFIED:
                record_id = records[f"court:{case}"]
                evidence[_as_the_old_run_linked_it(c, record_id, names[case])] = {record_id: AGE_NOT_CHECKED}
            zhao = c.execute(select(link.entity_id).where(link.record_id == records["court:(2025)粤0305执905号"])
                             ).scalar_one()
            evidence[zhao] = {records["court:(2025)粤0305执905号"]: None}
            with proposal_writer(c) as writer:
                _propose(c, writer, spec, rule_in_force(spec, PROPOSED), PROPOSED, evidence, "evaluator", language="zh")
            by_entity = dict(c.execute(select(t.listings.c.entity_id, t.listings.c.id)).all())
            listing = {case: by_entity[entity_id] for case, entity_id in zip(UNIDENTIFIED, evidence)}
            listing["(2025)粤0305执905号"] = by_entity[zhao]
            for case in list(UNIDENTIFIED)[1:] + ["(2025)粤0305执905号"]:
                listing_id = listing[case]
                for day in (11, 12, 13):  # the three reminders a person is owed before the notice
                    c.execute(t.reminders.insert().values(listing_id=listing_id, on_date=dt.date(2025, 8, day),
                                                          actor="officer", reason="reminder", recorded_at=now))
                transition(c, pack, listing_id, "notified", NOTIFIED, actor="officer", reason="served",
                           changes={"notified_on": NOTIFIED, "objection_deadline": NOTIFIED + dt.timedelta(days=10),
                                    "language": "zh"}, authority="court")
            for case in list(UNIDENTIFIED)[2:] + ["(2025)粤0305执905号"]:
                transition(c, pack, listing[case], "effective", EFFECTIVE, actor="process", reason="window closed",
                           changes={"effective_from": EFFECTIVE, "review_due": dt.date(2026, 3, 1)})
    finally:
        engine.dispose()
    return listing


def test_an_upgraded_store_withdraws_listings_of_persons_no_valid_id_number_identifies(cli, tmp_path):
    listing = _old_store(cli, tmp_path)
    before = {row["id"]: row["state"] for row in run(cli, "listing", "list")}
    assert sorted(before.values()) == ["effective", "effective", "notified", "proposed"]
    assert_audit_intact(cli)

    assert run(cli, "process", "--as-of", AS_OF) == {"effective": 0, "expired": 0, "reviews_due": 0,
                                                      "performed": 0, "withdrawn_unidentified": 3}
    zhao = listing.pop("(2025)粤0305执905号")
    assert run(cli, "listing", "show", zhao)["state"] == "effective"  # identified by his number: kept
    for case, listing_id in listing.items():
        shown = run(cli, "listing", "show", listing_id)  # never deleted: withdrawn, with why and by whom
        assert (shown["state"], shown["end_reason"], shown["ended_on"]) == ("withdrawn", "withdrawn_unidentified",
                                                                            AS_OF), case
        last = shown["transitions"][-1]
        assert (last["from_state"], last["to_state"], last["actor"]) == (before[listing_id], "withdrawn", "process")
        assert last["reason"].startswith("person not identified: no valid ID number")
    # the records wait in review as a run now holds them, with no entity
    waiting = run(cli, "review", "list")
    assert sorted(item["record_key"].split(":", 1)[1].split("#")[0] for item in waiting) == sorted(UNIDENTIFIED)
    assert {item["reason"] for item in waiting} == {"person not identified: no valid ID number"}
    # an audit event for each withdrawal and one for the records held, in an intact chain
    engine = open_engine(cli.url)
    a = t.audit_events.c
    try:
        with engine.connect() as c:
            withdrawn = c.execute(select(a.object_id).where(a.action == "listing.withdrawn")).scalars().all()
            held = c.execute(select(a.payload).where(a.action == "resolution.held_unidentified")).scalars().all()
    finally:
        engine.dispose()
    assert sorted(map(int, withdrawn)) == sorted(listing.values())
    assert len(held) == 1 and len(held[0]["records"]) == 3
    assert_audit_intact(cli)
    # nothing left to withdraw; a later resolve keeps them in review
    assert "withdrawn_unidentified" not in run(cli, "process", "--as-of", AS_OF)
    assert run(cli, "resolve")["in_review"] == 3

    # the court names 王小红 by her ID number: a record of its own (a court's key names the debtor),
    # and she is proposed on it, with her own reminders and notice to come
    cli("ingest", write_csv(tmp_path / "court-again.csv", COURT_HEADERS,
                            [_court_row("(2025)粤0305执903号", "王小红", WANG)]),
        "--authority", "court", "--category", "court_defaulter")
    assert run(cli, "resolve")["new_entities"] == 1  # her entity, by her number
    assert run(cli, "evaluate", "--as-of", AS_OF)["per_list"]["court_defaulters"] == 1


def test_a_re_sent_version_naming_the_person_by_a_valid_id_number_still_counts(cli, tmp_path):
    """A tax authority's case keeps its key when re-sent: the withdrawal for want of identity spent
    nothing, so the version naming the person by her number is proposed anew (a withdrawal after an
    objection or a revocation would have spent every version of the key)."""
    case = ["深税稽〔2025〕41号", "王小红", "", "偷税", "2000000", "8000000", "", "", "2025-05-06"]
    cli("ingest", write_csv(tmp_path / "tax.csv", TAX_HEADERS, [case]), "--authority", "tax",
        "--category", "tax_violation")
    assert run(cli, "resolve")["in_review"] == 1
    pack = load_pack("cn")
    spec = pack.list_("major_tax_violations")
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c, c.begin():
            record_id = c.execute(select(t.records.c.id)).scalar_one()
            entity_id = _as_the_old_run_linked_it(c, record_id, "王小红")
            with proposal_writer(c) as writer:
                _propose(c, writer, spec, rule_in_force(spec, PROPOSED), PROPOSED, {entity_id: {record_id: None}},
                         "evaluator", language="zh")
    finally:
        engine.dispose()
    assert run(cli, "process", "--as-of", AS_OF)["withdrawn_unidentified"] == 1
    case[2] = WANG
    cli("ingest", write_csv(tmp_path / "tax-again.csv", TAX_HEADERS, [case]), "--authority", "tax",
        "--category", "tax_violation")
    assert run(cli, "resolve")["new_entities"] == 1
    assert run(cli, "evaluate", "--as-of", AS_OF)["per_list"]["major_tax_violations"] == 1
    proposed = [row for row in run(cli, "listing", "list") if row["state"] == "proposed"]
    assert [evidence["version"] for evidence in run(cli, "listing", "show", proposed[0]["id"])["evidence"]] == [2]
    assert_audit_intact(cli)
