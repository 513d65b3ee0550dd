"""A natural person named by a pack's own scheme of persons' numbers (`person: true`) is a natural
person, not a firm: filed as one, refused where the pack names no legal basis for persons, and
never listed as a firm would be (without the reminders persons are owed). A US social security
number under a test pack, as tests/test_trust_adversarial_19.py declares it; on SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import time_machine

from test_trust_adversarial import TODAY
from test_trust_adversarial_16 import COURT_HEADERS, XIAOMI, court_row
from test_trust_adversarial_19 import PERSON_SSN, SSN, pack_file
from worlds import run, write_csv

ABNORMAL_HEADERS = ["列入决定书文号", "企业名称", "统一社会信用代码", "列入经营异常名录原因", "列入日期"]


def registered(cli, folder: Path) -> None:
    cli("init", "--pack", pack_file(folder, PERSON_SSN))
    cli("ingest", write_csv(folder / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"],
                            [[XIAOMI, "小米科技有限责任公司", "有限责任公司", "雷军", "2010-03-03", "存续"]]),
        "--authority", "samr", "--category", "registration")


def test_a_debtor_named_by_a_packs_person_scheme_is_a_natural_person(cli, tmp_path: Path) -> None:
    """The court listed John Q. Public, a judgment debtor, by his SSN. He was filed as an enterprise
    (only resident_id made a person), so evaluation proposed him for the debtors' list as a firm and
    the notice was served with none of the three reminders a person is owed. He is a natural person
    now: the notice waits for the reminders, and the evidence says his age could not be checked."""
    with time_machine.travel(TODAY, tick=False):
        registered(cli, tmp_path)
        court = write_csv(tmp_path / "court.csv", COURT_HEADERS, [court_row("（2026）京0105执100号", "John Q. Public", SSN, "")])
        assert run(cli, "ingest", court, "--authority", "court", "--category", "court_defaulter")["accepted"] == 1
        run(cli, "resolve")
        person = run(cli, "entity", "show", SSN)
        assert (person["name"], person["kind"]) == ("John Q. Public", "natural_person")
        assert run(cli, "evaluate", "--as-of", "2026-10-10")["per_list"]["court_defaulters"] == 1
        (listing,) = run(cli, "listing", "list")
        refused = cli("listing", "notify", listing["id"], "--on", "2026-10-14", "--actor", "officer",
                      "--reason", "served", ok=False)
        assert refused.exit_code != 0 and "3 formal reminders" in refused.output, refused.output
        shown = run(cli, "listing", "show", listing["id"])
        assert shown["subject_kind"] == "natural_person"
        [evidence] = shown["evidence"]
        assert evidence["subject_code"] == "*******99" and "age not checked" in evidence["note"], evidence


def test_a_person_by_a_packs_scheme_is_refused_where_no_legal_basis_names_persons(cli, tmp_path: Path) -> None:
    """The market regulator's abnormal-operations file named John Q. Public by his SSN: the category
    has no legal basis for natural persons, yet the row was stored as a firm's record. It is
    quarantined with the reason, as a resident ID number there is."""
    with time_machine.travel(TODAY, tick=False):
        registered(cli, tmp_path)
        rows = [["京市监异〔2026〕7号", "John Q. Public", SSN, "未按规定报送年度报告", "2026-09-01"],
                ["京市监异〔2026〕8号", "小米科技有限责任公司", XIAOMI, "未按规定报送年度报告", "2026-09-01"]]
        batch = run(cli, "ingest", write_csv(tmp_path / "abnormal.csv", ABNORMAL_HEADERS, rows),
                    "--authority", "samr", "--category", "abnormal_operation")
        assert (batch["accepted"], batch["quarantined"]) == (1, 1)
        [rejected] = run(cli, "batch", "show", str(batch["batch_id"]))["quarantine"]
        assert rejected["row_number"] == 2 and "natural persons cannot be recorded" in rejected["reason"], rejected
