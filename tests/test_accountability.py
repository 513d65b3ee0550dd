"""Issue 14 end to end through the CLI on SQLite and PostgreSQL: the authority scorecard, the
rule-impact simulation (which writes nothing) and explainable supervision grades (never over persons).

Hand-made files for a few firms, not the demo: decision dates are set relative to the pack's
today so that the delays (in working days of the pack calendar) are known.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from test_due_rules import PENALTY_HEADERS, ingest, register, run, uscc, write_csv
from xinyong.domain.calendar import Calendar, pack_today
from xinyong.domain.pack import PackError, load_pack
from xinyong.store import tables as t
from xinyong.store.db import open_engine

PACK = load_pack("cn")
FIRM_A = uscc("91310000MA1GC0001")
FIRM_B = uscc("91310000MA1GC0002")
FIRM_C = uscc("91310000MA1GC0003")


def _working_days_ago(days: int) -> dt.date:
    calendar, day, counted = Calendar(PACK.calendar), pack_today(PACK), 0
    while counted < days:
        if calendar.is_working_day(day):
            counted += 1
        day -= dt.timedelta(days=1)
    while not calendar.is_working_day(day):
        day -= dt.timedelta(days=1)
    return day


def _world(cli, tmp_path: Path) -> None:
    register(cli, tmp_path, [(FIRM_A, "上海评分甲科技有限公司"), (FIRM_B, "上海评分乙贸易有限公司"),
                             (FIRM_C, "上海评分丙物流有限公司")])
    recent, old = _working_days_ago(3), _working_days_ago(20)
    ingest(cli, write_csv(tmp_path / "p.csv", PENALTY_HEADERS, [
        ["上海评分甲科技有限公司", FIRM_A, "沪评罚〔2026〕1号", recent.isoformat(), "罚款", "150000"],
        ["上海评分乙贸易有限公司", FIRM_B, "沪评罚〔2026〕2号", old.isoformat(), "罚款", "20000"],
        ["上海评分丙物流有限公司", FIRM_C, "沪评罚〔2026〕3号", old.isoformat(), "吊销许可证", ""],
    ]), "samr", "penalty", 3)


def _row(rows: list[dict], authority: str) -> dict:
    (row,) = [r for r in rows if r["authority"] == authority]
    return row


def test_scorecard_counts_received_records_delays_in_working_days_and_objections(cli, tmp_path):
    _world(cli, tmp_path)
    run(cli, "objection", "file", "--record", "samr:沪评罚〔2026〕2号", "--reason", "not us")
    rows = run(cli, "scorecard")
    samr = _row(rows, "samr")
    month = pack_today(PACK).strftime("%Y-%m")
    assert samr["month"] == month
    assert {"authority", "month", "records", "on_time_share", "median_delay_working_days", "quarantine_rate",
            "verified_code_share", "corrections", "revocations", "objections", "objections_upheld_share",
            "repairs", "repairs_on_time_share", "overdue"} <= samr.keys()
    assert samr["records"] == 6  # 3 registrations + 3 penalties, each counted once
    # penalties only: one decided 3 working days ago (on time), two 20 working days ago (late)
    assert samr["on_time_share"] == pytest.approx(1 / 3, abs=1e-3)
    assert samr["median_delay_working_days"] == 20
    assert samr["verified_code_share"] == 1.0 and samr["quarantine_rate"] == 0.0
    assert samr["objections"] == 1 and samr["objections_upheld_share"] is None
    assert (samr["repairs"], samr["overdue"], samr["corrections"], samr["revocations"]) == (0, 0, 0, 0)
    # a correction is a new version: it does not count as received again
    fix = tmp_path / "fix.json"
    fix.write_text(json.dumps({"fine_amount": "30000"}), encoding="utf-8")
    cli("record", "correct", "samr:沪评罚〔2026〕1号", "--file", fix, "--reason", "typo")
    again = _row(run(cli, "scorecard", "--authority", "samr"), "samr")
    assert (again["records"], again["corrections"]) == (6, 1)
    assert run(cli, "scorecard", "--from", "2000-01-01", "--to", "2000-12-31") == []
    csv_text = cli("scorecard", "--csv").stdout
    assert csv_text.splitlines()[0].startswith("authority,month,records,on_time_share")


def _counts(url: str) -> dict[str, int]:
    engine = open_engine(url)
    try:
        with engine.connect() as c:
            counts = {name: c.execute(select(func.count()).select_from(table)).scalar_one()
                      for name, table in t.metadata.tables.items()}
            counts["audit_head"] = c.execute(select(func.max(t.audit_events.c.seq))).scalar()
        return counts
    finally:
        engine.dispose()


def _candidate(tmp_path: Path, published: dt.date) -> Path:
    """serious_dishonesty v2 in its comment period: a fine of 100,000 yuan or more lists a firm."""
    base = [r for r in yaml.safe_load((Path(__file__).parent.parent / "xinyong/packs/cn/pack.yaml")
                                      .read_text(encoding="utf-8"))["lists"] if r["code"] == "serious_dishonesty"][0]
    v1 = base["rules"][0]
    v2 = {**v1, "version": "2", "effective": (published + dt.timedelta(days=60)).isoformat(),
          "published": published.isoformat(), "comment_period_days": 30,
          "any_of": [*v1["any_of"][:1], {"field": "fine_amount", "min": 100000}]}
    v1 = {**v1, "effective": v1["effective"].isoformat()}
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump({"code": "cn", "version": "candidate", "extends": "cn",
                                    "lists": [{"code": "serious_dishonesty", "rules": [v1, v2]}]},
                                   allow_unicode=True), encoding="utf-8")
    return path


def test_simulation_diffs_two_evaluations_and_writes_nothing(cli, tmp_path):
    _world(cli, tmp_path)
    today = pack_today(PACK)
    run(cli, "evaluate")  # firm C is proposed under the active rule (licence revoked)
    candidate = _candidate(tmp_path, today - dt.timedelta(days=5))
    before = _counts(cli.url)
    result = run(cli, "simulate", "--pack", candidate)
    assert _counts(cli.url) == before  # no new row in any table, the audit head unchanged
    assert result["as_of"] == today.isoformat() and result["pack"] == str(candidate)
    # the diff is between two evaluations, not against listings: C qualifies under both, A only under v2
    assert [(x["entity"], x["list"]) for x in result["newly_proposed"]] == [(FIRM_A, "serious_dishonesty")]
    assert result["newly_proposed"][0]["evidence"] == ["samr:沪评罚〔2026〕1号"]
    assert result["no_longer_qualify"] == []
    assert result["by_list"]["serious_dishonesty"]["active"] == 1
    assert result["by_list"]["serious_dishonesty"]["candidate"] == 2
    assert result["by_region"] == {"310000": {"newly_proposed": 1, "no_longer_qualify": 0}}
    assert result["by_authority"] == {"samr": {"newly_proposed": 1, "no_longer_qualify": 0}}
    measures = {m.code: m for m in PACK.measures if "serious_dishonesty" in m.lists}
    assert result["measures_gained"] == {a: sum(a in m.actions for m in measures.values())
                                         for a in sorted({a for m in measures.values() for a in m.actions})}
    assert result["measures_lost"] == {}
    # reversed: the active pack seen from the candidate loses A
    public = run(cli, "simulate", "--pack", candidate, "--public")
    assert public["newly_proposed"] == [] and public["newly_proposed_count"] == 1
    assert _counts(cli.url) == before
    # before its publication the v2 rule is no candidate: nothing changes
    early = run(cli, "simulate", "--pack", candidate, "--as-of", (today - dt.timedelta(days=10)).isoformat())
    assert early["newly_proposed_count"] == 0


def test_grade_cites_every_point_and_an_objection_suspends_it(cli, tmp_path):
    _world(cli, tmp_path)
    grade = run(cli, "grade", "show", FIRM_A)
    assert {"entity", "grade", "as_of", "points"} <= grade.keys()
    assert grade["entity"] == FIRM_A and grade["as_of"] == pack_today(PACK).isoformat()
    rules = {r.code: r for r in PACK.grades.rules}
    assert sorted((p["record"], p["rule"], p["weight"]) for p in grade["points"]) == [
        ("samr:沪评罚〔2026〕1号", "large_fine", rules["large_fine"].weight),
        ("samr:沪评罚〔2026〕1号", "penalty", rules["penalty"].weight)]
    total = rules["large_fine"].weight + rules["penalty"].weight
    assert grade["total_points"] == total and grade["grade"] == PACK.grades.class_for(total)
    assert run(cli, "grade", "show", FIRM_B)["grade"] == PACK.grades.class_for(rules["penalty"].weight)
    # before the penalty's decision there is no point
    early = run(cli, "grade", "show", FIRM_A, "--as-of", "2000-01-01")
    assert early["points"] == [] and early["grade"] == PACK.grades.classes[0].code
    # objecting to a point is objecting to its record: while open, it counts for nothing
    run(cli, "objection", "file", "--record", "samr:沪评罚〔2026〕1号", "--reason", "the fine was annulled")
    objected = run(cli, "grade", "show", FIRM_A)
    assert objected["points"] == [] and len(objected["suspended"]) == 2


def test_a_grade_rule_over_natural_persons_is_refused_naming_file_and_key(tmp_path):
    path = tmp_path / "people.yaml"
    path.write_text(yaml.safe_dump({"code": "cn", "version": "x", "extends": "cn", "grades": {
        "rules": [{"code": "debtors", "names": {"zh": "失信", "en": "Debtors", "fr": "Débiteurs"},
                   "categories": ["court_defaulter"], "weight": 5, "subject_kinds": ["natural_person"]}]}},
                                   allow_unicode=True), encoding="utf-8")
    with pytest.raises(PackError) as refused:
        load_pack(str(path))
    message = str(refused.value)
    # the file, the key (the rule by its code, as the overlay's author finds it) and the rule
    assert str(path) in message and "grades.rules[debtors].subject_kinds" in message
    assert "'debtors'" in message and "natural person" in message
    whole = tmp_path / "people2.yaml"
    whole.write_text(yaml.safe_dump({"code": "cn", "version": "x", "extends": "cn",
                                     "grades": {"subject_kinds": ["enterprise", "natural_person"]}}),
                     encoding="utf-8")
    with pytest.raises(PackError, match=r"grades\.subject_kinds"):
        load_pack(str(whole))


def test_a_person_is_never_graded(cli, tmp_path):
    from test_due_rules import COURT_HEADERS, GROUND_1, resident_id

    person = resident_id("310101", dt.date(1980, 1, 1), 11)
    ingest(cli, write_csv(tmp_path / "court.csv", COURT_HEADERS, [
        ["(2025)沪01执1号", "张三", person, "上海市第一中级人民法院", "全部未履行", GROUND_1, "2025-06-01"]]),
        "court", "court_defaulter", 1)
    entity = run(cli, "entity", "show", person)["key"]
    refused = cli("grade", "show", entity, "--json", ok=False)
    assert "natural persons are never graded" in refused.output


def test_the_restricted_api_shares_a_grade_stores_and_audits_it(cli, tmp_path):
    import httpx

    from test_api import error, key, ok
    from worlds import serving

    _world(cli, tmp_path)
    reader = key(cli, "samr", "read_restricted")
    screener = key(cli, "procurement_centre", "screen")
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:
        path = f"/v1/entities/{FIRM_A}/grade"
        error(http.get(path), 401, "missing_key")
        error(http.get(path, headers={"X-API-Key": screener, "X-Purpose": "supervision"}), 403, "scope_missing")
        assert "x-purpose" in error(http.get(path, headers={"X-API-Key": reader}), 422, "invalid_request")
        error(http.get(path, headers={"X-API-Key": reader, "X-Purpose": "curiosity"}), 422, "unknown_purpose")
        before = _counts(cli.url)
        grade = ok(http.get(path, headers={"X-API-Key": reader, "X-Purpose": "supervision"}))
        assert {"entity", "grade", "as_of", "points"} <= grade.keys() and grade["entity"] == FIRM_A
        assert sorted(p["rule"] for p in grade["points"]) == ["large_fine", "penalty"]
        assert all({"record", "rule", "weight"} <= p.keys() for p in grade["points"])
    after = _counts(cli.url)
    assert after["grades_shared"] == before["grades_shared"] + 1 and after["audit_head"] > before["audit_head"]
    engine = open_engine(cli.url)
    try:
        with engine.connect() as c:
            shared = c.execute(select(t.grades_shared)).mappings().one()
            event = c.execute(select(t.audit_events).where(t.audit_events.c.action == "grade.shared")).mappings().one()
    finally:
        engine.dispose()
    assert (shared["grade"], shared["authority"], shared["purpose"]) == (grade["grade"], "samr", "supervision")
    payload = event["payload"] if isinstance(event["payload"], dict) else json.loads(event["payload"])
    assert payload["entity"] == FIRM_A and len(payload["points"]) == 2
    assert json.loads(cli("audit", "verify", "--json").stdout)["intact"] is True


def test_small_counts_that_could_point_at_a_firm_are_suppressed_in_public() -> None:
    """Found in review: one revocation or one correction in a month is a case, as an objection is."""
    from xinyong.services.accountability.scorecard import suppress

    row = {"authority": "samr", "month": "2026-11", "records": 40, "objections": 1, "objections_decided": 1,
           "objections_upheld": 1, "objections_upheld_share": 1.0, "repairs": 7, "repairs_decided": 7,
           "repairs_on_time": 7, "repairs_on_time_share": 1.0, "overdue": 2, "corrections": 1, "revocations": 3}
    public = suppress([row], threshold=5)[0]
    assert public["corrections"] is None and public["revocations"] is None and public["overdue"] is None
    assert public["objections"] is None and public["objections_upheld_share"] is None
    assert public["repairs"] == 7 and public["repairs_on_time_share"] == 1.0 and public["records"] == 40
    assert suppress([{**row, "corrections": 0, "revocations": 9}], threshold=5)[0]["revocations"] == 9


def test_a_share_that_gives_away_a_small_count_of_cases_is_suppressed_in_public() -> None:
    """/statistics showed 20% of 5 decided objections upheld: one objection upheld, the count the
    page suppresses, read back from the share (adv-public's report). A share is now suppressed
    when its cases either way (upheld or not, on time or late) are fewer than the threshold."""
    from xinyong.services.accountability.scorecard import suppress

    row = {"authority": "samr", "month": "2026-11", "records": 40, "objections": 5, "objections_decided": 5,
           "objections_upheld": 1, "objections_upheld_share": 0.2, "repairs": 12, "repairs_decided": 12,
           "repairs_on_time": 10, "repairs_on_time_share": 10 / 12, "overdue": 0, "corrections": 0, "revocations": 0}
    public = suppress([row], threshold=5)[0]
    assert (public["objections"], public["objections_upheld_share"]) == (5, None)
    assert (public["repairs"], public["repairs_on_time_share"]) == (12, None)  # 2 late
    kept = suppress([{**row, "objections": 10, "objections_decided": 10, "objections_upheld": 5,
                      "objections_upheld_share": 0.5, "repairs_on_time": 12, "repairs_on_time_share": 1.0}], 5)[0]
    assert (kept["objections_upheld_share"], kept["repairs_on_time_share"]) == (0.5, 1.0)
    assert not {"objections_decided", "objections_upheld", "repairs_decided", "repairs_on_time"} & kept.keys()


def test_a_firm_whose_all_digit_code_also_reads_as_an_id_number_gets_its_grade(cli, tmp_path):
    """About 1 in 31 all-digit USCCs also pass the resident-ID check: such a firm is no person and
    its code in the grade URL names it (a person's ID number in a URL stays refused)."""
    import httpx

    from test_api import error, key, ok
    from test_due_rules import resident_id
    from test_person_ids import TWIN
    from worlds import serving

    register(cli, tmp_path, [(TWIN, "北京双码科技有限公司")])
    ingest(cli, write_csv(tmp_path / "p.csv", PENALTY_HEADERS, [
        ["北京双码科技有限公司", TWIN, "京双罚〔2026〕1号", _working_days_ago(3).isoformat(), "罚款", "150000"]]),
        "samr", "penalty", 1)
    reader = key(cli, "samr", "read_restricted")
    headers = {"X-API-Key": reader, "X-Purpose": "supervision"}
    with serving(cli.url) as base, httpx.Client(base_url=base, timeout=30) as http:
        grade = ok(http.get(f"/v1/entities/{TWIN}/grade", headers=headers))
        assert grade["entity"] == TWIN and sorted(p["rule"] for p in grade["points"]) == ["large_fine", "penalty"]
        person = resident_id("310101", dt.date(1980, 1, 1), 11)  # a person's ID number in a URL stays refused
        error(http.get(f"/v1/entities/{person}/grade", headers=headers), 404, "not_found")
