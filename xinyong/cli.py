"""The `xinyong` command line (Typer + Rich)."""

from __future__ import annotations

import csv
import datetime as dt
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from xinyong.domain.calendar import pack_today
from xinyong.domain.csvsafe import SafeDictWriter
from xinyong.domain.pack import Pack, PackError, load_pack
from xinyong.domain.records import FileRefused
from xinyong.domain.terminal import printable
from xinyong.services.ingest import ingest_file, load_mapping
from xinyong.store import tables as t
from xinyong.store.db import StoreError, database_url, get_setting, migrate, open_engine, require_current, set_setting

app = typer.Typer(help="xinyong: public credit registry and joint-sanctions engine.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
pack_app = typer.Typer(help="Jurisdiction packs: validate and show.", no_args_is_help=True)
batch_app = typer.Typer(help="Ingested batches and their quarantined rows.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo jurisdiction: generate it, or run the whole pipeline on it.")
review_app = typer.Typer(help="The resolution review queue: records waiting for a human.", no_args_is_help=True)
links_app = typer.Typer(help="Record-to-entity links.", no_args_is_help=True)
entity_app = typer.Typer(help="Entities: identity, names, links.", no_args_is_help=True)
listing_app = typer.Typer(help="Listings on black- and redlists: life cycle and due process.", no_args_is_help=True)
objection_app = typer.Typer(help="Objections to a listing or a record.", no_args_is_help=True)
repair_app = typer.Typer(help="Credit repair applications.", no_args_is_help=True)
record_app = typer.Typer(help="Records: revocation and correction (new versions).", no_args_is_help=True)
app.add_typer(pack_app, name="pack")
app.add_typer(batch_app, name="batch")
app.add_typer(audit_app, name="audit")
app.add_typer(demo_app, name="demo")
app.add_typer(review_app, name="review")
app.add_typer(links_app, name="links")
app.add_typer(entity_app, name="entity")
app.add_typer(listing_app, name="listing")
app.add_typer(objection_app, name="objection")
app.add_typer(repair_app, name="repair")
app.add_typer(record_app, name="record")
grade_app = typer.Typer(help="Supervision grades: classes from the pack's grade rules, every point explained.",
                        no_args_is_help=True)
app.add_typer(grade_app, name="grade")

# Written to a file or a pipe, output is not cut to 80 columns: tables keep every character.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 400)
errors = Console(stderr=True)


def shown(value: Any) -> str:
    """Data (names, reasons, file names...) as console text: no control characters or escape
    sequences reach the terminal, and no Rich markup in the data is interpreted."""
    return escape(printable("" if value is None else value))


def add_row(table: Table, *cells: Any) -> None:
    table.add_row(*(shown(cell) for cell in cells))
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


class State:
    db_url: str | None = None


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[red]error:[/red] {shown(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str).decode() + "\n")


@app.callback()
def main(db: Annotated[Optional[str], typer.Option(
        "--db", envvar="XINYONG_DATABASE_URL",
        help="Database URL: sqlite:///FILE or postgresql://... (default sqlite:///xinyong.db).")] = None) -> None:
    State.db_url = db


def engine_for_work() -> Engine:
    """An engine on an initialised, current store."""
    try:
        engine = open_engine(State.db_url)
        require_current(engine)
    except StoreError as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - connection refused, bad URL...
        fail(f"cannot open {database_url(State.db_url)}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    return engine


def active_pack(engine: Engine) -> Pack:
    with engine.connect() as connection:
        ref = get_setting(connection, "pack")
    if ref is None:
        fail("the store records no pack; run `xinyong init --pack cn`")
    try:
        return load_pack(ref)
    except PackError as exc:
        fail(f"active pack {ref}: {exc}")


# -- init, pack, stats ----------------------------------------------------------------------

@app.command()
def init(pack: Annotated[str, typer.Option(help="Shipped pack code (cn, cn-pilot) or path to a pack YAML.")] = "cn") -> None:
    """Create or migrate the schema, and record which pack the store runs."""
    try:
        loaded = load_pack(pack)
    except PackError as exc:
        fail(str(exc))
    ref = pack if "/" not in pack and not pack.endswith((".yaml", ".yml")) else str(Path(pack).resolve())
    from xinyong.store.audit import prepare as prepare_audit
    from xinyong.store.db import schema_revision

    try:
        engine = open_engine(State.db_url)
        fresh = schema_revision(engine) is None
        revision = migrate(engine)
    except StoreError as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001
        fail(f"cannot initialise {database_url(State.db_url)}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    with engine.begin() as connection:
        set_setting(connection, "pack", ref)
        set_setting(connection, "pack_version", f"{loaded.code}@{loaded.version}")
    try:  # the audit chain's key and head, kept outside the database
        audit, notes = prepare_audit(engine, fresh=fresh)
    except (StoreError, OSError) as exc:
        fail(f"audit files: {exc}")
    console.print(f"store {engine.url.render_as_string(hide_password=True)} at schema {revision}, "
                  f"pack {loaded.code} {loaded.version}", highlight=False)
    console.print(f"audit key {audit.key_path}, head {audit.head_path}", highlight=False)
    for note in notes:
        console.print(f"  {note}", highlight=False)


@pack_app.command("validate")
def pack_validate(path: str) -> None:
    """Validate a pack file (and the packs it extends)."""
    try:
        loaded = load_pack(path)
    except PackError as exc:
        fail(str(exc))
    console.print(f"{path}: valid pack {loaded.code} {loaded.version}: {len(loaded.authorities)} authorities, "
                  f"{len(loaded.categories)} categories, {len(loaded.lists)} lists, "
                  f"{len(loaded.measures)} measures, {len(loaded.actions)} actions", highlight=False)


@pack_app.command("show")
def pack_show(path: Annotated[Optional[str], typer.Argument(help="Pack file or code; default: the store's.")] = None,
              as_json: JsonFlag = False) -> None:
    """Show a pack: the store's active pack when no PATH is given."""
    try:
        loaded = load_pack(path) if path else active_pack(engine_for_work())
    except PackError as exc:
        fail(str(exc))
    if as_json:
        print_json(loaded.model_dump(mode="json", by_alias=True))
        return
    console.print(f"[bold]{loaded.names.zh} / {loaded.names.en}[/bold]  {loaded.code} {loaded.version}"
                  + (f" (extends {loaded.extends})" if loaded.extends else ""))
    for title, items in (("authorities", loaded.authorities), ("categories", loaded.categories),
                         ("lists", loaded.lists), ("measures", loaded.measures), ("actions", loaded.actions),
                         ("purposes", loaded.purposes)):
        described = title == "categories"
        table = Table("code", "zh", "en", "fr", *(["description"] if described else []), title=title,
                      title_justify="left")
        for item in items:
            add_row(table, item.code, item.names.zh, item.names.en, item.names.fr,
                    *([item.description] if described else []))
        console.print(table)
    rules = loaded.resolution.name_rules
    if rules.places_file:
        console.print(f"places: {rules.places_file}, from {rules.places_source or '(source not given)'}, "
                      f"as of {rules.places_as_of or '(date not given)'}", highlight=False)


@app.command()
def stats(as_json: JsonFlag = False) -> None:
    """Count entities, records per category, batches, quarantined rows and audit events."""
    engine = engine_for_work()
    with engine.connect() as c:
        per_category = dict(c.execute(select(t.records.c.category, func.count())
                                      .group_by(t.records.c.category).order_by(t.records.c.category)).all())
        data = {
            "pack": get_setting(c, "pack_version"),
            "entities": c.execute(select(func.count()).select_from(t.entities)).scalar_one(),
            "records": sum(per_category.values()),
            "records_per_category": per_category,
            "batches": c.execute(select(func.count()).select_from(t.batches)).scalar_one(),
            "quarantined_rows": c.execute(select(func.count()).select_from(t.quarantine)).scalar_one(),
            "audit_events": c.execute(select(func.count()).select_from(t.audit_events)).scalar_one(),
        }
    if as_json:
        print_json(data)
        return
    table = Table(show_header=False)
    for key, value in data.items():
        if key == "records_per_category":
            for category, count in value.items():
                add_row(table, f"  {category}", str(count))
        else:
            add_row(table, key, str(value))
    console.print(table)


# -- ingestion ------------------------------------------------------------------------------

@app.command()
def ingest(files: Annotated[list[Path], typer.Argument(help="CSV, XLSX or JSON Lines files.")],
           authority: Annotated[str, typer.Option(help="Code of the authority that sent the file(s).")],
           category: Annotated[str, typer.Option(help="Record category of the rows.")],
           mapping: Annotated[Optional[Path], typer.Option(help="YAML: original header -> field name.")] = None,
           as_json: JsonFlag = False) -> None:
    """Ingest files as atomic batches: valid rows stored, bad rows quarantined with reasons."""
    engine = engine_for_work()
    pack = active_pack(engine)
    refused = 0
    explicit = None
    if mapping:
        try:
            explicit = load_mapping(mapping)
        except FileRefused as exc:
            fail(str(exc))
    for path in files:
        try:
            result = _ingest_with_progress(engine, pack, path, authority, category, explicit, quiet=as_json)
        except FileRefused as exc:
            refused += 1
            errors.print(f"[red]refused:[/red] {shown(exc)}", highlight=False, soft_wrap=True)
            continue
        if as_json:
            sys.stdout.write(orjson.dumps(result.as_dict()).decode() + "\n")
        elif result.duplicate_of is not None:
            console.print(f"{path.name}: same content as batch {result.duplicate_of}; nothing changed")
        else:
            console.print(f"{path.name}: batch {result.batch_id}: {result.rows} rows, {result.accepted} accepted "
                          f"({result.new_versions} new versions, {result.unchanged} unchanged), "
                          f"{result.quarantined} quarantined, {result.duplicates} duplicates, "
                          f"{result.warnings} warnings, {result.notes} notes", highlight=False)
    if refused < len(files):
        _checkpoint(engine)
    if refused:
        raise typer.Exit(1)


def _ingest_with_progress(engine: Engine, pack: Pack, path: Path, authority: str, category: str,
                          mapping: dict[str, str] | None, quiet: bool):
    if quiet or not console.is_terminal:
        return ingest_file(engine, pack, path, authority, category, mapping=mapping)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(f"ingesting {path.name}", total=None)
        return ingest_file(engine, pack, path, authority, category, mapping=mapping,
                           progress=lambda n: progress.advance(task, n))


@batch_app.command("list")
def batch_list(as_json: JsonFlag = False) -> None:
    """Every batch, newest first."""
    engine = engine_for_work()
    b = t.batches.c
    with engine.connect() as c:
        rows = [dict(r) for r in c.execute(select(
            b.id, b.authority, b.category, b.file_name, b.rows, b.accepted, b.quarantined,
            b.duplicates, b.warnings, b.notes, b.created_at).order_by(b.id.desc())).mappings()]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "authority", "category", "file", "rows", "accepted", "quarantined", "duplicates", "warnings",
                  "notes")
    for r in rows:
        add_row(table, *(str(r[k]) for k in ("id", "authority", "category", "file_name", "rows", "accepted",
                                             "quarantined", "duplicates", "warnings", "notes")))
    console.print(table)


def _batch(engine: Engine, batch_id: int) -> dict[str, Any]:
    with engine.connect() as c:
        row = c.execute(select(t.batches).where(t.batches.c.id == batch_id)).mappings().first()
    if row is None:
        fail(f"no batch {batch_id}")
    return dict(row)


@batch_app.command("show")
def batch_show(batch_id: int, as_json: JsonFlag = False) -> None:
    """A batch's provenance, counts and quarantined rows with their reasons."""
    engine = engine_for_work()
    batch = _batch(engine, batch_id)
    from xinyong.services.batches import quarantine_rows

    rejected = quarantine_rows(engine, batch_id)  # reason in English beside reason_code and params
    r = t.records.c
    with engine.connect() as c:  # the rows behind the batch's warning count, each with what was wrong
        warned = [{"row_number": row.row_number, "record_key": row.record_key,
                   "warnings": row.warnings if isinstance(row.warnings, list) else orjson.loads(row.warnings)}
                  for row in c.execute(select(r.row_number, r.record_key, r.warnings)
                                       .where(r.batch_id == batch_id).order_by(r.row_number))]
    warned = [w for w in warned if w["warnings"]]
    if as_json:
        print_json({**batch, "quarantine": rejected, "warned_rows": warned})
        return
    for key in ("id", "file_name", "file_hash", "authority", "category", "file_format", "encoding", "pack",
                "created_at", "rows", "accepted", "new_versions", "unchanged", "quarantined", "duplicates", "warnings",
                "notes"):
        console.print(f"{key:>13}: {shown(batch[key])}", highlight=False)
    if rejected:
        table = Table("row", "field", "reason", title="quarantined rows", title_justify="left")
        for r in rejected:
            add_row(table, str(r["row_number"]), r["field"] or "", r["reason"])
        console.print(table)
    if warned:
        table = Table("row", "record", "warning", title="rows stored with warnings", title_justify="left")
        for w in warned:
            add_row(table, str(w["row_number"]), w["record_key"], "; ".join(map(str, w["warnings"])))
        console.print(table)


@batch_app.command("rejects")
def batch_rejects(batch_id: int,
                  output: Annotated[Path, typer.Option("-o", "--output", help="CSV file to write.")]) -> None:
    """Write a batch's rejected rows with their original headers and a reason column (UTF-8 with BOM)."""
    from xinyong.services.batches import rejects_csv

    engine = engine_for_work()
    batch = _batch(engine, batch_id)
    with output.open("wb") as handle:
        for chunk in rejects_csv(engine, batch_id):
            handle.write(chunk)
    console.print(f"{batch['quarantined']} rejected rows of batch {batch_id} written to {output}")


@audit_app.command("verify")
def audit_verify(checkpoint_file: Annotated[Optional[Path], typer.Option(
                     "--checkpoint", help="A signed checkpoint saved earlier (`audit checkpoint -o`): "
                                          "the chain must still hold it.")] = None,
                 as_json: JsonFlag = False) -> None:
    """Recompute the keyed hash chain and compare its end with the head file, then check from the store
    itself that every audited row (batch, record version, listing and its state, key, report) has its
    event and that no signed checkpoint is ahead of the chain; non-zero exit on any problem."""
    from xinyong.services.integrity import verify_store

    engine = engine_for_work()
    with engine.connect() as c:
        report = verify_store(c, active_pack(engine), checkpoint_file)
    problem = report.problems[0] if report.problems else None
    if as_json:
        print_json({"events": report.events, "intact": problem is None, "problem": problem}
                   | ({"problems": report.problems} if len(report.problems) > 1 else {})
                   | ({"note": "; ".join(report.notes)} if report.notes else {}))
    elif problem is None:
        console.print(f"audit chain intact: {report.events} events", highlight=False)
        if report.checkpoint:
            console.print(f"  newest signed checkpoint: seq {report.checkpoint['seq']} of {report.checkpoint['at']}, "
                          f"key {report.checkpoint['fingerprint']}", highlight=False)
        for note in report.notes:
            console.print(f"  note: {note}", highlight=False)
    if problem is not None:
        for other in report.problems[1:] if not as_json else ():
            errors.print(f"  also: {other}", highlight=False, soft_wrap=True, markup=False)
        fail(f"audit chain broken: {problem}")


@audit_app.command("checkpoint")
def audit_checkpoint(output: Annotated[Optional[Path], typer.Option(
                         "-o", "--output", help="Also save the checkpoint as JSON here (an external anchor "
                                                "for `audit verify --checkpoint`).")] = None,
                     as_json: JsonFlag = False) -> None:
    """Seal the reports issued since the last seal and sign the chain's head (Ed25519)."""
    document = _checkpoint(engine_for_work())
    if document is None:
        fail("the audit chain is empty: nothing to sign yet")
    if output is not None:
        output.write_text(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n", encoding="utf-8")
    if as_json:
        print_json(document)
    else:
        console.print(f"checkpoint: seq {document['seq']} hash {document['hash']} key {document['fingerprint']}"
                      + (f"; saved to {output}" if output else ""), highlight=False)


def _checkpoint(engine: Engine) -> dict[str, Any] | None:
    """Seal reports and sign the chain's head: after every batch, evaluation and process run."""
    from xinyong.services.integrity import checkpoint

    return checkpoint(engine, actor="cli")


# -- backup, restore, moving a store ------------------------------------------------------------

store_app = typer.Typer(help="Moving a store between engines.", no_args_is_help=True)
app.add_typer(store_app, name="store")


@app.command("backup")
def backup_command(folder: Annotated[Path, typer.Argument(help="A new or empty folder for the backup.")],
                   as_json: JsonFlag = False) -> None:
    """Back the store up: the database (SQLite online backup, or pg_dump), the audit head, uploaded files.
    Never the audit key or the checkpoint signing key: keep those apart."""
    from xinyong.services.backup import BackupError, backup

    engine = engine_for_work()
    try:
        manifest = backup(engine, folder)
    except BackupError as exc:
        fail(str(exc))
    if as_json:
        print_json(manifest)
        return
    head = manifest["head"]
    console.print(f"backup of {engine.url.render_as_string(hide_password=True)} in {folder}: "
                  f"{manifest['database']}, audit head {head['seq'] if head else 'none'}; "
                  "the audit and signing keys are not in it", highlight=False)


@app.command("restore")
def restore_command(folder: Annotated[Path, typer.Argument(help="A folder written by `xinyong backup`.")],
                    audit_key: Annotated[Optional[Path], typer.Option(
                        "--audit-key", help="The store's audit key file (backups never hold it).")] = None,
                    signing_key: Annotated[Optional[Path], typer.Option(
                        "--signing-key", help="The checkpoint signing key (default: beside --audit-key).")] = None,
                    force: Annotated[bool, typer.Option("--force", help="Replace a store that is not empty.")] = False,
                    as_json: JsonFlag = False) -> None:
    """Restore a backup into the store given by --db (empty, unless --force); then `xinyong audit verify`."""
    from xinyong.services.backup import BackupError, restore

    try:
        manifest = restore(database_url(State.db_url), folder, audit_key=audit_key, signing_key=signing_key,
                           force=force)
    except BackupError as exc:
        fail(str(exc))
    if as_json:
        print_json(manifest)
        return
    console.print(f"restored {folder} ({manifest['created_at']}) into "
                  f"{make_url(database_url(State.db_url)).render_as_string(hide_password=True)}", highlight=False)


@store_app.command("copy")
def store_copy(to: Annotated[str, typer.Option("--to", help="An empty PostgreSQL database: postgresql://...")],
               as_json: JsonFlag = False) -> None:
    """Copy this SQLite store (--db) into PostgreSQL: every table, the audit chain, its key and head."""
    from xinyong.services.backup import BackupError, copy_store

    try:
        copied = copy_store(engine_for_work(), to)
    except BackupError as exc:
        fail(str(exc))
    if as_json:
        print_json(copied)
        return
    console.print(f"copied {sum(copied.values())} rows in {len(copied)} tables to "
                  f"{make_url(database_url(to)).render_as_string(hide_password=True)}; "
                  "check it with `xinyong --db URL audit verify`", highlight=False)


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
    from xinyong.services import resolve as resolution

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


@review_app.command("list")
def review_list(as_json: JsonFlag = False) -> None:
    """Records waiting for a human, with their candidates and scores."""
    from xinyong.services.resolve import review_queue

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
    from xinyong.services.resolve import ResolveError, judge

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
    from xinyong.services.dedupe import DedupeError, run_dedupe

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
    from xinyong.services.resolve import export_links

    count = export_links(engine_for_work(), output)
    console.print(f"{count} links written to {output}")


@entity_app.command("show")
def entity_show(code: Annotated[str, typer.Argument(help="Entity key or any of its identifiers.")],
                as_json: JsonFlag = False) -> None:
    """An entity's identity, names, relations, and every record linked to it with how."""
    from xinyong.services.entities import EntityNotFound, entity_file

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


# -- lists and due process -------------------------------------------------------------------

def parse_day(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not a date (YYYY-MM-DD)")


AsOfOption = Annotated[Optional[str], typer.Option("--as-of", help="The date to act or read as of (YYYY-MM-DD); default today.")]
OnOption = Annotated[Optional[str], typer.Option("--on", help="Date of the step (YYYY-MM-DD); default today.")]
StepActor = Annotated[str, typer.Option("--actor", help="Who takes this step (kept in the audit trail).")]
StepReason = Annotated[Optional[str], typer.Option("--reason", help="Why.")]


def _day(pack: Pack, value: str | None, option: str) -> dt.date:
    return parse_day(value, option) or pack_today(pack)


def _due_process(call, *args, **kwargs):
    from xinyong.services.due_process import DueProcessError

    try:
        return call(*args, **kwargs)
    except DueProcessError as exc:
        fail(str(exc))


def _print_outcome(outcome: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(outcome)
    else:
        console.print(", ".join(f"{k}: {v}" for k, v in outcome.items() if k != "notice"), highlight=False)
        if outcome.get("notice"):
            console.print(outcome["notice"], highlight=False)


@app.command("evaluate")
def evaluate_command(as_of: AsOfOption = None,
                     full: Annotated[bool, typer.Option("--full", help="The whole register, not only what changed.")] = False,
                     engine_name: Annotated[str, typer.Option(
                         "--engine", help="sql (default: in the store) or spark (over a snapshot).")] = "sql",
                     snapshot: Annotated[Optional[Path], typer.Option(
                         "--snapshot", help="With --engine spark: a folder written by `xinyong export`.")] = None,
                     as_json: JsonFlag = False) -> None:
    """Run the pack's rules set-based over the register; propose listings with their evidence."""
    from xinyong.services.evaluate import evaluate

    if engine_name not in ("sql", "spark"):
        fail(f"--engine {engine_name!r}: use sql or spark")
    if (engine_name == "spark") != (snapshot is not None):
        fail("--snapshot DIR goes with --engine spark, and --engine spark needs --snapshot DIR")
    engine = engine_for_work()
    pack = active_pack(engine)
    if engine_name == "spark":
        from xinyong.services.dedupe import DedupeError
        from xinyong.services.snapshot import SnapshotError, evaluate_on_spark

        try:
            outcome = evaluate_on_spark(engine, pack, snapshot, _day(pack, as_of, "--as-of"), full=full)
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
    result = evaluate(engine, pack, _day(pack, as_of, "--as-of"), full=full)
    _checkpoint(engine)
    if as_json:
        print_json(result.as_dict())
    else:
        console.print(f"{result.mode} evaluation as of {result.as_of}: {result.proposals} proposals "
                      f"({', '.join(f'{k} {v}' for k, v in result.per_list.items())}) in {result.seconds} s",
                      highlight=False)


@app.command("export")
def export_command(fmt: Annotated[str, typer.Option("--format", help="parquet (the only format).")] = "parquet",
                   out: Annotated[Path, typer.Option("--out", help="A new or empty folder.")] = ...,  # type: ignore[assignment]
                   as_json: JsonFlag = False) -> None:
    """Write an operator-only snapshot (records, links, entities, listings) for `evaluate --engine spark`.

    Not a publication: restricted data, files mode 0600, never served; each export is audited."""
    if fmt != "parquet":
        fail(f"--format {fmt!r}: only parquet")
    from xinyong.services.snapshot import SnapshotError, export_snapshot

    engine = engine_for_work()
    try:
        manifest = export_snapshot(engine, out)
    except SnapshotError as exc:
        fail(str(exc))
    if as_json:
        print_json(manifest)
        return
    console.print(f"snapshot of {manifest['taken_at']} written to {shown(out)}: "
                  + ", ".join(f"{name} {info['rows']}" for name, info in manifest["tables"].items())
                  + f" rows in {manifest['seconds']} s (restricted: mode 0600, never served)", highlight=False)


@app.command("process")
def process_command(as_of: AsOfOption = None, as_json: JsonFlag = False) -> None:
    """Perform every transition that time makes due: objection windows closing, listings expiring."""
    from xinyong.services.due_process import process

    engine = engine_for_work()
    pack = active_pack(engine)
    outcome = process(engine, pack, _day(pack, as_of, "--as-of"))
    _checkpoint(engine)
    _print_outcome(outcome, as_json)


@listing_app.command("list")
def listing_list(entity: Annotated[Optional[str], typer.Option(help="Entity key or identifier.")] = None,
                 list_code: Annotated[Optional[str], typer.Option("--list", help="List code.")] = None,
                 state: Annotated[Optional[str], typer.Option(help="Only listings in this state.")] = None,
                 as_of: AsOfOption = None, as_json: JsonFlag = False) -> None:
    """Listings; with --as-of, the state in effect on that date as known now."""
    from xinyong.services.due_process import list_listings

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
    from xinyong.services.due_process import show_listing

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
    from xinyong.services.due_process import select_listings

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


@listing_app.command("remind")
def listing_remind(listing_id: Annotated[Optional[int], typer.Argument(help="One listing; or use --list.")] = None,
                   list_code: BulkList = None, state: BulkState = None, limit: BulkLimit = None,
                   on: OnOption = None, actor: StepActor = "cli", reason: StepReason = None,
                   authority: AuthorityOption = None, as_json: JsonFlag = False) -> None:
    """Record a formal reminder to the subject before notice (one listing, or a list's proposals)."""
    from xinyong.services.due_process import Actor, bulk_step, remind

    engine = engine_for_work()
    pack = active_pack(engine)
    day, who = _day(pack, on, "--on"), Actor(actor, reason, authority)
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
                   on: OnOption = None,
                   language: Annotated[Optional[str], typer.Option(help="zh, en or fr; default the subject's.")] = None,
                   actor: StepActor = "cli", reason: StepReason = None, authority: AuthorityOption = None,
                   as_json: JsonFlag = False) -> None:
    """Serve the notice: grounds, evidence, legal basis and the objection deadline (one listing,
    or a list's proposals)."""
    from xinyong.services.due_process import Actor, bulk_step, notify

    engine = engine_for_work()
    pack = active_pack(engine)
    day, who = _day(pack, on, "--on"), Actor(actor, reason, authority)
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
                   on: OnOption = None,
                   language: Annotated[Optional[str], typer.Option(help="zh, en or fr; default the subject's.")] = None,
                   actor: StepActor = "cli", authority: AuthorityOption = None, as_json: JsonFlag = False) -> None:
    """Extend a listing in force by a decision (audited, with its own notice)."""
    from xinyong.services.due_process import Actor, extend

    engine = engine_for_work()
    pack = active_pack(engine)
    _print_outcome(_due_process(extend, engine, pack, listing_id, years, _day(pack, on, "--on"),
                                Actor(actor, reason, authority), language), as_json)


@listing_app.command("end")
def listing_end(listing_id: int,
                reason: Annotated[str, typer.Option(
                    "--reason", help="performed, settled, creditor_request, no_assets or enforcement_ended.")],
                on: OnOption = None, actor: StepActor = "cli", authority: AuthorityOption = None,
                as_json: JsonFlag = False) -> None:
    """End a listing that lasts until performance (end reason: performed; the given reason is kept)."""
    from xinyong.services.due_process import Actor, end_listing

    engine = engine_for_work()
    pack = active_pack(engine)
    _print_outcome(_due_process(end_listing, engine, pack, listing_id, reason, _day(pack, on, "--on"),
                                Actor(actor, None, authority)), as_json)


@app.command("overdue")
def overdue_command(as_of: AsOfOption = None, as_json: JsonFlag = False) -> None:
    """Every open objection and repair application past its deadline, by authority."""
    from xinyong.services.due_process import overdue

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


# -- accountability and foresight: scorecard, simulation, grades ---------------------------------

@app.command("scorecard")
def scorecard_command(authority: Annotated[Optional[str], typer.Option("--authority", help="One authority's code.")] = None,
                      date_from: Annotated[Optional[str], typer.Option("--from", help="First month (a date in it).")] = None,
                      date_to: Annotated[Optional[str], typer.Option("--to", help="Last month (a date in it).")] = None,
                      as_json: JsonFlag = False,
                      as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False) -> None:
    """Per authority and month: timeliness, quality and fairness (docs/scorecard.md)."""
    from xinyong.services.scorecard import FIGURES, check_authority, scorecard

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
    from xinyong.services.simulate import simulate

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
    from xinyong.services.entities import EntityNotFound
    from xinyong.services.grades import GradeError, compute_grade

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


@objection_app.command("file")
def objection_file(listing: Annotated[Optional[int], typer.Option("--listing", help="Listing ID.")] = None,
                   record: Annotated[Optional[str], typer.Option("--record", help="Record key.")] = None,
                   reason: Annotated[str, typer.Option("--reason", help="Why the subject objects.")] = "",
                   on: OnOption = None, actor: StepActor = "subject", as_json: JsonFlag = False) -> None:
    """Object to a listing or a record: it goes under review and counts for nothing meanwhile."""
    from xinyong.services.due_process import Actor, file_objection

    engine = engine_for_work()
    pack = active_pack(engine)
    _print_outcome(_due_process(file_objection, engine, pack, listing_id=listing, record_key=record,
                                on=_day(pack, on, "--on"), actor=Actor(actor, reason)), as_json)


@objection_app.command("decide")
def objection_decide(objection_id: int,
                     uphold: Annotated[bool, typer.Option("--uphold/--reject", help="Uphold or reject the objection.")],
                     on: OnOption = None, actor: StepActor = "cli", reason: StepReason = None,
                     authority: AuthorityOption = None, as_json: JsonFlag = False) -> None:
    """Decide an objection: upheld withdraws the listing; rejected lets it proceed."""
    from xinyong.services.due_process import Actor, decide_objection

    engine = engine_for_work()
    pack = active_pack(engine)
    _print_outcome(_due_process(decide_objection, engine, pack, objection_id, uphold, _day(pack, on, "--on"),
                                Actor(actor, reason, authority)), as_json)


@repair_app.command("apply")
def repair_apply(listing_id: Annotated[Optional[int], typer.Argument(help="The listing to repair.")] = None,
                 commitment: Annotated[Path, typer.Option("--commitment", help="The signed credit commitment (text).")] = ...,
                 record: Annotated[Optional[str], typer.Option(
                     "--record", help="Instead of a listing: the record key whose publicity to repair.")] = None,
                 evidence: Annotated[Optional[list[Path]], typer.Option("--evidence", help="Proof the fault was corrected.")] = None,
                 on: OnOption = None, actor: StepActor = "subject", reason: StepReason = None,
                 as_json: JsonFlag = False) -> None:
    """Apply for credit repair of an effective listing, or of a record's publicity (--record)."""
    from xinyong.services.due_process import Actor, apply_repair

    engine = engine_for_work()
    pack = active_pack(engine)
    _print_outcome(_due_process(apply_repair, engine, pack, listing_id, commitment, evidence or [],
                                _day(pack, on, "--on"), Actor(actor, reason), record_key=record), as_json)


@repair_app.command("accept")
def repair_accept(repair_id: int, on: OnOption = None, actor: StepActor = "cli", reason: StepReason = None,
                  authority: AuthorityOption = None, as_json: JsonFlag = False) -> None:
    """Answer a repair application: accepted for decision (the answer deadline stops)."""
    from xinyong.services.due_process import Actor, accept_repair

    engine = engine_for_work()
    pack = active_pack(engine)
    _print_outcome(_due_process(accept_repair, engine, pack, repair_id, _day(pack, on, "--on"),
                                Actor(actor, reason, authority)), as_json)


@repair_app.command("decide")
def repair_decide(repair_id: int,
                  approve: Annotated[bool, typer.Option("--approve/--refuse", help="Approve or refuse.")],
                  on: OnOption = None, actor: StepActor = "cli", reason: StepReason = None,
                  authority: AuthorityOption = None, as_json: JsonFlag = False) -> None:
    """Decide a repair application: approval ends the listing early, or the record's publicity."""
    from xinyong.services.due_process import Actor, decide_repair

    engine = engine_for_work()
    pack = active_pack(engine)
    _print_outcome(_due_process(decide_repair, engine, pack, repair_id, approve, _day(pack, on, "--on"),
                                Actor(actor, reason, authority)), as_json)


@record_app.command("revoke")
def record_revoke(key: str, on: OnOption = None, actor: StepActor = "cli", reason: StepReason = None,
                  as_json: JsonFlag = False) -> None:
    """Revoke a record (a new version); listings built on it are withdrawn."""
    from xinyong.services.due_process import Actor, revoke_record

    engine = engine_for_work()
    pack = active_pack(engine)
    _print_outcome(_due_process(revoke_record, engine, pack, key, _day(pack, on, "--on"), Actor(actor, reason)),
                   as_json)


@record_app.command("correct")
def record_correct(key: str, file: Annotated[Path, typer.Option("--file", help="JSON object: field: new value.")],
                   on: OnOption = None, actor: StepActor = "cli", reason: StepReason = None,
                   as_json: JsonFlag = False) -> None:
    """Correct a record (a new version, validated like any row); listings on the old one are withdrawn."""
    from xinyong.services.due_process import Actor, correct_record

    engine = engine_for_work()
    pack = active_pack(engine)
    _print_outcome(_due_process(correct_record, engine, pack, key, file, _day(pack, on, "--on"),
                                Actor(actor, reason)), as_json)


# -- demo -----------------------------------------------------------------------------------

@demo_app.command("generate")
def demo_generate(entities: Annotated[int, typer.Option(min=10)] = 2000,
                  seed: Annotated[int, typer.Option()] = 42,
                  out: Annotated[Path, typer.Option(help="Folder to write into.")] = Path("demo")) -> None:
    """Write a synthetic jurisdiction: register, agency batches, truth.csv and manifest.json."""
    from xinyong.services import demo as demo_service  # Faker loads slowly: only when asked

    manifest = demo_service.generate(out, entities, seed)
    console.print(f"demo jurisdiction (seed {seed}, {entities} entities) written to {out}: "
                  f"{len(manifest['files'])} files, manifest.json, truth.csv")


@demo_app.callback(invoke_without_command=True)
def demo_run(ctx: typer.Context,
             entities: Annotated[int, typer.Option(min=10)] = 2000,
             seed: Annotated[int, typer.Option()] = 42,
             out: Annotated[Path, typer.Option(help="Folder for the generated files.")] = Path("demo"),
             no_serve: Annotated[bool, typer.Option("--no-serve", help="Do not start serving at the end.")] = False,
             host: Annotated[str, typer.Option("--host", help="Address to serve the portal on.")] = "127.0.0.1",
             port: Annotated[int, typer.Option("--port", help="Port to serve the portal on.")] = 8000) -> None:
    """Run the whole pipeline on the demo jurisdiction (generate, init, ingest, resolve, evaluate, due
    process), then serve the web portal and the API on it."""
    if ctx.invoked_subcommand is not None:
        return
    from xinyong.services import demo as demo_service

    manifest = demo_service.generate(out, entities, seed)
    console.print(f"[bold]1. generated[/bold] {len(manifest['files'])} files for {entities} entities in {out}")
    init(pack="cn")
    engine = engine_for_work()
    pack = active_pack(engine)
    console.print("[bold]2. ingesting[/bold]")
    for entry in manifest["files"]:
        try:
            result = _ingest_with_progress(engine, pack, out / entry["file"], entry["authority"],
                                           entry["category"], None, quiet=False)
        except FileRefused as exc:
            fail(f"demo file refused: {exc}")
        where = f"   {entry['file']:<29} {entry['authority'] + '/' + entry['category']:<25}"
        if result.duplicate_of is not None:
            console.print(f"{where} already ingested as batch {result.duplicate_of}", highlight=False)
        else:
            console.print(f"{where} {result.accepted:>6} ok {result.quarantined:>4} quarantined "
                          f"{result.duplicates:>3} dup {result.warnings:>4} warn", highlight=False)
    console.print("[bold]3. resolving records to entities[/bold]")
    resolve_command(evaluate_truth=None, everything=False, as_json=False)
    console.print("   links scored against the ground truth (truth.csv):")
    resolve_command(evaluate_truth=out / "truth.csv", everything=False, as_json=False)
    today = pack_today(pack)
    evaluated_on = today - dt.timedelta(days=90)  # so that due process has run its course by today
    with engine.connect() as c:
        before = c.execute(select(func.max(t.listings.c.id))).scalar() or 0
    console.print(f"[bold]4. evaluating the lists' rules[/bold] as of {evaluated_on}")
    evaluate_command(as_of=evaluated_on.isoformat(), full=False, as_json=False)
    console.print("[bold]5. due process[/bold]: reminders, notices, objection windows, then `process` as of today")
    states = demo_service.take_through_due_process(engine, pack, evaluated_on, today, after_listing=before)
    console.print("   listings: " + ", ".join(f"{n} {state}" for state, n in states.items()), highlight=False)
    console.print("[bold]6. the store now holds[/bold]")
    stats(as_json=False)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    from xinyong.services.due_process import DueProcessError

    try:
        tour = demo_service.prepare_tour(engine, pack, out, today)
    except DueProcessError as exc:
        fail(f"demo: {exc}")
    tour.update(_demo_credentials(engine, pack, url))
    console.print(f"   the README's tour: ids, files and keys in {demo_service.write_tour(out, tour)} "
                  f"(set -a; . {out / demo_service.TOUR_FILE}; set +a)", highlight=False)
    if missing := [name for name, value in tour.items() if not value]:
        console.print(f"   [yellow]warning:[/yellow] nothing in this store for the tour's {', '.join(missing)} "
                      "(more --entities)", highlight=False)
    if no_serve:
        return
    from xinyong.api.app import create_app

    _port_free(host, port)
    console.print(f"[bold]7. serving[/bold] the portal on [link={url}]{url}[/link] "
                  f"(API docs at {url}/docs); Ctrl-C to stop", highlight=False)
    serve_app(create_app(engine, pack, public_url=url), host, port, "warning")


# The demo's keys other than operating: (authority, scopes) per role.
DEMO_KEYS = {"submit": ("samr", ["submit"]), "screen": ("procurement_centre", ["screen"])}


def _demo_credentials(engine: Engine, pack: Pack, url: str) -> dict[str, str]:
    """An operating key per authority that runs a list (whoever listed it decides), a key per other
    role (a rerun revokes the demo's earlier keys) and a subject's sign-in link, so a newcomer can
    try every part. Returns the keys as the tour's KEY_OPERATE (of the authority running most
    lists), KEY_SUBMIT and KEY_SCREEN."""
    from collections import Counter

    from xinyong.services.keys import create_key, list_keys, revoke_key

    running = Counter(spec.authority for spec in pack.lists)
    busiest = running.most_common(1)[0][0]
    wanted = [(f"operate {authority}", authority, ["operate", "read_restricted"]) for authority in running]
    wanted += [(role, authority, scopes) for role, (authority, scopes) in DEMO_KEYS.items()]
    keys: dict[str, str] = {}
    for role, authority, scopes in wanted:
        label = f"demo {role}"
        for earlier in list_keys(engine):
            if earlier["label"] == label and earlier["revoked_at"] is None:
                revoke_key(engine, earlier["id"], actor="demo", reason="replaced by a new demo run")
        secret, stored = create_key(engine, pack, authority, scopes, label=label, actor="demo")
        if role in ("submit", "screen") or authority == busiest:
            keys["KEY_OPERATE" if role.startswith("operate") else f"KEY_{role.upper()}"] = secret
        console.print(f"   {role.split()[0]} key of {stored['authority']} ({', '.join(stored['scopes'])})"
                      + (f", for the console ({url}/console)" if role != "screen" else ", for the API") + ":",
                      highlight=False)
        console.print(f"     {secret}", highlight=False, markup=False)
    # a spare key for the tour's `authority key rotate` (rotating one of the keys above would
    # leave tour.env holding a revoked secret); its secret is never shown, so a rerun keeps it
    spare = next((k for k in list_keys(engine) if k["label"] == "demo spare" and k["revoked_at"] is None), None)
    if spare is None:
        _secret, spare = create_key(engine, pack, "procurement_centre", ["screen"], label="demo spare", actor="demo")
    keys["SPARE_KEY_ID"] = str(spare["id"])
    L, e = t.listings.c, t.entities.c
    with engine.connect() as c:
        listed = c.execute(select(e.key).join(t.listings, L.entity_id == e.id)
                           .where(L.state == "effective", e.kind == "enterprise").order_by(L.id).limit(1)).scalar()
    if listed is None:
        return keys
    try:
        from xinyong.services.subjects import issue_credential_details
    except ImportError:  # the subject portal is not installed
        return keys
    code, _stored = issue_credential_details(engine, listed, 72, actor="demo")
    console.print(f"   subject portal: {listed} signs in once, within 72 hours, at", highlight=False)
    console.print(f"     {url}/portal/sign-in/{code}", highlight=False, markup=False)
    return keys


# -- screening, keys, serving ----------------------------------------------------------------------

authority_app = typer.Typer(help="Authorities: API keys for screening, submitting and operating.", no_args_is_help=True)
key_app = typer.Typer(help="API keys: issue (shown once), list, rotate, revoke.", no_args_is_help=True)
authority_app.add_typer(key_app, name="key")
app.add_typer(authority_app, name="authority")


@key_app.command("create")
def key_create(authority: Annotated[str, typer.Argument(help="The pack's authority code.")],
               scopes: Annotated[list[str], typer.Option("--scopes", help="screen, read_restricted, operate, submit or "
                                                         "submit:CATEGORY; repeat or separate by commas.")],
               rate: Annotated[float, typer.Option("--rate", help="Requests per second allowed.")] = 50.0,
               burst: Annotated[int, typer.Option("--burst", help="Requests allowed at once above the rate.")] = 100,
               label: Annotated[Optional[str], typer.Option(help="What the key is for.")] = None,
               expires: Annotated[Optional[str], typer.Option(
                   "--expires", help="Last day the key works (YYYY-MM-DD, the pack's calendar); default: "
                                     "until revoked.")] = None,
               as_json: JsonFlag = False) -> None:
    """Issue an API key. The key is printed once; only its hash is stored."""
    from xinyong.services.keys import KeyError_, create_key

    engine = engine_for_work()
    wanted = [part.strip() for scope in scopes for part in scope.split(",") if part.strip()]
    last_day = parse_day(expires, "--expires")
    try:
        secret, stored = create_key(engine, active_pack(engine), authority, wanted, rate_per_second=rate,
                                    burst=burst, label=label, expires=last_day)
    except KeyError_ as exc:
        fail(str(exc))
    _show_key(secret, stored, as_json)


def _show_key(secret: str, stored: dict[str, Any], as_json: bool) -> None:
    """The new key, once: its secret on a line of its own, as one token."""
    if as_json:
        print_json({"key": secret, **stored})
        return
    until = f", until {stored['expires_at']:%Y-%m-%d %H:%M} UTC" if stored.get("expires_at") else ""
    console.print(f"key {stored['id']} for {stored['authority']} ({', '.join(stored['scopes'])}), "
                  f"{stored['rate_per_second']:g}/s burst {stored['burst']}{until}. Shown once, keep it now:",
                  highlight=False)
    console.print(secret, highlight=False, markup=False, soft_wrap=True)


@key_app.command("rotate")
def key_rotate(key_id: int, as_json: JsonFlag = False) -> None:
    """Replace a key by a new one with the same authority, scopes, limits and expiry; the old one is
    revoked at once. The new key is printed once."""
    from xinyong.services.keys import KeyError_, rotate_key

    try:
        secret, stored = rotate_key(engine_for_work(), key_id)
    except KeyError_ as exc:
        fail(str(exc))
    _show_key(secret, stored, as_json)


@key_app.command("list")
def key_list(as_json: JsonFlag = False) -> None:
    """Keys with their scopes and limits (never the secrets)."""
    from xinyong.services.keys import list_keys

    rows = list_keys(engine_for_work())
    if as_json:
        print_json(rows)
        return
    table = Table("id", "authority", "prefix", "scopes", "rate/s", "burst", "expires", "revoked")
    for r in rows:
        add_row(table, str(r["id"]), r["authority"], r["prefix"] + "…", ", ".join(r["scopes"]),
                f"{r['rate_per_second']:g}", str(r["burst"]), str(r["expires_at"] or ""), str(r["revoked_at"] or ""))
    console.print(table)


@key_app.command("revoke")
def key_revoke(key_id: int, reason: StepReason = None) -> None:
    """Revoke a key; a running server refuses it within a second."""
    from xinyong.services.keys import KeyError_, revoke_key

    try:
        revoke_key(engine_for_work(), key_id, reason=reason)
    except KeyError_ as exc:
        fail(str(exc))
    console.print(f"key {key_id} revoked")


def _screen_batch(engine: Engine, pack: Pack, batch: Path, output: Path | None, action: str | None, day: dt.date,
                  purpose: str, log: Any) -> None:
    """Screen every line of a file. A CSV output is always written (its header at least, even when
    every line fails or the input cannot be read), each cell neutralised against formulas."""
    from xinyong.services.screen import BATCH_COLUMNS, ScreeningIndex, batch_rows, screen_batch

    as_jsonl = output is not None and output.suffix == ".jsonl"
    handle = (output.open("wb") if as_jsonl else output.open("w", encoding="utf-8-sig", newline="")) if output \
        else sys.stdout
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
        except (UnicodeDecodeError, csv.Error) as exc:
            fail(f"{batch}: unreadable ({exc})")
        index = ScreeningIndex.load(engine, pack, names=any(isinstance(r, dict) and r.get("name") for _, r in rows))
        for result in screen_batch(index, rows, action, day):
            if result["decision"] is not None:
                log.add(query_id=uuid.uuid4().hex, key_id=None, authority="operator", purpose=purpose,
                        endpoint="screen_batch", query=result["identifier"] or result["name"],
                        subject=result["subject"], action=result["action"], as_of=result["as_of"],
                        result=result["decision"], measures=result["measures"].split(";") if result["measures"] else [])
            if writer is not None:
                writer.writerow(result)
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
    from xinyong.services.jobs import run_job
    from xinyong.services.querylog import QueryLog
    from xinyong.services.screen import ScreenError, ScreeningIndex, masked_query

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
    index = ScreeningIndex.load(engine, pack, names=name is not None)
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
        console.print("  possible match: a person must check the candidates", highlight=False)
    for candidate in data.get("candidates") or []:
        console.print(f"  candidate {shown(candidate['entity'])} {shown(candidate['name'])} "
                      f"score {candidate['score']:.3f}", highlight=False)
    for m in data["measures"]:
        via = f" through {m['through']['entity']} ({m['through']['relation']})" if m["through"] else ""
        console.print(f"  {m['code']} ({m['effect']}) {m['title']['zh']} / {m['title']['en']}{via}", highlight=False)
        console.print(f"    basis: {m['legal_basis']}", highlight=False)
        console.print(f"    listing {m['listing']['id']} on {m['listing']['list']} until {m['ends'] or 'performance'}; "
                      f"records: {shown(', '.join(r['record_key'] for r in m['records']))}", highlight=False)


@app.command("publish")
def publish_command(out: Annotated[Path, typer.Option("--out", help="The folder to write (full/, delta/, manifest.json).")],
                    since: Annotated[Optional[int], typer.Option(
                        "--since", min=0, help="Write delta/SEQ-NOW/ since this change sequence "
                                               "(default: the seq of the folder's earlier manifest).")] = None,
                    licence: Annotated[str, typer.Option("--licence", help="Licence named in the manifest.")]
                    = "CC-BY-4.0",
                    attribution: Annotated[Optional[str], typer.Option(
                        "--attribution", help="Attribution named in the manifest (default: the pack's name).")] = None,
                    as_json: JsonFlag = False) -> None:
    """Bulk open data: what the public pages show, as JSON Lines, CSV and Parquet, full and delta."""
    from xinyong.services.opendata import publish

    engine = engine_for_work()
    manifest = publish(engine, active_pack(engine), out, since=since, licence=licence, attribution=attribution)
    if as_json:
        print_json(manifest)
        return
    console.print(f"seq {manifest['seq']} as of {manifest['as_of']}: {len(manifest['files'])} files in {out}"
                  + (f" (delta {manifest['delta']})" if manifest["delta"] else ""), highlight=False, markup=False)
    for f in manifest["files"]:
        console.print(f"  {f['path']}: {f['rows']} rows", highlight=False, markup=False)


@app.command("serve")
def serve(host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
          port: Annotated[int, typer.Option("--port")] = 8000,
          log_level: Annotated[str, typer.Option("--log-level")] = "warning",
          public_url: Annotated[Optional[str], typer.Option(
              "--public-url", help="Where the public reaches this service (printed on reports; "
                                   "https:// makes session cookies Secure).")] = None,
          data_dir: Annotated[Optional[Path], typer.Option(
              "--data-dir", help="A folder written by `xinyong publish`, served under /data/ with ETags.")] = None
          ) -> None:
    """Serve the web portal and the API (OpenAPI docs at /docs) on the store; deliver webhook events."""
    from xinyong.api.app import create_app

    engine = engine_for_work()
    _port_free(host, port)
    if public_url is None:
        public_url = own_address(host, port)
        console.print(f"[yellow]warning:[/yellow] no --public-url: reports give {public_url}/verify/CODE as their "
                      "verification address", highlight=False)
    if data_dir is not None and not data_dir.is_dir():
        fail(f"--data-dir {data_dir}: no such folder (write it with `xinyong publish --out {data_dir}`)")
    application = create_app(engine, active_pack(engine), public_url=public_url, data_dir=data_dir)
    shown = make_url(database_url(State.db_url)).render_as_string(hide_password=True)
    console.print(f"serving {shown} on http://{_url_host(host)}:{port} (API docs at /docs)", highlight=False)
    serve_app(application, host, port, log_level)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def own_address(host: str, port: int) -> str:
    """`http://HOST:PORT` from serve's own arguments, for the reports' verification address when no
    --public-url is given: a wildcard address (0.0.0.0, ::) becomes this machine's name. Never
    taken from a request's Host header, which the client chooses."""
    import socket

    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    return f"http://{_url_host(host)}:{port}"


def _port_free(host: str, port: int) -> None:
    """Refuse at once, before saying "serving", when the address cannot be bound."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            fail(f"cannot serve on {_url_host(host)}:{port}: {exc.strerror}")


def serve_app(application: Any, host: str, port: int, log_level: str) -> None:
    """uvicorn, with the report renderer warmed up behind it: the first PDF is not 2 s late."""
    import threading

    import uvicorn

    from xinyong.services.report import warm_up

    threading.Thread(target=warm_up, name="report-warm-up", daemon=True).start()
    uvicorn.run(application, host=host, port=port, log_level=log_level, access_log=False)


# -- subjects ----------------------------------------------------------------------------------------

subject_app = typer.Typer(help="Subjects: sign-in credentials for the subject portal.", no_args_is_help=True)
credential_app = typer.Typer(help="One-time sign-in credentials (shown once; only a hash is stored).",
                             no_args_is_help=True)
subject_app.add_typer(credential_app, name="credential")
app.add_typer(subject_app, name="subject")


@credential_app.command("create")
def credential_create(code: Annotated[str, typer.Argument(help="Entity key or identifier of the subject.")],
                      hours: Annotated[float, typer.Option("--hours", help="Valid for this many hours.")] = 72,
                      base_url: Annotated[str, typer.Option("--base-url", help="The portal's address.")]
                      = "http://127.0.0.1:8000",
                      actor: StepActor = "cli", as_json: JsonFlag = False) -> None:
    """Issue a one-time sign-in link and code for a subject's portal; shown once."""
    from xinyong.services.subjects import CredentialError, issue_credential_details

    try:
        secret, stored = issue_credential_details(engine_for_work(), code, hours, actor=actor)
    except CredentialError as exc:
        fail(str(exc))
    link = f"{base_url.rstrip('/')}/portal/sign-in/{secret}"
    if as_json:
        print_json({"link": link, "code": secret, **stored})
        return
    console.print(f"credential {stored['id']} for {stored['entity']}, valid until "
                  f"{stored['expires_at']:%Y-%m-%d %H:%M} UTC, usable once. Shown once, give it to the subject now:",
                  highlight=False)
    console.print(f"  link: {link}", highlight=False, markup=False)
    console.print(f"  code: {secret}", highlight=False, markup=False)


@credential_app.command("revoke")
def credential_revoke(code: Annotated[str, typer.Argument(help="Entity key or identifier of the subject.")],
                      actor: StepActor = "cli", reason: StepReason = None) -> None:
    """Revoke every unused credential of a subject."""
    from xinyong.services.subjects import CredentialError, revoke_credentials

    try:
        count = revoke_credentials(engine_for_work(), code, actor=actor, reason=reason)
    except CredentialError as exc:
        fail(str(exc))
    console.print(f"{count} unused credentials revoked", highlight=False)


def run() -> None:
    """Console entry: a store that cannot be used (missing audit key, unreachable database)
    ends with one line naming the problem, never a traceback."""
    try:
        app(prog_name="xinyong")
    except StoreError as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None

