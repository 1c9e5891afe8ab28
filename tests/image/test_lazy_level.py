"""LazyLevel (image/lazy_level.py): an FPN level computed only where RoIAlign reads it pools the same
features, and the model gives the same outputs, bit for bit, as computing every level whole."""
from contextlib import contextmanager

import pytest
import torch
from torch import nn
from torchvision.ops import roi_align

from queryinst.image.build import build_queryinst
from queryinst.image.config import Config
from queryinst.image.lazy_level import LazyLevel


@contextmanager
def _threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _rois(g: torch.Generator, n: int, height: int, width: int, batch: int) -> torch.Tensor:
    """Small boxes anywhere (some crossing the border), plus an inverted, a degenerate and a whole-image box."""
    xy = torch.rand(n, 2, generator=g) * torch.tensor([width * 1.1, height * 1.1]) - 10
    wh = torch.rand(n, 2, generator=g) * 60 + 1
    boxes = torch.cat([xy, xy + wh], 1)
    boxes = torch.cat([boxes, torch.tensor([[80.0, 60.0, 40.0, 90.0], [50.0, 50.0, 50.0, 50.0],
                                            [0.0, 0.0, float(width), float(height)]])])
    index = torch.randint(0, batch, (len(boxes), 1), generator=g).float()
    return torch.cat([index, boxes], 1)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("channels", [256, 32])
@torch.no_grad()
def test_pooled_features_equal_those_of_the_whole_level(threads, channels):
    with _threads(threads):
        g = torch.Generator().manual_seed(channels + threads)
        conv = nn.Conv2d(channels, channels, 3, padding=1)
        lateral = torch.randn(2, channels, 60, 96, generator=g)
        whole = conv(lateral)
        rois = _rois(g, 12, 240, 384, batch=2)
        lazy = LazyLevel(lateral, conv)
        for chunk in (rois[:4], rois[4:9], rois[9:], rois):  # incremental calls reuse computed tiles
            for size in (7, 14):
                got = roi_align(lazy.for_rois(chunk, 4), chunk, size, 0.25, 2, aligned=True)
                want = roi_align(whole, chunk, size, 0.25, 2, aligned=True)
                assert torch.equal(got, want)


@torch.no_grad()
def test_only_the_tiles_under_the_rois_are_computed():
    lazy = LazyLevel(torch.randn(1, 256, 64, 128), nn.Conv2d(256, 256, 3, padding=1))
    assert not lazy.whole and lazy.tile == 16 and lazy._done.shape == (1, 4, 8)
    roi = torch.tensor([[0.0, 100.0, 100.0, 140.0, 120.0]])  # reads x 24..35, y 24..30 (+1 px): row 1, cols 1-2
    lazy.for_rois(roi, 4)
    assert lazy._done[0].nonzero().tolist() == [[1, 1], [1, 2]] and lazy.computed_tiles == 2
    lazy.for_rois(roi, 4)
    assert lazy.computed_tiles == 2  # nothing recomputed
    assert lazy.for_rois(torch.zeros(0, 5), 4).shape == (1, 256, 64, 128) and lazy.computed_tiles == 2


def test_non_finite_rois_compute_the_whole_level():
    conv = nn.Conv2d(64, 64, 3, padding=1)
    lateral = torch.randn(1, 64, 64, 128)
    lazy = LazyLevel(lateral, conv)
    with torch.no_grad():
        values = lazy.for_rois(torch.tensor([[0.0, float("nan"), 1.0, 2.0, 3.0]]), 4)
        assert torch.equal(values, conv(lateral))


def _model(lazy_levels, small_boxes: bool):
    torch.manual_seed(0)
    cfg = Config()
    cfg.model.backbone = "resnet18"
    cfg.model.num_classes = 5
    cfg.model.num_stages = 2
    cfg.model.num_proposals = 12
    cfg.model.fpn_channels = cfg.model.hidden_dim = 64
    cfg.model.dynamic_dim, cfg.model.feedforward_dim = 16, 256
    model = build_queryinst(cfg).eval()
    model.lazy_levels = lazy_levels
    if small_boxes:  # proposals on small objects that stay put: P2 is used, but not everywhere
        with torch.no_grad():
            g = torch.Generator().manual_seed(1)
            cxcy = torch.rand(12, 2, generator=g) * 0.8 + 0.1
            model.proposals.boxes.weight.copy_(torch.cat([cxcy, torch.rand(12, 2, generator=g) * 0.15 + 0.02], 1))
            for stage in model.stages:
                stage.box_head.box_deltas.weight.zero_()
    return model


@pytest.mark.parametrize("lazy_levels", [(0,), (0, 1)])
@pytest.mark.parametrize("small_boxes", [True, False])
def test_model_outputs_are_identical_with_and_without_lazy_levels(small_boxes, lazy_levels):
    image = torch.rand(3, 256, 352, generator=torch.Generator().manual_seed(2))
    eager, lazy = _model((), small_boxes), _model(lazy_levels, small_boxes)
    with torch.no_grad():
        want = eager([image], orig_sizes=[(300, 400)])[0]
        got = lazy([image], orig_sizes=[(300, 400)])[0]
        raw_want = eager.raw_outputs(eager.preprocess([image]).tensors, (256, 352))
        raw_got = lazy.raw_outputs(lazy.preprocess([image]).tensors, (256, 352))
    for name in ("boxes", "scores", "labels", "masks", "query_indices"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name
    assert want.masks.any()
    for key in ("cls_logits", "boxes"):
        assert all(torch.equal(a, b) for a, b in zip(raw_got[key], raw_want[key]))
    assert torch.equal(raw_got["mask_logits"], raw_want["mask_logits"])
    if small_boxes:  # the case exercised part of P2, not all of it
        with torch.no_grad():
            raw = lazy.run_stages(lazy.preprocess([image]))
            lazy.postprocess(raw, [(300, 400)])
        p2 = raw.features[0]
        assert isinstance(p2, LazyLevel) and 0 < p2.computed_tiles < p2._done.numel()


def test_training_mode_computes_every_level():
    model = _model((0, 1), small_boxes=True).train()
    raw = model.run_stages(model.preprocess([torch.rand(3, 128, 160)]))
    assert all(isinstance(f, torch.Tensor) for f in raw.features)
