"""The register's bulk path (services.intake.register: reads through the driver, updates as one
statement, the change feed's triggers dropped for the chunk) leaves the store as main's path
(`register_main_path`, the oracle) leaves it: the same entities, identifiers, names with their
dates, former names, legal representatives, records, audit payloads and entities in the change
feed, after each of three extracts full of edge cases. Both engines."""

from __future__ import annotations

import datetime as dt

import register_main_path
from conftest import Cli, another_store
from test_ingest import ingest_one, write_csv
from test_register_setwise import _dump
from worlds import resident_id, uscc
from xinyong.domain.identifiers import org_code_check_character
from xinyong.services.intake import ingest as intake

HEADERS = ["统一社会信用代码", "企业名称", "英文名称", "曾用名", "法定代表人", "法定代表人证件号码", "注册号",
           "组织机构代码", "企业类型", "成立日期", "登记状态", "住所", "行政区划代码"]
FIRMS = 40


def _broken(code: str, nth: int = 0) -> str:
    """The code with a wrong check character (the nth such): an unverified USCC, found by its legacy codes."""
    return code[:-1] + [c for c in "0123" if c != code[-1]][nth]


def _extracts(tmp_path) -> list:
    codes = [uscc(f"9111000060{i:07d}") for i in range(FIRMS)]
    person = [resident_id("110101", dt.date(1970 + i % 30, 1 + i % 12, 1 + i % 28), i) for i in range(FIRMS)]
    reg_no = [f"1100000000{i:05d}" for i in range(FIRMS)]
    # a valid USCC whose embedded organisation code is firm 5's: that code keeps its holder
    stray_org = uscc("91110100" + codes[5][8:17])
    lone_org = "70000001" + org_code_check_character("70000001")  # a firm known by its organisation code alone
    lone = _broken(uscc("91110000" + lone_org))

    def row(i, code=None, name=None, english="", former="", rep="张三", rep_id="", reg=None, org="",
            kind="有限责任公司", day="2001-03-05", status="存续", address=None, region="110105"):
        return [codes[i] if code is None else code, name or f"北京第{i}科技有限公司", english, former, rep, rep_id,
                reg_no[i] if reg is None else reg, org, kind, day, status,
                f"北京市某路{i}号" if address is None else address, region]

    first = [row(i, english=f"Beijing No{i} Tech" if i % 4 == 0 else "",
                 former=f"北京旧{i}商贸有限公司；北京老{i}商贸有限公司" if i % 3 == 0 else "",
                 rep="李四" if i % 2 else "张三", rep_id=person[i] if i % 5 == 0 else "",
                 reg="" if i % 7 == 1 else None, kind="个体工商户" if i % 9 == 4 else "有限责任公司",
                 day="" if i % 6 == 0 else "2001-03-05") for i in range(FIRMS)]
    first.append(row(0, code=_broken(codes[0]), name="北京第0科技有限公司分号", rep="王五", reg=reg_no[0]))  # twice: by reg_no
    first.append([lone, "北京无码商贸有限公司", "", "", "赵六", "", "", lone_org, "", "1999-09-09", "存续", "某路", ""])
    second = []
    for i in range(FIRMS):
        name = (f"北京旧{i}商贸有限公司" if i % 3 == 0  # back to a former name: it is current again
                else f"北京新{i}科技有限公司" if i % 2 == 0 else f"北京第{i}科技有限公司")
        second.append(row(i, name=name, english=f"Beijing New{i} Tech" if i % 8 == 0 else "",
                          former=f"北京第{i}科技有限公司" if i % 9 == 0 else "",
                          rep="王五" if i % 3 == 1 else ("李四" if i % 2 else "张三"),
                          rep_id=person[(i + 1) % FIRMS] if i % 4 == 1 else (person[i] if i % 5 == 0 else ""),
                          day="2020-01-02" if i % 5 else "", status="注销" if i % 5 == 0 else "存续",
                          address="" if i % 6 == 0 else None, region="" if i % 6 == 0 else "110105"))
        if i % 11 == 0:  # the same firm again in the file, then a third time: three waves
            second.append(row(i, code=_broken(codes[i]), name=f"北京再{i}科技有限公司", rep="赵六",
                              day="2022-06-07", status="吊销"))
            second.append(row(i, code=_broken(codes[i], 1), name=f"北京三{i}科技有限公司", rep="赵六",
                              rep_id=person[i], day="", status="存续"))
    second.append(row(5, code=stray_org, name="北京借码科技有限公司", reg=""))  # a code changing holder
    second.append(row(7, code=uscc("91110000MA0000001"), name="北京第7科技有限公司", reg=reg_no[7]))  # ditto, by reg_no
    second.append([_broken(lone, 1), "北京无码商贸有限公司", "Wuma Trading", "", "赵六", "", "", lone_org, "", "2003-03-03",
                   "存续", "", ""])
    new_org = "70000002" + org_code_check_character("70000002")
    new_code = uscc("91110000" + new_org)
    second += [row(0, code=new_code, name="北京新来科技有限公司", reg=""),  # new in the file, then again
               row(0, code=_broken(new_code), name="北京新来二科技有限公司", reg="", org=new_org)]
    third = [row(i, name=f"北京旧{i}商贸有限公司" if i % 3 == 0 else f"北京第{i}科技有限公司",
                 rep="张三", day="2024-04-04", status="存续") for i in range(0, FIRMS, 5)]  # revived
    return [write_csv(tmp_path / f"extract{n}.csv", HEADERS, rows) for n, rows in enumerate((first, second, third))]


def test_bulk_register_equals_mains_path(cli, db_url, tmp_path, monkeypatch):
    extracts = _extracts(tmp_path)
    with another_store(db_url, tmp_path, "main_path") as other_url:
        mains = Cli(other_url)
        mains("init")
        after, feed = [], []
        for path in extracts:
            assert ingest_one(cli, path, category="registration")["quarantined"] == 0
            tables, feed = _dump(cli.url, feed)
            after.append(tables)
        feed = []
        with monkeypatch.context() as patch:
            patch.setattr(intake, "apply_registrations", register_main_path.apply_registrations)
            for path, expected in zip(extracts, after):
                assert ingest_one(mains, path, category="registration")["quarantined"] == 0
                tables, feed = _dump(other_url, feed)
                assert tables == expected
    names = {row[1]: row for row in after[2]["names"]}
    assert names["北京旧0商贸有限公司"][3] in (True, "True", "1", 1)  # a former name current again
    assert "北京借码科技有限公司" in names and "北京三11科技有限公司" in names and "Wuma Trading" in names
    dissolved = uscc("9111000060" + "0000005")
    assert [dict((row[0], row[2]) for row in tables["entities"])[dissolved] for tables in after] == ["存续", "注销", "存续"]
    # new: the lone firm; two codes changing holder; the firm new in the second file; and firm 22's
    # unverified rows, whose registration number (new to the store) no earlier row of the file had claimed
    assert len(after[1]["entities"]) == FIRMS + 5
