"""Synthetic YouTube-VIS-format videos: textured shapes that move, occlude, enter and leave the frame.

Layout written by ``make_ytvis_dataset(out_dir, ...)`` (schema: docs/design.md#datasets)::

    out_dir/JPEGImages/<video name>/<frame>.jpg     only the listed (annotated) frames
    out_dir/annotations.json                        videos + annotations + categories
  or, with ``with_valid_gt=True`` (a held-out split, like the real valid.json)::
    out_dir/valid.json                              videos + categories only (what the model reads)
    out_dir/valid_gt.json                           the same plus annotations (for eval_ytvis)

``make_ytvis_splits`` writes ``out_dir/train`` (labelled) and ``out_dir/valid`` (held-out) that way.

Motion is simulated at the raw frame rate and every ``annotate_every``-th raw frame is written, named
by its raw index (00000.jpg, 00005.jpg, ... as in YouTube-VIS), so ``length`` counts listed frames.
Each object has a class (its shape), a texture attached to it, a smoothly varying size and rotation,
and one of three motions: it stays inside (bouncing off the borders), enters through a border, or
leaves through one. Depth order is fixed per video; a later object occludes an earlier one. A frame
where fewer than ``min_visible_area`` pixels of an object are visible is null in
``segmentations``/``bboxes``/``areas`` (object absent), and those pixels are not painted.
Videos are seeded by ``(seed, split, video index)``: identical arguments give identical bytes.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from queryinst.image.data.shapes import (
    ShapeLayer,
    Texture,
    class_hue,
    mask_bbox,
    mask_to_rle,
    rasterize_polygons,
    render_background,
    render_layers,
    sample_area,
    sample_aspect,
    sample_texture,
    shape_polygon,
)
from queryinst.image.data.synthetic import (
    DEFAULT_CLASSES,
    atomic_output_dir,
    categories_json,
    check_class_names,
    check_image_size,
    write_image,
    write_json,
)

logger = logging.getLogger(__name__)

MAX_TURN = 0.05  # heading change per raw frame (radians) of objects that stay inside: smooth curves
MAX_SPIN = 0.04  # rotation per raw frame (radians)
MAX_SCALE_AMPLITUDE = 0.15  # side length oscillates by up to +-15 % ...
SCALE_PERIOD = (20.0, 60.0)  # ... with a period of this many raw frames
SPEED_SPREAD = (0.5, 1.5)  # an object's speed is options.speed times a factor drawn from this range
MAX_ATTEMPTS = 20  # redraws of a video whose objects all stayed invisible


@dataclass(frozen=True)
class VideoSceneOptions:
    """What the video generator puts in a clip (validated on construction).

    class_names: shape kinds used as classes (category ids 1..C in this order); max_objects: a video
    holds 1..max_objects objects (YouTube-VIS has at most 10 per frame, QueryInst paper Sec. 4.3); speed: mean
    displacement per raw frame in object sides (sqrt of the area): 0.2 moves an object about its own
    size over 5 frames; enter_leave_prob: chance that an object enters or leaves through a border
    rather than staying inside; min_visible_area: fewer visible pixels than this make a null frame.
    """

    class_names: tuple[str, ...] = DEFAULT_CLASSES
    max_objects: int = 4
    speed: float = 0.1
    enter_leave_prob: float = 0.5
    min_visible_area: float = 16.0
    jpeg_quality: int = 90
    noise_std: float = 2.0  # Gaussian sensor noise per frame, in 8-bit levels
    class_colours: bool = False  # each class gets its own hue band (shape AND colour tell the class)

    def __post_init__(self) -> None:
        check_class_names(self.class_names)
        if self.max_objects < 1:
            raise ValueError(f"max_objects must be >= 1, got {self.max_objects}")
        if self.speed < 0:
            raise ValueError(f"speed must be >= 0, got {self.speed}")
        if not 0.0 <= self.enter_leave_prob <= 1.0:
            raise ValueError(f"enter_leave_prob must be in [0, 1], got {self.enter_leave_prob}")


@dataclass(frozen=True)
class YTVISFiles:
    """Where one generated split lies.

    frames_root: the JPEGImages folder that ``file_names`` are relative to; json_path: the JSON a
    model reads (for a held-out split: videos + categories only); gt_json_path: the JSON with
    annotations (the same file as json_path for a labelled split).
    """

    frames_root: Path
    json_path: Path
    gt_json_path: Path


@dataclass
class _MovingObject:
    """An object's fixed appearance and its centre at every raw frame (positions [T, 2] x, y)."""

    label: int
    area: float
    aspect: float
    angle: float
    spin: float
    scale_amplitude: float
    scale_period: float
    scale_phase: float
    texture: Texture
    positions: np.ndarray

    def layer(self, kind: str, t: int, height: int, width: int) -> ShapeLayer:
        """The object at raw frame ``t`` as a paintable layer."""
        scale = 1.0 + self.scale_amplitude * np.sin(2.0 * np.pi * t / self.scale_period + self.scale_phase)
        area, angle = self.area * scale * scale, self.angle + self.spin * t
        center = (float(self.positions[t, 0]), float(self.positions[t, 1]))
        polygons, mask = rasterize_polygons([shape_polygon(kind, center, area, angle, self.aspect)], height, width)
        return ShapeLayer(self.label, polygons, mask, area, self.texture, center, angle)


def _inside_path(rng: np.random.Generator, num_frames: int, low: np.ndarray, high: np.ndarray,
                 speed_px: float) -> np.ndarray:
    """A smoothly turning path that reflects off the box [low, high] (so the object stays inside)."""
    pos = rng.uniform(low, high)
    heading, turn = rng.uniform(0.0, 2.0 * np.pi), rng.uniform(-MAX_TURN, MAX_TURN)
    vel = speed_px * np.array([np.cos(heading), np.sin(heading)])
    c, s = np.cos(turn), np.sin(turn)
    path = np.empty((num_frames, 2))
    for t in range(num_frames):
        path[t] = pos
        vel = np.array([c * vel[0] - s * vel[1], s * vel[0] + c * vel[1]])
        pos = pos + vel
        for axis in range(2):
            if pos[axis] < low[axis] or pos[axis] > high[axis]:
                pos[axis] = np.clip(2.0 * np.clip(pos[axis], low[axis], high[axis]) - pos[axis], low[axis], high[axis])
                vel[axis] = -vel[axis]
    return path


def _entering_path(rng: np.random.Generator, num_frames: int, low: np.ndarray, high: np.ndarray,
                   radius: float, size: np.ndarray, speed_px: float) -> np.ndarray:
    """A straight path from just outside one border (touching it at a random time in the first half
    of the clip) towards a random point inside."""
    target = rng.uniform(low, high)
    side = int(rng.integers(4))  # 0 left, 1 right, 2 top, 3 bottom
    axis, other = (0, 1) if side < 2 else (1, 0)
    start = np.empty(2)
    start[axis] = -radius if side % 2 == 0 else size[axis] + radius
    start[other] = np.clip(target[other] + rng.uniform(-0.3, 0.3) * size[other], 0.0, size[other])
    direction = (target - start) / max(float(np.linalg.norm(target - start)), 1e-6)
    touch = rng.uniform(0.0, 0.5) * (num_frames - 1)
    times = np.arange(num_frames, dtype=np.float64)[:, None] - touch
    return start + direction * speed_px * times


def _sample_object(rng: np.random.Generator, opts: VideoSceneOptions, num_frames: int, height: int,
                   width: int) -> _MovingObject:
    label = int(rng.integers(len(opts.class_names)))
    kind = opts.class_names[label]
    area, aspect = sample_area(rng, height, width), sample_aspect(rng, opts.class_names[label])
    amplitude = float(rng.uniform(0.0, MAX_SCALE_AMPLITUDE))
    # Largest distance from the centre to the shape's outline over every rotation and scale.
    radius = float(np.linalg.norm(shape_polygon(kind, (0.0, 0.0), area, 0.0, aspect), axis=1).max()) * (1 + amplitude)
    size = np.array([width, height], dtype=np.float64)
    low = np.minimum(radius, size / 2.0)
    speed_px = opts.speed * np.sqrt(area) * rng.uniform(*SPEED_SPREAD)
    mode = "inside"
    if speed_px > 0 and rng.random() < opts.enter_leave_prob:
        mode = "enter" if rng.random() < 0.5 else "leave"
    if mode == "inside":
        positions = _inside_path(rng, num_frames, low, size - low, speed_px)
    else:
        positions = _entering_path(rng, num_frames, low, size - low, radius, size, speed_px)
        positions = positions[::-1] if mode == "leave" else positions
    return _MovingObject(label, area, aspect, float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(-MAX_SPIN, MAX_SPIN)),
                         amplitude, float(rng.uniform(*SCALE_PERIOD)), float(rng.uniform(0, 2 * np.pi)),
                         sample_texture(rng, hue=class_hue(label, len(opts.class_names)) if opts.class_colours else None),
                         np.ascontiguousarray(positions))


def _write_video(root: Path, rng: np.random.Generator, video_id: int, name: str, length: int, height: int,
                 width: int, annotate_every: int, opts: VideoSceneOptions) -> tuple[dict, list[dict]]:
    """Render one video's listed frames into ``root/JPEGImages/name``; return its video entry and
    its annotations (ids left to the caller). Frames are written and masks encoded as they are
    rendered, so memory does not grow with the video's length."""
    num_raw = (length - 1) * annotate_every + 1
    raw_frames = [k * annotate_every for k in range(length)]
    file_names = [f"{name}/{t:05d}.jpg" for t in raw_frames]
    (root / "JPEGImages" / name).mkdir(parents=True)
    for _ in range(MAX_ATTEMPTS):  # a redraw overwrites the same files
        background = render_background(rng, height, width)
        objects = [_sample_object(rng, opts, num_raw, height, width)
                   for _ in range(int(rng.integers(1, opts.max_objects + 1)))]
        tracks: list[list[dict | None]] = [[None] * length for _ in objects]
        for k, t in enumerate(raw_frames):
            layers = [obj.layer(opts.class_names[obj.label], t, height, width) for obj in objects]
            image, visible = render_layers(background, layers, opts.min_visible_area, 0.0, rng, opts.noise_std)
            write_image(root / "JPEGImages" / file_names[k], image, opts.jpeg_quality)
            for i, vis in enumerate(visible):
                if vis is not None:
                    tracks[i][k] = {"segmentation": mask_to_rle(vis), "bbox": mask_bbox(vis), "area": int(vis.sum())}
        if any(entry is not None for track in tracks for entry in track):
            break
    else:
        raise RuntimeError(f"video {name}: no object visible after {MAX_ATTEMPTS} attempts")
    annotations = []
    for obj, track in zip(objects, tracks):
        if all(entry is None for entry in track):
            continue  # never visible in a listed frame: not an instance of this video
        annotations.append({
            "video_id": video_id, "category_id": obj.label + 1, "iscrowd": 0,
            "segmentations": [None if e is None else e["segmentation"] for e in track],
            "bboxes": [None if e is None else e["bbox"] for e in track],
            "areas": [None if e is None else e["area"] for e in track],
        })
    video = {"id": video_id, "width": width, "height": height, "length": length, "file_names": file_names}
    return video, annotations


def _write_ytvis(root: Path, stream: tuple[int, int], num_videos: int, length: int, height: int, width: int,
                 annotate_every: int, with_valid_gt: bool, opts: VideoSceneOptions, progress: bool) -> None:
    videos, annotations, names = [], [], set()
    for index in tqdm(range(num_videos), desc="synthetic YouTube-VIS", disable=not progress):
        rng = np.random.default_rng([*stream, index])
        name = rng.bytes(5).hex()  # 10 hex digits, like YouTube-VIS video names
        name = name if name not in names else f"{name}{index}"
        names.add(name)
        video, anns = _write_video(root, rng, index + 1, name, length, height, width, annotate_every, opts)
        videos.append(video)
        first_id = len(annotations) + 1
        annotations.extend({"id": first_id + i, **ann} for i, ann in enumerate(anns))
    base = {"info": {"description": "QueryInst-VIS synthetic videos (vis/data/synthetic.py)", "seed": stream[0],
                     "annotate_every": annotate_every},
            "licenses": [], "videos": videos, "categories": categories_json(opts.class_names)}
    if with_valid_gt:
        write_json(root / "valid.json", base)
        write_json(root / "valid_gt.json", {**base, "annotations": annotations})
    else:
        write_json(root / "annotations.json", {**base, "annotations": annotations})


def _split_files(out: Path, with_valid_gt: bool) -> YTVISFiles:
    if with_valid_gt:
        return YTVISFiles(out / "JPEGImages", out / "valid.json", out / "valid_gt.json")
    return YTVISFiles(out / "JPEGImages", out / "annotations.json", out / "annotations.json")


def _check_args(num_videos: int, length: int, height: int, width: int, annotate_every: int) -> None:
    for name, value in (("num_videos", num_videos), ("length", length), ("annotate_every", annotate_every)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    check_image_size(height, width)


def make_ytvis_dataset(out_dir: str | os.PathLike, num_videos: int, length: int = 10, height: int = 192,
                       width: int = 320, seed: int = 0, annotate_every: int = 1, with_valid_gt: bool = False,
                       options: VideoSceneOptions = VideoSceneOptions(), overwrite: bool = False,
                       progress: bool = False) -> YTVISFiles:
    """Write a YouTube-VIS-format split of ``num_videos`` videos of ``length`` listed frames.

    Video ids are 1..num_videos, file names ``<10 hex digits>/<raw frame:05d>.jpg`` with raw frames
    0, annotate_every, 2*annotate_every, ... With ``with_valid_gt`` the model-facing JSON
    (``valid.json``) holds videos + categories only and the annotations go to ``valid_gt.json``.
    The folder is built beside ``out_dir`` and renamed into place.
    """
    _check_args(num_videos, length, height, width, annotate_every)
    with atomic_output_dir(out_dir, overwrite) as root:
        _write_ytvis(root, (seed, 0), num_videos, length, height, width, annotate_every, with_valid_gt,
                     options, progress)
    logger.info("wrote %d synthetic YouTube-VIS videos to %s", num_videos, out_dir)
    return _split_files(Path(out_dir), with_valid_gt)


def make_ytvis_splits(out_dir: str | os.PathLike, num_train: int, num_valid: int, length: int = 10,
                      height: int = 192, width: int = 320, seed: int = 0, annotate_every: int = 1,
                      options: VideoSceneOptions = VideoSceneOptions(), overwrite: bool = False,
                      progress: bool = False) -> dict[str, YTVISFiles]:
    """Write ``out_dir/train`` (labelled: annotations.json) and ``out_dir/valid`` (held out:
    valid.json without annotations + valid_gt.json), from independent random streams of ``seed``
    (train equals ``make_ytvis_dataset(..., seed)``). Returns {"train": ..., "valid": ...}."""
    if num_train < 1 or num_valid < 1:
        raise ValueError(f"num_train and num_valid must be >= 1, got {num_train} and {num_valid}")
    _check_args(1, length, height, width, annotate_every)
    with atomic_output_dir(out_dir, overwrite) as root:
        for key, (split, count) in enumerate((("train", num_train), ("valid", num_valid))):
            (root / split).mkdir()
            _write_ytvis(root / split, (seed, key), count, length, height, width, annotate_every,
                         split == "valid", options, progress)
    logger.info("wrote synthetic YouTube-VIS train (%d) and valid (%d) to %s", num_train, num_valid, out_dir)
    out = Path(out_dir)
    return {"train": _split_files(out / "train", False), "valid": _split_files(out / "valid", True)}
