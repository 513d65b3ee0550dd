"""`xinyong` commands of the intake stage: agency files and API posts become batches of records; the register."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import orjson
import typer
from rich.table import Table
from sqlalchemy import Engine, select

from xinyong.domain.records import FileRefused
from xinyong.services.intake.ingest import load_mapping
from xinyong.store import tables as t
from xinyong.store.db import private_file

from xinyong.cli.common import (
    FutureFlag,
    JsonFlag,
    OnOption,
    StepActor,
    StepReason,
    _checkpoint,
    _day_not_ahead,
    _due_process,
    _ingest_with_progress,
    _print_outcome,
    active_pack,
    add_row,
    app,
    batch_app,
    console,
    engine_for_work,
    errors,
    fail,
    print_json,
    record_app,
    shown,
)


# -- ingestion ------------------------------------------------------------------------------

@contextmanager
def _without_pandas() -> Iterator[None]:
    """Spare `xinyong ingest` the import of pandas (~0.5 s of CPU and ~50 MB, a large share of a file's
    ingestion). pyarrow imports it on its first conversion of Python values, only to recognise
    pandas objects and pandas' missing values; the column-wise validation (domain.columnar) never
    gives it one, and nothing else this command runs uses pandas. While the command runs, pandas
    looks not installed; pyarrow then treats every value as a plain Python value, which they are."""
    if "pandas" in sys.modules:
        yield
        return
    sys.meta_path.insert(0, _NoPandas)
    try:
        yield
    finally:
        sys.meta_path.remove(_NoPandas)


class _NoPandas:
    """A module finder for which pandas is not installed."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas":
            raise ImportError("pandas is not used by `xinyong ingest`")
        return None


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
            with _without_pandas():
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
    from xinyong.services.intake.batches import quarantine_rows

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
    from xinyong.services.intake.batches import rejects_csv

    engine = engine_for_work()
    batch = _batch(engine, batch_id)
    with private_file(output) as handle:  # the rows as sent: persons' ID numbers whole
        for chunk in rejects_csv(engine, batch_id):
            handle.write(chunk)
    console.print(f"{batch['quarantined']} rejected rows of batch {batch_id} written to {output}")


@record_app.command("revoke")
def record_revoke(key: str, on: OnOption = None, future: FutureFlag = False,
                  actor: StepActor = "cli", reason: StepReason = None,
                  as_json: JsonFlag = False) -> None:
    """Revoke a record (a new version); listings built on it are withdrawn."""
    from xinyong.services.lists.due_process import Actor, revoke_record

    engine = engine_for_work()
    pack = active_pack(engine)
    day = _day_not_ahead(pack, on, "--on", future)
    _print_outcome(_due_process(revoke_record, engine, pack, key, day, Actor(actor, reason)),
                   as_json)


@record_app.command("correct")
def record_correct(key: str, file: Annotated[Path, typer.Option("--file", help="JSON object: field: new value.")],
                   on: OnOption = None, future: FutureFlag = False, actor: StepActor = "cli", reason: StepReason = None,
                   as_json: JsonFlag = False) -> None:
    """Correct a record (a new version, validated like any row); listings on the old one are withdrawn."""
    from xinyong.services.lists.due_process import Actor, correct_record

    engine = engine_for_work()
    pack = active_pack(engine)
    _print_outcome(_due_process(correct_record, engine, pack, key, file, _day_not_ahead(pack, on, "--on", future),
                                Actor(actor, reason)), as_json)
