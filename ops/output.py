"""How operator commands read settings, print and exit: aligned text for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import typer

from topology.settings import Settings

EXIT_DOWN = 1
EXIT_USAGE = 2


def settings_or_exit() -> Settings:
    """The settings from the environment, or exit 2 naming what is wrong with them."""
    try:
        return Settings.from_env()
    except ValueError as err:
        typer.echo(f"error: bad settings: {err}", err=True)
        raise typer.Exit(EXIT_USAGE) from err


def emit(rows: Sequence[Mapping[str, object]], columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(list(rows), indent=2, default=str))
        return
    if not rows:
        typer.echo("(nothing)")
        return
    cells = [[_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    typer.echo("  ".join(col.upper().ljust(w) for col, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("\n", " ")
