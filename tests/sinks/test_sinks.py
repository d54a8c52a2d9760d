"""One abstract suite, run against every sink process and its real store.

The reference is one pass of a history of events through all four sinks; every other
scenario (the history twice, shuffled within each key, poisoned, a sink SIGKILLed mid
batch, a store down for 10 s) must leave byte-identical contents in the store.
``SinkContract`` holds the tests; each store's subclass names its sink process and the
server behind it, reads its store back, and says what it keeps of an unversioned event.

Each scenario is played once per module, by the four sinks side by side in one scope (the
four SIGKILLed, the four stores down at once): the sinks share nothing but the broker, so
each store's test reads what its own sink did, and the suite pays for each scenario once.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pytest

from ops.stack.launcher import Stack
from tests.support.history import Event, history, shuffled_within_keys
from tests.support.scope import Scope
from tests.support.sinks import SINKS, SinkHarness, dump_mongo, dump_postgres, dump_redis, dump_search
from topology.dlq import DeadLetter
from topology.envelope import encode
from topology.messages import Money, OrderLine, OrderPlaced
from topology.settings import Settings
from topology.topics import ORDER_EVENTS, STOCK_LEVELS

pytestmark = pytest.mark.stack

HISTORY = history(seed=7)
Letters = list[tuple[bytes | None, DeadLetter]]


def run_through(settings: Settings, logs: Path, *batches: list[Event], commit_every: int = 0) -> Iterator[SinkHarness]:
    """Feed the batches to all four sinks in a fresh scope; the scope, its sinks stopped, until the module ends.

    A small ``commit_every`` spreads a key's events over many write batches, so the stores'
    own version guards decide (not only the in-batch fold).
    """
    sinks = SinkHarness(settings, logs)
    try:
        for batch in batches:
            sinks.produce(batch)
        sinks.start_all(SHOP_SINK_COMMIT_EVERY=str(commit_every))
        sinks.wait_caught_up(SINKS)
        sinks.stop()
        yield sinks
    finally:
        sinks.close()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sink-logs")


@pytest.fixture(scope="module")
def reference_run(settings: Settings, logs: Path) -> Iterator[SinkHarness]:
    yield from run_through(settings, logs, HISTORY)


@pytest.fixture(scope="module")
def twice_run(settings: Settings, logs: Path) -> Iterator[SinkHarness]:
    yield from run_through(settings, logs, HISTORY, HISTORY, commit_every=5)


@pytest.fixture(scope="module")
def shuffled_run(settings: Settings, logs: Path) -> Iterator[SinkHarness]:
    reordered = shuffled_within_keys(HISTORY, seed=11)
    assert reordered != HISTORY
    yield from run_through(settings, logs, reordered, commit_every=5)


@dataclass
class Played:
    """A scenario played by the four sinks in one scope, and what was seen of each sink on the way."""

    sinks: SinkHarness
    alive: dict[str, bool] = field(default_factory=dict)  # the sink still running when it was looked at
    progress: dict[str, tuple[int, int]] = field(default_factory=dict)  # (committed, end) at the moment that counts
    letters: Letters = field(default_factory=list)


def poisoned_history(sinks: SinkHarness) -> None:
    """The history with, halfway, bytes that are no envelope, an event on the wrong topic and one without a seq."""
    sinks.produce(HISTORY[: len(HISTORY) // 2])
    sinks.produce_raw(ORDER_EVENTS, "order-x", b"\xff not an envelope")
    level = next(e for e in HISTORY if e.topic is STOCK_LEVELS).envelope
    sinks.produce_raw(ORDER_EVENTS, "order-x", encode(level))  # a stock event on the orders topic
    line = OrderLine("sku-0", 1, Money(100, "EUR"))
    unversioned = next(e for e in HISTORY if e.envelope.type == "OrderPlaced")
    placed = OrderPlaced(order_id="order-x", customer_id="user-1", lines=[line], total=Money(100, "EUR"))
    poison = msgspec.structs.replace(unversioned.envelope, id="poison-1", seq=None, payload=placed)
    sinks.produce_raw(ORDER_EVENTS, "order-x", encode(poison))
    sinks.produce(HISTORY[len(HISTORY) // 2 :])


@pytest.fixture(scope="module")
def poisoned_run(settings: Settings, logs: Path) -> Iterator[Played]:
    played = Played(SinkHarness(settings, logs))
    try:
        poisoned_history(played.sinks)
        played.sinks.start_all()
        played.sinks.wait_caught_up(SINKS)
        played.alive = {sink: played.sinks.processes[sink].poll() is None for sink in SINKS}
        played.letters = played.sinks.dead_letters(ORDER_EVENTS)
        played.sinks.stop()
        yield played
    finally:
        played.sinks.close()


@pytest.fixture(scope="module")
def sigkilled_run(settings: Settings, logs: Path) -> Iterator[Played]:
    """Each sink SIGKILLed as soon as it has committed something (4 records a batch), then started again."""
    played = Played(SinkHarness(settings, logs))
    sinks = played.sinks
    try:
        sinks.produce(HISTORY)
        sinks.start_all(SHOP_SINK_COMMIT_EVERY="4", SHOP_SINK_COMMIT_INTERVAL_S="0.05")

        def kill_once_committing(sink: str) -> tuple[int, int]:
            deadline = time.monotonic() + 60
            while True:
                committed, end = sinks.progress(sink)
                if committed > 0:
                    sinks.kill(sink)
                    return committed, end
                assert time.monotonic() < deadline, f"{sink} committed nothing in 60 s"
                time.sleep(0.01)

        # one watcher per sink: a fast sink commits its whole share while a loop looks at the others
        with ThreadPoolExecutor(len(SINKS)) as pool:
            played.progress = dict(zip(SINKS, pool.map(kill_once_committing, SINKS), strict=True))
        sinks.start_all()
        sinks.wait_caught_up(SINKS)
        sinks.stop()
        yield played
    finally:
        sinks.close()


@pytest.fixture(scope="module")
def store_down_run(settings: Settings, logs: Path) -> Iterator[Played]:
    """Half the history written, then every store down for 10 s while the other half arrives."""
    played = Played(SinkHarness(settings, logs))
    sinks = played.sinks
    servers = Stack(settings, tuple(contract.server for contract in CONTRACTS))
    try:
        half = len(HISTORY) // 2
        sinks.produce(HISTORY[:half])
        sinks.start_all()
        sinks.wait_caught_up(SINKS)
        try:
            assert {row.state for row in servers.down()} == {"stopped"}, "the stores are down"
            sinks.produce(HISTORY[half:])
            time.sleep(10)
            played.alive = {sink: sinks.processes[sink].poll() is None for sink in SINKS}
            played.progress = {sink: sinks.progress(sink) for sink in SINKS}
        finally:
            assert all(row.ok for row in servers.up()), "the stores are back"
        sinks.wait_caught_up(SINKS, timeout_s=120)
        sinks.stop()
        yield played
    finally:
        sinks.close()


class SinkContract(ABC):
    """What every sink keeps, whatever its store; a subclass per store supplies the hooks."""

    @property
    @abstractmethod
    def sink(self) -> str:
        """The sink process under test (``shopstream sink NAME``)."""

    @property
    @abstractmethod
    def server(self) -> str:
        """The local stack's server behind the sink's store."""

    @abstractmethod
    def dump(self, scope: Scope) -> str:
        """The store's contents in ``scope``, canonical, with the scope's name taken out."""

    @abstractmethod
    def check_the_unversioned_event(self, letters: Letters, reasons: list[str], contents: str, reference: str) -> None:
        """What the store made of the poisoned run, whose one decodable event without a ``seq`` is its own."""

    @pytest.fixture
    def reference(self, reference_run: SinkHarness) -> str:
        contents = self.dump(reference_run.scope)
        assert contents, "the store holds something"
        return contents

    @pytest.fixture
    def twice(self, twice_run: SinkHarness) -> str:
        return self.dump(twice_run.scope)

    @pytest.fixture
    def shuffled(self, shuffled_run: SinkHarness) -> str:
        return self.dump(shuffled_run.scope)

    def test_the_history_twice_changes_nothing(self, reference: str, twice: str) -> None:
        assert twice == reference

    def test_shuffled_within_keys_gives_the_same_contents(self, reference: str, shuffled: str) -> None:
        assert shuffled == reference

    def test_poison_goes_to_the_dlq_with_its_reason_and_the_rest_is_written(
        self, poisoned_run: Played, reference: str
    ) -> None:
        letters = [(value, d) for value, d in poisoned_run.letters if d.stage == f"sink.{self.sink}"]
        reasons = sorted(d.error for _, d in letters)
        assert any("not a valid envelope" in r for r in reasons), reasons
        assert any("StockLevelChanged does not belong on" in r for r in reasons), reasons
        assert b"\xff not an envelope" in [value for value, _ in letters], "the original bytes travel untouched"
        self.check_the_unversioned_event(letters, reasons, self.dump(poisoned_run.sinks.scope), reference)
        assert poisoned_run.alive[self.sink], "poison does not stop the sink"

    def test_sigkill_mid_batch_loses_nothing_and_doubles_nothing(self, sigkilled_run: Played, reference: str) -> None:
        committed, end = sigkilled_run.progress[self.sink]
        assert committed < end, f"killed too late to be mid-stream ({committed} of {end} committed)"
        assert self.dump(sigkilled_run.sinks.scope) == reference

    def test_a_store_down_for_10s_is_waited_for_and_nothing_is_skipped(
        self, store_down_run: Played, reference: str
    ) -> None:
        assert store_down_run.alive[self.sink], "the sink waits for its store instead of dying"
        committed, end = store_down_run.progress[self.sink]
        assert committed < end, "nothing is committed while the store is down"
        assert self.dump(store_down_run.sinks.scope) == reference


class VersionGuardedSinkContract(SinkContract):
    """A store that upserts by key with a version guard: an event without a ``seq`` cannot be placed."""

    def check_the_unversioned_event(self, letters: Letters, reasons: list[str], contents: str, reference: str) -> None:
        assert len(letters) == 3, reasons
        assert any("has no seq" in r for r in reasons), reasons
        assert contents == reference


class TestPostgresSink(VersionGuardedSinkContract):
    sink = "postgres"
    server = "postgres"

    def dump(self, scope: Scope) -> str:
        return dump_postgres(scope)


class TestRedisSink(VersionGuardedSinkContract):
    sink = "redis"
    server = "redis"

    def dump(self, scope: Scope) -> str:
        return dump_redis(scope)


class TestSearchSink(VersionGuardedSinkContract):
    sink = "search"
    server = "search"

    def dump(self, scope: Scope) -> str:
        return dump_search(scope)


class TestMongoSink(SinkContract):
    """The audit log keeps every decodable event, with or without a version."""

    sink = "mongo"
    server = "mongo"

    def dump(self, scope: Scope) -> str:
        return dump_mongo(scope)

    def check_the_unversioned_event(self, letters: Letters, reasons: list[str], contents: str, reference: str) -> None:
        assert len(letters) == 2, reasons
        assert "'order-x'" in contents


CONTRACTS = (TestPostgresSink, TestRedisSink, TestSearchSink, TestMongoSink)
