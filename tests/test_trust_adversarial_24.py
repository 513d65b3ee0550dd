"""Security and privacy, probed as an attacker and as a curious insider: API keys and what outlives
them, the subject portal, masking on public surfaces. Real public firm names, codes with valid check
characters. Each test is a defect found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select

from test_trust_adversarial import COURT_HEADERS, NAMES, TODAY, WANG, XIAOMI, court_row, listed_world
from test_trust_adversarial_2 import PENALTY_HEADERS
from worlds import run, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.services.operations.keys import active_keys, secret_hash
from xinyong.store import tables as t
from xinyong.store.db import open_engine

def _due(engine) -> dict[str, int]:
    """Deliveries due now, per subscription."""
    from xinyong.services.publication.webhooks import due_deliveries

    d = t.webhook_deliveries.c
    due = [x.id for x in due_deliveries(engine)]
    with engine.connect() as c:
        return dict(Counter(c.execute(select(d.subscription_id).where(d.id.in_(due))).scalars()))


HOOK = "http://127.0.0.1:9/hook"  # never reached: the deliveries due are read, not sent


def test_a_revoked_or_expired_keys_webhooks_stop_and_a_rotated_keys_go_on(cli, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A bank's screening key leaked; the attacker registered a watch of 小米 with a webhook to their
    own server. The centre revoked the key (`authority key revoke`): every API call with it was
    refused at once, but the watch went on, and every change about 小米 was still POSTed to the
    attacker's URL, as it was for a key past its `--expires` day. Now a watch works only while the
    key that registered it does: a revocation ends its watches (their pending deliveries cancelled,
    counted in the audit event), an expired key's are not fanned out or delivered, and a rotated
    key's watches pass to the key that replaced it."""
    from xinyong.services.publication.opendata import capture
    from xinyong.services.publication.webhooks import create_subscription, delivery_log, fan_out, get_subscription

    monkeypatch.setenv("XINYONG_WEBHOOK_ALLOW_PRIVATE", "1")
    pack = load_pack("cn")
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        engine = open_engine(cli.url)
        try:
            made = {name: run(cli, "authority", "key", "create", "commercial_bank", "--scopes", "screen",
                              *(["--expires", "2026-11-10"] if name == "expiring" else []))
                    for name in ("leaked", "rotated", "expiring", "kept")}
            keys = active_keys(engine)
            capture(engine, pack)  # the change log's baseline
            watch = {name: create_subscription(engine, pack, keys[secret_hash(m["key"])], [XIAOMI], HOOK)["id"]
                     for name, m in made.items()}
            # one event about 小米 fanned out before the revocation: its delivery is still pending
            run(cli, "listing", "end", ids[XIAOMI], "--reason", "performed", "--on", "2026-11-10")
            capture(engine, pack)
            fanned = fan_out(engine)
            assert fanned and fanned % 4 == 0
            each = fanned // 4  # the events of the ending, to each watch
            cli("authority", "key", "revoke", made["leaked"]["id"], "--reason", "leaked")
            successor = run(cli, "authority", "key", "rotate", made["rotated"]["id"])
            with engine.connect() as c:
                revoked = dict(c.execute(select(t.audit_events.c.object_id, t.audit_events.c.payload).where(
                    t.audit_events.c.action == "key.revoked")).all())
            assert _due(engine) == {watch[n]: each for n in ("rotated", "expiring", "kept")}
            assert revoked == {str(made["leaked"]["id"]): {"subscriptions_ended": 1},
                               str(made["rotated"]["id"]): {"subscriptions_moved": 1}}
            states = {item["subscription"]: item["state"] for item in delivery_log(engine)["items"]}
            assert states[watch["leaked"]] == "cancelled"
            new_key = active_keys(engine)[secret_hash(successor["key"])]
            assert get_subscription(engine, watch["rotated"], new_key)["state"] == "open"
        finally:
            engine.dispose()
    with time_machine.travel(TODAY + dt.timedelta(days=2), tick=False):  # the expiring key's last day is past
        engine = open_engine(cli.url)
        try:
            penalties = write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS,
                                  [[XIAOMI, NAMES[XIAOMI], "京市监罚〔2026〕31号", "2026-11-11", "罚款", "5"]])
            cli("ingest", penalties, "--authority", "samr", "--category", "penalty")
            run(cli, "resolve")
            capture(engine, pack)
            later = fan_out(engine)
            assert later and later % 2 == 0 and _due(engine) == {
                watch["rotated"]: each + later // 2, watch["kept"]: each + later // 2}
        finally:
            engine.dispose()


ZHAO = "110101199003077774"  # 赵六's ID number (a valid check character)


def _console(http: TestClient, secret: str) -> None:
    """Sign in to the console with an API key, as the sign-in form does."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/console").text).group(1)
    assert http.post("/console/sign-in", data={"api_key": secret, "csrf_token": token},
                     follow_redirects=False).status_code == 303


@pytest.mark.parametrize("written", [f"\u202a{ZHAO}\u202c", f"{ZHAO}\u200e", f"{ZHAO[:10]}\u00ad{ZHAO[10:]}"],
                         ids=["windows-embedding", "direction-mark", "soft-hyphen"])
def test_an_id_number_copied_with_invisible_marks_is_the_persons_and_shown_masked(cli, tmp_path: Path,
                                                                                 written: str) -> None:
    """A court clerk copied 赵六's ID number from a Windows dialog (it puts U+202A LEFT-TO-RIGHT
    EMBEDDING before it), a spreadsheet (a direction mark after it) or a word processor (an optional
    hyphen inside it). `normalise_code` kept those invisible marks, which `mask_text` already read
    through: the code was no valid ID number, so the record became `unknown`, linked to nobody (赵六
    escaped the list of dishonest judgment debtors) and the console's records page showed his whole
    ID number, birth date and all. Now the marks go like the zero-width spaces before them: the code is
    赵六's, he is proposed for the list, and every page shows his number masked."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        court = write_csv(tmp_path / "court-more.csv", COURT_HEADERS,
                          [court_row("（2026）粤0305执102号", "赵六", written, "深圳市南山区人民法院")])
        cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
        run(cli, "resolve")
        run(cli, "evaluate", "--as-of", "2026-10-10")
        assert [x["list"] for x in run(cli, "listing", "list", "--entity", ZHAO)] == ["court_defaulters"]
        secret = run(cli, "authority", "key", "create", "court", "--scopes", "operate")["key"]
        engine = open_engine(cli.url)
        try:
            with engine.connect() as c:
                stored = c.execute(select(t.records.c.subject_code, t.records.c.subject_scheme, t.records.c.record_key)
                                   .where(t.records.c.subject_name == "赵六")).one()
            assert stored[:2] == (ZHAO, "resident_id") and stored.record_key.endswith(f"#{ZHAO}")
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                _console(http, secret)
                page = http.get("/console/records", params={"authority": "court"})
                assert page.status_code == 200 and "赵六" in page.text
                assert "110101********7774" in page.text and "19900307" not in page.text
        finally:
            engine.dispose()


@pytest.mark.parametrize("mark", ["\ufe0f", "\ufe0e", "\u034f", "\u180b"],
                         ids=["variation-selector-16", "variation-selector-15", "grapheme-joiner", "mongolian-fvs"])
def test_an_id_number_in_court_text_with_an_invisible_selector_is_masked_whole(mark: str) -> None:
    """A court's 担保情况 named the guarantor 张三 with his ID number, a variation selector (or a combining
    grapheme joiner) pasted in after its tenth digit: invisible, so the number reads whole. The public
    entity page showed "身份证号********90️03077774" (the part after the mark whole: born 1990-03-07) and,
    without the word 身份证号, the whole number. Now every invisible character reads as nothing there."""
    from xinyong.domain.privacy import mask_text

    for text in (f"担保人张三（身份证号{ZHAO[:10]}{mark}{ZHAO[10:]}）", f"担保人张三{ZHAO[:10]}{mark}{ZHAO[10:]}"):
        shown = mask_text(text)
        assert "110101********7774" in shown and "0307" not in shown, shown


def test_watching_a_person_and_stopping_are_audited(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bank's key started watching 王建国, a listed judgment debtor, by his opaque key, for
    `credit_approval` (`POST /v1/subscriptions`): every change about him POSTed to the bank's URL.
    Nothing in the audit chain said who asked to watch whom, for what purpose, under which legal basis,
    nor who stopped it (`DELETE`): a write about a natural person's data with no audit event. Now both
    are events of the chain, by the key, with the entities, purpose, legal basis and the URL's host."""
    monkeypatch.setenv("XINYONG_WEBHOOK_ALLOW_PRIVATE", "1")
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        person = run(cli, "listing", "show", ids[WANG])["entity"]
        made = run(cli, "authority", "key", "create", "commercial_bank", "--scopes", "screen")
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"), webhooks=False)) as http:
                headers = {"X-API-Key": made["key"]}
                created = http.post("/v1/subscriptions", headers=headers, json={
                    "entities": [person, XIAOMI], "url": HOOK, "purpose": "credit_approval"})
                assert created.status_code == 201, created.text
                watch = created.json()
                assert http.delete(f"/v1/subscriptions/{watch['id']}", headers=headers).status_code == 200
            a = t.audit_events.c
            with engine.connect() as c:
                events = c.execute(select(a.actor, a.action, a.payload, a.legal_basis)
                                   .where(a.object_type == "subscription", a.object_id == watch["id"])
                                   .order_by(a.seq)).all()
            actor = f"commercial_bank/key{made['id']}"
            assert [(e.actor, e.action) for e in events] == [(actor, "subscription.created"),
                                                             (actor, "subscription.deleted")]
            assert events[0].payload == {"entities": [person, XIAOMI], "purpose": "credit_approval",
                                         "host": "127.0.0.1:9"}
            assert events[0].legal_basis == watch["legal_basis"] and "失信被执行人" in watch["legal_basis"]
            assert cli("audit", "verify").exit_code == 0
        finally:
            engine.dispose()
