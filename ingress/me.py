"""The caller's own: their profile (read and update) and their notifications.

``GET /v1/users/me`` (the replica; ``?wait`` reads fresh), ``PATCH /v1/users/me``,
``GET /v1/users/me/notifications`` (MongoDB, newest first).
"""

from __future__ import annotations

import falcon

from ingress import answers
from ingress.auth.tokens import Principal
from ingress.bodies import read_body, read_query
from ingress.commands import Call, Commands
from ingress.policy import authorize
from ingress.problems import Problem
from ingress.queries import Queries
from ingress.schemas import NotificationsQuery, ProfileQuery, ProfileRequest
from topology.messages import UpdateProfile
from topology.processes import GET_PROFILE
from topology.settings import Settings
from topology.topics import USER_COMMANDS


class MeResource:
    def __init__(self, commands: Commands, queries: Queries, settings: Settings) -> None:
        self.commands, self.queries, self.settings = commands, queries, settings

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "profile.read")
        profile = self.queries.profile(principal.subject, fresh=read_query(req, ProfileQuery).wait > 0)
        if profile is None:
            raise Problem(404, "not-found", "not found")
        answers.write(resp, profile)

    def on_patch(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "profile.update")
        body, raw = read_body(req, ProfileRequest, self.settings.max_body_bytes)
        if body.name is None and body.phone is None:
            raise Problem(422, "invalid-body", "nothing to update", "send name, phone or both")
        command = UpdateProfile(user_id=principal.subject, name=body.name, phone=body.phone)
        sent = self.commands.send(Call.of(req, raw), USER_COMMANDS, principal.subject, command, GET_PROFILE.path)
        answers.write(resp, sent.answer, sent.status, sent.headers)

    def on_get_notifications(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "notifications.read")
        query = read_query(req, NotificationsQuery)
        answers.write(resp, self.queries.notifications_of(principal.subject, query.limit))
