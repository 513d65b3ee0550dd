"""`xinyong demo` twice on the same store: nothing public changes, and the demo's keys are replaced
(one active demo key per role), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from conftest import Cli
from xinyong.domain.calendar import pack_today
from xinyong.domain.pack import load_pack
from xinyong.services.operations.demo import TOUR_FILE
from xinyong.services.operations.keys import active_keys, list_keys, secret_hash
from xinyong.services.publication.lists import list_rows
from xinyong.store import tables as t
from xinyong.store.db import open_engine


def _tour(out: Path) -> dict[str, str]:
    lines = (out / TOUR_FILE).read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _public(url: str) -> tuple[list, dict]:
    pack = load_pack("cn")
    engine = open_engine(url)
    try:
        L = t.listings.c
        with engine.connect() as c:
            listings = [tuple(r) for r in c.execute(select(L.id, L.entity_id, L.list_code, L.state, L.effective_from,
                                                           L.effective_to).order_by(L.id))]
        lists = {spec.code: list_rows(engine, pack, spec.code, pack_today(pack)) for spec in pack.lists}
    finally:
        engine.dispose()
    return listings, lists


def test_a_second_demo_run_changes_nothing_public_and_replaces_its_keys(db_url: str, tmp_path: Path) -> None:
    cli, out = Cli(db_url), tmp_path / "demo"
    cli("demo", "--no-serve", "--entities", "300", "--out", out)
    first_keys, first_public = _tour(out), _public(db_url)
    assert sum(len(rows) for rows in first_public[1].values()) > 0

    second = cli("demo", "--no-serve", "--entities", "300", "--out", out)
    second_keys = _tour(out)
    assert _public(db_url) == first_public  # every listing and every public list, row for row

    engine = open_engine(db_url)
    try:
        usable = active_keys(engine)
        for role in ("KEY_OPERATE", "KEY_SUBMIT", "KEY_SCREEN"):
            assert first_keys[role] != second_keys[role] and second_keys[role] in second.output
            assert secret_hash(first_keys[role]) not in usable and secret_hash(second_keys[role]) in usable
        demo_keys = [k for k in list_keys(engine) if (k["label"] or "").startswith("demo ") and k["revoked_at"] is None]
        # one active demo key per role; operating: one per authority running a list (whoever listed it decides)
        running = sorted({spec.authority for spec in load_pack("cn").lists})
        assert sorted(k["label"] for k in demo_keys) == sorted(
            [f"demo operate {a}" for a in running] + ["demo screen", "demo spare", "demo submit"])
        scopes = {k["label"]: k["scopes"] for k in demo_keys}
        assert all("operate" in scopes[f"demo operate {a}"] for a in running) and "submit" in scopes["demo submit"]
        assert scopes["demo screen"] == ["screen"]
    finally:
        engine.dispose()
    # the tour's ids survive the rerun: the same objection and repair application wait for a decision
    assert {k: v for k, v in second_keys.items() if not k.startswith("KEY_")} == \
           {k: v for k, v in first_keys.items() if not k.startswith("KEY_")}
