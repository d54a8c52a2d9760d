"""Users: registration and profiles, keyed by user id."""

from __future__ import annotations

from typing import Annotated

import msgspec

from topology.messages.base import Command, Event, Id

Email = Annotated[str, msgspec.Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Phone = Annotated[str, msgspec.Meta(pattern=r"^\+[1-9][0-9]{6,14}$")]


class RegisterUser(Command, frozen=True, kw_only=True):
    user_id: Id
    email: Email
    name: Name


class UpdateProfile(Command, frozen=True, kw_only=True):
    user_id: Id
    name: Name | None = None
    phone: Phone | None = None


class UserRegistered(Event, frozen=True, kw_only=True):
    user_id: Id
    email: Email
    name: Name


class ProfileUpdated(Event, frozen=True, kw_only=True):
    user_id: Id
    name: Name
    phone: Phone | None = None
