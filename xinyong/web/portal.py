"""The subject portal (/portal): sign in with a one-time credential, see one's whole file,
object to a record or a listing, apply for credit repair, follow each case.

Only the signed-in subject's own file is ever read here: every listing, record, case and
file named in a request is checked to belong to it. Identifiers in URLs are the store's
row numbers, never an ID number or a record key.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from xinyong.domain.calendar import pack_today
from xinyong.services.lists.due_process import show_listing
from xinyong.services.intake.files import FileRefusedError, file_path
from xinyong.services.publication.subjects import (
    check_credential,
    CredentialError,
    SubjectError,
    object_as_subject,
    owns_file,
    redeem_credential,
    repair_as_subject,
    subject_cases,
    subject_file,
)
from xinyong.web.common import (
    WebError,
    current_subject,
    gettext_for,
    language_of,
    reject_nul,
    render,
    require_csrf,
    service_of,
    sign_in_subject,
    sign_out,
)
from xinyong.web.forms import download, flash, number, redirect, take_flashes, text, uploads

router = APIRouter(prefix="/portal", dependencies=[Depends(reject_nul)])
CSRF = [Depends(require_csrf)]


def _page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    return render(request, f"web/portal/{template}", {"flashes": take_flashes(request), **context}, status)


def _(request: Request, message: str, **values: Any) -> str:
    translated = gettext_for(language_of(request))(message)
    return translated % values if values else translated


def _today(request: Request):
    return pack_today(service_of(request).pack)


async def _file(request: Request, subject: str) -> dict[str, Any]:
    service = service_of(request)
    return await asyncio.to_thread(subject_file, service.engine, service.pack, subject, _today(request),
                                   language_of(request))


# -- signing in and out ---------------------------------------------------------------------------

@router.get("")
@router.get("/")
async def portal_home(request: Request) -> Response:
    if current_subject(request):
        return redirect("/portal/file")
    return _page(request, "sign_in.html", {"code": ""})


def _credential_error(request: Request, exc: CredentialError) -> str:
    """Why a sign-in code cannot be used, in the page's language."""
    messages = {
        "revoked": _(request, "This sign-in code was revoked; ask for a new one."),
        "used": _(request, "This sign-in code was already used on %(on)s; ask for a new one.", on=exc.params.get("on", ""))
        if exc.params.get("on") else _(request, "This sign-in code was already used; ask for a new one."),
        "expired": _(request, "This sign-in code expired on %(on)s; ask for a new one.", on=exc.params.get("on", "")),
    }
    return messages.get(exc.code) or _(request, "Unknown sign-in code.")


@router.get("/sign-in/{secret}")
async def sign_in_link(request: Request, secret: str) -> Response:
    """The link only fills in the form: a GET never uses up the credential (mail scanners follow links).
    A link that can no longer be used says so at once, rather than "ready to use"."""
    try:
        await asyncio.to_thread(check_credential, service_of(request).engine, secret[:200])
    except CredentialError as exc:
        response = _page(request, "sign_in.html", {"code": "", "error": _credential_error(request, exc)}, 401)
    else:
        response = _page(request, "sign_in.html", {"code": secret[:200], "from_link": True})
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.post("/sign-in", dependencies=CSRF)
async def sign_in(request: Request) -> Response:
    form = await request.form()
    code = text(form, "code", max_length=200)
    try:
        subject = await asyncio.to_thread(redeem_credential, service_of(request).engine, code)
    except CredentialError as exc:
        response = _page(request, "sign_in.html", {"code": "", "error": _credential_error(request, exc)}, 401)
        response.headers["Referrer-Policy"] = "no-referrer"
        return response
    sign_in_subject(request, subject)
    flash(request, "good", _(request, "You are signed in."))
    return redirect("/portal/file")


@router.post("/sign-out", dependencies=CSRF)
async def sign_out_route(request: Request) -> Response:
    sign_out(request)
    flash(request, "good", _(request, "You are signed out."))
    return redirect("/portal")


def _subject(request: Request) -> str | None:
    return current_subject(request)


def _signed_out(request: Request) -> Response:
    flash(request, "bad", _(request, "Your session has ended. Please sign in again."))
    return redirect("/portal")


# -- the file -------------------------------------------------------------------------------------

@router.get("/file")
async def my_file(request: Request) -> Response:
    subject = _subject(request)
    if subject is None:
        return _signed_out(request)
    data = await _file(request, subject)
    return _page(request, "file.html", {"file": data, "today": _today(request), **await _own_grade(request, subject)})


async def _own_grade(request: Request, subject: str) -> dict[str, Any]:
    """The subject's own supervision grade with its points (never stored: the subject is not an authority)."""
    from xinyong.services.accountability.grades import GradeError, compute_grade

    service = service_of(request)
    spec = service.pack.grades
    try:
        grade = await asyncio.to_thread(compute_grade, service.engine, service.pack, subject, _today(request))
    except GradeError:
        return {"grade": None}
    return {"grade": grade, "rules": {r.code: r for r in spec.rules} if spec else {}, "grade_spec": spec,
            "object_links": True}


def _own_listing(data: dict[str, Any], listing_id: int | None) -> dict[str, Any]:
    listing = next((x for x in data["listings"] if x["id"] == listing_id), None)
    if listing is None:
        raise WebError(404, "not found")
    return listing


def _own_record(data: dict[str, Any], record_id: int | None) -> dict[str, Any]:
    record = next((x for x in data["records"] if x["id"] == record_id), None)
    if record is None:
        raise WebError(404, "not found")
    return record


# -- objecting ------------------------------------------------------------------------------------

@router.get("/object")
async def object_form(request: Request) -> Response:
    subject = _subject(request)
    if subject is None:
        return _signed_out(request)
    data = await _file(request, subject)
    listing_id, record_id = number(request.query_params, "listing"), number(request.query_params, "record")
    if (listing_id is None) == (record_id is None):
        raise WebError(404, "not found")
    target = ({"listing": _own_listing(data, listing_id)} if listing_id is not None
              else {"record": _own_record(data, record_id)})
    return _page(request, "object.html", {"file": data, **target, "reason": ""})


@router.post("/object", dependencies=CSRF)
async def object_submit(request: Request) -> Response:
    subject = _subject(request)
    if subject is None:
        return _signed_out(request)
    service = service_of(request)
    form = await request.form()
    listing_id, record_id = number(form, "listing"), number(form, "record")
    reason = text(form, "reason")
    files = await uploads(form, "attachments")
    try:
        outcome = await asyncio.to_thread(object_as_subject, service.engine, service.pack, subject,
                                          listing_id=listing_id, record_id=record_id, reason=reason, files=files,
                                          on=_today(request))
    except (SubjectError, FileRefusedError) as exc:
        data = await _file(request, subject)
        try:
            target = ({"listing": _own_listing(data, listing_id)} if listing_id is not None
                      else {"record": _own_record(data, record_id)})
        except WebError:
            raise WebError(404, "not found") from None
        return _page(request, "object.html", {"file": data, **target, "reason": reason, "error": str(exc)}, 422)
    flash(request, "good", _(request, "Your objection was filed (case %(id)s).", id=outcome["objection"]))
    return redirect(f"/portal/cases/objection/{outcome['objection']}")


# -- credit repair ----------------------------------------------------------------------------------

@router.get("/repair")
async def repair_form(request: Request) -> Response:
    subject = _subject(request)
    if subject is None:
        return _signed_out(request)
    data = await _file(request, subject)
    listing = _own_listing(data, number(request.query_params, "listing"))
    return _page(request, "repair.html", {"file": data, "listing": listing, "commitment": ""})


@router.post("/repair", dependencies=CSRF)
async def repair_submit(request: Request) -> Response:
    subject = _subject(request)
    if subject is None:
        return _signed_out(request)
    service = service_of(request)
    form = await request.form()
    listing_id = number(form, "listing")
    commitment = text(form, "commitment", max_length=20000)
    files = await uploads(form, "evidence")
    if listing_id is None:
        raise WebError(404, "not found")
    try:
        outcome = await asyncio.to_thread(repair_as_subject, service.engine, service.pack, subject, listing_id,
                                          commitment=commitment, files=files, on=_today(request))
    except (SubjectError, FileRefusedError) as exc:
        data = await _file(request, subject)
        listing = _own_listing(data, listing_id)
        return _page(request, "repair.html", {"file": data, "listing": listing, "commitment": commitment,
                                              "error": str(exc)}, 422)
    flash(request, "good", _(request, "Your application for credit repair was filed (case %(id)s).",
                             id=outcome["repair"]))
    return redirect(f"/portal/cases/repair/{outcome['repair']}")


# -- cases ----------------------------------------------------------------------------------------

@router.get("/cases")
async def cases(request: Request) -> Response:
    subject = _subject(request)
    if subject is None:
        return _signed_out(request)
    data = await asyncio.to_thread(subject_cases, service_of(request).engine, subject)
    return _page(request, "cases.html", {"cases": data})


@router.get("/cases/{kind}/{case_id}")
async def case(request: Request, kind: str, case_id: int) -> Response:
    subject = _subject(request)
    if subject is None:
        return _signed_out(request)
    if kind not in ("objection", "repair"):
        raise WebError(404, "not found")
    service = service_of(request)
    data = await _file(request, subject)
    found = next((c for c in data["objections" if kind == "objection" else "repairs"] if c["id"] == case_id), None)
    if found is None:
        raise WebError(404, "not found")
    listing = None
    listing_id = found.get("listing_id")
    if listing_id is not None:
        listing = await asyncio.to_thread(show_listing, service.engine, service.pack, listing_id)
        for o in listing["objections"]:  # record keys of objections (may carry an ID number)
            o.pop("record_key", None)
    affected = []
    if kind == "objection" and found.get("record_key"):
        # the listings built on the record; their states tell what the decision did
        affected = [x for x in data["listings"] if found["record_key"] in x["evidence"]]
    return _page(request, "case.html", {"kind": kind, "case": found, "listing": listing, "affected": affected,
                                        "file": data})


@router.get("/files/{sha256}")
async def own_file(request: Request, sha256: str) -> Response:
    subject = _subject(request)
    if subject is None:
        return _signed_out(request)
    engine = service_of(request).engine
    name = await asyncio.to_thread(owns_file, engine, subject, sha256)
    if name is None:
        raise WebError(404, "not found")
    try:
        data = file_path(engine, sha256).read_bytes()
    except (OSError, FileRefusedError):
        raise WebError(404, "not found") from None
    return download(data, name, "application/octet-stream")
