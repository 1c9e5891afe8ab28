import math

import pytest
import torch
from torchvision.ops import roi_align

from queryinst.image.roi_pooler import assign_levels, boxes_to_rois, multilevel_roi_align


def test_level_assignment_matches_mmdetection_rule():
    # level = floor(log2(sqrt(w*h)/56 + 1e-6)) clamped to [0, 3] (mmdetection SingleRoIExtractor)
    sides = [10.0, 55.9, 56.0, 111.9, 112.0, 224.0, 447.0, 448.0, 2000.0]
    boxes = torch.tensor([[0.0, 0.0, s, s] for s in sides])
    expected = [min(max(math.floor(math.log2(s / 56 + 1e-6)), 0), 3) for s in sides]
    assert assign_levels(boxes, 4).tolist() == expected == [0, 0, 0, 0, 1, 2, 2, 3, 3]
    # a non-square box uses the geometric mean of its sides
    assert assign_levels(torch.tensor([[0.0, 0.0, 448.0, 28.0]]), 4).tolist() == [1]


def test_pooling_uses_aligned_roi_align_on_the_assigned_level():
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, 3, 64 // s, 64 // s, generator=g) for s in (1, 2, 4, 8)]
    strides = (4, 8, 16, 32)
    boxes = torch.tensor([[[1.0, 2.0, 30.0, 40.0], [0.0, 0.0, 250.0, 250.0]],
                          [[5.0, 5.0, 120.0, 100.0], [3.0, 3.0, 9.0, 9.0]]])
    rois = boxes_to_rois(boxes)
    assert rois[:, 0].tolist() == [0, 0, 1, 1]
    out = multilevel_roi_align(feats, rois, 7, strides)
    levels = assign_levels(rois[:, 1:], 4)
    for i in range(4):
        lvl = int(levels[i])
        ref = roi_align(feats[lvl], rois[i:i + 1], 7, spatial_scale=1 / strides[lvl], sampling_ratio=2, aligned=True)
        assert torch.allclose(out[i], ref[0])


def test_inverted_box_is_pooled_from_no_level():
    # mmdetection: sqrt of a negative area is NaN, the RoI matches no level, its features stay 0
    boxes = torch.tensor([[10.0, 10.0, 5.0, 40.0], [0.0, 0.0, 5.0, 5.0]])
    assert assign_levels(boxes, 4).tolist() == [-1, 0]
    feats = [torch.ones(1, 2, 16, 16), torch.ones(1, 2, 8, 8), torch.ones(1, 2, 4, 4), torch.ones(1, 2, 2, 2)]
    out = multilevel_roi_align(feats, boxes_to_rois(boxes[None]), 7, (4, 8, 16, 32))
    assert not out[0].any() and out[1].all()


def test_inference_pooling_split_over_threads_is_bit_identical(monkeypatch):
    import queryinst.image.roi_pooler as pooler

    g = torch.Generator().manual_seed(3)
    feats = [torch.randn(2, 16, 96 // s, 128 // s, generator=g) for s in (1, 2, 4, 8)]
    xy = torch.rand(2, 40, 2, generator=g) * torch.tensor([480.0, 360.0])
    boxes = torch.cat([xy, xy + torch.rand(2, 40, 2, generator=g) * 150 + 4], -1)  # every level, some past the border
    rois = boxes_to_rois(boxes)
    calls = []
    real = pooler.roi_align
    monkeypatch.setattr(pooler, "roi_align", lambda feat, r, *a, **k: calls.append(len(r)) or real(feat, r, *a, **k))
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.no_grad():
            want = multilevel_roi_align(feats, rois, 7, (4, 8, 16, 32))
        single = list(calls)
        calls.clear()
        torch.set_num_threads(3)
        with torch.no_grad():
            got = multilevel_roi_align(feats, rois, 7, (4, 8, 16, 32))
        with torch.enable_grad():  # autograd keeps the plain single call per level
            graded = multilevel_roi_align([f.requires_grad_() for f in feats], rois, 7, (4, 8, 16, 32))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(got, want) and torch.equal(graded.detach(), want)
    assert len(calls) > 2 * len(single)  # the split path ran: more, smaller calls
    assert max(calls[: len(calls) - len(single)]) < max(single)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("size,ratio,scale", [(7, 2, 0.25), (14, 2, 0.125), (7, 1, 0.5), (7, 3, 1 / 32)])
def test_training_backward_gives_torchvision_gradient(dtype, size, ratio, scale):
    """RoIAlignWindowGrad: torchvision's forward bit for bit; its gradient to rounding, for RoIs inside,
    across the border, wholly outside, tiny, inverted on one axis and covering the whole map."""
    from queryinst.image.roi_pooler import RoIAlignWindowGrad

    g = torch.Generator().manual_seed(0)
    b, c, h, w, r = 2, 8, 33, 41, 60
    feat = torch.randn(b, c, h, w, generator=g, dtype=dtype, requires_grad=True)
    span = torch.tensor([w / scale * 1.2, h / scale * 1.2], dtype=dtype)
    xy = torch.rand(r, 2, generator=g, dtype=dtype) * span - 20
    rois = torch.cat([torch.randint(0, b, (r, 1), generator=g).to(dtype), xy,
                      xy + torch.rand(r, 2, generator=g, dtype=dtype) * 150 + 0.5], 1)
    rois[:5, 1:] = torch.tensor([[0, 0, w / scale, h / scale], [-50, -50, -10, -10],
                                 [w / scale - 2, h / scale - 2, w / scale + 30, h / scale + 30],
                                 [10, 10, 10.2, 10.1], [30, 40, 20, 60]], dtype=dtype)
    grad_out = torch.randn(r, c, size, size, generator=g, dtype=dtype)
    ref = roi_align(feat, rois, size, spatial_scale=scale, sampling_ratio=ratio, aligned=True)
    (want,) = torch.autograd.grad(ref, feat, grad_out)
    out = RoIAlignWindowGrad.apply(feat, rois, size, scale, ratio)
    (got,) = torch.autograd.grad(out, feat, grad_out)
    assert torch.equal(out, ref)
    tolerance = 1e-13 if dtype == torch.float64 else 1e-5
    assert float((got - want).abs().max()) <= tolerance * float(want.abs().max())


def test_training_pooling_takes_the_window_gradient(monkeypatch):
    import queryinst.image.roi_pooler as pooler

    calls = []
    real = pooler.RoIAlignWindowGrad.apply
    monkeypatch.setattr(pooler.RoIAlignWindowGrad, "apply", lambda *a: calls.append(1) or real(*a))
    feats = [torch.randn(1, 4, 64 // s, 64 // s, requires_grad=True) for s in (1, 2, 4, 8)]
    rois = boxes_to_rois(torch.tensor([[[1.0, 2.0, 30.0, 40.0], [0.0, 0.0, 250.0, 250.0]]]))
    multilevel_roi_align(feats, rois, 7, (4, 8, 16, 32)).sum().backward()
    assert len(calls) == 2 and feats[0].grad.abs().sum() > 0
    with torch.no_grad():
        multilevel_roi_align(feats, rois, 7, (4, 8, 16, 32))
    assert len(calls) == 2  # inference keeps torchvision's op (split over threads)
