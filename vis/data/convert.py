"""Convert video instance annotations into YouTube-VIS JSON (schema: docs/design.md#datasets).

Accepted inputs
---------------
1. Per-frame COCO annotations with a track id, in one of two layouts:

   a. One JSON in the "CocoVID" layout (as mmtracking stores YouTube-VIS / OVIS)::

        {"videos": [{"id", "name"}],                       optional: names the videos
         "images": [{"id", "file_name", "height", "width", "video_id", "frame_id"}],
         "annotations": [{"id", "image_id", "category_id", "instance_id", "segmentation",
                          "bbox" (optional), "area" (optional), "iscrowd" (optional)}],
         "categories": [{"id", "name"}]}

      ``frame_id`` orders the frames of a video; ``instance_id`` (or another key, ``track_key``)
      identifies an object across the frames of its video.

   b. A folder with one sub-folder per video, each holding one COCO JSON per frame
      (``root/<video name>/<frame>.json``, frames in natural file order unless the image has a
      ``frame_id``), each with exactly one entry in ``images``, that frame's ``annotations`` (with the
      track id) and ``categories`` (the same id -> name in every file). The video id is the image's
      ``video_id`` when present, else the folder's position (1, 2, ... in natural order).

2. Mask PNG folders (DAVIS / YouTube-VOS style): ``masks_root/<video>/<frame>.png``, each pixel the
   instance id of the video's object (0 background; palette, 8-bit or 16-bit PNGs), plus a mapping
   from instance id to category in the YouTube-VOS ``meta.json`` layout::

        {"categories": [{"id", "name"}],                   optional; else sorted names -> 1..C
         "videos": {"<video>": {"id": 7 (optional), "objects": {"1": {"category": "person"}, ...}}}}

   An object may give ``"category_id"`` instead of ``"category"``. Frame file names in the output are
   ``<video>/<png stem><frame_suffix>`` (".jpg": the JPEGImages of the split).

Output: ``videos[{id, width, height, length, file_names}]`` (file names as given), ``annotations[{id,
video_id, category_id, iscrowd, segmentations, bboxes, areas}]`` with one entry per frame: compressed
RLE (counts a str) / [x, y, w, h] / area, or null where the object is absent; ``categories``. Annotation
ids are 1..N in video order, then track id order. Segmentations may come as polygons, uncompressed or
compressed RLE; boxes and areas are taken from the input when given, else computed from the mask.

The inverse exports (``ytvis_to_coco_frames``, ``write_coco_frame_folder``, ``ytvis_to_png_masks``)
write the layouts above; they make the round-trip tests and let YouTube-VIS data feed per-frame tools.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from ...image.atomic import write_json_atomic  # re-exported: tools import it from here
from ...image.rle import rle_problem, valid_polygon
from ..io.common import natural_key

logger = logging.getLogger(__name__)


@dataclass
class _Instance:
    category_id: int
    rle: dict  # compressed, counts as str
    bbox: list[float]
    area: float
    iscrowd: int


@dataclass
class _Video:
    """One video being assembled: its frames' file names and, per frame, {track id: instance}."""

    id: int | None
    name: str
    height: int = 0
    width: int = 0
    file_names: list[str] = field(default_factory=list)
    frames: list[dict[Any, _Instance]] = field(default_factory=list)

    def add_frame(self, file_name: str, height: int, width: int, where: str) -> dict[Any, _Instance]:
        if not self.file_names:
            self.height, self.width = height, width
        elif (height, width) != (self.height, self.width):
            raise ValueError(f"{where}: frame is {width}x{height}, the video's first frame is "
                             f"{self.width}x{self.height}")
        self.file_names.append(file_name)
        self.frames.append({})
        return self.frames[-1]


# --------------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None



def _require(entry: Any, keys: tuple[str, ...], what: str, where: str) -> None:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: each {what} must be an object, got {type(entry).__name__}")
    missing = [k for k in keys if k not in entry]
    if missing:
        ident = f" {entry['id']}" if "id" in entry else ""
        raise ValueError(f"{where}: {what}{ident} has no '{missing[0]}'")


def _categories(raw: Any, where: str) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{where}: 'categories' must be a non-empty list")
    for cat in raw:
        _require(cat, ("id", "name"), "category", where)
    ids = [int(c["id"]) for c in raw]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{where}: duplicate category ids")
    # every field is kept (e.g. "supercategory"); only the id is normalised to int
    return sorted(({**c, "id": int(c["id"])} for c in raw), key=lambda c: c["id"])


def _compressed_rle(segmentation: Any, height: int, width: int, where: str) -> dict:
    """Polygons / uncompressed RLE / compressed RLE -> compressed RLE {"size", "counts": str}."""
    try:
        if isinstance(segmentation, list):
            if not segmentation:
                raise ValueError("empty polygon list")
            if not all(valid_polygon(p) for p in segmentation):
                raise ValueError("a polygon must be a flat list of >= 3 (x, y) number pairs")
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
            problem = rle_problem(segmentation["counts"], height, width)
            if problem:
                raise ValueError(problem)
            rle = mask_utils.frPyObjects(segmentation, height, width)
        elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), (str, bytes)):
            if list(segmentation.get("size", [])) != [height, width]:
                raise ValueError(f"RLE size {segmentation.get('size')} differs from the frame's {[height, width]}")
            counts = segmentation["counts"]
            problem = rle_problem(counts, height, width)
            if problem:  # pycocotools would decode it to an arbitrary mask
                raise ValueError(problem)
            rle = {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        else:
            raise ValueError(f"unsupported segmentation {str(segmentation)[:60]}")
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where}: {err}") from None
    counts = rle["counts"]
    return {"size": [height, width], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def _instance(ann: dict, height: int, width: int, where: str) -> _Instance:
    rle = _compressed_rle(ann["segmentation"], height, width, where)
    coco_rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    bbox = ann.get("bbox")
    bbox = [float(v) for v in bbox] if isinstance(bbox, list) and len(bbox) == 4 else \
        [float(v) for v in mask_utils.toBbox(coco_rle)]
    area = ann.get("area")
    area = area if isinstance(area, (int, float)) else int(mask_utils.area(coco_rle))
    return _Instance(int(ann["category_id"]), rle, bbox, area, int(ann.get("iscrowd", 0)))


def _assemble(videos: list[_Video], categories: list[dict], where: str) -> dict:
    """YouTube-VIS dict from assembled videos: one annotation per (video, track id). Videos without an id
    get their position (1, 2, ...); videos are written in id order."""
    known = {c["id"] for c in categories}
    ids = [video.id if video.id is not None else index for index, video in enumerate(videos, start=1)]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{where}: duplicate video ids")
    out_videos, annotations = [], []
    for video_id, video in sorted(zip(ids, videos), key=lambda pair: pair[0]):
        out_videos.append({"id": video_id, "width": video.width, "height": video.height,
                           "length": len(video.file_names), "file_names": video.file_names})
        for track in sorted({t for frame in video.frames for t in frame}, key=lambda t: (str(type(t)), t)):
            present = [frame[track] for frame in video.frames if track in frame]
            cats = sorted({inst.category_id for inst in present})
            if len(cats) > 1:
                raise ValueError(f"{where}: video '{video.name}', track {track}: several categories {cats}")
            if cats[0] not in known:
                raise ValueError(f"{where}: video '{video.name}', track {track}: unknown category id {cats[0]}")
            annotations.append({
                "id": len(annotations) + 1, "video_id": video_id, "category_id": cats[0],
                "iscrowd": int(any(inst.iscrowd for inst in present)),
                "segmentations": [frame[track].rle if track in frame else None for frame in video.frames],
                "bboxes": [frame[track].bbox if track in frame else None for frame in video.frames],
                "areas": [frame[track].area if track in frame else None for frame in video.frames],
            })
    return {"videos": out_videos, "annotations": annotations, "categories": categories}


def _add_annotations(frame: dict, anns: list[dict], video: _Video, track_key: str, where: str) -> None:
    for ann in anns:
        _require(ann, ("category_id", "segmentation", track_key), "annotation", where)
        track = ann[track_key]
        if track in frame:
            raise ValueError(f"{where}: track {track_key}={track} appears twice in one frame")
        frame[track] = _instance(ann, video.height, video.width, f"{where}: annotation {ann.get('id', '?')}")


# --------------------------------------------------------------------------------------------------
# 1a. One COCO JSON with video ids
# --------------------------------------------------------------------------------------------------
def coco_video_to_ytvis(data: dict, where: str = "<input>", track_key: str = "instance_id") -> dict:
    """Convert a CocoVID-layout dict (module docstring, 1a) to a YouTube-VIS dict."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: top level must be an object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{where}: missing list '{key}'")
    categories = _categories(data["categories"], where)
    names = {int(v["id"]): str(v["name"]) for v in data.get("videos") or [] if isinstance(v, dict) and "id" in v}
    per_video: dict[int, list[dict]] = {}
    for image in data["images"]:
        _require(image, ("id", "file_name", "height", "width", "video_id", "frame_id"), "image", where)
        if not isinstance(image["video_id"], int) or isinstance(image["video_id"], bool):
            raise ValueError(f"{where}: image {image['id']}: video_id must be an integer, got {image['video_id']!r}")
        per_video.setdefault(image["video_id"], []).append(image)
    anns_by_image: dict[Any, list[dict]] = {}
    for ann in data["annotations"]:
        _require(ann, ("image_id",), "annotation", where)
        anns_by_image.setdefault(ann["image_id"], []).append(ann)
    image_ids = {image["id"] for image in data["images"]}
    orphan = next((a for a in data["annotations"] if a["image_id"] not in image_ids), None)
    if orphan is not None:
        raise ValueError(f"{where}: annotation {orphan.get('id', '?')} refers to unknown image {orphan['image_id']}")
    videos = []
    for video_id in sorted(per_video):
        images = sorted(per_video[video_id], key=lambda im: im["frame_id"])
        video = _Video(video_id, names.get(video_id, str(video_id)))
        for image in images:
            frame_where = f"{where}: image {image['id']}"
            frame = video.add_frame(str(image["file_name"]), int(image["height"]), int(image["width"]), frame_where)
            _add_annotations(frame, anns_by_image.get(image["id"], []), video, track_key, frame_where)
        videos.append(video)
    return _assemble(videos, categories, where)


# --------------------------------------------------------------------------------------------------
# 1b. A folder of per-frame COCO JSONs
# --------------------------------------------------------------------------------------------------
def coco_frame_folder_to_ytvis(root: str | os.PathLike, track_key: str = "instance_id") -> dict:
    """Convert ``root/<video>/<frame>.json`` (module docstring, 1b) to a YouTube-VIS dict."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: folder not found")
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))
    if not folders:
        raise ValueError(f"{root}: no video sub-folders (expected <root>/<video>/<frame>.json)")
    categories: list[dict] | None = None
    videos = []
    for index, folder in enumerate(folders, start=1):
        files = sorted(folder.glob("*.json"), key=lambda p: natural_key(p.name))
        if not files:
            raise ValueError(f"{folder}: no per-frame JSON files")
        frames = []
        for path in files:
            data = _read_json(path)
            if not isinstance(data, dict) or not isinstance(data.get("images"), list) or len(data["images"]) != 1:
                raise ValueError(f"{path}: expected a COCO JSON with exactly one entry in 'images'")
            image = data["images"][0]
            _require(image, ("file_name", "height", "width"), "image", str(path))
            cats = _categories(data.get("categories"), str(path))
            if categories is None:
                categories = cats
            elif cats != categories:
                raise ValueError(f"{path}: 'categories' differ from those of the first file ({files[0]})")
            frames.append((image.get("frame_id", len(frames)), path, image, data.get("annotations") or []))
        frames.sort(key=lambda f: f[0])
        video_ids = {f[2].get("video_id") for f in frames}
        if len(video_ids) != 1:
            raise ValueError(f"{folder}: frames carry different video_id values {sorted(map(str, video_ids))}")
        given = video_ids.pop()
        video = _Video(int(given) if given is not None else index, folder.name)
        for _, path, image, anns in frames:
            frame = video.add_frame(str(image["file_name"]), int(image["height"]), int(image["width"]), str(path))
            if not isinstance(anns, list):
                raise ValueError(f"{path}: 'annotations' must be a list")
            _add_annotations(frame, anns, video, track_key, str(path))
        videos.append(video)
    return _assemble(videos, categories or [], str(root))


def load_coco_annotations(path: str | os.PathLike, track_key: str = "instance_id") -> dict:
    """A CocoVID JSON file (1a) or a folder of per-frame COCO JSONs (1b) -> YouTube-VIS dict."""
    path = Path(path)
    if path.is_dir():
        return coco_frame_folder_to_ytvis(path, track_key)
    return coco_video_to_ytvis(_read_json(path), str(path), track_key)


# --------------------------------------------------------------------------------------------------
# 2. Mask PNG folders + instance -> category mapping
# --------------------------------------------------------------------------------------------------
def read_id_png(path: Path) -> np.ndarray:
    """An instance-id PNG as an integer array [H, W] (palette indices, 8- or 16-bit values)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L", "I;16", "I", "1"):
                raise ValueError(f"{path}: PNG mode {image.mode} holds colours, expected instance ids "
                                 "(palette, 8-bit or 16-bit grayscale)")
            return np.asarray(image).astype(np.int64)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: cannot read the PNG ({err})") from None


def _meta_categories(meta: dict, where: str) -> tuple[list[dict], dict[str, int]]:
    if meta.get("categories") is not None:
        categories = _categories(meta["categories"], where)
    else:
        names = sorted({str(obj.get("category")) for video in meta["videos"].values()
                        for obj in (video.get("objects") or {}).values() if "category" in obj})
        if not names:
            raise ValueError(f"{where}: no 'categories' list and no object names a 'category'")
        categories = [{"id": k, "name": n} for k, n in enumerate(names, start=1)]
    return categories, {c["name"]: c["id"] for c in categories}


def png_masks_to_ytvis(masks_root: str | os.PathLike, meta_path: str | os.PathLike, frame_suffix: str = ".jpg") -> dict:
    """Convert instance-id PNG folders + a YouTube-VOS style ``meta.json`` (module docstring, 2)."""
    root, meta_path = Path(masks_root), Path(meta_path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: folder not found")
    meta = _read_json(meta_path)
    if not isinstance(meta, dict) or not isinstance(meta.get("videos"), dict):
        raise ValueError(f"{meta_path}: expected an object with 'videos': {{name: {{'objects': ...}}}}")
    categories, by_name = _meta_categories(meta, str(meta_path))
    folders = {p.name: p for p in root.iterdir() if p.is_dir()}
    missing = [name for name in meta["videos"] if name not in folders]
    if missing:
        raise ValueError(f"{meta_path}: video '{missing[0]}' has no mask folder in {root}")
    videos = []
    for name in sorted(folders, key=natural_key):
        if name not in meta["videos"]:
            raise ValueError(f"{folders[name]}: video not listed in {meta_path}")
        entry = meta["videos"][name]
        objects = entry.get("objects") or {}
        cats = {}
        for key, obj in objects.items():
            cat = obj.get("category_id", by_name.get(str(obj.get("category"))))
            if cat is None:
                raise ValueError(f"{meta_path}: video '{name}' object {key}: unknown category {obj.get('category')!r}")
            cats[int(key)] = int(cat)
        files = sorted(folders[name].glob("*.png"), key=lambda p: natural_key(p.name))
        if not files:
            raise ValueError(f"{folders[name]}: no PNG files")
        video = _Video(int(entry["id"]) if "id" in entry else None, name)
        for path in files:
            ids = read_id_png(path)
            frame = video.add_frame(f"{name}/{path.stem}{frame_suffix}", ids.shape[0], ids.shape[1], str(path))
            for inst in np.unique(ids[ids > 0]).tolist():
                if inst not in cats:
                    raise ValueError(f"{path}: instance id {inst} has no category in {meta_path}")
                rle = mask_utils.encode(np.asfortranarray((ids == inst).astype(np.uint8)))
                frame[inst] = _Instance(cats[inst], {"size": [ids.shape[0], ids.shape[1]],
                                                      "counts": rle["counts"].decode("ascii")},
                                        [float(v) for v in mask_utils.toBbox(rle)], int(mask_utils.area(rle)), 0)
        videos.append(video)
    return _assemble(videos, categories, str(meta_path))


# --------------------------------------------------------------------------------------------------
# Exports (YouTube-VIS -> the layouts above)
# --------------------------------------------------------------------------------------------------
def _video_names(ytvis: dict) -> dict[int, str]:
    """Video id -> name: the folder of its first frame (YouTube-VIS file names are <video>/<frame>)."""
    return {v["id"]: (Path(v["file_names"][0]).parent.name or str(v["id"])) for v in ytvis["videos"]}


def _check_ytvis(ytvis: dict, where: str) -> None:
    """The parts of a labelled YouTube-VIS dict the exports read; ValueError naming the first problem."""
    if not isinstance(ytvis, dict) or not isinstance(ytvis.get("videos"), list):
        raise ValueError(f"{where}: not a YouTube-VIS dict (needs a 'videos' list)")
    category_ids = {cat["id"] for cat in _categories(ytvis.get("categories"), where)}
    lengths = {}
    for video in ytvis["videos"]:
        _require(video, ("id", "width", "height", "file_names"), "video", where)
        if not video["file_names"]:
            raise ValueError(f"{where}: video {video['id']} has no file_names")
        if "length" in video and video["length"] != len(video["file_names"]):
            raise ValueError(f"{where}: video {video['id']} has length {video['length']} but "
                             f"{len(video['file_names'])} file_names")
        lengths[video["id"]] = len(video["file_names"])
    seen: set = set()
    for ann in ytvis.get("annotations") or []:
        _require(ann, ("id", "video_id", "category_id", "segmentations"), "annotation", where)
        if ann["id"] in seen:  # keyed by id downstream (instance_id, YTVOS index): one would be lost
            raise ValueError(f"{where}: duplicate annotation id {ann['id']}")
        seen.add(ann["id"])
        if ann["video_id"] not in lengths:
            raise ValueError(f"{where}: annotation {ann['id']} refers to unknown video {ann['video_id']}")
        if ann["category_id"] not in category_ids:
            raise ValueError(f"{where}: annotation {ann['id']} has category_id {ann['category_id']}, "
                             f"which is not in 'categories'")
        for key in ("segmentations", "bboxes", "areas"):
            if key in ann and len(ann[key]) != lengths[ann["video_id"]]:
                raise ValueError(f"{where}: annotation {ann['id']} has {len(ann[key])} {key} for a video of "
                                 f"{lengths[ann['video_id']]} frames")


def ytvis_to_coco_frames(ytvis: dict, where: str = "<input>") -> dict:
    """A YouTube-VIS dict with annotations -> one CocoVID dict (1a): one image per listed frame (with
    ``video_id``, ``frame_id``), one annotation per non-null frame entry with ``instance_id`` = the
    YouTube-VIS annotation id; boxes and areas computed from the mask where the input has none."""
    _check_ytvis(ytvis, where)
    names = _video_names(ytvis)
    videos = [{"id": v["id"], "name": names[v["id"]]} for v in ytvis["videos"]]
    images, image_ids = [], {}
    for v in ytvis["videos"]:
        for t, file_name in enumerate(v["file_names"]):
            image_ids[v["id"], t] = len(images) + 1
            images.append({"id": len(images) + 1, "file_name": file_name, "height": v["height"], "width": v["width"],
                           "video_id": v["id"], "frame_id": t})
    sizes = {v["id"]: (v["height"], v["width"]) for v in ytvis["videos"]}
    annotations = []
    for ann in ytvis.get("annotations") or []:
        frames = len(ann["segmentations"])
        bboxes, areas = ann.get("bboxes") or [None] * frames, ann.get("areas") or [None] * frames
        for t, seg in enumerate(ann["segmentations"]):
            if seg is None:
                continue
            inst = _instance({"segmentation": seg, "category_id": ann["category_id"], "bbox": bboxes[t],
                              "area": areas[t]}, *sizes[ann["video_id"]], f"{where}: annotation {ann['id']} frame {t}")
            annotations.append({"id": len(annotations) + 1, "image_id": image_ids[ann["video_id"], t],
                                "category_id": ann["category_id"], "instance_id": ann["id"], "segmentation": seg,
                                "bbox": inst.bbox, "area": inst.area, "iscrowd": ann.get("iscrowd", 0)})
    return {"videos": videos, "images": images, "annotations": annotations, "categories": ytvis["categories"]}


def write_coco_frame_folder(coco: dict, out_dir: str | os.PathLike) -> Path:
    """Write a CocoVID dict as the per-frame folder layout (1b): ``out_dir/<video>/<frame stem>.json``."""
    out = Path(out_dir)
    names = {v["id"]: v["name"] for v in coco.get("videos") or []}
    anns: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        anns.setdefault(ann["image_id"], []).append(ann)
    for image in coco["images"]:
        folder = out / names.get(image["video_id"], str(image["video_id"]))
        folder.mkdir(parents=True, exist_ok=True)
        frame = {"images": [image], "annotations": anns.get(image["id"], []), "categories": coco["categories"]}
        write_json_atomic(frame, folder / f"{Path(image['file_name']).stem}.json")
    return out


def ytvis_to_png_masks(ytvis: dict, out_dir: str | os.PathLike, where: str = "<input>") -> Path:
    """Write instance-id PNGs (``out_dir/<video>/<frame stem>.png``, 8-bit, or 16-bit beyond 255 objects)
    and ``out_dir/meta.json`` (layout 2). Instance ids are 1..K per video in annotation order. PNGs hold
    one id per pixel: where masks overlap, the later annotation wins (logged). Returns the meta path."""
    from PIL import Image

    _check_ytvis(ytvis, where)
    out = Path(out_dir)
    names = _video_names(ytvis)
    cat_names = {c["id"]: c["name"] for c in ytvis["categories"]}
    meta = {"categories": ytvis["categories"], "videos": {}}
    by_video: dict[int, list[dict]] = {}
    for ann in ytvis.get("annotations") or []:
        by_video.setdefault(ann["video_id"], []).append(ann)
    for v in ytvis["videos"]:
        folder = out / names[v["id"]]
        folder.mkdir(parents=True, exist_ok=True)
        tracks = sorted(by_video.get(v["id"], []), key=lambda a: a["id"])
        meta["videos"][names[v["id"]]] = {"id": v["id"], "objects": {
            str(k): {"category": cat_names[a["category_id"]]} for k, a in enumerate(tracks, start=1)}}
        dtype = np.uint8 if len(tracks) < 256 else np.uint16
        for t, file_name in enumerate(v["file_names"]):
            ids = np.zeros((v["height"], v["width"]), dtype=dtype)
            for k, ann in enumerate(tracks, start=1):
                seg = ann["segmentations"][t]
                if seg is None:
                    continue
                rle = _compressed_rle(seg, v["height"], v["width"], f"annotation {ann['id']}")
                mask = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)
                if (ids[mask] > 0).any():
                    logger.warning("video %s frame %d: annotation %d overlaps another; PNG keeps one id per pixel",
                                   names[v["id"]], t, ann["id"])
                ids[mask] = k
            Image.fromarray(ids).save(folder / f"{Path(file_name).stem}.png")
    return write_json_atomic(meta, out / "meta.json")
