"""A judgement that moves a record off an entity withdraws the listings built on that link."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.test_ingest import VALID, ingest_one, write_csv
from xinyong.store import tables as t
from xinyong.store.db import open_engine


def test_moving_a_record_off_an_entity_withdraws_its_listing(cli, tmp_path):
    ingest_one(cli, write_csv(tmp_path / "reg.csv", ["统一社会信用代码", "企业名称", "法定代表人"],
                              [[VALID, "北京某某科技有限公司", "张三"]]), category="registration")
    # no code: linked by its exact name; a licence revoked: a "heavier" penalty
    ingest_one(cli, write_csv(tmp_path / "pen.csv",
                              ["行政相对人名称", "行政处罚决定书文号", "处罚类别", "处罚决定日期"],
                              [["北京某某科技有限公司", "京市监罚〔2025〕9号", "吊销许可证", "2025-06-01"]]))
    cli("resolve")
    cli("evaluate", "--as-of", "2025-07-01", "--full")
    (listing,) = json.loads(cli("listing", "list", "--list", "serious_dishonesty", "--json").stdout)
    assert listing["entity"] == VALID and listing["state"] == "proposed"
    linked = json.loads(cli("entity", "show", VALID, "--json").stdout)["records"]
    penalty = next(r for r in linked if r["category"] == "penalty")
    assert penalty["link"]["method"] == "exact_name"

    links = cli("links", "export", "-o", str(tmp_path / "links.csv"))
    assert links.exit_code == 0
    rows = {line.split(",")[0]: line for line in (tmp_path / "links.csv").read_text(encoding="utf-8").splitlines()}
    assert rows["samr:京市监罚〔2025〕9号"].split(",")[1] == VALID

    # the record's id, as the review commands take it
    engine = open_engine(cli.url)
    with engine.connect() as c:
        rid = c.execute(select(t.records.c.id).where(t.records.c.record_key == "samr:京市监罚〔2025〕9号")).scalar_one()
    engine.dispose()
    outcome = json.loads(cli("review", "reject", str(rid), "--entity", VALID, "--actor", "reviewer",
                             "--reason", "another company of the same name", "--json").stdout)
    assert outcome["moved_from"] == VALID and outcome["entity"] != VALID
    assert outcome["listings_withdrawn"] == [listing["id"]]
    (after,) = json.loads(cli("listing", "list", "--entity", VALID, "--json").stdout)
    assert after["state"] == "withdrawn"
    assert json.loads(cli("audit", "verify", "--json").stdout)["intact"] is True
