"""The synthetic scenes' building blocks: shapes, textures, layered rendering and mask encodings.

Scene model (shared by ``image/data/synthetic.py`` and ``vis/data/synthetic.py``): a textured background,
then shape layers painted bottom to top. A later layer occludes an earlier one; the annotated mask is the
*visible* part, and layers left almost fully hidden are neither painted nor annotated. Shapes are
rasterised from their polygons with pycocotools, so a polygon annotation decodes to exactly the painted
pixels. Every random draw comes from the ``np.random.Generator`` the caller passes in, so identical
generators give identical shapes and pixels.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from pycocotools import mask as mask_utils

SHAPE_KINDS = ("circle", "square", "triangle", "star", "ellipse", "hexagon")
TEXTURE_KINDS = ("plain", "stripes", "checker", "noise")
# Side length (sqrt of the area) ranges of the three size buckets. COCO's small/medium/large split
# is at areas 32^2 and 96^2 (pycocotools COCOeval areaRng).
SIZE_BUCKETS = ((10.0, 32.0), (32.0, 96.0), (96.0, 160.0))
SIZE_BUCKET_PROBS = (0.3, 0.45, 0.25)
MAX_SIDE_FRACTION = 0.6  # no shape's side sqrt(area) exceeds this fraction of the short image side
STAR_INNER_RADIUS = 0.45  # inner/outer radius of the 5-pointed star
ELLIPSE_ASPECT = (0.4, 0.7)  # minor/major axis ratio, well away from a circle's 1.0
POLYGON_DECIMALS = 2  # polygon coordinates are rounded before rasterising, so the JSON is exact


# ------------------------------------------------------------------------------------------------
# Shapes
# ------------------------------------------------------------------------------------------------
def _regular(n: int, start: float = 0.0) -> np.ndarray:
    t = start + 2.0 * np.pi * np.arange(n) / n
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def shape_polygon(kind: str, center: tuple[float, float], area: float, angle: float = 0.0,
                  aspect: float = 1.0) -> np.ndarray:
    """Vertices [K, 2] (x, y) in pixels of a shape of the given area, rotated by ``angle`` radians.

    ``aspect`` squashes the shape's y axis before rotation (used for ellipses).
    """
    if kind in ("circle", "ellipse"):
        unit = _regular(48)
    elif kind == "square":
        unit = _regular(4, np.pi / 4)
    elif kind == "triangle":
        unit = _regular(3, -np.pi / 2)
    elif kind == "hexagon":
        unit = _regular(6)
    elif kind == "star":
        unit = _regular(10, -np.pi / 2) * np.where(np.arange(10) % 2 == 0, 1.0, STAR_INNER_RADIUS)[:, None]
    else:
        raise ValueError(f"unknown shape kind {kind!r}; known: {', '.join(SHAPE_KINDS)}")
    unit = unit * np.array([1.0, aspect])
    unit = unit * np.sqrt(area / polygon_area(unit))
    c, s = np.cos(angle), np.sin(angle)
    rotated = unit @ np.array([[c, s], [-s, c]])
    return rotated + np.asarray(center, dtype=np.float64)


def polygon_area(polygon: np.ndarray) -> float:
    """Shoelace area of a simple polygon [K, 2]."""
    x, y = polygon[:, 0], polygon[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def clip_polygon(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """Sutherland-Hodgman clip of a polygon [K, 2] to the image rectangle [0, W] x [0, H]."""
    points = [tuple(p) for p in polygon]
    for axis, bound, keep_below in ((0, 0.0, False), (0, float(width), True),
                                    (1, 0.0, False), (1, float(height), True)):
        inside = (lambda p: p[axis] <= bound) if keep_below else (lambda p: p[axis] >= bound)
        clipped: list[tuple[float, float]] = []
        for i, cur in enumerate(points):
            prev = points[i - 1]
            if inside(cur) != inside(prev):
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                clipped.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            if inside(cur):
                clipped.append(cur)
        points = clipped
        if not points:
            break
    return np.array(points, dtype=np.float64).reshape(-1, 2)


def rasterize_polygons(polygons: Sequence[np.ndarray], height: int, width: int
                       ) -> tuple[list[list[float]], np.ndarray]:
    """Clip, round and rasterise polygons (their union) with pycocotools.

    Returns the COCO polygon list (flat [x0, y0, x1, y1, ...] per polygon, only those with >= 3
    vertices) and the mask [H, W] bool that exactly this list decodes to.
    """
    flat: list[list[float]] = []
    for polygon in polygons:
        clipped = np.round(clip_polygon(polygon, height, width), POLYGON_DECIMALS)
        if len(clipped) >= 3 and polygon_area(clipped) > 0:
            flat.append([float(v) for v in clipped.ravel()])
    if not flat:
        return [], np.zeros((height, width), dtype=bool)
    rle = mask_utils.merge(mask_utils.frPyObjects(flat, height, width))
    return flat, mask_utils.decode(rle).astype(bool)


def sample_area(rng: np.random.Generator, height: int, width: int) -> float:
    """An object area in px^2 drawn from the small/medium/large buckets (capped by the image size)."""
    bucket = SIZE_BUCKETS[rng.choice(len(SIZE_BUCKETS), p=SIZE_BUCKET_PROBS)]
    high = min(bucket[1], MAX_SIDE_FRACTION * min(height, width))
    low = min(bucket[0], 0.8 * high)
    return float(rng.uniform(low, high) ** 2)


def sample_aspect(rng: np.random.Generator, kind: str) -> float:
    """Minor/major axis ratio: random for ellipses, 1 for every other shape."""
    return float(rng.uniform(*ELLIPSE_ASPECT)) if kind == "ellipse" else 1.0


# ------------------------------------------------------------------------------------------------
# Colours and textures
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Texture:
    """A pattern attached to an object: evaluated in the object's own (rotated) coordinates.

    kind: one of TEXTURE_KINDS; colour/colour2: RGB in [0, 255] blended by the pattern value;
    period: stripe/checker period in px; waves: (fx, fy, phase) sinusoids summed for "noise".
    """

    kind: str
    colour: tuple[float, float, float]
    colour2: tuple[float, float, float]
    period: float
    phase: float
    waves: tuple[tuple[float, float, float], ...]


CLASS_HUE_JITTER = 6.0  # +- hue jitter (OpenCV units, of 180) around a class's hue with class_colours


def class_hue(label: int, num_classes: int) -> float:
    """The hue band centre of class ``label`` when colours encode classes (evenly spread, OpenCV units)."""
    return 180.0 * label / num_classes


def sample_colour(rng: np.random.Generator, muted: bool = False,
                  hue: float | None = None) -> tuple[float, float, float]:
    """A random RGB colour: saturated for objects, low-saturation for backgrounds; ``hue`` (OpenCV
    units) fixes the hue up to +-CLASS_HUE_JITTER (class-coloured objects)."""
    if hue is None:
        hue = rng.uniform(0.0, 180.0)  # OpenCV's 8-bit hue range
    else:
        hue = float((hue + rng.uniform(-CLASS_HUE_JITTER, CLASS_HUE_JITTER)) % 180.0)
    sat = rng.uniform(0.0, 0.3) if muted else rng.uniform(0.5, 1.0)
    val = rng.uniform(0.3, 0.8) if muted else rng.uniform(0.55, 1.0)
    hsv = np.array([[[hue, sat * 255.0, val * 255.0]]], dtype=np.float32)
    rgb = cv2.cvtColor(np.round(hsv).astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0]
    return tuple(float(v) for v in rgb)


def sample_texture(rng: np.random.Generator, muted: bool = False, hue: float | None = None) -> Texture:
    """A random texture; ``muted`` gives the low-contrast, coarse patterns used for backgrounds; ``hue``
    fixes the object's colour band (its second colour is then a darker shade of the first)."""
    kind = TEXTURE_KINDS[int(rng.integers(len(TEXTURE_KINDS)))]
    colour = np.array(sample_colour(rng, muted, hue))
    if muted:
        colour2 = colour * rng.uniform(0.7, 0.9)
    elif hue is not None or rng.random() < 0.5:
        colour2 = colour * rng.uniform(0.3, 0.6)
    else:
        colour2 = np.array(sample_colour(rng))
    period = rng.uniform(10.0, 32.0) if muted else rng.uniform(3.0, 10.0)
    waves = []
    for _ in range(4):
        theta, wavelength = rng.uniform(0.0, np.pi), rng.uniform(4.0, 16.0) * (3.0 if muted else 1.0)
        k = 2.0 * np.pi / wavelength
        waves.append((float(k * np.cos(theta)), float(k * np.sin(theta)), float(rng.uniform(0, 2 * np.pi))))
    return Texture(kind, tuple(float(v) for v in colour), tuple(float(v) for v in colour2),
                   float(period), float(rng.uniform(0.0, 2.0 * np.pi)), tuple(waves))


def texture_values(texture: Texture, xs: np.ndarray, ys: np.ndarray, origin: tuple[float, float],
                   angle: float) -> np.ndarray:
    """RGB float32 [n, 3] of ``texture`` at pixels (xs, ys), in coordinates rotating with the object."""
    dx, dy = xs + 0.5 - origin[0], ys + 0.5 - origin[1]
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    if texture.kind == "plain":
        t = np.zeros_like(u)
    elif texture.kind == "stripes":
        t = np.clip(3.0 * np.sin(2.0 * np.pi * u / texture.period + texture.phase), -1.0, 1.0) * 0.5 + 0.5
    elif texture.kind == "checker":
        t = (np.floor(u / texture.period) + np.floor(v / texture.period)) % 2.0
    elif texture.kind == "noise":
        t = sum(np.sin(fx * u + fy * v + ph) for fx, fy, ph in texture.waves) / (2.0 * len(texture.waves)) + 0.5
    else:
        raise ValueError(f"unknown texture kind {texture.kind!r}; known: {', '.join(TEXTURE_KINDS)}")
    t = t.astype(np.float32)[:, None]
    return (1.0 - t) * np.asarray(texture.colour, np.float32) + t * np.asarray(texture.colour2, np.float32)


def render_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A textured background, float32 [H, W, 3] in [0, 255]: muted gradient + coarse pattern."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    theta = rng.uniform(0.0, 2.0 * np.pi)
    g = xs * np.cos(theta) + ys * np.sin(theta)
    g = ((g - g.min()) / max(float(g.max() - g.min()), 1.0))[..., None]
    first, second = np.array(sample_colour(rng, True), np.float32), np.array(sample_colour(rng, True), np.float32)
    base = (1.0 - g) * first + g * second
    texture = sample_texture(rng, muted=True)
    pattern = texture_values(texture, xs.ravel(), ys.ravel(), (0.0, 0.0), 0.0).reshape(height, width, 3)
    return (0.6 * base + 0.4 * pattern).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# Layers: occlusion and painting
# ------------------------------------------------------------------------------------------------
@dataclass
class ShapeLayer:
    """One painted object: its class, geometry and appearance.

    label: contiguous class index; polygons: COCO flat polygons (clipped to the image) that
    ``mask`` [H, W] bool was rasterised from; full_area: area of the unclipped shape(s) in px^2
    (what the visibility test compares against); origin/angle: where the texture is attached.
    """

    label: int
    polygons: list[list[float]]
    mask: np.ndarray
    full_area: float
    texture: Texture
    origin: tuple[float, float]
    angle: float
    iscrowd: bool = False


def render_layers(background: np.ndarray, layers: Sequence[ShapeLayer], min_visible_area: float = 16.0,
                  min_visible_fraction: float = 0.0, rng: np.random.Generator | None = None,
                  noise_std: float = 0.0) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Paint ``layers`` (bottom to top) over ``background`` [H, W, 3].

    Visibility is decided top-down: a layer whose visible pixels (not covered by kept layers above)
    number fewer than ``max(min_visible_area, min_visible_fraction * full_area)`` is dropped: not
    painted, not occluding. Returns the uint8 RGB image [H, W, 3] and per layer its visible mask
    [H, W] bool, or None when dropped. ``noise_std`` adds Gaussian sensor noise drawn from ``rng``.
    """
    covered = np.zeros(background.shape[:2], dtype=bool)
    visible: list[np.ndarray | None] = [None] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        vis = layer.mask & ~covered
        if vis.sum() < max(min_visible_area, min_visible_fraction * layer.full_area, 1.0):
            continue
        visible[i] = vis
        covered |= layer.mask
    canvas = background.copy()
    for layer, vis in zip(layers, visible):
        if vis is not None:
            ys, xs = np.nonzero(layer.mask)
            canvas[ys, xs] = texture_values(layer.texture, xs, ys, layer.origin, layer.angle)
    if noise_std > 0.0:
        if rng is None:
            raise ValueError("render_layers: noise_std > 0 needs a random generator (rng)")
        canvas = canvas + rng.normal(0.0, noise_std, canvas.shape).astype(np.float32)
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8), visible


# ------------------------------------------------------------------------------------------------
# Mask encodings
# ------------------------------------------------------------------------------------------------
def mask_to_rle(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a mask [H, W] with ``counts`` as str (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def mask_to_uncompressed_rle(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE (``counts`` a list of run lengths, column-major, starting with zeros)."""
    flat = mask.astype(bool).ravel(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def mask_bbox(mask: np.ndarray) -> list[float]:
    """COCO box [x, y, w, h] (pixel extents, as pycocotools ``toBbox``) of a non-empty mask."""
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]
