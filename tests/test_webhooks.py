"""Watchlists and webhook alerts, with a real receiver killed mid-delivery (SQLite and PostgreSQL).

The receiver is `tests/webhook_receiver.py` in its own process: one request at a time, slowly,
logging each body and signature before it answers. The changes come from the CLI in another
process; `serve` (the app under uvicorn) captures them, fans them out and delivers them. The
receiver is killed while events are in flight and started again on the same port: every event
about a watched entity must arrive (at least once, with a valid signature, the same event_id).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from worlds import FIRM_CLEAN, FIRM_DEBTOR, FIRM_PROPOSED, FIRM_SERIOUS, NAMES, PERSON, build_world, serving, write_csv
from xinyong.services.publication.webhooks import backoff, delivery_log
from xinyong.store import tables as t
from xinyong.store.db import get_setting, open_engine

RECEIVER = Path(__file__).with_name("webhook_receiver.py")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_receiver(port: int, log: Path, delay: float) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, str(RECEIVER), str(port), str(log), str(delay), "threaded"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def received(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def xinyong(url: str, *args: Any) -> str:
    """The CLI in a process of its own, as an operator runs it beside the server."""
    done = subprocess.run([sys.executable, "-m", "xinyong", "--db", url, *map(str, args)], capture_output=True,
                          text=True, env={**os.environ}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def wait_for(condition, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def key(cli, authority: str, *scopes: str) -> str:
    return json.loads(cli("authority", "key", "create", authority, "--scopes", ",".join(scopes), "--rate", "1000",
                          "--burst", "1000", "--json").stdout)["key"]


def test_events_reach_a_receiver_killed_mid_delivery(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listings = build_world(cli, tmp_path)
    bank, other = key(cli, "commercial_bank", "screen"), key(cli, "procurement_centre", "screen")
    monkeypatch.setenv("XINYONG_WEBHOOK_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("XINYONG_WEBHOOK_MAX_BACKOFF_SECONDS", "2")
    port, log = free_port(), tmp_path / "received.jsonl"
    receiver = start_receiver(port, log, 0.5)  # slow: the kill finds events in flight
    engine = open_engine(cli.url)
    try:
        with serving(cli.url, webhook_interval=0.2) as base, httpx.Client(base_url=base, timeout=30) as http:
            wait_for(lambda: _setting(engine, "opendata.position"), 60, "the baseline capture")
            hook = f"http://127.0.0.1:{port}/hook"
            watched = [FIRM_SERIOUS, FIRM_DEBTOR, FIRM_CLEAN]
            made = http.post("/v1/subscriptions", json={"entities": watched, "url": hook},
                             headers={"X-API-Key": bank})
            assert made.status_code == 201, made.text
            subscription, secret = made.json()["id"], made.json()["secret"]
            assert len(secret) == 64
            # another consumer sees nothing of it; without a screen key nothing at all
            assert http.get(f"/v1/subscriptions/{subscription}", headers={"X-API-Key": other}).status_code == 404
            assert http.get(f"/v1/subscriptions/{subscription}").status_code == 401
            # private and loopback URLs are refused unless the setting allows them
            monkeypatch.delenv("XINYONG_WEBHOOK_ALLOW_PRIVATE")
            for url in (hook, "http://10.0.0.1/x", "http://[::1]:8/x", "http://169.254.169.254/latest", "ftp://x.cn/"):
                refused = http.post("/v1/subscriptions", json={"entities": watched, "url": url},
                                    headers={"X-API-Key": bank})
                assert refused.status_code in (403, 422), refused.text
                assert refused.json()["error"]["code"] in ("private_url", "invalid_url", "invalid_request")
            monkeypatch.setenv("XINYONG_WEBHOOK_ALLOW_PRIVATE", "1")
            # a natural person: by key only, for a purpose, under the list's legal basis
            person = _entity_key(engine, PERSON)
            assert http.post("/v1/subscriptions", json={"entities": [PERSON], "url": hook},
                             headers={"X-API-Key": bank}).json()["error"]["code"] == "person_by_key"
            assert http.post("/v1/subscriptions", json={"entities": [person], "url": hook},
                             headers={"X-API-Key": bank}).json()["error"]["code"] == "purpose_missing"
            watched_person = http.post("/v1/subscriptions", json={"entities": [person], "url": hook,
                                                                  "purpose": "credit_approval"},
                                       headers={"X-API-Key": bank})
            assert watched_person.status_code == 201 and watched_person.json()["legal_basis"]
            gone = http.delete(f"/v1/subscriptions/{watched_person.json()['id']}", headers={"X-API-Key": bank})
            assert gone.status_code == 200

            # changes by the CLI in another process: 40 new penalties, one revoked, a court listing ended
            rows = [[NAMES[firm], firm, f"京市监罚〔2026〕{n}号", "2026-12-01", "罚款", "1"]
                    for n, firm in enumerate([FIRM_CLEAN, FIRM_DEBTOR] * 20, start=100)]
            penalties = write_csv(tmp_path / "more.csv", ["当事人名称", "统一社会信用代码", "行政处罚决定书文号",
                                                          "处罚决定日期", "处罚类别", "罚款金额（万元）"], rows)
            xinyong(cli.url, "ingest", penalties, "--authority", "samr", "--category", "penalty")
            xinyong(cli.url, "resolve")
            # kill the receiver while the published records are being delivered; more changes while it is down
            wait_for(lambda: len(received(log)) >= 1, 60, "the first deliveries")
            receiver.kill()
            receiver.wait()
            arrived_before = {json.loads(base64.b64decode(r["body"]))["event_id"] for r in received(log)}
            xinyong(cli.url, "record", "revoke", "samr:京市监罚〔2026〕100号", "--actor", "samr", "--reason", "annulled")
            xinyong(cli.url, "listing", "end", listings[FIRM_DEBTOR], "--reason", "settled", "--actor", "court")
            time.sleep(1.0)
            receiver = start_receiver(port, log, 0.0)

            def expected() -> set[str]:
                ev = t.public_events.c
                with engine.connect() as c:
                    return {e for e, in c.execute(select(ev.event_id).where(ev.entity.in_(watched)))}
            def caught_up() -> bool:
                with engine.connect() as c:
                    top = c.execute(select(t.audit_events.c.seq).order_by(t.audit_events.c.seq.desc())).first()[0]
                    return get_setting(c, "opendata.position") == str(top) and bool(get_setting(c, "webhooks.fanned"))
            wait_for(caught_up, 60, "the capture of every change")
            want = expected()
            assert len(want) >= 41, len(want)  # 40 records published (one then withdrawn), a listing ended
            got = wait_for(lambda: (ids := {json.loads(base64.b64decode(r["body"]))["event_id"]
                                            for r in received(log)}) >= want and ids, 90, "every event delivered")
            assert got == want and len(arrived_before) < len(want), (len(arrived_before), len(want))
            types = set()
            for item in received(log):
                body = base64.b64decode(item["body"])
                expected_signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                assert hmac.compare_digest(item["signature"], expected_signature)
                event = json.loads(body)
                assert set(event) == {"event_id", "type", "entity", "occurred_at", "change"}
                assert event["entity"] in watched and event["entity"] != FIRM_PROPOSED
                types.add(event["type"])
            assert {"record.published", "listing.ended"} <= types, types
            # the public feed gives the same events, with no key
            feed = http.get("/v1/public/changes", params={"since": 0, "limit": 10_000}).json()
            assert want <= {e["event_id"] for e in feed["events"]}
            assert all(e["seq"] > 0 for e in feed["events"]) and feed["more"] is False
            status = http.get(f"/v1/subscriptions/{subscription}", headers={"X-API-Key": bank}).json()
            assert status["deliveries"]["delivered"] == len(want) and status["deliveries"]["pending"] == 0
            logged = delivery_log(engine)
            assert logged["counts"]["delivered"] == len(want)
            assert any(item["attempts"] > 1 for item in logged["items"]), "a delivery was retried"
            assert http.delete(f"/v1/subscriptions/{subscription}", headers={"X-API-Key": bank}).status_code == 200
            assert http.get(f"/v1/subscriptions/{subscription}", headers={"X-API-Key": bank}).status_code == 404
            assert listings  # the world's listings exist
    finally:
        receiver.kill()
        receiver.wait()
        engine.dispose()


def test_backoff_doubles_up_to_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XINYONG_WEBHOOK_MAX_BACKOFF_SECONDS", "10")
    assert [backoff(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def _setting(engine, name: str) -> str | None:
    with engine.connect() as c:
        return get_setting(c, name)


def _entity_key(engine, person_id: str) -> str:
    i = t.entity_identifiers.c
    with engine.connect() as c:
        entity_id = c.execute(select(i.entity_id).where(i.value == person_id)).scalar()
        return c.execute(select(t.entities.c.key).where(t.entities.c.id == entity_id)).scalar()


def test_an_address_inside_an_ipv6_one_is_judged_as_itself() -> None:
    """6to4 and Teredo wrap an IPv4 address as NAT64 and mapped forms do: loopback stays loopback."""
    from xinyong.services.publication.webhooks import _private

    assert _private("2002:7f00:1::")  # 6to4 of 127.0.0.1
    assert _private("2001:0:4136:e378:8000:63bf:80ff:fffe")  # Teredo, client 127.0.0.1
    assert not _private("2002:0808:0808::")  # 6to4 of 8.8.8.8


def test_a_delivery_connects_to_the_address_it_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: a name answering a public address to the check and a private one to the
    connection. The delivery connects to the address that was checked, never resolves again,
    and keeps the URL's host in the Host header."""
    import http.server
    import threading

    from xinyong.services.publication import webhooks

    seen: list[str] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    monkeypatch.setenv("XINYONG_WEBHOOK_ALLOW_PRIVATE", "0")
    monkeypatch.setattr(webhooks, "check_url", lambda url: url)
    # the name resolved once, to the address a check passed ("rebind.invalid" resolves to nothing)
    monkeypatch.setattr(webhooks, "public_address", lambda url: "127.0.0.1")
    try:
        status, error = webhooks._send(webhooks.Due(1, f"http://rebind.invalid:{port}/hook", "s", 0, b"{}"))
    finally:
        server.shutdown()
    assert (status, error) == (204, None)
    assert seen == [f"rebind.invalid:{port}"]
    monkeypatch.undo()
    monkeypatch.setenv("XINYONG_WEBHOOK_ALLOW_PRIVATE", "0")
    with pytest.raises(webhooks.SubscriptionError):
        webhooks.public_address(f"http://localhost:{port}/hook")


def test_a_persons_watch_closes_when_the_legal_basis_ends(cli, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A person is watched only while a list covering persons holds them under the pack's legal
    basis, for a purpose of the pack. When the pack withdraws the basis, or their listing ends,
    the watch of that person closes: the subscription shows it with the reason, an audit event
    records it, and no event about them is fanned out after the closing (the firm beside them
    in the same subscription is still watched)."""
    from xinyong.domain.pack import load_pack
    from xinyong.services.operations.keys import ApiKey, create_key
    from xinyong.services.publication.opendata import capture, head
    from xinyong.services.publication.webhooks import close_lapsed, create_subscription, fan_out, get_subscription

    listings = build_world(cli, tmp_path)
    monkeypatch.setenv("XINYONG_WEBHOOK_ALLOW_PRIVATE", "1")
    engine = open_engine(cli.url)
    pack = load_pack("cn")
    _secret, stored = create_key(engine, pack, "commercial_bank", ["screen"])
    key = ApiKey(stored["id"], "commercial_bank", "test", frozenset({"screen"}), 50.0, 100)
    person = _entity_key(engine, PERSON)
    capture(engine, pack)  # the baseline of the change log
    hook = "http://127.0.0.1:9/hook"
    both = create_subscription(engine, pack, key, [person, FIRM_CLEAN], hook, purpose="credit_approval")["id"]
    alone = create_subscription(engine, pack, key, [person], hook, purpose="credit_approval")["id"]
    assert close_lapsed(engine, pack) == []  # the basis holds
    assert get_subscription(engine, alone, key)["state"] == "open"

    # the pack withdraws the legal basis of the list that holds the person
    spec = pack.list_(listings_list(engine, listings[PERSON]))
    no_basis = pack.model_copy(update={"lists": [x.model_copy(update={"legal_basis": None}) if x.code == spec.code
                                                 else x for x in pack.lists]})
    closed = close_lapsed(engine, no_basis)
    assert sorted((c["subscription"], c["entity"], c["reason"]) for c in closed) == sorted(
        [(both, person, "legal_basis_removed"), (alone, person, "legal_basis_removed")])
    assert close_lapsed(engine, no_basis) == []  # once
    shown = get_subscription(engine, both, key)
    assert shown["state"] == "open" and shown["closed"][person]["reason"] == "legal_basis_removed"
    shown = get_subscription(engine, alone, key)
    assert shown["state"] == "closed" and shown["closed"] == {
        person: {"on": shown["closed"][person]["on"], "reason": "legal_basis_removed"}}

    # under the pack's basis again, a new watch; then the person's listing ends (by the CLI)
    later = create_subscription(engine, pack, key, [person], hook, purpose="credit_approval")["id"]
    cli("listing", "end", listings[PERSON], "--reason", "settled", "--actor", "court")
    capture(engine, pack)  # the ending, in the change log: what the last events about them tell
    with engine.connect() as c:
        ending = head(c)
    assert close_lapsed(engine, pack) == [{"subscription": later, "entity": person, "reason": "listing_ended"}]
    assert get_subscription(engine, later, key)["closed"][person]["reason"] == "listing_ended"
    fan_out(engine)
    d, ev = t.webhook_deliveries.c, t.public_events.c
    with engine.connect() as c:
        audit = c.execute(select(t.audit_events.c.object_id, t.audit_events.c.reason)
                          .where(t.audit_events.c.action == "subscription.person_closed")).all()
        assert sorted(audit) == sorted([(both, "legal_basis_removed"), (alone, "legal_basis_removed"),
                                        (later, "listing_ended")])
        told = c.execute(select(ev.type).join(t.webhook_deliveries, d.event_seq == ev.seq)
                         .where(d.subscription_id == later)).scalars().all()
        assert "listing.ended" in told  # the ending itself still reaches the watcher ...
        assert not c.execute(select(d.id).where(d.subscription_id.in_([both, alone]))).all()  # closed before it

    # ... and nothing about the person after the closing. No write can make a non-public person
    # an event, so one is appended to the change log as a relisting would, beside one about the firm.
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as c:
        for n, entity in enumerate((person, FIRM_CLEAN)):
            c.execute(t.public_events.insert().values(
                event_id=f"evt_after_{n}", type="record.published", entity=entity, fact_id=f"record:after{n}",
                op="add", occurred_at=now, change={"op": "add", "fact": "record", "id": f"record:after{n}",
                                                   "data": {"entity": entity}}))
    assert fan_out(engine) == 1
    with engine.connect() as c:
        after = c.execute(select(d.subscription_id, ev.entity).join(t.public_events, d.event_seq == ev.seq)
                          .where(ev.seq > ending)).all()
    assert after == [(both, FIRM_CLEAN)]
    engine.dispose()


def listings_list(engine, listing_id: int) -> str:
    with engine.connect() as c:
        return c.execute(select(t.listings.c.list_code).where(t.listings.c.id == listing_id)).scalar()
