"""Events out as HTTP POSTs, for a site whose systems take webhooks rather than MQTT.

Each person's verdict and record (the JSON of ``detector.service.messages``,
as on MQTT) whose label is among ``labels`` is POSTed to ``url`` from a thread
of its own, with a timeout and retries with growing pauses; while the receiver
is down, messages wait in a bounded queue (the oldest dropped, counted in
``maskdet_messages_dropped_total{output="webhook"}``), and the frame loop never waits.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

import httpx

from detector.people import Person
from detector.service.config import WebhookConfig
from detector.service.messages import person_message, verdict_message
from detector.service.metrics import Metrics

log = logging.getLogger(__name__)

QUEUE = 1000
"""Messages held while the receiver is away."""


class WebhookOutput:
    wants_snapshots = False  # a webhook gets the record; pictures stay on the machine

    def __init__(self, config: WebhookConfig, node: str, metrics: Metrics) -> None:
        self.config, self.node, self.metrics = config, node, metrics
        self._pending: deque[dict] = deque()
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._send, name="webhook-out", daemon=True)
        metrics.dropped.labels(output="webhook")
        self.sent = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is waiting (for at most ``timeout`` seconds), then stop."""
        self._halt.set()
        self._wake.set()
        self._thread.join(timeout)

    def verdict(self, event: dict, person: Person | None = None) -> None:
        if event["new"] in self.config.labels:
            self._queue(verdict_message(event, self.node))

    def person(self, person: Person) -> None:
        if person.verdict in self.config.labels:
            self._queue(person_message(person, self.node))

    def _queue(self, message: dict) -> None:
        if len(self._pending) >= QUEUE:
            self._pending.popleft()
            self.metrics.dropped.labels(output="webhook").inc()
        self._pending.append(message)
        self._wake.set()

    def _send(self) -> None:
        with httpx.Client(timeout=self.config.timeout) as client:
            while True:
                self._wake.wait(1.0)
                self._wake.clear()
                while self._pending:
                    if self._post(client, self._pending[0]):
                        self._pending.popleft()
                    elif self._halt.is_set():  # stopping with the receiver down: what is left is lost, and counted
                        self.metrics.dropped.labels(output="webhook").inc(len(self._pending))
                        self._pending.clear()
                    else:
                        break  # the receiver is down: keep the message, try again on the next wake
                if self._halt.is_set():
                    return

    def _post(self, client: httpx.Client, message: dict) -> bool:
        """One message, tried ``1 + retries`` times with pauses of 1, 2, 4... s; whether it was taken."""
        for attempt in range(self.config.retries + 1):
            try:
                response = client.post(self.config.url, json=message)
                if response.status_code < 300:
                    self.sent += 1
                    return True
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as err:
                problem = f"{type(err).__name__}"
            if attempt < self.config.retries and self._halt.wait(2.0**attempt):
                return False
        log.warning("webhook %s: %s after %d tries; will try again", self.config.url, problem, self.config.retries + 1)
        return False
