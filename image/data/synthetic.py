"""Synthetic COCO-format instance segmentation data: textured shapes on textured backgrounds.

The project cannot download COCO, so tests, demos and the documented synthetic training runs use
these images. Everything is deterministic: identical arguments give identical bytes (JSON and images).
Each image is seeded by ``(seed, split, image index)``, so images do not depend on one another.

The scene model (shapes, textures, occlusion by layers, mask encodings) is in ``shapes.py``, shared with
``vis/data/synthetic.py``; this file picks what goes into each image, writes the files and annotates.

Encodings in the JSON: unoccluded objects get polygons (a fraction ``rle_prob`` get compressed RLE),
occluded objects compressed RLE (a visible mask may have holes), crowd regions (``iscrowd=1``, a
cluster of small shapes of one class) uncompressed RLE, as in COCO. ``area`` and ``bbox`` are computed
from the mask the annotation decodes to.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..atomic import write_json_atomic
from .shapes import (
    SHAPE_KINDS,
    ShapeLayer,
    class_hue,
    mask_bbox,
    mask_to_rle,
    mask_to_uncompressed_rle,
    rasterize_polygons,
    render_background,
    render_layers,
    sample_area,
    sample_aspect,
    sample_texture,
    shape_polygon,
)

logger = logging.getLogger(__name__)

DEFAULT_CLASSES = SHAPE_KINDS


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------
def write_image(path: Path, rgb: np.ndarray, jpeg_quality: int = 90) -> None:
    """Encode an RGB uint8 image by its suffix (.jpg/.jpeg/.png) and write it."""
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise ValueError(f"{path}: OpenCV cannot encode an image with suffix {path.suffix!r}")
    path.write_bytes(data.tobytes())


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically with compact, stable bytes (``image/atomic.py``)."""
    write_json_atomic(data, path)


@contextmanager
def atomic_output_dir(out_dir: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``out_dir`` that replaces it on success.

    A non-empty existing ``out_dir`` is an error unless ``overwrite``. On an exception the temporary
    directory is removed and ``out_dir`` is left untouched.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"{out}: already exists and is not empty (pass overwrite=True / --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0o700
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, trash / out.name)
            os.replace(tmp, out)
            shutil.rmtree(trash)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def categories_json(class_names: Sequence[str]) -> list[dict]:
    """COCO/YouTube-VIS ``categories``: ids 1..C in the order of ``class_names``."""
    return [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(class_names)]


def check_class_names(class_names: Sequence[str]) -> tuple[str, ...]:
    """Validate that every class name is a known, distinct shape kind."""
    names = tuple(class_names)
    unknown = [n for n in names if n not in SHAPE_KINDS]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(f"class_names must be distinct shape kinds from {SHAPE_KINDS}, got {names}")
    return names


def check_image_size(height: int, width: int) -> None:
    """Validate the generated image size (at least 16 px per side so that shapes fit)."""
    if height < 16 or width < 16:
        raise ValueError(f"height and width must be >= 16 px, got {height}x{width}")


# ------------------------------------------------------------------------------------------------
# COCO generator
# ------------------------------------------------------------------------------------------------
def _object_layer(rng: np.random.Generator, height: int, width: int, class_names: Sequence[str],
                  class_colours: bool = False) -> ShapeLayer:
    label = int(rng.integers(len(class_names)))
    kind = class_names[label]
    area, angle = sample_area(rng, height, width), float(rng.uniform(0.0, 2.0 * np.pi))
    center = (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
    polygon = shape_polygon(kind, center, area, angle, sample_aspect(rng, kind))
    polygons, mask = rasterize_polygons([polygon], height, width)
    hue = class_hue(label, len(class_names)) if class_colours else None
    return ShapeLayer(label, polygons, mask, area, sample_texture(rng, hue=hue), center, angle)


def _crowd_layer(rng: np.random.Generator, height: int, width: int, class_names: Sequence[str]) -> ShapeLayer:
    """A cluster of 4-8 small shapes of one class, annotated as one iscrowd=1 region."""
    label = int(rng.integers(len(class_names)))
    kind = class_names[label]
    center = np.array([rng.uniform(0, width), rng.uniform(0, height)])
    side = float(rng.uniform(8.0, 14.0))
    shapes = [shape_polygon(kind, tuple(center + rng.normal(0.0, 1.5 * side, 2)), side * side,
                            float(rng.uniform(0, 2 * np.pi)), sample_aspect(rng, kind))
              for _ in range(int(rng.integers(4, 9)))]
    polygons, mask = rasterize_polygons(shapes, height, width)
    return ShapeLayer(label, polygons, mask, float(mask.sum()), sample_texture(rng),
                      (float(center[0]), float(center[1])), 0.0, iscrowd=True)


def _annotate(layer: ShapeLayer, visible: np.ndarray, rng: np.random.Generator, rle_prob: float) -> dict:
    if layer.iscrowd:
        segmentation: object = mask_to_uncompressed_rle(visible)
    elif np.array_equal(visible, layer.mask) and rng.random() >= rle_prob:
        segmentation = layer.polygons
    else:
        segmentation = mask_to_rle(visible)
    return {"category_id": layer.label + 1, "segmentation": segmentation, "area": int(visible.sum()),
            "bbox": mask_bbox(visible), "iscrowd": int(layer.iscrowd)}


@dataclass(frozen=True)
class CocoSceneOptions:
    """What the COCO generator puts in an image (validated on construction).

    class_names: shape kinds used as classes (category ids 1..C in this order); max_objects: an
    image holds 1..max_objects shapes, or none with probability ``empty_prob``; crowd_prob: chance
    of one extra iscrowd=1 cluster; rle_prob: chance that an unoccluded object is stored as RLE
    rather than polygons; objects whose visible area is below ``max(min_visible_area,
    min_visible_fraction * shape area)`` are dropped; image_format: "jpg" or "png".
    """

    class_names: tuple[str, ...] = DEFAULT_CLASSES
    max_objects: int = 6
    empty_prob: float = 0.1
    crowd_prob: float = 0.1
    rle_prob: float = 0.15
    min_visible_fraction: float = 0.2
    min_visible_area: float = 16.0
    image_format: str = "jpg"
    jpeg_quality: int = 90
    noise_std: float = 2.0  # Gaussian sensor noise, in 8-bit levels
    class_colours: bool = False  # each class gets its own hue band (shape AND colour tell the class)

    def __post_init__(self) -> None:
        check_class_names(self.class_names)
        if self.max_objects < 1:
            raise ValueError(f"max_objects must be >= 1, got {self.max_objects}")
        if self.image_format not in ("jpg", "png"):
            raise ValueError(f"image_format must be 'jpg' or 'png', got {self.image_format!r}")
        for name in ("empty_prob", "crowd_prob", "rle_prob", "min_visible_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


def _write_coco(root: Path, stream: tuple[int, int], num_images: int, height: int, width: int,
                opts: CocoSceneOptions, progress: bool) -> Path:
    """Generate one COCO split into the (temporary) folder ``root``; images seeded by stream + index."""
    (root / "images").mkdir()
    images, annotations = [], []
    names = opts.class_names
    for index in tqdm(range(num_images), desc="synthetic COCO", disable=not progress):
        rng = np.random.default_rng([*stream, index])
        background = render_background(rng, height, width)
        count = 0 if rng.random() < opts.empty_prob else int(rng.integers(1, opts.max_objects + 1))
        layers = [_object_layer(rng, height, width, names, opts.class_colours) for _ in range(count)]
        if count and rng.random() < opts.crowd_prob:
            layers.insert(int(rng.integers(len(layers) + 1)), _crowd_layer(rng, height, width, names))
        image, visible = render_layers(background, layers, opts.min_visible_area, opts.min_visible_fraction,
                                       rng, opts.noise_std)
        file_name = f"{index:06d}.{opts.image_format}"
        write_image(root / "images" / file_name, image, opts.jpeg_quality)
        images.append({"id": index + 1, "file_name": file_name, "height": height, "width": width})
        for layer, vis in zip(layers, visible):
            if vis is not None:
                annotations.append({"id": len(annotations) + 1, "image_id": index + 1,
                                    **_annotate(layer, vis, rng, opts.rle_prob)})
    data = {"info": {"description": "QueryInst-VIS synthetic shapes (image/data/synthetic.py)",
                     "seed": stream[0]},
            "licenses": [], "images": images, "annotations": annotations, "categories": categories_json(names)}
    write_json(root / "annotations.json", data)
    return root / "annotations.json"


def make_coco_dataset(out_dir: str | os.PathLike, num_images: int, height: int = 256, width: int = 320,
                      seed: int = 0, options: CocoSceneOptions = CocoSceneOptions(), overwrite: bool = False,
                      progress: bool = False) -> Path:
    """Write ``out_dir/images/NNNNNN.jpg`` and ``out_dir/annotations.json`` (COCO instances format).

    Image ids are 1..num_images; what an image holds is set by ``options``. The folder is built in a
    temporary directory beside ``out_dir`` and renamed into place. Returns the path of the JSON.
    """
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    check_image_size(height, width)
    with atomic_output_dir(out_dir, overwrite) as root:
        _write_coco(root, (seed, 0), num_images, height, width, options, progress)
    logger.info("wrote %d synthetic COCO images to %s", num_images, out_dir)
    return Path(out_dir) / "annotations.json"


def make_coco_splits(out_dir: str | os.PathLike, num_train: int, num_val: int, height: int = 256,
                     width: int = 320, seed: int = 0, options: CocoSceneOptions = CocoSceneOptions(),
                     overwrite: bool = False, progress: bool = False) -> dict[str, Path]:
    """Write ``out_dir/train`` and ``out_dir/val``, each laid out as ``make_coco_dataset``'s output.

    The splits come from independent random streams of the same seed (the train split equals
    ``make_coco_dataset(..., seed)``). Returns {"train": json path, "val": json path}.
    """
    if num_train < 1 or num_val < 1:
        raise ValueError(f"num_train and num_val must be >= 1, got {num_train} and {num_val}")
    check_image_size(height, width)
    with atomic_output_dir(out_dir, overwrite) as root:
        for key, (split, count) in enumerate((("train", num_train), ("val", num_val))):
            (root / split).mkdir()
            _write_coco(root / split, (seed, key), count, height, width, options, progress)
    logger.info("wrote synthetic COCO train (%d) and val (%d) to %s", num_train, num_val, out_dir)
    return {split: Path(out_dir) / split / "annotations.json" for split in ("train", "val")}
