"""Credit report PDFs: content, fonts, languages, masking, verification codes, on SQLite and PostgreSQL.

The PDFs are read back with poppler's `pdftotext` and `pdffonts` (Debian's poppler-utils):
WeasyPrint draws Chinese as empty boxes, silently, when it has no CJK font, so only the
text extracted from the PDF and its embedded fonts show that the report is readable.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from worlds import CLEAN_REP, FIRM_CLEAN, FIRM_DEBTOR, FIRM_SERIOUS, NAMES, PERSON, REP, build_world
from xinyong.domain.identifiers import is_valid_resident_id, mask_person_id
from xinyong.domain.pack import Pack, load_pack
from xinyong.services.publication import report as R
from xinyong.services.resolution.entities import EntityNotFound, entity_file
from xinyong.services.operations.integrity import checkpoint
from xinyong.services.publication.report import ReportError, issue_report, verify_report
from xinyong.store import tables as t
from xinyong.store.db import get_setting, open_engine

AS_OF = dt.date(2025, 10, 20)


# -- reading PDFs back -----------------------------------------------------------------------------

def poppler(tool: str, pdf: bytes, folder: Path, *args: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        message = f"{tool} not found: apt-get install poppler-utils"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    path = folder / f"report-{len(list(folder.glob('report-*.pdf')))}.pdf"
    path.write_bytes(pdf)
    extra = ["-enc", "UTF-8", str(path), "-"] if tool == "pdftotext" else [str(path)]
    return subprocess.run([exe, *args, *extra], capture_output=True, text=True, check=True).stdout


def text_of(pdf: bytes, folder: Path) -> str:
    return poppler("pdftotext", pdf, folder)


def pages_of(pdf: bytes, folder: Path) -> list[str]:
    return text_of(pdf, folder).split("\f")[:-1]  # pdftotext ends every page with a form feed


def fonts_of(pdf: bytes, folder: Path) -> list[dict[str, str]]:
    """pdffonts' table: name, type, encoding, emb, sub, uni."""
    lines = poppler("pdffonts", pdf, folder).splitlines()[2:]
    return [dict(zip(("name", "emb", "sub", "uni"), (line.split()[0], *line.split()[-5:-2]), strict=True))
            for line in lines]


def shows(text: str, expected: str) -> bool:
    """`expected` in the extracted text, wherever the layout broke its lines."""
    return re.sub(r"\s+", "", expected) in re.sub(r"\s+", "", text)


def person_ids(text: str) -> list[str]:
    return [m for m in re.findall(r"\d{17}[\dXx]", text) if is_valid_resident_id(m.upper())]


# -- the world -------------------------------------------------------------------------------------

@pytest.fixture
def world(cli, tmp_path):
    build_world(cli, tmp_path)
    engine = open_engine(cli.url)
    with engine.connect() as c:
        pack = load_pack(get_setting(c, "pack") or "cn")
    try:
        yield SimpleNamespace(cli=cli, engine=engine, pack=pack, folder=tmp_path)
    finally:
        engine.dispose()


def test_reports_in_three_languages_with_chinese_text_in_an_embedded_font(world):
    zh = issue_report(world.engine, world.pack, FIRM_SERIOUS, "zh", AS_OF)
    assert zh.pdf.startswith(b"%PDF-") and zh.pages == 1 and len(zh.code) == 16
    text = text_of(zh.pdf, world.folder)
    shown = R.format_code(zh.code)
    for expected in (NAMES[FIRM_SERIOUS], FIRM_SERIOUS, "严重违法失信名单", "黑名单", "2025年10月12日",
                     "《市场监督管理严重违法失信名单管理办法》", "行政处罚信息", "沪市监罚〔2025〕1号", "吊销许可证",
                     "2026年6月3日", "中国全国公共信用信息", "公共信用信息报告", "2025年10月20日", "孙一",
                     "一、主体身份信息", "二、名单状态", "三、公示信息", f"/verify/{shown}", "第 1 页，共 1 页"):
        assert shows(text, expected), expected
    fonts = fonts_of(zh.pdf, world.folder)
    ours = [f for f in fonts if "Xinyong-Sans-SC" in f["name"]]
    assert ours and all(f["emb"] == "yes" and f["sub"] == "yes" and f["uni"] == "yes" for f in ours), fonts
    assert all(f["emb"] == "yes" for f in fonts), fonts

    en = issue_report(world.engine, world.pack, FIRM_DEBTOR, "en", AS_OF)
    text = text_of(en.pdf, world.folder)
    for expected in ("Public credit information report", "China national public credit information",
                     "20 October 2025", "1. Identity", "Unified social credit code", "Legal representative",
                     "2. List status", "List of dishonest judgment debtors", "Blacklist", "In force",
                     "3. Public records", "Judgment defaulter", "Verification code", "Page 1 of 1",
                     NAMES[FIRM_DEBTOR], "深圳市南山区人民法院", f"/verify/{R.format_code(en.code)}"):
        assert shows(text, expected), expected
    assert "公共信用信息报告" not in text and "名单状态" not in text

    fr = issue_report(world.engine, world.pack, FIRM_DEBTOR, "fr", AS_OF)
    text = text_of(fr.pdf, world.folder)
    for expected in ("Rapport d'informations publiques de crédit", "20 octobre 2025", "1. Identité",
                     "Représentant légal", "2. Inscriptions sur les listes",
                     "Liste des débiteurs judiciaires défaillants", "Liste noire", "En vigueur",
                     "3. Informations publiques", "Code de vérification", "Page 1 sur 1", NAMES[FIRM_DEBTOR]):
        assert shows(text, expected), expected

    # A clean firm: nothing listed, no public record but its registration; the sections say so.
    clean = text_of(issue_report(world.engine, world.pack, FIRM_CLEAN, "en", AS_OF).pdf, world.folder)
    assert shows(clean, "On the report date the subject is on no public list.")

    # Each issue is stored with its hash; no audit event per download: the next checkpoint seals
    # every issuance since the last one under one Merkle root.
    with world.engine.connect() as c:
        rows = {r.code: r for r in c.execute(select(t.reports))}
        assert not c.execute(select(t.audit_events).where(t.audit_events.c.action == "report.issued")).first()
    assert len(rows) == 4 and all(r.sealed_seq is None for r in rows.values())
    assert rows[zh.code].pdf_sha256 == zh.sha256 and rows[zh.code].pages == 1 and rows[zh.code].language == "zh"
    assert rows[zh.code].as_of == AS_OF
    checkpoint(world.engine)
    with world.engine.connect() as c:
        seals = c.execute(select(t.audit_events).where(t.audit_events.c.action == "reports.sealed")).all()
        sealed = {r.sealed_seq for r in c.execute(select(t.reports))}
    assert len(seals) == 1 and sealed == {seals[0].seq}
    payload = seals[0].payload
    payload = payload if isinstance(payload, dict) else json.loads(payload)
    assert payload["count"] == 4 and len(payload["root"]) == 64
    world.cli("audit", "verify")

    with pytest.raises(ReportError, match="language"):
        issue_report(world.engine, world.pack, FIRM_SERIOUS, "de", AS_OF)
    with pytest.raises(EntityNotFound):
        issue_report(world.engine, world.pack, "91110000000000000X", "zh", AS_OF)


def test_verification_and_no_person_id_number_in_any_report(world):
    person = entity_file(world.engine, PERSON)["key"]  # a person's report is asked for by the opaque key
    with pytest.raises(EntityNotFound):
        issue_report(world.engine, world.pack, PERSON, "zh", AS_OF)
    issued = issue_report(world.engine, world.pack, person, "zh", AS_OF)

    genuine = verify_report(world.engine, issued.code, issued.pdf)
    assert genuine["known"] is True and genuine["unaltered"] is True
    assert genuine["entity"]["name"] == "张三" and genuine["language"] == "zh" and genuine["as_of"] == AS_OF
    assert genuine["entity"]["key"] != PERSON  # an opaque key, never the ID number
    assert genuine["pages"] == issued.pages and genuine["issued_at"].tzinfo is not None
    # as a person types it: grouped, lower case, O for 0 and I/L for 1
    typed = R.format_code(issued.code).lower().replace("0", "o").replace("1", "l")
    assert verify_report(world.engine, typed)["known"] is True
    assert "unaltered" not in verify_report(world.engine, issued.code)

    altered = bytearray(issued.pdf)
    altered[len(altered) // 2] ^= 0x01  # one bit
    assert verify_report(world.engine, issued.code, bytes(altered))["unaltered"] is False
    other = issue_report(world.engine, world.pack, FIRM_SERIOUS, "zh", AS_OF)
    assert verify_report(world.engine, issued.code, other.pdf)["unaltered"] is False
    assert verify_report(world.engine, other.code, other.pdf)["unaltered"] is True

    made_up = R.new_code()
    assert verify_report(world.engine, made_up, issued.pdf) == {"known": False, "code": R.format_code(made_up)}
    assert verify_report(world.engine, "not-a-code")["known"] is False
    assert verify_report(world.engine, "")["known"] is False

    # No report shows a person's ID number unmasked: not the debtor's, nor a legal representative's.
    # (every language for the person; masking does not depend on the language, so one each for the firms)
    texts = {}
    for code, language in ((person, "zh"), (person, "en"), (person, "fr"), (FIRM_DEBTOR, "zh"), (FIRM_DEBTOR, "fr"),
                           (FIRM_CLEAN, "en")):
        pdf = issued.pdf if (code, language) == (person, "zh") else \
            issue_report(world.engine, world.pack, code, language, AS_OF).pdf
        texts[code, language] = text = text_of(pdf, world.folder)
        assert not person_ids(text), (code, language, person_ids(text))
        for number in (PERSON, REP, CLEAN_REP):
            assert number not in text
    assert mask_person_id(PERSON) in texts[person, "zh"]
    assert "失信被执行人名单" in texts[person, "zh"] and "自然人" in texts[person, "zh"]
    assert "Natural person" in texts[person, "en"]


# -- rendering without a store ---------------------------------------------------------------------

def synthetic_file(records: int, note: str = "") -> dict[str, Any]:
    """A public file as entities.public_file returns it, with `records` penalties."""
    return {
        "key": FIRM_SERIOUS, "kind": "enterprise", "verified": True, "status": "存续", "region": "310000",
        "established": dt.date(2010, 1, 5), "name": "上海某某科技有限公司" + note,
        "names": [{"name": "上海某某科技有限公司" + note, "current": True, "valid_from": None, "valid_to": None},
                  {"name": "上海旧名贸易有限公司", "current": False, "valid_from": None, "valid_to": None}],
        "address": "上海市浦东新区某某路1号", "legal_representative": "孙一",
        "identifiers": [{"scheme": "uscc", "value": FIRM_SERIOUS, "verified": True}],
        "listings": [],
        "records": [{
            "record_key": f"samr:沪市监罚〔2025〕{i}号", "version": 1, "category": "penalty",
            "category_title": {"zh": "行政处罚信息", "en": "Administrative penalty", "fr": "Sanction administrative"},
            "authority": "samr", "status": "active", "decision_date": dt.date(2025, 6, 3),
            "publicity_ends": dt.date(2026, 6, 3),
            "fields": {"decision_no": f"沪市监罚〔2025〕{i}号", "penalty_type": "罚款", "fine_amount": 12345.5,
                       "facts": f"当事人（负责人身份证号 {REP}）销售不符合食品安全标准的食品",
                       "decision_date": "2025-06-03"}} for i in range(1, records + 1)],
    }


@lru_cache(maxsize=1)
def cn_pack() -> Pack:
    return load_pack("cn")


def render(file: dict[str, Any], language: str = "zh", code: str = "0123456789ABCDEF") -> tuple[bytes, int]:
    pack = cn_pack()
    context = R.report_context(pack, file, language, AS_OF, code, dt.datetime(2025, 10, 20, 8, tzinfo=dt.timezone.utc))
    return R.render_pdf(R.render_html(context))


def test_every_page_carries_the_code_and_its_number(tmp_path):
    pdf, pages = render(synthetic_file(records=8))
    assert pages >= 2
    texts = pages_of(pdf, tmp_path)
    assert len(texts) == pages
    for number, text in enumerate(texts, start=1):
        assert "0123-4567-89AB-CDEF" in text and "/verify/0123-4567-89AB-CDEF" in text
        assert f"第 {number} 页，共 {pages} 页" in text
        assert "中国全国公共信用信息" in text
    whole = "".join(texts)
    assert "上海旧名贸易有限公司" in whole and "12,345.50 元" in whole
    assert mask_person_id(REP) in whole and not person_ids(whole)  # an ID number inside free text is masked too
    fr = text_of(render(synthetic_file(records=1), "fr")[0], tmp_path)
    assert shows(fr, "12\u202f345,50 CNY") and shows(fr, "Anciennes dénominations")


def test_a_character_no_font_has_is_logged_not_silently_boxed(caplog):
    caplog.set_level(logging.INFO, logger="xinyong.report")
    render(synthetic_file(records=1, note="\U00010000"))
    warnings = [r for r in caplog.records if r.name == "xinyong.report" and r.levelno == logging.WARNING]
    assert warnings and "U+10000" in warnings[0].getMessage()
    caplog.clear()
    render(synthetic_file(records=1))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_hanzi_outside_gb2312_comes_from_the_fallback_font(tmp_path, caplog):
    cjk = [f for f in R.fallback_fonts() if 0x4E02 in f.codepoints]
    if not cjk:
        pytest.skip("no system CJK fallback font (apt-get install fonts-wqy-microhei)")
    assert 0x4E02 not in R.primary_font().codepoints  # 丂: not in GB2312
    caplog.set_level(logging.INFO, logger="xinyong.report")
    pdf, _ = render(synthetic_file(records=1, note="丂"))
    assert "上海某某科技有限公司丂" in text_of(pdf, tmp_path)
    names = [f["name"] for f in fonts_of(pdf, tmp_path)]
    assert any("Xinyong-Sans-SC" in n for n in names) and len(names) >= 2, names
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_subset_font_covers_gb2312_and_the_reports_own_text():
    covered = R.primary_font().codepoints
    gb2312 = [ch for ch in map(chr, range(0x4E00, 0xA000)) if _in_gb2312(ch)]
    assert len(gb2312) == 6763 and all(ord(ch) in covered for ch in gb2312)
    labels = "".join(v for language in R.LABELS.values() for v in language.values())
    pack = cn_pack()
    names = "".join(n for item in (*pack.lists, *pack.categories, *pack.authorities)
                    for n in (item.names.zh, item.names.en, item.names.fr))
    assert not R.missing_characters(labels + names + pack.names.zh + pack.names.fr)
    assert all(ord(ch) in covered for ch in "àâçéèêëîïôùûüÿœæÀÉÈÇŒ«»€№—…“”‘’")


def _in_gb2312(ch: str) -> bool:
    try:
        ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def test_verification_codes():
    codes = {R.new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 16 and set(c) <= set(R.CROCKFORD) for c in codes)
    assert R.format_code("0123456789ABCDEF") == "0123-4567-89AB-CDEF"
    for typed in ("0123-4567-89ab-cdef", " 0123 4567 89AB CDEF ", "O123-4567-89AB-CDEF", "0l23456789abcdef"):
        assert R.normalise_report_code(typed) == "0123456789ABCDEF", typed
    for bad in ("", "0123-4567-89AB-CDE", "0123-4567-89AB-CDEFG", "0123-4567-89AB-CDEU", "%%%%"):
        assert R.normalise_report_code(bad) is None, bad
    assert R.scrub_person_ids(f"见 {PERSON}。") == f"见 {mask_person_id(PERSON)}。"
    assert R.scrub_person_ids(FIRM_SERIOUS) == FIRM_SERIOUS
    assert R.css_string('a"b\\c</style>') == '"a\\000022b\\00005cc\\00003c/style\\00003e"'
    with pytest.raises(ReportError, match="language"):
        issue_report(None, cn_pack(), FIRM_SERIOUS, "de", AS_OF)  # type: ignore[arg-type]
