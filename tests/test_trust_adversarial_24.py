"""Security and privacy, probed as an attacker and as a curious insider: API keys and what outlives
them, the subject portal, masking on public surfaces. Real public firm names, codes with valid check
characters. Each test is a defect found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from test_trust_adversarial import NAMES, TODAY, XIAOMI, listed_world
from test_trust_adversarial_2 import PENALTY_HEADERS
from worlds import run, write_csv
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
                revoked = c.execute(select(t.audit_events.c.payload).where(
                    t.audit_events.c.action == "key.revoked",
                    t.audit_events.c.object_id == str(made["leaked"]["id"]))).scalar_one()
            assert _due(engine) == {watch[n]: each for n in ("rotated", "expiring", "kept")}
            assert revoked["subscriptions_ended"] == 1
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
