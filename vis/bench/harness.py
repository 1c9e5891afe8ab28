"""Speed benchmark of the per-frame path against its peers, timed in ONE process
(docs/design.md#speed-goals).

On a CPU the floor of any ResNet-50-FPN model is the bare backbone, so the numbers that mean something
are ratios taken in the same process. Every section times its cases interleaved with
``vis.bench.timing.time_interleaved`` (round-robin with a rotating start, medians, load average per round).

Sections (``run_benchmark``; ``BenchmarkSettings`` holds the sizes):
  vis       QueryInst-VIS per frame (R50, 10 queries, 40 classes, 360x640), split into backbone / stages /
            mask head + paste / track head (an option: the default association uses the query features,
            free) / tracker, plus ``detect`` and the whole library loop
            (``vis.inference.track_frames``: resize, detect, tracker, RLE), the bare torchvision
            R50-FPN backbone (the floor) on the same padded input, and the ONNX Runtime loop.
  image     image QueryInst (R50, 100 queries, 80 classes, 800x1333) against torchvision Mask R-CNN
            (random weights, box_score_thresh=0 so that it really returns 100 detections) and the floor.
  tracker   OnlineTracker.update with 10 detections against 100 live tracks (1024-d embeddings).
  eval      evaluate_ytvis on the synthetic 300-video x 10-prediction case (240x320).
  realtime  configs/synthetic/vis_synth_mnv3.yaml: the whole loop at its own size and at 360x640.
  decode    frames/s of ``vis.io.reader.open_frames`` (decord / OpenCV) and of a bare cv2 loop.
  int8      ONNX Runtime int8 (vis/modeling/quantize.py) against fp32: the R50 VIS network and whole loop
            against the R50-FPN floor, and the real-time config's whole loop per input size, with where
            that loop's time goes (vis/bench/int8_case.py).
  training  one training iteration of the image QueryInst (R50, 100 queries, batch 2 padded to 512x640,
            forward + losses + backward + clipping + AdamW) against mmdetection 3.3's QueryInst on the
            same batch with the same weights, when mmdetection is importable (vis/bench/training_case.py).

Weights are random (nothing is downloaded), with two changes so that the work is a trained model's worst
case rather than an artefact of random boxes (``plausible_boxes``): the learned proposals sit on a fixed
spread of object-sized boxes that uses every pyramid level, and the last box-regression layer of every
stage is zeroed so the boxes stay there; and the VIS score threshold is 0, so all 10 queries are
detected (mask head, paste, embeddings and tracker all run on 10 detections).
"""
from __future__ import annotations

import datetime
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ... import cli
from ...image.build import build_queryinst
from ...image.config import Config, load_config
from ...image.fuse import folded_copy
from ...image.lazy_level import LazyLevel
from ...image.postprocess import paste_masks
from ...image.roi_pooler import assign_levels
from ...tracking import Detections, OnlineTracker, TrackerConfig
from ..config import VisConfig
from ..eval.ytvis_eval import evaluate_ytvis
from ..inference import frame_to_tensor
from ..modeling.model import select_detections
from .int8_case import bench_int8
from .models import benchmark_vis_model, floor_backbone, loop_case, onnx_twin, plausible_boxes, random_frame
from .report import targets
from .timing import machine_info, stats_ms, time_interleaved, top_operators
from .training_case import bench_training
from .ytvis_case import make_benchmark_case

logger = logging.getLogger(__name__)

SECTIONS = ("vis", "image", "tracker", "eval", "realtime", "decode", "contention", "int8", "training")
REALTIME_CONFIG = "configs/synthetic/vis_synth_mnv3.yaml"


@dataclass
class BenchmarkSettings:
    """What to time. Defaults are the targets' settings (docs/benchmarks.md); ``tiny()`` is for tests."""

    sections: tuple[str, ...] = SECTIONS
    repeats: int = 10  # timed rounds per section (the median is reported)
    warmup: int = 2  # untimed calls of every case first
    backbone: str = "resnet50"  # ours and the torchvision floor's
    vis_size: tuple[int, int] = (360, 640)  # paper Sec. 4.3 input (h, w)
    vis_queries: int = 10
    vis_classes: int = 40
    image_size: tuple[int, int] = (800, 1333)  # COCO test size
    image_queries: int = 100
    image_classes: int = 80
    tracker_dets: int = 10
    tracker_tracks: int = 100
    tracker_dim: int = 1024  # MaskTrack R-CNN track head width
    tracker_frames: int = 300
    eval_videos: int = 300
    eval_preds: int = 10
    eval_size: tuple[int, int] = (240, 320)
    realtime_config: str = REALTIME_CONFIG
    realtime_sizes: tuple[tuple[int, int], ...] = ((192, 320), (360, 640))  # config size, paper size
    decode_size: tuple[int, int] = (360, 640)
    decode_frames: int = 120
    contention_size: tuple[int, int] = (192, 320)  # the demo architecture's own input size
    training_sizes: tuple[tuple[int, int], ...] = ((500, 620), (470, 640))  # (h, w) per image: padded 512x640
    training_queries: int = 100
    training_classes: int = 80
    training_instances: int = 6  # per image
    training_stages: int = 6
    onnx: bool = True  # also time the ONNX Runtime path (skipped when onnxruntime is missing)
    int8_calibration_frames: int = 8  # int8 section: frames to calibrate on (benchmark frames, other seeds)
    realtime_fps_targets: tuple[float, ...] = (60.0, 30.0)  # int8 section: per realtime size (issue 15)
    seed: int = 0

    @classmethod
    def tiny(cls) -> "BenchmarkSettings":
        """Seconds on a CPU: small inputs, ResNet-18, one round. Timings are meaningless."""
        return cls(repeats=1, warmup=0, backbone="resnet18", vis_size=(64, 96), vis_queries=4, vis_classes=3,
                   image_size=(64, 96), image_queries=6, image_classes=3, tracker_tracks=20, tracker_dim=32,
                   tracker_frames=5, eval_videos=3, eval_preds=2, eval_size=(32, 48), realtime_sizes=((48, 80),),
                   decode_size=(32, 48), decode_frames=4, contention_size=(48, 80), int8_calibration_frames=2,
                   training_sizes=((60, 90), (64, 80)), training_queries=6, training_classes=3, training_instances=2,
                   training_stages=2)


# ----------------------------------------------------------------------------------------- sections
def bench_vis(s: BenchmarkSettings) -> dict[str, Any]:
    """QueryInst-VIS per frame, split, against the backbone floor (and the ONNX Runtime loop). The split
    reads a pyramid computed whole ("backbone"); ``detect`` and ``frame`` compute P2 and P3 lazily (the
    model's default), so "backbone_lazy" is the backbone without their output convs, which move into the
    poolings; "detect_all_levels" is ``detect`` without the lazy levels."""
    h, w = s.vis_size
    cfg = VisConfig()
    cfg.model.backbone, cfg.model.num_proposals, cfg.model.num_classes = s.backbone, s.vis_queries, s.vis_classes
    model = benchmark_vis_model(cfg, h, w, s.seed)
    unfolded = benchmark_vis_model(cfg, h, w, s.seed, fold=False)
    det = model.detector
    frame = random_frame(h, w, s.seed)
    image = frame_to_tensor(frame, h, max(h, w))
    batch = det.preprocess([image])
    padded = tuple(batch.tensors.shape[-2:])
    floor, floor_folded = floor_backbone(s.backbone), floor_backbone(s.backbone, fold=True)
    with torch.no_grad():
        feats = det.backbone(batch.tensors)
        raw = det.run_heads(feats, batch.image_sizes, padded)
        last = raw.stages[-1]
        scores, labels = last.cls_logits[0].sigmoid().max(dim=1)
        rois = torch.cat([last.boxes.new_zeros(s.vis_queries, 1), last.boxes[0]], 1)
        dets = model.detect([image])[0]
        lazy_tiles = _lazy_tiles(model, batch)
    tracker = OnlineTracker(TrackerConfig())
    tracker_input = dets.to_tracker()

    def mask_and_paste() -> torch.Tensor:
        logits = det.stages[-1].predict_masks(feats, rois, last.attn_feats[0])
        probs = logits[torch.arange(len(labels)), labels].sigmoid()
        return paste_masks(probs, last.boxes[0], h, w, model.mask_threshold)

    cases: dict[str, Callable[[], Any]] = {
        "floor_backbone": lambda: floor(batch.tensors),
        "floor_backbone_folded": lambda: floor_folded(batch.tensors),
        "backbone": lambda: det.backbone(batch.tensors),
        "backbone_lazy": lambda: det.backbone(batch.tensors, det.lazy_levels),
        "stages": lambda: det.run_heads(feats, batch.image_sizes, padded),
        "mask_head_paste": mask_and_paste,
        "track_head": lambda: model.embed(feats, rois),
        "tracker": lambda: tracker.update(tracker_input),
        "detect": lambda: model.detect([image]),
        "detect_all_levels": lambda: _detect_all_levels(model, image),
        "detect_unfolded": lambda: unfolded.detect([image]),
        "frame": loop_case(model, TrackerConfig(), frame, h, max(h, w)),
    }
    onnx = onnx_twin(model) if s.onnx else None
    if onnx is not None:
        cases["onnx_frame"] = loop_case(onnx, TrackerConfig(), frame, h, max(h, w))
    with torch.no_grad():
        timings, loads = time_interleaved(cases, s.repeats, s.warmup)
        profile = top_operators(cases["frame"]) if s.repeats > 1 else []
    med = {k: v["median_ms"] for k, v in timings.items()}
    heads = med["stages"] + med["mask_head_paste"] + med["track_head"] + med["tracker"]
    ratios = {"frame/floor": med["frame"] / med["floor_backbone"], "detect/floor": med["detect"] / med["floor_backbone"],
              "frame/floor_folded": med["frame"] / med["floor_backbone_folded"],
              "detect_unfolded/floor": med["detect_unfolded"] / med["floor_backbone"],
              "detect_all_levels/floor": med["detect_all_levels"] / med["floor_backbone"],
              "backbone/floor": med["backbone"] / med["floor_backbone"],
              "(backbone+stages+mask+track+tracker)/floor": (med["backbone"] + heads) / med["floor_backbone"]}
    if "onnx_frame" in med:
        ratios["onnx_frame/floor"] = med["onnx_frame"] / med["floor_backbone"]
    levels = [int(v) for v in torch.bincount(assign_levels(last.boxes[0], 4).clamp(min=0), minlength=4)]
    return {"input": [h, w], "padded": list(padded), "cases": timings, "ratios": ratios, "load_1min": loads,
            "detections": len(dets.scores), "last_stage_rois_per_level": levels, "p2_tiles_computed": lazy_tiles,
            "profile_frame": profile}


def _detect_all_levels(model: nn.Module, image: torch.Tensor) -> Any:
    """``detect`` with every FPN level computed whole: the same outputs as the lazy default (pinned by
    tests/vis/modeling/test_model.py), the per-frame path as it was before the lazy levels."""
    lazy, model.detector.lazy_levels = model.detector.lazy_levels, ()
    try:
        return model.detect([image])
    finally:
        model.detector.lazy_levels = lazy


def _lazy_tiles(model: nn.Module, batch: Any) -> list[int] | None:
    """[tiles computed, tiles in total] of the lazy P2 over one frame's detect (stages, masks, track head)."""
    det = model.detector
    raw = det.run_stages(batch)
    if not isinstance(raw.features[0], LazyLevel):
        return None
    last = raw.stages[-1]
    _, _, queries = select_detections(last.cls_logits[0], model.max_per_frame, model.score_threshold)
    rois = torch.cat([last.boxes.new_zeros(len(queries), 1), last.boxes[0, queries]], 1)
    model.embed(raw.features, rois)
    det.stages[-1].predict_masks(raw.features, rois, last.attn_feats[0, queries])
    return [raw.features[0].computed_tiles, raw.features[0].num_tiles]


def bench_image(s: BenchmarkSettings) -> dict[str, Any]:
    """Image QueryInst (postprocess with pasted masks) against Mask R-CNN and the floor, same input."""
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    h, w = s.image_size
    cfg = Config()
    cfg.model.backbone, cfg.model.num_proposals, cfg.model.num_classes = s.backbone, s.image_queries, s.image_classes
    torch.manual_seed(s.seed)
    unfolded = build_queryinst(cfg).eval()
    plausible_boxes(unfolded, h, w, s.seed)
    model = folded_copy(unfolded)
    # Mask R-CNN's transform resizes to min_size/max_size: set them to the input so that it does not.
    torch.manual_seed(s.seed)
    mask_rcnn = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, box_score_thresh=0.0,
                                      box_detections_per_img=100, min_size=h, max_size=max(h, w)).eval()
    mask_rcnn_folded = folded_copy(mask_rcnn)
    floor = floor_backbone(s.backbone)
    image = torch.from_numpy(random_frame(h, w, s.seed)).permute(2, 0, 1).float().div(255.0)
    padded = model.preprocess([image]).tensors
    with torch.no_grad():
        ours = model([image])[0]
        theirs = mask_rcnn([image])[0]
        cases = {"floor_backbone": lambda: floor(padded), "queryinst": lambda: model([image]),
                 "queryinst_unfolded": lambda: unfolded([image]), "mask_rcnn": lambda: mask_rcnn([image]),
                 "mask_rcnn_folded": lambda: mask_rcnn_folded([image])}
        timings, loads = time_interleaved(cases, s.repeats, s.warmup)
        profile = top_operators(cases["queryinst"], calls=1) if s.repeats > 1 else []
    med = {k: v["median_ms"] for k, v in timings.items()}
    return {"input": [h, w], "queries": s.image_queries, "cases": timings, "load_1min": loads,
            "ratios": {"queryinst/mask_rcnn": med["queryinst"] / med["mask_rcnn"],
                       "queryinst/mask_rcnn_folded": med["queryinst"] / med["mask_rcnn_folded"],
                       "queryinst_unfolded/mask_rcnn": med["queryinst_unfolded"] / med["mask_rcnn"],
                       "queryinst/floor": med["queryinst"] / med["floor_backbone"],
                       "mask_rcnn/floor": med["mask_rcnn"] / med["floor_backbone"]},
            "detections": {"queryinst": len(ours.scores), "queryinst_unique_queries": int(ours.query_indices.unique().numel()),
                           "mask_rcnn": len(theirs["scores"])}, "profile_queryinst": profile}


def bench_tracker(s: BenchmarkSettings) -> dict[str, Any]:
    """``update`` with ``tracker_dets`` detections per frame against ``tracker_tracks`` live tracks: frame 0
    opens every track; frame t shows objects (t * dets + k) % tracks with jittered boxes and embeddings,
    so every object comes back before ``max_unseen`` and the memory stays at ``tracker_tracks``."""
    out: dict[str, Any] = {"dets": s.tracker_dets, "tracks": s.tracker_tracks, "dim": s.tracker_dim}
    for mode in ("hungarian", "masktrack"):
        rng = np.random.default_rng(s.seed)
        n, m = s.tracker_dets, s.tracker_tracks
        centers = rng.uniform(0, 1000, (m, 2))
        codes = rng.normal(size=(m, s.tracker_dim)) / np.sqrt(s.tracker_dim) * 6.0
        labels = rng.integers(0, 40, m)

        def frame_dets(objs: np.ndarray) -> Detections:
            c = centers[objs] + rng.normal(scale=2.0, size=(len(objs), 2))
            return Detections(np.concatenate([c - 20, c + 20], 1), rng.uniform(0.3, 1.0, len(objs)), labels[objs],
                              codes[objs] + rng.normal(scale=0.01, size=(len(objs), s.tracker_dim)))

        tracker = OnlineTracker(TrackerConfig(mode=mode, max_unseen=max(20, -(-m // n) + 1)))
        tracker.update(frame_dets(np.arange(m)))
        frames = [frame_dets((t * n + np.arange(n)) % m) for t in range(s.tracker_frames)]
        times = []
        for dets in frames:
            start = time.perf_counter()
            tracker.update(dets)
            times.append(time.perf_counter() - start)
        out[mode] = {**stats_ms(times), "live_tracks": tracker.num_tracks}
    return out


def bench_eval(s: BenchmarkSettings) -> dict[str, Any]:
    """``evaluate_ytvis`` on ``make_benchmark_case`` (case built once, untimed)."""
    gt, results = make_benchmark_case(s.eval_videos, s.eval_preds, *s.eval_size, seed=s.seed)
    timings, loads = time_interleaved({"evaluate_ytvis": lambda: evaluate_ytvis(gt, results)},
                                      s.repeats, min(s.warmup, 1))
    return {"videos": s.eval_videos, "preds_per_video": s.eval_preds, "size": list(s.eval_size),
            "cases": timings, "load_1min": loads}


def bench_realtime(s: BenchmarkSettings) -> dict[str, Any]:
    """The real-time candidate config's whole loop (detect + tracker + RLE), frames/s per input size."""
    out: dict[str, Any] = {"config": s.realtime_config}
    for h, w in s.realtime_sizes:
        cfg = load_config(s.realtime_config, schema=VisConfig)
        model = benchmark_vis_model(cfg, h, w, s.seed)
        frame = random_frame(h, w, s.seed)
        cases = {"frame": loop_case(model, cfg.tracker, frame, h, max(h, w))}
        onnx = onnx_twin(model) if s.onnx else None
        if onnx is not None:
            cases["onnx_frame"] = loop_case(onnx, cfg.tracker, frame, h, max(h, w))
        with torch.no_grad():
            timings, loads = time_interleaved(cases, s.repeats, s.warmup)
        fps = {f"{k}_fps": 1e3 / v["median_ms"] for k, v in timings.items()}
        out[f"{h}x{w}"] = {"cases": timings, **fps, "load_1min": loads}
    return out


# A CPU-bound neighbour: one process multiplying matrices on one BLAS thread, as another user's job would;
# it stops by itself after ``seconds`` even if the harness dies.
_CONTENDER = (
    "import os, time, numpy as np\n"
    "end = time.time() + float(os.environ['QI_CONTENDER_SECONDS'])\n"
    "a = np.random.default_rng(0).random((256, 256))\n"
    "while time.time() < end:\n"
    "    a = (a @ a) / 256.0\n"
)


def _start_contender(seconds: float) -> subprocess.Popen:
    env = {**os.environ, "QI_CONTENDER_SECONDS": str(seconds), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", _CONTENDER], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def bench_contention(s: BenchmarkSettings) -> dict[str, Any]:
    """The real-time config's whole per-frame loop with the tools' default threads (``cli.default_threads``,
    chosen when each phase starts, as a tool would) and wait policy, alone and while one other CPU-bound
    process runs (started and stopped here): the ratio is the collapse factor (docs/faq.md, threads;
    target <= 2, docs/benchmarks.md). ``--threads`` does not apply to this section."""
    h, w = s.contention_size
    cfg = load_config(s.realtime_config, schema=VisConfig)
    model = benchmark_vis_model(cfg, h, w, s.seed)
    frame = random_frame(h, w, s.seed)
    case = {"frame": loop_case(model, cfg.tracker, frame, h, max(h, w))}
    before = torch.get_num_threads()
    threads = {}
    try:
        with torch.no_grad():
            threads["idle"] = cli.apply_threads(None)  # the tools' default, chosen as a tool starting now would
            idle, idle_loads = time_interleaved(case, s.repeats, s.warmup)
            budget = 60.0 + 50 * idle["frame"]["median_ms"] * (s.repeats + s.warmup + 2) / 1e3
            contender = _start_contender(budget)
            try:
                time.sleep(0.5)  # let it start
                threads["contended"] = cli.apply_threads(None)
                busy, busy_loads = time_interleaved(case, s.repeats, s.warmup)
            finally:
                contender.kill()
                contender.wait()
    finally:
        torch.set_num_threads(before)
    return {"size": f"{h}x{w}", "threads": threads,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""), "idle": idle["frame"],
            "contended": busy["frame"], "ratio": busy["frame"]["median_ms"] / idle["frame"]["median_ms"],
            "ratios": {"contended/idle": busy["frame"]["median_ms"] / idle["frame"]["median_ms"]},
            "load_1min": idle_loads + busy_loads}


def bench_decode(s: BenchmarkSettings) -> dict[str, Any]:
    """Decode frames/s of a generated MPEG-4 clip: the project's reader (each backend) and bare cv2."""
    with tempfile.TemporaryDirectory(prefix="qi_decode_") as folder:
        path = os.path.join(folder, "clip.mp4")
        _write_clip(path, s.decode_size, s.decode_frames, s.seed)
        cases: dict[str, Callable[[], Any]] = {"cv2_loop": lambda: _cv2_decode(path)}
        try:
            from ..io.reader import open_frames
        except ImportError:  # the project's reader is optional here
            open_frames = None
        if open_frames is not None:
            for backend in ("decord", "opencv"):
                try:
                    open_frames(path, backend=backend).close()
                except ValueError as err:  # decord not installed
                    logger.info("decode: backend %s skipped (%s)", backend, err)
                    continue
                cases[f"video_io_{backend}"] = lambda b=backend: sum(1 for _ in open_frames(path, backend=b))
        timings, loads = time_interleaved(cases, s.repeats, min(s.warmup, 1))
    return {"size": list(s.decode_size), "frames": s.decode_frames, "cases": timings, "load_1min": loads,
            **{f"{k}_fps": s.decode_frames / v["median_ms"] * 1e3 for k, v in timings.items()}}


def _write_clip(path: str, size: tuple[int, int], frames: int, seed: int) -> None:
    """A moving textured picture with fresh sensor-like noise in every frame (so that each frame carries a
    residual to decode, not only motion vectors), MPEG-4 Part 2 (OpenCV's mp4v)."""
    import cv2

    h, w = size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    base = random_frame(h, w, seed).astype(np.int16)
    rng = np.random.default_rng(seed)
    for t in range(frames):
        noisy = np.roll(base, 3 * t, axis=1) + rng.integers(-6, 7, base.shape, dtype=np.int16)
        writer.write(np.clip(noisy, 0, 255).astype(np.uint8)[:, :, ::-1].copy())
    writer.release()


def _cv2_decode(path: str) -> int:
    """Bare OpenCV decode of every frame, converted to RGB as the project's reader does."""
    import cv2

    capture, count = cv2.VideoCapture(path), 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        count += 1
    capture.release()
    return count


_RUNNERS = {"vis": bench_vis, "image": bench_image, "tracker": bench_tracker, "eval": bench_eval,
            "realtime": bench_realtime, "decode": bench_decode, "contention": bench_contention, "int8": bench_int8,
            "training": bench_training}


def run_benchmark(settings: BenchmarkSettings, command: str = "") -> dict[str, Any]:
    """Run the chosen sections in order; returns the JSON-ready report (machine, settings, results)."""
    unknown = set(settings.sections) - set(_RUNNERS)
    if unknown:
        raise ValueError(f"unknown benchmark sections {sorted(unknown)}; choose from {list(_RUNNERS)}")
    report: dict[str, Any] = {"command": command, "date": datetime.datetime.now().isoformat(timespec="seconds"),
                              "machine": machine_info(), "settings": asdict(settings),
                              "load_average_start": list(os.getloadavg()), "sections": {}}
    for name in settings.sections:
        logger.info("benchmark section %s ...", name)
        start = time.perf_counter()
        report["sections"][name] = _RUNNERS[name](settings)
        report["sections"][name]["wall_s"] = time.perf_counter() - start
    report["load_average_end"] = list(os.getloadavg())
    report["targets"] = [asdict(t) for t in targets(report["sections"])]
    return report
