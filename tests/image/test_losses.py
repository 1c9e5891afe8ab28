import math

import pytest
import torch

from queryinst.image.losses import dice_loss, focal_loss_sum, giou_loss_sum, mask_targets, normalizer


def test_focal_loss_hand_computed():
    # logit 0 (p = 0.5): target 1 -> 0.25 * 0.25 * log 2; target 0 -> 0.75 * 0.25 * log 2
    loss = focal_loss_sum(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
    assert math.isclose(loss.item(), (0.0625 + 0.1875) * math.log(2), rel_tol=1e-5)


def test_dice_loss_hand_computed():
    p = torch.tensor([[[0.5, 0.5], [0.0, 1.0]]])
    t = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    # inter = 0.5 + 1 = 1.5; sum p^2 = 0.25+0.25+1 = 1.5; sum t^2 = 2 -> 1 - 3 / (3.5 + 2e-5)
    assert math.isclose(dice_loss(p, t).item(), 1 - 3 / (3.5 + 2e-5), rel_tol=1e-6)
    assert dice_loss(t, t).item() < 1e-5


def test_giou_loss_hand_computed():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0]])
    # IoU = 1/7, enclosing area 9, union 7 -> GIoU = 1/7 - 2/9
    assert math.isclose(giou_loss_sum(a, b).item(), 1 - (1 / 7 - 2 / 9), rel_tol=1e-5)
    assert giou_loss_sum(a, a).item() < 1e-6


def test_mask_targets_crop_and_resize():
    gt = torch.zeros(1, 40, 40, dtype=torch.bool)
    gt[0, 10:30, 10:20] = True  # left half of the box below is foreground
    out = mask_targets(gt, torch.tensor([[10.0, 10.0, 30.0, 30.0]]), torch.tensor([0]), 28)
    assert out.shape == (1, 28, 28)
    assert out[0, :, :14].all() and not out[0, :, 14:].any()


def test_normalizer_clamps_to_one():
    assert normalizer(0, torch.device("cpu")).item() == 1.0
    assert normalizer(7, torch.device("cpu")).item() == 7.0


def test_mask_target_box_is_clipped_to_the_padded_size_first():
    # mmdetection mask_target_single clips the box to the GT mask size before crop_and_resize
    gt = torch.ones(1, 20, 20, dtype=torch.bool)
    box = torch.tensor([[10.0, 0.0, 30.0, 20.0]])  # half outside on the right
    unclipped = mask_targets(gt, box, torch.tensor([0]), 28)
    clipped = mask_targets(gt, box, torch.tensor([0]), 28, clip_to=(20, 20))
    assert unclipped[0, :, :14].all() and not unclipped[0, :, 15:].any()
    assert clipped.all()


def test_mask_target_past_the_image_edge_samples_the_batch_padding():
    # mmdetection pads GT masks with the batch (pad_mask=True): a box reaching past the right edge of an
    # image that is padded in its batch crops zeros there, not the repeated last column of the mask.
    gt = torch.ones(1, 20, 20, dtype=torch.bool)  # the image is 20x20, its batch 20x40
    box = torch.tensor([[10.0, 0.0, 30.0, 20.0]])  # half of it in the padding
    padded = mask_targets(gt, box, torch.tensor([0]), 28, clip_to=(20, 40))
    assert padded[0, :, :14].all() and not padded[0, :, 15:].any()
    explicit = mask_targets(torch.nn.functional.pad(gt, (0, 20)), box, torch.tensor([0]), 28, clip_to=(20, 40))
    assert torch.equal(padded, explicit)
    with pytest.raises(ValueError, match="exceed the padded batch size"):
        mask_targets(gt, box, torch.tensor([0]), 28, clip_to=(10, 40))
