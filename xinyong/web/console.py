"""The authority console (/console): authorities signed in with an API key.

With a submit scope: upload a batch (ingested in a background thread, progress polled
with HTMX), see its quarantine and download the rejected rows. With the operate scope
besides: the resolution review queue, listings to remind, notify and decide, objections
and repair applications to decide, the audit status. Every step is taken through the
services with the actor ``AUTHORITY/keyID`` and a reason; the services write the audit
events. A revoked key ends its console sessions at the next request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import shutil
import tempfile
import threading
import time
import uuid
from zoneinfo import ZoneInfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from xinyong.domain import formats
from xinyong.domain.calendar import pack_today
from xinyong.domain.diffs import name_diff
from xinyong.domain.identifiers import mask_record_key, mask_subject_code
from xinyong.domain.listings import STATES
from xinyong.domain.pack import PackError
from xinyong.domain.records import FileRefused
from xinyong.services.intake.batches import BatchNotFound, batch_row, quarantine_count, quarantine_rows, rejects_csv
from xinyong.services.lists.due_process import (
    LANGUAGES,
    Actor,
    AuthorityRefused,
    DueProcessError,
    bulk_step,
    decide_objection,
    decide_repair,
    notify,
    overdue,
    remind,
    select_listings,
    show_listing,
)
from xinyong.services.intake.files import FileRefusedError, file_path, safe_name
from xinyong.services.intake.ingest import ingest_file
from xinyong.services.operations.operators import (
    Operator,
    SignInRefused,
    active_operator,
    audit_status,
    dashboard,
    known_file,
    open_objections,
    repair_applications,
    sign_in_operator_key,
    CaseFilter,
    ListingFilter,
    batches_page,
    listings_page,
    quarantine_page,
    records_page,
    objections_page,
    repairs_page,
    review_page,
)
from xinyong.services.resolution.resolve import ResolveError, judge, review_queue
from xinyong.web import charts
from xinyong.web.common import (
    WebError,
    current_operator,
    gettext_for,
    language_of,
    reject_nul,
    render,
    require_csrf,
    service_of,
    sign_in_operator,
    sign_out,
)
from xinyong.web.forms import download, flash, redirect, take_flashes, text

log = logging.getLogger("xinyong.web.console")
router = APIRouter(prefix="/console", dependencies=[Depends(reject_nul)])
CSRF = [Depends(require_csrf)]
UPLOAD_KEEP_SECONDS = 3600


# the state labels of web/portal/_macros.html `state`, for the charts drawn in Python
STATE_WORDS = {"proposed": "proposed", "notified": "notified", "under_review": "under review",
               "effective": "in force", "expired": "expired", "repaired": "repaired", "withdrawn": "withdrawn"}


def _(request: Request, message: str, **values: Any) -> str:
    translated = gettext_for(language_of(request))(message)
    return translated % values if values else translated


def _page(request: Request, template: str, operator: Operator | None, context: dict[str, Any],
          status: int = 200) -> Response:
    return render(request, f"web/console/{template}",
                  {"flashes": take_flashes(request), "operator": operator, **context}, status)


async def _operator(request: Request) -> Operator | None:
    signed = current_operator(request)
    if signed is None:
        return None
    operator = await asyncio.to_thread(active_operator, service_of(request).engine, signed["key_id"])
    if operator is not None and not _competent(service_of(request).pack, operator.authority):
        # a key issued before `authority key create` refused operate and submit to an authority with
        # no competences (a consumer of screening): it opens nothing here
        operator = None
    if operator is None:
        sign_out(request)
    return operator


def _competent(pack: Any, authority: str) -> bool:
    try:
        return bool(pack.authority(authority).competences)
    except PackError:
        return False


def _signed_out(request: Request) -> Response:
    flash(request, "bad", _(request, "Please sign in with your authority's API key."))
    return redirect("/console")


def _need_operate(operator: Operator) -> None:
    if not operator.operates:
        raise WebError(403, "no_operate_scope")


def _today(request: Request) -> dt.date:
    return pack_today(service_of(request).pack)


# -- signing in and out, dashboard ---------------------------------------------------------------------

@router.get("")
@router.get("/")
async def home(request: Request) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _page(request, "sign_in.html", None, {})
    service = service_of(request)
    data = await asyncio.to_thread(dashboard, service.engine, service.pack)
    lang = language_of(request)
    per_month = data["records_per_month"]

    def figure(n: float) -> str:
        return formats.number(n, lang)

    authority_names = {a: per_month["names"][a].get(lang, a) for a in per_month["series"]}
    records_chart = charts.stacked_columns(
        "chart-records", _(request, "Records per authority and month of decision"),
        _(request, "Stacked columns: one column per month, one colour per authority."),
        [formats.month(m, lang) for m in per_month["months"]],
        [(authority_names[a], v) for a, v in per_month["series"].items()], number=figure)
    lists = data["listings"]["lists"]
    states = [s for s in STATES if any(s in per_state for per_state in lists.values())]
    list_names = {code: data["listings"]["names"][code].get(lang, code) for code in lists}
    listings_chart = charts.stacked_bars(
        "chart-listings", _(request, "Listings per list and state"),
        _(request, "Stacked bars: one bar per list, one colour per state."),
        [list_names[c] for c in lists],
        [(_(request, STATE_WORDS.get(s, s)), [lists[c].get(s, 0) for c in lists]) for s in states], number=figure)
    return _page(request, "dashboard.html", operator, {
        "months": [formats.month(m, lang) for m in per_month["months"]], "data": data, "records_chart": records_chart, "listings_chart": listings_chart,
        "authority_names": authority_names, "states": states, "list_names": list_names,
        "swatch": charts.swatch})


@router.post("/sign-in", dependencies=CSRF)
async def sign_in(request: Request) -> Response:
    form = await request.form()
    secret = text(form, "api_key", max_length=200)
    try:
        operator = await asyncio.to_thread(sign_in_operator_key, service_of(request).engine, secret)
    except SignInRefused as exc:
        return _page(request, "sign_in.html", None, {"error": str(exc)}, 401)
    sign_in_operator(request, operator.key_id, operator.authority, list(operator.scopes))
    flash(request, "good", _(request, "Signed in as %(who)s.", who=operator.actor))
    return redirect("/console")


@router.post("/sign-out", dependencies=CSRF)
async def sign_out_route(request: Request) -> Response:
    sign_out(request)
    flash(request, "good", _(request, "You are signed out."))
    return redirect("/console")


# -- uploads ---------------------------------------------------------------------------------------------

@dataclass
class Upload:
    id: str
    key_id: int
    authority: str
    category: str
    file_name: str
    total: int | None
    done: int = 0
    state: str = "queued"  # queued | running | done | failed
    batch_id: int | None = None
    duplicate_of: int | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None

    @property
    def percent(self) -> int | None:
        if self.state == "done":
            return 100
        if not self.total:
            return None
        return min(99, int(100 * self.done / self.total))


_uploads: dict[str, Upload] = {}
_uploads_lock = threading.Lock()


def _forget_old_uploads() -> None:
    limit = time.time() - UPLOAD_KEEP_SECONDS
    with _uploads_lock:
        for upload_id in [u.id for u in _uploads.values() if u.finished and u.finished < limit]:
            del _uploads[upload_id]


def _save_upload(source: Any, target: Path) -> int | None:
    """Copy the upload to `target` in blocks; for a text file, about how many rows it holds."""
    lines, last = 0, b"\n"
    with target.open("wb") as out:
        for block in iter(lambda: source.read(1 << 20), b""):
            out.write(block)
            lines += block.count(b"\n")
            last = block[-1:]
    name = target.name.lower()
    if not name.endswith((".csv", ".txt", ".jsonl", ".ndjson", ".json")):
        return None  # XLSX: the reader knows only as it goes
    lines += 0 if last == b"\n" else 1
    return max(lines - (0 if name.endswith((".jsonl", ".ndjson", ".json")) else 1), 1)


def _run_upload(engine: Any, pack: Any, upload: Upload, folder: Path, actor: str) -> None:
    def advance(rows: int) -> None:
        upload.done += rows

    upload.state = "running"
    try:
        result = ingest_file(engine, pack, folder / upload.file_name, upload.authority, upload.category, actor=actor,
                             progress=advance)
        upload.result = result.as_dict()
        upload.batch_id, upload.duplicate_of = result.batch_id, result.duplicate_of
        upload.state = "done"
    except FileRefused as exc:
        upload.error, upload.state = str(exc), "failed"
    except Exception as exc:  # noqa: BLE001 - reported on the page; the batch is one transaction
        log.exception("upload %s failed", upload.id)
        upload.error, upload.state = f"{type(exc).__name__}: {exc}", "failed"
    finally:
        upload.finished = time.time()
        shutil.rmtree(folder, ignore_errors=True)


def _categories(request: Request, operator: Operator) -> list[tuple[str, Any]]:
    pack = service_of(request).pack
    competences = pack.authority(operator.authority).competences
    return [(code, pack.category(code).names) for code in competences if operator.may_submit(code)]


@router.get("/upload")
async def upload_form(request: Request) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    categories = _categories(request, operator)
    if not categories:
        raise WebError(403, "no_submit_category")
    return _page(request, "upload.html", operator, {"categories": categories})


@router.post("/upload", dependencies=CSRF)
async def upload_submit(request: Request) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    categories = _categories(request, operator)
    form = await request.form()
    category = text(form, "category", max_length=64)
    item = form.get("file")
    error = None
    if category not in {code for code, _names in categories}:
        error = _(request, "Choose one of your authority's categories.")
    elif not isinstance(item, UploadFile) or not item.filename:
        error = _(request, "Choose a file to upload.")
    if error:
        return _page(request, "upload.html", operator, {"categories": categories, "error": error,
                                                        "category": category}, 422)
    assert isinstance(item, UploadFile)
    name = safe_name(item.filename)
    folder = Path(tempfile.mkdtemp(prefix="xinyong-upload-"))
    total = await asyncio.to_thread(_save_upload, item.file, folder / name)
    upload = Upload(uuid.uuid4().hex, operator.key_id, operator.authority, category, name, total)
    _forget_old_uploads()
    with _uploads_lock:
        _uploads[upload.id] = upload
    service = service_of(request)
    threading.Thread(target=_run_upload, args=(service.engine, service.pack, upload, folder, operator.actor),
                     name=f"upload-{upload.id[:8]}", daemon=True).start()
    return redirect(f"/console/uploads/{upload.id}")


def _own_upload(upload_id: str, operator: Operator) -> Upload:
    upload = _uploads.get(upload_id)
    if upload is None or upload.key_id != operator.key_id:
        raise WebError(404, "not found")
    return upload


@router.get("/uploads/{upload_id}")
async def upload_page(request: Request, upload_id: str) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    return _page(request, "upload_status.html", operator, {"upload": _own_upload(upload_id, operator)})


@router.get("/uploads/{upload_id}/progress")
async def upload_progress(request: Request, upload_id: str) -> Response:
    """The progress fragment that the page polls (HTMX) until the upload is done or failed."""
    operator = await _operator(request)
    if operator is None:
        raise WebError(401, "signed_out")
    return render(request, "web/console/_progress.html", {"upload": _own_upload(upload_id, operator)})


# -- batches and their quarantine -------------------------------------------------------------------

def _own_batch(request: Request, operator: Operator, batch_id: int) -> dict[str, Any]:
    try:
        batch = batch_row(service_of(request).engine, batch_id)
    except BatchNotFound:
        raise WebError(404, "not found") from None
    if batch["authority"] != operator.authority:  # an operate key too sees only its authority's batches
        raise WebError(404, "not found")
    return batch


def _own_filter(request: Request, operator: Operator) -> CaseFilter:
    """The filter of a list of the operator's own authority's batches, records or quarantined rows:
    another authority's are not this key's to see."""
    found = _case_filter(request)
    if found.authority not in (None, operator.authority):
        raise WebError(404, "not found")
    return found


@router.get("/batches")
async def batches(request: Request) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    service = service_of(request)
    found = _own_filter(request, operator)
    where = CaseFilter(authority=found.authority, category=found.category, since=found.since, until=found.until)
    data = await asyncio.to_thread(batches_page, service.engine, operator.authority, where,
                                   zone=ZoneInfo(service.pack.calendar.timezone), page=_page_number(request))
    return _page(request, "batches.html", operator, {
        "data": data, "where": where, "page_base": _page_base("/console/batches", where)})


@router.get("/records")
async def records(request: Request) -> Response:
    """The records the operator's authority's batches brought, filtered as the scorecard counts them."""
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    service = service_of(request)
    found = _own_filter(request, operator)
    where = CaseFilter(authority=found.authority, category=found.category, since=found.since, until=found.until,
                       timeliness=found.timeliness, verified=found.verified, change=found.change)
    data = await asyncio.to_thread(records_page, service.engine, service.pack, operator.authority, where,
                                   page=_page_number(request))
    for row in data["rows"]:
        row["record_key"] = mask_record_key(row["record_key"])
        row["subject_code"] = row["subject_code"] and mask_subject_code(row["subject_code"])
    return _page(request, "records.html", operator, {
        "data": data, "where": where, "page_base": _page_base("/console/records", where),
        "on_time_days": service.pack.scorecard.on_time_working_days})


@router.get("/quarantine")
async def quarantine(request: Request) -> Response:
    """The rows the operator's authority's batches had quarantined, by day received, category and reason."""
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    service = service_of(request)
    found = _own_filter(request, operator)
    where = CaseFilter(authority=found.authority, category=found.category, since=found.since, until=found.until,
                       reason=found.reason)
    data = await asyncio.to_thread(quarantine_page, service.engine, service.pack, operator.authority, where,
                                   page=_page_number(request))
    pack, lang = service.pack, language_of(request)
    labels = {c.code: {f.name: f.names.get(lang) if f.names else f.name for f in pack.fields_of(c)}
              for c in pack.categories}
    return _page(request, "quarantine.html", operator, {
        "data": data, "where": where, "labels": labels, "page_base": _page_base("/console/quarantine", where),
        "batches_link": "/console/batches?" + urlencode(CaseFilter(category=where.category, since=where.since,
                                                                   until=where.until).query()),
        "every_reason": "/console/quarantine?" + urlencode(CaseFilter(
            authority=where.authority, category=where.category, since=where.since, until=where.until).query())})


@router.get("/batches/{batch_id}")
async def batch(request: Request, batch_id: int) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    row = await asyncio.to_thread(_own_batch, request, operator, batch_id)
    engine = service_of(request).engine
    shown = 500
    rows = await asyncio.to_thread(quarantine_rows, engine, batch_id, limit=shown)
    total = await asyncio.to_thread(quarantine_count, engine, batch_id) if len(rows) == shown else len(rows)
    pack, lang = service_of(request).pack, language_of(request)
    labels = {f.name: f.names.get(lang) if f.names else f.name for f in pack.fields_of(pack.category(row["category"]))}
    return _page(request, "batch.html", operator, {"batch": row, "rejects": rows, "rejects_total": total,
                                                   "labels": labels})


@router.get("/batches/{batch_id}/rejects.csv")
async def batch_rejects(request: Request, batch_id: int) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    await asyncio.to_thread(_own_batch, request, operator, batch_id)
    chunks = await asyncio.to_thread(rejects_csv, service_of(request).engine, batch_id)
    return download(chunks, f"batch-{batch_id}-rejects.csv", "text/csv; charset=utf-8")


# -- the resolution review queue ----------------------------------------------------------------------

def _candidate_names(engine: Any, queue: list[dict[str, Any]]) -> dict[int, str]:
    from sqlalchemy import select

    from xinyong.store import tables as t

    n = t.entity_names.c
    ids = {c["entity_id"] for item in queue for c in item["candidates"]}
    if not ids:
        return {}
    with engine.connect() as c:
        rows = c.execute(select(n.entity_id, n.name).where(n.entity_id.in_(ids), n.current.is_(True)).order_by(n.id))
        return {entity_id: name for entity_id, name in rows}


@router.get("/review")
async def review(request: Request) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    _need_operate(operator)
    engine = service_of(request).engine
    queue = await asyncio.to_thread(review_queue, engine, operator.authority)
    data = review_page(queue, page=_page_number(request))
    names = await asyncio.to_thread(_candidate_names, engine, data["rows"])
    for item in data["rows"]:
        item["record_key"] = mask_record_key(item["record_key"])
        item["subject_code"] = item["subject_code"] and mask_subject_code(item["subject_code"])
        for candidate in item["candidates"]:
            candidate["name"] = names.get(candidate["entity_id"])
            if item["subject_name"] and candidate["name"]:
                candidate["ours"], candidate["theirs"] = name_diff(item["subject_name"], candidate["name"])
    return _page(request, "review.html", operator, {"data": data, "page_base": "/console/review?page="})


@router.post("/review/{record_id}", dependencies=CSRF)
async def review_decide(request: Request, record_id: int) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    _need_operate(operator)
    form = await request.form()
    verdict = {"accept": "match", "reject": "no_match"}.get(text(form, "verdict", max_length=10))
    entity = text(form, "entity", max_length=64) or None
    reason = text(form, "reason")
    if verdict is None or not reason:
        flash(request, "bad", _(request, "Choose accept or reject and give a reason."))
        return redirect(f"/console/review#record-{record_id}")
    service = service_of(request)
    try:
        outcome = await asyncio.to_thread(judge, service.engine, service.pack, record_id, verdict, entity_key=entity,
                                          actor=operator.actor, reason=reason, authority=operator.authority)
    except ResolveError as exc:
        flash(request, "bad", str(exc))
        return redirect("/console/review")
    flash(request, "good", _(request, "Record %(id)s: %(state)s.", id=record_id, state=outcome["state"]))
    return redirect("/console/review")


# -- listings, objections, repairs ---------------------------------------------------------------------

def _page_number(request: Request) -> int:
    value = request.query_params.get("page", "1")
    return int(value) if value.isdigit() and 0 < len(value) < 8 else 1


def _day_param(request: Request, name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(request.query_params.get(name) or "")
    except ValueError:
        return None


def _case_filter(request: Request, states: tuple[str, ...] = ()) -> CaseFilter:
    """The list filter from the query string; a value the page does not know is ignored."""
    pack, params = service_of(request).pack, request.query_params

    def one_of(name: str, allowed: Any) -> str | None:
        value = params.get(name)
        return value if value in allowed else None

    reason = (params.get("reason") or "").strip()[:200] or None
    return CaseFilter(state=one_of("state", states), list_code=one_of("list", {x.code for x in pack.lists}),
                      authority=one_of("authority", {a.code for a in pack.authorities}),
                      since=_day_param(request, "from"), until=_day_param(request, "to"),
                      category=one_of("category", {c.code for c in pack.categories}),
                      timeliness=one_of("timeliness", ("on_time", "late", "timed")),
                      verified=one_of("verified", ("yes", "no")),
                      change=one_of("change", ("correction", "revocation")),
                      reason=reason)


def _page_base(path: str, where: CaseFilter) -> str:
    """The filter's query string, for the pager's links."""
    query = urlencode(where.query())
    return f"{path}?{query}&page=" if query else f"{path}?page="


@router.get("/listings")
async def listings(request: Request) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    _need_operate(operator)
    service = service_of(request)
    pack = service.pack
    params = request.query_params
    where = ListingFilter(
        state=params.get("state") if params.get("state") in STATES else None,
        list_code=params.get("list") if params.get("list") in {x.code for x in pack.lists} else None,
        authority=params.get("authority") if params.get("authority") in {x.authority for x in pack.lists} else None,
        proposed_from=_day_param(request, "from"), proposed_to=_day_param(request, "to"))
    data = await asyncio.to_thread(listings_page, service.engine, pack, where, page=_page_number(request))
    query = urlencode([(k, v) for k, v in (("state", where.state), ("list", where.list_code),
                                          ("authority", where.authority),
                                          ("from", where.proposed_from and where.proposed_from.isoformat()),
                                          ("to", where.proposed_to and where.proposed_to.isoformat())) if v])
    return _page(request, "listings.html", operator, {
        "data": data, "where": where, "states": STATES, "page_base": f"/console/listings?{query}&page=".replace("?&", "?"),
        "authorities": sorted({x.authority for x in pack.lists})})


@router.get("/listings/{listing_id}")
async def listing(request: Request, listing_id: int) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    _need_operate(operator)
    service = service_of(request)
    try:
        data = await asyncio.to_thread(show_listing, service.engine, service.pack, listing_id)
    except DueProcessError:
        raise WebError(404, "not found") from None
    for o in data["objections"]:
        o["record_key"] = mask_record_key(o["record_key"]) if o["record_key"] else None
    objections = [o for o in await asyncio.to_thread(open_objections, service.engine, include_decided=0)
                  if o["listing_id"] == listing_id or (o["record_key"] and o["record_key"] in
                                                       {e["record_key"] for e in data["evidence"]})]
    repairs = [r for r in await asyncio.to_thread(repair_applications, service.engine, include_decided=0)
               if r["listing_id"] == listing_id]
    spec = service.pack.list_(data["list_code"])
    reminders_required = spec.due_process.reminders_required.get(data["subject_kind"], 0)
    return _page(request, "listing.html", operator, {"listing": data, "open_objections": objections,
                                                     "pending_repairs": repairs, "languages": LANGUAGES,
                                                     "reminders_required": reminders_required})


def _not_your_case(request: Request, operator: Operator) -> WebError:
    return WebError(403, _(request, "Only the authority that listed it, or the reviewing authority, takes this "
                                    "step; this key belongs to %(authority)s.", authority=operator.authority))


async def _step(request: Request, call: Any, *args: Any, done: str, back: str) -> Response:
    try:
        outcome = await asyncio.to_thread(call, *args)
    except AuthorityRefused:
        raise _not_your_case(request, await _operator(request)) from None
    except DueProcessError as exc:
        flash(request, "bad", str(exc))
        return redirect(back)
    flash(request, "good", done)
    if isinstance(outcome, dict) and "calendar_warning" in outcome:
        flash(request, "bad", outcome["calendar_warning"])
    return redirect(back)


async def _decision_form(request: Request) -> tuple[Operator | None, Any, str]:
    operator = await _operator(request)
    if operator is None:
        return None, None, ""
    _need_operate(operator)
    form = await request.form()
    return operator, form, text(form, "reason")


@router.post("/listings/{listing_id}/remind", dependencies=CSRF)
async def listing_remind(request: Request, listing_id: int) -> Response:
    operator, _form, reason = await _decision_form(request)
    if operator is None:
        return _signed_out(request)
    back = f"/console/listings/{listing_id}"
    if not reason:
        flash(request, "bad", _(request, "Give a reason."))
        return redirect(back)
    service = service_of(request)
    return await _step(request, remind, service.engine, service.pack, listing_id, _today(request),
                       Actor(operator.actor, reason, operator.authority), done=_(request, "Reminder recorded."),
                       back=back)


@router.post("/listings/{listing_id}/notify", dependencies=CSRF)
async def listing_notify(request: Request, listing_id: int) -> Response:
    operator, form, reason = await _decision_form(request)
    if operator is None:
        return _signed_out(request)
    back = f"/console/listings/{listing_id}"
    if not reason:
        flash(request, "bad", _(request, "Give a reason."))
        return redirect(back)
    language = text(form, "language", max_length=2) or None
    if language is not None and language not in LANGUAGES:
        language = None
    service = service_of(request)
    return await _step(request, notify, service.engine, service.pack, listing_id, _today(request),
                       Actor(operator.actor, reason, operator.authority), language, done=_(request, "Notice served."),
                       back=back)


@router.post("/listings/bulk", dependencies=CSRF)
async def listings_bulk(request: Request) -> Response:
    """Remind or notify a list's proposals, oldest first: each listing its own audited step."""
    operator, form, reason = await _decision_form(request)
    if operator is None:
        return _signed_out(request)
    service = service_of(request)
    list_code = text(form, "list", max_length=40)
    step = text(form, "step", max_length=10)
    back = f"/console/listings?state=proposed&list={list_code}"
    limit_text = text(form, "limit", max_length=6)
    if list_code not in {spec.code for spec in service.pack.lists} or step not in ("remind", "notify"):
        flash(request, "bad", _(request, "Choose a list and a step."))
        return redirect("/console/listings")
    if not reason or (limit_text and (not limit_text.isdigit() or int(limit_text) < 1)):
        flash(request, "bad", _(request, "Give a reason, and a limit that is a whole number from 1."))
        return redirect(back)
    if service.pack.list_(list_code).authority != operator.authority \
            and operator.authority != service.pack.reviewing_authority:
        raise _not_your_case(request, operator)
    language = text(form, "language", max_length=2) or None
    language = language if language in LANGUAGES else None
    actor, today = Actor(operator.actor, reason, operator.authority), _today(request)
    if step == "remind":
        def one(listing_id: int) -> dict[str, Any]:
            return {"listing": listing_id, "reminders": remind(service.engine, service.pack, listing_id, today, actor)}
    else:
        def one(listing_id: int) -> dict[str, Any]:
            return notify(service.engine, service.pack, listing_id, today, actor, language)
    selected = await asyncio.to_thread(select_listings, service.engine, list_code, "proposed",
                                       int(limit_text) if limit_text else None)
    try:
        outcome = await asyncio.to_thread(bulk_step, one, selected)
    except AuthorityRefused:
        raise _not_your_case(request, operator) from None
    flash(request, "good", _(request, "%(done)s of %(selected)s listings done, %(skipped)s skipped.",
                             done=len(outcome["done"]), selected=outcome["selected"], skipped=len(outcome["skipped"])))
    for item in outcome["skipped"][:20]:
        flash(request, "bad", _(request, "Listing %(id)s skipped: %(reason)s", id=item["listing"], reason=item["reason"]))
    warned = [item for item in outcome["done"] if "calendar_warning" in item]
    if warned:
        shown = ", ".join(str(item["listing"]) for item in warned[:20]) + (", ..." if len(warned) > 20 else "")
        flash(request, "bad", f"{warned[0]['calendar_warning']} (listings {shown})")
    return redirect(back)


@router.get("/overdue")
async def overdue_cases(request: Request) -> Response:
    """Every open objection and repair application past its deadline, by authority; filtered by the
    authority and the day the case opened (filed, or accepted for a repair decision), from/to."""
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    _need_operate(operator)
    service = service_of(request)
    found = _case_filter(request)
    where = CaseFilter(authority=found.authority, since=found.since, until=found.until)
    items = [item for item in await asyncio.to_thread(overdue, service.engine, service.pack, _today(request))
             if (where.authority is None or item["authority"] == where.authority)
             and (where.since is None or item["since"] >= where.since)
             and (where.until is None or item["since"] <= where.until)]
    return _page(request, "overdue.html", operator, {
        "items": items, "today": _today(request), "where": where,
        "authorities": [a.code for a in service.pack.authorities]})


@router.get("/webhooks")
async def webhook_deliveries(request: Request) -> Response:
    """The webhook delivery log: every event POSTed to a subscriber, its attempts and last answer."""
    from xinyong.services.publication.webhooks import delivery_log

    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    _need_operate(operator)
    data = await asyncio.to_thread(delivery_log, service_of(request).engine)
    return _page(request, "webhooks.html", operator, {"log": data})


@router.get("/entities/{key}")
async def entity_ownership(request: Request, key: str) -> Response:
    """An entity's ownership and control as an authority sees it: ended relations too, and persons'
    ID numbers masked (never whole, even here). For `operate` keys (a submit key uploads, and sees its
    own batches only), and by key or a firm's code: an ID number never goes in a URL."""
    from xinyong.services.resolution.entities import (EntityNotFound, entity_file, find_entity_id, ownership,
                                                      refuse_person_id_in_url)
    from xinyong.web.ownership import ownership_chart, relation_words

    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    _need_operate(operator)
    service = service_of(request)

    def load() -> tuple[dict[str, Any], dict[str, Any]]:
        refuse_person_id_in_url(key, service.engine)
        data = entity_file(service.engine, key, service.pack.person_schemes)
        with service.engine.connect() as c:
            return data, ownership(c, service.pack, find_entity_id(c, key), _today(request), restricted=True)

    try:
        data, graph_data = await asyncio.to_thread(load)
    except EntityNotFound:
        raise WebError(404, "not_found") from None
    lang = language_of(request)
    gettext = gettext_for(lang)
    graph = ownership_chart(gettext, lang, data["name"] or data["key"], graph_data, "/console/entities/")
    return _page(request, "entity.html", operator, {
        "entity": data, "ownership": graph_data, "ownership_graph": graph, "restricted": True,
        "entity_base": "/console/entities/", "relation_words": relation_words(gettext)})


@router.get("/objections")
async def objections(request: Request) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    _need_operate(operator)
    service = service_of(request)
    found = _case_filter(request, ("open", "upheld", "rejected", "decided"))
    where = CaseFilter(state=found.state, list_code=found.list_code, authority=found.authority, since=found.since,
                       until=found.until)
    data = await asyncio.to_thread(objections_page, service.engine, service.pack, where, page=_page_number(request))
    return _page(request, "objections.html", operator, {
        "data": data, "where": where, "states": ("open", "upheld", "rejected", "decided"),
        "authorities": sorted({x.authority for x in service.pack.lists} | {a.code for a in service.pack.authorities}),
        "page_base": _page_base("/console/objections", where)})


@router.post("/objections/{objection_id}", dependencies=CSRF)
async def objection_decide(request: Request, objection_id: int) -> Response:
    return await _decide(request, decide_objection, objection_id, "/console/objections", ("uphold", "reject"),
                         _(request, "Choose uphold or reject and give a reason."),
                         (_(request, "Objection %(id)s upheld.", id=objection_id),
                          _(request, "Objection %(id)s rejected.", id=objection_id)))


@router.get("/repairs")
async def repairs(request: Request) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    _need_operate(operator)
    service = service_of(request)
    found = _case_filter(request, ("pending", "approved", "refused", "decided"))
    where = CaseFilter(state=found.state, list_code=found.list_code, authority=found.authority, since=found.since,
                       until=found.until, timeliness=found.timeliness if found.timeliness != "timed" else None)
    data = await asyncio.to_thread(repairs_page, service.engine, service.pack, where, page=_page_number(request))
    return _page(request, "repairs.html", operator, {
        "data": data, "where": where, "states": ("pending", "approved", "refused", "decided"),
        "authorities": sorted({x.authority for x in service.pack.lists} | {a.code for a in service.pack.authorities}),
        "page_base": _page_base("/console/repairs", where)})


@router.post("/repairs/{repair_id}", dependencies=CSRF)
async def repair_decide(request: Request, repair_id: int) -> Response:
    return await _decide(request, decide_repair, repair_id, "/console/repairs", ("approve", "refuse"),
                         _(request, "Choose approve or refuse and give a reason."),
                         (_(request, "Repair %(id)s approved.", id=repair_id),
                          _(request, "Repair %(id)s refused.", id=repair_id)))


async def _decide(request: Request, step: Any, case_id: int, fallback: str, choices: tuple[str, str],
                  incomplete: str, done: tuple[str, str]) -> Response:
    """A yes/no decision on an objection or a repair: the first choice is yes; a reason is required."""
    operator, form, reason = await _decision_form(request)
    if operator is None:
        return _signed_out(request)
    back = text(form, "back", max_length=200)
    back = back if back.startswith("/console/") else fallback
    decision = text(form, "decision", max_length=10)
    if decision not in choices or not reason:
        flash(request, "bad", incomplete)
        return redirect(back)
    service = service_of(request)
    yes = decision == choices[0]
    return await _step(request, step, service.engine, service.pack, case_id, yes, _today(request),
                       Actor(operator.actor, reason, operator.authority), done=done[0] if yes else done[1], back=back)


@router.get("/files/{sha256}")
async def case_file(request: Request, sha256: str) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    _need_operate(operator)
    engine = service_of(request).engine
    name = await asyncio.to_thread(known_file, engine, sha256)
    if name is None:
        raise WebError(404, "not found")
    try:
        data = await asyncio.to_thread(file_path(engine, sha256).read_bytes)
    except (OSError, FileRefusedError):
        raise WebError(404, "not found") from None
    return download(data, name, "application/octet-stream")


# -- audit -----------------------------------------------------------------------------------------------

@router.get("/audit")
async def audit(request: Request) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    status = await asyncio.to_thread(audit_status, service_of(request).engine, recent=20 if operator.operates else 0)
    return _page(request, "audit.html", operator, {"audit": status})


# -- accountability and foresight: scorecard, simulation, grades ---------------------------------

def _scorecard_charts(request: Request, rows: list[dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    months = sorted({r["month"] for r in rows})
    authorities = sorted({r["authority"] for r in rows})
    by = {(r["authority"], r["month"]): r for r in rows}
    on_time = [sum(by[(a, m)]["on_time"] for a in authorities if (a, m) in by) for m in months]
    late = [sum(by[(a, m)]["timed_records"] - by[(a, m)]["on_time"] for a in authorities if (a, m) in by) for m in months]
    timeliness = charts.stacked_columns(
        "chart-timeliness", _(request, "Licences and penalties received on time and late, per month"),
        _(request, "Stacked columns: one column per month of receipt; on time, then late."),
        months, [(_(request, "On time"), on_time), (_(request, "Late"), late)])
    quality = charts.stacked_bars(
        "chart-quality", _(request, "Records received and quarantined rows per authority"),
        _(request, "Stacked bars: one bar per authority; records received, then rows quarantined."),
        [names.get(a, a) for a in authorities],
        [(_(request, "Records received"), [sum(r["records"] for r in rows if r["authority"] == a) for a in authorities]),
         (_(request, "Rows quarantined"), [sum(r["quarantined"] for r in rows if r["authority"] == a)
                                           for a in authorities])])
    return {"timeliness_chart": timeliness, "quality_chart": quality, "months": months}


def _figure_links(operator: Operator, row: dict[str, Any], authorities: set[str]) -> dict[str, str]:
    """Each figure of a scorecard row -> the console list holding exactly the cases it counts, filtered
    by the row's authority and month (as from/to). Records and quarantined rows open to their own
    authority (as its batches do); objections, repairs and overdue cases to an operate key. A row of
    cases whose authority the pack does not know ("?") has no list to filter to."""
    from xinyong.services.accountability.scorecard import month_days

    if row["authority"] not in authorities:
        return {}
    first, last = month_days(row["month"])
    month = [("authority", row["authority"]), ("from", first.isoformat()), ("to", last.isoformat())]

    def link(path: str, *more: tuple[str, str]) -> str:
        return f"/console/{path}?" + urlencode([*month, *more])

    links: dict[str, str] = {}
    if row["authority"] == operator.authority:
        links.update({
            "records": link("records"), "on_time": link("records", ("timeliness", "on_time")),
            "late": link("records", ("timeliness", "late")), "timed_records": link("records", ("timeliness", "timed")),
            "verified": link("records", ("verified", "yes")), "corrections": link("records", ("change", "correction")),
            "revocations": link("records", ("change", "revocation")), "quarantined": link("quarantine"),
            **{f"reason:{q['reason']}": link("quarantine", ("reason", q["reason"]))
               for q in row["quarantine_top_reasons"]}})
    if operator.operates:
        links.update({
            "objections": link("objections"), "objections_upheld": link("objections", ("state", "upheld")),
            "objections_decided": link("objections", ("state", "decided")), "repairs": link("repairs"),
            "repairs_on_time": link("repairs", ("state", "decided"), ("timeliness", "on_time")),
            "repairs_decided": link("repairs", ("state", "decided")), "overdue": link("overdue")})
    return links


@router.get("/scorecard")
async def scorecard_page(request: Request) -> Response:
    """Per authority and month: timeliness, quality, fairness; every figure links to its cases."""
    from xinyong.services.accountability.scorecard import scorecard

    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    service = service_of(request)
    authority = request.query_params.get("authority") or None
    if authority is not None and authority not in {a.code for a in service.pack.authorities}:
        authority = None
    rows = await asyncio.to_thread(scorecard, service.engine, service.pack, _today(request), authority=authority,
                                   date_from=_day_param(request, "from"), date_to=_day_param(request, "to"))
    lang = language_of(request)
    names = {a.code: a.names.get(lang) for a in service.pack.authorities}
    known = {a.code for a in service.pack.authorities}
    for row in rows:
        row["links"] = _figure_links(operator, row, known)
    return _page(request, "scorecard.html", operator, {
        "rows": rows, "names": names, "authority": authority, "swatch": charts.swatch,
        "on_time_days": service.pack.scorecard.on_time_working_days,
        **_scorecard_charts(request, rows, names)})


@router.get("/simulate")
async def simulate_form(request: Request) -> Response:
    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    _need_operate(operator)
    return _page(request, "simulate.html", operator, {"result": None, "as_of": _today(request)})


@router.post("/simulate", dependencies=CSRF)
async def simulate_run(request: Request) -> Response:
    """A candidate pack file (an overlay of the active pack, or a whole pack) against the active one: writes nothing."""
    from xinyong.domain.pack import load_uploaded_pack
    from xinyong.services.accountability.simulate import simulate
    from xinyong.store.db import get_setting

    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    _need_operate(operator)
    service = service_of(request)
    form = await request.form()
    upload = form.get("pack")
    as_of = _today(request)
    if form.get("as_of"):
        try:
            as_of = dt.date.fromisoformat(str(form.get("as_of")))
        except ValueError:
            pass
    if not isinstance(upload, UploadFile) or not upload.filename:
        flash(request, "bad", _(request, "Choose a pack file (YAML)."))
        return redirect("/console/simulate")
    with tempfile.TemporaryDirectory(prefix="xinyong-simulate-") as folder:
        path = Path(folder) / "candidate.yaml"
        path.write_bytes(await upload.read())

        def load() -> Any:  # an overlay may extend the active pack, by the reference it was loaded from
            with service.engine.connect() as c:
                active = get_setting(c, "pack")
            return load_uploaded_pack(path, frozenset({active} if active else ()))

        try:
            candidate = await asyncio.to_thread(load)
        except PackError as exc:
            message = str(exc).replace(str(path), safe_name(upload.filename) or "pack.yaml")
            flash(request, "bad", _(request, "The pack file was refused: %(reason)s", reason=message))
            return redirect("/console/simulate")
    result = await asyncio.to_thread(simulate, service.engine, service.pack, candidate, as_of,
                                     candidate_ref=safe_name(upload.filename) or "pack.yaml")
    lang = language_of(request)
    list_names = {s.code: s.names.get(lang) for s in (*service.pack.lists, *candidate.lists)}
    action_names = {a.code: a.names.get(lang) for a in (*service.pack.actions, *candidate.actions)}
    codes = list(result["by_list"])
    chart = charts.stacked_bars(
        "chart-simulation", _(request, "Entities newly proposed and no longer qualifying, per list"),
        _(request, "Stacked bars: one bar per list; newly proposed, then no longer qualifying."),
        [list_names.get(c, c) for c in codes],
        [(_(request, "Newly proposed"), [result["by_list"][c]["newly_proposed"] for c in codes]),
         (_(request, "No longer qualify"), [result["by_list"][c]["no_longer_qualify"] for c in codes])])
    return _page(request, "simulate.html", operator, {
        "result": result, "as_of": as_of, "list_names": list_names, "action_names": action_names,
        "chart": chart, "swatch": charts.swatch,
        "measure_actions": sorted(set(result["measures_gained"]) | set(result["measures_lost"])), "authority_names": {
            a.code: a.names.get(lang) for a in service.pack.authorities}})


@router.get("/grade")
async def grade_page(request: Request) -> Response:
    """An enterprise's supervision grade, each point with its record, rule and weight: shared, stored, audited."""
    from xinyong.services.resolution.entities import EntityNotFound
    from xinyong.services.accountability.grades import GradeError, share_grade

    operator = await _operator(request)
    if operator is None:
        return _signed_out(request)
    _need_operate(operator)  # as the README says: a key that may only upload files never reads grades
    service = service_of(request)
    code = (request.query_params.get("entity") or "").strip()
    spec = service.pack.grades
    grade, error = None, None
    if code:
        try:  # (a pack without grades: share_grade refuses before anything is logged)
            grade = await asyncio.to_thread(share_grade, service.engine, service.pack, code, _today(request),
                                            authority=operator.authority, purpose=spec.purpose if spec else "",
                                            actor=operator.actor)
        except EntityNotFound:
            error = _(request, "No entity with this key or identifier.")
        except GradeError as exc:
            error = (_(request, "Natural persons are never graded.") if exc.code == "person_not_graded"
                     else _(request, "This pack defines no grade for this entity."))
    return _page(request, "grade.html", operator, {"grade": grade, "entity": code, "error": error, "spec": spec,
                                                   "rules": {r.code: r for r in spec.rules} if spec else {}})
