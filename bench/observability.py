"""What telemetry costs: the flows' orders/s and the ingress's peak with it on, against the same run with it off.

Run with the stack up (its trace backend too): ``python -m bench.observability [--orders N]
[--seconds S] [--rounds R]`` (``make bench`` builds vegeta, the load generator). On means
every telemetry the system has, as it runs in production:

- metrics: each process serves them (SHOP_METRICS_ENABLED, its own port) and is scraped
  every ``--scrape-s`` (1 s: 15 times as often as the local Prometheus does);
- tracing: spans exported by OTLP to the stack's trace backend, 10% of traces sampled
  (SHOP_OTLP_ENDPOINT, SHOP_TRACE_SAMPLE_RATIO=0.1); the flows' pre-loaded commands carry a
  ``traceparent`` header as the ingress writes them, one in ten sampled;
- logs: every process ships its log records through Kafka (SHOP_LOG_SHIP).

Off is SHOP_METRICS_ENABLED=false (nothing served, the ingress counts no request, Bytewax
keeps no metrics), SHOP_LOG_SHIP=false and no OTLP endpoint. Each case runs ``--rounds``
times per mode, in the order off, on, on, off, ... so the machine's drift touches both
alike; the table gives each round and the medians, and the verdict is on/off >= 0.9 for both:

- flows: the saga group (``shopstream flow orders inventory payments``, as the Procfile runs
  it) taking a pre-loaded burst of ``--orders`` orders, orders ended per second from the
  first OrderPlaced to the last OrderConfirmed (bench.flows' measure), under a private prefix;
- ingress: peak accepted ``POST /v1/orders`` per second (vegeta, 64 workers, ``--seconds``),
  two gunicorn instances of the real ingress side by side, one per mode.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Producer

from bench.flows import SKUS, clean_up, confirmed, place, saga_rate_of
from bench.ingress import UNLIMITED, VEGETA, accepted, attack, seed_mug, targets_file
from ingress.auth.tokens import Principal
from ingress.wsgi import load_keys
from ops.topology_admin import apply, lag
from tests.support.flows import catalog_product
from tests.support.processes import free_port, spawn, start_gunicorn, stop_all
from tests.support.scope import Scope
from topology.access import OPERATOR
from topology.envelope import Producer as MessageProducer
from topology.envelope import encode, envelop
from topology.kafka_client import client_config
from topology.messages import AdjustStock, Money
from topology.processes import PROCESSES
from topology.settings import PROJECT_ROOT, Settings
from topology.topics import CATALOG_EVENTS, INVENTORY_COMMANDS, ORDER_COMMANDS
from topology.tracing import HEADER

TARGET = 0.9
SAGA = ("orders", "inventory", "payments")
RESULTS = PROJECT_ROOT / "bench" / "results"


PARTS = ("metrics", "traces", "logs")
#: What "on" turns on (``--on``): every part by default.
ON: set[str] = set(PARTS)


def telemetry(settings: Settings, on: bool) -> dict[str, str]:
    """The settings of one mode, as environment variables (no SHOP_OTLP_ENDPOINT: tracing off)."""
    env = {"SHOP_METRICS_ENABLED": "false", "SHOP_LOG_SHIP": "false"}
    if on and "metrics" in ON:
        env["SHOP_METRICS_ENABLED"] = "true"
    if on and "logs" in ON:
        env["SHOP_LOG_SHIP"] = "true"
    if on and "traces" in ON:
        env["SHOP_OTLP_ENDPOINT"] = f"http://{settings.host}:{settings.traces_http_port}"
        env["SHOP_TRACE_SAMPLE_RATIO"] = "0.1"
    return env


@dataclass
class Scraper:
    """A thread that reads ``/metrics`` of each port every ``interval_s``, as Prometheus would, until stopped."""

    host: str
    ports: list[int]
    interval_s: float
    scrapes: int = 0
    failures: int = 0
    families: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.wait(self.interval_s):
                for port in self.ports:
                    try:
                        text = client.get(f"http://{self.host}:{port}/metrics").text
                        self.scrapes += 1
                        self.families |= {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
                    except httpx.HTTPError:
                        self.failures += 1

    def __enter__(self) -> Scraper:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


def traceparent(i: int) -> bytes:
    """A header as the ingress writes one at 10% sampling: every tenth trace sampled."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-{'01' if i % 10 == 0 else '00'}".encode()


def stock_up(settings: Settings) -> None:
    producer = Producer({**client_config(settings, OPERATOR), "linger.ms": 20})
    for sku in SKUS:
        product = catalog_product(sku, Money(1999, "EUR"), seq=1)
        producer.produce(CATALOG_EVENTS.name_for(settings.topic_prefix), key=sku.encode(), value=encode(product))
        stock = AdjustStock(sku=sku, delta=10**6, reason="bench")
        producer.produce(
            INVENTORY_COMMANDS.name_for(settings.topic_prefix),
            key=sku.encode(),
            value=encode(envelop(stock, producer=MessageProducer("service", "bench"), occurred_at=datetime.now(UTC))),
        )
    assert producer.flush(60) == 0


def load_orders(settings: Settings, count: int, tag: str, traced: bool) -> None:
    producer = Producer({**client_config(settings, OPERATOR), "linger.ms": 20})
    topic = ORDER_COMMANDS.name_for(settings.topic_prefix)
    for i in range(count):
        order_id = f"{tag}{i}"
        headers = [(HEADER, traceparent(i))] if traced else None
        while True:
            try:
                producer.produce(topic, key=order_id.encode(), value=place(order_id, i), headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0


def cpu_seconds(pid: int) -> float:
    """User and system CPU of the process (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(check: Callable[[], bool], what: str, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit(f"{what} did not happen in {timeout_s:.0f} s")
        time.sleep(0.5)


def flows_round(base: Settings, orders: int, on: bool, scrape_s: float, logs: Path) -> dict[str, Any]:
    """The saga group over a pre-loaded burst in one mode: orders ended/s, and what the scraper saw."""
    settings = base.model_copy(update={"topic_prefix": f"obs{uuid.uuid4().hex[:6]}."})
    apply(settings)
    port = free_port()
    env = {
        **os.environ,
        "SHOP_TOPIC_PREFIX": settings.topic_prefix,
        "SHOP_ORDER_STEP_TIMEOUT_S": "900",  # a burst queues every order at once
        "SHOP_METRICS_PORT": str(port),
        **telemetry(base, on),
    }
    process = None
    try:
        stock_up(settings)
        log = logs / f"saga-{'on' if on else 'off'}-{settings.topic_prefix.rstrip('.')}.log"
        process = spawn([str(Path(sys.executable).parent / "shopstream"), "flow", *SAGA], env, log)
        inventory = next(p for p in PROCESSES if p.name == "inventory").group_for(settings.topic_prefix) or ""
        catalog = CATALOG_EVENTS.name_for(settings.topic_prefix)

        def priced() -> bool:
            rows = [row for row in lag(settings, [inventory]) if row.topic == catalog]
            return bool(rows) and all(row.committed is not None and row.lag == 0 for row in rows)

        wait_for(priced, "the inventory flow reading the catalog's prices", 120, process)
        with Scraper(settings.host, [port] if on and "metrics" in ON else [], scrape_s) as scraper:
            cpu_before = cpu_seconds(process.pid)
            load_orders(settings, orders, "p", traced=on and "traces" in ON)
            peak = confirmed(settings, "p", orders, timeout_s=900)
            cpu = cpu_seconds(process.pid) - cpu_before
        if len(peak.confirmed_at) < orders // 2:
            raise SystemExit(f"only {len(peak.confirmed_at)} of {orders} orders confirmed; see {log}")
        return {
            "rate": saga_rate_of(peak),
            "cpu_ms_per_order": cpu * 1000 / orders,
            "confirmed": len(peak.confirmed_at),
            "scrapes": scraper.scrapes,
            "scrape_failures": scraper.failures,
            "families": len(scraper.families),
        }
    finally:
        clean_up(settings, [process] if process is not None else [])


def ingress_rounds(base: Settings, rounds: int, seconds: int, scrape_s: float, folder: Path) -> list[dict[str, Any]]:
    """Both modes' ingress side by side; each round a peak of one of them, in the order off, on, on, off, ..."""
    scope = Scope(base)
    scope.apply_topology()
    scope.migrate()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        seed_mug(base, scope)
        ports = {mode: (free_port(), free_port()) for mode in (False, True)}  # API, metrics
        for on, (api, operator) in ports.items():
            env = {
                **scope.settings.to_env(),
                **UNLIMITED,
                **telemetry(base, on),
                "SHOP_INGRESS_METRICS_PORT": str(operator),
            }
            log = folder / f"ingress-{'on' if on else 'off'}.log"
            processes.append(start_gunicorn("ingress.wsgi:app_from_env()", env, api, log))
        keys = load_keys(base)
        body = base64.b64encode(
            json.dumps({"lines": [{"sku": "mug", "quantity": 1}], "payment_token": "tok_visa"}).encode()
        )
        targets = {}
        for on, (api, _) in ports.items():
            requests = [
                {
                    "method": "POST",
                    "url": f"http://127.0.0.1:{api}/v1/orders",
                    "body": body.decode(),
                    "header": {
                        "Content-Type": ["application/json"],
                        "Authorization": [
                            "Bearer "
                            + keys.issue(Principal(f"obs-{n}", "user", frozenset({"customer"})), timedelta(hours=1))
                        ],
                    },
                }
                for n in range(500)
            ]
            targets[on] = targets_file(folder, f"orders-{'on' if on else 'off'}", requests)
            attack(targets[on], 2, None)  # warm
        results = []
        for on in order_of(rounds):
            with Scraper(base.host, [ports[on][1]] if on and "metrics" in ON else [], scrape_s) as scraper:
                report = attack(targets[on], seconds, None)
            results.append(
                {
                    "on": on,
                    "rate": accepted(report, "202"),
                    "requests": report["requests"],
                    "p99_ms": report["latencies"]["99th"] / 1e6,
                    "errors": report["requests"] - report["status_codes"].get("202", 0),
                    "scrapes": scraper.scrapes,
                    "scrape_failures": scraper.failures,
                }
            )
        return results
    finally:
        stop_all(processes)
        scope.close()


def order_of(rounds: int) -> list[bool]:
    """off, on, on, off, off, on, ...: each mode as often first as second."""
    pairs = [(False, True) if n % 2 == 0 else (True, False) for n in range(rounds)]
    return [mode for pair in pairs for mode in pair]


def median_of(rows: list[dict[str, Any]], on: bool) -> float:
    return float(statistics.median(r["rate"] for r in rows if r["on"] == on))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=5000, help="orders per flows round")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per ingress peak")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per mode (off/on pairs)")
    parser.add_argument("--scrape-s", type=float, default=1.0, help="how often each process is scraped when on")
    parser.add_argument("--only", choices=("flows", "ingress"), help="one of the two cases")
    parser.add_argument("--json", type=Path, help="where to write the results (default bench/results/...)")
    parser.add_argument("--on", default=",".join(PARTS), help=f"what on turns on, of {','.join(PARTS)} (all)")
    args = parser.parse_args()
    ON.clear()
    ON.update(part for part in args.on.split(",") if part in PARTS)
    if args.only != "flows" and not VEGETA.exists():
        sys.exit(f"{VEGETA} is missing: make bench builds it (go install github.com/tsenart/vegeta/v12@v12.13.0)")
    base = Settings.from_env()
    folder = Path(tempfile.mkdtemp(prefix="bench-observability-"))
    flows: list[dict[str, Any]] = []
    ingress: list[dict[str, Any]] = []
    if args.only != "ingress":
        for on in order_of(args.rounds):
            row = {"on": on, **flows_round(base, args.orders, on, args.scrape_s, folder)}
            mode = "on " if on else "off"
            print(f"flows {mode}: {row['rate']:,.0f} orders/s, {row['cpu_ms_per_order']:.2f} ms CPU/order", flush=True)
            flows.append(row)
    if args.only != "flows":
        ingress = ingress_rounds(base, args.rounds, args.seconds, args.scrape_s, folder)
    print(f"\n| {'case':<38} | {'telemetry':>9} | {'rate /s':>8} | {'scrapes':>7} | {'failed':>6} |")
    print(f"|{'-' * 40}|{'-' * 11}|{'-' * 10}|{'-' * 9}|{'-' * 8}|")
    for name, rows in (("flows: saga group, orders ended", flows), ("ingress: POST /v1/orders 202s, peak", ingress)):
        for n, row in enumerate(rows, start=1):
            mode = "on" if row["on"] else "off"
            print(
                f"| {name + f' #{n}':<38} | {mode:>9} | {row['rate']:>8,.0f} |"
                f" {row['scrapes']:>7} | {row['scrape_failures']:>6} |"
            )
    verdicts = []
    for name, rows in (("flows orders/s", flows), ("ingress peak", ingress)):
        if rows:
            rate_off, rate_on = median_of(rows, False), median_of(rows, True)
            ratio = rate_on / rate_off
            verdicts.append((name, rate_off, rate_on, ratio))
            print(
                f"{name}: off {rate_off:,.0f}/s, on {rate_on:,.0f}/s (medians): on/off {ratio:.2f}:"
                f" {'met' if ratio >= TARGET else 'NOT met'} (>= {TARGET})"
            )
    if flows:
        cpu_off = statistics.median(r["cpu_ms_per_order"] for r in flows if not r["on"])
        cpu_on = statistics.median(r["cpu_ms_per_order"] for r in flows if r["on"])
        print(f"flows CPU per order: off {cpu_off:.2f} ms, on {cpu_on:.2f} ms (medians): off/on {cpu_off / cpu_on:.2f}")
    out = args.json or RESULTS / f"observability-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    ratios = {name: {"off": off, "on": on, "ratio": ratio} for name, off, on, ratio in verdicts}
    document = {"flows": flows, "ingress": ingress, "ratios": ratios, "args": vars(args) | {"json": str(out)}}
    out.write_text(json.dumps(document, indent=1))
    print(f"results: {out}; logs: {folder}")


if __name__ == "__main__":
    main()
