"""Events out over MQTT (paho-mqtt), the way a site's other systems already listen.

Topics, under ``topic_prefix`` (default ``maskdet``) and this node's name:

- ``maskdet/<node>/<camera>/person``: one JSON message when a person's verdict settles or changes
  (``"event": "verdict"``) and one when they leave view (``"event": "left"``, their whole record;
  with ``snapshot = true`` a base64 JPEG of their best frame);
- ``maskdet/<node>/<camera>/state``: retained, the camera's status and counts, at most once a second;
- ``maskdet/<node>/status``: retained ``online``, and ``offline`` as the MQTT last will, so a
  subscriber learns that a node died even when it could not say so.

Messages wait in a bounded queue while the broker is away (the oldest dropped and counted in
``maskdet_messages_dropped_total{output="mqtt"}``); paho reconnects with backoff on its own thread,
so the frame loop never waits on the network.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from paho.mqtt import client as mqtt

from detector.people import Person
from detector.service.config import MqttConfig
from detector.service.messages import person_message, verdict_message
from detector.service.metrics import Metrics
from detector.types import LABELS

log = logging.getLogger(__name__)

STATE_SECONDS = 1.0
"""At most one retained state message per camera this often."""


class MqttOutput:
    """Publishes people, verdicts, camera states and this node's status to one broker."""

    def __init__(self, config: MqttConfig, node: str, metrics: Metrics, states: Callable[[], dict[str, dict]],
                 snapshots: bool = True, blur: bool = False) -> None:
        self.config, self.node, self.metrics, self.states = config, node, metrics, states
        self.wants_snapshots = config.snapshot and snapshots
        self.blur = blur
        self.base = f"{config.topic_prefix}/{node}"
        self._pending: deque[tuple[str, str, bool]] = deque()
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._sent_state: dict[str, str] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"maskdet-{node}")
        if config.username:
            self.client.username_pw_set(config.username, config.password)
        self.client.will_set(f"{self.base}/status", "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._connected
        self._thread = threading.Thread(target=self._send, name="mqtt-out", daemon=True)
        metrics.dropped.labels(output="mqtt")

    def start(self) -> None:
        self.client.connect_async(self.config.host, self.config.port, keepalive=15)
        self.client.loop_start()
        self._thread.start()

    def stop(self) -> None:
        """Say ``offline`` (a clean stop is no death) and let go of the broker."""
        self._halt.set()
        self._wake.set()
        if self.client.is_connected():
            self.client.publish(f"{self.base}/status", "offline", qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()

    def verdict(self, event: dict, person: Person | None = None) -> None:
        message = verdict_message(event, self.node, person, self.wants_snapshots, self.blur)
        self._queue(f"{self.base}/{event['camera']}/person", json.dumps(message))

    def person(self, person: Person) -> None:
        message = person_message(person, self.node, self.wants_snapshots, self.blur)
        self._queue(f"{self.base}/{person.camera}/person", json.dumps(message))

    def _queue(self, topic: str, payload: str, retain: bool = False) -> None:
        if len(self._pending) >= self.config.queue:
            self._pending.popleft()
            self.metrics.dropped.labels(output="mqtt").inc()
        self._pending.append((topic, payload, retain))
        self._wake.set()

    def _connected(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            log.warning("MQTT broker %s:%s refused us: %s", self.config.host, self.config.port, reason)
            return
        client.publish(f"{self.base}/status", "online", qos=1, retain=True)
        if self.config.home_assistant:
            for topic, payload in discovery(self.config.topic_prefix, self.node, list(self.states())):
                client.publish(topic, payload, qos=1, retain=True)
        self._sent_state.clear()  # the broker may have restarted without its retained states
        self._wake.set()

    def _send(self) -> None:
        """Drain the queue while connected; publish changed camera states at most once a second."""
        next_state = 0.0
        while not self._halt.is_set():
            self._wake.wait(STATE_SECONDS)
            self._wake.clear()
            if time.monotonic() >= next_state:
                next_state = time.monotonic() + STATE_SECONDS
                self._queue_states()
            while self._pending and self.client.is_connected() and not self._halt.is_set():
                topic, payload, retain = self._pending[0]
                info = self.client.publish(topic, payload, qos=1, retain=retain)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    break  # gone again: keep it for the next connection
                self._pending.popleft()

    def _queue_states(self) -> None:
        for camera, state in self.states().items():
            text = json.dumps(state, sort_keys=True)
            if self._sent_state.get(camera) != text:
                self._sent_state[camera] = text
                self._queue(f"{self.base}/{camera}/state", text, retain=True)


def discovery(prefix: str, node: str, cameras: list[str]) -> list[tuple[str, str]]:
    """Home Assistant's MQTT discovery: one sensor per camera and label (people today), read from the
    camera's retained state and unavailable while the node is offline."""
    out = []
    for camera in cameras:
        for label in (*LABELS, "checking"):
            uid = f"maskdet_{node}_{camera}_{label}".replace("-", "_")
            config = {
                "name": f"{camera} people {label.replace('_', ' ')} today",
                "unique_id": uid,
                "state_topic": f"{prefix}/{node}/{camera}/state",
                "value_template": f"{{{{ value_json.today.people.{label} }}}}",
                "unit_of_measurement": "people",
                "state_class": "total",
                "availability_topic": f"{prefix}/{node}/status",
                "device": {"identifiers": [f"maskdet_{node}"], "name": f"Mask detector {node}",
                           "manufacturer": "mask-detector"},
            }
            out.append((f"homeassistant/sensor/{uid}/config", json.dumps(config)))
    return out
