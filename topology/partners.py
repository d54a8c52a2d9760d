"""What a partner may ask on its own topic, and as whom: pure, no I/O.

The orders flow admits partners' commands by these rules, and ``shopstream verify`` reads
the partners' topics by them (what was refused was never accepted).

A partner's topic (``shop.partner.{partner}.commands``) is writable by that partner alone
(the broker's ACLs), so the topic's name is the partner's identity; nothing in the message
is (neither its envelope's ``producer`` nor an owner field in its payload). A command is
admitted, with the partner's identity set from the topic, or refused with the reason:

- the envelope must name the topic's partner as its producer (anything else is forged);
- an order is placed only as the partner's buyer account, ``partner:ID`` (``buyer_account``),
  under an order id of the partner's own, ``partner:ID:...`` (so no partner can take an id
  another partner's order needs), and only as ``PlaceOrder`` version 2, which carries no
  prices (version 1 does: refused);
- a stock adjustment or a product upsert is the topic's partner's: a ``partner_id`` or
  ``owner_partner_id`` naming another partner is refused; whether the partner owns the SKU
  is for the flow that owns the SKU's state to decide (catalog, inventory).
"""

from __future__ import annotations

import msgspec

from topology.envelope import Envelope, Producer
from topology.messages import AdjustStock, Message, PlaceOrder, PlaceOrderV2, UpsertProduct


def buyer_account(partner_id: str) -> str:
    """The customer id a partner's orders are placed as."""
    return f"partner:{partner_id}"


def admit(partner_id: str, envelope: Envelope) -> Message | str:
    """The command to act on, carrying the topic's partner as its identity, or the reason it is refused."""
    if envelope.producer != Producer("partner", partner_id):
        claimed = f"{envelope.producer.kind} {envelope.producer.id}"
        return f"the envelope's producer ({claimed}) is not partner {partner_id}, whose topic this is"
    payload = envelope.payload
    match payload:
        case PlaceOrder():
            return "PlaceOrder v1 carries unit prices; prices are the catalog's: send PlaceOrder v2"
        case PlaceOrderV2(customer_id=customer_id, order_id=order_id):
            account = buyer_account(partner_id)
            if customer_id != account:
                return f"partner {partner_id} orders only as its buyer account {account}, not as {customer_id}"
            if not order_id.startswith(f"{account}:"):
                return f"partner {partner_id}'s order ids begin with {account}: ({order_id} does not)"
            return payload
        case AdjustStock(partner_id=named):
            if named is not None and named != partner_id:
                return f"partner_id {named} is not partner {partner_id}, whose topic this is"
            return msgspec.structs.replace(payload, partner_id=partner_id)
        case UpsertProduct(owner_partner_id=named):
            if named is not None and named != partner_id:
                return f"owner_partner_id {named} is not partner {partner_id}, whose topic this is"
            return msgspec.structs.replace(payload, owner_partner_id=partner_id)
    return f"{envelope.type} is not a partner's command"
