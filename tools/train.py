"""Train QueryInst on a COCO-format dataset (``task: image``) or QueryInst-VIS on a YouTube-VIS-format one
(``task: vis``); the pipeline is chosen by the config's ``task``.

    python tools/train.py --config configs/image/queryinst_r50_1x_coco.yaml [key=value ...] [--resume]
    torchrun --nproc_per_node 8 tools/train.py --config ...           # DDP (nccl on GPUs, gloo on CPU)
    python tools/train.py --config ... --print-config                 # resolved config, then exit

Writes to ``run.output_dir``: config.yaml, log.jsonl, last.pth / epoch_N.pth, metrics_*.json and
results_*.json. ``--resume`` continues exactly from ``<run.output_dir>/last.pth``.
Errors in the config or the data print one ``error: ...`` line and exit with status 2.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from queryinst import cli
from queryinst.image.config import dump_config
from queryinst.image.engine import train
from queryinst.vis.config import load_task_config
from queryinst.vis.engine import build_vis_task


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML config (deltas on the defaults, one base level)")
    parser.add_argument("--resume", action="store_true", help="continue from <run.output_dir>/last.pth")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    cli.add_threads_argument(parser)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. solver.base_lr=1e-4")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = cli.parse_with_overrides(_parser(), argv)
    try:
        cfg = load_task_config(args.config, args.overrides)  # the schema of the config's ``task``
        if args.print_config:
            print(dump_config(cfg), end="")
            return 0
        cli.check_output_dir(cfg.run.output_dir, "run.output_dir folder")
        rank = int(os.environ.get("RANK", "0"))
        logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        cli.apply_threads(args.threads)
        if cfg.task == "image":
            train(cfg, resume=args.resume)
        else:  # "vis": QueryInst-VIS on YouTube-VIS-format (key, reference) frame pairs
            train(cfg, resume=args.resume, build_task=build_vis_task)
    except (ValueError, FileNotFoundError) as e:  # ConfigError is a ValueError
        return cli.fail(e)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
