"""Tests of image/data/transforms.py: image, boxes and masks move together under every recipe."""
from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from queryinst.image.config import DataConfig
from queryinst.image.data.transforms import (
    InstanceTransforms,
    RandomAbsoluteCrop,
    ResizeShortSide,
    build_transforms,
)
from queryinst.image.types import Targets

H, W = 60, 80
RECTS = [(5, 4, 30, 20), (40, 10, 78, 55), (12, 33, 20, 58), (50, 2, 53, 5)]  # x1, y1, x2, y2


def _sample(dtype: torch.dtype = torch.uint8) -> tuple[torch.Tensor, Targets]:
    """A 60x80 image with one coloured rectangle per instance, plus a crowd box."""
    image = torch.zeros(3, H, W, dtype=torch.uint8)
    masks = torch.zeros(len(RECTS), H, W, dtype=torch.bool)
    for i, (x1, y1, x2, y2) in enumerate(RECTS):
        image[i % 3, y1:y2, x1:x2] = 50 + 60 * i
        masks[i, y1:y2, x1:x2] = True
    if dtype != torch.uint8:
        image = image.to(dtype) / 255
    targets = Targets(
        boxes=torch.tensor(RECTS, dtype=torch.float32),
        labels=torch.arange(len(RECTS)),
        masks=masks,
        image_id=7,
        orig_size=(H, W),
        ignore_boxes=torch.tensor([[0.0, 40, 10, 60]]),
    )
    return image, targets


def _small_cfg(recipe: str) -> DataConfig:
    """The paper's recipes (docs/design.md#queryinst-image) scaled down ~10x so the test runs in milliseconds."""
    several = recipe in ("ms-3x", "crop-ms-3x")
    return DataConfig(
        recipe=recipe,
        min_sizes=(48, 51, 54, 57, 60, 64, 80) if several else (80,),
        max_size=133,
        crop_min_sizes=(40, 50, 60),
        crop_size=(38, 60),
        test_min_size=80,
        test_max_size=133,
    )


def _mask_box(mask: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)


@pytest.mark.parametrize("recipe", ["1x", "ms-3x", "crop-ms-3x", "fixed", "test"])
def test_masks_and_boxes_stay_consistent(recipe):
    transform = build_transforms(_small_cfg("1x" if recipe == "test" else recipe), train=recipe != "test")
    sizes = set()
    for seed in range(12):
        torch.manual_seed(seed)
        image, targets = _sample()
        out_image, out = transform(image, targets)
        h, w = out_image.shape[-2:]
        sizes.add((h, w))
        n = len(out.boxes)
        assert out.labels.shape == (n,) and out.masks.shape == (n, h, w) and out.masks.dtype == torch.bool
        assert out.image_id == 7 and out.orig_size == (H, W)
        for box, mask in zip(out.boxes, out.masks):
            assert mask.any()
            assert (box - _mask_box(mask)).abs().max() <= 2.0, (recipe, seed, box, _mask_box(mask))
            assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h
        if recipe != "crop-ms-3x":  # without a crop nothing is lost and the aspect ratio holds
            assert n == len(RECTS)
            assert abs(w / h - W / H) < 0.05
    if recipe in ("ms-3x", "crop-ms-3x"):
        assert len(sizes) > 1  # the scale is random
    else:
        assert sizes == {(80, 107)}  # short 80, long 80 * 4 / 3 rounded


def test_resize_short_side_rounds_like_mmcv():
    image, targets = _sample()
    out_image, out = InstanceTransforms(ResizeShortSide((30,), max_size=1000))(image, targets)
    assert out_image.shape == (3, 30, 40)
    torch.testing.assert_close(out.boxes, targets.boxes / 2)
    torch.testing.assert_close(out.ignore_boxes, targets.ignore_boxes / 2)
    # long side capped: scale = min(30 / 60, 35 / 80) = 0.4375 -> 26.25 -> 26, 35
    out_image, _ = InstanceTransforms(ResizeShortSide((30,), max_size=35))(image, targets)
    assert out_image.shape == (3, 26, 35)


def test_horizontal_flip_is_exact():
    cfg = DataConfig(recipe="fixed", min_sizes=(H,), max_size=1000, flip_prob=1.0)  # scale 1: flip only
    image, targets = _sample()
    out_image, out = build_transforms(cfg, train=True)(image, targets)
    assert torch.equal(out_image, image.flip(-1))
    assert torch.equal(out.masks, targets.masks.flip(-1))
    expected = targets.boxes.clone()
    expected[:, 0], expected[:, 2] = W - targets.boxes[:, 2], W - targets.boxes[:, 0]
    torch.testing.assert_close(out.boxes, expected)
    torch.testing.assert_close(out.ignore_boxes, torch.tensor([[70.0, 40, 80, 60]]))
    assert torch.equal(out.labels, targets.labels)


def test_crop_drops_emptied_instances_in_sync():
    # CenterCrop 20x20 of 60x80 keeps rows 20..39 and columns 30..49
    image, targets = _sample()
    targets.boxes = torch.tensor([[32.0, 22, 45, 35], [0, 0, 10, 10], [40, 30, 70, 55]])
    targets.labels = torch.tensor([4, 5, 6])
    targets.masks = torch.zeros(3, H, W, dtype=torch.bool)
    for i, (x1, y1, x2, y2) in enumerate(targets.boxes.int().tolist()):
        targets.masks[i, y1:y2, x1:x2] = True
    out_image, out = InstanceTransforms(v2.CenterCrop((20, 20)))(image, targets)
    assert torch.equal(out_image, image[:, 20:40, 30:50])
    assert out.labels.tolist() == [4, 6]
    torch.testing.assert_close(out.boxes, torch.tensor([[2.0, 2, 15, 15], [10, 10, 20, 20]]))
    assert torch.equal(out.masks, targets.masks[[0, 2], 20:40, 30:50])
    assert out.ignore_boxes.shape == (0, 4)  # the crowd box [0, 40, 10, 60] lies outside


def test_random_absolute_crop_sizes():
    image, targets = _sample()
    crop = InstanceTransforms(RandomAbsoluteCrop((30, 50)))
    seen = set()
    for seed in range(30):
        torch.manual_seed(seed)
        out_image, out = crop(image, targets)
        h, w = out_image.shape[-2:]
        seen.add((h, w))
        assert 30 <= h <= 50 and 30 <= w <= 50
        assert out.masks.shape[-2:] == (h, w)
        assert ((out.boxes[:, 2:] <= torch.tensor([w, h])) & (out.boxes[:, :2] >= 0)).all()
    assert len(seen) > 5
    # a range beyond the image is capped at the image size
    out_image, _ = InstanceTransforms(RandomAbsoluteCrop((70, 90)))(image, targets)
    assert out_image.shape[-2] == H and 70 <= out_image.shape[-1] <= W


def test_crop_ms_3x_uses_both_branches():
    transform = build_transforms(_small_cfg("crop-ms-3x"), train=True)
    aspect_kept = cropped = 0
    for seed in range(30):
        torch.manual_seed(seed)
        out_image, _ = transform(*_sample())
        h, w = out_image.shape[-2:]
        if abs(w / h - W / H) < 0.03:
            aspect_kept += 1
        else:
            cropped += 1
    assert aspect_kept > 0 and cropped > 0


def test_dtype_is_kept():
    transform = build_transforms(_small_cfg("ms-3x"), train=True)
    assert transform(*_sample(torch.uint8))[0].dtype == torch.uint8
    out_image, _ = transform(*_sample(torch.float32))
    assert out_image.dtype == torch.float32 and 0 <= out_image.min() and out_image.max() <= 1


def test_empty_targets():
    image, targets = _sample()
    targets = Targets(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), torch.zeros(0, H, W, dtype=torch.bool),
                      1, (H, W), None)
    out_image, out = build_transforms(_small_cfg("crop-ms-3x"), train=True)(image, targets)
    assert out.boxes.shape == (0, 4) and out.masks.shape == (0, *out_image.shape[-2:])
    assert out.ignore_boxes.shape == (0, 4)


def test_recipe_errors():
    with pytest.raises(ValueError, match="unknown data.recipe 'bogus'"):
        build_transforms(DataConfig(recipe="bogus"), train=True)
    with pytest.raises(ValueError, match="ms-3x.*min_sizes"):
        build_transforms(DataConfig(recipe="ms-3x"), train=True)  # default min_sizes is (800,) only
    with pytest.raises(ValueError, match="'1x'.*ms-3x"):
        build_transforms(DataConfig(recipe="1x", min_sizes=(480, 800)), train=True)
    with pytest.raises(ValueError, match="crop size range"):
        RandomAbsoluteCrop((50, 30))
