"""The local stack's trace backend: OTLP/HTTP in, Jaeger's query API out, traces kept in memory.

Two backends answer the same API, chosen by ``SHOP_TRACES_BACKEND``:

- ``store`` (the default): ``ops/tracestore.py``, a small server of ours on the project's Python
  (no build): OTLP over HTTP only, the newest ``SHOP_TRACES_MAX_TRACES`` traces in memory.
- ``jaeger``: Jaeger v2, an OpenTelemetry Collector distribution, built by ``go build`` from our
  module ``ops/jaeger`` (``go install github.com/jaegertracing/jaeger/cmd/jaeger@VERSION`` is
  refused: Jaeger's go.mod has a replace directive, so ops/jaeger/go.mod requires it as a tool
  with that replace). OTLP over gRPC and HTTP, in-memory storage bounded the same way; the Go
  module ships no built web UI, so its page is Jaeger's placeholder. Building it from empty Go
  caches takes many minutes on two cores, which is why it is not the default.

Either way a restart starts empty, and nothing of the system depends on it: a process whose
exporter finds it down loses spans only. ``shopstream trace ORDER_ID`` reads the query API.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from ops.exceptions import StackError
from ops.stack.base import Server
from topology.settings import PROJECT_ROOT

#: Our module that pins Jaeger (its version is the ``tool`` requirement in go.mod).
SOURCE = PROJECT_ROOT / "ops" / "jaeger"
JAEGER_PACKAGE = "github.com/jaegertracing/jaeger/cmd/jaeger"
#: A build on a 2-core machine with an empty Go cache takes minutes.
BUILD_TIMEOUT_S = 1800.0

CONFIG = """\
# Written by ops/stack/traces.py at each start: edit the settings, not this file.
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: warn

extensions:
  jaeger_query:
    storage:
      traces: memory_store
    http:
      endpoint: {host}:{query_port}
    grpc:
      endpoint: {host}:{query_grpc_port}
  jaeger_storage:
    backends:
      memory_store:
        memory:
          max_traces: {max_traces}

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {host}:{grpc_port}
      http:
        endpoint: {host}:{http_port}

processors:
  batch:
    timeout: 200ms

exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
"""


class Traces(Server):
    """The trace backend ``SHOP_TRACES_BACKEND`` names: OTLP in, the query API out."""

    name = "traces"

    @property
    def jaeger(self) -> bool:
        return self.settings.traces_backend == "jaeger"

    @property
    def query_grpc_port(self) -> int:
        return self.settings.traces_query_port - 1

    @property
    def ports(self) -> tuple[int, ...]:
        s = self.settings
        if not self.jaeger:
            return (s.traces_http_port, s.traces_query_port)
        return (s.traces_grpc_port, s.traces_http_port, s.traces_query_port, self.query_grpc_port)

    @property
    def address(self) -> str:
        s = self.settings
        grpc = f", gRPC {s.host}:{s.traces_grpc_port}" if self.jaeger else ""
        return f"{s.traces_url} (OTLP http://{s.host}:{s.traces_http_port}{grpc})"

    @property
    def binary(self) -> Path:
        return self.paths.tools / "jaeger" / "jaeger"

    def install(self) -> None:
        """Build Jaeger into the tools folder when its binary is missing or older than ``ops/jaeger/go.mod``."""
        if not self.jaeger:
            return
        pins = [SOURCE / "go.mod", SOURCE / "go.sum"]
        if self.binary.exists() and self.binary.stat().st_mtime >= max(f.stat().st_mtime for f in pins):
            return
        go = shutil.which("go")
        if go is None:
            raise StackError(self.name, "the Go toolchain is missing", "install Go 1.24 or newer (go.dev/dl)")
        self.binary.parent.mkdir(parents=True, exist_ok=True)
        try:
            proc = subprocess.run(
                [go, "build", "-trimpath", "-o", str(self.binary), JAEGER_PACKAGE],
                cwd=SOURCE,
                env={**os.environ, "GOFLAGS": "-buildvcs=false -mod=readonly"},
                capture_output=True,
                text=True,
                check=False,
                timeout=max(self.settings.install_timeout_s, BUILD_TIMEOUT_S),
            )
        except subprocess.TimeoutExpired as err:
            took = f"building Jaeger took longer than {err.timeout:.0f} s"
            raise StackError(
                self.name, took, "run `shopstream stack up` again: the Go caches keep what was built"
            ) from err
        if proc.returncode != 0:
            raise StackError(
                self.name,
                f"go build {JAEGER_PACKAGE} (ops/jaeger) failed: {proc.stderr.strip()[-800:]}",
                "read the error; the system runs without traces meanwhile (leave SHOP_OTLP_ENDPOINT unset)",
            )

    @property
    def config_file(self) -> Path:
        return self.data_dir / "jaeger.yaml"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.jaeger:
            return
        s = self.settings
        self.config_file.write_text(
            CONFIG.format(
                host=s.host,
                grpc_port=s.traces_grpc_port,
                http_port=s.traces_http_port,
                query_port=s.traces_query_port,
                query_grpc_port=self.query_grpc_port,
                max_traces=s.traces_max_traces,
            )
        )

    def environment(self) -> dict[str, str]:
        # Like the gateway: one OS thread for Go code on a machine the flows need, and a lazier collector.
        return {**os.environ, "GOMAXPROCS": "1", "GOGC": "200"} if self.jaeger else dict(os.environ)

    def command(self) -> list[str]:
        if self.jaeger:
            return [str(self.binary), "--config", str(self.config_file)]
        s = self.settings
        return [
            sys.executable,
            "-m",
            "ops.tracestore",
            "--host",
            s.host,
            "--otlp-port",
            str(s.traces_http_port),
            "--query-port",
            str(s.traces_query_port),
            "--max-traces",
            str(s.traces_max_traces),
        ]  # run in its data folder, which is how ``pid`` knows it

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.settings.traces_url}/api/services", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False
