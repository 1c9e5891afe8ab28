import math

import torch

from queryinst.image.box_ops import (MAX_LOG_RATIO, cxcywh_to_xyxy, decode_deltas, encode_deltas,
                                     xyxy_to_cxcywh)


def test_delta_round_trip():
    g = torch.Generator().manual_seed(0)
    boxes = torch.rand(50, 2, generator=g) * 100
    boxes = torch.cat([boxes, boxes + 5 + torch.rand(50, 2, generator=g) * 100], 1)
    targets = torch.rand(50, 2, generator=g) * 100
    targets = torch.cat([targets, targets + 5 + torch.rand(50, 2, generator=g) * 100], 1)
    deltas = encode_deltas(boxes, targets)
    assert torch.allclose(decode_deltas(boxes, deltas), targets, atol=1e-4)


def test_decode_hand_computed_with_stds():
    box = torch.tensor([[10.0, 20.0, 30.0, 60.0]])  # centre (20, 40), size (20, 40)
    deltas = torch.tensor([[1.0, -1.0, math.log(2.0), 0.0]])
    # stds (0.5, 0.5, 1, 1): centre moves by 0.5*20 and -0.5*40, width doubles
    expected = torch.tensor([[30.0 - 20.0, 20.0 - 20.0, 30.0 + 20.0, 20.0 + 20.0]])
    assert torch.allclose(decode_deltas(box, deltas), expected)


def test_decode_clamps_log_size():
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    out = decode_deltas(box, torch.tensor([[0.0, 0.0, 100.0, -100.0]]))
    w, h = out[0, 2] - out[0, 0], out[0, 3] - out[0, 1]
    assert math.isclose(w.item(), 10 * math.exp(MAX_LOG_RATIO), rel_tol=1e-5)  # log(1000/16) clamp
    assert math.isclose(h.item(), 10 * math.exp(-MAX_LOG_RATIO), rel_tol=1e-5)


def test_cxcywh_round_trip():
    b = torch.tensor([[0.5, 0.5, 1.0, 1.0], [3.0, 4.0, 2.0, 6.0]])
    assert torch.allclose(cxcywh_to_xyxy(b)[0], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert torch.allclose(xyxy_to_cxcywh(cxcywh_to_xyxy(b)), b)
