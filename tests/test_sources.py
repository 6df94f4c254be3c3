"""Sources: files end, folders are sorted, live streams that drop are reopened."""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np
import pytest
from mjpeg_server import MJPEGServer

from detector.sources import SourceError, open_source


def test_folder_is_sorted_and_skips_broken_files(tmp_path):
    for name in ("b.png", "a.jpg", "c.png"):
        cv2.imwrite(str(tmp_path / name), np.full((20, 30, 3), 7, np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"nope")
    source = open_source(str(tmp_path))
    names = [f.source.rsplit("/", 1)[-1] for f in source]
    assert names == ["a.jpg", "b.png", "c.png"]
    assert source.length == 4 and not source.live


def test_video_file_ends(tmp_path):
    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(7):
        writer.write(np.full((48, 64, 3), i * 30, np.uint8))
    writer.release()
    frames = list(open_source(str(path)))
    assert [f.index for f in frames] == list(range(7))
    assert frames[-1].time == pytest.approx(0.6)


def test_unreachable_stream_is_a_clear_error():
    with pytest.raises(SourceError, match="cannot open stream"):
        open_source("http://127.0.0.1:9/none.mjpg")


def read_in_background(source, frames: list, stop: threading.Event) -> threading.Thread:
    def loop() -> None:
        for _frame in source:
            frames.append(time.monotonic())
            if stop.is_set():
                return

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_cut_stream_is_reopened(caplog):
    """A real MJPEG server on loopback is cut mid-run and comes back: frames resume."""
    server = MJPEGServer(np.full((48, 64, 3), 90, np.uint8)).start()
    source = open_source(server.url, reconnect_delays=(0.3, 0.5, 1.0, 1.0, 2.0))
    frames, stop = [], threading.Event()
    with caplog.at_level(logging.WARNING, logger="detector.sources"):
        thread = read_in_background(source, frames, stop)
        deadline = time.monotonic() + 10
        while len(frames) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.stop()
        time.sleep(0.6)
        cut_at = len(frames)
        server.start()  # same port
        deadline = time.monotonic() + 15
        while len(frames) < cut_at + 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        thread.join(timeout=5)
        server.stop()
    assert cut_at >= 10
    assert len(frames) >= cut_at + 10, "frames resume after the stream comes back"
    text = caplog.text
    assert "lost; reopening" in text and "reopened" in text


def test_stream_that_never_returns_ends_the_run(caplog):
    server = MJPEGServer(np.full((48, 64, 3), 90, np.uint8)).start()
    source = open_source(server.url, reconnect_delays=(0.2, 0.2))
    frames, stop = [], threading.Event()
    with caplog.at_level(logging.WARNING, logger="detector.sources"):
        thread = read_in_background(source, frames, stop)
        time.sleep(1.0)
        server.stop()
        thread.join(timeout=15)
    assert not thread.is_alive(), "the run ends once the retries are spent"
    assert "did not come back" in caplog.text
