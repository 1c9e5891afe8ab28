"""tools/benchmark.py runs the harness (vis/bench/) end to end on tiny settings (no timing assertions: the
numbers of a shared CI machine mean nothing; only the report's structure is checked)."""
from __future__ import annotations

import json
import math

import pytest

from queryinst.vis.bench.harness import SECTIONS
from queryinst.vis.bench.report import format_report


@pytest.mark.slow
def test_harness_runs_every_section_on_tiny_settings(tmp_path, load_tool):
    out = tmp_path / "bench.json"
    argv = ["--tiny", "--threads", "1", "--out", str(out)]
    if not _has_onnxruntime():
        argv.append("--no-onnx")
    assert load_tool("benchmark").main(argv) == 0
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
    training = report["sections"]["training"]  # ours always; mmdetection's where it imports (its own env)
    assert training["cases"]["training_step"]["median_ms"] > 0 and training["stages"] == 2
    timed_mmdet = "mmdet_training_step" in training["cases"]
    assert timed_mmdet == (training["mmdet"] == "timed in this process") == ("ratios" in training)
    assert [t["name"][:3] for t in report["targets"]][:4] == ["(1)", "(2)", "(3)", "(4)"]
    names = {t["name"][:4].rstrip(" ") for t in report["targets"][4:]}
    # (6) is the GPU, not run here; (8)/(9) need onnxruntime, (10) mmdetection
    assert names == {"(5)", "(7)"} | ({"(8)", "(9)"} if _has_onnxruntime() else set()) | \
        ({"(10)"} if timed_mmdet else set())
    if _has_onnxruntime():  # the int8 section at tiny size: R50 (here R18) frame and the real-time loop
        int8 = report["sections"]["int8"]
        assert {"onnx_frame", "onnx_int8_frame", "floor_backbone", "onnx_network", "onnx_int8_network"} <= \
            set(int8["r50"]["cases"])
        loop = int8["48x80"]
        assert loop["onnx_int8_frame_fps"] > 0 and loop["target_fps"] == 60.0
        parts = loop["onnx_int8_breakdown"]
        assert parts["network_ms"] > 0 and parts["rle_ms"] > 0 and parts["tracker_ms"] > 0
        assert abs(sum(v for k, v in parts.items() if k != "total_ms") - parts["total_ms"]) < 1e-6
    text = format_report(report)
    assert "ratio frame/floor" in text and "targets" in text


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True
