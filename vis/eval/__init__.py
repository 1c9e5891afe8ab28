"""YouTube-VIS evaluation (official video-mask AP/AR semantics)."""
from queryinst.vis.eval.ytvis_eval import (
    STAT_KEYS,
    YTVISEvaluator,
    evaluate_ytvis,
    format_summary,
    load_ytvis_gt,
)

__all__ = ["STAT_KEYS", "YTVISEvaluator", "evaluate_ytvis", "format_summary", "load_ytvis_gt"]
