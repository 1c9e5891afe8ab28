"""QueryInst-VIS configuration: the image schema plus the track head, video data, tracker, inference.

Defaults are the paper's YouTube-VIS setting (QueryInst paper Sec. 4.3; docs/design.md#queryinst-vis): R50,
10 queries, 12 epochs, input 360 x 640.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..image.config import Config, DataConfig, ModelConfig, SolverConfig
from ..tracking.config import TrackerConfig


@dataclass
class VisModelConfig(ModelConfig):
    num_proposals: int = 10  # paper Sec. 4.3: at most 10 instances per YouTube-VIS frame
    num_classes: int = 40  # YouTube-VIS 2019 / 2021 (OVIS: 25)
    track_dim: int = 1024  # MaskTrack R-CNN track head: FC 1024 -> ReLU -> FC 1024
    track_num_fcs: int = 2
    # Image checkpoint to start from (ours, or an mmdetection one converted by tools/convert_mmdet.py).
    init_from: str = ""


@dataclass
class VisDataConfig(DataConfig):
    recipe: str = "fixed"
    min_sizes: tuple[int, ...] = (360,)  # MaskTrack R-CNN / paper: 360 x 640 input
    max_size: int = 640
    test_min_size: int = 360
    test_max_size: int = 640
    # SipMask-style multi-scale training option: short side U[360, 480] with long side <= U[649, 960]
    multiscale: bool = False
    multiscale_short: tuple[int, int] = (360, 480)
    multiscale_long: tuple[int, int] = (649, 960)
    # Reference frame: uniform over the video's other annotated frames within this many frames of the
    # key frame (0: the whole video, MaskTrack R-CNN's sampling).
    ref_range: int = 0
    # Labels of the val split for periodic evaluation (YouTube-VIS valid labels are hidden; the
    # synthetic valid split keeps them apart in valid_gt.json). Empty: no evaluation during training.
    val_gt_json: str = ""
    batch_size: int = 4


@dataclass
class VisSolverConfig(SolverConfig):
    # 12-epoch finetuning (paper Sec. 4.3), lr steps as the 1x schedule.
    epochs: int = 12
    steps: tuple[int, ...] = (8, 11)
    warmup_iters: int = 500  # MaskTrack R-CNN 12-epoch config warmup_iters=500
    track_loss_weight: float = 1.0  # MaskTrack R-CNN loss_match weight


# Sources of the association embedding (vis/modeling/model.py, docs/design.md#association-embeddings);
# "auto" picks the one measured best on the synthetic valid split (AUTO_EMBEDDING).
EMBEDDINGS = ("track_head", "queries", "attention", "none")
# "auto" for a model with a track head (a QueryInst-VIS checkpoint) and without one (an image checkpoint):
# the last stage's post-attention query features for both, measured best on the synthetic held-out videos
# (tools/compare_embeddings.py, tables in docs/design.md#association-embeddings); the track head stays an
# option (inference.embedding).
AUTO_EMBEDDING = {"vis": "attention", "image": "attention"}


@dataclass
class InferenceConfig:
    max_per_frame: int = 10  # top-10 (query, class) pairs per frame, one per query (see vis/modeling/model.py)
    score_threshold: float = 0.05  # detections below are not given to the tracker
    mask_threshold: float = 0.5
    # Association embedding: "auto" (AUTO_EMBEDDING), or one of EMBEDDINGS.
    embedding: str = "auto"
    # Query embeddings are L2-normalised and scaled so that the tracker's dot product is this x their cosine.
    embedding_scale: float = 10.0

    def __post_init__(self) -> None:
        if self.embedding != "auto" and self.embedding not in EMBEDDINGS:
            raise ValueError(f"inference.embedding must be 'auto' or one of {EMBEDDINGS}, got {self.embedding!r}")
        if not self.embedding_scale > 0:
            raise ValueError(f"inference.embedding_scale must be > 0, got {self.embedding_scale}")

    def embedding_source(self, has_track_head: bool) -> str:
        """The embedding source for a model with or without a track head ("auto" resolved)."""
        if self.embedding == "auto":
            return AUTO_EMBEDDING["vis" if has_track_head else "image"]
        return self.embedding


@dataclass
class VisConfig(Config):
    task: str = "vis"
    model: VisModelConfig = field(default_factory=VisModelConfig)
    data: VisDataConfig = field(default_factory=VisDataConfig)
    solver: VisSolverConfig = field(default_factory=VisSolverConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)


def load_task_config(path: str | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a config with the schema its ``task`` asks for ("image" -> Config, "vis" -> VisConfig).

    The task is read from the YAML (or its base) or from a ``task=...`` override; default "image".
    """
    import yaml

    from ..image.config import ConfigError, load_config, parse_overrides

    task = "image"
    if path:
        try:
            with open(path) as f:
                data = yaml.safe_load(f) or {}
        except FileNotFoundError:
            raise FileNotFoundError(f"config file not found: {path}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if isinstance(data, dict) and "base" in data and "task" not in data:
            import os

            base = os.path.join(os.path.dirname(path), str(data["base"]))
            if os.path.isfile(base):
                with open(base) as f:
                    data = yaml.safe_load(f) or {}
        if isinstance(data, dict):
            task = data.get("task", task)
    task = parse_overrides([o for o in overrides if o.startswith("task=")]).get("task", task)
    schemas = {"image": Config, "vis": VisConfig}
    if task not in schemas:
        raise ConfigError(f"{path}: unknown task '{task}'; choose one of {sorted(schemas)}")
    return load_config(path, overrides, schema=schemas[task])
