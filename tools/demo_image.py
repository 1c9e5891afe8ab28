"""Run a QueryInst checkpoint on images and write overlays (coloured masks, boxes, class names, scores).

    python tools/demo_image.py --config configs/synthetic/image_tiny.yaml --weights work_dirs/x/last.pth \\
        --input photo.jpg|folder --output out_dir [--score-thr 0.3] [key=value ...]

One PNG per input image, ``<output>/<input stem>.png``, each written to a temporary file and renamed.
Class names come from the checkpoint (stored by training), else from ``data.val_json``'s categories.
Errors print one ``error: ...`` line and exit with status 2. An unreadable image of a folder is skipped:
the others are drawn, each bad file gets a ``warning: skipped ...`` line at the end, and the exit status is 3.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

import cv2
import numpy as np
import torch

from queryinst import cli
from queryinst.progress import announce
from queryinst.image.build import build_queryinst
from queryinst.image.checkpoint import load_checkpoint
from queryinst.image.config import Config, load_config
from queryinst.image.data import ResizeShortSide, load_coco_json, read_image
from queryinst.image.fuse import fold_batchnorm
from queryinst.image.types import Predictions

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
MASK_ALPHA = 0.5  # weight of the instance colour over the image inside a mask
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--input", required=True, help="an image file or a folder of images")
    parser.add_argument("--output", required=True, help="folder for the overlay PNGs")
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


def _class_names(extra: dict, cfg: Config) -> list[str]:
    names = extra.get("class_names")
    if isinstance(names, list) and len(names) == cfg.model.num_classes:
        return [str(n) for n in names]
    if cfg.data.val_json and os.path.isfile(cfg.data.val_json):
        categories = sorted(load_coco_json(cfg.data.val_json)["categories"], key=lambda c: c["id"])
        if len(categories) == cfg.model.num_classes:
            return [c["name"] for c in categories]
    return [f"class {i}" for i in range(cfg.model.num_classes)]


def _colour(index: int) -> tuple[int, int, int]:
    """A distinct, saturated BGR colour per detection (golden-ratio hue steps)."""
    hue = int((index * 0.618033988749895 % 1.0) * 180)
    hsv = np.array([[[hue, 220, 255]]], dtype=np.uint8)
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def draw(image_bgr: np.ndarray, pred: Predictions, class_names: list[str], score_thr: float) -> np.ndarray:
    """Overlay the detections scoring >= ``score_thr`` on a BGR uint8 image [H, W, 3]."""
    canvas = image_bgr.copy()
    keep = (pred.scores >= score_thr).nonzero().flatten().tolist()
    line = max(1, round(min(canvas.shape[:2]) / 300))
    for i, k in enumerate(keep):
        colour = _colour(i)
        if pred.masks is not None:
            mask = pred.masks[k].cpu().numpy()
            canvas[mask] = (canvas[mask] * (1 - MASK_ALPHA) + np.array(colour) * MASK_ALPHA).astype(np.uint8)
        x1, y1, x2, y2 = (int(round(v)) for v in pred.boxes[k].tolist())
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, line)
        text = f"{class_names[int(pred.labels[k])]} {float(pred.scores[k]):.2f}"
        (tw, th), base = cv2.getTextSize(text, FONT, 0.4 * line, 1)
        top = max(y1 - th - base, 0)
        cv2.rectangle(canvas, (x1, top), (x1 + tw, top + th + base), colour, -1)
        cv2.putText(canvas, text, (x1, top + th), FONT, 0.4 * line, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def main(argv: list[str] | None = None) -> int:
    args = cli.parse_with_overrides(_parser(), argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config, args.overrides, schema=Config)
        cli.check_output_dir(args.output)
        files = _inputs(args.input)
        device = cli.select_device(cfg.run.device)
        cli.apply_threads(args.threads)
        announce(f"loading the model ({args.weights}) ...")
        cfg.model.pretrained = ""  # every weight comes from --weights: no ImageNet download
        model = build_queryinst(cfg)
        state = load_checkpoint(args.weights, model, cfg=cfg, map_location="cpu")
        model.to(device).eval()
        fold_batchnorm(model)  # inference only (image/fuse.py)
        names = _class_names(state["extra"], cfg)
        resize = ResizeShortSide((cfg.data.test_min_size,), cfg.data.test_max_size)
        os.makedirs(args.output, exist_ok=True)
    except (ValueError, FileNotFoundError) as e:  # ConfigError is a ValueError
        return cli.fail(e)
    bad: list[str] = []
    for path in files:  # a bad image is reported and skipped; the others are still drawn
        try:
            image = read_image(path)  # [3, H, W] uint8 RGB; errors name the file
        except (ValueError, FileNotFoundError) as e:
            bad.append(cli.error_message(e))
            continue
        with torch.no_grad():
            pred = model([resize(image).float().div(255.0)], orig_sizes=[tuple(image.shape[-2:])])[0]
        bgr = cv2.cvtColor(image.permute(1, 2, 0).numpy(), cv2.COLOR_RGB2BGR)
        stem = os.path.splitext(os.path.basename(path))[0]
        out = os.path.join(args.output, f"{stem}.png")
        tmp = os.path.join(args.output, f".{stem}.tmp.png")
        if not cv2.imwrite(tmp, draw(bgr, pred, names, args.score_thr)):
            bad.append(f"{out}: cannot write the overlay")
            continue
        os.replace(tmp, out)
        print(f"{path}: {int((pred.scores >= args.score_thr).sum())} detections -> {out}")
    for message in bad:
        print(f"warning: skipped {message}", file=sys.stderr)
    return cli.EXIT_DAMAGED if bad else cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.run(main))
