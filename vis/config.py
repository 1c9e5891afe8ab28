"""QueryInst-VIS configuration: the image schema plus the track head, video data, tracker, inference.

Defaults are the paper's YouTube-VIS setting (QueryInst Sec. 4.3 / DESIGN §3): R50, 10 queries,
12 epochs, input 360 x 640.
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
    batch_size: int = 4


@dataclass
class VisSolverConfig(SolverConfig):
    # 12-epoch finetuning (paper Sec. 4.3), lr steps as the 1x schedule.
    epochs: int = 12
    steps: tuple[int, ...] = (8, 11)
    warmup_iters: int = 500  # MaskTrack R-CNN 12-epoch config warmup_iters=500
    track_loss_weight: float = 1.0  # MaskTrack R-CNN loss_match weight


@dataclass
class InferenceConfig:
    max_per_frame: int = 10  # top-10 (query, class) pairs per frame, one per query (see vis/model.py)
    score_threshold: float = 0.05  # detections below are not given to the tracker
    mask_threshold: float = 0.5


@dataclass
class VisConfig(Config):
    task: str = "vis"
    model: VisModelConfig = field(default_factory=VisModelConfig)
    data: VisDataConfig = field(default_factory=VisDataConfig)
    solver: VisSolverConfig = field(default_factory=VisSolverConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
