"""A partner's topic names the partner; what it may ask there, and as whom (``topology.partners``)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from topology.envelope import Producer, envelop
from topology.messages import AdjustStock, Message, Money, OrderItem, OrderLine, PlaceOrder, PlaceOrderV2, UpsertProduct
from topology.partners import admit, buyer_account
from topology.topics import PARTNER_COMMANDS, all_topics

ACME = Producer("partner", "acme")
ORDER = PlaceOrderV2(
    order_id="partner:acme:o1", customer_id="partner:acme", lines=[OrderItem("s1", 1)], payment_token="tok"
)


def admitted(message: Message, producer: Producer = ACME) -> Message | str:
    return admit("acme", envelop(message, producer=producer, occurred_at=datetime.now(UTC)))


def test_the_family_names_one_topic_per_partner_and_reads_the_partner_back() -> None:
    acme = PARTNER_COMMANDS.for_partner("acme")
    assert acme.name == "shop.partner.acme.commands" and acme.partitions == PARTNER_COMMANDS.partitions
    assert acme.dead_letter is not None and acme.dead_letter.name == "shop.partner.commands.dlq"
    assert PARTNER_COMMANDS.partner_of("t1.shop.partner.acme.commands", "t1.") == "acme"
    assert PARTNER_COMMANDS.partner_of("shop.partner.acme.commands", "t1.") is None, "another prefix's"
    assert PARTNER_COMMANDS.partner_of("shop.partner.commands") is None
    assert PARTNER_COMMANDS.partner_of("shop.partner.a.b.commands") is None
    names = ["shop.partner.b.commands", "shop.orders.commands", "shop.partner.a.commands", "shop.partner.commands.dlq"]
    assert PARTNER_COMMANDS.members(names) == ["shop.partner.a.commands", "shop.partner.b.commands"]
    with pytest.raises(ValueError, match="1 to 64 letters"):
        PARTNER_COMMANDS.for_partner("a.b")
    declared = [t.name for t in all_topics()]
    assert "shop.partner.commands.dlq" in declared and not any("{" in name for name in declared)


def test_an_order_is_admitted_only_as_the_partners_buyer_account_and_without_prices() -> None:
    assert buyer_account("acme") == "partner:acme"
    assert admitted(ORDER) == ORDER
    assert "orders only as its buyer account partner:acme, not as u-1" in str(
        admitted(msgspec.structs.replace(ORDER, customer_id="u-1"))
    )
    foreign = msgspec.structs.replace(ORDER, order_id="o_1234")
    assert "order ids begin with partner:acme: (o_1234 does not)" in str(admitted(foreign))
    v1 = PlaceOrder(
        order_id="o1", customer_id="partner:acme", lines=[OrderLine("s1", 1, Money(1, "EUR"))], payment_token="tok"
    )
    assert "PlaceOrder v1 carries unit prices" in str(admitted(v1))


def test_the_identity_is_the_topics_never_the_messages() -> None:
    assert "producer (partner bob) is not partner acme" in str(admitted(ORDER, Producer("partner", "bob")))
    assert "producer (service orders) is not partner acme" in str(admitted(ORDER, Producer("service", "orders")))
    assert admitted(AdjustStock(sku="s1", delta=2)) == AdjustStock(sku="s1", delta=2, partner_id="acme")
    assert "partner_id bob is not partner acme" in str(admitted(AdjustStock(sku="s1", delta=2, partner_id="bob")))
    product = UpsertProduct(sku="s1", title="Mug", price=Money(900, "EUR"))
    assert admitted(product) == msgspec.structs.replace(product, owner_partner_id="acme")
    claimed = msgspec.structs.replace(product, owner_partner_id="bob")
    assert "owner_partner_id bob is not partner acme" in str(admitted(claimed))
