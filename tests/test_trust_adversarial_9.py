"""One clock and jurisdiction-neutral packs, probed as an unlucky subject and a foreign operator would:
instants on both sides of the pack's midnight, and a pack of another country (an overlay in a
temporary folder: Pacific/Auckland, its own holidays). Hand-made inputs with real public firm names
and codes with valid check characters. Each test is a defect found and fixed (on SQLite and
PostgreSQL where the engine matters)."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from test_trust_adversarial import COURT_HEADERS as COURT_DEFAULTER_HEADERS
from test_trust_adversarial import NAMES, PINGAN, TODAY, XIAOMI, listed_world
from worlds import run, write_csv
from xinyong.api.app import create_app
from xinyong.cli import app
from xinyong.domain import formats
from xinyong.domain.pack import PACKS_DIR, load_pack
from xinyong.services.screening import jobs
from xinyong.store import tables as t
from xinyong.store.db import open_engine

UTC = dt.timezone.utc
# 00:30 on 2026-11-11 in Beijing, while UTC (and a host kept on UTC) is still on 2026-11-10
PAST_BEIJING_MIDNIGHT = dt.datetime(2026, 11, 10, 16, 30, tzinfo=UTC)
REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "成立日期", "登记状态"]


def overlay(folder: Path, name: str, body: str) -> Path:
    """A pack file extending the national pack, written outside the shipped packs (as an operator does)."""
    path = folder / name
    path.write_text(f"extends: {PACKS_DIR / 'cn' / 'pack.yaml'}\n{body}", encoding="utf-8")
    return path


def test_a_pack_whose_time_zone_is_not_a_zone_is_refused(cli, tmp_path: Path) -> None:
    """A foreign operator typed `Pacific/Aukland`: `pack validate` said the pack was valid, `init --pack`
    recorded it, and from then on every command of the store (screen, process, evaluate, serve)
    ended in a ZoneInfoNotFoundError traceback. `localtime` went in too: "today" became the host's
    date, the one clock the pack exists to replace. Both are now refused by `pack validate` and
    `init`, naming the key, and the store keeps its pack."""
    for zone, said in (("Pacific/Aukland", "unknown time zone 'Pacific/Aukland'"),
                       ("localtime", "'localtime' is the host's time zone")):
        path = overlay(tmp_path, f"{zone.replace('/', '-')}.yaml",
                       f"code: nz-test\nversion: '1'\ncalendar:\n  timezone: {zone}\n"
                       f"  working_days: [mon, tue, wed, thu, fri]\n")
        checked = CliRunner().invoke(app, ["pack", "validate", str(path)])
        assert checked.exit_code == 1 and f"calendar.timezone: Value error, {said}" in checked.output, checked.output
        refused = cli("init", "--pack", path, ok=False)
        assert refused.exit_code == 1 and said in refused.output and "Traceback" not in refused.output
        assert run(cli, "pack", "show")["code"] == "cn"
    assert load_pack(str(overlay(tmp_path, "auckland.yaml", "code: nz-test\nversion: '1'\ncalendar:\n"
                                 "  timezone: Pacific/Auckland\n  working_days: [mon, tue, wed, thu, fri]\n"))
                     ).calendar.timezone == "Pacific/Auckland"


def _console(http: TestClient, secret: str) -> None:
    form = http.get("/console").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    signed = http.post("/console/sign-in", data={"api_key": secret, "csrf_token": token})
    assert signed.status_code == 200 and signed.url.path == "/console", signed.text[:300]


def test_a_timestamp_shows_the_packs_date_on_the_verification_page_and_the_console(cli, tmp_path: Path) -> None:
    """At 00:30 in Beijing (16:30 UTC the day before) 小米 downloaded its credit report, dated 2026-11-11
    and "Issued at 10/11/2026, 16:30 UTC"; `/verify/{code}`, which a bank opens to check it, said
    "Report as of 11 Nov 2026 · Issued 10 Nov 2026": the report seemed issued before its own date. The market regulator's batch sent at
    that minute was listed under "Received from 11-11 to 11-11" (the filter counts days in the pack's
    zone) with "Nov 10, 2026" beside it, and its page said the same. A timestamp's day is now the
    pack's day on every page."""
    with time_machine.travel(PAST_BEIJING_MIDNIGHT, tick=False):
        register = write_csv(tmp_path / "register.csv", REGISTER_HEADERS,
                             [[XIAOMI, NAMES[XIAOMI], "有限责任公司", "雷军", "2010-03-03", "存续"]])
        batch = run(cli, "ingest", register, "--authority", "samr", "--category", "registration")["batch_id"]
        clerk = run(cli, "authority", "key", "create", "samr", "--scopes", "operate")["key"]
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack("cn")), follow_redirects=True) as http:
                report = http.get(f"/entities/{XIAOMI}/report.pdf", params={"lang": "en"})
                code = report.headers["X-Report-Code"]
                verified = html.unescape(http.get(f"/verify/{code}", params={"lang": "en"}).text)
                _console(http, clerk)
                listed = html.unescape(http.get("/console/batches", params={"from": "2026-11-11", "to": "2026-11-11",
                                                                            "lang": "en"}).text)
                shown = html.unescape(http.get(f"/console/batches/{batch}", params={"lang": "en"}).text)
        finally:
            engine.dispose()
    (tmp_path / "report.pdf").write_bytes(report.content)
    printed = subprocess.run(["pdftotext", "-enc", "UTF-8", str(tmp_path / "report.pdf"), "-"], capture_output=True,
                             text=True, check=True).stdout
    issued = formats.moment(PAST_BEIJING_MIDNIGHT, "en", ZoneInfo("Asia/Shanghai"), form="short")
    assert issued.startswith("11/11/2026") and f"{issued} (Asia/Shanghai)" in printed, printed
    beijing, utc = formats.day(dt.date(2026, 11, 11), "en"), formats.day(dt.date(2026, 11, 10), "en")
    assert f"Report as of</dt><dd>{beijing}</dd>" in verified and f"Issued</dt><dd>{beijing}</dd>" in verified
    assert f"/console/batches/{batch}" in listed
    for page in (listed, shown):
        assert beijing in page and utc not in page


def test_a_screening_job_asked_for_before_midnight_is_screened_as_of_that_day(cli, tmp_path: Path,
                                                                             monkeypatch) -> None:
    """A bank posted a batch of codes to `/v1/screen/jobs` at 23:59 in Beijing on 11-10, without
    `as_of` ("today"). The job kept no date: its worker took the pack's today when it started, and
    again each time it was resumed, so a worker started after midnight (the queue is niced behind
    live screening) answered as of 11-11, and a job resumed after midnight mixed both days in one
    result file. The job now keeps the day it was asked on; its worker screens as of that day."""
    monkeypatch.setattr(jobs, "spawn", lambda *_args: None)  # the worker is run below, after midnight
    monkeypatch.setattr(jobs.os, "nice", lambda _increment: 0)  # in this process: leave its priority alone
    with time_machine.travel(TODAY, tick=False):
        listed_world(cli, tmp_path)
        bank = run(cli, "authority", "key", "create", "commercial_bank", "--scopes", "screen")["key"]
    engine = open_engine(cli.url)
    try:
        with time_machine.travel(dt.datetime(2026, 11, 10, 15, 59, 30, tzinfo=UTC), tick=False), \
                TestClient(create_app(engine, load_pack("cn"))) as http:
            posted = http.post("/v1/screen/jobs", headers={"X-API-Key": bank},
                               files={"file": ("batch.csv", f"identifier\n{XIAOMI}\n{PINGAN}\n".encode())},
                               data={"purpose": "credit_approval", "action": "financing"})
            assert posted.status_code == 202, posted.text
            job_id = posted.json()["id"]
        with time_machine.travel(PAST_BEIJING_MIDNIGHT, tick=False):
            assert jobs.run_job(engine, load_pack("cn"), job_id)["state"] == "done"
        assert jobs.job_status(engine, job_id)["as_of"] == dt.date(2026, 11, 10)
        results = jobs.result_path(engine, job_id, "csv").read_text(encoding="utf-8-sig")
    finally:
        engine.dispose()
    rows = list(csv.DictReader(io.StringIO(results)))
    assert [(row["identifier"], row["as_of"]) for row in rows] == [(XIAOMI, "2026-11-10"), (PINGAN, "2026-11-10")]


AUCKLAND = ("code: nz-test\nversion: '2026.1-nz'\nlanguage: fr\ncurrency: NZD\n"
            "names: {zh: 新西兰测试, en: New Zealand test, fr: Nouvelle-Zélande (essai)}\n"
            "calendar:\n  timezone: Pacific/Auckland\n  working_days: [mon, tue, wed, thu, fri]\n"
            "  holidays: [2026-12-25, 2026-12-28, 2027-01-01, 2027-01-04]\n  extra_working_days: []\n")
# 00:30 on 2026-12-06 in Auckland (summer time, UTC+13): 11:30 UTC and 19:30 in Beijing on 12-05
PAST_AUCKLAND_MIDNIGHT = dt.datetime(2026, 12, 5, 11, 30, tzinfo=UTC)


def test_a_pack_in_french_serves_its_notices_and_pages_in_french(cli, tmp_path: Path) -> None:
    """A French-speaking operator installed its own pack (Pacific/Auckland, its holidays, French
    labels): every listing evaluation proposed was stored with language `zh`, so `listing notify`
    served 小米 a Chinese notice unless the clerk remembered `--language fr` each time, and a browser
    asking for none of zh/en/fr (pt-BR, de) got the public pages and credit reports in Chinese. A pack
    now names its `language` (zh by default): notices and those pages take it, and the open-data
    attribution names the jurisdiction in it, not in Chinese ("New Zealand test (新西兰测试)"). The
    pack's date, Auckland's, is the one every step takes by default."""
    pack = overlay(tmp_path, "nz.yaml", AUCKLAND)
    cli("init", "--pack", pack)
    with time_machine.travel(PAST_AUCKLAND_MIDNIGHT, tick=False):
        register = write_csv(tmp_path / "register.csv", REGISTER_HEADERS,
                             [[XIAOMI, NAMES[XIAOMI], "有限责任公司", "雷军", "2010-03-03", "存续"]])
        cli("ingest", register, "--authority", "samr", "--category", "registration")
        court = write_csv(tmp_path / "court.csv", COURT_DEFAULTER_HEADERS, [
            ["（2026）京0108执200号", NAMES[XIAOMI], XIAOMI, "北京市海淀区人民法院", "全部未履行", "违反限制消费令", "",
             "2026-12-06"]])  # dated Auckland's today, a day after Beijing's and the host's
        assert run(cli, "ingest", court, "--authority", "court", "--category", "court_defaulter")["accepted"] == 1
        run(cli, "resolve")
        assert run(cli, "evaluate")["as_of"] == "2026-12-06"
        [listing] = run(cli, "listing", "list", "--entity", XIAOMI)
        served = run(cli, "listing", "notify", listing["id"], "--actor", "greffe", "--reason", "signifié")
        assert (served["language"], served["notified_on"]) == ("fr", "2026-12-06")
        assert served["notice"].startswith("AVIS D'INSCRIPTION ENVISAGÉE"), served["notice"]
        engine = open_engine(cli.url)
        try:
            with TestClient(create_app(engine, load_pack(str(pack)))) as http:
                for asked in ("pt-BR,pt;q=0.9", "de-DE", ""):
                    page = http.get(f"/entities/{XIAOMI}", headers={"Accept-Language": asked})
                    assert page.status_code == 200 and page.headers["Content-Language"] == "fr", asked
                assert http.get("/", headers={"Accept-Language": "en-NZ"}).headers["Content-Language"] == "en"
        finally:
            engine.dispose()
        cli("publish", "--out", tmp_path / "open-data")
    manifest = json.loads((tmp_path / "open-data" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["attribution"] == "New Zealand test (Nouvelle-Zélande (essai)), pack nz-test 2026.1-nz, via xinyong"


def test_a_calendar_window_ending_on_a_holiday_runs_to_the_next_working_day(cli, tmp_path: Path) -> None:
    """The court served 小米 its notice on Tuesday 15 December 2026 under a New Zealand pack: 10
    calendar days to object, the last one Christmas Day, then a weekend and the Boxing Day holiday.
    The deadline was 12-25, a day no registry office is open: the objection posted on the first
    working day, 12-29, came too late and `process` had made the listing effective on 12-26. A pack
    may now say that a calendar window ending on a closed day runs to the next working day
    (`calendar.deadlines_end_on_working_days`, as procedural codes have it); this one does."""
    cli("init", "--pack", overlay(tmp_path, "nz.yaml", AUCKLAND + "  deadlines_end_on_working_days: true\n"))
    with time_machine.travel(dt.datetime(2026, 12, 15, 1, tzinfo=UTC), tick=False):  # 14:00 in Auckland
        register = write_csv(tmp_path / "register.csv", REGISTER_HEADERS,
                             [[XIAOMI, NAMES[XIAOMI], "有限责任公司", "雷军", "2010-03-03", "存续"]])
        cli("ingest", register, "--authority", "samr", "--category", "registration")
        court = write_csv(tmp_path / "court.csv", COURT_DEFAULTER_HEADERS, [
            ["（2026）京0108执200号", NAMES[XIAOMI], XIAOMI, "北京市海淀区人民法院", "全部未履行", "违反限制消费令", "",
             "2026-12-01"]])
        cli("ingest", court, "--authority", "court", "--category", "court_defaulter")
        run(cli, "resolve")
        run(cli, "evaluate")
        [listing] = run(cli, "listing", "list", "--entity", XIAOMI)
        served = run(cli, "listing", "notify", listing["id"], "--actor", "greffe", "--reason", "signifié")
        assert served["objection_deadline"] == "2026-12-29"
        assert "jusqu'au 2026-12-29 (10 jours calendaires)" in served["notice"], served["notice"]
    with time_machine.travel(dt.datetime(2026, 12, 29, 1, tzinfo=UTC), tick=False):  # 14:00 on 12-29 in Auckland
        run(cli, "process")
        assert run(cli, "listing", "show", listing["id"])["state"] == "notified"
        run(cli, "objection", "file", "--listing", listing["id"], "--reason", "la dette est payée",
            "--actor", "subject")
        shown = run(cli, "listing", "show", listing["id"])
        assert (shown["state"], shown["effective_from"]) == ("under_review", None)


FRANCE = """code: fr-test
version: "2026.1"
names: {zh: 法国测试, en: France test, fr: France (essai)}
currency: EUR
language: fr
calendar: {timezone: Europe/Paris, working_days: [mon, tue, wed, thu, fri], holidays: [2026-11-11, 2026-12-25]}
resolution: {auto_link: 0.92, review: 0.75}
authorities:
  - {code: greffe, names: {zh: 商事法院书记处, en: Commercial court registry, fr: Greffe du tribunal de commerce},
     competences: [immatriculation, sanction]}
categories:
  - code: immatriculation
    names: {zh: 登记, en: Registration, fr: Immatriculation}
    creates_entities: true
    subject: {name_field: denomination, code_fields: [siren]}
    natural_key: siren
    subject_kinds: [enterprise]
    fields:
      - {name: siren, type: code, required: true, headers: [SIREN], names: {zh: SIREN, en: SIREN, fr: SIREN}}
      - {name: denomination, required: true, headers: [Dénomination], names: {zh: 名称, en: Name, fr: Dénomination}}
  - code: sanction
    names: {zh: 处罚, en: Sanction, fr: Sanction}
    subject: {name_field: denomination, code_fields: [siren]}
    natural_key: numero
    date_field: date_decision
    subject_kinds: [enterprise]
    fields:
      - {name: numero, required: true, headers: [Numéro], names: {zh: 文号, en: Number, fr: Numéro}}
      - {name: siren, type: code, headers: [SIREN], names: {zh: SIREN, en: SIREN, fr: SIREN}}
      - {name: denomination, required: true, headers: [Dénomination], names: {zh: 名称, en: Name, fr: Dénomination}}
      - {name: date_decision, type: date, required: true, headers: [Date de la décision],
         names: {zh: 日期, en: Date, fr: Date de la décision}}
lists:
  - code: exclusion
    names: {zh: 排除名单, en: Exclusion list, fr: Liste d'exclusion}
    kind: black
    authority: greffe
    legal_basis: Code de la commande publique, art. L2141-1
    subject_kinds: [enterprise]
    duration: {kind: fixed, years: 3}
    due_process: {objection_days: 30, objection_days_in: calendar}
measures:
  - {code: exclu_marches, names: {zh: 禁止参与政府采购, en: Excluded from public procurement, fr: Exclusion des marchés publics},
     lists: [exclusion], actions: [marche_public], effect: deny, legal_basis: "Code de la commande publique, art. L2141-1",
     authority: greffe}
actions:
  - {code: marche_public, names: {zh: 政府采购, en: Public procurement, fr: Marché public}}
purposes:
  - {code: controle, names: {zh: 监督检查, en: Inspection, fr: Contrôle}}
grades:
  names: {zh: 风险等级, en: Risk class, fr: Classe de risque}
  authority: greffe
  legal_basis: Code de commerce (essai)
  purpose: controle
  classes:
    - {code: A, names: {zh: A, en: A, fr: A}, max_points: 0}
    - {code: B, names: {zh: B, en: B, fr: B}}
  rules:
    - {code: sanction, names: {zh: 处罚, en: Sanction, fr: Sanction}, categories: [sanction], weight: 5}
"""


def test_a_grade_read_in_the_console_is_logged_with_the_packs_purpose(cli, tmp_path: Path) -> None:
    """A French registry's own pack (standalone, its one purpose `controle`): its clerk read Xiaomi
    France's risk class in the console, and the share was stored and audited with the purpose
    `supervision`, a code of the Chinese pack this pack does not have: the log of who read a grade
    and why named a purpose no law of this jurisdiction gives. The pack now names the purpose of
    console reads (`grades.purpose`, one of its purposes, `supervision` by default as in cn)."""
    pack = tmp_path / "fr.yaml"
    pack.write_text(FRANCE, encoding="utf-8")
    without = tmp_path / "fr-without.yaml"
    without.write_text(FRANCE.replace("  purpose: controle\n", ""), encoding="utf-8")
    refused = CliRunner().invoke(app, ["pack", "validate", str(without)])
    assert refused.exit_code == 1 and "grades.purpose: unknown purpose 'supervision'" in refused.output, refused.output
    cli("init", "--pack", pack)
    with time_machine.travel(dt.datetime(2026, 12, 1, 10, tzinfo=UTC), tick=False):
        siren = "552081317"
        register = write_csv(tmp_path / "register.csv", ["SIREN", "Dénomination"],
                             [[siren, "Xiaomi Technology France SAS"]])
        cli("ingest", register, "--authority", "greffe", "--category", "immatriculation")
        sanctions = write_csv(tmp_path / "sanctions.csv", ["Numéro", "SIREN", "Dénomination", "Date de la décision"],
                              [["2026-001", siren, "Xiaomi Technology France SAS", "2026-11-20"]])
        cli("ingest", sanctions, "--authority", "greffe", "--category", "sanction")
        run(cli, "resolve")
        clerk = run(cli, "authority", "key", "create", "greffe", "--scopes", "operate")["key"]
        engine = open_engine(cli.url)
        try:
            with engine.connect() as c:
                key = c.execute(select(t.entities.c.key)).scalar_one()
            with TestClient(create_app(engine, load_pack(str(pack))), follow_redirects=True) as http:
                _console(http, clerk)
                assert http.get("/console/grade", params={"entity": key}).status_code == 200
            with engine.connect() as c:
                shared = c.execute(select(t.grades_shared.c.grade, t.grades_shared.c.purpose)).one()
                audited = c.execute(select(t.audit_events.c.payload)
                                    .where(t.audit_events.c.action == "grade.shared")).scalar_one()
        finally:
            engine.dispose()
    assert tuple(shared) == ("B", "controle")
    payload = audited if isinstance(audited, dict) else json.loads(audited)
    assert payload["purpose"] == "controle"
