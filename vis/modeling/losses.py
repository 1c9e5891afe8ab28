"""The MaskTrack R-CNN track loss (Yang et al. 2019, Eq. 2) used by QueryInst-VIS.

For a key-frame instance i and the M reference-frame instances, p(j) = softmax([0, e_i . r_1, ...,
e_i . r_M])_j, where column 0 is "new / not in the reference frame" with a fixed logit 0. The target
is 1 + the index of the same instance among the reference GTs, or 0 if it is absent.

Reduction as the 2019 MaskTrack R-CNN code (youtubevos/MaskTrackRCNN ``TrackHead.loss``): per image the
cross-entropy summed over its matched key instances divided by their number, then the mean over the
images of the batch (an image without matched key instances adds 0). mmdetection 3.x ``RoIEmbedHead``
computes the same per-instance terms (tests/vis/modeling/test_mmdet_track_head_reference.py) but divides each
image's sum by the number of key instances that also appear in the reference frame, which weights the
"new" terms of absent instances up; we keep the original, the head the paper adds (Sec. 3.5).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...image.losses import at_least_fp32


def match_logits(key_emb: Tensor, ref_emb: Tensor) -> Tensor:
    """key_emb [K, D], ref_emb [M, D] -> logits [K, M + 1] with the dummy 0 in column 0."""
    dots = key_emb @ ref_emb.t()
    return torch.cat([dots.new_zeros((dots.shape[0], 1)), dots], dim=1)


def track_targets(key_ids: Tensor, ref_ids: Tensor) -> Tensor:
    """Instance ids of key GTs [K] and reference GTs [M] -> class targets [K] in [0, M]."""
    same = key_ids[:, None] == ref_ids[None, :]  # [K, M]
    has = same.any(dim=1)
    return torch.where(has, same.float().argmax(dim=1) + 1, torch.zeros_like(key_ids))


def track_loss(key_emb: list[Tensor], ref_emb: list[Tensor], targets: list[Tensor]) -> Tensor:
    """Mean over the B images of each image's mean cross-entropy over its key instances (see above).

    key_emb[b]: [K_b, D]; ref_emb[b]: [M_b, D]; targets[b]: [K_b] from ``track_targets``.
    """
    losses = []
    for k, r, t in zip(key_emb, ref_emb, targets):
        if len(t) == 0:
            continue
        k = at_least_fp32(k)
        losses.append(F.cross_entropy(match_logits(k, r.to(k.dtype)), t, reduction="sum") / len(t))
    if not losses:
        return sum(k.sum() for k in key_emb) * 0.0
    return torch.stack(losses).sum() / max(len(targets), 1)
