"""Fan-out from a camera's thread to the event loop's clients (MJPEG viewers, event listeners).

Each subscriber has a small queue; a full queue drops its oldest item, so a slow
or vanished viewer sees fewer frames and never makes a camera wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any


class Hub:
    """Fan-out from the worker thread to async subscribers, each with a small queue.

    A full queue drops its oldest item: a slow client sees fewer frames, it
    never makes the worker wait.
    """

    def __init__(self) -> None:
        self._subs: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = set()
        self._lock = threading.Lock()

    def subscribe(self, size: int) -> asyncio.Queue:
        """A queue fed from now on; call from the event loop, then ``unsubscribe``."""
        queue: asyncio.Queue = asyncio.Queue(size)
        with self._lock:
            self._subs.add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        with self._lock:
            self._subs = {s for s in self._subs if s[1] is not queue}

    def publish(self, item: Any) -> None:
        with self._lock:
            subs = list(self._subs)
        for loop, queue in subs:
            with contextlib.suppress(RuntimeError):  # loop already closed (shutting down)
                loop.call_soon_threadsafe(_offer, queue, item)


def _offer(queue: asyncio.Queue, item: Any) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)
