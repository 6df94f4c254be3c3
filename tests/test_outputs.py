"""Nothing the user had is lost: outputs never write over inputs or each other, files appear whole or not at all,
and a failed write, a closed pipe or an unreadable input is one clear line, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT, count_frames, png_declaring, run_cli


def one_error(result: subprocess.CompletedProcess, expected: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr


def make_inputs(tmp: Path, portraits: dict) -> None:
    """A photo, a folder holding a photo, a short clip, and links to the photo."""
    cv2.imwrite(str(tmp / "p.jpg"), portraits["worn"])
    (tmp / "one").mkdir()
    cv2.imwrite(str(tmp / "one" / "a.jpg"), portraits["none"])
    writer = cv2.VideoWriter(str(tmp / "j.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (256, 256))
    for i in range(5):
        writer.write(cv2.resize(np.roll(portraits["worn"], i * 4, axis=1), (256, 256)))
    writer.release()
    (tmp / "out").mkdir()  # an output folder that already exists
    (tmp / "link.jpg").symlink_to(tmp / "p.jpg")
    os.link(tmp / "p.jpg", tmp / "hard.jpg")


OVERWRITES = {
    "json over the photo": (["--source", "p.jpg", "--json", "p.jpg"], "would write over the source"),
    "json over the video": (["--source", "j.mp4", "--json", "j.mp4"], "would write over the source"),
    "image over a photo of the folder": (["--source", "one", "--output", "one/a.jpg"], "would write over the source"),
    "folder sink onto the photo's folder": (["--source", "one/a.jpg", "--output", "one"], "would write over the source"),
    "video and json on one file": (["--source", "j.mp4", "--output", "o.mp4", "--json", "o.mp4"], "would both write"),
    "folder sink and json on one file": (["--source", "one", "--output", "out", "--json", "out/a.jpg"], "would both write"),
    "json through a symlink": (["--source", "p.jpg", "--json", "link.jpg"], "would write over the source"),
    "json onto a hard link": (["--source", "p.jpg", "--json", "hard.jpg"], "would write over the source"),
}


@pytest.mark.parametrize("case", list(OVERWRITES))
def test_outputs_never_write_over_inputs_or_each_other(case, portraits, tmp_path):
    make_inputs(tmp_path, portraits)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    args, message = OVERWRITES[case]
    result = subprocess.run([sys.executable, "-m", "detector", *args, "--no-window", "--quiet"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    one_error(result, message)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before, "nothing was touched"


def test_a_killed_run_leaves_the_old_output_whole(demo_clip, tmp_path):
    """Outputs are written under a temporary name and renamed when complete: a run killed outright (SIGKILL,
    no chance to clean up) leaves the previous results where they were, and its unfinished file hidden beside them."""
    out = tmp_path / "results.jsonl"
    out.write_text('{"old": true}\n')
    proc = subprocess.Popen([sys.executable, "-m", "detector", "--source", str(demo_clip), "--no-window", "--quiet",
                             "--json", str(out), "--detect-every", "1"], cwd=ROOT, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(len(p.read_text().splitlines()) >= 5 for p in tmp_path.glob(".results.*")):
        time.sleep(0.1)
    proc.kill()
    proc.wait(30)
    assert out.read_text() == '{"old": true}\n'
    (part,) = tmp_path.glob(".results.*.part.jsonl")
    assert len(part.read_text().splitlines()) >= 5


def test_write_failures_are_one_line(portraits, tmp_path):
    cv2.imwrite(str(tmp_path / "p.jpg"), portraits["worn"])
    full = run_cli("--source", str(tmp_path / "p.jpg"), "--no-window", "--quiet", "--json", "/dev/full")
    assert full.returncode == 2
    one_error(full, "No space left on device")
    if os.geteuid() == 0:  # root may write anywhere a mode allows: /sys refuses new folders to everyone
        if not Path("/sys/kernel").is_dir():
            pytest.skip("no /sys to find an unwritable folder in, as root")
        locked = Path("/sys/kernel")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
    denied = run_cli("--source", str(tmp_path / "p.jpg"), "--no-window", "--quiet", "--output", str(locked / "new" / ""))
    assert denied.returncode == 2
    one_error(denied, str(locked))


def test_closed_standard_output_ends_quietly_and_finishes_the_video(demo_clip, tmp_path):
    """``--json - | head -1``: the reader goes away; the run stops without a word, the video is finalized."""
    video = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "detector", "--source", str(demo_clip), "--no-window", "--quiet",
                             "--json", "-", "--output", str(video)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(120) == 141
    assert json.loads(first)["frame"] == 0
    assert stderr == "", stderr
    assert 1 <= count_frames(video) < count_frames(demo_clip)


def test_unreadable_photos_are_counted_and_fail_the_run(portraits, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    only_bad = run_cli("--source", str(folder), "--no-window", "--quiet", "--json", str(tmp_path / "a.jsonl"))
    assert only_bad.returncode == 2
    one_error(only_bad, "none of the 3 images")
    cv2.imwrite(str(folder / "ok.jpg"), portraits["worn"])
    some_bad = run_cli("--source", str(folder), "--no-window", "--quiet", "--json", str(tmp_path / "b.jsonl"))
    assert some_bad.returncode == 2
    one_error(some_bad, "3 of 4 images")
    (record,) = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert record["source"].endswith("ok.jpg") and record["faces"][0]["label"] == "mask"


def test_a_video_damaged_in_the_middle_is_read_past_and_reported(portraits, tmp_path):
    clip = tmp_path / "damaged.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 24, (256, 256))
    small = cv2.resize(portraits["worn"], (256, 256))
    for i in range(234):
        writer.write(np.roll(small, i * 3, axis=1))
    writer.release()
    data = bytearray(clip.read_bytes())
    start, end = len(data) * 25 // 100, len(data) * 60 // 100
    data[start:end] = bytes(end - start)
    clip.write_bytes(bytes(data))
    out = tmp_path / "damaged.jsonl"
    result = run_cli("--source", str(clip), "--no-window", "--quiet", "--json", str(out))
    assert result.returncode == 2
    one_error(result, "of 234 frames")
    lost = int(result.stderr.split("error: ")[1].split(" of ")[0])
    frames = [json.loads(line)["frame"] for line in out.read_text().splitlines()]
    assert lost > 0 and len(frames) == 234 - lost
    assert max(frames) > 200, "frames after the damaged stretch are read too"


def test_a_decompression_bomb_is_refused_unread(tmp_path):
    """A PNG declaring 30000 x 30000 pixels is refused from its header, never decoded (7.3 GB before)."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(30000, 30000))
    result = run_cli("--source", str(bomb), "--no-window", "--json", "-")
    assert result.returncode == 2 and result.stdout == ""
    one_error(result, "image too large")


def test_a_large_photo_is_judged_small_and_answered_in_its_own_pixels(portraits, tmp_path):
    big = tmp_path / "big.jpg"
    cv2.imwrite(str(big), cv2.resize(portraits["worn"], (5000, 5000), interpolation=cv2.INTER_CUBIC))
    result = run_cli("--source", str(big), "--no-window", "--quiet", "--json", "-", "--output", str(tmp_path / "o.jpg"))
    assert result.returncode == 0, result.stderr
    faces = json.loads(result.stdout)["faces"]
    face = max(faces, key=lambda f: f["box"][2] - f["box"][0])  # her face (an upscale can box the badge too)
    x1, y1, x2, y2 = face["box"]
    assert face["label"] == "mask"
    assert 1500 < (x1 + x2) / 2 < 2700 and 400 < (y1 + y2) / 2 < 1800 and x2 - x1 > 600, face["box"]
    assert max(cv2.imread(str(tmp_path / "o.jpg")).shape) <= 3840


def test_a_missing_camera_is_one_line_without_opencv_noise():
    result = run_cli("--source", "7", "--no-window")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: no camera at index 7", result.stderr


def test_stop_signals_finish_every_output(demo_clip, tmp_path):
    """SIGINT, SIGTERM and SIGHUP each end the run after the frame in hand: the video and the JSON hold the
    same frames, both in place, and the status is 128 + the signal."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        out, log = tmp_path / f"{sig.name}.mp4", tmp_path / f"{sig.name}.jsonl"
        proc = subprocess.Popen([sys.executable, "-m", "detector", "--source", str(demo_clip), "--no-window",
                                 "--output", str(out), "--json", str(log), "--detect-every", "1"],
                                cwd=ROOT, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(len(p.read_text().splitlines()) >= 10
                                                      for p in tmp_path.glob(f".{sig.name}.*.jsonl")):
            time.sleep(0.1)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 128 + sig, (sig, stderr)
        assert "Traceback" not in stderr and "stopped early" in stderr
        written = len(log.read_text().splitlines())
        assert 10 <= written < count_frames(demo_clip)
        assert count_frames(out) == written, "every processed frame is in the finished video"
        assert not list(tmp_path.glob(".*.part.*")), "no unfinished file is left"
