"""Review 21: a natural person named by a pack's own scheme of persons' numbers (`person: true`)
and verified is identified everywhere the resident ID number is, not only where evaluation lists.
On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import time_machine
from sqlalchemy import select

from test_trust_adversarial import TODAY
from test_trust_adversarial_16 import COURT_HEADERS, court_row
from test_trust_adversarial_19 import PERSON_SSN, SSN, pack_file
from test_person_scheme_subjects import registered
from worlds import run, write_csv
from xinyong.domain.pack import load_pack
from xinyong.services.resolution.resolve import hold_unidentified
from xinyong.store import tables as t
from xinyong.store.db import open_engine


def test_a_person_verified_by_a_packs_scheme_is_not_held_as_unidentified(cli, tmp_path: Path) -> None:
    """John Q. Public, named by the court with his SSN (verified), is linked to his own entity and
    evaluation lists him on that record. `process` withdraws a person's listing supported by too few
    identified records and sends its records back to review as naming nobody (`hold_unidentified`):
    that function still knew only the resident ID number, so his SSN record, which identifies him,
    was moved to review with "person not identified: no valid ID number"."""
    with time_machine.travel(TODAY, tick=False):
        registered(cli, tmp_path)
        court = write_csv(tmp_path / "court.csv", COURT_HEADERS,
                          [court_row("（2026）京0105执100号", "John Q. Public", SSN, "")])
        assert run(cli, "ingest", court, "--authority", "court", "--category", "court_defaulter")["accepted"] == 1
        run(cli, "resolve")
        pack = load_pack(str(pack_file(tmp_path, PERSON_SSN)))
        engine = open_engine(cli.url)
        try:
            with engine.begin() as c:
                record_ids = list(c.execute(select(t.records.c.id).where(t.records.c.subject_code == SSN)).scalars())
                assert record_ids
                assert hold_unidentified(c, pack, record_ids, "test") == []
        finally:
            engine.dispose()
