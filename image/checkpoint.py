"""Checkpoints: atomic save, ``weights_only`` load, and a check that a checkpoint fits the config.

A checkpoint is a dict of tensors, plain containers, numbers and strings only, so that
``torch.load(..., weights_only=True)`` reads it:

    format: "queryinst-checkpoint"; version: 1
    model: state_dict (never with a DDP ``module.`` prefix)
    optimizer / scheduler / scaler: their state_dicts, or None
    epoch: completed epochs; iteration: optimiser steps done since the start of training
    config: the resolved config (``config_to_dict``), as detectron2 and DETR store it
    rng: {"torch": ByteTensor, "cuda": [ByteTensor per device], "numpy": {...}, "python": [...]}
    extra: any further plain data (e.g. class names)

``load_checkpoint`` also accepts a bare state_dict (``{name: tensor}``) or ``{"state_dict": ...}``
(mmdetection's layout), with or without the ``module.`` prefix.
"""
from __future__ import annotations

import logging
import os
import random
from typing import Any

import numpy as np
import torch
from torch import nn

from ..cli import listing
from .config import config_to_dict
from .fuse import is_folded
from .safe_load import read_torch_file

logger = logging.getLogger(__name__)

FORMAT = "queryinst-checkpoint"
VERSION = 1
# Model keys that change neither the weights' shapes nor their meaning: a checkpoint trained with
# another value loads fine (initial weights: ImageNet, vis' image checkpoint, classifier-bias prior;
# inference-only settings).
NON_ARCHITECTURE_KEYS = frozenset({"pretrained", "init_from", "prior_prob", "max_detections", "mask_threshold"})
_DDP_PREFIX = "module."


# --------------------------------------------------------------------------------------------------
# RNG states (as tensors and lists, so that weights_only loading accepts them)
# --------------------------------------------------------------------------------------------------
def get_rng_states() -> dict[str, Any]:
    """The states of torch (CPU and every CUDA device), numpy's global and Python's ``random``."""
    key, pos, has_gauss, cached = np.random.get_state(legacy=True)[1:]
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what ``get_rng_states`` returned (CUDA states only when the device count matches)."""
    torch.set_rng_state(states["torch"].cpu())
    cuda = states.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
    n = states["numpy"]
    np.random.set_state(("MT19937", n["key"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = states["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


# --------------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------------
def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside a DistributedDataParallel (or DataParallel) wrapper."""
    return model.module if isinstance(getattr(model, "module", None), nn.Module) else model


def save_checkpoint(path: str, model: nn.Module, optimizer: torch.optim.Optimizer | None,
                    scheduler: Any | None, epoch: int, iteration: int, cfg: Any,
                    extra: dict[str, Any] | None = None, scaler: Any | None = None) -> None:
    """Write a checkpoint atomically: a temporary file in the same folder, then ``os.replace``.

    Args:
        path: destination file (its folder is created).
        model: the model, DDP-wrapped or not.
        optimizer, scheduler, scaler: saved through their ``state_dict`` when not None.
        epoch: completed epochs; iteration: optimiser steps done.
        cfg: the resolved config dataclass.
        extra: further plain data stored under ``"extra"``.
    """
    if is_folded(unwrap(model)):  # image/fuse.py: other keys, no BatchNorm statistics
        raise RuntimeError(f"{path}: refusing to checkpoint a model whose BatchNorms were folded for inference")
    state = {
        "format": FORMAT,
        "version": VERSION,
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": int(epoch),
        "iteration": int(iteration),
        "config": config_to_dict(cfg),
        "rng": get_rng_states(),
        "extra": dict(extra or {}),
    }
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------
def _read(path: str, map_location: str | torch.device) -> dict:
    data = read_torch_file(path, map_location)  # image/safe_load.py: weights_only, one-line errors
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a checkpoint (holds a {type(data).__name__}, expected a dict)")
    return data


def read_model_state_from(data: dict, path: str) -> dict[str, torch.Tensor]:
    """The model state_dict inside an already read checkpoint ``data`` (any accepted layout), without a
    DDP prefix; ``path`` names the file in errors."""
    if data.get("format") == FORMAT or isinstance(data.get("model"), dict):
        state = data.get("model")
    elif isinstance(data.get("state_dict"), dict):
        state = data["state_dict"]
    else:
        state = data
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a checkpoint (no model state_dict of tensors found)")
    if all(k.startswith(_DDP_PREFIX) for k in state):
        state = {k[len(_DDP_PREFIX):]: v for k, v in state.items()}
    return state


def read_model_state(path: str, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The model state_dict stored at ``path`` (ours, ``{"state_dict": ...}`` or bare; no DDP prefix),
    loaded with ``weights_only=True``. FileNotFoundError / ValueError name the file."""
    return read_model_state_from(_read(path, map_location), path)


def check_config(stored: dict, cfg: Any, path: str) -> None:
    """Raise if the checkpoint's model config differs from ``cfg.model`` in an architecture key.

    Raises:
        ValueError: ``"<path>: checkpoint built for another config: model.<key>: checkpoint has A,
            config has B"`` for the first differing key in schema order.
    """
    current = config_to_dict(cfg).get("model", {})
    saved = stored.get("model", {}) if isinstance(stored, dict) else {}
    missing = "<missing>"
    for key in list(current) + [k for k in saved if k not in current]:
        if key in NON_ARCHITECTURE_KEYS:
            continue
        a, b = saved.get(key, missing), current.get(key, missing)
        if a != b:
            raise ValueError(f"{path}: checkpoint built for another config: model.{key}: checkpoint has {a!r}, "
                             f"config has {b!r}")


def _load_model_state(model: nn.Module, state: dict[str, torch.Tensor], path: str, strict: bool) -> None:
    own = unwrap(model).state_dict()
    mismatched = [f"'{key}' {list(value.shape)} in the checkpoint, {list(own[key].shape)} in the model"
                  for key, value in state.items() if key in own and own[key].shape != value.shape]
    if mismatched:
        raise ValueError(f"{path}: {len(mismatched)} tensor(s) of another shape: {listing(mismatched, 5)}")
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"{len(missing)} model tensors missing from the checkpoint ({listing(missing, 5)})")
        if unexpected:
            parts.append(f"{len(unexpected)} checkpoint tensors unknown to the model ({listing(unexpected, 5)})")
        raise ValueError(f"{path}: checkpoint does not fit the model: {'; '.join(parts)}")
    unwrap(model).load_state_dict(state, strict=False)
    if missing or unexpected:
        logger.warning("%s: %d missing, %d unexpected tensors (non-strict load)", path, len(missing), len(unexpected))


def load_checkpoint(path: str, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any | None = None, scaler: Any | None = None, cfg: Any | None = None,
                    map_location: str | torch.device = "cpu", strict: bool = True,
                    restore_rng: bool = False, data: dict | None = None) -> dict[str, Any]:
    """Load weights (and optionally the training state) from ``path`` with ``weights_only=True``.

    Args:
        path: a checkpoint from ``save_checkpoint``, a bare state_dict, or ``{"state_dict": ...}``.
        model: receives the weights (DDP-wrapped or not).
        optimizer, scheduler, scaler: restored when given and present in the checkpoint.
        cfg: when given and the checkpoint stores a config, its model section must match
            (``check_config``); bare state_dicts are checked only by tensor names and shapes.
        map_location: where tensors are loaded.
        strict: every model tensor must be in the checkpoint and vice versa.
        restore_rng: also restore the RNG states saved with the checkpoint (exact resume).
        data: the checkpoint already read from ``path`` (``read_torch_file``), so that a caller that looked
            into it first does not read the file twice; ``path`` then only names it in errors.

    Returns:
        ``{"epoch": int, "iteration": int, "config": dict | None, "extra": dict}``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unreadable or not a checkpoint, built for another config, or a tensor whose shape
            differs (the message names the file and the key or tensor).
    """
    data = _read(path, map_location) if data is None else data
    state = read_model_state_from(data, path)
    stored_cfg = data.get("config") if isinstance(data.get("config"), dict) else None
    if cfg is not None and stored_cfg is not None:
        check_config(stored_cfg, cfg, path)
    _load_model_state(model, state, path, strict)
    if optimizer is not None and data.get("optimizer") is not None:
        # the kernel choice (fused / foreach) is this process's, not training state: keep it
        kernels = [{k: g[k] for k in ("fused", "foreach") if k in g} for g in optimizer.param_groups]
        try:
            optimizer.load_state_dict(data["optimizer"])
            for group, chosen in zip(optimizer.param_groups, kernels):
                group.update(chosen)
        except (ValueError, KeyError) as e:
            raise ValueError(f"{path}: optimizer state does not fit ({e})") from None
    if scheduler is not None and data.get("scheduler") is not None:
        scheduler.load_state_dict(data["scheduler"])
    if scaler is not None and data.get("scaler"):
        scaler.load_state_dict(data["scaler"])
    if restore_rng and isinstance(data.get("rng"), dict):
        set_rng_states(data["rng"])
    return {
        "epoch": int(data.get("epoch", 0)),
        "iteration": int(data.get("iteration", 0)),
        "config": stored_cfg,
        "extra": data.get("extra") or {},
    }
