"""The caller's own: their profile (read and update), preferences, orders and notifications.

``GET /v1/users/me`` (the account from the replica: profile, status, preferences, addresses,
devices; ``?wait`` reads fresh), ``PATCH /v1/users/me`` (name, phone),
``PATCH /v1/users/me/preferences`` (channels, marketing consent, quiet hours, locale),
``GET /v1/users/me/orders`` (the replica, newest placed first, a page at a time),
``GET /v1/users/me/notifications`` (MongoDB, newest first). Addresses and push devices have
their own resources (``address_book.py``, ``devices.py``).
"""

from __future__ import annotations

import falcon
from msgspec import UNSET

from ingress import answers
from ingress.auth.tokens import Principal
from ingress.bodies import read_body, read_query
from ingress.commands import Call, Commands
from ingress.policy import authorize
from ingress.problems import Problem
from ingress.queries import Queries
from ingress.schemas import (
    ChannelsRequest,
    MyOrdersQuery,
    NotificationsQuery,
    PreferencesRequest,
    ProfileQuery,
    ProfileRequest,
    QuietHoursRequest,
)
from topology.messages import UpdatePreferences, UpdateProfile
from topology.messages.users import Channels, QuietHours
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

    def on_patch_preferences(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "preferences.update")
        body, raw = read_body(req, PreferencesRequest, self.settings.max_body_bytes)
        given = (body.channels, body.marketing_consent, body.quiet_hours, body.locale)
        if all(field is UNSET for field in given):
            raise Problem(
                422, "invalid-body", "nothing to update", "send channels, marketing_consent, quiet_hours or locale"
            )
        command = UpdatePreferences(
            user_id=principal.subject,
            channels=UNSET if body.channels is UNSET else _channels(body.channels),
            marketing_consent=body.marketing_consent,
            quiet_hours=body.quiet_hours if body.quiet_hours in (UNSET, None) else _quiet(body.quiet_hours),
            locale=body.locale,
        )
        sent = self.commands.send(Call.of(req, raw), USER_COMMANDS, principal.subject, command, GET_PROFILE.path)
        answers.write(resp, sent.answer, sent.status, sent.headers)

    def on_get_orders(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "order.list")
        answers.write(resp, self.queries.orders_of(principal.subject, read_query(req, MyOrdersQuery)))

    def on_get_notifications(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.principal
        authorize(principal, "notifications.read")
        query = read_query(req, NotificationsQuery)
        answers.write(resp, self.queries.notifications_of(principal.subject, query.limit))


def _channels(body: ChannelsRequest) -> Channels:
    return Channels(transactional=tuple(body.transactional), marketing=tuple(body.marketing))


def _quiet(body: QuietHoursRequest) -> QuietHours:
    return QuietHours(start=body.start, end=body.end, time_zone=body.time_zone)
