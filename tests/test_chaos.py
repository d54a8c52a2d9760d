"""Faults under load and a soak, in short, on one system: ``bench.chaos`` and ``bench.soak`` attached to it.

They run on the session's one whole system (``live_system``: ``shopstream run`` under private
names on the shared stack), last of the session's tests (``tests/conftest.py`` orders them: the
faults restart its processes). Under a steady load through ``POST /v1/orders``: the saga's process
and the PostgreSQL sink SIGKILLed in turn; after each, the supervisor has started the process
again by itself, every accepted order reached its terminal event, clients saw no error the
design does not allow, and ``shopstream verify`` is clean (the faults that stop servers run in
``make chaos``, on a stack of its own). Then a minute of steady load sampled for every
process's memory and every group's lag: nothing lost or refused, every group drained, verify
clean (growth is judged by ``make soak``'s long run: a minute is all warm-up). Nothing is timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.live import LiveSystem
from topology.settings import PROJECT_ROOT

pytestmark = [pytest.mark.stack, pytest.mark.faults]


def bench(
    live: LiveSystem, tmp_path: Path, module: str, *argv: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path / f"{module}.json"
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--attach", *argv, "--json", str(out)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **live.settings.to_env(), "SHOP_TRUSTED_PROXIES": "127.0.0.1"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.exists(), done.stdout[-4000:] + done.stderr[-4000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return done, result


def test_a_killed_flow_and_a_killed_sink_come_back_by_themselves_and_lose_nothing(
    live_system: LiveSystem, tmp_path: Path
) -> None:
    argv = ["--stack", "shared", "--faults", "kill-saga,kill-sink-postgres", "--rate", "10", "--window", "5"]
    done, result = bench(live_system, tmp_path, "chaos", *argv, "--before", "3", "--after", "6", "--customers", "4")
    faults = {f["fault"]: f for f in result["faults"]}
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


def test_a_minute_of_steady_load_is_sampled_loses_nothing_and_verify_is_clean(
    live_system: LiveSystem, tmp_path: Path
) -> None:
    argv = ["--minutes", "1", "--rate", "10", "--sample", "5", "--customers", "4"]
    done, result = bench(live_system, tmp_path, "soak", *argv)
    assert result["offered"] == 600
    assert result["accepted"] == 600, result["errors"]
    assert result["lost"] == []
    assert result["errors_not_allowed"] == {}, result["errors"]
    assert result["verify"].startswith("exit 0"), result["verify"]
    memory = result["memory"]
    procfile = {"ingress", "saga", "services", "sink-postgres", "sink-redis", "sink-search", "sink-mongo"}
    assert procfile <= set(memory), "every Procfile process was sampled"
    assert all(m["max_mb"] > 0 for m in memory.values())
    assert set(result["lag_end"].values()) == {0}, result["lag_end"]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
