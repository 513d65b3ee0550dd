"""Server-side sessions (issue 16, item 8): signing out and revoking a credential or a key end a
session at once; a copied cookie stops working; the cookie carries only an opaque id."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
from sqlalchemy import func, select

from websession import WebSession
from worlds import FIRM_DEBTOR, FIRM_SERIOUS, build_world, serving
from xinyong.store import tables as t
from xinyong.store.db import open_engine
from xinyong.web import common


@pytest.fixture
def world(cli, tmp_path):
    return build_world(cli, tmp_path)


def credential(cli, code: str) -> str:
    return json.loads(cli("subject", "credential", "create", code, "--json").stdout)["code"]


def portal(base: str, cli, code: str) -> WebSession:
    web = WebSession(base)
    web.get("/portal")
    assert web.post("/portal/sign-in", {"code": credential(cli, code)}).url.path == "/portal/file"
    return web


def cookie_of(web: WebSession) -> str:
    return next(c.value for c in web.client.cookies.jar if c.name == common.SESSION_COOKIE)


def replay(base: str, cookie: str, path: str) -> httpx.Response:
    """Another browser presenting a copied cookie."""
    with httpx.Client(base_url=base, cookies={common.SESSION_COOKIE: cookie}, follow_redirects=False,
                      timeout=30) as thief:
        return thief.get(path)


def sessions(url: str) -> list[dict]:
    engine = open_engine(url)
    with engine.connect() as c:
        rows = [dict(r) for r in c.execute(select(t.web_sessions)).mappings()]
    engine.dispose()
    return rows


def test_a_copied_cookie_stops_working_once_signed_out(cli, world, db_url):
    with serving(db_url) as base:
        web = portal(base, cli, FIRM_SERIOUS)
        copied = cookie_of(web)
        assert replay(base, copied, "/portal/file").status_code == 200  # the copy works while signed in
        web.post("/portal/sign-out")
        refused = replay(base, copied, "/portal/file")
        assert refused.status_code in (302, 303, 307) and refused.headers["location"].endswith("/portal")
    gone = hashlib.sha256(copied.encode()).hexdigest()
    assert all(row["id_sha256"] != gone and row["subject_entity_id"] is None for row in sessions(db_url))


def test_the_cookie_is_an_opaque_id_kept_hashed(cli, world, db_url):
    with serving(db_url) as base:
        web = portal(base, cli, FIRM_SERIOUS)
        cookie = cookie_of(web)
        assert FIRM_SERIOUS not in cookie and "." not in cookie and len(cookie) >= 40
        rows = sessions(db_url)
        mine = [r for r in rows if r["id_sha256"] == hashlib.sha256(cookie.encode()).hexdigest()]
        assert len(mine) == 1 and mine[0]["subject_entity_id"] is not None
        assert all(cookie not in json.dumps(r, default=str) for r in rows)
        # a sign-in gives a new id: one planted before it is worth nothing after
        planted = WebSession(base)
        planted.get("/portal")
        before = cookie_of(planted)
        planted.post("/portal/sign-in", {"code": credential(cli, FIRM_DEBTOR)})
        assert cookie_of(planted) != before
        assert replay(base, before, "/portal/file").status_code != 200


def test_revoking_a_subjects_credentials_ends_its_sessions(cli, world, db_url):
    with serving(db_url) as base:
        web = portal(base, cli, FIRM_SERIOUS)
        other = portal(base, cli, FIRM_DEBTOR)
        copied = cookie_of(web)
        cli("subject", "credential", "revoke", FIRM_SERIOUS, "--reason", "phone stolen")
        assert replay(base, copied, "/portal/file").status_code != 200
        assert web.get("/portal/file").url.path == "/portal"
        assert other.get("/portal/file").url.path == "/portal/file"  # another subject stays signed in


def test_revoking_a_key_ends_its_console_sessions(cli, world, db_url):
    made = json.loads(cli("authority", "key", "create", "samr", "--scopes", "operate", "--json").stdout)
    with serving(db_url) as base:
        web = WebSession(base)
        web.get("/console")
        assert web.post("/console/sign-in", {"api_key": made["key"]}).url.path == "/console"
        copied = cookie_of(web)
        assert replay(base, copied, "/console/batches").status_code == 200
        cli("authority", "key", "revoke", str(made["id"]))
        engine = open_engine(db_url)
        with engine.connect() as c:
            left = c.execute(select(func.count()).select_from(t.web_sessions)
                             .where(t.web_sessions.c.api_key_id == made["id"])).scalar_one()
        engine.dispose()
        assert left == 0
        assert replay(base, copied, "/console/batches").status_code != 200


def test_an_idle_session_expires_in_the_store(cli, world, db_url, monkeypatch):
    with serving(db_url) as base:
        web = portal(base, cli, FIRM_SERIOUS)
        copied = cookie_of(web)
        monkeypatch.setattr(common, "SESSION_SECONDS", 0)  # (the server runs in this process)
        assert replay(base, copied, "/portal/file").status_code != 200
        monkeypatch.undo()
        assert replay(base, copied, "/portal/file").status_code != 200  # deleted, not just skipped
