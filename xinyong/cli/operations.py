"""`xinyong` commands of the operations stage: keys, the console's figures, integrity, backups, snapshots, the demo."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Optional

import orjson
import typer
from rich.table import Table
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from xinyong.domain.calendar import pack_today
from xinyong.domain.listings import ACTIVE
from xinyong.domain.pack import Pack, PackError, fingerprint, load_pack
from xinyong.domain.records import FileRefused
from xinyong.store import tables as t
from xinyong.store.audit import append_event
from xinyong.store.db import StoreError, database_url, get_setting, migrate, open_engine, set_setting

from xinyong.cli.common import (
    JsonFlag,
    State,
    StepReason,
    _checkpoint,
    _ingest_with_progress,
    active_pack,
    add_row,
    app,
    audit_app,
    console,
    demo_app,
    engine_for_work,
    errors,
    fail,
    key_app,
    pack_app,
    parse_day,
    print_json,
    shown,
    store_app,
)
from xinyong.cli.resolution import (
    resolve_command,
)
from xinyong.cli.lists import (
    evaluate_command,
)


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
        dropped = _rules_dropped(connection, loaded)
        if dropped:
            fail(f"pack {loaded.code} {loaded.version} lacks rules that listings still open were made under, "
                 f"which keep them: {'; '.join(dropped)}. Keep those rule versions in the new pack beside the new "
                 f"ones (the store still runs {get_setting(connection, 'pack_version')})")
        previous = get_setting(connection, "pack_version"), get_setting(connection, "pack_sha256")
        set_setting(connection, "pack", ref)
        set_setting(connection, "pack_version", f"{loaded.code}@{loaded.version}")
    try:  # the audit chain's key and head, kept outside the database
        audit, notes = prepare_audit(engine, fresh=fresh)
    except (StoreError, OSError) as exc:
        fail(f"audit files: {exc}")
    version, digest = f"{loaded.code}@{loaded.version}", fingerprint(loaded)
    switched = previous[0] is not None and (previous[0] != version or previous[1] not in (None, digest))
    with engine.begin() as connection:
        set_setting(connection, "pack_sha256", digest)
        if switched:  # which rules were in force from when: the chain says when the store changed packs
            append_event(connection, actor="cli", action="pack.activated", object_type="pack", object_id=version,
                         payload={"ref": ref, "sha256": digest, "previous": previous[0],
                                  "previous_sha256": previous[1], "on": pack_today(loaded).isoformat()})
    console.print(f"store {engine.url.render_as_string(hide_password=True)} at schema {revision}, "
                  f"pack {loaded.code} {loaded.version}", highlight=False)
    console.print(f"audit key {audit.key_path}, head {audit.head_path}", highlight=False)
    for note in notes:
        console.print(f"  {note}", highlight=False)


def _rules_dropped(connection: Any, pack: Pack) -> list[str]:
    """Each list rule a listing not yet ended was made under that `pack` does not have, with its listings:
    a listing keeps its rule (legal basis, term) across pack versions."""
    kept = {(spec.code, rule.version) for spec in pack.lists for rule in spec.rules}
    L = t.listings.c
    in_use = connection.execute(select(L.list_code, L.rule_version, func.count(), func.min(L.id))
                                .where(L.state.in_(ACTIVE)).group_by(L.list_code, L.rule_version)
                                .order_by(L.list_code, L.rule_version)).all()
    return [f"{code} v{version} ({count} listings, e.g. {first})"
            for code, version, count, first in in_use if (code, version) not in kept]


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
    grades = loaded.grades
    if grades is not None:
        console.print(f"grades: {shown(grades.names.zh)} / {shown(grades.names.en)} / {shown(grades.names.fr)}, "
                      f"by {shown(grades.authority)}" + (" (illustrative rules, unverified)" if grades.unverified else "")
                      + f"; legal basis: {shown(grades.legal_basis)}", highlight=False)
        table = Table("class", "zh", "en", "fr", "max points", title="grade classes", title_justify="left")
        for grade_class in grades.classes:
            add_row(table, grade_class.code, grade_class.names.zh, grade_class.names.en, grade_class.names.fr,
                    "" if grade_class.max_points is None else f"{grade_class.max_points:g}")
        console.print(table)
        table = Table("code", "zh", "en", "fr", "legal basis", title="grade rules", title_justify="left")
        for rule in grades.rules:
            add_row(table, rule.code, rule.names.zh, rule.names.en, rule.names.fr, rule.legal_basis)
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


@audit_app.command("verify")
def audit_verify(checkpoint_file: Annotated[Optional[Path], typer.Option(
                     "--checkpoint", help="A signed checkpoint saved earlier (`audit checkpoint -o`): "
                                          "the chain must still hold it.")] = None,
                 as_json: JsonFlag = False) -> None:
    """Recompute the keyed hash chain and compare its end with the head file, then check from the store
    itself that every audited row (batch, record version, listing and its state, objection, repair
    application, key, report) has its event and that no signed checkpoint is ahead of the chain;
    non-zero exit on any problem."""
    from xinyong.services.operations.integrity import verify_store

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


@app.command("backup")
def backup_command(folder: Annotated[Path, typer.Argument(help="A new or empty folder for the backup.")],
                   as_json: JsonFlag = False) -> None:
    """Back the store up: the database (SQLite online backup, or pg_dump), the audit head, uploaded files.
    Never the audit key or the checkpoint signing key: keep those apart."""
    from xinyong.services.operations.backup import BackupError, backup

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
    from xinyong.services.operations.backup import BackupError, restore

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
    from xinyong.services.operations.backup import BackupError, copy_store

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


@app.command("export")
def export_command(fmt: Annotated[str, typer.Option("--format", help="parquet (the only format).")] = "parquet",
                   out: Annotated[Path, typer.Option("--out", help="A new or empty folder.")] = ...,  # type: ignore[assignment]
                   as_json: JsonFlag = False) -> None:
    """Write an operator-only snapshot (records, links, entities, listings) for `evaluate --engine spark`.

    Not a publication: restricted data, files mode 0600, never served; each export is audited."""
    if fmt != "parquet":
        fail(f"--format {fmt!r}: only parquet")
    from xinyong.services.operations.snapshot import SnapshotError, export_snapshot

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


# -- demo -----------------------------------------------------------------------------------

@demo_app.command("generate")
def demo_generate(entities: Annotated[int, typer.Option(min=10)] = 2000,
                  seed: Annotated[int, typer.Option()] = 42,
                  out: Annotated[Path, typer.Option(help="Folder to write into.")] = Path("demo")) -> None:
    """Write a synthetic jurisdiction: register, agency batches, truth.csv and manifest.json."""
    from xinyong.services.operations import demo as demo_service  # Faker loads slowly: only when asked

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
    from xinyong.services.operations import demo as demo_service

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
    from xinyong.services.lists.foreign import ForeignListError, import_list

    for entry in manifest.get("foreign_lists", []):  # never listings: screening refers what they name
        try:
            outcome = import_list(engine, pack, out / entry["file"], entry["format"], entry["list"], actor="demo")
        except ForeignListError as exc:
            fail(f"demo foreign list refused: {exc}")
        console.print(f"   foreign list {outcome['list']}: {outcome['designations']} designations, "
                      f"{outcome['persons_skipped']} persons skipped", highlight=False)
    console.print("[bold]6. the store now holds[/bold]")
    stats(as_json=False)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    from xinyong.services.lists.due_process import DueProcessError

    try:
        tour = demo_service.prepare_tour(engine, pack, out, today)
    except DueProcessError as exc:
        fail(f"demo: {exc}")
    tour.update(_demo_credentials(engine, pack, url))
    for entry in manifest.get("foreign_lists", []):
        tour[f"FOREIGN_{entry['format'].upper()}"] = str(out / entry["file"])
        if entry.get("named_by_code"):
            tour["FOREIGN_ENTITY"] = entry["named_by_code"]
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

    from xinyong.services.operations.keys import create_key, list_keys, revoke_key

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
        from xinyong.services.publication.subjects import issue_credential_details
    except ImportError:  # the subject portal is not installed
        return keys
    code, _stored = issue_credential_details(engine, listed, 72, actor="demo")
    console.print(f"   subject portal: {listed} signs in once, within 72 hours, at", highlight=False)
    console.print(f"     {url}/portal/sign-in/{code}", highlight=False, markup=False)
    return keys


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
    from xinyong.services.operations.keys import KeyError_, create_key

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
    from xinyong.services.operations.keys import KeyError_, rotate_key

    try:
        secret, stored = rotate_key(engine_for_work(), key_id)
    except KeyError_ as exc:
        fail(str(exc))
    _show_key(secret, stored, as_json)


@key_app.command("list")
def key_list(as_json: JsonFlag = False) -> None:
    """Keys with their scopes and limits (never the secrets)."""
    from xinyong.services.operations.keys import list_keys

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
    from xinyong.services.operations.keys import KeyError_, revoke_key

    try:
        revoke_key(engine_for_work(), key_id, reason=reason)
    except KeyError_ as exc:
        fail(str(exc))
    console.print(f"key {key_id} revoked")


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


REPORT_WARM_UP_AFTER = 2.0  # seconds after the screening index is loaded


def serve_app(application: Any, host: str, port: int, log_level: str) -> None:
    """uvicorn, with the report renderer warmed up behind it: the first PDF is not 2 s late.

    The warm-up (WeasyPrint, fontconfig, the fonts: seconds of CPU under the GIL) waits until the
    screening index is loaded and the first requests after a restart had their turn: run beside
    the start it made a restart's first screening answer wait for it."""
    import threading
    import time

    import uvicorn

    def warm_up_later() -> None:
        service = getattr(application.state, "service", None)
        if service is not None:
            service.loaded.wait()
        time.sleep(REPORT_WARM_UP_AFTER)
        from xinyong.services.publication.report import warm_up

        warm_up()

    threading.Thread(target=warm_up_later, name="report-warm-up", daemon=True).start()
    uvicorn.run(application, host=host, port=port, log_level=log_level, access_log=False)
