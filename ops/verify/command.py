"""The ``shopstream verify`` command: the report as aligned text for people or JSON for scripts.

Exit codes: 0 every invariant holds; 1 at least one breach (each listed with its ids);
2 bad input, or a topic or store it cannot read (the message says which and how to fix it).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import typer

from ops.exceptions import OpsError
from ops.output import EXIT_USAGE, emit, settings_or_exit
from ops.verify import verify
from ops.verify.report import Check, Report

EXIT_BREACH = 1


def verify_command(
    prefix: str | None = typer.Option(None, "--prefix", help="The topic prefix (default: SHOP_TOPIC_PREFIX)."),
    replica: bool = typer.Option(False, "--replica", help="Read PostgreSQL from the read replica, not the primary."),
    grace: float = typer.Option(10.0, "--grace", min=0, help="Seconds the saga may take to act on a passed deadline."),
    limit: int = typer.Option(20, "--limit", min=0, help="Breaches shown per check in text (0: all; --json has all)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Read every topic and store; prove the invariants, or list each breach with its ids (exit 1).

    Exit 2 when a topic or store cannot be read, the schema is not migrated, or no topic exists under the prefix.
    """
    settings = settings_or_exit()
    if prefix is not None:
        settings = settings.model_copy(update={"topic_prefix": prefix})
    try:
        report = verify(settings, datetime.now(UTC), timedelta(seconds=grace), replica=replica)
    except OpsError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_USAGE) from err
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, default=str))
    else:
        _print(report, limit)
    raise typer.Exit(0 if report.ok else EXIT_BREACH)


def _print(report: Report, limit: int) -> None:
    prefix = repr(report.prefix) if report.prefix else "(none)"
    typer.echo(
        f"verify: prefix {prefix}, {report.records} records on {report.topics} topics, "
        f"read at {report.started_at.isoformat(timespec='seconds')}\n"
    )
    rows = [
        {"check": c.name, "checked": c.checked, "breaches": len(c.breaches), "notes": _notes(c)} for c in report.checks
    ]
    emit(rows, ("check", "checked", "breaches", "notes"), as_json=False)
    if report.ok:
        typer.echo("\nclean: every invariant holds")
        return
    count = len(report.breaches)
    typer.echo(f"\n{count} breach{'es' if count != 1 else ''}:")
    for check in report.checks:
        shown = check.breaches if not limit else check.breaches[:limit]
        for breach in shown:
            ids = " ".join(f"{k}={v}" for k, v in breach.ids.items())
            typer.echo(f"  {check.name}  {ids}\n      {breach.detail}")
        if len(shown) < len(check.breaches):
            typer.echo(f"  {check.name}  ... and {len(check.breaches) - len(shown)} more (--limit 0 or --json)")


def _notes(check: Check) -> str:
    parts = []
    for name, value in check.notes.items():
        if isinstance(value, dict):
            for currency, sums in value.items():
                parts.append(f"{currency} " + " ".join(f"{k} {v}" for k, v in sums.items()))
        elif value:
            parts.append(f"{name} {value}")
    return "; ".join(parts)
