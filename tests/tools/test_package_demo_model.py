"""tools/package_demo_model.py: a training checkpoint becomes an fp16 demo model plus its YAML, with the
inference/tracker overrides applied to both; the result loads through the demo loader."""
from __future__ import annotations

from pathlib import Path

import torch

from queryinst.image.checkpoint import save_checkpoint
from queryinst.image.config import load_config, merge_into
from queryinst.vis.config import VisConfig
from queryinst.vis.modeling.build import build_queryinst_vis
from queryinst.vis.modeling.build import load_vis_model
from support.repo import load_tool

TINY = {"model": {"backbone": "resnet18", "num_stages": 2, "hidden_dim": 32, "fpn_channels": 32, "dynamic_dim": 8,
                  "feedforward_dim": 64, "num_heads": 4, "track_dim": 16, "num_classes": 3}}


def _tool():
    return load_tool("package_demo_model")


def _checkpoint(folder: Path) -> Path:
    cfg = VisConfig()
    merge_into(cfg, TINY)
    model = build_queryinst_vis(cfg)
    cfg.model.init_from = "work_dirs/image/last.pth"  # as a finetuning run records it; packaging clears it
    path = folder / "last.pth"
    save_checkpoint(str(path), model, None, None, 3, 30, cfg, extra={"class_names": ["a", "b", "c"]})
    return path


def test_packaged_model_is_fp16_with_overrides_and_loads(tmp_path):
    ckpt = _checkpoint(tmp_path)
    out, yaml = tmp_path / "demo.pth", tmp_path / "demo.yaml"
    code = _tool().main(["--checkpoint", str(ckpt), "--out", str(out), "--config-out", str(yaml),
                         "inference.score_threshold=0.3", "tracker.duplicate_iou=0.7"])
    assert code == 0
    data = torch.load(out, weights_only=True)
    assert all(v.dtype == torch.float16 for v in data["model"].values() if v.is_floating_point())
    assert data["config"]["inference"]["score_threshold"] == 0.3 and data["config"]["tracker"]["duplicate_iou"] == 0.7
    assert data["config"]["model"]["init_from"] == "" and data["extra"]["class_names"] == ["a", "b", "c"]
    cfg = load_config(str(yaml), schema=VisConfig)
    assert cfg.inference.score_threshold == 0.3 and cfg.tracker.duplicate_iou == 0.7 and cfg.model.init_from == ""
    cfg, model, names, _ = load_vis_model(str(yaml), str(out))
    assert names == ["a", "b", "c"] and len(model.detect([torch.rand(3, 64, 96)])[0].scores) >= 0


def test_bad_override_fails_without_output(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path)
    out, yaml = tmp_path / "demo.pth", tmp_path / "demo.yaml"
    code = _tool().main(["--checkpoint", str(ckpt), "--out", str(out), "--config-out", str(yaml),
                         "tracker.duplicate_iou=2.0"])
    assert code == 2 and "duplicate_iou" in capsys.readouterr().err
    assert not out.exists() and not yaml.exists()
