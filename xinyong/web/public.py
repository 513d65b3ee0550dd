"""Public pages: home, search, an entity's public file, the lists, credit reports and their verification.

Nothing here reads beyond `services.resolution.entities.public_file`, `services.publication.lists.list_page` and
`services.publication.search`: public records within their publicity period, effective listings, masked
person ID numbers. A natural person's page is reached only by its opaque key, and only while
a listing of theirs is in force; an ID number is refused as a search term and in a URL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from xinyong.domain.calendar import pack_today
from xinyong.domain.pack import Classification, PackError
from xinyong.services.resolution.entities import EntityNotFound, public_file, refuse_person_id_in_url
from xinyong.services.publication.lists import list_page
from xinyong.services.publication.report import format_code, issue_report, normalise_report_code, verify_report
from xinyong.services.publication.search import PersonIdQuery, search
from xinyong.web.ownership import ownership_chart, relation_words
from xinyong.web.common import (
    WebError,
    current_operator,
    current_subject,
    gettext_for,
    language_of,
    reject_nul,
    render,
    require_csrf,
    service_of,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(reject_nul)])

PAGE_SIZE = 20
LIST_PAGE_SIZE = 50
MAX_UPLOAD = 20 * 1024 * 1024


def _today(request: Request) -> dt.date:
    return pack_today(service_of(request).pack)


def _htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


# -- home and search ---------------------------------------------------------------------------------

@router.get("/")
async def home(request: Request) -> Response:
    service = service_of(request)
    lists = await asyncio.to_thread(_list_summaries, service)
    return render(request, "web/public/home.html", {"lists": lists})


@router.get("/search")
async def search_page(request: Request, q: Annotated[str, Query(max_length=100)] = "",
                      page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    service = service_of(request)
    refused = False
    try:
        results = await asyncio.to_thread(search, service.engine, q, _today(request), page=page, page_size=PAGE_SIZE,
                                            person_schemes=service.pack.person_schemes,
                                            person_numbers=service.pack.person_numbers)
    except PersonIdQuery:
        results, refused = None, True
    context = {"q": q, "results": results, "refused": refused}
    if _htmx(request):
        return render(request, "web/public/_results.html", context)
    return render(request, "web/public/search.html", context)


# -- an entity's public file -------------------------------------------------------------------------

def _visible_file(service: Any, key: str) -> dict[str, Any]:
    """The public file, or EntityNotFound: a person is public only by key and while listed."""
    refuse_person_id_in_url(key, service.engine)
    return public_file(service.engine, service.pack, key, pack_today(service.pack))


def _record_view(pack: Any, record: dict[str, Any]) -> dict[str, Any]:
    category = pack.category(record["category"])
    specs = {f.name: f for f in pack.fields_of(category) if f.classification == Classification.public}
    fields = [{"name": name, "label": specs[name].names if name in specs else None, "value": value,
               "type": specs[name].type.value if name in specs else "text"}
              for name, value in record["fields"].items() if value not in (None, "", [])]
    try:
        authority = pack.authority(record["authority"]).names
    except (PackError, AttributeError):
        authority = None
    return {**record, "authority_names": authority, "field_list": fields}


@router.get("/entities/{key}")
async def entity_page(request: Request, key: str) -> Response:
    service = service_of(request)
    try:
        data = await asyncio.to_thread(_visible_file, service, key)
    except EntityNotFound:
        raise WebError(404, "not_found") from None
    if data["key"] != key:  # reached by another code: the page lives at the entity's key
        return RedirectResponse(f"/entities/{data['key']}", status_code=301)
    pack = service.pack
    records = [_record_view(pack, r) for r in data["records"]]
    public_keys = {r["record_key"] for r in records}
    for listing in data["listings"]:  # evidence the public may read, and how many records are not public
        listing["public_evidence"] = [key for key in listing["evidence"] if key in public_keys]
        listing["other_evidence"] = len(listing["evidence"]) - len(listing["public_evidence"])
    former = [n for n in data["names"] if not n["current"] and n["language"] is None]
    english = [n["name"] for n in data["names"] if n["language"] == "en"]
    lang = language_of(request)
    graph = ownership_chart(gettext_for(lang), lang, data["name"] or data["key"], data["ownership"])
    return render(request, "web/public/entity.html",
                  {"entity": data, "records": records, "former_names": former, "english_names": english,
                   "today": _today(request), "ownership": data["ownership"], "ownership_graph": graph,
                   "entity_base": "/entities/",
                   "relation_words": relation_words(gettext_for(lang))})


@router.get("/entities/{key}/report.pdf")
async def report_download(request: Request, key: str) -> Response:
    """Issue a credit report in the page's language: a PDF with a verification code (and its hash kept).
    Anonymous clients get at most `XINYONG_REPORTS_PER_MINUTE` a minute each (then 429, Retry-After):
    every report is rendered and stored, and each is sealed into the audit chain."""
    service = service_of(request)
    if current_subject(request) is None and current_operator(request) is None:
        wait = service.report_limit.wait(request.client.host if request.client else "unknown")
        if wait is not None:
            page = render(request, "web/error.html", {"status": 429, "message": "", "retry_after": wait}, 429)
            page.headers["Retry-After"] = str(wait)
            return page
    try:
        data = await asyncio.to_thread(_visible_file, service, key)
    except EntityNotFound:
        raise WebError(404, "not_found") from None
    issued = await asyncio.to_thread(issue_report, service.engine, service.pack, data["key"], language_of(request),
                                     _today(request), base_url=service.public_url or "")
    return Response(issued.pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="credit-report-{issued.code}.pdf"',
                             "X-Report-Code": issued.code, "Cache-Control": "no-store"})


# -- report verification -----------------------------------------------------------------------------

@router.get("/verify")
async def verify_form(request: Request, code: Annotated[str, Query(max_length=60)] = "") -> Response:
    if code.strip():
        normal = normalise_report_code(code)
        if normal is None:
            return render(request, "web/public/verify.html", {"code": code.strip(), "result": {"known": False}}, 404)
        return RedirectResponse(f"/verify/{format_code(normal)}", status_code=303)
    return render(request, "web/public/verify.html", {"code": "", "result": None})


@router.get("/verify/{code}")
async def verify_page(request: Request, code: str) -> Response:
    service = service_of(request)
    result = await asyncio.to_thread(verify_report, service.engine, code[:60], None, service.pack)
    return render(request, "web/public/verify.html",
                  {"code": result.get("code", code), "result": result, "checked_file": False},
                  200 if result.get("known") else 404)


@router.post("/verify/{code}", dependencies=[Depends(require_csrf)])
async def verify_upload(request: Request, code: str, pdf: Annotated[UploadFile, File()]) -> Response:
    """Compare an uploaded PDF with the report issued under `code`. CSRF-checked like every form, though
    it changes nothing: one rule for all forms is easier to keep than a list of exceptions."""
    content = await pdf.read(MAX_UPLOAD + 1)
    if len(content) > MAX_UPLOAD:
        _ = gettext_for(language_of(request))
        raise WebError(413, _("The file is too large."))
    service = service_of(request)
    result = await asyncio.to_thread(verify_report, service.engine, code[:60], content, service.pack)
    return render(request, "web/public/verify.html",
                  {"code": result.get("code", code), "result": result, "checked_file": True},
                  200 if result.get("known") else 404)


# -- lists -----------------------------------------------------------------------------------------------

def _list_summaries(service: Any) -> list[dict[str, Any]]:
    today = pack_today(service.pack)
    out = []
    for spec in service.pack.lists:
        total = list_page(service.engine, service.pack, spec.code, today, page_size=1)["total"]
        out.append({"code": spec.code, "names": spec.names, "kind": spec.kind, "legal_basis": spec.legal_basis,
                    "authority": spec.authority, "total": total})
    return out


@router.get("/lists")
async def lists_page(request: Request) -> Response:
    lists = await asyncio.to_thread(_list_summaries, service_of(request))
    return render(request, "web/public/lists.html", {"lists": lists})


@router.get("/lists/{code}")
async def list_detail(request: Request, code: str,
                      region: Annotated[str, Query(max_length=12, pattern=r"^[0-9]*$")] = "",
                      q: Annotated[str, Query(max_length=100)] = "",
                      page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    service = service_of(request)
    try:
        spec = service.pack.list_(code)
    except PackError:
        raise WebError(404, "not_found") from None
    data = await asyncio.to_thread(list_page, service.engine, service.pack, code, _today(request),
                                   region=region or None, name=q.strip() or None, page=page,
                                   page_size=LIST_PAGE_SIZE)
    pages = max(1, -(-data["total"] // LIST_PAGE_SIZE))
    context = {"spec": spec, "data": data, "region": region, "q": q, "page": page, "pages": pages}
    if _htmx(request):
        return render(request, "web/public/_list_rows.html", context)
    return render(request, "web/public/list.html", context)


# -- accountability: the authorities' figures, aggregates only ---------------------------------------

METHOD = Path(__file__).resolve().parent.parent.parent / "docs" / "scorecard.md"


@router.get("/statistics")
async def statistics(request: Request) -> Response:
    """Per-authority figures (public: accountability); case counts under the threshold suppressed."""
    from xinyong.services.accountability.scorecard import scorecard, suppress, totals
    from xinyong.settings import STATISTICS_MIN_CELL
    from xinyong.web import charts

    service = service_of(request)
    threshold = int(STATISTICS_MIN_CELL.value())
    rows = await asyncio.to_thread(scorecard, service.engine, service.pack, pack_today(service.pack))
    merged = suppress(totals(rows), threshold)
    lang = language_of(request)
    names = {a.code: a.names.get(lang) for a in service.pack.authorities}
    gettext = gettext_for(lang)
    chart = charts.stacked_bars(
        "chart-public-timeliness", gettext("Licences and penalties received on time and late, per authority"),
        gettext("Stacked bars: one bar per authority; on time, then late."),
        [names.get(r["authority"], r["authority"]) for r in merged],
        [(gettext("On time"), [r["on_time"] for r in merged]),
         (gettext("Late"), [r["timed_records"] - r["on_time"] for r in merged])])
    return render(request, "web/public/statistics.html", {
        "rows": merged, "names": names, "threshold": threshold, "chart": chart, "swatch": charts.swatch,
        "on_time_days": service.pack.scorecard.on_time_working_days})


@router.get("/statistics/method")
async def statistics_method(request: Request) -> Response:
    """docs/scorecard.md, as written, as a page: every figure links to its section (#received,
    #timeliness, #quality, #fairness), so the anchors must land."""
    from markupsafe import Markup
    from markdown_it import MarkdownIt

    if not METHOD.exists():
        return Response("see docs/scorecard.md", media_type="text/plain; charset=utf-8")
    # the project's own file: its HTML (the section anchors) is kept
    body = MarkdownIt("commonmark", {"html": True}).enable("table").render(METHOD.read_text(encoding="utf-8"))
    return render(request, "web/public/method.html", {"body": Markup(body)})
