"""A partnership's legal form, written in brackets after its name, is its legal form.

Accounting and law firms are special general partnerships (瑞华会计师事务所（特殊普通合伙）), funds
limited partnerships (北京红杉信远股权投资中心（有限合伙）), as 《合伙企业法》 has them write it. The
cn pack read only 合伙企业（有限合伙） as a form, so the bracket stayed in the name's core: the
regulator's penalty on 瑞华会计师事务所, as it is called in print, went to review, and screening that
name beside the listed firm was only `refer` ("short name"), where a company's name without its
有限公司 is the company's. Now （有限合伙）, （普通合伙） and （特殊普通合伙） are legal forms (pack data;
SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import time_machine

from test_matching import parts
from test_trust_adversarial import TODAY
from test_trust_adversarial_23 import court_listed
from worlds import run, uscc, write_csv

RUIHUA = uscc("91110108MA01RH001")
HONGSHAN = uscc("91110105MA01HM002")
PENALTY_HEADERS = ["行政相对人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚类别", "罚款金额（万元）",
                   "处罚决定日期", "处罚机关"]


def test_a_partnerships_bracketed_form_leaves_its_core() -> None:
    ruihua = parts("瑞华会计师事务所（特殊普通合伙）")
    assert (ruihua.core, ruihua.legal_form) == ("瑞华会计师事务所", "特殊普通合伙")
    fund = parts("北京红杉信远股权投资中心(有限合伙)")
    assert (fund.core, fund.legal_form) == ("红杉信远股权投资中心", "有限合伙")
    branch = parts("立信会计师事务所（特殊普通合伙）上海分所")
    assert (branch.core, branch.legal_form, branch.branch) == ("立信会计师事务所", "特殊普通合伙", "上海分所")
    assert parts("宁波梅山保税港区红杉投资管理合伙企业（有限合伙）").legal_form == "有限合伙"
    assert parts("某某咨询合伙企业（普通合伙）").legal_form == "普通合伙"


def test_a_partnership_named_without_its_form_is_that_partnership(cli, tmp_path: Path) -> None:
    with time_machine.travel(TODAY, tick=False):
        court_listed(cli, tmp_path, [
            [RUIHUA, "瑞华会计师事务所（特殊普通合伙）", "特殊普通合伙企业", "刘贵彬", "2013-04-27", "存续"],
            [HONGSHAN, "北京红杉信远股权投资中心（有限合伙）", "有限合伙企业", "", "2015-03-20", "存续"],
        ], {RUIHUA: "瑞华会计师事务所（特殊普通合伙）"})
        cli("ingest", write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS, [
            ["瑞华会计师事务所", "", "〔2026〕京证监罚12号", "罚款", "50.0", "2026-08-20", "北京证监局"],
            ["北京红杉信远股权投资中心", "", "〔2026〕京证监罚13号", "警告", "0", "2026-08-20", "北京证监局"],
        ]), "--authority", "financial_regulator", "--category", "penalty")
        resolved = run(cli, "resolve")
        assert resolved["in_review"] == 0 and resolved["new_entities"] == 0, resolved
        for code, case in ((RUIHUA, "〔2026〕京证监罚12号"), (HONGSHAN, "〔2026〕京证监罚13号")):
            records = run(cli, "entity", "show", code)["records"]
            assert any(r["record_key"].endswith(case) for r in records), (code, records)
        for name in ("瑞华会计师事务所", "瑞华会计师事务所(特殊普通合伙)"):
            answer = run(cli, "screen", "--name", name, "--action", "public_procurement")
            assert (answer["decision"], answer["subject"]["key"]) == ("deny", RUIHUA), (name, answer)
        assert run(cli, "screen", "--name", "北京红杉信远股权投资中心", "--action", "public_procurement")[
            "decision"] == "allow"
