"""Run QueryInst-VIS on a YouTube-VIS split and write the submission zip.

    python tools/submit_ytvis.py --weights W.pth [--config C.yaml] \\
        --json data/ytvis2019/valid.json --frames data/ytvis2019/valid/JPEGImages --out results.zip \\
        [--backend onnxruntime|onnxruntime-int8 [--calibration SOURCE] [--calibration-frames 16]]

The checkpoint's stored config is used unless --config is given. An image QueryInst checkpoint (no track
head) tracks with its query embeddings (docs/design.md#association-embeddings); its classes must be the
split's.

Every video of the split goes through the online path (frame by frame: detector -> tracker), then
per-track aggregation (mean score, majority category). The records are validated against the split
(every video id known, one segmentation per frame, RLE sizes = video size, scores in [0, 1]) and
written as ``results.zip`` holding ``results.json`` at its root, atomically. ``--results-json`` also
keeps the plain JSON (for tools/eval_ytvis.py on a split with labels).

--backend onnxruntime runs the network in ONNX Runtime on the CPU (exported at start); onnxruntime-int8 also
quantises it to int8 (vis/modeling/quantize.py), calibrated on --calibration-frames frames: those of
--calibration (a video, image folder or glob, its first frames), else the split's own (the first frame of
every video, then the second, ...), read without their labels.

Under ``torchrun --nproc_per_node N [--nnodes ...]`` the videos are sharded over the ranks (each on its
own device: ``cuda:LOCAL_RANK``, or the CPU with gloo); rank 0 gathers the records and writes the same
zip a single process writes.
"""
from __future__ import annotations

import argparse
import itertools
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from queryinst import cli, weights
from queryinst.progress import announce
from queryinst.image.atomic import write_json_atomic
from queryinst.image.distributed import cleanup, gather_to_main, get_rank, get_world_size, init_from_env
from queryinst.tracking import OnlineTracker
from queryinst.vis.data.ytvis import YTVISDataset, load_frame
from queryinst.vis.eval.submission import in_split_order, validate_results, write_results_zip
from queryinst.vis.inference import predict_split
from queryinst.vis.modeling.build import load_vis_model
from queryinst.vis.modeling.quantize import add_backend_arguments, runtime_model


def split_calibration_frames(videos: Sequence) -> Iterator:
    """The split's frames for int8 calibration, spread over its videos: the first frame of every video, then
    the second of every video, and so on (RGB uint8, read one at a time)."""
    for paths in itertools.zip_longest(*(v.frame_paths for v in videos)):
        yield from (load_frame(p) for p in paths if p is not None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True,
                        help="QueryInst-VIS checkpoint (tools/train.py, task: vis), or an image QueryInst "
                             f"checkpoint, which tracks with its query embeddings, or {weights.NAME_HELP}")
    parser.add_argument("--config", help="its config (default: the one stored in the checkpoint)")
    parser.add_argument("--json", required=True, help="the split's JSON (videos + categories)")
    parser.add_argument("--frames", required=True, help="the split's JPEGImages folder")
    parser.add_argument("--out", default="results.zip", help="submission zip to write")
    parser.add_argument("--results-json", default="", help="also write the plain results JSON here")
    parser.add_argument("--batch-frames", type=int, default=1, help="frames per network batch")
    add_backend_arguments(parser, "the split's frames")
    cli.add_threads_argument(parser)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    args = cli.parse_with_overrides(parser, argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cli.check_output_file(args.out, "submission zip")  # before the inference, not after it
        if args.results_json:
            cli.check_output_file(args.results_json, "results JSON")
        split = YTVISDataset(args.json, args.frames)
        cli.apply_threads(args.threads)
        announce(f"loading the model ({args.weights}) ...")
        # Loaded on the CPU, then moved: the device comes from the config the checkpoint brings.
        cfg, model, _, _ = load_vis_model(args.config, args.weights, args.overrides, device="cpu")
        if split.num_classes != cfg.model.num_classes:
            raise ValueError(f"{args.json}: {split.num_classes} categories, the model has {cfg.model.num_classes}")
        device = cli.select_device(cfg.run.device)  # under torchrun: cuda:LOCAL_RANK, or the CPU
        init_from_env(device)  # torchrun: join the group; one process: nothing
        rank, world = get_rank(), get_world_size()
        model = runtime_model(model.to(device), args.backend, cfg.data.test_min_size, cfg.data.test_max_size,
                              args.calibration or split_calibration_frames(split.videos), args.calibration_frames)
        # Under torchrun each rank tracks every world-th video; rank 0 gathers and writes. Videos are
        # independent (the tracker restarts per video), so the merged records equal one process's.
        records = predict_split(model, OnlineTracker(cfg.tracker), split.videos[rank::world], split.cat_ids,
                                cfg.data.test_min_size, cfg.data.test_max_size, args.batch_frames,
                                desc=Path(args.json).name + (f" (rank {rank}/{world})" if world > 1 else ""))
        gathered = gather_to_main(records)
        if gathered is None:  # not rank 0: rank 0 writes
            cleanup()
            return 0
        records = in_split_order(gathered, split.videos)
        cleanup()
        videos = [{"id": v.id, "length": v.length, "height": v.height, "width": v.width} for v in split.videos]
        validate_results(records, videos, split.cat_ids)
        if args.results_json:
            write_json_atomic(records, args.results_json)
        path = write_results_zip(records, args.out)
    except (ValueError, FileNotFoundError, ImportError) as e:
        return cli.fail(e)
    print(f"{len(records)} tracks over {len(split.videos)} videos -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
