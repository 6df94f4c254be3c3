"""What one client may hold of the server: a deadline for its request head, a share of the file descriptors.

uvicorn closes an idle keep-alive connection, but a connection that sends part
of a request head and then nothing (or one byte now and then) is kept open
forever; enough of them and a server with 256 file descriptors stops
accepting, and asyncio then logs every failed ``accept()``. Here a request
head must arrive whole within ``HEAD_SECONDS``, the connection waiting longest
for its head makes room when the connections reach what the descriptors allow,
and the accept errors of a flood are logged once a minute, not once per try.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time

from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_SECONDS = 10.0
"""Longest a client may take to send a whole request head (the request line and headers)."""
KEEP_ALIVE_SECONDS = 5
"""An idle kept-alive connection is closed after this long (uvicorn's ``timeout_keep_alive``)."""
MAX_HEAD_BYTES = 16 * 1024
"""Largest request head h11 buffers before refusing it (uvicorn's ``h11_max_incomplete_event_size``)."""
SPARE_DESCRIPTORS = 64
"""Descriptors kept for the models, the source, the log and the stream's own work, never given to clients."""


class HeadDeadlineH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request head does not arrive in ``head_seconds``.

    The deadline starts when the connection opens and again after each response
    (the next request on a kept-alive connection), and ends when a whole head
    has arrived: a slow upload body is the route's to bound, not this. When the
    connections reach uvicorn's ``limit_concurrency`` (beyond which every
    request, ``/health`` too, gets a 503, and a little further the descriptors
    run out), the connection that has waited longest for its head is closed to
    make room: a real client sends its head at once, so it is never the one.
    ``guarded_protocol`` makes one class per server, holding that server's waiting connections.
    """

    head_seconds = HEAD_SECONDS
    waiting: dict[HeadDeadlineH11, None]
    """The connections still waiting for a request head, oldest first (a dict as an ordered set)."""
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._make_room()
        self._arm()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's head arrived and its cycle began
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _make_room(self) -> None:
        if self.limit_concurrency is None:
            return
        closing = 0
        while len(self.connections) - closing >= self.limit_concurrency and self.waiting:
            oldest = next(iter(self.waiting))
            oldest._head_late()
            closing += 1

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_seconds, self._head_late)
        self.waiting[self] = None

    def _disarm(self) -> None:
        self.waiting.pop(self, None)
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(head_seconds: float = HEAD_SECONDS) -> type[HeadDeadlineH11]:
    """A ``HeadDeadlineH11`` class of its own for one server (uvicorn's ``http=``), with its own waiting list."""
    return type("GuardedH11", (HeadDeadlineH11,), {"head_seconds": head_seconds, "waiting": {}})


def raise_descriptor_limit() -> int:
    """Raise this process's open-file limit to what the system allows it, and return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 65536


def connection_limit(descriptors: int) -> int:
    """Connections served at once before uvicorn answers 503: the descriptors, less the spare ones, at most 1000."""
    return max(16, min(1000, descriptors - SPARE_DESCRIPTORS))


class EveryMinute(logging.Filter):
    """Lets one of a flood of alike log records through a minute, saying how many were held back."""

    def __init__(self, prefix: str, seconds: float = 60.0) -> None:
        super().__init__()
        self.prefix, self.seconds = prefix, seconds
        self._last = -float("inf")
        self._held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self.prefix):
            return True
        now = time.monotonic()
        if now - self._last < self.seconds:
            self._held += 1
            return False
        if self._held:
            record.msg = f"{record.msg} ({self._held} more like it in the last minute)"
        self._last, self._held = now, 0
        record.exc_info = None  # the reason is in the message; a traceback per flood says nothing more
        return True


def quiet_accept_floods() -> None:
    """Rate-limit asyncio's 'socket.accept() out of system resource' records (descriptors exhausted)."""
    logging.getLogger("asyncio").addFilter(EveryMinute("socket.accept() out of system resource"))
