"""YouTube-VIS evaluation: video-mask AP/AR exactly as the official YouTube-VIS API computes them.

Reference: youtubevos/cocoapi, ``PythonAPI/pycocotools/ytvos.py`` (``YTVOS.loadRes``, ``annToRLE``)
and ``PythonAPI/pycocotools/ytvoseval.py`` (``YTVOSeval``). This is an independent, vectorised
implementation of the same semantics (not the same code); every rule below is a fact of the official
code, cited at the place it is used:

- Evaluation unit = (video, category) over the split's sorted video ids and sorted category ids.
  Detections of a unit are sorted by descending score with a *stable* sort (mergesort: ties keep the
  order of the results list) and cut to the first 100 (``computeIoU``/``evaluateVid``).
- Video IoU = Σ_f |d_f ∩ g_f| / Σ_f |d_f ∪ g_f|; a frame where only one of the two is present adds
  that mask's area to the union; 0 when the union is empty (``computeIoU.iou_seq``). Crowd GT uses
  the same IoU (the crowd-aware ``maskUtils.iou`` call is commented out there).
- Track area = mean of the *truthy* per-frame areas (null and 0 skipped), 0 if none. For GT it is
  read from the ``areas`` field; for results ``loadRes`` computes it from the masks (``_toMask``).
  Area ranges all/small/medium/large = [0, 1e10], [0, 128²], [128², 256²], [256², 1e10], inclusive.
- A GT is ignored when ``iscrowd`` is truthy (any ``ignore`` field is overwritten) or its area is out
  of range. Greedy matching per IoU threshold in score order; a detection takes the unmatched
  (crowd: even matched) GT with the highest IoU ≥ threshold, ties going to the *later* GT; regular GTs
  are preferred over ignored ones (``evaluateVid``). A detection matched to an ignored GT, or
  unmatched and out of the area range, is ignored. A match to a GT whose ``id`` is 0 counts as no
  match in accumulation (``dtMatches`` stores the GT id and 0 means unmatched there).
- Accumulation per (category, area, maxDet) concatenates units in sorted video order, stable-sorts by
  score, and interpolates precision at 101 recall points; categories without a non-ignored GT stay -1
  and are left out of the means (``accumulate``/``summarize``).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from pycocotools import mask as mask_utils

from queryinst.cli import listing
from queryinst.image.rle import rle_problem
from queryinst.vis.eval.submission import category_id_set, validate_results, video_shape

logger = logging.getLogger(__name__)

# ytvoseval.Params.setDetParams: thresholds built with linspace (np.arange drifts).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
MAX_DETS = (1, 10, 100)
AREA_RANGES = ((0.0, 1e5**2), (0.0, 128.0**2), (128.0**2, 256.0**2), (256.0**2, 1e5**2))
AREA_LABELS = ("all", "small", "medium", "large")
STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")

_AREA_BATCH = 255  # RLEs per pycocotools.mask.area call (see _frame_areas)
_MATCH_CHUNK = 2_000_000  # bound on padded (units × dets × gts × areas × thresholds) per matching chunk


@dataclass
class _GroundTruth:
    """The parsed split. GT tracks are stored flat, in annotation order."""

    videos: list[dict[str, Any]]  # the split's video records, as given
    shapes: dict[Any, tuple[int, int, int]]  # video id -> (height, width, length)
    video_order: dict[Any, int]  # video id -> rank among sorted ids (ytvoseval: params.vidIds sorted)
    category_ids: list[int]  # sorted (ytvoseval: params.catIds = sorted(getCatIds()))
    gt_video: list[Any]  # [M] video id of each GT track
    gt_category: np.ndarray  # [M] int64 index into category_ids
    gt_rles: list[list[dict | None]]  # [M][length] RLE per frame, None where absent
    gt_ignore: np.ndarray  # [M, A] bool: crowd, or mean area outside AREA_RANGES[a]
    gt_crowd: np.ndarray  # [M] bool: may be matched by several detections
    gt_id_nonzero: np.ndarray  # [M] bool: a match to this GT counts in accumulation


def load_ytvis_gt(path: str | Path) -> dict[str, Any]:
    """Read a YouTube-VIS annotation JSON; FileNotFoundError/ValueError name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: malformed JSON ({err})") from None
    if not isinstance(data, dict) or "videos" not in data or "categories" not in data:
        raise ValueError(f"{path}: not a YouTube-VIS annotation file (needs 'videos' and 'categories')")
    return data


def evaluate_ytvis(gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """YouTube-VIS video-mask AP/AR of ``results`` on the annotated split ``gt``.

    Args:
        gt: the annotation JSON as a dict: ``videos``, ``categories`` and ``annotations`` (each with
            ``id``, ``video_id``, ``category_id``, ``segmentations`` [length] of RLE/polygons/null,
            optional ``areas`` [length] and ``iscrowd``).
        results: result records ``{video_id, category_id, score, segmentations}`` (see
            ``queryinst.vis.eval.submission``); validated first.

    Returns:
        The 12 official stats keyed by STAT_KEYS, as fractions in [0, 1]; -1.0 where undefined
        (no non-ignored GT in that setting), as the official ``summarize``.
    """
    return _evaluate(_parse_ground_truth(gt), results)


class YTVISEvaluator:
    """detectron2-style evaluator: ``reset()``, ``process(inputs, outputs)``, ``summarize()``.

    Args:
        gt: the annotation JSON (dict) of the split, parsed once here (ValueError if malformed).
    """

    def __init__(self, gt: Mapping[str, Any]) -> None:
        self._gt = _parse_ground_truth(gt)
        self._results: list[Mapping[str, Any]] = []

    def reset(self) -> None:
        """Forget the results gathered so far."""
        self._results = []

    def process(self, inputs: Sequence[Mapping[str, Any]], outputs: Sequence[Sequence[Mapping[str, Any]]]) -> None:
        """Gather the predicted instances of a batch of videos.

        Args:
            inputs: [B] video records, each with ``video_id`` (or ``id``).
            outputs: [B] lists of predicted instances of the matching video, each a result record
                ``{category_id, score, segmentations}``; ``video_id`` is filled from the input.
        """
        if len(inputs) != len(outputs):
            raise ValueError(f"process(): {len(inputs)} inputs but {len(outputs)} outputs")
        for video, instances in zip(inputs, outputs):
            video_id = video["video_id"] if "video_id" in video else video["id"]
            for instance in instances:
                if instance.get("video_id", video_id) != video_id:
                    raise ValueError(f"process(): instance of video {instance['video_id']!r} "
                                     f"given with input video {video_id!r}")
                self._results.append({**instance, "video_id": video_id})

    def summarize(self) -> dict[str, float]:
        """The 12 stats (STAT_KEYS) of everything processed since the last reset()."""
        return _evaluate(self._gt, self._results)

    def evaluate(self, results: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """The 12 stats of a complete result list, reusing the parsed split (ignores process())."""
        return _evaluate(self._gt, results)


def format_summary(stats: Mapping[str, float]) -> str:
    """The 12 stats as the official ``summarize`` prints them, one line each."""
    top = MAX_DETS[-1]
    layout = {  # key: (AP or AR, IoU label, area label, maxDets), in _summarizeDets order
        "AP": ("AP", "0.50:0.95", "all", top), "AP50": ("AP", "0.50", "all", top),
        "AP75": ("AP", "0.75", "all", top), "APs": ("AP", "0.50:0.95", "small", top),
        "APm": ("AP", "0.50:0.95", "medium", top), "APl": ("AP", "0.50:0.95", "large", top),
        "AR1": ("AR", "0.50:0.95", "all", MAX_DETS[0]), "AR10": ("AR", "0.50:0.95", "all", MAX_DETS[1]),
        "AR100": ("AR", "0.50:0.95", "all", top), "ARs": ("AR", "0.50:0.95", "small", top),
        "ARm": ("AR", "0.50:0.95", "medium", top), "ARl": ("AR", "0.50:0.95", "large", top),
    }
    rows = []
    for key in STAT_KEYS:
        kind, iou, area, max_det = layout[key]
        title = "Average Precision" if kind == "AP" else "Average Recall"
        rows.append(f" {title:<18} ({kind}) @[ IoU={iou:<9} | area={area:>6s} | maxDets={max_det:>3d} ] "
                    f"= {stats[key]:0.3f}")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- parsing


def _parse_ground_truth(gt: Mapping[str, Any]) -> _GroundTruth:
    """Check the split and convert every GT frame to an RLE; ValueError names the annotation."""
    if not isinstance(gt, Mapping) or not isinstance(gt.get("videos"), list) \
            or not isinstance(gt.get("categories"), list):
        raise ValueError("ground truth must be a dict with 'videos' and 'categories' lists")
    annotations = gt.get("annotations") or []
    shapes = {}
    for video in gt["videos"]:
        shapes[video["id"]] = video_shape(video)  # video_shape runs first and checks 'id'
    category_ids = sorted(category_id_set(gt["categories"]))
    category_index = {cat_id: k for k, cat_id in enumerate(category_ids)}
    seen_ids: set = set()
    skipped: list = []
    gt_video, gt_category, gt_rles, avg_areas, crowd, ignore, id_nonzero = [], [], [], [], [], [], []
    for index, ann in enumerate(annotations):
        if not isinstance(ann, Mapping) or "id" not in ann:
            raise ValueError(f"ground-truth annotation {index} has no 'id'")
        if ann["id"] in seen_ids:  # YTVOS.createIndex keys annotations by id: duplicates clobber
            raise ValueError(f"ground-truth annotation {index}: duplicate id {ann['id']!r}")
        seen_ids.add(ann["id"])
        video_id, category_id = ann.get("video_id"), ann.get("category_id")
        if video_id not in shapes or category_id not in category_index:
            skipped.append(ann["id"])  # getAnnIds(vidIds=params.vidIds, catIds=params.catIds) drops these
            continue
        height, width, length = shapes[video_id]
        where = f"ground-truth annotation {ann['id']!r} (video {video_id!r})"
        segmentations = ann.get("segmentations")
        if not isinstance(segmentations, list) or len(segmentations) != length:
            raise ValueError(f"{where}: 'segmentations' must be a list of {length} entries")
        rles = [_gt_frame_rle(seg, height, width, f"{where}, frame {f}") for f, seg in enumerate(segmentations)]
        areas = ann.get("areas")
        if areas is None:  # the official needs 'areas'; fall back to the mask areas loadRes would use
            areas = [None if rle is None else int(mask_utils.area(rle)) for rle in rles]
        # _toMask: avg_area = mean of the truthy entries of 'areas', 0 when there are none
        truthy = [a for a in areas if a]
        avg_area = float(np.asarray(truthy, dtype=np.float64).mean()) if truthy else 0.0
        iscrowd = ann.get("iscrowd", 0)
        gt_video.append(video_id)
        gt_category.append(category_index[category_id])
        gt_rles.append(rles)
        avg_areas.append(avg_area)
        ignore.append(bool(iscrowd))  # _prepare: gt['ignore'] = 'iscrowd' in gt and gt['iscrowd']
        crowd.append(int(iscrowd) != 0)  # evaluateVid: iscrowd = [int(o['iscrowd']) ...]
        id_nonzero.append(ann["id"] != 0)
    if skipped:
        logger.warning("%d ground-truth annotations are outside the split's videos/categories: ignored (ids %s)",
                       len(skipped), listing(skipped))
    avg = np.asarray(avg_areas, dtype=np.float64)
    out_of_range = _out_of_range(avg)  # [M, A]
    return _GroundTruth(
        videos=list(gt["videos"]),
        shapes=shapes,
        video_order={video_id: rank for rank, video_id in enumerate(sorted(shapes))},
        category_ids=category_ids,
        gt_video=gt_video,
        gt_category=np.asarray(gt_category, dtype=np.int64),
        gt_rles=gt_rles,
        gt_ignore=np.asarray(ignore, dtype=bool).reshape(-1, 1) | out_of_range,
        gt_crowd=np.asarray(crowd, dtype=bool),
        gt_id_nonzero=np.asarray(id_nonzero, dtype=bool),
    )


def _gt_frame_rle(seg: Any, height: int, width: int, where: str) -> dict | None:
    """One GT frame as a pycocotools RLE (YTVOS.annToRLE), None when absent (falsy in _toMask)."""
    if not seg:
        return None
    if isinstance(seg, list):  # polygons of one object: merged into one mask
        return mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
    if not isinstance(seg, Mapping) or "counts" not in seg or "size" not in seg:
        raise ValueError(f"{where}: expected null, polygons or an RLE dict, got {seg!r:.80}")
    size = seg["size"]
    if not isinstance(size, (list, tuple)) or len(size) != 2 or size[0] != height or size[1] != width:
        raise ValueError(f"{where}: RLE size {size!r} differs from the video size [{height}, {width}]")
    problem = rle_problem(seg["counts"], height, width)
    if problem:  # pycocotools would decode it to an arbitrary mask
        raise ValueError(f"{where}: {problem}")
    if isinstance(seg["counts"], list):  # uncompressed RLE, as in the YouTube-VIS train JSON
        return mask_utils.frPyObjects(dict(seg), height, width)
    return dict(seg)


def _out_of_range(area: np.ndarray) -> np.ndarray:
    """[N] mean track areas -> [N, A] bool, True where outside AREA_RANGES[a] (bounds inclusive)."""
    lo = np.array([r[0] for r in AREA_RANGES])
    hi = np.array([r[1] for r in AREA_RANGES])
    return (area[:, None] < lo) | (area[:, None] > hi)


# ----------------------------------------------------------------------------- evaluation


@dataclass
class _Detections:
    """The kept detections (top MAX_DETS[-1] per unit), flat, unit after unit in rank order."""

    video: list[Any]  # [N] video id
    category: np.ndarray  # [N] int64 index into category_ids
    rank: np.ndarray  # [N] int64 position in its unit after the stable score sort
    score: np.ndarray  # [N] float64
    rles: list[list[dict | None]]  # [N][length] compressed RLE or None per frame


def _evaluate(gt: _GroundTruth, results: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Validate ``results`` against the split, then match, accumulate and summarise."""
    validate_results(results, gt.videos, gt.category_ids, warn_missing_videos=False)
    dets = _top_detections(results, gt.category_ids)
    units, det_avg_area = _units(gt, dets)
    pick = _match_units(units, gt, len(dets.rles))  # [N, A, T] matched GT index or -1
    matched = pick >= 0
    safe = np.where(matched, pick, 0)
    gt_ignore = np.vstack([gt.gt_ignore, np.zeros((1, len(AREA_RANGES)), bool)])  # row M: dummy for -1
    gt_id_nonzero = np.append(gt.gt_id_nonzero, False)
    counted = matched & gt_id_nonzero[safe]  # evaluateVid: dtMatches = gt id; accumulate: dtm != 0
    det_ignore = (matched & gt_ignore[safe, np.arange(len(AREA_RANGES))[None, :, None]]) \
        | (~counted & _out_of_range(det_avg_area)[:, :, None])
    true_pos = counted & ~det_ignore
    false_pos = ~counted & ~det_ignore
    video_rank = np.array([gt.video_order[v] for v in dets.video], dtype=np.int64)
    num_regular_gt = np.zeros((len(gt.category_ids), len(AREA_RANGES)), dtype=np.int64)  # npig
    np.add.at(num_regular_gt, gt.gt_category, ~gt.gt_ignore)
    precision, recall = _accumulate(dets.category, video_rank, dets.rank, dets.score, true_pos, false_pos,
                                    num_regular_gt)
    return _summarize(precision, recall)


def _top_detections(results: Sequence[Mapping[str, Any]], category_ids: list[int]) -> _Detections:
    """Group results by (video, category) in list order, stable-sort each unit by descending score
    (mergesort, as computeIoU/evaluateVid) and keep its first MAX_DETS[-1]."""
    category_index = {cat_id: k for k, cat_id in enumerate(category_ids)}
    units: dict[tuple[Any, int], list[int]] = {}
    for index, record in enumerate(results):
        units.setdefault((record["video_id"], category_index[record["category_id"]]), []).append(index)
    video, category, rank, score, rles = [], [], [], [], []
    for (video_id, k), indices in units.items():
        scores = np.array([float(results[i]["score"]) for i in indices])
        for position, j in enumerate(np.argsort(-scores, kind="mergesort")[: MAX_DETS[-1]]):
            video.append(video_id)
            category.append(k)
            rank.append(position)
            score.append(scores[j])
            rles.append(results[indices[j]]["segmentations"])
    return _Detections(video=video, category=np.asarray(category, dtype=np.int64),
                       rank=np.asarray(rank, dtype=np.int64), score=np.asarray(score, dtype=np.float64), rles=rles)


def _units(gt: _GroundTruth, dets: _Detections) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
    """Video IoUs of every (video, category) unit holding both detections and GTs.

    Returns:
        units: (detection indices [D] in rank order, GT indices [G] in annotation order, IoU [D, G]).
        det_avg_area: [N] mean of the non-zero frame areas of each detection, 0 when none (loadRes).
    """
    num_dets = len(dets.rles)
    area_sum, area_count = np.zeros(num_dets), np.zeros(num_dets)
    dets_of_video: dict[Any, list[int]] = {}
    for i, video_id in enumerate(dets.video):
        dets_of_video.setdefault(video_id, []).append(i)
    gts_of_video: dict[Any, list[int]] = {}
    for j, video_id in enumerate(gt.gt_video):
        gts_of_video.setdefault(video_id, []).append(j)
    units = []
    for video_id, video_dets in dets_of_video.items():
        length = gt.shapes[video_id][2]
        frame_areas = _frame_areas([dets.rles[i] for i in video_dets], length)  # [D, L]
        area_sum[video_dets] = frame_areas.sum(1)
        area_count[video_dets] = (frame_areas > 0).sum(1)
        video_gts = gts_of_video.get(video_id, [])
        shared = set(dets.category[video_dets].tolist()) & set(gt.gt_category[video_gts].tolist())
        if not shared:
            continue
        det_idx = np.array([i for i in video_dets if dets.category[i] in shared])
        gt_idx = np.array([j for j in video_gts if gt.gt_category[j] in shared])
        ious = _video_ious([dets.rles[i] for i in det_idx], [gt.gt_rles[j] for j in gt_idx], length)
        for k in sorted(shared):
            rows, cols = np.flatnonzero(dets.category[det_idx] == k), np.flatnonzero(gt.gt_category[gt_idx] == k)
            units.append((det_idx[rows], gt_idx[cols], ious[np.ix_(rows, cols)]))
    det_avg_area = np.where(area_count > 0, area_sum / np.maximum(area_count, 1), 0.0)
    return units, det_avg_area


def _frame_areas(tracks: Sequence[Sequence[dict | None]], length: int) -> np.ndarray:
    """[D] tracks of per-frame RLE/None -> [D, length] int64 mask areas, 0 where absent."""
    areas = np.zeros((len(tracks), length), dtype=np.int64)
    where = [(d, f) for d, track in enumerate(tracks) for f, rle in enumerate(track) if rle is not None]
    if where:
        rows, cols = zip(*where)
        rles = [tracks[d][f] for d, f in where]
        # pycocotools' area() sizes a temporary uint8 array by the list length, which overflows
        # under numpy 2 beyond 255 RLEs (pycocotools 2.0.11): call it on slices.
        areas[rows, cols] = np.concatenate([mask_utils.area(rles[i: i + _AREA_BATCH])
                                            for i in range(0, len(rles), _AREA_BATCH)])
    return areas


def _video_ious(dets: Sequence[Sequence[dict | None]], gts: Sequence[Sequence[dict | None]], length: int) -> np.ndarray:
    """[D] × [G] tracks -> [D, G] video IoU Σ|d∩g| / Σ|d∪g| over the frames (computeIoU.iou_seq).

    Per frame, ``maskUtils.iou`` (non-crowd) gives i / (a + b - i) in double precision; the integer
    intersection is recovered exactly as round(iou · (a + b) / (1 + iou)). The union over the video is
    Σ area(d) + Σ area(g) - Σ i, which also covers frames where only one track is present.
    """
    det_areas, gt_areas = _frame_areas(dets, length), _frame_areas(gts, length)
    inter = np.zeros((len(dets), len(gts)))
    crowd_flags = [0] * len(gts)
    for f in range(length):
        rows = [d for d, track in enumerate(dets) if track[f] is not None]
        cols = [g for g, track in enumerate(gts) if track[f] is not None]
        if not rows or not cols:
            continue
        iou = mask_utils.iou([dets[d][f] for d in rows], [gts[g][f] for g in cols], crowd_flags[: len(cols)])
        area_sum = det_areas[rows, f][:, None] + gt_areas[cols, f][None, :]
        inter[np.ix_(rows, cols)] += np.rint(iou * area_sum / (1.0 + iou))
    union = det_areas.sum(1)[:, None] + gt_areas.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1.0), 0.0)


def _match_units(units: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], gt: _GroundTruth,
                 num_dets: int) -> np.ndarray:
    """Greedy matching of every unit at every area range and IoU threshold (evaluateVid).

    Units are processed in chunks, padded to the chunk's largest D and G, one detection rank at a time.
    Returns [num_dets, A, T] int64: the matched GT (flat index) of each detection, -1 if none.
    """
    num_areas, num_thrs = len(AREA_RANGES), len(IOU_THRESHOLDS)
    pick = np.full((num_dets, num_areas, num_thrs), -1, dtype=np.int64)
    order = sorted(range(len(units)), key=lambda u: -len(units[u][0]))
    start = 0
    while start < len(order):
        max_d, max_g, stop = len(units[order[start]][0]), 0, start
        while stop < len(order):
            g = max(max_g, len(units[order[stop]][1]))
            if stop > start and (stop - start + 1) * max_d * g * num_areas * num_thrs > _MATCH_CHUNK:
                break
            max_g, stop = g, stop + 1
        chunk = [units[u] for u in order[start:stop]]
        local = _greedy_match(chunk, gt, max_d, max_g)  # [U, A, T, max_d] local GT index or -1
        for u, (dets, gts, _) in enumerate(chunk):
            local_u = local[u, :, :, : len(dets)].transpose(2, 0, 1)  # [D, A, T]
            pick[dets] = np.where(local_u >= 0, gts[np.maximum(local_u, 0)], -1)
        start = stop
    return pick


def _greedy_match(chunk: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], gt: _GroundTruth,
                  max_d: int, max_g: int) -> np.ndarray:
    """Vectorised evaluateVid matching for U padded units -> [U, A, T, max_d] local GT index or -1.

    For each detection (score order) and threshold t the official loop scans the GTs sorted regular
    first (stable), skips matched non-crowd GTs, keeps the last GT whose IoU ≥ the best so far
    (starting at min(t, 1 - 1e-10)), and stops at the first ignored GT once a regular one is held.
    Equivalently: among eligible regular GTs with IoU ≥ t pick the max IoU, last on ties; only if
    there is none, do the same among eligible ignored GTs.
    """
    num_units, num_areas, num_thrs = len(chunk), len(AREA_RANGES), len(IOU_THRESHOLDS)
    ious = np.full((num_units, max_d, max_g), -1.0)
    num_valid_dets = np.zeros(num_units, dtype=np.int64)
    gt_valid = np.zeros((num_units, max_g), dtype=bool)
    ignore = np.zeros((num_units, num_areas, max_g), dtype=bool)
    crowd = np.zeros((num_units, max_g), dtype=bool)
    for u, (dets, gts, unit_ious) in enumerate(chunk):
        ious[u, : len(dets), : len(gts)] = unit_ious
        num_valid_dets[u] = len(dets)
        gt_valid[u, : len(gts)] = True
        ignore[u, :, : len(gts)] = gt.gt_ignore[gts].T
        crowd[u, : len(gts)] = gt.gt_crowd[gts]
    thresholds = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[None, None, :, None]  # [1, 1, T, 1]
    ignore = ignore[:, :, None, :]  # [U, A, 1, G]
    reusable = crowd[:, None, None, :]  # crowd GTs stay available after a match
    taken = np.zeros((num_units, num_areas, num_thrs, max_g), dtype=bool)
    pick = np.full((num_units, num_areas, num_thrs, max_d), -1, dtype=np.int64)
    g_index = np.arange(max_g)
    for r in range(max_d):
        iou_r = ious[:, r, None, None, :]  # [U, 1, 1, G]
        active = (num_valid_dets > r)[:, None, None, None] & gt_valid[:, None, None, :]
        eligible = active & (iou_r >= thresholds) & (~taken | reusable)  # [U, A, T, G]
        regular = eligible & ~ignore
        pool = np.where(regular.any(-1, keepdims=True), regular, eligible & ignore)
        values = np.where(pool, iou_r, -np.inf)
        best = pool & (values == values.max(-1, keepdims=True))
        last = np.where(best, g_index, -1).max(-1)  # [U, A, T]: last index among the best, -1 if none
        pick[..., r] = last
        u_i, a_i, t_i = np.nonzero(last >= 0)
        taken[u_i, a_i, t_i, last[u_i, a_i, t_i]] = True
    return pick


def _accumulate(category: np.ndarray, video_rank: np.ndarray, rank: np.ndarray, score: np.ndarray,
                true_pos: np.ndarray, false_pos: np.ndarray, num_regular_gt: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """ytvoseval.accumulate for all (category, area, maxDet) at once.

    Args:
        category, video_rank, rank, score: [N] per kept detection.
        true_pos, false_pos: [N, A, T] bool (ignored detections are neither).
        num_regular_gt: [K, A] number of non-ignored GTs ("npig").

    Returns:
        precision [T, R, K, A, M] and recall [T, K, A, M], -1 where a category has no regular GT.
    """
    num_cats, num_areas = num_regular_gt.shape
    num_thrs, num_rec = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    precision = -np.ones((num_thrs, num_rec, num_cats, num_areas, len(MAX_DETS)))
    recall = -np.ones((num_thrs, num_cats, num_areas, len(MAX_DETS)))
    # Concatenation in sorted-video order, then a stable score sort == lexsort by (-score, video, rank).
    order = np.lexsort((rank, video_rank, -score, category))
    bounds = np.searchsorted(category[order], np.arange(num_cats + 1))
    for k in range(num_cats):
        areas = np.flatnonzero(num_regular_gt[k] > 0)  # npig == 0 -> stays -1
        if areas.size == 0:
            continue
        npig = num_regular_gt[k, areas]  # [A']
        # Smallest TP count c with c / npig >= recall threshold, in the same float arithmetic as rc.
        need = np.stack([np.searchsorted(np.arange(n + 1) / n, RECALL_THRESHOLDS, side="left") for n in npig])
        need = np.repeat(need, num_thrs, axis=0)  # [A'·T, R]
        segment = order[bounds[k]: bounds[k + 1]]
        for m, max_det in enumerate(MAX_DETS):
            dets = segment[rank[segment] < max_det]
            n = dets.size
            if n == 0:  # no detection: recall 0, precision 0 everywhere
                precision[:, :, k, areas, m] = 0.0
                recall[:, k, areas, m] = 0.0
                continue
            rows = len(areas) * num_thrs
            tp = np.cumsum(true_pos[dets][:, areas].reshape(n, rows).T, axis=1, dtype=np.float64)  # [A'·T, n]
            fp = np.cumsum(false_pos[dets][:, areas].reshape(n, rows).T, axis=1, dtype=np.float64)
            rc_last = tp[:, -1] / np.repeat(npig, num_thrs)
            pr = tp / (fp + tp + np.spacing(1))
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # precision envelope
            # searchsorted(rc, recThrs, 'left') per row == first position where tp >= need; rows are
            # offset by integers so one searchsorted over the flattened counts is exact.
            offsets = np.arange(rows) * (n + 1)
            flat = (tp + offsets[:, None]).ravel()
            query = np.minimum(need, n + 1) + offsets[:, None]
            pos = np.searchsorted(flat, query.ravel(), side="left").reshape(rows, num_rec)
            pos -= (np.arange(rows) * n)[:, None]
            q = np.where(pos < n, np.take_along_axis(pr, np.minimum(pos, n - 1), axis=1), 0.0)
            precision[:, :, k, areas, m] = q.reshape(len(areas), num_thrs, num_rec).transpose(1, 2, 0)
            recall[:, k, areas, m] = rc_last.reshape(len(areas), num_thrs).T
    return precision, recall


def _summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """ytvoseval.summarize._summarizeDets: means over the entries > -1, -1 when there are none."""
    def mean(values: np.ndarray) -> float:
        valid = values[values > -1]
        return float(np.mean(valid)) if valid.size else -1.0

    all_, small, medium, large = range(4)
    top = len(MAX_DETS) - 1
    return {
        "AP": mean(precision[:, :, :, all_, top]),
        "AP50": mean(precision[0, :, :, all_, top]),  # IOU_THRESHOLDS[0] == .5
        "AP75": mean(precision[5, :, :, all_, top]),  # IOU_THRESHOLDS[5] == .75
        "APs": mean(precision[:, :, :, small, top]),
        "APm": mean(precision[:, :, :, medium, top]),
        "APl": mean(precision[:, :, :, large, top]),
        "AR1": mean(recall[:, :, all_, 0]),
        "AR10": mean(recall[:, :, all_, 1]),
        "AR100": mean(recall[:, :, all_, 2]),
        "ARs": mean(recall[:, :, small, top]),
        "ARm": mean(recall[:, :, medium, top]),
        "ARl": mean(recall[:, :, large, top]),
    }
