"""VideoTracker.track_to_files (vis/api.py -> vis/outputs.py) with a tiny random-weight QueryInst-VIS: the
files written, MOT / MOTS lines against the JSON, first/last frames, and nothing left after an error."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from queryinst.image.config import merge_into
from queryinst.vis.api import VideoTracker
from queryinst.vis.config import VisConfig
from queryinst.vis.modeling.build import build_queryinst_vis
from queryinst.vis.outputs import output_stems
from support.videos import moving_square, write_video

NAMES = ["a", "b", "c"]
CAT_IDS = [3, 7, 9]  # not 1..C: MOTS must write the dataset's category ids
TINY = {"model": {"backbone": "resnet18", "num_stages": 2, "hidden_dim": 32, "fpn_channels": 32, "dynamic_dim": 8,
                  "feedforward_dim": 64, "num_heads": 4, "track_dim": 32, "num_classes": 3, "init_from": ""},
        "data": {"test_min_size": 64, "test_max_size": 96},
        "inference": {"score_threshold": 0.0},  # a random model scores low: keep every query
        "run": {"device": "cpu"}}


@pytest.fixture(scope="module")
def tracker() -> VideoTracker:
    cfg = VisConfig()
    merge_into(cfg, TINY)
    torch.manual_seed(0)
    return VideoTracker(build_queryinst_vis(cfg).eval(), cfg, NAMES, CAT_IDS)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "clip.avi", moving_square(6))


def test_every_file_written_and_the_text_files_match_the_json(tracker, clip, tmp_path):
    out = tmp_path / "out"
    done = tracker.track_to_files(clip, out, png_masks=True, mot=True, mots=True, trails=True, progress=False)
    assert done.num_frames == 6 and not done.damaged and done.errors == []
    assert sorted(p.name for p in done.paths) == ["clip.json", "clip.mp4", "clip_masks", "clip_mot.txt",
                                                  "clip_mots.txt"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in done.paths)  # no temporary left
    data = json.loads((out / "clip.json").read_text())
    boxes = [(f["frame_index"] + 1, t) for f in data["frames"] for t in f["tracks"]]
    assert boxes, "score_threshold 0 keeps every query: some tracks"

    mot = [line.split(",") for line in (out / "clip_mot.txt").read_text().splitlines()]
    assert len(mot) == len(boxes)
    for row, (number, track) in zip(mot, boxes):
        x1, y1, x2, y2 = track["box"]
        assert int(row[0]) == number and int(row[1]) == track["track_id"] and row[7:] == ["-1", "-1", "-1"]
        assert [float(v) for v in row[2:6]] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=0.011)
        assert float(row[6]) == pytest.approx(track["score"], abs=1e-4)

    mots = [line.split(" ") for line in (out / "clip_mots.txt").read_text().splitlines()]
    assert len(mots) == len(boxes)
    for row, (number, track) in zip(mots, boxes):
        category = CAT_IDS[track["class_id"]]
        assert int(row[0]) == number and int(row[2]) == category
        assert int(row[1]) == category * 1000 + track["track_id"]
        assert [int(row[3]), int(row[4])] == track["rle"]["size"] and row[5] == track["rle"]["counts"]
        mask = mask_utils.decode({"size": track["rle"]["size"], "counts": row[5].encode()})
        assert mask.shape == (data["height"], data["width"])

    for record in data["tracks"]:  # first/last frame: where the track's masks start and end
        present = [i for i, f in enumerate(data["frames"]) if record["track_id"] in
                   {t["track_id"] for t in f["tracks"]}]
        assert (record["first_frame"], record["last_frame"]) == (present[0], present[-1])
        assert record["segmentations"][present[0]] is not None
        assert all(s is None for s in record["segmentations"][:present[0]])


def test_stem_stride_and_json_only(tracker, clip, tmp_path):
    done = tracker.track_to_files(str(clip), tmp_path, stem="named", video=False, stride=2, progress=False)
    assert [p.name for p in done.paths] == ["named.json"] and done.num_frames == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["named.json"]


def test_an_error_mid_way_leaves_nothing(tracker, clip, tmp_path, monkeypatch):
    import queryinst.vis.outputs as outputs

    calls = []

    def failing_lines(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("track id 1000 does not fit the MOTS id scheme")
        return []

    monkeypatch.setattr(outputs, "mots_lines", failing_lines)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="MOTS id scheme"):
        tracker.track_to_files(clip, out, png_masks=True, mot=True, mots=True, progress=False)
    assert len(calls) == 3 and list(out.iterdir()) == []  # no final file, no temporary file or folder


def test_a_previous_result_survives_a_failed_run(tracker, clip, tmp_path, monkeypatch):
    import queryinst.vis.outputs as outputs

    tracker.track_to_files(clip, tmp_path, video=False, mot=True, progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix in (".json", ".txt")}

    def broken(*args, **kwargs):
        raise ValueError("disk full")

    monkeypatch.setattr(outputs, "mot_lines", broken)
    with pytest.raises(ValueError, match="disk full"):
        tracker.track_to_files(clip, tmp_path, video=False, mot=True, progress=False)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix in (".json", ".txt")}
    assert after == before and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_sources_and_options(tracker, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.avi"):
        tracker.track_to_files(tmp_path / "nope.avi", tmp_path / "out", progress=False)
    with pytest.raises(TypeError, match="video file, image folder or glob"):
        tracker.track_to_files([np.zeros((8, 8, 3), np.uint8)], tmp_path / "out")
    with pytest.raises(ValueError, match="--stride"):
        tracker.track_to_files(tmp_path / "x.avi", tmp_path / "out", stride=0)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="cannot write the output folder there: .* is a file"):
        tracker.track_to_files(tmp_path / "x.avi", tmp_path / "file")


def test_output_stems_refuse_clashes():
    assert output_stems(["a/clip.mp4", "b/frames/", "c/shots/*.png"]) == {
        "a/clip.mp4": "clip", "b/frames/": "frames", "c/shots/*.png": "shots"}
    with pytest.raises(ValueError, match="b/clip.avi: its outputs would overwrite those of a/clip.mp4"):
        output_stems(["a/clip.mp4", "b/clip.avi"])
