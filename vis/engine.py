"""QueryInst-VIS training: the image trainer's loop (``image/engine.py``) with the video task plugged in.

Batches are (key frame, reference frame) pairs from a YouTube-VIS-format split; evaluation, when a
labelled val split is configured (``data.val_json`` + ``data.val_images`` + ``data.val_gt_json``), runs
the real online path (``vis/inference.predict_split``) and the YouTube-VIS evaluator.
"""
from __future__ import annotations

import logging
import os
from typing import Any

import torch
from torch import nn

from ..image.atomic import write_json_atomic
from ..image.engine import TrainingTask
from ..tracking.tracker import OnlineTracker
from .config import VisConfig
from .data.sampling import YTVISPairs, build_pair_transforms, collate_pairs
from .data.ytvis import YTVISDataset
from .eval.ytvis_eval import evaluate_ytvis, load_ytvis_gt
from .inference import predict_split
from .modeling.build import build_queryinst_vis

logger = logging.getLogger(__name__)


def _pairs_to(batch: tuple, device: torch.device) -> tuple:
    key_images, key_targets, ref_images, ref_targets = batch
    return ([im.to(device, non_blocking=True) for im in key_images], [t.to(device) for t in key_targets],
            [im.to(device, non_blocking=True) for im in ref_images], [t.to(device) for t in ref_targets])


def evaluate_video_split(model: nn.Module, cfg: VisConfig, split: YTVISDataset, gt: dict,
                         out_dir: str | None = None, tag: str = "") -> dict[str, float]:
    """Track every video of ``split`` with ``model`` and score the records against ``gt`` (YouTube-VIS
    video AP/AR). Writes ``results_<tag>.json`` in ``out_dir`` when given."""
    was_training = model.training
    try:
        records = predict_split(model, OnlineTracker(cfg.tracker), split.videos, split.cat_ids,
                                cfg.data.test_min_size, cfg.data.test_max_size, progress=False)
    finally:
        model.train(was_training)
    metrics = evaluate_ytvis(gt, records)
    if out_dir:
        write_json_atomic(records, os.path.join(out_dir, f"results_{tag}.json"))
    logger.info("%s: video AP %.4f AP50 %.4f AR10 %.4f (%d tracks)", tag, metrics["AP"], metrics["AP50"],
                metrics["AR10"], len(records))
    return metrics


def build_vis_task(cfg: VisConfig) -> TrainingTask:
    """YouTube-VIS-format training pairs, QueryInst-VIS (optionally from ``model.init_from``), and video
    evaluation on a labelled val split when configured and ``run.eval_period > 0``."""
    if not cfg.data.train_json:
        raise ValueError("data.train_json is empty: set the YouTube-VIS training JSON")
    train_split = YTVISDataset(cfg.data.train_json, cfg.data.train_images)
    if train_split.num_classes != cfg.model.num_classes:
        raise ValueError(f"model.num_classes is {cfg.model.num_classes} but {cfg.data.train_json} has "
                         f"{train_split.num_classes} categories")
    train_split.check_frames()  # every listed frame, before the output folder is touched
    train_set = YTVISPairs(train_split, build_pair_transforms(cfg.data), cfg.data.ref_range)
    evaluate_fn = None
    if cfg.data.val_json and cfg.data.val_gt_json and cfg.run.eval_period > 0:
        val_split = YTVISDataset(cfg.data.val_json, cfg.data.val_images)
        val_split.check_frames()
        gt = load_ytvis_gt(cfg.data.val_gt_json)

        def evaluate_fn(model: nn.Module, out_dir: str, tag: str) -> dict[str, Any]:
            return evaluate_video_split(model, cfg, val_split, gt, out_dir, tag)

    return TrainingTask(model=build_queryinst_vis(cfg), train_set=train_set, collate=collate_pairs,
                        to_device=_pairs_to, evaluate=evaluate_fn,
                        extra={"class_names": list(train_split.class_names), "cat_ids": list(train_split.cat_ids)})


__all__ = ["build_vis_task", "evaluate_video_split"]
