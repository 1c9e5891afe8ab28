"""The Python way in: ``VideoTracker`` runs QueryInst-VIS and the online tracker over any frame source and
yields typed per-frame results.

    from queryinst import VideoTracker

    tracker = VideoTracker.from_pretrained("demo")          # or a checkpoint path (VIS or image)
    for frame in tracker.track("assets/sample.mp4"):
        print(frame.frame_index, frame.track_ids, frame.class_names)
    tracker.track_to_files("assets/sample.mp4", "out/")     # annotated MP4 + JSON, as tools/track_video.py

Sources: a video file, an image folder, a glob of images, a camera index (``0``), a stream URL
(``rtsp://...``), or any iterable of RGB uint8 arrays [H, W, 3].
"""
from __future__ import annotations

import glob as globlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from pycocotools import mask as mask_utils

from ..tracking import OnlineTracker
from .inference import FrameResult, VideoTrackAccumulator, track_frames

if TYPE_CHECKING:
    from .outputs import TrackedFiles

DEMO = "demo"  # from_pretrained's name of the shipped demo model


@dataclass
class TrackedFrame:
    """The tracked instances of one frame, in the frame's pixels.

    track_ids [K]; boxes [K, 4] xyxy; scores [K]; labels [K] contiguous class indices; class_names [K];
    rles: K COCO compressed RLEs (counts as str); frame_index: position among the processed frames;
    source_frame / timestamp: where it was in the source (equal to frame_index / unknown for arrays);
    image: the RGB frame itself when kept (``track(..., keep_images=True)``, the default), for ``plot``.
    """

    frame_index: int
    track_ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    rles: list[dict]
    height: int
    width: int
    source_frame: int = -1
    timestamp: float | None = None
    image: np.ndarray | None = field(default=None, repr=False)
    _masks: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.track_ids)

    @property
    def masks(self) -> np.ndarray:
        """[K, H, W] bool, decoded from the RLEs on first use."""
        if self._masks is None:
            if not self.rles:
                self._masks = np.zeros((0, self.height, self.width), dtype=bool)
            else:
                coco = [{"size": r["size"], "counts": r["counts"].encode("ascii")} for r in self.rles]
                self._masks = mask_utils.decode(coco).transpose(2, 0, 1).astype(bool)
        return self._masks

    def to_json(self) -> dict[str, Any]:
        """This frame as tools/track_video.py writes it in its JSON ``frames`` list."""
        tracks = [{"track_id": int(t), "box": [round(float(v), 2) for v in box], "score": round(float(s), 4),
                   "class_id": int(lbl), "class_name": name, "rle": rle}
                  for t, box, s, lbl, name, rle in zip(self.track_ids, self.boxes, self.scores, self.labels,
                                                         self.class_names, self.rles)]
        entry: dict[str, Any] = {"frame_index": self.frame_index, "source_frame": self.source_frame}
        if self.timestamp is not None:
            entry["timestamp"] = round(float(self.timestamp), 6)
        entry["tracks"] = tracks
        return entry

    def plot(self, image: np.ndarray | None = None) -> np.ndarray:
        """The frame with masks, boxes and "id class score" labels drawn (RGB uint8 [H, W, 3])."""
        from .visualize import draw_tracks

        frame = image if image is not None else self.image
        if frame is None:
            raise ValueError("plot() needs the frame: track(..., keep_images=True) or plot(image)")
        return draw_tracks(frame, self._as_result(), self._names_by_label())

    def to_supervision(self):
        """A ``supervision.Detections`` (xyxy, mask, confidence, class_id, tracker_id), when the optional
        ``supervision`` package is installed."""
        try:
            import supervision as sv
        except ImportError as err:
            raise ImportError("to_supervision() needs the optional package 'supervision' (pip install supervision)") from err
        return sv.Detections(xyxy=np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4), mask=self.masks,
                             confidence=np.asarray(self.scores, dtype=np.float32),
                             class_id=np.asarray(self.labels, dtype=int), tracker_id=np.asarray(self.track_ids, dtype=int),
                             data={"class_name": np.asarray(self.class_names, dtype=object)})

    def _as_result(self) -> FrameResult:
        return FrameResult(self.frame_index, self.track_ids, self.boxes, self.scores, self.labels, self.rles,
                           self._masks, self.height, self.width)

    def _names_by_label(self) -> list[str]:
        names: dict[int, str] = {int(lbl): n for lbl, n in zip(self.labels, self.class_names)}
        size = max(names, default=-1) + 1
        return [names.get(k, f"class{k}") for k in range(size)]


def _is_camera(source: Any) -> bool:
    return isinstance(source, int) or (isinstance(source, str) and (source.isdigit() or "://" in source))


class VideoTracker:
    """QueryInst-VIS and the online tracker behind one object.

    Args:
        model: a QueryInst-VIS model in eval mode (``from_pretrained`` builds, loads and folds it).
        cfg: its ``VisConfig`` (test sizes, tracker settings, score threshold).
        class_names: name per contiguous label; cat_ids: dataset category id per label.
    """

    def __init__(self, model, cfg, class_names: Sequence[str], cat_ids: Sequence[int]) -> None:
        self.model, self.cfg = model, cfg
        self.class_names, self.cat_ids = list(class_names), [int(c) for c in cat_ids]

    @classmethod
    def from_pretrained(cls, weights: str | os.PathLike = DEMO, config: str | os.PathLike | None = None,
                        device: str = "auto", overrides: Sequence[str] | Mapping[str, Any] = (),
                        backend: str = "pytorch", calibration: Any = None, **options: Any) -> VideoTracker:
        """Load a checkpoint (``"demo"``: the shipped demo model) for tracking.

        weights: a QueryInst-VIS checkpoint, or an image QueryInst checkpoint (ours, or converted from
            mmdetection), which tracks with its query embeddings (docs/design.md#association-embeddings);
            or a registered name (queryinst/weights.py, docs/model_zoo.md), fetched into the cache once.
        config: its config (None: the config stored in the checkpoint).
        device: "auto" | "cpu" | "cuda".
        overrides: dotted config overrides, ``["tracker.mode=masktrack"]`` or ``{"tracker.mode": "masktrack"}``.
        backend: "pytorch", "onnxruntime" (the network exported and run by ONNX Runtime on the CPU) or
            "onnxruntime-int8" (also quantised to int8, calibrated on the first 16 frames of ``calibration``:
            a video file, image folder or glob, or RGB uint8 frames; vis/modeling/quantize.py).
        options: shortcuts: ``score_threshold=0.3``; any other ``section__key=value`` becomes an
            override (``tracker__duplicate_iou=0.7``).
        """
        from .modeling.build import load_vis_model
        from .modeling.quantize import runtime_model

        items = [f"{k}={v}" for k, v in overrides.items()] if isinstance(overrides, Mapping) else list(overrides)
        score_thr = options.pop("score_threshold", None)
        items += [f"{k.replace('__', '.')}={v}" for k, v in options.items()]
        if str(weights) == DEMO:
            if config is not None:
                raise ValueError("the demo model brings its own config; give config= only with a checkpoint path")
            cfg_path, weights_path = None, None
        else:
            cfg_path, weights_path = (None if config is None else os.fspath(config)), os.fspath(weights)
        cfg, model, names, cat_ids = load_vis_model(cfg_path, weights_path, items, device, score_thr)
        model = runtime_model(model, backend, cfg.data.test_min_size, cfg.data.test_max_size, calibration)
        return cls(model, cfg, names, cat_ids)

    # ------------------------------------------------------------------------------------------
    def track(self, source: Any, *, stride: int = 1, start: float = 0.0, end: float | None = None,
              max_size: int = 0, fps: float = 30.0, batch_frames: int = 1,
              keep_images: bool = True) -> Iterator[TrackedFrame]:
        """Track every frame of ``source`` (see the module docstring); one ``TrackedFrame`` per frame.

        The tracker starts afresh at each call. stride/start/end/max_size/fps apply to files, folders and
        globs as in tools/track_video.py; max_size also to cameras and streams.
        """
        frames, meta = self._open(source, stride, start, end, max_size, fps)
        tracker = OnlineTracker(self.cfg.tracker)
        queued: list[tuple[np.ndarray, int, float | None]] = []

        def images() -> Iterator[np.ndarray]:
            for image, index, stamp in frames:
                queued.append((image, index, stamp))
                yield image

        try:
            for result in track_frames(self.model, tracker, images(), self.cfg.data.test_min_size,
                                       self.cfg.data.test_max_size, batch_frames, keep_masks=False):
                image, index, stamp = queued.pop(0)
                yield TrackedFrame(result.frame_index, result.track_ids, result.boxes, result.scores, result.labels,
                                   [self._name(lbl) for lbl in result.labels], result.rles, result.height,
                                   result.width, index, stamp, image if keep_images else None)
        finally:
            close = getattr(meta, "close", None)
            if close is not None:
                close()

    def track_video(self, source: Any, **options: Any) -> dict[str, Any]:
        """Track a whole source and return ``{"frames": [TrackedFrame...], "tracks": [YouTube-VIS record per
        track + "track_id", "class_name"]}`` (per track: mean score, majority class, one RLE per frame or
        None). Holds every frame's RLEs (not the images unless keep_images=True)."""
        options.setdefault("keep_images", False)
        frames = list(self.track(source, **options))
        acc = VideoTrackAccumulator(num_frames=len(frames))
        seen: set[int] = set()
        for f in frames:
            acc.add(f._as_result())
            seen.update(int(t) for t in f.track_ids)
        tracks = []
        for track_id, record in zip(sorted(seen), acc.records(1, self.cat_ids)):
            label = self.cat_ids.index(record["category_id"])
            tracks.append({"track_id": track_id, "class_name": self._name(label), **record})
        return {"frames": frames, "tracks": tracks}

    def track_to_files(self, source: str | os.PathLike, out_dir: str | os.PathLike, *, stem: str | None = None,
                       video: bool = True, png_masks: bool = False, trails: bool = False, mot: bool = False,
                       mots: bool = False, stride: int = 1, start: float = 0.0, end: float | None = None,
                       max_size: int = 0, fps: float = 30.0, batch_frames: int = 1,
                       progress: bool = True) -> TrackedFiles:
        """Track a video file, image folder or glob and write what tools/track_video.py writes for it in
        ``out_dir`` (vis/outputs.py): ``<stem>.mp4`` (video), ``<stem>.json``, ``<stem>_masks/``
        (png_masks), ``<stem>_mot.txt`` (mot), ``<stem>_mots.txt`` (mots); each file under a temporary
        name until complete, nothing left of the input on an error. Returns a ``TrackedFiles`` (paths
        written, frame count, decode errors, ``damaged`` when the input was cut or corrupt mid-way).
        """
        from .outputs import write_track_files

        if not isinstance(source, (str, os.PathLike)):
            raise TypeError(f"track_to_files needs a video file, image folder or glob, not a {type(source).__name__}")
        return write_track_files(self.model, self.cfg, self.class_names, self.cat_ids, os.fspath(source), out_dir,
                                 stem, video=video, png_masks=png_masks, trails=trails, mot=mot, mots=mots,
                                 stride=stride, start=start, end=end, max_size=max_size, fps=fps,
                                 batch_frames=batch_frames, progress=progress)

    # ------------------------------------------------------------------------------------------
    def _name(self, label: int) -> str:
        label = int(label)
        return self.class_names[label] if 0 <= label < len(self.class_names) else f"class{label}"

    def _open(self, source: Any, stride: int, start: float, end: float | None, max_size: int,
              fps: float) -> tuple[Iterator[tuple[np.ndarray, int, float | None]], Any]:
        """(iterator of (RGB frame, source index, timestamp), object to close)."""
        if _is_camera(source):
            from .io.capture import webcam_frames

            live = webcam_frames(int(source) if str(source).isdigit() else source, max_size=max_size)
            return ((f.image, f.index, f.timestamp) for f in live), live
        if isinstance(source, (str, os.PathLike)):
            from .io.reader import open_frames

            path = os.fspath(source)
            if not os.path.exists(path) and not globlib.has_magic(path):
                raise FileNotFoundError(f"{path}: no such video, image folder or image")
            frames = open_frames(path, stride=stride, start=start, end=end, max_size=max_size, fps=fps)
            return ((f.image, f.index, f.timestamp) for f in frames), frames
        if isinstance(source, np.ndarray) and source.ndim == 3:
            source = [source]
        if isinstance(source, Iterable):
            return ((_check_rgb(image, k), k, None) for k, image in enumerate(source)), None
        raise TypeError(f"cannot track a {type(source).__name__}: give a path, a camera index, a URL or RGB arrays")


def _check_rgb(image: Any, index: int) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"frame {index}: expected an RGB uint8 array [H, W, 3], got "
                         f"{getattr(image, 'dtype', type(image).__name__)} {list(getattr(image, 'shape', []))}")
    return image

