"""Events over a real MQTT broker: Mosquitto on a free loopback port, a real subscriber, a real node.

A node publishes people, verdicts, retained camera states and its status; a
node killed without a word is announced ``offline`` by its last will; a broker
that goes away and comes back loses the node nothing.
"""

from __future__ import annotations

import base64
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import free_port, start_server, stop_server, wait_for

mqtt = pytest.importorskip("paho.mqtt.client")
MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


class Broker:
    """Mosquitto on one loopback port; ``stop`` and ``start`` again keep the port."""

    def __init__(self, folder: Path) -> None:
        if MOSQUITTO is None:
            pytest.skip("mosquitto is not installed (Debian: apt-get install mosquitto; .ci/run installs it)")
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.log = folder / "mosquitto.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        pytest.fail(f"mosquitto did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Subscriber:
    """Everything under ``maskdet/#``, as (time, topic, payload, retained)."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[float, str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-subscriber")
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe([("maskdet/#", 1), ("homeassistant/#", 1)])
        self.client.on_message = self._got
        self.client.reconnect_delay_set(0.5, 2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _got(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append((time.time(), message.topic, message.payload, bool(message.retain)))

    def wait(self, topic: str, check=lambda payload: True, after: float = 0.0, seconds: float = 60.0) -> bytes:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                for when, t, payload, _ in self.messages:
                    if t == topic and when >= after and check(payload):
                        return payload
            time.sleep(0.2)
        with self.lock:
            seen = sorted({t for _, t, _, _ in self.messages})
        pytest.fail(f"no message on {topic} within {seconds} s (topics seen: {seen})")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


def site(tmp_path: Path, clip: Path, port: int, node: str) -> Path:
    path = tmp_path / f"{node}.toml"
    path.write_text(f'node = "{node}"\n\n[[camera]]\nname = "front"\nsource = "{clip}"\n\n'
                    f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nsnapshot = true\nqueue = 3\nhome_assistant = true\n')
    return path


def is_left(payload: bytes) -> bool:
    return json.loads(payload).get("event") == "left"


def test_people_states_and_status_reach_a_subscriber_and_survive_the_broker(broker: Broker, demo_clip: Path,
                                                                          tmp_path: Path) -> None:
    sub = Subscriber(broker.port)
    proc, base = start_server(["--config", str(site(tmp_path, demo_clip, broker.port, "east"))], tmp_path / "east.log")
    try:
        assert sub.wait("maskdet/east/status") == b"online"
        state = json.loads(sub.wait("maskdet/east/front/state"))
        assert state["name"] == "front" and state["status"] == "running" and "today" in state
        verdict = json.loads(sub.wait("maskdet/east/front/person", lambda p: json.loads(p)["event"] == "verdict"))
        assert verdict["label"] in ("mask", "incorrect", "no_mask") and verdict["camera"] == "front"
        assert base64.b64decode(verdict["snapshot"])[:2] == b"\xff\xd8"  # their best frame so far
        left = json.loads(sub.wait("maskdet/east/front/person", is_left))
        assert left["label"] in ("mask", "incorrect", "no_mask", "checking") and set(left["shares"]) >= {"mask"}
        assert base64.b64decode(left["snapshot"])[:2] == b"\xff\xd8"  # a JPEG of their best frame

        sensor = json.loads(sub.wait("homeassistant/sensor/maskdet_east_front_no_mask/config"))
        assert sensor["state_topic"] == "maskdet/east/front/state" and "today.people.no_mask" in sensor["value_template"]

        broker.stop()  # the broker goes away: the node keeps judging, holding at most 3 messages
        time.sleep(5)
        assert httpx.get(f"{base}/health").json()["status"] == "ok"
        dropped = next(line for line in httpx.get(f"{base}/metrics").text.splitlines()
                       if line.startswith('maskdet_messages_dropped_total{output="mqtt"}'))
        assert float(dropped.split()[-1]) > 0, "a state a second for 5 s overflows a queue of 3: the oldest go"
        back = time.time()
        broker.start()
        assert sub.wait("maskdet/east/status", after=back) == b"online"
        sub.wait("maskdet/east/front/person", is_left, after=back)  # people seen since still reach it
    finally:
        assert stop_server(proc) == 130
    assert sub.wait("maskdet/east/status", lambda p: p == b"offline") == b"offline"  # said on a clean stop
    sub.close()


def test_a_killed_node_is_announced_offline_by_its_last_will(broker: Broker, demo_clip: Path, tmp_path: Path) -> None:
    sub = Subscriber(broker.port)
    proc, _ = start_server(["--config", str(site(tmp_path, demo_clip, broker.port, "west"))], tmp_path / "west.log")
    try:
        assert sub.wait("maskdet/west/status") == b"online"
        killed = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert sub.wait("maskdet/west/status", lambda p: p == b"offline", after=killed, seconds=30) == b"offline"
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close()


def test_two_nodes_and_one_dashboard_on_one_broker(broker: Broker, demo_clip: Path, tmp_path: Path) -> None:
    dash, dash_url = start_server(["--mqtt", f"127.0.0.1:{broker.port}"], tmp_path / "dashboard.log", "dashboard")
    east, _ = start_server(["--config", str(site(tmp_path, demo_clip, broker.port, "east"))], tmp_path / "east.log")
    west, _ = start_server(["--config", str(site(tmp_path, demo_clip, broker.port, "west"))], tmp_path / "west.log")
    try:
        def fleet_counted():
            fleet = httpx.get(f"{dash_url}/api/cameras").json()
            nodes = {c["node"] for c in fleet["cameras"] if sum(c["today"]["people"].values()) > 0}
            return fleet if nodes == {"east", "west"} else None

        fleet = wait_for(fleet_counted)
        assert {(c["node"], c["name"], c["status"]) for c in fleet["cameras"]} == {("east", "front", "running"),
                                                                                  ("west", "front", "running")}
        assert sum(fleet["totals"]["people"].values()) >= 2
        metrics = httpx.get(f"{dash_url}/metrics").text
        assert 'maskdet_node_up{node="east"} 1.0' in metrics and 'maskdet_stream_up{camera="front",node="west"} 1.0' in metrics
        west.send_signal(signal.SIGKILL)  # the west node dies: its last will tells the dashboard
        west.wait(10)
        wait_for(lambda: {n["node"]: n["status"] for n in httpx.get(f"{dash_url}/api/nodes").json()["nodes"]}
                   .get("west") == "offline", seconds=30)
        cameras = {c["node"]: c["status"] for c in httpx.get(f"{dash_url}/api/cameras").json()["cameras"]}
        assert cameras == {"east": "running", "west": "offline"}
        page = httpx.get(f"{dash_url}/")
        assert page.status_code == 200 and "fleet" in page.text
    finally:
        for proc in (east, west):
            if proc.poll() is None:
                stop_server(proc)
        dash.send_signal(signal.SIGINT)
        dash.wait(20)

