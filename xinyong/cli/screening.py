"""`xinyong` commands of the screening stage: decisions at a decision point, batch screening jobs, the query log."""

from __future__ import annotations

import csv
import datetime as dt
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any, Optional

import orjson
import typer
from sqlalchemy import Engine

from xinyong.domain.calendar import pack_today
from xinyong.domain.csvsafe import SafeDictWriter
from xinyong.domain.pack import Pack
from xinyong.store.db import private_file

from xinyong.cli.common import (
    AsOfOption,
    JsonFlag,
    active_pack,
    app,
    console,
    engine_for_work,
    errors,
    fail,
    parse_day,
    print_json,
    shown,
)


def _screen_batch(engine: Engine, pack: Pack, batch: Path, output: Path | None, action: str | None, day: dt.date,
                  purpose: str, log: Any) -> None:
    """Screen every line of a file. A CSV output is always written (its header at least, even when
    every line fails or the input cannot be read), each cell neutralised against formulas."""
    from xinyong.services.screening.screen import BATCH_COLUMNS, ScreeningIndex, batch_rows, csv_row, screen_batch

    as_jsonl = output is not None and output.suffix == ".jsonl"
    handle = (private_file(output) if as_jsonl else private_file(output, "w", encoding="utf-8-sig", newline="")) \
        if output else sys.stdout  # who was screened, and the answer: the owner's only
    writer = None if as_jsonl else SafeDictWriter(handle, fieldnames=BATCH_COLUMNS)
    if writer is not None:
        writer.writeheader()
    screened = failed = 0
    try:
        try:
            data = batch.read_bytes()
        except OSError as exc:
            fail(f"{batch}: cannot be read ({exc.strerror or exc})")
        try:
            rows = list(batch_rows(data, "jsonl" if batch.suffix in (".jsonl", ".ndjson") else "csv"))
        except (ValueError, csv.Error) as exc:  # not text (an undecodable byte among them), broken CSV
            fail(f"{batch}: unreadable ({exc})")
        index = ScreeningIndex.load(engine, pack)  # names too: a code's branch is checked against its head office
        for result in screen_batch(index, rows, action, day):
            if result["decision"] is not None:
                log.add(query_id=uuid.uuid4().hex, key_id=None, authority="operator", purpose=purpose,
                        endpoint="screen_batch", query=result["identifier"] or result["name"],
                        subject=result["subject"], action=result["action"], as_of=result["as_of"],
                        result=result["decision"], measures=result["measures"].split(";") if result["measures"] else [])
            if writer is not None:
                writer.writerow(csv_row(result))
            else:
                handle.write(orjson.dumps(result) + b"\n")
            screened += 1
            failed += result["error"] is not None
        log.flush()
    finally:
        if output:
            handle.close()
    if action is None and not any(isinstance(r, dict) and r.get("action") for _, r in rows):
        # the results (every row saying why) are written above: refuse only now, in one line
        fail(f"{batch}: no row has an action: give --action (one of "
             f"{', '.join(a.code for a in pack.actions)}) or an action column")
    errors.print(f"{screened} subjects screened, {failed} could not be"
                 + (f"; results in {output}" if output else ""), highlight=False)


@app.command("screen")
def screen_command(
        identifier: Annotated[Optional[str], typer.Argument(help="USCC, other code, entity key or ID number.")] = None,
        name: Annotated[Optional[str], typer.Option("--name", help="Screen by name instead of a code.")] = None,
        action: Annotated[Optional[str], typer.Option("--action", help="The decision point (the pack's actions).")] = None,
        as_of: AsOfOption = None,
        batch: Annotated[Optional[Path], typer.Option("--batch", help="CSV or JSON Lines of subjects to screen.")] = None,
        output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Batch results file (.csv or .jsonl); "
                                                        "default: CSV on standard output.")] = None,
        purpose: Annotated[str, typer.Option("--purpose", help="Why you screen (the pack's purposes); logged.")] = "supervision",
        job: Annotated[Optional[str], typer.Option("--job", hidden=True, help="Run a stored batch job.")] = None,
        as_json: JsonFlag = False) -> None:
    """May this entity take this action on this date? The decision, each measure and its basis."""
    from xinyong.services.screening.jobs import run_job
    from xinyong.services.screening.querylog import QueryLog
    from xinyong.services.screening.screen import ScreenError, ScreeningIndex, masked_query

    engine = engine_for_work()
    pack = active_pack(engine)
    if job is not None:
        print_json(run_job(engine, pack, job))
        return
    if purpose not in {p.code for p in pack.purposes}:
        fail(f"--purpose: unknown purpose {purpose!r}; the pack's purposes are: "
             f"{', '.join(p.code for p in pack.purposes)}")
    day = parse_day(as_of, "--as-of") or pack_today(pack)
    if sum(x is not None for x in (identifier, name, batch)) != 1:
        fail("give one of: a CODE, --name NAME or --batch FILE")
    log = QueryLog(engine)
    if batch is not None:
        _screen_batch(engine, pack, batch, output, action, day, purpose, log)
        return
    if not action:
        fail("--action is required: one of " + ", ".join(a.code for a in pack.actions))
    index = ScreeningIndex.load(engine, pack)  # names too: a code's branch is checked against its head office
    try:
        answer = (index.screen_identifier(identifier, action, day) if identifier is not None
                  else index.screen_name(name or "", action, day))
    except ScreenError as exc:
        fail(str(exc))
    data = index.answer_data(answer)
    log.add(query_id=answer.query_id, key_id=None, authority="operator", purpose=purpose, endpoint="screen",
            query=masked_query(identifier, name), subject=data["subject"]["key"] if data["subject"] else None,
            action=action, as_of=day, result=data["decision"], measures=sorted({m["code"] for m in data["measures"]}))
    log.flush()
    if as_json:
        print_json(data)
        return
    subject = data["subject"]
    who = f"{shown(subject['name'])} ({shown(subject['key'])})" if subject else "no entity in the register"
    colour = {"allow": "green", "deny": "red", "conditions": "yellow", "refer": "magenta",
              "not_found": "cyan"}[data["decision"]]
    console.print(f"[{colour}]{data['decision'].upper()}[/{colour}] {action} on {day} for {who}", highlight=False)
    if data["decision"] == "refer":
        console.print("  possible match: a person must check the candidates" +
                      (" and the foreign designations" if data["foreign_designations"] else ""), highlight=False)
    for candidate in data.get("candidates") or []:
        console.print(f"  candidate {shown(candidate['entity'])} {shown(candidate['name'])} "
                      f"score {candidate['score']:.3f}", highlight=False)
    for d in data["foreign_designations"]:
        console.print(f"  foreign list {shown(d['list'])} (version {shown(d['list_version'])}): {shown(d['name'])}, "
                      f"designation {shown(d['source_id'])}, score {d['score']:.3f}", highlight=False)
    for m in data["measures"]:
        via = f" through {m['through']['entity']} ({m['through']['relation']})" if m["through"] else ""
        console.print(f"  {m['code']} ({m['effect']}) {m['title']['zh']} / {m['title']['en']}{via}", highlight=False)
        console.print(f"    basis: {m['legal_basis']}", highlight=False)
        # `ends` is the first day the measure no longer binds: "until" it read as the last day it did
        ends = f"ends on {m['ends']}" if m["ends"] else "until performance"
        console.print(f"    listing {m['listing']['id']} on {m['listing']['list']}, {ends}; "
                      f"records: {shown(', '.join(r['record_key'] for r in m['records']))}", highlight=False)
