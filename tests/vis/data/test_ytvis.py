"""Tests of vis/data/ytvis.py on hand-built tiny JSONs: every encoding, crowd, labels, each error."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from queryinst.vis.data.ytvis import YTVISDataset, load_frame

H, W = 6, 8
FILE_NAMES = ["clip/00000.jpg", "clip/00005.jpg", "clip/00010.jpg"]


def _box_mask(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _compressed(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [H, W], "counts": rle["counts"].decode("ascii")}


# Expected masks, frame by frame.
CAT7_F0 = _box_mask(1, 3, 2, 5)  # compressed RLE
CAT7_F1 = _box_mask(1, 4, 1, 2)  # uncompressed RLE: column-major, 7 zeros, 3 ones, 38 zeros
CAT7_F2 = _box_mask(1, 4, 2, 6)  # polygon with corners (2, 1)-(6, 4)
CAT3_F1 = _box_mask(0, 2, 0, 2)  # polygon
CROWD_F0 = _box_mask(4, 6, 5, 8)


def _dataset() -> dict[str, Any]:
    return {
        "videos": [{"id": 1, "width": W, "height": H, "length": 3, "file_names": list(FILE_NAMES)}],
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
        "annotations": [
            {"id": 10, "video_id": 1, "category_id": 7, "iscrowd": 0,
             "segmentations": [_compressed(CAT7_F0), {"size": [H, W], "counts": [7, 3, 38]},
                               [[2, 1, 6, 1, 6, 4, 2, 4]]],
             "bboxes": [[2, 1, 3, 2], [1, 1, 1, 3], [2, 1, 4, 3]], "areas": [6, 3, 12]},
            {"id": 11, "video_id": 1, "category_id": 3, "iscrowd": 0,
             "segmentations": [None, [[0, 0, 2, 0, 2, 2, 0, 2]], None],
             "bboxes": [None, [0, 0, 2, 2], None], "areas": [None, 4, None]},
            {"id": 12, "video_id": 1, "category_id": 3, "iscrowd": 1,
             "segmentations": [_compressed(CROWD_F0), None, None]},
        ],
    }


@pytest.fixture()
def frames_root(tmp_path: Path) -> Path:
    root = tmp_path / "JPEGImages"
    (root / "clip").mkdir(parents=True)
    for name in FILE_NAMES:
        image = np.zeros((H, W, 3), dtype=np.uint8)
        image[..., 2] = 255  # red in OpenCV's BGR order
        cv2.imwrite(str(root / name), image)
    return root


def _write(tmp_path: Path, data: Any, name: str = "train.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_labels_are_contiguous_in_category_id_order(tmp_path: Path, frames_root: Path) -> None:
    ds = YTVISDataset(_write(tmp_path, _dataset()), frames_root)
    assert ds.cat_ids == [3, 7] and ds.class_names == ["cat", "dog"] and ds.num_classes == 2
    assert len(ds) == 1 and ds.has_annotations and ds.video_index(1) == 0
    assert [a.label for a in ds.annotations(0)] == [1, 0, 0]
    assert ds.videos[0].frame_paths == tuple(frames_root / n for n in FILE_NAMES)


@pytest.mark.parametrize("frame, expected", [
    (0, {10: CAT7_F0}),  # compressed RLE; annotation 11 is null here; the crowd region is ignored
    (1, {10: CAT7_F1, 11: CAT3_F1}),  # uncompressed RLE and polygon
    (2, {10: CAT7_F2}),  # polygon
])
def test_frame_targets_decode_every_encoding(tmp_path: Path, frames_root: Path, frame: int,
                                              expected: dict[int, np.ndarray]) -> None:
    ds = YTVISDataset(_write(tmp_path, _dataset()), frames_root)
    path, targets = ds.frame_targets(0, frame)
    assert path == frames_root / FILE_NAMES[frame]
    assert targets.instance_ids.tolist() == list(expected)
    assert targets.labels.tolist() == [{10: 1, 11: 0}[i] for i in expected]
    for mask, box, ann_id in zip(targets.masks, targets.boxes, expected):
        assert np.array_equal(mask, expected[ann_id])
        ys, xs = np.nonzero(expected[ann_id])
        assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert targets.masks.shape == (len(expected), H, W) and targets.masks.dtype == bool


def test_crowd_region_is_an_ignore_region_not_a_target(tmp_path: Path, frames_root: Path) -> None:
    ds = YTVISDataset(_write(tmp_path, _dataset()), frames_root)
    _, targets = ds.frame_targets(0, 0)
    assert 12 not in targets.instance_ids.tolist()
    assert targets.ignore_boxes.tolist() == [[5, 4, 8, 6]] and np.array_equal(targets.ignore_masks[0], CROWD_F0)
    _, later = ds.frame_targets(0, 1)
    assert later.ignore_boxes.shape == (0, 4) and later.ignore_masks.shape == (0, H, W)


def test_to_targets_gives_torch_tensors(tmp_path: Path, frames_root: Path) -> None:
    _, frame = YTVISDataset(_write(tmp_path, _dataset()), frames_root).frame_targets(0, 1)
    targets = frame.to_targets(image_id=42)
    assert targets.boxes.dtype == torch.float32 and targets.labels.dtype == torch.int64
    assert targets.masks.shape == (2, H, W) and targets.orig_size == (H, W) and targets.image_id == 42
    assert targets.instance_ids.tolist() == [10, 11]


def test_valid_json_without_annotations_loads(tmp_path: Path, frames_root: Path) -> None:
    data = _dataset()
    del data["annotations"]
    ds = YTVISDataset(_write(tmp_path, data, "valid.json"), frames_root)
    assert not ds.has_annotations and ds.annotations(0) == [] and ds.class_names == ["cat", "dog"]
    with pytest.raises(ValueError, match="has no 'annotations'"):
        ds.frame_targets(0, 0)


def _set(path: list, value: Any) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


def _delete(path: list) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return edit


@pytest.mark.parametrize("edit, message", [
    (_delete(["videos"]), "missing key 'videos'"),
    (_delete(["categories"]), "missing key 'categories'"),
    (_delete(["videos", 0, "length"]), r"videos\[0\]: missing key\(s\) \['length'\]"),
    (_set(["videos", 0, "length"], 4), "3 file_names but length 4"),
    (_set(["annotations", 1, "video_id"], 99), r"annotations\[1\] \(id 11\): unknown video_id 99"),
    (_set(["annotations", 0, "category_id"], 5), "category_id 5 is not in 'categories'"),
    (_set(["annotations", 1, "segmentations"], [None, None]), "'segmentations' has 2 entries but video 1 has length 3"),
    (_set(["annotations", 1, "areas"], [None]), "'areas' has 1 entries"),
    (_set(["annotations", 0, "segmentations", 0, "size"], [9, 9]), r"frame 0: RLE size \[9, 9\] != video 1 size"),
    (_set(["annotations", 0, "segmentations", 1, "counts"], [7, 3, 30]), "counts sum to 40"),
    (_set(["annotations", 1, "segmentations", 1], [[0, 0, 2, 0]]), "a polygon must be a flat list"),
    (_set(["annotations", 1, "segmentations", 1], "oops"), "segmentation must be RLE, polygons or null"),
    (_delete(["annotations", 0, "video_id"]), r"missing key\(s\) \['video_id'\]"),
    (_set(["categories", 1, "id"], 7), "duplicate category id 7"),
    (lambda d: d["videos"].append(copy.deepcopy(d["videos"][0])), "duplicate video id 1"),
])
def test_validation_errors_name_the_file_and_problem(tmp_path: Path, frames_root: Path,
                                                     edit: Callable[[dict], None], message: str) -> None:
    data = _dataset()
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(ValueError, match=message) as info:
        YTVISDataset(path, frames_root)
    assert str(path) in str(info.value)


def test_malformed_json_and_missing_paths(tmp_path: Path, frames_root: Path) -> None:
    bad = _write(tmp_path, '{"videos": [', "bad.json")
    with pytest.raises(ValueError, match="not valid JSON") as info:
        YTVISDataset(bad, frames_root)
    assert str(bad) in str(info.value)
    with pytest.raises(ValueError, match="top level must be an object"):
        YTVISDataset(_write(tmp_path, "[]", "list.json"), frames_root)
    with pytest.raises(FileNotFoundError, match="JSON not found"):
        YTVISDataset(tmp_path / "absent.json", frames_root)
    with pytest.raises(FileNotFoundError, match="JPEGImages"):
        YTVISDataset(_write(tmp_path, _dataset()), tmp_path / "no_frames")


def test_load_frame_reads_rgb_and_reports_missing_or_corrupt_files(tmp_path: Path, frames_root: Path) -> None:
    image = load_frame(frames_root / FILE_NAMES[0])
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    assert image[..., 0].min() > 200 and image[..., 2].max() < 50  # red stays red: RGB order
    with pytest.raises(FileNotFoundError, match="not found"):
        load_frame(frames_root / "clip" / "99999.jpg")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match="cannot decode") as info:
        load_frame(corrupt)
    assert str(corrupt) in str(info.value)


def test_frame_index_out_of_range(tmp_path: Path, frames_root: Path) -> None:
    with pytest.raises(IndexError):
        YTVISDataset(_write(tmp_path, _dataset()), frames_root).frame_targets(0, 3)
