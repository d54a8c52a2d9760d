"""The base of every message, and the value types messages share."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

#: Identifiers: bounded, printable, no spaces.
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Sku = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
Text = Annotated[str, msgspec.Meta(max_length=2_000)]
Reason = Annotated[str, msgspec.Meta(max_length=500)]


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """A command or an event. ``TYPE`` and ``VERSION`` name it in the envelope.

    Readers ignore fields they do not know, so adding an optional field is compatible;
    edges that must refuse unknown fields decode with ``strict=True``.
    """

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    KIND: ClassVar[Literal["command", "event"]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "TYPE" not in vars(cls):  # a later version names its type itself (``PlaceOrderV2``: ``PlaceOrder``)
            cls.TYPE = cls.__name__


class Command(Message, frozen=True, kw_only=True):
    KIND: ClassVar[Literal["command", "event"]] = "command"


class Event(Message, frozen=True, kw_only=True):
    KIND: ClassVar[Literal["command", "event"]] = "event"


class Money(msgspec.Struct, frozen=True):
    """An amount in integer minor units (cents) of one currency; never a float."""

    amount: Annotated[int, msgspec.Meta(ge=0, le=10**12)]
    currency: Currency
