"""A fresh machine: the built wheel installs the detector and the service, without TensorFlow, into a new
virtualenv, and runs from a folder that is not the checkout (its nets and page come as package data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import pytest
from conftest import ROOT, free_port

pytestmark = pytest.mark.slow

HEAVY = ("tensorflow", "keras", "tf2onnx", "mtcnn")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv holding only the wheel and what it declares (pinned by constraints.txt); its bin folder."""
    tmp = tmp_path_factory.mktemp("install")
    wheels = tmp / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("mask_detector-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"),
                           str(wheel)], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr
    return venv / "bin"


def clean_env() -> dict[str, str]:
    """The environment without anything that would let the checkout's code in."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def test_the_wheel_runs_the_demo_from_any_folder_without_tensorflow(installed: Path, tmp_path: Path) -> None:
    result = subprocess.run([str(installed / "maskdet"), "--demo", "--no-window", "--json", "-"], cwd=tmp_path,
                            env=clean_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) > 50 and all(len(r["faces"]) == 2 for r in records[5:])
    found = subprocess.run([str(installed / "python"), "-c",
                            f"import importlib.util as u; print([m for m in {HEAVY!r} if u.find_spec(m)])"],
                           cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert found.stdout.strip() == "[]", f"the detector's install pulled in {found.stdout}"


def test_the_reference_finder_says_what_to_install(installed: Path, tmp_path: Path) -> None:
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), cv2.imread(str(ROOT / "models" / "augmentation.png")))
    result = subprocess.run([str(installed / "maskdet"), "--finder", "reference", "--source", str(photo), "--no-window"],
                            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: ") and "[train]" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_installed_service_serves_its_page(installed: Path, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([str(installed / "maskdet"), "serve", "--port", str(port)], cwd=tmp_path, env=clean_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, page = time.monotonic() + 120, None
        while page is None and time.monotonic() < deadline:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
            except httpx.TransportError:
                time.sleep(0.5)
        assert page is not None and page.status_code == 200 and 'id="view"' in page.text
    finally:
        proc.terminate()
        proc.wait(60)
