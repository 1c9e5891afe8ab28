"""Generate the synthetic datasets (COCO-format shapes, YouTube-VIS-format videos).

    python tools/make_synthetic.py coco  --out data/synth_coco  --num-images 500 [--val 100]
    python tools/make_synthetic.py ytvis --out data/synth_ytvis --num-videos 60 --length 20 [--valid 10]

Without --val/--valid the dataset is written to --out directly; with them, --out gets a labelled
``train`` split and a held-out ``val`` (COCO) / ``valid`` (YouTube-VIS: valid.json without
annotations + valid_gt.json) split. Layouts: image/data/synthetic.py, vis/data/synthetic.py.
"""
from __future__ import annotations

import argparse
import sys

from queryinst import cli
from queryinst.image.data.synthetic import CocoSceneOptions, make_coco_dataset, make_coco_splits
from queryinst.vis.data.synthetic import (
    VideoSceneOptions,
    YTVISFiles,
    make_ytvis_dataset,
    make_ytvis_splits,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    coco = sub.add_parser("coco", help="COCO-format images of textured shapes")
    coco.add_argument("--num-images", type=int, default=200)
    coco.add_argument("--val", type=int, default=0, help="also write a held-out split of N images")
    coco.add_argument("--height", type=int, default=256)
    coco.add_argument("--width", type=int, default=320)
    coco.add_argument("--max-objects", type=int, default=CocoSceneOptions.max_objects)
    coco.add_argument("--class-colours", action="store_true", help="each class its own hue band")
    ytvis = sub.add_parser("ytvis", help="YouTube-VIS-format videos of moving shapes")
    ytvis.add_argument("--num-videos", type=int, default=40)
    ytvis.add_argument("--valid", type=int, default=0, help="also write a held-out split of N videos")
    ytvis.add_argument("--length", type=int, default=10, help="listed (annotated) frames per video")
    ytvis.add_argument("--annotate-every", type=int, default=1, help="raw frames between listed frames")
    ytvis.add_argument("--height", type=int, default=192)
    ytvis.add_argument("--width", type=int, default=320)
    ytvis.add_argument("--max-objects", type=int, default=VideoSceneOptions.max_objects)
    ytvis.add_argument("--class-colours", action="store_true", help="each class its own hue band")
    ytvis.add_argument("--speed", type=float, default=VideoSceneOptions.speed,
                       help="object sides moved per raw frame (0.2: about its own size over 5 frames)")
    for sp in (coco, ytvis):
        sp.add_argument("--out", required=True, help="output folder (built beside it, then renamed)")
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    return parser


def _describe(split: str, files: YTVISFiles) -> str:
    extra = f" (annotations: {files.gt_json_path})" if files.gt_json_path != files.json_path else ""
    return f"{split}: {files.json_path}{extra}, frames in {files.frames_root}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cli.check_output_dir(args.out)
        if args.kind == "coco":
            options = CocoSceneOptions(max_objects=args.max_objects, class_colours=args.class_colours)
            if args.val:
                paths = make_coco_splits(args.out, args.num_images, args.val, args.height, args.width, args.seed,
                                         options, args.overwrite, progress=True)
                for split, path in paths.items():
                    print(f"{split}: {path}, images in {path.parent / 'images'}")
            else:
                path = make_coco_dataset(args.out, args.num_images, args.height, args.width, args.seed,
                                         options, args.overwrite, progress=True)
                print(f"wrote {path}, images in {path.parent / 'images'}")
        else:
            options = VideoSceneOptions(max_objects=args.max_objects, speed=args.speed,
                                        class_colours=args.class_colours)
            if args.valid:
                splits = make_ytvis_splits(args.out, args.num_videos, args.valid, args.length, args.height,
                                           args.width, args.seed, args.annotate_every, options, args.overwrite,
                                           progress=True)
                for split, files in splits.items():
                    print(_describe(split, files))
            else:
                files = make_ytvis_dataset(args.out, args.num_videos, args.length, args.height, args.width,
                                           args.seed, args.annotate_every, False, options, args.overwrite,
                                           progress=True)
                print(_describe("wrote", files))
    except (ValueError, FileNotFoundError) as err:
        print(f"make_synthetic: error: {err}", file=sys.stderr)
        return cli.EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
