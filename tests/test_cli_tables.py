"""CLI tables written to a pipe or a file keep every character (no `author…` at 80 columns)."""

from __future__ import annotations

import re


def test_tables_are_not_cut_when_piped(cli) -> None:
    created = cli("authority", "key", "create", "samr", "--scopes", "screen,read_restricted,operate,submit:penalty",
                  "--rate", "50", "--burst", "100").stdout
    prefix = re.search(r"(xy_\S+)", created).group(1)[:10]
    cli("authority", "key", "revoke", "1", "--reason", "rotated")
    listed = cli("authority", "key", "list").stdout
    assert listed.count("…") == 1 and f"{prefix}…" in listed  # only the secret's prefix is marked as cut
    assert "operate, read_restricted, screen, submit:penalty" in listed
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", listed)  # the revocation time, whole
