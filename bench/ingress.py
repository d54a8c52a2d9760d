"""Accepted commands/s through the real ingress vs a bare Falcon hello-world, same gunicorn config, same run.

Run with the stack up: ``python -m bench.ingress [--seconds N]`` (``make bench`` builds the
load generator, vegeta, into .tools/bin with ``go install``). Each ingress request is a
``POST /v1/orders`` with its own user's JWT (verified), a GCRA rate-limit check in Redis
(limits set high enough not to refuse), a catalog price lookup on the replica, and a
Kafka produce confirmed (acks=all) before the 202. Prints a table:

- hello: peak requests/s of ``bench/hello.py`` (POST, 202);
- floor: peak of ``bench/floor.py``, the hello-world plus only what every accepted command
  must cost (one rate-limit round trip to Redis, one Kafka produce confirmed before the 202):
  the most any such ingress can reach here, so the targets can be read against it;
- ingress: peak accepted commands/s (202s), checked against the records on the topic;
- latency: p50/p99 of the ingress at half its peak rate.

The peaks are measured in ``--rounds`` alternating rounds of the three, so drift in the
machine's speed touches every case alike; the verdicts use the medians, and the ratios are
the medians of each round's ratio.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import TopicPartition

from ingress.auth.tokens import Principal
from ingress.wsgi import load_keys
from ops.kafka_admin import admin_client, end_offsets
from tests.support.processes import free_port, start_gunicorn, stop_all
from tests.support.scope import Scope
from topology.settings import PROJECT_ROOT, Settings
from topology.topics import ORDER_COMMANDS

VEGETA = PROJECT_ROOT / ".tools" / "bin" / "vegeta"
TARGET_CMDS, TARGET_RATIO, TARGET_P99_MS = 3_000, 0.5, 25.0


def attack(targets: Path, seconds: int, rate: int | None) -> dict[str, Any]:
    """vegeta at a fixed rate, or as fast as 64 workers go (rate None); its JSON report."""
    pace = ["-rate", f"{rate}/s"] if rate else ["-rate", "0", "-max-workers", "64"]
    run = subprocess.run(
        [str(VEGETA), "attack", "-format", "json", "-targets", str(targets), "-duration", f"{seconds}s", *pace],
        capture_output=True,
        check=True,
    )
    report = subprocess.run([str(VEGETA), "report", "-type", "json"], input=run.stdout, capture_output=True, check=True)
    return json.loads(report.stdout)


def targets_file(folder: Path, name: str, requests: list[dict[str, Any]]) -> Path:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in requests))
    return path


def customer(n: int) -> Principal:
    return Principal(f"bench-{n}", "user", frozenset({"customer"}))


def accepted(report: dict[str, Any], code: str) -> float:
    return report["status_codes"].get(code, 0) / report["duration"] * 1e9


def median_ratio(rounds: Sequence[Sequence[dict[str, Any]]], case: int, against: int) -> float:
    """The median over the rounds of one case's 202s/s against another's in the same round."""
    return statistics.median(accepted(r[case], "202") / max(accepted(r[against], "202"), 1e-9) for r in rounds)


#: The ingress's rate limits out of the way: the bench measures its peak, not its limits.
UNLIMITED = dict.fromkeys(
    ("SHOP_RATE_WRITES_PER_S", "SHOP_RATE_BURST", "SHOP_RATE_ADDRESS_PER_S", "SHOP_RATE_ADDRESS_BURST"), "1000000"
)


def seed_mug(settings: Settings, scope: Scope) -> None:
    """The one product the benches order ('mug', 9.00 EUR), straight into the scope's read model."""
    with psycopg.connect(settings.pg_url, autocommit=True, options=f"-c search_path={scope.schema}") as db:
        db.execute(
            "INSERT INTO products (sku, title, description, brand, category, tags, price_amount, currency,"
            " updated_at, version) VALUES ('mug', 'Mug', '', '', '', '{}', 900, 'EUR', now(), 1)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="alternating hello/ingress peak pairs")
    args = parser.parse_args()
    if not VEGETA.exists():
        sys.exit(f"{VEGETA} is missing: make bench builds it (go install github.com/tsenart/vegeta/v12@v12.13.0)")
    settings = Settings.from_env()
    folder = Path(tempfile.mkdtemp(prefix="bench-ingress-"))
    scope = Scope(settings)
    scope.apply_topology()
    scope.migrate()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        seed_mug(settings, scope)
        env = {**scope.settings.to_env(), **UNLIMITED}
        hello_port, floor_port, ingress_port = free_port(), free_port(), free_port()
        # Up once they answer at all: the hello-world and the floor have no /healthz.
        for app, port, log in (
            ("bench.hello:app", hello_port, "hello.log"),
            ("bench.floor:app_from_env()", floor_port, "floor.log"),
            ("ingress.wsgi:app_from_env()", ingress_port, "ingress.log"),
        ):
            processes.append(start_gunicorn(app, env, port, folder / log, ready_status=None))
        keys = load_keys(settings)
        body = base64.b64encode(
            json.dumps({"lines": [{"sku": "mug", "quantity": 1}], "payment_token": "tok_visa"}).encode()
        )
        orders = [
            {
                "method": "POST",
                "url": f"http://127.0.0.1:{ingress_port}/v1/orders",
                "body": body.decode(),
                "header": {
                    "Content-Type": ["application/json"],
                    "Authorization": [
                        "Bearer "
                        + keys.issue(Principal(f"bench-{n}", "user", frozenset({"customer"})), timedelta(hours=1))
                    ],
                },
            }
            for n in range(500)
        ]
        hello = [{"method": "POST", "url": f"http://127.0.0.1:{hello_port}/hello", "body": body.decode()}]
        floor = [{"method": "POST", "url": f"http://127.0.0.1:{floor_port}/floor", "body": body.decode()}]
        hello_targets = targets_file(folder, "hello", hello)
        floor_targets = targets_file(folder, "floor", floor)
        order_targets = targets_file(folder, "orders", orders)
        for warm in (hello_targets, floor_targets, order_targets):
            attack(warm, 2, None)
        admin, _ = admin_client(scope.settings)
        topic = ORDER_COMMANDS.name_for(scope.settings.topic_prefix)
        partitions = [TopicPartition(topic, p) for p in range(ORDER_COMMANDS.partitions)]
        on_kafka = 0  # records the ingress rounds added (the floor writes to the same topic)
        rounds = []
        for _ in range(args.rounds):
            hello_report = attack(hello_targets, args.seconds, None)
            floor_report = attack(floor_targets, args.seconds, None)
            before_orders = sum(end_offsets(admin, partitions).values())
            order_report = attack(order_targets, args.seconds, None)
            on_kafka += sum(end_offsets(admin, partitions).values()) - before_orders
            rounds.append((hello_report, floor_report, order_report))
        peak = statistics.median(accepted(p, "202") for _, _, p in rounds)
        half_report = attack(order_targets, args.seconds, max(1, int(peak / 2)))
    finally:
        stop_all(processes)
        scope.close()
    hello_rate = statistics.median(accepted(h, "202") for h, _, _ in rounds)
    floor_rate = statistics.median(accepted(f, "202") for _, f, _ in rounds)
    rows = []
    for n, (hello_report, floor_report, peak_report) in enumerate(rounds, start=1):
        rows.append((f"round {n}: hello-world (bare Falcon), peak", hello_report, accepted(hello_report, "202")))
        rows.append((f"round {n}: floor (hello + Redis + Kafka), peak", floor_report, accepted(floor_report, "202")))
        rows.append((f"round {n}: ingress POST /v1/orders, peak", peak_report, accepted(peak_report, "202")))
    rows.append((f"ingress at half peak ({int(peak / 2)}/s)", half_report, accepted(half_report, "202")))
    print(f"\n| {'case':<46} | {'requests':>8} | {'2xx/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | {'errors':>6} |")
    print(f"|{'-' * 48}|{'-' * 10}|{'-' * 10}|{'-' * 9}|{'-' * 9}|{'-' * 8}|")
    for name, report, rate in rows:
        lat = report["latencies"]
        errors = report["requests"] - sum(v for k, v in report["status_codes"].items() if k.startswith("2"))
        print(
            f"| {name:<46} | {report['requests']:>8} | {rate:>8,.0f} | {lat['50th'] / 1e6:>7.1f} |"
            f" {lat['99th'] / 1e6:>7.1f} | {errors:>6} |"
        )
    p99 = half_report["latencies"]["99th"] / 1e6
    answers = sum(p["status_codes"].get("202", 0) for _, _, p in rounds)
    print(f"\ncommands on Kafka during the ingress peak runs: {on_kafka} (202 answers: {answers})")
    print(f"medians: hello-world {hello_rate:,.0f}/s, floor {floor_rate:,.0f}/s, ingress {peak:,.0f}/s")
    ratio = median_ratio(rounds, 2, 0)
    floor_ratio = median_ratio(rounds, 1, 0)
    of_floor = median_ratio(rounds, 2, 1)
    print(f"floor / hello-world {floor_ratio:.2f}; ingress / floor {of_floor:.2f} (medians of rounds)")
    checks = [
        (f"accepted commands/s >= {TARGET_CMDS:,} (median)", peak >= TARGET_CMDS, f"{peak:,.0f}"),
        (f"ingress / hello-world >= {TARGET_RATIO} (median of rounds)", ratio >= TARGET_RATIO, f"{ratio:.2f}"),
        (f"p99 at half peak < {TARGET_P99_MS} ms", p99 < TARGET_P99_MS, f"{p99:.1f} ms"),
    ]
    for name, ok, value in checks:
        print(f"{name}: {value}: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
