"""Tests of vis/eval/submission.py: result validation, results.zip layout, reading .json/.zip."""
from __future__ import annotations

import json
import logging
import zipfile

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from queryinst.vis.eval.submission import read_results, validate_results, video_shape, write_results_zip

VIDEOS = [{"id": 3, "height": 6, "width": 8, "length": 2}, {"id": 5, "height": 6, "width": 8,
                                                             "file_names": ["a.jpg", "b.jpg", "c.jpg"]}]
CATEGORIES = [{"id": 1, "name": "person"}, {"id": 4, "name": "cat"}]


def _rle(height: int = 6, width: int = 8) -> dict:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[1:3, 2:5] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


def _results() -> list[dict]:
    return [{"video_id": 3, "category_id": 1, "score": 0.7, "segmentations": [_rle(), None]},
            {"video_id": 5, "category_id": 4, "score": 1, "segmentations": [None, _rle(), _rle()]}]


def test_valid_results_pass(caplog):
    results = _results()
    # the input covers every video of the split, with real masks, so nothing should be reported
    assert {r["video_id"] for r in results} == {v["id"] for v in VIDEOS}
    assert all(any(rle is not None for rle in r["segmentations"]) for r in results)
    with caplog.at_level(logging.WARNING):
        assert validate_results(results, VIDEOS, CATEGORIES) is None
        assert validate_results(results, VIDEOS, [1, 4]) is None  # categories as plain ids
    assert caplog.records == []
    assert results == _results()  # validation does not modify the records


def test_video_length_from_file_names():
    assert video_shape(VIDEOS[1]) == (6, 8, 3)
    with pytest.raises(ValueError, match="video 9: 'height'"):
        video_shape({"id": 9, "width": 8, "length": 2})


@pytest.mark.parametrize("index,field,value,match", [
    (0, "video_id", 7, r"result 0 \(video 7\): video_id is not in the split"),
    (1, "category_id", 2, r"result 1 \(video 5\): category_id 2"),
    (0, "category_id", "1", "category_id '1'"),
    (0, "score", float("nan"), "finite number in"),
    (0, "score", float("-inf"), "finite number in"),
    (0, "score", 1.01, "finite number in"),
    (1, "score", -0.5, r"result 1 \(video 5\): score"),
    (0, "score", "0.5", "score"),
    (0, "score", True, "score"),
    (1, "segmentations", [None, None], r"result 1 \(video 5\): 'segmentations' must be a list of 3"),
    (0, "segmentations", None, "must be a list of 2"),
])
def test_each_defect_is_named(index, field, value, match):
    results = _results()
    results[index][field] = value
    with pytest.raises(ValueError, match=match):
        validate_results(results, VIDEOS, CATEGORIES)


@pytest.mark.parametrize("frame,match", [
    (_rle(6, 9), r"frame 0: RLE size \[6, 9\] differs from the video size \[6, 8\]"),
    ({"size": [6, 8], "counts": b"abc"}, "must be a str"),
    ({"size": [6, 8], "counts": [48]}, "must be a str"),
    ({"counts": "abc"}, "RLE dict"),
    ([], "RLE dict"),
])
def test_bad_frames_are_named(frame, match):
    results = _results()
    results[0]["segmentations"][0] = frame
    with pytest.raises(ValueError, match=match):
        validate_results(results, VIDEOS, CATEGORIES)


def test_missing_key_and_wrong_container():
    results = _results()
    del results[1]["score"]
    with pytest.raises(ValueError, match=r"result 1: missing key\(s\) \['score'\]"):
        validate_results(results, VIDEOS, CATEGORIES)
    with pytest.raises(ValueError, match="must be a list"):
        validate_results({"video_id": 3}, VIDEOS, CATEGORIES)


def test_missing_videos_only_warn(caplog):
    with caplog.at_level(logging.WARNING):
        validate_results(_results()[:1], VIDEOS, CATEGORIES)
    assert "1 of 2 videos" in caplog.text


def test_zip_has_results_json_at_root_and_loads_back(tmp_path):
    results = _results()
    results[0]["score"] = np.float32(0.25)  # numpy scalars are written as numbers
    path = write_results_zip(results, tmp_path / "sub" / "results.zip")
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["results.json"]
        assert json.loads(archive.read("results.json"))[1]["segmentations"][2] == _rle()
    loaded = read_results(path)
    assert loaded[0]["score"] == 0.25 and loaded[1] == _results()[1]
    write_results_zip(loaded[:1], path)  # overwrite in place
    assert len(read_results(path)) == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.zip"]  # no temp file left


def test_read_results_json_and_errors(tmp_path):
    good = tmp_path / "results.json"
    good.write_text(json.dumps(_results()))
    assert read_results(good) == _results()
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_results(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(ValueError, match="bad.json: malformed JSON"):
        read_results(bad)
    obj = tmp_path / "obj.json"
    obj.write_text("{}")
    with pytest.raises(ValueError, match="obj.json: expected a JSON list"):
        read_results(obj)
    txt = tmp_path / "results.txt"
    txt.write_text("[]")
    with pytest.raises(ValueError, match="expected a .json or .zip"):
        read_results(txt)
    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(nested, "w") as archive:
        archive.writestr("out/results.json", "[]")
    with pytest.raises(ValueError, match="nested.zip: no 'results.json' at the archive root"):
        read_results(nested)
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="corrupt.zip: not a valid zip"):
        read_results(corrupt)
