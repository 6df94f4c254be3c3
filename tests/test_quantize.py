"""The int8 nets the detector runs (training.recipe.quantize): made from the shipped float nets, and
judging faces as those do."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from conftest import jittered

from detector.classify import FLOAT_PATHS, INT8_DIR


def test_shipped_int8_nets_were_made_from_the_shipped_float_nets():
    """A float net retrained and installed without ``training.recipe.quantize --install`` leaves a stale int8 copy."""
    report = json.loads((INT8_DIR / "quantize.json").read_text())
    for name, float_path in FLOAT_PATHS.items():
        assert report[name]["source_sha256"] == hashlib.sha256(float_path.read_bytes()).hexdigest(), (
            f"models/int8/{float_path.name} is stale: run python -m training quantize ... --install")
        assert (INT8_DIR / float_path.name).stat().st_size < float_path.stat().st_size / 3


def test_int8_nets_judge_the_portraits_as_the_float_nets_do(pipeline, portraits):
    """Every portrait state, moved and turned a little, gets the same label from both, with close probabilities."""
    from detector.pipeline import Pipeline, PipelineConfig, float_nets

    assert pipeline.config.classifier.startswith(str(INT8_DIR)), "the detector runs the int8 nets by default"
    exact = Pipeline(PipelineConfig(**float_nets()))
    rng = np.random.default_rng(7)
    judged = 0
    for name, image in portraits.items():
        for copy in [image] + [jittered(image, rng) for _ in range(3)]:
            fast, slow = pipeline.analyse(copy), exact.analyse(copy)
            assert [f.label for f in fast] == [f.label for f in slow], name
            for a, b in zip(fast, slow):
                assert np.abs(a.probs - b.probs).max() < 0.1, (name, a.probs, b.probs)
                assert (a.nose_visible, a.mouth_visible) == (b.nose_visible, b.mouth_visible), name
            judged += len(fast)
    assert judged >= 16


def test_quantize_calibrates_on_train_side_photos_and_stays_near_the_float_nets(labelled_folder, tmp_path, capsys):
    from training.recipe.quantize import REPORT, main

    photos = sorted(p for p in labelled_folder.rglob("*.jpg"))
    held = {f"{labelled_folder.name}/{p.parent.name}/{p.name}": "val" if i % 6 == 0 else "train"
            for i, p in enumerate(photos)}
    (tmp_path / "splits.json").write_text(json.dumps(held))
    out = tmp_path / "int8"
    assert main([str(labelled_folder), "--splits", str(tmp_path / "splits.json"), "--out", str(out)]) == 0
    report = json.loads((out / REPORT).read_text())
    assert report["photos"] == sum(side == "train" for side in held.values()) == 30, "val photos are never used"
    for name, float_path in FLOAT_PATHS.items():
        assert (out / float_path.name).stat().st_size == report[name]["bytes"] < report[name]["float_bytes"] / 3
        assert report[name]["n"] > 0 and report[name]["top_changed"] <= 0.05, (name, report[name])
    assert "installed" not in capsys.readouterr().out, "nothing is installed unless asked"


def test_float_flag_and_the_reference_pipeline_run_the_float_nets():
    from detector.cli import build_parser, pipeline_config
    from detector.pipeline import PipelineConfig

    for config in (pipeline_config(build_parser().parse_args(["--float"])), PipelineConfig.reference()):
        assert (config.classifier, config.parts, config.neck) == tuple(str(p) for p in FLOAT_PATHS.values())
    default = pipeline_config(build_parser().parse_args([]))
    assert all(Path(path).parent == INT8_DIR for path in (default.classifier, default.parts, default.neck))
    parser = build_parser()
    assert parser.parse_args(["serve", "--float"]).float and not parser.parse_args(["serve"]).float
