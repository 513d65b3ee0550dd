"""The authority console over real HTTP (uvicorn on a loopback port), on SQLite and PostgreSQL.

Sign-in with an API key (operate or submit scope), a batch upload with progress, its
quarantine and rejects file, the resolution review queue, due process (notice, objections,
repairs) decided with the key as actor and a reason, the dashboard's charts, the audit status.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from websession import WebSession, text_of
from worlds import FIRM_DEBTOR, FIRM_PROPOSED, FIRM_SERIOUS, build_world, serving, write_csv
from xinyong.domain.calendar import pack_today
from xinyong.domain.pack import load_pack
from xinyong.services.lists.due_process import Actor, apply_repair, file_objection
from xinyong.store import tables as t
from xinyong.store.db import open_engine

PENALTY_HEADERS = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "处罚决定日期", "处罚类别", "罚款金额（万元）"]
PENALTIES = [
    ["深圳某某建没工程有限公司", "", "深市监罚〔2026〕9号", "2026-03-03", "罚款", "1"],  # a typo: to review
    ["上海某某科枝有限公司", "", "沪市监罚〔2026〕8号", "2026-03-04", "罚款", "1"],  # a typo: to review
    ["无名公司", "", "京市监罚〔2026〕6号", "2026-13-05", "罚款", "1"],  # no such month: quarantined
    ["", "", "", "2026-03-06", "罚款", "1"],  # no decision number: quarantined
]


@pytest.fixture
def world(cli, tmp_path: Path) -> dict[str, int]:
    return build_world(cli, tmp_path)


def key(cli, authority: str, *scopes: str) -> tuple[str, int]:
    made = json.loads(cli("authority", "key", "create", authority, "--scopes", ",".join(scopes), "--json").stdout)
    return made["key"], made["id"]


def console(base: str, secret: str) -> WebSession:
    web = WebSession(base)
    web.get("/console")
    page = web.post("/console/sign-in", {"api_key": secret})
    assert page.status_code == 200 and page.url.path == "/console", text_of(page.text)[:400]
    return web


def audit_actions(db_url: str) -> list[tuple[str, str, str | None]]:
    engine = open_engine(db_url)
    a = t.audit_events.c
    with engine.connect() as c:
        rows = [tuple(r) for r in c.execute(select(a.actor, a.action, a.reason).order_by(a.seq))]
    engine.dispose()
    return rows


def listing_state(db_url: str, listing_id: int) -> str:
    engine = open_engine(db_url)
    with engine.connect() as c:
        state = c.execute(select(t.listings.c.state).where(t.listings.c.id == listing_id)).scalar_one()
    engine.dispose()
    return state


def test_sign_in_takes_an_operate_or_submit_key(cli, world, db_url: str) -> None:
    screen_key, _ = key(cli, "samr", "screen")
    submit_key, submit_id = key(cli, "samr", "submit:penalty")
    operate_key, operate_id = key(cli, "ndrc", "operate")
    with serving(db_url) as base:
        web = WebSession(base)
        assert web.get("/console/review").url.path == "/console"  # signed out
        page = web.get("/console")
        assert 'type="password"' in page.text and 'for="api_key"' in page.text
        assert web.post("/console/sign-in", {"api_key": operate_key}, csrf=False).status_code == 403
        refused = web.post("/console/sign-in", {"api_key": screen_key})
        assert refused.status_code == 401 and "neither the operate nor a submit scope" in refused.text
        assert web.post("/console/sign-in", {"api_key": "xy_nothing"}).status_code == 401

        submitter = console(base, submit_key)
        page = submitter.get("/console")
        assert 'href="/console/upload"' in page.text and 'href="/console/review"' not in page.text
        for path in ("/console/review", "/console/listings", "/console/objections", "/console/repairs"):
            assert submitter.get(path).status_code == 403, path

        operator = console(base, operate_key)
        page = operator.get("/console")
        assert f"ndrc/key{operate_id}" in page.text and 'href="/console/upload"' not in page.text
        assert operator.get("/console/upload").status_code == 403  # ndrc may submit nothing with this key
        cli("authority", "key", "revoke", str(operate_id))
        assert operator.get("/console/listings").url.path == "/console"  # a revoked key ends the session
        operator.get("/console")
        assert operator.post("/console/sign-in", {"api_key": operate_key}).status_code == 401
        submitter.post("/console/sign-out")
        assert submitter.get("/console/batches").url.path == "/console"

        # the dashboard and the audit status (a fresh key of the centre)
        web = console(base, key(cli, "ndrc", "operate")[0])
        page = web.get("/console")
        assert page.text.count("<h1") == 1
        for chart in ("chart-records", "chart-listings"):
            svg = re.search(rf'<svg[^>]*id="{chart}"[^>]*>', page.text).group(0)
            assert 'role="img"' in svg and "aria-labelledby" in svg
        assert "<script" not in page.text.split("<main", 1)[1]  # charts drawn on the server
        body = text_of(page.text)
        assert "Aug 2025" in body and "Jun 2025" in body  # months of the world's decisions, in the page's language
        audit = web.get("/console/audit")
        assert 'data-intact="true"' in audit.text and "console.signed_in" in audit.text

        engine = open_engine(db_url)
        with engine.begin() as c:  # someone edits an event in the database
            c.execute(update(t.audit_events).where(t.audit_events.c.seq == 2).values(actor="mallory"))
        engine.dispose()
        assert 'data-intact="false"' in web.get("/console/audit").text
    signed = [actor for actor, action, _ in audit_actions(db_url) if action == "console.signed_in"]
    assert signed[:2] == [f"samr/key{submit_id}", f"ndrc/key{operate_id}"] and len(signed) == 3


def _wait_for_upload(web: WebSession, upload_path: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        fragment = web.get(upload_path + "/progress").text
        state = re.search(r'data-state="(\w+)"', fragment).group(1)
        if state in ("done", "failed"):
            return fragment
        assert 'hx-trigger="every 1s"' in fragment  # the page keeps polling while it runs
        time.sleep(0.1)
    raise AssertionError("the upload did not finish")


def test_upload_quarantine_and_rejects_download(cli, world, db_url: str, tmp_path: Path) -> None:
    submit_key, submit_id = key(cli, "samr", "submit:penalty")
    other_key, _ = key(cli, "tax", "submit")
    path = write_csv(tmp_path / "samr-2026-03.csv", PENALTY_HEADERS, PENALTIES)
    with serving(db_url) as base:
        web = console(base, submit_key)
        form = web.get("/console/upload")
        assert re.findall(r'<option value="(\w+)"', form.text) == ["penalty"]  # its key's categories only
        assert 'for="category"' in form.text and 'for="file"' in form.text
        wrong = web.post("/console/upload", {"category": "registration"},
                         files={"file": (path.name, path.read_bytes(), "text/csv")})
        assert wrong.status_code == 422
        page = web.post("/console/upload", {"category": "penalty"},
                        files={"file": (path.name, path.read_bytes(), "text/csv")})
        assert re.fullmatch(r"/console/uploads/[0-9a-f]{32}", page.url.path)
        assert "<progress" in page.text
        fragment = _wait_for_upload(web, page.url.path)
        assert 'data-state="done"' in fragment and "hx-trigger" not in fragment
        batch_id = int(re.search(r'href="/console/batches/(\d+)"', fragment).group(1))
        assert "4 rows, 2 accepted, 2 quarantined" in text_of(fragment)

        page = web.get(f"/console/batches/{batch_id}")
        assert page.status_code == 200 and "samr-2026-03.csv" in page.text
        rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td><td>([^<]+)</td></tr>", page.text)
        assert [int(r[0]) for r in rows] == [4, 5]
        download = web.get(f"/console/batches/{batch_id}/rejects.csv")
        assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
        assert f"batch-{batch_id}-rejects.csv" in download.headers["content-disposition"]
        assert download.content.startswith("\ufeff".encode())
        table = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
        assert table[0] == PENALTY_HEADERS + ["原始行 row", "问题字段 field", "原因 reason"]
        assert [r[:6] for r in table[1:]] == PENALTIES[2:]
        assert [r[6] for r in table[1:]] == ["4", "5"] and all(r[8] for r in table[1:])
        # the CLI writes the same file
        cli("batch", "rejects", str(batch_id), "-o", tmp_path / "cli.csv")
        assert (tmp_path / "cli.csv").read_bytes() == download.content

        again = web.post("/console/upload", {"category": "penalty"},
                         files={"file": (path.name, path.read_bytes(), "text/csv")})
        assert f"batch {batch_id}" in text_of(_wait_for_upload(web, again.url.path)).lower()
        # another authority sees neither the batch nor its rejects
        other = console(base, other_key)
        assert other.get(f"/console/batches/{batch_id}").status_code == 404
        assert other.get(f"/console/batches/{batch_id}/rejects.csv").status_code == 404
        assert f"/console/batches/{batch_id}" not in other.get("/console/batches").text
        assert other.get(page.url.path).status_code == 404  # nor its upload
    actors = {actor for actor, action, _ in audit_actions(db_url) if action == "batch.ingested"}
    assert f"samr/key{submit_id}" in actors


def test_review_queue_accept_and_reject(cli, world, db_url: str, tmp_path: Path) -> None:
    cli("ingest", write_csv(tmp_path / "p.csv", PENALTY_HEADERS, PENALTIES[:2]), "--authority", "samr",
        "--category", "penalty")
    cli("resolve")
    operate_key, operate_id = key(cli, "samr", "operate")  # the records' own authority reviews them
    with serving(db_url) as base:
        web = console(base, operate_key)
        page = web.get("/console/review")
        ids = [int(i) for i in re.findall(r'action="/console/review/(\d+)"', page.text)]
        assert len(ids) == 2 and FIRM_DEBTOR in page.text and FIRM_SERIOUS in page.text
        other = console(base, key(cli, "ndrc", "operate")[0])  # another authority: neither sees nor decides them
        assert 'action="/console/review/' not in other.get("/console/review").text
        other.get("/console/review")
        refused = other.post(f"/console/review/{ids[0]}", {"verdict": "accept", "entity": FIRM_DEBTOR,
                                                           "reason": "not mine"})
        assert f"no resolved record {ids[0]} of ndrc" in text_of(refused.text)
        no_reason = web.post(f"/console/review/{ids[0]}", {"verdict": "accept", "entity": FIRM_DEBTOR})
        assert "give a reason" in no_reason.text.lower()
        done = web.post(f"/console/review/{ids[0]}", {"verdict": "accept", "entity": FIRM_DEBTOR,
                                                      "reason": "typo of 建设"})
        assert "linked" in text_of(done.text)
        web.post(f"/console/review/{ids[1]}", {"verdict": "reject", "reason": "not the same firm"})
        assert 'action="/console/review/' not in web.get("/console/review").text
    judged = [(actor, action, reason) for actor, action, reason in audit_actions(db_url)
              if action.startswith("judgement.")]
    assert judged == [(f"samr/key{operate_id}", "judgement.match", "typo of 建设"),
                      (f"samr/key{operate_id}", "judgement.no_match", "not the same firm")]


def test_due_process_decided_in_the_console(cli, world, db_url: str) -> None:
    operate_key, operate_id = key(cli, "ndrc", "operate")
    actor = f"ndrc/key{operate_id}"
    engine = open_engine(db_url)
    pack = load_pack("cn")
    today = pack_today(pack)
    objection = file_objection(engine, pack, listing_id=world[FIRM_SERIOUS], record_key=None, on=today,
                               actor=Actor(f"subject:{FIRM_SERIOUS}", "处罚已撤销"),
                               attachments=[{"name": "a.pdf", "sha256": "0" * 64, "size": 3}])["objection"]
    repair = apply_repair(engine, pack, world[FIRM_DEBTOR], "", [("paid.pdf", b"paid")], today,
                          Actor(f"subject:{FIRM_DEBTOR}"))["repair"]
    engine.dispose()
    with serving(db_url) as base:
        web = console(base, operate_key)
        # a proposed listing: notice served from the console, in the chosen language
        proposed = world[FIRM_PROPOSED]
        page = web.get("/console/listings?state=proposed")
        assert f'href="/console/listings/{proposed}"' in page.text
        page = web.get(f"/console/listings/{proposed}")
        assert 'id="notify-form"' in page.text and 'for="notify-reason"' in page.text
        web.post(f"/console/listings/{proposed}/notify", {"language": "en", "reason": ""})
        assert listing_state(db_url, proposed) == "proposed"  # no reason, no step
        page = web.post(f"/console/listings/{proposed}/notify", {"language": "en", "reason": "served by post"})
        assert listing_state(db_url, proposed) == "notified" and 'data-state="notified"' in page.text

        page = web.get("/console/objections")
        assert f'id="decide-objection-{objection}"' in page.text and "处罚已撤销" in page.text
        assert 'for="reason-o%d"' % objection in page.text
        web.post(f"/console/objections/{objection}", {"decision": "uphold", "reason": ""})
        assert listing_state(db_url, world[FIRM_SERIOUS]) == "under_review"
        page = web.post(f"/console/objections/{objection}", {"decision": "uphold", "reason": "撤销属实",
                                                             "back": f"/console/listings/{world[FIRM_SERIOUS]}"})
        assert page.url.path == f"/console/listings/{world[FIRM_SERIOUS]}"
        assert listing_state(db_url, world[FIRM_SERIOUS]) == "withdrawn" and 'data-state="withdrawn"' in page.text
        twice = web.post(f"/console/objections/{objection}", {"decision": "reject", "reason": "again"})
        assert "already upheld" in twice.text

        page = web.get("/console/repairs")
        assert f'id="decide-repair-{repair}"' in page.text and "paid.pdf" in page.text
        web.post(f"/console/repairs/{repair}", {"decision": "approve", "reason": "已全部履行"})
        assert listing_state(db_url, world[FIRM_DEBTOR]) == "repaired"
    steps = [(a, action, reason) for a, action, reason in audit_actions(db_url) if a == actor]
    assert ("listing.notified" in {s[1] for s in steps} and (actor, "objection.upheld", "撤销属实") in steps
            and (actor, "repair.approved", "已全部履行") in steps)
