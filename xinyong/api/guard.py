"""What every request passes before any endpoint reads it: body size, NUL characters, API key
before a submission's body, and redirects that never echo the Host header.

A pure ASGI middleware, outermost: it sees the request before FastAPI reads or parses a body
(FastAPI parses a body before it runs an endpoint's dependencies, so a key checked there would
come after the parsing).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import orjson

from xinyong import settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# API bodies of these types are text a field of which may hold a NUL; uploads (multipart) are
# files, checked cell by cell where they are read.
_TEXT_BODIES = ("application/json", "application/x-www-form-urlencoded")
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)


class BodyTooLarge(Exception):
    pass


def has_nul(raw_query: bytes) -> bool:
    return b"\x00" in raw_query or b"\x00" in unquote_to_bytes(raw_query)


class RequestGuard:
    def __init__(self, app: Any, *, key_known: Callable[[str], bool],
                 submission_paths: tuple[str, ...] = ("/v1/records",)):
        self.app = app
        self.key_known = key_known
        self.submission_paths = submission_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        api = path.startswith("/v1/")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        # Pages check their own query strings (`web.common.reject_nul`), to answer in the page's language.
        if api and ("\x00" in path or has_nul(scope.get("query_string", b""))):
            await _refuse(send, api, 422, "invalid_request", "the request holds a NUL character, which no text may "
                                                             "contain")
            return
        if api and path in self.submission_paths and scope.get("method") == "POST":
            key = headers.get("x-api-key")
            if not key:
                await _refuse(send, True, 401, "missing_key", "send your API key in the X-API-Key header")
                return
            if not self.key_known(key):
                await _refuse(send, True, 401, "invalid_key", "unknown or revoked API key")
                return
        limit = settings.MAX_BODY_BYTES.value()
        too_large = f"the request body is larger than {limit} bytes ({settings.MAX_BODY_BYTES.name})"
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, api, 413, "too_large", too_large)
            return
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if api and content_type in _TEXT_BODIES and scope.get("method") in ("POST", "PUT", "PATCH"):
            try:
                body = await _read_all(receive, limit)
            except BodyTooLarge:
                await _refuse(send, api, 413, "too_large", too_large)
                return
            # Submitted records are validated like a file's rows: a NUL quarantines its row, with the reason.
            if path not in self.submission_paths and (
                    _JSON_NUL.search(body) if content_type == "application/json" else has_nul(body)):
                await _refuse(send, api, 422, "invalid_request",
                              "the request holds a NUL character, which no text may contain")
                return
            receive = _replay(body)
        refused = False
        size = 0
        upstream = receive

        async def counted() -> Message:
            """A body streamed to the endpoint (uploads) stops at the limit, whatever Content-Length said:
            the client is answered 413 at once, and the endpoint sees a disconnected client."""
            nonlocal refused, size
            message = await upstream()
            if message["type"] == "http.request" and not refused:
                size += len(message.get("body", b""))
                if size > limit:
                    refused = True
                    await _refuse(send, api, 413, "too_large", too_large)
                    return {"type": "http.disconnect"}
            return message

        redirecting = _relative_redirects(send, headers.get("host", ""))

        async def answer(message: Message) -> None:
            if not refused:  # after a 413, nothing more of the endpoint's answer is sent
                await redirecting(message)

        try:
            await self.app(scope, counted, answer)
        except Exception:
            if not refused:
                raise


async def _read_all(receive: Receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}
    return receive


def _relative_redirects(send: Send, host: str) -> Send:
    """A redirect to this same site (Starlette's trailing-slash redirect is absolute, built from the
    Host header a client chose) is sent as a path: the client's Host never comes back to it."""
    async def guarded(message: Message) -> None:
        if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
            headers = []
            for name, value in message.get("headers", []):
                if name.lower() == b"location":
                    target = urlsplit(value.decode("latin-1"))
                    if target.netloc and target.netloc.lower() == host.lower():
                        value = ((target.path or "/") + (f"?{target.query}" if target.query else "")).encode()
                headers.append((name, value))
            message = {**message, "headers": headers}
        await send(message)
    return guarded


async def _refuse(send: Send, api: bool, status: int, code: str, message: str) -> None:
    if api:
        body = orjson.dumps({"error": {"code": code, "message": message}})
        media = b"application/json"
    else:
        body = message.encode()
        media = b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", media), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
