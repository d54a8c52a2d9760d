"""The payment provider stand-in built from its source as it is now, for the tests of what the source says.

The stack's own stand-in serves them when it was built from the current source. When it runs an
older binary (a test never restarts a shared server), the stack's ``Gateway`` builds the current
source and starts it under a temporary stack folder, on a free port, and stops it afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ops.stack.stores import Gateway
from tests.support.processes import free_port
from topology.settings import Settings


@contextmanager
def current_gateway(settings: Settings, folder: Path) -> Iterator[str]:
    """The URL of a stand-in built from the current source: the stack's, or a private one under ``folder``."""
    if Gateway(settings).serves_current_source():
        yield settings.gateway_url
        return
    private = Gateway(
        settings.model_copy(
            update={"stack_dir": folder, "tools_dir": None, "gateway_port": free_port(), "gateway_url_override": None}
        )
    )
    private.start()
    try:
        private.wait_healthy(settings.health_timeout_s)
        yield private.address
    finally:
        private.stop()
