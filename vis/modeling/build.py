"""Config -> QueryInst-VIS, including the start from an image checkpoint (``model.init_from``), and the one
model loader of the tools (``load_vis_model``: config + weights, or the shipped demo model -> a folded
model in eval mode)."""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
from torch import nn

from queryinst import resources
from queryinst.weights import resolve_weights

from ...image.build import build_queryinst
from ...image.checkpoint import load_checkpoint, read_model_state, read_model_state_from
from ...image.config import Config, config_from_dict, config_to_dict, merge_into, parse_overrides
from ...image.fuse import fold_batchnorm
from ...image.mmdet_keys import mmdet_key_map
from ...image.safe_load import read_torch_file
from ..config import VisConfig
from .model import QueryInstVIS
from .track_head import TrackHead

logger = logging.getLogger(__name__)

# Layers whose shape depends on the label set: re-initialised when the class count differs.
_CLASS_DEPENDENT = (".box_head.cls_logits.", ".mask_head.mask_logits.")


def build_queryinst_vis(cfg: VisConfig, track_head: bool = True) -> QueryInstVIS:
    """QueryInst-VIS for ``cfg``; with ``model.init_from`` the ImageNet backbone weights are not loaded
    (``model.pretrained`` is cleared: the image checkpoint supplies the backbone).
    track_head=False: no track head, for tracking with an image QueryInst checkpoint (query embeddings)."""
    if cfg.model.init_from and cfg.model.pretrained:
        logger.info("model.init_from is set: ignoring model.pretrained=%s", cfg.model.pretrained)
        cfg.model.pretrained = ""
    detector = build_queryinst(cfg)
    head = TrackHead(cfg.model.fpn_channels, cfg.model.box_pool_size, cfg.model.track_dim,
                     cfg.model.track_num_fcs) if track_head else None
    model = QueryInstVIS(detector, head, cfg.solver.track_loss_weight, cfg.inference.max_per_frame,
                         cfg.inference.score_threshold, cfg.inference.mask_threshold,
                         cfg.inference.embedding_source(track_head), cfg.inference.embedding_scale)
    if cfg.model.init_from:
        init_from_image_checkpoint(model.detector, cfg.model.init_from)
    return model


def init_from_image_checkpoint(detector: nn.Module, path: str) -> dict[str, list[str]]:
    """Load an image QueryInst checkpoint into the VIS detector.

    - Keys in mmdetection's naming are mapped to ours (``image/mmdet_keys.py``).
    - Class-dependent layers (classifier and mask logits) are kept from the checkpoint only when the
      class count matches; otherwise they keep their fresh initialisation (the video label set).
    - Learned proposals: when the checkpoint has more (e.g. 100) than the model (10), the FIRST N are
      taken: proposals are image-independent, and any fixed subset is a valid starting point.
    Returns {"loaded": [...], "reinitialised": [...], "subset": [...]} and logs a summary.
    """
    state = read_model_state(path)
    own = detector.state_dict()
    if any(k.startswith("roi_head.") for k in state):
        to_ours = mmdet_key_map(list(own))
        state = {to_ours[k]: v for k, v in state.items() if k in to_ours}
    report: dict[str, list[str]] = {"loaded": [], "reinitialised": [], "subset": []}
    new_state = {}
    for key, value in own.items():
        src = state.get(key)
        if src is None:
            report["reinitialised"].append(key)
        elif src.shape == value.shape:
            new_state[key] = src
            report["loaded"].append(key)
        elif key.startswith("proposals.") and src.shape[1:] == value.shape[1:] and src.shape[0] >= value.shape[0]:
            new_state[key] = src[: value.shape[0]]
            report["subset"].append(key)
        elif any(p in f".{key}" for p in _CLASS_DEPENDENT):
            report["reinitialised"].append(key)
        else:
            raise ValueError(f"{path}: tensor '{key}' has shape {tuple(src.shape)}, the model expects "
                             f"{tuple(value.shape)} (a checkpoint of another backbone or width?)")
    missing_backbone = [k for k in report["reinitialised"] if k.startswith("backbone.")]
    if missing_backbone:
        raise ValueError(f"{path}: no weights for {len(missing_backbone)} backbone tensors "
                         f"(e.g. '{missing_backbone[0]}'): not a QueryInst checkpoint of this backbone")
    detector.load_state_dict(new_state, strict=False)
    logger.info("init from %s: %d tensors loaded, %d proposal tensors subset, %d re-initialised (%s)", path,
                len(report["loaded"]), len(report["subset"]), len(report["reinitialised"]),
                ", ".join(sorted({k.split(".")[-2] for k in report["reinitialised"]})))
    return report


# The shipped demo model (trained on synthetic shapes only), as repository paths; the package ships both files
# (queryinst/resources.py finds them) and the tools use it when --config / --weights are not given.
DEMO_CONFIG = resources.DEMO_CONFIG
DEMO_WEIGHTS = resources.DEMO_WEIGHTS


def class_names_from_checkpoint(extra: dict, num_classes: int) -> list[str]:
    """Class names stored in a checkpoint's ``extra["class_names"]`` (tools/train.py writes them), or
    "class0", "class1", ... when absent or of the wrong length."""
    names = extra.get("class_names") if isinstance(extra, dict) else None
    if isinstance(names, (list, tuple)) and len(names) == num_classes:
        return [str(n) for n in names]
    return [f"class{k}" for k in range(num_classes)]


def _read_checkpoint(path: str) -> tuple[dict, str, dict | None]:
    """(the checkpoint's data, "vis" | "image", its stored config or None): "vis" when it holds track-head
    weights, else an image QueryInst checkpoint (ours, or converted by tools/convert_mmdet.py). Raises
    ValueError for an unconverted mmdetection checkpoint, FileNotFoundError / ValueError for an unreadable
    file."""
    data = read_torch_file(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a checkpoint (holds a {type(data).__name__}, expected a dict)")
    state = read_model_state_from(data, path)
    if any(k.startswith("roi_head.") for k in state):
        raise ValueError(f"{path}: an mmdetection checkpoint: convert it first (tools/convert_mmdet.py IN OUT), "
                         "or give a registered name (docs/model_zoo.md)")
    stored = data.get("config") if isinstance(data.get("config"), dict) else None
    kind = "vis" if any(k.startswith("track_head.") for k in state) else "image"
    return data, kind, stored


def vis_config_for_image_model(image_cfg: Config) -> VisConfig:
    """A ``VisConfig`` to track with an image QueryInst model: the image config's architecture, the video
    defaults for everything else (tracker, inference, 10 detections a frame), and as test size the image
    model's own, capped at the YouTube-VIS 360 x 640 (paper Sec. 4.3): a COCO model (800 x 1333) tracks at
    360 x 640, a model trained on smaller frames at its own size."""
    cfg = VisConfig()
    merge_into(cfg.model, config_to_dict(image_cfg)["model"])
    cfg.loss = image_cfg.loss
    cfg.run.device = image_cfg.run.device
    cfg.data.test_min_size = min(image_cfg.data.test_min_size, cfg.data.test_min_size)
    cfg.data.test_max_size = min(image_cfg.data.test_max_size, cfg.data.test_max_size)
    return cfg


def load_vis_config(config: str | os.PathLike | VisConfig | None, weights: str | os.PathLike,
                    overrides: Sequence[str] = ()) -> tuple[VisConfig, Config | None]:
    """The tracking config of a checkpoint: (VisConfig, the image config when ``weights`` is an image
    QueryInst checkpoint, else None). The checkpoint decides which: track-head weights make it a
    QueryInst-VIS checkpoint. config: a YAML (task vis, or task image for an image checkpoint), an
    already loaded ``VisConfig`` (used as is), or None for the config stored in the checkpoint.
    overrides: dotted overrides of the VisConfig (``tracker.mode=masktrack``)."""
    cfg, image_cfg, _ = _tracking_config(config, resolve_weights(os.fspath(weights)), overrides)
    return cfg, image_cfg


def _tracking_config(config: str | os.PathLike | VisConfig | None, weights: str, overrides: Sequence[str]
                     ) -> tuple[VisConfig, Config | None, dict]:
    """``load_vis_config`` for a checkpoint file, also returning the checkpoint's data (read once)."""
    from ..config import load_task_config

    data, kind, stored = _read_checkpoint(weights)
    if isinstance(config, VisConfig):
        loaded, source = config, "a VisConfig"
    elif config is None:
        if stored is None:
            raise ValueError(f"{weights}: the checkpoint stores no config; give --config")
        loaded = config_from_dict(stored, VisConfig if stored.get("task") == "vis" else Config)
        source = weights
    else:
        loaded, source = load_task_config(os.fspath(config)), os.fspath(config)
    if kind == "vis" and not isinstance(loaded, VisConfig):
        raise ValueError(f"{weights}: a QueryInst-VIS checkpoint given with an image config ({source})")
    if kind == "image" and isinstance(loaded, VisConfig):
        raise ValueError(f"{weights}: an image QueryInst checkpoint (no track head) given with a VIS config "
                         f"({source}); give its image config, or none (the checkpoint's own)")
    updates = parse_overrides(list(overrides))
    if kind == "vis":
        return (loaded if loaded is config else merge_into(loaded, updates)), None, data
    return merge_into(vis_config_for_image_model(loaded), updates), loaded, data


def load_vis_model(config: str | os.PathLike | VisConfig | None, weights: str | os.PathLike | None,
                   overrides: Sequence[str] = (), device: str | torch.device | None = None,
                   score_thr: float | None = None, demo_root: str | os.PathLike | None = None
                   ) -> tuple[VisConfig, QueryInstVIS, list[str], list[int]]:
    """THE model loader of every tool: (cfg, QueryInst-VIS in eval mode with BatchNorm folded, on its
    device, class names, category ids).

    weights: a QueryInst-VIS checkpoint, or an image QueryInst checkpoint (ours, or converted from
        mmdetection), which then tracks with its query embeddings (no track head; ``load_vis_config``);
        None (and config None) for the shipped demo model (``DEMO_CONFIG`` / ``DEMO_WEIGHTS``, found among
        the package's files by ``queryinst.resources``, never from the current directory; under
        ``demo_root`` instead when given).
    config: its YAML, an already loaded ``VisConfig`` (modified), or None for the config the checkpoint
        stores. overrides: dotted config overrides (``tracker.mode=masktrack``, ``inference.embedding=queries``).
    device: "auto" | "cpu" | "cuda" or a ``torch.device`` (None: the config's ``run.device``).
    score_thr: replaces ``inference.score_threshold`` (detections below are not tracked).
    The checkpoint must be built for the same model config (one error naming the file and the first
    differing key). Class names and category ids come from the checkpoint's ``extra`` ("class_names",
    "cat_ids", as tools/train.py stores them), else "class0".. and 1..C.
    Raises FileNotFoundError / ValueError (a missing file, a checkpoint of another config, ...).
    """
    from queryinst.cli import select_device

    weights = None if weights is None else resolve_weights(weights)  # a registered name -> its cached file
    if weights is None and config is not None:
        raise ValueError("--config needs --weights (its checkpoint); give neither for the demo model")
    if weights is None:
        if demo_root is None:
            try:
                config, weights = resources.demo_model()
            except FileNotFoundError as err:
                raise FileNotFoundError(f"{err}: demo model file not found; pass --weights") from None
        else:
            config, weights = os.path.join(demo_root, DEMO_CONFIG), os.path.join(demo_root, DEMO_WEIGHTS)
            for path in (config, weights):
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"{path}: demo model file not found; pass --weights")
    weights = os.fspath(weights)
    cfg, image_cfg, data = _tracking_config(config, weights, overrides)
    if score_thr is not None:
        if not 0.0 <= score_thr <= 1.0:
            raise ValueError(f"score threshold must be in [0, 1], got {score_thr}")
        cfg.inference.score_threshold = score_thr
    device = device if isinstance(device, torch.device) else select_device(device or cfg.run.device)
    cfg.model.init_from = ""  # the checkpoint holds every weight; don't read the image checkpoint again
    cfg.model.pretrained = ""
    model = build_queryinst_vis(cfg, track_head=image_cfg is None)
    if image_cfg is None:
        extra = load_checkpoint(weights, model, cfg=cfg, data=data)["extra"]
    else:
        image_cfg.model.pretrained = ""
        extra = load_checkpoint(weights, model.detector, cfg=image_cfg, data=data)["extra"]
    names = class_names_from_checkpoint(extra, cfg.model.num_classes)
    cat_ids = extra.get("cat_ids")
    if not (isinstance(cat_ids, (list, tuple)) and len(cat_ids) == cfg.model.num_classes):
        cat_ids = range(1, cfg.model.num_classes + 1)
    model.eval()
    fold_batchnorm(model)  # inference only: same outputs up to rounding, fewer passes (image/fuse.py)
    return cfg, model.to(device), names, [int(c) for c in cat_ids]
