"""The service under a hostile or heavy load: uploads that queue or are turned away, slow clients, foreign Host
names, an exposed address without a token. Real servers on loopback; bounded waits; no timing is asserted."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import pytest
from conftest import ROOT, free_port, run_cli, start_server, stop_server

from detector.synth.demo import astronaut_bgr


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory: pytest.TempPathFactory):
    """The demo server with one upload judged at a time and none held waiting."""
    proc, base = start_server(["--demo", "--upload-workers", "1", "--upload-queue", "0"],
                           tmp_path_factory.mktemp("busy") / "log")
    yield base
    stop_server(proc)


def test_uploads_beyond_the_queue_get_503_with_retry_after_and_the_stream_goes_on(busy_server: str) -> None:
    body = cv2.imencode(".jpg", cv2.resize(astronaut_bgr(), (1600, 1600)))[1].tobytes()
    before = httpx.get(f"{busy_server}/stats").json()["frames"]

    def upload(_: int) -> httpx.Response:
        return httpx.post(f"{busy_server}/detect", content=body, headers={"Content-Type": "image/jpeg"}, timeout=120)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(upload, range(8)))
    codes = sorted(r.status_code for r in answers)
    assert set(codes) == {200, 503} and codes.count(200) >= 1, codes
    for r in answers:
        if r.status_code == 503:
            assert int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["error"]
        else:
            assert (r.json()["width"], r.json()["height"]) == (1600, 1600) and len(r.json()["faces"]) >= 1
    assert httpx.get(f"{busy_server}/stats").json()["frames"] > before, "the stream went on during the uploads"
    metrics = httpx.get(f"{busy_server}/metrics").text
    assert 'maskdet_uploads_total{status="503"}' in metrics


def test_a_large_upload_is_judged_small_and_answered_in_its_own_pixels(busy_server: str) -> None:
    """A 6000 x 6000 JPEG (1.4 GB and 6 s when decoded whole) is decoded at a quarter of its side."""
    body = cv2.imencode(".jpg", cv2.resize(astronaut_bgr(), (6000, 6000)))[1].tobytes()
    r = httpx.post(f"{busy_server}/detect", content=body, headers={"Content-Type": "image/jpeg"}, timeout=120)
    assert r.status_code == 200, r.text
    assert (r.json()["width"], r.json()["height"]) == (6000, 6000)
    face = max(r.json()["faces"], key=lambda f: f["box"][2] - f["box"][0])
    x1, y1, x2, y2 = face["box"]
    assert 1400 < (x1 + x2) / 2 < 3900 and 500 < (y1 + y2) / 2 < 2600 and x2 - x1 > 600, face["box"]


def test_half_open_requests_are_closed_and_health_answers(busy_server: str) -> None:
    """40 connections that send part of a request head and then nothing: /health still answers at once, and the
    server closes each once its head is late (10 s), instead of holding them for ever."""
    host, port = busy_server.removeprefix("http://").split(":")
    sockets = []
    try:
        for _ in range(40):
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(b"GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            sockets.append(s)
        assert httpx.get(f"{busy_server}/health", timeout=10).status_code == 200
        deadline, closed = time.monotonic() + 30, set()
        while len(closed) < len(sockets) and time.monotonic() < deadline:
            for i, s in enumerate(sockets):
                if i not in closed:
                    s.settimeout(0.05)
                    try:
                        if s.recv(1024) == b"":
                            closed.add(i)
                    except TimeoutError:
                        pass
        assert len(closed) == len(sockets), f"{len(sockets) - len(closed)} half-open connections still open after 30 s"
    finally:
        for s in sockets:
            s.close()
    assert httpx.get(f"{busy_server}/health", timeout=10).json()["status"] == "ok"


def test_only_the_bound_host_names_are_answered(busy_server: str) -> None:
    """DNS rebinding: a page on evil.example that resolves to 127.0.0.1 must not read the camera."""
    for path in ("/stats", "/stream", "/", "/health"):
        r = httpx.get(f"{busy_server}{path}", headers={"Host": "evil.example:8000"}, timeout=10)
        assert r.status_code == 400, path
    page = httpx.get(f"{busy_server}/", headers={"Host": "localhost"})
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
    assert httpx.get(f"{busy_server}/stats").headers["x-frame-options"] == "DENY"


def test_allowed_host_names_and_an_exposed_address(tmp_path: Path) -> None:
    proc, base = start_server(["--allowed-host", "camera.example"], tmp_path / "log")
    try:
        assert httpx.get(f"{base}/health", headers={"Host": "camera.example"}).status_code == 200
        assert httpx.get(f"{base}/health", headers={"Host": "other.example"}).status_code == 400
    finally:
        stop_server(proc)
    refused = run_cli("serve", "--host", "0.0.0.0", "--port", "0", timeout=60)
    assert refused.returncode == 2 and refused.stderr.startswith("error: ") and "--token" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr


def test_insecure_serves_an_exposed_address_with_a_warning(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "detector", "serve", "--host", "0.0.0.0", "--port", str(port),
                                 "--insecure"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        assert stop_server(proc) == 130
    assert "without --token" in log.read_text()
