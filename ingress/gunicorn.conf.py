"""gunicorn settings for the ingress: workers and threads from SHOP_* settings (read once, here)."""

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
