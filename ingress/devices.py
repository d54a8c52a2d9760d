"""The caller's push devices: register one, forget one; ``GET /v1/users/me`` lists them.

``POST /v1/users/me/devices`` (a platform and the push service's token; the answer names the
``device_id``, the same for the same token again), ``DELETE /v1/users/me/devices/{device_id}``
(404 for a device the caller does not have; 409 ``not-caught-up`` while the command that
registered it is on its way). The notifications flow pushes to them.
"""

from __future__ import annotations

import hashlib

import falcon

from ingress import answers
from ingress.auth.tokens import Principal
from ingress.bodies import read_body
from ingress.commands import Call, Commands
from ingress.pending import PendingOwners, not_caught_up
from ingress.policy import authorize
from ingress.problems import Problem
from ingress.queries import Queries
from ingress.schemas import DeviceRequest
from topology.messages import RegisterDevice, UnregisterDevice
from topology.processes import GET_PROFILE
from topology.settings import Settings
from topology.topics import USER_COMMANDS


def device_id(user_id: str, token: str) -> str:
    """A device's id: the user's and the token's, so registering the same token again names the same device."""
    return "d_" + hashlib.sha256(f"{user_id}\n{token}".encode()).hexdigest()[:20]


class DevicesResource:
    def __init__(self, commands: Commands, queries: Queries, settings: Settings, pending: PendingOwners) -> None:
        self.commands, self.queries, self.settings, self.pending = commands, queries, settings, pending

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "devices.manage")
        body, raw = read_body(req, DeviceRequest, self.settings.max_body_bytes)
        made = device_id(principal.subject, body.token)
        command = RegisterDevice(user_id=principal.subject, device_id=made, platform=body.platform, token=body.token)
        sent = self.commands.send(
            Call.of(req, raw), USER_COMMANDS, principal.subject, command, GET_PROFILE.path, device_id=made
        )
        self.pending.record("device", made, principal.subject)
        answers.write(resp, sent.answer, sent.status, sent.headers)

    def _held(self, principal: Principal, device: str) -> None:
        if device in self.queries.device_ids(principal.subject):
            return
        if self.pending.owner("device", device) == principal.subject:
            raise not_caught_up("device", device)
        raise Problem(404, "not-found", "not found")

    def on_delete_one(self, req: falcon.Request, resp: falcon.Response, device_id: str) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "devices.manage")
        command = UnregisterDevice(user_id=principal.subject, device_id=device_id)
        sent = self.commands.send(
            Call.of(req, b""),
            USER_COMMANDS,
            principal.subject,
            command,
            GET_PROFILE.path,
            precondition=lambda: self._held(principal, device_id),
            device_id=device_id,
        )
        self.pending.forget("device", device_id)
        answers.write(resp, sent.answer, sent.status, sent.headers)
