"""The web portal: public pages, the subject portal and the authority console, beside the API.

`mount(app, service)` is called at the end of `api.app.create_app`: server-side sessions, static files,
security headers, HTML error pages and the three routers.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from xinyong.web.common import STATIC, ClientRateLimit, ServerSessions, WebError, render, reports_per_minute

log = logging.getLogger("xinyong.web")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'self'",
}

# Not pages, but read by the docs pages and opened by people: served under the pages' headers.
SAME_CSP_PATHS = frozenset({"/openapi.json"})


class SecurityHeaders:
    """Security headers on HTML answers, added as the response starts.

    Plain ASGI rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs every
    request, API calls included, through an extra task and memory streams, and a request body
    read through it costs more again (measured: +0.2 ms a ping, +0.45 ms a screening).
    """

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html") or scope["path"] in SAME_CSP_PATHS:
                    for name, value in SECURITY_HEADERS.items():
                        headers.setdefault(name, value)
                    if scope.get("session"):  # set by SessionMiddleware, inside this one
                        headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _wants_page(request: Request) -> bool:
    return not request.url.path.startswith("/v1/") and "text/html" in request.headers.get("accept", "")


def _answer_browsers_with_pages(app: FastAPI, kind: type[Exception]) -> None:
    api_handler = app.exception_handlers.get(kind)

    async def handler(request: Request, exc: Exception) -> Response:
        if _wants_page(request) or api_handler is None:
            status = getattr(exc, "status_code", 422)
            message = "not_found" if status == 404 else ""
            return render(request, "web/error.html", {"status": status, "message": message}, status)
        return await api_handler(request, exc)

    app.add_exception_handler(kind, handler)


def mount(app: FastAPI, service: Any, *, https_only: bool = False) -> None:
    from xinyong.web import console, portal, public

    app.add_middleware(ServerSessions, engine=service.engine, https_only=https_only)
    service.report_limit = ClientRateLimit(reports_per_minute())

    app.add_middleware(SecurityHeaders)  # added last: outermost, around the session middleware

    @app.exception_handler(WebError)
    async def web_error(request: Request, exc: WebError) -> Response:
        return render(request, "web/error.html", {"status": exc.status, "message": exc.message, "params": exc.params},
                      exc.status)

    # A browser asking for a page that does not exist, or with a malformed query, gets a page;
    # API clients (and /v1/) keep the API's JSON errors.
    for kind in (StarletteHTTPException, RequestValidationError):
        _answer_browsers_with_pages(app, kind)

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    _api_docs(app)
    for router in (public.router, portal.router, console.router):  # pages: not part of the API's contract
        app.include_router(router, include_in_schema=False)


def _api_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc from the vendored bundles in static/docs: nothing is fetched from
    outside the server, and the pages' Content-Security-Policy holds (no inline script)."""
    from xinyong.web.common import environment

    def page(name: str, **context: str) -> HTMLResponse:
        template = environment("en").get_template(f"web/docs/{name}.html")
        return HTMLResponse(template.render(title=app.title, openapi_url=app.openapi_url, **context))

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return page("swagger")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        # ReDoc styles itself with <style> elements it writes (styled-components): it marks them with
        # this response's nonce, which the policy admits beside 'self'. Scripts stay 'self' only.
        nonce = secrets.token_urlsafe(18)
        answer = page("redoc", nonce=nonce)
        answer.headers["Content-Security-Policy"] = SECURITY_HEADERS["Content-Security-Policy"].replace(
            "style-src 'self'", f"style-src 'self' 'nonce-{nonce}'")
        return answer

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon",
                            headers={"Cache-Control": "public, max-age=86400"})
