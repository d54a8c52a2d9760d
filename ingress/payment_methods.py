"""The caller's saved payment methods: list, add, make the default, remove.

``GET /v1/users/me/payment-methods`` (the default first, then newest first),
``POST /v1/users/me/payment-methods`` (a one-time card token from the payment provider's
card form, optionally ``default``; 201 with the saved method), ``PATCH`` and ``DELETE
/v1/users/me/payment-methods/{payment_method_id}`` (the caller's own methods only: another's
is not found). Orders name a saved method by its id (``POST /v1/orders``).

These go to the payment provider while the request waits, as a shop calls Stripe for its
customer vault, rather than through a command on Kafka: the provider is the one record of a
card (the shop keeps only each user's customer id, ``ingress.wallets``), so there is no state
of ours for a flow to own or a read model to follow; the caller needs the answer at once (the
saved method's id, brand and last four digits, or the provider's refusal of a bad token, which
a command accepted with 202 could only report later, somewhere else); and the one-time token
is short-lived at real providers, so it is exchanged while the shopper is still at the card
form. What must not happen twice is guarded as commands are: under the request's
Idempotency-Key (the provider's keys are derived from it), a retry saves the card once.
"""

from __future__ import annotations

import falcon

from ingress import answers
from ingress.auth.tokens import Principal
from ingress.bodies import read_body
from ingress.commands import MAX_KEY_LENGTH
from ingress.policy import authorize
from ingress.problems import Problem
from ingress.schemas import AddPaymentMethodRequest, PaymentMethodRequest
from ingress.wallets import Wallets
from topology.processes import LIST_PAYMENT_METHODS
from topology.settings import Settings


class PaymentMethodsResource:
    def __init__(self, wallets: Wallets, settings: Settings) -> None:
        self.wallets, self.settings = wallets, settings

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        answers.write(resp, self.wallets.listed(req.context.principal))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "payment_methods.manage")
        key = req.get_header("Idempotency-Key")
        if key is not None and not (0 < len(key) <= MAX_KEY_LENGTH):
            raise Problem(400, "invalid-idempotency-key", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
        body, _ = read_body(req, AddPaymentMethodRequest, self.settings.max_body_bytes)
        saved = self.wallets.add(principal, body.token, body.default, key)
        location = f"{LIST_PAYMENT_METHODS.path}/{saved.payment_method_id}"
        answers.write(resp, saved, 201, {"Location": location})

    def on_patch_one(self, req: falcon.Request, resp: falcon.Response, payment_method_id: str) -> None:
        body, _ = read_body(req, PaymentMethodRequest, self.settings.max_body_bytes)
        answers.write(resp, self.wallets.make_default(req.context.principal, payment_method_id, body.default))

    def on_delete_one(self, req: falcon.Request, resp: falcon.Response, payment_method_id: str) -> None:
        self.wallets.remove(req.context.principal, payment_method_id)
        resp.status = falcon.HTTP_204
