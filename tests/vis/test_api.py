"""The Python API (vis/api.py, exported lazily from ``queryinst``): typed per-frame results from any source."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # loads the demo model and tracks the sample clip

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "assets" / "sample.mp4"


@pytest.fixture(scope="module")
def tracker():
    import torch

    from queryinst import VideoTracker

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield VideoTracker.from_pretrained("demo", device="cpu")
    torch.set_num_threads(threads)


def test_import_queryinst_stays_light():
    code = "import sys, queryinst; assert 'torch' not in sys.modules; print(sorted(queryinst.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "VideoTracker" in out.stdout


def test_track_a_video_file_gives_typed_frames(tracker):
    frames = list(tracker.track(str(SAMPLE), end=0.5))  # the first half second (12 fps clip)
    assert len(frames) >= 6 and [f.frame_index for f in frames] == list(range(len(frames)))
    first = frames[0]
    assert len(first) == len(first.track_ids) == len(first.class_names) == first.masks.shape[0] > 0
    assert first.masks.shape[1:] == (first.height, first.width) == first.image.shape[:2]
    assert set(first.class_names) <= {"circle", "square", "triangle", "star", "ellipse", "hexagon"}
    entry = first.to_json()
    json.dumps(entry)
    assert [t["track_id"] for t in entry["tracks"]] == first.track_ids.tolist()
    drawn = first.plot()
    assert drawn.shape == first.image.shape and drawn.dtype == np.uint8 and not np.array_equal(drawn, first.image)


def test_iterable_of_arrays_and_the_video_summary(tracker):
    images = [f.image for f in tracker.track(str(SAMPLE), end=0.3)]
    result = tracker.track_video(images)
    assert len(result["frames"]) == len(images) and result["frames"][0].image is None
    for track in result["tracks"]:
        assert len(track["segmentations"]) == len(images) and track["class_name"]
    again = [f.track_ids.tolist() for f in tracker.track(images)]
    assert again == [f.track_ids.tolist() for f in result["frames"]]  # a fresh tracker each call


def test_bad_sources_are_named(tracker, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4: no such video"):
        next(tracker.track(str(tmp_path / "nope.mp4")))
    with pytest.raises(ValueError, match="frame 1: expected an RGB uint8 array"):
        list(tracker.track([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)]))
    with pytest.raises(TypeError, match="cannot track a float"):
        next(tracker.track(1.5))


def test_openmp_threads_wait_passively_unless_the_user_says_otherwise():
    # spinning OpenMP threads made a 2-thread run 10x slower when another process used the cores
    code = "import os, queryinst.tracking; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.stdout.strip() == "PASSIVE", out.stderr
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**env, "OMP_WAIT_POLICY": "ACTIVE"})
    assert out.stdout.strip() == "ACTIVE", out.stderr
