"""Convert an mmdetection QueryInst checkpoint (e.g. from its COCO model zoo) into this toolkit's format.

    python tools/convert_mmdet.py queryinst_r50_fpn_1x_coco.pth work_dirs/queryinst_r50_coco.pth
    python tools/convert_mmdet.py IN.pth OUT.pth --config configs/image/my.yaml   # must fit the weights

Every tensor is renamed, never changed; backbone depth, proposals, classes and stages are read from the
weights and stored in OUT's config, with the class names (COCO's 80 unless the checkpoint names its
own). Missing, unexpected or misshapen tensors give one error listing them, exit code 2, and no OUT.
The library side is ``queryinst.image.mmdet_import``.
"""
from __future__ import annotations

import argparse
import logging
import sys

from queryinst import cli
from queryinst.image.config import load_config
from queryinst.image.mmdet_import import convert_mmdet_checkpoint


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", metavar="IN.pth", help="mmdetection checkpoint ({'meta', 'state_dict'} or a bare "
                                                      "state_dict, with or without a DDP 'module.' prefix)")
    parser.add_argument("dst", metavar="OUT.pth", help="our checkpoint (written to a temporary file, then renamed)")
    parser.add_argument("--config", help="YAML config the weights must fit (default: derived from the weights)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT.pth")
    parser.add_argument("--stub-unknown-objects", action="store_true",
                        help="read checkpoints whose metadata pickles objects (numpy, mmengine) that "
                             "weights_only loading refuses, replacing them by inert placeholders")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="convert_mmdet: %(levelname)s: %(message)s")
    try:
        cli.check_output_file(args.dst, "converted checkpoint")
        cfg = load_config(args.config) if args.config else None
        summary = convert_mmdet_checkpoint(args.src, args.dst, cfg, args.stub_unknown_objects, args.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        message = " ".join(str(err).split())  # one line, whatever the message holds
        print(f"convert_mmdet: error: {message}", file=sys.stderr)
        return cli.EXIT_BAD_INPUT
    m = summary.config.model
    print(f"wrote {args.dst}: QueryInst {m.backbone}, {m.num_proposals} proposals, {m.num_classes} classes, "
          f"{m.num_stages} stages ({summary.num_tensors} tensors)")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
