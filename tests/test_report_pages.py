"""A credit report never ends on a page holding the notes alone (en and fr run longer than zh),
checked on the demo's firms with the most records, the report's text read back with pdftotext."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import Cli
from xinyong.domain.calendar import pack_today
from xinyong.domain.pack import load_pack
from xinyong.services.publication.report import issue_report
from xinyong.store import tables as t
from xinyong.store.db import open_engine

NOTES = {"en": "Notes", "fr": "Remarques"}


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) is needed")
def test_the_notes_never_stand_alone_on_the_last_page(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'store.db'}")
    cli("demo", "--no-serve", "--entities", "800", "--out", tmp_path / "demo")
    engine = open_engine(cli.url)
    pack = load_pack("cn")
    try:
        e, r, link = t.entities.c, t.records.c, t.record_links.c
        with engine.connect() as c:
            keys = [row.key for row in c.execute(
                select(e.key).join(t.record_links, link.entity_id == e.id).join(t.records, r.id == link.record_id)
                .where(e.kind == "enterprise").group_by(e.key).order_by(func.count().desc(), e.key).limit(8))]
        checked = 0
        for key in keys:
            for lang, heading in NOTES.items():
                pdf = tmp_path / f"{key}-{lang}.pdf"
                pdf.write_bytes(issue_report(engine, pack, key, lang, pack_today(pack)).pdf)
                pages = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                                       check=True).stdout.split("\f")
                pages = [p for p in pages if p.strip()]
                if len(pages) > 1:
                    checked += 1
                    lines = [line.strip() for line in pages[-1].splitlines() if line.strip()]
                    # lines[0] is the running header (report title, verification code)
                    assert not lines[1].startswith(heading), (key, lang, pages[-1][:300])
        assert checked > 0
    finally:
        engine.dispose()
