"""API keys of authorities: issue (shown once), list, rotate, revoke, and check a presented key.

A key belongs to one authority of the pack and carries scopes:
`screen` (screening, changes, feedback), `read_restricted` (restricted records, with a
stated purpose), `operate` (its own authority's work: its batches, rejects and review queue),
and `submit` or `submit:CATEGORY` (records of the categories the authority is competent for).
An authority with no competences (a consumer of screening) gets neither operate nor submit.
A key may carry an expiry (the last day it works, in the pack's calendar). Revoking a key ends
at once its console sessions and the webhook watches it registered; rotating it passes the watches
to the new key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.engine import Connection

from xinyong.domain.calendar import pack_today
from xinyong.domain.pack import Pack, PackError
from xinyong.store import tables as t
from xinyong.store.audit import append_event

BASE_SCOPES = ("screen", "read_restricted", "operate", "submit")
KEY_PREFIX = "xy_"


class KeyError_(Exception):
    """A key that cannot be issued or used, with the reason."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    authority: str
    prefix: str
    scopes: frozenset[str]
    rate_per_second: float
    burst: int
    expires_at: float | None = None  # epoch seconds; None: until revoked

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (time.time() if now is None else now) >= self.expires_at

    def may_submit(self, category: str) -> bool:
        return "submit" in self.scopes or f"submit:{category}" in self.scopes


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(pack: Pack, authority: str, scopes: list[str]) -> list[str]:
    """The scopes, validated against the pack: submit scopes only within competence."""
    try:
        competences = pack.authority(authority).competences
    except PackError as exc:
        raise KeyError_(str(exc)) from None
    if not scopes:
        raise KeyError_("a key needs at least one scope: " + ", ".join(BASE_SCOPES) + ", submit:CATEGORY")
    for scope in scopes:
        base, _, category = scope.partition(":")
        if base not in BASE_SCOPES or (category and base != "submit"):
            raise KeyError_(f"unknown scope {scope!r}; scopes are: {', '.join(BASE_SCOPES)}, submit:CATEGORY")
        if base in ("submit", "operate") and not competences:
            # a consumer of screening (a bank, a trading centre) has no records of its own to submit,
            # review or decide on
            raise KeyError_(f"{authority} has no competences in the pack: it may not {base}; "
                            "give it screen or read_restricted")
        if base == "submit" and category and category not in competences:
            raise KeyError_(f"{authority} is not competent for {category!r}; it may submit: "
                            f"{', '.join(competences)}")
    return sorted(set(scopes))


def expiry(pack: Pack, last_day: dt.date | None) -> dt.datetime | None:
    """A key given `--expires D` works through day D of the pack's calendar: it ends at the next midnight
    there (stored in UTC)."""
    if last_day is None:
        return None
    from zoneinfo import ZoneInfo

    midnight = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), ZoneInfo(pack.calendar.timezone))
    return midnight.astimezone(dt.timezone.utc)


def create_key(engine: Engine, pack: Pack, authority: str, scopes: list[str], *, rate_per_second: float = 50.0,
               burst: int = 100, label: str | None = None, expires: dt.date | None = None,
               actor: str = "cli") -> tuple[str, dict]:
    """Issue a key; returns the secret (never stored) and what was stored. `expires`: the last day it works."""
    scopes = check_scopes(pack, authority, scopes)
    if rate_per_second <= 0 or burst < 1:
        raise KeyError_("the rate limit must be positive and the burst at least 1")
    if expires is not None and expires < pack_today(pack):
        raise KeyError_(f"--expires {expires} is already past (today is {pack_today(pack)})")
    with engine.begin() as c:
        return _insert_key(c, authority, scopes, rate_per_second, burst, label, expiry(pack, expires), actor)


def _insert_key(c: Connection, authority: str, scopes: list[str], rate_per_second: float, burst: int,
                label: str | None, expires_at: dt.datetime | None, actor: str,
                rotated_from: int | None = None) -> tuple[str, dict]:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = {"authority": authority, "prefix": secret[:10], "secret_sha256": secret_hash(secret), "scopes": scopes,
           "rate_per_second": rate_per_second, "burst": burst, "label": label,
           "created_at": dt.datetime.now(dt.timezone.utc), "expires_at": expires_at}
    key_id = c.execute(t.api_keys.insert().values(**row)).inserted_primary_key[0]
    append_event(c, actor=actor, action="key.created", object_type="api_key", object_id=str(key_id),
                 payload={"authority": authority, "scopes": scopes, "prefix": row["prefix"],
                          "rate_per_second": rate_per_second, "burst": burst,
                          "expires_at": expires_at.isoformat() if expires_at else None}
                 | ({"rotated_from": rotated_from} if rotated_from is not None else {}))
    shown = {k: v for k, v in row.items() if k != "secret_sha256"}
    return secret, {"id": key_id, **shown}


def rotate_key(engine: Engine, key_id: int, *, actor: str = "cli") -> tuple[str, dict]:
    """A new key with the old one's authority, scopes, limits, label and expiry; the old one is revoked
    in the same transaction (its console sessions end). Returns the new secret (shown once)."""
    k = t.api_keys.c
    with engine.begin() as c:
        old = c.execute(select(t.api_keys).where(k.id == key_id, k.revoked_at.is_(None))).mappings().first()
        if old is None:
            raise KeyError_(f"no active key {key_id}")
        expires_at = old["expires_at"]
        if expires_at is not None and expires_at.tzinfo is None:  # SQLite gives naive UTC back
            expires_at = expires_at.replace(tzinfo=dt.timezone.utc)
        if expires_at is not None and expires_at <= dt.datetime.now(dt.timezone.utc):
            raise KeyError_(f"key {key_id} expired on {expires_at:%Y-%m-%d %H:%M} UTC; create a new one")
        secret, stored = _insert_key(c, old["authority"], list(old["scopes"]), old["rate_per_second"], old["burst"],
                                     old["label"], expires_at, actor, rotated_from=key_id)
        _revoke(c, key_id, actor, f"rotated: replaced by key {stored['id']}", successor=stored["id"])
    return secret, stored


def list_keys(engine: Engine) -> list[dict]:
    k = t.api_keys.c
    with engine.connect() as c:
        return [dict(r) for r in c.execute(select(k.id, k.authority, k.prefix, k.scopes, k.rate_per_second, k.burst,
                                                  k.label, k.created_at, k.expires_at, k.revoked_at)
                                           .order_by(k.id)).mappings()]


def revoke_key(engine: Engine, key_id: int, actor: str = "cli", reason: str | None = None) -> None:
    with engine.begin() as c:
        _revoke(c, key_id, actor, reason)


def _revoke(c: Connection, key_id: int, actor: str, reason: str | None, successor: int | None = None) -> None:
    """Revoke a key and end at once its console sessions and the webhook watches it registered (a leaked
    key's watch would go on POSTing to whoever registered it), their pending deliveries cancelled; a
    rotated key's watches pass to its `successor`."""
    k, s, d = t.api_keys.c, t.subscriptions.c, t.webhook_deliveries.c
    now = dt.datetime.now(dt.timezone.utc)
    done = c.execute(update(t.api_keys).where(k.id == key_id, k.revoked_at.is_(None)).values(revoked_at=now)).rowcount
    if not done:
        raise KeyError_(f"no active key {key_id}")
    sessions = c.execute(delete(t.web_sessions).where(t.web_sessions.c.api_key_id == key_id)).rowcount
    watching = (s.key_id == key_id, s.deleted_at.is_(None))
    if successor is not None:
        watches = {"subscriptions_moved": c.execute(update(t.subscriptions).where(*watching)
                                                    .values(key_id=successor)).rowcount}
    else:
        c.execute(update(t.webhook_deliveries).where(d.subscription_id.in_(select(s.id).where(*watching)),
                                                     d.state == "pending").values(state="cancelled"))
        watches = {"subscriptions_ended": c.execute(update(t.subscriptions).where(*watching)
                                                    .values(deleted_at=now)).rowcount}
    payload = {name: count for name, count in {"sessions_ended": sessions, **watches}.items() if count}
    append_event(c, actor=actor, action="key.revoked", object_type="api_key", object_id=str(key_id),
                 reason=reason, payload=payload)


def active_keys(engine: Engine) -> dict[str, ApiKey]:
    """Every unrevoked key by its secret's hash, for checking presented keys in memory (an expired one is
    refused by `ApiKey.expired` at the moment it expires, whenever the keys were read)."""
    k = t.api_keys.c
    with engine.connect() as c:
        rows = c.execute(select(k.id, k.authority, k.prefix, k.secret_sha256, k.scopes, k.rate_per_second, k.burst,
                                k.expires_at).where(k.revoked_at.is_(None))).all()
    return {r.secret_sha256: ApiKey(r.id, r.authority, r.prefix, frozenset(r.scopes), r.rate_per_second, r.burst,
                                    _epoch(r.expires_at))
            for r in rows}


def _epoch(value: dt.datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp()
