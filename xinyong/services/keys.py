"""API keys of authorities: issue (shown once), list, revoke, and check a presented key.

A key belongs to one authority of the pack and carries scopes:
`screen` (screening, changes, feedback), `read_restricted` (restricted records, with a
stated purpose), `operate` (the credit centre's own work), and `submit` or
`submit:CATEGORY` (records of the categories the authority is competent for).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, select, update

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

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

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
        if base == "submit" and category and category not in competences:
            raise KeyError_(f"{authority} is not competent for {category!r}; it may submit: "
                            f"{', '.join(competences) or 'nothing'}")
        if base == "submit" and not competences:
            raise KeyError_(f"{authority} may not submit any category of records")
    return sorted(set(scopes))


def create_key(engine: Engine, pack: Pack, authority: str, scopes: list[str], *, rate_per_second: float = 50.0,
               burst: int = 100, label: str | None = None, actor: str = "cli") -> tuple[str, dict]:
    """Issue a key; returns the secret (never stored) and what was stored."""
    scopes = check_scopes(pack, authority, scopes)
    if rate_per_second <= 0 or burst < 1:
        raise KeyError_("the rate limit must be positive and the burst at least 1")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = {"authority": authority, "prefix": secret[:10], "secret_sha256": secret_hash(secret), "scopes": scopes,
           "rate_per_second": rate_per_second, "burst": burst, "label": label,
           "created_at": dt.datetime.now(dt.timezone.utc)}
    with engine.begin() as c:
        key_id = c.execute(t.api_keys.insert().values(**row)).inserted_primary_key[0]
        append_event(c, actor=actor, action="key.created", object_type="api_key", object_id=str(key_id),
                     payload={"authority": authority, "scopes": scopes, "prefix": row["prefix"],
                              "rate_per_second": rate_per_second, "burst": burst})
    shown = {k: v for k, v in row.items() if k != "secret_sha256"}
    return secret, {"id": key_id, **shown}


def list_keys(engine: Engine) -> list[dict]:
    k = t.api_keys.c
    with engine.connect() as c:
        return [dict(r) for r in c.execute(select(k.id, k.authority, k.prefix, k.scopes, k.rate_per_second, k.burst,
                                                  k.label, k.created_at, k.revoked_at).order_by(k.id)).mappings()]


def revoke_key(engine: Engine, key_id: int, actor: str = "cli", reason: str | None = None) -> None:
    k = t.api_keys.c
    with engine.begin() as c:
        done = c.execute(update(t.api_keys).where(k.id == key_id, k.revoked_at.is_(None))
                         .values(revoked_at=dt.datetime.now(dt.timezone.utc))).rowcount
        if not done:
            raise KeyError_(f"no active key {key_id}")
        append_event(c, actor=actor, action="key.revoked", object_type="api_key", object_id=str(key_id),
                     reason=reason, payload={})


def active_keys(engine: Engine) -> dict[str, ApiKey]:
    """Every usable key by its secret's hash, for checking presented keys in memory."""
    k = t.api_keys.c
    with engine.connect() as c:
        rows = c.execute(select(k.id, k.authority, k.prefix, k.secret_sha256, k.scopes, k.rate_per_second, k.burst)
                         .where(k.revoked_at.is_(None))).all()
    return {r.secret_sha256: ApiKey(r.id, r.authority, r.prefix, frozenset(r.scopes), r.rate_per_second, r.burst)
            for r in rows}
