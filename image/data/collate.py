"""Batching: the DataLoader's ``collate`` and the model's ``pad_and_normalize``.

Images of a batch have different sizes, so the DataLoader hands over lists; the model pads them into
one tensor on its own device (``pad_and_normalize``), which keeps normalisation on the GPU and lets
inference callers (video frames, webcam) use the same entry point.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..types import ImageBatch, Targets


def collate(batch: Sequence[tuple[Tensor, Targets]]) -> tuple[list[Tensor], list[Targets]]:
    """``DataLoader(collate_fn=collate)``: ``[(image [3,H_i,W_i], Targets), ...]`` -> (images, targets)."""
    images = [image for image, _ in batch]
    targets = [target for _, target in batch]
    return images, targets


def pad_and_normalize(
    images: Sequence[Tensor],
    pixel_mean: Sequence[float],
    pixel_std: Sequence[float],
    size_divisor: int = 32,
) -> ImageBatch:
    """Normalise images and zero-pad them bottom/right into one batch tensor.

    Args:
        images: ``B`` tensors ``[3, H_i, W_i]``, float in [0, 1] (uint8 in [0, 255] also accepted), all
            on one device.
        pixel_mean, pixel_std: per-channel RGB statistics in the 0-255 scale (mmdetection's ``data_preprocessor``).
        size_divisor: the padded height and width are multiples of this (32: the FPN's coarsest stride);
            0 or 1 pads only to the largest image.

    Returns:
        ``ImageBatch`` with ``tensors [B, 3, Hp, Wp]`` float32 = ``(img * 255 - mean) / std`` inside each
        image and 0 in the padding, and ``image_sizes`` the unpadded ``(H_i, W_i)``.

    Raises:
        ValueError: no images, or an image that is not ``[3, H, W]``.
    """
    if len(images) == 0:
        raise ValueError("pad_and_normalize: got no images")
    for i, image in enumerate(images):
        if image.dim() != 3 or image.shape[0] != len(pixel_mean):
            raise ValueError(f"pad_and_normalize: image {i} has shape {tuple(image.shape)}, expected [3, H, W]")
    device = images[0].device
    image_sizes = [(int(im.shape[1]), int(im.shape[2])) for im in images]
    max_h = max(h for h, _ in image_sizes)
    max_w = max(w for _, w in image_sizes)
    if size_divisor > 1:
        max_h = (max_h + size_divisor - 1) // size_divisor * size_divisor
        max_w = (max_w + size_divisor - 1) // size_divisor * size_divisor

    std = torch.as_tensor(pixel_std, dtype=torch.float32, device=device).view(-1, 1, 1)
    mean = torch.as_tensor(pixel_mean, dtype=torch.float32, device=device).view(-1, 1, 1)
    # (x * 255 - mean) / std == x * scale + shift, one fused pass per image
    shift = -mean / std
    scale_float = 255.0 / std
    scale_uint8 = 1.0 / std

    tensors = torch.zeros((len(images), len(pixel_mean), max_h, max_w), dtype=torch.float32, device=device)
    for i, image in enumerate(images):
        h, w = image_sizes[i]
        scale = scale_uint8 if image.dtype == torch.uint8 else scale_float
        torch.addcmul(shift, image.to(dtype=torch.float32), scale, out=tensors[i, :, :h, :w])
    return ImageBatch(tensors, image_sizes)
