"""What every web page shares: templates, languages, sessions, CSRF.

Pages are server-rendered Jinja2 (with HTMX for partial updates; every page works without
JavaScript). One Jinja2 environment per UI language holds that language's catalogue, merged
from every Babel domain found under `xinyong/locales` and compiled from the .po files at
start, so a clean clone needs no build step.

Sessions live in the store (`web_sessions`, see `ServerSessions`): the cookie carries only a
random session id, and the store keeps its SHA-256 with the session's data. Signing out deletes
the row, so a copied cookie stops working at once; revoking a subject's credentials or an
operator's key deletes their sessions (`services.publication.subjects`, `services.operations.keys`). A session expires after
`SESSION_SECONDS` without a request, and a sign-in after `SIGN_IN_SECONDS` whatever happens.
Every state-changing form carries a per-session CSRF token (`require_csrf`).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hashlib
import io
import json
import logging
import math
import os
import re
import secrets
import threading
import time
from functools import lru_cache
from zoneinfo import ZoneInfo
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy import Engine, delete, select, update
from starlette.datastructures import MutableHeaders

from xinyong.domain import formats
from xinyong.domain.listings import last_day_in_force
from xinyong.store import tables as t

log = logging.getLogger("xinyong.web")

LANGUAGES = ("zh", "en", "fr")
DEFAULT_LANGUAGE = "zh"
PACKAGE = Path(__file__).resolve().parent.parent
TEMPLATES = PACKAGE / "templates"
LOCALES = PACKAGE / "locales"
STATIC = Path(__file__).resolve().parent / "static"

SESSION_COOKIE = "xinyong_session"
SESSION_SECONDS = 30 * 60  # idle time after which a session is gone
SIGN_IN_SECONDS = 8 * 3600  # a sign-in lasts at most this long, however active
LANG_COOKIE = "lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def reject_nul(request: Request) -> None:
    """No query parameter of a page may hold a NUL character (PostgreSQL text cannot): a clear 400."""
    if any("\x00" in key or "\x00" in value for key, value in request.query_params.multi_items()):
        _ = gettext_for(language_of(request))
        raise WebError(400, _("The request holds a NUL character, which no text may contain."))


class WebError(Exception):
    """An error answered with an HTML page (the API answers JSON; pages answer pages). `message` is
    a code that web/error.html says in the page's language (csrf, no_operate_scope, no_submit_category,
    signed_out, too_long, not_a_number), with `params`; other text is shown as it is."""

    def __init__(self, status: int, message: str, **params: Any):
        super().__init__(message)
        self.status, self.message, self.params = status, message, params


# -- catalogues ----------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def translations(lang: str) -> Translations:
    """Every domain's catalogue for `lang`, merged (`messages` for the public pages, `portal` for the portal and console)."""
    merged: Translations | None = None
    folder = LOCALES / lang / "LC_MESSAGES"
    for po in sorted(folder.glob("*.po"), key=lambda p: (p.stem != "messages", p.stem)) if folder.is_dir() else ():
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=lang, domain=po.stem)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        loaded = Translations(buffer, domain=po.stem)
        if merged is None:
            merged = loaded  # the first catalogue brings the language's plural rule
        else:
            merged.merge(loaded)
    return merged if merged is not None else Translations()


def gettext_for(lang: str):
    return translations(lang).gettext


@lru_cache(maxsize=None)
def environment(lang: str) -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "xml"]),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["in_lang"] = in_lang
    env.filters["date"] = format_day
    env.filters["last_day_in_force"] = last_day_in_force
    env.filters["number"] = format_number
    env.filters["share"] = format_share
    env.filters["capital_share"] = format_capital_share
    env.filters["moment"] = format_moment
    env.filters["identifier"] = format_identifier
    env.globals["LANGUAGES"] = LANGUAGES
    return env


@pass_context
def in_lang(context, names: Any) -> str:
    """A pack label ({zh, en, fr} as a model or a dict) in the page's language."""
    lang = context.get("lang", DEFAULT_LANGUAGE)
    if names is None:
        return ""
    if isinstance(names, dict):
        return str(names.get(lang) or names.get("en") or next(iter(names.values()), ""))
    return str(names.get(lang)) if hasattr(names, "get") else str(names)


@pass_context
def format_number(context, n: Any) -> Any:
    """A count in the page's language (2,291 · 2 291 · 2,291), through Babel's locale data."""
    if isinstance(n, bool) or not isinstance(n, (int, float)):
        return n
    return formats.number(n, context.get("lang", DEFAULT_LANGUAGE))


@pass_context
def format_capital_share(context, value: Any) -> Any:
    """A share of capital in percent (35.5) as the page's language writes it (35,5 % · 35.5%)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return value
    return formats.capital_share(value, context.get("lang", DEFAULT_LANGUAGE))


@pass_context
def format_share(context, value: Any) -> Any:
    """A share (0-1) as a percentage in the page's language (87 % · 87% ...), through Babel; None is a dash."""
    if value is None:
        return "–"
    return formats.share(value, context.get("lang", DEFAULT_LANGUAGE))


@pass_context
def format_day(context, day: Any) -> str:
    """A date; a timestamp's date in the pack's time zone when the page names one (the day the
    pack's calendar gives it, as its filters and the scorecard count it)."""
    return formats.day(day, context.get("lang", DEFAULT_LANGUAGE), zone=context.get("zone"))


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?")


@pass_context
def format_identifier(context, value: Any) -> Any:
    """An object's id as the audit shows it: a run named by its day or its time is written as a
    date or a time in the page's language; any other id as it is."""
    if isinstance(value, str) and _ISO_MOMENT.fullmatch(value):
        return format_moment(context, value.replace("Z", "+00:00"))
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        return format_day(context, value)
    return value


@pass_context
def format_moment(context, at: Any) -> str:
    """A timestamp in the page's language, in the pack's time zone when the page names one."""
    return formats.moment(at, context.get("lang", DEFAULT_LANGUAGE), context.get("zone"))


# -- language --------------------------------------------------------------------------------------------

def language_of(request: Request) -> str:
    """`?lang=` first, then the `lang` cookie, then the browser's Accept-Language, then the pack's language."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGUAGES:
        return cookie
    return negotiate(request.headers.get("accept-language", ""), service_of(request).pack.language)


def negotiate(header: str, default: str = DEFAULT_LANGUAGE) -> str:
    """The best of our languages in an Accept-Language header (q-values honoured)."""
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            choices.append((-quality, position, primary))
    return min(choices)[2] if choices else default


# -- the service, sessions and sign-in ---------------------------------------------------------------

def service_of(request: Request) -> Any:
    """The app's `Service` (engine, pack, screening index, keys)."""
    return request.app.state.service


def _session(request: Request) -> dict[str, Any]:
    return request.session if "session" in request.scope else {}


def _fresh_sign_in(request: Request) -> None:
    """A sign-in starts a new session under a new id (a new CSRF token; nothing from before survives,
    and an id planted before the sign-in is worth nothing after it)."""
    session = request.session
    request.scope[ROTATE_SESSION] = True
    session.clear()
    session["since"] = int(time.time())
    session["csrf"] = secrets.token_urlsafe(32)


def _still_valid(request: Request) -> bool:
    since = _session(request).get("since")
    if since is None or time.time() - since > SIGN_IN_SECONDS:
        return False
    return True


def sign_in_subject(request: Request, entity_key: str) -> None:
    _fresh_sign_in(request)
    request.session["subject"] = entity_key


def current_subject(request: Request) -> str | None:
    subject = _session(request).get("subject")
    if subject is None or not _still_valid(request):
        return None
    return str(subject)


def sign_in_operator(request: Request, api_key_id: int, authority: str, scopes: list[str]) -> None:
    _fresh_sign_in(request)
    request.session["operator"] = {"key_id": int(api_key_id), "authority": authority, "scopes": list(scopes)}


def current_operator(request: Request) -> dict[str, Any] | None:
    operator = _session(request).get("operator")
    if operator is None or not _still_valid(request):
        return None
    return dict(operator)


def sign_out(request: Request) -> None:
    """End the session: its row is deleted, and whatever the answer keeps (a flash message) goes
    under a new id, so the old cookie, or a copy of it, opens nothing."""
    request.scope[ROTATE_SESSION] = True
    _session(request).clear()


# -- server-side sessions -------------------------------------------------------------------------------

ROTATE_SESSION = "xinyong.session_rotate"  # scope flag: give the session a new id when the answer starts
TOUCH_SECONDS = 30  # `last_seen` is rewritten at most this often for a session whose data did not change


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def load_session(engine: Engine, session_id: str) -> tuple[dict[str, Any], dt.datetime] | None:
    """The session's data and when it was last seen, or None when it is unknown, ended or idle too long
    (an idle one is deleted)."""
    s = t.web_sessions.c
    with engine.connect() as c:
        row = c.execute(select(s.data, s.last_seen).where(s.id_sha256 == _id_hash(session_id))).first()
    if row is None:
        return None
    if time.time() - _utc(row.last_seen).timestamp() > SESSION_SECONDS:
        with engine.begin() as c:
            c.execute(delete(t.web_sessions).where(s.id_sha256 == _id_hash(session_id)))
        return None
    data = row.data if isinstance(row.data, dict) else json.loads(row.data)
    return data, _utc(row.last_seen)


def _owners(c: Any, data: dict[str, Any]) -> dict[str, int | None]:
    """Whose session it is, so that revoking their credential or key can end it."""
    subject = data.get("subject")
    entity_id = (c.execute(select(t.entities.c.id).where(t.entities.c.key == str(subject))).scalar()
                 if subject else None)
    operator = data.get("operator")
    return {"subject_entity_id": entity_id,
            "api_key_id": int(operator["key_id"]) if isinstance(operator, dict) and "key_id" in operator else None}


def save_session(engine: Engine, session_id: str | None, data: dict[str, Any], *, new_id: bool) -> str:
    """Store the session's data; with `new_id` (a new session, or a sign-in) under a fresh id, the old
    one deleted. Returns the id the cookie carries."""
    s = t.web_sessions.c
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as c:
        if new_id:
            if session_id:
                c.execute(delete(t.web_sessions).where(s.id_sha256 == _id_hash(session_id)))
            # idle sessions nobody came back for
            c.execute(delete(t.web_sessions).where(s.last_seen < now - dt.timedelta(seconds=SESSION_SECONDS)))
            session_id = secrets.token_urlsafe(32)
            c.execute(t.web_sessions.insert().values(id_sha256=_id_hash(session_id), data=data, created_at=now,
                                                     last_seen=now, **_owners(c, data)))
        else:
            assert session_id is not None
            c.execute(update(t.web_sessions).where(s.id_sha256 == _id_hash(session_id))
                      .values(data=data, last_seen=now, **_owners(c, data)))
    return session_id


def touch_session(engine: Engine, session_id: str) -> None:
    with engine.begin() as c:
        c.execute(update(t.web_sessions).where(t.web_sessions.c.id_sha256 == _id_hash(session_id))
                  .values(last_seen=dt.datetime.now(dt.timezone.utc)))


def delete_session(engine: Engine, session_id: str) -> None:
    with engine.begin() as c:
        c.execute(delete(t.web_sessions).where(t.web_sessions.c.id_sha256 == _id_hash(session_id)))


class ServerSessions:
    """ASGI middleware: `request.session` backed by `web_sessions`; the cookie holds only the id.

    API calls (`/v1/`) and static files get an empty session without a database round trip. The
    cookie is HttpOnly, SameSite=Lax (Secure behind https) and is renewed for `SESSION_SECONDS`
    with every answer; the store enforces the same idle limit whatever the browser keeps.
    """

    def __init__(self, app: Any, engine: Engine, https_only: bool = False):
        self.app, self.engine = app, engine
        self.flags = "; httponly; samesite=lax" + ("; secure" if https_only else "")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path.startswith(("/v1/", "/static/")):
            scope["session"] = {}
            await self.app(scope, receive, send)
            return
        session_id = _cookie(scope, SESSION_COOKIE)
        loaded = await asyncio.to_thread(load_session, self.engine, session_id) if session_id else None
        data, last_seen = loaded if loaded else ({}, None)
        scope["session"] = data
        before = json.dumps(data, sort_keys=True, default=str)

        async def send_with_session(message: Any) -> None:
            if message["type"] == "http.response.start":
                await self._answer(scope, message, session_id if loaded else None, before, last_seen)
            await send(message)

        await self.app(scope, receive, send_with_session)

    async def _answer(self, scope: Any, message: Any, session_id: str | None, before: str,
                      last_seen: dt.datetime | None) -> None:
        data = scope["session"]
        headers = MutableHeaders(scope=message)
        if not data:
            if session_id:  # cleared: signed out, or a sign-in refused after clearing
                await asyncio.to_thread(delete_session, self.engine, session_id)
                headers.append("set-cookie", f"{SESSION_COOKIE}=; path=/; max-age=0{self.flags}")
            return
        rotate = bool(scope.get(ROTATE_SESSION)) or session_id is None
        if rotate or json.dumps(data, sort_keys=True, default=str) != before:
            session_id = await asyncio.to_thread(save_session, self.engine, session_id, data, new_id=rotate)
        elif last_seen is None or time.time() - last_seen.timestamp() > TOUCH_SECONDS:
            await asyncio.to_thread(touch_session, self.engine, session_id)
        headers.append("set-cookie", f"{SESSION_COOKIE}={session_id}; path=/; max-age={SESSION_SECONDS}{self.flags}")


def _cookie(scope: Any, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                cookie_name, _, cookie_value = part.strip().partition("=")
                if cookie_name == name and cookie_value:
                    return cookie_value[:100]
    return None


# -- anonymous report downloads: a limit per client --------------------------------------------------------

REPORTS_PER_MINUTE_ENV = "XINYONG_REPORTS_PER_MINUTE"
REPORTS_PER_MINUTE = 10
WINDOW_SECONDS = 60.0
MAX_CLIENTS = 100_000  # above this, clients quiet for a whole window are forgotten


def reports_per_minute() -> int:
    """`XINYONG_REPORTS_PER_MINUTE` (default 10): anonymous credit reports a client may fetch a minute;
    0 turns the limit off."""
    raw = os.environ.get(REPORTS_PER_MINUTE_ENV, "").strip()
    if not raw:
        return REPORTS_PER_MINUTE
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{REPORTS_PER_MINUTE_ENV}={raw!r}: expected a whole number of reports a minute") from None
    if value < 0:
        raise ValueError(f"{REPORTS_PER_MINUTE_ENV}={raw!r}: expected 0 (no limit) or more")
    return value


class ClientRateLimit:
    """At most `per_window` requests per client in any `window` seconds (a sliding log per client)."""

    def __init__(self, per_window: int, window: float = WINDOW_SECONDS):
        self.per_window, self.window = per_window, window
        self.seen: dict[str, collections.deque[float]] = {}
        self.lock = threading.Lock()

    def wait(self, client: str) -> int | None:
        """None when allowed (and counted); else the whole seconds until the client may ask again."""
        if self.per_window <= 0:
            return None
        now = time.monotonic()
        with self.lock:
            if len(self.seen) > MAX_CLIENTS:
                self.seen = {k: v for k, v in self.seen.items() if v and now - v[-1] < self.window}
            times = self.seen.setdefault(client, collections.deque())
            while times and now - times[0] >= self.window:
                times.popleft()
            if len(times) >= self.per_window:
                return max(1, math.ceil(times[0] + self.window - now))
            times.append(now)
            return None


# -- CSRF ------------------------------------------------------------------------------------------------

def csrf_token(request: Request) -> str:
    """This session's token (made on first use)."""
    session = request.session
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


class _LazyToken:
    """`{{ csrf_token }}` or `{{ csrf_token() }}`: a page without a form sets no session cookie."""

    def __init__(self, request: Request):
        self.request = request

    def __call__(self) -> str:
        return csrf_token(self.request)

    def __str__(self) -> str:
        return csrf_token(self.request)

    def __html__(self) -> str:
        return str(escape(csrf_token(self.request)))


async def require_csrf(request: Request) -> None:
    """FastAPI dependency: a state-changing request must echo the session's token (form field
    `csrf_token` or header `X-CSRF-Token`), else 403."""
    if request.method not in UNSAFE_METHODS:
        return
    expected = _session(request).get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            sent = (await request.form()).get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not secrets.compare_digest(sent, str(expected)):
        raise WebError(403, "csrf")


# -- rendering -------------------------------------------------------------------------------------------

def render(request: Request, template_name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """Render a page in the request's language; `?lang=` also sets the language cookie."""
    lang = language_of(request)
    env = environment(lang)
    token = _LazyToken(request)
    page = {
        "request": request,
        "lang": lang,
        "_": env.globals["gettext"],
        "gettext": env.globals["gettext"],
        "ngettext": env.globals["ngettext"],
        "csrf_token": token,
        "csrf_field": lambda: Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{token.__html__()}">'),
        "pack": service_of(request).pack,
        "zone": ZoneInfo(service_of(request).pack.calendar.timezone),
        "current_subject": current_subject(request),
        "current_operator": current_operator(request),
        "path": request.url.path,
        "lang_url": lambda code: _lang_url(request, code),
    }
    page.update(context)
    html = env.get_template(template_name).render(page)
    response = HTMLResponse(html, status_code=status_code)
    if request.query_params.get("lang") in LANGUAGES and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language, Cookie"
    return response


def _lang_url(request: Request, code: str) -> str:
    """The same page in another language (other query parameters kept)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    params.append(("lang", code))
    from urllib.parse import urlencode

    return f"{request.url.path}?{urlencode(params)}"
