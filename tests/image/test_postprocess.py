import torch

from queryinst.image.postprocess import paste_masks, topk_detections


def test_topk_over_queries_and_classes():
    logits = torch.tensor([[0.0, 5.0], [3.0, -1.0], [4.0, 4.5]])
    scores, labels, queries = topk_detections(logits, 3)
    assert queries.tolist() == [0, 2, 2] and labels.tolist() == [1, 1, 0]
    assert torch.allclose(scores, torch.tensor([5.0, 4.5, 4.0]).sigmoid())


def test_paste_full_mask_fills_its_box():
    masks = paste_masks(torch.ones(1, 28, 28), torch.tensor([[2.0, 3.0, 10.0, 7.0]]), 12, 16)
    expected = torch.zeros(12, 16, dtype=torch.bool)
    expected[3:7, 2:10] = True
    assert torch.equal(masks[0], expected)


def test_paste_half_mask_is_bilinear_in_the_box():
    probs = torch.zeros(1, 28, 28)
    probs[0, :, :14] = 1.0  # left half
    masks = paste_masks(probs, torch.tensor([[0.0, 0.0, 20.0, 10.0]]), 10, 20)
    assert masks[0, :, :10].all() and not masks[0, :, 10:].any()


def test_degenerate_boxes_do_not_crash():
    boxes = torch.tensor([[5.0, 5.0, 5.0, 9.0],           # zero width
                          [10.0, 10.0, 2.0, 2.0],         # inverted
                          [-1e6, -1e6, -1e5, -1e5],       # far outside
                          [float("nan"), 0.0, 3.0, 3.0],  # NaN
                          [-1e4, -1e4, 1e4, 1e4]])          # huge, image at its centre
    masks = paste_masks(torch.ones(5, 28, 28), boxes, 8, 8)
    assert masks.shape == (5, 8, 8)
    assert not masks[:4].any() and masks[4].all()
