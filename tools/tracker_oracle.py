"""Score the online tracker alone: a labelled YouTube-VIS-format split's ground truth is fed as
detections (vis/eval/oracle.py) through the tracker, aggregation and results writer, then evaluated.

    python tools/make_synthetic.py ytvis --out data/synth_ytvis_oracle --num-videos 2 --valid 50 \\
        --length 12 --annotate-every 5 --speed 0.2
    python tools/tracker_oracle.py --json data/synth_ytvis_oracle/valid/valid_gt.json \\
        --frames data/synth_ytvis_oracle/valid/JPEGImages [--json-out oracle.json]
"""
from __future__ import annotations

import argparse
import sys

from queryinst import cli
from queryinst.image.atomic import write_json_atomic
from queryinst.vis.data.ytvis import YTVISDataset
from queryinst.vis.eval.oracle import oracle_table
from queryinst.vis.eval.ytvis_eval import load_ytvis_gt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", required=True, help="a labelled split (with annotations)")
    parser.add_argument("--frames", required=True, help="its JPEGImages folder")
    parser.add_argument("--json-out", default="", help="write the table as JSON here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.json_out:
            cli.check_output_file(args.json_out, "--json-out file")
        split = YTVISDataset(args.json, args.frames)
        rows = oracle_table(split, load_ytvis_gt(args.json), seed=args.seed)
    except (ValueError, FileNotFoundError) as e:
        return cli.fail(e)
    print(f"{'tracker mode':<12} {'embeddings':<10} {'AP':>6} {'AP50':>6} {'AP75':>6} {'AR1':>6} {'AR10':>6}")
    for r in rows:
        print(f"{r['mode']:<12} {r['embeddings']:<10} {r['AP']:6.3f} {r['AP50']:6.3f} {r['AP75']:6.3f} "
              f"{r['AR1']:6.3f} {r['AR10']:6.3f}")
    if args.json_out:
        write_json_atomic(rows, args.json_out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
