"""Export QueryInst-VIS's per-frame network to ONNX (and optionally TorchScript) for ONNX Runtime.

    python tools/export_onnx.py --config C.yaml --weights W.pth --out model.onnx \\
        [--height 384 --width 640] [--torchscript model.pt] [--check] \\
        [--int8 model_int8.onnx --calibration frames_dir/ [--calibration-frames 16]] [key=value ...]

Without --config/--weights the demo model is exported. The graph maps a normalised, padded frame
[1, 3, H, W] and its unpadded size to the last stage's class logits, boxes, mask logits and track
embeddings of every query (vis/modeling/export.py); H and W are dynamic, --height/--width only set the example
(default: the config's test size padded to the size divisor). Class names and category ids go into the
file's metadata. Load it with ``queryinst.vis.modeling.export.OnnxQueryInstVIS(path)``, which has
``QueryInstVIS.detect``'s interface. --check runs one random frame through both and prints the largest
differences. --int8 also writes the network quantised to int8 (vis/modeling/quantize.py: static QDQ, Conv
weights per channel), calibrated on the first --calibration-frames frames of --calibration (a video, image
folder or glob), written under a temporary name and renamed; OnnxQueryInstVIS loads it the same way.
Exit status 0, or 2 with one "error: ..." line.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from queryinst import cli, weights
from queryinst.progress import announce
from queryinst.vis.modeling.build import load_vis_model
from queryinst.vis.modeling.export import FrameNetwork, OnnxQueryInstVIS, export_onnx, export_torchscript
from queryinst.vis.modeling.quantize import (
    DEFAULT_CALIBRATION_FRAMES,
    calibration_feeds,
    quantize_onnx,
    read_calibration_frames,
    read_settings,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="VIS config (default: the demo model's)")
    parser.add_argument("--weights", help=f"VIS checkpoint or {weights.NAME_HELP} (default: the demo model)")
    parser.add_argument("--out", required=True, type=Path, help="the .onnx file to write")
    parser.add_argument("--height", type=int, help="example padded height (default: from the config)")
    parser.add_argument("--width", type=int, help="example padded width (default: from the config)")
    parser.add_argument("--torchscript", type=Path, help="also write a torch.jit.trace of the same network")
    parser.add_argument("--check", action="store_true", help="compare ONNX Runtime with PyTorch on a random frame")
    parser.add_argument("--int8", type=Path, help="also write the network quantised to int8 here")
    parser.add_argument("--calibration", help="--int8: the frames to calibrate on, a video, image folder or glob")
    parser.add_argument("--calibration-frames", type=int, default=DEFAULT_CALIBRATION_FRAMES,
                        help="--int8: how many of its first frames (default %(default)s)")
    cli.add_threads_argument(parser)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    args = cli.parse_with_overrides(parser, argv)
    try:
        cli.check_output_file(args.out, "ONNX file")
        if args.torchscript is not None:
            cli.check_output_file(args.torchscript, "TorchScript file")
        if args.int8 is not None:
            cli.check_output_file(args.int8, "int8 ONNX file")
            if not args.calibration:
                raise ValueError("--int8 needs --calibration (a video, image folder or glob of frames to calibrate on)")
            calibration = read_calibration_frames(args.calibration, args.calibration_frames)
        cli.apply_threads(args.threads)
        announce(f"loading the model ({args.weights or 'demo model'}) ...")
        cfg, model, names, cat_ids = load_vis_model(args.config, args.weights, args.overrides, "cpu")
        divisor = max(1, cfg.data.size_divisor)
        height = args.height or -(-cfg.data.test_min_size // divisor) * divisor
        width = args.width or -(-cfg.data.test_max_size // divisor) * divisor
        args.out.parent.mkdir(parents=True, exist_ok=True)
        path = export_onnx(model, args.out, height, width, extra={"class_names": names, "cat_ids": cat_ids})
        print(f"wrote {path} (example input {height}x{width}; H and W dynamic)")
        if args.torchscript is not None:
            print(f"wrote {export_torchscript(model, args.torchscript, height, width)}")
        if args.int8 is not None:
            args.int8.parent.mkdir(parents=True, exist_ok=True)
            feeds = calibration_feeds(calibration, read_settings(path), cfg.data.test_min_size,
                                      cfg.data.test_max_size, args.calibration_frames)
            print(f"wrote {quantize_onnx(path, args.int8, feeds)} (int8, calibrated on {len(feeds)} frames)")
        if args.check:
            image = torch.rand(1, 3, height, width)
            size = torch.tensor([float(height), float(width)])
            with torch.no_grad():
                want = FrameNetwork(model)(image, size)
            for label, file in (("onnxruntime", path), ("int8", args.int8)):
                if file is None:
                    continue
                got = OnnxQueryInstVIS(file).run_network(image, (height, width))
                for name, a, b in zip(("cls_logits", "boxes", "mask_logits", "embeddings"), got, want):
                    print(f"  {name:<12} max |{label} - pytorch| = {float((a - b).abs().max()):.2e} "
                          f"(max |pytorch| {float(b.abs().max()):.2e})")
    except (ValueError, FileNotFoundError, ImportError) as e:
        return cli.fail(e)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
