"""A browser-like HTTP session for the web tests: cookies, redirects, and the CSRF token of the
last page it read, sent back with every form."""

from __future__ import annotations

import re
from typing import Any

import httpx

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class WebSession:
    def __init__(self, base: str, language: str = "en"):
        self.client = httpx.Client(base_url=base, follow_redirects=True, timeout=30,
                                   headers={"Accept-Language": language})
        self.token: str | None = None

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.get(path, **kwargs)
        self._remember(response)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
             files: Any = None, **kwargs: Any) -> httpx.Response:
        data = dict(data or {})
        if csrf:
            assert self.token, "no page with a form was read first"
            data.setdefault("csrf_token", self.token)
        response = self.client.post(path, data=data, files=files, **kwargs)
        self._remember(response)
        return response

    def _remember(self, response: httpx.Response) -> None:
        if response.headers.get("content-type", "").startswith("text/html"):
            found = _TOKEN.search(response.text)
            if found:
                self.token = found.group(1)

    def close(self) -> None:
        self.client.close()


def text_of(html: str) -> str:
    """The page's visible text, roughly: tags dropped, spaces squeezed."""
    import html as html_lib

    body = re.sub(r"<(script|style|head)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def urls_of(html: str) -> list[str]:
    """Every URL a page links to or submits to."""
    return re.findall(r'(?:href|action|src|hx-get|hx-post)="([^"]*)"', html)
