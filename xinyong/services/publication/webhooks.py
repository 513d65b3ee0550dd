"""Watchlists and webhook alerts.

A consumer with a `screen` key registers entities (by key or code) and a URL
(`POST /v1/subscriptions`); it gets an id and a secret, shown once. Every event of the public
change log (`services.publication.opendata.capture`: a listing took effect or ended, a public record was
published, changed or withdrawn, an entity's public identity changed) about a watched entity is
POSTed to the URL as JSON `{event_id, type, entity, occurred_at, change}`, signed in
`X-Xinyong-Signature: sha256=<hex HMAC-SHA256 of the raw body with the secret>`.

Delivery is at least once: `fan_out` writes one `webhook_deliveries` row per (subscription,
event) in the transaction that moves its cursor (the outbox), and `deliver_due` POSTs every
due row, marking it delivered on a 2xx answer and otherwise trying again after 1, 2, 4 ... s
(at most `XINYONG_WEBHOOK_MAX_BACKOFF_SECONDS`). The `event_id` is the stored event's, so a
duplicate is only a retry. `xinyong serve` runs the worker (`Worker`): changes made by the CLI
in another process reach the store, the worker's capture sees the store move, and delivers them.

URLs that resolve to private, loopback, link-local or reserved addresses are refused, when
registered and again before each attempt (a name may be re-pointed), unless
`XINYONG_WEBHOOK_ALLOW_PRIVATE=1`. Redirects are not followed. A natural person is watched
only for a stated purpose of the pack and while on a list that covers persons: its legal basis
is kept with the subscription. When that basis ends (the listing ended or its term is over, the
pack no longer gives it, the purpose is gone), `close_lapsed` closes the watch of that person:
no event about them after the closing, the subscription shows it closed with the reason, and an
audit event records it. Creating and deleting a subscription are audit events; a subscription is
fanned out and delivered only while the key that registered it is neither revoked nor expired.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import hmac
import http.client
import ipaddress
import logging
import secrets
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import Engine, and_, bindparam, func, or_, select, update

from xinyong import settings
from xinyong.domain.calendar import pack_today
from xinyong.domain.decisions import in_force
from xinyong.domain.identifiers import is_valid_resident_id, normalise_code
from xinyong.domain.pack import Pack
from xinyong.services.operations.keys import ApiKey
from xinyong.store import tables as t
from xinyong.store.audit import append_event
from xinyong.store.db import get_setting, set_setting

log = logging.getLogger("xinyong.webhooks")
SIGNATURE_HEADER = "X-Xinyong-Signature"
MAX_ENTITIES = 10_000
FANNED = "webhooks.fanned"
BATCH = 1000
CONCURRENCY = 16
TIMEOUT_SECONDS = 10.0


class SubscriptionError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):  # an IPv4 address inside an IPv6 one is judged as itself
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            ip = inner
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or not ip.is_global)


def check_url(url: str) -> str:
    """The URL if events may be sent there, else SubscriptionError (422)."""
    if len(url) > 2000 or "\x00" in url:
        raise SubscriptionError(422, "invalid_url", "a webhook URL is at most 2,000 characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise SubscriptionError(422, "invalid_url", "not a URL (its host or port is malformed)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SubscriptionError(422, "invalid_url", "a webhook URL is http:// or https:// with a host")
    if parts.username or parts.password:
        raise SubscriptionError(422, "invalid_url", "a webhook URL carries no user name or password")
    if settings.WEBHOOK_ALLOW_PRIVATE.value() == 1:
        return url
    try:
        port = parts.port
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port or 443, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError, ValueError, OSError):
        # a name that does not resolve now may later (DNS): kept, checked again at each delivery
        if parts.hostname and _literal(parts.hostname):
            raise SubscriptionError(403, "private_url", f"{parts.hostname} is not a public address") from None
        return url
    if any(_private(a) for a in addresses):
        raise SubscriptionError(403, "private_url", f"{parts.hostname} resolves to a private or loopback address; "
                                                    f"refused ({settings.WEBHOOK_ALLOW_PRIVATE.name}=1 allows it)")
    return url


def public_address(url: str) -> str:
    """The one address a delivery connects to, resolved and checked here: a name re-pointed
    between a check and the connection (DNS rebinding) never reaches a private address."""
    parts = urlsplit(url)
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(
            parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError, ValueError, OSError) as exc:
        raise SubscriptionError(502, "unresolved", f"{parts.hostname} does not resolve ({exc})") from None
    if not addresses or any(_private(a) for a in addresses):
        raise SubscriptionError(403, "private_url", f"{parts.hostname} resolves to a private or loopback address")
    return sorted(addresses)[0]


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


# -- subscriptions -----------------------------------------------------------------------------------

def _entity(c: Any, code: str, person_schemes: frozenset[str] = frozenset()) -> Any:
    from xinyong.services.resolution.entities import find_entity_id

    if not isinstance(code, str) or not code.strip() or len(code) > 64 or "\x00" in code:
        raise SubscriptionError(422, "invalid_request", "each entity is a key or a code (text)")
    if is_valid_resident_id(normalise_code(code)):
        raise SubscriptionError(422, "person_by_key", "a person is watched by its entity key, never by an ID number")
    # nor by a number of the pack's schemes of persons' numbers: the answer would confirm whose it is
    entity_id = find_entity_id(c, code.strip(), person_schemes)
    if entity_id is None:
        raise SubscriptionError(404, "not_found", f"no entity with key or code {code!r}")
    return c.execute(select(t.entities.c.id, t.entities.c.key, t.entities.c.kind)
                     .where(t.entities.c.id == entity_id)).one()


def _person_basis(c: Any, pack: Pack, entity_id: int) -> str | None:
    """The legal basis under which a person may be watched: a list covering natural persons on which
    a listing of theirs is in force today."""
    return _person_standing(c, pack, entity_id)[0]


def _person_standing(c: Any, pack: Pack, entity_id: int) -> tuple[str | None, str | None]:
    """(legal basis, None) while a person may be watched; else (None, why not): `listing_ended`
    (no listing of theirs in force: ended, or its term over) or `legal_basis_removed` (in force
    only on lists the pack no longer gives a basis to cover persons)."""
    L = t.listings.c
    today = pack_today(pack)
    listed = False
    for list_code, state, start, end in c.execute(select(L.list_code, L.state, L.effective_from, L.effective_to)
                                                  .where(L.entity_id == entity_id).order_by(L.id)):
        if not in_force(state, start, end, today):
            continue
        listed = True
        spec = next((x for x in pack.lists if x.code == list_code), None)  # a list the pack dropped: no basis
        if spec is not None and spec.legal_basis \
                and "natural_person" in [str(getattr(k, "value", k)) for k in spec.subject_kinds]:
            return spec.legal_basis, None
    return None, "legal_basis_removed" if listed else "listing_ended"


def create_subscription(engine: Engine, pack: Pack, key: ApiKey, entities: list[str], url: str,
                        purpose: str | None = None) -> dict[str, Any]:
    if not entities:
        raise SubscriptionError(422, "invalid_request", "name at least one entity")
    if len(entities) > MAX_ENTITIES:
        raise SubscriptionError(413, "too_many_entities", f"at most {MAX_ENTITIES:,} entities in one subscription")
    check_url(url)
    if purpose is not None and purpose not in {p.code for p in pack.purposes}:
        raise SubscriptionError(422, "unknown_purpose", f"unknown purpose {purpose!r}")
    from xinyong.services.publication.opendata import head

    keys, bases = [], set()
    with engine.connect() as c:
        for code in entities:
            row = _entity(c, code, pack.person_schemes)
            if row.kind == "natural_person":
                if row.key != code.strip():
                    raise SubscriptionError(422, "person_by_key", "a person is watched by its entity key")
                basis = _person_basis(c, pack, row.id)
                if basis is None:
                    raise SubscriptionError(403, "person_not_watchable",
                                            f"{row.key} is a natural person on no list that covers persons: "
                                            "the pack gives no legal basis to watch them")
                if purpose is None:
                    raise SubscriptionError(422, "purpose_missing", "state the purpose of watching a natural person")
                bases.add(basis)
            if row.key not in keys:
                keys.append(row.key)
        from_seq = head(c)
    subscription_id, secret = uuid.uuid4().hex, secrets.token_hex(32)
    row = {"id": subscription_id, "key_id": key.id, "authority": key.authority, "url": url, "secret": secret,
           "entities": keys, "purpose": purpose, "legal_basis": "; ".join(sorted(bases)) or None,
           "from_seq": from_seq, "created_at": dt.datetime.now(dt.timezone.utc), "deleted_at": None, "closed": None}
    with engine.begin() as c:
        c.execute(t.subscriptions.insert().values(**row))
        append_event(c, actor=_actor(key), action="subscription.created", object_type="subscription",
                     object_id=subscription_id, legal_basis=row["legal_basis"],
                     payload={"entities": keys, "purpose": purpose, "host": urlsplit(url).netloc})
    return {"id": subscription_id, "secret": secret, **_public(row)}


def _actor(key: ApiKey) -> str:
    """Who watches, in the audit chain: the key (a URL's path and the secret are never written there)."""
    return f"{key.authority}/key{key.id}"


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _public(row: Any) -> dict[str, Any]:
    row = dict(row._mapping) if hasattr(row, "_mapping") else row
    entities, closed = _json(row["entities"]), _json(row.get("closed")) or {}
    return {"id": row["id"], "url": row["url"], "entities": entities, "authority": row["authority"],
            "purpose": row["purpose"], "legal_basis": row["legal_basis"], "from_seq": row["from_seq"],
            "created_at": row["created_at"], "state": "closed" if set(entities) <= set(closed) else "open",
            "closed": {key: {"on": item["on"], "reason": item["reason"]} for key, item in closed.items()}}


def get_subscription(engine: Engine, subscription_id: str, key: ApiKey) -> dict[str, Any]:
    s, d = t.subscriptions.c, t.webhook_deliveries.c
    with engine.connect() as c:
        row = c.execute(select(t.subscriptions).where(s.id == subscription_id.replace("\x00", ""),
                                                      s.deleted_at.is_(None))).first()
        if row is None or row.authority != key.authority:
            raise SubscriptionError(404, "not_found", f"no subscription {subscription_id!r} of {key.authority}")
        counts = dict(c.execute(select(d.state, func.count()).where(d.subscription_id == row.id)
                                .group_by(d.state)).all())
    return {**_public(row), "deliveries": {"pending": counts.get("pending", 0),
                                           "delivered": counts.get("delivered", 0)}}


def delete_subscription(engine: Engine, subscription_id: str, key: ApiKey) -> dict[str, Any]:
    found = get_subscription(engine, subscription_id, key)
    s, d = t.subscriptions.c, t.webhook_deliveries.c
    with engine.begin() as c:
        c.execute(update(t.subscriptions).where(s.id == found["id"]).values(deleted_at=dt.datetime.now(dt.timezone.utc)))
        c.execute(update(t.webhook_deliveries).where(d.subscription_id == found["id"], d.state == "pending")
                  .values(state="cancelled"))
        append_event(c, actor=_actor(key), action="subscription.deleted", object_type="subscription",
                     object_id=found["id"], payload={})
    return {"id": found["id"], "deleted": True}


def close_lapsed(engine: Engine, pack: Pack) -> list[dict[str, Any]]:
    """Close the watch of every person whose legal basis ended (their listing ended, its term or
    publicity is over, the pack no longer gives the basis, or the purpose stated is gone): the
    events up to the change log's head now (those telling that the listing ended) still go out,
    none after; the subscription shows why, and an audit event says so. Returns what was closed."""
    from xinyong.services.publication.opendata import head

    s, e = t.subscriptions.c, t.entities.c
    purposes = {p.code for p in pack.purposes}
    today = pack_today(pack).isoformat()
    closed_now = []
    with engine.begin() as c:
        subscriptions = c.execute(select(s.id, s.entities, s.closed, s.purpose, s.legal_basis)
                                  .where(s.deleted_at.is_(None), s.legal_basis.is_not(None))).all()
        for row in subscriptions:
            closed = dict(_json(row.closed) or {})
            keys = [k for k in _json(row.entities) if k not in closed]
            people = c.execute(select(e.id, e.key).where(e.key.in_(keys), e.kind == "natural_person")).all() \
                if keys else []
            changed = False
            for entity_id, key in people:
                basis, reason = _person_standing(c, pack, entity_id)
                if basis is not None and row.purpose not in purposes:
                    reason = "purpose_removed"
                elif basis is not None:
                    continue
                seq = head(c)
                closed[key] = {"on": today, "reason": reason, "seq": seq}
                changed = True
                append_event(c, actor="system", action="subscription.person_closed", object_type="subscription",
                             object_id=row.id, payload={"entity": key, "reason": reason, "seq": seq},
                             reason=reason, legal_basis=row.legal_basis)
                closed_now.append({"subscription": row.id, "entity": key, "reason": reason})
            if changed:
                c.execute(update(t.subscriptions).where(s.id == row.id).values(closed=closed))
    return closed_now


def _key_works(now: dt.datetime) -> Any:
    """A subscription's key, joined, is not revoked and not expired: a watch speaks for the key that
    registered it, and ends with it (an expired key's watch POSTs nothing more to its URL)."""
    k = t.api_keys.c
    return and_(k.id == t.subscriptions.c.key_id, k.revoked_at.is_(None),
                or_(k.expires_at.is_(None), k.expires_at > now))


# -- the outbox --------------------------------------------------------------------------------------

def fan_out(engine: Engine) -> int:
    """One pending delivery per (subscription, event about a watched entity) for the events after the
    cursor; the rows and the cursor move in one transaction."""
    from xinyong.services.publication.opendata import _lock

    s, ev = t.subscriptions.c, t.public_events.c
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as c:
        _lock(c)
        cursor = int(get_setting(c, FANNED) or 0)
        top = c.execute(select(func.max(ev.seq))).scalar() or 0
        if top <= cursor:
            return 0
        watching: dict[str, list[tuple[str, int, float]]] = {}
        for row in c.execute(select(s.id, s.entities, s.from_seq, s.closed).join(t.api_keys, _key_works(now))
                             .where(s.deleted_at.is_(None))):
            closed = _json(row.closed) or {}
            for key in _json(row.entities):
                # a person whose watch closed: nothing after the closing
                until = closed[key]["seq"] if key in closed else float("inf")
                watching.setdefault(key, []).append((row.id, row.from_seq, until))
        rows = []
        if watching:
            for seq, event_id, entity in c.execute(select(ev.seq, ev.event_id, ev.entity)
                                                   .where(ev.seq > cursor, ev.seq <= top).order_by(ev.seq)):
                for subscription_id, from_seq, until in watching.get(entity, ()):
                    if from_seq < seq <= until:
                        rows.append({"subscription_id": subscription_id, "event_seq": seq, "event_id": event_id,
                                     "state": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now})
        for start in range(0, len(rows), 10_000):
            c.execute(t.webhook_deliveries.insert(), rows[start:start + 10_000])
        set_setting(c, FANNED, str(top))
        return len(rows)


@dataclass
class Due:
    id: int
    url: str
    secret: str
    attempts: int
    body: bytes


def due_deliveries(engine: Engine, limit: int = BATCH) -> list[Due]:
    d, s, ev = t.webhook_deliveries.c, t.subscriptions.c, t.public_events.c
    now = dt.datetime.now(dt.timezone.utc)
    with engine.connect() as c:
        rows = c.execute(select(d.id, d.attempts, s.url, s.secret, ev.event_id, ev.type, ev.entity, ev.occurred_at,
                                ev.change)
                         .join(t.subscriptions, s.id == d.subscription_id)
                         .join(t.public_events, ev.seq == d.event_seq)
                         .join(t.api_keys, _key_works(now))
                         .where(d.state == "pending", d.next_attempt_at <= now)
                         .order_by(d.id).limit(limit)).all()
    bodies: dict[str, bytes] = {}
    out = []
    for row in rows:
        body = bodies.get(row.event_id)
        if body is None:
            occurred = row.occurred_at if row.occurred_at.tzinfo else row.occurred_at.replace(tzinfo=dt.timezone.utc)
            change = row.change if isinstance(row.change, dict) else orjson.loads(row.change)
            body = bodies[row.event_id] = orjson.dumps({"event_id": row.event_id, "type": row.type,
                                                        "entity": row.entity, "occurred_at": occurred,
                                                        "change": change})
        out.append(Due(row.id, row.url, row.secret, row.attempts, body))
    return out


def backoff(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: 1, 2, 4 ... up to the setting."""
    return float(min(2 ** max(attempts - 1, 0), settings.WEBHOOK_MAX_BACKOFF_SECONDS.value()))


_local = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="webhook")
        return _pool


def _send(item: Due) -> tuple[int | None, str | None]:
    """POST one delivery on this thread's kept-alive connection to the receiver (standard library:
    headers and body in one write, no Nagle delay); a connection the receiver closed is opened once
    more. Returns (HTTP status, error or None)."""
    address = None
    try:
        if settings.WEBHOOK_ALLOW_PRIVATE.value() != 1:
            check_url(item.url)  # again at each attempt: a name may have been re-pointed
            address = public_address(item.url)
    except SubscriptionError as exc:
        return None, exc.message
    parts = urlsplit(item.url)
    connections = _local.__dict__.setdefault("connections", {})
    where = (parts.scheme, parts.hostname, parts.port, address)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(item.secret, item.body),
               "User-Agent": "xinyong-webhooks/1", "Content-Length": str(len(item.body))}
    for fresh in (False, True):
        connection = connections.get(where)
        reused = connection is not None
        if connection is None:
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            connection = connections[where] = kind(parts.hostname, parts.port, timeout=TIMEOUT_SECONDS)
            if address is not None:  # to the address checked above; the Host header and TLS name stay the URL's
                connection._create_connection = functools.partial(_connect_to, address)
        try:
            connection.request("POST", path, body=item.body, headers=headers)
            response = connection.getresponse()
            response.read(65536)
            if response.will_close:
                connection.close()
                connections.pop(where, None)
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            connections.pop(where, None)
            if reused and not fresh and isinstance(exc, (ConnectionError, http.client.RemoteDisconnected,
                                                         http.client.BadStatusLine)):
                continue  # the receiver closed a kept-alive connection: once more on a new one
            return None, f"{type(exc).__name__}: {exc}"[:500]
        status = response.status
        return status, None if 200 <= status < 300 else f"HTTP {status}"
    return None, "no connection"


def _connect_to(address: str, where: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
    return socket.create_connection((address, where[1]), *args, **kwargs)


def deliver_due(engine: Engine, limit: int = BATCH) -> tuple[int, int]:
    """POST every due delivery (up to `limit`) from a pool of threads; returns (delivered, failed)."""
    items = due_deliveries(engine, limit)
    if not items:
        return 0, 0
    results = list(_executor().map(_send, items))
    _record(engine, items, results)
    done = sum(1 for _status, error in results if error is None)
    return done, len(items) - done


def _record(engine: Engine, items: list[Due], results: list[tuple[int | None, str | None]]) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    d = t.webhook_deliveries.c
    delivered = [{"b_id": item.id, "b_attempts": item.attempts + 1, "b_status": status}
                 for item, (status, error) in zip(items, results) if error is None]
    failed = [{"b_id": item.id, "b_attempts": item.attempts + 1, "b_status": status, "b_error": error,
               "b_next": now + dt.timedelta(seconds=backoff(item.attempts + 1))}
              for item, (status, error) in zip(items, results) if error is not None]
    with engine.begin() as c:
        if delivered:
            c.execute(update(t.webhook_deliveries).where(d.id == bindparam("b_id"), d.state == "pending")
                      .values(state="delivered", attempts=bindparam("b_attempts"), last_status=bindparam("b_status"),
                              last_error=None, delivered_at=now), delivered)
        if failed:
            c.execute(update(t.webhook_deliveries).where(d.id == bindparam("b_id"), d.state == "pending")
                      .values(attempts=bindparam("b_attempts"), last_status=bindparam("b_status"),
                              last_error=bindparam("b_error"), next_attempt_at=bindparam("b_next")), failed)


class Worker:
    """`serve`'s delivery loop: capture the public changes when the store moved, fan them out to
    the subscriptions, deliver what is due. Every step survives a store hiccup."""

    def __init__(self, engine: Engine, pack: Pack, interval: float = 0.5):
        self.engine, self.pack, self.interval = engine, pack, interval
        self.stop = asyncio.Event()

    async def step(self) -> tuple[int, int]:
        from xinyong.services.publication.opendata import capture

        await asyncio.to_thread(capture, self.engine, self.pack)
        await asyncio.to_thread(close_lapsed, self.engine, self.pack)
        await asyncio.to_thread(fan_out, self.engine)
        delivered = failed = 0
        while True:
            done, bad = await asyncio.to_thread(deliver_due, self.engine)
            delivered, failed = delivered + done, failed + bad
            if done + bad < BATCH or self.stop.is_set():
                return delivered, failed

    async def run(self) -> None:
        while not self.stop.is_set():
            try:
                await self.step()
            except Exception:  # noqa: BLE001 - a store hiccup must not stop the deliveries
                log.exception("webhook worker step failed")
            try:
                await asyncio.wait_for(self.stop.wait(), self.interval)
            except TimeoutError:
                continue


def delivery_log(engine: Engine, *, limit: int = 200, offset: int = 0) -> dict[str, Any]:
    """The console's delivery log: newest first, with each subscription's host (never its path or
    secret) and the event's type and entity."""
    d, s, ev = t.webhook_deliveries.c, t.subscriptions.c, t.public_events.c
    with engine.connect() as c:
        counts = dict(c.execute(select(d.state, func.count()).group_by(d.state)).all())
        rows = c.execute(select(d.id, d.subscription_id, d.event_id, d.state, d.attempts, d.next_attempt_at,
                                d.last_status, d.last_error, d.created_at, d.delivered_at, s.url, s.authority,
                                ev.type, ev.entity)
                         .join(t.subscriptions, s.id == d.subscription_id)
                         .join(t.public_events, ev.seq == d.event_seq)
                         .order_by(d.id.desc()).limit(limit).offset(offset)).all()
    items = [{"id": r.id, "subscription": r.subscription_id, "authority": r.authority,
              "host": urlsplit(r.url).netloc, "event_id": r.event_id, "type": r.type, "entity": r.entity,
              "state": r.state, "attempts": r.attempts, "next_attempt_at": r.next_attempt_at,
              "last_status": r.last_status, "last_error": r.last_error, "created_at": r.created_at,
              "delivered_at": r.delivered_at} for r in rows]
    return {"counts": {k: counts.get(k, 0) for k in ("pending", "delivered", "cancelled")}, "items": items}
