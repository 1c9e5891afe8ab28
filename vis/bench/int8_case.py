"""The benchmark's int8 section (issue 15; docs/benchmarks.md#int8-on-the-cpu-issue-15): ONNX Runtime int8
(vis/modeling/quantize.py) against fp32 from one export of the same random-weight model, and where the
real-time loop's time goes."""
from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ...image.config import load_config
from ...tracking import OnlineTracker, TrackerConfig
from ..config import VisConfig
from ..inference import frame_to_tensor
from .models import benchmark_vis_model, floor_backbone, loop_case, random_frame
from .timing import time_interleaved

if TYPE_CHECKING:
    from .harness import BenchmarkSettings

logger = logging.getLogger(__name__)


def bench_int8(s: BenchmarkSettings) -> dict[str, Any]:
    """ONNX Runtime int8 against fp32, both from one export of the same random-weight model, interleaved:

    r50: the R50 VIS network alone and the whole loop (``track_frames``) at ``vis_size``, in fp32 and int8,
        with the bare torchvision R50-FPN in fp32 (the floor of section vis); target (8): int8 frame / floor.
    <h>x<w>: the real-time config's whole loop at each of ``realtime_sizes`` in fp32 and int8 (target (9):
        ``realtime_fps_targets``), and where each loop's time goes (``loop_breakdown``).
    Random weights: the timings are the speed of the arithmetic only (int8 accuracy: docs/benchmarks.md)."""
    try:  # the export needs onnx and the quantiser onnxruntime, both imported lazily by those modules
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

        from ..modeling.export import OnnxQueryInstVIS
        from ..modeling.quantize import export_int8
    except ImportError as err:
        logger.warning("int8 section skipped: %s", err)
        return {"skipped": str(err)}
    threads = torch.get_num_threads()
    out: dict[str, Any] = {"calibration_frames": s.int8_calibration_frames}
    runs = [("r50", s.vis_size, None)] + [(f"{h}x{w}", (h, w), fps) for (h, w), fps in
                                          zip(s.realtime_sizes, s.realtime_fps_targets)]
    for key, (h, w), target_fps in runs:
        if key == "r50":
            cfg = VisConfig()
            cfg.model.backbone, cfg.model.num_proposals = s.backbone, s.vis_queries
            cfg.model.num_classes = s.vis_classes
        else:
            cfg = load_config(s.realtime_config, schema=VisConfig)
        model = benchmark_vis_model(cfg, h, w, s.seed)
        frame = random_frame(h, w, s.seed)
        calibration = [random_frame(h, w, s.seed + 1 + k) for k in range(s.int8_calibration_frames)]
        with tempfile.TemporaryDirectory(prefix="qi_int8_") as folder:
            paths = export_int8(model, folder, calibration, h, max(h, w), s.int8_calibration_frames)
            fp32, int8 = (OnnxQueryInstVIS(p, num_threads=threads) for p in paths)
        cases: dict[str, Callable[[], Any]] = {
            "onnx_frame": loop_case(fp32, cfg.tracker, frame, h, max(h, w)),
            "onnx_int8_frame": loop_case(int8, cfg.tracker, frame, h, max(h, w))}
        if key == "r50":
            batch = model.detector.preprocess([frame_to_tensor(frame, h, max(h, w))])
            floor = floor_backbone(s.backbone)
            cases["floor_backbone"] = lambda: floor(batch.tensors)
            cases["onnx_network"] = lambda: fp32.run_network(batch.tensors, batch.image_sizes[0])
            cases["onnx_int8_network"] = lambda: int8.run_network(batch.tensors, batch.image_sizes[0])
        with torch.no_grad():
            timings, loads = time_interleaved(cases, s.repeats, s.warmup)
        med = {k: v["median_ms"] for k, v in timings.items()}
        entry: dict[str, Any] = {"cases": timings, "load_1min": loads,
                                 "ratios": {"onnx_int8_frame/onnx_frame": med["onnx_int8_frame"] / med["onnx_frame"]}}
        if key == "r50":
            entry["ratios"].update({"onnx_int8_frame/floor": med["onnx_int8_frame"] / med["floor_backbone"],
                                    "onnx_frame/floor": med["onnx_frame"] / med["floor_backbone"],
                                    "onnx_int8_network/onnx_network": med["onnx_int8_network"] / med["onnx_network"]})
        else:
            entry.update({"onnx_frame_fps": 1e3 / med["onnx_frame"], "onnx_int8_frame_fps": 1e3 / med["onnx_int8_frame"],
                          "target_fps": target_fps})
            for name, runtime in (("onnx", fp32), ("onnx_int8", int8)):
                entry[f"{name}_breakdown"] = loop_breakdown(runtime, cfg.tracker, frame, h, max(h, w),
                                                             max(s.repeats, 1))
        out[key] = entry
    return out


def loop_breakdown(model: Any, tracker_cfg: TrackerConfig, frame: np.ndarray, min_size: int, max_size: int,
                    frames: int) -> dict[str, float]:
    """Where an ONNX Runtime loop's time goes: ``frames`` frames of ``loop_case`` with the functions it calls
    timed in place (``_timed_calls``), as mean ms per frame: resize (``frame_to_tensor``), normalise + pad,
    network (ONNX Runtime, inputs and outputs converted), selection, mask paste, tracker input, tracker, RLE;
    ``other_ms``: the rest of the loop (Python glue, box scaling, copies); ``total_ms``: the whole loop."""
    from .. import inference
    from ..modeling import export
    from ..modeling.model import FrameDetections

    spots = {"resize": (inference, "frame_to_tensor"), "normalize_pad": (export, "pad_and_normalize"),
             "network": (export.OnnxQueryInstVIS, "run_network"), "select": (export, "select_detections"),
             "paste": (export, "paste_label_masks"), "tracker_input": (FrameDetections, "to_tracker"),
             "tracker": (OnlineTracker, "update"), "rle": (inference, "encode_masks")}
    step = loop_case(model, tracker_cfg, frame, min_size, max_size)
    step()  # warm-up
    with _timed_calls(spots) as seconds, torch.no_grad():
        start = time.perf_counter()
        for _ in range(frames):
            step()
        total = time.perf_counter() - start
    out = {f"{name}_ms": 1e3 * value / frames for name, value in seconds.items()}
    out["other_ms"] = 1e3 * (total - sum(seconds.values())) / frames
    out["total_ms"] = 1e3 * total / frames
    return out


@contextmanager
def _timed_calls(spots: dict[str, tuple[Any, str]]) -> Iterator[dict[str, float]]:
    """Replace each ``owner.attribute`` (a module's function or a class's method) by a wrapper that adds the
    seconds of its calls to the yielded {name: seconds}; the originals are put back on exit."""
    seconds = dict.fromkeys(spots, 0.0)
    originals = {name: getattr(owner, attr) for name, (owner, attr) in spots.items()}

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - start
        return wrapper

    for name, (owner, attr) in spots.items():
        setattr(owner, attr, timed(name, originals[name]))
    try:
        yield seconds
    finally:
        for name, (owner, attr) in spots.items():
            setattr(owner, attr, originals[name])
