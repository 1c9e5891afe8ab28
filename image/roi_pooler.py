"""Multi-level RoIAlign with mmdetection's FPN level assignment.

Each box goes to level floor(log2(sqrt(w*h) / finest_scale + 1e-6)), clamped to P2-P5
(mmdetection ``SingleRoIExtractor``, finest_scale=56), and is pooled with
``torchvision.ops.roi_align(aligned=True, sampling_ratio=2)``. torchvision's MultiScaleRoIAlign
assigns levels the same way but pools with aligned=False, which is why it is not used here.

torchvision's CPU RoIAlign kernel runs on one thread. In CPU inference with more than one torch thread,
a level's RoIs are split into as many chunks and pooled concurrently (the op releases the GIL); every
RoI is still pooled by the same kernel from the same map, so the output is bit-identical
(tests/image/test_roi_pooler.py). Measured here: 200 RoIs from a 200x336 P2, 59 -> 38 ms with 2 threads.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor
from torchvision.ops import roi_align

from .lazy_level import LazyLevel


def assign_levels(boxes: Tensor, num_levels: int, finest_scale: int = 56) -> Tensor:
    """boxes [K, 4] xyxy (input-image pixels) -> level index [K] in [0, num_levels), or -1 for a box of
    negative area (inverted on one axis), which mmdetection's sqrt turns into NaN: such a RoI is pooled
    from no level and its features stay zero there too."""
    wh = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    scale = wh.clamp(min=0).sqrt()
    levels = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    levels = levels.clamp(min=0, max=num_levels - 1).long()
    return torch.where(wh < 0, torch.full_like(levels, -1), levels)


def multilevel_roi_align(
    features: list[Tensor],
    rois: Tensor,
    output_size: int,
    strides: tuple[int, ...],
    sampling_ratio: int = 2,
    finest_scale: int = 56,
) -> Tensor:
    """Pool RoIs from the pyramid.

    features: [P2..P5], each [B, C, H/s, W/s] or a ``LazyLevel`` (computed here for the RoIs it gets).
    rois: [K, 5] (batch index, x1, y1, x2, y2). Returns [K, C, output_size, output_size].
    """
    levels = assign_levels(rois[:, 1:], len(features), finest_scale)
    ref = next(f for f in features if isinstance(f, Tensor))
    out = ref.new_zeros((rois.shape[0], ref.shape[1], output_size, output_size))
    unused: list[Tensor] = []
    for lvl, (feat, stride) in enumerate(zip(features, strides)):
        idx = torch.nonzero(levels == lvl).squeeze(1)
        if idx.numel() == 0:
            if isinstance(feat, Tensor) and feat.requires_grad and torch.is_grad_enabled():
                unused.append(feat)
            continue
        if isinstance(feat, LazyLevel):
            feat = feat.for_rois(rois[idx], stride)
        pooled = _roi_align(feat, rois[idx], output_size, 1.0 / stride, sampling_ratio)
        out.index_copy_(0, idx, pooled.to(out.dtype))
    if unused:
        # A level no RoI maps to still enters the graph with weight 0, as in mmdetection's
        # SingleRoIExtractor (mmdet/models/roi_heads/roi_extractors/single_level_roi_extractor.py,
        # ``feats[i].sum() * 0.``): every parameter that feeds it (e.g. P5's output conv on a batch of
        # small objects) then gets a zero gradient instead of None, so AdamW still applies its weight
        # decay (and moment decay) to it every step, and DDP needs no ``find_unused_parameters``.
        out = out + sum(feat.sum() for feat in unused) * 0.0
    return out


MIN_ROIS_PER_THREAD = 4  # below this a thread hand-off costs more than it saves
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared helper pool, grown (replaced) when more workers are needed than it has."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            _pool, _pool_size = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="roi_align"), workers
        return _pool


def _roi_align(feat: Tensor, rois: Tensor, output_size: int, scale: float, sampling_ratio: int) -> Tensor:
    """``roi_align(aligned=True)``; split over the torch threads in CPU inference (see the module note).
    Training (autograd), tracing/export and CUDA take the plain single call."""
    def pool(part: Tensor) -> Tensor:
        return roi_align(feat, part, output_size, spatial_scale=scale, sampling_ratio=sampling_ratio, aligned=True)

    chunks = min(torch.get_num_threads(), len(rois) // MIN_ROIS_PER_THREAD)
    if (chunks < 2 or feat.device.type != "cpu" or torch.is_grad_enabled() or torch.jit.is_tracing()
            or torch.jit.is_scripting()):
        return pool(rois)
    parts = rois.tensor_split(chunks)
    executor = _executor(chunks - 1)
    # the calling thread pools the first chunk itself while the helpers pool the others
    futures = [executor.submit(pool, part) for part in parts[1:]]
    first = pool(parts[0])
    return torch.cat([first] + [f.result() for f in futures])


def boxes_to_rois(boxes: Tensor) -> Tensor:
    """boxes [B, N, 4] -> rois [B*N, 5] with the batch index in column 0."""
    b, n = boxes.shape[:2]
    idx = torch.arange(b, device=boxes.device, dtype=boxes.dtype).repeat_interleave(n)
    return torch.cat([idx[:, None], boxes.reshape(b * n, 4)], dim=1)
