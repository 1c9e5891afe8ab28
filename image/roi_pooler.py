"""Multi-level RoIAlign with mmdetection's FPN level assignment.

Each box goes to level floor(log2(sqrt(w*h) / finest_scale + 1e-6)), clamped to P2-P5
(mmdetection ``SingleRoIExtractor``, finest_scale=56), and is pooled with
``torchvision.ops.roi_align(aligned=True, sampling_ratio=2)``. torchvision's MultiScaleRoIAlign
assigns levels the same way but pools with aligned=False, which is why it is not used here.

torchvision's CPU RoIAlign kernel runs on one thread. In CPU inference with more than one torch thread,
a level's RoIs are split into as many chunks and pooled concurrently (the op releases the GIL); every
RoI is still pooled by the same kernel from the same map, so the output is bit-identical
(tests/image/test_roi_pooler.py). Measured here: 200 RoIs from a 200x336 P2, 59 -> 38 ms with 2 threads.
In CPU training the forward is torchvision's too and the backward is ``RoIAlignWindowGrad``'s: the same
gradient to float rounding, computed per RoI window with matrix products (the R50 training step
9.85 -> 9.20 s of CPU time, 1 thread; docs/benchmarks.md, training).
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
    """``roi_align(aligned=True)``; split over the torch threads in CPU inference (see the module note);
    in CPU training with a fixed sampling ratio, ``RoIAlignWindowGrad`` (same forward, faster backward).
    Tracing/export and CUDA take the plain single call."""
    def pool(part: Tensor) -> Tensor:
        return roi_align(feat, part, output_size, spatial_scale=scale, sampling_ratio=sampling_ratio, aligned=True)

    if (torch.is_grad_enabled() and feat.requires_grad and feat.device.type == "cpu" and sampling_ratio > 0
            and not torch.jit.is_tracing() and not torch.jit.is_scripting()):
        return RoIAlignWindowGrad.apply(feat, rois, output_size, scale, sampling_ratio)
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


# ----------------------------------------------------------------------------------------- training
class RoIAlignWindowGrad(torch.autograd.Function):
    """``roi_align(aligned=True)`` with a fixed ``sampling_ratio``: torchvision's forward, and a backward
    that gives the same gradient (to float rounding: another summation order) several times faster on
    the CPU (docs/benchmarks.md, training).

    torchvision's CPU backward loops over every (RoI, channel, bin, sample) and recomputes the sample's
    bilinear corners for each channel, adding one float at a time. Bilinear sampling is separable: the
    pooled value of bin (p, q) is ``sum_{y,x} Ay[p, y] * F[y, x] * Ax[q, x] / count``, where ``Ay`` holds
    the row weights of the bin's samples (``1 - ly`` on the low row, ``ly`` on the high row, 0 for a
    sample outside [-1, size], the clamping and edge rules of torchvision's
    ``bilinear_interpolate_gradient``) and ``Ax`` the column weights. So a RoI's gradient is the window
    ``Ay^T G Ax / count`` over the rows and columns its samples touch: two batched matrix products per
    group of RoIs of similar window size, then one add of each window into the level's gradient.
    """

    @staticmethod
    def forward(ctx, feat: Tensor, rois: Tensor, output_size: int, scale: float, sampling_ratio: int) -> Tensor:
        ctx.save_for_backward(rois)
        ctx.shape, ctx.output_size, ctx.scale, ctx.sampling_ratio = feat.shape, output_size, scale, sampling_ratio
        return roi_align(feat, rois, output_size, spatial_scale=scale, sampling_ratio=sampling_ratio, aligned=True)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        (rois,) = ctx.saved_tensors
        return roi_align_input_grad(grad, rois, ctx.shape, ctx.scale, ctx.sampling_ratio), None, None, None, None


WINDOW_GROUP = 16  # RoIs per batched product (sorted by window size, so little padding is computed)


def _axis_weights(start: Tensor, bin_size: Tensor, bins: int, samples: int, size: int
                  ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Sample coordinates along one axis, as torchvision computes them ([R, bins, samples]): ``start +
    p * bin + (i + 0.5) * bin / samples``; then its low / high pixel and their weights (0 outside)."""
    p = torch.arange(bins, dtype=start.dtype, device=start.device).view(1, bins, 1)
    i = torch.arange(samples, dtype=start.dtype, device=start.device).add_(0.5).view(1, 1, samples)
    c = (start.view(-1, 1, 1) + p * bin_size.view(-1, 1, 1)) + (i * bin_size.view(-1, 1, 1)) / samples
    inside = (c >= -1.0) & (c <= size)
    c = c.clamp(min=0)
    low = c.floor()
    edge = low >= size - 1
    low = torch.where(edge, torch.full_like(low, size - 1), low)
    frac = torch.where(edge, torch.zeros_like(c), c - low)
    high = torch.where(edge, low, low + 1)
    return low.long(), high.long(), (1 - frac) * inside, frac * inside


def _window_weights(low: Tensor, high: Tensor, w_low: Tensor, w_high: Tensor, origin: Tensor, extent: int
                    ) -> Tensor:
    """[R, bins, extent]: each bin's weights on the rows (columns) origin .. origin + extent - 1."""
    r, bins, _ = low.shape
    out = w_low.new_zeros((r, bins, extent))
    o = origin.view(-1, 1, 1)
    out.scatter_add_(2, (low - o).clamp_(0, extent - 1), w_low)
    out.scatter_add_(2, (high - o).clamp_(0, extent - 1), w_high)
    return out


def _window(low: Tensor, high: Tensor, weight: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """First pixel and number of pixels [R] each RoI's samples touch with a nonzero weight (1 if none)."""
    big = torch.full_like(low, size)
    first = torch.where(weight > 0, low, big).flatten(1).amin(1)
    last = torch.where(weight > 0, high, -big).flatten(1).amax(1)
    first = torch.where(last >= first, first, torch.zeros_like(first))
    return first, (last - first + 1).clamp(min=1)


def roi_align_input_grad(grad: Tensor, rois: Tensor, shape: torch.Size, scale: float, sampling_ratio: int) -> Tensor:
    """The gradient of ``roi_align(feat, rois, P, scale, sampling_ratio, aligned=True)`` with respect to
    ``feat`` [B, C, H, W], for the output gradient ``grad`` [R, C, P, P] (see ``RoIAlignWindowGrad``)."""
    _, c, h, w = shape
    out = grad.new_zeros(shape)
    if rois.numel() == 0:
        return out
    r, bins = grad.shape[0], grad.shape[-1]
    s = sampling_ratio
    rois = rois.to(grad.dtype)
    x0, y0 = rois[:, 1] * scale - 0.5, rois[:, 2] * scale - 0.5
    x1, y1 = rois[:, 3] * scale - 0.5, rois[:, 4] * scale - 0.5
    ylo, yhi, wylo, wyhi = _axis_weights(y0, (y1 - y0) / bins, bins, s, h)
    xlo, xhi, wxlo, wxhi = _axis_weights(x0, (x1 - x0) / bins, bins, s, w)
    top, rows = _window(ylo, yhi, wylo + wyhi, h)
    left, cols = _window(xlo, xhi, wxlo + wxhi, w)
    g = grad / (s * s)  # [R, C, P, P]
    order = torch.argsort(rows * cols).tolist()
    batch, top_l, left_l, rows_l, cols_l = (t.tolist() for t in (rois[:, 0].long(), top, left, rows, cols))
    for start in range(0, r, WINDOW_GROUP):
        idx = order[start:start + WINDOW_GROUP]
        sel = torch.tensor(idx, device=grad.device)
        hw, ww = max(rows_l[i] for i in idx), max(cols_l[i] for i in idx)
        ay = _window_weights(ylo[sel], yhi[sel], wylo[sel], wyhi[sel], top[sel], hw)  # [n, P, hw]
        ax = _window_weights(xlo[sel], xhi[sel], wxlo[sel], wxhi[sel], left[sel], ww)  # [n, P, ww]
        n = len(idx)
        cols_g = torch.bmm(g[sel].view(n, c * bins, bins), ax).view(n, c, bins, ww)  # G Ax: [n, C, P, ww]
        win = torch.matmul(ay.transpose(1, 2).unsqueeze(1), cols_g)  # Ay^T G Ax: [n, C, hw, ww]
        for k, i in enumerate(idx):
            y, x = top_l[i], left_l[i]
            out[batch[i], :, y:y + rows_l[i], x:x + cols_l[i]] += win[k, :, :rows_l[i], :cols_l[i]]
    return out
