"""Tests of image/data/coco.py and image/data/collate.py on a tiny COCO folder written by a fixture."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from torch.utils.data import DataLoader

from queryinst.image.config import DataConfig
from queryinst.image.data.coco import CocoInstances, load_coco_gt, segmentation_to_mask
from queryinst.image.data.collate import collate, pad_and_normalize
from queryinst.image.data.transforms import build_transforms
from queryinst.image.types import Targets

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)  # RGB


def _rect_mask(h: int, w: int, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    """[h, w] uint8 mask with pixels rows y1..y2-1, cols x1..x2-1 set (box [x1, y1, x2, y2])."""
    mask = np.zeros((h, w), np.uint8)
    mask[y1:y2, x1:x2] = 1
    return mask


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO uncompressed RLE: run lengths over the column-major flattening, starting with zeros."""
    flat = mask.flatten(order="F")
    counts, current, run = [], 0, 0
    for value in flat:
        if value == current:
            run += 1
        else:
            counts.append(run)
            current, run = value, 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def _compressed_rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def _write_rgb(path: str, image_rgb: np.ndarray) -> None:
    assert cv2.imwrite(path, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))


@pytest.fixture
def coco_dir(tmp_path):
    """Three images: a.png (60x80) with polygon, compressed-RLE, crowd and degenerate annotations;
    b.jpg (50x70) with an uncompressed-RLE instance and a triangle polygon; c.png (40x40) without any."""
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    a = np.zeros((60, 80, 3), np.uint8)
    a[5:25, 10:30] = RED
    a[30:50, 40:70] = GREEN
    _write_rgb(str(img_dir / "a.png"), a)
    b = np.zeros((50, 70, 3), np.uint8)
    b[10:30, 20:50] = BLUE
    _write_rgb(str(img_dir / "b.jpg"), b)
    _write_rgb(str(img_dir / "c.png"), np.full((40, 40, 3), 128, np.uint8))

    annotations = [
        # a.png: polygon (dog), compressed RLE (cat), crowd with uncompressed RLE (bird), degenerate box
        {"id": 1, "image_id": 1, "category_id": 7, "iscrowd": 0, "area": 400.0, "bbox": [10, 5, 20, 20],
         "segmentation": [[10, 5, 30, 5, 30, 25, 10, 25]]},
        {"id": 2, "image_id": 1, "category_id": 3, "iscrowd": 0, "area": 600.0, "bbox": [40, 30, 30, 20],
         "segmentation": _compressed_rle(_rect_mask(60, 80, 40, 30, 70, 50))},
        {"id": 3, "image_id": 1, "category_id": 1, "iscrowd": 1, "area": 200.0, "bbox": [60, 0, 20, 10],
         "segmentation": _uncompressed_rle(_rect_mask(60, 80, 60, 0, 80, 10))},
        {"id": 4, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 5.0, "bbox": [5, 5, 0.5, 10],
         "segmentation": [[5, 5, 5.5, 5, 5.5, 15, 5, 15]]},
        # b.jpg: uncompressed RLE (bird), triangle polygon (cat)
        {"id": 5, "image_id": 2, "category_id": 1, "iscrowd": 0, "area": 600.0, "bbox": [20, 10, 30, 20],
         "segmentation": _uncompressed_rle(_rect_mask(50, 70, 20, 10, 50, 30))},
        {"id": 6, "image_id": 2, "category_id": 3, "iscrowd": 0, "area": 100.0, "bbox": [50, 30, 20, 10],
         "segmentation": [[50, 30, 70, 40, 50, 40]]},
    ]
    data = {
        "images": [
            {"id": 1, "file_name": "a.png", "height": 60, "width": 80},
            {"id": 2, "file_name": "b.jpg", "height": 50, "width": 70},
            {"id": 3, "file_name": "c.png", "height": 40, "width": 40},
        ],
        "annotations": annotations,
        "categories": [{"id": 7, "name": "dog"}, {"id": 1, "name": "bird"}, {"id": 3, "name": "cat"}],
    }
    ann_file = tmp_path / "instances.json"
    ann_file.write_text(json.dumps(data))
    return str(ann_file), str(img_dir), data


def _mask_box(mask: torch.Tensor) -> list[int]:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def test_contiguous_labels_and_names(coco_dir):
    ann_file, img_dir, _ = coco_dir
    ds = CocoInstances(ann_file, img_dir)
    assert ds.cat_ids == [1, 3, 7]
    assert ds.class_names == ["bird", "cat", "dog"]
    assert ds.cat_id_to_label == {1: 0, 3: 1, 7: 2}
    assert all(ds.cat_ids[ds.cat_id_to_label[c]] == c for c in ds.cat_ids)
    assert ds.image_ids == [1, 2, 3] and len(ds) == 3 and ds.num_classes == 3


def test_polygon_rle_crowd_and_degenerate(coco_dir):
    ann_file, img_dir, _ = coco_dir
    image, t = CocoInstances(ann_file, img_dir)[0]
    assert isinstance(t, Targets) and t.image_id == 1 and t.orig_size == (60, 80)
    assert image.shape == (3, 60, 80) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert torch.equal(image[:, 15, 20], torch.tensor([1.0, 0.0, 0.0]))  # RGB order, PNG is lossless
    # degenerate (w = 0.5) dropped; crowd is an ignore box, never a positive
    assert torch.equal(t.boxes, torch.tensor([[10.0, 5, 30, 25], [40, 30, 70, 50]]))
    assert t.labels.tolist() == [2, 1] and t.labels.dtype == torch.int64
    assert torch.equal(t.ignore_boxes, torch.tensor([[60.0, 0, 80, 10]]))
    assert t.masks.shape == (2, 60, 80) and t.masks.dtype == torch.bool
    assert torch.equal(t.masks[1], torch.from_numpy(_rect_mask(60, 80, 40, 30, 70, 50)).bool())  # compressed RLE
    assert all(abs(a - b) <= 1 for a, b in zip(_mask_box(t.masks[0]), [10, 5, 30, 25]))  # polygon raster


def test_uncompressed_rle_and_triangle(coco_dir):
    ann_file, img_dir, _ = coco_dir
    image, t = CocoInstances(ann_file, img_dir)[1]
    assert image.shape == (3, 50, 70)
    assert t.labels.tolist() == [0, 1]
    assert torch.equal(t.masks[0], torch.from_numpy(_rect_mask(50, 70, 20, 10, 50, 30)).bool())
    assert abs(int(t.masks[1].sum()) - 100) <= 15  # triangle of area 100
    assert t.ignore_boxes.shape == (0, 4)
    assert image[2, 20, 35] > 0.9 and image[0, 20, 35] < 0.1  # blue (JPEG, approximately)


def test_image_without_annotations_kept_or_filtered(coco_dir):
    ann_file, img_dir, _ = coco_dir
    image, t = CocoInstances(ann_file, img_dir)[2]
    assert image.shape == (3, 40, 40)
    assert t.boxes.shape == (0, 4) and t.labels.shape == (0,) and t.masks.shape == (0, 40, 40)
    filtered = CocoInstances(ann_file, img_dir, filter_empty=True)
    assert filtered.image_ids == [1, 2]


def test_transforms_and_dataloader(coco_dir):
    ann_file, img_dir, _ = coco_dir
    cfg = DataConfig(recipe="fixed", min_sizes=(30,), max_size=50, flip_prob=0.5)
    ds = CocoInstances(ann_file, img_dir, transforms=build_transforms(cfg, train=True))
    images, targets = next(iter(DataLoader(ds, batch_size=3, collate_fn=collate)))
    assert [tuple(im.shape) for im in images] == [(3, 30, 40), (3, 30, 42), (3, 30, 30)]
    assert all(im.dtype == torch.float32 and im.max() <= 1.0 for im in images)
    assert [t.masks.shape[-2:] for t in targets] == [im.shape[-2:] for im in images]
    assert [t.orig_size for t in targets] == [(60, 80), (50, 70), (40, 40)]
    batch = pad_and_normalize(images, cfg.pixel_mean, cfg.pixel_std, cfg.size_divisor)
    assert batch.tensors.shape == (3, 3, 32, 64) and batch.image_sizes == [(30, 40), (30, 42), (30, 30)]


def test_missing_annotation_file(tmp_path):
    path = str(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        CocoInstances(path, str(tmp_path))


def test_malformed_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"images": [')
    with pytest.raises(ValueError, match="broken.json.*not a valid JSON"):
        CocoInstances(str(path), str(tmp_path))


def test_schema_errors_name_the_file(coco_dir, tmp_path):
    _, img_dir, data = coco_dir
    for mutate, pattern in [
        (lambda d: d.pop("categories"), "has no 'categories'"),
        (lambda d: d["annotations"][0].update(category_id=99), "category_id 99"),
        (lambda d: d["annotations"][0].update(image_id=42), "image_id 42"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), "4 numbers"),
        (lambda d: d["images"][0].pop("height"), "no 'height'"),
    ]:
        bad = json.loads(json.dumps(data))
        mutate(bad)
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=f"bad.json.*{pattern}"):
            CocoInstances(str(path), img_dir)


def test_missing_and_corrupt_images(coco_dir):
    ann_file, img_dir, _ = coco_dir
    ds = CocoInstances(ann_file, img_dir)
    os.remove(os.path.join(img_dir, "b.jpg"))
    with pytest.raises(FileNotFoundError, match="b.jpg"):
        ds[1]
    with open(os.path.join(img_dir, "c.png"), "wb") as f:
        f.write(b"definitely not a png")
    with pytest.raises(ValueError, match="c.png"):
        ds[2]
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        CocoInstances(ann_file, os.path.join(img_dir, "no_such_dir"))


def test_image_size_mismatch_and_bad_rle(coco_dir, tmp_path):
    ann_file, img_dir, data = coco_dir
    bad = json.loads(json.dumps(data))
    bad["images"][2]["height"] = 41
    bad["annotations"][1]["segmentation"]["size"] = [61, 80]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    ds = CocoInstances(str(path), img_dir)
    with pytest.raises(ValueError, match="c.png.*40x40"):
        ds[2]
    with pytest.raises(ValueError, match="bad.json.*annotation id 2.*RLE size"):
        ds[0]


def test_missing_segmentation_falls_back_to_box(coco_dir, tmp_path):
    ann_file, img_dir, data = coco_dir
    bad = json.loads(json.dumps(data))
    del bad["annotations"][0]["segmentation"]
    path = tmp_path / "boxes_only.json"
    path.write_text(json.dumps(bad))
    _, t = CocoInstances(str(path), img_dir)[0]
    assert torch.equal(t.masks[0], torch.from_numpy(_rect_mask(60, 80, 10, 5, 30, 25)).bool())


def test_segmentation_formats_agree():
    mask = np.zeros((20, 30), np.uint8)
    mask[3:11, 4:25] = 1
    mask[15, 7] = 1
    assert np.array_equal(segmentation_to_mask(_uncompressed_rle(mask), 20, 30), mask)
    assert np.array_equal(segmentation_to_mask(_compressed_rle(mask), 20, 30), mask)
    assert segmentation_to_mask([[1, 2, 3, 4]], 20, 30) is None  # < 3 points: not read as a box
    assert segmentation_to_mask(None, 20, 30) is None


def test_load_coco_gt(coco_dir, capsys):
    ann_file, _, _ = coco_dir
    coco = load_coco_gt(ann_file)
    assert sorted(coco.getImgIds()) == [1, 2, 3] and len(coco.getAnnIds()) == 6
    assert capsys.readouterr().out == ""  # pycocotools' prints are swallowed


def test_pad_and_normalize_values():
    mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    torch.manual_seed(0)
    a, b = torch.rand(3, 20, 30), torch.rand(3, 35, 10)
    batch = pad_and_normalize([a, b], mean, std, size_divisor=32)
    assert batch.tensors.shape == (2, 3, 64, 32) and batch.tensors.dtype == torch.float32
    assert batch.image_sizes == [(20, 30), (35, 10)]
    m, s = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
    torch.testing.assert_close(batch.tensors[0, :, :20, :30], (a * 255 - m) / s)
    torch.testing.assert_close(batch.tensors[1, :, :35, :10], (b * 255 - m) / s)
    assert batch.tensors[0, :, 20:].abs().sum() == 0 and batch.tensors[0, :, :, 30:].abs().sum() == 0
    assert batch.tensors[1, :, 35:].abs().sum() == 0 and batch.tensors[1, :, :, 10:].abs().sum() == 0
    # uint8 input is read in the 0-255 scale; size_divisor 1 pads only to the largest image
    u8 = (a * 255).round().to(torch.uint8)
    batch = pad_and_normalize([u8, b], mean, std, size_divisor=1)
    assert batch.tensors.shape == (2, 3, 35, 30)
    torch.testing.assert_close(batch.tensors[0, :, :20, :30], (u8.float() - m) / s)
    with pytest.raises(ValueError, match="no images"):
        pad_and_normalize([], mean, std)
    with pytest.raises(ValueError, match="image 0"):
        pad_and_normalize([torch.rand(20, 30)], mean, std)
