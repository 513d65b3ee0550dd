"""A listed firm's name with one character changed is screened `refer`, never `allow`.

Found with bench/names.py on the independent evaluation set (real firms of the Shenzhen Stock
Exchange's list, not the demo): of 320 names one character away from a listed firm and registered
by nobody, 35 were `allow` with no candidate at all. 20 of them the matcher itself scores `near`
(南京红形阳股份有限公司 for the listed 南京红太阳, 浙江海亭药业 for 浙江海翔药业) and refers whenever it
sees them; the name index never offered them: the changed character breaks every bigram of a
three-character core, and a longer core's other bigram (药业, 科技) is too common to block on.
Screening's index now also blocks on a core's substitution keys. A two-character core with one
character changed is another name (江苏沙印 is not 江苏沙钢): still `allow` (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import time_machine

from test_trust_adversarial import TODAY
from test_trust_adversarial_23 import court_listed
from worlds import run, uscc

from xinyong.domain.matching import substitution_keys

HONGTAIYANG = uscc("91320100MA1HTY001")
HAIXIANG = uscc("91331000MA2HXY002")
SHAGANG = uscc("91320582MA1GG0003")
CLEAN = uscc("91330100MA2CL0004")


def test_cores_of_one_length_share_a_substitution_key_when_one_character_differs() -> None:
    assert set(substitution_keys("红太阳")) & set(substitution_keys("红形阳")) == {"1红阳"}
    assert set(substitution_keys("海翔药业")) & set(substitution_keys("海亭药业")) == {"1海药业"}
    assert not set(substitution_keys("海翔药业")) & set(substitution_keys("海翔药"))
    assert substitution_keys("沙钢") == [] and substitution_keys("abcdef") == []


def test_a_listed_firms_name_with_one_character_changed_is_referred(cli, tmp_path: Path) -> None:
    with time_machine.travel(TODAY, tick=False):
        court_listed(cli, tmp_path, [
            [HONGTAIYANG, "南京红太阳股份有限公司", "股份有限公司", "杨寿海", "1991-01-10", "存续"],
            [HAIXIANG, "浙江海翔药业股份有限公司", "股份有限公司", "罗煜竑", "1997-12-30", "存续"],
            [SHAGANG, "江苏沙钢股份有限公司", "股份有限公司", "季永新", "1999-08-18", "存续"],
            [CLEAN, "浙江海正药业股份有限公司", "股份有限公司", "萧家乐", "1998-02-11", "存续"],
        ], {HONGTAIYANG: "南京红太阳股份有限公司", HAIXIANG: "浙江海翔药业股份有限公司",
            SHAGANG: "江苏沙钢股份有限公司"})
        for name, listed in (("南京红形阳股份有限公司", HONGTAIYANG), ("浙江海亭药业股份有限公司", HAIXIANG)):
            answer = run(cli, "screen", "--name", name, "--action", "public_procurement")
            assert answer["decision"] == "refer", (name, answer)
            assert answer["subject"] is None and answer["candidates"][0]["entity"] == listed, answer
        # the listed names as registered are still denied, a clean firm's name still its own
        assert run(cli, "screen", "--name", "南京红太阳股份有限公司", "--action", "public_procurement")[
            "decision"] == "deny"
        assert run(cli, "screen", "--name", "浙江海正药业股份有限公司", "--action", "public_procurement")[
            "decision"] == "allow"
        # one character of a two-character trade name changed names another firm
        assert run(cli, "screen", "--name", "江苏沙印股份有限公司", "--action", "public_procurement")[
            "decision"] == "allow"
