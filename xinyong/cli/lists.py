"""`xinyong` commands of the lists stage: rules evaluated into listings, and the due process that moves them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from xinyong.domain.pack import Pack

from xinyong.cli.common import (
    AsOfOption,
    FutureFlag,
    JsonFlag,
    OnOption,
    StepActor,
    StepReason,
    _checkpoint,
    _day,
    _day_not_ahead,
    _due_process,
    _print_outcome,
    active_pack,
    add_row,
    app,
    console,
    engine_for_work,
    fail,
    listing_app,
    lists_app,
    objection_app,
    parse_day,
    print_json,
    repair_app,
    shown,
)


@app.command("evaluate")
def evaluate_command(as_of: AsOfOption = None,
                     full: Annotated[bool, typer.Option("--full", help="The whole register, not only what changed.")] = False,
                     engine_name: Annotated[str, typer.Option(
                         "--engine", help="sql (default: in the store) or spark (over a snapshot).")] = "sql",
                     snapshot: Annotated[Optional[Path], typer.Option(
                         "--snapshot", help="With --engine spark: a folder written by `xinyong export`.")] = None,
                     future: FutureFlag = False,
                     as_json: JsonFlag = False) -> None:
    """Run the pack's rules set-based over the register; propose listings with their evidence."""
    from xinyong.services.lists.evaluate import evaluate

    if engine_name not in ("sql", "spark"):
        fail(f"--engine {engine_name!r}: use sql or spark")
    if (engine_name == "spark") != (snapshot is not None):
        fail("--snapshot DIR goes with --engine spark, and --engine spark needs --snapshot DIR")
    engine = engine_for_work()
    pack = active_pack(engine)
    # a proposal is a due-process step: dated after today only on purpose (its grace and windows
    # read as of then, and the store's last evaluation date would move ahead of the clock)
    as_of_day = _day_not_ahead(pack, as_of, "--as-of", future,
                               "proposals would be dated, and their grace periods and windows read, as of a day "
                               "not yet come")
    if engine_name == "spark":
        from xinyong.services.resolution.dedupe import DedupeError
        from xinyong.services.operations.snapshot import SnapshotError, evaluate_on_spark

        try:
            outcome = evaluate_on_spark(engine, pack, snapshot, as_of_day, full=full)
        except (SnapshotError, DedupeError) as exc:  # not a snapshot; no pyspark
            fail(str(exc))
        _checkpoint(engine)
        if as_json:
            print_json(outcome)
        else:
            console.print(f"{outcome['mode']} evaluation on Spark as of {outcome['as_of']} over the snapshot of "
                          f"{outcome['snapshot_taken_at']}: {outcome['proposals']} proposals "
                          f"({', '.join(f'{k} {v}' for k, v in outcome['per_list'].items())}); skipped on re-check: "
                          f"{', '.join(f'{k} {v}' for k, v in outcome['skipped'].items())}; in {outcome['seconds']} s",
                          highlight=False)
        return
    result = evaluate(engine, pack, as_of_day, full=full)
    _checkpoint(engine)
    if as_json:
        print_json(result.as_dict())
    else:
        console.print(f"{result.mode} evaluation as of {result.as_of}: {result.proposals} proposals "
                      f"({', '.join(f'{k} {v}' for k, v in result.per_list.items())}) in {result.seconds} s",
                      highlight=False)


@app.command("process")
def process_command(as_of: AsOfOption = None,
                    future: FutureFlag = False,
                    as_json: JsonFlag = False) -> None:
    """Perform every transition that time makes due: objection windows closing, listings expiring."""
    from xinyong.services.lists.due_process import process

    engine = engine_for_work()
    pack = active_pack(engine)
    outcome = process(engine, pack, _day_not_ahead(pack, as_of, "--as-of", future))
    _checkpoint(engine)
    _print_outcome(outcome, as_json)


@listing_app.command("list")
def listing_list(entity: Annotated[Optional[str], typer.Option(help="Entity key or identifier.")] = None,
                 list_code: Annotated[Optional[str], typer.Option("--list", help="List code.")] = None,
                 state: Annotated[Optional[str], typer.Option(help="Only listings in this state.")] = None,
                 as_of: AsOfOption = None, as_json: JsonFlag = False) -> None:
    """Listings; with --as-of, the state in effect on that date as known now."""
    from xinyong.services.lists.due_process import list_listings

    rows = list_listings(engine_for_work(), entity=entity, list_code=list_code, state=state,
                         as_of=parse_day(as_of, "--as-of"))
    if as_json:
        print_json(rows)
        return
    table = Table("id", "entity", "list", "state", "notified", "deadline", "from", "to", "rule", "evidence")
    for r in rows:
        add_row(table, str(r["id"]), r["entity"], r["list"], r["state"], *(str(r[k] or "") for k in (
            "notified_on", "objection_deadline", "effective_from", "effective_to")), r["rule_version"],
            ", ".join(r["evidence"]))
    console.print(table)


@listing_app.command("show")
def listing_show(listing_id: int, as_json: JsonFlag = False) -> None:
    """A listing with its evidence, transitions, reminders, notices, objections and repairs."""
    from xinyong.services.lists.due_process import show_listing

    engine = engine_for_work()
    data = _due_process(show_listing, engine, active_pack(engine), listing_id)
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]listing {data['id']}[/bold] {data['entity']} on {data['list_code']}: {data['state']}")
    for key in ("rule_version", "legal_basis", "proposed_on", "notified_on", "objection_deadline",
                "effective_from", "effective_to", "review_due", "ended_on"):
        console.print(f"{key:>20}: {data[key] if data[key] is not None else ''}", highlight=False)
    for e in data["evidence"]:
        console.print(f"            evidence: {shown(e['record_key'])} ({e['category']}, {e['decision_date']})",
                      highlight=False)
    for tr in data["transitions"]:
        console.print(f"          transition: {tr['on_date']} {tr['from_state'] or '-'} -> {tr['to_state']} "
                      f"by {shown(tr['actor'])} {shown(tr['reason'])}", highlight=False)


AuthorityOption = Annotated[Optional[str], typer.Option(
    "--authority", help="The authority taking the step: the list's own (default) or the pack's reviewing authority.")]
BulkList = Annotated[Optional[str], typer.Option("--list", help="Every listing of this list in --state (oldest first).")]
BulkState = Annotated[Optional[str], typer.Option("--state", help="With --list: the state to select (proposed).")]
BulkLimit = Annotated[Optional[int], typer.Option("--limit", min=1, help="With --list: at most this many listings.")]


def _one_or_bulk(listing_id: int | None, list_code: str | None, state: str | None, limit: int | None,
                 pack: Pack) -> list[int] | None:
    """None: the one LISTING_ID; else the selection of --list/--state (oldest first)."""
    from xinyong.services.lists.due_process import select_listings

    if listing_id is not None:
        if list_code is not None or state is not None or limit is not None:
            fail("give one LISTING_ID, or --list and --state, not both")
        return None
    if list_code is None or state is None:
        fail("give one LISTING_ID, or --list L --state proposed [--limit N]")
    if state != "proposed":
        fail(f"--state: reminders and notices select proposed listings; got {state!r}")
    if list_code not in {spec.code for spec in pack.lists}:
        fail(f"--list: unknown list {list_code!r} (known: {', '.join(spec.code for spec in pack.lists)})")
    return select_listings(engine_for_work(), list_code, state, limit)


def _print_bulk(outcome: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(outcome)
        return
    console.print(f"{outcome['selected']} selected, {len(outcome['done'])} done, {len(outcome['skipped'])} skipped",
                  highlight=False)
    for item in outcome["skipped"]:
        console.print(f"  skipped listing {item['listing']}: {item['reason']}", highlight=False)
    for item in outcome["done"]:
        if "calendar_warning" in item:
            console.print(f"  listing {item['listing']}: {item['calendar_warning']}", highlight=False)


@listing_app.command("remind")
def listing_remind(listing_id: Annotated[Optional[int], typer.Argument(help="One listing; or use --list.")] = None,
                   list_code: BulkList = None, state: BulkState = None, limit: BulkLimit = None,
                   on: OnOption = None, future: FutureFlag = False, actor: StepActor = "cli", reason: StepReason = None,
                   authority: AuthorityOption = None, as_json: JsonFlag = False) -> None:
    """Record a formal reminder to the subject before notice (one listing, or a list's proposals)."""
    from xinyong.services.lists.due_process import Actor, bulk_step, remind

    engine = engine_for_work()
    pack = active_pack(engine)
    day, who = _day_not_ahead(pack, on, "--on", future), Actor(actor, reason, authority)
    selected = _one_or_bulk(listing_id, list_code, state, limit, pack)
    if selected is not None:
        _print_bulk(_due_process(bulk_step, lambda one: {"listing": one, "reminders": remind(engine, pack, one, day, who)},
                                 selected), as_json)
        return
    count = _due_process(remind, engine, pack, listing_id, day, who)
    _print_outcome({"listing": listing_id, "reminders": count}, as_json)


@listing_app.command("notify")
def listing_notify(listing_id: Annotated[Optional[int], typer.Argument(help="One listing; or use --list.")] = None,
                   list_code: BulkList = None, state: BulkState = None, limit: BulkLimit = None,
                   on: OnOption = None, future: FutureFlag = False,
                   language: Annotated[Optional[str], typer.Option(help="zh, en or fr; default the subject's.")] = None,
                   actor: StepActor = "cli", reason: StepReason = None, authority: AuthorityOption = None,
                   as_json: JsonFlag = False) -> None:
    """Serve the notice: grounds, evidence, legal basis and the objection deadline (one listing,
    or a list's proposals)."""
    from xinyong.services.lists.due_process import Actor, bulk_step, notify

    engine = engine_for_work()
    pack = active_pack(engine)
    day, who = _day_not_ahead(pack, on, "--on", future), Actor(actor, reason, authority)
    selected = _one_or_bulk(listing_id, list_code, state, limit, pack)
    if selected is not None:
        _print_bulk(_due_process(bulk_step, lambda one: notify(engine, pack, one, day, who, language), selected),
                    as_json)
        return
    _print_outcome(_due_process(notify, engine, pack, listing_id, day, who, language), as_json)


@listing_app.command("extend")
def listing_extend(listing_id: int,
                   years: Annotated[int, typer.Option("--years", help="1 to 3, within the list's extension maximum.")],
                   reason: Annotated[str, typer.Option("--reason", help="Why the listing is extended.")],
                   on: OnOption = None, future: FutureFlag = False,
                   language: Annotated[Optional[str], typer.Option(help="zh, en or fr; default the subject's.")] = None,
                   actor: StepActor = "cli", authority: AuthorityOption = None, as_json: JsonFlag = False) -> None:
    """Extend a listing in force by a decision (audited, with its own notice)."""
    from xinyong.services.lists.due_process import Actor, extend

    engine = engine_for_work()
    pack = active_pack(engine)
    _print_outcome(_due_process(extend, engine, pack, listing_id, years, _day_not_ahead(pack, on, "--on", future),
                                Actor(actor, reason, authority), language), as_json)


@listing_app.command("end")
def listing_end(listing_id: int,
                reason: Annotated[str, typer.Option(
                    "--reason", help="performed, settled, creditor_request, no_assets or enforcement_ended.")],
                on: OnOption = None, future: FutureFlag = False,
                actor: StepActor = "cli", authority: AuthorityOption = None,
                as_json: JsonFlag = False) -> None:
    """End a listing that lasts until performance (end reason: performed; the given reason is kept)."""
    from xinyong.services.lists.due_process import Actor, end_listing

    engine = engine_for_work()
    pack = active_pack(engine)
    _print_outcome(_due_process(end_listing, engine, pack, listing_id, reason, _day_not_ahead(pack, on, "--on", future),
                                Actor(actor, None, authority)), as_json)


@app.command("overdue")
def overdue_command(as_of: AsOfOption = None, as_json: JsonFlag = False) -> None:
    """Every open objection and repair application past its deadline, by authority."""
    from xinyong.services.lists.due_process import overdue

    engine = engine_for_work()
    pack = active_pack(engine)
    items = overdue(engine, pack, _day(pack, as_of, "--as-of"))
    if as_json:
        print_json(items)
        return
    table = Table("authority", "kind", "id", "since", "deadline", "days late")
    for item in items:
        table.add_row(item["authority"], item["kind"], str(item["id"]), str(item["since"]), str(item["deadline"]),
                      str(item["days_late"]))
    console.print(table)


@objection_app.command("file")
def objection_file(listing: Annotated[Optional[int], typer.Option("--listing", help="Listing ID.")] = None,
                   record: Annotated[Optional[str], typer.Option("--record", help="Record key.")] = None,
                   reason: Annotated[str, typer.Option("--reason", help="Why the subject objects.")] = "",
                   on: OnOption = None, future: FutureFlag = False,
                   actor: StepActor = "subject", as_json: JsonFlag = False) -> None:
    """Object to a listing or a record: it goes under review and counts for nothing meanwhile."""
    from xinyong.services.lists.due_process import Actor, file_objection

    engine = engine_for_work()
    pack = active_pack(engine)
    _print_outcome(_due_process(file_objection, engine, pack, listing_id=listing, record_key=record,
                                on=_day_not_ahead(pack, on, "--on", future), actor=Actor(actor, reason)), as_json)


@objection_app.command("decide")
def objection_decide(objection_id: int,
                     uphold: Annotated[bool, typer.Option("--uphold/--reject", help="Uphold or reject the objection.")],
                     on: OnOption = None, future: FutureFlag = False,
                     actor: StepActor = "cli", reason: StepReason = None,
                     authority: AuthorityOption = None, as_json: JsonFlag = False) -> None:
    """Decide an objection: upheld withdraws the listing; rejected lets it proceed."""
    from xinyong.services.lists.due_process import Actor, decide_objection

    engine = engine_for_work()
    pack = active_pack(engine)
    day = _day_not_ahead(pack, on, "--on", future)
    _print_outcome(_due_process(decide_objection, engine, pack, objection_id, uphold, day,
                                Actor(actor, reason, authority)), as_json)


@repair_app.command("apply")
def repair_apply(listing_id: Annotated[Optional[int], typer.Argument(help="The listing to repair.")] = None,
                 commitment: Annotated[Path, typer.Option("--commitment", help="The signed credit commitment (text).")] = ...,
                 record: Annotated[Optional[str], typer.Option(
                     "--record", help="Instead of a listing: the record key whose publicity to repair.")] = None,
                 evidence: Annotated[Optional[list[Path]], typer.Option("--evidence", help="Proof the fault was corrected.")] = None,
                 on: OnOption = None, future: FutureFlag = False,
                 actor: StepActor = "subject", reason: StepReason = None,
                 as_json: JsonFlag = False) -> None:
    """Apply for credit repair of an effective listing, or of a record's publicity (--record)."""
    from xinyong.services.lists.due_process import Actor, apply_repair

    engine = engine_for_work()
    pack = active_pack(engine)
    day = _day_not_ahead(pack, on, "--on", future)
    _print_outcome(_due_process(apply_repair, engine, pack, listing_id, commitment, evidence or [],
                                day, Actor(actor, reason), record_key=record), as_json)


@repair_app.command("accept")
def repair_accept(repair_id: int, on: OnOption = None, future: FutureFlag = False,
                  actor: StepActor = "cli", reason: StepReason = None,
                  authority: AuthorityOption = None, as_json: JsonFlag = False) -> None:
    """Answer a repair application: accepted for decision (the answer deadline stops)."""
    from xinyong.services.lists.due_process import Actor, accept_repair

    engine = engine_for_work()
    pack = active_pack(engine)
    _print_outcome(_due_process(accept_repair, engine, pack, repair_id, _day_not_ahead(pack, on, "--on", future),
                                Actor(actor, reason, authority)), as_json)


@repair_app.command("decide")
def repair_decide(repair_id: int,
                  approve: Annotated[bool, typer.Option("--approve/--refuse", help="Approve or refuse.")],
                  on: OnOption = None, future: FutureFlag = False, actor: StepActor = "cli", reason: StepReason = None,
                  authority: AuthorityOption = None, as_json: JsonFlag = False) -> None:
    """Decide a repair application: approval ends the listing early, or the record's publicity."""
    from xinyong.services.lists.due_process import Actor, decide_repair

    engine = engine_for_work()
    pack = active_pack(engine)
    day = _day_not_ahead(pack, on, "--on", future)
    _print_outcome(_due_process(decide_repair, engine, pack, repair_id, approve, day,
                                Actor(actor, reason, authority)), as_json)


@lists_app.command("import")
def lists_import(file: Annotated[Path, typer.Argument(help="The list file: UN consolidated list XML, or FtM JSON Lines.")],
                 file_format: Annotated[str, typer.Option("--format", help="un (UN Security Council XML) or ftm "
                                                          "(FollowTheMoney / OpenSanctions entities).")],
                 list_code: Annotated[str, typer.Option("--list", help="The foreign list's code, e.g. un_sc.")],
                 as_json: JsonFlag = False) -> None:
    """Import a foreign list's new version: designations added or kept, those gone ended (audited)."""
    from xinyong.services.lists.foreign import ForeignListError, import_list

    engine = engine_for_work()
    pack = active_pack(engine)
    try:
        outcome = import_list(engine, pack, file, file_format, list_code)
    except ForeignListError as exc:
        fail(str(exc))
    _checkpoint(engine)
    if as_json:
        print_json(outcome)
        return
    console.print(f"{shown(outcome['list'])} ({outcome['format']}) version {shown(outcome['version'])} of "
                  f"{outcome['date']} from {shown(outcome['source'])}: {outcome['designations']} designations "
                  f"({outcome['added']} added, {outcome['kept']} kept, {outcome['ended']} ended); "
                  f"{outcome['persons_skipped']} persons skipped (no legal basis in the pack), "
                  f"{outcome['others_skipped']} other entries skipped, "
                  f"{outcome['identifiers_refused']} identifiers refused", highlight=False)
