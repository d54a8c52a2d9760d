"""``shopstream trace ORDER_ID``: one order's story (commands, events, dead letters, spans, logs) in time order."""

from __future__ import annotations

import json

import typer

from ops import trace
from ops.output import EXIT_DOWN, EXIT_USAGE, settings_or_exit


def trace_command(
    order_id: str = typer.Argument(..., help="The order's id (as POST /v1/orders answered it)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per entry, in time order."),
) -> None:
    """One order's story across every process, oldest first: Kafka, dead letters, spans, log records."""
    settings = settings_or_exit()
    story = trace.order_story(settings, order_id)
    if as_json:
        for entry in story.sorted():
            typer.echo(json.dumps(entry.row(), default=str))
        for source, why in story.missing.items():
            typer.echo(json.dumps({"kind": "missing", "source": source, "why": why}))
    else:
        for line in trace.render(story):
            typer.echo(line)
    if not story.entries:
        if "kafka" in story.missing:
            raise typer.Exit(EXIT_DOWN)
        typer.echo(f"error: nothing names order {order_id!r} (a typo, or under another SHOP_TOPIC_PREFIX)", err=True)
        raise typer.Exit(EXIT_USAGE)
