"""The whole system as ``make run`` starts it, under a short load through the front door.

The short version of ``make bench-e2e``, run against the session's one whole system
(``live_system``: ``shopstream run``, every Procfile process, under private names): ``bench.e2e``
attached to it registers customers, places orders at a steady rate through ``POST /v1/orders``
(vegeta), matches each to its terminal event, then runs ``shopstream verify``. Nothing here is
timed: only what was lost, refused or found broken.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.live import LiveSystem
from topology.settings import PROJECT_ROOT

pytestmark = pytest.mark.stack


def test_a_short_load_through_the_front_door_loses_nothing_and_verify_is_clean(
    live_system: LiveSystem, tmp_path: Path
) -> None:
    settings = live_system.settings
    out = tmp_path / "e2e.json"
    argv = ["--rates", "10", "--seconds", "5", "--idle-seconds", "3", "--customers", "5", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "bench.e2e", *argv],
        cwd=PROJECT_ROOT,
        env={**os.environ, **settings.to_env(), "SHOP_TRUSTED_PROXIES": "127.0.0.1"},
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
    assert result["errors_not_allowed"] == {}, result["errors"]
    assert result["verify"].startswith("exit 0"), result["verify"]
    groups = {group.removeprefix(settings.topic_prefix): lag for group, lag in result["lag_end"].items()}
    assert {"shopstream.flow.orders", "shopstream.sink.postgres", "shopstream.sink.mongo"} <= set(groups)
    assert set(groups.values()) == {0}, f"every group drained after the load: {groups}"
