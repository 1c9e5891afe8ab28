"""YouTube-VIS results: schema validation, the ``results.zip`` writer and a reader for .json/.zip.

A YouTube-VIS result file is a JSON list with one record per predicted video instance (track):

    {"video_id": int, "category_id": int, "score": float in [0, 1],
     "segmentations": [RLE | null] * video.length}

where each RLE is a *compressed* COCO RLE ``{"size": [height, width], "counts": str}`` and ``null``
marks a frame where the instance is absent. The evaluation server expects a zip with ``results.json``
at the archive root (YouTube-VIS challenge instructions; docs/design.md#datasets). The official
loader (youtubevos/cocoapi ``YTVOS.loadRes``) asserts that every result's video is in the split and
only reads compressed RLEs (``maskUtils.area`` on a list ``counts`` fails), hence the checks below.
"""
from __future__ import annotations

import json
import logging
import math
import numbers
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

logger = logging.getLogger(__name__)

RESULTS_NAME = "results.json"  # name the evaluation server reads at the archive root
_RESULT_KEYS = ("video_id", "category_id", "score", "segmentations")


def video_shape(video: Mapping[str, Any]) -> tuple[int, int, int]:
    """(height, width, length) of a YouTube-VIS ``videos[]`` record.

    ``length`` is the ``length`` field, or ``len(file_names)`` when the field is absent.
    Raises ValueError naming the video when a field is missing or not a positive integer.
    """
    if not isinstance(video, Mapping) or "id" not in video:
        raise ValueError(f"video record {video!r:.80} has no 'id'")
    length = video.get("length")
    if length is None and isinstance(video.get("file_names"), list):
        length = len(video["file_names"])
    shape = (video.get("height"), video.get("width"), length)
    for name, value in zip(("height", "width", "length"), shape):
        if not _is_int(value) or value <= 0:
            raise ValueError(f"video {video['id']!r}: '{name}' must be a positive integer, got {value!r}")
    return int(shape[0]), int(shape[1]), int(shape[2])


def category_id_set(categories: Iterable[Mapping[str, Any] | int]) -> set[int]:
    """Category ids from a ``categories[]`` list (dicts with 'id') or from plain integer ids."""
    ids = set()
    for cat in categories:
        cat_id = cat.get("id") if isinstance(cat, Mapping) else cat
        if not _is_int(cat_id):
            raise ValueError(f"category {cat!r:.80} has no integer 'id'")
        ids.add(int(cat_id))
    return ids


def validate_results(
    results: Sequence[Mapping[str, Any]],
    videos: Sequence[Mapping[str, Any]],
    categories: Iterable[Mapping[str, Any] | int],
    *,
    warn_missing_videos: bool = True,
) -> None:
    """Check YouTube-VIS result records against a split; raise ValueError naming the first problem.

    Args:
        results: the result records (schema in the module docstring).
        videos: the split's ``videos[]`` (id, height, width, length or file_names).
        categories: the split's ``categories[]`` (dicts with 'id') or the valid category ids.
        warn_missing_videos: log a warning when some videos of the split have no result at all
            (legal for the server, but usually a bug in the caller).

    Raises:
        ValueError: message ``result <index> (video <id>): <problem>`` for the first defect found:
            unknown video id, unknown category id, a score that is not a finite number in [0, 1],
            a segmentation list whose length differs from the video length, a frame that is neither
            null nor a compressed RLE dict, or an RLE whose size differs from [height, width].
    """
    if not isinstance(results, list):
        raise ValueError(f"results must be a list of records, got {type(results).__name__}")
    shapes = {}
    for video in videos:
        shape = video_shape(video)
        shapes[video["id"]] = shape
    valid_categories = category_id_set(categories)
    seen_videos = set()
    for index, record in enumerate(results):
        if not isinstance(record, Mapping):
            raise ValueError(f"result {index}: expected an object, got {type(record).__name__}")
        missing = [key for key in _RESULT_KEYS if key not in record]
        if missing:
            raise ValueError(f"result {index}: missing key(s) {missing}")
        video_id = record["video_id"]
        where = f"result {index} (video {video_id!r})"
        try:
            height, width, length = shapes[video_id]
        except (KeyError, TypeError):
            raise ValueError(f"{where}: video_id is not in the split") from None
        seen_videos.add(video_id)
        category_id = record["category_id"]
        if not _is_int(category_id) or int(category_id) not in valid_categories:
            raise ValueError(f"{where}: category_id {category_id!r} is not one of the split's categories "
                             f"{sorted(valid_categories)[:10]}{'...' if len(valid_categories) > 10 else ''}")
        score = record["score"]
        if not _is_real(score) or not math.isfinite(float(score)) or not 0.0 <= float(score) <= 1.0:
            raise ValueError(f"{where}: score must be a finite number in [0, 1], got {score!r}")
        segmentations = record["segmentations"]
        if not isinstance(segmentations, list) or len(segmentations) != length:
            got = len(segmentations) if isinstance(segmentations, list) else type(segmentations).__name__
            raise ValueError(f"{where}: 'segmentations' must be a list of {length} entries "
                             f"(one per frame), got {got}")
        for frame, rle in enumerate(segmentations):
            if rle is None:
                continue
            if type(rle) is not dict or "counts" not in rle or "size" not in rle:
                raise ValueError(f"{where}, frame {frame}: expected null or an RLE dict with 'size' "
                                 f"and 'counts', got {rle!r:.80}")
            size = rle["size"]
            if not isinstance(size, (list, tuple)) or len(size) != 2 or size[0] != height or size[1] != width:
                raise ValueError(f"{where}, frame {frame}: RLE size {size!r} differs from the video "
                                 f"size [{height}, {width}]")
            if not isinstance(rle["counts"], str):
                raise ValueError(f"{where}, frame {frame}: RLE 'counts' must be a str (compressed RLE), "
                                 f"got {type(rle['counts']).__name__}")
    missing_videos = len(shapes) - len(seen_videos)
    if warn_missing_videos and missing_videos > 0:
        logger.warning("%d of %d videos of the split have no result", missing_videos, len(shapes))


def write_results_zip(results: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write ``results`` as ``results.json`` at the root of the zip ``path``, atomically.

    The archive is written to a temporary file in the destination folder and renamed over ``path``
    only once complete, so an interrupted run never leaves a truncated zip. Numpy scalars in the
    records are written as plain numbers. Returns the path written.
    """
    path = Path(path)
    payload = json.dumps(list(results), separators=(",", ":"), default=_json_default)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(RESULTS_NAME, payload)
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
        raise
    return path


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Load result records from ``results.json`` or from a zip holding ``results.json`` at its root.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: naming the file, for an unknown extension, a zip without a root ``results.json``,
            a corrupt zip, malformed JSON or a top-level value that is not a list.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                if RESULTS_NAME not in names:
                    raise ValueError(f"{path}: no '{RESULTS_NAME}' at the archive root (found {names[:5]})")
                raw = archive.read(RESULTS_NAME)
        except zipfile.BadZipFile as err:
            raise ValueError(f"{path}: not a valid zip archive ({err})") from None
    elif suffix == ".json":
        raw = path.read_bytes()
    else:
        raise ValueError(f"{path}: expected a .json or .zip file")
    try:
        results = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: malformed JSON ({err})") from None
    if not isinstance(results, list):
        raise ValueError(f"{path}: expected a JSON list of result records, got {type(results).__name__}")
    return results


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _json_default(value: Any) -> Any:
    """Turn numpy scalars/arrays (scores, ids) into JSON numbers/lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def in_split_order(shards: Sequence[Sequence[Mapping[str, Any]]], videos: Sequence[Any]) -> list[dict]:
    """Records of several shards (each in its own video order) merged into the split's video order, each
    video's records in the order they were made: what one process tracking every video returns."""
    by_video: dict[Any, list[dict]] = {}
    for shard in shards:
        for record in shard:
            by_video.setdefault(record["video_id"], []).append(dict(record))
    return [record for video in videos for record in by_video.get(video.id, [])]
