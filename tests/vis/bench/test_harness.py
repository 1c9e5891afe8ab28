"""Tests of the benchmark harness (vis/bench/): interleaved timing, benchmark inputs, section checks, the
tracker micro-benchmark (no timing assertions: the numbers of a shared machine mean nothing; only the
harness's structure is checked). The whole harness through tools/benchmark.py: tests/tools/test_benchmark.py."""
from __future__ import annotations

import pytest
import torch

from queryinst.vis.bench.harness import BenchmarkSettings, bench_tracker, run_benchmark, time_interleaved
from queryinst.vis.bench.models import spread_boxes


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


def test_bench_tracker_runs_untimed_and_keeps_every_track():
    # Formerly tests/vis/bench/test_harness.py (a second copy of this micro-benchmark, now removed).
    settings = BenchmarkSettings.tiny()
    result = bench_tracker(settings)
    for mode in ("hungarian", "masktrack"):
        assert {"median_ms", "live_tracks"} <= set(result[mode])
        assert result[mode]["live_tracks"] == settings.tracker_tracks  # every object re-identified


def test_unknown_section_is_an_error():
    with pytest.raises(ValueError, match="unknown benchmark sections"):
        run_benchmark(BenchmarkSettings(sections=("vis", "gpu")))


def test_contention_section_times_the_loop_alone_and_beside_a_busy_process(monkeypatch):
    from queryinst.vis.bench import harness
    from queryinst.vis.bench.report import targets

    started = []
    real_start = harness._start_contender

    def spy(seconds):
        proc = real_start(seconds)
        started.append(proc)
        return proc

    monkeypatch.setattr(harness, "_start_contender", spy)
    result = harness.bench_contention(BenchmarkSettings.tiny())
    assert result["idle"]["n"] == result["contended"]["n"] == 1 and result["ratio"] > 0
    assert len(started) == 1 and started[0].poll() is not None  # the neighbour was stopped
    (target,) = targets({"contention": result})
    assert target.limit == 2.0 and target.value == result["ratio"]


def test_timed_calls_times_functions_and_methods_in_place_and_restores_them():
    import types

    from queryinst.vis.bench.int8_case import _timed_calls

    module = types.SimpleNamespace(double=lambda x: 2 * x)

    class Box:
        def get(self, x):
            return x + 1

    original_double, original_get = module.double, Box.get
    with _timed_calls({"double": (module, "double"), "get": (Box, "get")}) as seconds:
        assert module.double(3) == 6 and Box().get(1) == 2 and Box().get(2) == 3
    assert seconds["double"] > 0 and seconds["get"] > 0
    assert module.double is original_double and Box.get is original_get
