"""Probe: the console's grade page needs the operate scope (README: "/console/simulate,
/console/grade | with operate"); the API's equivalent needs read_restricted and a purpose.

`web/console.py` `grade_page` never calls `_need_operate`: a key that may only upload penalty files
(`submit:penalty`) signs in to the console and reads an enterprise's supervision grade with every
point, and the grade is stored as shared with its authority for the purpose "supervision" and audited.
"""

from __future__ import annotations

from sqlalchemy import func, select

from test_web_console import console, key
from websession import text_of
from worlds import FIRM_PROPOSED, build_world, serving
from xinyong.store import tables as t
from xinyong.store.db import open_engine


def shared_grades(url: str) -> int:
    engine = open_engine(url)
    try:
        with engine.connect() as c:
            return c.execute(select(func.count()).select_from(t.grades_shared)).scalar_one()
    finally:
        engine.dispose()


def test_an_upload_only_key_cannot_read_a_supervision_grade_in_the_console(cli, tmp_path):
    build_world(cli, tmp_path)
    upload_key, _ = key(cli, "samr", "submit:penalty")
    with serving(cli.url) as base:
        web = console(base, upload_key)
        refused_elsewhere = web.get("/console/simulate").status_code  # needs operate: refused
        page = web.get("/console/grade", params={"entity": FIRM_PROPOSED})
    assert refused_elsewhere == 403
    assert (page.status_code, shared_grades(cli.url)) == (403, 0), \
        f"status {page.status_code}, grades shared {shared_grades(cli.url)}: {text_of(page.text)[:300]}"
