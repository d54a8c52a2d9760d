"""What the logs cost: a log call in the caller's thread, and the logs sink's process at idle.

1. Caller's time per ``logger.info`` with an ``extra`` field, in one process: with no handler
   (the baseline), with the Kafka shipper of ``topology/logs.py`` to the real broker, and with
   the shipper while Kafka is away (a closed port). Also the records shipped or counted as
   dropped, and the whole process's CPU per record (the shipper's thread formats and produces).
2. Idle CPU and RSS of a ``shopstream sink logs`` process beside a ``shopstream sink search``
   (the baseline: an existing sink), both started in a scope of their own, over 60 s once
   both have caught up (the logs sink first indexes what part 1 shipped).

Run: ``python -m bench.logs [--records N] [--idle-seconds S]`` with the stack up.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import socket
import tempfile
import time
from pathlib import Path

from tests.support.sinks import SinkHarness
from topology.access import OPERATOR
from topology.logs import DROPPED, KafkaShipper, kafka_producer
from topology.settings import Settings
from topology.topics import LOGS


def _dropped() -> float:
    return float(sum(DROPPED.labels(r)._value.get() for r in ("queue_full", "buffer_full", "undelivered", "error")))


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def caller_cost(records: int, handler: logging.Handler | None) -> tuple[float, float, float]:
    """(µs per call in the caller, CPU µs per record of the whole process until shipped, records dropped)."""
    logger = logging.getLogger(f"flows.bench.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if handler is not None:
        logger.addHandler(handler)
    dropped = _dropped()
    cpu = _cpu_s()
    started = time.perf_counter()
    for n in range(records):
        logger.info("order %s reserving -> authorizing", n, extra={"shop.order_id": f"o_{n}"})
    calls = time.perf_counter() - started
    if handler is not None:
        handler.close()  # ships what is queued (bounded wait)
        logger.removeHandler(handler)
    spent = _cpu_s() - cpu
    return 1e6 * calls / records, 1e6 * spent / records, _dropped() - dropped


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def idle_cost(harness: SinkHarness, seconds: float) -> dict[str, tuple[float, float]]:
    """Sink name to (% of one core, RSS MB) while idle."""
    harness.start("logs")
    harness.start("search")
    harness.wait_caught_up(["logs", "search"], timeout_s=300)  # the logs sink indexes what part 1 shipped first
    time.sleep(10)
    pids = {name: process.pid for name, process in harness.processes.items()}
    before = {name: _proc_cpu_s(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    return {name: (100 * (_proc_cpu_s(pid) - before[name]) / elapsed, _rss_mb(pid)) for name, pid in pids.items()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.logs")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--idle-seconds", type=float, default=60)
    args = parser.parse_args()
    harness = SinkHarness(Settings.from_env(), Path(tempfile.mkdtemp(prefix="bench-logs-")), {})
    try:
        scope = harness.settings
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            away = Settings(kafka_bootstrap=f"127.0.0.1:{closed.getsockname()[1]}", kafka_security="plaintext")
        topic = LOGS.name_for(scope.topic_prefix)
        rows: list[tuple[str, logging.Handler | None]] = [
            ("no handler (baseline)", None),
            ("shipper, Kafka up", KafkaShipper(topic, "bench", kafka_producer(scope, OPERATOR), 10_000)),
            ("shipper, Kafka away", KafkaShipper(topic, "bench", kafka_producer(away, OPERATOR, 1000), 10_000, 1.0)),
        ]
        print(f"{'log call':<24} {'µs/call':>8} {'CPU µs/record':>14} {'dropped':>8}")
        for label, handler in rows:
            per_call, per_record, dropped = caller_cost(args.records, handler)
            print(f"{label:<24} {per_call:>8.1f} {per_record:>14.1f} {dropped:>8.0f}")
        print(f"\n{'idle sink':<10} {'% of a core':>11} {'RSS MB':>7}   ({args.idle_seconds:.0f} s, once caught up)")
        for name, (share, rss) in idle_cost(harness, args.idle_seconds).items():
            print(f"{name:<10} {share:>11.2f} {rss:>7.0f}")
    finally:
        harness.close()


if __name__ == "__main__":
    main()
