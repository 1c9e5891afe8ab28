"""Import mmdetection QueryInst checkpoints (e.g. the COCO model zoo) into this toolkit, tensor for tensor.

mmdetection 3.x (and 2.x) save ``{"meta": {...}, "state_dict": {name: tensor}, ...}``; our model has
the same 780 tensors for R50 / 100 proposals / 80 classes under other names (``mmdet_keys.py``).
The conversion only renames: every value is the very tensor of the source file, so converting back
(``to_mmdet_state_dict``) gives the source tensors bit for bit. The written checkpoint holds the
model's float32 copies: identical bits for float32 sources (mmdetection's zoo), exact upcasts otherwise.

What the weights fix (backbone depth, proposals, classes, stages, widths, tower depths) is read from
the tensor names and shapes (``config_from_mmdet_state``). Two settings leave no trace in the weights
and keep the mmdetection config values that our defaults already hold: 8 attention heads and the
14x14 mask RoI. A ``--config`` may restate them.

Loading uses ``torch.load(weights_only=True)``. The ``meta`` and ``message_hub`` entries of some
checkpoints pickle numpy or mmengine objects that this refuses; ``stub_unknown_objects=True`` (opt-in)
reads such files with each refused class or function replaced by an inert placeholder of our own, so
that nothing from the file is executed; the state_dict must still consist of plain tensors.
"""
from __future__ import annotations

import copy
import logging
import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..cli import listing
from .build import build_queryinst
from .checkpoint import save_checkpoint
from .config import Config
from .mmdet_keys import mmdet_key_map, to_mmdet_key
from .safe_load import UnsafeCheckpointError, check_not_placeholder, pickled_globals, plain_reason, refused_globals

logger = logging.getLogger(__name__)

# mmdetection CocoDataset.METAINFO["classes"]: the 80 COCO categories in contiguous-label order.
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)

# (blocks in layer1..layer4, bottleneck blocks?) -> our backbone name (torchvision / mmdetection ResNets)
_RESNET_LAYOUTS = {
    ((2, 2, 2, 2), False): "resnet18",
    ((3, 4, 6, 3), False): "resnet34",
    ((3, 4, 6, 3), True): "resnet50",
    ((3, 4, 23, 3), True): "resnet101",
}
# ModelConfig fields that config_from_mmdet_state reads from the weights.
DETECTED_FIELDS = ("backbone", "fpn_channels", "num_proposals", "hidden_dim", "num_classes", "num_stages",
                   "dynamic_dim", "feedforward_dim", "num_cls_fcs", "num_reg_fcs", "box_pool_size",
                   "num_mask_convs")
_DDP_PREFIX = "module."
_MAX_STUB_ROUNDS = 100  # distinct refused globals tolerated in one file (legacy format: found one by one)


# --------------------------------------------------------------------------------------------------
# Reading a checkpoint file
# --------------------------------------------------------------------------------------------------
class _Placeholder:
    """Stands in for an object that ``weights_only`` loading refuses; keeps what it was given, runs nothing."""

    pickled_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<unloaded {self.pickled_name}>"


def _placeholder_for(name: str) -> type:
    # One class per pickled name: the unpickler only BUILDs instances whose exact type it allows.
    return type(f"Unloaded[{name}]", (_Placeholder,), {"pickled_name": name})


def _refused_global(err: Exception) -> str | None:
    m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    return m[1] if m else None


def _torch_load(path: str, stub_unknown_objects: bool) -> Any:
    """``torch.load(weights_only=True)``; refused globals are found (all of them, loading with inert
    placeholders until the file reads) and either reported or, when opted in, left as placeholders."""
    check_not_placeholder(path)  # empty file, git-LFS pointer
    stubs = {name: _placeholder_for(name) for name in refused_globals(path)}
    for _ in range(_MAX_STUB_ROUNDS):
        try:
            with torch.serialization.safe_globals([(cls, name) for name, cls in stubs.items()]), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "Detected pickle protocol 4"
                data = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            name = _refused_global(e)
            if name is None:
                if pickled_globals(path):  # a non-zip pickle naming code or objects: never read
                    raise UnsafeCheckpointError(path, pickled_globals(path)) from None
                raise ValueError(f"{path}: not a readable PyTorch checkpoint: truncated or corrupt ({plain_reason(e)})") from None
            if name in stubs:  # allowlisted but still refused: not a case placeholders can solve
                raise UnsafeCheckpointError(path, pickled_globals(path) or sorted(stubs)) from None
            stubs[name] = _placeholder_for(name)
            continue
        except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, AttributeError, ImportError, IndexError,
                KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: not a readable PyTorch checkpoint: truncated or corrupt ({plain_reason(e)})") from None
        if stubs and not stub_unknown_objects:
            raise UnsafeCheckpointError(
                path, sorted(stubs), "mmdetection checkpoints often pickle such objects in their 'meta' or "
                "'message_hub' entries: --stub-unknown-objects reads the tensors with every such object replaced "
                "by an inert placeholder, so that nothing from the file runs")
        return data
    raise ValueError(f"{path}: more than {_MAX_STUB_ROUNDS} kinds of objects that weights_only loading refuses")


def strip_ddp_prefix(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Drop a DistributedDataParallel ``module.`` prefix when every key has it."""
    if state and all(k.startswith(_DDP_PREFIX) for k in state):
        return {k[len(_DDP_PREFIX):]: v for k, v in state.items()}
    return state


@dataclass
class MmdetCheckpoint:
    """state_dict: mmdetection names -> tensors (no DDP prefix); meta: the plain ``meta`` dict or {}."""

    state_dict: dict[str, Tensor]
    meta: dict


def load_mmdet_checkpoint(path: str, stub_unknown_objects: bool = False) -> MmdetCheckpoint:
    """Read ``{"meta", "state_dict"}``, ``{"state_dict"}`` or a bare state_dict, with or without ``module.``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unreadable file, refused pickled objects (without ``stub_unknown_objects``), or no
            state_dict of tensors inside.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    data = _torch_load(path, stub_unknown_objects)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a checkpoint (holds a {type(data).__name__}, expected a dict)")
    state = data["state_dict"] if isinstance(data.get("state_dict"), dict) else data
    if not state or not all(isinstance(k, str) for k in state):
        raise ValueError(f"{path}: no state_dict found (expected a 'state_dict' entry or a bare state_dict)")
    bad = [k for k, v in state.items() if not isinstance(v, Tensor)]
    if bad:
        raise ValueError(f"{path}: the state_dict holds non-tensor entries: {listing(bad)}")
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    return MmdetCheckpoint(strip_ddp_prefix(dict(state)), meta)


# --------------------------------------------------------------------------------------------------
# Architecture from the weights
# --------------------------------------------------------------------------------------------------
def _shape(state: dict[str, Tensor], key: str) -> tuple[int, ...]:
    if key not in state:
        raise ValueError(f"not an mmdetection QueryInst state_dict: '{key}' is missing")
    return tuple(state[key].shape)


def _indices(state: dict[str, Tensor], pattern: str) -> list[int]:
    """Sorted distinct integers captured by ``pattern`` (one group) over the keys."""
    rx = re.compile(pattern)
    return sorted({int(m[1]) for k in state if (m := rx.fullmatch(k))})


def _count(state: dict[str, Tensor], pattern: str, what: str) -> int:
    idx = _indices(state, pattern)
    if not idx or idx != list(range(len(idx))):
        raise ValueError(f"not an mmdetection QueryInst state_dict: {what} numbered {idx}, expected 0..n-1")
    return len(idx)


def _backbone_name(state: dict[str, Tensor]) -> str:
    blocks = tuple(_count(state, rf"backbone\.layer{i}\.(\d+)\..+", f"backbone.layer{i} blocks") for i in range(1, 5))
    bottleneck = "backbone.layer1.0.conv3.weight" in state
    name = _RESNET_LAYOUTS.get((blocks, bottleneck))
    if name is None:
        kind = "bottleneck" if bottleneck else "basic"
        raise ValueError(f"unsupported backbone: ResNet with {blocks} {kind} blocks per stage "
                         f"(supported: {sorted(_RESNET_LAYOUTS.values())})")
    return name


def detect_architecture(mm_state: dict[str, Tensor]) -> dict[str, Any]:
    """The ModelConfig fields in ``DETECTED_FIELDS`` as read from mmdetection names and shapes.

    Backbone depth from the block counts (layer3: 6 blocks in R50, 23 in R101; bottleneck blocks have
    ``conv3``), proposals and width from ``rpn_head.init_proposal_features`` [N, D], classes from
    ``fc_cls`` [C, D] (sigmoid classifier, no background row), stages from ``roi_head.bbox_head.{s}``.
    """
    state = strip_ddp_prefix(mm_state)
    if not any(k.startswith("roi_head.mask_head.") for k in state):
        raise ValueError("not an mmdetection QueryInst state_dict: no roi_head.mask_head "
                         "(a Sparse R-CNN checkpoint has no mask heads)")
    box = "roi_head.bbox_head.0."
    num_proposals, hidden = _shape(state, "rpn_head.init_proposal_features.weight")
    fc_in = _shape(state, box + "instance_interactive_conv.fc_layer.weight")[1]
    pool = round((fc_in / hidden) ** 0.5)
    if pool * pool * hidden != fc_in:
        raise ValueError(f"box DynamicConv projection takes {fc_in} inputs, not {hidden} x S x S")
    tower = re.compile(re.escape(box) + r"(cls|reg)_fcs\.\d+\.weight")  # Linear 2-D, LayerNorm 1-D
    linears = [m[1] for k, v in state.items() if (m := tower.fullmatch(k)) and v.dim() == 2]
    return {
        "backbone": _backbone_name(state),
        "fpn_channels": _shape(state, "neck.lateral_convs.0.conv.weight")[0],
        "num_proposals": num_proposals,
        "hidden_dim": hidden,
        "num_classes": _shape(state, box + "fc_cls.weight")[0],
        "num_stages": _count(state, r"roi_head\.bbox_head\.(\d+)\..+", "roi_head.bbox_head stages"),
        "dynamic_dim": _shape(state, box + "instance_interactive_conv.norm_in.weight")[0],
        "feedforward_dim": _shape(state, box + "ffn.layers.0.0.weight")[0],
        "num_cls_fcs": linears.count("cls"),
        "num_reg_fcs": linears.count("reg"),
        "box_pool_size": pool,
        "num_mask_convs": _count(state, r"roi_head\.mask_head\.0\.convs\.(\d+)\.conv\.weight", "mask head convs"),
    }


def config_from_mmdet_state(mm_state: dict[str, Tensor], base: Config | None = None) -> Config:
    """A Config for the model stored in ``mm_state``.

    Without ``base``: our defaults (mmdetection's QueryInst settings) with the detected fields set.
    With ``base``: a copy of it, which must already agree with the weights on every detected field.
    ``model.pretrained`` is cleared either way (the checkpoint holds the backbone weights).

    Raises:
        ValueError: not a QueryInst state_dict, an unsupported backbone, or ``base`` disagrees (the
            message lists every differing ``model.<field>``).
    """
    detected = detect_architecture(mm_state)
    cfg = copy.deepcopy(base) if base is not None else Config()
    if base is not None:
        diff = [f"model.{k}: config has {getattr(cfg.model, k)!r}, checkpoint has {v!r}"
                for k, v in detected.items() if getattr(cfg.model, k) != v]
        if diff:
            raise ValueError("the config describes another model than the checkpoint: " + "; ".join(diff))
    for key, value in detected.items():
        setattr(cfg.model, key, value)
    cfg.model.pretrained = ""
    return cfg


# --------------------------------------------------------------------------------------------------
# Renaming
# --------------------------------------------------------------------------------------------------
def model_shapes(cfg: Config) -> dict[str, torch.Size]:
    """Our state_dict names -> shapes for ``cfg``, from a model built on the meta device (no memory)."""
    meta_cfg = copy.deepcopy(cfg)
    meta_cfg.model.pretrained = ""
    with torch.device("meta"):
        model = build_queryinst(meta_cfg)
    return {k: v.shape for k, v in model.state_dict().items()}


def convert_mmdet_state_dict(mm_state: dict[str, Tensor], cfg: Config) -> dict[str, Tensor]:
    """mmdetection state_dict -> ours for the model ``cfg`` describes (same tensor objects, renamed).

    Every model tensor must be present with its exact shape and nothing else may be left over.

    Raises:
        ValueError: one message listing the missing keys, the unmapped (unexpected) keys and the
            shape mismatches, all in mmdetection's names.
    """
    state = strip_ddp_prefix(mm_state)
    shapes = model_shapes(cfg)
    ours_of = mmdet_key_map(list(shapes))  # mmdetection name -> our name
    missing = [k for k in ours_of if k not in state]
    unexpected = [k for k in state if k not in ours_of]
    wrong = [f"{k} {list(state[k].shape)} (model: {list(shapes[ours_of[k]])})"
             for k in ours_of if k in state and state[k].shape != shapes[ours_of[k]]]
    if missing or unexpected or wrong:
        m = cfg.model
        parts = [f"{len(missing)} missing: {listing(missing)}" if missing else "",
                 f"{len(unexpected)} unexpected: {listing(unexpected)}" if unexpected else "",
                 f"{len(wrong)} with another shape: {listing(wrong)}" if wrong else ""]
        raise ValueError(f"state_dict does not match QueryInst {m.backbone} ({m.num_proposals} proposals, "
                         f"{m.num_classes} classes, {m.num_stages} stages): " + "; ".join(p for p in parts if p))
    by_ours = {ours: mm for mm, ours in ours_of.items()}
    return {ours: state[by_ours[ours]] for ours in shapes}


def to_mmdet_state_dict(our_state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Our state_dict -> mmdetection names (same tensor objects). KeyError for keys mmdetection lacks."""
    mm_state = {to_mmdet_key(k): v for k, v in our_state.items()}
    if len(mm_state) != len(our_state):
        raise AssertionError("key mapping is not one-to-one")
    return mm_state


# --------------------------------------------------------------------------------------------------
# File to file
# --------------------------------------------------------------------------------------------------
def class_names_for(meta: dict, num_classes: int) -> list[str]:
    """The checkpoint's own class names (mmdet 3.x ``meta.dataset_meta.classes``, 2.x ``meta.CLASSES``)
    when they fit ``num_classes``; else the COCO names for 80 classes; else ``class_0`` ... ."""
    dataset_meta = meta.get("dataset_meta") if isinstance(meta.get("dataset_meta"), dict) else {}
    for names in (dataset_meta.get("classes"), meta.get("CLASSES")):
        if isinstance(names, (list, tuple)) and len(names) == num_classes and all(isinstance(n, str) for n in names):
            return list(names)
    if num_classes == len(COCO_CLASSES):
        return list(COCO_CLASSES)
    logger.warning("no class names for %d classes in the checkpoint; using class_0 ... class_%d",
                   num_classes, num_classes - 1)
    return [f"class_{i}" for i in range(num_classes)]


@dataclass
class ConversionSummary:
    config: Config
    class_names: list[str]
    num_tensors: int


def convert_mmdet_checkpoint(src: str, dst: str, cfg: Config | None = None, stub_unknown_objects: bool = False,
                             overwrite: bool = False, class_names: Sequence[str] | None = None,
                             source: dict[str, str] | None = None) -> ConversionSummary:
    """Convert the mmdetection checkpoint ``src`` into our checkpoint ``dst`` (``checkpoint.py`` layout).

    The model is built, loaded strictly with the converted tensors and saved atomically (temp file +
    ``os.replace``) with the resolved config and ``extra = {"class_names", "source"}``. Nothing is
    written when any check fails.

    Args:
        cfg: a config that must agree with the weights (``config_from_mmdet_state``); None: derived.
        stub_unknown_objects: read files whose metadata pickles objects that weights_only refuses.
        overwrite: replace an existing ``dst``.
        class_names: the names to store (one per class); None: ``class_names_for`` the file's meta.
        source: further provenance stored in ``extra["source"]`` (queryinst/weights.py: name, url, sha256).

    Raises:
        FileNotFoundError, FileExistsError, ValueError: naming the file and the problem.
    """
    if os.path.exists(dst) and not overwrite:
        raise FileExistsError(f"{dst} exists (pass --overwrite to replace it)")
    if os.path.exists(dst) and os.path.exists(src) and os.path.samefile(src, dst):
        raise ValueError(f"{dst}: the output would overwrite the input")
    ckpt = load_mmdet_checkpoint(src, stub_unknown_objects)
    try:
        resolved = config_from_mmdet_state(ckpt.state_dict, cfg)
        ours = convert_mmdet_state_dict(ckpt.state_dict, resolved)
    except ValueError as e:
        raise ValueError(f"{src}: {e}") from None
    model = build_queryinst(resolved)
    model.load_state_dict(ours, strict=True)
    if class_names is None:
        names = class_names_for(ckpt.meta, resolved.model.num_classes)
    elif len(class_names) == resolved.model.num_classes:
        names = [str(n) for n in class_names]
    else:
        raise ValueError(f"{src}: {len(class_names)} class names given for a model of "
                         f"{resolved.model.num_classes} classes")
    provenance = {"format": "mmdetection", "file": os.path.basename(src)}
    for key in ("mmdet_version", "mmengine_version"):
        if isinstance(ckpt.meta.get(key), str):
            provenance[key] = ckpt.meta[key]
    provenance.update(source or {})
    save_checkpoint(dst, model, None, None, 0, 0, resolved, extra={"class_names": names, "source": provenance})
    return ConversionSummary(resolved, names, len(ours))
