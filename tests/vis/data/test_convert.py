"""Tests of vis/data/convert.py and tools/convert_to_ytvis.py: round trips YouTube-VIS -> COCO / PNG -> back."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from queryinst.vis.data.convert import (
    coco_frame_folder_to_ytvis,
    coco_video_to_ytvis,
    load_coco_annotations,
    png_masks_to_ytvis,
    write_coco_frame_folder,
    ytvis_to_coco_frames,
    ytvis_to_png_masks,
)
from queryinst.vis.data.synthetic import make_ytvis_dataset
from queryinst.vis.data.ytvis import YTVISDataset
from support.repo import load_tool


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory):
    files = make_ytvis_dataset(tmp_path_factory.mktemp("conv") / "ds", num_videos=3, length=4, height=48, width=64,
                               seed=3)
    return files, json.loads(files.json_path.read_text())


def _decoded(seg: dict | None) -> np.ndarray | None:
    return None if seg is None else mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()})


def _assert_same_dataset(back: dict, original: dict, compare_boxes: bool = True) -> None:
    assert back["videos"] == original["videos"]  # ids, sizes, lengths, file names as given
    assert back["categories"] == original["categories"]
    assert [a["id"] for a in back["annotations"]] == [a["id"] for a in original["annotations"]]
    for got, want in zip(back["annotations"], original["annotations"]):
        assert (got["video_id"], got["category_id"], got["iscrowd"]) == (want["video_id"], want["category_id"],
                                                                         want["iscrowd"])
        for seg_got, seg_want in zip(got["segmentations"], want["segmentations"], strict=True):
            assert (seg_got is None) == (seg_want is None)
            if seg_got is not None:
                assert isinstance(seg_got["counts"], str)
                assert np.array_equal(_decoded(seg_got), _decoded(seg_want))
        if compare_boxes:
            assert got["bboxes"] == want["bboxes"] and got["areas"] == want["areas"]


def test_round_trip_through_one_coco_json(split, tmp_path):
    files, original = split
    coco = ytvis_to_coco_frames(original)
    assert {"video_id", "frame_id"} <= set(coco["images"][0]) and "instance_id" in coco["annotations"][0]
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    back = load_coco_annotations(path)
    _assert_same_dataset(back, original)
    out = tmp_path / "back.json"
    out.write_text(json.dumps(back))
    dataset = YTVISDataset(out, files.frames_root)  # the project's reader accepts the output
    assert len(dataset.videos) == 3 and dataset.has_annotations


def test_round_trip_through_per_frame_coco_files(split, tmp_path):
    _, original = split
    root = write_coco_frame_folder(ytvis_to_coco_frames(original), tmp_path / "frames")
    assert len(list(root.iterdir())) == 3 and len(list(root.rglob("*.json"))) == 12
    _assert_same_dataset(coco_frame_folder_to_ytvis(root), original)


def test_round_trip_through_mask_pngs(split, tmp_path):
    _, original = split
    meta = ytvis_to_png_masks(original, tmp_path / "png")
    png = next((tmp_path / "png").rglob("*.png"))
    with Image.open(png) as image:
        assert image.mode == "L"
    _assert_same_dataset(png_masks_to_ytvis(tmp_path / "png", meta), original)


def test_polygons_and_uncompressed_rle_become_compressed_rle():
    square = [[2.0, 2.0, 12.0, 2.0, 12.0, 8.0, 2.0, 8.0]]
    coco = {"images": [{"id": 1, "file_name": "v/0.jpg", "height": 10, "width": 16, "video_id": 4, "frame_id": 0},
                       {"id": 2, "file_name": "v/1.jpg", "height": 10, "width": 16, "video_id": 4, "frame_id": 1}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "instance_id": 9, "segmentation": square},
                            {"id": 2, "image_id": 2, "category_id": 2, "instance_id": 9,
                             "segmentation": {"size": [10, 16], "counts": [20, 5, 135]}}],
            "categories": [{"id": 2, "name": "box"}]}
    out = coco_video_to_ytvis(coco)
    (ann,) = out["annotations"]
    assert out["videos"] == [{"id": 4, "width": 16, "height": 10, "length": 2, "file_names": ["v/0.jpg", "v/1.jpg"]}]
    assert all(isinstance(s["counts"], str) for s in ann["segmentations"])
    assert _decoded(ann["segmentations"][1]).sum() == 5 and ann["areas"][1] == 5
    assert ann["bboxes"][1] == [2.0, 0.0, 1.0, 5.0]  # from the mask: 20 zeros = columns 0-1, then rows 0-4


def _one_frame_coco(**ann_changes) -> dict:
    ann = {"id": 1, "image_id": 1, "category_id": 1, "instance_id": 1,
           "segmentation": [[0.0, 0.0, 4.0, 0.0, 4.0, 4.0]], **ann_changes}
    return {"images": [{"id": 1, "file_name": "v/0.jpg", "height": 8, "width": 8, "video_id": 1, "frame_id": 0}],
            "annotations": [ann], "categories": [{"id": 1, "name": "a"}]}


def test_coco_errors_name_the_problem():
    data = _one_frame_coco()
    del data["annotations"][0]["instance_id"]
    with pytest.raises(ValueError, match="annotation 1 has no 'instance_id'"):
        coco_video_to_ytvis(data, "in.json")
    with pytest.raises(ValueError, match="unknown category id 5"):
        coco_video_to_ytvis(_one_frame_coco(category_id=5), "in.json")
    data = _one_frame_coco()
    data["images"].append({**data["images"][0], "id": 2, "frame_id": 1})
    data["annotations"].append({**data["annotations"][0], "id": 2, "image_id": 2, "category_id": 2})
    data["categories"].append({"id": 2, "name": "b"})
    with pytest.raises(ValueError, match="track 1: several categories"):
        coco_video_to_ytvis(data, "in.json")
    data = _one_frame_coco()
    data["annotations"].append({**data["annotations"][0], "id": 2})
    with pytest.raises(ValueError, match="appears twice in one frame"):
        coco_video_to_ytvis(data, "in.json")


def test_exports_reject_a_malformed_ytvis_dict(split):
    _, original = split
    with pytest.raises(ValueError, match="video 1 has no 'width'"):
        ytvis_to_coco_frames({"videos": [{"id": 1, "height": 4, "file_names": ["a/0.jpg"]}],
                              "categories": original["categories"]})
    short = {**original, "annotations": [{**original["annotations"][0], "segmentations": [None]}]}
    with pytest.raises(ValueError, match="has 1 segmentations for a video of 4 frames"):
        ytvis_to_coco_frames(short, "x.json")


def test_png_errors_name_the_file(tmp_path):
    (tmp_path / "m" / "vid").mkdir(parents=True)
    Image.fromarray(np.array([[0, 1], [2, 2]], dtype=np.uint8)).save(tmp_path / "m" / "vid" / "00000.png")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"videos": {"vid": {"objects": {"1": {"category": "cat"}}}}}))
    with pytest.raises(ValueError, match="00000.png: instance id 2 has no category"):
        png_masks_to_ytvis(tmp_path / "m", meta)
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "m" / "vid" / "00000.png")
    with pytest.raises(ValueError, match="00000.png: PNG mode RGB holds colours"):
        png_masks_to_ytvis(tmp_path / "m", meta)
    meta.write_text(json.dumps({"categories": [{"id": 1, "name": "cat"}], "videos": {"other": {"objects": {}}}}))
    with pytest.raises(ValueError, match="video 'other' has no mask folder"):
        png_masks_to_ytvis(tmp_path / "m", meta)


def _tool():
    return load_tool("convert_to_ytvis")


def test_tool_converts_and_fails_with_one_line(split, tmp_path, capsys):
    _, original = split
    tool = _tool()
    meta = ytvis_to_png_masks(original, tmp_path / "png")
    out = tmp_path / "out" / "train.json"
    assert tool.main(["png", "--masks", str(tmp_path / "png"), "--meta", str(meta), "--output", str(out)]) == 0
    _assert_same_dataset(json.loads(out.read_text()), original)
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps(ytvis_to_coco_frames(original)))
    out2 = tmp_path / "coco_out.json"
    assert tool.main(["coco", "--input", str(coco), "--output", str(out2)]) == 0
    assert json.loads(out2.read_text()) == json.loads(out.read_text())
    capsys.readouterr()
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    bad_out = tmp_path / "bad.json"
    assert tool.main(["coco", "--input", str(broken), "--output", str(bad_out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "broken.json" in err[0]
    assert not bad_out.exists()
