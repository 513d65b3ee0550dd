"""Hostile inputs and what the system writes back: masking in free text, ID-number prefixes, request
limits and order (key before body), NUL characters, Host-free redirects, CSV formula injection in
every CSV written, terminal escapes in CLI output, plausibility bounds, and the settings table."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from worlds import FIRM_SERIOUS, PERSON, build_world, resident_id, serving, uscc, write_csv
from xinyong import settings
from xinyong.domain.csvsafe import FORMULA_STARTS, SafeDictWriter, neutralise
from xinyong.domain.pack import load_pack
from xinyong.domain.privacy import could_be_person_id, looks_like_old_person_id, mask_text
from xinyong.domain.records import RowValidator, map_columns
from xinyong.domain.terminal import printable
from xinyong.services.publication.lists import csv_chunks

ROOT = Path(__file__).resolve().parents[1]

# -- masking (pure) -------------------------------------------------------------------------------------


def test_free_text_loses_id_numbers_phones_and_addresses() -> None:
    number = resident_id("110101", dt.date(1990, 3, 7), 123)
    text = f"被执行人周八（公民身份号码{number}，住北京市朝阳区某路1号，电话13812345678）"
    assert mask_text(text) == f"被执行人周八（公民身份号码110101********{number[-4:]}，住***，电话138****5678）"
    assert mask_text(f"吴九{number}") == f"吴九110101********{number[-4:]}"
    spaced, dashed = f"{number[:6]} {number[6:14]} {number[14:]}", f"{number[:6]}-{number[6:14]}-{number[14:]}"
    assert number[6:14] not in mask_text(f"证件 {spaced} / {dashed}")
    assert mask_text("旧证 110103790512123 号") == "旧证 110103*****2123 号"
    assert mask_text("手机 138-1234-5678") == "手机 138****5678"
    # a USCC with letters, a firm's all-digit USCC, housing authorities and amounts stay
    firm = uscc("91110000MA01CP001")
    assert mask_text(f"统一社会信用代码{firm}") == f"统一社会信用代码{firm}"
    assert mask_text("北京市住房和城乡建设委员会") == "北京市住房和城乡建设委员会"
    assert mask_text("罚款 2000000 元") == "罚款 2000000 元"


@given(st.text(alphabet="某公司，。 abc（）", max_size=20), st.text(alphabet="某公司，。 abc（）", max_size=20),
       st.dates(min_value=dt.date(1930, 1, 1), max_value=dt.date(2010, 12, 31)), st.integers(0, 999),
       st.sampled_from(["", " ", "-"]))
def test_any_valid_id_number_in_any_text_is_masked(before: str, after: str, born: dt.date, serial: int,
                                                   separator: str) -> None:
    number = resident_id("110101", born, serial)
    written = separator.join((number[:6], number[6:14], number[14:]))
    masked = mask_text(f"{before}{written}{after}")
    assert number[6:14] not in masked.replace(" ", "").replace("-", "")


def test_an_id_number_or_its_beginning_is_no_search_term() -> None:
    number = resident_id("110105", dt.date(1991, 4, 9), 2)
    for prefix in (number, number[:8], number[:12], number[:17], f"{number[:6]} {number[6:14]}", "110103790512123"):
        assert could_be_person_id(prefix), prefix
    for term in ("91110000", "9111000MA", "3301", "北京", uscc("91110000MA01CP001")[:12], "1101011990130"):
        assert not could_be_person_id(term), term
    assert looks_like_old_person_id("110103790512123") and not looks_like_old_person_id("110103791312123")


def test_search_refuses_id_number_prefixes(cli: Any, tmp_path: Path) -> None:
    build_world(cli, tmp_path)
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:
        for term in (PERSON, PERSON[:8], PERSON[:14], PERSON[:17]):
            page = http.get("/search", params={"q": term})
            assert page.status_code == 200
            assert "/entities/" not in page.text.split("<main", 1)[-1].split("</main>")[0] or PERSON not in page.text
            assert 'class="name"' not in page.text, term


# -- plausibility (pack data) ------------------------------------------------------------------------


def test_open_ended_validity_and_decision_dates_bounded_by_the_pack_today() -> None:
    pack = load_pack("cn")
    category = pack.category("licence")
    headers = ["行政许可决定文书号", "行政相对人名称", "许可决定日期", "有效期至"]
    validator = RowValidator(pack, category, "samr", map_columns(pack, category, headers), dt.date(2026, 1, 10))
    kept = validator.validate(["京许〔2026〕1号", "北京某某科技有限公司", "2026-01-11", "长期"])
    assert not hasattr(kept, "reason"), kept
    assert kept.fields["valid_to"] is None and kept.fields["decision_date"] == "2026-01-11"
    far = validator.validate(["京许〔2026〕2号", "北京某某科技有限公司", "2026-01-10", "2099-12-31"])
    assert far.fields["valid_to"] == "2099-12-31"
    late = validator.validate(["京许〔2026〕3号", "北京某某科技有限公司", "2026-01-12", ""])
    assert late.field == "decision_date" and "later than 2026-01-11" in late.reason


# -- the API and the pages: limits, order, NUL, redirects ---------------------------------------------


def _key(cli: Any, authority: str, *scopes: str) -> str:
    return json.loads(cli("authority", "key", "create", authority, "--scopes", ",".join(scopes), "--rate", "1000",
                          "--burst", "1000", "--json").stdout)["key"]


@pytest.fixture
def served(cli: Any, tmp_path: Path):
    build_world(cli, tmp_path)
    keys = {"samr": _key(cli, "samr", "submit:penalty"), "screen": _key(cli, "procurement_centre", "screen")}
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=60) as http:
        yield {"http": http, "keys": keys, "cli": cli, "base": base}


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text
    return response.json()["error"]["message"]


def test_records_key_is_checked_before_the_body_is_read(served: dict[str, Any]) -> None:
    http = served["http"]
    broken = b'{"category": "penalty", "records": [' + b"{" * 1000
    _error(http.post("/v1/records", content=broken, headers={"Content-Type": "application/json"}), 401, "missing_key")
    _error(http.post("/v1/records", content=broken, headers={"Content-Type": "application/json",
                                                               "X-API-Key": "xy_not-a-key"}), 401, "invalid_key")
    # with a known key, the same body is parsed, and refused as malformed
    _error(http.post("/v1/records", content=broken, headers={"Content-Type": "application/json",
                                                               "X-API-Key": served["keys"]["samr"]}),
           422, "invalid_request")


def test_request_body_and_records_per_call_are_bounded(served: dict[str, Any],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    http, keys = served["http"], served["keys"]
    record = {"当事人名称": "北京某某科技有限公司", "统一社会信用代码": FIRM_SERIOUS, "行政处罚决定书文号": "京罚〔2025〕9号",
              "处罚决定日期": "2025-06-01", "处罚类别": "警告"}
    monkeypatch.setenv("XINYONG_MAX_API_RECORDS", "2")
    message = _error(http.post("/v1/records", json={"category": "penalty", "records": [record] * 3},
                               headers={"X-API-Key": keys["samr"]}), 413, "too_many_records")
    assert "XINYONG_MAX_API_RECORDS" in message
    monkeypatch.setenv("XINYONG_MAX_BODY_BYTES", "2000")
    big = {"category": "penalty", "records": [{**record, "备注": "很" * 2000}]}
    _error(http.post("/v1/records", json=big, headers={"X-API-Key": keys["samr"]}), 413, "too_large")

    def chunked():  # no Content-Length: counted as it streams in
        for _ in range(10):
            yield b"identifier\n" + b"9" * 500 + b"\n"
    upload = http.post("/v1/screen/jobs", headers={"X-API-Key": keys["screen"]},
                       files={"file": ("big.csv", b"identifier\n" + b"1" * 5000)}, data={"purpose": "procurement_review"})
    _error(upload, 413, "too_large")
    _error(http.post("/v1/records", content=chunked(), headers={"X-API-Key": keys["samr"],
                                                                "Content-Type": "application/octet-stream"}),
           413, "too_large")


def test_nul_characters_are_refused_clearly(served: dict[str, Any]) -> None:
    http, keys = served["http"], served["keys"]
    page = http.get("/search", params={"q": "北京\x00公司"})
    assert page.status_code == 400 and "NUL" in page.text
    zh = http.get("/search", params={"q": "\x00", "lang": "zh"})
    assert zh.status_code == 400 and "空字符" in zh.text
    _error(http.get("/v1/lists/court_defaulters", params={"q": "a\x00b"}), 422, "invalid_request")
    _error(http.get("/v1/entities/a%00b"), 422, "invalid_request")
    _error(http.post("/v1/feedback", headers={"X-API-Key": keys["screen"]},
                     json={"subject": FIRM_SERIOUS, "measure": "x", "applied": False, "reason": "no\u0000pe"}),
           422, "invalid_request")
    _error(http.post("/v1/screen", headers={"X-API-Key": keys["screen"]},
                     json={"identifier": "9\u00001", "action": "procurement", "purpose": "procurement_review"}),
           422, "invalid_request")


def test_redirects_never_echo_the_host_header(served: dict[str, Any]) -> None:
    with httpx.Client(base_url=served["base"], timeout=30, follow_redirects=False) as http:
        for path in ("/lists/", "/search/", "/v1/lists/court_defaulters/"):
            answer = http.get(path, headers={"Host": "evil.example"})
            if 300 <= answer.status_code < 400:
                location = answer.headers["location"]
                assert "evil.example" not in location and location.startswith("/"), (path, location)
        assert http.get("/lists/", headers={"Host": "evil.example"}).status_code in (307, 308)


# -- CSV formula injection: one function, every writer --------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


@given(st.text(max_size=30))
def test_no_neutralised_cell_starts_a_formula(value: str) -> None:
    safe = neutralise(value)
    assert not safe.startswith(FORMULA_STARTS)
    assert safe == value or safe == "'" + value


def _cells(data: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.lstrip("\ufeff"), newline="")))


def _assert_safe(rows: list[list[str]], *expected: str) -> None:
    cells = [cell for row in rows for cell in row]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)], cells
    for value in expected:
        assert "'" + value in cells, (value, cells)


def test_list_export_writer_neutralises() -> None:
    rows = [{"entity": "X1", "name": value, "evidence": value} for value in FORMULAS]
    _assert_safe(_cells(b"".join(csv_chunks(rows)).decode("utf-8")), *FORMULAS)
    handle = io.StringIO()
    SafeDictWriter(handle, fieldnames=["=head"]).writeheader()
    assert handle.getvalue().startswith("'=head")


def test_list_export_over_http_neutralises(served: dict[str, Any]) -> None:
    export = served["http"].get("/v1/lists/court_defaulters/export.csv")
    assert export.status_code == 200 and export.headers.get("content-length") is None  # streamed
    rows = _cells(export.text)
    assert len(rows) >= 2
    _assert_safe(rows)


def test_batch_rejects_and_console_download_writer_neutralises(cli: Any, tmp_path: Path) -> None:
    from xinyong.services.intake.batches import rejects_csv
    from xinyong.store.db import open_engine

    rows = [[value, uscc("91110000MA01CP001"), f"京罚〔2024〕{n}号", "2024-01-02", "罚款", "abc"]
            for n, value in enumerate(FORMULAS)]
    path = write_csv(tmp_path / "f.csv", ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别",
                                          "罚款金额（万元）"], rows)
    batch = json.loads(cli("ingest", path, "--authority", "samr", "--category", "penalty", "--json").stdout)
    assert batch["quarantined"] == len(FORMULAS)
    cli("batch", "rejects", batch["batch_id"], "-o", tmp_path / "rejects.csv")
    written = _cells((tmp_path / "rejects.csv").read_text(encoding="utf-8"))
    _assert_safe(written, *[v for v in FORMULAS if not v.startswith(("\t", "\r"))])
    # sent back as it is, the file's cells are read as first sent: the quote is not doubled
    again = json.loads(cli("ingest", tmp_path / "rejects.csv", "--authority", "samr", "--category", "penalty",
                           "--json").stdout)
    cli("batch", "rejects", again["batch_id"], "-o", tmp_path / "rejects2.csv")
    second = _cells((tmp_path / "rejects2.csv").read_bytes().decode("utf-8"))
    assert [row[0] for row in second if "\r" not in row[0] and "\n" not in row[0]] == \
        [row[0] for row in written if "\r" not in row[0] and "\n" not in row[0]]
    engine = open_engine(cli.url)
    try:  # the console's download streams the same chunks
        assert b"".join(rejects_csv(engine, batch["batch_id"])) == (tmp_path / "rejects.csv").read_bytes()
    finally:
        engine.dispose()


def test_screen_batch_output_is_always_written_and_neutralised(cli: Any, tmp_path: Path) -> None:
    source = tmp_path / "subjects.csv"
    source.write_text("identifier\n" + "\n".join(v.replace("\r", "") for v in FORMULAS) + "\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    cli("screen", "--batch", source, "--action", "public_procurement", "-o", out)
    _assert_safe(_cells(out.read_text(encoding="utf-8-sig")), "@SUM(A1)", "+1+1")
    # every line fails (no identifier column): the file is still written, each line with why
    failing = tmp_path / "none.csv"
    failing.write_text("=col\n=1\n", encoding="utf-8")
    out2 = tmp_path / "out2.csv"
    cli("screen", "--batch", failing, "--action", "public_procurement", "-o", out2)
    rows = _cells(out2.read_text(encoding="utf-8-sig"))
    assert rows[0][0] == "line" and len(rows) == 2 and "=col" in rows[1][rows[0].index("error")]
    _assert_safe(rows)
    # an input that cannot be read at all: refused, and the output file still has its header
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"identifier\n\xff\xff\xff\x80\n")
    out3 = tmp_path / "out3.csv"
    result = cli("screen", "--batch", broken, "--action", "public_procurement", "-o", out3, ok=False)
    assert result.exit_code == 1 and out3.exists()
    assert _cells(out3.read_text(encoding="utf-8-sig"))[0][0] == "line"


def test_screen_job_results_writer_neutralises(served: dict[str, Any]) -> None:
    import time

    http, key = served["http"], served["keys"]["screen"]
    data = ("identifier\n" + "\n".join(v.replace("\r", "").replace("\t", "") for v in FORMULAS) + "\n").encode()
    started = http.post("/v1/screen/jobs", headers={"X-API-Key": key}, files={"file": ("s.csv", data)},
                        data={"purpose": "procurement_review", "action": "public_procurement"})
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    deadline = time.monotonic() + 90
    while (job := http.get(f"/v1/screen/jobs/{job_id}", headers={"X-API-Key": key}).json())["state"] != "done":
        assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
        time.sleep(0.3)
    results = http.get(f"/v1/screen/jobs/{job_id}/results.csv", headers={"X-API-Key": key})
    _assert_safe(_cells(results.text), "@SUM(A1)", "+1+1")


def test_links_export_writer_neutralises(cli: Any, tmp_path: Path) -> None:
    rows = [["=北京某某科技有限公司", uscc("91110000MA01CP001"), "-京罚〔2024〕1号", "2024-01-02", "罚款", "1"]]
    path = write_csv(tmp_path / "p.csv", ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别",
                                          "罚款金额（万元）"], rows)
    cli("ingest", path, "--authority", "samr", "--category", "penalty")
    cli("resolve")
    cli("links", "export", "-o", tmp_path / "links.csv")
    written = _cells((tmp_path / "links.csv").read_text(encoding="utf-8"))
    assert written[0] == ["record_key", "entity_key", "method", "score"] and len(written) == 2
    _assert_safe(written)


# -- terminal escapes in CLI output ---------------------------------------------------------------------

HOSTILE_NAME = "北京\x1b[31m某某\x1b]0;pwned\x07科技\x9b2J有限公司\u202e[bold]x[/bold]"


def test_cli_strips_terminal_escapes_from_ingested_data(cli: Any, tmp_path: Path) -> None:
    firm = uscc("91110000MA01ET001")
    register = write_csv(tmp_path / "r.csv", ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"],
                         [[firm, HOSTILE_NAME, "有限责任公司", "赵\x1b[2K一", "2011-02-03", "存续"]])
    cli("ingest", register, "--authority", "samr", "--category", "registration")
    penalties = write_csv(tmp_path / "p.csv", ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别",
                                               "罚款金额（万元）"], [[HOSTILE_NAME, firm, "京罚\x1b[1A〔2024〕1号", "2024-01-02",
                                                                 "罚款", "x\x1b[0m"]])
    batch = json.loads(cli("ingest", penalties, "--authority", "samr", "--category", "penalty", "--json").stdout)
    cli("resolve")
    outputs = [cli("entity", "show", firm).stdout,
               cli("screen", firm, "--action", "public_procurement").stdout,
               cli("batch", "show", batch["batch_id"]).stdout,
               cli("batch", "list").stdout,
               cli("review", "list").stdout]
    for output in outputs:
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", output), repr(output)
    assert "北京某某科技有限公司" in outputs[0] and "[bold]x[/bold]" in outputs[0]  # markup shown, not applied
    assert printable("a\x1b[31mb\x1b]8;;http://x\x1b\\c") == "abc"


# -- every XINYONG_* setting is in the README's table ------------------------------------------------------

SETTING_NAME = re.compile(r"XINYONG_[A-Z0-9_]+")


def test_every_setting_read_by_the_code_is_in_the_readme_table() -> None:
    used = {name for path in (ROOT / "xinyong").rglob("*.py") for name in SETTING_NAME.findall(path.read_text())}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(XINYONG_[A-Z0-9_]+)` \| ([^|]*) \|", readme, re.M)}
    assert used <= set(table), f"settings missing from the README table: {sorted(used - set(table))}"
    for limit in settings.LIMITS:  # and each limit's default is the one the code uses
        default = f"{limit.default:g}" if not limit.integer else f"{int(limit.default):_}"
        assert default.replace("_", "") in table[limit.name].replace("_", "").replace(",", ""), (limit.name, default)


def test_a_malformed_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XINYONG_MAX_WORKBOOK_ROWS", "lots")
    with pytest.raises(settings.SettingError, match="XINYONG_MAX_WORKBOOK_ROWS"):
        settings.MAX_WORKBOOK_ROWS.value()
    monkeypatch.setenv("XINYONG_MAX_WORKBOOK_ROWS", "1_000")
    assert settings.MAX_WORKBOOK_ROWS.value() == 1000

