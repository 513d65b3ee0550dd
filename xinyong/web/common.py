"""What every web page shares: templates, languages, sessions, CSRF.

Pages are server-rendered Jinja2 (with HTMX for partial updates; every page works without
JavaScript). One Jinja2 environment per UI language holds that language's catalogue, merged
from every Babel domain found under `xinyong/locales` and compiled from the .po files at
start, so a clean clone needs no build step.

Sessions are Starlette's signed cookie: the secret is generated once and kept in the
`settings` table (`web_secret`), so restarts and several workers agree; a session expires
after `SESSION_SECONDS` without a request, and a sign-in after `SIGN_IN_SECONDS` whatever
happens. Every state-changing form carries a per-session CSRF token (`require_csrf`).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import secrets
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup, escape

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
    """An error answered with an HTML page (the API answers JSON; pages answer pages)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


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
    env.filters["number"] = lambda n: f"{n:,}" if isinstance(n, int) else n
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
def format_day(context, day: Any) -> str:
    if day is None or day == "":
        return ""
    if isinstance(day, str):
        try:
            day = dt.date.fromisoformat(day[:10])
        except ValueError:
            return day
    if isinstance(day, dt.datetime):
        day = day.date()
    return babel_format_date(day, format="medium", locale=_locale(context.get("lang", DEFAULT_LANGUAGE)))


@lru_cache(maxsize=None)
def _locale(lang: str) -> Locale:
    try:
        return Locale.parse({"zh": "zh_Hans_CN", "en": "en_GB", "fr": "fr_FR"}.get(lang, lang))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


# -- language --------------------------------------------------------------------------------------------

def language_of(request: Request) -> str:
    """`?lang=` first, then the `lang` cookie, then the browser's Accept-Language, then Chinese."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGUAGES:
        return cookie
    return negotiate(request.headers.get("accept-language", ""))


def negotiate(header: str) -> str:
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
    return min(choices)[2] if choices else DEFAULT_LANGUAGE


# -- the service, sessions and sign-in ---------------------------------------------------------------

def service_of(request: Request) -> Any:
    """The app's `Service` (engine, pack, screening index, keys)."""
    return request.app.state.service


def _session(request: Request) -> dict[str, Any]:
    return request.session if "session" in request.scope else {}


def _fresh_sign_in(request: Request) -> None:
    """A sign-in starts a new session (a new CSRF token; nothing from before survives)."""
    session = request.session
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
    _session(request).clear()


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
