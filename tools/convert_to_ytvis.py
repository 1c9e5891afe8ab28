"""Convert per-frame COCO annotations or instance-id mask PNGs into a YouTube-VIS JSON.

    python tools/convert_to_ytvis.py coco --input coco_vid.json|per_frame_folder/ --output train.json \\
        [--track-key instance_id]
    python tools/convert_to_ytvis.py png --masks Annotations/ --meta meta.json --output train.json \\
        [--frame-suffix .jpg]

The accepted layouts are described in vis/data/convert.py: "coco" takes one CocoVID JSON (images with
video_id + frame_id, annotations with a track id) or a folder <video>/<frame>.json of per-frame COCO
JSONs; "png" takes DAVIS / YouTube-VOS style folders of instance-id PNGs plus a meta.json mapping each
video's instance ids to categories. The output (written atomically) holds videos, annotations with one
compressed RLE / box / area (or null) per frame, and categories. Errors print one "error: ..." line
and exit with status 2; nothing is written then.
"""
from __future__ import annotations

import argparse
import sys

from queryinst import cli
from queryinst.vis.data.convert import load_coco_annotations, png_masks_to_ytvis, write_json_atomic



def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="format", required=True)
    coco = sub.add_parser("coco", help="per-frame COCO annotations with a track id")
    coco.add_argument("--input", required=True, help="CocoVID JSON, or a folder of <video>/<frame>.json")
    coco.add_argument("--track-key", default="instance_id", help="annotation key holding the track id")
    coco.add_argument("--output", required=True, help="YouTube-VIS JSON to write")
    png = sub.add_parser("png", help="instance-id mask PNGs + meta.json")
    png.add_argument("--masks", required=True, help="folder with one sub-folder of PNGs per video")
    png.add_argument("--meta", required=True, help="meta.json: per video, instance id -> category")
    png.add_argument("--frame-suffix", default=".jpg", help="suffix of the frame files named in the output")
    png.add_argument("--output", required=True, help="YouTube-VIS JSON to write")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cli.check_output_file(args.output)
        if args.format == "coco":
            ytvis = load_coco_annotations(args.input, args.track_key)
        else:
            ytvis = png_masks_to_ytvis(args.masks, args.meta, args.frame_suffix)
        path = write_json_atomic(ytvis, args.output)
    except (ValueError, FileNotFoundError) as e:
        return cli.fail(e)
    except OSError as e:
        return cli.fail(f"{args.output}: cannot write ({e.strerror or e})")
    print(f"{len(ytvis['videos'])} videos, {len(ytvis['annotations'])} tracks, "
          f"{len(ytvis['categories'])} categories -> {path}")
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.run(main))
