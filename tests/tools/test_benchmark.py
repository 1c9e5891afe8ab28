"""tools/benchmark.py and vis/benchmark.py run end to end on tiny settings (no timing assertions: the
numbers of a shared CI machine mean nothing; only the harness's structure is checked)."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from queryinst.vis.benchmark import SECTIONS, BenchmarkSettings, run_benchmark, spread_boxes, time_interleaved
from queryinst.vis.benchmark_report import format_report

REPO = Path(__file__).resolve().parents[2]


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_time_interleaved_rotates_and_reports_every_case():
    calls = []
    cases = {name: (lambda n=name: calls.append(n)) for name in "abc"}
    timings, loads = time_interleaved(cases, repeats=3, warmup=1)
    assert calls[:3] == ["a", "b", "c"]  # warm-up
    assert calls[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # each round starts one later
    assert set(timings) == set("abc") and all(t["n"] == 3 for t in timings.values())
    assert len(loads) == 3 and all(t["min_ms"] <= t["median_ms"] <= t["p75_ms"] for t in timings.values())


def test_spread_boxes_stay_inside_the_image_and_reach_every_level():
    boxes = spread_boxes(10, 360, 640)
    cx, cy, w, h = boxes.unbind(1)
    assert ((cx - w / 2) >= 0).all() and ((cx + w / 2) <= 1).all() and ((cy - h / 2) >= 0).all() and ((cy + h / 2) <= 1).all()
    sizes = (w * 640 * h * 360).sqrt()
    levels = torch.floor(torch.log2(sizes / 56 + 1e-6)).clamp(0, 3).unique()
    assert levels.tolist() == [0, 1, 2, 3]


def test_harness_runs_every_section_on_tiny_settings(tmp_path):
    out = tmp_path / "bench.json"
    argv = ["--tiny", "--threads", "1", "--out", str(out)]
    if not _has_onnxruntime():
        argv.append("--no-onnx")
    assert _tool("benchmark").main(argv) == 0
    report = json.loads(out.read_text())
    assert set(report["sections"]) == set(SECTIONS)
    assert report["machine"]["torch_threads"] == 1 and report["machine"]["cpu"]
    assert len(report["load_average_start"]) == 3
    vis = report["sections"]["vis"]
    for case in ("floor_backbone", "backbone", "backbone_lazy", "stages", "mask_head_paste", "track_head", "tracker",
                 "detect", "detect_all_levels", "frame"):
        assert vis["cases"][case]["median_ms"] > 0
    assert all(math.isfinite(v) and v > 0 for v in vis["ratios"].values())
    assert ("onnx_frame" in vis["cases"]) == _has_onnxruntime()
    image = report["sections"]["image"]
    assert image["detections"]["mask_rcnn"] == 100  # box_score_thresh=0: it really returns 100
    assert report["sections"]["tracker"]["hungarian"]["live_tracks"] == 20
    assert report["sections"]["decode"]["cv2_loop_fps"] > 0
    assert [t["name"][:3] for t in report["targets"]][:4] == ["(1)", "(2)", "(3)", "(4)"]
    assert {t["name"][:3] for t in report["targets"][4:]} == {"(5)"}
    text = format_report(report)
    assert "ratio frame/floor" in text and "targets" in text


def test_unknown_section_is_an_error():
    with pytest.raises(ValueError, match="unknown benchmark sections"):
        run_benchmark(BenchmarkSettings(sections=("vis", "gpu")))


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True
