"""The whole system as ``make run`` starts it, under a short load through the front door.

The short version of ``make bench-e2e``: ``bench.e2e --start`` runs ``shopstream run`` (every
Procfile process) under private names, registers customers, places orders at a steady rate
through ``POST /v1/orders`` (vegeta), matches each to its terminal event, then runs
``shopstream verify``. Nothing here is timed: only what was lost, refused or found broken.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import free_port
from tests.support.scope import Scope
from topology.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.stack


def test_a_short_load_through_the_front_door_loses_nothing_and_verify_is_clean(
    settings: Settings, tmp_path: Path
) -> None:
    scope = Scope(settings)
    try:
        ports = {
            name: str(free_port())
            for name in ("SHOP_INGRESS_PORT", "SHOP_INGRESS_METRICS_PORT", "SHOP_SUPERVISOR_METRICS_PORT")
        }
        env = {**os.environ, **scope.settings.to_env(), **ports}
        out = tmp_path / "e2e.json"
        argv = ["--start", "--rates", "10", "--seconds", "5", "--idle-seconds", "3", "--customers", "5"]
        done = subprocess.run(
            [sys.executable, "-m", "bench.e2e", *argv, "--json", str(out)],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        (result,) = json.loads(out.read_text())
        assert result["offered"] == 50
        assert result["accepted"] == 50, result["errors"]
        assert result["not_terminal"] == [], "every accepted order reached a terminal event"
        assert result["errors"] == {}
        assert result["verify"].startswith("exit 0"), result["verify"]
        groups = {group.removeprefix(scope.settings.topic_prefix): lag for group, lag in result["lag_end"].items()}
        assert {"shopstream.flow.orders", "shopstream.sink.postgres", "shopstream.sink.mongo"} <= set(groups)
        assert set(groups.values()) == {0}, f"every group drained after the load: {groups}"
    finally:
        scope.close()
