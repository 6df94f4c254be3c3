"""``python -m detector`` end to end: real inputs, the real pipeline, a real process."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import count_frames, run_cli

from detector.types import LABELS

FACE_KEYS = {"box": list, "label": str, "score": float, "nose_visible": bool, "mouth_visible": bool, "settled": bool}
"""The per-face keys of the --json contract and their types; ``track`` (int or null) and ``quality`` (a number
in [0, 1], or null for a face not judged on that frame) are checked apart."""


def check_record(record: dict) -> None:
    """One --json line against the contract."""
    assert set(record) == {"source", "frame", "time", "faces"}
    assert isinstance(record["source"], str) and isinstance(record["frame"], int)
    assert isinstance(record["time"], float | int) and isinstance(record["faces"], list)
    for face in record["faces"]:
        assert set(face) == set(FACE_KEYS) | {"track", "quality"}
        assert face["quality"] is None or 0.0 <= face["quality"] <= 1.0
        for key, kind in FACE_KEYS.items():
            assert isinstance(face[key], kind), (key, face)
        assert len(face["box"]) == 4 and face["box"][0] < face["box"][2] and face["box"][1] < face["box"][3]
        assert face["label"] in LABELS and 0.0 <= face["score"] <= 1.0
        assert face["track"] is None or isinstance(face["track"], int)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_json_schema_on_clip(demo_clip, tmp_path):
    out = tmp_path / "out.jsonl"
    result = run_cli("--source", str(demo_clip), "--no-window", "--json", str(out))
    assert result.returncode == 0, result.stderr
    records = read_jsonl(out)
    assert len(records) == count_frames(demo_clip)
    for i, record in enumerate(records):
        check_record(record)
        assert record["frame"] == i
    with_two = sum(len(r["faces"]) == 2 for r in records)
    assert with_two >= 0.9 * len(records), "the demo shows two faces in every frame"
    assert all(f["track"] is not None for r in records for f in r["faces"])
    assert "compliance" in result.stderr and "average FPS" in result.stderr


def test_json_to_stdout_on_folder(portraits, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, state in enumerate(("worn", "none", "on_chin")):
        cv2.imwrite(str(folder / f"{i}_{state}.jpg"), portraits[state])
    cv2.imwrite(str(folder / "3_empty.png"), np.full((120, 160, 3), 90, np.uint8))
    (folder / "notes.txt").write_text("not an image, ignored")
    result = run_cli("--source", str(folder), "--no-window", "--json", "-", "--quiet")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(r["source"]).name for r in records] == ["0_worn.jpg", "1_none.jpg", "2_on_chin.jpg", "3_empty.png"]
    for r in records:
        check_record(r)
    assert [len(r["faces"]) for r in records] == [1, 1, 1, 0]
    assert all(f["track"] is None for r in records for f in r["faces"]), "photos are judged one by one"
    labels = [r["faces"][0]["label"] for r in records[:3]]
    assert labels == ["mask", "no_mask", "incorrect"]
    exact = run_cli("--source", str(folder), "--no-window", "--json", "-", "--quiet", "--float")
    assert exact.returncode == 0, exact.stderr
    assert [[f["label"] for f in json.loads(line)["faces"]] for line in exact.stdout.splitlines()] == [
        ["mask"], ["no_mask"], ["incorrect"], []], "the float nets the int8 ones came from agree"


def test_photos_are_written_out_annotated_as_an_image_or_a_folder(portraits, tmp_path):
    """One photo to one image file; a folder of photos to a folder of annotated photos of the same
    names and sizes, with the verdict drawn on them; the photos themselves are left as they were."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for state in ("worn", "none"):
        cv2.imwrite(str(folder / f"{state}.png"), portraits[state])
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    one = tmp_path / "worn_annotated.jpg"
    result = run_cli("--source", str(folder / "worn.png"), "--no-window", "--quiet", "--output", str(one))
    assert result.returncode == 0, result.stderr
    drawn = cv2.imread(str(one))
    assert drawn.shape == portraits["worn"].shape
    assert np.abs(drawn.astype(int) - portraits["worn"]).max() > 100, "the box and label are drawn on it"

    out = tmp_path / "annotated"
    result = run_cli("--source", str(folder), "--no-window", "--quiet", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["none.png", "worn.png"]
    for name in ("none.png", "worn.png"):
        assert cv2.imread(str(out / name)).shape == portraits[name[:-4]].shape
    assert not np.array_equal(cv2.imread(str(out / "none.png")), portraits["none"])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


BAD_INPUTS: dict[str, tuple[list[str], str]] = {
    "missing file": (["--source", "{tmp}/nope.mp4"], "no such file"),
    "not a video": (["--source", "{tmp}/fake.mp4"], "not a video"),
    "broken image": (["--source", "{tmp}/fake.jpg"], "not a readable image"),
    "empty folder": (["--source", "{tmp}/empty"], "no images in folder"),
    "zero-byte image": (["--source", "{tmp}/zero.jpg"], "empty file"),
    "no camera": (["--source", "7"], "no camera at index 7"),
    "bad output type": (["--source", "{tmp}/ok.png", "--output", "{tmp}/x.xyz"], "unsupported output type"),
    "image out of a video": (["--source", "{tmp}/clip.avi", "--output", "{tmp}/x.jpg"], "holds one picture"),
    "output over the photo": (["--source", "{tmp}/ok.png", "--output", "{tmp}/ok.png"], "write over the source"),
    "output over the photos": (["--source", "{tmp}/two", "--output", "{tmp}/two"], "write over the source"),
    "output folder's parent missing": (["--source", "{tmp}/ok.png", "--output", "{tmp}/no/out"], "folder does not exist"),
    "unwritable json": (["--source", "{tmp}/ok.png", "--json", "{tmp}/no/x.jsonl"], "cannot write JSON"),
    "tiny search side": (["--source", "{tmp}/ok.png", "--search-side", "10"], "--search-side: must be at least 64"),
    "no confirmation": (["--source", "{tmp}/ok.png", "--confirm-frames", "0"], "--confirm-frames: must be at least 1"),
}
"""Case -> (arguments, with {tmp} for the test's folder; what the one error line must say)."""


def make_bad_inputs(tmp_path: Path) -> None:
    """The broken files ``BAD_INPUTS`` points at, and one good image."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "fake.mp4").write_text("this is not a video")
    (tmp_path / "fake.jpg").write_bytes(b"\xff\xd8 truncated")
    cv2.imwrite(str(tmp_path / "ok.png"), np.full((60, 80, 3), 128, np.uint8))
    (tmp_path / "two").mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / "two" / name), np.full((60, 80, 3), 128, np.uint8))
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (80, 60))
    for _ in range(3):
        writer.write(np.full((60, 80, 3), 128, np.uint8))
    writer.release()


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_one_line_error(case, tmp_path):
    make_bad_inputs(tmp_path)
    template, message = BAD_INPUTS[case]
    args = [a.format(tmp=tmp_path) for a in template]
    result = run_cli(*args, "--no-window")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr


def test_headless_says_so_and_runs(portraits, tmp_path):
    image = tmp_path / "face.jpg"
    cv2.imwrite(str(image), portraits["worn"])
    result = run_cli("--source", str(image), "--json", "-", "--quiet", env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert result.returncode == 0, result.stderr
    assert "no display" in result.stderr and "headless" in result.stderr
    assert json.loads(result.stdout)["faces"][0]["label"] == "mask"


def test_demo_runs_without_camera_or_display(tmp_path):
    """The demo needs no camera, display or data, and takes its temp clip away when done."""
    out, temp = tmp_path / "demo.jsonl", tmp_path / "tmp"
    temp.mkdir()
    result = run_cli("--demo", "--no-window", "--json", str(out), env={"TMPDIR": str(temp)})
    assert result.returncode == 0, result.stderr
    records = read_jsonl(out)
    assert len(records) > 50 and all(len(r["faces"]) == 2 for r in records[5:])
    assert not any(temp.rglob("*.mp4")), "the demo clip's temp folder is removed after the run"


def test_window_on_a_real_display(portraits, tmp_path):
    """Under a real X server (Xvfb) the live window opens: no headless fallback, clean exit."""
    import shutil

    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb): no X display to open a window on")
    number = 90 + os.getpid() % 50
    while Path(f"/tmp/.X11-unix/X{number}").exists():  # a display already taken
        number += 1
    display = f":{number}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "800x600x24"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not Path(f"/tmp/.X11-unix/X{number}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # the server is ready once its socket exists
        image = tmp_path / "face.jpg"
        cv2.imwrite(str(image), portraits["on_chin"])
        result = run_cli("--source", str(image), "--json", "-", "--quiet", env={"DISPLAY": display})
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    assert "headless" not in result.stderr and "cannot open a window" not in result.stderr
    assert json.loads(result.stdout)["faces"][0]["label"] == "incorrect"
