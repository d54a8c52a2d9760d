"""``shopstream flow`` and ``shopstream sink``: check the names and the settings, then become the process.

Every process of the Procfile but the ingress starts this way, and each is started again when
it dies, so the console script takes this path before it imports the rest of the command
line (the store clients, the supervisor, the stack launcher: some 2 s of CPU per start,
more on a busy machine, spent before the process's own imports begin).
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer

from ops.output import EXIT_USAGE, settings_or_exit
from topology.processes import PROCESSES

FLOWS = tuple(p.name for p in PROCESSES if p.kind == "flow")
SINKS = tuple(p.name for p in PROCESSES if p.kind == "sink")


def _refuse(what: str, names: tuple[str, ...], pick: str) -> NoReturn:
    typer.echo(f"error: {what}\n  fix: pick {pick} from {', '.join(names)}", err=True)
    raise typer.Exit(EXIT_USAGE)


def flows(names: list[str]) -> NoReturn:
    """Run the named Bytewax flows with recovery in the foreground, as one group (``python -m flows run``)."""
    settings_or_exit()
    unknown = [name for name in names if name not in FLOWS]
    if unknown:
        _refuse(f"no flow named {', '.join(map(repr, unknown))}", FLOWS, "each once")
    if len(set(names)) != len(names):
        _refuse("a flow is named twice", FLOWS, "each once")
    os.execv(sys.executable, [sys.executable, "-m", "flows", "run", *names])  # noqa: S606 - argv of known names


def sink(name: str) -> NoReturn:
    """Run one sink, a Quix Streams application, in the foreground (``python -m sinks run``)."""
    if name not in SINKS:
        _refuse(f"no sink named {name!r}", SINKS, "one")
    settings_or_exit()
    os.execv(sys.executable, [sys.executable, "-m", "sinks", "run", name])  # noqa: S606 - fixed argv


def fast_path(argv: list[str]) -> None:
    """Become the flow or sink process ``argv`` names (``flow NAME...`` or ``sink NAME``); return for anything else."""
    command, names = (argv[0], argv[1:]) if argv else ("", [])
    if command not in ("flow", "sink") or not names or any(name.startswith("-") for name in names):
        return  # help, options and every other command: the whole command line
    if command == "sink" and len(names) != 1:
        return  # the command line says what is wrong with the arguments
    try:
        flows(names) if command == "flow" else sink(names[0])
    except typer.Exit as refused:
        sys.exit(refused.exit_code)


def main() -> None:
    """The ``shopstream`` console script: a flow or a sink at once, every other command by ``ops.cli``."""
    fast_path(sys.argv[1:])
    from ops.cli import main as command_line

    command_line()
