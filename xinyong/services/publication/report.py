"""Credit reports as PDF: issue one for an entity's public file, and verify a presented copy.

A report holds only what any public surface may show (`entities.public_file`): identity,
listings once effective, public records within their publicity period with their public
fields, person ID numbers masked. Each report gets a random verification code, printed on
every page's footer with the path `/verify/{code}`; the store keeps the code, the entity,
the language, the as-of date and the PDF's SHA-256, so `verify_report` can say whether a
copy someone presents is one we issued and whether its bytes are unaltered.

Rendering: a Jinja2 template (templates/report/report.html + report.css) rendered by
WeasyPrint, with the fonts the project ships (xinyong/fonts/README.md): our own subset of
Noto Sans CJK SC to the GB2312 set (~1.6 MB per weight), and behind it the system fallback
fonts that are installed (WenQuanYi Micro Hei from `fonts-wqy-microhei` for rare hanzi). A
character that no font has is logged as a warning: a report never shows empty boxes
silently. WeasyPrint subsets every embedded font per report; with HarfBuzz's subsetter
(Debian's libharfbuzz-subset0) that is quick whatever the font, without it WeasyPrint uses
fontTools, whose time grows with the font's glyph count: then the small subset is what
keeps a report to seconds rather than tens of seconds (bench/report.py measures both).
One font configuration is kept per process: call `warm_up()` at a server's start.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import logging
import os
import re
import secrets
import threading
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from sqlalchemy import Engine, func, select

from xinyong.domain import formats
from xinyong.domain.calendar import pack_today
from xinyong.domain.privacy import PersonNumbers, mask_public, mask_text
from xinyong.domain.pack import LANGUAGES, FieldType, Pack, PackError
from xinyong.services.resolution.entities import EntityNotFound, find_entity_id, public_file
from xinyong.store import tables as t
from xinyong.store.checkpoints import latest as latest_checkpoint
from xinyong.store.checkpoints import write_checkpoint

log = logging.getLogger("xinyong.report")

PACKAGE_DIR = Path(__file__).resolve().parents[2]  # xinyong/
TEMPLATE_DIR = PACKAGE_DIR / "templates" / "report"
FONTS_DIR = PACKAGE_DIR / "fonts"
VERIFY_PATH = "/verify/{code}"

# -- fonts -------------------------------------------------------------------------------------

PRIMARY_FAMILY = "Xinyong Sans SC"
PRIMARY_FACES = ((400, FONTS_DIR / "XinyongSansSC-Regular.otf"), (700, FONTS_DIR / "XinyongSansSC-Bold.otf"))
FALLBACK_ENV = "XINYONG_REPORT_FALLBACK_FONTS"
# System fonts listed behind the primary one, in this order, those that exist: CJK fonts for
# hanzi outside GB2312, then DejaVu Sans for Latin, Greek and Cyrillic letters our subset lacks.
# Override with XINYONG_REPORT_FALLBACK_FONTS=path[:path...].
DEFAULT_FALLBACK_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)


@dataclass(frozen=True)
class FontFile:
    """A font file: the CSS family it is known by and the code points it maps."""

    path: Path
    family: str
    codepoints: frozenset[int] = field(repr=False)


def _read_font(path: Path, family: str | None = None) -> FontFile:
    from fontTools.ttLib import TTCollection, TTFont

    if path.suffix.lower() == ".ttc":
        faces = TTCollection(str(path), lazy=True).fonts
        chosen = next((f for f in faces if f["name"].getDebugName(1).endswith(" SC")), faces[0])
    else:
        chosen = TTFont(str(path), lazy=True)
    return FontFile(path, family or chosen["name"].getDebugName(1), frozenset(chosen.getBestCmap()))


@lru_cache(maxsize=1)
def primary_font() -> FontFile:
    path = PRIMARY_FACES[0][1]
    if not path.exists():
        raise ReportError(f"the report font {path} is missing: run tools/make_font_subset.py")
    return _read_font(path, PRIMARY_FAMILY)


def fallback_files() -> list[Path]:
    configured = os.environ.get(FALLBACK_ENV)
    paths = configured.split(os.pathsep) if configured else DEFAULT_FALLBACK_FILES
    return [Path(p) for p in paths if p and Path(p).is_file()]


@lru_cache(maxsize=8)
def _fallback_fonts(paths: tuple[Path, ...]) -> tuple[FontFile, ...]:
    fonts = []
    for path in paths:
        try:
            fonts.append(_read_font(path))
        except Exception as exc:  # noqa: BLE001 - an unreadable system font is skipped, and said so
            log.warning("fallback font %s unreadable, skipped: %s", path, exc)
    return tuple(fonts)


def fallback_fonts() -> tuple[FontFile, ...]:
    return _fallback_fonts(tuple(fallback_files()))


@dataclass(frozen=True)
class ReportFonts:
    """The fonts a report is set in: @font-face files (family, weight, path) and the family stack."""

    faces: tuple[tuple[str, int, Path], ...]
    families: tuple[str, ...]

    def css(self) -> str:
        rules = [f'@font-face {{ font-family: "{family}"; font-weight: {weight}; font-style: normal; '
                 f'src: url("{path.resolve().as_uri()}"); }}' for family, weight, path in self.faces]
        stack = ", ".join(f'"{f}"' for f in self.families)
        rules.append(f"html {{ font-family: {stack}, sans-serif; }}")
        return "\n".join(rules)


def default_fonts() -> ReportFonts:
    """Our GB2312 subset first, then the system fallback fonts found (if any)."""
    faces = tuple((PRIMARY_FAMILY, weight, path) for weight, path in PRIMARY_FACES)
    families = dict.fromkeys((PRIMARY_FAMILY, *(f.family for f in fallback_fonts())))
    return ReportFonts(faces, tuple(families))


def missing_characters(text: str) -> dict[str, str | None]:
    """Characters of `text` the primary font lacks: each with the fallback family that has it, or None."""
    primary = primary_font().codepoints
    out: dict[str, str | None] = {}
    for ch in set(text):
        if ch.isspace() or not ch.isprintable() or ord(ch) in primary:
            continue
        out[ch] = next((f.family for f in fallback_fonts() if ord(ch) in f.codepoints), None)
    return out


def check_glyphs(text: str, what: str = "report") -> list[str]:
    """Log the characters no font of ours has (they would print as empty boxes); return them."""
    missing = missing_characters(text)
    absent = sorted(ch for ch, family in missing.items() if family is None)
    borrowed = sorted(ch for ch, family in missing.items() if family is not None)
    if borrowed:
        log.info("%s: %d character(s) outside the GB2312 subset drawn from the fallback font: %s",
                 what, len(borrowed), " ".join(f"{c} U+{ord(c):04X}" for c in borrowed))
    if absent:
        where = ", ".join(str(p) for p in fallback_files()) or "none installed (apt-get install fonts-wqy-microhei)"
        log.warning("%s: no report font has %s: they may print as empty boxes (primary font %s; fallback: %s)",
                    what, " ".join(f"{c} U+{ord(c):04X}" for c in absent), PRIMARY_FAMILY, where)
    return absent


# -- verification codes ------------------------------------------------------------------------

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 16  # 80 random bits
_CODE_READING = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code() -> str:
    return "".join(secrets.choice(CROCKFORD) for _ in range(CODE_LENGTH))


def normalise_report_code(text: str) -> str | None:
    """The stored form of a typed code (upper case, no separators, O->0, I/L->1); None if malformed."""
    code = re.sub(r"[\s\-_.]", "", text or "").upper().translate(_CODE_READING)
    if len(code) != CODE_LENGTH or any(c not in CROCKFORD for c in code):
        return None
    return code


def format_code(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


# -- labels --------------------------------------------------------------------------------------

LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "公共信用信息报告", "report_date": "报告日期", "issued_at": "签发时间",
        "code": "验证码", "verify_at": "核验地址", "checkpoint": "审计链签名检查点", "page": "第 {page} 页，共 {pages} 页",
        "subject": "信用主体",
        "identity": "一、主体身份信息", "name": "名称", "former_names": "曾用名", "key": "主体标识",
        "uscc": "统一社会信用代码", "identifiers": "其他标识", "kind": "主体类别", "status": "登记状态",
        "region": "所在地区", "address": "住所", "established": "成立日期",
        "legal_representative": "法定代表人",
        "lists": "二、名单状态", "no_listings": "截至报告日期，该主体未被列入任何公开的名单。",
        "list": "名单", "list_kind": "类别", "state": "状态", "effective_from": "列入日期",
        "effective_to": "移出日期", "until_performance": "至履行义务之日", "legal_basis": "依据",
        "rule_version": "规则版本",
        "history": "列入记录", "ended_on": "实际移出日期", "end_reason": "移出原因", "still_listed": "仍在列入",
        "end_term_expired": "期满移出", "end_repaired": "信用修复", "end_cured": "已纠正",
        "end_performed": "已履行义务", "end_excluded_by_blacklist": "因列入黑名单移出",
        "end_moved_to_serious": "转入严重违法失信名单",
        "records": "三、公示信息", "no_records": "截至报告日期，该主体无处于公示期内的公开信息。",
        "decision_no": "文书号", "decision_date": "决定日期", "publicity_ends": "公示截止",
        "no_end": "长期", "authority": "报送部门",
        "notes": "说明",
        "note_scope": "本报告仅载明截至报告日期依法公开的信用信息：已生效的名单、处于公示期内的公开记录及其公开字段；"
                      "自然人身份证件号码已作遮蔽处理。",
        "note_verify": "本报告由系统生成。请在 {path} 输入验证码核验报告真伪；可上传本文件比对其是否被改动。",
        "none": "—", "colon": "：", "black": "黑名单", "red": "红名单",
        "effective": "已生效", "under_review": "复核中",
        "enterprise": "企业", "individual_business": "个体工商户", "social_organisation": "社会组织",
        "public_institution": "事业单位", "natural_person": "自然人",
        "scheme_uscc": "统一社会信用代码", "scheme_reg_no": "工商注册号", "scheme_org_code": "组织机构代码",
        "scheme_resident_id": "居民身份证号码", "scheme_lei": "LEI", "scheme_unknown": "其他代码",
        "currency": "{amount} 元",
    },
    "en": {
        "title": "Public credit information report", "report_date": "Report date", "issued_at": "Issued at",
        "code": "Verification code", "verify_at": "Verify at", "checkpoint": "Signed audit checkpoint", "page": "Page {page} of {pages}",
        "subject": "Subject",
        "identity": "1. Identity", "name": "Name", "former_names": "Former names", "key": "Subject key",
        "uscc": "Unified social credit code", "identifiers": "Other identifiers", "kind": "Subject kind",
        "status": "Registration status", "region": "Region", "address": "Address", "established": "Established",
        "legal_representative": "Legal representative",
        "lists": "2. List status", "no_listings": "On the report date the subject is on no public list.",
        "list": "List", "list_kind": "Kind", "state": "State", "effective_from": "Listed on",
        "effective_to": "Ends on", "until_performance": "until the obligation is performed",
        "legal_basis": "Legal basis", "rule_version": "Rule version",
        "history": "Listing history", "ended_on": "Removed on", "end_reason": "Reason for removal",
        "still_listed": "still listed",
        "end_term_expired": "Term expired", "end_repaired": "Credit repaired", "end_cured": "Fault cured",
        "end_performed": "Obligation performed", "end_excluded_by_blacklist": "Excluded by a blacklist listing",
        "end_moved_to_serious": "Moved to the serious list",
        "records": "3. Public records",
        "no_records": "On the report date the subject has no public record within its publicity period.",
        "decision_no": "Decision number", "decision_date": "Decision date", "publicity_ends": "Public until",
        "no_end": "no end date", "authority": "Reporting authority",
        "notes": "Notes",
        "note_scope": "This report shows only the credit information that is public on the report date: "
                      "listings in force, public records within their publicity period and their public "
                      "fields. Personal ID numbers are masked.",
        "note_verify": "This report was generated by the registry. Enter the verification code at {path} to "
                       "check that it is genuine; upload this file there to check that it is unaltered.",
        "none": "—", "colon": ": ", "black": "Blacklist", "red": "Redlist",
        "effective": "In force", "under_review": "In force, under review",
        "enterprise": "Enterprise", "individual_business": "Individual business",
        "social_organisation": "Social organisation", "public_institution": "Public institution",
        "natural_person": "Natural person",
        "scheme_uscc": "Unified social credit code", "scheme_reg_no": "Business registration number",
        "scheme_org_code": "Organisation code", "scheme_resident_id": "Resident ID number", "scheme_lei": "LEI",
        "scheme_unknown": "Other code",
        "currency": "{currency} {amount}",
    },
    "fr": {
        "title": "Rapport d'informations publiques de crédit", "report_date": "Date du rapport",
        "issued_at": "Délivré le", "code": "Code de vérification", "verify_at": "Vérification",
        "checkpoint": "Point de contrôle signé de l'audit",
        "page": "Page {page} sur {pages}",
        "subject": "Sujet",
        "identity": "1. Identité", "name": "Dénomination", "former_names": "Anciennes dénominations",
        "key": "Clé du sujet", "uscc": "Code unifié de crédit social", "identifiers": "Autres identifiants",
        "kind": "Catégorie du sujet", "status": "Statut d'immatriculation", "region": "Région",
        "address": "Adresse", "established": "Date de création", "legal_representative": "Représentant légal",
        "lists": "2. Inscriptions sur les listes",
        "no_listings": "À la date du rapport, le sujet ne figure sur aucune liste publique.",
        "list": "Liste", "list_kind": "Type", "state": "État", "effective_from": "Inscrit le",
        "effective_to": "Prend fin le", "until_performance": "jusqu'à l'exécution de l'obligation",
        "legal_basis": "Fondement juridique", "rule_version": "Version de la règle",
        "history": "Historique des inscriptions", "ended_on": "Radié le", "end_reason": "Motif de la radiation",
        "still_listed": "toujours inscrit",
        "end_term_expired": "Durée échue", "end_repaired": "Réhabilitation", "end_cured": "Manquement corrigé",
        "end_performed": "Obligation exécutée", "end_excluded_by_blacklist": "Exclu par une inscription sur liste noire",
        "end_moved_to_serious": "Transféré sur la liste des infractions graves",
        "records": "3. Informations publiques",
        "no_records": "À la date du rapport, le sujet n'a aucune information publique en cours de publication.",
        "decision_no": "Numéro de décision", "decision_date": "Date de la décision",
        "publicity_ends": "Publié jusqu'au", "no_end": "sans date de fin", "authority": "Autorité déclarante",
        "notes": "Remarques",
        "note_scope": "Ce rapport ne montre que les informations de crédit publiques à la date du rapport : "
                      "inscriptions en vigueur, informations publiques en cours de publication et leurs champs "
                      "publics. Les numéros d'identité des personnes sont masqués.",
        "note_verify": "Ce rapport a été produit par le registre. Saisissez le code de vérification à l'adresse "
                       "{path} pour vérifier son authenticité ; déposez-y ce fichier pour vérifier qu'il n'a pas "
                       "été modifié.",
        "none": "—", "colon": "\u00a0: ", "black": "Liste noire", "red": "Liste rouge",
        "effective": "En vigueur", "under_review": "En réexamen",
        "enterprise": "Entreprise", "individual_business": "Entreprise individuelle",
        "social_organisation": "Organisation sociale", "public_institution": "Établissement public",
        "natural_person": "Personne physique",
        "scheme_uscc": "Code unifié de crédit social", "scheme_reg_no": "Numéro d'immatriculation",
        "scheme_org_code": "Code d'organisation", "scheme_resident_id": "Numéro de carte d'identité",
        "scheme_lei": "LEI", "scheme_unknown": "Autre code",
        "currency": "{amount} {currency}",
    },
}
def long_date(day: dt.date, language: str) -> str:
    return formats.day(day, language, "long")


def format_amount(value: Any, language: str, currency: str) -> str:
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return str(value)
    return LABELS[language]["currency"].format(amount=formats.number(amount, language, "#,##0.00"),
                                               currency=currency)


# -- content -------------------------------------------------------------------------------------

def scrub_person_ids(value: Any, person_numbers: PersonNumbers | None = None) -> Any:
    """Mask persons' ID numbers, mobile numbers and addresses inside free text: the one masking
    function of every public surface (`domain.privacy`), entity keys excepted; `person_numbers`:
    the pack's own schemes of persons' numbers."""
    return mask_public(value, person_numbers=person_numbers)


def _text(value: Any, language: str) -> str:
    if value is None or value == "" or value == []:
        return LABELS[language]["none"]
    if isinstance(value, (list, tuple)):
        return ("；" if language == "zh" else "; ").join(str(v) for v in value)
    if isinstance(value, dt.datetime):
        return formats.moment(value, language, form="short")
    if isinstance(value, dt.date):
        return formats.day(value, language)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return formats.number(value, language)
    return str(value)


SHORT_WIDTH = 30  # in Latin character widths: a value this wide fits half the page


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _authority_name(pack: Pack, code: str, language: str) -> str:
    try:
        return pack.authority(code).names.get(language)
    except PackError:
        return code


def report_context(pack: Pack, file: dict[str, Any], language: str, as_of: dt.date, code: str,
                   issued_at: dt.datetime, base_url: str = "",
                   checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the template shows, already in the report's language and as display text;
    `checkpoint`: the newest signed checkpoint of the audit chain, printed so that any report
    proves what the chain held when it was issued."""
    L = LABELS[language]
    file = scrub_person_ids(file, pack.person_numbers)
    identifiers = file["identifiers"]
    uscc = next((i["value"] for i in identifiers if i["scheme"] == "uscc"), None)
    others = [f"{L.get('scheme_' + i['scheme'], i['scheme'])} {i['value']}" for i in identifiers
              if not (i["scheme"] == "uscc" and i["value"] == uscc)]
    former = [n["name"] for n in file["names"] if not n["current"] and n["name"] != file["name"]]
    identity = [(L["name"], file["name"]), (L["former_names"], former)]
    identity.append((L["uscc"], uscc) if uscc else (L["key"], file["key"]))
    if others:
        identity.append((L["identifiers"], others))
    identity += [(L["kind"], L.get(file["kind"] or "", file["kind"])), (L["status"], file["status"]),
                 (L["region"], file["region"])]
    if file["kind"] != "natural_person":
        identity += [(L["address"], file["address"]), (L["established"], file["established"]),
                     (L["legal_representative"], file["legal_representative"])]
    listings = []
    for item in file["listings"]:
        spec = pack.list_(item["list"])
        until = item["effective_to"] or item["ended_on"]
        listings.append({
            "title": item["list_title"][language], "kind": L[item["kind"]],
            "state": L.get(item["state"], item["state"]), "from": _text(item["effective_from"], language),
            "to": _text(until, language) if until or spec.duration.kind != "until_performance"
            else L["until_performance"],
            "legal_basis": item["legal_basis"], "rule_version": item["rule_version"]})
    # the public history: withdrawals that undo a listing are never in it (services.resolution.entities)
    history = [{"title": item["list_title"][language], "from": _text(item["effective_from"], language),
                "to": _text(item["effective_to"], language) if item["effective_to"] else L["until_performance"],
                "ended": _text(item["ended_on"], language) if item["ended_on"] else L["still_listed"],
                "reason": L.get(f"end_{item['end_reason']}", item["end_reason"] or L["none"])}
               for item in file.get("listing_history", [])]
    records = []
    for record in file["records"]:
        category = pack.category(record["category"])
        if category.creates_entities:
            continue  # the register's own record is the identity section
        specs = {f.name: f for f in pack.fields_of(category)}
        skip = {category.subject.name_field, *category.subject.code_fields, category.natural_key,
                category.date_field, category.subject.kind_field, category.publicity.end_field}
        fields = []
        values = record["fields"]
        for name in [*specs, *(k for k in values if k not in specs)]:  # the pack's field order
            value = values.get(name)
            if name in skip or value in (None, "", []):
                continue
            spec = specs.get(name)
            label = spec.names.get(language) if spec and spec.names else name.replace("_", " ")
            shown = (format_amount(value, language, pack.currency) if spec and spec.type == FieldType.amount
                     else _text(value, language))
            fields.append((label, shown))
        number = record["fields"].get(category.natural_key) or record["record_key"].split(":", 1)[-1]
        dates = [(L["decision_date"], _text(record["decision_date"], language)),
                 (L["publicity_ends"], _text(record["publicity_ends"], language) if record["publicity_ends"]
                  else L["no_end"]),
                 (L["authority"], _authority_name(pack, record["authority"], language))]
        facts = dates + fields
        records.append({
            "title": record["category_title"][language], "number": str(number),
            # short facts two to a row, long ones (facts of the case, legal basis) across the page
            "short": [pair for pair in facts if _width(pair[1]) <= SHORT_WIDTH],
            "long": [pair for pair in facts if _width(pair[1]) > SHORT_WIDTH]})
    path = VERIFY_PATH.format(code=format_code(code))
    return {
        "lang": language, "html_lang": {"zh": "zh-Hans"}.get(language, language), "L": L,
        "jurisdiction": pack.names.get(language), "subject": file["name"] or file["key"],
        "report_date": long_date(as_of, language),
        # the pack's clock, as the report date: issued at 00:30 in Beijing is not "the day before, 16:30 UTC"
        "issued_at": (formats.moment(issued_at, language, ZoneInfo(pack.calendar.timezone), form="short")
                      + f" ({pack.calendar.timezone})"),
        "code": format_code(code), "verify_url": base_url.rstrip("/") + path,
        "identity": [(label, _text(value, language)) for label, value in identity],
        "listings": listings, "history": history, "records": records,
        "checkpoint": (f"seq {checkpoint['seq']} · {checkpoint['hash']} · {checkpoint['fingerprint']}"
                       if checkpoint else None),
        # "Page {page} of {pages}" cut around its counters, for the CSS footer
        "page_before": L["page"].split("{page}", 1)[0],
        "page_between": L["page"].split("{page}", 1)[1].split("{pages}", 1)[0],
        "page_after": L["page"].split("{pages}", 1)[1],
    }


# -- rendering -----------------------------------------------------------------------------------

def css_string(value: Any) -> Markup:
    """A quoted CSS string, safe inside <style>: quotes, backslashes and markup characters escaped."""
    out = []
    for ch in str(value):
        if ch in '"\\<>&' or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):06x}")
        else:
            out.append(ch)
    return Markup('"' + "".join(out) + '"')


@lru_cache(maxsize=1)
def _templates() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["css_string"] = css_string
    return env


def render_html(context: dict[str, Any]) -> str:
    return _templates().get_template("report.html").render(**context)


class _Renderer:
    """One WeasyPrint font configuration and parsed stylesheets per font set, kept for the process:
    @font-face files are then loaded once, not per report. WeasyPrint (Pango, fontconfig) is not
    thread-safe, so renders are serialised, across font sets too."""

    def __init__(self, fonts: ReportFonts):
        from weasyprint import CSS
        from weasyprint.text.fonts import FontConfiguration

        self.font_config = FontConfiguration()
        self.stylesheets = [CSS(string=fonts.css(), font_config=self.font_config),
                            CSS(filename=str(TEMPLATE_DIR / "report.css"), font_config=self.font_config)]
        if not harfbuzz_subset_available():
            log.warning("WeasyPrint found no HarfBuzz subsetter (libharfbuzz-subset.so.0) and subsets fonts with "
                        "fontTools: a report then takes seconds, not a fraction of one. On Debian: "
                        "apt-get install libharfbuzz-subset0")

    def render(self, html: str) -> tuple[bytes, int]:
        from weasyprint import HTML

        document = HTML(string=html, base_url=str(TEMPLATE_DIR)).render(
            stylesheets=self.stylesheets, font_config=self.font_config)
        return document.write_pdf(), len(document.pages)


def harfbuzz_subset_available() -> bool:
    """Whether WeasyPrint subsets embedded fonts with HarfBuzz (fast) rather than fontTools (slow)."""
    from weasyprint.pdf import fonts as pdf_fonts

    return pdf_fonts.harfbuzz_subset is not None and bool(pdf_fonts.harfbuzz.hb_version_atleast(4, 1, 0))


_renderers: dict[ReportFonts, _Renderer] = {}
_lock = threading.Lock()  # one WeasyPrint call at a time in a process
# Released before the interpreter tears its modules down: FontConfiguration's finaliser needs them.
atexit.register(_renderers.clear)


def render_pdf(html: str, fonts: ReportFonts | None = None) -> tuple[bytes, int]:
    """The PDF of a report's HTML and its page count; warns about characters no font has."""
    default = default_fonts()
    fonts = fonts or default
    if fonts == default:
        check_glyphs(html)
    with _lock:
        renderer = _renderers.get(fonts) or _renderers.setdefault(fonts, _Renderer(fonts))
        return renderer.render(html)


def warm_up() -> None:
    """Load WeasyPrint, fontconfig and the report fonts now (~1-2 s), not on the first request."""
    render_pdf(f'<html lang="zh-Hans"><body><p>{LABELS["zh"]["title"]} {LABELS["fr"]["title"]}</p></body></html>')


# -- issue and verify ----------------------------------------------------------------------------

class ReportError(Exception):
    """A report that cannot be issued; the message says why."""


@dataclass(frozen=True)
class IssuedReport:
    code: str  # normalised: 16 Crockford base32 characters, shown in four groups of four joined by hyphens
    pdf: bytes = field(repr=False)
    pages: int
    sha256: str


def issue_report(engine: Engine, pack: Pack, entity_key: str, language: str, as_of: dt.date, *,
                 base_url: str = "") -> IssuedReport:
    """Render the entity's public file as of `as_of` in `language` and store its code and hash (sealed
    into the audit chain at the next checkpoint)."""
    if language not in LANGUAGES:
        raise ReportError(f"unknown report language {language!r}; one of: {', '.join(LANGUAGES)}")
    file = public_file(engine, pack, entity_key, as_of)  # EntityNotFound for an unknown key
    code = new_code()
    issued_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    with engine.begin() as c:  # the store's first report makes its first checkpoint
        signed = latest_checkpoint(c) or write_checkpoint(c)
    html = render_html(report_context(pack, file, language, as_of, code, issued_at, base_url, signed))
    pdf, pages = render_pdf(html)
    digest = hashlib.sha256(pdf).hexdigest()
    with engine.begin() as c:
        entity_id = find_entity_id(c, file["key"])
        # no audit event per report: the next checkpoint seals every issuance since the last one
        # under one Merkle root (services.operations.integrity.seal_reports), so downloads do not grow the chain
        c.execute(t.reports.insert().values(code=code, entity_id=entity_id, language=language, as_of=as_of,
                                            pdf_sha256=digest, pages=pages, issued_at=issued_at))
    return IssuedReport(code=code, pdf=pdf, pages=pages, sha256=digest)


def verify_report(engine: Engine, code: str, pdf: bytes | None = None, pack: Pack | None = None) -> dict[str, Any]:
    """Whether a code is one we issued, for whom, when; with `pdf`, whether those bytes are the ones issued;
    with `pack`, whether the entity's public file has changed since (`changed_since`)."""
    normal = normalise_report_code(code)
    if normal is None:
        return {"known": False, "code": code, "reason": "malformed code"}
    r, e, n = t.reports.c, t.entities.c, t.entity_names.c
    with engine.connect() as c:
        row = c.execute(select(r.code, r.language, r.as_of, r.issued_at, r.pages, r.pdf_sha256, r.entity_id,
                               e.key).join(t.entities, e.id == r.entity_id).where(r.code == normal)).first()
        if row is None:
            return {"known": False, "code": format_code(normal)}
        name = c.execute(select(n.name).where(n.entity_id == row.entity_id)
                         .order_by(n.current.desc(), n.id).limit(1)).scalar()
    issued_at = row.issued_at if row.issued_at.tzinfo else row.issued_at.replace(tzinfo=dt.timezone.utc)
    out: dict[str, Any] = {"known": True, "code": format_code(row.code),
                           "entity": {"key": row.key,  # the name as the report shows it
                                      "name": mask_text(name, pack.person_numbers if pack else None) if name else name},
                           "language": row.language,
                           "as_of": row.as_of, "issued_at": issued_at, "pages": row.pages,
                           "sha256": row.pdf_sha256}
    if pdf is not None:
        out["unaltered"] = hashlib.sha256(pdf).hexdigest() == row.pdf_sha256
    if pack is not None:
        out["changed_since"] = _changed_since(engine, pack, row.entity_id, row.key, row.as_of, issued_at)
    return out


def _changed_since(engine: Engine, pack: Pack, entity_id: int, key: str, as_of: dt.date,
                   issued_at: dt.datetime) -> bool:
    """Whether what a report showed may no longer hold: a step of the entity's listings, or a record
    version about it, recorded after the report was issued; or, with no write at all, a listing's
    term or a record's publicity that ran out between the report's day and today. A genuine report
    of a listing since withdrawn or ended is still handed to banks and buyers. (A link's time is no
    sign: `resolve` writes again the links it decides again, unchanged.)"""
    L, T, r, link = t.listings.c, t.listing_transitions.c, t.records.c, t.record_links.c
    with engine.connect() as c:
        stepped = c.execute(select(func.max(T.recorded_at))
                            .where(T.listing_id.in_(select(L.id).where(L.entity_id == entity_id)))).scalar()
        recorded = c.execute(select(func.max(r.created_at)).join(t.record_links, link.record_id == r.id)
                             .where(link.entity_id == entity_id)).scalar()
    if any(moment is not None and _utc(moment) > issued_at for moment in (stepped, recorded)):
        return True

    def shown(day: dt.date) -> Any:
        try:
            file = public_file(engine, pack, key, day)
        except EntityNotFound:  # a person no list holds any more
            return None
        return ([(item["id"], item["state"], item["effective_to"]) for item in file["listings"]],
                [(item["record_key"], item["version"]) for item in file["records"]])

    return shown(as_of) != shown(pack_today(pack))


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)  # SQLite's are naive UTC


__all__ = ["IssuedReport", "ReportError", "EntityNotFound", "issue_report", "verify_report", "render_pdf",
           "render_html", "report_context", "check_glyphs", "normalise_report_code", "format_code",
           "ReportFonts", "default_fonts", "warm_up", "LABELS"]
