"""A soak in short: ``bench.soak`` for a minute on the shared stack, under private names.

Every process of the system is sampled for memory and the consumer groups for lag while
orders go through ``POST /v1/orders`` at a steady rate; after the load nothing is lost, no
request failed and ``shopstream verify`` is clean. Growth is judged only by ``make soak``'s
long run (a minute is all warm-up): here, that every process was sampled. Nothing is timed.
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


def test_a_minute_of_steady_load_is_sampled_loses_nothing_and_verify_is_clean(
    settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "soak.json"
    argv = ["--minutes", "1", "--rate", "10", "--sample", "5", "--customers", "4", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "bench.soak", *argv],
        cwd=PROJECT_ROOT,
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.exists(), done.stdout[-4000:] + done.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["offered"] == 600
    assert result["accepted"] == 600, result["errors"]
    assert result["lost"] == []
    assert result["errors"] == {}
    assert result["verify"].startswith("exit 0"), result["verify"]
    assert {"ingress", "saga", "services", "sink-postgres", "sink-redis", "sink-search", "sink-mongo"} <= set(
        result["memory"]
    ), "every Procfile process was sampled"
    assert all(m["max_mb"] > 0 for m in result["memory"].values())
    assert set(result["lag_end"].values()) == {0}, result["lag_end"]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
