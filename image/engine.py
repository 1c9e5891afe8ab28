"""Training and evaluation loops of the still-image QueryInst (the loop is shared by ``vis/``).

``train(cfg, resume)``: seed -> ``TrainingTask`` (model, data, evaluation; ``build_image_task`` for
COCO) -> AdamW + per-iteration schedule -> loop of optimiser steps (gradient accumulation, AMP on CUDA
only, gradient clipping) -> periodic evaluation and checkpoints. Only rank 0 writes files:
``config.yaml``, ``log.jsonl`` (one JSON object per logged iteration), ``last.pth`` / ``epoch_N.pth``,
``metrics_epochN.json`` / ``results_epochN.json``. ``vis/`` trains through the same loop by passing
its own ``build_task``.

Exact resume. The data seen at an iteration is a pure function of ``(run.seed, epoch, position)``
(``sampling.py``: sample order and per-sample augmentation seeds). A resumed run restores model,
optimiser, scheduler, AMP scaler and RNG states from ``last.pth`` and skips the samples of the
iterations already done in the current epoch, so its following losses equal an uninterrupted run's.
``last.pth`` is written at every epoch end and when ``solver.max_iters`` stops a run.
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..cli import select_device
from ..progress import Progress
from . import distributed as dist
from .atomic import write_json_atomic
from .build import build_queryinst
from .checkpoint import load_checkpoint, save_checkpoint
from .config import Config, save_config
from .data import CocoInstances, build_transforms, collate, load_coco_gt
from .eval.coco_eval import CocoEvaluator
from .sampling import SeededSamples, SkipSampler
from .solver import build_optimizer, build_scheduler, clip_gradients, iterations_per_epoch

logger = logging.getLogger(__name__)

LOG_FILE = "log.jsonl"
LAST_CHECKPOINT = "last.pth"


# --------------------------------------------------------------------------------------------------
# Setup helpers
# --------------------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_test_loader(cfg: Config, dataset: Dataset) -> DataLoader:
    """Sequential loader over ``dataset`` (every image once, dataset order)."""
    return DataLoader(dataset, batch_size=cfg.data.batch_size, shuffle=False, num_workers=cfg.data.num_workers,
                      collate_fn=collate)


def build_val_set(cfg: Config) -> tuple[CocoInstances, CocoEvaluator]:
    """The ``data.val_json`` split with test transforms and an evaluator on it.

    Raises:
        FileNotFoundError: the JSON or the image folder is missing.
        ValueError: a malformed JSON, or a category count other than ``model.num_classes``.
    """
    dataset = CocoInstances(cfg.data.val_json, cfg.data.val_images, build_transforms(cfg.data, train=False))
    _check_num_classes(cfg, dataset, cfg.data.val_json)
    dataset.check_images()
    evaluator = CocoEvaluator(load_coco_gt(cfg.data.val_json), dataset.cat_ids)
    return dataset, evaluator


def _check_num_classes(cfg: Config, dataset: CocoInstances, json_path: str) -> None:
    if dataset.num_classes != cfg.model.num_classes:
        raise ValueError(f"model.num_classes is {cfg.model.num_classes} but {json_path} has "
                         f"{dataset.num_classes} categories")


def write_json(path: str, data: Any) -> None:
    """Write ``data`` as indented JSON atomically (``image/atomic.py``)."""
    write_json_atomic(data, path, indent=1)


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, evaluator: CocoEvaluator, progress: bool = True) -> dict:
    """Run ``model`` over ``loader`` and score it: ``{"bbox/AP": ..., "segm/ARl": ...}``.

    ``model`` is the bare QueryInst (not DDP-wrapped); predictions are made at the original image
    sizes (``Targets.orig_size``). The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    evaluator.reset()
    try:
        total = len(loader.dataset) if hasattr(loader.dataset, "__len__") else None
        with Progress(total, "eval", "images", enabled=progress) as bar:
            for images, targets in loader:
                predictions = model(images, orig_sizes=[t.orig_size for t in targets])
                for pred, target in zip(predictions, targets):
                    pred.image_id = target.image_id
                evaluator.process(predictions)
                bar.update(len(targets))
    finally:
        model.train(was_training)
    return evaluator.summarize()


# --------------------------------------------------------------------------------------------------
# What the loop trains
# --------------------------------------------------------------------------------------------------
@dataclass
class TrainingTask:
    """Everything task-specific that ``train`` needs (built after seeding, once per run).

    model: ``model(*to_device(batch, device))`` returns a dict of weighted scalar losses in train mode.
    train_set: the training samples; ``collate`` turns a list of them into a batch.
    to_device: moves a batch to the device and returns the model's positional arguments.
    evaluate: ``(bare model, out_dir, tag) -> metrics``, writing its own results file(s) (tag e.g.
        "epoch12"), or None for no evaluation; runs on rank 0 only.
    extra: plain data stored in every checkpoint (e.g. class names).
    """

    model: nn.Module
    train_set: Dataset
    collate: Callable[[list], Any]
    to_device: Callable[[Any, torch.device], tuple]
    evaluate: Callable[[nn.Module, str, str], dict] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _evaluate_coco(model: nn.Module, out_dir: str, tag: str, loader: DataLoader, evaluator: CocoEvaluator) -> dict:
    """``TrainingTask.evaluate`` of the image task: COCO metrics, results in ``results_<tag>.json``."""
    metrics = evaluate(model, loader, evaluator)
    evaluator.dump_results(os.path.join(out_dir, f"results_{tag}.json"))
    logger.info("%s: bbox AP %.4f, segm AP %.4f", tag, metrics["bbox/AP"], metrics["segm/AP"])
    return metrics


def _images_targets_to(batch: tuple[list[Tensor], list[Any]], device: torch.device) -> tuple:
    images, targets = batch
    return [im.to(device, non_blocking=True) for im in images], [t.to(device) for t in targets]


def build_image_task(cfg: Config) -> TrainingTask:
    """COCO-format instance segmentation: ``data.train_json`` (images without instances dropped), QueryInst,
    and COCO box/mask evaluation on ``data.val_json`` when set and ``run.eval_period > 0``.

    Raises:
        FileNotFoundError / ValueError: missing or malformed data, a category count other than
            ``model.num_classes``, or no training image with an instance.
    """
    if not cfg.data.train_json:
        raise ValueError("data.train_json is empty: set the training annotation file")
    train_set = CocoInstances(cfg.data.train_json, cfg.data.train_images, build_transforms(cfg.data, train=True),
                              filter_empty=True)
    _check_num_classes(cfg, train_set, cfg.data.train_json)
    if len(train_set) == 0:
        raise ValueError(f"{cfg.data.train_json}: no image with a (non-crowd) instance to train on")
    train_set.check_images()  # every image, before the output folder is touched
    evaluate_fn = None
    if cfg.data.val_json and cfg.run.eval_period > 0:
        val_set, evaluator = build_val_set(cfg)
        evaluate_fn = functools.partial(_evaluate_coco, loader=build_test_loader(cfg, val_set), evaluator=evaluator)
    return TrainingTask(model=build_queryinst(cfg), train_set=train_set, collate=collate,
                        to_device=_images_targets_to, evaluate=evaluate_fn,
                        extra={"class_names": list(train_set.class_names), "cat_ids": list(train_set.cat_ids)})


# --------------------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------------------
class _MetricLog:
    """``log.jsonl`` (+ TensorBoard when asked and installed); inactive on ranks other than 0."""

    def __init__(self, out_dir: str, active: bool, tensorboard: bool, resume_iteration: int | None) -> None:
        self.file = None
        self.tb = None
        if not active:
            return
        path = os.path.join(out_dir, LOG_FILE)
        if resume_iteration is not None and os.path.isfile(path):
            _truncate_log(path, resume_iteration)
        self.file = open(path, "a" if resume_iteration is not None else "w")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                logger.warning("run.tensorboard is set but tensorboard is not installed; logging to %s only", path)
            else:
                self.tb = SummaryWriter(os.path.join(out_dir, "tb"))

    def write(self, record: dict[str, Any]) -> None:
        if self.file is not None:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
        if self.tb is not None:
            for key, value in record.items():
                if key not in ("iter", "epoch") and isinstance(value, float):
                    self.tb.add_scalar(key, value, record["iter"])

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tb is not None:
            self.tb.close()


def _truncate_log(path: str, iteration: int) -> None:
    """Drop records after ``iteration`` (written by a run killed after its last checkpoint)."""
    with open(path) as f:
        lines = f.readlines()
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the kill
            continue
        if record.get("iter", 0) <= iteration:
            kept.append(line)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.writelines(kept)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------
def _train_loader(cfg: Config, samples: SeededSamples, sampler: DistributedSampler, collate_fn: Callable,
                  epoch: int, skip_batches: int, pin_memory: bool) -> DataLoader:
    """The loader of ``epoch`` without its first ``skip_batches`` batches (already trained on)."""
    samples.set_epoch(epoch)
    sampler.set_epoch(epoch)
    generator = torch.Generator().manual_seed(cfg.run.seed + epoch)  # worker base seeds; see SeededSamples
    remaining = SkipSampler(sampler, skip_batches * cfg.data.batch_size)
    return DataLoader(samples, batch_size=cfg.data.batch_size, sampler=remaining, num_workers=cfg.data.num_workers,
                      collate_fn=collate_fn, generator=generator, pin_memory=pin_memory)


def _save(cfg: Config, path: str, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
          scaler: torch.amp.GradScaler, epoch: int, iteration: int, extra: dict[str, Any]) -> None:
    save_checkpoint(path, model, optimizer, scheduler, epoch, iteration, cfg, extra=extra, scaler=scaler)
    logger.info("saved %s (epoch %d, iteration %d)", path, epoch, iteration)


def _link_or_copy(src: str, dst: str) -> None:
    """Make ``dst`` a copy of ``src`` atomically (a hard link where the file system allows)."""
    tmp = f"{dst}.tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def train(cfg: Config, resume: bool = False,
          build_task: Callable[[Config], TrainingTask] = build_image_task) -> nn.Module:
    """Train as ``cfg`` says; returns the trained (bare) model.

    Started by ``torchrun`` (``WORLD_SIZE > 1``), every process trains a shard of each batch under
    DDP (gloo on CPU, nccl on CUDA) and only rank 0 writes files.

    Args:
        cfg: the resolved config (for images: ``data.train_json`` required, ``data.val_json`` optional).
        resume: continue exactly from ``<run.output_dir>/last.pth``.
        build_task: config -> model, data and evaluation; called right after seeding with ``run.seed``,
            so the initial weights depend on the seed only.

    Raises:
        FileNotFoundError: a data file, or ``last.pth`` when resuming, is missing.
        ValueError: the data do not fit the config, or the checkpoint was built for another config.
    """
    device = select_device(cfg.run.device)
    distributed = dist.init_from_env(device)
    try:
        return _train(cfg, resume, device, distributed, build_task)
    finally:
        dist.cleanup()


def _train(cfg: Config, resume: bool, device: torch.device, distributed: bool,
           build_task: Callable[[Config], TrainingTask]) -> nn.Module:
    main = dist.is_main_process()
    out_dir = cfg.run.output_dir
    last_path = os.path.join(out_dir, LAST_CHECKPOINT)
    if resume and not os.path.isfile(last_path):
        raise FileNotFoundError(f"--resume: no checkpoint to resume from: {last_path}")
    seed_everything(cfg.run.seed)
    task = build_task(cfg)
    model = task.model.to(device)
    model.train()

    samples = SeededSamples(task.train_set, cfg.run.seed)
    sampler = DistributedSampler(task.train_set, num_replicas=dist.get_world_size(), rank=dist.get_rank(),
                                 shuffle=True, seed=cfg.run.seed)
    batches_per_epoch = math.ceil(len(sampler) / cfg.data.batch_size)
    accumulate = max(1, cfg.solver.accumulate)
    iters_per_epoch = iterations_per_epoch(batches_per_epoch, accumulate)
    total_iters = cfg.solver.epochs * iters_per_epoch
    if cfg.solver.max_iters > 0:
        total_iters = min(total_iters, cfg.solver.max_iters)

    optimizer = build_optimizer(cfg.solver, model)
    scheduler = build_scheduler(cfg.solver, optimizer, iters_per_epoch)
    use_amp = cfg.solver.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    extra = {**task.extra, "iters_per_epoch": iters_per_epoch}

    iteration = 0
    if resume:
        state = load_checkpoint(last_path, model, optimizer, scheduler, scaler, cfg=cfg, map_location=device,
                                restore_rng=True)
        saved_ipe = state["extra"].get("iters_per_epoch", iters_per_epoch)
        if saved_ipe != iters_per_epoch:
            raise ValueError(f"{last_path}: saved with {saved_ipe} iterations per epoch, the config gives "
                             f"{iters_per_epoch} (data.batch_size, solver.accumulate or the data changed)")
        iteration = state["iteration"]
        logger.info("resuming from %s at iteration %d", last_path, iteration)
    elif main and os.path.isfile(last_path):
        logger.warning("%s exists and will be overwritten (pass --resume to continue it)", last_path)
    if main:
        os.makedirs(out_dir, exist_ok=True)
        save_config(cfg, os.path.join(out_dir, "config.yaml"))

    # Every trainable parameter gets a gradient in every iteration, as in mmdetection: FPN levels no RoI
    # maps to and mask heads without positives enter the loss with weight 0 (image/roi_pooler.py,
    # QueryInst._mask_loss). So DDP needs no find_unused_parameters (and its extra graph traversal).
    net = (DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=False) if distributed else model)
    params = [p for p in model.parameters() if p.requires_grad]
    log = _MetricLog(out_dir, main, cfg.run.tensorboard, iteration if resume else None)
    bar = Progress(total_iters, "train", "iterations", initial=iteration, enabled=main)
    try:
        epoch = iteration // iters_per_epoch
        while iteration < total_iters:
            step = iteration % iters_per_epoch
            loader = iter(_train_loader(cfg, samples, sampler, task.collate, epoch, step * accumulate,
                                        device.type == "cuda"))
            while step < iters_per_epoch and iteration < total_iters:
                group = min(accumulate, batches_per_epoch - step * accumulate)
                lr = optimizer.param_groups[-1]["lr"]
                start = time.perf_counter()
                losses = train_step(net, loader, task.to_device, group, optimizer, scaler, params, cfg, device,
                                    use_amp, iteration)
                scheduler.step()
                iteration += 1
                step += 1
                bar.update(1)
                if _due(iteration, cfg.run.log_period) or iteration in (1, total_iters):
                    values = dist.all_reduce_mean({k: float(v) for k, v in losses.items()}, device)
                    values["total"] = sum(values.values())
                    record = {"iter": iteration, "epoch": epoch + 1, "lr": lr, **values,
                              "time": time.perf_counter() - start}
                    log.write(record)
                    bar.set_postfix(loss=f"{values['total']:.4f}", lr=f"{lr:.2e}")
            finished_epoch = step == iters_per_epoch
            if finished_epoch:
                epoch += 1
            _end_of_period(cfg, model, optimizer, scheduler, scaler, epoch, iteration, finished_epoch,
                           iteration >= total_iters, extra, task.evaluate)
    finally:
        bar.close()
        log.close()
    return model


def train_step(net: nn.Module, loader: Iterator, to_device: Callable, group: int,
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, params: Sequence[Tensor],
               cfg: Config, device: torch.device, use_amp: bool, iteration: int) -> dict[str, Tensor]:
    """One optimiser step over ``group`` batches; returns the losses averaged over them (detached). The
    training benchmark times this very function (vis/bench/training_case.py)."""
    optimizer.zero_grad(set_to_none=True)
    sums: dict[str, Tensor] = {}
    for j in range(group):
        inputs = to_device(next(loader), device)
        # gradients are all-reduced only on the last batch of the group
        sync = net.no_sync() if isinstance(net, DistributedDataParallel) and j < group - 1 else contextlib.nullcontext()
        with sync:
            with torch.autocast(device.type, enabled=use_amp):
                losses = net(*inputs)
            total = sum(losses.values())
            if not torch.isfinite(total):
                raise FloatingPointError(f"loss is {float(total)} at iteration {iteration + 1}: "
                                         + ", ".join(f"{k}={float(v):.4g}" for k, v in losses.items()))
            scaler.scale(total / group).backward()
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + value.detach() / group
    scaler.unscale_(optimizer)
    clip_gradients(params, cfg.solver.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return sums


def _due(count: int, period: int) -> bool:
    """Whether ``count`` (epochs or iterations) is a multiple of ``period``; 0 or less means never."""
    return period > 0 and count % period == 0


def _end_of_period(cfg: Config, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                   scaler: torch.amp.GradScaler, epoch: int, iteration: int, finished_epoch: bool, last: bool,
                   extra: dict[str, Any], evaluate_fn: Callable[[nn.Module, str, str], dict] | None) -> None:
    """Checkpoint and evaluate after an epoch, or after the iteration where ``max_iters`` stopped."""
    out_dir = cfg.run.output_dir
    if dist.is_main_process():
        last_path = os.path.join(out_dir, LAST_CHECKPOINT)
        if finished_epoch and (_due(epoch, cfg.run.checkpoint_period) or last):
            epoch_path = os.path.join(out_dir, f"epoch_{epoch}.pth")
            _save(cfg, epoch_path, model, optimizer, scheduler, scaler, epoch, iteration, extra)
            _link_or_copy(epoch_path, last_path)
        else:
            _save(cfg, last_path, model, optimizer, scheduler, scaler, epoch, iteration, extra)
        eval_now = last or (finished_epoch and _due(epoch, cfg.run.eval_period))
        if evaluate_fn is not None and eval_now:
            tag = f"epoch{epoch}" if finished_epoch else f"iter{iteration}"
            metrics = evaluate_fn(model, out_dir, tag)
            write_json(os.path.join(out_dir, f"metrics_{tag}.json"), {"epoch": epoch, "iteration": iteration,
                                                                     **metrics})
    dist.barrier()
