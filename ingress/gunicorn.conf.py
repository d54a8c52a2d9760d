"""gunicorn settings for the ingress: workers and threads from SHOP_* settings (read once, here).

Metrics: every worker writes its samples to one folder (prometheus-client multiprocess
mode), emptied when gunicorn starts; a worker that exits is marked dead so its gauges go.
prometheus_client must not be imported here before the variable is set: it picks its
storage at import time, and forked workers would inherit in-memory counters.
"""

import os
import shutil
from typing import Any

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


def child_exit(server: object, worker: Any) -> None:
    from prometheus_client import multiprocess  # only after PROMETHEUS_MULTIPROC_DIR is set

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
