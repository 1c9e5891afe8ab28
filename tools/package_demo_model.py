"""Package a trained QueryInst-VIS checkpoint as the shipped demo model: weights only, stored in fp16
(loaded back as fp32; halves the file), with its resolved config and class names, plus the config YAML
that tools/track_video.py and tools/webcam.py use by default.

    python tools/package_demo_model.py --checkpoint work_dirs/vis_synth_mnv3/last.pth \\
        --out models/demo/vis_synthetic.pth --config-out configs/synthetic/vis_demo.yaml \\
        inference.score_threshold=0.3 tracker.duplicate_iou=0.7

``key=value`` overrides change the packaged config's inference and tracker settings (the shipped demo's
two above were chosen on the 20 synthetic val videos: README, "Results measured here").
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

from queryinst import cli
from queryinst.image.checkpoint import FORMAT, VERSION
from queryinst.image.config import config_from_dict, config_to_dict, merge_into, parse_overrides, save_config
from queryinst.image.safe_load import read_torch_file
from queryinst.vis.config import VisConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", default="models/demo/vis_synthetic.pth")
    parser.add_argument("--config-out", default="configs/synthetic/vis_demo.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. tracker.duplicate_iou=0.7")
    args = parser.parse_args(argv)
    try:
        data = read_torch_file(args.checkpoint)  # weights_only, one-line errors
        if not isinstance(data, dict) or "model" not in data or "config" not in data:
            raise ValueError(f"{args.checkpoint}: not a checkpoint written by tools/train.py")
        cfg = config_from_dict(data["config"], VisConfig)
        merge_into(cfg, parse_overrides(args.overrides))
        cfg.model.init_from = ""  # the demo checkpoint holds every weight
        weights = {k: v.half() if v.is_floating_point() else v for k, v in data["model"].items()}
        out = {"format": FORMAT, "version": VERSION, "model": weights, "config": config_to_dict(cfg),
               "epoch": data.get("epoch", 0), "iteration": data.get("iteration", 0),
               "extra": {**(data.get("extra") or {}), "source": os.path.basename(args.checkpoint)}}
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        tmp = f"{args.out}.tmp"
        torch.save(out, tmp)
        os.replace(tmp, args.out)
        save_config(cfg, args.config_out)
    except (ValueError, FileNotFoundError) as e:
        return cli.fail(e)
    print(f"{args.out} ({os.path.getsize(args.out) / 2**20:.1f} MiB), {args.config_out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
