"""``python -m detector serve`` end to end: a real server on loopback, real models, a real browser.

The main server is the command line itself (``serve --demo`` in a subprocess),
so argument parsing, model loading, the demo clip and shutdown are all
covered; the token server is built with ``create_app`` and run by uvicorn in a
thread, which is how embedding code uses it. Images come from scikit-image's
public-domain ``astronaut``; nothing is mocked. No test asserts on timings:
every wait is bounded, and only outcomes are checked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from conftest import free_port, jpeg, png_declaring, run_cli, start_server, stop_server

from detector.synth.demo import astronaut_bgr
from detector.types import LABELS

CHROMIUM = Path("/usr/bin/chromium")
MAX_UPLOAD = 300_000
TOKEN = "s3cret-token"
FACE_KEYS = {"box", "label", "score", "nose_visible", "mouth_visible", "track", "quality", "settled"}



@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo server with a small upload limit, shared by the module (starting it builds the clip)."""
    proc, base = start_server(["--demo", "--max-upload", str(MAX_UPLOAD)], tmp_path_factory.mktemp("serve") / "log")
    yield base
    stop_server(proc)


def test_health_docs_and_stats(server: str) -> None:
    health = httpx.get(f"{server}/health").json()
    assert health["status"] == "ok" and health["stream"] == "running"
    openapi = httpx.get(f"{server}/openapi.json").json()
    assert {"/detect", "/api/cameras", "/api/people", "/api/compliance"} <= set(openapi["paths"])
    assert {"DetectOut", "CamerasOut", "PeopleOut", "ComplianceOut", "Error"} <= set(openapi["components"]["schemas"])
    docs = httpx.get(f"{server}/docs")
    assert docs.status_code == 200 and "cdn." not in docs.text, "docs work without internet"
    script = next(part.split('"')[0] for part in docs.text.split('src="')[1:] if part.endswith(".js", 0, part.index('"')))
    assert httpx.get(f"{server}{script}").status_code == 200
    stats = httpx.get(f"{server}/stats").json()
    assert set(stats["now"]) == set(LABELS) and stats["source"].endswith("demo.mp4")
    assert stats["source_status"]["state"] == "running" and set(stats["people"]) == {*LABELS, "checking"}
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and 'id="view"' in page.text and '/cameras/' in page.text


@pytest.mark.parametrize("as_multipart", [True, False], ids=["multipart", "raw-body"])
def test_detect_finds_the_astronaut(server: str, as_multipart: bool) -> None:
    body = jpeg()
    if as_multipart:
        r = httpx.post(f"{server}/detect", files={"image": ("astronaut.jpg", body, "image/jpeg")}, timeout=60)
    else:
        r = httpx.post(f"{server}/detect", content=body, headers={"Content-Type": "image/jpeg"}, timeout=60)
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["width"], result["height"]) == (512, 512) and result["ms"] >= 0
    assert len(result["faces"]) == 1
    face = result["faces"][0]
    assert set(face) == FACE_KEYS and face["label"] in LABELS and face["track"] is None
    x1, y1, x2, y2 = face["box"]
    assert 120 < (x1 + x2) / 2 < 330 and 40 < (y1 + y2) / 2 < 220  # around her face, in upload pixels


BAD_UPLOADS = {
    "garbage": ({"content": b"\x00not an image at all" * 50, "headers": {"Content-Type": "image/jpeg"}}, {400, 415}),
    "empty": ({"content": b"", "headers": {"Content-Type": "image/jpeg"}}, {400}),
    "truncated-jpeg": ({"content": jpeg()[:3000], "headers": {"Content-Type": "image/jpeg"}}, {200, 400}),
    "over-limit-raw": ({"content": b"\xff\xd8\xff" + os.urandom(MAX_UPLOAD), "headers": {"Content-Type": "image/jpeg"}}, {413}),
    "over-limit-multipart": ({"files": {"image": ("big.jpg", b"\xff\xd8\xff" + os.urandom(MAX_UPLOAD), "image/jpeg")}}, {413}),
    "huge-declared-pixels": ({"content": png_declaring(100_000, 100_000), "headers": {"Content-Type": "image/png"}}, {413}),
    "text-content-type": ({"content": jpeg(), "headers": {"Content-Type": "text/plain"}}, {415}),
    "text-part-type": ({"files": {"image": ("a.txt", b"hello", "text/plain")}}, {415}),
    "no-image-field": ({"data": {"note": "hi"}, "files": {"other": ("x", b"", "text/plain")}}, {400, 415}),
    "broken-multipart": ({"content": b"--x\r\nnope", "headers": {"Content-Type": "multipart/form-data; boundary=zz"}}, {400}),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_uploads_get_a_json_error(server: str, case: str) -> None:
    kwargs, statuses = BAD_UPLOADS[case]
    r = httpx.post(f"{server}/detect", timeout=60, **kwargs)
    assert r.status_code in statuses, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert ("error" in r.json()) == (r.status_code != 200)


def test_huge_declared_content_length_is_refused_unread(server: str) -> None:
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                  b"Content-Length: 99999999999\r\n\r\n\xff\xd8")
        reply = b""
        while b'"error"' not in reply:  # the status line and the body may come in separate packets
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        reply = reply.decode("latin-1")
    assert reply.startswith("HTTP/1.1 413") and '"error"' in reply


def frames_done(base: str) -> int:
    return httpx.get(f"{base}/stats").json()["frames"]


def test_stream_survives_a_dropped_viewer(server: str) -> None:
    with httpx.stream("GET", f"{server}/stream", timeout=30) as r:
        assert r.headers["content-type"].startswith("multipart/x-mixed-replace")
        chunk = next(r.iter_bytes())
        assert b"--frame" in chunk and b"image/jpeg" in chunk
    before, deadline = frames_done(server), time.monotonic() + 15
    while frames_done(server) <= before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert frames_done(server) > before, "the stream stopped when its viewer left"


def test_metrics_exposition(server: str) -> None:
    httpx.post(f"{server}/detect", content=jpeg(128), headers={"Content-Type": "image/jpeg"}, timeout=60)
    r = httpx.get(f"{server}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    for name in ('maskdet_frames_processed_total{camera="main"}', 'maskdet_faces_total{camera="main",label="mask"',
                 'maskdet_faces_total{camera="",label="mask",origin="upload"}', 'maskdet_stream_fps{camera="main"}',
                 'maskdet_people_total{camera="main",label="incorrect"}', "maskdet_frame_latency_seconds_bucket",
                 'maskdet_uploads_total{status="200"}'):
        assert name in r.text, name
    frames = next(line for line in r.text.splitlines() if line.startswith("maskdet_frames_processed_total"))
    assert float(frames.split()[-1]) > 0


def test_events_report_a_verdict_change(server: str) -> None:
    """The demo clip takes the left mask from worn to under the nose: some tracked label must flip (30 s at most)."""
    event = None
    with httpx.stream("GET", f"{server}/events", timeout=httpx.Timeout(30, read=30)) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        deadline = time.monotonic() + 30
        for line in r.iter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                break
            if time.monotonic() > deadline:
                break
    assert event is not None, "no verdict change in 30 s"
    assert {"track", "old", "new", "time"} <= set(event) and event["old"] != event["new"]
    assert {event["old"], event["new"]} <= set(LABELS)


def test_load_eight_clients(server: str) -> None:
    """8 clients x 50 uploads at once, next to the running stream: all answered, server still healthy."""
    body = jpeg(160)

    def client(_: int) -> list[int]:
        with httpx.Client(base_url=server, timeout=60) as c:
            return [c.post("/detect", content=body, headers={"Content-Type": "image/jpeg"}).status_code for _ in range(50)]

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for batch in pool.map(client, range(8)) for s in batch]
    assert len(statuses) == 400 and set(statuses) == {200}
    health = httpx.get(f"{server}/health").json()
    assert health["status"] == "ok" and health["stream"] == "running"


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)")
@pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="playwright missing (pip install playwright)")
def test_browser_sees_the_stream_and_counts(server: str) -> None:
    """Debian's Chromium, never a downloaded one (``playwright install`` is not needed and must not run).

    The page runs under its own Content-Security-Policy, which forbids eval: the test reads the page
    from outside (text, a screenshot of the stream) and fails on any policy violation the page reports."""
    from playwright.sync_api import sync_playwright

    def number(page, selector: str) -> int:
        text = page.inner_text(selector)
        return int(text) if text.isdigit() else 0

    def wait_until(predicate, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            assert time.monotonic() < deadline, "the page did not get there in time"
            time.sleep(0.2)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            page.goto(f"{server}/")
            wait_until(lambda: number(page, "#total-all") > 0)
            first = number(page, "#total-all")
            wait_until(lambda: number(page, "#total-all") > first)
            assert page.inner_text("#compliance-total").endswith("%")
            assert page.is_hidden("#nostream")
            shot = cv2.imdecode(np.frombuffer(page.locator("#stream").screenshot(), np.uint8), cv2.IMREAD_GRAYSCALE)
            assert shot.shape[1] > 100 and shot.std() > 20, "the MJPEG stream is drawn"
            wait_until(lambda: sum(number(page, f"#people-{lab}") for lab in ("mask", "incorrect", "no_mask")) > 0)
            wait_until(lambda: page.inner_text("#cam-main").startswith("main: running"))
            wait_until(lambda: page.locator("#chart rect").count() > 0)  # this hour's compliance, drawn
            wait_until(lambda: page.locator("#chart-days rect").count() > 0)  # and today's
            assert page.inner_text("#compliance-people").endswith("%")
        finally:
            browser.close()
    assert not [m for m in console if "Content Security Policy" in m], console


@pytest.fixture(scope="module")
def token_server(pipeline) -> Iterator[str]:
    """``create_app`` with a token and no source, served by uvicorn in a thread (the suite's models)."""
    import uvicorn

    from detector.service.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(pipeline, token=TOKEN), port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(10)


def test_token_required_except_health(token_server: str) -> None:
    good = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/", "/stats", "/metrics", "/docs", "/stream", "/events"):
        r = httpx.get(f"{token_server}{path}")
        assert r.status_code == 401 and "error" in r.json() and r.headers["www-authenticate"] == "Bearer", path
    assert httpx.get(f"{token_server}/stats", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{token_server}/health").json()["status"] == "ok"
    off = httpx.get(f"{token_server}/stats", headers=good).json()
    assert off["stream"] == "off" and off["source_status"] is None, "one shape with or without a stream"
    assert off["people"] == {"mask": 0, "incorrect": 0, "no_mask": 0, "checking": 0}
    assert httpx.get(f"{token_server}/metrics", headers=good).status_code == 200
    with httpx.Client(base_url=token_server) as browser_like:  # ?token= once, then the cookie it sets
        page = browser_like.get("/", params={"token": TOKEN})
        assert page.status_code == 200 and "No stream" in page.text
        assert TOKEN not in page.headers["set-cookie"] and browser_like.get("/stats").status_code == 200
    assert httpx.get(f"{token_server}/stream", headers=good).status_code == 404  # no source: nothing to stream
    upload = {"content": jpeg(), "headers": {"Content-Type": "image/jpeg"}, "timeout": 60}
    assert httpx.post(f"{token_server}/detect", **upload).status_code == 401
    upload["headers"] |= good
    assert len(httpx.post(f"{token_server}/detect", **upload).json()["faces"]) == 1


def test_large_upload_is_scaled_but_boxes_are_in_its_pixels(token_server: str) -> None:
    """Past 2048 px the pipeline sees a smaller copy; the answer must still be in the upload's own pixels."""
    image = cv2.resize(astronaut_bgr(), (2600, 2600))
    body = cv2.imencode(".jpg", image)[1].tobytes()
    r = httpx.post(f"{token_server}/detect", content=body, timeout=60,
                   headers={"Content-Type": "image/jpeg", "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and (r.json()["width"], r.json()["height"]) == (2600, 2600)
    (face,) = r.json()["faces"]
    x1, y1, x2, y2 = face["box"]
    assert 600 < (x1 + x2) / 2 < 1700 and 200 < (y1 + y2) / 2 < 1100 and x2 - x1 > 250


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp"])
def test_pixel_size_is_read_from_the_header(ext: str) -> None:
    from detector.images import header

    data = cv2.imencode(ext, cv2.resize(astronaut_bgr(), (37, 23)))[1].tobytes()
    assert header(data)[:2] == (37, 23)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.mp4").write_bytes(b"not a video" * 100)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        runs = [run_cli("serve", *args, timeout=60) for args in (
            ("--port", str(busy.getsockname()[1])), ("--source", str(tmp_path / "nope.mp4"), "--port", "0"),
            ("--source", str(tmp_path / "broken.mp4"), "--port", "0"), ("--demo", "--source", "0"))]
    for done in runs:
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: "), done.stderr
    assert "cannot listen" in runs[0].stderr and "no such file" in runs[1].stderr


def test_sigint_with_a_viewer_connected_exits_cleanly(tmp_path: Path) -> None:
    """A still-image source, one /stream client mid-read: Ctrl-C still ends the server at once, with status 130."""
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(jpeg())
    proc, base = start_server(["--source", str(photo)], tmp_path / "log")
    try:
        with httpx.stream("GET", f"{base}/stream", timeout=30) as r:
            assert r.headers["content-type"].startswith("multipart/x-mixed-replace")
            first = next(r.iter_bytes())
            assert b"--frame" in first
            code = stop_server(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = (tmp_path / "log").read_text()
    assert code == 130 and "Traceback" not in log, log
