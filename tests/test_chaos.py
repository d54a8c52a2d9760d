"""Faults under load in short: ``bench.chaos`` on the shared stack, under private names, faults that stop no server.

The saga's process SIGKILLed and a sink's, each under a steady load through ``POST /v1/orders``;
after each, the supervisor has started the process again by itself, every accepted order
reached its terminal event, clients saw no error the design does not allow, and
``shopstream verify`` is clean. The faults that stop servers (the broker, PostgreSQL, Redis,
SMTP, search) run in ``make chaos`` on a stack of its own. Nothing here is timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from topology.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.stack


def test_a_killed_flow_and_a_killed_sink_come_back_by_themselves_and_lose_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "chaos.json"
    argv = ["--stack", "shared", "--faults", "kill-saga,kill-sink-postgres", "--rate", "10", "--window", "5"]
    argv += ["--before", "3", "--after", "6", "--customers", "4", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "bench.chaos", *argv],
        cwd=PROJECT_ROOT,
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.exists(), done.stdout[-4000:] + done.stderr[-4000:]
    faults = {f["fault"]: f for f in json.loads(out.read_text())["faults"]}
    assert set(faults) == {"kill-saga", "kill-sink-postgres"}, done.stdout[-4000:]
    for name, process in (("kill-saga", "saga"), ("kill-sink-postgres", "sink-postgres")):
        fault = faults[name]
        assert fault["restarts"].get(process, 0) >= 1, f"{name}: the supervisor started {process} again"
        assert fault["still_down"] == [], fault
        assert fault["accepted"] > 0, fault["errors"]
        assert fault["lost"] == [], f"{name}: every accepted order reached its terminal event"
        assert fault["errors_not_allowed"] == {}, fault["errors"]
        assert fault["verify"].startswith("exit 0"), fault["verify"]
        assert fault["clean"], fault
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
