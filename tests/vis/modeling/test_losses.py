import math

import torch

from queryinst.vis.modeling.losses import match_logits, track_loss, track_targets


def test_targets_point_at_the_same_instance_or_new():
    key_ids = torch.tensor([5, 9, 3])
    ref_ids = torch.tensor([3, 5])
    assert track_targets(key_ids, ref_ids).tolist() == [2, 0, 1]


def test_hand_built_case():
    # one key instance, two references; the key embedding matches reference 2 exactly
    key = torch.tensor([[1.0, 0.0]])
    ref = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    logits = match_logits(key, ref)
    assert logits.tolist() == [[0.0, 0.0, 2.0]]
    loss = track_loss([key], [ref], [torch.tensor([2])])
    expected = -math.log(math.exp(2) / (1 + 1 + math.exp(2)))
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)
    # a "new" target (absent from the reference frame) is scored against the dummy column
    loss_new = track_loss([key], [ref], [torch.tensor([0])])
    assert math.isclose(loss_new.item(), -math.log(1 / (2 + math.exp(2))), rel_tol=1e-6)


def test_mean_per_image_then_over_the_images_as_masktrack_rcnn():
    # 2019 MaskTrack R-CNN TrackHead.loss: each image's CE sum / its key instances, then / the images
    # of the batch; an image without key instances adds 0 but still counts.
    key = [torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.zeros(0, 2)]
    ref = [torch.tensor([[1.0, 0.0]]), torch.zeros(0, 2)]
    tgt = [torch.tensor([1, 0]), torch.zeros(0, dtype=torch.long)]
    per = [-math.log(math.e / (1 + math.e)), -math.log(1 / 2)]
    assert math.isclose(track_loss(key, ref, tgt).item(), sum(per) / 2 / 2, rel_tol=1e-6)
    # images with 2 and 1 key instances: each image weighs the same, not each instance
    key3 = [key[0], torch.tensor([[0.0, 1.0]])]
    ref3 = [ref[0], torch.tensor([[1.0, 0.0]])]
    tgt3 = [tgt[0], torch.tensor([1])]
    second = -math.log(1 / 2)  # dot product 0: p(ref 1) = 1/2
    assert math.isclose(track_loss(key3, ref3, tgt3).item(), (sum(per) / 2 + second) / 2, rel_tol=1e-6)
    empty = track_loss([torch.zeros(0, 2, requires_grad=True)], [torch.zeros(0, 2)], [torch.zeros(0, dtype=torch.long)])
    assert empty.item() == 0.0
