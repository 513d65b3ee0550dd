"""The `xinyong` command line (Typer + Rich): the app, its sub-commands' groups, and what every
room of commands shares."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine, make_url

from xinyong.domain.calendar import pack_today
from xinyong.domain.pack import Pack, PackError, load_pack
from xinyong.domain.terminal import printable
from xinyong.services.intake.ingest import ingest_file
from xinyong.store.db import StoreError, database_url, get_setting, open_engine, require_current

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
lists_app = typer.Typer(help="Foreign and international lists (kind foreign): import, screened against, never listings.",
                        no_args_is_help=True)
app.add_typer(lists_app, name="lists")
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
    """An engine on an initialised, current store (a SQLite file that is not there is not made:
    a command run before `init`, or with a mistyped --db, leaves no empty store behind)."""
    url = make_url(database_url(State.db_url))
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not Path(url.database).expanduser().exists():
        fail(f"{url.render_as_string(hide_password=True)}: not initialised; run `xinyong init`")
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


def _ingest_with_progress(engine: Engine, pack: Pack, path: Path, authority: str, category: str,
                          mapping: dict[str, str] | None, quiet: bool):
    if quiet or not console.is_terminal:
        return ingest_file(engine, pack, path, authority, category, mapping=mapping)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(f"ingesting {path.name}", total=None)
        return ingest_file(engine, pack, path, authority, category, mapping=mapping,
                           progress=lambda n: progress.advance(task, n))


def _checkpoint(engine: Engine) -> dict[str, Any] | None:
    """Seal reports and sign the chain's head: after every batch, evaluation and process run."""
    from xinyong.services.operations.integrity import checkpoint

    return checkpoint(engine, actor="cli")


# -- backup, restore, moving a store ------------------------------------------------------------

store_app = typer.Typer(help="Moving a store between engines.", no_args_is_help=True)
app.add_typer(store_app, name="store")


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


FutureFlag = Annotated[bool, typer.Option(
    "--future", help="Allow a date after today: time runs ahead of the clock (rehearsals, tests).")]


def _day(pack: Pack, value: str | None, option: str) -> dt.date:
    return parse_day(value, option) or pack_today(pack)


AHEAD_OF_A_STEP = "it would close objection windows still open and end listings early"


def _day_not_ahead(pack: Pack, value: str | None, option: str, future: bool,
                   consequence: str = AHEAD_OF_A_STEP) -> dt.date:
    """The date of a due-process step, of `process` or of `evaluate`: a day after the pack's today only with
    --future. Time made due by then is applied first: objection windows still open to the subject
    would close and listings end early, and a step dated ahead blocks the subject's steps until then."""
    day, today = _day(pack, value, option), pack_today(pack)
    if day > today and not future:
        fail(f"{option} {day} is after today ({today}, {pack.calendar.timezone}): {consequence}; "
             f"give --future to run ahead of the clock on purpose")
    return day


def _due_process(call, *args, **kwargs):
    from xinyong.services.lists.due_process import DueProcessError

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


# -- screening, keys, serving ----------------------------------------------------------------------

authority_app = typer.Typer(help="Authorities: API keys for screening, submitting and operating.", no_args_is_help=True)
key_app = typer.Typer(help="API keys: issue (shown once), list, rotate, revoke.", no_args_is_help=True)
authority_app.add_typer(key_app, name="key")
app.add_typer(authority_app, name="authority")


# -- subjects ----------------------------------------------------------------------------------------

subject_app = typer.Typer(help="Subjects: sign-in credentials for the subject portal.", no_args_is_help=True)
credential_app = typer.Typer(help="One-time sign-in credentials (shown once; only a hash is stored).",
                             no_args_is_help=True)
subject_app.add_typer(credential_app, name="credential")
app.add_typer(subject_app, name="subject")


def run() -> None:
    """Console entry: a store that cannot be used (missing audit key, unreachable database), or a
    file or folder that cannot be written, ends with one line naming the problem, never a traceback."""
    try:
        app(prog_name="xinyong")
    except StoreError as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
    except OSError as exc:  # a file or folder given that cannot be read or written: missing folder, disk full
        where = f"{exc.filename}: " if exc.filename else ""
        errors.print(f"[red]error:[/red] {shown(where)}{shown(exc.strerror or exc)}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None

