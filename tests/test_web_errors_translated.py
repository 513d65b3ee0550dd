"""Error pages in the page's language: a console key without the operate scope gets a 403 page that
says why in zh, en or fr (no English sentence on a Chinese page)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from xinyong.api.app import create_app
from xinyong.domain.pack import load_pack
from xinyong.store.db import open_engine


def test_a_403_page_is_translated(cli) -> None:
    key = re.search(r"xy_\S+", cli("authority", "key", "create", "samr", "--scopes", "submit:penalty").stdout).group(0)
    engine = open_engine(cli.url)
    try:
        with TestClient(create_app(engine, load_pack("cn"))) as client:
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console").text).group(1)
            client.post("/console/sign-in", data={"api_key": key, "csrf_token": token})
            pages = {lang: client.get(f"/console/review?lang={lang}") for lang in ("zh", "en", "fr")}
    finally:
        engine.dispose()
    assert all(page.status_code == 403 for page in pages.values())
    assert "此密钥没有" in pages["zh"].text and "lacks" not in pages["zh"].text and "不允许" not in pages["en"].text
    assert "This key lacks the operate scope" in pages["en"].text
    assert "Cette clé n'a pas la portée" in pages["fr"].text.replace("&#39;", "'")
