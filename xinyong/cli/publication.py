"""`xinyong` commands of the publication stage: public lists and feeds, search, credit reports, the subject's side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


from xinyong.cli.common import (
    JsonFlag,
    StepActor,
    StepReason,
    active_pack,
    app,
    console,
    credential_app,
    engine_for_work,
    fail,
    print_json,
)


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
    from xinyong.services.publication.opendata import publish

    engine = engine_for_work()
    manifest = publish(engine, active_pack(engine), out, since=since, licence=licence, attribution=attribution)
    if as_json:
        print_json(manifest)
        return
    console.print(f"seq {manifest['seq']} as of {manifest['as_of']}: {len(manifest['files'])} files in {out}"
                  + (f" (delta {manifest['delta']})" if manifest["delta"] else ""), highlight=False, markup=False)
    for f in manifest["files"]:
        console.print(f"  {f['path']}: {f['rows']} rows", highlight=False, markup=False)


@credential_app.command("create")
def credential_create(code: Annotated[str, typer.Argument(help="Entity key or identifier of the subject.")],
                      hours: Annotated[float, typer.Option("--hours", help="Valid for this many hours.")] = 72,
                      base_url: Annotated[str, typer.Option("--base-url", help="The portal's address.")]
                      = "http://127.0.0.1:8000",
                      actor: StepActor = "cli", as_json: JsonFlag = False) -> None:
    """Issue a one-time sign-in link and code for a subject's portal; shown once."""
    from xinyong.services.publication.subjects import CredentialError, issue_credential_details

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
    from xinyong.services.publication.subjects import CredentialError, revoke_credentials

    try:
        count = revoke_credentials(engine_for_work(), code, actor=actor, reason=reason)
    except CredentialError as exc:
        fail(str(exc))
    console.print(f"{count} unused credentials revoked", highlight=False)
