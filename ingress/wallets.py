"""A user's saved payment methods: the user's customer at the payment provider, and that customer's vault.

The ingress keeps one row per user, the provider's customer id (``payment_customers``, its own
table, written on the primary as the credentials are); the cards are the provider's alone
(``ingress.vault``). The first card a user saves makes the customer. A payment method is the
user's whose customer it is attached to; the policy lets only that user see it, change it or
pay with it (another user's method, and a method no user holds, are not found).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable

import psycopg
from psycopg import sql

from ingress import answers
from ingress.auth.tokens import Principal
from ingress.policy import Action, Decision, Resource, authorize, decide
from ingress.problems import Problem
from ingress.readmodel import ReadModel
from ingress.schemas import PAYMENT_METHOD_ID
from ingress.statements import equals, insert, select
from ingress.vault import CardVault, SavedCard, VaultRefused
from topology.messages import SavedMethod
from topology.settings import Settings
from topology.stores import PAYMENT_CUSTOMERS

CUSTOMER_OF = select(PAYMENT_CUSTOMERS, ("customer_id",), equals(PAYMENT_CUSTOMERS, "user_id"))
USER_OF = select(PAYMENT_CUSTOMERS, ("user_id",), equals(PAYMENT_CUSTOMERS, "customer_id"))
#: The first customer made for a user stays the user's (a second one, made by a racing request, is left unused).
ADD_CUSTOMER = insert(PAYMENT_CUSTOMERS, ("user_id", "customer_id")) + sql.SQL(" ON CONFLICT DO NOTHING")
METHOD_ID = re.compile(PAYMENT_METHOD_ID)


def unknown_method(payment_method_id: str) -> Problem:
    return Problem(
        422,
        "unknown-payment-method",
        "no such saved payment method",
        f"{payment_method_id} is not one of your saved payment methods",
    )


def refused(err: VaultRefused) -> Problem:
    """The answer to a request the payment provider refused."""
    if err.code == "idempotency_key_reused":
        return Problem(422, "idempotency-key-conflict", "this Idempotency-Key was used with a different request")
    if err.code == "resource_missing":
        return Problem(422, "invalid-card-token", "the payment provider knows no such card token", err.message)
    if err.code == "payment_method_not_attached":  # taken off the customer by a request in between
        return Problem(404, "not-found", "not found")
    return Problem(422, "payment-method-refused", "the payment provider refused", f"{err.code}: {err.message}")


class Wallets:
    """Each user's saved payment methods, kept by the provider under the user's customer."""

    def __init__(self, vault: CardVault, reads: ReadModel, settings: Settings) -> None:
        self.vault, self.reads, self.settings = vault, reads, settings

    def _db(self) -> psycopg.Connection[tuple[object, ...]]:
        options = f"-c search_path={self.settings.pg_schema}"
        return psycopg.connect(self.settings.pg_url, autocommit=True, options=options, connect_timeout=3)

    def customer_of(self, user_id: str) -> str | None:
        """The user's customer at the provider (None: the user never saved a card)."""
        rows = self.reads.fetch(CUSTOMER_OF, (user_id,), fresh=True).rows
        return str(rows[0]["customer_id"]) if rows else None

    def _customer_for(self, user_id: str, key: str) -> str:
        """The user's customer, made at the provider the first time."""
        found = self.customer_of(user_id)
        if found is not None:
            return found
        made = self.vault.create_customer(f"{key}:customer", user_id)
        with self._db() as db:
            db.execute(ADD_CUSTOMER, (user_id, made))
        kept = self.customer_of(user_id)
        assert kept is not None  # noqa: S101 - written on the primary before it is read fresh
        return kept

    def _resource(self, card: SavedCard | None) -> Resource:
        """A payment method as the policy sees it: the user whose customer holds it."""
        if card is None or card.customer is None:
            return Resource(exists=False)
        rows = self.reads.fetch(USER_OF, (card.customer,), fresh=True).rows
        return Resource(customer_id=str(rows[0]["user_id"]) if rows else None)

    def _method(self, principal: Principal, action: Action, payment_method_id: str) -> SavedCard:
        """The caller's payment method, when the policy lets them take ``action`` on it; else 404."""
        authorize(principal, action)
        card = self.vault.card(payment_method_id) if METHOD_ID.fullmatch(payment_method_id) else None
        authorize(principal, action, self._resource(card))
        assert card is not None and card.customer is not None  # noqa: S101 - the policy let no other through
        return card

    def listed(self, principal: Principal) -> answers.PaymentMethods:
        authorize(principal, "payment_methods.read")
        customer = self.customer_of(principal.subject)
        if customer is None:
            return answers.PaymentMethods([])
        cards, default = self.vault.cards(customer)
        items = [_answer(card, card.payment_method_id == default) for card in cards]
        return answers.PaymentMethods(sorted(items, key=lambda item: not item.default))  # stable: newest first after

    def add(self, principal: Principal, token: str, make_default: bool, key: str | None) -> answers.PaymentMethod:
        """Save the card ``token`` stands for; under the request's Idempotency-Key, a retry saves it once."""
        authorize(principal, "payment_methods.manage")
        # The provider's keys, derived from the shop (the schema that maps its users to customers: a
        # provider's test account is shared by every environment), the caller and theirs.
        scoped = f"{self.settings.pg_schema}\0{principal.subject}\0{key or uuid.uuid4().hex}"
        base = hashlib.sha256(scoped.encode()).hexdigest()[:40]
        customer = self._customer_for(principal.subject, f"vault:{base}")
        try:
            card = self.vault.save_card(f"vault:{base}:card", customer, token)
            if make_default:
                self.vault.set_default(f"vault:{base}:default", customer, card.payment_method_id)
        except VaultRefused as err:
            raise refused(err) from None
        return _answer(card, make_default)

    def make_default(self, principal: Principal, payment_method_id: str, default: bool) -> answers.PaymentMethod:
        """Make the method the default (``default``), or, when it is the default, leave none."""
        card = self._method(principal, "payment_methods.manage", payment_method_id)
        customer = card.customer or ""
        try:
            if default:
                self.vault.set_default(uuid.uuid4().hex, customer, card.payment_method_id)
            elif self.vault.cards(customer)[1] == card.payment_method_id:
                self.vault.set_default(uuid.uuid4().hex, customer, None)
        except VaultRefused as err:
            raise refused(err) from None
        return _answer(card, default)

    def remove(self, principal: Principal, payment_method_id: str) -> None:
        card = self._method(principal, "payment_methods.manage", payment_method_id)
        try:
            self.vault.detach(uuid.uuid4().hex, card.payment_method_id)
        except VaultRefused as err:
            raise refused(err) from None

    def paying_with(self, principal: Principal, payment_method_id: str) -> tuple[SavedMethod, Callable[[], None]]:
        """What pays an order with the caller's saved method, and the check that it is theirs (422 if not)."""
        customer = self.customer_of(principal.subject)
        if customer is None:
            raise unknown_method(payment_method_id)

        def check() -> None:
            card = self.vault.card(payment_method_id)
            if decide(principal, "payment_methods.read", self._resource(card)) is not Decision.ALLOW:
                raise unknown_method(payment_method_id)

        return SavedMethod(payment_method_id=payment_method_id, gateway_customer_id=customer), check


def _answer(card: SavedCard, default: bool) -> answers.PaymentMethod:
    return answers.PaymentMethod(card.payment_method_id, card.brand, card.last4, card.exp_month, card.exp_year, default)
