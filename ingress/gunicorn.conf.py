"""gunicorn settings for the ingress: workers and threads from SHOP_* settings (read once, here).

Metrics: every worker writes its samples to one folder (prometheus-client multiprocess
mode), emptied when gunicorn starts; a worker that exits is marked dead so its gauges go.
The master answers ``/metrics`` on the operator port (``SHOP_INGRESS_METRICS_PORT``, by default
the port topology/processes.py declares: 18001), never on the API port; a taken operator port
stops gunicorn. The master samples the read replica's lag when scraped (``ingress/replica_lag.py``).
Signing keys: a key folder without a key (``SHOP_KEYS_DIR``) stops gunicorn before it forks a worker.
prometheus_client must not be imported here before the variable is set: it picks its
storage at import time, and forked workers would inherit in-memory counters.
Logs: gunicorn's own lines go to the process's handlers (``topology/logs.py``, set up here for
the master, inherited by each worker); its access log is off, the app logs each request.
"""

import os
import shutil
from typing import Any

from gunicorn import glogging

from topology.settings import Settings

_settings = Settings.from_env()
bind = f"{_settings.host}:{_settings.ingress_port}"
workers = _settings.ingress_workers
threads = _settings.ingress_threads
worker_class = "gthread"
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = None

_metrics_dir = _settings.stack_dir / "metrics" / f"ingress-{_settings.ingress_port}"
shutil.rmtree(_metrics_dir, ignore_errors=True)
_metrics_dir.mkdir(parents=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)
_operator: dict[str, Any] = {}


def _setup_logging() -> None:
    from topology.logs import setup_logging  # only after PROMETHEUS_MULTIPROC_DIR is set (its drop counter)

    setup_logging(_settings, "ingress", "ingress")  # the master's; each worker's shipper starts anew after the fork


_setup_logging()


class _Logger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's own lines go through the process's handlers (topology/logs.py); the access log is the app's."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in [h for h in log.handlers if getattr(h, "_gunicorn", False)]:
                log.removeHandler(handler)
        self.error_log.propagate = True

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Nothing: ``ingress/access_log.py`` logs each request, with its route and its order."""


logger_class = _Logger


def on_starting(server: Any) -> None:
    from ingress.auth.keys import load_keys
    from topology.signing_keys import KeyFolderError

    try:
        load_keys(_settings)
    except KeyFolderError as err:
        server.log.error("the ingress cannot start: %s", err)
        raise SystemExit(4) from None  # gunicorn's "app failed to load"


def when_ready(server: Any) -> None:
    from ingress.metrics import serve  # only after PROMETHEUS_MULTIPROC_DIR is set

    port = _settings.ingress_operator_port
    if not port:  # SHOP_METRICS_ENABLED=false
        return
    try:
        _operator["server"] = serve(_settings.host, port, _settings)  # with the replica's lag, sampled on scrape
    except OSError as err:
        server.log.error(
            "metrics: cannot listen on %s:%s (%s); set SHOP_INGRESS_METRICS_PORT", _settings.host, port, err
        )
        raise SystemExit(1) from None
    server.log.info("metrics on http://%s:%s/metrics", _settings.host, port)


def post_fork(server: Any, worker: Any) -> None:
    metrics = _operator.get("server")
    if metrics is not None:
        metrics.socket.close()  # the master answers the operator port; a worker holds no copy of it


def child_exit(server: object, worker: Any) -> None:
    from prometheus_client import multiprocess  # only after PROMETHEUS_MULTIPROC_DIR is set

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
