"""Small helpers the portal and the console share: one-shot messages, form values, uploads."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData, UploadFile

from xinyong.web.common import WebError


def flash(request: Request, kind: str, text: str) -> None:
    """A message shown once, on the next page (kind: good | bad)."""
    request.session.setdefault("flash", [])
    request.session["flash"] = [*request.session["flash"], {"kind": kind, "text": text}][-5:]


def take_flashes(request: Request) -> list[dict[str, str]]:
    if "session" not in request.scope:
        return []
    return request.session.pop("flash", [])


def redirect(url: str) -> RedirectResponse:
    """After a POST: see the result with a GET (303)."""
    return RedirectResponse(url, status_code=303)


def text(form: FormData, name: str, *, max_length: int = 4000) -> str:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile):
        return ""
    value = value.strip()
    if "\x00" in value:
        raise WebError(422, f"{name}: contains a NUL character")
    if len(value) > max_length:
        raise WebError(422, "too_long", field=name, limit=max_length)
    return value


def number(form: FormData | Any, name: str) -> int | None:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile) or not str(value).strip():
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise WebError(422, "not_a_number", field=name) from None


async def uploads(form: FormData, name: str) -> list[tuple[str | None, bytes, str | None]]:
    """Every file sent under `name` as (name, bytes, content type); an empty file input gives none."""
    out = []
    for item in form.getlist(name):
        if isinstance(item, UploadFile):
            data = await item.read()
            if data or item.filename:
                out.append((item.filename, data, item.content_type))
    return out


def download(data: bytes | Iterable[bytes], filename: str, media_type: str) -> Any:
    """A file to save: bytes, or chunks streamed as they come (an export is never whole in memory)."""
    from urllib.parse import quote

    from fastapi.responses import Response, StreamingResponse

    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    response = Response if isinstance(data, bytes) else StreamingResponse
    return response(data, media_type=media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}",
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
