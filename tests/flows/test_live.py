"""The saga on the real broker: three flow processes, many orders racing for limited stock, and SIGKILLs.

The saga as ``make run`` runs it, its three flows in one group process, is SIGKILLed under load by
``tests/test_chaos.py`` (then ``shopstream verify`` proves nothing lost, oversold or charged twice).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.topology_admin import health, lag
from tests.support.flows import FLOWS, LiveFlows, Observed, gateway_stats, observe
from tests.support.scope import Scope
from topology.processes import PROCESSES

pytestmark = pytest.mark.stack
SKUS = [f"sku-{i}" for i in range(10)]


def running(ns: Scope, logs: Path, env: dict[str, str]) -> Iterator[LiveFlows]:
    """The flows under the scope's topic prefix; their topics and recovery stores go with the scope."""
    ns.apply_topology()
    flows = LiveFlows(ns.settings, logs, env=env)
    for name in FLOWS:
        flows.start(name)
    yield flows
    flows.stop()


@pytest.fixture
def live(ns: Scope, tmp_path: Path) -> Iterator[LiveFlows]:
    yield from running(ns, tmp_path, {})


@pytest.fixture
def live_short_deadlines(ns: Scope, tmp_path: Path) -> Iterator[LiveFlows]:
    """The flows with a 2 s step deadline (an outage of a few seconds outlasts every deadline in flight).

    With the default 1 s epoch: a kill loses up to a second of outputs that the replay must re-send.
    """
    yield from running(ns, tmp_path, {"SHOP_ORDER_STEP_TIMEOUT_S": "2", "SHOP_FLOW_EPOCH_MS": "1000"})


def check(live: LiveFlows, seen: Observed, stock: dict[str, int], orders: dict[str, list[tuple[str, int]]]) -> None:
    final = seen.final()
    missing = set(orders) - final.keys()
    assert not missing, f"{len(missing)} orders never reached a terminal state, e.g. {sorted(missing)[:5]}"
    sold: dict[str, int] = {}
    for order_id, lines in orders.items():
        if final[order_id] == "OrderConfirmed":
            for sku, qty in lines:
                sold[sku] = sold.get(sku, 0) + qty
    levels = seen.levels()
    for sku, units in stock.items():
        assert sold.get(sku, 0) <= units, f"oversold {sku}: {sold.get(sku)} > {units}"
        level = levels[sku].payload
        assert level.reserved == 0, f"{sku} still holds reservations after every order settled"  # type: ignore[attr-defined]
        assert level.total == units - sold.get(sku, 0), f"{sku} stock does not add up"  # type: ignore[attr-defined]
    stats = gateway_stats(live.settings)
    for order_id, verdict in final.items():
        payment = stats.get(order_id)
        if payment is None:
            continue
        assert payment["authorizations"] == 1, f"{order_id} was authorized {payment['authorizations']} times"
        if verdict == "OrderCancelled":
            history = [
                (e.type, getattr(e.payload, "reason", ""))
                for e in seen.events
                if getattr(e.payload, "order_id", None) == order_id
            ]
            assert payment["live"] == 0 or payment["captured"] == payment["refunded"], (
                f"{order_id} charged: {payment}; history {history}"
            )
    assert seen.logical_duplicates() == {}


def test_a_thousand_orders_race_for_limited_stock(live: LiveFlows) -> None:
    rng = random.Random(7)
    stock = {sku: 40 for sku in SKUS}
    for sku, units in stock.items():
        live.restock(sku, units)
    orders: dict[str, list[tuple[str, int]]] = {}
    for i in range(1000):
        lines = [(sku, rng.randint(1, 2)) for sku in rng.sample(SKUS, rng.randint(1, 2))]
        order_id = f"{live.run_id}-o{i:04d}"  # unique across runs: the gateway keeps every payment
        orders[order_id] = lines
        live.place(order_id, lines, "tok_decline" if i % 50 == 0 else "tok_visa")
    live.flush()
    seen = observe(live.settings, set(orders), timeout_s=180)
    assert all(live.alive().values()), "a flow died"
    check(live, seen, stock, orders)
    confirmed = [o for o, verdict in seen.final().items() if verdict == "OrderConfirmed"]
    assert 0 < len(confirmed) < len(orders), "stock was limited: some orders confirm, some are cancelled"
    time.sleep(1.5)  # one auto-commit interval: the flows' groups report what they read
    groups = {p.name: p.group_for(live.settings.topic_prefix) for p in PROCESSES if p.kind == "flow"}
    read = {name: sum(r.committed or 0 for r in lag(live.settings, [groups[name]])) for name in FLOWS}
    assert all(count > 0 for count in read.values()), f"topology lag sees no progress: {read}"
    flow_health = {r.name: r for r in health(live.settings) if r.name in {groups[n] for n in FLOWS}}
    assert all(r.ok for r in flow_health.values()), flow_health


def stocked_and_warm(live: LiveFlows, units: int) -> tuple[dict[str, int], dict[str, list[tuple[str, int]]]]:
    """Every SKU restocked, then one order through the flows; it is returned to be counted with the rest."""
    stock = {sku: units for sku in SKUS}
    for sku, count in stock.items():
        live.restock(sku, count)
    warm_up = f"{live.run_id}-warm"
    live.place(warm_up, [(SKUS[0], 1)])
    live.flush()
    assert warm_up in observe(live.settings, {warm_up}, timeout_s=60).final(), "the flows never started"
    return stock, {warm_up: [(SKUS[0], 1)]}


def stream(live: LiveFlows, pending: list[tuple[str, list[tuple[str, int]]]]) -> threading.Thread:
    """The orders placed at ~100 a second on a thread (and producer) of their own, already started."""

    def steady() -> None:
        sender = LiveFlows(live.settings, live.logs)
        for index, (order_id, lines) in enumerate(pending):
            sender.place(order_id, lines)
            if index % 10 == 9:
                sender.flush()
                time.sleep(0.1)
        sender.flush()

    thread = threading.Thread(target=steady)
    thread.start()
    return thread


def test_sigkill_under_load_loses_nothing_and_duplicates_nothing(live: LiveFlows) -> None:
    rng = random.Random(11)
    stock, orders = stocked_and_warm(live, 80)
    pending = [(f"{live.run_id}-k{i:04d}", [(rng.choice(SKUS), rng.randint(1, 2))]) for i in range(900)]
    orders.update(pending)
    placing = stream(live, pending)  # ~9 s while the flows are being killed
    for victim in ("orders", "inventory", "payments", "orders"):
        time.sleep(1.5)
        live.kill(victim)  # mid-stream: records are in flight in and out of the victim
        live.start(victim)
    placing.join()
    seen = observe(live.settings, set(orders), timeout_s=240)
    check(live, seen, stock, orders)
    replayed = len(seen.events) - len({e.id for e in seen.events})
    print(f"records re-sent after the kills (same id, absorbed downstream): {replayed}")


def test_a_restart_after_the_deadlines_passed_contradicts_nothing_sent_before(live_short_deadlines: LiveFlows) -> None:
    """The orders flow is down longer than its deadlines while stock and payments keep answering.

    On restart the saga replays the epoch the kill cut short (its stock commits and captures
    already went out) with every deadline in it passed by the wall clock, and meets the answers
    that came while it was down: whatever it decides must agree with what was already sent.
    The warm-up order is counted with the rest: its 2 s may run out while the flows start.
    """
    live = live_short_deadlines
    rng = random.Random(13)
    stock, orders = stocked_and_warm(live, 60)
    pending = [(f"{live.run_id}-d{i:04d}", [(rng.choice(SKUS), rng.randint(1, 2))]) for i in range(400)]
    orders.update(pending)
    placing = stream(live, pending)  # ~4 s
    time.sleep(1.5)
    live.kill("orders")  # mid-stream, with the last epoch's confirmations on their way
    time.sleep(4)  # every deadline in flight passes; inventory and payments answer meanwhile
    live.start("orders")
    placing.join()
    seen = observe(live.settings, set(orders), timeout_s=120)
    check(live, seen, stock, orders)
