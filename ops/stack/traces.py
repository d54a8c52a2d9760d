"""The local stack's trace backend: Jaeger v2, built from its Go module by ``go install``.

Jaeger v2 is an OpenTelemetry Collector distribution: it takes OTLP over gRPC and HTTP,
keeps traces in memory (at most ``SHOP_TRACES_MAX_TRACES``, the oldest dropped first; a
restart starts empty) and answers Jaeger's query API (``/api/services``, ``/api/traces``)
on the query port. The Go module does not ship the web UI's built assets, so the UI port
shows Jaeger's placeholder page; ``shopstream trace ORDER_ID`` reads the API instead.
Nothing of the system depends on it: a process whose exporter finds it down loses spans only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx

from ops.exceptions import StackError
from ops.stack.base import Server

#: The module version built (the v2 binary lives in the v1.x module's cmd/jaeger).
JAEGER_MODULE = "github.com/jaegertracing/jaeger/cmd/jaeger"
JAEGER_VERSION = "v1.76.0"
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
    """Jaeger v2 with in-memory storage: OTLP in, the query API out."""

    name = "traces"

    @property
    def query_grpc_port(self) -> int:
        return self.settings.traces_query_port - 1

    @property
    def ports(self) -> tuple[int, ...]:
        s = self.settings
        return (s.traces_grpc_port, s.traces_http_port, s.traces_query_port, self.query_grpc_port)

    @property
    def address(self) -> str:
        s = self.settings
        return f"{s.traces_url} (OTLP http://{s.host}:{s.traces_http_port}, gRPC {s.host}:{s.traces_grpc_port})"

    @property
    def binary(self) -> Path:
        return self.paths.tools / f"jaeger-{JAEGER_VERSION}" / "jaeger"

    def install(self) -> None:
        """``go install`` Jaeger into the tools folder when its binary is missing (the Go caches make it faster)."""
        if self.binary.exists():
            return
        go = shutil.which("go")
        if go is None:
            raise StackError(self.name, "the Go toolchain is missing", "install Go 1.25 or newer (go.dev/dl)")
        self.binary.parent.mkdir(parents=True, exist_ok=True)
        try:
            proc = subprocess.run(
                [go, "install", f"{JAEGER_MODULE}@{JAEGER_VERSION}"],
                env={**os.environ, "GOBIN": str(self.binary.parent), "GOFLAGS": "-buildvcs=false"},
                capture_output=True,
                text=True,
                check=False,
                timeout=max(self.settings.install_timeout_s, BUILD_TIMEOUT_S),
            )
        except subprocess.TimeoutExpired as err:
            raise StackError(
                self.name, f"go install of Jaeger took longer than {err.timeout:.0f} s", "try again"
            ) from err
        if proc.returncode != 0:
            raise StackError(
                self.name,
                f"go install {JAEGER_MODULE}@{JAEGER_VERSION} failed: {proc.stderr.strip()[-800:]}",
                "read the error; the system runs without traces meanwhile (leave SHOP_OTLP_ENDPOINT unset)",
            )

    @property
    def config_file(self) -> Path:
        return self.data_dir / "jaeger.yaml"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
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
        return {**os.environ, "GOMAXPROCS": "1", "GOGC": "200"}

    def command(self) -> list[str]:
        return [str(self.binary), "--config", str(self.config_file)]

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.settings.traces_url}/api/services", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False
