"""The platform's promises to subjects, probed a third time with hand-made inputs the demo never
sends: real public company names, codes with valid check characters. Each test is a defect found
and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select

from test_trust_adversarial import COURT_HEADERS, NAMES, PINGAN, TODAY, XIAOMI, court_row
from worlds import resident_id, run, write_csv
from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.services.publication.subjects import object_as_subject, owns_file, subject_cases, subject_file
from xinyong.store import tables as t
from xinyong.store.db import open_engine

REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "企业类型", "成立日期", "登记状态"]


def penalty(number: int) -> dict[str, str]:
    return {"统一社会信用代码": XIAOMI, "当事人名称": NAMES[XIAOMI], "行政处罚决定书文号": f"京市监罚〔2026〕{number}号",
            "处罚决定日期": "2026-06-01", "处罚类别": "罚款", "罚款金额（万元）": "5"}


def test_a_record_with_a_value_nested_hundreds_deep_is_quarantined_not_a_crash(cli, tmp_path: Path) -> None:
    """A market regulator's `submit:penalty` key posted 小米's penalty and, beside it, a record whose
    extra field held a list nested 500 deep (JSON the API parses: it reads up to ~990 levels). orjson
    reads 1,024 levels but writes 255: the JSON Lines reader raised writing the value back, and the
    call answered 500 `internal` with nothing stored (the same file ingested by `ingest` ended in a
    traceback). Now that record is quarantined with its reason and the good one is taken."""
    with time_machine.travel(TODAY, tick=False):
        register = write_csv(tmp_path / "register.csv", REGISTER_HEADERS,
                             [[XIAOMI, NAMES[XIAOMI], "有限责任公司", "2010-03-03", "存续"]])
        cli("ingest", register, "--authority", "samr", "--category", "registration")
        key = run(cli, "authority", "key", "create", "samr", "--scopes", "submit:penalty")["key"]
        deep = "[" * 500 + "]" * 500
        body = json.dumps({"category": "penalty", "records": [penalty(1), {**penalty(2), "备注": 0}]}, ensure_ascii=False)
        body = body.replace('"备注": 0', f'"备注": {deep}')
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn")), raise_server_exceptions=False) as http:
                answer = http.post("/v1/records", headers={"X-API-Key": key, "content-type": "application/json"},
                                   content=body)
            assert answer.status_code == 201, answer.text
            assert (answer.json()["accepted"], answer.json()["quarantined"]) == (1, 1)
            assert answer.json()["rejects"] == [{"row": 2, "field": None,
                                                 "reason": "a value nested too deep (more than 255 levels)"}]
        finally:
            engine.dispose()
        lines = tmp_path / "penalties.jsonl"
        lines.write_text(json.dumps(penalty(3), ensure_ascii=False) + "\n"
                         + json.dumps({**penalty(4), "备注": 0}, ensure_ascii=False).replace("0}", deep + "}") + "\n",
                         encoding="utf-8")
        batch = run(cli, "ingest", lines, "--authority", "samr", "--category", "penalty")
        assert (batch["accepted"], batch["quarantined"]) == (1, 1)


LEI = resident_id("110108", dt.date(1969, 12, 16), 135)
WANG_XIAOCHUAN = resident_id("110108", dt.date(1978, 8, 2), 246)


def reached(cli, person: str, as_of: str) -> tuple[str, list[int]]:
    answer = json.loads(cli("screen", person, "--action", "high_consumption", "--as-of", as_of, "--json").stdout)
    return answer["decision"], [measure["listing"]["id"] for measure in answer["measures"]]


def test_a_new_legal_representative_is_reached_only_from_the_register_that_names_him(cli, tmp_path: Path) -> None:
    """小米, on the court's list from 10-25, had 雷军 as its legal representative; the register sent on
    11-10 names another (王小川). A register row is dated by the firm's establishment (2010-03-03):
    the change was dated so, 雷军's relation ended the day it began (never held) and 王小川's began in
    2010. Screened as of 11-01 (a high-speed train ticket bought then, checked again), 王小川 was
    denied for a firm he did not represent, and 雷军, who did, was allowed. Now a change the row
    does not date takes effect on the pack's today."""
    headers = REGISTER_HEADERS[:3] + ["法定代表人", "法定代表人证件号码"] + REGISTER_HEADERS[3:]
    with time_machine.travel(TODAY, tick=False):
        # 雷军 first without his ID number, then with it: the same representative since 2010, as before
        for number, id_number in enumerate(("", LEI)):
            first = write_csv(tmp_path / f"register-{number}.csv", headers,
                              [[XIAOMI, NAMES[XIAOMI], "有限责任公司", "雷军", id_number, "2010-03-03", "存续"]])
            cli("ingest", first, "--authority", "samr", "--category", "registration")
        court = write_csv(tmp_path / "court.csv", COURT_HEADERS, [court_row("（2026）京0108执200号", NAMES[XIAOMI], XIAOMI)])
        cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
        run(cli, "resolve")
        run(cli, "evaluate", "--as-of", "2026-10-10")
        (listing,) = run(cli, "listing", "list", "--entity", XIAOMI)
        cli("listing", "notify", listing["id"], "--on", "2026-10-14", "--actor", "officer", "--reason", "served")
        run(cli, "process", "--as-of", "2026-10-30")
        assert reached(cli, LEI, "2026-10-27") == ("deny", [listing["id"]])
        second = write_csv(tmp_path / "register-2.csv", headers,
                           [[XIAOMI, NAMES[XIAOMI], "有限责任公司", "王小川", WANG_XIAOCHUAN, "2010-03-03", "存续"]])
        cli("ingest", second, "--authority", "samr", "--category", "registration")
        run(cli, "resolve")
        for day in ("2026-10-27", "2026-11-01", "2026-11-09"):
            assert reached(cli, WANG_XIAOCHUAN, day) == ("allow", []), day
            assert reached(cli, LEI, day) == ("deny", [listing["id"]]), day
        assert reached(cli, WANG_XIAOCHUAN, "2026-11-10") == ("deny", [listing["id"]])
        assert reached(cli, LEI, "2026-11-10") == ("allow", [])


def test_a_rename_the_register_does_not_date_is_dated_the_day_it_arrived(cli, tmp_path: Path) -> None:
    """小米's register row of 11-10 gives its new name, 北京小米科技有限责任公司. The row's date is the
    firm's establishment (2010-03-03), and the rename was dated so: every public surface showed the
    name it had borne until that day as given up in 2010, and the new one as borne since 2010."""
    with time_machine.travel(TODAY, tick=False):
        for number, name in enumerate((NAMES[XIAOMI], "北京小米科技有限责任公司")):
            register = write_csv(tmp_path / f"register-{number}.csv", REGISTER_HEADERS,
                                 [[XIAOMI, name, "有限责任公司", "2010-03-03", "存续"]])
            cli("ingest", register, "--authority", "samr", "--category", "registration")
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                page = http.get(f"/v1/entities/{XIAOMI}").json()
        finally:
            engine.dispose()
        assert page["name"] == "北京小米科技有限责任公司"
        assert sorted((n["name"], n["current"], n["valid_from"], n["valid_to"]) for n in page["names"]) == [
            ("北京小米科技有限责任公司", True, "2026-11-10", None),
            ("小米科技有限责任公司", False, "2010-03-03", "2026-11-10")]


def test_a_former_name_the_register_lists_is_not_given_the_founding_day_as_its_end(cli, tmp_path: Path) -> None:
    """小米's register row lists its former name (曾用名) 北京小米科技有限责任公司 with no date, as registers
    do; the row's date is the firm's establishment (2010-03-03). That date was stored as the day the
    former name ended, and the public entity page (and its API, and open data) said "until 3 March 2010"
    of a name the firm bore for years after. A former name's end is unknown unless given: none is shown."""
    former = "北京小米科技有限责任公司"
    with time_machine.travel(TODAY, tick=False):
        rows = [[XIAOMI, NAMES[XIAOMI], "有限责任公司", "2010-03-03", "存续", former],  # a new firm
                [PINGAN, NAMES[PINGAN], "股份有限公司", "2010-03-03", "存续", ""]]
        # then a known firm's row that lists former names
        again = [[PINGAN, NAMES[PINGAN], "股份有限公司", "2010-03-03", "存续", "平安旧名甲有限公司；平安旧名乙有限公司"]]
        for number, batch in enumerate((rows, again)):
            cli("ingest", write_csv(tmp_path / f"register-{number}.csv", [*REGISTER_HEADERS, "曾用名"], batch),
                "--authority", "samr", "--category", "registration")
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn"))) as http:
                pages = {code: http.get(f"/v1/entities/{code}").json() for code in (XIAOMI, PINGAN)}
                html = http.get(f"/entities/{XIAOMI}", headers={"accept-language": "zh"}).text
        finally:
            engine.dispose()
        assert sorted((n["name"], n["current"], n["valid_to"]) for n in pages[XIAOMI]["names"]) == [
            (former, False, None), (NAMES[XIAOMI], True, None)]
        assert sorted((n["name"], n["current"], n["valid_to"]) for n in pages[PINGAN]["names"]) == [
            (NAMES[PINGAN], True, None), ("平安旧名乙有限公司", False, None), ("平安旧名甲有限公司", False, None)]
        assert former in html and "2010" not in html.split(former, 1)[1].split("</dd>", 1)[0]


def penalty_linked_to_pingan_by_name(cli, tmp_path: Path) -> None:
    """The register's firms, and a penalty naming 中国平安 by its name alone (no code), resolved to it."""
    register = write_csv(tmp_path / "register.csv", REGISTER_HEADERS,
                         [[code, name, "有限责任公司", "2010-03-03", "存续"] for code, name in NAMES.items()])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    penalties = write_csv(tmp_path / "penalties.csv", list(penalty(9)),
                          [["", NAMES[PINGAN], "京市监罚〔2026〕9号", "2026-06-01", "罚款", "5"]])
    cli("ingest", penalties, "--authority", "samr", "--category", "penalty")
    run(cli, "resolve")


def test_another_subjects_objection_never_follows_its_record_into_this_file(cli, tmp_path: Path) -> None:
    """A penalty naming 中国平安 by its name alone was linked to it; 中国平安 objected in its portal
    (not ours) with an internal letter attached. The regulator's review moved the record to 小米.
    Signed in, 小米 then saw 中国平安's objection (its reason, its code as the filer) among its own
    cases, could download 中国平安's letter, and could not object to the penalty itself (an
    objection "already open"). Now 小米 sees none of it and may object; 中国平安 keeps its case."""
    with time_machine.travel(TODAY, tick=False):
        penalty_linked_to_pingan_by_name(cli, tmp_path)
        engine, pack = open_engine(cli.url), load_pack("cn")
        try:
            today = TODAY.date()
            (record,) = [r for r in subject_file(engine, pack, PINGAN, today)["records"] if r["category"] == "penalty"]
            filed = object_as_subject(engine, pack, PINGAN, record_id=record["id"], reason="不是本公司的处罚",
                                      files=[("平安内部函.txt", "平安内部材料".encode(), "text/plain")], on=today)
            run(cli, "review", "reject", str(record["id"]), "--entity", PINGAN, "--reason", "not 中国平安")
            run(cli, "review", "accept", str(record["id"]), "--entity", XIAOMI, "--reason", "小米's")
            (letter,) = subject_cases(engine, PINGAN)["objections"][0]["attachments"]
            assert [case["id"] for case in subject_cases(engine, PINGAN)["objections"]] == [filed["objection"]]
            assert subject_cases(engine, XIAOMI)["objections"] == []
            assert owns_file(engine, XIAOMI, letter["sha256"]) is None
            assert owns_file(engine, PINGAN, letter["sha256"]) == "平安内部函.txt"
            (moved,) = [r for r in subject_file(engine, pack, XIAOMI, today)["records"] if r["category"] == "penalty"]
            assert (moved["objection_open"], moved["may_object"]) == (False, True)
        finally:
            engine.dispose()


def test_an_objection_the_review_bore_out_is_upheld_and_cannot_revoke_the_record_later(cli, tmp_path: Path) -> None:
    """中国平安 objected to a penalty linked to it by name ("不是本公司的处罚"); the regulator's review
    moved the record to 小米. The objection stayed open: pending for good in 中国平安's file, and in
    the review queue, where upholding it (its claim was true) revoked the record, 小米's penalty
    gone with it. Now the move upholds it, dated the day, by the reviewer; the record stands."""
    with time_machine.travel(TODAY, tick=False):
        penalty_linked_to_pingan_by_name(cli, tmp_path)
        engine, pack = open_engine(cli.url), load_pack("cn")
        try:
            today = TODAY.date()
            (record,) = [r for r in subject_file(engine, pack, PINGAN, today)["records"] if r["category"] == "penalty"]
            filed = object_as_subject(engine, pack, PINGAN, record_id=record["id"], reason="不是本公司的处罚", on=today)
            moved = run(cli, "review", "reject", str(record["id"]), "--entity", PINGAN, "--reason", "not 中国平安")
            run(cli, "review", "accept", str(record["id"]), "--entity", XIAOMI, "--reason", "小米's")
            (case,) = subject_cases(engine, PINGAN)["objections"]
            assert (case["id"], case["state"], case["decided_on"], case["authority"]) == (
                filed["objection"], "upheld", today, "samr")
            later = cli("objection", "decide", str(filed["objection"]), "--uphold", "--reason", "true", ok=False)
            assert later.exit_code != 0 and "already upheld" in later.output
            (penalty_now,) = [r for r in subject_file(engine, pack, XIAOMI, today)["records"]
                              if r["category"] == "penalty"]
            assert penalty_now["status"] == "active"
            with engine.connect() as c:
                events = c.execute(select(t.audit_events.c.object_id, t.audit_events.c.payload)
                                   .where(t.audit_events.c.action == "objection.upheld")).all()
        finally:
            engine.dispose()
        assert [(object_id, (p if isinstance(p, dict) else json.loads(p))["moved_to"]) for object_id, p in events] == [
            (str(filed["objection"]), moved["entity"])]
        assert moved["objections_upheld"] == [filed["objection"]]
        assert cli("audit", "verify").exit_code == 0
