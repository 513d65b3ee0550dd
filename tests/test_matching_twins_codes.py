"""Probe: twin firms, and a record that names one twin by its short name while quoting the other's code.

上海华美电器有限公司 (A) and 上海华美电气有限公司 (B) are registered twins, one character apart. A penalty
naming B in full with A's code goes to review ("code belongs to another firm"), and name screening
of 上海华美电气 picks B. But the same penalty written with B's short name (上海华美电气, no legal
form, as penalty files often write it) is linked to A by the code, with no review: A would carry B's
penalty. `_code_of_another_firm` (services/resolution/resolve.py) asks only whether the name is
*exactly* another firm's full name key (core + legal form), which a short name never is.
"""

from __future__ import annotations

import pytest

from test_due_rules import PENALTY_HEADERS, REGISTER_HEADERS, ingest, run, uscc, write_csv
from sqlalchemy import select

from xinyong.store import tables as t
from xinyong.store.db import open_engine

TWIN_A = uscc("91310115MA1H7A001")
TWIN_B = uscc("91310115MA1H7B002")
NAME_A, NAME_B = "上海华美电器有限公司", "上海华美电气有限公司"


def links(url: str) -> dict[str, tuple[str, str | None]]:
    engine = open_engine(url)
    r, link, e = t.records.c, t.record_links.c, t.entities.c
    try:
        with engine.connect() as c:
            return {row.record_key: (row.state, row.key) for row in c.execute(
                select(r.record_key, link.state, e.key).join(t.record_links, link.record_id == r.id)
                .outerjoin(t.entities, e.id == link.entity_id).where(r.category == "penalty"))}
    finally:
        engine.dispose()


@pytest.mark.parametrize("written", ["上海华美电气", "华美电气"])
def test_a_twins_short_name_with_the_other_twins_code_is_not_linked_to_the_code_holder(cli, tmp_path, written):
    write_csv(tmp_path / "register.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"], [
        [TWIN_A, NAME_A, "有限责任公司", "李建国", "2010-01-05", "存续"],
        [TWIN_B, NAME_B, "有限责任公司", "张伟", "2011-04-18", "存续"]])
    cli("ingest", tmp_path / "register.csv", "--authority", "samr", "--category", "registration")
    write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS, [
        [NAME_B, TWIN_A, "沪市监罚〔2025〕600号", "2025-07-03", "吊销许可证", ""],   # full name: goes to review
        [written, TWIN_A, "沪市监罚〔2025〕602号", "2025-07-03", "吊销许可证", ""]])  # short name of B
    cli("ingest", tmp_path / "penalties.csv", "--authority", "samr", "--category", "penalty")
    run(cli, "resolve")
    # name screening reads the short name as B's
    screened = run(cli, "screen", "--name", written, "--action", "public_procurement")
    assert screened["subject"]["key"] == TWIN_B, screened["subject"]
    found = links(cli.url)
    assert found["samr:沪市监罚〔2025〕600号"] == ("review", None)
    assert found["samr:沪市监罚〔2025〕602号"] != ("linked", TWIN_A), \
        f"{written} (B's short name) with A's code linked to A: {found['samr:沪市监罚〔2025〕602号']}"
