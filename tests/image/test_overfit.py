"""Overfit test: a tiny QueryInst trained on four synthetic images learns them (pycocotools segm AP >= 0.9).

About a minute on 2 CPU cores. It exercises the whole training path that matters for learning:
matching, the four losses on every stage, the backbone/FPN/heads and inference with mask pasting.
"""
import pytest
import torch

from queryinst.image.build import build_queryinst
from queryinst.image.config import load_config
from queryinst.image.data import CocoInstances, build_transforms, collate, load_coco_gt
from queryinst.image.data.synthetic import make_coco_dataset
from queryinst.image.eval.coco_eval import CocoEvaluator
from queryinst.image.solver import build_optimizer, clip_gradients

pytestmark = pytest.mark.slow  # a whole training run

ITERS = 300
LR = 2e-3  # AdamW; chosen for a from-scratch tiny model, not the paper's 2.5e-5


def test_tiny_model_overfits_four_images(tmp_path):
    ann = make_coco_dataset(tmp_path / "coco", 4, height=96, width=128, seed=1)
    cfg = load_config("configs/synthetic/image_tiny.yaml", [
        "model.num_stages=2", "model.norm_eval=false", "data.min_sizes=[96]", "data.max_size=128",
        "data.test_min_size=96", "data.test_max_size=128", "data.flip_prob=0.0", f"solver.base_lr={LR}",
        "solver.weight_decay=0.0"])
    dataset = CocoInstances(str(ann), str(tmp_path / "coco" / "images"), build_transforms(cfg.data, train=True))
    images, targets = collate([dataset[i] for i in range(len(dataset))])
    torch.manual_seed(0)
    model = build_queryinst(cfg).train()
    optimizer = build_optimizer(cfg.solver, model)
    params = [p for p in model.parameters() if p.requires_grad]
    first = None
    for it in range(ITERS):
        scale = min(1.0, (it + 1) / 20) * (0.1 if it >= 0.8 * ITERS else 1.0)  # warmup, one step down
        for group in optimizer.param_groups:
            group["lr"] = LR * scale
        loss = sum(model(images, targets).values())
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        clip_gradients(params, 1.0)
        optimizer.step()
    assert loss.item() < 0.2 * first
    model.eval()
    with torch.no_grad():
        predictions = model(images, orig_sizes=[t.orig_size for t in targets])
    for p, t in zip(predictions, targets):
        p.image_id = t.image_id
    evaluator = CocoEvaluator(load_coco_gt(str(ann)), dataset.cat_ids)
    evaluator.process(predictions)
    metrics = evaluator.summarize()
    assert metrics["bbox/AP"] >= 0.9, metrics
    assert metrics["segm/AP"] >= 0.9, metrics
