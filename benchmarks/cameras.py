"""``python benchmarks/cameras.py``: how many cameras one machine judges in real time.

Runs the service's own camera workers (``detector.service.workers.CameraWorker``,
each with its frame loop and tracker, sharing one loaded pipeline) on real clips
played at their real pace and capped as a site file caps them, for a fixed time,
and measures each judged frame's latency: when it was written minus when the
camera showed it (the clip's start plus the frame's time). A machine that keeps
up holds that latency flat; one that falls behind sees it grow (a backlog). The
reference is one camera alone on the same clip, in the same run: the table gives
each layout's frame rate per camera as a share of that. A worker too late for a
frame drops it, as a live camera's newest-frame reader would, so an overloaded
layout shows as dropped frames and a lower frame rate, not as a lag that never ends.

    python benchmarks/cameras.py                    # the issue's layouts: 4 x 640x480 @ 10, 2 x 720p @ 15
    python benchmarks/cameras.py --seconds 20 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

VIDEOS = ROOT.parent / "shared" / "videos"
LAYOUTS = {  # name: (clips, fps cap, cameras)
    "640x480 @ 10": ("vga", 10.0, (1, 4, 5, 6)),
    "720p @ 15": ("hd", 15.0, (1, 2, 3)),
}


@dataclass
class Probe:
    """Latency of every judged frame of one camera: written minus shown, where a clip's frame is shown
    at the moment its pass began plus the frame's time (the pace a camera would give it)."""

    latencies: list[float] = field(default_factory=list)
    pass_start: float = 0.0

    def read(self, frame) -> None:
        if frame.index == 0 or not self.pass_start:  # the clip starts (again)
            self.pass_start = time.monotonic() - frame.time

    def judged(self, frame) -> None:
        self.latencies.append(time.monotonic() - (self.pass_start + frame.time))


class ProbedSource:
    """A source whose frames are timed as they are read; everything else is the source's own."""

    def __init__(self, source, probe: Probe) -> None:
        self._source, self._probe = source, probe

    def __getattr__(self, name: str):
        return getattr(self._source, name)

    def __iter__(self):
        for frame in self._source:
            self._probe.read(frame)
            yield frame


def probed_view(view, probe: Probe):
    """The worker's own sink, with every write timed."""
    write = view.write

    def timed(frame, annotated) -> None:
        write(frame, annotated)
        probe.judged(frame)

    view.write = timed
    return view


def resized_clip(src: Path, dst: Path, size: tuple[int, int]) -> Path:
    """``src`` scaled to ``size``, so a layout's cameras all have its resolution."""
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.write(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    cap.release()
    out.release()
    return dst


def clips(kind: str, folder: Path) -> list[Path]:
    """Real clips for a layout, taken in turn by its cameras."""
    if kind == "vga":
        return [resized_clip(VIDEOS / "diazoniclabs_mask.mp4", folder / "diazoniclabs_640.mp4", (640, 480)),
                resized_clip(VIDEOS / "chunmusic_mask1.mp4", folder / "chunmusic_640.mp4", (640, 480))]
    return [VIDEOS / "hoseobjeon_mask_video.mp4", VIDEOS / "miami_street.mp4"]


def run_layout(pipeline, sources: list[Path], cap: float, seconds: float) -> dict:
    from detector.pipeline import PipelineConfig
    from detector.service.history import History
    from detector.service.metrics import Metrics
    from detector.service.view import LiveView
    from detector.service.workers import CameraWorker
    from detector.sources import open_source

    metrics, history = Metrics(), History()
    video = pipeline.with_faces(PipelineConfig.video().faces)
    probes, workers = [], []
    for i, path in enumerate(sources):
        probe = Probe()
        view = probed_view(LiveView(f"cam{i}", metrics, history, []), probe)
        source = ProbedSource(open_source(str(path)), probe)
        workers.append(CameraWorker(f"cam{i}", source, video, view, fps_cap=cap))
        probes.append(probe)
    for w in workers:
        w.start()
    time.sleep(seconds)
    for w in workers:
        w.stop()
    per_camera = []
    for probe, worker in zip(probes, workers):
        lat = np.array(probe.latencies[5:]) * 1000  # the first frames load caches
        third = max(1, len(lat) // 3)
        per_camera.append({"frames": len(probe.latencies), "fps": len(probe.latencies) / seconds,
                           "dropped": worker.dropped,
                           "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
                           "p95_ms": float(np.percentile(lat, 95)) if len(lat) else None,
                           "growth_ms": float(lat[-third:].mean() - lat[:third].mean()) if len(lat) > 3 else None})
    return {"cameras": len(sources), "cap": cap, "per_camera": per_camera,
            "fps_min": min(c["fps"] for c in per_camera),
            "p95_ms_max": max(c["p95_ms"] or 0 for c in per_camera),
            "growth_ms_max": max(c["growth_ms"] or 0 for c in per_camera)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=30.0, help="time per layout (default: 30)")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    if not VIDEOS.is_dir():
        print(f"error: {VIDEOS} is missing (the shared clips)", file=sys.stderr)
        return 2
    from detector.pipeline import Pipeline

    pipeline = Pipeline()
    results = {"machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores",
               "seconds": args.seconds, "layouts": {}}
    with tempfile.TemporaryDirectory() as folder:
        for name, (kind, cap, counts) in LAYOUTS.items():
            sources = clips(kind, Path(folder))
            rows = []
            for n in counts:
                row = run_layout(pipeline, [sources[i % len(sources)] for i in range(n)], cap, args.seconds)
                rows.append(row)
                alone = rows[0]["fps_min"]
                print(f"{name}: {n} camera(s): fps per camera >= {row['fps_min']:.1f} ({row['fps_min'] / alone:.2f} "
                      f"of one alone), p95 latency <= {row['p95_ms_max']:.0f} ms, "
                      f"latency growth <= {row['growth_ms_max']:.0f} ms", flush=True)
            results["layouts"][name] = rows
    table = ["| layout | cameras | FPS per camera (min) | share of one alone | p95 latency (max) | latency growth |",
             "|---|---|---|---|---|---|"]
    for name, rows in results["layouts"].items():
        for row in rows:
            table.append(f"| {name} | {row['cameras']} | {row['fps_min']:.1f} | {row['fps_min'] / rows[0]['fps_min']:.2f} "
                         f"| {row['p95_ms_max']:.0f} ms | {row['growth_ms_max']:+.0f} ms |")
    print("\n".join(table))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
