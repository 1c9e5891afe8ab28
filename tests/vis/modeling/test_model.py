"""QueryInst-VIS model: training losses on a pair, per-frame detection, start from an image checkpoint."""
import pytest
import torch

from queryinst.image.build import build_queryinst
from queryinst.image.config import Config
from queryinst.image.types import Targets
from queryinst.vis.config import VisConfig
from queryinst.vis.modeling.build import build_queryinst_vis, init_from_image_checkpoint
from support.repo import tiny_config


def tiny_vis_config() -> VisConfig:
    return tiny_config(vis=True, num_stages=2, track_dim=64)


def _pair():
    masks = torch.zeros(2, 64, 96, dtype=torch.bool)
    masks[0, 8:30, 10:40] = True
    masks[1, 30:60, 50:90] = True
    key = Targets(torch.tensor([[10.0, 8.0, 40.0, 30.0], [50.0, 30.0, 90.0, 60.0]]), torch.tensor([0, 2]), masks,
                  1, (64, 96), instance_ids=torch.tensor([11, 12]))
    ref = Targets(torch.tensor([[52.0, 28.0, 92.0, 58.0]]), torch.tensor([2]), masks[1:], 1, (64, 96),
                  instance_ids=torch.tensor([12]))
    g = torch.Generator().manual_seed(0)
    return [torch.rand(3, 64, 96, generator=g)], [key], [torch.rand(3, 64, 96, generator=g)], [ref]


def test_training_step_has_track_loss_and_reaches_the_track_head():
    torch.manual_seed(0)
    model = build_queryinst_vis(tiny_vis_config()).train()
    losses = model(*_pair())
    assert "loss_track" in losses and torch.isfinite(losses["loss_track"])
    assert len(losses) == 2 * 4 + 1
    sum(losses.values()).backward()
    assert model.track_head.fcs[0].weight.grad.abs().sum() > 0


def test_detect_keeps_one_detection_per_query_at_most_max_per_frame():
    torch.manual_seed(0)
    cfg = tiny_vis_config()
    cfg.inference.score_threshold = 0.0
    cfg.inference.max_per_frame = 6
    cfg.inference.embedding = "track_head"  # its 64-d output (the query sources: tests/vis/modeling/test_query_embeddings.py)
    model = build_queryinst_vis(cfg).eval()
    dets = model.detect([torch.rand(3, 64, 96)], orig_sizes=[(128, 192)])[0]
    assert len(dets.scores) == 6
    assert len(set(dets.query_indices.tolist())) == 6
    assert dets.masks.shape == (6, 128, 192) and dets.embeddings.shape == (6, 64)
    assert torch.all(dets.scores[:-1] >= dets.scores[1:])
    tracker_input = dets.to_tracker()
    assert tracker_input.embeddings.shape == (6, 64)


def test_init_from_image_checkpoint_subsets_proposals_and_reinitialises_classes(tmp_path):
    torch.manual_seed(0)
    image_cfg = Config()
    image_cfg.model.backbone = "resnet18"
    image_cfg.model.num_stages = 2
    image_cfg.model.num_proposals = 20
    image_model = build_queryinst(image_cfg)  # 80 classes
    path = tmp_path / "image.pth"
    torch.save({"model": {f"module.{k}": v for k, v in image_model.state_dict().items()}}, path)
    vis = build_queryinst_vis(tiny_vis_config())
    report = init_from_image_checkpoint(vis.detector, str(path))
    state = vis.detector.state_dict()
    assert torch.equal(state["proposals.boxes.weight"], image_model.state_dict()["proposals.boxes.weight"][:10])
    assert "proposals.features.weight" in report["subset"]
    assert "stages.0.box_head.cls_logits.weight" in report["reinitialised"]
    assert torch.equal(state["stages.1.box_head.ffn_in.weight"], image_model.state_dict()["stages.1.box_head.ffn_in.weight"])


def test_init_from_checkpoint_of_another_backbone_fails_naming_the_tensor(tmp_path):
    other = Config()
    other.model.backbone = "resnet34"
    other.model.num_stages = 2
    other.model.hidden_dim = 128
    other.model.fpn_channels = 128
    path = tmp_path / "other.pth"
    torch.save({"model": build_queryinst(other).state_dict()}, path)
    vis = build_queryinst_vis(tiny_vis_config())
    with pytest.raises(ValueError, match="other.pth"):
        init_from_image_checkpoint(vis.detector, str(path))


@torch.no_grad()
def _reference_detect(model, images, orig_sizes):
    """QueryInstVIS.detect as it was before the speed work (commit 282bf99): every FPN level computed
    whole, selection and mask paste inline. Kept here to pin the faster path to it bit for bit."""
    from queryinst.image.postprocess import paste_masks

    lazy_levels, model.detector.lazy_levels = model.detector.lazy_levels, ()
    batch = model.detector.preprocess(images)
    raw = model.detector.run_stages(batch)
    model.detector.lazy_levels = lazy_levels
    last = raw.stages[-1]
    out = []
    for i, ((h, w), (oh, ow)) in enumerate(zip(raw.image_sizes, orig_sizes)):
        scores, labels = last.cls_logits[i].sigmoid().max(dim=1)
        scores, queries = scores.topk(min(model.max_per_frame, len(scores)))
        keep = scores >= model.score_threshold
        scores, queries, labels = scores[keep], queries[keep], labels[queries[keep]]
        boxes = last.boxes[i, queries]
        rois = torch.cat([boxes.new_full((len(queries), 1), i), boxes], 1)
        emb = model.embed(raw.features, rois)
        scale = boxes.new_tensor([ow / w, oh / h, ow / w, oh / h])
        logits = model.detector.stages[-1].predict_masks(raw.features, rois, last.attn_feats[i, queries])
        probs = logits[torch.arange(len(labels)), labels].sigmoid()
        masks = paste_masks(probs, boxes * scale, oh, ow, model.mask_threshold)
        out.append((boxes * scale, scores, labels, masks, emb, queries))
    return out


@pytest.mark.parametrize("plausible", [True, False])
def test_detect_equals_the_reference_implementation_bit_for_bit(plausible):
    from queryinst.vis.bench.models import benchmark_vis_model

    cfg = tiny_vis_config()
    cfg.model.fpn_channels = cfg.model.hidden_dim = 64
    cfg.model.dynamic_dim = 16
    if plausible:  # boxes on a spread of object sizes (P2 partly used), every query detected
        model = benchmark_vis_model(cfg, 256, 320, seed=0)
    else:  # random boxes of a random-weight model
        torch.manual_seed(0)
        model = build_queryinst_vis(cfg).eval()
        model.score_threshold = 0.0
    model.set_embedding("track_head")  # the reference's embeddings (the query sources: test_query_embeddings.py)
    g = torch.Generator().manual_seed(3)
    images = [torch.rand(3, 256, 320, generator=g), torch.rand(3, 224, 320, generator=g)]
    sizes = [(360, 450), (224, 320)]
    got = model.detect(images, orig_sizes=sizes)
    want = _reference_detect(model, images, sizes)
    for dets, ref in zip(got, want):
        for name, value in zip(("boxes", "scores", "labels", "masks", "embeddings", "query_indices"), ref):
            assert torch.equal(getattr(dets, name), value), name
    assert got[0].masks.any() and len(got[0].scores) == 10
