"""False faces a face finder boxes on inputs with known faces, no data folder needed.

Why: each refit of the finder (``training.finetune_mtcnn``) boxes a few
non-faces of its own, and held-out recall does not show them. Three probes, all
from scikit-image's public-domain samples and the project's own demo clip:

* the astronaut upscaled 2-6x (searched on the detector's 1920 px copy, as a
  photo): every face after her own is false;
* the demo clip on the video path (40 px floor, no tracking): every box in the
  lower half, where only badges and helmets are, is false;
* the 18 non-face samples of ``training.recall`` (``coins`` bears a minted head).

Usage: ``python -m training.false_faces [--model-dir models/mtcnn] [--json OUT]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import cv2

UPSCALES = (2.0, 3.0, 3.75, 4.0, 5.0, 6.0)


def upscaled_astronaut(pipeline) -> dict[str, int]:
    """Extra faces (beyond her own) per upscale factor, through the detector's photo path."""
    from detector.synth.demo import astronaut_bgr

    image = astronaut_bgr()
    return {f"{f}x": len(pipeline.detect(cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC),
                                         still=True)) - 1 for f in UPSCALES}


def demo_badges(pipeline, min_face: int = 40) -> list[int]:
    """Frames of the demo clip where the video-path finder boxes something below the faces."""
    from detector.finders import make_finder
    from detector.sources import open_source
    from detector.synth.demo import make_demo_clip

    finder = make_finder(pipeline.config.finder, replace(pipeline.config.faces, min_face_size=min_face))
    with tempfile.TemporaryDirectory(prefix="false-faces-") as folder:
        clip = open_source(str(make_demo_clip(pipeline, Path(folder))))
        return [frame.index for frame in clip
                if any(d.box[1] > frame.image.shape[0] / 2
                       for d in finder.detect(cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)))]


def boxed_samples(pipeline) -> list[str]:
    """The non-face samples the photo path finds a face in."""
    from training.recall import NONFACE_SAMPLES, nonface_sample

    return [name for name in NONFACE_SAMPLES
            if pipeline.detect(cv2.cvtColor(nonface_sample(name), cv2.COLOR_RGB2BGR), still=True)]


def main(argv: list[str] | None = None) -> int:
    """Probe the finder whose nets are in ``--model-dir`` and print (and optionally write) what it boxes."""
    parser = argparse.ArgumentParser(prog="python -m training.false_faces", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="folder of the MTCNN ONNX nets (default: models/mtcnn)")
    parser.add_argument("--nets", choices=("masked", "stock"), default="masked", help="which nets (default: masked)")
    parser.add_argument("--json", type=Path, help="write the counts here")
    args = parser.parse_args(argv)
    if args.model_dir is not None and not args.model_dir.is_dir():
        print(f"error: --model-dir is not a folder: {args.model_dir}", file=sys.stderr)
        return 2
    from detector.finders import FinderConfig
    from detector.pipeline import Pipeline, PipelineConfig

    try:
        pipeline = Pipeline(PipelineConfig(faces=FinderConfig(nets=args.nets, model_dir=args.model_dir)))
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = {"astronaut_extra": upscaled_astronaut(pipeline), "demo_badge_frames": demo_badges(pipeline),
              "samples": boxed_samples(pipeline)}
    print(f"upscaled astronaut, extra faces: {result['astronaut_extra']}")
    print(f"demo clip frames with a badge boxed: {len(result['demo_badge_frames'])} {result['demo_badge_frames']}")
    print(f"non-face samples boxed: {result['samples']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
