import math

import torch

from queryinst.vis.losses import match_logits, track_loss, track_targets


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


def test_average_over_all_key_instances_and_empty_images():
    key = [torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.zeros(0, 2)]
    ref = [torch.tensor([[1.0, 0.0]]), torch.zeros(0, 2)]
    tgt = [torch.tensor([1, 0]), torch.zeros(0, dtype=torch.long)]
    per = [-math.log(math.e / (1 + math.e)), -math.log(1 / 2)]
    assert math.isclose(track_loss(key, ref, tgt).item(), sum(per) / 2, rel_tol=1e-6)
    empty = track_loss([torch.zeros(0, 2, requires_grad=True)], [torch.zeros(0, 2)], [torch.zeros(0, dtype=torch.long)])
    assert empty.item() == 0.0
