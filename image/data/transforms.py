"""Training and test augmentation on ``torchvision.transforms.v2`` (paper Sec. 4, mmdetection's QueryInst
configs; docs/design.md#queryinst-image).

The image, the instance boxes, the instance masks and the crowd boxes are wrapped as ``tv_tensors``
(``Image``, ``BoundingBoxes`` XYXY, ``Mask``), so one v2 call moves them together with the same random
parameters. ``InstanceTransforms`` wraps a v2 pipeline as ``(image, Targets) -> (image, Targets)``
and removes the instances a crop has emptied.

Images keep their dtype: the dataset feeds uint8 (0-255), which resizes faster than float, and converts
to float in [0, 1] afterwards. No normalisation here: the model normalises (``collate.pad_and_normalize``).

Recipes (``DataConfig.recipe``), all resizing as mmcv's ``imrescale`` (keep the aspect ratio, short side
``s``, long side at most ``max_size``):
- ``"1x"``: short side ``min_sizes[0]`` (800) + horizontal flip.
- ``"ms-3x"``: short side drawn from ``min_sizes`` (480, 512, ..., 800) + flip.
- ``"crop-ms-3x"``: flip, then with probability 1/2 either the ms resize, or [short side from
  ``crop_min_sizes`` -> random crop of absolute size in ``crop_size`` -> ms resize]
  (mmdetection's QueryInst/Sparse R-CNN 300-query config: AutoAugment with two policies).
- ``"fixed"``: short side ``min_sizes[0]``, long side at most ``max_size`` + flip; the same code as "1x",
  meant for small synthetic configs (e.g. 128 / 213).
- test (``train=False``): short side ``test_min_size``, long side at most ``test_max_size``, no flip.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from ..config import DataConfig
from ..types import Targets

RECIPES = ("1x", "ms-3x", "crop-ms-3x", "fixed")


def _randint(low: int, high: int) -> int:
    """Uniform integer in [low, high] inclusive, from torch's RNG (seeded per DataLoader worker)."""
    return int(torch.randint(low, high + 1, ()).item())


class ResizeShortSide(v2.Transform):
    """Resize keeping the aspect ratio: short side ``s``, long side at most ``max_size``.

    ``s`` is drawn uniformly from ``sizes`` at each call. As mmcv ``imrescale``:
    ``scale = min(s / short, max_size / long)`` and ``new = int(old * scale + 0.5)`` per side.
    (torchvision's ``Resize(size, max_size=...)`` truncates instead of rounding, so sizes differ by a pixel.)

    Args:
        sizes: candidate short-side lengths.
        max_size: upper bound on the long side.
        antialias: antialiased image resampling. False by default to match the cv2 bilinear resize
            that mmdetection's reference models were trained and evaluated with. Masks use nearest-exact.
    """

    def __init__(self, sizes: Sequence[int], max_size: int, antialias: bool = False) -> None:
        super().__init__()
        if not sizes or min(sizes) <= 0 or max_size <= 0:
            raise ValueError(f"ResizeShortSide needs positive sizes and max_size, got {sizes}, {max_size}")
        self.sizes = tuple(int(s) for s in sizes)
        self.max_size = int(max_size)
        self.antialias = antialias

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        short = self.sizes[_randint(0, len(self.sizes) - 1)]
        scale = min(short / min(height, width), self.max_size / max(height, width))
        return {"size": [max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Mask):
            # Nearest with half-pixel centres: legacy "nearest" (torch and cv2 INTER_NEAREST, used by mmcv)
            # shifts masks by up to one pixel per resize, which adds up over crop-ms-3x's two resizes.
            return F.resize(inpt, params["size"], interpolation=v2.InterpolationMode.NEAREST_EXACT)
        return self._call_kernel(
            F.resize, inpt, params["size"], interpolation=v2.InterpolationMode.BILINEAR, antialias=self.antialias
        )


class RandomAbsoluteCrop(v2.Transform):
    """Crop a random window whose height and width are each uniform in ``[low, high]`` pixels.

    As mmdetection's ``RandomCrop(crop_type='absolute_range', allow_negative_crop=True)`` used by the
    QueryInst crop-ms-3x config (and DETR's ``RandomSizeCrop``): ``crop_h ~ U{min(H, low)..min(H, high)}``,
    ``crop_w`` likewise, offset uniform over the valid positions. A crop may leave no instance; the image
    is kept (all-background). Boxes are clipped to the window; ``InstanceTransforms`` drops emptied ones.
    """

    def __init__(self, size_range: tuple[int, int]) -> None:
        super().__init__()
        low, high = int(size_range[0]), int(size_range[1])
        if not 0 < low <= high:
            raise ValueError(f"crop size range must satisfy 0 < low <= high, got {size_range}")
        self.low, self.high = low, high

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        crop_h = _randint(min(height, self.low), min(height, self.high))
        crop_w = _randint(min(width, self.low), min(width, self.high))
        return {
            "top": _randint(0, height - crop_h),
            "left": _randint(0, width - crop_w),
            "height": crop_h,
            "width": crop_w,
        }

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self._call_kernel(F.crop, inpt, **params)


class InstanceTransforms:
    """Apply a v2 pipeline to ``(image, Targets)``, keeping boxes, masks and labels in sync.

    Input: ``image [3, H, W]`` (uint8 or float; dtype kept), ``Targets`` in that image's pixels.
    Output: the transformed image ``[3, H', W']`` and ``Targets`` with ``boxes [N', 4]``,
    ``labels [N']``, ``masks [N', H', W']`` bool and ``ignore_boxes [M', 4]`` in the new pixels;
    ``image_id`` and ``orig_size`` unchanged. An instance is dropped when its box lost all width or height
    (a crop left it outside) or its mask was non-empty before and is empty after; crowd boxes are
    dropped when empty.

    Attributes:
        pipeline: the v2 transform; v2 draws one set of random parameters per call for every input,
            so callers with several frames that must share a resize/flip can call it directly.
    """

    def __init__(self, pipeline: v2.Transform) -> None:
        self.pipeline = pipeline

    def __call__(self, image: Tensor, targets: Targets) -> tuple[Tensor, Targets]:
        return self.apply_many([(image, targets)])[0]

    def apply_many(self, frames: list[tuple[Tensor, Targets]]) -> list[tuple[Tensor, Targets]]:
        """Transform several same-size frames with ONE draw of the random parameters (the same resize,
        flip and crop for all), as a video training pair needs (MaskTrack R-CNN Sec. 4.1)."""
        sample = {}
        had_pixels = []
        for i, (image, targets) in enumerate(frames):
            canvas = tuple(image.shape[-2:])
            ignore = targets.ignore_boxes if targets.ignore_boxes is not None else targets.boxes.new_zeros((0, 4))
            had_pixels.append(targets.masks.flatten(1).any(1))
            sample[i] = {
                "image": tv_tensors.Image(image),
                "boxes": tv_tensors.BoundingBoxes(targets.boxes, format="XYXY", canvas_size=canvas),
                "masks": tv_tensors.Mask(targets.masks),
                "ignore_boxes": tv_tensors.BoundingBoxes(ignore, format="XYXY", canvas_size=canvas),
            }
        out = self.pipeline(sample)
        results = []
        for i, (_, targets) in enumerate(frames):
            o = out[i]
            boxes = o["boxes"].as_subclass(Tensor)
            masks = o["masks"].as_subclass(Tensor)
            ignore = o["ignore_boxes"].as_subclass(Tensor)
            keep = _non_empty(boxes) & (masks.flatten(1).any(1) | ~had_pixels[i])
            new_targets = Targets(
                boxes=boxes[keep],
                labels=targets.labels[keep],
                masks=masks[keep],
                image_id=targets.image_id,
                orig_size=targets.orig_size,
                ignore_boxes=ignore[_non_empty(ignore)],
                instance_ids=None if targets.instance_ids is None else targets.instance_ids[keep],
            )
            results.append((o["image"].as_subclass(Tensor), new_targets))
        return results

    def __repr__(self) -> str:
        return f"InstanceTransforms({self.pipeline})"


def _non_empty(boxes: Tensor) -> Tensor:
    """[N] bool: xyxy boxes with positive width and height (mmdetection RandomCrop's rule)."""
    return (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


def _check_sizes(cfg: DataConfig, several: bool) -> None:
    n = len(cfg.min_sizes)
    if several and n < 2:
        raise ValueError(
            f"data.recipe '{cfg.recipe}' draws the short side from data.min_sizes, which has {n} value(s) "
            f"{list(cfg.min_sizes)}; set e.g. [480, 512, ..., 800] (paper Sec. 4)"
        )
    if not several and n != 1:
        raise ValueError(
            f"data.recipe '{cfg.recipe}' uses one short side but data.min_sizes has {n}: "
            f"{list(cfg.min_sizes)}; use recipe 'ms-3x' for multi-scale"
        )


def build_transforms(cfg: DataConfig, train: bool) -> InstanceTransforms:
    """The augmentation of ``cfg.recipe`` for training, or the test resize when ``train`` is False.

    Raises:
        ValueError: unknown recipe, or ``min_sizes`` that do not fit the recipe.
    """
    if not train:
        return InstanceTransforms(ResizeShortSide((cfg.test_min_size,), cfg.test_max_size))
    if cfg.recipe not in RECIPES:
        raise ValueError(f"unknown data.recipe '{cfg.recipe}'; choose one of {list(RECIPES)}")
    flip = v2.RandomHorizontalFlip(p=cfg.flip_prob)
    if cfg.recipe in ("1x", "fixed"):
        _check_sizes(cfg, several=False)
        return InstanceTransforms(v2.Compose([ResizeShortSide(cfg.min_sizes, cfg.max_size), flip]))
    _check_sizes(cfg, several=True)
    multi_scale = ResizeShortSide(cfg.min_sizes, cfg.max_size)
    if cfg.recipe == "ms-3x":
        return InstanceTransforms(v2.Compose([multi_scale, flip]))
    crop_then_resize = v2.Compose(
        [
            ResizeShortSide(cfg.crop_min_sizes, cfg.max_size),
            RandomAbsoluteCrop(cfg.crop_size),
            ResizeShortSide(cfg.min_sizes, cfg.max_size),
        ]
    )
    return InstanceTransforms(v2.Compose([flip, v2.RandomChoice([multi_scale, crop_then_resize])]))
