"""A long steady load: every process's memory and the consumer lag sampled, then verify.

``python -m bench.soak --minutes 30`` (``make soak``) starts the whole system (``shopstream run``)
on the shared stack under private names, registers customers and orders at a modest
open-loop rate (``bench.e2e``'s vegeta load) for the given time, sampling every
``--sample`` seconds the resident memory of each process of the system (each Procfile
process with its children, each server of the stack) and the lag of every consumer group.
Then everything drains and ``shopstream verify`` runs. It prints, per process, the memory
at the first and last sample and its growth over the second half of the run (the first
half is warm-up: caches filling, pools opening), and the lag's course. A process whose
memory still grows in the second half by more than ``GROWTH_MB`` and ``GROWTH_SHARE`` of
its size is marked ``grows`` (a failure for runs of ``JUDGE_GROWTH_MINUTES`` or more).
``--json`` writes the figures; ``--update-docs`` renders docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from statistics import fmean, median
from typing import Any

import httpx

from bench import reliability
from bench.chaos import verify
from bench.e2e import LOOPBACK, Run, Terminals, attack, drain, lag_by_group, not_allowed, process_tree, setup
from bench.system import System, log_in_again, private_stack, stop_on_sigterm, supervised, with_free_ports
from ops.stack.launcher import Stack
from tests.support.scope import Scope
from topology.settings import PROJECT_ROOT, Settings

RESULTS = PROJECT_ROOT / "bench" / "results" / "soak.json"
PAGE = os.sysconf("SC_PAGE_SIZE")
#: Growth over the second half that marks a process as growing: both this many MB and this share of it.
GROWTH_MB = 20.0
GROWTH_SHARE = 0.10
#: Runs at least this long fail on growth (memory or lag); shorter ones only report it.
JUDGE_GROWTH_MINUTES = 10.0
#: The load is sent in parts this long at most: well within an access token's lifetime.
SEGMENT_S = 600.0


def processes(settings: Settings) -> dict[int, str]:
    """Each process of this system by name: the supervised ones with their children, and the stack's servers."""
    roots = {s.pid: s.name for s in supervised(settings).values() if s.pid}
    roots |= {s.pid: f"server {s.name}" for s in Stack(settings).status() if s.pid}
    tree = process_tree()
    named: dict[int, str] = {}
    todo = list(roots.items())
    while todo:
        pid, name = todo.pop()
        if pid not in named:
            named[pid] = name
            todo += [(child, name) for child in tree.get(pid, [])]
    return named


def memory(named: dict[int, str]) -> dict[str, float]:
    """Resident memory in MB per name (a name's processes summed)."""
    out: dict[str, float] = {}
    for pid, name in named.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + int(fields[21]) * PAGE / 2**20
    return out


class Sampler(threading.Thread):
    """Memory per process and total lag, every ``every_s`` seconds until stopped."""

    def __init__(self, settings: Settings, every_s: float) -> None:
        super().__init__(daemon=True)
        self.settings, self.every_s = settings, every_s
        self.stop = threading.Event()
        self.samples: list[tuple[float, dict[str, float], int]] = []

    def run(self) -> None:
        began = time.monotonic()
        while not self.stop.is_set():
            try:
                lag = sum(lag_by_group(self.settings).values())
            except Exception:  # noqa: BLE001 - a sample missed is reported as such, the soak goes on
                lag = -1
            self.samples.append((time.monotonic() - began, memory(processes(self.settings)), lag))
            self.stop.wait(self.every_s)


def memory_figures(samples: list[tuple[float, dict[str, float], int]]) -> dict[str, dict[str, Any]]:
    half = samples[len(samples) // 2 :]
    out: dict[str, dict[str, Any]] = {}
    for name in sorted({n for _, m, _ in samples for n in m}):
        series = [m[name] for _, m, _ in samples if name in m]
        second = [m[name] for _, m, _ in half if name in m]
        growth = (second[-1] - second[0]) if len(second) >= 2 else 0.0
        grows = growth > GROWTH_MB and growth > GROWTH_SHARE * second[0]
        out[name] = {
            "first_mb": round(series[0], 1),
            "last_mb": round(series[-1], 1),
            "max_mb": round(max(series), 1),
            "second_half_growth_mb": round(growth, 1),
            "verdict": "grows" if grows else "flat",
        }
    return out


def lag_figures(samples: list[tuple[float, dict[str, float], int]], rate: float) -> dict[str, Any]:
    lags = [lag for _, _, lag in samples if lag >= 0] or [0]
    first, second = lags[: len(lags) // 2] or [0], lags[len(lags) // 2 :]
    # Flat: the second half is not behind the first by more than two seconds of orders.
    flat = fmean(second) <= 1.5 * fmean(first) + 2 * rate
    return {
        "median": median(lags),
        "max": max(lags),
        "first_half_mean": fmean(first),
        "second_half_mean": fmean(second),
        "missed_samples": sum(1 for _, _, lag in samples if lag < 0),
        "verdict": "flat" if flat else "grows",
    }


def segments(seconds: float) -> list[float]:
    """The load in parts of at most ``SEGMENT_S`` (customers log in again between them)."""
    parts = [SEGMENT_S] * int(seconds // SEGMENT_S)
    return [*parts, seconds - sum(parts)] if seconds - sum(parts) > 0 else parts


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=25.0, help="orders per second offered")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--stack", choices=("shared", "private"), default="shared", help="private: a stack of its own")
    parser.add_argument("--attach", action="store_true", help="the system runs already (the environment's settings)")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the results go")
    parser.add_argument("--update-docs", action="store_true", help="render docs/reliability.md from the results")
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= 24 * 60 or not 0 < args.rate <= 200 or not 1 <= args.sample <= 600:
        parser.error("--minutes in (0, 1440], --rate in (0, 200], --sample in [1, 600]")
    stop_on_sigterm()
    base = Settings.from_env()
    folder = base.stack_dir / "soak" / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:4]}"
    # attached: the caller's system, under the environment's names; shared: private names on the shared stack
    scope = Scope(base) if args.stack == "shared" and not args.attach else None
    if args.attach:
        settings = base
    else:
        settings = with_free_ports(scope.settings if scope is not None else private_stack(base, folder / "stack"))
    stack = Stack(settings) if args.stack == "private" and not args.attach else None
    api = f"http://{settings.host}:{settings.ingress_port}"
    if not LOOPBACK.match(api):
        parser.error(f"the ingress address {api} is not on loopback; the load generator sends only there")
    os.environ.update(settings.to_env())  # the CLI run from here (partner-add, verify, lag) sees this system
    began = datetime.now(UTC)
    seconds = args.minutes * 60
    try:
        if stack is not None and (failed := [r for r in stack.up() if not r.ok]):
            raise SystemExit(f"the soak's stack did not come up: {[(r.name, r.error) for r in failed]}")
        with System(settings, folder, attach=args.attach) as system, httpx.Client(base_url=api, timeout=30) as client:
            print(f"system up at {api} (logs in {system.log}); {args.rate:g} orders/s for {args.minutes:g} min")
            people = setup(client, settings, args.customers)
            drain(settings, timeout_s=120)
            run = Run(args.rate, seconds)
            terminals = Terminals(settings)
            sampler = Sampler(settings, args.sample)
            sampler.start()
            for n, segment in enumerate(segments(seconds)):
                if n:
                    log_in_again(client, people)  # the run outlasts an access token
                part = Run(args.rate, segment)
                attack(api, people, part, seed=7 + n)
                run.offered += part.offered
                run.accepted |= part.accepted
                run.errors.update(part.errors)
                run.error_log += part.error_log
            sampler.stop.set()
            sampler.join(30)
            drain_s, lag_end = drain(settings, timeout_s=300)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any(o not in terminals.seen for o in run.accepted):
                time.sleep(0.2)
            terminals.close()
            verdict = verify(settings, folder / "verify.txt")
            restarts = {n: s.restarts for n, s in supervised(settings).items() if s.restarts}
    finally:
        if stack is not None:
            stack.down()
            shutil.rmtree(folder / "stack" / "data", ignore_errors=True)
        if scope is not None:
            scope.close()
    result = {
        "bench": "soak",
        "date": began.isoformat(timespec="seconds"),
        "commit": _commit(),
        "minutes": args.minutes,
        "rate": args.rate,
        "sample_s": args.sample,
        "offered": run.offered,
        "accepted": len(run.accepted),
        "lost": sorted(o for o in run.accepted if o not in terminals.seen),
        "errors": dict(run.errors),
        "errors_not_allowed": not_allowed(run.errors),
        "drain_s": drain_s,
        "lag_end": lag_end,
        "restarts": restarts,
        "memory": memory_figures(sampler.samples),
        "lag": lag_figures(sampler.samples, args.rate),
        "verify": verdict,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    report(result)
    if args.update_docs:
        reliability.render()
    judged = args.minutes >= JUDGE_GROWTH_MINUTES  # a shorter run is all warm-up
    clean = (
        verdict.startswith("exit 0")
        and not result["lost"]
        and not result["errors_not_allowed"]
        and (not judged or result["lag"]["verdict"] == "flat")
        and (not judged or all(m["verdict"] == "flat" for m in result["memory"].values()))
    )
    return 0 if clean else 1


def report(result: dict[str, Any]) -> None:
    print(f"\n## soak: {result['rate']:g} orders/s for {result['minutes']:g} min")
    print("| figure | value |")
    print("|---|---|")
    print(f"| offered / accepted / lost | {result['offered']} / {result['accepted']} / {len(result['lost'])} |")
    print(f"| errors | {result['errors'] or 'none'} |")
    print(f"| errors the design does not allow | {result['errors_not_allowed'] or 'none'} |")
    lag = result["lag"]
    print(
        f"| lag median / max / first half mean / second half mean | {lag['median']:g} / {lag['max']:g} /"
        f" {lag['first_half_mean']:.1f} / {lag['second_half_mean']:.1f} ({lag['verdict']}) |"
    )
    drained = "not within 300 s" if result["drain_s"] is None else f"{result['drain_s']:.1f} s"
    print(f"| drain after the load | {drained} |")
    print(f"| restarts | {result['restarts'] or 'none'} |")
    print(f"| verify | {result['verify']} |")
    print("\n| process | RSS first / last / max MB | growth over the second half | verdict |")
    print("|---|---|---|---|")
    for name, m in result["memory"].items():
        print(
            f"| {name} | {m['first_mb']:.0f} / {m['last_mb']:.0f} / {m['max_mb']:.0f} |"
            f" {m['second_half_growth_mb']:+.1f} MB | {m['verdict']} |"
        )


if __name__ == "__main__":
    sys.exit(main())
