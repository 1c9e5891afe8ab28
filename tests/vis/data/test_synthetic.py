"""Tests of vis/data/synthetic.py: YouTube-VIS schema, consistency, motion, splits, the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from queryinst.vis.data.synthetic import VideoSceneOptions, make_ytvis_dataset, make_ytvis_splits
from queryinst.vis.data.ytvis import YTVISDataset
from support.repo import REPO_ROOT

MOVING = VideoSceneOptions(speed=0.3, enter_leave_prob=1.0)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _centroid_shifts(json_path: Path, gap: int) -> list[float]:
    """Centroid displacement between listed frames 0 and ``gap``, in object sides (sqrt area)."""
    shifts = []
    for ann in json.loads(json_path.read_text())["annotations"]:
        first, later = ann["segmentations"][0], ann["segmentations"][gap]
        if first is not None and later is not None:
            c0, c1 = (np.argwhere(mask_utils.decode(s)).mean(axis=0) for s in (first, later))
            shifts.append(float(np.linalg.norm(c1 - c0) / np.sqrt(ann["areas"][0])))
    return shifts


@pytest.fixture(scope="module")
def moving(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ytvis_dataset(tmp_path_factory.mktemp("yt") / "ds", 6, length=8, height=64, width=96,
                              seed=2, options=MOVING).json_path


def test_schema_and_annotations_consistent_with_frames(moving: Path) -> None:
    data = json.loads(moving.read_text())
    frames_root = moving.parent / "JPEGImages"
    assert {c["id"] for c in data["categories"]} == set(range(1, 7))
    videos = {v["id"]: v for v in data["videos"]}
    assert sorted(videos) == list(range(1, 7))
    for video in videos.values():
        assert set(video) >= {"id", "width", "height", "length", "file_names"}
        assert len(video["file_names"]) == video["length"] == 8
        image = cv2.imread(str(frames_root / video["file_names"][0]))
        assert image.shape == (video["height"], video["width"], 3) == (64, 96, 3)
    assert [a["id"] for a in data["annotations"]] == list(range(1, len(data["annotations"]) + 1))
    for ann in data["annotations"]:
        assert set(ann) >= {"id", "video_id", "category_id", "iscrowd", "segmentations", "bboxes", "areas"}
        video = videos[ann["video_id"]]
        assert len(ann["segmentations"]) == len(ann["bboxes"]) == len(ann["areas"]) == video["length"]
        assert any(s is not None for s in ann["segmentations"])
        for seg, box, area in zip(ann["segmentations"], ann["bboxes"], ann["areas"]):
            assert (seg is None) == (box is None) == (area is None)
            if seg is None:
                continue
            assert isinstance(seg["counts"], str) and seg["size"] == [64, 96]
            mask = mask_utils.decode(seg)
            assert mask.sum() == area and list(mask_utils.toBbox(seg)) == box


def test_masks_of_one_frame_never_overlap(moving: Path) -> None:
    data = json.loads(moving.read_text())
    for video in data["videos"]:
        anns = [a for a in data["annotations"] if a["video_id"] == video["id"]]
        for t in range(video["length"]):
            masks = [mask_utils.decode(a["segmentations"][t]) for a in anns if a["segmentations"][t] is not None]
            if masks:
                assert int(np.sum(masks, axis=0).max()) <= 1


def test_entering_and_leaving_objects_have_null_frames(moving: Path) -> None:
    tracks = [[s is not None for s in a["segmentations"]] for a in json.loads(moving.read_text())["annotations"]]
    entered = [t for t in tracks if not t[0] and t[-1]]
    left = [t for t in tracks if t[0] and not t[-1]]
    assert entered and left


def test_same_seed_identical_bytes_other_seed_differs(tmp_path: Path) -> None:
    args = dict(num_videos=2, length=3, height=32, width=48)
    a = make_ytvis_dataset(tmp_path / "a", seed=4, **args)
    b = make_ytvis_dataset(tmp_path / "b", seed=4, **args)
    c = make_ytvis_dataset(tmp_path / "c", seed=5, **args)
    assert _files(a.json_path.parent) == _files(b.json_path.parent)
    assert a.json_path.read_bytes() != c.json_path.read_bytes()


def test_annotate_every_names_frames_by_raw_index(tmp_path: Path) -> None:
    files = make_ytvis_dataset(tmp_path / "d", 2, length=4, height=32, width=48, annotate_every=5)
    data = json.loads(files.json_path.read_text())
    for video in data["videos"]:
        name = video["file_names"][0].split("/")[0]
        assert video["file_names"] == [f"{name}/{t:05d}.jpg" for t in (0, 5, 10, 15)]
        assert all((files.frames_root / f).is_file() for f in video["file_names"])
    assert len({v["file_names"][0].split("/")[0] for v in data["videos"]}) == 2


def test_speed_moves_objects_about_their_size_over_five_frames(tmp_path: Path) -> None:
    still = VideoSceneOptions(speed=0.0, enter_leave_prob=0.0)
    fast = VideoSceneOptions(speed=0.2, enter_leave_prob=0.0)
    still_json = make_ytvis_dataset(tmp_path / "still", 6, length=6, seed=0, options=still).json_path
    fast_json = make_ytvis_dataset(tmp_path / "fast", 6, length=6, seed=0, options=fast).json_path
    assert np.median(_centroid_shifts(still_json, 5)) < 0.05
    assert np.median(_centroid_shifts(fast_json, 5)) > 0.6


def test_splits_hold_out_valid_annotations(tmp_path: Path) -> None:
    splits = make_ytvis_splits(tmp_path / "s", 2, 2, length=3, height=32, width=48, seed=1)
    train = json.loads(splits["train"].json_path.read_text())
    valid = json.loads(splits["valid"].json_path.read_text())
    valid_gt = json.loads(splits["valid"].gt_json_path.read_text())
    assert "annotations" in train and "annotations" not in valid and valid_gt["annotations"]
    assert valid_gt["videos"] == valid["videos"] and valid_gt["categories"] == valid["categories"]
    assert splits["valid"].json_path.name == "valid.json" and splits["valid"].gt_json_path.name == "valid_gt.json"
    assert train["videos"][0]["file_names"] != valid["videos"][0]["file_names"]
    reader = YTVISDataset(splits["valid"].json_path, splits["valid"].frames_root)
    assert not reader.has_annotations and len(reader) == 2


def test_invalid_arguments_raise_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="annotate_every"):
        make_ytvis_dataset(tmp_path / "x", 1, annotate_every=0)
    with pytest.raises(ValueError, match="speed"):
        VideoSceneOptions(speed=-1.0)


@pytest.mark.slow
def test_cli_ytvis_with_valid(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "make_synthetic.py"), "ytvis", "--out", str(out),
                             "--num-videos", "2", "--valid", "1", "--length", "3", "--annotate-every", "5",
                             "--height", "32", "--width", "48"],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert str(out / "valid" / "valid_gt.json") in result.stdout
    valid = json.loads((out / "valid" / "valid.json").read_text())
    assert valid["videos"][0]["file_names"][1].endswith("/00005.jpg")
    assert len(json.loads((out / "train" / "annotations.json").read_text())["videos"]) == 2


def test_reader_round_trip_matches_json_areas_and_boxes(moving: Path) -> None:
    data = json.loads(moving.read_text())
    by_id = {a["id"]: a for a in data["annotations"]}
    reader = YTVISDataset(moving, moving.parent / "JPEGImages")
    seen = 0
    for v, video in enumerate(reader.videos):
        for t in range(video.length):
            path, targets = reader.frame_targets(v, t)
            assert path.is_file()
            expected = {a["id"] for a in by_id.values() if a["video_id"] == video.id and a["segmentations"][t]}
            assert set(targets.instance_ids.tolist()) == expected
            for mask, box, ann_id in zip(targets.masks, targets.boxes, targets.instance_ids.tolist()):
                x, y, w, h = by_id[ann_id]["bboxes"][t]
                assert mask.sum() == by_id[ann_id]["areas"][t] and box.tolist() == [x, y, x + w, y + h]
                seen += 1
    assert seen > 0
