"""Keys act only within their authority (issue 16, item 9): no operate or submit for an authority
without competences, batches and rejects and the review queue of the key's own authority only;
keys expire and rotate; the secret is printed once, as one token."""

from __future__ import annotations

import datetime as dt
import json
import re

import httpx
import pytest
from sqlalchemy import text

from websession import WebSession, text_of
from worlds import build_world, serving, write_csv
from xinyong.domain.calendar import pack_today
from xinyong.domain.pack import load_pack
from xinyong.store.db import open_engine


def make_key(cli, authority: str, *options: str) -> dict:
    return json.loads(cli("authority", "key", "create", authority, *options, "--json").stdout)


@pytest.mark.parametrize("scope", ["operate", "submit", "submit:penalty", "screen,operate"])
def test_a_screening_consumer_gets_no_operate_or_submit_key(cli, scope):
    refused = cli("authority", "key", "create", "commercial_bank", "--scopes", scope, ok=False)
    assert refused.exit_code == 1
    assert "commercial_bank has no competences in the pack" in refused.output
    assert "xy_" not in refused.output
    assert make_key(cli, "commercial_bank", "--scopes", "screen,read_restricted")["scopes"] == ["read_restricted",
                                                                                               "screen"]


def test_the_secret_is_printed_once_as_one_token(cli):
    shown = cli("authority", "key", "create", "samr", "--scopes", "screen", "--label", "x" * 300).stdout
    tokens = re.findall(r"xy_[A-Za-z0-9_-]+", shown)
    assert len(tokens) == 1 and shown.splitlines()[-1] == tokens[0] and len(tokens[0]) > 40


def test_expiry_and_rotation(cli, db_url):
    today = pack_today(load_pack("cn"))
    past = cli("authority", "key", "create", "samr", "--scopes", "screen", "--expires",
               (today - dt.timedelta(days=1)).isoformat(), ok=False)
    assert past.exit_code == 1 and "already past" in past.output
    assert cli("authority", "key", "create", "samr", "--scopes", "screen", "--expires", "2026-13-01",
               ok=False).exit_code == 1
    lasting = make_key(cli, "samr", "--scopes", "screen,operate", "--expires", today.isoformat())
    expiring = make_key(cli, "samr", "--scopes", "screen,operate")
    engine = open_engine(db_url)
    with engine.begin() as c:  # as if its last day had passed
        c.execute(text("UPDATE api_keys SET expires_at = :at WHERE id = :id"),
                  {"at": dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1), "id": expiring["id"]})
    engine.dispose()
    rotated = json.loads(cli("authority", "key", "rotate", str(lasting["id"]), "--json").stdout)
    assert rotated["id"] != lasting["id"] and rotated["scopes"] == lasting["scopes"]
    assert rotated["expires_at"] is not None
    with serving(db_url) as base:
        def ping(secret: str) -> httpx.Response:
            return httpx.post(f"{base}/v1/ping", headers={"X-API-Key": secret}, timeout=30)

        assert ping(rotated["key"]).status_code == 200
        assert ping(lasting["key"]).json()["error"]["code"] == "invalid_key"  # replaced by its rotation
        answer = ping(expiring["key"])
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "expired_key"
        web = WebSession(base)
        web.get("/console")
        assert web.post("/console/sign-in", {"api_key": expiring["key"]}).status_code == 401
    assert cli("authority", "key", "rotate", str(lasting["id"]), ok=False).exit_code == 1  # already revoked
    # the expiry was moved in SQL, outside the chain: `audit verify` says so
    tampered = cli("audit", "verify", ok=False)
    assert tampered.exit_code == 1 and f"API key {expiring['id']}: expiry differs" in tampered.output


PENALTY_HEADERS = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"]


def test_a_key_sees_only_its_own_authoritys_batches_and_review_queue(cli, db_url, tmp_path):
    build_world(cli, tmp_path)
    cli("ingest", write_csv(tmp_path / "p.csv", PENALTY_HEADERS, [
        ["深圳某某建没工程有限公司", "", "深市监罚〔2026〕9号", "2026-03-03", "罚款", "1"],  # a typo: to review
        ["", "", "", "2026-03-06", "罚款", "1"],  # no decision number: quarantined
    ]), "--authority", "samr", "--category", "penalty")
    cli("resolve")
    tax = make_key(cli, "tax", "--scopes", "operate,submit")
    samr = make_key(cli, "samr", "--scopes", "operate")
    engine = open_engine(db_url)
    with engine.connect() as c:
        batch = c.execute(text("SELECT MAX(id) FROM batches WHERE authority = 'samr'")).scalar_one()
        waiting = c.execute(text("SELECT COUNT(*) FROM record_links WHERE state = 'review'")).scalar_one()
    engine.dispose()
    with serving(db_url) as base:
        def console(secret: str) -> WebSession:
            web = WebSession(base)
            web.get("/console")
            assert web.post("/console/sign-in", {"api_key": secret}).url.path == "/console"
            return web

        own, other = console(samr["key"]), console(tax["key"])
        assert own.get(f"/console/batches/{batch}").status_code == 200
        assert own.get(f"/console/batches/{batch}/rejects.csv").status_code == 200
        for path in (f"/console/batches/{batch}", f"/console/batches/{batch}/rejects.csv"):
            assert other.get(path).status_code == 404, path
        assert f"/console/batches/{batch}" not in other.get("/console/batches").text
        queue = other.get("/console/review").text
        assert 'action="/console/review/' not in queue
        assert waiting
        ids = re.findall(r'action="/console/review/(\d+)"', own.get("/console/review").text)
        assert ids
        refused = other.post(f"/console/review/{ids[0]}", {"verdict": "reject", "reason": "not ours"})
        assert f"no resolved record {ids[0]} of tax" in text_of(refused.text)
