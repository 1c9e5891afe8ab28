"""Config -> QueryInst-VIS, including the start from an image checkpoint (``model.init_from``)."""
from __future__ import annotations

import logging

import torch
from torch import nn

from ..image.build import build_queryinst
from ..image.checkpoint import load_checkpoint, read_model_state
from ..image.fuse import fold_batchnorm
from ..image.mmdet_keys import mmdet_key_map
from .config import VisConfig
from .model import QueryInstVIS
from .track_head import TrackHead

logger = logging.getLogger(__name__)

# Layers whose shape depends on the label set: re-initialised when the class count differs.
_CLASS_DEPENDENT = (".box_head.cls_logits.", ".mask_head.mask_logits.")


def build_queryinst_vis(cfg: VisConfig) -> QueryInstVIS:
    """QueryInst-VIS for ``cfg``; with ``model.init_from`` the ImageNet backbone weights are not loaded
    (``model.pretrained`` is cleared: the image checkpoint supplies the backbone)."""
    if cfg.model.init_from and cfg.model.pretrained:
        logger.info("model.init_from is set: ignoring model.pretrained=%s", cfg.model.pretrained)
        cfg.model.pretrained = ""
    detector = build_queryinst(cfg)
    track_head = TrackHead(cfg.model.fpn_channels, cfg.model.box_pool_size, cfg.model.track_dim,
                           cfg.model.track_num_fcs)
    model = QueryInstVIS(detector, track_head, cfg.solver.track_loss_weight, cfg.inference.max_per_frame,
                         cfg.inference.score_threshold, cfg.inference.mask_threshold)
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


def load_vis_model(cfg: VisConfig, weights: str, device: torch.device | str = "cpu") -> QueryInstVIS:
    """Build QueryInst-VIS for ``cfg`` and load a trained checkpoint, checking that the checkpoint was
    built for the same model config (one error naming the file and the first differing key)."""
    cfg.model.init_from = ""  # the checkpoint holds every weight; don't read the image checkpoint again
    cfg.model.pretrained = ""
    model = build_queryinst_vis(cfg)
    load_checkpoint(weights, model, cfg=cfg, map_location="cpu")
    model.eval()
    fold_batchnorm(model)  # inference only: same outputs up to rounding, fewer passes (image/fuse.py)
    return model.to(device)
