"""The caller's saved addresses: list, add, change, remove; one of them the default.

``GET /v1/users/me/addresses`` (the replica; ``?wait`` reads fresh), ``POST /v1/users/me/addresses`` (the answer names
the new ``address_id``), ``PUT /v1/users/me/addresses/{address_id}`` (the whole address again;
``default: true`` makes it the default), ``DELETE /v1/users/me/addresses/{address_id}``. A body
of the wrong shape is a 422 naming the field (a postal code of another shape than its
country's included); a 21st address is a 409, an address the caller does not have a 404 (a
409 ``not-caught-up`` while the command that saved it is still on its way). The users flow
judges again, against its own state.
"""

from __future__ import annotations

import uuid

import falcon
import msgspec

from ingress import answers
from ingress.auth.tokens import Principal
from ingress.bodies import read_body, read_query
from ingress.commands import Call, Commands
from ingress.pending import PendingOwners, not_caught_up
from ingress.policy import authorize
from ingress.problems import Problem
from ingress.queries import Queries
from ingress.schemas import AddressRequest, ProfileQuery
from topology.messages import AddAddress, ChangeAddress, RemoveAddress
from topology.messages.users import MAX_ADDRESSES, Address
from topology.processes import LIST_ADDRESSES
from topology.settings import Settings
from topology.topics import USER_COMMANDS


def address_of(body: AddressRequest) -> Address:
    fields = msgspec.structs.asdict(body)
    del fields["default"]
    return Address(**fields)


class AddressBookResource:
    def __init__(self, commands: Commands, queries: Queries, settings: Settings, pending: PendingOwners) -> None:
        self.commands, self.queries, self.settings, self.pending = commands, queries, settings, pending

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "profile.read")
        fresh = read_query(req, ProfileQuery).wait > 0
        answers.write(resp, self.queries.addresses(principal.subject, fresh=fresh))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "addresses.manage")
        body, raw = read_body(req, AddressRequest, self.settings.max_body_bytes)
        address_id = "a_" + uuid.uuid4().hex[:20]
        command = AddAddress(
            user_id=principal.subject, address_id=address_id, address=address_of(body), make_default=body.default
        )

        def room() -> None:
            if len(self.queries.address_ids(principal.subject)) >= MAX_ADDRESSES:
                detail = f"at most {MAX_ADDRESSES}: remove one first"
                raise Problem(409, "too-many-addresses", "the address book is full", detail)

        sent = self.commands.send(
            Call.of(req, raw),
            USER_COMMANDS,
            principal.subject,
            command,
            LIST_ADDRESSES.path,
            precondition=room,
            address_id=address_id,
        )
        made = sent.answer.address_id  # a replayed answer names the address its first request saved
        self.pending.record("address", made if isinstance(made, str) else address_id, principal.subject)
        answers.write(resp, sent.answer, sent.status, sent.headers)

    def _held(self, principal: Principal, address_id: str) -> None:
        """Nothing when the caller has the address; 404, or 409 while the command that saved it is on its way."""
        if address_id in self.queries.address_ids(principal.subject):
            return
        if self.pending.owner("address", address_id) == principal.subject:
            raise not_caught_up("address", address_id)
        raise Problem(404, "not-found", "not found")

    def on_put_one(self, req: falcon.Request, resp: falcon.Response, address_id: str) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "addresses.manage")
        body, raw = read_body(req, AddressRequest, self.settings.max_body_bytes)
        command = ChangeAddress(
            user_id=principal.subject, address_id=address_id, address=address_of(body), make_default=body.default
        )
        sent = self.commands.send(
            Call.of(req, raw),
            USER_COMMANDS,
            principal.subject,
            command,
            LIST_ADDRESSES.path,
            precondition=lambda: self._held(principal, address_id),
            address_id=address_id,
        )
        answers.write(resp, sent.answer, sent.status, sent.headers)

    def on_delete_one(self, req: falcon.Request, resp: falcon.Response, address_id: str) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "addresses.manage")
        command = RemoveAddress(user_id=principal.subject, address_id=address_id)
        sent = self.commands.send(
            Call.of(req, b""),
            USER_COMMANDS,
            principal.subject,
            command,
            LIST_ADDRESSES.path,
            precondition=lambda: self._held(principal, address_id),
            address_id=address_id,
        )
        self.pending.forget("address", address_id)
        answers.write(resp, sent.answer, sent.status, sent.headers)
