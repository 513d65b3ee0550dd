"""Helpers for the browser tests: screenshots of the pages into <repo>/screenshots/ (git-ignored)."""

from __future__ import annotations

import re
from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"


def screenshot(page, name: str) -> Path:
    """Save a full-page PNG as screenshots/<name>.png and return its path."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path
