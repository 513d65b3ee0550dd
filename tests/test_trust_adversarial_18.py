"""Due process of listings, probed as an unlucky subject would meet it: a proposal dated ahead of
the clock, deadlines that end on a holiday, reminders out of order, objections on the last day of a
window in Asia/Shanghai while the host runs UTC. Real public firm names, codes with valid check
characters; each test is a defect found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import time_machine

from worlds import resident_id, run, uscc, write_csv

GREE = uscc("91440400192548256")  # 珠海格力电器股份有限公司
MEITUAN = uscc("91110108MA00A0011")  # 北京三快在线科技有限公司 (美团)
ZHANG = resident_id("440402", dt.date(1982, 6, 15), 318)  # 张伟, Zhuhai 香洲区
REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"]
COURT_HEADERS = ["案号", "被执行人姓名/名称", "身份证号码/组织机构代码", "执行法院", "被执行人的履行情况",
                 "失信被执行人行为具体情形", "担保情况", "发布时间"]
UTC = dt.timezone.utc


def court_row(case: str, name: str, code: str, published: str) -> list[str]:
    return [case, name, code, "珠海市香洲区人民法院", "全部未履行", "违反限制消费令", "", published]


def registered_and_judged(cli, folder: Path, published: str = "2026-09-01", person: bool = False) -> None:
    """格力 (and 美团) registered; the court's record of 格力 (or of 张伟) as a judgment defaulter."""
    cli("ingest", write_csv(folder / "register.csv", REGISTER_HEADERS, [
        [GREE, "珠海格力电器股份有限公司", "股份有限公司", "董明珠", "1989-12-13", "存续"],
        [MEITUAN, "北京三快在线科技有限公司", "有限责任公司", "王兴", "2007-04-10", "存续"]]),
        "--authority", "samr", "--category", "registration")
    rows = [court_row("（2026）粤0402执1号", "珠海格力电器股份有限公司", GREE, published)]
    if person:
        rows.append(court_row("（2026）粤0402执2号", "张伟", ZHANG, published))
    cli("ingest", write_csv(folder / "court.csv", COURT_HEADERS, rows), "--authority", "court",
        "--category", "court_defaulter")
    run(cli, "resolve")


def listing_of(cli, code: str) -> dict:
    return run(cli, "listing", "list", "--entity", code)[0]


# -- one clock: an evaluation never runs ahead of the pack's today by accident -----------------------------------

def test_an_evaluation_dated_after_the_packs_today_needs_future(cli, tmp_path: Path) -> None:
    """`xinyong evaluate --as-of 2026-12-10` on 10 November proposed 格力 on a day still a month
    away (its grace and windows read as of then, the store's last evaluation date moved ahead),
    where every due-process step and `process` refuse a day after today unless given --future.
    Now evaluate refuses it too, names --future, and proposes nothing; the pack's today is
    Shanghai's (20:00 UTC on the 10th is already the 11th there)."""
    with time_machine.travel(dt.datetime(2026, 11, 10, 20, 0, tzinfo=UTC), tick=False):
        registered_and_judged(cli, tmp_path)
        ahead = cli("evaluate", "--as-of", "2026-12-10", ok=False)
        assert ahead.exit_code != 0 and "--future" in ahead.output, ahead.output
        assert run(cli, "listing", "list") == []
        spark = cli("evaluate", "--as-of", "2026-12-10", "--engine", "spark", "--snapshot", tmp_path, ok=False)
        assert spark.exit_code != 0 and "--future" in spark.output, spark.output
        run(cli, "evaluate")  # today in Shanghai: 2026-11-11, though the host's date is the 10th
        assert listing_of(cli, GREE)["proposed_on"] == "2026-11-11"
        run(cli, "evaluate", "--as-of", "2026-12-10", "--future")  # a rehearsal, on purpose


# -- deadlines that end on a closed day --------------------------------------------------------------------------

def rolling_cn_pack(folder: Path) -> Path:
    """The national pack with calendar windows ending on a closed day run to the next working day
    (as 《民事诉讼法》 art. 85 has it for a period whose last day is a public holiday)."""
    path = folder / "cn-rolling.yaml"
    path.write_text(f"extends: {Path(__file__).parents[1] / 'xinyong' / 'packs' / 'cn' / 'pack.yaml'}\n"
                    "calendar:\n  deadlines_end_on_working_days: true\n", encoding="utf-8")
    return path


def test_an_objections_review_deadline_ending_on_a_holiday_runs_to_the_next_working_day(cli, tmp_path: Path) -> None:
    """Under a pack whose calendar windows end on working days, 格力 objected on 16 September 2026;
    the court list's 15 days for the review ended on 1 October, National Day, the first of seven
    holidays. The subject's own windows ran to the next working day, the court's did not: `overdue`
    reported the court late from 2 October, and its decision on Thursday 8 October, the first
    working day, was kept as late for good. The review deadline now follows the pack's calendar rule."""
    cli("init", "--pack", rolling_cn_pack(tmp_path))
    with time_machine.travel(dt.datetime(2026, 10, 8, 4, 0, tzinfo=UTC), tick=False):
        registered_and_judged(cli, tmp_path)
        run(cli, "evaluate", "--as-of", "2026-09-10")
        listing = listing_of(cli, GREE)["id"]
        cli("listing", "notify", listing, "--on", "2026-09-14", "--actor", "officer", "--reason", "served")
        objection = run(cli, "objection", "file", "--listing", listing, "--on", "2026-09-16",
                        "--reason", "判决已履行完毕", "--actor", "subject")["objection"]
        assert run(cli, "overdue", "--as-of", "2026-10-02") == []
        assert run(cli, "overdue", "--as-of", "2026-10-08") == []
        [late] = run(cli, "overdue", "--as-of", "2026-10-09")
        assert (late["kind"], late["id"], late["deadline"]) == ("objection", objection, "2026-10-08")
        decided = run(cli, "objection", "decide", objection, "--reject", "--on", "2026-10-08",
                      "--actor", "judge", "--reason", "未见履行凭证")
        assert decided["late"] is False
