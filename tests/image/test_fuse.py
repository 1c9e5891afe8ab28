"""BatchNorm folding for inference (image/fuse.py): the folded model computes the same outputs up to
float rounding, no BatchNorm is left behind, and a folded model can be neither trained nor saved."""
import copy

import pytest
import torch
from torch import nn

from queryinst.image.build import build_queryinst
from queryinst.image.checkpoint import save_checkpoint
from queryinst.image.config import Config
from queryinst.image.fuse import fold_batchnorm, is_folded


def _randomise_batchnorms(model: nn.Module, seed: int) -> int:
    """Non-trivial statistics and affine parameters, so that folding has something to get wrong."""
    g = torch.Generator().manual_seed(seed)
    count = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                count += 1
    return count


def _model(backbone: str) -> nn.Module:
    torch.manual_seed(0)
    cfg = Config()
    cfg.model.backbone = backbone
    cfg.model.num_classes = 5
    cfg.model.num_stages = 2
    cfg.model.num_proposals = 8
    cfg.model.fpn_channels = cfg.model.hidden_dim = 64
    cfg.model.dynamic_dim, cfg.model.feedforward_dim = 16, 128
    return build_queryinst(cfg).eval()


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50", "mobilenet_v3_large"])
@torch.no_grad()
def test_folded_model_gives_the_same_outputs(backbone):
    model = _model(backbone)
    num_bn = _randomise_batchnorms(model, seed=len(backbone))
    folded = copy.deepcopy(model)
    assert fold_batchnorm(folded) == num_bn  # every BatchNorm of these models follows a conv
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert is_folded(folded) and not is_folded(model)

    image = torch.rand(3, 160, 224, generator=torch.Generator().manual_seed(3))
    tensor = model.preprocess([image]).tensors
    want = model.raw_outputs(tensor, (160, 224))
    got = folded.raw_outputs(tensor, (160, 224))
    for key in ("cls_logits", "boxes"):
        for a, b in zip(got[key], want[key]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))
    scale = float(want["mask_logits"].abs().max())
    torch.testing.assert_close(got["mask_logits"], want["mask_logits"], rtol=1e-4, atol=1e-4 * scale)
    # the features themselves, level by level (the backbone holds every folded BatchNorm but the mask head's)
    for a, b in zip(folded.backbone(tensor), model.backbone(tensor)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


def test_fold_needs_eval_mode_and_a_folded_model_is_not_saved(tmp_path):
    model = _model("resnet18")
    with pytest.raises(RuntimeError, match="eval"):
        fold_batchnorm(model.train())
    fold_batchnorm(model.eval())
    path = tmp_path / "folded.pth"
    with pytest.raises(RuntimeError, match="folded"):
        save_checkpoint(str(path), model, None, None, 0, 0, Config())
    assert list(tmp_path.iterdir()) == []


def test_inference_loader_returns_a_folded_model(tmp_path):
    from queryinst.vis.modeling.build import build_queryinst_vis, load_vis_model
    from queryinst.vis.config import VisConfig

    cfg = VisConfig()
    cfg.model.backbone, cfg.model.num_classes, cfg.model.num_stages, cfg.model.track_dim = "resnet18", 3, 2, 64
    model = build_queryinst_vis(cfg)
    save_checkpoint(str(tmp_path / "m.pth"), model, None, None, 1, 1, cfg)
    _, loaded, _, _ = load_vis_model(cfg, str(tmp_path / "m.pth"), device="cpu")
    assert is_folded(loaded) and not loaded.training
    assert not any(isinstance(m, nn.BatchNorm2d) for m in loaded.modules())


@torch.no_grad()
def test_torchvision_detection_backbone_with_frozen_batchnorm_folds_exactly():
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops.misc import FrozenBatchNorm2d

    torch.manual_seed(0)
    floor = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5).eval()
    g = torch.Generator().manual_seed(1)
    frozen = [m for m in floor.modules() if isinstance(m, FrozenBatchNorm2d)]
    for m in frozen:
        n = m.weight.numel()
        m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
        m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
        m.weight.copy_(torch.rand(n, generator=g) + 0.5)
        m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    folded = copy.deepcopy(floor)
    assert fold_batchnorm(folded) == len(frozen)  # the stem's pair included (IntermediateLayerGetter)
    x = torch.randn(1, 3, 96, 128, generator=g)
    want, got = floor(x), folded(x)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-4 * float(want[key].abs().max()))


@torch.no_grad()
def test_folded_vis_detect_keeps_queries_labels_and_masks():
    """What a user sees: the same detections from QueryInst-VIS with and without folding (MobileNetV3, the
    shipped demo's backbone, whose 60-odd BatchNorms all fold). Mask pixels may differ only where the
    mask probability sits at the threshold."""
    from queryinst.image.postprocess import paste_masks
    from queryinst.vis.bench.models import benchmark_vis_model
    from queryinst.vis.config import VisConfig

    cfg = VisConfig()
    cfg.model.backbone, cfg.model.num_classes, cfg.model.num_stages, cfg.model.track_dim = "mobilenet_v3_large", 4, 2, 64
    cfg.model.fpn_channels = cfg.model.hidden_dim = 64
    cfg.model.dynamic_dim, cfg.model.feedforward_dim = 16, 128
    plain = benchmark_vis_model(cfg, 128, 192, seed=1, fold=False)
    _randomise_batchnorms(plain, seed=5)
    folded = copy.deepcopy(plain)
    fold_batchnorm(folded)
    image = torch.rand(3, 128, 192, generator=torch.Generator().manual_seed(6))
    want, got = plain.detect([image])[0], folded.detect([image])[0]
    assert len(want.scores) == plain.max_per_frame  # every query detected (score threshold 0)
    assert torch.equal(got.query_indices, want.query_indices) and torch.equal(got.labels, want.labels)
    torch.testing.assert_close(got.scores, want.scores, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got.boxes, want.boxes, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(got.embeddings, want.embeddings, rtol=1e-4, atol=1e-4 * float(want.embeddings.abs().max()))
    # mask probabilities of the unfolded model: pixels away from the threshold must agree exactly
    raw = plain.detector.run_stages(plain.detector.preprocess([image]))
    last = raw.stages[-1]
    q = want.query_indices
    rois = torch.cat([last.boxes.new_zeros(len(q), 1), last.boxes[0, q]], 1)
    probs = plain.detector.stages[-1].predict_masks(raw.features, rois, last.attn_feats[0, q])[
        torch.arange(len(q)), want.labels].sigmoid()
    inner = paste_masks(probs, want.boxes, 128, 192, plain.mask_threshold + 1e-3)
    outer = paste_masks(probs, want.boxes, 128, 192, plain.mask_threshold - 1e-3)
    assert want.masks.any()
    for masks in (want.masks, got.masks):  # inner <= masks <= outer (the reference itself, then the folded model)
        assert torch.equal(masks & inner, inner) and not (masks & ~outer).any()
