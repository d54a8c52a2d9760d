"""Retries with backoff for the delivery adapters; what outlasts them is ``ChannelUnavailable``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from flows.exceptions import ChannelUnavailable

T = TypeVar("T")


def with_retries(call: Callable[[], T], transient: tuple[type[Exception], ...], retries: int, what: str) -> T:
    for attempt in range(retries + 1):
        try:
            return call()
        except transient as err:
            if attempt == retries:
                raise ChannelUnavailable(f"{what}: {err}") from err
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")
