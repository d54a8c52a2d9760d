"""The ``shopstream`` console script: the operators' front door.

Exit codes: 0 success; 1 something is down or failed (the message says what and how
to fix it); 2 bad usage (unknown command, option or name).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

import typer

from ops import db, demo_catalog, launch, partners, scrape, supervisor, topology_admin
from ops.cli_access import keys_app, user_app
from ops.cli_logs import logs_command
from ops.cli_topology import dlq_app, topology_app
from ops.cli_trace import trace_command
from ops.exceptions import OpsError
from ops.output import EXIT_DOWN, EXIT_USAGE, emit, settings_or_exit
from ops.stack.base import tail
from ops.stack.launcher import ServerStatus, Stack
from ops.verify.command import verify_command
from topology.access import OPERATOR
from topology.logs import setup_logging
from topology.processes import metrics_targets
from topology.settings import PROJECT_ROOT, Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Shopstream operations.")
stack_app = typer.Typer(no_args_is_help=True, help="The embedded local stack of real servers.")
app.add_typer(stack_app, name="stack")
app.add_typer(topology_app, name="topology")
app.add_typer(dlq_app, name="dlq")
app.add_typer(user_app, name="user")
app.add_typer(keys_app, name="keys")
app.command("verify")(verify_command)
app.command("logs")(logs_command)
app.command("trace")(trace_command)

T = TypeVar("T")


def _print_statuses(rows: list[ServerStatus], as_json: bool) -> None:
    table = [{**asdict(row), "seconds": round(row.seconds, 1)} for row in rows]
    emit(table, ("name", "state", "address", "pid", "seconds", "log"), as_json)
    if not as_json:
        for row in rows:
            if row.error:
                typer.echo(f"{row.name}:\n    " + row.error.replace("\n", "\n    "), err=True)


def _only(names: list[str] | None) -> tuple[str, ...]:
    return tuple(names or ())


@stack_app.command()
def up(
    names: list[str] = typer.Argument(None, help="Servers to start (default: all)."),  # noqa: B008
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Install what is missing, start what is down, wait until every server is healthy."""
    rows = _run(lambda stack: stack.up(), names)
    _print_statuses(rows, as_json)
    if not all(row.ok for row in rows):
        raise typer.Exit(EXIT_DOWN)


@stack_app.command()
def install(
    names: list[str] = typer.Argument(None, help="Servers (default: all)."),  # noqa: B008
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Fetch or build what servers need (jars, binaries) without starting them; nothing to do costs nothing."""
    rows = _run(lambda stack: stack.install(), names)
    _print_statuses(rows, as_json)
    if any(row.state == "failed" for row in rows):
        raise typer.Exit(EXIT_DOWN)


@stack_app.command()
def down(names: list[str] = typer.Argument(None), as_json: bool = typer.Option(False, "--json")) -> None:  # noqa: B008
    """Stop the servers this launcher started (found by pid file); data is kept."""
    _print_statuses(_run(lambda stack: stack.down(), names), as_json)


@stack_app.command()
def status(names: list[str] = typer.Argument(None), as_json: bool = typer.Option(False, "--json")) -> None:  # noqa: B008
    """One line per server, then the processes of a running `shopstream run`; exit 1 when a server is not up."""
    rows = _run(lambda stack: stack.status(), names)
    _print_statuses(rows, as_json)
    processes = supervisor.read_status(settings_or_exit())
    if processes and not as_json and not names:
        typer.echo("\nprocesses of `shopstream run`:")
        emit([asdict(p) for p in processes], ("name", "state", "pid", "restarts", "started_at", "last_exit"), False)
    if not all(row.ok for row in rows):
        raise typer.Exit(EXIT_DOWN)


@stack_app.command()
def logs(
    name: str,
    lines: int = typer.Option(50, "-n", "--lines", min=1),
    follow: bool = typer.Option(False, "-f", "--follow"),
) -> None:
    """Print the end of one server's log file."""
    server = _run(lambda stack: stack.get(name), None)
    if not server.log_file.exists():
        typer.echo(f"error: {name} has no log yet ({server.log_file}); start it with `shopstream stack up`", err=True)
        raise typer.Exit(EXIT_DOWN)
    if follow:
        subprocess.run(["tail", "-n", str(lines), "-F", str(server.log_file)], check=False)
        return
    typer.echo(tail(server.log_file, lines))


@app.command()
def flow(names: list[str] = typer.Argument(..., help=", ".join(launch.FLOWS))) -> None:  # noqa: B008
    """Run a Bytewax flow with recovery in the foreground, as the Procfile does; several names run as one group."""
    launch.flows(names)


@app.command()
def sink(name: str = typer.Argument(..., help=", ".join(launch.SINKS))) -> None:
    """Run one sink (a Quix Streams application) in the foreground, as the Procfile does."""
    launch.sink(name)


@app.command()
def search_reindex(
    index: str = typer.Argument(..., help="products or orders"),
    keep_old: bool = typer.Option(False, "--keep-old", help="keep the previous index (default: delete it)"),
) -> None:
    """Rebuild a search index from its current template behind its alias, with no downtime."""
    argv = [sys.executable, "-m", "sinks", "reindex", index, *(["--keep-old"] if keep_old else [])]
    raise typer.Exit(subprocess.run(argv, check=False).returncode)


@app.command()
def partner_add(
    partner_id: str = typer.Argument(..., help="the partner's id"),
    scope: list[str] = typer.Option(  # noqa: B008
        ..., "--scope", help="catalog:write, stock:write, orders:write or fulfilment:write; repeat"
    ),
) -> None:
    """Register a partner: its Kafka topic and principal (``ops.partners``), and an OAuth2 client.

    Prints one JSON object: the client id and secret, the topic, and the Kafka principal and
    its password (both secrets shown once).
    """
    settings = settings_or_exit()
    try:
        access = _or_down(lambda: partners.add_partner(settings, partner_id))
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_USAGE) from err
    argv = [sys.executable, "-m", "ingress", "add-partner", partner_id, *(f"--scope={s}" for s in scope)]
    done = subprocess.run(argv, check=False, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise typer.Exit(done.returncode)
    kafka = {"topic": access.topic, "kafka_principal": access.principal, "kafka_password": access.password}
    typer.echo(json.dumps(json.loads(done.stdout) | kafka))


db_app = typer.Typer(no_args_is_help=True, help="The PostgreSQL schema of the read models (yoyo migrations).")
app.add_typer(db_app, name="db")


demo_app = typer.Typer(no_args_is_help=True, help="The demo catalog (ops/demo_catalog.py).")
app.add_typer(demo_app, name="demo")


def _load_demo(settings: Settings, seed: int, count: int) -> None:
    loaded = _or_down(lambda: demo_catalog.load(settings, seed, count))
    typer.echo(
        f"demo catalog: {loaded.products} products and {loaded.adjustments} stock adjustments sent, "
        f"{loaded.unchanged} products already in the read models"
    )


@demo_app.command("load")
def demo_load(
    seed: int = typer.Option(7, help="the same seed gives the same catalog"),
    count: int = typer.Option(5000, min=1, max=100_000, help="how many products"),
) -> None:
    """Send the demo catalog's products and stock through the catalog and inventory flows (idempotent)."""
    _load_demo(settings_or_exit(), seed, count)


def _or_down(call: Callable[[], T]) -> T:
    """The call's answer, or its OpsError printed and exit code 1 (something is down)."""
    try:
        return call()
    except OpsError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_DOWN) from err


def _migrate(settings: Settings) -> None:
    applied = _or_down(lambda: db.migrate(settings))
    typer.echo(f"schema {settings.pg_schema}: " + (f"applied {', '.join(applied)}" if applied else "up to date"))


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the migrations not applied yet (idempotent)."""
    _migrate(settings_or_exit())


@db_app.command("status")
def db_status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Each migration and whether it is applied."""
    settings = settings_or_exit()
    rows = _or_down(lambda: db.status(settings))
    emit([{"migration": r.id, "applied": r.applied} for r in rows], ("migration", "applied"), as_json)


@app.command()
def run(
    procfile: Path = typer.Option(PROJECT_ROOT / "Procfile", help="The Procfile to run."),  # noqa: B008
    demo: bool = typer.Option(False, help="load the demo catalog (`shopstream demo load`) before the processes start"),
) -> None:
    """Bring the stack up, apply the topology, run and supervise every process of the Procfile (Ctrl-C stops them)."""
    rows = _run(lambda stack: stack.up(), None)
    _print_statuses(rows, as_json=False)
    if not all(row.ok for row in rows):
        raise typer.Exit(EXIT_DOWN)
    settings = settings_or_exit()
    steps = _or_down(lambda: topology_admin.apply(settings))
    _migrate(settings)
    if demo:
        _load_demo(settings, 7, 5000)
    created = sum(step.done for step in steps)
    drift = [step for step in steps if step.action in ("drift", "undeclared")]
    typer.echo(f"\ntopology: {len(steps)} topics checked, {created} created or raised, {len(drift)} drift reported")
    for step in drift:
        typer.echo(f"  {step.action}: {step.topic}: {step.detail}")
    typer.echo(f"\nlogs: {settings.stack_dir / 'logs'}  ·  `shopstream stack logs NAME`  ·  `shopstream stack status`")
    try:
        entries = supervisor.read_procfile(procfile)
    except supervisor.ProcfileError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    if not entries:
        typer.echo(f"{procfile} lists no processes yet; the stack stays up (`shopstream stack down` stops it).")
        return
    api = f"http://{settings.host}:{settings.ingress_port}"
    typer.echo(f"API: {api} once the ingress is up (OpenAPI at {api}/openapi.json)")
    typer.echo(f"  try: curl -s {api}/healthz   (then the README's five-minute tour)")
    typer.echo(
        f"starting {len(entries)} processes from {procfile}, each restarted if it dies "
        f"(status: `shopstream stack status`; Ctrl-C stops them all)"
    )
    setup_logging(settings, "supervisor", OPERATOR)  # its own lines are printed by it, and shipped
    bin_dir = Path(sys.executable).parent
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    running = {entry.name for entry in entries} | {"supervisor"}
    targets = scrape.register(settings, [t for t in metrics_targets(settings) if t[0] in running])
    typer.echo(
        f"metrics: Prometheus http://{settings.host}:{settings.prometheus_port} scrapes this run as "
        f'system="{scrape.system_name(settings)}"; alerts http://{settings.host}:{settings.alertmanager_port}'
    )
    try:
        code = supervisor.Supervisor(entries, settings, PROJECT_ROOT).run()
    finally:
        scrape.unregister(targets)
    raise typer.Exit(code)


def _run(action: Callable[[Stack], T], names: list[str] | None) -> T:
    try:
        return action(Stack(settings_or_exit(), _only(names)))
    except OpsError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_USAGE if "no such server" in str(err) else EXIT_DOWN) from err


def main() -> None:
    try:
        settings = Settings.from_env()
    except ValueError:
        settings = None  # each command says what is wrong with them
    if settings is not None:
        setup_logging(settings, "cli", OPERATOR)
    app(prog_name="shopstream")


if __name__ == "__main__":
    main()
