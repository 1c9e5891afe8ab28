"""Typed containers passed across the package's boundaries (dataset -> model -> postprocess)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor


@dataclass
class Targets:
    """Ground truth of one image, in the coordinates of the (possibly transformed) image tensor.

    boxes: [N, 4] float32 xyxy, absolute pixels.
    labels: [N] int64 contiguous class indices in [0, num_classes).
    masks: [N, H, W] bool, same H, W as the image tensor.
    image_id: the dataset's id of the image (COCO ``image_id``).
    orig_size: (height, width) of the image as stored on disk, before any transform.
    ignore_boxes: [M, 4] crowd regions (COCO ``iscrowd=1``), never used as positives.
    instance_ids: [N] int64 video instance ids (YouTube-VIS annotation ids) for the track loss; None
        for still images.
    """

    boxes: Tensor
    labels: Tensor
    masks: Tensor
    image_id: int
    orig_size: tuple[int, int]
    ignore_boxes: Tensor | None = None
    instance_ids: Tensor | None = None

    def to(self, device: torch.device | str) -> "Targets":
        return replace(
            self,
            boxes=self.boxes.to(device),
            labels=self.labels.to(device),
            masks=self.masks.to(device),
            ignore_boxes=None if self.ignore_boxes is None else self.ignore_boxes.to(device),
            instance_ids=None if self.instance_ids is None else self.instance_ids.to(device),
        )


@dataclass
class ImageBatch:
    """A padded batch ready for the network.

    tensors: [B, 3, Hp, Wp] float, normalised, zero-padded to a multiple of the size divisor.
    image_sizes: per image (h, w) of the unpadded content inside ``tensors``.
    """

    tensors: Tensor
    image_sizes: list[tuple[int, int]]

    def to(self, device: torch.device | str) -> "ImageBatch":
        return ImageBatch(self.tensors.to(device), self.image_sizes)


@dataclass
class Predictions:
    """Detections of one image in original-image coordinates.

    boxes: [K, 4] float xyxy pixels of the original image; scores: [K] in [0, 1]; labels: [K] int64;
    masks: [K, H, W] bool at the original resolution (or None when masks were not requested);
    query_indices: [K] which query produced each detection (used by the track head).
    """

    boxes: Tensor
    scores: Tensor
    labels: Tensor
    masks: Tensor | None
    query_indices: Tensor
    image_id: int = -1
