"""Step ids are a state contract: the steps that keep state keep their full ids.

The recovery store keys every snapshot by the full id of the step that took it (a flow's
Kafka input offsets, its keyed state, its output partitions). A step moved or renamed
reads no state on resume, so a change here needs a migration note in docs/flows.md.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from flows.run import FLOWS
from topology.settings import Settings

STATEFUL = {"input", "stateful_batch", "output"}
KEPT = {
    "orders": ["orders.in", "orders.saga.stateful_batch", "orders.out"],
    "inventory": ["inventory.in", "inventory.stock.stateful_flat_map.stateful.stateful_batch", "inventory.out"],
    "payments": ["payments.in", "payments.payment.stateful_batch", "payments.out"],
    "users": ["users.in", "users.user.stateful_flat_map.stateful.stateful_batch", "users.out"],
    "catalog": ["catalog.in", "catalog.product.stateful_flat_map.stateful.stateful_batch", "catalog.out"],
    "notifications": [
        "notifications.in",
        "notifications.recipient.stateful_flat_map.stateful.stateful_batch",
        "notifications.out",
    ],
}


def stateful_steps(step: Any) -> list[str]:
    """The full ids of the core steps under ``step`` that snapshot state."""
    if not step.substeps:
        return [step.step_id] if type(step).__name__ in STATEFUL else []
    return [found for sub in step.substeps for found in stateful_steps(sub)]


def test_every_flow_is_covered() -> None:
    assert sorted(KEPT) == sorted(FLOWS)


@pytest.mark.parametrize("name", sorted(KEPT))
def test_the_steps_that_keep_state_keep_their_ids(name: str) -> None:
    """Built as production builds it (Kafka input and output; nothing connects until the flow runs)."""
    flow = importlib.import_module(f"flows.{name}.flow").build_flow(settings=Settings())
    assert stateful_steps(flow) == KEPT[name]
