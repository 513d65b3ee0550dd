"""The audit chain says when a store began to run another pack (its rules, durations and legal
bases), on SQLite and PostgreSQL: `init --pack` recorded the switch in a setting only, so nobody
could tell from the chain which rules were in force on a past day, nor that a pack file was edited
in place under the same version."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from xinyong.domain.pack import PACKS_DIR, fingerprint, load_pack
from xinyong.store import tables as t
from xinyong.store.db import open_engine


def pack_events(url: str) -> list[tuple[str, dict]]:
    engine = open_engine(url)
    with engine.connect() as c:
        rows = c.execute(select(t.audit_events.c.object_id, t.audit_events.c.payload)
                         .where(t.audit_events.c.action == "pack.activated").order_by(t.audit_events.c.seq)).all()
    engine.dispose()
    return [(object_id, payload) for object_id, payload in rows]


def test_a_pack_switch_is_an_audited_event_and_the_same_pack_again_is_not(cli, tmp_path: Path) -> None:
    assert pack_events(cli.url) == []  # the store's first pack: its creation, no switch
    cli("init")
    assert pack_events(cli.url) == []
    cli("init", "--pack", "cn-pilot")
    ((switched, payload),) = pack_events(cli.url)
    assert switched == "cn-sh-pilot@2026.1-sh.1"
    assert (payload["ref"], payload["previous"]) == ("cn-pilot", "cn@2026.1")
    assert payload["sha256"] == fingerprint(load_pack("cn-pilot"))
    assert payload["previous_sha256"] == fingerprint(load_pack("cn"))
    cli("init", "--pack", "cn-pilot")
    assert len(pack_events(cli.url)) == 1
    verified = json.loads(cli("audit", "verify", "--json").stdout)
    assert verified["intact"] is True


def test_a_pack_file_edited_under_the_same_version_is_another_pack(cli, tmp_path: Path) -> None:
    """A regional office shortened a list's objection window in its pack file and kept the version."""
    text = (PACKS_DIR / "cn-pilot" / "pack.yaml").read_text(encoding="utf-8")
    text = text.replace("extends: ../cn/pack.yaml", f"extends: {PACKS_DIR / 'cn' / 'pack.yaml'}")
    pack = tmp_path / "pilot.yaml"
    pack.write_text(text, encoding="utf-8")
    cli("init", "--pack", pack)
    first = fingerprint(load_pack(str(pack)))
    edited = text.replace("max_years: 2}", "max_years: 1}")
    assert edited != text
    pack.write_text(edited, encoding="utf-8")
    cli("init", "--pack", pack)
    events = pack_events(cli.url)
    assert [payload["previous"] for _, payload in events] == ["cn@2026.1", "cn-sh-pilot@2026.1-sh.1"]
    assert events[1][1]["previous_sha256"] == first != events[1][1]["sha256"]
