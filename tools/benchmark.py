"""Time QueryInst-VIS against its peers in one process and check the speed targets (docs/benchmarks.md).

    python tools/benchmark.py --threads 2 --out benchmarks/cpu.json [--repeats 10] [--warmup 2] \\
        [--sections vis image tracker eval realtime decode contention training] [--no-onnx] [--tiny]

Prints the tables (absolute medians, ratios, load average, top operators, targets) and writes the
whole report as JSON (atomically). Threads are fixed with torch.set_num_threads before anything runs;
set OMP_WAIT_POLICY in the environment if wanted (it is recorded). --tiny runs seconds-long settings
for smoke tests (its timings mean nothing).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import tempfile
from pathlib import Path

import torch

from queryinst import cli
from queryinst.vis.bench.harness import SECTIONS, BenchmarkSettings, run_benchmark
from queryinst.vis.bench.report import format_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (also ONNX Runtime's)")
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    parser.add_argument("--repeats", type=int, help="timed rounds per section (default 10)")
    parser.add_argument("--warmup", type=int, help="untimed calls of every case first (default 2)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, help="default: all")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime cases")
    parser.add_argument("--tiny", action="store_true", help="tiny models and inputs (smoke tests)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads < 1:
        return cli.fail("--threads must be >= 1")
    if args.out is not None:
        cli.check_output_file(args.out, "report")  # raised before any timing: cli.run prints it
    torch.set_num_threads(args.threads)
    settings = BenchmarkSettings.tiny() if args.tiny else BenchmarkSettings()
    if args.repeats is not None:
        settings.repeats = args.repeats
    if args.warmup is not None:
        settings.warmup = args.warmup
    if args.sections:
        settings.sections = tuple(args.sections)
    settings.onnx = not args.no_onnx
    command = shlex.join(["python", "tools/benchmark.py", *(sys.argv[1:] if argv is None else argv)])
    report = run_benchmark(settings, command)
    print(format_report(report))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{args.out.name}.", dir=args.out.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(report, f, indent=1)
        os.replace(tmp, args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
