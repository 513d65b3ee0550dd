"""Matching and intake probed as an attacker and as an unlucky subject would, with hand-made inputs
the demo never sends: real public company names, codes with valid check characters. Each test is a
defect found and fixed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import time_machine
from sqlalchemy import select

from test_columnar import compare
from test_trust_adversarial import PINGAN, TODAY, XIAOMI, listed_world
from worlds import run, serving, uscc, write_csv
from xinyong.store import tables as t
from xinyong.store.db import open_engine

GREE = uscc("91440400192548256")
HUAWEI = uscc("91440300192203821")  # 华为技术有限公司's real code
REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态", "曾用名"]
PENALTY_HEADERS = ["行政处罚决定书文号", "当事人名称", "统一社会信用代码", "处罚决定日期", "处罚类别", "罚款金额（万元）", "备注"]


def quarantined(cli, batch: dict) -> list[tuple[int, str, str]]:
    shown = run(cli, "batch", "show", batch["batch_id"])
    return [(row["row_number"], row["field"], row["reason_code"]) for row in shown["quarantine"]]


def test_a_cell_of_invisible_characters_only_is_empty_on_both_paths(cli, tmp_path: Path) -> None:
    """A register row whose 企业名称 cell held only a zero-width space (U+200B), or a byte order mark
    and a word joiner, was accepted: the entity got a name nobody can see, and a penalty whose
    decision number was a zero-width space was stored under the key `samr:\\u200b`. Only white space
    (NBSP, the ideographic space) counted as empty. Now such a cell is empty on the row path and the
    column-wise path alike: a required field so written rejects the row naming the field, an
    optional one is left out."""
    invisible = ("\u200b", "\ufeff\u2060", "\u00a0\u200b", "\u3000", "\u200c\u200d")
    with time_machine.travel(TODAY, tick=False):
        register = write_csv(tmp_path / "register.csv", REGISTER_HEADERS, [
            [XIAOMI, invisible[0], "有限责任公司", "雷军", "2010-03-03", "存续", ""],
            [GREE, invisible[1], "股份有限公司", "董明珠", "1989-12-13", "存续", ""],
            [HUAWEI, "华为技术有限公司", "有限责任公司", "赵明路", "1987-09-15", "存续", invisible[4]],
        ])
        penalties = write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS, [
            [cell, "华为技术有限公司", HUAWEI, "2026-06-01", "罚款", "5", ""] for cell in invisible
        ] + [["深市监罚〔2026〕7号", "华为技术有限公司", HUAWEI, "2026-06-01", "罚款", "5", invisible[0]],
             ["深市监罚〔2026〕8号", invisible[0], invisible[1], "2026-06-01", "罚款", "5", ""]])
        for path, category in ((register, "registration"), (penalties, "penalty")):
            assert compare(path, category, "samr")[0] == 1  # the fast path and the row path agree row for row
        batch = run(cli, "ingest", register, "--authority", "samr", "--category", "registration")
        assert (batch["accepted"], batch["quarantined"]) == (1, 2)
        assert quarantined(cli, batch) == [(2, "name", "required_empty"), (3, "name", "required_empty")]
        entity = run(cli, "entity", "show", HUAWEI)
        assert [n["name"] for n in entity["names"]] == ["华为技术有限公司"]
        batch = run(cli, "ingest", penalties, "--authority", "samr", "--category", "penalty")
        assert (batch["accepted"], batch["quarantined"]) == (1, 6)
        assert quarantined(cli, batch) == [(n, "decision_no", "required_empty") for n in range(2, 7)] + [
            (8, "subject_name", "no_subject")]
        engine = open_engine(cli.url)
        try:
            with engine.connect() as c:
                (record,) = c.execute(select(t.records.c.record_key, t.records.c.fields, t.records.c.extras)
                                      .where(t.records.c.category == "penalty")).all()
        finally:
            engine.dispose()
        fields = record.fields if isinstance(record.fields, dict) else json.loads(record.fields)
        assert record.record_key == "samr:深市监罚〔2026〕7号" and "remarks" not in fields


LEGACY_HEADERS = ["行政处罚决定书文号", "当事人名称", "工商注册号", "组织机构代码", "处罚决定日期", "处罚类别", "罚款金额（万元）"]


def links(cli, folder: Path) -> dict[str, tuple[str, str]]:
    cli("links", "export", "-o", folder / "links.csv")
    rows = (folder / "links.csv").read_text(encoding="utf-8-sig").splitlines()[1:]
    return {key: (entity, method) for key, entity, method, _ in (row.split(",") for row in rows)}


def test_a_firm_named_with_its_old_registration_number_is_found_by_its_name(cli, tmp_path: Path) -> None:
    """Records of firms registered before 2015 often quote the old 15-digit registration number (工商注册号)
    or the organisation code, which the register no longer carries. 小米's penalty quoting a registration
    number nobody holds made a second entity named 小米科技有限责任公司 instead of being 小米's: the
    penalty never reached 小米's file, the next record naming 小米 without a code went to review as
    ambiguous, and screening the name 小米科技有限责任公司 answered `refer`, no longer naming the firm.
    格力's penalty under its former name with such a number went the same way. Now a legacy code held by
    no entity leaves the name to decide (current or former), never for an entity holding another code
    of that scheme: 华为, whose organisation code is 192203821, is not the subject of a record quoting
    another valid organisation code."""
    with time_machine.travel(TODAY, tick=False):
        register = write_csv(tmp_path / "register.csv", REGISTER_HEADERS, [
            [XIAOMI, "小米科技有限责任公司", "有限责任公司", "雷军", "2010-03-03", "存续", ""],
            [GREE, "珠海格力电器股份有限公司", "股份有限公司", "董明珠", "1989-12-13", "存续", "珠海经济特区工业发展总公司格力电器厂"],
            [HUAWEI, "华为技术有限公司", "有限责任公司", "赵明路", "1987-09-15", "存续", ""],
        ])
        cli("ingest", register, "--authority", "samr", "--category", "registration")
        penalties = write_csv(tmp_path / "penalties.csv", LEGACY_HEADERS, [
            ["京市监罚〔2026〕1号", "小米科技有限责任公司", "110108012345678", "", "2026-06-01", "罚款", "5"],
            ["京市监罚〔2026〕2号", "小米科技有限责任公司", "", "", "2026-06-02", "罚款", "5"],
            ["珠市监罚〔2026〕3号", "珠海经济特区工业发展总公司格力电器厂", "440400000012345", "", "2026-06-01", "罚款", "5"],
            ["深市监罚〔2026〕4号", "华为技术有限公司", "", "192203821", "2026-06-01", "罚款", "5"],
            ["深市监罚〔2026〕5号", "华为技术有限公司", "", "123456788", "2026-06-01", "罚款", "5"],
        ])
        cli("ingest", penalties, "--authority", "samr", "--category", "penalty")
        run(cli, "resolve")
        found = links(cli, tmp_path)
        assert found["samr:京市监罚〔2026〕1号"] == (XIAOMI, "exact_name")
        assert found["samr:京市监罚〔2026〕2号"] == (XIAOMI, "exact_name")
        assert found["samr:珠市监罚〔2026〕3号"] == (GREE, "exact_name")
        assert found["samr:深市监罚〔2026〕4号"] == (HUAWEI, "identifier")
        assert found["samr:深市监罚〔2026〕5号"][0] not in (XIAOMI, GREE, HUAWEI)
        answer = json.loads(cli("screen", "--name", "小米科技有限责任公司", "--action", "bidding", "--json").stdout)
        assert (answer["decision"], answer["match"], answer["subject"]["key"]) == ("allow", "name", XIAOMI)


def test_a_code_typed_with_an_en_dash_or_a_minus_sign_names_the_listed_firm(cli, tmp_path: Path) -> None:
    """A word processor turns the hyphen typed between a code's groups into an en dash (U+2013), a
    spreadsheet's formula bar into a minus sign (U+2212). 小米's code written 91110108–MA0XM0077L was
    `not_found` by screening, where 91110108-MA0XM0077L, spaced or full-width, answered `deny` for the
    listed firm; a batch row so written too. Now every dash is a separator, as in a name."""
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        written = [f"{XIAOMI[:8]}\u2013{XIAOMI[8:]}", f"{XIAOMI[:8]} \u2212 {XIAOMI[8:17]}\u2014{XIAOMI[17]}",
                   f"{XIAOMI[:6]}\u2010{XIAOMI[6:]}"]
        for code in written:
            answer = json.loads(cli("screen", code, "--action", "bidding", "--json").stdout)
            assert (answer["decision"], answer["subject"]["key"]) == ("deny", XIAOMI), code
            assert [m["listing"]["id"] for m in answer["measures"]] == [ids[XIAOMI]]
        batch = write_csv(tmp_path / "batch.csv", ["统一社会信用代码"], [[code] for code in written])
        cli("screen", "--batch", batch, "--action", "bidding", "-o", tmp_path / "results.jsonl")
        results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [(r["decision"], r["subject"]) for r in results] == [("deny", XIAOMI)] * 3


def test_a_listed_firm_typed_in_pinyin_is_referred_never_allowed(cli, tmp_path: Path) -> None:
    """A bank clerk without a Chinese input method typed the listed 小米 as `xiaomi keji youxian zeren
    gongsi`, or `Xiaomi Keji`, or `XIAOMI`: name screening answered `allow` with no candidate, and so did
    the listed 中国平安财产保险 typed in pinyin. A penalty naming 小米 in pinyin without a code made a new
    entity. Now a name typed in pinyin is compared with the Chinese names it spells (a homophone, or the
    start of the name: a short name), pinyin legal forms are legal forms, and the syllables block like a
    homophone's: screening refers (pinyin spells other firms' names too, so never `deny`), and the
    record waits for a person."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        for name, listed in (("xiaomi keji youxian zeren gongsi", XIAOMI), ("Xiaomi Keji", XIAOMI), ("XIAOMI", XIAOMI),
                             ("zhongguo pingan caichan baoxian gufen youxian gongsi", PINGAN)):
            answer = json.loads(cli("screen", "--name", name, "--action", "bidding", "--json").stdout)
            assert (answer["decision"], answer["candidates"][0]["entity"]) == ("refer", listed), name
        batch = write_csv(tmp_path / "batch.csv", ["企业名称"], [["Xiaomi Keji Youxian Gongsi"]])
        cli("screen", "--batch", batch, "--action", "bidding", "-o", tmp_path / "results.jsonl")
        (result,) = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()]
        assert (result["decision"], result["best_candidate"]) == ("refer", XIAOMI)
        penalty = write_csv(tmp_path / "penalty.csv", PENALTY_HEADERS, [
            ["京市监罚〔2026〕9号", "Xiaomi Keji Youxian Zeren Gongsi", "", "2026-06-01", "罚款", "5", ""]])
        cli("ingest", penalty, "--authority", "samr", "--category", "penalty")
        run(cli, "resolve")
        (waiting,) = [item for item in run(cli, "review", "list") if item["record_key"] == "samr:京市监罚〔2026〕9号"]
        assert waiting["candidates"][0]["entity"] == XIAOMI


def test_a_spreadsheet_saved_as_unicode_text_is_read(cli, tmp_path: Path) -> None:
    """A spreadsheet saved as "Unicode text" is UTF-16 with its byte order mark, tab-separated, CRLF. A
    market regulator's penalties for 华为 so saved were refused whole as "binary content, not a text
    file", the reason naming nothing the officer could fix. Now UTF-16 with its BOM (either byte order) is
    read like UTF-8, its rows validated as any file's: a bad row is kept with its row and field."""
    with time_machine.travel(TODAY, tick=False):
        for number, (bom, codec) in enumerate(((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))):
            rows = [PENALTY_HEADERS,
                    [f"深市监罚〔2026〕1{number}号", "华为技术有限公司", HUAWEI, "2026-06-01", "罚款", "5", "（一）"],
                    [f"深市监罚〔2026〕2{number}号", "华为技术有限公司", HUAWEI, "2026-02-30", "罚款", "5", ""]]
            path = tmp_path / f"penalties-{number}.txt"
            path.write_bytes(bom + "".join("\t".join(row) + "\r\n" for row in rows).encode(codec))
            batch = run(cli, "ingest", path, "--authority", "samr", "--category", "penalty")
            assert (batch["encoding"], batch["accepted"], batch["quarantined"]) == ("utf-16", 1, 1)
            assert quarantined(cli, batch) == [(3, "decision_date", "impossible_date")]


def test_a_listed_firm_giving_a_clean_firms_code_in_a_batch_is_referred(cli, tmp_path: Path) -> None:
    """A batch screening row gives a code and a name. The listed 小米 entered procurement with its own
    name and 华为's valid code: the row was answered `allow` for 华为, the name never looked at (the
    code decides, and a clean firm's row is answered in bulk). Now a name beside the code that is not
    the code's firm's (far from every name of it, or exactly another registered firm's) answers `refer`
    with the name's candidates; the firm's own name, traditional, or a branch of it, as before."""
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        register = write_csv(tmp_path / "register-2.csv", REGISTER_HEADERS,
                             [[HUAWEI, "华为技术有限公司", "有限责任公司", "赵明路", "1987-09-15", "存续", ""]])
        cli("ingest", register, "--authority", "samr", "--category", "registration")
        rows = [[HUAWEI, "小米科技有限责任公司"], [HUAWEI, "华为技术有限公司"], [HUAWEI, "華為技術有限公司"],
                [HUAWEI, "华为技术有限公司北京分公司"], [HUAWEI, ""], [XIAOMI, "华为技术有限公司"],
                [HUAWEI, "中国平安财产保险股份有限公司"]]
        batch = write_csv(tmp_path / "batch.csv", ["统一社会信用代码", "企业名称"], rows)
        cli("screen", "--batch", batch, "--action", "bidding", "-o", tmp_path / "results.jsonl")
        results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [(r["decision"], r["subject"]) for r in results] == [
            ("refer", HUAWEI), ("allow", HUAWEI), ("allow", HUAWEI), ("allow", HUAWEI), ("allow", HUAWEI),
            ("deny", XIAOMI), ("refer", HUAWEI)]
        assert [results[0]["best_candidate"], results[6]["best_candidate"]] == [XIAOMI, PINGAN]
        assert results[0]["match"] == "code_and_name_disagree"
        key = run(cli, "authority", "key", "create", "procurement_centre", "--scopes", "screen")["key"]
        with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:  # the same as a job
            started = http.post("/v1/screen/jobs", headers={"X-API-Key": key}, data={
                "purpose": "procurement_review", "action": "bidding"},
                files={"file": ("subjects.csv", batch.read_bytes(), "text/csv")}).json()
            deadline = time.monotonic() + 120
            while (job := http.get(f"/v1/screen/jobs/{started['id']}", headers={"X-API-Key": key}).json())[
                    "state"] in ("queued", "running"):
                assert time.monotonic() < deadline, job
                time.sleep(0.3)
            lines = http.get(f"/v1/screen/jobs/{started['id']}/results.jsonl", headers={"X-API-Key": key}).text
        assert [(r["decision"], r["subject"]) for r in map(json.loads, lines.splitlines())] == [
            (r["decision"], r["subject"]) for r in results]


def test_a_code_typed_with_the_letter_o_for_a_zero_is_the_code(cli, tmp_path: Path) -> None:
    """GB 32100 leaves I, O, S, V and Z out of the USCC's alphabet because they are mistaken for 1, 0, 5,
    U and 2. 小米's code typed 91110108MAOXMOO77L (O for 0), 中国平安's 9131OOOOMA1FPOO33A: screening
    answered `not_found` for the listed firms, in a batch too, and a penalty quoting 小米's code so was
    kept with the code unrecognised. Now such a letter is read as what it was mistaken for where that
    makes a valid USCC, with a warning."""
    typed = {XIAOMI: XIAOMI.replace("0", "O"), PINGAN: PINGAN.replace("0", "O")}
    with time_machine.travel(TODAY, tick=False):
        ids = listed_world(cli, tmp_path)
        for code, written in typed.items():
            answer = json.loads(cli("screen", written, "--action", "bidding", "--json").stdout)
            assert (answer["decision"], answer["subject"]["key"]) == ("deny", code), written
            assert [m["listing"]["id"] for m in answer["measures"]] == [ids[code]]
        batch = write_csv(tmp_path / "batch.csv", ["统一社会信用代码"], [[written] for written in typed.values()])
        cli("screen", "--batch", batch, "--action", "bidding", "-o", tmp_path / "results.jsonl")
        results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [(r["decision"], r["subject"]) for r in results] == [("deny", XIAOMI), ("deny", PINGAN)]
        penalty = write_csv(tmp_path / "penalty.csv", PENALTY_HEADERS, [
            ["京市监罚〔2026〕21号", "小米科技有限责任公司", typed[XIAOMI], "2026-06-01", "罚款", "5", ""]])
        assert compare(penalty, "penalty", "samr")[0] == 1
        batch = run(cli, "ingest", penalty, "--authority", "samr", "--category", "penalty")
        assert (batch["accepted"], batch["warnings"]) == (1, 1)
        run(cli, "resolve")
        assert links(cli, tmp_path)["samr:京市监罚〔2026〕21号"] == (XIAOMI, "identifier")


PINGAN_SHENZHEN = uscc("91440300MA5FP0044")


def test_a_registered_branchs_record_quoting_its_head_offices_code_is_not_the_head_offices(cli, tmp_path: Path) -> None:
    """中国平安财产保险's Shenzhen branch is registered with its own code. A penalty naming the branch
    but quoting the head office's code was linked to the head office by that code (a branch quoting its
    head office's code is taken as the head office's record): the head office would be listed for
    its branch's penalty, though the register holds the branch by that very name. Now that goes to
    review ("code belongs to another firm", the branch shown by its name), as the head office's name
    quoting the branch's code did; a branch the register does not hold is still the head office's."""
    with time_machine.travel(TODAY, tick=False):
        register = write_csv(tmp_path / "register.csv", REGISTER_HEADERS, [
            [PINGAN, "中国平安财产保险股份有限公司", "股份有限公司", "谢永林", "2002-12-24", "存续", ""],
            [PINGAN_SHENZHEN, "中国平安财产保险股份有限公司深圳分公司", "分公司", "张智淳", "2003-01-08", "存续", ""]])
        cli("ingest", register, "--authority", "samr", "--category", "registration")
        penalties = write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS, [
            ["深市监罚〔2026〕31号", "中国平安财产保险股份有限公司深圳分公司", PINGAN, "2026-06-01", "罚款", "5", ""],
            ["沪市监罚〔2026〕32号", "中国平安财产保险股份有限公司上海分公司", PINGAN, "2026-06-01", "罚款", "5", ""],
            ["深市监罚〔2026〕33号", "中国平安财产保险股份有限公司", PINGAN_SHENZHEN, "2026-06-01", "罚款", "5", ""]])
        cli("ingest", penalties, "--authority", "samr", "--category", "penalty")
        run(cli, "resolve")
        assert links(cli, tmp_path)["samr:沪市监罚〔2026〕32号"] == (PINGAN, "identifier")
        waiting = {item["record_key"]: item for item in run(cli, "review", "list")}
        assert sorted(waiting) == ["samr:深市监罚〔2026〕31号", "samr:深市监罚〔2026〕33号"]
        branch = waiting["samr:深市监罚〔2026〕31号"]
        assert branch["reason"] == "code belongs to another firm"
        assert [c["entity"] for c in branch["candidates"]] == [PINGAN, PINGAN_SHENZHEN]


def test_records_naming_a_field_by_different_accepted_keys_are_all_read(cli, tmp_path: Path) -> None:
    """JSON Lines records (a file, or a post to /v1/records) merged from two systems name the same field
    by different keys the pack accepts: 行政处罚决定书文号 in one, 决定书文号 or the canonical `decision_no`
    in others; 统一社会信用代码, 信用代码, `uscc`. The file's first key took the field and the others
    became unknown columns: 华为's and 格力's penalties were quarantined as "required field decision_no is
    empty", their numbers sitting in the same records. Now a later key of a field is read where the
    first is empty (with its own unit: 万元 or yuan), on both validation paths."""
    lines = [
        {"行政处罚决定书文号": "京市监罚〔2026〕41号", "当事人名称": "小米科技有限责任公司", "统一社会信用代码": XIAOMI,
         "处罚决定日期": "2026-06-01", "处罚类别": "罚款", "罚款金额（万元）": "5"},
        {"决定书文号": "深市监罚〔2026〕42号", "企业名称": "华为技术有限公司", "信用代码": HUAWEI,
         "处罚日期": "2026-06-02", "处罚种类": "罚款", "罚款金额（万元）": "2"},
        {"decision_no": "珠市监罚〔2026〕43号", "subject_name": "珠海格力电器股份有限公司", "uscc": GREE,
         "decision_date": "2026-06-03", "penalty_type": "罚款", "fine_amount": 30000},
    ]
    path = tmp_path / "penalties.jsonl"
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    with time_machine.travel(TODAY, tick=False):
        assert compare(path, "penalty", "samr")[0] == 3
        batch = run(cli, "ingest", path, "--authority", "samr", "--category", "penalty")
        assert (batch["accepted"], batch["quarantined"]) == (3, 0)
        engine = open_engine(cli.url)
        try:
            with engine.connect() as c:
                stored = c.execute(select(t.records.c.record_key, t.records.c.subject_code, t.records.c.fields)
                                   .order_by(t.records.c.record_key)).all()
        finally:
            engine.dispose()
        got = [(key, code, (f if isinstance(f, dict) else json.loads(f))["fine_amount"]) for key, code, f in stored]
        assert got == [("samr:京市监罚〔2026〕41号", XIAOMI, 50000.0), ("samr:深市监罚〔2026〕42号", HUAWEI, 20000.0),
                       ("samr:珠市监罚〔2026〕43号", GREE, 30000.0)]


def test_a_screening_batch_saved_as_unicode_text_is_screened(cli, tmp_path: Path) -> None:
    """A bank's list of borrowers saved from a spreadsheet as "Unicode text" (UTF-16 with its BOM, tabs
    between cells) was refused as unreadable by `screen --batch` (decoded as GB18030): the listed 小米
    on it was never screened. Now a batch is decoded as ingestion decodes files (`values.text_encoding`)
    and split on the separator its header line uses."""
    rows = [["统一社会信用代码", "企业名称"], [XIAOMI, "小米科技有限责任公司"], ["", "中国平安财产保险股份有限公司"]]
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        batch = tmp_path / "borrowers.csv"
        batch.write_bytes(b"\xff\xfe" + "".join("\t".join(row) + "\r\n" for row in rows).encode("utf-16-le"))
        cli("screen", "--batch", batch, "--action", "bidding", "-o", tmp_path / "results.jsonl")
        results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [(r["decision"], r["subject"]) for r in results] == [("deny", XIAOMI), ("deny", PINGAN)]
