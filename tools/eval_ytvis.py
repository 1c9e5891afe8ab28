"""Score YouTube-VIS results against an annotated split with the official video-mask AP/AR.

    python tools/eval_ytvis.py --gt train_split.json --results results.json [--json-out metrics.json]

``--results`` may be ``results.json`` or a submission ``results.zip``. Prints the 12 stats in the
official table; ``--json-out`` writes them as JSON (atomically). On a missing file, malformed JSON or
invalid records it prints one ``error: <file>: <problem>`` line and exits with status 1.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from queryinst import cli
from queryinst.vis.eval.submission import read_results
from queryinst.vis.eval.ytvis_eval import YTVISEvaluator, format_summary, load_ytvis_gt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gt", required=True, type=Path, help="annotated YouTube-VIS JSON")
    parser.add_argument("--results", required=True, type=Path, help="results.json or results.zip")
    parser.add_argument("--json-out", type=Path, help="write the 12 stats to this JSON file")
    args = parser.parse_args(argv)
    try:
        if args.json_out is not None:
            cli.check_output_file(args.json_out, "--json-out file")
        gt = load_ytvis_gt(args.gt)
        try:
            evaluator = YTVISEvaluator(gt)
        except ValueError as err:
            raise ValueError(f"{args.gt}: {err}") from None
        results = read_results(args.results)
        try:
            stats = evaluator.evaluate(results)
        except ValueError as err:
            raise ValueError(f"{args.results}: {err}") from None
    except (OSError, ValueError) as err:
        return cli.fail(str(err))
    print(format_summary(stats))
    if args.json_out is not None:
        try:
            _write_json_atomic(stats, args.json_out)
        except OSError as err:
            return cli.fail(f"{args.json_out}: cannot write ({err.strerror or err})")
        print(f"wrote {args.json_out}")
    return cli.EXIT_OK


def _write_json_atomic(data: dict, path: Path) -> None:
    """Write to a temporary file next to ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
        raise


if __name__ == "__main__":
    sys.exit(cli.run(main))
