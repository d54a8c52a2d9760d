"""The monitoring configuration in the repository, checked by Prometheus's and Alertmanager's own tools.

``promtool check rules`` and ``promtool test rules`` (ops/prometheus/tests: input series and
the alerts they must raise, or not), ``promtool check config`` on the generated
``prometheus.yml``, ``amtool check-config``; and the targets files each run writes. The
tools come from Debian's packages, installed by the stack's own code when missing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops import scrape
from ops.stack.monitoring import amtool, promtool
from topology.settings import Settings

RULE_FILES = sorted(scrape.RULES_DIR.glob("*.yml"))
RULE_TESTS = sorted(scrape.RULE_TESTS_DIR.glob("*.yml"))


@pytest.fixture(scope="module")
def tool_settings() -> Settings:
    return Settings.from_env()


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120, cwd=cwd)


def alerts_declared() -> set[str]:
    return {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def alert_cases() -> list[dict[str, Any]]:
    return [
        case
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]


def test_the_rules_pass_promtool_check(tool_settings: Settings) -> None:
    assert RULE_FILES
    done = run([promtool(tool_settings), "check", "rules", *map(str, RULE_FILES)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_pass_their_unit_tests(tool_settings: Settings) -> None:
    assert RULE_TESTS
    done = run([promtool(tool_settings), "test", "rules", *map(str, RULE_TESTS)], cwd=scrape.RULE_TESTS_DIR)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = alert_cases()
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    assert alerts_declared() - fired == set(), "an alert no test sees firing"
    assert {"ShopstreamConsumerLagGrowing", "ShopstreamFlowStalled", "ShopstreamPaymentDeclines"} <= fired
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert len(quiet) >= 6, "most alerts also have a moment where they must not fire"


def test_promtool_refuses_a_broken_rule_and_a_wrong_expectation(tool_settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(shop_x_total[5m] > 0\n")
    done = run([promtool(tool_settings), "check", "rules", str(broken)])
    assert done.returncode != 0
    assert "parse error" in done.stdout + done.stderr

    wrong = tmp_path / "wrong_test.yml"
    advancing = {"series": 'shop_flow_epochs_total{system="s", flow="orders"}', "values": "0+60x20"}
    stalled = {"severity": "critical", "system": "s", "flow": "orders"}
    case = {"eval_time": "15m", "alertname": "ShopstreamFlowStalled", "exp_alerts": [{"exp_labels": stalled}]}
    test = {"interval": "1m", "input_series": [advancing], "alert_rule_test": [case]}
    rules = [str(path) for path in RULE_FILES]
    wrong.write_text(json.dumps({"rule_files": rules, "evaluation_interval": "1m", "tests": [test]}))
    done = run([promtool(tool_settings), "test", "rules", str(wrong)])
    assert done.returncode != 0, "an advancing flow must not raise ShopstreamFlowStalled"


def test_the_alertmanager_configuration_passes_amtool(tool_settings: Settings) -> None:
    done = run([amtool(tool_settings), "check-config", str(scrape.ALERTMANAGER_CONFIG)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_generated_prometheus_configuration_passes_promtool(tool_settings: Settings, tmp_path: Path) -> None:
    settings = Settings(stack_dir=tmp_path, alertmanager_port=19999, prometheus_scrape_interval_s=3)
    assert scrape.write_config(settings) is True
    assert scrape.write_config(settings) is False, "unchanged: no reload due"
    done = run([promtool(tool_settings), "check", "config", str(scrape.config_file(settings))])
    assert done.returncode == 0, done.stdout + done.stderr
    config = json.loads(scrape.config_file(settings).read_text())
    assert config["global"]["scrape_interval"] == "3s"
    assert config["global"]["scrape_timeout"] == "3s"
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:19999"]
    (discovery,) = config["scrape_configs"][0]["file_sd_configs"]
    assert discovery["files"] == [str(scrape.targets_dir(settings) / "*.json")]


def test_a_run_registers_its_targets_and_a_dead_runs_file_is_pruned(tmp_path: Path) -> None:
    settings = Settings(stack_dir=tmp_path, topic_prefix="t-abc.")
    live = scrape.register(settings, [("ingress", 18001), ("saga", 9310), ("off", 0)])
    assert live.name.startswith("t-abc.")
    assert json.loads(live.read_text()) == [
        {"targets": ["127.0.0.1:18001"], "labels": {"job": "ingress", "system": "t-abc"}},
        {"targets": ["127.0.0.1:9310"], "labels": {"job": "saga", "system": "t-abc"}},
    ]
    dead_pid = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # no process ever has it
    dead = scrape.register(settings, [("saga", 9999)], pid=dead_pid)
    assert scrape.prune(settings) == [dead]
    assert live.exists()
    scrape.unregister(live)
    assert list(scrape.targets_dir(settings).iterdir()) == []
