"""Configuration: dataclass schemas with paper defaults, YAML deltas and dotted command-line overrides.

A YAML file holds only what differs from the dataclass defaults, with at most one ``base:`` level.
Every key is checked against the schema: an unknown key or a wrong type raises ``ConfigError`` naming
the key (with a did-you-mean). ``vis/config.py`` extends the schema for video; the loader is shared.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration file or override does not fit the schema."""


# --------------------------------------------------------------------------------------------------
# Schema (defaults are the paper's R50 1x, 100-query COCO setting unless said otherwise)
# --------------------------------------------------------------------------------------------------
@dataclass
class ModelConfig:
    # resnet18/34/50/101 (paper Sec. 4: R50 and R101), or mobilenet_v3_large (real-time / demo configs)
    backbone: str = "resnet50"
    # ImageNet weights: "" (random init), a local .pth path, or "torchvision" (weights API, needs internet)
    pretrained: str = ""
    frozen_stages: int = 1  # stem + layer1 frozen, as Sparse R-CNN / mmdetection (frozen_stages=1)
    # BatchNorm statistics frozen in training (mmdetection norm_eval=True: pretrained backbones, small
    # batches). False lets them train, for backbones trained from scratch (the synthetic configs).
    norm_eval: bool = True
    fpn_channels: int = 256  # FPN P2-P5, 256 channels: Sparse R-CNN / mmdetection neck config
    num_proposals: int = 100  # paper Sec. 4: 100 queries (300 for the crop-ms-3x setting, 10 for VIS)
    num_classes: int = 80
    num_stages: int = 6  # paper Sec. 3.3 / Sparse R-CNN: 6 stages, no weights shared
    hidden_dim: int = 256
    num_heads: int = 8  # DIIHead self-attention heads (mmdetection sparse_rcnn config)
    dynamic_dim: int = 64  # DynamicConv feat_channels (mmdetection dynamic_conv_cfg)
    feedforward_dim: int = 2048  # FFN hidden size (mmdetection feedforward_channels)
    dropout: float = 0.0  # mmdetection QueryInst config: dropout=0.0
    num_cls_fcs: int = 1
    num_reg_fcs: int = 3
    box_pool_size: int = 7  # RoIAlign output for the box head
    mask_pool_size: int = 14  # RoIAlign output for the mask head (28x28 logits after the deconv)
    num_mask_convs: int = 4  # DynamicMaskHead: 4 x [conv3x3, BN, ReLU]
    sampling_ratio: int = 2  # RoIAlign sampling ratio (mmdetection roi extractor)
    finest_scale: int = 56  # FPN level assignment, mmdetection SingleRoIExtractor
    bbox_stds: tuple[float, float, float, float] = (0.5, 0.5, 1.0, 1.0)  # Sparse R-CNN bbox coder
    prior_prob: float = 0.01  # focal-loss bias init of the classifier
    # Inference: number of (query, class) pairs kept per image; 0 means num_proposals (paper / mmdet
    # test_cfg max_per_img=num_proposals).
    max_detections: int = 0
    mask_threshold: float = 0.5  # mmdetection test_cfg mask_thr_binary

    def __post_init__(self) -> None:
        # The queries read RoI features of the FPN's width directly (DynamicConv in_channels = the query
        # width; mmdetection ties both to 256), and the attention splits the width over the heads.
        if self.hidden_dim != self.fpn_channels:
            raise ValueError(f"hidden_dim ({self.hidden_dim}) must equal fpn_channels ({self.fpn_channels}): "
                             "the queries read RoI features of the FPN's width")
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"hidden_dim ({self.hidden_dim}) must be divisible by num_heads ({self.num_heads})")


@dataclass
class LossConfig:
    # Loss and matching-cost weights: paper Sec. 4 / mmdetection queryinst config.
    focal_weight: float = 2.0
    l1_weight: float = 5.0
    giou_weight: float = 2.0
    dice_weight: float = 8.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    dice_eps: float = 1e-5
    match_focal: float = 2.0
    match_l1: float = 5.0
    match_giou: float = 2.0
    stage_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)  # all 6 stages weighted 1


@dataclass
class DataConfig:
    train_json: str = ""
    train_images: str = ""
    val_json: str = ""
    val_images: str = ""
    # Augmentation recipe: "1x" (short 800), "ms-3x" (short in 480..800), "crop-ms-3x", or "fixed"
    recipe: str = "1x"
    min_sizes: tuple[int, ...] = (800,)  # short-side sizes (1x: 800; ms: 480, 512, ..., 800)
    max_size: int = 1333
    crop_min_sizes: tuple[int, ...] = (400, 500, 600)  # crop-ms-3x: resize before the crop
    crop_size: tuple[int, int] = (384, 600)  # crop-ms-3x: absolute crop range
    flip_prob: float = 0.5
    test_min_size: int = 800
    test_max_size: int = 1333
    size_divisor: int = 32
    # Normalisation (RGB, 0-255 scale): ImageNet mean/std as torchvision/mmdetection
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    batch_size: int = 2  # per process
    num_workers: int = 2


@dataclass
class SolverConfig:
    # mmdetection QueryInst: AdamW lr 2.5e-5 for 16 images, wd 1e-4, clip 1.0 (official repo's setting).
    optimizer: str = "adamw"
    base_lr: float = 2.5e-5
    weight_decay: float = 1e-4
    backbone_lr_mult: float = 1.0
    grad_clip: float = 1.0  # max L2 norm; 0 disables
    epochs: int = 12  # 1x schedule
    steps: tuple[int, ...] = (8, 11)  # lr /10 at these epochs (1x)
    gamma: float = 0.1
    warmup_iters: int = 1000
    warmup_factor: float = 0.001
    accumulate: int = 1  # gradient accumulation steps
    amp: bool = True  # used on CUDA only
    max_iters: int = 0  # >0 stops training after this many iterations (smoke tests)


@dataclass
class RunConfig:
    output_dir: str = "work_dirs/run"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    log_period: int = 20
    eval_period: int = 1  # epochs
    checkpoint_period: int = 1  # epochs
    tensorboard: bool = False


@dataclass
class Config:
    task: str = "image"
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    run: RunConfig = field(default_factory=RunConfig)


# --------------------------------------------------------------------------------------------------
# Loading and merging
# --------------------------------------------------------------------------------------------------
def _did_you_mean(key: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a field annotation, converting lists to tuples and ints to floats."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if len(args) != len(value):
            raise ConfigError(f"config key '{key}': expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args))
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):
        # YAML 1.1 reads "1e-4" (no dot) as a string; accept it as the number a user means
        try:
            return float(value)
        except ValueError:
            pass
    if annotation in (int, float, str, bool):
        if type(value) is not annotation:
            raise ConfigError(
                f"config key '{key}': expected {annotation.__name__}, got {type(value).__name__} {value!r}"
            )
        return value
    raise ConfigError(f"config key '{key}': unsupported annotation {annotation}")


def merge_into(cfg: Any, updates: dict, prefix: str = "") -> Any:
    """Merge a nested dict into a dataclass instance in place; unknown keys are errors."""
    if not isinstance(updates, dict):
        raise ConfigError(f"config section '{prefix or '<root>'}' must be a mapping, got {updates!r}")
    hints = typing.get_type_hints(type(cfg))
    names = {f.name for f in dataclasses.fields(cfg)}
    for key, value in updates.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key '{full}'{_did_you_mean(key, names)}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            merge_into(current, value, prefix=f"{full}.")
        else:
            setattr(cfg, key, _coerce(value, hints[key], full))
    post_init = getattr(cfg, "__post_init__", None)
    if post_init is not None:  # a section's own validation (e.g. TrackerConfig.mode) sees merged values
        try:
            post_init()
        except ValueError as e:
            raise ConfigError(f"config section '{prefix.rstrip('.') or '<root>'}': {e}") from None
    return cfg


def _read_yaml(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file not found: {path}")
    with open(path) as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def parse_overrides(overrides: typing.Sequence[str]) -> dict:
    """Turn ``["solver.base_lr=5e-5", "model.num_proposals=10"]`` into a nested dict."""
    nested: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = nested
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return nested


def load_config(path: str | None, overrides: typing.Sequence[str] = (), schema: type = Config) -> Any:
    """Build a config: schema defaults <- base YAML <- YAML at ``path`` <- dotted overrides."""
    cfg = schema()
    if path:
        data = _read_yaml(path)
        base = data.pop("base", None)
        if base is not None:
            base_path = os.path.join(os.path.dirname(path), base)
            base_data = _read_yaml(base_path)
            if "base" in base_data:
                raise ConfigError(f"{base_path}: base configs may not have a base of their own")
            try:
                merge_into(cfg, base_data)
            except ConfigError as e:
                raise ConfigError(f"{base_path}: {e}") from None
        try:
            merge_into(cfg, data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
    merge_into(cfg, parse_overrides(overrides))
    return cfg


def config_to_dict(cfg: Any) -> dict:
    """Plain nested dict (tuples as lists) for YAML/JSON and checkpoints."""

    def convert(v: Any) -> Any:
        if isinstance(v, tuple):
            return [convert(x) for x in v]
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        return v

    return convert(dataclasses.asdict(cfg))


def config_from_dict(data: dict, schema: type = Config) -> Any:
    """Inverse of ``config_to_dict`` (used when loading a checkpoint's stored config)."""
    return merge_into(schema(), data)


def dump_config(cfg: Any) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def save_config(cfg: Any, path: str) -> None:
    """Write the resolved config atomically (temp file + rename)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(dump_config(cfg))
    os.replace(tmp, path)
