"""Which association embedding tracks best: the same model's detections tracked with each embedding source
(vis/modeling/model.py ``EMBEDDINGS``: track head, last-stage queries, post-attention features, none) and
scale, scored with the official video AP on a labelled split (docs/design.md#association-embeddings).

The detections are the same in every row (the detector does not depend on the source); only the tracker's
embedding term changes, so a row's difference to the "none" row is what its embedding adds.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ...tracking import OnlineTracker
from ..config import VisConfig
from ..inference import predict_split
from ..modeling.model import QueryInstVIS
from .ytvis_eval import evaluate_ytvis

# Sources whose scale matters (normalised query features); the others are run once.
SCALED = ("queries", "attention")
STATS = ("AP", "AP50", "AP75", "AR1", "AR10")


def compare_embeddings(model: QueryInstVIS, cfg: VisConfig, videos: Sequence, cat_ids: Sequence[int],
                       gt: Mapping[str, Any], sources: Sequence[str], scales: Sequence[float] = (10.0,),
                       modes: Sequence[str] = ("hungarian",), batch_size: int = 1, progress: bool = True,
                       desc: str = "videos") -> list[dict[str, Any]]:
    """One row per (tracker mode, source, scale): {"mode", "embedding", "scale" (None for unscaled sources),
    "AP", "AP50", "AP75", "AR1", "AR10", ...}. Sources the model cannot give (the track head of an image
    checkpoint) are skipped. The model's own source and scale are restored afterwards."""
    own = (model.embedding, model.embedding_scale)
    rows = []
    try:
        for mode in modes:
            tracker_cfg = dataclasses.replace(cfg.tracker, mode=mode)
            for source in sources:
                if source == "track_head" and model.track_head is None:
                    continue
                for scale in (scales if source in SCALED else (None,)):
                    model.set_embedding(source, scale if scale is not None else own[1])
                    records = predict_split(model, OnlineTracker(tracker_cfg), videos, cat_ids,
                                            cfg.data.test_min_size, cfg.data.test_max_size, batch_size,
                                            progress, f"{desc} [{mode} {source}{'' if scale is None else f' x{scale:g}'}]")
                    stats = evaluate_ytvis(gt, records)
                    rows.append({"mode": mode, "embedding": source, "scale": scale, **stats})
    finally:
        model.set_embedding(*own)
    return rows


def format_rows(rows: Sequence[Mapping[str, Any]], name_key: str = "model") -> str:
    """The rows as a fixed-width table (one line each)."""
    lines = [f"{name_key:<28} {'mode':<10} {'embedding':<12} {'scale':>5} " + " ".join(f"{s:>6}" for s in STATS)]
    for r in rows:
        scale = "-" if r["scale"] is None else f"{r['scale']:g}"
        lines.append(f"{str(r.get(name_key, '')):<28} {r['mode']:<10} {r['embedding']:<12} {scale:>5} "
                     + " ".join(f"{r[s]:6.3f}" for s in STATS))
    return "\n".join(lines)
