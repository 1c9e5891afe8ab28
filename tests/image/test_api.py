"""The still-image API (image/api.py): Predictor from a checkpoint (with or without a config file) and
ImageResult's selection, JSON and drawing."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from queryinst.image.build import build_queryinst
from queryinst.image.checkpoint import save_checkpoint
from queryinst.image.config import load_config, save_config

REPO = Path(__file__).resolve().parents[2]
SMALL = ["model.num_stages=2", "model.num_proposals=6", "model.hidden_dim=32", "model.fpn_channels=32",
         "model.dynamic_dim=8", "model.feedforward_dim=64", "model.num_heads=4", "data.test_min_size=64",
         "data.test_max_size=96"]
NAMES = ["circle", "square", "triangle", "star", "ellipse", "hexagon"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("predictor")
    cfg = load_config(str(REPO / "configs" / "synthetic" / "image_tiny.yaml"), SMALL)
    torch.manual_seed(0)
    model = build_queryinst(cfg)
    path = tmp / "last.pth"
    save_checkpoint(str(path), model, None, None, 1, 10, cfg, extra={"class_names": NAMES})
    save_config(cfg, str(tmp / "config.yaml"))
    return path, tmp / "config.yaml"


def test_predictor_from_the_stored_config_or_a_file(checkpoint, tmp_path):
    from queryinst import Predictor

    path, config = checkpoint
    image = np.zeros((70, 110, 3), np.uint8)
    cv2.circle(image, (50, 35), 20, (255, 80, 0), -1)
    a = Predictor.from_pretrained(path, device="cpu")(image)
    b = Predictor.from_pretrained(path, config=config, device="cpu")(image)
    assert len(a) == 6 and a.masks.shape == (6, 70, 110) and set(a.class_names) <= set(NAMES)
    assert np.array_equal(a.scores, b.scores) and np.array_equal(a.labels, b.labels)
    assert np.all(np.diff(a.scores) <= 0)
    cv2.imwrite(str(tmp_path / "x.png"), image[:, :, ::-1])
    from_file = Predictor.from_pretrained(path, device="cpu")(str(tmp_path / "x.png"))
    assert np.allclose(from_file.scores, a.scores, atol=1e-6)

    kept = a.select(float(a.scores[2]))
    assert len(kept) >= 3 and kept.scores.min() >= a.scores[2]
    records = a.to_json(0.0)
    json.dumps(records)
    assert len(records) == 6 and records[0]["segmentation"]["size"] == [70, 110]
    # a random model puts its boxes anywhere: draw a hand-made result instead
    from queryinst import ImageResult

    mask = np.zeros((1, 70, 110), bool)
    mask[0, 20:40, 30:60] = True
    made = ImageResult(np.array([[30.0, 20.0, 60.0, 40.0]]), np.array([0.9]), np.array([1]), ["square"], mask, image)
    drawn = made.plot()
    assert drawn.shape == image.shape and not np.array_equal(drawn, image)
    assert np.array_equal(made.select(0.95).plot(), image)  # below the threshold: nothing drawn


def test_predictor_errors_name_the_problem(checkpoint, tmp_path):
    from queryinst import Predictor

    path, _ = checkpoint
    bare = tmp_path / "bare.pth"
    torch.save({"model": torch.load(path, weights_only=True)["model"]}, bare)
    with pytest.raises(ValueError, match="stores no config; pass config="):
        Predictor.from_pretrained(bare, device="cpu")
    with pytest.raises(ValueError, match="expected an image path or an RGB uint8 array"):
        Predictor.from_pretrained(path, device="cpu")(np.zeros((4, 4), np.float32))
