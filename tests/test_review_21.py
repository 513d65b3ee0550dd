"""Review 21: a natural person named by a pack's own scheme of persons' numbers (`person: true`)
and verified is identified everywhere the resident ID number is, not only where evaluation lists.
On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import time_machine
from sqlalchemy import select

from test_trust_adversarial import TODAY
from test_trust_adversarial_16 import COURT_HEADERS, court_row
from test_trust_adversarial_19 import PERSON_SSN, SSN, pack_file
from test_person_scheme_subjects import registered
from worlds import run, write_csv
from xinyong.domain.pack import load_pack
from xinyong.services.resolution.resolve import hold_unidentified
from xinyong.store import tables as t
from xinyong.store.db import open_engine


def test_a_person_verified_by_a_packs_scheme_is_not_held_as_unidentified(cli, tmp_path: Path) -> None:
    """John Q. Public, named by the court with his SSN (verified), is linked to his own entity and
    evaluation lists him on that record. `process` withdraws a person's listing supported by too few
    identified records and sends its records back to review as naming nobody (`hold_unidentified`):
    that function still knew only the resident ID number, so his SSN record, which identifies him,
    was moved to review with "person not identified: no valid ID number"."""
    with time_machine.travel(TODAY, tick=False):
        registered(cli, tmp_path)
        court = write_csv(tmp_path / "court.csv", COURT_HEADERS,
                          [court_row("（2026）京0105执100号", "John Q. Public", SSN, "")])
        assert run(cli, "ingest", court, "--authority", "court", "--category", "court_defaulter")["accepted"] == 1
        run(cli, "resolve")
        pack = load_pack(str(pack_file(tmp_path, PERSON_SSN)))
        engine = open_engine(cli.url)
        try:
            with engine.begin() as c:
                record_ids = list(c.execute(select(t.records.c.id).where(t.records.c.subject_code == SSN)).scalars())
                assert record_ids
                assert hold_unidentified(c, pack, record_ids, "test") == []
        finally:
            engine.dispose()


NOISE_SUFFIXES = ["发展", "实业", "科技", "商贸", "国际", "物流", "电子", "建材", "食品", "服装", "五金", "化工",
                  "机电", "纺织", "家具", "医药", "能源", "环保", "文化", "传媒", "农业", "汽车", "钢铁", "塑料",
                  "印刷", "包装", "照明", "陶瓷", "玻璃", "水产", "茶叶", "酒业"]


def test_a_short_name_beside_a_twins_code_is_judged_as_resolution_judges_it_in_a_large_register(cli, tmp_path: Path) -> None:
    """The court listed 北京宏达贸易有限公司; its clean twin 上海宏达贸易有限公司 shares its core. A batch row
    giving the listed firm's short name 北京宏达贸易 beside the twin's code: resolution sends such a
    record to review (another firm holds that name's core, in that place), and so did screening with
    four firms in the register (tests/test_trust_adversarial_23.py). With thirty-odd other 宏达贸易… firms registered first (a real register holds
    hundreds), the screening index's `holding_core` looked the core up through the name's blocks,
    capped at the 30 best candidates: the listed twin fell beyond the cap and the row was `allow`."""
    from test_trust_adversarial_23 import HONGDA_BEIJING, HONGDA_SHANGHAI, batch_results, court_listed
    from worlds import uscc

    noise = [[uscc(f"91110105MA01N{k:04d}"), f"宏达贸易{suffix}有限公司", "有限责任公司", "赵敏", "2015-01-01", "存续"]
             for k, suffix in enumerate(NOISE_SUFFIXES)]
    with time_machine.travel(TODAY, tick=False):
        court_listed(cli, tmp_path, [
            *noise,
            [HONGDA_SHANGHAI, "上海宏达贸易有限公司", "有限责任公司", "李娜", "2014-05-05", "存续"],
            [HONGDA_BEIJING, "北京宏达贸易有限公司", "有限责任公司", "张伟", "2012-03-03", "存续"],
        ], {HONGDA_BEIJING: "北京宏达贸易有限公司"})
        [result] = batch_results(cli, tmp_path, [[HONGDA_SHANGHAI, "北京宏达贸易"]])
        assert (result["decision"], result["match"]) == ("refer", "code_and_name_disagree"), result
