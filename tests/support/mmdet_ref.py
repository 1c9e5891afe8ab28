"""mmdetection 3.3 reference models for the fidelity tests (tests/image/test_mmdet_*reference.py,
tests/vis/test_mmdet_masktrack_reference.py). Import only after ``pytest.importorskip("mmdet")``.

mmdet 3.3 accepts mmcv < 2.2. ``mmcv-lite`` has no compiled ops: the missing ``mmcv._ext`` is replaced
by a module whose functions raise, the RoI extractors are configured with mmcv's own
``RoIAlign(use_torchvision=True)`` path, and ``BitmapMasks.crop_and_resize`` (mask targets) is given
torchvision's ``roi_align`` with the arguments it passes to mmcv's (scale 1, sampling ratio 0, aligned),
so only RoIAlign's kernel is shared by both sides. With full ``mmcv`` the compiled kernels are used.
These helpers and the model's construction are the training benchmark's (vis/bench/training_case.py),
so that the benchmark times the very model these tests compare.
"""
from __future__ import annotations

import os
import tempfile

import pytest
import torch

from queryinst.vis.bench import training_case as mmdet_reference
from queryinst.vis.bench.training_case import stub_missing_mmcv_ext  # noqa: F401  (the tests import it from here)


def mmdet_config_path(*parts: str) -> str:
    import mmdet

    path = os.path.join(os.path.dirname(mmdet.__file__), ".mim", "configs", *parts)
    if not os.path.isfile(path):
        pytest.skip(f"mmdetection's configs are not installed ({path})")
    return path


def build_mmdet_queryinst(seed: int = 0) -> torch.nn.Module:
    """mmdetection's queryinst_r50_fpn_1x_coco model, random weights, eval mode.

    Made less symmetric than its init: random BatchNorm statistics and affine parameters, proposal
    boxes of many sizes so that every FPN level is used, moderate box deltas (mmdetection's mask paste
    fails on boxes wholly outside the image)."""
    mmdet_config_path("queryinst", "queryinst_r50_fpn_1x_coco.py")  # skips without mmdetection's configs
    torch.manual_seed(seed)
    model = mmdet_reference.build_mmdet_queryinst()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        for head in model.roi_head.bbox_head:
            head.fc_reg.weight.mul_(0.1)
        boxes = model.rpn_head.init_proposal_bboxes.weight  # normalised cx, cy, w, h
        n = boxes.shape[0]
        boxes[:, :2] = torch.rand(n, 2, generator=g) * 0.6 + 0.2
        boxes[:, 2:] = torch.rand(n, 2, generator=g) * 0.9 + 0.05
    return model.eval()


def ours_from_mmdet(mm_model: torch.nn.Module):
    """The mmdetection model's weights through our converter (file to file) into our QueryInst.
    Returns (model, config); the model is in eval mode."""
    import mmdet

    from queryinst.image.build import build_queryinst
    from queryinst.image.checkpoint import load_checkpoint
    from queryinst.image.config import Config, config_from_dict
    from queryinst.image.mmdet_import import convert_mmdet_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "mmdet.pth"), os.path.join(tmp, "ours.pth")
        torch.save({"meta": {"mmdet_version": mmdet.__version__}, "state_dict": mm_model.state_dict()}, src)
        convert_mmdet_checkpoint(src, dst)
        cfg = config_from_dict(torch.load(dst, map_location="cpu", weights_only=True)["config"], Config)
        ours = build_queryinst(cfg)
        load_checkpoint(dst, ours, cfg=cfg, strict=True)
    return ours.eval(), cfg


def relative_max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (0 when both are all zero; inf when only b is)."""
    scale = float(b.abs().max()) if b.numel() else 0.0
    diff = float((a - b).abs().max()) if a.numel() else 0.0
    if scale == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / scale
