"""Measure which association embedding tracks best for one or more checkpoints on a labelled split.

    python tools/compare_embeddings.py --weights work_dirs/image_synth_mnv3/last.pth work_dirs/vis_synth_mnv3/last.pth \\
        --json data/synth_ytvis/valid/valid.json --frames data/synth_ytvis/valid/JPEGImages \\
        --gt data/synth_ytvis/valid/valid_gt.json [--sources track_head queries attention none] \\
        [--scales 5 10 20] [--modes hungarian masktrack] [--json-out table.json] [key=value ...]

Each checkpoint (QueryInst-VIS, or an image QueryInst checkpoint, which has no track head) runs with its
stored config; every row tracks the same detections with another embedding source / scale
(vis/eval/embeddings.py) and scores them with the official video AP. ``inference.embedding=auto`` picks
the sources measured best this way (vis/config.py AUTO_EMBEDDING).
"""
from __future__ import annotations

import argparse
import sys

from queryinst import cli
from queryinst.image.atomic import write_json_atomic
from queryinst.progress import announce
from queryinst.vis.config import EMBEDDINGS
from queryinst.vis.data.ytvis import YTVISDataset
from queryinst.vis.eval.embeddings import compare_embeddings, format_rows
from queryinst.vis.eval.ytvis_eval import load_ytvis_gt
from queryinst.vis.modeling.build import load_vis_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", nargs="+", required=True, help="checkpoints (VIS or image), stored configs")
    parser.add_argument("--json", required=True, help="the split's JSON (videos + categories)")
    parser.add_argument("--frames", required=True, help="the split's JPEGImages folder")
    parser.add_argument("--gt", required=True, help="the split's labels (YouTube-VIS JSON with annotations)")
    parser.add_argument("--sources", nargs="+", choices=EMBEDDINGS, default=list(EMBEDDINGS))
    parser.add_argument("--scales", nargs="+", type=float, default=[10.0],
                        help="cosine scales of the query sources")
    parser.add_argument("--modes", nargs="+", choices=("hungarian", "masktrack"), default=["hungarian"])
    parser.add_argument("--json-out", default="", help="write the rows as JSON here")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: the config's run.device")
    cli.add_threads_argument(parser)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides (every model)")
    args = cli.parse_with_overrides(parser, argv, lists=("weights",))
    try:
        if args.json_out:
            cli.check_output_file(args.json_out, "--json-out file")
        if any(s <= 0 for s in args.scales):
            raise ValueError(f"--scales must be > 0, got {args.scales}")
        split = YTVISDataset(args.json, args.frames)
        gt = load_ytvis_gt(args.gt)
        cli.apply_threads(args.threads)
        rows = []
        for weights in args.weights:
            announce(f"loading {weights} ...")
            cfg, model, _, _ = load_vis_model(None, weights, args.overrides, args.device)
            if split.num_classes != cfg.model.num_classes:
                raise ValueError(f"{args.json}: {split.num_classes} categories, {weights} has {cfg.model.num_classes}")
            for row in compare_embeddings(model, cfg, split.videos, split.cat_ids, gt, args.sources, args.scales,
                                          args.modes):
                rows.append({"model": weights, **row})
    except (ValueError, FileNotFoundError) as e:
        return cli.fail(e)
    print(format_rows(rows))
    if args.json_out:
        write_json_atomic(rows, args.json_out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
