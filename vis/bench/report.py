"""Targets and text report of the benchmark harness (vis/bench/harness.py): which of the project's speed
goals (docs/design.md#speed-goals) a ``run_benchmark`` report meets, and its tables as plain text
(tools/benchmark.py prints them)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Target:
    """A speed goal: ``value`` (measured) against ``limit``; ``met`` when on the right side of it."""

    name: str
    value: float
    limit: float
    unit: str
    higher_is_better: bool = False
    met: bool = field(init=False)

    def __post_init__(self) -> None:
        self.met = self.value >= self.limit if self.higher_is_better else self.value <= self.limit


def targets(sections: Mapping[str, Any]) -> list[Target]:
    """The project's speed targets (docs/design.md#speed-goals, docs/benchmarks.md), for the sections run."""
    out = []
    if "vis" in sections:
        out.append(Target("(1) QueryInst-VIS frame (detect, embeddings, tracker, RLE) / R50-FPN floor",
                          sections["vis"]["ratios"]["frame/floor"], 1.20, "x"))
    if "image" in sections:
        out.append(Target(f"(2) image QueryInst {sections['image']['queries']}q / Mask R-CNN",
                          sections["image"]["ratios"]["queryinst/mask_rcnn"], 0.65, "x"))
    if "tracker" in sections:
        tr = sections["tracker"]
        out.append(Target(f"(3) tracker, hungarian, {tr['dets']} dets x {tr['tracks']} tracks",
                          tr["hungarian"]["median_ms"], 1.0, "ms"))
    if "eval" in sections:
        ev = sections["eval"]
        out.append(Target(f"(4) evaluate_ytvis {ev['videos']} videos x {ev['preds_per_video']} preds",
                          sections["eval"]["cases"]["evaluate_ytvis"]["median_ms"] / 1e3, 0.7, "s"))
    if "realtime" in sections:
        for key, entry in sections["realtime"].items():
            for case, backend in (("frame_fps", "PyTorch"), ("onnx_frame_fps", "ONNX Runtime")):
                if isinstance(entry, dict) and case in entry:
                    out.append(Target(f"(5) MobileNetV3 config whole loop at {key}, {backend}", entry[case], 10.0,
                                      "frames/s", higher_is_better=True))
    if "contention" in sections:
        c = sections["contention"]
        out.append(Target(f"(7) whole loop at {c['size']} beside one CPU-bound process / alone (default threads)",
                          c["ratio"], 2.0, "x"))
    if "int8" in sections and "r50" in sections["int8"]:  # issue 15: int8 on the CPU
        sec = sections["int8"]
        out.append(Target("(8) R50 VIS frame, ONNX Runtime int8 / fp32 R50-FPN floor (random weights)",
                          sec["r50"]["ratios"]["onnx_int8_frame/floor"], 0.65, "x"))
        for key, entry in sec.items():
            if isinstance(entry, dict) and entry.get("target_fps"):
                for case, backend in (("onnx_frame_fps", "ONNX Runtime fp32"), ("onnx_int8_frame_fps", "int8")):
                    out.append(Target(f"(9) MobileNetV3 config whole loop at {key}, {backend}", entry[case],
                                      entry["target_fps"], "frames/s", higher_is_better=True))
    if "training" in sections and "ratios" in sections["training"]:  # only when mmdetection was timed
        t = sections["training"]
        out.append(Target(f"(10) training step {t['backbone']} {t['queries']}q batch {len(t['images'])} / mmdetection's",
                          t["ratios"]["training_step/mmdet_training_step"], 0.60, "x"))
    return out


def format_report(report: Mapping[str, Any]) -> str:
    """Human-readable tables of a ``run_benchmark`` report."""
    m = report["machine"]
    lines = [f"date {report['date']}  cpu {m['cpu']} ({m['usable_cores']} usable cores, {m['cpu_capability']})",
             f"torch {m['torch']}  torchvision {m['torchvision']}  onnxruntime {m['onnxruntime']}  "
             f"threads {m['torch_threads']}  env {m['env']}",
             f"load average start {_fmt_load(report['load_average_start'])}  "
             f"end {_fmt_load(report.get('load_average_end', []))}"]
    for name, sec in report["sections"].items():
        lines.append(f"\n[{name}]  " + "  ".join(f"{k}={v}" for k, v in sec.items() if isinstance(v, (int, str, list))
                                                  and k != "load_1min" and not k.startswith("profile_")))
        for case, st in _case_rows(sec):
            lines.append(f"  {case:<34} median {st['median_ms']:10.2f} ms   p25-p75 {st['p25_ms']:9.2f}-"
                         f"{st['p75_ms']:9.2f}   min {st['min_ms']:9.2f}   n={st['n']}")
        for key, value in _number_rows(sec):
            lines.append(f"  {key:<44} {value:8.3f}")
        if sec.get("load_1min"):
            lines.append(f"  load (1 min) per round: {min(sec['load_1min']):.2f}-{max(sec['load_1min']):.2f}")
        for key in (k for k in sec if k.startswith("profile_")):
            for op in sec[key][:8]:
                lines.append(f"  {key[8:]} top op {op['name']:<32} {op['self_ms']:9.2f} ms/call {100 * op['share']:5.1f}%")
    lines.append("\ntargets")
    for t in report["targets"]:
        side = ">=" if t["higher_is_better"] else "<="
        lines.append(f"  {'MET ' if t['met'] else 'MISS'} {t['name']:<66} {t['value']:9.3f} {t['unit']} "
                     f"(target {side} {t['limit']})")
    return "\n".join(lines)


def _fmt_load(load: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def _case_rows(sec: Mapping[str, Any], prefix: str = "") -> list[tuple[str, dict]]:
    rows = []
    for key, value in sec.items():
        if key == "cases":
            rows += [(prefix + c, st) for c, st in value.items()]
        elif isinstance(value, dict) and "median_ms" in value:
            rows.append((prefix + key, value))
        elif isinstance(value, dict) and key not in ("ratios", "detections"):
            rows += _case_rows(value, prefix=f"{prefix}{key} ")
    return rows


def _number_rows(sec: Mapping[str, Any], prefix: str = "") -> list[tuple[str, float]]:
    rows = []
    for key, value in sec.items():
        if key == "ratios":
            rows += [(f"{prefix}ratio {k}", v) for k, v in value.items()]
        elif key.endswith(("_fps", "_ms")) and isinstance(value, float):
            rows.append((f"{prefix}{key}", value))
        elif isinstance(value, dict) and key not in ("cases",) and "median_ms" not in value:
            rows += _number_rows(value, prefix=f"{prefix}{key} ")
    return rows
