"""``python benchmarks/fps.py``: is the default pipeline real time, and are its labels still right?

Runs, in one process and on the same frames, the pipeline ``python -m detector``
runs (its CLI defaults: VideoAnalyzer with the default video shortcuts,
drawing included) and the reference (the TensorFlow ``mtcnn`` package on every frame,
every face classified on every frame, same landmarks, classifier and smoothing).
The two alternate in blocks of frames, each with its own decoder and tracker,
so that load from other processes on a shared machine hits both alike: compare
the ratio (``speedup``), not absolute figures across runs.

Start-up (process start to the first annotated JSON line) and peak resident
memory are measured on ``python -m detector`` itself, in a subprocess, before
TensorFlow is loaded here.

    python benchmarks/fps.py                      # the demo clip: 640x480, 2 faces
    python benchmarks/fps.py --faces 4 --json out.json
    python benchmarks/fps.py --set detect_every=1  # what one lever is worth
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "benchmarks"):  # run as a script from anywhere, or loaded by path
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from bench_clips import make_clip  # noqa: E402

from detector.track import assign, iou_matrix  # noqa: E402  (light: numpy only)

Labelled = list[tuple[tuple[float, float, float, float], str | None]]
"""One frame's faces as (box, label)."""
STAGES = ("decode", "detect", "follow", "landmarks", "classify", "track", "draw", "other")


def agreement(reference: list[Labelled], fast: list[Labelled], min_iou: float = 0.5) -> tuple[float, float]:
    """(found, agreement): shares of reference faces matched one to one by a fast face with
    IoU >= ``min_iou``, and of those matched with the same label. 1.0 when the reference saw no face."""
    total = found = same = 0
    for ref, got in zip(reference, fast, strict=True):
        total += len(ref)
        iou = iou_matrix(np.array([b for b, _ in ref], float).reshape(-1, 4), np.array([b for b, _ in got], float).reshape(-1, 4))
        pairs = assign(iou, min_iou)
        found += len(pairs)
        same += sum(ref[r][1] == got[c][1] for r, c in pairs)
    return (found / total, same / total) if total else (1.0, 1.0)


@dataclass
class Run:
    """One pipeline over the clip, in passes: a fresh tracker and decoder per pass, and what it measured."""

    name: str
    pipeline: object
    clip: Path
    latencies: list[float] = field(default_factory=list)
    outputs: list[Labelled] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=lambda: {"decode": 0.0, "draw": 0.0})
    counts: dict[str, int] = field(default_factory=lambda: {"classified": 0, "fitted": 0})
    analyzer: object = None
    capture: object = None

    def rewind(self) -> None:
        """Start a new pass from the first frame, as a new run of ``python -m detector`` would."""
        import cv2

        from detector.draw import BoxAnnotator, HudAnnotator, LabelAnnotator
        from detector.video import VideoAnalyzer

        self._tally()
        self.capture = cv2.VideoCapture(str(self.clip))
        self.analyzer = VideoAnalyzer(self.pipeline, fps=self.capture.get(cv2.CAP_PROP_FPS) or None)
        self.annotators = [BoxAnnotator(), LabelAnnotator(), HudAnnotator()]

    def _tally(self) -> None:
        """Add the finished pass's counts of classified and fitted faces."""
        for key in self.counts if self.analyzer is not None else ():
            self.counts[key] += getattr(self.analyzer, key)
        self.analyzer = None

    def step(self) -> bool:
        """Decode, analyse and draw one frame, as ``detector.run`` does; False at the end of the clip."""
        from detector.draw import annotate

        start = time.perf_counter()
        ok, image = self.capture.read()
        decoded = time.perf_counter()
        if not ok:
            return False
        faces = self.analyzer(image)
        analysed = time.perf_counter()
        annotate(image, faces, self.annotators)
        end = time.perf_counter()
        self.extra["decode"] += decoded - start
        self.extra["draw"] += end - analysed
        self.latencies.append(end - start)
        self.outputs.append([(f.box, f.label) for f in faces])
        self.annotators[-1].fps = len(self.latencies) / sum(self.latencies)
        return True

    def summary(self) -> dict:
        """FPS, latency percentiles, milliseconds per frame for each stage, shares of faces fitted and classified."""
        self._tally()
        n, total, faces = len(self.latencies), sum(self.latencies), max(1, sum(len(o) for o in self.outputs))
        stages = {**self.pipeline.timings, **self.extra}
        stages["other"] = total - sum(stages.values())
        ms = np.array(self.latencies) * 1e3
        return {
            "fps": n / total, "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "ms_per_stage": {s: round(stages.get(s, 0.0) * 1e3 / n, 2) for s in STAGES},
            **{f"{k}_share": round(v / faces, 3) for k, v in self.counts.items()},
        }


def startup(clip: Path, runs: int) -> tuple[list[float], float]:
    """(seconds from process start to the first JSON line per run, peak RSS in MB) of ``python -m detector``.

    The first run goes to the end of the clip, so its peak memory covers a whole run.
    """
    firsts = []
    for i in range(runs):
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "detector", "--source", str(clip), "--no-window", "--json", "-", "--quiet"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        line = child.stdout.readline()
        firsts.append(time.perf_counter() - start)
        if not line:
            raise RuntimeError("python -m detector wrote no frame; run it by hand to see why")
        if i == 0:
            child.stdout.read()
        else:
            child.kill()
        child.wait()
    return firsts, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_alternating(runs: list[Run], frames: int, block: int, passes: int, settle: float = 0.05) -> None:
    """``passes`` times over the clip (up to ``frames`` each), the pipelines taking turns of ``block`` frames.

    ``settle`` seconds (off the clock) between turns let the last pipeline's
    spinning worker threads (TensorFlow's) go idle before the next is timed.
    """
    from tqdm import tqdm

    with tqdm(total=frames * len(runs) * passes, unit="frame", desc="alternating") as bar:
        for _ in range(passes):
            for r in runs:
                r.rewind()
            done, ended = 0, False
            while done < frames and not ended:
                n = min(block, frames - done)
                for r in runs:
                    time.sleep(settle)
                    steps = sum(1 for _ in range(n) if r.step())
                    bar.update(steps)
                    ended = ended or steps < n
                done += n
            shortest = min(len(r.latencies) for r in runs)
            for r in runs:  # decoders may disagree on a clip's last frame: keep the common ones
                del r.latencies[shortest:], r.outputs[shortest:]


def open_run(name: str, pipeline, clip: Path, warmup: int = 3) -> Run:
    """A pipeline on its own decoder, its lazy initialisations (ORT, TF graph tracing) done off the clock."""
    import cv2

    from detector.video import VideoAnalyzer

    warm = VideoAnalyzer(pipeline)
    capture = cv2.VideoCapture(str(clip))
    for _ in range(warmup):
        warm(capture.read()[1])
    capture.release()
    pipeline.timings = {}
    return Run(name, pipeline, clip)


def fast_config(overrides: list[str]):
    """The CLI's default config on video, with ``key=value`` overrides (``min_face``, ``mtcnn`` (a folder of
    nets) or a PipelineConfig field)."""
    from detector.cli import build_parser, pipeline_config
    from detector.finders import FinderConfig

    config = pipeline_config(build_parser().parse_args([]), video=True)
    for item in overrides:
        key, value = item.split("=", 1)
        if key == "mtcnn":  # a folder of candidate MTCNN nets, as training finetune_mtcnn --out writes them
            config.faces = dataclasses.replace(config.faces, model_dir=Path(value))
            continue
        value = json.loads(value)
        if key == "min_face":
            config.faces = FinderConfig(min_face_size=value)
        elif key == "search" and isinstance(value, dict):  # search={"yunet": false}
            from detector.finders.search import SearchPlan

            config.search = SearchPlan(**value)
        elif hasattr(config, key):
            setattr(config, key, value)
        else:
            raise SystemExit(f"unknown setting {key!r}")
    return config


def machine() -> dict:
    """What the figures were measured on."""
    import onnxruntime

    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    names = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
    return {"cpu": names[0] if names else platform.processor(), "cores": os.cpu_count(), "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__, "load_average": [round(v, 1) for v in os.getloadavg()]}


def measure(args: argparse.Namespace) -> dict:
    """Everything ``main`` reports, as one dict (the JSON output)."""
    import cv2

    from detector.pipeline import Pipeline, PipelineConfig

    folder = Path(tempfile.mkdtemp(prefix="fps-"))
    config = fast_config(args.set)
    pipeline = Pipeline(config)
    clip = Path(args.source) if args.source else make_clip(pipeline, args.faces, folder)
    firsts, rss_mb = startup(clip, args.startup_runs) if args.startup_runs else ([], None)
    fast = open_run("fast", pipeline, clip)
    reference = open_run("reference", Pipeline(PipelineConfig.reference()), clip)
    frames = args.frames or int(cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT)) or 10**9
    run_alternating([fast, reference], frames, args.block, args.passes)
    found, agree = agreement(reference.outputs, fast.outputs)
    mine, ref = fast.summary(), reference.summary()
    return {
        "fps": round(mine["fps"], 1), "baseline_fps": round(ref["fps"], 1), "speedup": round(mine["fps"] / ref["fps"], 2),
        "p50_ms": round(mine["p50_ms"], 1), "p95_ms": round(mine["p95_ms"], 1), "ms_per_stage": mine["ms_per_stage"],
        "agreement": round(agree, 4), "found": round(found, 4),
        "first_frame_s": round(statistics.median(firsts), 2) if firsts else None,
        "first_frame_max_s": round(max(firsts), 2) if firsts else None, "rss_mb": None if rss_mb is None else round(rss_mb),
        "frames": len(fast.latencies), "faces": None if args.source else args.faces, "passes": args.passes,
        "reference_faces": sum(len(o) for o in reference.outputs),
        "classified_share": mine["classified_share"], "fitted_share": mine["fitted_share"],
        "baseline_p95_ms": round(ref["p95_ms"], 1), "baseline_ms_per_stage": ref["ms_per_stage"],
        "config": {"min_face": config.faces.min_face_size, "detect_every": config.detect_every,
                   "refit_every": config.refit_every, "classify_every": config.classify_every},
        "source": str(clip), "machine": machine(),
    }


def table(result: dict) -> str:
    """The result as aligned ``key  value`` lines."""
    flat = lambda v: ", ".join(f"{k} {x}" for k, x in v.items()) if isinstance(v, dict) else v  # noqa: E731
    return "\n".join(f"{key:<22} {flat(value)}" for key, value in result.items())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/fps.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--source", help="a video file (default: the demo clip, built on the fly)")
    p.add_argument("--faces", type=int, choices=(0, 1, 2, 3, 4), default=2,
                   help="faces in the generated clip (default: 2, the demo clip; 0: an empty 720p scene)")
    p.add_argument("--frames", type=int, help="frames to measure (default: the whole clip)")
    p.add_argument("--block", type=int, default=8, help="frames per turn when alternating the pipelines (default: 8)")
    p.add_argument("--passes", type=int, default=1, help="times over the clip, each from a fresh start (default: 1)")
    p.add_argument("--startup-runs", type=int, default=3, help="python -m detector start-ups to time; 0 skips (default: 3)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override the fast pipeline: min_face, mtcnn=DIR or a PipelineConfig field (repeatable)")
    p.add_argument("--json", help="also write the result here as JSON")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result = measure(args)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
