"""QueryInst losses (paper Sec. 3.4 / mmdetection queryinst config), as pure functions.

Per stage, all six weighted 1: sigmoid focal 2.0 (alpha 0.25, gamma 2) over all queries with an
all-zero target for unmatched ones, L1 5.0 on xyxy boxes normalised by the image size, GIoU 2.0, and
dice 8.0 on the GT-class 28x28 mask of matched queries. Every term is averaged by the number of
positives (averaged across ranks in distributed training, clamped to >= 1 so that a batch of empty
images gives a finite loss; mmdetection divides by max(num_pos, eps) instead). Computed in fp32 at
least (half-precision inputs are upcast; float64 stays float64, which the fidelity tests use).
"""
from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import generalized_box_iou_loss, roi_align, sigmoid_focal_loss


def at_least_fp32(t: Tensor) -> Tensor:
    """``t`` as float32, or as it is when it is already float64 (losses never run in half precision)."""
    return t if t.dtype == torch.float64 else t.float()


def focal_loss_sum(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Sum of the sigmoid focal loss (Lin et al. 2017) over all elements. logits/targets: [K, C]."""
    logits = at_least_fp32(logits)
    return sigmoid_focal_loss(logits, targets.to(logits.dtype), alpha=alpha, gamma=gamma, reduction="sum")


def dice_loss(probs: Tensor, targets: Tensor, eps: float = 1e-5) -> Tensor:
    """Per-instance dice loss 1 - 2*sum(p*t) / (sum(p^2) + eps + sum(t^2) + eps).

    probs, targets: [K, H, W] (probabilities, binary targets) -> [K]. mmdetection DiceLoss with
    naive_dice=False, eps=1e-5 added to each squared sum.
    """
    p = at_least_fp32(probs).flatten(1)
    t = targets.to(p.dtype).flatten(1)
    inter = (p * t).sum(1)
    return 1 - 2 * inter / ((p * p).sum(1) + eps + (t * t).sum(1) + eps)


def giou_loss_sum(boxes: Tensor, gt_boxes: Tensor) -> Tensor:
    """Sum over pairs of 1 - GIoU. boxes, gt_boxes: [K, 4] xyxy."""
    if boxes.numel() == 0:
        return boxes.sum() * 0.0
    boxes = at_least_fp32(boxes)
    return generalized_box_iou_loss(boxes, gt_boxes.to(boxes.dtype), reduction="sum")


def mask_targets(gt_masks: Tensor, boxes: Tensor, gt_indices: Tensor, size: int = 28,
                 clip_to: tuple[int, int] | None = None) -> Tensor:
    """Crop each matched GT mask by its (detached) predicted box and resize to size x size.

    gt_masks: [M, H, W] bool at the unpadded image size; boxes: [K, 4] xyxy in the same pixels;
    gt_indices: [K] into gt_masks; clip_to: (h, w) of the padded batch. mmdetection's QueryInst
    config pads the GT masks with the images (``pad_mask=True`` in its DetDataPreprocessor), and
    ``mask_target_single`` (mmdet/structures/mask/mask_target.py) clips each box to that padded mask
    size before ``BitmapMasks.crop_and_resize``. So here the masks are zero-padded at the
    bottom/right to ``clip_to`` first: a box reaching past an image that is padded in its batch then
    samples zeros there, not the repeated edge row RoIAlign would read from an unpadded mask.
    Returns [K, size, size] float in {0, 1}: RoIAlign (aligned=True, sampling_ratio=0) of the binary
    mask, then >= 0.5, as mmdetection's ``BitmapMasks.crop_and_resize(binarize=True)``.
    ``padded_gt_masks`` + ``crop_mask_targets`` are the same in two steps (the model pads an image's
    masks once per training step, not once per stage).
    """
    if boxes.numel() == 0:
        return boxes.new_zeros((0, size, size))
    return crop_mask_targets(padded_gt_masks(gt_masks, boxes.dtype, clip_to), boxes, gt_indices, size,
                             clip=clip_to is not None)


def padded_gt_masks(gt_masks: Tensor, dtype: torch.dtype, clip_to: tuple[int, int] | None = None) -> Tensor:
    """gt_masks [M, H, W] bool -> [M, 1, h, w] of ``dtype``, zero-padded at the bottom/right to ``clip_to``
    (h, w) when given (see ``mask_targets``)."""
    masks = gt_masks.to(dtype)[:, None]
    if clip_to is not None:
        h, w = clip_to
        if h < masks.shape[-2] or w < masks.shape[-1]:
            raise ValueError(f"GT masks of size {tuple(masks.shape[-2:])} exceed the padded batch size {(h, w)}")
        masks = torch.nn.functional.pad(masks, (0, w - masks.shape[-1], 0, h - masks.shape[-2]))
    return masks


def crop_mask_targets(masks: Tensor, boxes: Tensor, gt_indices: Tensor, size: int = 28, clip: bool = True) -> Tensor:
    """masks [M, 1, h, w] from ``padded_gt_masks``; boxes [K, 4]; gt_indices [K] -> [K, size, size] in {0, 1}
    (``mask_targets``; ``clip``: boxes clipped to (h, w) first). Each box is pooled from its own mask
    (the GT index is RoIAlign's batch index), so no mask is copied."""
    if boxes.numel() == 0:
        return boxes.new_zeros((0, size, size))
    if clip:
        h, w = masks.shape[-2:]
        boxes = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
                             boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)], dim=1)
    rois = torch.cat([gt_indices.to(boxes.dtype)[:, None], boxes], dim=1)
    out = roi_align(masks, rois, (size, size), spatial_scale=1.0, sampling_ratio=0, aligned=True)
    return (out[:, 0] >= 0.5).to(boxes.dtype)


def one_hot_targets(num_queries: int, num_classes: int, query_idx: Tensor, labels: Tensor,
                    device: torch.device) -> Tensor:
    """[num_queries, num_classes] with a 1 at (matched query, its GT class); unmatched rows all zero."""
    t = torch.zeros((num_queries, num_classes), device=device)
    t[query_idx, labels] = 1.0
    return t


def normalizer(num_pos: int, device: torch.device) -> Tensor:
    """Number of positives averaged over ranks, clamped to >= 1 (the loss denominator)."""
    n = torch.tensor(float(num_pos), device=device)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(n)
        n = n / torch.distributed.get_world_size()
    return n.clamp(min=1.0)


def mask_logits_for_labels(mask_logits: Tensor, labels: Tensor) -> Tensor:
    """mask_logits [K, C, h, w], labels [K] -> [K, h, w] the logits of each instance's class."""
    return mask_logits[torch.arange(len(labels), device=labels.device), labels]

