"""Anonymous credit reports (issue 16, item 17): limited per client (429 with Retry-After), stored
without one audit event per download, sealed under one Merkle root, and each printing the newest
signed checkpoint of the audit chain."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest
from sqlalchemy import func, select

from worlds import FIRM_CLEAN, FIRM_SERIOUS, build_world, serving
from xinyong.services.operations.integrity import checkpoint
from xinyong.store import tables as t
from xinyong.store.db import open_engine
from xinyong.web.common import ClientRateLimit


def events(engine) -> int:
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(t.audit_events)).scalar_one()


def test_the_limit_counts_per_client_over_a_sliding_minute():
    limit = ClientRateLimit(2, window=60)
    assert limit.wait("10.0.0.1") is None and limit.wait("10.0.0.1") is None
    assert 1 <= limit.wait("10.0.0.1") <= 60
    assert limit.wait("10.0.0.2") is None  # another client has its own count
    assert ClientRateLimit(0).wait("10.0.0.1") is None  # 0: no limit


def test_anonymous_reports_are_limited_and_sealed_not_audited_one_by_one(cli, db_url, tmp_path, monkeypatch):
    build_world(cli, tmp_path)
    monkeypatch.setenv("XINYONG_REPORTS_PER_MINUTE", "3")
    engine = open_engine(db_url)
    with serving(db_url) as base:
        before = events(engine)  # (serve signed a checkpoint as it started)
        answers = [httpx.get(f"{base}/entities/{key}/report.pdf", params={"lang": "en"}, timeout=60)
                   for key in (FIRM_SERIOUS, FIRM_CLEAN, FIRM_SERIOUS, FIRM_CLEAN)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert 1 <= int(answers[3].headers["Retry-After"]) <= 60
        assert "Too many requests" in answers[3].text
        assert events(engine) == before  # downloads do not grow the chain
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(t.reports)).scalar_one() == 3
    sealed = checkpoint(engine)
    with engine.connect() as c:
        seals = c.execute(select(t.audit_events.c.seq, t.audit_events.c.payload)
                          .where(t.audit_events.c.action == "reports.sealed")).all()
    assert len(seals) == 1 and seals[0].payload["count"] == 3 and sealed["seq"] == seals[0].seq
    assert cli("audit", "verify").exit_code == 0
    with engine.begin() as c:  # a report deleted after its seal is missed by the root
        c.execute(t.reports.delete().where(t.reports.c.code == answers[0].headers["X-Report-Code"].replace("-", "")))
    broken = cli("audit", "verify", ok=False)
    assert broken.exit_code == 1 and "differ from the sealed Merkle root" in broken.output
    engine.dispose()

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext is not installed")
    text = subprocess.run(["pdftotext", "-", "-"], input=answers[1].content, capture_output=True,
                          check=True).stdout.decode()
    squeezed = "".join(text.split())
    assert "Signed audit checkpoint" in text and "seq" in text
    assert sealed["fingerprint"] in squeezed  # the key that signed it
