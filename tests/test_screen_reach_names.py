"""A measure reaches a person through a listed firm only when the register names that person there.
小米, on the court's list, registers its legal representative as 雷军 with an ID number that is
王建国's (a clerk's typo, or a number registered later under another name). 王建国's own listing
ended; a bank screening him for high consumption by his ID number was denied "through 小米, legal
representative": a sanction on a man the register does not name. Resolution sends such a record to
review ("ID number belongs to another person"); screening now answers `refer`, the measure shown
with the relation marked unconfirmed, for a human to check (SQLite and PostgreSQL). The relation
under his own name still denies."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import time_machine

from test_trust_adversarial import NAMES, TODAY, WANG, XIAOMI, listed_world
from worlds import run, write_csv
from xinyong.domain.decisions import Bearing, decide, measures_for
from xinyong.domain.pack import load_pack

REGISTER = ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "法定代表人证件号码", "成立日期", "登记状态"]


def _screened_after_register_names(cli, folder: Path, representative: str) -> dict:
    ids = listed_world(cli, folder)
    run(cli, "listing", "end", ids[WANG], "--reason", "performed", "--on", "2026-11-02")
    again = write_csv(folder / "register-2.csv", REGISTER, [
        [XIAOMI, NAMES[XIAOMI], "有限责任公司", representative, WANG, "2010-03-03", "存续"]])
    cli("ingest", again, "--authority", "samr", "--category", "registration")
    return run(cli, "screen", WANG, "--action", "high_consumption")


def test_a_relation_naming_another_person_under_the_same_id_number_refers(cli, tmp_path: Path) -> None:
    with time_machine.travel(TODAY, tick=False):
        answer = _screened_after_register_names(cli, tmp_path, "雷军")
    assert answer["decision"] == "refer", answer
    (measure,) = answer["measures"]
    assert measure["code"] == "high_consumption_ban"
    assert measure["through"]["entity"] == XIAOMI and measure["through"]["unconfirmed"] is True


def test_a_relation_naming_the_person_under_his_id_number_still_denies(cli, tmp_path: Path) -> None:
    with time_machine.travel(TODAY, tick=False):
        answer = _screened_after_register_names(cli, tmp_path, "王 建国")
    assert answer["decision"] == "deny", answer
    assert "unconfirmed" not in answer["measures"][0]["through"]


@pytest.mark.parametrize("confirmed, expected", [(True, "deny"), (False, "refer")])
def test_an_unconfirmed_bearing_never_decides_more_than_refer(confirmed: bool, expected: str) -> None:
    from xinyong.domain.decisions import ListingView

    pack = load_pack("cn")
    listing = ListingView(1, XIAOMI, "court_defaulters", ((dt.date(2026, 10, 25), "effective"),),
                          dt.date(2026, 10, 25), None, None, (), (), None)
    decision = decide(measures_for(pack, "high_consumption"), "high_consumption", dt.date(2026, 11, 10),
                      [Bearing(listing, "legal_representative", confirmed=confirmed)])
    assert decision.decision == expected
