"""Run a QueryInst checkpoint on images and write overlays (coloured masks, boxes, class names, scores).

    python tools/demo_image.py --config configs/synthetic/image_tiny.yaml --weights work_dirs/x/last.pth \\
        --input photo.jpg|folder --output out_dir [--score-thr 0.3] [key=value ...]
    python tools/demo_image.py --weights queryinst_r50_ms3x_coco --input photo.jpg

--weights takes a checkpoint file or a registered name (docs/model_zoo.md): mmdetection's COCO QueryInst
models are downloaded, checked and converted once into $QUERYINST_HOME (default ~/.cache/queryinst).
Without --config the config stored in the checkpoint is used (tools/train.py and tools/convert_mmdet.py
store it). One PNG per input image, ``<output>/<input stem>.png`` (default output: outputs/demo_image),
each written to a temporary file and renamed.
Class names come from the checkpoint (stored by training and conversion: COCO's 80 for mmdetection's
models), else from ``data.val_json``'s categories.
Errors print one ``error: ...`` line and exit with status 2. An unreadable image of a folder is skipped:
the others are drawn, each bad file gets a ``warning: skipped ...`` line at the end, and the exit status is 3.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

import cv2

from queryinst import cli, weights
from queryinst.progress import announce
from queryinst.image.api import Predictor

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_OUTPUT = "outputs/demo_image"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="the checkpoint's config (default: the config stored in the checkpoint)")
    parser.add_argument("--weights", required=True, help=f"a QueryInst checkpoint or {weights.NAME_HELP}")
    parser.add_argument("--input", required=True, help="an image file or a folder of images")
    parser.add_argument("--output", default=DEFAULT_OUTPUT,
                        help=f"folder for the overlay PNGs (default: {DEFAULT_OUTPUT})")
    parser.add_argument("--score-thr", type=float, default=0.3, help="draw detections scoring at least this")
    cli.add_threads_argument(parser)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    return parser


def _inputs(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"input not found: {path}")
    files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise ValueError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def main(argv: list[str] | None = None) -> int:
    args = cli.parse_with_overrides(_parser(), argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cli.check_output_dir(args.output)
        files = _inputs(args.input)
        cli.apply_threads(args.threads)
        announce(f"loading the model ({args.weights}) ...")
        # image/api.py: the checkpoint on the config's run.device, BatchNorm folded, its class names
        predictor = Predictor.from_pretrained(args.weights, config=args.config, device=None,
                                              overrides=args.overrides)
        os.makedirs(args.output, exist_ok=True)
    except (ValueError, FileNotFoundError) as e:  # ConfigError is a ValueError
        return cli.fail(e)
    bad: list[str] = []
    for path in files:  # a bad image is reported and skipped; the others are still drawn
        try:
            result = predictor(path)  # errors name the file
        except (ValueError, FileNotFoundError) as e:
            bad.append(cli.error_message(e))
            continue
        stem = os.path.splitext(os.path.basename(path))[0]
        out = os.path.join(args.output, f"{stem}.png")
        tmp = os.path.join(args.output, f".{stem}.tmp.png")
        if not cv2.imwrite(tmp, cv2.cvtColor(result.plot(args.score_thr), cv2.COLOR_RGB2BGR)):
            bad.append(f"{out}: cannot write the overlay")
            continue
        os.replace(tmp, out)
        print(f"{path}: {len(result.select(args.score_thr))} detections -> {out}")
    for message in bad:
        print(f"warning: skipped {message}", file=sys.stderr)
    return cli.EXIT_DAMAGED if bad else cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.run(main))
