"""The API documentation in a real browser: /docs (Swagger UI) and /redoc (ReDoc) from the vendored
bundles, under the pages' Content-Security-Policy, with no request leaving the server."""

from __future__ import annotations

import pytest

pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright: pip install -e '.[test]'")

from browser import screenshot
from conftest import Cli
from worlds import serving


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("docs")
    cli = Cli(f"sqlite:///{folder / 'store.db'}")
    cli("init")
    with serving(cli.url) as url:
        yield url


# What the policy refuses and the page does without: ReDoc's search worker from a blob: URL (it
# searches on the page's thread instead), the scrollbar rules it writes at load (docs.css has them)
# and its sidebar logo from its CDN (hidden when it does not load).
TOLERATED = ("Creating a worker from 'blob:", "Applying inline style",
             "Loading the image 'https://cdn.redoc.ly/redoc/logo-mini.svg'")


def _watch(page, base: str) -> tuple[list[str], list[str]]:
    """Requests that went anywhere but the server, and the console's CSP complaints."""
    outside: list[str] = []
    refused: list[str] = []

    def left_the_server(request) -> None:
        # ReDoc's sidebar asks for its logo on cdn.redoc.ly: the policy stops it before the network
        if not request.url.startswith((base, "data:", "blob:")) and request.failure not in ("csp", "net::ERR_BLOCKED_BY_CSP"):
            outside.append(f"{request.url} {request.failure}")

    page.on("requestfinished", left_the_server)
    page.on("requestfailed", left_the_server)
    page.on("console", lambda m: refused.append(m.text)
            if "Content Security Policy" in m.text and not m.text.startswith(TOLERATED) else None)
    return outside, refused


@pytest.mark.parametrize("path, operation", [("/docs", ".opblock-summary-path"), ("/redoc", "[data-section-id^='operation']")])
def test_api_docs_list_the_operations_offline_under_the_csp(page, base, path, operation) -> None:
    outside, refused = _watch(page, base)
    answer = page.goto(base + path)
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    page.wait_for_selector(operation, timeout=30_000)
    text = page.locator("body").inner_text()
    for endpoint in ("/v1/screen", "/v1/screen/jobs", "/v1/changes", "/v1/records", "/v1/lists/{code}"):
        assert endpoint in text, endpoint
    assert page.locator(operation).count() >= 10
    screenshot(page, f"api{path.replace('/', '-')}")
    assert outside == [] and refused == []


def test_openapi_and_favicon_served_under_the_same_csp(page, base) -> None:
    spec = page.request.get(base + "/openapi.json")
    assert spec.ok and "/v1/screen" in spec.json()["paths"]
    docs = page.request.get(base + "/docs")
    assert spec.headers["content-security-policy"] == docs.headers["content-security-policy"]
    icon = page.request.get(base + "/favicon.ico")
    assert icon.ok and icon.headers["content-type"] == "image/x-icon" and icon.body()[:4] == b"\0\0\1\0"
