"""Broken YouTube-VIS annotations are refused where they are read (the evaluator's GT, the training
reader, the ytvis_to_coco export): one line naming the file, the annotation id and the frame; exit 2;
nothing written. Before, a garbage RLE string was decoded by pycocotools into millions of pixels."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from queryinst.image.rle import rle_problem
from queryinst.vis.data.ytvis import YTVISDataset
from queryinst.vis.eval.ytvis_eval import evaluate_ytvis

REPO = Path(__file__).resolve().parents[3]
H, W = 48, 64


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [H, W], "counts": rle["counts"].decode("ascii")}


def _split() -> dict:
    mask = np.zeros((H, W), dtype=bool)
    mask[10:30, 12:40] = True
    return {
        "videos": [{"id": 1, "width": W, "height": H, "length": 2, "file_names": ["v1/00000.jpg", "v1/00005.jpg"]}],
        "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}],
        "annotations": [{"id": 7, "video_id": 1, "category_id": 1, "iscrowd": 0,
                         "segmentations": [_rle(mask), _rle(np.roll(mask, 3, axis=1))],
                         "bboxes": [[12, 10, 28, 20], [15, 10, 28, 20]], "areas": [560, 560]}],
    }


def _broken(kind: str) -> dict:
    data = _split()
    ann = data["annotations"][0]
    if kind == "garbage_rle":
        ann["segmentations"][1]["counts"] = "not-an-rle!!"
    elif kind == "short_rle":
        ann["segmentations"][1] = _rle(np.ones((H, W), dtype=bool)) | {"counts": "0"}
    elif kind == "unknown_category":
        ann["category_id"] = 9
    elif kind == "duplicate_id":
        data["annotations"].append(json.loads(json.dumps(ann)))
    elif kind == "length_mismatch":
        data["videos"][0]["length"] = 3
    return data


def test_rle_problem_accepts_pycocotools_output_and_names_garbage():
    rng = np.random.default_rng(0)
    for _ in range(50):
        mask = rng.random((H, W)) < rng.random()
        assert rle_problem(_rle(mask)["counts"], H, W) is None
    assert "not a compressed RLE string" in rle_problem("not-an-rle!!", H, W)
    assert "covers 1 pixels" in rle_problem(_rle(np.ones((1, 1), dtype=bool))["counts"], H, W)


def test_evaluator_refuses_a_garbage_gt_rle_naming_annotation_and_frame():
    with pytest.raises(ValueError, match=r"annotation 7 \(video 1\), frame 1: RLE 'counts' 'not-an-rle!!' is not"):
        evaluate_ytvis(_broken("garbage_rle"), [])
    with pytest.raises(ValueError, match=r"annotation 7 \(video 1\), frame 1: RLE 'counts' covers"):
        evaluate_ytvis(_broken("short_rle"), [])


def test_training_reader_refuses_a_garbage_rle(tmp_path: Path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(_broken("garbage_rle")))
    with pytest.raises(ValueError, match=r"train.json: annotations\[0\] \(id 7\) frame 1: RLE 'counts'"):
        YTVISDataset(path, tmp_path)


def _tool(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / name), *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("kind, expected", [
    ("garbage_rle", "annotation 7 frame 1: RLE 'counts' 'not-an-rle!!' is not a compressed RLE string"),
    ("unknown_category", "annotation 7 has category_id 9, which is not in 'categories'"),
    ("duplicate_id", "duplicate annotation id 7"),
    ("length_mismatch", "video 1 has length 3 but 2 file_names"),
])
def test_ytvis_to_coco_refuses_with_one_line_naming_the_file(tmp_path: Path, kind: str, expected: str):
    src, out = tmp_path / "split.json", tmp_path / "frames_coco.json"
    src.write_text(json.dumps(_broken(kind)))
    proc = _tool("ytvis_to_coco.py", "--json", str(src), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: {src}: {expected}"]
    assert not out.exists()


def test_ytvis_to_coco_still_converts_the_valid_split(tmp_path: Path):
    src, out = tmp_path / "split.json", tmp_path / "frames_coco.json"
    src.write_text(json.dumps(_split()))
    proc = _tool("ytvis_to_coco.py", "--json", str(src), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(out.read_text())["annotations"]) == 2


def test_eval_ytvis_refuses_a_garbage_gt_rle(tmp_path: Path):
    gt, results = tmp_path / "gt.json", tmp_path / "results.json"
    gt.write_text(json.dumps(_broken("garbage_rle")))
    results.write_text("[]")
    proc = _tool("eval_ytvis.py", "--gt", str(gt), "--results", str(results))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "annotation 7 (video 1), frame 1: RLE 'counts' 'not-an-rle!!'" in lines[0], lines
    assert "Traceback" not in proc.stderr


def test_every_missing_or_wrong_size_frame_is_reported_at_once(tmp_path: Path):
    import cv2

    split = _split()
    split["videos"][0].update(length=4, file_names=[f"v1/{i:05d}.jpg" for i in range(4)])
    split["annotations"][0]["segmentations"] *= 2
    split["annotations"][0]["bboxes"] *= 2
    split["annotations"][0]["areas"] *= 2
    (tmp_path / "JPEGImages" / "v1").mkdir(parents=True)
    for i, (h, w) in enumerate([(H, W), (H, W + 2)]):  # frame 1 has another size; frames 2, 3 missing
        cv2.imwrite(str(tmp_path / "JPEGImages" / "v1" / f"{i:05d}.jpg"), np.zeros((h, w, 3), np.uint8))
    path = tmp_path / "train.json"
    path.write_text(json.dumps(split))
    data = YTVISDataset(path, tmp_path / "JPEGImages")
    with pytest.raises(ValueError) as info:
        data.check_frames()
    message = str(info.value)
    assert message.startswith(f"{path}: 3 listed images are missing or unusable: ")
    assert f"00001.jpg (is {H}x{W + 2}, the JSON says {H}x{W})" in message
    assert "00002.jpg (missing)" in message and "00003.jpg (missing)" in message and "\n" not in message


def test_training_reader_refuses_duplicate_annotation_ids(tmp_path: Path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(_broken("duplicate_id")))
    with pytest.raises(ValueError, match=r"train.json: annotations\[1\] \(id 7\): duplicate annotation id 7"):
        YTVISDataset(path, tmp_path)


def test_evaluator_names_the_annotations_it_ignores(caplog):
    split = _split()
    split["annotations"].append({**split["annotations"][0], "id": 8, "category_id": 42})  # no such category
    with caplog.at_level("WARNING", logger="queryinst.vis.eval.ytvis_eval"):
        evaluate_ytvis(split, [])
    assert any("1 ground-truth annotations are outside the split's videos/categories: ignored (ids 8)"
               in r.getMessage() for r in caplog.records), caplog.text
