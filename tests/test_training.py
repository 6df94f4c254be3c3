"""The training tools on small inputs made here: crop, splits, augmentation, train + export, the finder refit
(evaluate, paired, clean and bad input are in test_training_tools.py; synth in test_masks.py)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest


def test_crop_then_train_then_export(labelled_folder, tmp_path):
    """Smoke training: a few dozen crops, one epoch, ONNX export with the parity check."""
    from training.lib.augment import AugmentConfig
    from training.recipe.crop import main as crop
    from training.recipe.neck import main as neck
    from training.recipe.train import main as train

    crops = tmp_path / "crops"
    assert crop([str(labelled_folder), str(crops)]) == 0
    rows = (crops / "crops.csv").read_text().splitlines()
    assert len(rows) == 1 + 36, "every painted astronaut is found and cropped"
    config = tmp_path / "smoke.json"
    every_kind = {**AugmentConfig.policy("all").as_dict(), "noise": 0.05}  # a policy given as a dict
    config.write_text(json.dumps({"crops": [str(crops)], "epochs": 1, "parts_epochs": 1, "batch_size": 8,
                                  "policy": every_kind, "near_duplicate_bits": -1, "width": 8, "min_epochs": 1,
                                  "out": str(tmp_path / "runs"),
                                  "neck_epochs": 1, "neck_width": 4}))
    assert train(["--config", str(config)]) == 0
    assert (tmp_path / "runs" / "custom").is_dir(), "a dict policy trains into out/custom"
    (tmp_path / "runs" / "custom").rename(tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["augment"]["noise"] == 0.05
    assert metrics["config"]["width"] == 8 and metrics["config"]["crops"] == [str(crops.resolve())]
    assert metrics["export_max_diff"]["mask_classifier"] <= 1e-4
    assert metrics["export_max_diff"]["parts"] <= 1e-4
    for name in ("mask_classifier.onnx", "parts.onnx", "curves.png", "splits.json"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    assert (tmp_path / "run" / "mask_classifier.onnx").stat().st_size < 400_000, "width 8: a quarter of the shipped net's weights"
    assert neck(["--config", str(config), "--out", str(tmp_path / "neck")]) == 0, "the neck model, on the same crops"
    neck_metrics = json.loads((tmp_path / "neck" / "metrics.json").read_text())
    assert neck_metrics["export_max_diff"] <= 1e-4
    assert (tmp_path / "neck" / "neck.onnx").stat().st_size > 0


def _arrays(rows: list[tuple[str, str, str]]):
    """Arrays of blank crops with (label, group, source) records."""
    from training.lib.data import Arrays
    from training.lib.datasets import CropRecord

    records = [CropRecord(f"{i}.png", label, source, group) for i, (label, group, source) in enumerate(rows)]
    y = np.array([["mask", "incorrect", "no_mask"].index(label) for label, _, _ in rows])
    return Arrays(np.zeros((len(rows), 64, 64, 1), np.float32), y, np.zeros((len(rows), 2, 32, 32), np.uint8),
                  np.zeros((len(rows), 2), np.float32), records)


def test_split_is_decided_by_real_photos_and_painted_faces_follow_theirs():
    """Remaking the painted set must not move a real photo between splits, and a painted face is held
    out with its photo. (Painted crops' hashes used to join the near-duplicate grouping: a painted face
    within a few bits of two real photos that are not near-duplicates of each other merged them.)"""
    from training.lib.data import split_records
    from training.lib.datasets import CropRecord

    rng = np.random.default_rng(0)
    real = [CropRecord(f"r{i:03d}.png", "no_mask", f"set/{i}.jpg", f"set/{i}") for i in range(400)]
    real_hashes = [rng.random(64) < 0.5 for _ in real]
    painted, painted_hashes = [], []
    for i in range(0, 400, 2):  # photo i + 1 made 10 bits from photo i, a painting 5 bits from each
        flip = rng.choice(64, 10, replace=False)
        real_hashes[i + 1] = real_hashes[i].copy()
        real_hashes[i + 1][flip] ^= True
        bridge = real_hashes[i].copy()
        bridge[flip[:5]] ^= True
        painted.append(CropRecord(f"p{i:03d}.png", "mask", f"synth_set/{i + 1}.jpg", f"synth_set/{i + 1}"))
        painted_hashes.append(bridge)
    alone = split_records(real, real_hashes)
    both = split_records(real + painted, real_hashes + painted_hashes)
    assert both[:400] == alone
    assert both[400:] == [alone[i + 1] for i in range(0, 400, 2)]
    assert {alone[i] != alone[i + 1] for i in range(0, 400, 2)} == {True, False}, "the pairs stay apart"
    orphan = CropRecord("o.png", "mask", "synth_set/x.jpg", "synth_set/never_cropped")
    assert split_records(real + [orphan], real_hashes + [None])[-1] in {"train", "val", "test"}
    moved = [CropRecord(f"/elsewhere/{r.file}", r.label, r.source, r.group) for r in real]
    assert split_records(moved[::-1], real_hashes[::-1]) == alone[::-1], "folder and order of the crops change nothing"
    flipped = {"set/0.jpg": "test" if alone[0] != "test" else "train"}  # a held split file keeps its photos' sides
    held = split_records(real + painted, real_hashes + painted_hashes, held=flipped)
    assert held[0] == flipped["set/0.jpg"] and held[1:400] == alone[1:]
    assert held[400:] == [held[i + 1] for i in range(0, 400, 2)], "painted faces still follow their photos"


def test_assign_splits_joins_groups_and_near_duplicates_transitively():
    """Photo a shares a group with b, b is a near-duplicate of c: all three go to one split."""
    from training.lib.splits import assign_splits

    rng = np.random.default_rng(1)
    hashes = [rng.random(64) < 0.5 for _ in range(60)]
    hashes[2] = hashes[1].copy()
    keys = [f"k{i:02d}" for i in range(60)]
    for shift in range(40):  # the names decide the split; some naming must have put them apart
        groups = [f"g{i}" for i in range(60)]
        groups[1] = groups[0]
        named = keys[shift:] + keys[:shift]
        split = assign_splits(groups, named, hashes)
        assert split[named[0]] == split[named[1]] == split[named[2]]
    assert len(set(assign_splits(keys, keys, hashes).values())) == 3


def test_shrink_blur_softens_the_chosen_share_only():
    """A blurred crop loses fine detail but keeps its brightness; share 0 leaves the batch as it was."""
    import tensorflow as tf

    from training.lib.augment import shrink_blur

    tf.random.set_seed(0)
    x = np.random.default_rng(1).uniform(0.0, 1.0, (200, 64, 64, 1)).astype(np.float32)
    out = shrink_blur(tf.constant(x), 0.5).numpy()
    changed = ~np.isclose(out, x).all(axis=(1, 2, 3))
    assert 0.3 < changed.mean() < 0.7
    detail = np.abs(np.diff(out, axis=2)).mean(axis=(1, 2, 3))
    assert detail[changed].max() < 0.5 * detail[~changed].min(), "neighbouring pixels move together once blurred"
    assert np.allclose(out.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=0.02)
    assert np.array_equal(shrink_blur(tf.constant(x), 0.0).numpy(), x)

def test_soften_blurs_a_photo_in_place_and_drops_faces_left_too_small():
    """A softened photo keeps its size (boxes stay put) and loses detail; a face left under PNet's
    12 px is no longer a positive, and a face already soft is left as it is."""
    from training.recipe.mtcnn_patches import soften

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
    faces = np.array([[100, 100, 300, 300], [10, 10, 30, 30]], dtype=np.float64)  # 200 and 20 px, median 110
    detail = lambda im: np.abs(np.diff(im.astype(np.float64), axis=1)).mean()
    for _ in range(5):
        soft, kept = soften(image, faces, rng)
        assert soft.shape == image.shape and detail(soft) < 0.5 * detail(image)
        assert kept.tolist() == [[100, 100, 300, 300]], "the 20 px face keeps under 9 px of detail"
    soft, kept = soften(image, np.array([[10.0, 10.0, 24.0, 24.0]]), rng)
    assert np.array_equal(soft, image) and len(kept) == 1, "a 14 px face is softer than any draw"


def test_finder_refit_trains_the_last_shared_layer_below_the_heads():
    """The refit trains RNet's fc4 (+ PReLU) with the face head, never the heads' own box regression."""
    from training.recipe.export_mtcnn import build_keras_net
    from training.recipe.finetune_mtcnn import trunk_layers

    rnet = build_keras_net("rnet")
    assert [layer.name for layer in trunk_layers(rnet, "rnet")] == ["fc4", "prelu4"]


def test_onnx_matches_keras_on_real_crops(labelled_folder, tmp_path):
    """Parity of the export route on an untrained model, on real aligned crops."""
    from detector.align import model_input
    from training.lib.model import mask_classifier
    from training.recipe.export import export_checked, parity

    crops = [cv2.cvtColor(cv2.resize(cv2.imread(str(p)), (96, 96)), cv2.COLOR_BGR2GRAY)
             for p in sorted(labelled_folder.rglob("*.jpg"))[:8]]
    model = mask_classifier()
    assert export_checked(model, tmp_path / "m.onnx", model_input(crops)) <= 1e-4
    assert parity(model, tmp_path / "m.onnx", model_input(crops[:1])) <= 1e-4


def test_a_classifier_of_another_input_side_is_fed_crops_of_its_side(labelled_folder, tmp_path):
    """The detector reads the classifier's input side from its ONNX file: a net trained at 48 px is fed
    48 px crops (the same probabilities as Keras on them), never a 64 px tensor it would reject."""
    from detector.align import model_input
    from detector.classify import MaskClassifier
    from training.lib.model import mask_classifier
    from training.recipe.export import export_checked

    crops = [cv2.cvtColor(cv2.resize(cv2.imread(str(p)), (96, 96)), cv2.COLOR_BGR2GRAY)
             for p in sorted(labelled_folder.rglob("*.jpg"))[:4]]
    model = mask_classifier(width=4, size=48)
    assert export_checked(model, tmp_path / "m48.onnx", model_input(crops, 48)) <= 1e-4
    classifier = MaskClassifier(tmp_path / "m48.onnx")
    assert classifier.size == 48
    said = classifier.predict(crops)
    assert said.shape == (4, 3)
    assert np.abs(said - model.predict(model_input(crops, 48), verbose=0)).max() <= 1e-4


@pytest.mark.parametrize("side", [8, 97, "64", 64.5])
def test_train_refuses_an_input_side_the_crops_cannot_give(tmp_path, capsys, side):
    from training.recipe.train import main

    crops = tmp_path / "crops"
    crops.mkdir()
    (crops / "crops.csv").write_text("file,label,source,group,state,landmarks\n")
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"crops": [str(crops)], "input_size": side}))
    assert main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "'input_size'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("values, named", [
    ({"epoch": 3}, "unknown key 'epoch'"),  # a misspelt key is not silently ignored
    ({"epochs": "3"}, "'epochs' must be a whole number"),
    ({"learning_rate": 0}, "'learning_rate' must be a positive number"),
    ({"policy": "sharp"}, "'policy': unknown augmentation policy 'sharp'"),
    ({"policy": {"flip": True, "blur": 1}}, "'policy'"),
    ({"schedule": "cosine"}, "unknown key 'schedule'"),  # a retired option says so
])
def test_a_config_is_checked_once_when_read(tmp_path, capsys, values, named):
    """``TrainConfig``: every step that reads a config (train, compare, neck) stops on the same mistake, in one
    line naming the file and the key, before any training starts."""
    from training.recipe.compare import main as compare
    from training.recipe.neck import main as neck
    from training.recipe.train import main as train

    crops = tmp_path / "crops"
    crops.mkdir()
    (crops / "crops.csv").write_text("file,label,source,group,state,landmarks\n")
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"crops": [str(crops)], **values}))
    for step in (train, neck, lambda argv: compare([*argv, "--out", str(tmp_path / "cmp")])):
        assert step(["--config", str(config)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {config}: ") and named in err[0], err
    assert not (tmp_path / "cmp").exists()
