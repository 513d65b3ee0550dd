"""Re-running `resolve` when nothing changed says so: no record is "given a new entity" twice.

A natural person named without a valid ID number matches nothing on every run (people are
never joined by name): the second run keeps the entity the first gave and must not count it
as new again."""

from __future__ import annotations

import json

from test_resolve import PENALTIES, build, resolve

ALONE = {"P90": ("王小明", "", "", "自然人", ""), "P91": ("赵大力", "", "", "自然人", "110105194912310021")}


def test_a_second_resolve_gives_no_new_entity_and_says_nothing_changed(cli, tmp_path) -> None:
    build(cli, tmp_path, {**PENALTIES, **ALONE})
    first = resolve(cli)
    assert first["new_entities"] > 0 and first["still_alone"] == 0
    entities = json.loads(cli("stats", "--json").output)["entities"]
    second = resolve(cli)
    assert second["new_entities"] == 0
    assert second["still_alone"] >= 1  # 王小明 (no ID number) matches nothing again; his entity is kept
    third = cli("resolve").output
    assert "0 given a new entity" in third and "still matching nothing" in third
    assert json.loads(cli("stats", "--json").output)["entities"] == entities
