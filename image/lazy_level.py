"""An FPN output level computed only where RoIAlign reads it (inference speed; exact).

The 3x3 output conv of P2 (256 -> 256 channels at stride 4) is the largest single layer of a ResNet-50-FPN,
about a quarter of the backbone's multiply-adds at 360x640 (P3's another 7%). QueryInst reads the pyramid
only through RoIAlign at the boxes that the level assignment sends to each level (P2: sqrt(wh) < 112 px),
typically a few regions. A ``LazyLevel`` holds the merged lateral map (the conv's input) and runs the conv
tile by tile, the first time a RoI samples a tile; ``multilevel_roi_align`` asks it for the RoIs of its
level. ``QueryInst(lazy_levels=...)`` picks the levels (P2 and P3 by default) for inference.

Exactness: a tile is computed as ``conv2d(zero-padded lateral[window + 1 px halo], padding=0)``, which gives
bit-for-bit the values of ``conv2d(lateral, padding=1)`` inside the window as long as both calls take the
same kernel. PyTorch sends a 3x3 float conv to oneDNN when its input has more than 20480 elements (at
one thread; always with more), and oneDNN computes each output pixel in the same order whatever the
window size; so every window here holds more than ``_ONEDNN_MIN_NUMEL`` input elements, and a level
whose full input is not above that is computed whole (tests/image/test_lazy_level.py checks equality).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# PyTorch (aten/src/ATen/native/ConvUtils.h, use_mkldnn): float convs with fewer input elements than this
# may take another kernel, whose rounding differs.
_ONEDNN_MIN_NUMEL = 20480
DEFAULT_TILE = 16  # level pixels per tile side (64 input pixels at P2)


class LazyLevel:
    """One FPN output level, ``conv(lateral)``, computed on demand.

    Args:
        lateral: [B, C_in, H, W] the merged lateral map (the conv's input).
        conv: the level's 3x3, stride 1, padding 1 output conv.
        tile: tile side in level pixels (grown if needed so that every window keeps the oneDNN kernel).
    """

    def __init__(self, lateral: Tensor, conv: nn.Conv2d, tile: int = DEFAULT_TILE) -> None:
        if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1) or conv.dilation != (1, 1):
            raise ValueError("LazyLevel needs a 3x3 conv with stride 1 and padding 1")
        b, c, h, w = lateral.shape
        self.conv = conv
        self.shape = (b, conv.out_channels, h, w)
        self.tile = max(tile, math.isqrt(_ONEDNN_MIN_NUMEL // c) + 1)
        self.whole = (h + 2) * (w + 2) * c <= 4 * _ONEDNN_MIN_NUMEL  # small level: compute it at once
        self._padded = F.pad(lateral, (1, 1, 1, 1))
        self._values = lateral.new_zeros(self.shape)
        self._done = torch.zeros((b, -(-h // self.tile), -(-w // self.tile)), dtype=torch.bool)
        self.computed_tiles = 0  # for tests and profiling

    @property
    def num_tiles(self) -> int:
        """Tiles of the level over the batch (``computed_tiles`` of them computed so far)."""
        return self._done.numel()

    def for_rois(self, rois: Tensor, stride: int) -> Tensor:
        """rois [K, 5] (batch index, x1, y1, x2, y2 in input pixels), the level's stride -> the level
        [B, C, H, W], exact at every position RoIAlign(aligned=True, spatial_scale=1/stride) reads for
        these RoIs (zero where nothing was computed yet)."""
        need = self._tiles_needed(rois, stride)
        missing = need & ~self._done
        if missing.any():
            for b, r0, r1, c0, c1 in _rectangles(missing):
                self._compute(b, r0, r1, c0, c1)
            self._done |= missing
            self.computed_tiles += int(missing.sum())
        return self._values

    def _tiles_needed(self, rois: Tensor, stride: int) -> Tensor:
        b, _, h, w = self.shape
        need = torch.zeros_like(self._done)
        if rois.numel() == 0:
            return need
        if self.whole or not torch.isfinite(rois).all():
            return ~need
        # RoIAlign (aligned=True) samples x in [x1 * scale - 0.5, x2 * scale - 0.5] (either order for an
        # inverted box) and reads the pixels floor(x) and floor(x) + 1, clamped to the map; one more pixel
        # on each side absorbs the rounding of the kernel's float32 arithmetic.
        pts = rois[:, 1:].detach().double().cpu() / stride - 0.5
        lo = torch.minimum(pts[:, :2], pts[:, 2:]).floor().long() - 1
        hi = torch.maximum(pts[:, :2], pts[:, 2:]).floor().long() + 2
        for bi, (x0, y0), (x1, y1) in zip(rois[:, 0].long().tolist(), lo.tolist(), hi.tolist()):
            x0, x1 = max(0, min(x0, w - 1)), max(0, min(x1, w - 1))
            y0, y1 = max(0, min(y0, h - 1)), max(0, min(y1, h - 1))
            t = self.tile
            need[bi, y0 // t: y1 // t + 1, x0 // t: x1 // t + 1] = True
        return need

    def _compute(self, b: int, r0: int, r1: int, c0: int, c1: int) -> None:
        """Tiles [r0, r1) x [c0, c1) of image b (tile units), widened until the window keeps the oneDNN kernel."""
        _, _, h, w = self.shape
        t, cin = self.tile, self._padded.shape[1]
        y0, y1, x0, x1 = r0 * t, min(r1 * t, h), c0 * t, min(c1 * t, w)
        while (y1 - y0 + 2) * (x1 - x0 + 2) * cin <= _ONEDNN_MIN_NUMEL and (y1 - y0, x1 - x0) != (h, w):
            y0, y1, x0, x1 = max(0, y0 - t), min(h, y1 + t), max(0, x0 - t), min(w, x1 + t)
        window = self._padded[b:b + 1, :, y0:y1 + 2, x0:x1 + 2]
        self._values[b:b + 1, :, y0:y1, x0:x1] = F.conv2d(window, self.conv.weight, self.conv.bias)


def _rectangles(mask: Tensor) -> list[tuple[int, int, int, int, int]]:
    """Cover the True cells of ``mask`` [B, R, C] with rectangles (b, r0, r1, c0, c1): runs of True in a
    row, each extended down while the next row has the same run (few conv calls, no cell twice)."""
    out = []
    for b in range(mask.shape[0]):
        rows = [_runs(row) for row in mask[b].tolist()]
        for r, runs in enumerate(rows):
            for run in runs:
                r1 = r + 1
                while r1 < len(rows) and run in rows[r1]:
                    rows[r1].remove(run)
                    r1 += 1
                out.append((b, r, r1, *run))
    return out


def _runs(row: list[bool]) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, v in enumerate(row + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append((start, i))
            start = None
    return runs
