"""The HTTP API (FastAPI): screening, batch jobs, changes, records, feedback, entities, lists.

Keys go in `X-API-Key`; every error is `{"error": {"code", "message"}}`, never a stack
trace. The screening hot path is async and answers from the in-memory `ScreeningIndex`;
the query log is written behind the request (see `services.screening.querylog`). Batch jobs run in
a separate, lower-priority process so that they cannot starve real-time screening.
"""

# No `from __future__ import annotations` here: FastAPI resolves string annotations in the module's
# globals, and the dependencies (`Depends(requires(...))`) are closures of `create_app`.

import asyncio
import datetime as dt
import gc
import json
import logging
import re
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Engine, select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from xinyong import settings
from xinyong.api.guard import RequestGuard
from xinyong.domain.calendar import Calendar, pack_today
from xinyong.domain.pack import Pack, PackError
from xinyong.domain.records import FileRefused
from xinyong.services.screening import jobs
from xinyong.services.resolution.entities import EntityNotFound, public_file, refuse_person_id_in_url
from xinyong.services.intake.ingest import ingest_file
from xinyong.services.operations.integrity import audit_feedback, audit_stored_feedback, checkpoint
from xinyong.services.operations.keys import ApiKey, active_keys, secret_hash
from xinyong.services.publication.lists import changes, csv_chunks, jsonl_chunks, list_page, list_rows
from xinyong.services.publication.opendata import public_changes, published_paths
from xinyong.services.publication.webhooks import (SubscriptionError, Worker, create_subscription, delete_subscription,
                                       get_subscription)
from xinyong.services.screening.querylog import QueryLog
from xinyong.services.screening.screen import InvalidIdentifier, ScreenError, ScreeningIndex, masked_query
from xinyong.store import tables as t
from xinyong.store.checkpoints import latest as latest_signed

log = logging.getLogger("xinyong.api")
REFRESH_SECONDS = 1.0
CHECKPOINT_SECONDS = 3600.0  # a served store seals its reports and signs its head at least hourly


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS), status_code=status,
                    media_type="application/json", headers=headers)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"error": {"code": code, "message": message}}, status, headers)


_NO_BODY = object()


async def _json_body(request: Request) -> Any:
    """A request's body as FastAPI hands it to a JSON body model: parsed when its content type is
    JSON (application/json or +json), the raw bytes otherwise (which the model refuses), `_NO_BODY`
    when empty. Malformed JSON is refused as FastAPI refuses it (422, at its position)."""
    raw = await request.body()
    if not raw:
        return _NO_BODY
    maintype, _, subtype = (request.headers.get("content-type") or "").split(";")[0].strip().lower().partition("/")
    if maintype != "application" or not (subtype == "json" or subtype.endswith("+json")):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
                                       "input": {}, "ctx": {"error": exc.msg}}]) from None
    except Exception:  # noqa: BLE001 - not text in a JSON encoding, as FastAPI answers it
        raise StarletteHTTPException(400, "There was an error parsing the body") from None


# -- request and answer models (the OpenAPI contract) -------------------------------------------------

def _iso_date(value: Any) -> Any:
    """A date of a request is YYYY-MM-DD, as its schema says: pydantic alone takes 0 or a datetime as well."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value) or type(value) is dt.date:
        return value
    raise ValueError("a date is written YYYY-MM-DD")


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]


class ScreenRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"oneOf": [  # declares what `_one_subject` checks
        {"required": ["identifier"], "properties": {"identifier": {"type": "string"}}},
        {"required": ["name"], "properties": {"name": {"type": "string"}}}]})

    identifier: str | None = Field(default=None, min_length=1, max_length=64,
                                   description="USCC, legacy code, entity key or a person's ID number")
    name: str | None = Field(default=None, min_length=1, max_length=200, description="Entity name, for fuzzy screening")
    action: str = Field(min_length=1, max_length=32, description="The decision point, one of the pack's actions")
    as_of: IsoDate | None = Field(default=None, description="Decision date; default today")
    purpose: str = Field(min_length=1, max_length=32, description="One of the pack's purposes")

    @model_validator(mode="after")
    def _one_subject(self) -> "ScreenRequest":
        if (self.identifier is None) == (self.name is None):
            raise ValueError("give either identifier or name")
        return self


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorAnswer(BaseModel):
    error: ErrorBody


class Names(BaseModel):
    zh: str
    en: str
    fr: str


class SubjectOut(BaseModel):
    key: str
    name: str | None
    kind: str
    id_number: str | None = Field(default=None, description="Masked; natural persons only")


class RecordOut(BaseModel):
    record_key: str
    version: int
    category: str
    authority: str
    decision_date: dt.date | None


class ListingOut(BaseModel):
    id: int
    list: str
    list_title: Names
    list_legal_basis: str
    entity: str
    state: str | None
    effective_from: dt.date | None
    effective_to: dt.date | None


class Through(BaseModel):
    entity: str
    name: str | None
    relation: str
    unconfirmed: bool = Field(default=False, description="The relation carries the subject's ID number under "
                              "another person's name: the measure refers (a human checks who it is), never denies")


class Suspension(BaseModel):
    objection: int
    filed_on: dt.date


class MeasureOut(BaseModel):
    code: str
    title: Names
    effect: Literal["deny", "conditions", "reward"]
    legal_basis: str
    authority: str
    listing: ListingOut
    records: list[RecordOut]
    ends: dt.date | None
    through: Through | None
    suspended: Suspension | None = Field(default=None, description="An open objection suspends this measure "
                                         "(lists with objection_suspends): it sets conditions instead of denying")


class Candidate(BaseModel):
    entity: str = Field(description="The candidate entity's key")
    name: str | None = Field(default=None, description="Its current registered name")
    kind: str | None = None
    score: float = Field(ge=0, le=1)
    explanation: dict[str, Any] = Field(description="The score's components")


class ForeignDesignation(BaseModel):
    list: str = Field(description="The foreign list's code (imported with `xinyong lists import`)")
    list_version: str = Field(description="The list's version that carries the designation")
    name: str = Field(description="The designated organisation's name on that list")
    score: float = Field(ge=0, le=1, description="1 for an exact identifier; else the name matcher's score")
    explanation: dict[str, Any] = Field(description="The identifier matched, or the name score's components")
    source_id: str = Field(description="The designation's id on its list (UN DATAID, FtM entity id)")


class ScreenAnswer(BaseModel):
    query_id: str
    decision: Literal["allow", "deny", "conditions", "refer", "not_found"] = Field(description=(
        "deny, conditions or allow for a known subject, from the measures in force; refer: a possible match by "
        "name, or a designation on a foreign list, that a person must check (see candidates, "
        "foreign_designations); not_found: the identifier names no known entity and no foreign designation. "
        "Precedence: deny > refer > conditions > allow. A well-formed code whose check character fails is "
        "answered 422 invalid_identifier."))
    action: str
    as_of: dt.date
    subject: SubjectOut | None
    measures: list[MeasureOut]
    pack: str
    candidates: list[Candidate] | None = Field(default=None, description=(
        "Name screening only: candidates best first (a chosen subject first), each with its score and explanation"))
    match: Literal["name", "ambiguous", "below_threshold", "none"] | None = None
    foreign_designations: list[ForeignDesignation] = Field(description=(
        "Designations on foreign and international lists matching the subject: by an exact identifier first, "
        "then by name (at or above the pack's review threshold). Never domestic listings and never measures: "
        "each adds only the decision the pack's `foreign_lists` names for the action (cn: refer)"))


NO_NUL = r"^[^\x00]*$"  # text the store keeps: PostgreSQL text cannot hold NUL


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [  # declares the reason `feedback` requires
        {"properties": {"applied": {"const": True}}},
        {"required": ["reason"], "properties": {"reason": {"type": "string", "pattern": r"\S"}}}]})

    query_id: str | None = Field(default=None, max_length=32, pattern=NO_NUL,
                                 description="The screening answer acted upon")
    subject: str = Field(min_length=1, max_length=40, pattern=NO_NUL, description="Entity key")
    measure: str = Field(min_length=1, max_length=32)
    applied: bool
    reason: str | None = Field(default=None, max_length=2000, pattern=NO_NUL, description="Required when not applied")
    reference: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    on_date: IsoDate | None = None


PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
WEBHOOK_URL = rf"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::{PORT})?(?:[/?#][^\s\x00]*)?$"


class SubscriptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not a silent default

    entities: list[Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00]*\S[^\x00]*$")]] = Field(
        min_length=1, max_length=10_000, description="Entity keys or codes (a person: its key)")
    url: str = Field(min_length=1, max_length=2000, pattern=WEBHOOK_URL,
                     description="http(s) URL the events are POSTed to; private and loopback addresses are refused")
    purpose: str | None = Field(default=None, max_length=32,
                                description="One of the pack's purposes; required to watch a natural person")


class RecordsRequest(BaseModel):
    category: str = Field(min_length=1, max_length=32)
    records: list[dict[str, Any]] = Field(min_length=1, max_length=100_000)


def records_rules(pack: Pack) -> list[dict[str, Any]]:
    """Per category, the columns without which a batch is refused, as JSON Schema. Records are ingested
    as JSON Lines, whose first line gives the columns `check_mapping` checks: the first record has each
    required field and a subject's name or code. By field name: the pack's column headers, accepted as
    well, would make the schema too heavy to be of use."""
    rules = []
    for category in pack.categories:
        needs = [[f.name] for f in pack.fields_of(category) if f.required]
        needs.append([category.subject.name_field, *category.subject.code_fields])
        rules.append({"properties": {"category": {"const": category.code}, "records": {"prefixItems": [
            {"allOf": [{"anyOf": [{"required": [field]} for field in fields]} for fields in needs]}]}}})
    return rules


ERRORS = {status: {"model": ErrorAnswer} for status in (401, 403, 404, 413, 422, 429)}
FORM_TEXT = {"type": "string"}  # an optional form field is text or absent, never the null FastAPI declares
FILES = {**ERRORS, 200: {"description": "CSV or JSON Lines, as the extension says",
                         "content": {"text/csv": {"schema": {"type": "string"}},
                                     "application/x-ndjson": {"schema": {"type": "string"}}}}}


# -- the app -------------------------------------------------------------------------------------------

class Service:
    """What the app holds between requests."""

    def __init__(self, engine: Engine, pack: Pack, *, names: bool = True, log_interval: float = 0.5,
                 public_url: str | None = None):
        self.engine, self.pack, self.names = engine, pack, names
        # where the public reaches this service: printed on reports, never taken from a request's Host
        self.public_url = public_url.rstrip("/") if public_url else None
        self.index: ScreeningIndex | None = None
        self.keys: dict[str, ApiKey] = {}
        self.buckets: dict[int, list[float]] = {}
        self.log = QueryLog(engine, log_interval)
        self.purposes = {p.code for p in pack.purposes}
        self.checkpoint_seconds = CHECKPOINT_SECONDS
        self.loaded = threading.Event()  # set once the index is loaded: start-up work that can wait waits for it

    def load(self) -> None:
        self.index = ScreeningIndex.load(self.engine, self.pack, names=self.names)
        self.keys = active_keys(self.engine)
        # Entities, codes and names are arrays mapped from the index file, not objects; what is
        # left (listings, relations, keys, the app) is frozen so that the cyclic collector's full
        # passes do not walk it while requests wait. Refcounting still frees it.
        gc.collect()
        gc.freeze()
        self.loaded.set()

    def refresh(self) -> None:
        assert self.index is not None
        if self.index.refresh(self.engine):
            self.keys = active_keys(self.engine)

    def allow_rate(self, key: ApiKey) -> float | None:
        """Token bucket per key: None if allowed, else seconds until the next token."""
        now = time.monotonic()
        bucket = self.buckets.get(key.id)
        if bucket is None:
            bucket = self.buckets[key.id] = [float(key.burst), now]
        tokens = min(float(key.burst), bucket[0] + (now - bucket[1]) * key.rate_per_second)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return (1.0 - tokens) / key.rate_per_second
        bucket[0] = tokens - 1.0
        return None


class PublishedFiles(StaticFiles):
    """`publish`'s folder as static files, each only while its manifest lists it: an operator's
    restricted snapshot (`export --out DIR/snapshot`) or a backup put in the same folder is never served."""

    async def get_response(self, path: str, scope: Any) -> Response:
        listed = await asyncio.to_thread(published_paths, Path(self.directory or "."))
        if Path(path).as_posix() not in listed:
            raise StarletteHTTPException(404)
        return await super().get_response(path, scope)


def create_app(engine: Engine, pack: Pack, *, names: bool = True, log_interval: float = 0.5,
               public_url: str | None = None, data_dir: Path | None = None, webhooks: bool = True,
               webhook_interval: float = 0.5) -> FastAPI:
    service = Service(engine, pack, names=names, log_interval=log_interval, public_url=public_url)
    worker = Worker(engine, pack, webhook_interval) if webhooks else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(service.load)
        for job_id, outcome in await asyncio.to_thread(jobs.recover_jobs, engine):  # workers of a previous run
            log.warning("screening job %s: worker gone, %s", job_id, outcome)
        service.log.start()
        stop = asyncio.Event()

        async def follow() -> None:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), REFRESH_SECONDS)
                except TimeoutError:
                    try:
                        await asyncio.to_thread(service.refresh)
                    except Exception:  # noqa: BLE001 - a store hiccup must not stop following it
                        log.exception("index refresh failed")

        async def sign_checkpoints() -> None:
            """Seal the reports issued and sign the chain's head at start, then every CHECKPOINT_SECONDS."""
            while True:
                try:
                    await asyncio.to_thread(checkpoint, engine, "serve")
                except Exception:  # noqa: BLE001 - a store hiccup must not stop the next checkpoint
                    log.exception("audit checkpoint failed")
                try:
                    await asyncio.wait_for(stop.wait(), service.checkpoint_seconds)
                    return
                except TimeoutError:
                    continue

        follower = asyncio.create_task(follow())
        signer = asyncio.create_task(sign_checkpoints())
        deliverer = asyncio.create_task(worker.run()) if worker is not None else None
        try:
            yield
        finally:
            stop.set()
            await follower
            await signer
            if worker is not None and deliverer is not None:
                worker.stop.set()
                await deliverer
            await asyncio.to_thread(service.log.close)

    app = FastAPI(title="xinyong", version="1.0",
                  description="Public credit registry and joint-sanctions engine: screening, lists, records.",
                  lifespan=lifespan, docs_url=None, redoc_url=None)  # /docs, /redoc: vendored, in web.mount
    app.state.service = service
    actions, purposes = [a.code for a in pack.actions], [p.code for p in pack.purposes]

    def openapi() -> dict[str, Any]:
        """FastAPI's document, with the pack's codes as the enums of the request models' fields."""
        if app.openapi_schema is None:
            models = FastAPI.openapi(app)["components"]["schemas"]
            for model, field, codes in (("ScreenRequest", "action", actions), ("ScreenRequest", "purpose", purposes),
                                        ("FeedbackRequest", "measure", [m.code for m in pack.measures]),
                                        ("RecordsRequest", "category", [c.code for c in pack.categories]),
                                        ("SubscriptionRequest", "purpose", purposes)):
                models[model]["properties"][field]["enum"] = codes
            models["RecordsRequest"]["oneOf"] = records_rules(pack)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> Response:
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # a body that cannot be parsed: invalid like any other malformed request
            return _error(422, "invalid_request", str(exc.detail))
        codes = {404: "not_found", 405: "method_not_allowed"}
        headers = exc.headers
        if exc.status_code == 405:  # every method of the path, not only the first route's (GET and DELETE)
            allowed = sorted({method for route in app.routes if isinstance(route, APIRoute)
                              and route.path_regex.match(_request.url.path) for method in route.methods})
            if allowed:
                headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        return _error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return _error(422, "invalid_request", problems or "invalid request")

    @app.exception_handler(Exception)
    async def crashed(_request: Request, exc: Exception) -> Response:
        reference = uuid.uuid4().hex[:12]
        log.error("internal error %s", reference, exc_info=exc)
        return _error(500, "internal", f"internal error; reference {reference}")

    # -- keys, scopes, purposes --------------------------------------------------------------

    def _key(x_api_key: str | None) -> ApiKey:
        if not x_api_key:
            raise ApiError(401, "missing_key", "send your API key in the X-API-Key header")
        key = service.keys.get(secret_hash(x_api_key))
        if key is None:
            raise ApiError(401, "invalid_key", "unknown or revoked API key")
        if key.expired():
            raise ApiError(401, "expired_key", "this API key has expired; ask for a new one")
        wait = service.allow_rate(key)
        if wait is not None:
            raise ApiError(429, "rate_limited", f"rate limit of {key.rate_per_second:g}/s exceeded",
                           {"Retry-After": str(max(1, round(wait)))})
        return key

    def requires(scope: str | None):
        async def check(x_api_key: Annotated[str | None, Header()] = None) -> ApiKey:
            key = _key(x_api_key)
            if scope is not None and not key.allows(scope):
                raise ApiError(403, "scope_missing", f"this key lacks the {scope!r} scope")
            return key
        return check

    async def optional_key(x_api_key: Annotated[str | None, Header()] = None) -> ApiKey | None:
        return _key(x_api_key) if x_api_key else None

    def check_purpose(purpose: str | None) -> str:
        if not purpose:
            raise ApiError(422, "purpose_missing", "state the purpose of this query")
        if purpose not in service.purposes:
            raise ApiError(422, "unknown_purpose",
                           f"unknown purpose {purpose!r}; the pack's purposes are: {', '.join(sorted(service.purposes))}")
        return purpose

    def index() -> ScreeningIndex:
        assert service.index is not None
        return service.index

    # -- screening ---------------------------------------------------------------------------

    @app.post("/v1/ping", summary="Check a key (any scope)", responses=ERRORS)
    async def ping(key: Annotated[ApiKey, Depends(requires(None))]) -> dict[str, Any]:
        return {"ok": True, "authority": key.authority}

    async def screen(body: ScreenRequest, key: Annotated[ApiKey, Depends(requires("screen"))]) -> Response:
        purpose = check_purpose(body.purpose)
        as_of = body.as_of or pack_today(pack)
        try:
            if body.identifier is not None:
                answer = index().screen_identifier(body.identifier, body.action, as_of)
            else:
                answer = index().screen_name(body.name or "", body.action, as_of)
        except InvalidIdentifier as exc:
            raise ApiError(422, "invalid_identifier", str(exc)) from None
        except ScreenError as exc:
            raise ApiError(422, "invalid_request", str(exc)) from None
        data = index().answer_data(answer)
        service.log.add(query_id=answer.query_id, key_id=key.id, authority=key.authority, purpose=purpose,
                        endpoint="screen", query=masked_query(body.identifier, body.name),
                        subject=data["subject"]["key"] if data["subject"] else None, action=body.action,
                        as_of=as_of, result=answer.decision.decision,
                        measures=sorted({m["code"] for m in data["measures"]}))
        return _json(data)

    screening_key = requires("screen")

    class ScreenRoute(APIRoute):
        """POST /v1/screen, the hot path: declared like any route (its OpenAPI operation is FastAPI's,
        from `screen`'s signature), but its request is read here rather than by FastAPI's generic
        dependency solving, which cost more than the screening itself. The same steps in the same
        order: the body parsed as JSON when its content type says so (a JSON error first), then the
        key, then the body validated against `ScreenRequest` (errors located under `body`)."""

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            async def handler(request: Request) -> Response:
                value = await _json_body(request)
                key = await screening_key(request.headers.get("x-api-key"))
                if value is _NO_BODY:
                    raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required",
                                                   "input": None}])
                try:
                    body = ScreenRequest.model_validate(value)
                except ValidationError as exc:
                    raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
                return await screen(body, key)
            return handler

    app.router.add_api_route("/v1/screen", screen, methods=["POST"], summary="Screen one subject at a decision point",
                             response_model=ScreenAnswer, responses=ERRORS, route_class_override=ScreenRoute)

    @app.post("/v1/screen/jobs", summary="Start a batch screening job (CSV or JSON Lines upload)", status_code=202,
              responses=ERRORS)
    async def start_job(key: Annotated[ApiKey, Depends(requires("screen"))],
                        file: Annotated[UploadFile, File(description="CSV (identifier or name column) or JSON Lines")],
                        purpose: Annotated[str, Form(json_schema_extra={"enum": purposes})],
                        action: Annotated[str | None, Form(json_schema_extra={"enum": actions})] = None,
                        as_of: Annotated[IsoDate | None, Form(json_schema_extra=FORM_TEXT)] = None) -> Response:
        check_purpose(purpose)
        if action is not None:
            try:
                index().measures(action)
            except ScreenError as exc:
                raise ApiError(422, "invalid_request", str(exc)) from None
        name = (file.filename or "").lower()
        input_format = "jsonl" if name.endswith((".jsonl", ".ndjson", ".json")) else "csv"
        data = await file.read()
        # "today" is the day the job was asked for, fixed now: not the day its worker starts or resumes on
        job_id = await asyncio.to_thread(jobs.create_job, engine, data, input_format, key_id=key.id,
                                         authority=key.authority, purpose=purpose, action=action,
                                         as_of=as_of or pack_today(pack))
        jobs.spawn(engine, job_id)
        return _json({"id": job_id, "state": "queued", "status_url": f"/v1/screen/jobs/{job_id}"}, 202)

    def own_job(job_id: str, key: ApiKey) -> dict[str, Any]:
        job = jobs.job_status(engine, job_id)
        if job is None or job["authority"] != key.authority:
            raise ApiError(404, "not_found", f"no screening job {job_id!r} of {key.authority}")
        return job

    @app.get("/v1/screen/jobs/{job_id}", summary="A batch job's progress", responses=ERRORS)
    async def job_progress(job_id: str, key: Annotated[ApiKey, Depends(requires("screen"))]) -> Response:
        job = await asyncio.to_thread(own_job, job_id, key)
        return _json(job)

    @app.get("/v1/screen/jobs/{job_id}/results.{extension}", summary="A finished job's results",
             response_class=Response, responses=FILES)
    async def job_results(job_id: str, extension: Literal["csv", "jsonl"],
                          key: Annotated[ApiKey, Depends(requires("screen"))]) -> Response:
        job = await asyncio.to_thread(own_job, job_id, key)
        if job["state"] != "done":
            raise ApiError(404, "not_ready", f"job {job_id} is {job['state']}; results come when it is done")
        path = jobs.result_path(engine, job_id, extension)
        media = "text/csv; charset=utf-8" if extension == "csv" else "application/x-ndjson"
        return FileResponse(path, media_type=media, filename=f"screening-{job_id}.{extension}")

    @app.get("/v1/changes", summary="Every change of listings, in order, after a sequence number", responses=ERRORS)
    async def changes_since(key: Annotated[ApiKey, Depends(requires("screen"))],
                            since: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,  # sequence numbers are INTEGER
                            limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> Response:
        return _json(await asyncio.to_thread(changes, engine, pack, since, limit))

    @app.get("/v1/public/changes", summary="The public change log after a sequence number (no key)",
             responses=ERRORS)
    async def public_changes_since(since: Annotated[int, Query(ge=0, le=2**62)] = 0,
                                   limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> Response:
        return _json(await asyncio.to_thread(public_changes, engine, pack, since, limit))

    # -- watchlists: webhook subscriptions ------------------------------------------------------------

    def _subscription_call(function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except SubscriptionError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None

    @app.post("/v1/subscriptions", summary="Watch entities: events POSTed to a URL, signed with the secret "
              "returned (shown once)", status_code=201, responses=ERRORS)
    async def subscribe(body: SubscriptionRequest, key: Annotated[ApiKey, Depends(requires("screen"))]) -> Response:
        if body.purpose is not None:
            check_purpose(body.purpose)
        made = await asyncio.to_thread(_subscription_call, create_subscription, engine, pack, key, body.entities,
                                       body.url, body.purpose)
        return _json(made, 201)

    @app.get("/v1/subscriptions/{subscription_id}", summary="A subscription and its delivery counts",
             responses=ERRORS)
    async def subscription(subscription_id: str, key: Annotated[ApiKey, Depends(requires("screen"))]) -> Response:
        return _json(await asyncio.to_thread(_subscription_call, get_subscription, engine, subscription_id, key))

    @app.delete("/v1/subscriptions/{subscription_id}", summary="Stop a subscription (pending deliveries cancelled)",
                responses=ERRORS)
    async def unsubscribe(subscription_id: str, key: Annotated[ApiKey, Depends(requires("screen"))]) -> Response:
        return _json(await asyncio.to_thread(_subscription_call, delete_subscription, engine, subscription_id, key))

    # -- authorities report back, and send records ----------------------------------------------

    @app.post("/v1/feedback", summary="Report the measure applied (or why not)", status_code=201, responses={
        **ERRORS, 200: {"description": "The same report sent before (a retry): the first one, not stored again"},
        409: {"model": ErrorAnswer, "description": "The answer's measure was already reported otherwise"}})
    async def feedback(body: FeedbackRequest, key: Annotated[ApiKey, Depends(requires("screen"))]) -> Response:
        stored, new = await asyncio.to_thread(_store_feedback, body, key)
        return _json(stored, 201 if new else 200)

    def _store_feedback(body: FeedbackRequest, key: ApiKey) -> tuple[dict[str, Any], bool]:
        """The report stored, and whether it is new: the same report sent again (a retry) is the first one."""
        if body.measure not in {m.code for m in pack.measures}:
            raise ApiError(422, "unknown_measure", f"unknown measure {body.measure!r}")
        if not body.applied and not (body.reason and body.reason.strip()):
            raise ApiError(422, "reason_missing", "say why the measure was not applied")
        with engine.connect() as c:
            if c.execute(select(t.entities.c.id).where(t.entities.c.key == body.subject)).scalar() is None:
                raise ApiError(404, "not_found", f"no entity with key {body.subject!r}")
        if body.on_date is not None and body.on_date > pack_today(pack):
            raise ApiError(422, "date_in_future", f"on_date {body.on_date} is after today ({pack_today(pack)}): "
                                                  "report a measure once it was applied")
        if body.query_id is not None:
            service.log.flush()  # the answer may still be waiting in the log's buffer
            q = t.query_log.c
            with engine.connect() as c:
                asked = c.execute(select(q.authority, q.subject, q.action, q.measures, q.at, q.as_of)
                                  .where(q.query_id == body.query_id)).first()
            if asked is None or asked.authority != key.authority:
                raise ApiError(404, "not_found", f"no screening {body.query_id!r} by {key.authority}")
            if asked.subject != body.subject:  # which of the two was the measure applied to?
                raise ApiError(422, "subject_mismatch", f"screening {body.query_id} answered about "
                                                        f"{asked.subject or 'no entity'}, not {body.subject}")
            # a measure the answer did not name (another decision point's, or none at all for an allow)
            # was applied on no basis this screening gave: the report would pass for one that had one
            if body.measure not in (asked.measures or ()):
                raise ApiError(422, "measure_not_in_answer", f"screening {body.query_id} ({asked.action}) named "
                                                             f"{', '.join(asked.measures) or 'no measure'}, "
                                                             f"not {body.measure}")
            # a measure is applied (or not) on an answer's basis from the day it speaks of: dated before,
            # the report would count a measure applied years before the listing on this answer's basis. A
            # screening as of a past day (a decision entered late) speaks of that day
            at = asked.at if asked.at.tzinfo else asked.at.replace(tzinfo=dt.timezone.utc)  # SQLite: naive UTC
            asked_on = at.astimezone(Calendar(pack.calendar).zone).date()
            basis = min(asked_on, asked.as_of) if asked.as_of is not None else asked_on
            if body.on_date is not None and body.on_date < basis:
                raise ApiError(422, "date_before_screening", f"on_date {body.on_date} is before the day screening "
                                                             f"{body.query_id} speaks of ({basis})")
        on_date = body.on_date or pack_today(pack)
        if body.query_id is None and body.applied and not index().measure_binds(body.subject, body.measure, on_date):
            raise ApiError(422, "measure_not_binding", f"{body.measure} does not bind {body.subject} on {on_date}: "
                                                       "no listing in force on a list it follows")
        row = {"query_id": body.query_id, "key_id": key.id, "authority": key.authority, "subject": body.subject,
               "measure": body.measure, "applied": body.applied, "reason": body.reason, "reference": body.reference,
               "on_date": on_date, "recorded_at": dt.datetime.now(dt.timezone.utc)}
        f = t.feedback.c
        with engine.begin() as c:
            # one report per screening answer and measure (per subject, measure, reference and day without
            # one): a retry was stored again and counted the measure applied twice
            same = [f.authority == key.authority, f.measure == body.measure]
            same += ([f.query_id == body.query_id] if body.query_id is not None else
                     [f.query_id.is_(None), f.subject == body.subject, f.on_date == on_date,
                      f.reference.is_(None) if body.reference is None else f.reference == body.reference])
            earlier = c.execute(select(f.id, f.applied, f.reason).where(*same).order_by(f.id)).first()
            if earlier is not None:
                if (earlier.applied, earlier.reason) != (body.applied, body.reason):
                    raise ApiError(409, "already_reported", f"feedback {earlier.id} already reports {body.measure} "
                                                            f"as {'applied' if earlier.applied else 'not applied'}")
                feedback_id, new = earlier.id, False
            else:
                audit_stored_feedback(c, f"{key.authority}/key{key.id}")
                feedback_id, new = c.execute(t.feedback.insert().values(**row)).inserted_primary_key[0], True
                audit_feedback(c, {**row, "id": feedback_id}, actor=f"{key.authority}/key{key.id}")
        return {"id": feedback_id, **{k: row[k] for k in ("query_id", "subject", "measure", "applied", "on_date")}}, new

    @app.post("/v1/records", summary="Submit records: same validation and quarantine as file ingestion",
              status_code=201, responses=ERRORS)
    async def submit(body: RecordsRequest, key: Annotated[ApiKey, Depends(optional_key)] = None) -> Response:
        if key is None:
            raise ApiError(401, "missing_key", "send your API key in the X-API-Key header")
        most = settings.MAX_API_RECORDS.value()
        if len(body.records) > most:
            raise ApiError(413, "too_many_records", f"{len(body.records)} records in one call; at most {most} "
                                                    f"({settings.MAX_API_RECORDS.name}): send them in several calls")
        if not key.may_submit(body.category):
            raise ApiError(403, "scope_missing", f"this key may not submit {body.category!r} records")
        if body.category not in pack.authority(key.authority).competences:
            raise ApiError(403, "not_competent", f"{key.authority} is not competent for {body.category!r} records")
        return _json(await asyncio.to_thread(_ingest_records, body, key), 201)

    def _ingest_records(body: RecordsRequest, key: ApiKey) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="xinyong-api-") as folder:
            path = Path(folder) / f"api-{key.authority}-{body.category}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}.jsonl"
            # The standard library, not orjson, writes them: any JSON the client sent can be written back,
            # integers beyond 64 bits included (read back as floats, as from a file).
            path.write_text("".join(json.dumps(r) + "\n" for r in body.records), encoding="ascii")
            try:
                result = ingest_file(engine, pack, path, key.authority, body.category, actor=f"api:{key.authority}")
            except (FileRefused, PackError) as exc:
                raise ApiError(422, "records_refused", str(exc)) from None
        out = result.as_dict()
        batch_id = result.batch_id if result.duplicate_of is None else result.duplicate_of
        qu = t.quarantine.c
        with engine.connect() as c:
            out["rejects"] = [{"row": r.row_number, "field": r.field, "reason": r.reason}
                              for r in c.execute(select(qu.row_number, qu.field, qu.reason)
                                                 .where(qu.batch_id == batch_id).order_by(qu.row_number))]
        return out

    # -- public reading ---------------------------------------------------------------------------

    @app.get("/v1/entities/{key}", summary="An entity's public file (restricted with a key, scope and purpose)",
             responses=ERRORS)
    async def entity(key: str, reader: Annotated[ApiKey | None, Depends(optional_key)] = None,
                     x_purpose: Annotated[str | None, Header(json_schema_extra={"enum": purposes})] = None) -> Response:
        restricted = False
        if reader is not None and x_purpose is not None:
            if not reader.allows("read_restricted"):
                raise ApiError(403, "scope_missing", "this key lacks the 'read_restricted' scope")
            check_purpose(x_purpose)
            restricted = True
        try:
            await asyncio.to_thread(refuse_person_id_in_url, key, engine)
            data = await asyncio.to_thread(public_file, engine, pack, key, pack_today(pack), restricted=restricted)
        except EntityNotFound:
            # one answer whatever the reason: "no such key", "an ID number" and "a person on no public list
            # (any more)" apart would tell which keys and numbers are a person on record
            raise ApiError(404, "not_found", "no entity file to show for this key") from None
        if restricted:
            assert reader is not None and x_purpose is not None
            service.log.add(query_id=uuid.uuid4().hex, key_id=reader.id, authority=reader.authority, purpose=x_purpose,
                            endpoint="entity_restricted", query=data["key"], subject=data["key"], action=None,
                            as_of=None, result="read", measures=[])
        return _json(data)

    @app.get("/v1/entities/{key}/grade",
             summary="An enterprise's supervision grade with every point (read_restricted and a purpose)",
             responses=ERRORS)
    async def entity_grade(key: str, reader: Annotated[ApiKey, Depends(requires("read_restricted"))],
                           x_purpose: Annotated[str, Header(json_schema_extra={"enum": purposes})],
                           as_of: IsoDate | None = None) -> Response:
        from xinyong.services.accountability.grades import GradeError, share_grade

        purpose = check_purpose(x_purpose)
        try:
            await asyncio.to_thread(refuse_person_id_in_url, key, engine)
            data = await asyncio.to_thread(share_grade, engine, pack, key, as_of or pack_today(pack),
                                           authority=reader.authority, purpose=purpose,
                                           actor=f"{reader.authority}/key{reader.id}")
        except EntityNotFound as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        except GradeError as exc:
            raise ApiError(404 if exc.code == "no_grades" else 422, exc.code, str(exc)) from None
        service.log.add(query_id=uuid.uuid4().hex, key_id=reader.id, authority=reader.authority, purpose=purpose,
                        endpoint="entity_grade", query=data["entity"], subject=data["entity"], action=None,
                        as_of=data["as_of"], result=data["grade"], measures=[])
        return _json(data)

    def _list_code(code: str) -> str:
        try:
            pack.list_(code)
        except PackError as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        return code

    @app.get("/v1/checkpoints/latest", summary="The newest Ed25519-signed checkpoint of the audit chain's head",
             responses=ERRORS)
    async def latest_checkpoint() -> Response:
        def newest() -> dict[str, Any] | None:
            with engine.connect() as c:
                return latest_signed(c)
        document = await asyncio.to_thread(newest)
        if document is None:
            raise ApiError(404, "not_found", "no checkpoint has been signed yet")
        return _json(document)

    @app.get("/v1/lists/{code}", summary="A public list: effective listings, paged and filterable", responses=ERRORS)
    async def public_list(code: str,
                          as_of: IsoDate | None = None,
                          region: Annotated[str | None, Query(max_length=12)] = None,
                          q: Annotated[str | None, Query(max_length=100, description="Name contains")] = None,
                          page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
                          page_size: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
        _list_code(code)
        return _json(await asyncio.to_thread(list_page, engine, pack, code, as_of or pack_today(pack), region=region,
                                             name=q, page=page, page_size=page_size))

    @app.get("/v1/lists/{code}/export.{extension}", summary="Export a public list as CSV or JSON Lines",
             response_class=Response, responses=FILES)
    async def export_list(code: str, extension: Literal["csv", "jsonl"], as_of: IsoDate | None = None) -> Response:
        _list_code(code)
        rows = await asyncio.to_thread(list_rows, engine, pack, code, as_of or pack_today(pack))
        if extension == "jsonl":
            return StreamingResponse(jsonl_chunks(rows), media_type="application/x-ndjson",
                                     headers={"Content-Disposition": f'attachment; filename="{code}.jsonl"'})
        return StreamingResponse(csv_chunks(rows), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{code}.csv"'})

    if data_dir is not None:  # `xinyong publish --out DIR`: the files, with ETags and If-None-Match
        app.mount("/data", PublishedFiles(directory=data_dir, html=False), name="data")

    from xinyong.web import mount  # the web portal: pages beside the API
    mount(app, service, https_only=bool(public_url and public_url.startswith("https://")))
    # outermost: body size, NUL characters and a submission's key are checked before anything reads the body
    app.add_middleware(RequestGuard, key_known=lambda secret: service.keys.get(secret_hash(secret)) is not None)
    return app
