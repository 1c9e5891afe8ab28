"""Tests of image/data/synthetic.py (determinism, COCO consistency, the CLI) and of the scene model in
image/data/shapes.py (shapes, occlusion, encodings)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from queryinst.image.data.shapes import (
    SHAPE_KINDS,
    ShapeLayer,
    Texture,
    clip_polygon,
    mask_to_uncompressed_rle,
    polygon_area,
    rasterize_polygons,
    render_layers,
    shape_polygon,
)
from queryinst.image.data.synthetic import (
    DEFAULT_CLASSES,
    CocoSceneOptions,
    atomic_output_dir,
    make_coco_dataset,
    make_coco_splits,
)
from support.repo import REPO_ROOT

RICH = CocoSceneOptions(empty_prob=0.2, crowd_prob=0.6, rle_prob=0.3)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def rich_coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_coco_dataset(tmp_path_factory.mktemp("coco") / "ds", 16, 96, 128, seed=3, options=RICH)


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    a = make_coco_dataset(tmp_path / "a", 4, 64, 80, seed=7)
    b = make_coco_dataset(tmp_path / "b", 4, 64, 80, seed=7)
    c = make_coco_dataset(tmp_path / "c", 4, 64, 80, seed=8)
    assert _files(a.parent) == _files(b.parent)
    assert a.read_bytes() != c.read_bytes()
    assert (a.parent / "images" / "000000.jpg").read_bytes() != (c.parent / "images" / "000000.jpg").read_bytes()


def test_coco_loads_and_area_bbox_match_decoded_masks(rich_coco: Path) -> None:
    coco = COCO(str(rich_coco))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(DEFAULT_CLASSES)
    assert coco.anns, "no annotations generated"
    for ann in coco.anns.values():
        mask = coco.annToMask(ann).astype(bool)
        ys, xs = np.nonzero(mask)
        assert ann["area"] == mask.sum() > 0
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_every_encoding_crowd_and_empty_images_occur(rich_coco: Path) -> None:
    data = json.loads(rich_coco.read_text())
    segs = [(a["segmentation"], a["iscrowd"]) for a in data["annotations"]]
    assert any(isinstance(s, list) and c == 0 for s, c in segs), "no polygon annotation"
    assert any(isinstance(s, dict) and isinstance(s["counts"], str) for s, _ in segs), "no compressed RLE"
    crowd = [s for s, c in segs if c == 1]
    assert crowd and all(isinstance(s["counts"], list) for s in crowd), "crowd regions use uncompressed RLE"
    annotated = {a["image_id"] for a in data["annotations"]}
    assert any(img["id"] not in annotated for img in data["images"]), "no image without objects"


def test_visible_masks_of_one_image_never_overlap(rich_coco: Path) -> None:
    coco = COCO(str(rich_coco))
    for image_id in coco.getImgIds():
        masks = [coco.annToMask(a).astype(bool) for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))]
        if masks:
            assert int(np.sum(masks, axis=0).max()) <= 1


def test_small_medium_and_large_objects(tmp_path: Path) -> None:
    data = json.loads(make_coco_dataset(tmp_path / "d", 10, 256, 320, seed=0).read_text())
    areas = [a["area"] for a in data["annotations"] if not a["iscrowd"]]
    assert min(areas) < 32**2 and any(32**2 <= a < 96**2 for a in areas) and max(areas) >= 96**2


def test_later_layer_occludes_and_hidden_layer_is_dropped() -> None:
    plain = Texture("plain", (200.0, 0.0, 0.0), (200.0, 0.0, 0.0), 4.0, 0.0, ())
    blue = Texture("plain", (0.0, 0.0, 200.0), (0.0, 0.0, 200.0), 4.0, 0.0, ())

    def square(x0: float, y0: float, side: float, texture: Texture) -> ShapeLayer:
        poly = np.array([[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]])
        polys, mask = rasterize_polygons([poly], 40, 40)
        return ShapeLayer(0, polys, mask, side * side, texture, (x0, y0), 0.0)

    bottom, top = square(5, 5, 20, plain), square(15, 15, 20, blue)
    background = np.full((40, 40, 3), 100.0, np.float32)
    image, visible = render_layers(background, [bottom, top])
    assert visible[1] is not None and np.array_equal(visible[1], top.mask)
    assert np.array_equal(visible[0], bottom.mask & ~top.mask) and visible[0].sum() == 400 - 100
    assert (image[top.mask] == (0, 0, 200)).all() and (image[visible[0]] == (200, 0, 0)).all()
    hidden = square(16, 16, 10, plain)  # entirely under `top`
    _, visible = render_layers(background, [hidden, top], min_visible_fraction=0.2)
    assert visible[0] is None
    assert visible[1] is not None


@pytest.mark.parametrize("kind", SHAPE_KINDS)
def test_shape_area_and_polygon_annotation_decodes_to_the_painted_mask(kind: str) -> None:
    poly = shape_polygon(kind, (50.0, 40.0), 900.0, angle=0.3, aspect=0.6 if kind == "ellipse" else 1.0)
    assert polygon_area(poly) == pytest.approx(900.0)
    flat, mask = rasterize_polygons([poly], 80, 100)
    assert abs(int(mask.sum()) - 900) < 900 * 0.06
    decoded = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(flat, 80, 100))).astype(bool)
    assert np.array_equal(decoded, mask)


def test_clip_polygon_to_image() -> None:
    clipped = clip_polygon(np.array([[-10.0, -10.0], [10.0, -10.0], [10.0, 10.0], [-10.0, 10.0]]), 30, 30)
    assert clipped.min() >= 0 and polygon_area(clipped) == pytest.approx(100.0)
    assert len(clip_polygon(np.array([[-9.0, -9.0], [-5.0, -9.0], [-5.0, -5.0]]), 30, 30)) == 0


def test_uncompressed_rle_round_trip() -> None:
    mask = np.random.default_rng(0).random((7, 9)) > 0.5
    mask[0, 0] = True  # run-length counts must then start with a zero-length background run
    rle = mask_to_uncompressed_rle(mask)
    assert rle["counts"][0] == 0 and sum(rle["counts"]) == mask.size
    assert np.array_equal(mask_utils.decode(mask_utils.frPyObjects(rle, 7, 9)).astype(bool), mask)


def test_existing_folder_is_refused_then_overwritten_and_failures_leave_nothing(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    make_coco_dataset(out, 1, 32, 32, seed=0)
    with pytest.raises(ValueError, match="already exists"):
        make_coco_dataset(out, 1, 32, 32, seed=0)
    make_coco_dataset(out, 2, 32, 32, seed=0, overwrite=True)
    assert len(json.loads((out / "annotations.json").read_text())["images"]) == 2
    with pytest.raises(RuntimeError), atomic_output_dir(tmp_path / "failed"):
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_invalid_arguments_raise_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="class_names"):
        CocoSceneOptions(class_names=("circle", "dragon"))
    with pytest.raises(ValueError, match="num_images"):
        make_coco_dataset(tmp_path / "x", 0)
    with pytest.raises(ValueError, match="crowd_prob"):
        CocoSceneOptions(crowd_prob=1.5)


def test_splits_train_matches_single_dataset_and_val_differs(tmp_path: Path) -> None:
    paths = make_coco_splits(tmp_path / "s", 2, 2, 48, 64, seed=5)
    single = make_coco_dataset(tmp_path / "one", 2, 48, 64, seed=5)
    assert paths["train"].read_bytes() == single.read_bytes()
    assert paths["val"].read_bytes() != paths["train"].read_bytes()
    assert (paths["val"].parent / "images" / "000001.jpg").is_file()


@pytest.mark.slow
def test_cli_coco_with_val(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "make_synthetic.py"), "coco", "--out", str(out),
                             "--num-images", "2", "--val", "1", "--height", "32", "--width", "48", "--seed", "1"],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert str(out / "train" / "annotations.json") in result.stdout
    assert len(json.loads((out / "val" / "annotations.json").read_text())["images"]) == 1
