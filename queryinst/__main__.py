"""The ``queryinst`` command: one console script whose subcommands are the command-line tools.

    queryinst track --input clip.mp4 --output out/        # = python tools/track_video.py ...
    queryinst <subcommand> --help                          # the tool's own help
    queryinst --help | --version
    python -m queryinst ...                                # the same

``queryinst <subcommand> [args]`` runs ``queryinst.tools.<tool>.main(args)`` through ``cli.run``: the same
code, options, exit codes and one-line errors as ``python tools/<tool>.py [args]`` in the repository
(docs/design.md#conventions). Only the chosen tool is imported, so ``queryinst --help`` and the JSON-only
subcommands start without torch. An unknown subcommand is one ``error:`` line (with the closest name, when
one is close) and exit status 2.
"""
from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Sequence

from queryinst import __version__, cli

# subcommand -> (module under queryinst.tools, one line for `queryinst --help`). tools/make_sample_video.py and
# tools/package_demo_model.py write the repository's own shipped files and stay repository scripts.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "track": ("track_video", "track the instances of videos, image folders or globs: annotated MP4 + JSON"),
    "webcam": ("webcam", "live demo on a camera or stream, with optional recording"),
    "image": ("demo_image", "run an image QueryInst checkpoint on images and write overlays"),
    "train": ("train", "train QueryInst (COCO format) or QueryInst-VIS (YouTube-VIS format)"),
    "test": ("test", "evaluate an image checkpoint on a COCO-format split (box and mask AP)"),
    "submit": ("submit_ytvis", "run QueryInst-VIS on a YouTube-VIS split and write the submission zip"),
    "eval": ("eval_ytvis", "score YouTube-VIS results against a labelled split (video AP/AR)"),
    "convert": ("convert_to_ytvis", "per-frame COCO annotations or id-mask PNGs -> YouTube-VIS JSON"),
    "convert-mmdet": ("convert_mmdet", "mmdetection QueryInst checkpoint -> this toolkit's format"),
    "ytvis-to-coco": ("ytvis_to_coco", "frames of a labelled YouTube-VIS split -> COCO-format instances"),
    "export": ("export_onnx", "export the per-frame QueryInst-VIS network to ONNX (and TorchScript)"),
    "benchmark": ("benchmark", "time QueryInst-VIS against its peers and check the speed targets"),
    "synth": ("make_synthetic", "generate the synthetic datasets (COCO images, YouTube-VIS videos)"),
    "oracle": ("tracker_oracle", "score the online tracker alone on ground-truth detections"),
    "compare-embeddings": ("compare_embeddings", "video AP of each association embedding (track head, queries, ...)"),
    "stream-memory": ("stream_memory", "peak memory of the streaming loop against video length"),
}


def usage() -> str:
    """The text of ``queryinst --help``: the synopsis and one line per subcommand."""
    width = max(map(len, SUBCOMMANDS))
    lines = [f"usage: queryinst <subcommand> [args ...]   (queryinst <subcommand> --help for its options)",
             "       queryinst --help | --version", "",
             f"QueryInst-VIS {__version__}: video instance segmentation, tracking and YouTube-VIS tools.", "",
             "subcommands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    lines += ["", "Without --config/--weights, track and webcam use the demo model shipped in the package."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``queryinst [subcommand] [args]``; returns the exit status (the console script's entry point)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        return cli.fail("no subcommand given (queryinst --help lists them)")
    if args[0] in ("-h", "--help", "help"):
        print(usage())
        return cli.EXIT_OK
    if args[0] in ("-V", "--version"):
        print(f"queryinst {__version__}")
        return cli.EXIT_OK
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        close = difflib.get_close_matches(name, SUBCOMMANDS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f" (one of: {', '.join(SUBCOMMANDS)})"
        return cli.fail(f"unknown subcommand '{name}'{hint}")
    tool = importlib.import_module(f"queryinst.tools.{SUBCOMMANDS[name][0]}")
    # argparse names the program after sys.argv[0]: the tool's usage and Ctrl-C lines say "queryinst track"
    saved = sys.argv[0] if sys.argv else ""
    sys.argv[:1] = [f"queryinst {name}"]
    try:
        return cli.run(tool.main, rest)
    finally:
        sys.argv[0] = saved


if __name__ == "__main__":
    sys.exit(main())
