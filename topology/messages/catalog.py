"""Catalog: products, keyed by SKU; indexed for search."""

from __future__ import annotations

from typing import Annotated

import msgspec

from topology.messages.base import Command, Event, Id, Money, Sku, Text

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Tags = Annotated[list[Annotated[str, msgspec.Meta(max_length=40)]], msgspec.Meta(max_length=20)]


class UpsertProduct(Command, frozen=True, kw_only=True):
    sku: Sku
    title: Title
    description: Text = ""
    brand: Annotated[str, msgspec.Meta(max_length=80)] = ""
    category: Annotated[str, msgspec.Meta(max_length=80)] = ""
    tags: Tags = msgspec.field(default_factory=list)
    price: Money
    owner_partner_id: Id | None = None


class ProductUpserted(Event, frozen=True, kw_only=True):
    sku: Sku
    title: Title
    description: Text
    brand: str
    category: str
    tags: list[str]
    price: Money
    owner_partner_id: Id | None = None
