"""A payment provider's (and an SMS and push provider's) HTTP API: the outside world the flows talk to.

It speaks the shape of a real provider: ``Idempotency-Key`` on every write (the same key
and body return the first answer; the same key with another body is refused with 409),
card declines as 402 with an error code, and faults tests can switch on: 5xx answers and
slow answers (timeouts), at a rate. State lives in SQLite under the stack folder, so a
restart keeps every payment and idempotency record.

Cards: ``tok_visa`` (and any other token) is approved; ``tok_decline`` is declined;
``tok_insufficient`` is declined for insufficient funds.

API (amounts in minor units):
    POST /v1/payments                {amount, currency, token, order_id}  -> 201 payment | 402
    POST /v1/payments/{id}/capture   {}                                   -> 200 payment | 409
    POST /v1/payments/{id}/void      {}                                   -> 200 payment | 409
    POST /v1/payments/{id}/refunds   {amount}                             -> 201 refund  | 409
    GET  /v1/payments/{id}                                                -> 200 payment
    POST /v1/messages                {channel: sms|push, to, body}        -> 201 message | 422 (SMS to +1555...)
    GET  /_admin/messages                                                 -> every message sent
    GET  /_admin/stats                                                    -> counts per order
    PUT  /_admin/faults              {mode: "none"|"error"|"slow", rate: 0..1, delay_s, count}
    GET  /healthz
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import falcon

SCHEMA = """
create table if not exists idempotency (key text primary key, request text not null, status int not null,
                                        body text not null);
create table if not exists payments (id text primary key, order_id text not null, amount int not null,
                                     currency text not null, state text not null, captured int not null default 0,
                                     refunded int not null default 0);
create index if not exists payments_order on payments(order_id);
create table if not exists messages (id text primary key, channel text not null, recipient text not null,
                                     body text not null);
"""
UNREACHABLE = "+1555"  # SMS numbers with this prefix are refused as unreachable
DECLINES = {"tok_decline": "card_declined", "tok_insufficient": "insufficient_funds"}


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("pragma journal_mode=wal")
        self.db.execute("pragma synchronous=normal")
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()


class Faults:
    """Injected faults, kept in the database so every gunicorn worker sees the same switch.

    ``count`` > 0 fails exactly that many next requests (deterministic, for tests);
    otherwise a request fails with probability ``rate``.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        store.db.execute(
            "create table if not exists faults (id int primary key, mode text, rate real, delay_s real, count int)"
        )
        store.db.execute("insert or ignore into faults values (1, 'none', 0, 5, 0)")

    def set(self, mode: str, rate: float, delay_s: float, count: int) -> dict[str, Any]:
        self.store.db.execute(
            "update faults set mode = ?, rate = ?, delay_s = ?, count = ? where id = 1", (mode, rate, delay_s, count)
        )
        return {"mode": mode, "rate": rate, "delay_s": delay_s, "count": count}

    def inject(self) -> None:
        with self.store.lock:
            mode, rate, delay_s, count = self.store.db.execute(
                "select mode, rate, delay_s, count from faults where id = 1"
            ).fetchone()
            if mode == "none":
                return
            if count > 0:
                self.store.db.execute("update faults set count = count - 1 where id = 1 and count > 0")
            elif random.random() >= rate:  # noqa: S311 - fault injection, not crypto
                return
        if mode == "slow":
            time.sleep(delay_s)
            return
        raise falcon.HTTPServiceUnavailable(title="injected fault", description="the gateway is having a bad day")


def _payment(row: tuple[Any, ...]) -> dict[str, Any]:
    keys = ("id", "order_id", "amount", "currency", "state", "captured", "refunded")
    return dict(zip(keys, row, strict=True))


class Writes:
    """Every write goes through one idempotent path."""

    def __init__(self, store: Store, faults: Faults) -> None:
        self.store = store
        self.faults = faults

    def run(self, req: falcon.Request, resp: falcon.Response, operation: str, target: str | None = None) -> None:
        self.faults.inject()
        key = req.get_header("Idempotency-Key")
        if not key or len(key) > 255:
            raise falcon.HTTPBadRequest(title="missing Idempotency-Key", description="every write needs one")
        body = req.get_media(default_when_empty={})
        if not isinstance(body, dict):
            raise falcon.HTTPBadRequest(title="body must be a JSON object")
        fingerprint = hashlib.sha256(json.dumps([operation, target, body], sort_keys=True).encode()).hexdigest()
        db = self.store.db
        with self.store.lock:  # one transaction at a time per connection; BEGIN IMMEDIATE across processes
            db.execute("begin immediate")
            try:
                seen = db.execute("select request, status, body from idempotency where key = ?", (key,)).fetchone()
                if seen is None:
                    status, answer = getattr(self, operation)(body, target)
                    row = (key, fingerprint, status, json.dumps(answer))
                    db.execute("insert into idempotency values (?, ?, ?, ?)", row)
                db.execute("commit")
            except Exception:
                db.execute("rollback")
                raise
        if seen is not None:
            if seen[0] != fingerprint:
                raise falcon.HTTPConflict(title="idempotency key reused with a different request")
            resp.status = falcon.code_to_http_status(seen[1])
            resp.text = seen[2]
            resp.set_header("Idempotent-Replayed", "true")
            return
        resp.status = falcon.code_to_http_status(status)
        resp.media = answer

    def send_message(self, body: dict[str, Any], _: str | None) -> tuple[int, dict[str, Any]]:
        channel, recipient, text = body.get("channel"), str(body.get("to", "")), body.get("body")
        if channel not in ("sms", "push") or not recipient or not isinstance(text, str):
            return 400, {"error": "invalid_request", "message": "channel (sms|push), to and body are required"}
        if channel == "sms" and recipient.startswith(UNREACHABLE):
            return 422, {"error": "unreachable_number", "message": f"{recipient} cannot receive SMS"}
        message_id = "msg_" + uuid.uuid4().hex[:20]
        self.store.db.execute("insert into messages values (?, ?, ?, ?)", (message_id, channel, recipient, text))
        return 201, {"id": message_id, "channel": channel, "to": recipient}

    def _get(self, payment_id: str | None) -> dict[str, Any]:
        row = self.store.db.execute("select * from payments where id = ?", (payment_id,)).fetchone()
        if row is None:
            raise falcon.HTTPNotFound(title="no such payment")
        return _payment(row)

    def authorize(self, body: dict[str, Any], _: str | None) -> tuple[int, dict[str, Any]]:
        amount, currency, token = body.get("amount"), body.get("currency"), body.get("token")
        if not isinstance(amount, int) or amount <= 0 or not isinstance(currency, str) or not isinstance(token, str):
            return 400, {"error": {"code": "invalid_request", "message": "amount, currency and token are required"}}
        if token in DECLINES:
            return 402, {"error": {"code": DECLINES[token], "message": "the card was declined"}}
        payment_id = "pay_" + uuid.uuid4().hex[:20]
        self.store.db.execute(
            "insert into payments (id, order_id, amount, currency, state) values (?, ?, ?, ?, ?)",
            (payment_id, str(body.get("order_id", "")), amount, currency, "authorized"),
        )
        return 201, self._get(payment_id)

    def capture(self, _: dict[str, Any], payment_id: str | None) -> tuple[int, dict[str, Any]]:
        payment = self._get(payment_id)
        if payment["state"] == "captured":
            return 200, payment
        if payment["state"] != "authorized":
            return 409, {"error": {"code": "invalid_state", "message": f"payment is {payment['state']}"}}
        self.store.db.execute("update payments set state = 'captured', captured = amount where id = ?", (payment_id,))
        return 200, self._get(payment_id)

    def void(self, _: dict[str, Any], payment_id: str | None) -> tuple[int, dict[str, Any]]:
        payment = self._get(payment_id)
        if payment["state"] == "voided":
            return 200, payment
        if payment["state"] != "authorized":
            return 409, {"error": {"code": "invalid_state", "message": f"payment is {payment['state']}"}}
        self.store.db.execute("update payments set state = 'voided' where id = ?", (payment_id,))
        return 200, self._get(payment_id)

    def refund(self, body: dict[str, Any], payment_id: str | None) -> tuple[int, dict[str, Any]]:
        payment = self._get(payment_id)
        amount = body.get("amount")
        if not isinstance(amount, int) or amount <= 0:
            return 400, {"error": {"code": "invalid_request", "message": "amount must be a positive integer"}}
        if payment["state"] not in ("captured", "refunded") or payment["refunded"] + amount > payment["captured"]:
            return 409, {"error": {"code": "invalid_state", "message": "nothing left to refund"}}
        self.store.db.execute(
            "update payments set refunded = refunded + ?, state = 'refunded' where id = ?", (amount, payment_id)
        )
        return 201, {"id": "re_" + uuid.uuid4().hex[:20], "payment": self._get(payment_id), "amount": amount}


class PaymentsResource:
    def __init__(self, writes: Writes) -> None:
        self.writes = writes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.writes.run(req, resp, "authorize")

    def on_get_one(self, _req: falcon.Request, resp: falcon.Response, payment_id: str) -> None:
        resp.media = self.writes._get(payment_id)

    def on_post_action(self, req: falcon.Request, resp: falcon.Response, payment_id: str, action: str) -> None:
        operations = {"capture": "capture", "void": "void", "refunds": "refund"}
        if action not in operations:
            raise falcon.HTTPNotFound()
        self.writes.run(req, resp, operations[action], payment_id)


class MessagesResource:
    def __init__(self, writes: Writes) -> None:
        self.writes = writes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.writes.run(req, resp, "send_message")


class AdminResource:
    def __init__(self, store: Store, faults: Faults) -> None:
        self.store = store
        self.faults = faults

    def on_get_stats(self, _req: falcon.Request, resp: falcon.Response) -> None:
        rows = self.store.db.execute(
            "select order_id, count(*), sum(state != 'voided'), sum(captured), sum(refunded) from payments "
            "group by order_id"
        ).fetchall()
        resp.media = {r[0]: {"authorizations": r[1], "live": r[2], "captured": r[3], "refunded": r[4]} for r in rows}

    def on_get_messages(self, _req: falcon.Request, resp: falcon.Response) -> None:
        rows = self.store.db.execute("select id, channel, recipient, body from messages order by rowid").fetchall()
        resp.media = [{"id": r[0], "channel": r[1], "to": r[2], "body": r[3]} for r in rows]

    def on_put_faults(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.get_media()
        mode = body.get("mode", "none")
        if mode not in ("none", "error", "slow"):
            raise falcon.HTTPBadRequest(title="mode is none, error or slow")
        count = int(body.get("count", 0))  # a number of failures, or (without one) a rate: 1.0 unless given
        rate = float(body.get("rate", 0.0 if count else 1.0))
        resp.media = self.faults.set(mode, rate, float(body.get("delay_s", 5.0)), count)

    def on_get_health(self, _req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"ok": True}


def create_app(database: Path) -> falcon.App:  # type: ignore[type-arg]
    store = Store(database)
    faults = Faults(store)
    writes = Writes(store, faults)
    payments = PaymentsResource(writes)
    admin = AdminResource(store, faults)
    app = falcon.App()
    app.add_route("/v1/payments", payments)
    app.add_route("/v1/payments/{payment_id}", payments, suffix="one")
    app.add_route("/v1/payments/{payment_id}/{action}", payments, suffix="action")
    app.add_route("/v1/messages", MessagesResource(writes))
    app.add_route("/_admin/messages", admin, suffix="messages")
    app.add_route("/_admin/stats", admin, suffix="stats")
    app.add_route("/_admin/faults", admin, suffix="faults")
    app.add_route("/healthz", admin, suffix="health")
    return app


def app_from_env() -> falcon.App:  # type: ignore[type-arg]
    """The gunicorn entry point: ``ops.gateway.server:app_from_env()``."""
    return create_app(Path(os.environ["SHOP_GATEWAY_DB"]))
