"""Evaluate a QueryInst checkpoint on ``data.val_json`` (COCO box and mask AP).

    python tools/test.py --config configs/image/queryinst_r50_1x_coco.yaml --weights work_dirs/x/last.pth \\
        [--out DIR] [key=value ...]
    python tools/test.py --config configs/image/queryinst_r50_1x_coco.yaml --weights queryinst_r50_1x_coco

--weights takes a checkpoint file or a registered name (docs/model_zoo.md: mmdetection's COCO models,
downloaded, checked and converted once into $QUERYINST_HOME, default ~/.cache/queryinst).

The checkpoint must have been trained with the same model config (a differing key is an error naming it).
Prints the 12 COCO bbox and 12 segm numbers; writes ``DIR/metrics.json`` and ``DIR/results.json``
(COCO results format) once evaluation has finished (DIR defaults to ``run.output_dir``).
Errors in the config, the checkpoint or the data print one ``error: ...`` line and exit with status 2.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from queryinst import cli
from queryinst.progress import announce
from queryinst.image.build import build_queryinst
from queryinst.image.checkpoint import load_checkpoint
from queryinst.image.config import Config, load_config
from queryinst.image.engine import build_test_loader, build_val_set, evaluate, write_json
from queryinst.weights import NAME_HELP, resolve_weights


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the YAML config the checkpoint was trained with")
    parser.add_argument("--weights", required=True,
                        help=f"checkpoint (.pth) or bare state_dict, or {NAME_HELP}")
    parser.add_argument("--out", default=None,
                        help="folder for metrics.json and results.json (default: run.output_dir)")
    cli.add_threads_argument(parser)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides")
    return parser


def _print_table(metrics: dict[str, float]) -> None:
    for iou_type in ("bbox", "segm"):
        keys = [k for k in metrics if k.startswith(f"{iou_type}/")]
        print(f"{iou_type}: " + "  ".join(f"{k.split('/', 1)[1]} {metrics[k] * 100:.1f}" for k in keys))


def main(argv: list[str] | None = None) -> int:
    args = cli.parse_with_overrides(_parser(), argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config, args.overrides, schema=Config)
        cli.check_output_dir(args.out or cfg.run.output_dir)  # before the evaluation, not after it
        if not cfg.data.val_json:
            raise ValueError(f"{args.config}: data.val_json is empty: set the annotation file to evaluate on")
        device = cli.select_device(cfg.run.device)
        cli.apply_threads(args.threads)
        announce(f"loading the model ({args.weights}) ...")
        weights = resolve_weights(args.weights)  # a registered name -> its cached checkpoint (queryinst/weights.py)
        cfg.model.pretrained = ""  # every weight comes from --weights: no ImageNet download
        model = build_queryinst(cfg)
        load_checkpoint(weights, model, cfg=cfg, map_location="cpu")
        model.to(device)
        dataset, evaluator = build_val_set(cfg)
        metrics = evaluate(model, build_test_loader(cfg, dataset), evaluator)
        out_dir = args.out or cfg.run.output_dir
        os.makedirs(out_dir, exist_ok=True)
        evaluator.dump_results(os.path.join(out_dir, "results.json"))
        path = os.path.join(out_dir, "metrics.json")
        write_json(path, {"weights": args.weights, "val_json": cfg.data.val_json, **metrics})
    except (ValueError, FileNotFoundError) as e:  # ConfigError is a ValueError
        return cli.fail(e)
    _print_table(metrics)
    print(f"wrote {path} and {os.path.join(out_dir, 'results.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
