"""`xinyong` commands of the resolution stage: records linked to entities, the review queue, de-duplication, an entity's file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table


from xinyong.cli.common import (
    JsonFlag,
    active_pack,
    add_row,
    app,
    console,
    engine_for_work,
    entity_app,
    fail,
    links_app,
    print_json,
    review_app,
    shown,
)


# -- resolution -----------------------------------------------------------------------------

@app.command("resolve")
def resolve_command(
        evaluate_truth: Annotated[Optional[Path], typer.Option(
            "--evaluate", help="Ground truth CSV (record_key,entity_key): print precision, recall, F1.")] = None,
        everything: Annotated[bool, typer.Option(
            "--all", help="Re-resolve every record with a newly trained model (judgements still win).")] = False,
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="With --all: list the links that would move, and the listings built on them; "
                              "change nothing.")] = False,
        as_json: JsonFlag = False) -> None:
    """Link every unresolved record to an entity: identifier, exact name, then scored candidates."""
    from xinyong.services.resolution import resolve as resolution

    engine = engine_for_work()
    if evaluate_truth is not None:
        try:
            report = resolution.evaluate(engine, evaluate_truth)
        except (resolution.ResolveError, OSError) as exc:
            fail(str(exc))
        if as_json:
            print_json(report)
        else:
            for key, value in report.items():
                console.print(f"{key:>28}: {value}", highlight=False)
        return
    if dry_run and not everything:
        fail("--dry-run goes with --all: only a run over every record can move links")
    pack = active_pack(engine)
    if as_json or not console.is_terminal or dry_run:
        result = resolution.resolve(engine, pack, everything=everything, dry_run=dry_run)
    else:
        with Progress(SpinnerColumn(), TextColumn("resolving"), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task("resolve", total=None)
            result = resolution.resolve(engine, pack, everything=everything,
                                        progress=lambda n: progress.advance(task, n))
    if as_json:
        print_json(result.as_dict())
        return
    if dry_run:
        table = Table("record", "linked to", "would be", "how", "listings built on it")
        for move in result.moves:
            old, new = move["from"], move["to"]
            table.add_row(move["record_key"], f"{old['state']} {old['entity'] or ''}".strip(),
                          f"{new['state']} {new['entity'] or ''}".strip(),
                          f"{new['method']} {new['score'] if new['score'] is not None else ''}".strip(),
                          ", ".join(f"#{item['id']} {item['list']} ({item['state']})" for item in move["listings"]))
        console.print(table)
        console.print(f"dry run: {len(result.moves)} of {result.records} links would move "
                      f"(threshold {result.threshold}); nothing was changed", highlight=False)
        return
    console.print(f"{result.records} records resolved in {result.seconds} s: {result.by_identifier} by identifier, "
                  f"{result.by_exact_name} by exact name, {result.by_score} by score, "
                  f"{result.by_judgement} by judgement; {result.in_review} in review; "
                  f"{result.new_entities} given a new entity"
                  + (f"; {result.still_alone} still matching nothing (their entity kept)" if result.still_alone else ""),
                  highlight=False)
    if result.listings_withdrawn:
        console.print(f"{len(result.listings_withdrawn)} listings withdrawn: their evidence record is now about "
                      f"another entity ({', '.join(f'#{i}' for i in result.listings_withdrawn)})", highlight=False)
    if result.relations.get("batches"):
        rel = result.relations
        console.print(f"relations of {rel['firms']} firms from {rel['batches']} batches: {rel['opened']} opened, "
                      f"{rel['ended']} ended, {rel['kept']} unchanged", highlight=False)


@review_app.command("list")
def review_list(as_json: JsonFlag = False) -> None:
    """Records waiting for a human, with their candidates and scores."""
    from xinyong.services.resolution.resolve import review_queue

    queue = review_queue(engine_for_work())
    if as_json:
        print_json(queue)
        return
    table = Table("id", "record", "subject", "score", "candidates (entity: score)")
    for item in queue:
        add_row(table, str(item["id"]), item["record_key"], item["subject_name"] or item["subject_code"] or "",
                      str(item["score"]), ", ".join(f"{c['entity']}: {c['score']}" for c in item["candidates"]))
    console.print(table)
    console.print(f"{len(queue)} records in review")


def _judge(record_id: int, verdict: str, entity: str | None, actor: str, reason: str | None, as_json: bool) -> None:
    from xinyong.services.resolution.resolve import ResolveError, judge

    engine = engine_for_work()
    try:
        outcome = judge(engine, active_pack(engine), record_id, verdict, entity_key=entity, actor=actor, reason=reason)
    except ResolveError as exc:
        fail(str(exc))
    if as_json:
        print_json(outcome)
    else:
        console.print(f"record {outcome['record_key']}: {outcome['state']}"
                      + (f" to {outcome['entity']}" if outcome["entity"] else ""), highlight=False)


ActorOption = Annotated[str, typer.Option("--actor", help="Who decides (kept in the audit trail).")]
ReasonOption = Annotated[Optional[str], typer.Option("--reason", help="Why.")]
EntityOption = Annotated[Optional[str], typer.Option("--entity", help="Entity key; default: the top candidate.")]


@review_app.command("accept")
def review_accept(record_id: int, entity: EntityOption = None, actor: ActorOption = "cli",
                  reason: ReasonOption = None, as_json: JsonFlag = False) -> None:
    """The record is about this entity (the top candidate unless --entity)."""
    _judge(record_id, "match", entity, actor, reason, as_json)


@review_app.command("reject")
def review_reject(record_id: int, entity: EntityOption = None, actor: ActorOption = "cli",
                  reason: ReasonOption = None, as_json: JsonFlag = False) -> None:
    """The record is not about this entity (every candidate shown unless --entity)."""
    _judge(record_id, "no_match", entity, actor, reason, as_json)


@app.command("dedupe")
def dedupe_command(engine_name: Annotated[str, typer.Option("--engine", help="duckdb (default) or spark.")] = "duckdb",
                   retrain: Annotated[bool, typer.Option("--retrain", help="Train a new Splink model first.")] = False,
                   threshold: Annotated[float, typer.Option(min=0, max=1, help="Match probability to report a pair.")] = 0.9,
                   as_json: JsonFlag = False) -> None:
    """Find candidate duplicate entities with a Splink model trained on this store (kept as JSON)."""
    if engine_name not in ("duckdb", "spark"):
        fail(f"--engine {engine_name!r}: use duckdb or spark")
    from xinyong.services.resolution.dedupe import DedupeError, run_dedupe

    try:
        result = run_dedupe(engine_for_work(), backend=engine_name, retrain=retrain, threshold=threshold)
    except DedupeError as exc:
        fail(str(exc))
    if as_json:
        print_json(result)
        return
    console.print(f"{result['pairs']} candidate duplicate pairs on {result['engine']} (model {result['model_id']}"
                  f"{', newly trained' if result['trained'] else ''}); {result['blocked_by_identifier']} pairs "
                  f"with two different valid USCCs dropped; {result['entities']} entities in {result['seconds']} s",
                  highlight=False)
    if result.get("note"):
        console.print(result["note"], highlight=False)


@links_app.command("export")
def links_export(output: Annotated[Path, typer.Option("-o", "--output", help="CSV file to write.")]) -> None:
    """Every record's current link: record_key,entity_key,method,score."""
    from xinyong.services.resolution.resolve import export_links

    count = export_links(engine_for_work(), output)
    console.print(f"{count} links written to {output}")


@entity_app.command("show")
def entity_show(code: Annotated[str, typer.Argument(help="Entity key or any of its identifiers.")],
                as_json: JsonFlag = False) -> None:
    """An entity's identity, names, relations, and every record linked to it with how."""
    from xinyong.services.resolution.entities import EntityNotFound, entity_file

    try:
        data = entity_file(engine_for_work(), code)
    except EntityNotFound as exc:
        fail(str(exc))
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]{shown(data['name'])}[/bold]  {shown(data['key'])}  ({data['kind']}, {data['origin']})",
                  highlight=False)
    for name in data["names"]:
        console.print(f"  name: {shown(name['name'])}" + ("" if name["current"] else " (former)"), highlight=False)
    for ident in data["identifiers"]:
        console.print(f"  {ident['scheme']}: {shown(ident['value'])}" + ("" if ident["verified"] else " (unverified)"),
                      highlight=False)
    table = Table("record", "category", "method", "score", title="linked records", title_justify="left")
    for record in data["records"]:
        add_row(table, record["record_key"], record["category"], record["link"]["method"],
                      str(record["link"]["score"]))
    console.print(table)
