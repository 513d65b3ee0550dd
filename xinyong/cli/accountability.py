"""`xinyong` commands of the accountability stage: authority scorecards, rule-impact simulation, supervision grades."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer
from rich.table import Table

from xinyong.domain.calendar import pack_today
from xinyong.domain.csvsafe import SafeDictWriter
from xinyong.domain.pack import PackError, load_pack

from xinyong.cli.common import (
    AsOfOption,
    JsonFlag,
    _day,
    active_pack,
    add_row,
    app,
    console,
    engine_for_work,
    fail,
    grade_app,
    parse_day,
    print_json,
    shown,
)


# -- accountability and foresight: scorecard, simulation, grades ---------------------------------

@app.command("scorecard")
def scorecard_command(authority: Annotated[Optional[str], typer.Option("--authority", help="One authority's code.")] = None,
                      date_from: Annotated[Optional[str], typer.Option("--from", help="First month (a date in it).")] = None,
                      date_to: Annotated[Optional[str], typer.Option("--to", help="Last month (a date in it).")] = None,
                      as_json: JsonFlag = False,
                      as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False) -> None:
    """Per authority and month: timeliness, quality and fairness (docs/scorecard.md)."""
    from xinyong.services.accountability.scorecard import FIGURES, check_authority, scorecard

    engine = engine_for_work()
    pack = active_pack(engine)
    try:
        check_authority(pack, authority)
    except PackError as exc:
        fail(f"--authority: {exc}")
    rows = scorecard(engine, pack, pack_today(pack), authority=authority,
                     date_from=parse_day(date_from, "--from"), date_to=parse_day(date_to, "--to"))
    if as_json:
        print_json(rows)
        return
    if as_csv:
        writer = SafeDictWriter(sys.stdout, fieldnames=[*FIGURES, "quarantine_top_reasons"])
        writer.writeheader()
        for item in rows:
            writer.writerow({**item, "quarantine_top_reasons": "; ".join(
                f"{r['reason']} ({r['count']})" for r in item["quarantine_top_reasons"])})
        return
    table = Table("authority", "month", "records", "on time", "median delay", "quarantine", "verified code",
                  "corrections", "revocations", "objections", "upheld", "repairs", "on time (repairs)", "overdue")

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    for item in rows:
        add_row(table, item["authority"], item["month"], item["records"], pct(item["on_time_share"]),
                "-" if item["median_delay_working_days"] is None else item["median_delay_working_days"],
                pct(item["quarantine_rate"]), pct(item["verified_code_share"]), item["corrections"],
                item["revocations"], item["objections"], pct(item["objections_upheld_share"]), item["repairs"],
                pct(item["repairs_on_time_share"]), item["overdue"])
    console.print(table)


@app.command("simulate")
def simulate_command(pack_ref: Annotated[str, typer.Option("--pack", help="Candidate pack: a shipped code or a YAML path.")],
                     as_of: AsOfOption = None, as_json: JsonFlag = False,
                     public: Annotated[bool, typer.Option("--public", help="Aggregates only: no example.")] = False,
                     examples: Annotated[int, typer.Option("--examples", min=0, help="Examples per list and direction.")] = 50,
                     ) -> None:
    """What a candidate pack would change, against the active one, at the same date: writes nothing."""
    from xinyong.services.accountability.simulate import simulate

    engine = engine_for_work()
    pack = active_pack(engine)
    try:
        candidate = load_pack(pack_ref)
    except PackError as exc:
        fail(str(exc))
    result = simulate(engine, pack, candidate, _day(pack, as_of, "--as-of"), public=public, examples=examples,
                      candidate_ref=pack_ref)
    if as_json:
        print_json(result)
        return
    console.print(f"simulation of {shown(pack_ref)} ({shown(candidate.version)}) against {shown(pack.code)} "
                  f"({shown(pack.version)}) as of {result['as_of']}: {result['newly_proposed_count']} newly proposed, "
                  f"{result['no_longer_qualify_count']} no longer qualify, {result['no_longer_supported_count']} "
                  f"effective listings no longer supported; nothing written", highlight=False)
    table = Table("list", "active", "candidate", "newly proposed", "no longer qualify", "no longer supported")
    for code, figures in result["by_list"].items():
        add_row(table, code, figures["active"], figures["candidate"], figures["newly_proposed"],
                figures["no_longer_qualify"], figures["no_longer_supported"])
    console.print(table)
    actions = sorted(set(result["measures_gained"]) | set(result["measures_lost"]))
    if actions:
        measures = Table("action", "measures gained", "measures lost")
        for action in actions:
            add_row(measures, action, result["measures_gained"].get(action, 0), result["measures_lost"].get(action, 0))
        console.print(measures)
    for title, items in (("newly proposed", result["newly_proposed"]), ("no longer qualify", result["no_longer_qualify"]),
                         ("effective listings no longer supported", result["no_longer_supported"])):
        if items:
            examples_table = Table("entity", "list", "evidence", title=title, title_justify="left")
            for item in items:
                add_row(examples_table, item["entity"], item["list"], ", ".join(item["evidence"]))
            console.print(examples_table)


@grade_app.command("show")
def grade_show(code: Annotated[str, typer.Argument(help="Entity key or identifier (an enterprise).")],
               as_of: AsOfOption = None, as_json: JsonFlag = False) -> None:
    """An enterprise's supervision grade as of a date, every point with its record, rule and weight."""
    from xinyong.services.resolution.entities import EntityNotFound
    from xinyong.services.accountability.grades import GradeError, compute_grade

    engine = engine_for_work()
    pack = active_pack(engine)
    try:
        grade = compute_grade(engine, pack, code, _day(pack, as_of, "--as-of"))
    except (EntityNotFound, GradeError) as exc:
        fail(str(exc))
    if as_json:
        print_json(grade)
        return
    note = " (illustrative rules, unverified)" if grade["unverified"] else ""
    console.print(f"{shown(grade['entity'])}: grade {grade['grade']} as of {grade['as_of']}, "
                  f"{grade['total_points']:g} points{note}", highlight=False)
    table = Table("record", "rule", "weight", "decision date")
    for point in grade["points"]:
        add_row(table, point["record"], point["rule"], f"{point['weight']:g}", point["decision_date"])
    console.print(table)
    for point in grade["suspended"]:
        console.print(f"  not counted while objected to: {shown(point['record'])} ({shown(point['rule'])})",
                      highlight=False)
