import torch

from queryinst.image.box_head import BoxHead
from queryinst.image.dynamic_conv import DynamicConv
from queryinst.image.mask_head import DynamicMaskHead


def test_dynamic_conv_shapes_and_per_query_kernels():
    torch.manual_seed(0)
    conv = DynamicConv(32, 8, 32, pooled_size=7, with_proj=True)
    q, roi = torch.randn(5, 32), torch.randn(5, 32, 7, 7)
    assert conv(q, roi).shape == (5, 32)
    no_proj = DynamicConv(32, 8, 16, pooled_size=14, with_proj=False)
    assert no_proj(torch.randn(3, 32), torch.randn(3, 32, 14, 14)).shape == (3, 196, 16)
    # each query's kernels act on its own RoI only: changing RoI 0 leaves output 1 unchanged
    roi2 = roi.clone()
    roi2[0] += 1
    out1, out2 = conv(q, roi), conv(q, roi2)
    assert not torch.allclose(out1[0], out2[0]) and torch.allclose(out1[1:], out2[1:])


def test_box_head_shapes_and_query_permutation_equivariance():
    torch.manual_seed(0)
    head = BoxHead(num_classes=3, dim=32, num_heads=4, dynamic_dim=8, feedforward_dim=64).eval()
    q, roi = torch.randn(2, 6, 32), torch.randn(12, 32, 7, 7)
    cls, deltas, q2, attn = head(q, roi)
    assert cls.shape == (2, 6, 3) and deltas.shape == (2, 6, 4) and q2.shape == attn.shape == (2, 6, 32)
    perm = torch.tensor([3, 1, 0, 5, 2, 4])
    roi_p = roi.view(2, 6, 32, 7, 7)[:, perm].reshape(12, 32, 7, 7)
    cls_p, deltas_p, _, _ = head(q[:, perm], roi_p)
    assert torch.allclose(cls_p, cls[:, perm], atol=1e-5) and torch.allclose(deltas_p, deltas[:, perm], atol=1e-5)


def test_classifier_prior_bias():
    head = BoxHead(num_classes=3, dim=32, num_heads=4, dynamic_dim=8, feedforward_dim=64)
    assert torch.allclose(head.cls_logits.bias.sigmoid(), torch.full((3,), 0.01))


def test_mask_head_output_is_28x28_per_class():
    head = DynamicMaskHead(num_classes=5, dim=32, dynamic_dim=8, pooled_size=14)
    assert head(torch.randn(4, 32), torch.randn(4, 32, 14, 14)).shape == (4, 5, 28, 28)
