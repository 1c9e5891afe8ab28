"""Export the frames of a labelled YouTube-VIS-format split as a COCO-format instance set (one image per
listed frame, file names relative to the split's JPEGImages), to train or evaluate the image model on
a video dataset's frames.

    python tools/ytvis_to_coco.py --json data/synth_ytvis/train/annotations.json --out data/synth_ytvis/train/frames_coco.json
"""
from __future__ import annotations

import argparse
import json
import sys

from queryinst import cli
from queryinst.vis.data.convert import write_json_atomic, ytvis_to_coco_frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", required=True, help="YouTube-VIS JSON with annotations")
    parser.add_argument("--out", required=True, help="COCO JSON to write")
    args = parser.parse_args(argv)
    try:
        cli.check_output_file(args.out)
        try:
            with open(args.json) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"{args.json}: not found") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{args.json}: not valid JSON ({e})") from None
        if not isinstance(data, dict) or "annotations" not in data or "videos" not in data:
            raise ValueError(f"{args.json}: not a labelled YouTube-VIS split (needs 'videos' and 'annotations')")
        coco = ytvis_to_coco_frames(data, args.json)
        write_json_atomic(coco, args.out)
    except (ValueError, FileNotFoundError) as e:
        return cli.fail(e)
    print(f"{len(coco['images'])} frames, {len(coco['annotations'])} instances -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
