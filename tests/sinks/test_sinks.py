"""One abstract suite, run against every sink process and its real store.

The reference is one pass of a history of events through all four sinks; every other
scenario (the history twice, shuffled within each key, poisoned, a sink SIGKILLed mid
batch, a store down for 10 s) must leave byte-identical contents in the store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from ops.stack.launcher import Stack
from tests.sinks.harness import SINKS, Event, Scope, history, shuffled_within_keys
from topology.envelope import encode
from topology.messages import Money, OrderLine, OrderPlaced
from topology.settings import Settings
from topology.topics import ORDER_EVENTS, STOCK_LEVELS

pytestmark = pytest.mark.stack

HISTORY = history(seed=7)
#: The server of the local stack behind each sink.
SERVERS = {"postgres": "postgres", "redis": "redis", "search": "search", "mongo": "mongo"}


def run_through(settings: Settings, logs: Path, *batches: list[Event], commit_every: int = 0) -> dict[str, str]:
    """Feed the batches to all four sinks in a fresh scope; each sink's store contents.

    A small ``commit_every`` spreads a key's events over many write batches, so the stores'
    own version guards decide (not only the in-batch fold).
    """
    scope = Scope(settings, logs)
    try:
        for batch in batches:
            scope.produce(batch)
        for sink in SINKS:
            scope.start(sink, SHOP_SINK_COMMIT_EVERY=str(commit_every))
        scope.wait_caught_up(SINKS)
        return {sink: scope.dump(sink) for sink in SINKS}
    finally:
        scope.close()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sink-logs")


@pytest.fixture(scope="module")
def reference(settings: Settings, logs: Path) -> dict[str, str]:
    dumps = run_through(settings, logs, HISTORY)
    assert all(dumps.values()), "every store holds something"
    return dumps


@pytest.fixture(scope="module")
def twice(settings: Settings, logs: Path) -> dict[str, str]:
    return run_through(settings, logs, HISTORY, HISTORY, commit_every=5)


@pytest.fixture(scope="module")
def shuffled(settings: Settings, logs: Path) -> dict[str, str]:
    reordered = shuffled_within_keys(HISTORY, seed=11)
    assert reordered != HISTORY
    return run_through(settings, logs, reordered, commit_every=5)


@pytest.fixture
def scope(settings: Settings, tmp_path: Path) -> Iterator[Scope]:
    scope = Scope(settings, tmp_path)
    yield scope
    scope.close()


@pytest.mark.parametrize("sink", SINKS)
class TestSinkContract:
    def test_the_history_twice_changes_nothing(
        self, sink: str, reference: dict[str, str], twice: dict[str, str]
    ) -> None:
        assert twice[sink] == reference[sink]

    def test_shuffled_within_keys_gives_the_same_contents(
        self, sink: str, reference: dict[str, str], shuffled: dict[str, str]
    ) -> None:
        assert shuffled[sink] == reference[sink]

    def test_poison_goes_to_the_dlq_with_its_reason_and_the_rest_is_written(
        self, sink: str, scope: Scope, reference: dict[str, str]
    ) -> None:
        scope.produce(HISTORY[: len(HISTORY) // 2])
        scope.produce_raw(ORDER_EVENTS, "order-x", b"\xff not an envelope")
        level = next(e for e in HISTORY if e.topic is STOCK_LEVELS).envelope
        scope.produce_raw(ORDER_EVENTS, "order-x", encode(level))  # a stock event on the orders topic
        line = OrderLine("sku-0", 1, Money(100, "EUR"))
        unversioned = next(e for e in HISTORY if e.envelope.type == "OrderPlaced")
        placed = OrderPlaced(order_id="order-x", customer_id="user-1", lines=[line], total=Money(100, "EUR"))
        poison = msgspec.structs.replace(unversioned.envelope, id="poison-1", seq=None, payload=placed)
        scope.produce_raw(ORDER_EVENTS, "order-x", encode(poison))
        scope.produce(HISTORY[len(HISTORY) // 2 :])
        scope.start(sink)
        scope.wait_caught_up([sink])
        letters = [(value, d) for value, d in scope.dead_letters(ORDER_EVENTS) if d.stage == f"sink.{sink}"]
        reasons = sorted(d.error for _, d in letters)
        assert any("not a valid envelope" in r for r in reasons), reasons
        assert any("StockLevelChanged does not belong on" in r for r in reasons), reasons
        assert b"\xff not an envelope" in [value for value, _ in letters], "the original bytes travel untouched"
        if sink == "mongo":  # the audit log keeps every decodable event, with or without a version
            assert len(letters) == 2, reasons
            assert "'order-x'" in scope.dump(sink)
        else:
            assert len(letters) == 3, reasons
            assert any("has no seq" in r for r in reasons), reasons
            assert scope.dump(sink) == reference[sink]
        assert scope.processes[sink].poll() is None, "poison does not stop the sink"

    def test_sigkill_mid_batch_loses_nothing_and_doubles_nothing(
        self, sink: str, scope: Scope, reference: dict[str, str]
    ) -> None:
        scope.produce(HISTORY)
        scope.start(sink, SHOP_SINK_COMMIT_EVERY="4", SHOP_SINK_COMMIT_INTERVAL_S="0.05")
        deadline = time.monotonic() + 60
        while True:
            committed, end = scope.progress(sink)
            if committed > 0:
                break
            assert time.monotonic() < deadline, "the sink committed nothing in 60 s"
            time.sleep(0.01)
        scope.kill(sink)
        assert committed < end, f"killed too late to be mid-stream ({committed} of {end} committed)"
        scope.start(sink)
        scope.wait_caught_up([sink])
        assert scope.dump(sink) == reference[sink]

    def test_a_store_down_for_10s_is_waited_for_and_nothing_is_skipped(
        self, sink: str, settings: Settings, scope: Scope, reference: dict[str, str]
    ) -> None:
        half = len(HISTORY) // 2
        scope.produce(HISTORY[:half])
        scope.start(sink)
        scope.wait_caught_up([sink])
        server = Stack(settings, (SERVERS[sink],))
        assert [row.state for row in server.down()] == ["stopped"], "the store is down"
        try:
            scope.produce(HISTORY[half:])
            time.sleep(10)
            assert scope.processes[sink].poll() is None, "the sink waits for its store instead of dying"
            committed, end = scope.progress(sink)
            assert committed < end, "nothing is committed while the store is down"
        finally:
            assert all(row.ok for row in server.up()), "the store is back"
        scope.wait_caught_up([sink], timeout_s=120)
        assert scope.dump(sink) == reference[sink]
