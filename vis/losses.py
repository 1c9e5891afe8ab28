"""The MaskTrack R-CNN track loss (Yang et al. 2019, Eq. 2) used by QueryInst-VIS.

For a key-frame instance i and the M reference-frame instances, p(j) = softmax([0, e_i . r_1, ...,
e_i . r_M])_j, where column 0 is "new / not in the reference frame" with a fixed logit 0. The target
is 1 + the index of the same instance among the reference GTs, or 0 if it is absent. Cross-entropy
averaged over the key instances.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..image.losses import at_least_fp32


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
    """Sum over images of the cross-entropy, divided by the total number of key instances (>= 1).

    key_emb[b]: [K_b, D]; ref_emb[b]: [M_b, D]; targets[b]: [K_b] from ``track_targets``.
    """
    total = sum(len(t) for t in targets)
    losses = [F.cross_entropy(match_logits(at_least_fp32(k), r.to(at_least_fp32(k).dtype)), t, reduction="sum")
              for k, r, t in zip(key_emb, ref_emb, targets) if len(t) > 0]
    if not losses:
        return sum(k.sum() for k in key_emb) * 0.0
    return torch.stack(losses).sum() / max(total, 1)
