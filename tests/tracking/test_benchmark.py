"""Micro-benchmark of OnlineTracker.update (``bench_tracker``) and an untimed smoke test of it.

Run ``python tests/tracking/test_benchmark.py`` for the numbers; the test only checks that the
benchmark runs and keeps the intended number of live tracks (no timing assertions anywhere).
Budget (DESIGN §3, > 30 FPS end to end): about 1 ms per frame for 10 detections x 100 live tracks.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from queryinst.tracking import Detections, OnlineTracker, TrackerConfig

logger = logging.getLogger(__name__)


def bench_tracker(num_frames: int = 300, num_dets: int = 10, num_tracks: int = 100, dim: int = 1024,
                  mode: str = "hungarian", seed: int = 0) -> dict[str, float]:
    """Time ``update`` with ``num_dets`` detections per frame against ``num_tracks`` live tracks.

    Frame 0 opens ``num_tracks`` tracks (one per object); frame t then shows objects
    ``(t * num_dets + k) % num_tracks`` for k < num_dets, with jittered boxes and embeddings, so every
    object reappears every ``num_tracks / num_dets`` frames and stays alive (max_unseen is raised if
    needed). Embeddings are 1024-d as MaskTrack R-CNN's track head (FC 1024).
    Returns ms per frame (mean, median, p95 over frames 1..num_frames) and the final live-track count.
    """
    rng = np.random.default_rng(seed)
    period = -(-num_tracks // num_dets)
    cfg = TrackerConfig(mode=mode, max_unseen=max(20, period + 1))
    tracker = OnlineTracker(cfg)
    centers = rng.uniform(0, 1000, size=(num_tracks, 2))
    codes = rng.normal(size=(num_tracks, dim)) / np.sqrt(dim) * 6.0
    labels = rng.integers(0, 40, size=num_tracks)  # 40 YouTube-VIS classes

    def make(objs: np.ndarray) -> Detections:
        c = centers[objs] + rng.normal(scale=2.0, size=(len(objs), 2))
        return Detections(
            boxes=np.concatenate([c - 20, c + 20], axis=1),
            scores=rng.uniform(0.3, 1.0, size=len(objs)),
            labels=labels[objs],
            embeddings=codes[objs] + rng.normal(scale=0.01, size=(len(objs), dim)),
        )

    tracker.update(make(np.arange(num_tracks)))
    frames = [make((t * num_dets + np.arange(num_dets)) % num_tracks) for t in range(num_frames)]
    times = np.empty(num_frames)
    for t, dets in enumerate(frames):
        start = time.perf_counter()
        tracker.update(dets)
        times[t] = time.perf_counter() - start
    ms = times * 1e3
    return {
        "mean_ms": float(ms.mean()),
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "live_tracks": float(tracker.num_tracks),
    }


def test_bench_tracker_runs_untimed() -> None:
    for mode in ("hungarian", "masktrack"):
        result = bench_tracker(num_frames=12, dim=64, mode=mode)
        assert set(result) == {"mean_ms", "median_ms", "p95_ms", "live_tracks"}
        assert result["live_tracks"] == 100  # every object re-identified: no spurious tracks


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for mode in ("hungarian", "masktrack"):
        r = bench_tracker(mode=mode)
        logger.info("%-9s 10 dets x 100 tracks, D=1024: mean %.3f ms, median %.3f ms, p95 %.3f ms, "
                    "%d live tracks", mode, r["mean_ms"], r["median_ms"], r["p95_ms"], r["live_tracks"])
