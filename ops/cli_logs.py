"""``shopstream logs``: every process's log records from the search store, in time order."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer
from elasticsearch import Elasticsearch

from ops import logs
from ops.dlq import parse_since
from ops.exceptions import OpsError
from ops.output import EXIT_DOWN, EXIT_USAGE, settings_or_exit


def logs_command(
    order: str | None = typer.Option(None, "--order", help="Only the records naming this order id."),
    service: str | None = typer.Option(
        None, "--service", help="ingress, orders, inventory, ..., sink-search, supervisor, cli; `sink` for every sink."
    ),
    level: str | None = typer.Option(None, "--level", help="This level and above: debug, info, warning, error."),
    since: str = typer.Option("1h", "--since", help="A duration back from now (10m, 2h, 7d) or an ISO time with zone."),
    limit: int = typer.Option(500, "--limit", "-n", min=1, max=logs.MAX_LINES, help="The newest this many."),
    as_json: bool = typer.Option(False, "--json", help="One ECS document (flat, dotted names) per line."),
) -> None:
    """Log records of every process (shipped through Kafka, indexed by the logs sink), oldest first."""
    settings = settings_or_exit()
    try:
        start = parse_since(since, datetime.now(UTC))
        if level is not None:
            logs.levels_from(level)
    except (OpsError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_USAGE) from err
    with Elasticsearch(settings.search_url, request_timeout=10, max_retries=0) as es:
        try:
            rows = logs.search_logs(
                es, settings.search_prefix, order=order, service=service, level=level, since=start, limit=limit
            )
        except logs.LogsError as err:
            typer.echo(f"error: {err}\n  fix: `shopstream stack up` (or SHOP_SEARCH_URL)", err=True)
            raise typer.Exit(EXIT_DOWN) from err
    for row in rows:
        typer.echo(json.dumps(row, default=str) if as_json else logs.line(row))
    if not rows and not as_json:
        typer.echo(
            "(no log records match; records reach the search store through shop.logs and the logs sink"
            " (`shopstream sink logs`, a line of `shopstream run`) within a few seconds)",
            err=True,
        )
