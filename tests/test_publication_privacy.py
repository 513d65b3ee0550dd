"""What open data, the change feed, the API and the entity pages may show of persons, on packs and
files the demo never makes (SQLite and PostgreSQL): each test a defect found and fixed.

- a pack field named like a structural key (`key`, `entity`) kept its value unmasked;
- a relations category without a legal basis for persons published their names in the records;
- earlier delta folders kept the rows of records later revoked or whose publicity ended, and of a
  firm's listing out of public view;
- published CSV let cells starting with a fullwidth ＝ ＋ － ＠ (or another NFKC form of them) through;
- passport, travel permit and Hong Kong identity card numbers, ID numbers split by dots or slashes,
  typed in fullwidth or other scripts' digits or with × for X, and fullwidth mobiles, went out whole.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow.parquet as pq
import time_machine
import yaml

from worlds import FIRM_CLEAN, FIRM_DEBTOR, NAMES, build_world, resident_id, run, serving, write_csv
from xinyong.domain.calendar import pack_today
from xinyong.domain.identifiers import mask_person_id
from xinyong.domain.pack import load_pack, load_raw
from xinyong.services.resolution.entities import public_file
from xinyong.store.db import open_engine, set_setting

PENALTY_HEADERS = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"]


def _use_pack(url: str, overlay: Path) -> None:
    engine = open_engine(url)
    with engine.begin() as c:
        set_setting(c, "pack", str(overlay))
    engine.dispose()


def _overlay(folder: Path, categories: list[dict[str, Any]]) -> Path:
    path = folder / "variant.yaml"
    path.write_text(yaml.safe_dump({"code": "cn-variant", "version": "0", "extends": "cn", "categories": categories},
                                   allow_unicode=True), encoding="utf-8")
    load_pack(str(path))  # a valid pack
    return path


def _every_published_text(out: Path) -> str:
    """Every file under the publish folder, as text (Parquet read back to rows)."""
    parts = []
    for path in sorted(out.rglob("*")):
        if path.suffix == ".parquet":
            parts.append(json.dumps(pq.read_table(path).to_pylist(), ensure_ascii=False, default=str))
        elif path.is_file():
            parts.append(path.read_text(encoding="utf-8-sig"))
    return "\n".join(parts)


def _api_file(url: str, key: str) -> dict[str, Any]:
    with serving(url, webhooks=False) as base:
        answer = httpx.get(f"{base}/v1/entities/{key}", timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _surfaces(url: str, keys: list[str]) -> str:
    """The public feed, the API answers and the entity pages of `keys`, as text."""
    with serving(url, webhooks=False) as base, httpx.Client(base_url=base, timeout=30) as http:
        answers = [http.get("/v1/public/changes", params={"since": 0}).text]
        for key in keys:
            answers += [http.get(f"/v1/entities/{key}").text, http.get(f"/entities/{key}").text]
    return "\n".join(answers)


# -- 1. a field named like a structural key -----------------------------------------------------------------

CONTACT = resident_id("110101", dt.date(1990, 3, 7), 77)
OLD_STYLE_ID = "110102720801456"  # a first-generation (15-digit) ID number


def test_a_field_named_key_or_entity_is_masked_on_every_public_surface(cli, tmp_path: Path) -> None:
    """Masking kept the values of every key named `key` or `entity` (the entity keys pages link by),
    at any depth: a pack field so named went out whole, ID numbers, mobiles and addresses with it, in
    full/ and delta/ (every format), the change feed (hence the webhooks), the API and the pages.
    The field names are the pack's own, nested under `fields`: such a pack is published, masked."""
    build_world(cli, tmp_path)
    raw, _ = load_raw("cn")
    penalty = next(c for c in raw["categories"] if c["code"] == "penalty")
    fields = [*penalty["fields"], {"name": "key", "headers": ["关键字"]}, {"name": "entity", "headers": ["关联主体"]}]
    _use_pack(cli.url, _overlay(tmp_path, [{"code": "penalty", "fields": fields}]))
    out = tmp_path / "open"
    cli("publish", "--out", out)
    today = pack_today(load_pack("cn"))
    secrets = {"key": f"联系人王五，身份证号{CONTACT}，住北京市朝阳区幸福路1号", "entity": f"旧证{OLD_STYLE_ID}，电话13912345678"}
    cli("ingest", write_csv(tmp_path / "penalty.csv", [*PENALTY_HEADERS, "关键字", "关联主体"], [
        [NAMES[FIRM_CLEAN], FIRM_CLEAN, "京市监罚〔2026〕77号", (today - dt.timedelta(days=5)).isoformat(), "罚款", "3",
         secrets["key"], secrets["entity"]]]), "--authority", "samr", "--category", "penalty")
    run(cli, "resolve")
    second = json.loads(cli("publish", "--out", out, "--json").stdout)
    assert second["delta"]
    published = _every_published_text(out) + _surfaces(cli.url, [FIRM_CLEAN])
    for secret in (CONTACT, OLD_STYLE_ID, "13912345678", "幸福路"):
        assert secret not in published, secret
    rows = [orjson.loads(line) for line in (out / "full" / "records.jsonl").read_bytes().splitlines()]
    (record,) = [row for row in rows if row["record_key"] == "samr:京市监罚〔2026〕77号"]
    assert record["fields"]["key"] == f"联系人王五，身份证号{mask_person_id(CONTACT)}，住***"
    assert record["fields"]["entity"] == f"旧证{mask_person_id(OLD_STYLE_ID)}，电话139****5678"


# -- 2. relations without a legal basis for persons ----------------------------------------------------------

PERSONS = ("赵六", "孙经理", "李董事")


def test_persons_in_relations_appear_only_under_a_legal_basis(cli, tmp_path: Path) -> None:
    """Under a pack whose relations category names no legal basis for persons, the ownership graph
    showed them unnamed, but their relations records (the name is the record's key and a field) went
    out whole: full/, the change feed, the API and the entity page. Records of firm parties stay."""
    from test_relations import first_file

    build_world(cli, tmp_path)
    _use_pack(cli.url, _overlay(tmp_path, [{"code": "relations", "person_legal_basis": None}]))
    out = tmp_path / "open"
    cli("publish", "--out", out)
    run(cli, "ingest", first_file(tmp_path), "--authority", "samr", "--category", "relations")
    run(cli, "resolve")
    cli("publish", "--out", out)
    published = _every_published_text(out) + _surfaces(cli.url, [FIRM_DEBTOR])
    for name in PERSONS:
        assert name not in published, name
    file = _api_file(cli.url, FIRM_DEBTOR)
    assert {r["fields"]["party_name"] for r in file["records"] if r["category"] == "relations"} == {
        NAMES[FIRM_CLEAN], "某某外资控股有限公司"}
    assert {(p["relation"], p["name"]) for p in file["ownership"]["parties"] if p["person"]} >= {
        ("actual_controller", None), ("shareholder", None)}
    engine = open_engine(cli.url)  # under cn (a legal basis) the same records name them
    with_basis = public_file(engine, load_pack("cn"), FIRM_DEBTOR, pack_today(load_pack("cn")))
    engine.dispose()
    assert {r["fields"]["party_name"] for r in with_basis["records"] if r["category"] == "relations"} >= set(PERSONS)


# -- 3. withdrawn facts leave the earlier deltas -------------------------------------------------------------

def _manifest_is_true(out: Path) -> dict[str, Any]:
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    for f in manifest["files"]:
        path = out / f["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"], f["path"]
        if f["format"] == "jsonl":
            assert len(path.read_bytes().splitlines()) == f["rows"], f["path"]
        elif f["format"] == "csv":
            assert len(list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))) - 1 == f["rows"]
        else:
            assert pq.read_table(path).num_rows == f["rows"], f["path"]
    return manifest


def test_earlier_deltas_stop_serving_records_revoked_or_past_their_publicity(cli, tmp_path: Path) -> None:
    """A firm's record revoked by its authority as erroneous (never valid), and one whose publicity
    period ended (no longer to be offered), stayed in the delta folder that first published them,
    served under /data/ for ever; a person's were already taken out. Now both are redacted from the
    log and the earlier folder is written again, its manifest entries (sha256, rows) with it."""
    build_world(cli, tmp_path)
    out = tmp_path / "open"
    cli("publish", "--out", out)
    today = pack_today(load_pack("cn"))
    decided = (today - dt.timedelta(days=10)).isoformat()
    cli("ingest", write_csv(tmp_path / "penalty.csv", PENALTY_HEADERS, [
        [NAMES[FIRM_CLEAN], FIRM_CLEAN, "京市监罚〔2026〕901号", decided, "罚款", "3"],
        [NAMES[FIRM_CLEAN], FIRM_CLEAN, "京市监罚〔2026〕902号", decided, "罚款", "4"],
    ]), "--authority", "samr", "--category", "penalty")
    run(cli, "resolve")
    added = json.loads(cli("publish", "--out", out, "--json").stdout)["delta"]
    lines = (out / added / "records.jsonl").read_bytes().splitlines()
    rows = {row["record_key"]: row for row in map(orjson.loads, lines)}
    assert sorted(rows) == ["samr:京市监罚〔2026〕901号", "samr:京市监罚〔2026〕902号"]
    ends = dt.date.fromisoformat(rows["samr:京市监罚〔2026〕902号"]["publicity_ends"])

    cli("record", "revoke", "samr:京市监罚〔2026〕901号", "--reason", "issued in error", "--actor", "samr")
    cli("publish", "--out", out)
    with time_machine.travel(dt.datetime.combine(ends + dt.timedelta(days=2), dt.time(12)), tick=True):
        cli("publish", "--out", out)
    for number in ("901号", "902号"):
        assert number not in _every_published_text(out / added), f"{added} still serves {number}"
    manifest = _manifest_is_true(out)
    assert added in {str(Path(f["path"]).parent) for f in manifest["files"]}
    with serving(cli.url, webhooks=False, data_dir=out) as base:
        served = httpx.get(f"{base}/data/{added}/records.jsonl")
        feed = httpx.get(f"{base}/v1/public/changes", params={"since": 0}).text
    assert served.status_code == 200 and "901号" not in served.text and "902号" not in served.text
    assert "901号" not in feed and "902号" not in feed
    deletes = [orjson.loads(line) for path in (out / "delta").rglob("records.jsonl")
               for line in path.read_bytes().splitlines()]
    assert sum(row["op"] == "delete" and row["entity"] == FIRM_CLEAN for row in deletes) == 2


# -- 4. fullwidth formula starts ------------------------------------------------------------------------------

def test_published_csv_neutralises_fullwidth_formula_starts(tmp_path: Path) -> None:
    """＝HYPERLINK(...) typed with a Chinese input method is a formula to a spreadsheet that folds input
    by NFKC (or once pasted into the formula bar): it went into the CSV as it was."""
    from xinyong.services.publication.opendata import CSV_NOTE, TABLES, _TableWriter

    columns = list(TABLES["listings"])
    writer = _TableWriter(tmp_path, "listings", columns, {k: v[0] for k, v in TABLES["listings"].items()})
    starts = ["＝HYPERLINK(\"http://evil.example\",\"x\")", "＋1＋1", "－2＋3", "＠SUM(A1)"]
    for n, value in enumerate(starts):
        writer.add({k: None for k in columns} | {"entity": "E", "listing": n, "list": value, "evidence": []})
    writer.close()
    cells = [row["list"] for row in csv.DictReader(io.StringIO((tmp_path / "listings.csv").read_text("utf-8-sig")))]
    assert cells == ["'" + value for value in starts]
    assert [row["list"] for row in pq.read_table(tmp_path / "listings.parquet").to_pylist()] == starts  # raw
    assert all(c in CSV_NOTE for c in "＝＋－＠")


def test_every_character_nfkc_folds_into_a_formula_start_is_neutralised() -> None:
    """Not only the fullwidth forms: ﹦ ﹢ ﹣ ﹫ (small forms), ⁼ ⁺ ₌ ₊ fold into = + by NFKC too."""
    import unicodedata

    from xinyong.domain.csvsafe import neutralise

    folding = [chr(c) for c in range(0x80, 0x110000)
               if unicodedata.normalize("NFKC", chr(c))[:1] in ("=", "+", "-", "@")]
    assert "﹦" in folding and "＝" in folding
    assert [neutralise(c + "1+1") for c in folding] == ["'" + c + "1+1" for c in folding]


# -- 5. passport and permit numbers ----------------------------------------------------------------------------

PERMIT, PASSPORT, HK_ID = "H1234567801", "E12345678", "A1234563"


def test_passport_and_permit_numbers_are_masked_on_every_surface(cli, tmp_path: Path) -> None:
    """A court writes a debtor's mainland travel permit (回乡证) number in the ID-number column the pack
    keeps restricted: no resident ID, so the record's key ends with the number as given, and once a
    reviewer attaches the record to the listed person, that key went out whole (dump, feed, API, page).
    An authority's remark naming a person's passport or Hong Kong identity card number went out whole
    too: masking knew only resident ID numbers and mobiles."""
    from test_due_rules import COURT_HEADERS, GROUND_1
    from worlds import PERSON

    build_world(cli, tmp_path)
    out = tmp_path / "open"
    cli("publish", "--out", out)
    person = run(cli, "entity", "show", PERSON)["key"]
    cli("ingest", write_csv(tmp_path / "court.csv", COURT_HEADERS, [
        ["(2025)京0105执7号", "张三", PERMIT, "北京市朝阳区人民法院", "全部未履行", GROUND_1, "2025-08-05"]]),
        "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    (waiting,) = run(cli, "review", "list")
    run(cli, "review", "accept", waiting["id"], "--entity", person, "--reason", "the same debtor")
    today = pack_today(load_pack("cn"))
    cli("ingest", write_csv(tmp_path / "penalty.csv", [*PENALTY_HEADERS, "备注"], [
        [NAMES[FIRM_CLEAN], FIRM_CLEAN, "京市监罚〔2026〕88号", (today - dt.timedelta(days=3)).isoformat(), "罚款", "2",
         f"外籍股东John Smith（护照号码：{PASSPORT}），香港身份证{HK_ID}(3)，回乡证号 {PERMIT[:1]} {PERMIT[1:]}"]]),
        "--authority", "samr", "--category", "penalty")
    run(cli, "resolve")
    cli("publish", "--out", out)
    published = _every_published_text(out) + _surfaces(cli.url, [person, FIRM_CLEAN])
    assert "(2025)京0105执7号" in published and "John Smith" in published  # the facts are public
    for number in (PERMIT, PERMIT[1:], PASSPORT, PASSPORT[1:], HK_ID, HK_ID[1:]):
        assert number not in published, number


DOCUMENT_TEXTS = [
    ("护照号码：E12345678", "护照号码：*******78"),
    ("香港身份证A1234563(3)", "香港身份证*******33"),
    ("回乡证号 H 1234567801", "回乡证号 *********01"),
    ("台胞证号码为12345678。", "台胞证号码为******78。"),
    ("护照 EA1234567 and more", "护照 *******67 and more"),
    ("身份证号码：11010119900307077", "身份证号码：110101********077"),  # a digit short: still somebody's
    # unchanged: a firm's code, no number, too few digits; a resident ID keeps its own mask
    ("证件号码91110105MA0CL00032", "证件号码91110105MA0CL00032"),
    ("证件类型：护照", "证件类型：护照"),
    ("通行证有效期2025年", "通行证有效期2025年"),
    (f"身份证号{CONTACT}", f"身份证号{mask_person_id(CONTACT)}"),
]


def test_document_numbers_in_free_text_and_record_keys() -> None:
    from xinyong.domain.identifiers import mask_record_key
    from xinyong.domain.privacy import mask_text

    assert [mask_text(text) for text, _ in DOCUMENT_TEXTS] == [masked for _, masked in DOCUMENT_TEXTS]
    assert mask_record_key(f"court:(2025)京0105执7号#{PERMIT}") == "court:(2025)京0105执7号#*********01"
    assert mask_record_key(f"court:(2025)京0105执8号#{PASSPORT}") == "court:(2025)京0105执8号#*******78"
    for firm in (f"court:(2025)粤0305执2号#{FIRM_DEBTOR}", "court:(2025)粤0305执3号#某某公司"):
        assert mask_record_key(firm) == firm


SPLIT = [f"{CONTACT[:6]}{sep}{CONTACT[6:14]}{sep}{CONTACT[14:]}" for sep in (".", "/", "_", "·", "．", "／", "・")]
OLD_SPLIT = [f"{OLD_STYLE_ID[:6]}{sep}{OLD_STYLE_ID[6:12]}{sep}{OLD_STYLE_ID[12:]}" for sep in (".", "/")]


def test_id_numbers_split_by_dots_slashes_or_middle_dots_are_masked() -> None:
    """An ID number (18 or 15 digits) or a mobile number written in groups separated by dots, slashes,
    underscores or middle dots went out whole; dates, addresses of machines and amounts stay."""
    from xinyong.domain.privacy import mask_text

    for text in SPLIT:
        assert mask_text(f"被执行人王五，身份证{text}") == f"被执行人王五，身份证{mask_person_id(CONTACT)}", text
    for text in OLD_SPLIT:
        assert mask_text(f"旧身份证{text}") == f"旧身份证{mask_person_id(OLD_STYLE_ID)}", text
    assert mask_text("电话138.1234.5678") == "电话138****5678"
    for kept in ("公示期2025.01.01-2026.01.01", "服务器192.168.100.200", "罚没1.234.567元",
                 f"代码{FIRM_DEBTOR[:8]}/{FIRM_DEBTOR[8:]}"):
        assert mask_text(kept) == kept


def test_numbers_typed_in_fullwidth_or_other_digits_are_masked() -> None:
    """A mobile number typed with a Chinese input method's fullwidth digits (１３９…) went out whole, and
    so did an ID number in digits pasted from another script or a mathematical font."""
    from xinyong.domain.privacy import mask_text

    assert mask_text("电话：１３９１２３４５６７８") == "电话：１３９****５６７８"
    bold = "".join(chr(0x1D7CE + int(c)) if c.isdigit() else c for c in CONTACT)  # 𝟏𝟏𝟎…
    arabic_indic = "".join(chr(0x660 + int(c)) if c.isdigit() else c for c in CONTACT)  # ١١٠…
    assert mask_text(f"身份证{bold}") == f"身份证{mask_person_id(CONTACT)}"
    masked = mask_text(f"身份证{arabic_indic}")
    assert masked.startswith("身份证") and masked.count("*") == 8 and arabic_indic not in masked


def test_earlier_deltas_stop_serving_a_firms_listing_out_of_public_view(cli, tmp_path: Path) -> None:
    """A firm's court listing that took effect after the first publish, then ended (court_defaulters
    keeps no public history): the delta that published it kept its row; now it goes, as a person's."""
    from test_due_rules import COURT_HEADERS, GROUND_1

    build_world(cli, tmp_path)
    out = tmp_path / "open"
    cli("publish", "--out", out)
    cli("ingest", write_csv(tmp_path / "court.csv", COURT_HEADERS, [
        ["(2025)京0105执55号", NAMES[FIRM_CLEAN], FIRM_CLEAN, "北京市朝阳区人民法院", "全部未履行", GROUND_1,
         "2025-08-03"]]), "--authority", "court", "--category", "court_defaulter")
    run(cli, "resolve")
    run(cli, "evaluate", "--as-of", "2025-09-15")
    (listing,) = run(cli, "listing", "list", "--entity", FIRM_CLEAN)
    cli("listing", "notify", listing["id"], "--on", "2025-09-22", "--actor", "officer", "--reason", "served")
    run(cli, "process", "--as-of", "2025-10-20")
    added = json.loads(cli("publish", "--out", out, "--json").stdout)["delta"]
    shown = [orjson.loads(line) for line in (out / added / "listings.jsonl").read_bytes().splitlines()]
    assert [(row["listing"], row["in_force"]) for row in shown] == [(listing["id"], True)]

    cli("listing", "end", listing["id"], "--reason", "performed", "--actor", "court")
    cli("publish", "--out", out)
    assert "court_defaulters" not in _every_published_text(out / added), f"{added} still serves the listing"
    _manifest_is_true(out)
    with serving(cli.url, webhooks=False) as base:
        feed = httpx.get(f"{base}/v1/public/changes", params={"since": 0}, timeout=30).json()["events"]
    about = [event for event in feed if event["change"]["id"] == f"listing:{listing['id']}"]
    assert [event["change"]["op"] for event in about] == ["add", "delete"]
    assert all(event["change"]["data"] is None for event in about)


def test_an_id_number_whose_check_character_is_typed_as_a_times_sign_is_masked() -> None:
    """Input methods often give × for the check character X: the 17 digits before it (the whole number,
    as the check character follows from them) went out whole."""
    from xinyong.domain.privacy import mask_text

    number = next(n for n in (resident_id("110101", dt.date(1985, 1, 1), serial) for serial in range(1, 999))
                  if n.endswith("X"))
    assert mask_text(f"被执行人王五（身份证{number[:17]}×）") == f"被执行人王五（身份证{mask_person_id(number)}）"
    assert mask_text("面积3×4平方米") == "面积3×4平方米"
