"""The training tools that judge and move data: evaluate, paired, clean, and the
one-line errors every training command gives on bad input."""

from __future__ import annotations

import json

import cv2
import numpy as np


def test_evaluate_contract(labelled_folder, tmp_path):
    from training.recipe.evaluate import main

    out = tmp_path / "eval.json"
    assert main([str(labelled_folder), "--json", str(out), "--plot", str(tmp_path / "cm.png"),
                 "--mistakes", str(tmp_path / "mistakes.png")]) == 0
    result = json.loads(out.read_text())
    assert set(result) == {"accuracy", "n", "no_face", "per_class", "confusion", "ci95", "verdicts"}
    low, high = result["ci95"]["accuracy"]
    assert low <= result["accuracy"] <= high and high - low < 0.3, "36 photos leave a range of about 0.2"
    assert set(result["ci95"]["recall"]) == set(result["per_class"])
    assert result["n"] == 36 and result["no_face"] == 0
    assert len(result["verdicts"]) == 36 and all(len(v) == 2 for v in result["verdicts"].values())
    assert set(result["per_class"]) == {"mask", "incorrect", "no_mask"}
    assert all(set(v) == {"precision", "recall", "n"} for v in result["per_class"].values())
    assert result["accuracy"] >= 0.9, result["confusion"]
    assert (tmp_path / "cm.png").stat().st_size > 0
    assert cv2.imread(str(tmp_path / "mistakes.png")) is not None


def test_paired_counts_only_the_faces_one_run_gets_right(tmp_path, capsys):
    """Faces both runs get right or wrong are no evidence; 9 faces right only in B against 1 only in A is (p = 0.02)."""
    from training.recipe.evaluate import report
    from training.tools.paired import main, pair

    truth = [("mask", f"set/mask/{i}.jpg") for i in range(20)] + [("no_mask", f"set/no_mask/{i}.jpg") for i in range(20)]
    a = report([(t, "no_mask" if i < 10 else t, k) for i, (t, k) in enumerate(truth)])
    b = report([(t, "incorrect" if i in (0, 30) else t, k) for i, (t, k) in enumerate(truth)])
    paired = pair(a, b)
    assert (paired.n, len(paired.a_only), len(paired.b_only), paired.both_wrong) == (40, 1, 9, 1)
    assert paired.a_only == ["set/no_mask/10.jpg"] and 0.01 < paired.p_value < 0.03
    assert pair(a, a).p_value == 1.0
    for name, result in (("a.json", a), ("b.json", b), ("old.json", {"accuracy": 1.0})):
        (tmp_path / name).write_text(json.dumps(result))
    assert main([str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--list"]) == 0
    out = capsys.readouterr().out
    assert "1 right only in A" in out and "9 right only in B" in out and "A only: set/no_mask/10.jpg" in out
    assert main([str(tmp_path / "a.json"), str(tmp_path / "old.json")]) == 2
    assert main([str(tmp_path / "a.json"), str(tmp_path / "missing.json")]) == 2
    assert all(line.startswith("error:") for line in capsys.readouterr().err.strip().splitlines())


def test_clean_moves_and_undoes(portraits, tmp_path):
    from training.recipe.clean import main

    root = tmp_path / "set"
    for label in ("mask", "no_mask"):
        (root / label).mkdir(parents=True)
    cv2.imwrite(str(root / "mask" / "bare.jpg"), portraits["none"])  # mislabelled: nose and mouth show
    cv2.imwrite(str(root / "mask" / "ok.jpg"), portraits["worn"])
    cv2.imwrite(str(root / "no_mask" / "blank.png"), np.full((120, 120, 3), 80, np.uint8))  # no face
    (root / "no_mask" / "broken.jpg").write_bytes(b"not an image")  # unreadable: a blank tile on the sheet
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.*"))
    assert main([str(root), "--apply"]) == 0
    suspects = (root / "suspects.csv").read_text()
    assert "mask/bare.jpg" in suspects and "no_mask/blank.png" in suspects and "ok.jpg" not in suspects
    assert "no_mask/broken.jpg" in suspects and (root / "suspects.png").stat().st_size > 0
    assert (root / "no_mask" / "bare.jpg").exists() and (root / "_quarantine" / "no_mask" / "blank.png").exists()
    assert main([str(root), "--undo"]) == 0
    after = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.*") if p.suffix in (".jpg", ".png")
                   and not p.name.startswith("suspects"))
    assert after == [b for b in before]


def test_clean_lists_a_nose_out_mask_only_when_asked_and_moves_only_reviewed_rows(portraits, tmp_path, capsys):
    """A mask under the nose labelled `mask` belongs in `incorrect`; the check needs a person, so it is opt-in."""
    from training.recipe.clean import main

    root = tmp_path / "set"
    (root / "mask").mkdir(parents=True)
    cv2.imwrite(str(root / "mask" / "under.jpg"), portraits["under_nose"])
    cv2.imwrite(str(root / "mask" / "worn.jpg"), portraits["worn"])
    assert main([str(root)]) == 0
    assert "under.jpg" not in (root / "suspects.csv").read_text()
    assert main([str(root), "--nose-out"]) == 0
    listed = (root / "suspects.csv").read_text()
    assert "mask/under.jpg,mask,\"labelled mask, nose out above the mask\",incorrect" in listed, listed
    assert "worn.jpg" not in listed and (root / "mask" / "under.jpg").exists(), "listing moves nothing"
    reviewed = tmp_path / "reviewed.csv"
    reviewed.write_text(listed)
    assert main([str(root), "--reviewed", str(reviewed)]) == 0
    assert (root / "incorrect" / "under.jpg").exists() and (root / "mask" / "worn.jpg").exists()
    assert main([str(root), "--reviewed", str(reviewed)]) == 0, "a list applied twice moves nothing more"
    assert "moved 0 of the 1 files" in capsys.readouterr().out
    for bad in ("mask/worn.jpg,mask,x,elsewhere", "../../outside.jpg,mask,x,incorrect", "mask/worn.jpg,mask"):
        reviewed.write_text("file,label,reason,move_to\n" + bad + "\n")
        assert main([str(root), "--reviewed", str(reviewed)]) == 2
    assert main([str(root), "--reviewed", str(tmp_path / "missing.csv")]) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 4 and all(line.startswith("error: ") for line in said), said
    assert (root / "mask" / "worn.jpg").exists(), "a bad list moves nothing"
    assert main([str(root), "--undo"]) == 0
    assert (root / "mask" / "under.jpg").exists() and not (root / "incorrect" / "under.jpg").exists()


def test_training_commands_reject_bad_input(tmp_path, capsys):
    from training.recipe.clean import main as clean
    from training.recipe.crop import main as crop
    from training.recipe.evaluate import main as evaluate
    from training.recipe.finetune_mtcnn import main as finetune
    from training.recipe.full import main as full
    from training.recipe.neck import main as neck
    from training.recipe.quantize import main as quantize
    from training.recipe.synth import main as synth
    from training.recipe.train import main as train
    from training.tools.recall import main as recall

    assert crop([str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert synth([str(tmp_path), str(tmp_path / "out"), "--min-inside", "1.5"]) == 2
    assert evaluate([str(tmp_path), "--json", str(tmp_path / "e.json"), "--classifier", str(tmp_path / "none.onnx")]) == 2
    assert clean([str(tmp_path)]) == 2
    assert train(["--config", str(tmp_path / "none.json")]) == 2
    (tmp_path / "held.json").write_text(json.dumps({"crops": [], "splits": str(tmp_path / "none.json")}))
    assert train(["--config", str(tmp_path / "held.json")]) == 2
    (tmp_path / "list.json").write_text("[]")
    assert recall(["--data", str(tmp_path), "--splits", str(tmp_path / "list.json")]) == 2
    assert finetune(["--data", str(tmp_path), "--splits", str(tmp_path / "none.json"), "--out", str(tmp_path / "n")]) == 2
    assert recall(["--data", str(tmp_path / "missing")]) == 2
    assert finetune(["--data", str(tmp_path), "--soft", "1.5"]) == 2
    assert full(["--data", str(tmp_path), "--work", str(tmp_path / "work")]) == 2
    assert not (tmp_path / "work").exists(), "nothing is written before the data is checked"
    assert evaluate([str(tmp_path), "--json", str(tmp_path / "e.json"), "--mtcnn", str(tmp_path)]) == 2, "no nets there"
    assert evaluate([str(tmp_path), "--json", str(tmp_path / "e.json"), "--mtcnn", "models/mtcnn", "--finder", "reference"]) == 2
    assert evaluate([str(tmp_path), "--json", str(tmp_path / "e.json"), "--splits", str(tmp_path / "none.json")]) == 2
    assert evaluate([str(tmp_path), "--json", str(tmp_path / "e.json"), "--neck", str(tmp_path / "none.onnx")]) == 2
    assert neck(["--config", str(tmp_path / "none.json")]) == 2
    assert quantize([str(tmp_path), "--splits", str(tmp_path / "none.json"), "--out", str(tmp_path / "q")]) == 2
    (tmp_path / "splits.json").write_text("{}")
    assert quantize([str(tmp_path), "--splits", str(tmp_path / "splits.json"), "--out", str(tmp_path / "q")]) == 2, "no photos"
    assert quantize([str(tmp_path), "--splits", str(tmp_path / "splits.json"), "--out", str(tmp_path / "q"), "--limit", "0"]) == 2
    assert not (tmp_path / "q").exists()
    (tmp_path / "empty.json").write_text(json.dumps({"crops": [str(tmp_path)], "out": str(tmp_path / "n")}))
    assert neck(["--config", str(tmp_path / "empty.json")]) == 2, "no crops.csv there"
    assert all(line.startswith("error:") for line in capsys.readouterr().err.strip().splitlines())


def test_training_commands_load_tensorflow_only_when_they_train():
    """Every step of ``python -m training`` imports without TensorFlow or Keras, so ``--help`` and a bad-input
    error come at once (importing Keras takes seconds and logs to stderr); the training itself imports them."""
    import subprocess
    import sys
    from pathlib import Path

    import training
    from training.__main__ import RECIPE, TOOLS, module_of

    assert {"train", "compare", "neck", "evaluate", "crop", "full", "recall"} <= set(RECIPE + TOOLS)
    modules = [module_of(step) for step in RECIPE + TOOLS]
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "    loaded = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
            "    if loaded:\n"
            "        sys.exit(f'{name} imports {loaded}')\n")
    root = Path(training.__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    listed = subprocess.run([sys.executable, "-m", "training", "--help"], cwd=root, capture_output=True, text=True)
    assert listed.returncode == 0 and all(f"  {step} " in listed.stdout for step in RECIPE + TOOLS), listed.stdout
    wrong = subprocess.run([sys.executable, "-m", "training", "nope"], cwd=root, capture_output=True, text=True)
    assert wrong.returncode == 2 and wrong.stderr.startswith("error: unknown step 'nope'"), wrong.stderr


def test_full_resumes_past_every_step_whose_output_exists(tmp_path, capsys):
    """``python -m training full`` after an interruption: each step whose output is there is skipped, the
    shipped configs are read with this run's folders, and the compared winner is the policy trained."""
    from training.lib.data import PAINTED_PREFIX
    from training.recipe.full import BARE_FACE_SETS, EVALUATIONS, REAL_SETS
    from training.recipe.full import main as full
    from training.recipe.quantize import REPORT

    data, work = tmp_path / "data", tmp_path / "work"
    for name in REAL_SETS:
        (data / name).mkdir(parents=True)
    done = [*(work / "synth" / f"{PAINTED_PREFIX}{n}" / "contact_sheet.png" for n in BARE_FACE_SETS),
            work / "crops_real" / "crops.csv", work / "crops_synth" / "crops.csv", work / "compare" / "compare.md",
            work / "train" / "flip" / "metrics.json", work / "train" / "neck" / "metrics.json", work / "int8" / REPORT,
            *(work / "train" / "flip" / f"eval_{name}.json" for name in EVALUATIONS)]
    for path in done:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("file,label,source,group,state,landmarks\n")
    rows = [{"policy": "none", "accuracy": 0.90, "no_mask_as_mask": 0.0},
            {"policy": "flip", "accuracy": 0.95, "no_mask_as_mask": 0.0}]
    (work / "compare" / "compare.json").write_text(json.dumps(rows))
    (work / "train" / "flip" / "splits.json").write_text("{}")
    assert full(["--data", str(data), "--work", str(work), "--keep-finder"]) == 0
    out = capsys.readouterr().out
    assert "[run]" not in out and "[skip] train (flip)" in out, out
    assert out.count("[skip] evaluate") == sum(all((data / n).is_dir() for n in sets) for sets in EVALUATIONS.values())
