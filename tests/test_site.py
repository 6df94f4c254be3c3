"""A site from one file: cameras, people counted once, history kept across a restart, config mistakes.

Real servers on loopback, the real pipeline, real SQLite; the clips are the
embedded demo clip (two painted astronauts whose masks go through every state).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, start_server, stop_server, wait_for

from detector.loop import FrameLoop
from detector.pipeline import PipelineConfig
from detector.sources import open_source
from detector.types import LABELS


class Records:
    """A frame-loop sink that keeps the people handed to it."""

    def __init__(self) -> None:
        self.got = []

    def write(self, frame, annotated) -> None:
        pass

    def close(self) -> None:
        pass

    def people(self, people) -> None:
        self.got += people


def test_one_record_per_person_with_the_verdict_the_clip_ends_on(pipeline, demo_clip: Path) -> None:
    """The demo clip shows each astronaut worn, under the nose, on the chin and bare (in two orders): one
    record per face, its verdict the state it ends in, its frames shared as the states were."""
    video = pipeline.with_faces(PipelineConfig.video().faces)
    source, records = open_source(str(demo_clip)), Records()
    loop = FrameLoop(video, source.stills, source.fps, [records])
    for frame in source:
        loop.step(frame)
    loop.hand_over(loop.ledger.finish())
    people = records.got
    assert len(people) == 2, [p.to_json() for p in people]
    assert sorted(p.verdict for p in people) == ["incorrect", "no_mask"]  # left ends bare, right on the chin
    for person in people:
        shares = person.shares
        assert 0.35 <= shares["incorrect"] <= 0.65 and 0.15 <= shares["mask"] <= 0.35, shares
        assert 0.15 <= shares["no_mask"] <= 0.35 and person.best_quality >= 0.5
        assert person.last_seen > person.first_seen


def mirrored(clip: Path, folder: Path) -> Path:
    """The clip flipped left to right: a second camera's own footage (its people swap sides)."""
    import cv2

    out = folder / "mirrored.mp4"
    if not out.exists():
        cap = cv2.VideoCapture(str(clip))
        fps, size = cap.get(cv2.CAP_PROP_FPS), (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            writer.write(cv2.flip(frame, 1))
        cap.release()
        writer.release()
    return out


def site_file(folder: Path, clip: Path, history: Path, extra: str = "") -> Path:
    path = folder / "site.toml"
    path.write_text(f'node = "test-node"\n\n[[camera]]\nname = "front"\nsource = "{clip}"\n\n'
                    f'[[camera]]\nname = "back"\nsource = "{mirrored(clip, folder)}"\nfps = 10\nmin_face = 30\n\n'
                    f'[[camera]]\nname = "loft"\nsource = "{clip}"\nenabled = false\n\n'
                    f'[history]\npath = "{history.name}"\nretention_days = 7\n{extra}')
    return path


def test_two_cameras_count_people_and_keep_them_across_a_restart(demo_clip: Path, tmp_path: Path) -> None:
    config = site_file(tmp_path, demo_clip, tmp_path / "people.db")
    proc, base = start_server(["--config", str(config)], tmp_path / "serve.log")
    try:
        cameras = httpx.get(f"{base}/api/cameras").json()["cameras"]
        assert [c["name"] for c in cameras] == ["front", "back"]  # the loft is not enabled

        def both_counted():
            cams = httpx.get(f"{base}/api/cameras").json()["cameras"]
            return cams if all(sum(c["today"]["people"].values()) >= 2 for c in cams) else None

        cameras = wait_for(both_counted)
        assert all(c["status"] == "running" and c["fps"] > 0 for c in cameras)
        people = httpx.get(f"{base}/api/people", params={"camera": "back"}).json()["people"]
        assert people and {p["camera"] for p in people} == {"back"}
        assert {p["verdict"] for p in people} <= {*LABELS, "checking"} and "incorrect" in {p["verdict"] for p in people}
        only = httpx.get(f"{base}/api/people", params={"label": "no_mask"}).json()["people"]
        assert only and {p["verdict"] for p in only} == {"no_mask"}
        hours = httpx.get(f"{base}/api/compliance", params={"bucket": "hour"}).json()["buckets"]
        assert hours and sum(sum(b["people"].values()) for b in hours) >= 4
        assert httpx.get(f"{base}/api/people.csv").text.startswith("camera,track,first_seen")
        assert httpx.get(f"{base}/api/people", params={"camera": "side"}).status_code == 404
        assert httpx.get(f"{base}/api/people", params={"label": "maybe"}).status_code == 400
        with httpx.stream("GET", f"{base}/cameras/back/stream", timeout=30) as r:
            assert r.status_code == 200 and b"\xff\xd8" in next(r.iter_bytes())
        assert httpx.get(f"{base}/cameras/side/stream").status_code == 404
        metrics = httpx.get(f"{base}/metrics").text
        assert 'maskdet_frames_processed_total{camera="back"}' in metrics and 'camera="front"' in metrics
        stats = httpx.get(f"{base}/stats").json()
        assert stats["cameras"] == ["front", "back"] and stats["compliance"] is not None
    finally:
        assert stop_server(proc) == 130
    with sqlite3.connect(tmp_path / "people.db") as db:
        stored = db.execute("SELECT COUNT(*) FROM people").fetchone()[0]
    assert stored >= 4
    restarted = time.time()
    proc, base = start_server(["--config", str(config)], tmp_path / "serve2.log")
    try:
        kept = httpx.get(f"{base}/api/people", params={"limit": 100000}).json()["people"]
        assert sum(p["last_seen"] < restarted for p in kept) == stored  # every record from before, none lost
        today = sum(sum(c["today"]["people"].values()) for c in httpx.get(f"{base}/api/cameras").json()["cameras"])
        assert today >= stored
    finally:
        stop_server(proc)


BAD_SITES = {
    "unknown key": ('[[camera]]\nname = "a"\nsource = "x.mp4"\ncolour = "red"\n', ":4: unknown key 'colour'"),
    "duplicate name": ('[[camera]]\nname = "a"\nsource = "x.mp4"\n\n[[camera]]\nname = "a"\nsource = "y.mp4"\n',
                       ":6: camera name 'a' is used twice"),
    "source type": ('[[camera]]\nname = "a"\nsource = 2.5\n', ":3: source must be"),
    "no camera": ('node = "n"\n', "no [[camera]]"),
    "not toml": ('[[camera]\nname = "a"\n', "not valid TOML"),
    "bad name": ('[[camera]]\nname = "front door"\nsource = "x.mp4"\n', ":2: name must be"),
    "unknown table": ('[[camera]]\nname = "a"\nsource = "x.mp4"\n[histroy]\npath = "a.db"\n', ":4: unknown key 'histroy'"),
    "wrong type": ('[[camera]]\nname = "a"\nsource = "x.mp4"\nfps = "fast"\n', ":4: fps must be"),
    "missing file": ('[[camera]]\nname = "a"\nsource = "/nonexistent/x.mp4"\n', "camera a:"),
}


@pytest.mark.parametrize("case", list(BAD_SITES))
def test_a_config_mistake_is_one_line_naming_file_and_line(case: str, tmp_path: Path) -> None:
    text, said = BAD_SITES[case]
    path = tmp_path / "site.toml"
    path.write_text(text)
    result = subprocess.run([sys.executable, "-m", "detector", "serve", "--config", str(path), "--port", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert said in lines[0] and (str(path) in lines[0] or case == "missing file"), lines[0]


class Receiver:
    """A real HTTP server on loopback that takes webhook POSTs; its first answer is a 500 (a retry must follow)."""

    def __init__(self) -> None:
        import http.server
        import json
        import threading

        self.posts: list[dict] = []
        self.failed = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not outer.failed:
                    outer.failed += 1
                    self.send_response(500)
                else:
                    outer.posts.append(body)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_webhook_gets_the_people_it_asked_for_and_a_failed_post_is_retried(demo_clip: Path, tmp_path: Path) -> None:
    receiver = Receiver()
    extra = f'\n[webhook]\nurl = "{receiver.url}"\nlabels = ["incorrect", "no_mask"]\nretries = 2\n'
    config = site_file(tmp_path, demo_clip, tmp_path / "people.db", extra)
    proc, _ = start_server(["--config", str(config)], tmp_path / "serve.log")
    try:
        wait_for(lambda: any(p["event"] == "left" for p in receiver.posts))
    finally:
        stop_server(proc)
    assert receiver.failed == 1
    assert {p["label"] for p in receiver.posts} <= {"incorrect", "no_mask"}
    left = [p for p in receiver.posts if p["event"] == "left"]
    assert left and all(p["node"] == "test-node" and "shares" in p and "snapshot" not in p for p in left)


def test_blur_faces_leaves_no_face_recognisable_in_the_stream(pipeline, portraits) -> None:
    """``[privacy] blur_faces``: the JPEG a viewer gets has every face box blurred; the rest is untouched."""
    import cv2
    import numpy as np

    from detector.service.history import History
    from detector.service.metrics import Metrics
    from detector.service.view import LiveView
    from detector.types import Frame

    image = portraits["none"]
    faces = pipeline.analyse(image)
    assert faces
    x1, y1, x2, y2 = (int(v) for v in faces[0].box)

    def sharpness(jpeg: bytes, box: tuple[int, int, int, int]) -> float:
        gray = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
        a, b, c, d = box
        return float(cv2.Laplacian(gray[b:d, a:c], cv2.CV_64F).var())

    shown = {}
    for blur in (False, True):
        view = LiveView("door", Metrics(), History(), [], blur=blur)
        view.write(Frame(image=image, index=0, time=0.0, source="test", faces=faces), image)
        shown[blur] = view.jpeg
    inner = (x1 + 4, y1 + 4, x2 - 4, y2 - 4)
    assert sharpness(shown[True], inner) < 0.1 * sharpness(shown[False], inner)
    corner = (0, 0, 60, 60)  # away from the face: as it was
    assert abs(sharpness(shown[True], corner) - sharpness(shown[False], corner)) < 0.05 * sharpness(shown[False], corner) + 1


def test_no_snapshots_keeps_no_face_picture(pipeline, demo_clip: Path) -> None:
    """``[privacy] snapshots = false``: no person record holds a crop, even with MQTT asking for snapshots."""
    from detector.service.app import Camera, camera_worker
    from detector.service.config import CameraConfig, MqttConfig, PrivacyConfig
    from detector.service.history import History
    from detector.service.metrics import Metrics
    from detector.service.mqtt import MqttOutput

    metrics = Metrics()
    asks = MqttOutput(MqttConfig(host="127.0.0.1", snapshot=True), "n", metrics, dict)
    for snapshots in (True, False):
        worker = camera_worker(Camera(CameraConfig("a", str(demo_clip)), open_source(str(demo_clip))), pipeline,
                               Metrics(), History(), [asks], PrivacyConfig(snapshots=snapshots))
        assert worker.keep_crops is snapshots


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)")
def test_the_page_shows_every_camera_and_the_chart(demo_clip: Path, tmp_path: Path) -> None:
    """Real Chromium on the page of a two-camera site: a stream and a caption per camera, people counted,
    the hour chart drawn; read by content (captions, bars, the streams' pixels), never compared pixel by pixel."""
    import cv2
    import numpy as np

    playwright = pytest.importorskip("playwright.sync_api")
    config = site_file(tmp_path, demo_clip, tmp_path / "people.db")
    proc, base = start_server(["--config", str(config)], tmp_path / "serve.log")
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                console: list[str] = []
                page.on("console", lambda message: console.append(message.text))
                page.goto(f"{base}/")
                wait_for(lambda: page.locator("#view figure img").count() == 2)
                wait_for(lambda: page.inner_text("#cam-front").startswith("front: running")
                         and page.inner_text("#cam-back").startswith("back: running"))
                wait_for(lambda: page.locator("#chart rect").count() > 0)
                for img in page.locator("#view figure img").all():
                    shot = cv2.imdecode(np.frombuffer(img.screenshot(), np.uint8), cv2.IMREAD_GRAYSCALE)
                    assert shot.shape[1] > 100 and shot.std() > 20, "each camera's stream is drawn"
                assert "camera(s)" in page.inner_text("#state") and page.inner_text("#state").startswith("2 ")
            finally:
                browser.close()
    finally:
        stop_server(proc)
    assert not [m for m in console if "Content Security Policy" in m], console


def test_history_keeps_people_for_the_retention_and_counts_per_bucket(tmp_path: Path) -> None:
    """Real SQLite: records older than the retention go, the rest stay; buckets count people per verdict."""
    from collections import Counter

    from detector.people import Person
    from detector.service.history import History

    now = time.time()
    history = History(str(tmp_path / "h.db"), retention_days=2)
    old = Person(1, now - 3 * 86400, now - 3 * 86400 + 5, "mask", 0.9, Counter(mask=10), 0.8, "door")
    recent = [Person(2 + i, now - 60, now - 50, verdict, 0.9, Counter({verdict: 5}), 0.7, "door")
              for i, verdict in enumerate(("mask", "mask", "no_mask", "checking"))]
    history.add([old, *recent])
    assert history.prune(now) == 1
    assert history.counts("door") == Counter(mask=2, no_mask=1, checking=1)
    (bucket,) = history.compliance("door", "day", now - 86400)
    assert bucket["people"] == {"mask": 2, "incorrect": 0, "no_mask": 1, "checking": 1} and bucket["compliance"] == 0.6667
    history.close()
    reopened = History(str(tmp_path / "h.db"), retention_days=2)  # the file keeps them
    assert sorted(p["track"] for p in reopened.people("door")) == [2, 3, 4, 5]
    assert reopened.people(label="no_mask")[0]["shares"] == {"mask": 0.0, "incorrect": 0.0, "no_mask": 1.0}


def test_a_person_missed_for_a_frame_gets_one_first_verdict(portraits) -> None:
    """A settled person whom one frame misses (still tracked) is not announced again when seen next."""
    from detector.people import PeopleLedger
    from detector.service.history import History
    from detector.service.metrics import Metrics
    from detector.service.view import LiveView
    from detector.types import Face, Frame

    image = portraits["none"]
    view, ledger = LiveView("door", Metrics(), History(), []), PeopleLedger("door")
    view.ledger = ledger
    face = Face(box=(10.0, 10.0, 60.0, 60.0), label="no_mask", label_score=0.9, track=7, settled=True, quality=0.9)
    events = []
    for i, faces in enumerate(([face], [], [face])):
        ledger.observe(faces, {7}, float(i), image)  # the tracker still holds track 7 throughout
        view.write(Frame(image=image, index=i, time=i / 10, source="test", faces=faces), image)
        events += list(view.recent)
        view.recent.clear()
    assert [(e["track"], e["old"], e["new"]) for e in events] == [(7, None, "no_mask")]
