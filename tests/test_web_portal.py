"""The subject portal over real HTTP (uvicorn on a loopback port), on SQLite and PostgreSQL.

One-time credentials (issued by the CLI, redeemed once, expired or revoked ones refused),
the whole file of the signed-in subject and nobody else's, objections with attachments,
credit repair applications, following each case, CSRF and session expiry.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from websession import WebSession, text_of, urls_of
from worlds import FIRM_CLEAN, FIRM_DEBTOR, FIRM_SERIOUS, PERSON, REP, build_world, serving, write_csv
from xinyong.domain.calendar import pack_today
from xinyong.domain.identifiers import mask_person_id
from xinyong.domain.pack import load_pack
from xinyong.services.lists.due_process import Actor, decide_objection, decide_repair
from xinyong.services.publication.subjects import CredentialError, issue_credential, redeem_credential, revoke_credentials
from xinyong.store import tables as t
from xinyong.store.db import open_engine

ID_NUMBER = re.compile(r"\d{17}[\dX]")


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    return tmp_path / "files"  # where conftest's db_url points XINYONG_FILES_DIR


@pytest.fixture
def world(cli, tmp_path: Path) -> dict[str, int]:
    return build_world(cli, tmp_path)


def credential(cli, code: str) -> dict:
    return json.loads(cli("subject", "credential", "create", code, "--json").stdout)


def signed_in(base: str, cli, code: str) -> WebSession:
    web = WebSession(base)
    web.get("/portal")
    page = web.post("/portal/sign-in", {"code": credential(cli, code)["code"]})
    assert page.status_code == 200 and page.url.path == "/portal/file", text_of(page.text)[:500]
    return web


def test_a_credential_signs_in_once(cli, world, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import xinyong.web.common as common

    plain = cli("subject", "credential", "create", FIRM_SERIOUS, "--base-url", "https://credit.example.cn/").stdout
    link = re.search(r"https://credit\.example\.cn/portal/sign-in/(\S+)", plain)
    assert link and f"code: {link.group(1)}" in plain
    issued = credential(cli, FIRM_SERIOUS)
    assert issued["link"] == f"http://127.0.0.1:8000/portal/sign-in/{issued['code']}"
    engine = open_engine(db_url)
    with engine.connect() as c:  # only the hash is kept
        rows = [tuple(r) for r in c.execute(select(t.subject_credentials))]
    assert len(rows) == 2 and not any(issued["code"] in str(v) for row in rows for v in row)
    assert hashlib.sha256(issued["code"].encode()).hexdigest() in {r[2] for r in rows}

    with serving(db_url) as base:
        web = WebSession(base)
        assert web.get("/portal/file").url.path == "/portal"  # signed out: to the sign-in page
        refused = web.post("/portal/sign-in", {"code": "not-a-code"})
        assert refused.status_code == 401 and "Unknown sign-in code" in refused.text
        # the link only fills in the form: following it does not use the credential up
        for _ in range(2):
            page = web.get(f"/portal/sign-in/{issued['code']}")
            assert page.status_code == 200 and page.headers["referrer-policy"] == "no-referrer"
        page = web.post("/portal/sign-in", {"code": issued["code"]})
        assert page.url.path == "/portal/file" and "上海某某科技有限公司" in page.text
        again = WebSession(base)
        again.get("/portal")
        used = again.post("/portal/sign-in", {"code": issued["code"]})
        assert used.status_code == 401 and "already used" in used.text
        # the used link says so at once, in the page's language, and never "ready to use"
        link_again = again.get(f"/portal/sign-in/{issued['code']}?lang=zh")
        assert link_again.status_code == 401 and "此登录码已于" in link_again.text
        assert "ready to use" not in link_again.text
        # the session cookie lives 30 idle minutes; a sign-in at most SIGN_IN_SECONDS
        cookie = next(c for c in web.client.cookies.jar if c.name == common.SESSION_COOKIE)
        assert cookie.expires is not None and cookie.expires - time.time() <= common.SESSION_SECONDS + 5
        lasts = common.SIGN_IN_SECONDS
        monkeypatch.setattr(common, "SIGN_IN_SECONDS", 0)  # (the server runs in this process)
        time.sleep(0.01)
        assert web.get("/portal/file").url.path == "/portal"
        monkeypatch.setattr(common, "SIGN_IN_SECONDS", lasts)
        # signing out ends the session
        web = WebSession(base)
        web.get("/portal")
        assert web.post("/portal/sign-in", {"code": credential(cli, FIRM_SERIOUS)["code"]}).url.path == "/portal/file"
        web.post("/portal/sign-out")
        assert web.get("/portal/file").url.path == "/portal"
        # in three languages
        for lang, words in (("zh", ("登录码", "登录查看我的信用档案")), ("en", ("Sign-in code", "Sign in to your file")),
                            ("fr", ("Code de connexion", "Connexion à votre dossier"))):
            page = web.get("/portal", params={"lang": lang})
            assert page.headers["content-language"] == lang
            assert all(w in page.text for w in words), lang
            assert page.text.count("<h1") == 1 and 'for="code"' in page.text

    short = issue_credential(engine, FIRM_SERIOUS, valid_hours=0.0001)  # 0.36 s
    time.sleep(0.5)
    with pytest.raises(CredentialError, match="expired"):
        redeem_credential(engine, short)
    secret = issue_credential(engine, FIRM_SERIOUS)
    assert revoke_credentials(engine, FIRM_SERIOUS) == 3  # every unused one: the CLI's text, short, secret
    with pytest.raises(CredentialError, match="revoked"):
        redeem_credential(engine, secret)
    assert "no entity" in cli("subject", "credential", "create", "91000000000000000X", ok=False).output
    with engine.connect() as c:
        actions = [a for a, in c.execute(select(t.audit_events.c.action).order_by(t.audit_events.c.seq))]
    assert actions.count("subject.credential_issued") == 5 and actions.count("subject.signed_in") == 2
    engine.dispose()


def test_the_whole_file_of_the_subject_and_no_one_else(cli, world, db_url: str, tmp_path: Path) -> None:
    grades = write_csv(tmp_path / "grades.csv", ["统一社会信用代码", "纳税人名称", "纳税信用级别", "评价年度"], [
        [FIRM_DEBTOR, "深圳某某建设工程有限公司", "C", "2024"],
        [FIRM_CLEAN, "北京某某餐饮管理有限公司", "B", "2024"],
    ])
    cli("ingest", grades, "--authority", "tax", "--category", "tax_grade")
    cli("resolve")
    with serving(db_url) as base:
        public = WebSession(base).get(f"/v1/entities/{FIRM_DEBTOR}").json()
        assert "tax_grade" not in {r["category"] for r in public["records"]}  # shared: not public
        web = signed_in(base, cli, FIRM_DEBTOR)
        page = web.get("/portal/file")
        body = text_of(page.text)
        assert "Tax credit grade" in body and f"tax:2024#{FIRM_DEBTOR}" in body
        assert "北京某某餐饮" not in body  # another entity's shared record
        # the legal representative's ID number: masked, even in the subject's own file
        assert REP not in page.text and mask_person_id(REP) in page.text
        assert world[PERSON] and f'data-listing="{world[PERSON]}"' not in page.text
        assert f'data-listing="{world[FIRM_DEBTOR]}"' in page.text
        for url in urls_of(page.text):
            assert not ID_NUMBER.search(url), url
        # another subject's listing or record cannot be reached by changing a number in the URL
        assert web.get(f"/portal/object?listing={world[FIRM_SERIOUS]}").status_code == 404
        assert web.get(f"/portal/repair?listing={world[PERSON]}").status_code == 404
        other = web.post("/portal/object", {"listing": str(world[FIRM_SERIOUS]), "reason": "not mine"})
        assert other.status_code == 404

        person = signed_in(base, cli, PERSON)
        page = person.get("/portal/file")
        assert page.status_code == 200 and "张三" in page.text
        for url in urls_of(page.text):
            assert PERSON not in url and not ID_NUMBER.search(url), url
        # an objection to a record puts every listing built on it under review
        record_id = int(re.search(r'href="/portal/object\?record=(\d+)"', page.text).group(1))
        assert web.get(f"/portal/object?record={record_id}").status_code == 404  # not the firm's record
        assert person.get(f"/portal/object?record={record_id}").status_code == 200
        done = person.post("/portal/object", {"record": str(record_id), "reason": "该案已执行完毕"})
        assert done.status_code == 200 and "/portal/cases/objection/" in str(done.url)
        page = person.get("/portal/file")
        assert f"/portal/object?record={record_id}" not in page.text
        assert f'<tr id="listing-{world[PERSON]}"' in page.text and 'data-state="under_review"' in page.text


def test_objection_with_attachments_is_followed_to_its_decision(cli, world, db_url: str, files_dir: Path) -> None:
    listing = world[FIRM_SERIOUS]
    with serving(db_url) as base:
        web = signed_in(base, cli, FIRM_SERIOUS)
        form = web.get(f"/portal/object?listing={listing}")
        assert form.status_code == 200 and 'for="reason"' in form.text and 'for="attachments"' in form.text
        # no CSRF token, no objection
        forged = web.post("/portal/object", {"listing": str(listing), "reason": "x"}, csrf=False)
        assert forged.status_code == 403
        empty = web.post("/portal/object", {"listing": str(listing), "reason": "  "})
        assert empty.status_code == 422 and "reason" in empty.text
        proof = "许可证吊销决定已被复议撤销".encode() * 50
        page = web.post("/portal/object", {"listing": str(listing), "reason": "处罚决定已被撤销"},
                        files=[("attachments", ("复议决定书.pdf", proof, "application/pdf")),
                               ("attachments", ("receipt.txt", b"paid", "text/plain"))])
        assert page.status_code == 200 and re.fullmatch(r"/portal/cases/objection/\d+", page.url.path)
        objection = int(page.url.path.rsplit("/", 1)[1])
        body = text_of(page.text)
        assert "复议决定书.pdf" in body and "receipt.txt" in body
        assert 'data-state="open"' in page.text and 'data-state="under_review"' in page.text
        digest = hashlib.sha256(proof).hexdigest()
        assert (files_dir / digest[:2] / digest).read_bytes() == proof
        download = web.get(f"/portal/files/{digest}")
        assert download.status_code == 200 and download.content == proof
        assert "attachment;" in download.headers["content-disposition"]
        # another subject cannot fetch it
        assert signed_in(base, cli, FIRM_DEBTOR).get(f"/portal/files/{digest}").status_code == 404

        engine = open_engine(db_url)
        with engine.connect() as c:
            stored = c.execute(select(t.objection_attachments.c.name, t.objection_attachments.c.size)
                               .where(t.objection_attachments.c.objection_id == objection)
                               .order_by(t.objection_attachments.c.id)).all()
            filed_by = c.execute(select(t.objections.c.filed_by).where(t.objections.c.id == objection)).scalar()
        assert [tuple(s) for s in stored] == [("复议决定书.pdf", len(proof)), ("receipt.txt", 4)]
        assert filed_by == f"subject:{FIRM_SERIOUS}"
        # the file page no longer offers an objection to the listing while it is reviewed
        assert f"/portal/object?listing={listing}" not in web.get("/portal/file").text

        decide_objection(engine, load_pack("cn"), objection, True, pack_today(load_pack("cn")), Actor("samr/key1", "撤销属实"))
        engine.dispose()
        case = web.get(f"/portal/cases/objection/{objection}")
        assert 'data-state="upheld"' in case.text and 'data-state="withdrawn"' in case.text and "撤销属实" in case.text
        cases = web.get("/portal/cases")
        assert f"/portal/cases/objection/{objection}" in cases.text


def test_credit_repair_application_is_followed_to_its_decision(cli, world, db_url: str) -> None:
    listing = world[FIRM_DEBTOR]  # court_defaulters: no waiting period; evidence required
    with serving(db_url) as base:
        web = signed_in(base, cli, FIRM_DEBTOR)
        assert f"/portal/repair?listing={listing}" in web.get("/portal/file").text
        form = web.get(f"/portal/repair?listing={listing}")
        assert 'for="commitment"' in form.text and 'for="evidence"' in form.text
        missing = web.post("/portal/repair", {"listing": str(listing), "commitment": ""})
        assert missing.status_code == 422 and "evidence" in text_of(missing.text)
        page = web.post("/portal/repair", {"listing": str(listing), "commitment": "本公司已全部履行。"},
                        files=[("evidence", ("执行完毕证明.pdf", b"%PDF-1.4 paid in full", "application/pdf"))])
        assert re.fullmatch(r"/portal/cases/repair/\d+", page.url.path)
        repair = int(page.url.path.rsplit("/", 1)[1])
        assert 'data-state="pending"' in page.text and "执行完毕证明.pdf" in page.text
        twice = web.post("/portal/repair", {"listing": str(listing), "commitment": "again"},
                         files=[("evidence", ("x.txt", b"x", "text/plain"))])
        assert twice.status_code == 422 and "pending" in twice.text

        engine = open_engine(db_url)
        decide_repair(engine, load_pack("cn"), repair, True, pack_today(load_pack("cn")), Actor("court/key1", "已履行"))
        engine.dispose()
        case = web.get(f"/portal/cases/repair/{repair}")
        assert 'data-state="approved"' in case.text and 'data-state="repaired"' in case.text
        assert f"/portal/repair?listing={listing}" not in web.get("/portal/file").text


def test_every_portal_and_console_message_is_translated() -> None:
    """Each message of the portal's and the console's templates and code has a zh and a fr
    translation (in any domain of the catalogues: `portal`, W1's `messages`, `due`...), with the same
    placeholders."""
    from babel.messages.extract import extract_python
    from babel.messages.pofile import read_po
    from jinja2.ext import babel_extract

    root = Path(__file__).resolve().parent.parent / "xinyong"
    wanted: set[str] = set()
    for template in sorted((root / "templates" / "web").glob("*/**/*.html")):
        if template.parent.name not in ("portal", "console"):
            continue
        with template.open("rb") as handle:
            for _line, _func, message, _comments in babel_extract(handle, ("_", "gettext"), [], {"trim_blocks": "true"}):
                wanted.add(message if isinstance(message, str) else message[0])
    for module in ("portal.py", "console.py"):
        with (root / "web" / module).open("rb") as handle:
            for _line, _func, message, _comments in extract_python(handle, {"_": (2,)}, [], {}):
                if isinstance(message, tuple) and len(message) > 1 and isinstance(message[1], str):
                    wanted.add(message[1])
    assert len(wanted) > 200
    for lang in ("zh", "fr"):
        known: dict[str, str] = {}
        for po in sorted((root / "locales" / lang / "LC_MESSAGES").glob("*.po")):
            with po.open("rb") as handle:
                known.update({m.id: m.string for m in read_po(handle) if m.id and m.string})
        missing = sorted(m for m in wanted if m not in known)
        assert not missing, f"{lang}: untranslated {missing}"
        for message in wanted:
            assert sorted(re.findall(r"%\(\w+\)s", message)) == sorted(re.findall(r"%\(\w+\)s", known[message])), \
                (lang, message)
