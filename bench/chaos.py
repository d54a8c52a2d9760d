"""Faults under a steady load: what clients saw, how long until orders confirmed again, what verify found.

``python -m bench.chaos`` (``make chaos``) brings up a stack of its own (free ports, under
``.stack/chaos/``: its faults stop servers that other tests share), starts the whole system on it
(``shopstream run``), registers customers, and then, for each fault in turn: orders at a steady
open-loop rate through ``POST /v1/orders`` (``bench.e2e``'s vegeta load), the fault a few
seconds in, the load on for a while after it heals, then every consumer group drained and
``shopstream verify``. Per fault it prints what was injected, the errors clients saw by kind
(and those the design does not allow), the recovery time (from the fault to the first order
accepted after it being confirmed; and the same from the heal), whether every process and
server came back by itself, and verify's verdict. ``--faults`` picks some; ``--stack shared``
runs the faults that stop no server on the shared stack, under private names (the test's
short version). ``--json`` writes the results; ``--update-docs`` renders docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import reliability
from bench.e2e import BIN, LOOPBACK, Customer, Run, Terminals, attack, drain, lag_by_group, process_tree, setup
from bench.system import System, log_in_again, private_stack, stop_on_sigterm, supervised, wait_back, with_free_ports
from ops.stack.launcher import Stack
from tests.support.scope import Scope
from topology.settings import PROJECT_ROOT, Settings

RESULTS = PROJECT_ROOT / "bench" / "results" / "chaos.json"
#: Errors a client may see under any fault: a store or the broker away is 503 with Retry-After; a cancel
#: of an order the read model does not hold yet is 409 with Retry-After.
ALWAYS_ALLOWED = ("503 ", "search 503 ", "cancel 503 ", "cancel 409 not-caught-up")


@dataclass
class Chaos:
    """What a fault acts on: the system's settings and how long a lasting fault lasts."""

    settings: Settings
    window_s: float
    log: list[str]
    folder: Path

    def note(self, text: str) -> None:
        self.log.append(f"{time.strftime('%H:%M:%S')} {text}")
        print(f"  {self.log[-1]}", flush=True)

    def stack(self, name: str) -> Stack:
        return Stack(self.settings, only=(name,))


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    inject: Callable[[Chaos], None]  # returns once the fault is healed (or over)
    stops_a_server: bool = True
    #: error kinds beyond ALWAYS_ALLOWED this fault may cause (prefixes)
    allowed: tuple[str, ...] = ()


# --- the faults ----------------------------------------------------------------------------------


def kill_process(name: str) -> Callable[[Chaos], None]:
    def inject(chaos: Chaos) -> None:
        status = supervised(chaos.settings).get(name)
        if status is None or status.pid is None:
            raise RuntimeError(f"no running process {name!r} to kill: {status}")
        os.killpg(status.pid, signal.SIGKILL)
        chaos.note(f"SIGKILL to {name} (process group {status.pid})")

    return inject


def _gunicorn_workers(master: int) -> list[int]:
    return sorted(process_tree().get(master, []))


def _is_gunicorn(pid: int | str) -> bool:
    """A gunicorn process itself (master or worker), not the shell that started it."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return Path(argv[0].decode(errors="replace")).name not in ("sh", "bash", "dash") and b"gunicorn" in b" ".join(argv)


def _gunicorn_master(group: int) -> int:
    """The gunicorn master in the ingress's process group (the group leader may be a shell)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == group and _is_gunicorn(entry.name) and not _is_gunicorn(fields[1]):
            return int(entry.name)
    raise RuntimeError(f"no gunicorn master in process group {group}")


def kill_ingress_worker(chaos: Chaos) -> None:
    status = supervised(chaos.settings)["ingress"]
    if status.pid is None:
        raise RuntimeError("the ingress is not running")
    master = _gunicorn_master(status.pid)
    workers = _gunicorn_workers(master)
    os.kill(workers[0], signal.SIGKILL)
    chaos.note(f"SIGKILL to ingress worker {workers[0]} (of {len(workers)}, master {master})")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(set(_gunicorn_workers(master)) - {workers[0]}) < len(workers):
        time.sleep(0.2)
    chaos.note(f"workers now {_gunicorn_workers(master)}")


def restart_server(name: str) -> Callable[[Chaos], None]:
    def inject(chaos: Chaos) -> None:
        chaos.note(f"stopping {name}")
        chaos.stack(name).get(name).stop()
        chaos.note(f"{name} stopped; starting it again")
        _bring_up(chaos, name)

    return inject


def stop_server_for(name: str, share: float = 1.0) -> Callable[[Chaos], None]:
    def inject(chaos: Chaos) -> None:
        chaos.stack(name).get(name).stop()
        away = chaos.window_s * share
        chaos.note(f"{name} stopped for {away:.0f} s")
        time.sleep(away)
        _bring_up(chaos, name)

    return inject


def kill_search(chaos: Chaos) -> None:
    server = chaos.stack("search").get("search")
    pid = server.pid()
    if pid is None:
        raise RuntimeError("search is not running")
    os.killpg(pid, signal.SIGKILL)
    chaos.note(f"SIGKILL to the search server (pid {pid})")
    while server.pid() is not None:
        time.sleep(0.1)
    _bring_up(chaos, "search")


def _bring_up(chaos: Chaos, name: str) -> None:
    rows = chaos.stack(name).up()
    chaos.note(
        "; ".join(f"{r.name} {r.state} in {r.seconds:.1f} s" + (f" ({r.error})" if r.error else "") for r in rows)
    )


def gateway_faults(chaos: Chaos) -> None:
    body = {"mode": "mixed", "delay_s": chaos.settings.gateway_timeout_s * 2, "for_s": chaos.window_s}
    httpx.put(f"{chaos.settings.gateway_url}/_admin/faults", json=body, timeout=5).raise_for_status()
    chaos.note(f"gateway: every call a 503 or a {body['delay_s']:g} s answer for {chaos.window_s:.0f} s")
    time.sleep(chaos.window_s)
    httpx.put(f"{chaos.settings.gateway_url}/_admin/faults", json={"mode": "none"}, timeout=5).raise_for_status()


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("kill-saga", "SIGKILL of the saga flows' process", kill_process("saga"), stops_a_server=False),
        Fault("kill-services", "SIGKILL of the other flows' process", kill_process("services"), stops_a_server=False),
        *(
            Fault(f"kill-sink-{s}", f"SIGKILL of the {s} sink", kill_process(f"sink-{s}"), stops_a_server=False)
            for s in ("postgres", "redis", "search", "mongo")
        ),
        Fault("broker-restart", "the Kafka broker stopped and started again", restart_server("kafka")),
        Fault("postgres-restart", "the PostgreSQL primary stopped and started again", restart_server("postgres")),
        Fault("replica-away", "the read replica stopped for the window", stop_server_for("postgres-replica")),
        Fault("redis-away", "Redis stopped for a third of the window", stop_server_for("redis", 1 / 3)),
        Fault("gateway-faults", "the payment gateway answering 503 or too late for the window", gateway_faults),
        Fault("smtp-away", "the SMTP server stopped for the window", stop_server_for("smtp")),
        Fault(
            "kill-ingress-worker",
            "SIGKILL of one gunicorn worker",
            kill_ingress_worker,
            stops_a_server=False,
            allowed=("no answer: ",),  # the requests in flight on that worker lose their connection
        ),
        Fault("kill-search", "SIGKILL of the search server, started again by the stack", kill_search),
    )
}


# --- one fault under load ------------------------------------------------------------------------


@dataclass
class Outcome:
    fault: Fault
    injected_at: float
    healed_at: float
    run: Run
    terminals: dict[str, tuple[str, float]]
    log: list[str]
    drain_s: float | None
    lag_end: dict[str, int]
    back_s: float | None
    still_down: list[str]
    restarts: dict[str, int]
    verify: str

    def recovery(self, since: float) -> float | None:
        """Seconds from ``since`` until the first order accepted after it was confirmed."""
        confirmed = [
            status[1]
            for order, at in self.run.accepted.items()
            if at >= since and (status := self.terminals.get(order)) is not None and status[0] == "confirmed"
        ]
        return min(confirmed) - since if confirmed else None

    @property
    def lost(self) -> list[str]:
        return sorted(o for o in self.run.accepted if o not in self.terminals)

    @property
    def not_allowed(self) -> dict[str, int]:
        allowed = ALWAYS_ALLOWED + self.fault.allowed
        return {k: n for k, n in self.run.errors.items() if not k.startswith(allowed) or "no Retry-After" in k}

    @property
    def clean(self) -> bool:
        return (
            self.verify.startswith("exit 0")
            and not self.lost
            and not self.not_allowed
            and self.back_s is not None
            and self.drain_s is not None
        )

    def summary(self) -> dict[str, Any]:
        by_phase: dict[str, Counter[str]] = {"before": Counter(), "during": Counter(), "after": Counter()}
        for at, kind in self.run.error_log:
            phase = "before" if at < self.injected_at else "during" if at <= self.healed_at else "after"
            by_phase[phase][kind] += 1
        return {
            "fault": self.fault.name,
            "what": self.fault.what,
            "log": self.log,
            "fault_s": round(self.healed_at - self.injected_at, 1),
            "offered": self.run.offered,
            "accepted": len(self.run.accepted),
            "lost": self.lost,
            "errors": dict(self.run.errors),
            "errors_by_phase": {k: dict(v) for k, v in by_phase.items()},
            "errors_not_allowed": self.not_allowed,
            "recovery_s": _round(self.recovery(self.injected_at)),
            "recovery_after_heal_s": _round(self.recovery(self.healed_at)),
            "drain_s": _round(self.drain_s),
            "lag_end": self.lag_end,
            "back_s": _round(self.back_s),
            "still_down": self.still_down,
            "restarts": self.restarts,
            "verify": self.verify,
            "clean": self.clean,
        }


def verify(settings: Settings, out: Path) -> str:
    """``shopstream verify``'s exit and its breaches in short (its whole output goes to ``out``)."""
    command = [str(BIN / "shopstream"), "verify", "--limit", "5"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=dict(os.environ))
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"not run: {err}"
    out.write_text(done.stdout + done.stderr)
    lines = [line.strip() for line in done.stdout.splitlines()]
    if done.returncode == 0:
        return "exit 0: " + (lines[-1] if lines else "")
    breaches = (
        lines[lines.index(next(x for x in lines if "breach" in x)) :] if any("breach" in x for x in lines) else lines
    )
    return f"exit {done.returncode}: " + " | ".join(breaches[:7])[:600]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def under_load(
    chaos: Chaos,
    api: str,
    people: list[Customer],
    fault: Fault,
    rate: float,
    before_s: float,
    after_s: float,
    seed: int,
) -> Outcome:
    """The load for before + the fault + after; the fault ``before_s`` in; then drain, the processes back, verify."""
    settings = chaos.settings
    restarts_before = {n: s.restarts for n, s in supervised(settings).items()}
    seconds = before_s + chaos.window_s + after_s
    run = Run(rate, seconds)
    terminals = Terminals(settings)
    load = threading.Thread(target=attack, args=(api, people, run, seed), daemon=True)
    load.start()
    time.sleep(before_s)
    injected = time.time()
    fault.inject(chaos)
    healed = time.time()
    load.join(seconds + 120)
    drain_s, lag_end = drain(settings, timeout_s=180)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(o not in terminals.seen for o in run.accepted):
        time.sleep(0.2)
    terminals.close()
    back_s, still_down = wait_back(settings, timeout_s=60)
    restarts = {n: s.restarts - restarts_before.get(n, 0) for n, s in supervised(settings).items()}
    outcome = Outcome(
        fault,
        injected,
        healed,
        run,
        dict(terminals.seen),
        chaos.log,
        drain_s,
        lag_end,
        back_s,
        still_down,
        {n: r for n, r in restarts.items() if r},
        verify(settings, chaos.folder / f"verify-{fault.name}.txt"),
    )
    return outcome


def report(outcome: Outcome) -> None:
    s = outcome.summary()
    print(f"\n## {s['fault']}: {s['what']}")
    print("| figure | value |")
    print("|---|---|")
    print(f"| injected | {'; '.join(s['log'])} |")
    print(f"| orders offered / accepted / lost | {s['offered']} / {s['accepted']} / {len(s['lost'])} |")
    for phase, errors in s["errors_by_phase"].items():
        print(f"| errors {phase} the fault | {', '.join(f'{k}: {n}' for k, n in errors.items()) or 'none'} |")
    print(f"| errors the design does not allow | {s['errors_not_allowed'] or 'none'} |")
    print(f"| recovery: fault -> first later order confirmed | {_seconds(s['recovery_s'])} |")
    print(f"| recovery: heal -> first later order confirmed | {_seconds(s['recovery_after_heal_s'])} |")
    print(f"| drain after the load | {_seconds(s['drain_s'])} |")
    back = _seconds(s["back_s"]) if not s["still_down"] else f"not within 60 s: {', '.join(s['still_down'])}"
    print(f"| every process and server back | {back}; restarts: {s['restarts'] or 'none'} |")
    print(f"| verify | {s['verify']} |")
    print(f"| clean | {'yes' if s['clean'] else 'NO'} |", flush=True)


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def save(args: argparse.Namespace, began: datetime, outcomes: list[Outcome]) -> None:
    """The run's results so far, as JSON at ``args.json``."""
    result = {
        "bench": "chaos",
        "date": began.isoformat(timespec="seconds"),
        "commit": _commit(),
        "stack": args.stack,
        "rate": args.rate,
        "window_s": args.window,
        "before_s": args.before,
        "after_s": args.after,
        "faults": [o.summary() for o in outcomes],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, from: {', '.join(FAULTS)}")
    parser.add_argument("--rate", type=float, default=20.0, help="orders per second offered throughout")
    parser.add_argument("--window", type=float, default=30.0, help="how long a lasting fault lasts, seconds")
    parser.add_argument("--before", type=float, default=5.0, help="load before the fault, seconds")
    parser.add_argument("--after", type=float, default=15.0, help="load after the fault heals, seconds")
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--stack", choices=("private", "shared"), default="private")
    parser.add_argument("--attach", action="store_true", help="the system runs already (on the shared stack)")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the results go")
    parser.add_argument("--update-docs", action="store_true", help="render docs/reliability.md from the results")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.faults.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAULTS]
    if unknown or not names:
        parser.error(f"unknown faults {unknown}; pick from: {', '.join(FAULTS)}")
    faults = [FAULTS[n] for n in names]
    if args.attach and args.stack != "shared":
        parser.error("--attach runs on the shared stack: give --stack shared")
    if args.stack == "shared" and (servers := [f.name for f in faults if f.stops_a_server]):
        parser.error(f"{', '.join(servers)} stop a server: run them on a private stack (--stack private)")
    if not 0 < args.rate <= 200 or not 0 < args.window <= 300 or not 0 < args.customers <= 500:
        parser.error("--rate in (0, 200], --window in (0, 300], --customers in (0, 500]")
    stop_on_sigterm()
    base = Settings.from_env()
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:4]}"
    folder = base.stack_dir / "chaos" / run_id
    if args.attach:  # the caller runs the system under the environment's settings
        scope, settings = None, base
    else:
        scope = Scope(base) if args.stack == "shared" else None  # private names on the shared stack
        settings = with_free_ports(private_stack(base, folder / "stack") if scope is None else scope.settings)
    api = f"http://{settings.host}:{settings.ingress_port}"
    if not LOOPBACK.match(api):
        parser.error(f"the ingress address {api} is not on loopback; the load generator sends only there")
    os.environ.update(settings.to_env())  # the CLI run from here (partner-add, verify, lag) sees this system
    stack = Stack(settings) if args.stack == "private" and not args.attach else None
    outcomes: list[Outcome] = []
    began = datetime.now(UTC)
    try:
        if stack is not None:
            failed = [r for r in stack.up() if not r.ok]
            if failed:
                raise SystemExit(f"the chaos stack did not come up: {[(r.name, r.error) for r in failed]}")
        with System(settings, folder, attach=args.attach) as system, httpx.Client(base_url=api, timeout=30) as client:
            print(f"system up at {api} ({args.stack} stack, logs in {system.log})", flush=True)
            people = setup(client, settings, args.customers)
            drain(settings, timeout_s=120)
            print(f"verify before any fault: {verify(settings, folder / 'verify-before.txt')}", flush=True)
            for n, fault in enumerate(faults):
                settled, behind = drain(settings, timeout_s=120)
                back, down = wait_back(settings, timeout_s=60)
                if settled is None or back is None:
                    print(f"before {fault.name}: not settled (behind: {behind}, down: {down})", flush=True)
                print(f"\n# {fault.name} (lag before: {sum(lag_by_group(settings).values())})", flush=True)
                log_in_again(client, people)  # the run outlasts an access token
                chaos = Chaos(settings, args.window, [], folder)
                outcome = under_load(chaos, api, people, fault, args.rate, args.before, args.after, seed=100 + n)
                outcomes.append(outcome)
                report(outcome)
                save(args, began, outcomes)  # after each fault: a run cut short keeps what it found
    finally:
        if stack is not None:
            stack.down()
            shutil.rmtree(folder / "stack" / "data", ignore_errors=True)
        if scope is not None:
            scope.close()
    save(args, began, outcomes)
    clean = sum(o.clean for o in outcomes)
    print(f"\n{clean} of {len(outcomes)} faults clean; results in {args.json}")
    if args.update_docs:
        reliability.render()
    return 0 if clean == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
