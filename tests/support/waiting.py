"""Waiting for something the system does by itself, with a deadline and a message that says what never came."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx


def eventually(check: Callable[[], Any], timeout_s: float, failure: str, every_s: float = 0.25) -> Any:
    """``check()`` until it gives something true (an HTTP transport error counts as not yet); that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
        except httpx.TransportError:
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, failure
        time.sleep(every_s)
