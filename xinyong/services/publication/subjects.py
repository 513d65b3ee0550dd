"""The subject's side: sign-in credentials, its whole file, and its cases.

A credential is issued by an operator (`xinyong subject credential create CODE`) for one
entity: a random secret shown once (as a sign-in link and as a code), stored only as its
SHA-256, valid for a number of hours and usable once. Redeeming it opens a session on the
portal; everything the subject does there goes through the due-process services with the
actor ``subject:<entity key>``, so the audit trail says who acted.

A subject sees its own file whole: every record linked to it (public, shared and
restricted categories, revoked versions too), its listings in every state, and the
objections and repair applications about them. Other people's ID, document and mobile numbers
and addresses (a firm's legal representative, a guarantor named in the court's text) stay masked
even there, as `domain.privacy.mask_text` masks them on public surfaces.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import orjson
from sqlalchemy import Engine, delete, or_, select, update
from sqlalchemy.engine import Connection

from xinyong.domain.calendar import add_months
from xinyong.domain.identifiers import mask_record_key, normalise_code
from xinyong.domain.pack import Pack
from xinyong.domain.privacy import PersonNumbers, mask_value
from xinyong.domain.decisions import in_force
from xinyong.domain.records import is_published, publicity_end
from xinyong.services.lists.due_process import Actor, DueProcessError, apply_repair, file_objection, list_listings
from xinyong.services.resolution.entities import current_records, entity_file, find_entity_id
from xinyong.services.intake.files import StoredFile, store_files
from xinyong.services.operations.keys import secret_hash
from xinyong.store import tables as t
from xinyong.store.audit import append_event, subject_actor

SECRET_BYTES = 24  # 32 URL-safe characters
MAX_VALID_HOURS = 24 * 30
OBJECTABLE = ("notified", "under_review", "effective")


class CredentialError(Exception):
    """A credential that cannot be issued or redeemed; the message says why (in English), and
    `code` with `params` say it for pages to translate: unknown, revoked, used (`on`), expired (`on`)."""

    def __init__(self, message: str, code: str = "unknown", **params: str):
        super().__init__(message)
        self.code, self.params = code, params


class SubjectError(Exception):
    """A subject's request that cannot be taken (not its record or listing, missing input)."""


def _not_another_subjects(entity_key: str) -> Any:
    """Objections of the subject itself or of an authority: another subject's objection about a
    record since moved to this file stays that subject's (its reason and attachments are its own;
    小米 saw 中国平安's and could download its files)."""
    O = t.objections.c
    return or_(O.filed_by == subject_actor(entity_key), O.filed_by.is_(None),
               ~O.filed_by.startswith(subject_actor(""), autoescape=True))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes: they were stored in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


# -- credentials -------------------------------------------------------------------------------

def issue_credential_details(engine: Engine, code: str, valid_hours: float = 72, *,
                             actor: str = "cli") -> tuple[str, dict[str, Any]]:
    """Issue a one-time credential for the entity with this key or identifier: (secret, what was stored)."""
    if not 0 < valid_hours <= MAX_VALID_HOURS:
        raise CredentialError(f"a credential is valid for more than 0 and at most {MAX_VALID_HOURS} hours")
    secret = secrets.token_urlsafe(SECRET_BYTES)
    now = _now()
    expires = now + dt.timedelta(hours=valid_hours)
    with engine.begin() as c:
        entity_id = find_entity_id(c, code)
        if entity_id is None:
            raise CredentialError(f"no entity with key or identifier {code!r}")
        key = c.execute(select(t.entities.c.key).where(t.entities.c.id == entity_id)).scalar_one()
        credential_id = c.execute(t.subject_credentials.insert().values(
            entity_id=entity_id, secret_sha256=secret_hash(secret), created_at=now, expires_at=expires,
        ).returning(t.subject_credentials.c.id)).scalar_one()
        append_event(c, actor=actor, action="subject.credential_issued", object_type="subject_credential",
                     object_id=str(credential_id), payload={"entity": key, "expires_at": expires.isoformat()})
    return secret, {"id": credential_id, "entity": key, "created_at": now, "expires_at": expires}


def issue_credential(engine: Engine, entity_key: str, valid_hours: float = 72, *, actor: str = "cli") -> str:
    """A random secret, shown once; only its SHA-256 is stored."""
    return issue_credential_details(engine, entity_key, valid_hours, actor=actor)[0]


def _usable(c: Connection, secret: str, now: dt.datetime) -> Any:
    """The credential's row if it can be used now, else CredentialError saying why."""
    secret = (secret or "").strip()
    if not secret or len(secret) > 200:
        raise CredentialError("unknown sign-in code")
    s = t.subject_credentials.c
    row = c.execute(select(s.id, s.entity_id, s.expires_at, s.used_at, s.revoked_at)
                    .where(s.secret_sha256 == secret_hash(secret))).first()
    if row is None:
        raise CredentialError("unknown sign-in code")
    if row.revoked_at is not None:
        raise CredentialError("this sign-in code was revoked; ask for a new one", "revoked")
    if row.used_at is not None:
        on = f"{_utc(row.used_at):%Y-%m-%d %H:%M} UTC"
        raise CredentialError(f"this sign-in code was already used on {on}; ask for a new one", "used", on=on)
    if _utc(row.expires_at) <= now:
        on = f"{_utc(row.expires_at):%Y-%m-%d %H:%M} UTC"
        raise CredentialError(f"this sign-in code expired on {on}; ask for a new one", "expired", on=on)
    return row


def check_credential(engine: Engine, secret: str) -> None:
    """CredentialError if the credential cannot be used now; it is not used up by looking."""
    with engine.connect() as c:
        _usable(c, secret, _now())


def redeem_credential(engine: Engine, secret: str) -> str:
    """The entity key the credential was issued for; the credential cannot be used again."""
    s = t.subject_credentials.c
    now = _now()
    with engine.begin() as c:
        row = _usable(c, secret, now)
        used = c.execute(update(t.subject_credentials).where(s.id == row.id, s.used_at.is_(None))
                         .values(used_at=now)).rowcount
        if not used:  # redeemed at the same moment by another request
            raise CredentialError("this sign-in code was already used; ask for a new one", "used", on="")
        key = c.execute(select(t.entities.c.key).where(t.entities.c.id == row.entity_id)).scalar_one()
        append_event(c, actor=subject_actor(key), action="subject.signed_in", object_type="subject_credential",
                     object_id=str(row.id), payload={"entity": key})
    return key


def revoke_credentials(engine: Engine, code: str, *, actor: str = "cli", reason: str | None = None) -> int:
    """Revoke every unused credential of an entity and end its portal sessions; returns how many
    credentials."""
    s = t.subject_credentials.c
    with engine.begin() as c:
        entity_id = find_entity_id(c, code)
        if entity_id is None:
            raise CredentialError(f"no entity with key or identifier {code!r}")
        count = c.execute(update(t.subject_credentials).where(
            s.entity_id == entity_id, s.used_at.is_(None), s.revoked_at.is_(None)).values(revoked_at=_now())).rowcount
        # the sessions its used credentials opened end at once: a copied cookie stops working
        sessions = c.execute(delete(t.web_sessions).where(t.web_sessions.c.subject_entity_id == entity_id)).rowcount
        if count or sessions:
            append_event(c, actor=actor, action="subject.credentials_revoked", object_type="entity",
                         object_id=str(entity_id), reason=reason, payload={"count": count, "sessions_ended": sessions})
    return count


# -- the subject's file --------------------------------------------------------------------------

def _entity_id(c: Connection, entity_key: str) -> int:
    entity_id = c.execute(select(t.entities.c.id).where(t.entities.c.key == entity_key)).scalar()
    if entity_id is None:
        raise SubjectError(f"no entity {entity_key!r}")
    return entity_id


def _own_ids(c: Connection, entity_id: int) -> set[str]:
    i = t.entity_identifiers.c
    return {v for v, in c.execute(select(i.value).where(i.entity_id == entity_id, i.scheme == "resident_id"))}


def _mask_others(value: Any, own: set[str], person_numbers: PersonNumbers | None = None) -> Any:
    """A field's value as its subject sees it: its own ID number whole; anybody else's (a guarantor, an
    applicant, a co-debtor named in the court's text), their document and mobile numbers and addresses,
    masked as every public surface masks them, in free text as in an ID column."""
    if isinstance(value, str) and normalise_code(value) in own:
        return value
    return mask_value(value, person_numbers)


def _fields(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else orjson.loads(value)




def subject_file(engine: Engine, pack: Pack, entity_key: str, today: dt.date, language: str = "en") -> dict[str, Any]:
    """Identity, every record (newest version of each, with its fields labelled), every listing
    with what the subject may do about it, and its cases."""
    data = entity_file(engine, entity_key, pack.person_schemes)
    with engine.connect() as c:
        entity_id = _entity_id(c, entity_key)
        own = _own_ids(c, entity_id)
        rows = current_records(c, entity_id)
        keys = [row.record_key for row in rows]
        O = t.objections.c
        open_on_record = {k for k, in c.execute(select(O.record_key).where(
            O.record_key.in_(keys), O.state == "open", _not_another_subjects(entity_key)))} if keys else set()
    on_lists = {listing["list"] for listing in list_listings(engine, entity=entity_key, as_of=today)
                if in_force(listing["state"], listing["effective_from"], listing["effective_to"], today)}
    records, numbers = [], pack.person_numbers
    for row in rows:
        category = pack.category(row.category)
        fields = _fields(row.fields)
        types = {f.name: f.type for f in pack.fields_of(category)}
        published = is_published(category, fields)
        labels = {f.name: (f.names.get(language) if f.names else None) or f.name for f in pack.fields_of(category)}
        classes = {f.name: f.classification.value for f in pack.fields_of(category)}
        records.append({
            "id": row.id, "record_key": mask_record_key(row.record_key), "version": row.version,
            "category": row.category, "category_title": category.names.model_dump(),
            "classification": category.classification.value, "authority": row.authority,
            "authority_title": pack.authority(row.authority).names.model_dump(), "status": row.status,
            "decision_date": row.decision_date, "published": published,
            "publicity_ends": publicity_end(category, row.decision_date, fields, on_lists, types) if published else None,
            "fields": [{"name": k, "label": labels.get(k, k), "classification": classes.get(k, category.classification.value),
                        "value": _mask_others(v, own, numbers)} for k, v in fields.items() if v not in (None, "")],
            "objection_open": row.record_key in open_on_record,
            "may_object": row.status == "active" and row.record_key not in open_on_record})
    records.sort(key=lambda x: (x["decision_date"] or dt.date.min, x["record_key"]), reverse=True)
    listings = []
    for listing in list_listings(engine, entity=entity_key):
        spec = pack.list_(listing["list"])
        repair = spec.repair
        earliest = (add_months(listing["effective_from"], repair.min_months_served)
                    if listing["effective_from"] else None)
        listings.append({**listing, "list_title": spec.names.model_dump(), "kind": spec.kind,
                         "legal_basis": spec.legal_basis,
                         "may_object": listing["state"] in OBJECTABLE,
                         "repair": {"allowed": repair.allowed, "min_months_served": repair.min_months_served,
                                    "commitment_required": repair.commitment_required,
                                    "evidence_required": repair.evidence_required, "earliest": earliest},
                         "may_repair": (repair.allowed and listing["state"] == "effective"
                                        and earliest is not None and earliest <= today)})
    identity = {k: data[k] for k in ("key", "kind", "verified", "status", "region", "established", "name", "names",
                                     "identifiers")}
    identity["address"] = data["address"]
    identity["relations"] = data["relations"]  # person IDs already masked
    cases = subject_cases(engine, entity_key)
    pending = {case["listing_id"] for case in cases["repairs"] if case["state"] == "pending"}
    objected = {case["listing_id"] for case in cases["objections"] if case["state"] == "open"}
    for listing in listings:
        if listing["id"] in objected:
            listing["may_object"] = False
            listing["objection_open"] = True
        if listing["id"] in pending:
            listing["may_repair"] = False
            listing["repair_pending"] = True
    return {**identity, "records": records, "listings": listings, **cases}


def subject_cases(engine: Engine, entity_key: str) -> dict[str, list[dict[str, Any]]]:
    """The objections about the subject's listings or records and its repair applications, newest first."""
    O, R, A = t.objections.c, t.repairs.c, t.objection_attachments.c
    with engine.connect() as c:
        entity_id = _entity_id(c, entity_key)
        listing_ids = [i for i, in c.execute(select(t.listings.c.id).where(t.listings.c.entity_id == entity_id))]
        keys = [row.record_key for row in current_records(c, entity_id)]
        clauses = [O.filed_by == subject_actor(entity_key)]  # its own, even about a record since moved
        if listing_ids:
            clauses.append(O.listing_id.in_(listing_ids))
        if keys:
            clauses.append(O.record_key.in_(keys))
        objections = [dict(o) for o in c.execute(select(t.objections)
                                                 .where(or_(*clauses), _not_another_subjects(entity_key))
                                                 .order_by(O.id.desc())).mappings()]
        attachments: dict[int, list[dict[str, Any]]] = {}
        if objections:
            for a in c.execute(select(A.objection_id, A.name, A.sha256, A.size, A.content_type)
                               .where(A.objection_id.in_([o["id"] for o in objections])).order_by(A.id)).mappings():
                attachments.setdefault(a["objection_id"], []).append({k: a[k] for k in ("name", "sha256", "size",
                                                                                           "content_type")})
        repairs = [dict(x) for x in c.execute(select(R.id, R.listing_id, R.state, R.applied_on, R.applied_by,
                                                     R.decided_on, R.decided_by, R.decision_reason, R.evidence,
                                                     R.commitment)
                                              .where(R.listing_id.in_(listing_ids)).order_by(R.id.desc())
                                              ).mappings()] if listing_ids else []
    for o in objections:
        o["record_key"] = mask_record_key(o["record_key"]) if o["record_key"] else None
        o["attachments"] = attachments.get(o["id"], [])
        o["kind"] = "objection"
    for x in repairs:
        x["evidence"] = x["evidence"] if isinstance(x["evidence"], list) else orjson.loads(x["evidence"])
        x["kind"] = "repair"
    return {"objections": objections, "repairs": repairs}


# -- the subject acts ------------------------------------------------------------------------------

def object_as_subject(engine: Engine, pack: Pack, entity_key: str, *, listing_id: int | None = None,
                      record_id: int | None = None, reason: str,
                      files: list[tuple[str | None, bytes, str | None]] = (), on: dt.date) -> dict[str, Any]:
    """The subject objects to one of its listings or records, with its reason and attachments."""
    if (listing_id is None) == (record_id is None):
        raise SubjectError("object to one listing or one record")
    reason = (reason or "").strip()
    if not reason:
        raise SubjectError("an objection needs its reason")
    r = t.records.c
    with engine.connect() as c:
        entity_id = _entity_id(c, entity_key)
        record_key = None
        if record_id is not None:
            record_key = c.execute(select(r.record_key).where(r.id == record_id)).scalar()
            if record_key not in {row.record_key for row in current_records(c, entity_id)}:
                raise SubjectError(f"record {record_id} is not in your file")
        else:
            owner = c.execute(select(t.listings.c.entity_id).where(t.listings.c.id == listing_id)).scalar()
            if owner != entity_id:
                raise SubjectError(f"listing {listing_id} is not in your file")
    stored = store_files(engine, list(files))
    try:
        return file_objection(engine, pack, listing_id=listing_id, record_key=record_key, on=on,
                              actor=Actor(subject_actor(entity_key), reason),
                              attachments=[f.as_dict() for f in stored])
    except DueProcessError as exc:
        raise SubjectError(str(exc)) from None


def repair_as_subject(engine: Engine, pack: Pack, entity_key: str, listing_id: int, *, commitment: str,
                      files: list[tuple[str | None, bytes, str | None]] = (), on: dt.date) -> dict[str, Any]:
    """The subject applies for credit repair of one of its listings: commitment and evidence."""
    with engine.connect() as c:
        entity_id = _entity_id(c, entity_key)
        if c.execute(select(t.listings.c.entity_id).where(t.listings.c.id == listing_id)).scalar() != entity_id:
            raise SubjectError(f"listing {listing_id} is not in your file")
    chosen = [f for f in files if f[1] or f[0]]  # an empty file input sends no name and no bytes
    stored: list[StoredFile] = store_files(engine, chosen)
    try:
        return apply_repair(engine, pack, listing_id, commitment or "",
                            [(s.name, f[1]) for s, f in zip(stored, chosen)], on, Actor(subject_actor(entity_key)))
    except DueProcessError as exc:
        raise SubjectError(str(exc).replace(" (--evidence FILE)", "")) from None


def owns_file(engine: Engine, entity_key: str, sha256: str) -> str | None:
    """The file's name if it is attached to one of the subject's cases, else None."""
    cases = subject_cases(engine, entity_key)
    for o in cases["objections"]:
        for a in o["attachments"]:
            if a["sha256"] == sha256:
                return a["name"]
    for x in cases["repairs"]:
        for e in x["evidence"]:
            if e["sha256"] == sha256:
                return e["name"]
    return None
