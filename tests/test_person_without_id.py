"""A natural person's court record whose ID cell is empty or already masked by the court.

The Supreme People's Court publishes defaulters' ID numbers partly masked (4403051990****0271), and
clerks leave the cell empty. Such a row, in a category that records persons, has a person's name
(pack `person_names`) and no usable code: it is a natural person, owed what persons are owed (the
three formal reminders before notice, `reminders_required: {natural_person: 3}`; the age test, noted
on the evidence when no ID number allows it), with a salted opaque key, and no public page before a
listing.
"""

from __future__ import annotations

import pytest

from test_due_rules import COURT_HEADERS, GROUND_1, listings, run, show, write_csv


@pytest.mark.parametrize("id_cell", ["", "4403051990****0271"], ids=["empty", "masked-by-the-court"])
def test_a_person_named_court_debtor_without_a_usable_id_is_a_person_owed_three_reminders(cli, tmp_path, id_cell):
    court = write_csv(tmp_path / "court.csv", COURT_HEADERS, [
        ["(2025)粤0305执903号", "王小红", id_cell, "深圳市南山区人民法院", "全部未履行", GROUND_1, "2025-08-02"]])
    cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    assert run(cli, "evaluate", "--as-of", "2025-09-15")["proposals"] == 1
    (listing,) = run(cli, "listing", "list")
    data = show(cli, listing["id"])
    notified = cli("listing", "notify", listing["id"], "--on", "2025-09-16", "--actor", "officer", "--reason",
                   "served", ok=False)
    assert (data["subject_kind"], notified.exit_code != 0) == ("natural_person", True), \
        f"subject_kind={data['subject_kind']}, notice without any reminder exited {notified.exit_code}"
    assert [e["note"] for e in data["evidence"]] == ["age not checked: no ID number"]


@pytest.mark.parametrize("id_cell", ["", "4403051990****0271"], ids=["empty", "masked-by-the-court"])
def test_a_person_named_court_debtor_without_a_usable_id_is_not_public_before_any_listing(cli, tmp_path, id_cell):
    import datetime as dt

    from sqlalchemy import select

    from xinyong.domain.pack import load_pack
    from xinyong.services.resolution.entities import EntityNotFound, public_file
    from xinyong.store import tables as t
    from xinyong.store.db import open_engine

    court = write_csv(tmp_path / "court.csv", COURT_HEADERS, [
        ["(2025)粤0305执904号", "王小红", id_cell, "深圳市南山区人民法院", "全部未履行", GROUND_1, "2025-08-02"]])
    cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            (key,) = c.execute(select(t.entities.c.key)).scalars().all()
        assert key.startswith("P"), f"the person 王小红 has a key {key} that is not a person's (salted P...)"
        try:
            shown = public_file(engine, load_pack("cn"), key, dt.date(2025, 8, 10))
        except EntityNotFound:
            return
    finally:
        engine.dispose()
    pytest.fail(f"the person 王小红 ({key}) is public with no listing, as a {shown['kind']}: {shown['name']}")
