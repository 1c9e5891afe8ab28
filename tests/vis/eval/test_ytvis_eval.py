"""Tests of vis/eval/ytvis_eval.py: hand-computed cases and random cases against a slow reference.

``reference_ytvis_eval`` below re-implements the official YouTube-VIS evaluation (youtubevos/cocoapi
``ytvos.py`` loadRes/annToRLE and ``ytvoseval.py`` evaluate/computeIoU/evaluateVid/accumulate/
summarize) with the official structure: plain loops, per-frame ``maskUtils.merge``/``area``, the
per-detection greedy scan and the per-threshold ``searchsorted`` accumulation. It is deliberately
slow and literal, so that the vectorised implementation can be checked against it.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from queryinst.vis.bench.ytvis_case import make_benchmark_case
from queryinst.vis.eval import STAT_KEYS, YTVISEvaluator, evaluate_ytvis, format_summary
from queryinst.vis.eval.ytvis_eval import _video_ious

# ----------------------------------------------------------------------------- slow reference

_IOU_THRS = np.linspace(0.5, 0.95, 10)
_REC_THRS = np.linspace(0.0, 1.0, 101)
_MAX_DETS = [1, 10, 100]
_AREAS = [[0, 1e10], [0, 128**2], [128**2, 256**2], [256**2, 1e10]]


def _mean_truthy(values):
    kept = [v for v in values if v]
    return np.array(kept).mean() if kept else 0


def reference_ytvis_eval(gt: dict, results: list[dict]) -> dict[str, float]:
    """Literal loop version of the official evaluation (see module docstring)."""
    videos = {v["id"]: v for v in gt["videos"]}
    video_ids = sorted(videos)
    cat_ids = sorted(c["id"] for c in gt["categories"])

    # ytvos.loadRes: ids from 1, areas from the masks, avg_area over truthy areas.
    dts = []
    for n, res in enumerate(results):
        areas = [mask_utils.area(s) if s else None for s in res["segmentations"]]
        dts.append({"id": n + 1, "video_id": res["video_id"], "category_id": res["category_id"],
                    "score": res["score"], "segs": list(res["segmentations"]), "iscrowd": 0,
                    "avg_area": _mean_truthy(areas)})
    # _prepare/_toMask: GT frames to RLE, avg_area from the 'areas' field, ignore = iscrowd.
    gts = []
    for ann in gt["annotations"]:
        if ann["video_id"] not in videos or ann["category_id"] not in cat_ids:
            continue
        h, w = videos[ann["video_id"]]["height"], videos[ann["video_id"]]["width"]
        segs = []
        for s in ann["segmentations"]:
            if not s:
                segs.append(s)
            elif isinstance(s, list):
                segs.append(mask_utils.merge(mask_utils.frPyObjects(s, h, w)))
            elif isinstance(s["counts"], list):
                segs.append(mask_utils.frPyObjects(s, h, w))
            else:
                segs.append(s)
        gts.append({"id": ann["id"], "video_id": ann["video_id"], "category_id": ann["category_id"],
                    "segs": segs, "iscrowd": ann.get("iscrowd", 0), "ignore": bool(ann.get("iscrowd", 0)),
                    "avg_area": _mean_truthy(ann["areas"])})
    gt_units, dt_units = {}, {}
    for vid in video_ids:  # getAnnIds chains the per-video lists in vidIds order
        for g in gts:
            if g["video_id"] == vid:
                gt_units.setdefault((vid, g["category_id"]), []).append(g)
        for d in dts:
            if d["video_id"] == vid:
                dt_units.setdefault((vid, d["category_id"]), []).append(d)

    def sorted_dets(vid, cat):
        unit = dt_units.get((vid, cat), [])
        order = np.argsort([-d["score"] for d in unit], kind="mergesort")
        return [unit[i] for i in order][:100]

    def video_iou(d_segs, g_segs):
        inter = union = 0.0
        for d, g in zip(d_segs, g_segs):
            if d and g:
                inter += mask_utils.area(mask_utils.merge([d, g], True))
                union += mask_utils.area(mask_utils.merge([d, g], False))
            elif g:
                union += mask_utils.area(g)
            elif d:
                union += mask_utils.area(d)
        return inter / union if union > 0 else 0.0

    ious = {}
    for vid in video_ids:
        for cat in cat_ids:
            d_list, g_list = sorted_dets(vid, cat), gt_units.get((vid, cat), [])
            ious[vid, cat] = np.array([[video_iou(d["segs"], g["segs"]) for g in g_list] for d in d_list])

    def evaluate_unit(vid, cat, rng):
        g_list, d_list = gt_units.get((vid, cat), []), sorted_dets(vid, cat)
        if not g_list and not d_list:
            return None
        flags = [1 if (g["ignore"] or g["avg_area"] < rng[0] or g["avg_area"] > rng[1]) else 0 for g in g_list]
        g_order = np.argsort(flags, kind="mergesort")
        g_list = [g_list[i] for i in g_order]
        g_ign = [flags[i] for i in g_order]
        unit_ious = ious[vid, cat]
        T, D, G = len(_IOU_THRS), len(d_list), len(g_list)
        gt_match, dt_match, dt_ign = np.zeros((T, G)), np.zeros((T, D)), np.zeros((T, D))
        if D and G:
            unit_ious = unit_ious[:, g_order]
            for t, thr in enumerate(_IOU_THRS):
                for di, d in enumerate(d_list):
                    best, m = min(thr, 1 - 1e-10), -1
                    for gi, g in enumerate(g_list):
                        if gt_match[t, gi] > 0 and not int(g["iscrowd"]):
                            continue
                        if m > -1 and g_ign[m] == 0 and g_ign[gi] == 1:
                            break
                        if unit_ious[di, gi] < best:
                            continue
                        best, m = unit_ious[di, gi], gi
                    if m == -1:
                        continue
                    dt_ign[t, di] = g_ign[m]
                    dt_match[t, di] = g_list[m]["id"]
                    gt_match[t, m] = d["id"]
        out = np.array([d["avg_area"] < rng[0] or d["avg_area"] > rng[1] for d in d_list]).reshape(1, D)
        dt_ign = np.logical_or(dt_ign, np.logical_and(dt_match == 0, np.repeat(out, T, 0)))
        return {"scores": [d["score"] for d in d_list], "match": dt_match, "ign": dt_ign,
                "gt_ign": np.array(g_ign, dtype=float)}

    T, R, K, A, M = len(_IOU_THRS), len(_REC_THRS), len(cat_ids), len(_AREAS), len(_MAX_DETS)
    precision, recall = -np.ones((T, R, K, A, M)), -np.ones((T, K, A, M))
    for k, cat in enumerate(cat_ids):
        for a, rng in enumerate(_AREAS):
            evals = [evaluate_unit(vid, cat, rng) for vid in video_ids]
            evals = [e for e in evals if e is not None]
            for m, max_det in enumerate(_MAX_DETS):
                if not evals:
                    continue
                scores = np.concatenate([e["scores"][:max_det] for e in evals])
                order = np.argsort(-scores, kind="mergesort")
                match = np.concatenate([e["match"][:, :max_det] for e in evals], axis=1)[:, order]
                ign = np.concatenate([e["ign"][:, :max_det] for e in evals], axis=1)[:, order]
                npig = np.count_nonzero(np.concatenate([e["gt_ign"] for e in evals]) == 0)
                if npig == 0:
                    continue
                tps = np.cumsum(np.logical_and(match, ~ign), axis=1).astype(np.float64)
                fps = np.cumsum(np.logical_and(~match.astype(bool), ~ign), axis=1).astype(np.float64)
                for t in range(T):
                    tp, fp = tps[t], fps[t]
                    rc = tp / npig
                    pr = list(tp / (fp + tp + np.spacing(1)))
                    recall[t, k, a, m] = rc[-1] if len(tp) else 0
                    for i in range(len(pr) - 1, 0, -1):
                        if pr[i] > pr[i - 1]:
                            pr[i - 1] = pr[i]
                    q = np.zeros(R)
                    for ri, pi in enumerate(np.searchsorted(rc, _REC_THRS, side="left")):
                        if pi >= len(pr):
                            break
                        q[ri] = pr[pi]
                    precision[t, :, k, a, m] = q

    def mean(s):
        return float(np.mean(s[s > -1])) if (s > -1).any() else -1.0

    p = precision
    return {"AP": mean(p[:, :, :, 0, 2]), "AP50": mean(p[0, :, :, 0, 2]), "AP75": mean(p[5, :, :, 0, 2]),
            "APs": mean(p[:, :, :, 1, 2]), "APm": mean(p[:, :, :, 2, 2]), "APl": mean(p[:, :, :, 3, 2]),
            "AR1": mean(recall[:, :, 0, 0]), "AR10": mean(recall[:, :, 0, 1]), "AR100": mean(recall[:, :, 0, 2]),
            "ARs": mean(recall[:, :, 1, 2]), "ARm": mean(recall[:, :, 2, 2]), "ARl": mean(recall[:, :, 3, 2])}


# ----------------------------------------------------------------------------- case builders


def _rle(mask: np.ndarray) -> dict:
    """[H, W] bool -> compressed RLE with str counts."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def _box(h: int, w: int, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    mask = np.zeros((h, w), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _gt_ann(ann_id, video_id, category_id, masks, iscrowd=0):
    """GT annotation from a list of [H, W] masks or None per frame."""
    return {"id": ann_id, "video_id": video_id, "category_id": category_id, "iscrowd": iscrowd,
            "segmentations": [None if m is None else _rle(m) for m in masks],
            "areas": [None if m is None else int(m.sum()) for m in masks]}


def _result(video_id, category_id, score, masks):
    return {"video_id": video_id, "category_id": category_id, "score": score,
            "segmentations": [None if m is None else _rle(m) for m in masks]}


def _split(num_videos=1, h=20, w=20, length=4, num_categories=2):
    return {"videos": [{"id": v + 1, "height": h, "width": w, "length": length} for v in range(num_videos)],
            "categories": [{"id": c + 1, "name": f"c{c + 1}"} for c in range(num_categories)],
            "annotations": []}


def random_case(seed: int) -> tuple[dict, list[dict]]:
    """A small random split + results with ties, >100 dets, nulls, empty masks, crowd, id 0, etc."""
    rng = np.random.default_rng(seed)
    big = seed % 4 == 0  # 300×300 frames so that track areas reach medium and large
    h, w, cell = (300, 300, 30) if big else (12, 16, 4)
    num_cats = int(rng.integers(1, 4))
    gt = {"videos": [], "annotations": [],
          "categories": [{"id": c * 3 + 2, "name": f"c{c}"} for c in range(num_cats)]}
    cat_ids = [c["id"] for c in gt["categories"]]

    def random_mask():
        if rng.random() < 0.1:
            return np.zeros((h, w), dtype=bool)  # empty mask (present, area 0)
        grid = rng.random((h // cell, w // cell)) < rng.uniform(0.2, 0.8)
        return np.kron(grid, np.ones((cell, cell), dtype=bool)).astype(bool)

    def jitter(mask):
        flip = rng.random(mask.shape) < 0.05
        return mask ^ flip

    def gt_frame(mask):
        style = rng.random()
        if style < 0.1 and mask.any():  # polygon (the box around the mask), rasterised by frPyObjects
            ys, xs = np.nonzero(mask)
            x0, y0, x1, y1 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
            return [[x0, y0, x1, y0, x1, y1, x0, y1]]
        if style < 0.25:  # uncompressed RLE, as in the official train JSON
            pixels = mask.T.ravel().astype(np.int8)  # COCO RLE runs are column-major
            runs = np.diff(np.flatnonzero(np.diff(np.r_[-1, pixels, -1]) != 0))
            lead = [0] if pixels[0] == 1 else []  # counts start with a (possibly empty) zero run
            return {"size": [h, w], "counts": lead + runs.tolist()}
        return _rle(mask)

    results = []
    next_id = 0 if seed % 5 == 0 else 1  # an annotation with id 0 never counts as a match
    for v in range(int(rng.integers(1, 5))):
        video_id = 10 + 7 * v
        length = int(rng.integers(1, 6))
        gt["videos"].append({"id": video_id, "height": h, "width": w, "length": length})
        tracks = []
        for _ in range(int(rng.integers(0, 5))):
            if tracks and rng.random() < 0.2:
                masks = list(tracks[int(rng.integers(len(tracks)))][1])  # duplicate GT: IoU ties
            else:
                masks = [None if rng.random() < 0.2 else random_mask() for _ in range(length)]
            cat = int(rng.choice(cat_ids))
            tracks.append((cat, masks))
            ann = _gt_ann(next_id, video_id, cat, masks, iscrowd=int(rng.random() < 0.15))
            ann["segmentations"] = [None if m is None else gt_frame(m) for m in masks]
            if rng.random() < 0.3:  # the official reads avg area from this field, not the masks
                ann["areas"] = [None if a is None else a * int(rng.integers(1, 2000)) for a in ann["areas"]]
            gt["annotations"].append(ann)
            next_id += 1
        if rng.random() < 0.2:
            continue  # a video without predictions
        num_preds = 105 if (seed % 7 == 3 and v == 0) else int(rng.integers(0, 9))
        for _ in range(num_preds):
            if tracks and rng.random() < 0.6:
                cat, masks = tracks[int(rng.integers(len(tracks)))]
                masks = [None if (m is None or rng.random() < 0.1) else jitter(m) for m in masks]
                if rng.random() < 0.25:
                    cat = int(rng.choice(cat_ids))  # wrong class
            else:
                cat = int(rng.choice(cat_ids))
                masks = [None if rng.random() < 0.3 else random_mask() for _ in range(length)]
            score = float(rng.choice([0.1, 0.5, 0.9])) if rng.random() < 0.5 else float(rng.random())
            results.append(_result(video_id, cat, score, masks))
            if rng.random() < 0.1:
                results.append(copy.deepcopy(results[-1]))  # exact duplicate: tie in score and IoU
    return gt, results


def tie_heavy_case(seed: int) -> tuple[dict, list[dict]]:
    """Tracks drawn from 3 mask patterns + the empty mask, 3 score values, 2 categories: many exact
    ties in score and in IoU; GT 'areas' often exactly on the area-range bounds (128², 256²)."""
    rng = np.random.default_rng(seed)
    cell = 64 if seed % 2 else 1  # 256×256 frames: pattern areas are multiples of 64² = 4096
    size = 4 * cell
    patterns = [np.kron(rng.random((4, 4)) < 0.5, np.ones((cell, cell), dtype=bool)) for _ in range(3)]
    patterns.append(np.zeros((size, size), dtype=bool))
    gt = {"videos": [], "categories": [{"id": 1}, {"id": 2}], "annotations": []}
    results = []
    next_id = int(rng.integers(0, 2))

    def track(length):
        return [None if rng.random() < 0.2 else patterns[int(rng.integers(4))] for _ in range(length)]

    for video_id in range(1, int(rng.integers(2, 4))):
        length = int(rng.integers(1, 4))
        gt["videos"].append({"id": video_id, "height": size, "width": size, "length": length})
        for _ in range(int(rng.integers(0, 6))):
            ann = _gt_ann(next_id, video_id, int(rng.integers(1, 3)), track(length), iscrowd=int(rng.random() < 0.3))
            if rng.random() < 0.3:
                ann["areas"] = [None if a is None else int(rng.choice([0, 128**2, 256**2, 100, 20000, 70000]))
                                for a in ann["areas"]]
            gt["annotations"].append(ann)
            next_id += 1
        for _ in range(int(rng.integers(0, 8))):
            results.append(_result(video_id, int(rng.integers(1, 3)), float(rng.choice([0.2, 0.5, 0.7])),
                                   track(length)))
    return gt, results


def _assert_close(got: dict, want: dict, tol: float = 1e-6) -> None:
    assert set(got) == set(STAT_KEYS)
    for key in STAT_KEYS:
        assert abs(got[key] - want[key]) <= tol, (key, got[key], want[key])


# ----------------------------------------------------------------------------- hand-computed cases


def test_perfect_predictions_score_one():
    gt = _split(num_videos=2, length=3)
    a, b = _box(20, 20, 0, 0, 8, 8), _box(20, 20, 10, 10, 20, 18)
    gt["annotations"] = [_gt_ann(1, 1, 1, [a, a, None]), _gt_ann(2, 1, 2, [b, b, b]), _gt_ann(3, 2, 1, [None, b, a])]
    results = [_result(1, 1, 0.9, [a, a, None]), _result(1, 2, 0.8, [b, b, b]), _result(2, 1, 0.7, [None, b, a])]
    stats = evaluate_ytvis(gt, results)
    for key in ("AP", "AP50", "AP75", "APs", "AR1", "AR10", "AR100", "ARs"):
        assert stats[key] == pytest.approx(1.0)
    for key in ("APm", "APl", "ARm", "ARl"):  # all tracks are small: no GT in these ranges
        assert stats[key] == -1.0


def test_one_missed_instance():
    """Two GTs, one found: recall 1/2 at every threshold, precision 1 up to recall .5 (51 of 101 points)."""
    gt = _split(num_videos=2, length=2, num_categories=1)
    a = _box(20, 20, 2, 2, 9, 9)
    gt["annotations"] = [_gt_ann(1, 1, 1, [a, a]), _gt_ann(2, 2, 1, [a, a])]
    stats = evaluate_ytvis(gt, [_result(1, 1, 0.5, [a, a])])
    assert stats["AP"] == pytest.approx(51 / 101)
    assert stats["AR100"] == pytest.approx(0.5)
    assert stats["AR1"] == pytest.approx(0.5)


@pytest.mark.parametrize("wrong_first", [False, True])
def test_one_wrong_class(wrong_first):
    """Category 1: one GT, a TP and a wrong-class FP; category 2: its GT has no detection (AP 0)."""
    gt = _split(num_videos=2, length=2, num_categories=2)
    a, b = _box(20, 20, 0, 0, 6, 6), _box(20, 20, 5, 5, 15, 15)
    gt["annotations"] = [_gt_ann(1, 1, 1, [a, a]), _gt_ann(2, 2, 2, [b, b])]
    scores = (0.4, 0.9) if wrong_first else (0.9, 0.4)
    results = [_result(1, 1, scores[0], [a, a]), _result(2, 1, scores[1], [b, b])]
    stats = evaluate_ytvis(gt, results)
    # FP ranked first: precision at recall 1 is 1/2 for category 1.
    assert stats["AP"] == pytest.approx((0.5 if wrong_first else 1.0) / 2)
    assert stats["AR100"] == pytest.approx(0.5)


def test_switched_identity():
    """Two tracks exchange identities after frame 7 of 10: video IoU 7/13 with each GT, so they match
    at IoU .50 only -> AP = AR = 1/10, AP50 = 1, AP75 = 0."""
    gt = _split(num_videos=1, length=10, num_categories=1)
    a, b = _box(20, 20, 0, 0, 5, 5), _box(20, 20, 10, 10, 15, 15)
    gt["annotations"] = [_gt_ann(1, 1, 1, [a] * 10), _gt_ann(2, 1, 1, [b] * 10)]
    results = [_result(1, 1, 0.9, [a] * 7 + [b] * 3), _result(1, 1, 0.8, [b] * 7 + [a] * 3)]
    ious = _video_ious([r["segmentations"] for r in results], [g["segmentations"] for g in gt["annotations"]], 10)
    np.testing.assert_allclose(ious, [[7 / 13, 3 / 17], [3 / 17, 7 / 13]])
    stats = evaluate_ytvis(gt, results)
    assert stats["AP"] == pytest.approx(0.1)
    assert stats["AP50"] == pytest.approx(1.0)
    assert stats["AP75"] == pytest.approx(0.0)
    assert stats["AR100"] == pytest.approx(0.1)


def test_video_iou_counts_frames_where_one_track_is_missing():
    """|∩| = 16 (frame 0), |∪| = 16 + 16 (GT alone in frame 1) + 9 (detection alone in frame 2)."""
    a, c = _box(20, 20, 0, 0, 4, 4), _box(20, 20, 0, 0, 3, 3)
    det = [_rle(a), None, _rle(c)]
    ground = [_rle(a), _rle(a), None]
    assert _video_ious([det], [ground], 3)[0, 0] == pytest.approx(16 / 41)


def test_detection_on_crowd_gt_is_ignored_not_false_positive():
    gt = _split(num_videos=1, length=2, num_categories=1)
    a, b = _box(20, 20, 0, 0, 6, 6), _box(20, 20, 10, 10, 18, 18)
    gt["annotations"] = [_gt_ann(1, 1, 1, [a, a]), _gt_ann(2, 1, 1, [b, b], iscrowd=1)]
    results = [_result(1, 1, 0.9, [b, b]), _result(1, 1, 0.5, [a, a])]
    assert evaluate_ytvis(gt, results)["AP"] == pytest.approx(1.0)
    gt["annotations"][1]["iscrowd"] = 0  # now the first detection is a TP too (2 of 2 GTs)
    assert evaluate_ytvis(gt, results)["AR100"] == pytest.approx(1.0)


def test_no_results_gives_zero_and_no_gt_gives_minus_one():
    gt = _split(num_videos=1, length=1, num_categories=1)
    assert all(v == -1.0 for v in evaluate_ytvis(gt, []).values())
    gt["annotations"] = [_gt_ann(1, 1, 1, [_box(20, 20, 0, 0, 3, 3)])]
    stats = evaluate_ytvis(gt, [])
    assert stats["AP"] == 0.0 and stats["AR100"] == 0.0 and stats["APm"] == -1.0


# ----------------------------------------------------------------------------- against the reference


@pytest.mark.parametrize("seed", range(40))
def test_random_cases_match_reference(seed):
    gt, results = random_case(seed)
    gt_copy, results_copy = copy.deepcopy(gt), copy.deepcopy(results)
    got = evaluate_ytvis(gt, results)
    assert gt == gt_copy and results == results_copy  # inputs untouched
    _assert_close(got, reference_ytvis_eval(gt, results))


@pytest.mark.parametrize("seed", range(40))
def test_tie_heavy_cases_match_reference(seed):
    gt, results = tie_heavy_case(seed)
    _assert_close(evaluate_ytvis(gt, results), reference_ytvis_eval(gt, results))


def test_benchmark_case_matches_reference():
    gt, results = make_benchmark_case(num_videos=12, preds_per_video=6, height=48, width=64, length=5, seed=3)
    assert len(results) == 72
    _assert_close(evaluate_ytvis(gt, results), reference_ytvis_eval(gt, results))


def test_more_than_100_detections_per_unit_are_cut_by_score():
    """Only the 100 best-scored detections of a (video, category) count: a perfect one ranked 101st
    is dropped, ranked 100th it is kept."""
    gt = _split(num_videos=1, length=1, num_categories=1)
    a, junk = _box(20, 20, 0, 0, 5, 5), _box(20, 20, 12, 12, 18, 18)
    gt["annotations"] = [_gt_ann(1, 1, 1, [a])]
    fillers = [_result(1, 1, 0.5, [junk]) for _ in range(100)]
    assert evaluate_ytvis(gt, fillers + [_result(1, 1, 0.5, [a])])["AR100"] == 0.0  # tie: later loses
    assert evaluate_ytvis(gt, [_result(1, 1, 0.5, [a])] + fillers)["AR100"] == 1.0


def test_evaluator_contract_matches_function():
    gt, results = random_case(1)
    evaluator = YTVISEvaluator(gt)
    by_video = {}
    for record in results:
        by_video.setdefault(record["video_id"], []).append({k: v for k, v in record.items() if k != "video_id"})
    evaluator.process([{"video_id": v} for v in by_video], list(by_video.values()))
    _assert_close(evaluator.summarize(), evaluate_ytvis(gt, results), tol=0.0)
    evaluator.reset()
    assert evaluator.summarize() == evaluate_ytvis(gt, [])
    with pytest.raises(ValueError, match="inputs"):
        evaluator.process([{"video_id": 10}], [])


def test_format_summary_has_twelve_lines():
    text = format_summary(dict.fromkeys(STAT_KEYS, 0.5))
    lines = text.splitlines()
    assert len(lines) == 12 and lines[0].startswith(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all")
    assert "maxDets=  1 ] = 0.500" in lines[6]


# ----------------------------------------------------------------------------- validation


def _valid_case():
    gt = _split(num_videos=1, length=2, num_categories=2)
    a = _box(20, 20, 0, 0, 5, 5)
    gt["annotations"] = [_gt_ann(1, 1, 1, [a, a])]
    return gt, [_result(1, 1, 0.5, [a, None])]


@pytest.mark.parametrize("field,value,match", [
    ("video_id", 99, "not in the split"),
    ("category_id", 7, "category_id 7"),
    ("score", float("nan"), "score"),
    ("score", float("inf"), "score"),
    ("score", 1.5, "score"),
    ("score", -0.1, "score"),
    ("segmentations", [None], "list of 2 entries"),
])
def test_invalid_results_raise(field, value, match):
    gt, results = _valid_case()
    results[0][field] = value
    with pytest.raises(ValueError, match=match):
        evaluate_ytvis(gt, results)


def test_rle_size_mismatch_raises():
    gt, results = _valid_case()
    results[0]["segmentations"][0] = _rle(np.ones((10, 20), dtype=bool))
    with pytest.raises(ValueError, match=r"result 0 \(video 1\), frame 0: RLE size"):
        evaluate_ytvis(gt, results)


def test_invalid_ground_truth_raises():
    gt, results = _valid_case()
    gt["annotations"].append(dict(gt["annotations"][0]))
    with pytest.raises(ValueError, match="duplicate id"):
        evaluate_ytvis(gt, results)
    gt, results = _valid_case()
    gt["annotations"][0]["segmentations"] = gt["annotations"][0]["segmentations"][:1]
    with pytest.raises(ValueError, match="list of 2 entries"):
        evaluate_ytvis(gt, results)
