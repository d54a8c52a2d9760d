"""The ``shopstream`` command line, run in process with its own environment."""

from __future__ import annotations

from typer.testing import CliRunner

from ops.cli import app


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str):  # type: ignore[no-untyped-def]
        return self.runner.invoke(app, list(args), env=self.env, catch_exceptions=False)
