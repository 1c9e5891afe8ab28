"""The training-step case of the benchmark harness (vis/bench/harness.py, section ``training``): one
optimiser step of the image QueryInst on a fixed batch, and the same step of mmdetection 3.3's own
QueryInst on the same batch, with the same weights, when mmdetection is importable.

One step is what the trainer runs per iteration: ours is ``image.engine.train_step`` itself (zero the
gradients, forward with the losses of every stage, backward, gradient clipping, AdamW step);
mmdetection's is ``model.train_step(data, optim_wrapper)`` (its data preprocessor: normalisation,
padding of the images and of the GT masks; forward with the losses, backward, clipping, AdamW step), with
the optimiser of its ``configs/queryinst/queryinst_r50_fpn_1x_coco.py`` (AdamW, lr 1e-4, weight decay
1e-4, backbone lr x0.1, gradient norm clipped at 0.1). Ours gets the same solver settings.

mmdetection 3.3 takes mmcv < 2.2. With ``mmcv-lite`` (no compiled ops) the missing ``mmcv._ext`` is
replaced by a module whose functions raise, the RoI extractors use mmcv's own ``use_torchvision=True``
RoIAlign path, and ``BitmapMasks.crop_and_resize`` (its mask targets) gets torchvision's ``roi_align``
with the arguments it passes to mmcv's; with full mmcv nothing is replaced. So with mmcv-lite both sides
run torchvision's RoIAlign kernel (tests/support/mmdet_ref.py uses the same helpers).
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import itertools
import logging
import os
import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ...image.build import build_queryinst
from ...image.config import Config, SolverConfig
from ...image.engine import train_step
from ...image.mmdet_import import to_mmdet_state_dict
from ...image.solver import build_optimizer
from ...image.types import Targets
from .models import plausible_boxes, random_frame
from .timing import time_interleaved, top_operators

if TYPE_CHECKING:
    from .harness import BenchmarkSettings

# mmdetection's QueryInst 1x optimiser (configs/queryinst/queryinst_r50_fpn_1x_coco.py, optim_wrapper)
MMDET_SOLVER = SolverConfig(base_lr=1e-4, weight_decay=1e-4, backbone_lr_mult=0.1, grad_clip=0.1, amp=False)
_DEPTHS = {"resnet18": 18, "resnet34": 34, "resnet50": 50, "resnet101": 101}


# ------------------------------------------------------------------------------------ mmdetection
def mmdet_unavailable() -> str | None:
    """None when mmdetection 3.x, mmengine and mmcv import here; else why not (one line)."""
    try:
        import mmcv  # noqa: F401
        import mmdet
        import mmengine  # noqa: F401
    except ImportError as err:
        return f"mmdetection is not importable here ({err})"
    if not mmdet.__version__.startswith("3."):
        return f"mmdetection {mmdet.__version__} is installed; the reference is 3.x"
    return None


def stub_missing_mmcv_ext() -> bool:
    """mmcv-lite: give ``mmcv.ops`` a ``_ext`` whose functions raise, so its Python modules import.
    Returns True when the stub is (or already was) in place, i.e. mmcv's compiled ops are missing."""
    if isinstance(sys.modules.get("mmcv._ext"), types.ModuleType) and getattr(sys.modules["mmcv._ext"], "_qi_stub", False):
        return True
    if importlib.util.find_spec("mmcv._ext") is not None:
        return False
    ext = types.ModuleType("mmcv._ext")

    def __getattr__(name: str):  # module-level __getattr__ (PEP 562)
        if name.startswith("__"):  # __file__, __path__ ...: a plain module has none of these
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise RuntimeError(f"mmcv._ext.{name} is not available in mmcv-lite")
        return unavailable

    ext.__getattr__ = __getattr__
    ext.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", None)  # no loader: "mmcv-full missing"
    ext._qi_stub = True
    sys.modules["mmcv._ext"] = ext
    return True


def torchvision_mask_roi_align(masks, rois, out_shape, spatial_scale, sampling_ratio, pool_mode, aligned):
    """mmcv.ops.roi_align's signature as ``BitmapMasks.crop_and_resize`` calls it, on torchvision's kernel."""
    from torchvision.ops import roi_align

    assert pool_mode == "avg"
    return roi_align(masks, rois, out_shape, spatial_scale=spatial_scale, sampling_ratio=sampling_ratio,
                     aligned=aligned)


def mmdet_queryinst_config_path() -> str:
    """mmdetection's ``configs/queryinst/queryinst_r50_fpn_1x_coco.py`` as installed with the package."""
    import mmdet

    path = os.path.join(os.path.dirname(mmdet.__file__), ".mim", "configs", "queryinst", "queryinst_r50_fpn_1x_coco.py")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"mmdetection's configs are not installed ({path})")
    return path


def build_mmdet_queryinst(cfg: Config | None = None) -> nn.Module:
    """mmdetection's QueryInst from its 1x config, resized to ``cfg.model`` (backbone depth, FPN inputs,
    proposals, classes, stages at most 6; default: the config's own R50, 100 proposals, 80 classes), with mmdetection's own
    random initialisation (no ImageNet download). Seed torch before calling for reproducible weights."""
    use_torchvision = stub_missing_mmcv_ext()
    from mmengine.config import Config as MMConfig
    from mmengine.logging import MMLogger
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    model_cfg = MMConfig.fromfile(mmdet_queryinst_config_path()).model
    model_cfg.backbone.init_cfg = None
    if cfg is not None:
        m = cfg.model
        if m.backbone not in _DEPTHS:
            raise ValueError(f"mmdetection's QueryInst has no '{m.backbone}' backbone here")
        model_cfg.backbone.depth = _DEPTHS[m.backbone]
        width = 64 if _DEPTHS[m.backbone] < 50 else 256
        model_cfg.neck.in_channels = [width, 2 * width, 4 * width, 8 * width]
        model_cfg.rpn_head.num_proposals = m.num_proposals
        model_cfg.test_cfg.rcnn.max_per_img = m.num_proposals
        roi = model_cfg.roi_head
        roi.num_stages = m.num_stages
        roi.stage_loss_weights = list(m.num_stages * [1])  # ours: LossConfig.stage_weights, all 1
        roi.bbox_head, roi.mask_head = roi.bbox_head[: m.num_stages], roi.mask_head[: m.num_stages]
        model_cfg.train_cfg.rcnn = model_cfg.train_cfg.rcnn[: m.num_stages]
        for head in (*roi.bbox_head, *roi.mask_head):
            head.num_classes = m.num_classes
    if use_torchvision:
        for extractor in (model_cfg.roi_head.bbox_roi_extractor, model_cfg.roi_head.mask_roi_extractor):
            extractor.roi_layer.use_torchvision = True
        import mmdet.structures.mask.structures as mask_structures

        mask_structures.roi_align = torchvision_mask_roi_align
    model = MODELS.build(model_cfg)
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # init_weights logs every tensor
    model.init_weights()
    return model


# ------------------------------------------------------------------------------------ the batch
def ellipse_instances(height: int, width: int, count: int, num_classes: int, seed: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` filled ellipses of sizes spread from 24 px to about half the image (every FPN level),
    the last one running off the bottom-right edge (cut there, as an object leaving the image):
    masks [count, h, w] bool, boxes [count, 4] xyxy float (the masks' tight boxes), labels [count]."""
    rng = np.random.default_rng(seed)
    sizes = np.geomspace(24.0, 0.5 * min(height, width), count)
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    masks, boxes = [], []
    for k, size in enumerate(sizes):
        rx, ry = size / 2 * np.exp(rng.uniform(-0.3, 0.3, 2))
        if k == count - 1:
            cx, cy = width - rx / 2, height - ry / 2
        else:
            cx, cy = rng.uniform(rx, width - rx), rng.uniform(ry, height - ry)
        mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        ys, xs = np.nonzero(mask)
        masks.append(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return np.stack(masks), np.asarray(boxes, dtype=np.float32), rng.integers(0, num_classes, count)


class TrainingBatch:
    """One batch for both sides: ``images`` RGB uint8 [h, w, 3] arrays with their instances (masks,
    boxes, labels). ``ours()``: (list of [3, h, w] float in [0, 1], list of Targets), what the image
    data loader gives the trainer; ``mmdet()``: mmdetection's ``train_step`` input (BGR uint8 tensors,
    DetDataSamples with unpadded ``BitmapMasks``: its preprocessor pads them, ``pad_mask=True``)."""

    def __init__(self, images: list[np.ndarray], instances: list[tuple[np.ndarray, np.ndarray, np.ndarray]]):
        self.images, self.instances = images, instances

    def ours(self) -> tuple[list[torch.Tensor], list[Targets]]:
        tensors = [torch.from_numpy(im).permute(2, 0, 1).float().div(255.0) for im in self.images]
        targets = [Targets(boxes=torch.from_numpy(boxes), labels=torch.from_numpy(labels).long(),
                           masks=torch.from_numpy(masks), image_id=i, orig_size=masks.shape[1:])
                   for i, (masks, boxes, labels) in enumerate(self.instances)]
        return tensors, targets

    def mmdet(self) -> dict[str, list]:
        from mmdet.structures import DetDataSample
        from mmdet.structures.mask import BitmapMasks
        from mmengine.structures import InstanceData

        inputs, samples = [], []
        for image, (masks, boxes, labels) in zip(self.images, self.instances):
            h, w = image.shape[:2]
            inputs.append(torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1])).permute(2, 0, 1).contiguous())
            sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0)))
            inst = InstanceData()
            inst.bboxes = torch.from_numpy(boxes)
            inst.labels = torch.from_numpy(labels).long()
            inst.masks = BitmapMasks(masks.astype(np.uint8), h, w)
            sample.gt_instances = inst
            samples.append(sample)
        return {"inputs": inputs, "data_samples": samples}


# ------------------------------------------------------------------------------------ the steps
def our_step(model: nn.Module, batch: TrainingBatch, solver: SolverConfig = MMDET_SOLVER) -> Callable[[], Any]:
    """One trainer iteration of ``model`` (train mode) on ``batch``: ``image.engine.train_step``."""
    model.train()
    cfg = Config()
    cfg.solver = solver
    optimizer = build_optimizer(solver, model)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    params = [p for p in model.parameters() if p.requires_grad]
    loader = itertools.repeat(batch.ours())
    device = torch.device("cpu")
    on_device = lambda inputs, _device: inputs  # noqa: E731  (already on the CPU)
    return lambda: train_step(model, loader, on_device, 1, optimizer, scaler, params, cfg, device, False, 0)


def mmdet_step(mm_model: nn.Module, batch: TrainingBatch) -> Callable[[], Any]:
    """One ``train_step`` of mmdetection's model (train mode) with its config's optimiser wrapper."""
    from mmengine.config import Config as MMConfig
    from mmengine.optim import build_optim_wrapper

    from mmengine.logging import MMLogger

    mm_model.train()
    log = MMLogger.get_current_instance()
    level, _ = log.level, log.setLevel(logging.ERROR)  # one warning per frozen parameter otherwise
    try:
        wrapper = build_optim_wrapper(mm_model, MMConfig.fromfile(mmdet_queryinst_config_path()).optim_wrapper)
    finally:
        log.setLevel(level)
    data = batch.mmdet()
    return lambda: mm_model.train_step(data, wrapper)


def twin_models(cfg: Config, seed: int, prepare: Callable[[nn.Module], None] | None = None
                ) -> tuple[nn.Module, nn.Module | None, str | None]:
    """(ours, mmdetection's with our weights or None, why None). ``prepare`` edits our weights first."""
    torch.manual_seed(seed)
    ours = build_queryinst(cfg)
    if prepare is not None:
        prepare(ours)
    why = mmdet_unavailable()
    if why is not None:
        return ours, None, why
    mm_model = build_mmdet_queryinst(cfg)
    mm_model.load_state_dict(to_mmdet_state_dict(ours.state_dict()), strict=True)
    return ours, mm_model, None


# ----------------------------------------------------------------------------------------- the harness section
def bench_training(s: BenchmarkSettings) -> dict[str, Any]:
    """One training iteration (``our_step`` / ``mmdet_step`` above) of ours and, when importable, of mmdetection's
    QueryInst: same batch, same weights (``plausible_boxes`` spreads the proposals over every level),
    interleaved; the top operators of our step (and of mmdetection's). Target (10): ours / mmdetection."""
    cfg = Config()
    cfg.model.backbone, cfg.model.num_proposals = s.backbone, s.training_queries
    cfg.model.num_classes, cfg.model.num_stages = s.training_classes, s.training_stages
    h, w = (max(sizes) for sizes in zip(*s.training_sizes))
    ours, theirs, why = twin_models(cfg, s.seed, lambda m: plausible_boxes(m, h, w, s.seed))
    batch = TrainingBatch([random_frame(bh, bw, s.seed + i) for i, (bh, bw) in enumerate(s.training_sizes)],
                          [ellipse_instances(bh, bw, s.training_instances, s.training_classes, s.seed + i)
                           for i, (bh, bw) in enumerate(s.training_sizes)])
    cases = {"training_step": our_step(ours, batch)}
    if theirs is not None:
        cases["mmdet_training_step"] = mmdet_step(theirs, batch)
    timings, loads = time_interleaved(cases, s.repeats, min(s.warmup, 1))
    out: dict[str, Any] = {"backbone": s.backbone, "images": [list(x) for x in s.training_sizes],
                           "queries": s.training_queries, "stages": s.training_stages, "classes": s.training_classes,
                           "instances_per_image": s.training_instances,
                           "mmdet": "timed in this process" if theirs is not None else why,
                           "cases": timings, "load_1min": loads}
    if theirs is not None:
        out["ratios"] = {"training_step/mmdet_training_step": timings["training_step"]["median_ms"]
                         / timings["mmdet_training_step"]["median_ms"]}
    if s.repeats > 1:
        out["profile_training_step"] = top_operators(cases["training_step"], calls=1, limit=16)
        if theirs is not None:
            out["profile_mmdet_training_step"] = top_operators(cases["mmdet_training_step"], calls=1, limit=16)
    return out
