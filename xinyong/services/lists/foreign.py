"""Foreign and international lists: the UN Security Council's consolidated list (its XML) and
OpenSanctions / FollowTheMoney entity files (JSON Lines), imported as lists of kind `foreign`.

A foreign designation is not a listing: no rule proposed it, no due process made it effective,
and no public page, dump or evaluation shows it. Screening reads it (services.screening.foreign)
and answers with the decision the pack names for it (`foreign_lists`), nothing more.

An import reads the whole file first: a malformed file (not XML, not JSON, an entry without an
id or a name) is refused with the file and the line or entry, before anything is written. Then,
in one transaction, the list's row takes the new version, designations of the file are added or
brought up to date, those that disappeared are ended (kept, with the date and the version that
ended them), and one audit event names what changed. Organisations only, unless the pack names a
legal basis for persons (`foreign_lists.person_legal_basis`); persons skipped are counted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

import orjson
from sqlalchemy import Engine, bindparam, select
from sqlalchemy.exc import IntegrityError

from xinyong.domain.calendar import pack_today
from xinyong.domain.identifiers import is_valid_resident_id, normalise_code
from xinyong.domain.pack import CN_IDENTIFIERS, IdentifierSpec, Pack, reader_of
from xinyong.domain.privacy import mask_text
from xinyong.domain.terminal import printable
from xinyong.store import tables as t
from xinyong.store.audit import append_event

FORMATS = ("un", "ftm")
KIND = "foreign"
UN_SOURCE = "UN Security Council Consolidated List"
LIST_CODE = re.compile(r"^[a-z][a-z0-9_\-]{0,39}$")
# FtM schemata kept as organisations; a Person only under a legal basis; anything else (vessels,
# addresses, sanctions, ownerships...) is not a subject here
ORGANISATION_SCHEMATA = ("Organization", "LegalEntity")
FTM_IDENTIFIERS = ("registrationNumber", "taxNumber", "leiCode")  # checked by domain.identifiers
FTM_ALIASES = ("alias", "previousName")
EXAMPLES = 20  # refused identifiers shown in the outcome; the rest are counted


class ForeignListError(ValueError):
    """A file or a request that cannot be imported; the message names the file and the line or entry."""


@dataclass(slots=True)
class Designation:
    source_id: str
    schema: str
    name: str
    aliases: list[str]
    identifiers: list[list[str]]  # [scheme, value], each verified
    details: dict[str, Any]
    listed_on: dt.date | None = None


@dataclass(slots=True)
class ParsedList:
    source: str
    list_date: dt.date | None
    version: str | None  # None: the file's SHA-256 names the version
    designations: list[Designation] = field(default_factory=list)
    persons_skipped: int = 0
    others_skipped: int = 0
    identifiers_refused: int = 0
    refused_examples: list[dict[str, str]] = field(default_factory=list)

    def refuse_identifier(self, where: str, value: str, why: str) -> None:
        self.identifiers_refused += 1
        if len(self.refused_examples) < EXAMPLES:
            self.refused_examples.append({"entry": where, "value": value, "reason": why})


def clean_text(value: Any) -> str:
    """Text as kept: no control characters or escape sequences, spaces collapsed."""
    return "" if value is None else " ".join(printable(value).split())


def clean_name(value: Any) -> str:
    """A name as kept and compared; "" when no letter or digit is left (punctuation or invisible
    characters alone name nothing)."""
    name = clean_text(value)
    return name if any(ch.isalnum() for ch in name) else ""


def _names(values: Any) -> list[str]:
    seen: list[str] = []
    for value in values:
        name = clean_name(value)
        if name and name not in seen:
            seen.append(name)
    return seen


# -- the UN Security Council consolidated list ------------------------------------------------------

def _refuse_declarations(data: bytes, label: str) -> None:
    """No DTD: entity declarations (a billion laughs, external files) have no place in the UN list.
    Decided by expat itself, which ElementTree then reads the file with: a text search for
    "<!DOCTYPE" misses a file in another encoding expat recognises (UTF-16 without a byte-order
    mark is read by its first bytes)."""
    def refuse(*_args: Any) -> None:
        raise ForeignListError(f"{label}: a DOCTYPE or entity declaration is refused in a UN list file")

    scanner = expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = refuse
    scanner.EntityDeclHandler = refuse
    scanner.ExternalEntityRefHandler = refuse
    try:
        scanner.Parse(data, True)
    except expat.ExpatError:
        pass  # not well-formed: ElementTree says where


def _text(element: ET.Element, tag: str) -> str:
    return clean_text(element.findtext(tag))


def _date(value: str, where: str, tag: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise ForeignListError(f"{where}: {tag} {value!r} is not a date (YYYY-MM-DD)") from None


def _partial_date(value: Any) -> dt.date | None:
    """An FtM date, which may be partial (2019, 2019-03): a whole day, else unknown."""
    try:
        return dt.date.fromisoformat(value[:10]) if isinstance(value, str) and len(value) >= 10 else None
    except ValueError:
        return None


def parse_un(data: bytes, label: str, keep_persons: bool) -> ParsedList:
    """The UN consolidated list: <CONSOLIDATED_LIST dateGenerated=…> with <INDIVIDUALS> and <ENTITIES>."""
    _refuse_declarations(data, label)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        line, column = exc.position
        raise ForeignListError(f"{label}: line {line}, column {column + 1}: not well-formed XML "
                               f"({str(exc).split(':')[0]})") from None
    if root.tag != "CONSOLIDATED_LIST":
        raise ForeignListError(f"{label}: not a UN consolidated list: the root element is <{clean_text(root.tag)}>, "
                               f"not <CONSOLIDATED_LIST>")
    generated = clean_text(root.get("dateGenerated"))
    parsed = ParsedList(UN_SOURCE, _date(generated, label, "dateGenerated"), generated or None)
    seen: set[str] = set()
    for section, tag, person in (("ENTITIES", "ENTITY", False), ("INDIVIDUALS", "INDIVIDUAL", True)):
        for number, element in enumerate(root.iterfind(f"{section}/{tag}"), start=1):
            where = f"{label}: {tag.lower()} {number}"
            dataid = _text(element, "DATAID")
            if not dataid:
                raise ForeignListError(f"{where}: no DATAID")
            where += f" (DATAID {dataid})"
            if dataid in seen:
                raise ForeignListError(f"{where}: DATAID {dataid} appears twice")
            seen.add(dataid)
            if person and not keep_persons:
                parsed.persons_skipped += 1
                continue
            name = clean_name(" ".join(element.findtext(part) or "" for part in
                                       ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")))
            if not name:
                raise ForeignListError(f"{where}: no name (FIRST_NAME)")
            aliases = [a for a in _names([element.findtext("NAME_ORIGINAL_SCRIPT"),
                                          *(alias.findtext("ALIAS_NAME") for alias in element.iterfind(f"{tag}_ALIAS"))])
                       if a != name]
            addresses = [", ".join(p for p in (clean_text(part.text) for part in address) if p)
                         for address in element.iterfind(f"{tag}_ADDRESS")]
            details = {"reference_number": _text(element, "REFERENCE_NUMBER") or None,
                       "un_list_type": _text(element, "UN_LIST_TYPE") or None,
                       "comments": _text(element, "COMMENTS1") or None,
                       "addresses": [a for a in addresses if a]}
            parsed.designations.append(Designation(dataid, "person" if person else "organisation", name, aliases, [],
                                                   details, _date(_text(element, "LISTED_ON"), where, "LISTED_ON")))
    return parsed


# -- FollowTheMoney entity files (OpenSanctions) ----------------------------------------------------

def _ftm_lines(path: Path, label: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ForeignListError(f"{label}: line {number}: not JSON ({exc})") from None
            if not isinstance(data, dict):
                raise ForeignListError(f"{label}: line {number}: not a JSON object")
            yield number, data


def parse_ftm(path: Path, label: str, keep_persons: bool,
              identifiers: list[IdentifierSpec] = CN_IDENTIFIERS) -> ParsedList:
    """FollowTheMoney entities, one JSON object a line ({"id", "schema", "properties": {…}}), read
    through the `followthemoney` model: organisations (and persons under a legal basis) become
    designations; a Sanction's listing date dates its entity. Their codes are kept where they are
    verified codes of the pack's `identifiers` (a French pack's SIRENs, cn's USCCs)."""
    from followthemoney import model  # ~1.5 s to import: only when a list is imported

    classify = reader_of(identifiers).classify

    parsed = ParsedList("", None, None)
    datasets: set[str] = set()
    newest = ""
    listing_dates: dict[str, dt.date] = {}
    seen: set[str] = set()
    for number, data in _ftm_lines(path, label):
        where = f"{label}: line {number}"
        entity_id, schema_name, properties = data.get("id"), data.get("schema"), data.get("properties", {})
        if not isinstance(entity_id, str) or not clean_text(entity_id):
            raise ForeignListError(f"{where}: no entity id")
        entity_id = clean_text(entity_id)
        where += f" (entity {entity_id})"
        if len(entity_id) > 200:
            raise ForeignListError(f"{where}: an entity id of more than 200 characters")
        schema = model.get(schema_name) if isinstance(schema_name, str) else None
        if schema is None:
            raise ForeignListError(f"{where}: {schema_name!r} is not a FollowTheMoney schema")
        if not isinstance(properties, dict) or not all(
                isinstance(values, list) and all(isinstance(v, str) for v in values) for values in properties.values()):
            raise ForeignListError(f"{where}: properties must map each property to a list of strings")
        if entity_id in seen:
            raise ForeignListError(f"{where}: entity {entity_id} appears twice")
        seen.add(entity_id)
        proxy = model.get_proxy(data, cleaned=False)
        changed = data.get("last_change") or data.get("last_seen")
        if isinstance(changed, str) and changed > newest:
            newest = changed
        if isinstance(data.get("datasets"), list):
            datasets.update(clean_text(d) for d in data["datasets"] if isinstance(d, str))
        if schema.is_a("Sanction"):
            day = next((d for key in ("listingDate", "startDate") for d in map(_partial_date, proxy.get(key)) if d),
                       None)
            for target in proxy.get("entity"):
                if day is not None:
                    listing_dates[target] = min(day, listing_dates.get(target, day))
            continue
        person = schema.is_a("Person")
        if not person and schema.name not in ORGANISATION_SCHEMATA and not schema.is_a("Organization"):
            parsed.others_skipped += 1
            continue
        if not person and not schema.is_a("Organization"):
            # a bare LegalEntity (FtM's type for a subject of unknown kind) with a resident ID number is a person
            person = any(is_valid_resident_id(normalise_code(v))
                         for prop in (*FTM_IDENTIFIERS, "idNumber") for v in proxy.get(prop))
        if person and not keep_persons:
            parsed.persons_skipped += 1
            continue
        names = _names(proxy.get("name"))
        if not names:
            raise ForeignListError(f"{where}: no name")
        aliases = [a for a in _names([*names[1:], *(v for prop in FTM_ALIASES for v in proxy.get(prop))])
                   if a != names[0]]
        identifiers: list[list[str]] = []
        for prop in FTM_IDENTIFIERS:
            for value in proxy.get(prop):
                found = classify(value, "lei" if prop == "leiCode" else "uscc",
                                 subject_kind="natural_person" if person else "enterprise")
                if found is None:
                    continue
                if not found.verified or found.scheme == "resident_id":
                    # a foreign registration number is no code of this jurisdiction: counted, never matched
                    # a value failing as a USCC may still be somebody's ID number: masked like any shown text
                    parsed.refuse_identifier(where, mask_text(clean_text(value)) if found.scheme != "resident_id"
                                             else "(masked)",
                                             found.warning or f"not a verified {found.scheme}")
                    continue
                if [found.scheme, found.value] not in identifiers:
                    identifiers.append([found.scheme, found.value])
        datasets_of = data.get("datasets") if isinstance(data.get("datasets"), list) else []
        details = {"datasets": [clean_text(d) for d in datasets_of if isinstance(d, str)],
                   "countries": [clean_text(v) for v in proxy.get("country") + proxy.get("jurisdiction")],
                   "topics": [clean_text(v) for v in proxy.get("topics")],
                   "programs": [clean_text(v) for v in proxy.get("programId")],
                   "source_url": next((clean_text(v) for v in proxy.get("sourceUrl")), None)}
        parsed.designations.append(Designation(entity_id, schema.name, names[0], aliases, identifiers, details,
                                               _partial_date(data.get("first_seen"))))
    if not seen:  # an empty download would otherwise end every designation of the list
        raise ForeignListError(f"{label}: no entity in the file")
    for designation in parsed.designations:
        designation.listed_on = listing_dates.get(designation.source_id, designation.listed_on)
    parsed.source = "FollowTheMoney entities" + (f" ({', '.join(sorted(datasets))})" if datasets else "")
    parsed.list_date = _partial_date(newest)
    return parsed


# -- importing --------------------------------------------------------------------------------------

def parse_file(path: Path, file_format: str, keep_persons: bool, identifiers: list[IdentifierSpec]) -> ParsedList:
    label = str(path)
    if file_format == "un":
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ForeignListError(f"{label}: cannot be read ({exc.strerror or exc})") from None
        return parse_un(data, label, keep_persons)
    try:
        return parse_ftm(path, label, keep_persons, identifiers)
    except OSError as exc:
        raise ForeignListError(f"{label}: cannot be read ({exc.strerror or exc})") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_list(engine: Engine, pack: Pack, path: Path, file_format: str, code: str,
                actor: str = "cli") -> dict[str, Any]:
    """Import one file as list `code`'s new version; what it names no longer ends (kept, dated, audited)."""
    if file_format not in FORMATS:
        raise ForeignListError(f"--format {file_format!r}: use un or ftm")
    if not LIST_CODE.match(code):
        raise ForeignListError(f"--list {code!r}: a list code is lower-case letters, digits, _ and -, "
                               f"starting with a letter, at most 40 characters")
    if code in {spec.code for spec in pack.lists}:
        raise ForeignListError(f"--list {code!r} is a domestic list of the pack: a foreign list needs its own code")
    keep_persons = pack.foreign_lists.person_legal_basis is not None
    parsed = parse_file(path, file_format, keep_persons, pack.identifiers)
    sha256 = _sha256(path)
    version = (parsed.version or sha256[:16])[:80]
    try:
        return _write(engine, pack, path, file_format, code, actor, parsed, sha256, version)
    except IntegrityError:  # PostgreSQL: another first import of the same code committed meanwhile
        raise ForeignListError(f"--list {code}: another import of this list ran at the same time; "
                               f"run this one again") from None


def _write(engine: Engine, pack: Pack, path: Path, file_format: str, code: str, actor: str, parsed: ParsedList,
           sha256: str, version: str) -> dict[str, Any]:
    keep_persons = pack.foreign_lists.person_legal_basis is not None
    today = pack_today(pack)
    now = dt.datetime.now(dt.timezone.utc)
    F, D = t.foreign_lists.c, t.foreign_designations.c
    with engine.begin() as c:
        # the list's row locked (PostgreSQL): two imports of one list run one after the other
        existing = c.execute(select(F.id, F.format).where(F.code == code).with_for_update()).first()
        if existing is not None and existing.format != file_format:
            raise ForeignListError(f"--list {code}: this list was imported from {existing.format} files; "
                                   f"a {file_format} file would end every designation on it")
        row = {"kind": KIND, "format": file_format, "source": parsed.source, "list_date": parsed.list_date or today,
               "version": version, "sha256": sha256, "imported_at": now}
        if existing is None:
            list_id = c.execute(t.foreign_lists.insert().values(code=code, **row)).inserted_primary_key[0]
        else:
            list_id = existing.id
            c.execute(t.foreign_lists.update().where(F.id == list_id).values(**row))
        active = dict(c.execute(select(D.source_id, D.id).where(D.list_id == list_id, D.ended_on.is_(None))).all())
        added, kept = [], []
        for d in parsed.designations:
            values = {"schema": d.schema, "name": d.name, "aliases": d.aliases, "identifiers": d.identifiers,
                      "details": d.details, "listed_on": d.listed_on, "list_version": version}
            if d.source_id in active:
                kept.append({"row_id": active.pop(d.source_id), **values})
            else:
                added.append({"list_id": list_id, "source_id": d.source_id, "first_version": version, **values})
        if added:
            c.execute(t.foreign_designations.insert(), added)
        if kept:
            c.execute(t.foreign_designations.update().where(D.id == bindparam("row_id")), kept)
        ended = sorted(active)
        if ended:
            c.execute(t.foreign_designations.update().where(D.id == bindparam("row_id")),
                      [{"row_id": active[s], "ended_on": today, "ended_version": version} for s in ended])
        outcome = {"list": code, "kind": KIND, "format": file_format, "source": parsed.source,
                   "date": row["list_date"], "version": version, "sha256": sha256, "file": path.name,
                   "designations": len(parsed.designations), "added": len(added), "kept": len(kept),
                   "ended": len(ended), "ended_source_ids": ended, "ended_on": today if ended else None,
                   "persons_skipped": parsed.persons_skipped, "others_skipped": parsed.others_skipped,
                   "identifiers_refused": parsed.identifiers_refused,
                   "identifiers_refused_examples": parsed.refused_examples}
        append_event(c, actor=actor, action="foreign_list.imported", object_type="foreign_list", object_id=code,
                     payload={k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in outcome.items()
                              if k != "identifiers_refused_examples"},
                     legal_basis=pack.foreign_lists.person_legal_basis if keep_persons else None)
    return outcome
