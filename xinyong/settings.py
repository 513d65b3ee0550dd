"""Resource limits, read from the environment (`XINYONG_*`), each with a default fit for one server.

Every limit the system enforces on what it is sent is here, so that an operator finds them in one
place (README, "Limits") and a test keeps that table complete. Values are read when asked for, not
at import: a test or a server started with another environment sees its own values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Setting:
    name: str
    default: float
    meaning: str
    integer: bool = True

    def value(self) -> float:
        raw = os.environ.get(self.name)
        if raw is None or not raw.strip():
            return self.default
        try:
            parsed = float(raw.replace("_", ""))
        except ValueError:
            raise SettingError(f"{self.name}={raw!r} is not a number") from None
        if parsed < 0 or parsed != parsed:
            raise SettingError(f"{self.name}={raw!r} must be zero or more")
        return int(parsed) if self.integer else parsed


class SettingError(ValueError):
    """A limit set to something that is not a non-negative number."""


MAX_WORKBOOK_BYTES = Setting(
    "XINYONG_MAX_WORKBOOK_BYTES", 200 * MIB,
    "Largest uncompressed size of a workbook (XLSX), checked from its zip directory before reading "
    "and counted again while inflating")
MAX_WORKBOOK_ROWS = Setting(
    "XINYONG_MAX_WORKBOOK_ROWS", 1_000_000,
    "Most rows in a workbook's first sheet (its declared dimension before reading, and while reading)")
MAX_WORKBOOK_CELLS = Setting(
    "XINYONG_MAX_WORKBOOK_CELLS", 6_000_000,
    "Most cells in a workbook's sheets, counted while its size is checked, before reading (the "
    "spreadsheet reader holds a whole sheet: ~70 bytes a cell)")
MAX_QUARANTINE_SHARE = Setting(
    "XINYONG_MAX_QUARANTINE_SHARE", 0.9,
    "Share of quarantined rows above which a whole batch is refused (0.9 = 90 %)", integer=False)
QUARANTINE_SHARE_MIN_ROWS = Setting(
    "XINYONG_QUARANTINE_SHARE_MIN_ROWS", 1000,
    "Smallest file (in rows) to which the quarantine share applies")
MAX_NEW_KEYS = Setting(
    "XINYONG_MAX_NEW_KEYS", 200,
    "Most distinct keys a JSON Lines batch may bring; a record adding more is quarantined")
MAX_CELL_CHARS = Setting(
    "XINYONG_MAX_CELL_CHARS", 131_072,
    "Longest cell of an ingested file, in characters (a longer CSV cell refuses the file, a longer "
    "XLSX or JSON cell quarantines its row)")
MAX_BODY_BYTES = Setting(
    "XINYONG_MAX_BODY_BYTES", 64 * MIB,
    "Largest HTTP request body (API and web forms, uploads included); more is refused with 413")
MAX_API_RECORDS = Setting(
    "XINYONG_MAX_API_RECORDS", 10_000,
    "Most records in one `POST /v1/records` call")

STATISTICS_MIN_CELL = Setting(
    "XINYONG_STATISTICS_MIN_CELL", 5,
    "On the public `/statistics` page, counts of objections, repairs, overdue cases, corrections and revocations "
    "under this (and shares of fewer decided cases) are suppressed: they are not public facts")

WEBHOOK_ALLOW_PRIVATE = Setting(
    "XINYONG_WEBHOOK_ALLOW_PRIVATE", 0,
    "1: webhook URLs may point to private, loopback or link-local addresses (tests, a closed network); "
    "0: they are refused when registered and when delivered")
WEBHOOK_MAX_BACKOFF_SECONDS = Setting(
    "XINYONG_WEBHOOK_MAX_BACKOFF_SECONDS", 600,
    "Longest wait between two attempts to deliver a webhook event (the wait doubles from 1 s up to this)")

LIMITS = (MAX_WORKBOOK_BYTES, MAX_WORKBOOK_ROWS, MAX_WORKBOOK_CELLS, MAX_QUARANTINE_SHARE, QUARANTINE_SHARE_MIN_ROWS,
          MAX_NEW_KEYS, MAX_CELL_CHARS, MAX_BODY_BYTES, MAX_API_RECORDS, STATISTICS_MIN_CELL,
          WEBHOOK_ALLOW_PRIVATE, WEBHOOK_MAX_BACKOFF_SECONDS)
