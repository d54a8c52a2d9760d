"""The payment provider's customer vault: customers and the cards saved for them, kept by the provider.

``CardVault`` is the port; ``HttpVault`` speaks the provider's API (locally the stand-in in
``ops/gateway``; Stripe's shape: ``/v1/customers``, ``/v1/payment_methods/{id}/attach``,
``/detach``, ``invoice_settings.default_payment_method``). The shop never sees a card number:
a card comes in as a one-time token made by the provider's card form and is kept as a payment
method of the user's customer. Every write goes under an Idempotency-Key, so a transient
failure (a timeout, a connection error, 429, 5xx) is retried under the same key; when retries
run out the vault is ``StoreUnavailable`` (503). What the provider refuses (4xx) is
``VaultRefused``, with its code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from ingress.exceptions import IngressError, StoreUnavailable
from topology.settings import Settings


@dataclass(frozen=True)
class SavedCard:
    """A payment method as the provider keeps it: the card's brand, last four digits, expiry, its customer."""

    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    customer: str | None


class VaultRefused(IngressError):
    """The provider refused the request; ``code`` says why (``resource_missing``, ``payment_method_not_attached``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


class CardVault(Protocol):
    def create_customer(self, key: str, user_id: str) -> str:
        """A new customer of the provider for ``user_id``; its id."""
        ...

    def save_card(self, key: str, customer: str, token: str) -> SavedCard:
        """The card ``token`` stands for, made a payment method and attached to ``customer``."""
        ...

    def cards(self, customer: str) -> tuple[list[SavedCard], str | None]:
        """The customer's payment methods, newest first, and its default's id."""
        ...

    def card(self, payment_method_id: str) -> SavedCard | None:
        """One payment method, whoever's it is (None: the provider has none of that id)."""
        ...

    def set_default(self, key: str, customer: str, payment_method_id: str | None) -> None:
        """Make ``payment_method_id`` (attached to ``customer``) its default; None: no default."""
        ...

    def detach(self, key: str, payment_method_id: str) -> None:
        """Take the payment method off its customer (and off its default); it cannot pay again."""
        ...


#: Answers worth another attempt under the same key.
TRANSIENT = frozenset({429, 500, 502, 503, 504})


class HttpVault:
    """The provider's vault API over HTTP (httpx, kept-alive connections, safe to share between threads)."""

    def __init__(self, settings: Settings, backoff_s: float = 0.05) -> None:
        self.http = httpx.Client(
            base_url=settings.gateway_url,
            timeout=settings.gateway_timeout_s,
            headers={"Authorization": f"Bearer {settings.gateway_key.get_secret_value()}"},
        )
        self.attempts, self.backoff_s = 1 + settings.gateway_retries, backoff_s

    def _call(self, method: str, path: str, key: str | None = None, body: dict[str, Any] | None = None) -> Any:
        """The answer's body; VaultRefused for a 4xx, StoreUnavailable when every attempt failed."""
        headers = {"Idempotency-Key": key} if key is not None else {}
        last = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                answer = self.http.request(method, path, json=body, headers=headers)
            except httpx.TransportError as err:
                last = f"{type(err).__name__}: {err}"
                continue
            if answer.status_code in TRANSIENT:
                last = f"http {answer.status_code}"
                continue
            try:
                found = answer.json()
            except ValueError:
                found = {}
            if answer.is_success:
                return found
            if answer.status_code == 409:  # the key was used with another request
                raise VaultRefused(409, "idempotency_key_reused", "the key was used with another request")
            error = found.get("error", {}) if isinstance(found, dict) else {}
            error = error if isinstance(error, dict) else {}
            raise VaultRefused(answer.status_code, str(error.get("code", "refused")), str(error.get("message", "")))
        raise StoreUnavailable("the payment provider is unavailable", f"{method} {path}: {last}")

    def create_customer(self, key: str, user_id: str) -> str:
        return str(self._call("POST", "/v1/customers", key, {"metadata": {"user_id": user_id}})["id"])

    def save_card(self, key: str, customer: str, token: str) -> SavedCard:
        made = self._call("POST", "/v1/payment_methods", f"{key}:create", {"type": "card", "card": {"token": token}})
        attached = self._call(
            "POST", f"/v1/payment_methods/{made['id']}/attach", f"{key}:attach", {"customer": customer}
        )
        return _card(attached)

    def cards(self, customer: str) -> tuple[list[SavedCard], str | None]:
        found = self._call("GET", f"/v1/customers/{customer}")
        listed = self._call("GET", f"/v1/customers/{customer}/payment_methods")
        default = (found.get("invoice_settings") or {}).get("default_payment_method")
        return [_card(method) for method in listed["data"]], default

    def card(self, payment_method_id: str) -> SavedCard | None:
        try:
            return _card(self._call("GET", f"/v1/payment_methods/{payment_method_id}"))
        except VaultRefused as err:
            if err.code == "resource_missing":
                return None
            raise

    def set_default(self, key: str, customer: str, payment_method_id: str | None) -> None:
        chosen = {"invoice_settings": {"default_payment_method": payment_method_id or ""}}
        self._call("POST", f"/v1/customers/{customer}", key, chosen)

    def detach(self, key: str, payment_method_id: str) -> None:
        self._call("POST", f"/v1/payment_methods/{payment_method_id}/detach", key, {})

    def close(self) -> None:
        self.http.close()


def _card(method: dict[str, Any]) -> SavedCard:
    card = method["card"]
    return SavedCard(
        method["id"], card["brand"], card["last4"], int(card["exp_month"]), int(card["exp_year"]), method["customer"]
    )
