"""What every command-line tool in ``tools/`` shares: exit codes, one-line error messages, the ``main()``
wrapper, device selection, ``--threads`` and where ``key=value`` config overrides may stand.

This module is imported by every tool before anything else, so it imports neither torch nor the training
engine at module level: a JSON-only tool (``tools/ytvis_to_coco.py``) starts in the time Python and its
own imports take. ``select_device`` imports torch when it is called.

The convention (docs/design.md#conventions): a user error (a missing file, a malformed JSON, a bad
argument) is reported as ONE line ``error: <message>`` on stderr and the tool exits with
``EXIT_BAD_INPUT`` (2); nothing is written for the failed input.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: torch is imported lazily by select_device
    import torch

EXIT_OK = 0
EXIT_BAD_INPUT = 2  # bad arguments or input: one "error: ..." line, nothing written for that input
EXIT_DAMAGED = 3  # an input was truncated or corrupt mid-way: what decoded was processed (tools/track_video.py)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as a shell reports it

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError)  # ConfigError is a ValueError

# The repository root in a checkout (the folder holding configs/, models/, assets/ and tools/); meaningful
# only there (the tests use it). The package's own files (configs, demo model, sample clip) are found with
# queryinst/resources.py, which works from an installed wheel too.
REPO_ROOT = Path(__file__).resolve().parents[1]


def error_message(error: BaseException) -> str:
    """A user error's message on one line, for the tools' ``error: ...`` output.

    An error raised in a DataLoader worker is re-raised in the main process with the worker's
    traceback in its message; its last line (``FileNotFoundError: image file not found: ...``) holds the
    original message, which is returned without the type name.
    """
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if len(lines) == 1:
        return lines[0]
    name, sep, rest = lines[-1].partition(": ")
    return rest if sep and name.endswith("Error") else lines[-1]


def listing(items: Sequence[object], limit: int = 20) -> str:
    """``items`` for a one-line message: the first ``limit``, then how many more ("a, b, c and 4 more")."""
    shown = ", ".join(str(item) for item in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def fail(error: BaseException | str, status: int = EXIT_BAD_INPUT) -> int:
    """Print ``error: <one line>`` on stderr and return ``status`` (the tool's exit code)."""
    text = error if isinstance(error, str) else error_message(error)
    print(f"error: {text}", file=sys.stderr)
    return status


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None,
        errors: tuple[type[BaseException], ...] = USER_ERRORS) -> int:
    """Call a tool's ``main(argv)`` and return its exit code; a user error that escapes it becomes one
    ``error: ...`` line and ``EXIT_BAD_INPUT``. Use as ``sys.exit(cli.run(main))``."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        # Every tool writes to temporary names and renames when an output is complete (and removes its
        # temporaries on the way out), so the unfinished output is simply absent.
        tool = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "the tool"
        print(f"interrupted: {tool} stopped by Ctrl-C; the unfinished output was not written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except errors as error:
        return fail(error)


def _writable_folder_problem(folder: Path) -> str | None:
    """None when a file can be created in ``folder`` (checked by creating and removing one: as root,
    ``os.access`` says yes even on a read-only file system), else why not."""
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=folder)
    except OSError as err:
        return f"{folder} is not writable ({err.strerror or type(err).__name__})"
    os.close(fd)
    os.unlink(probe)
    return None


def _folder_problem(target: Path) -> str | None:
    """Why ``target`` cannot be (or become) a folder to write into, or None."""
    if target.exists() and not target.is_dir():
        return f"{target} is a file, not a folder"
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file"
    return _writable_folder_problem(existing)


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Check, before any work, that ``path`` is or can become a folder the tool writes into.

    Nothing is created. Raises ValueError naming the path: it exists and is not a folder, it lies under an
    existing file, or the nearest existing folder above it is not writable."""
    target = Path(path).expanduser().absolute()
    problem = _folder_problem(target)
    if problem:
        raise ValueError(f"{path}: cannot write the {what} there: {problem}")
    return target


def check_output_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """Check, before any work, that the file ``path`` can be written (see ``check_output_dir``); it must
    not be an existing folder. Nothing is created."""
    target = Path(path).expanduser().absolute()
    problem = f"{target} is a folder" if target.is_dir() else _folder_problem(target.parent)
    if problem:
        raise ValueError(f"{path}: cannot write the {what} there: {problem}")
    return target


def select_device(name: str) -> "torch.device":
    """``run.device``: "auto" (CUDA when available), "cpu" or "cuda"; under torchrun CUDA uses LOCAL_RANK.

    Raises:
        ValueError: an unknown name, or "cuda" without a CUDA device.
    """
    if name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"run.device must be 'auto', 'cpu' or 'cuda', got '{name}'")
    import torch

    from queryinst.image.distributed import get_local_rank

    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("run.device is 'cuda' but no CUDA device is available")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", get_local_rank())


# --------------------------------------------------------------------------------------------------
# --threads
# --------------------------------------------------------------------------------------------------
def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _cpu_times() -> tuple[int, int, int]:
    """(cores, busy jiffies, total jiffies) of the whole machine from /proc/stat (Linux)."""
    with open("/proc/stat") as f:
        lines = f.read().splitlines()
    fields = [int(v) for v in lines[0].split()[1:9]]  # user nice system idle iowait irq softirq steal
    cores = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    idle = fields[3] + fields[4]
    return max(1, cores), sum(fields) - idle, sum(fields)


def busy_cores(interval: float = 0.25) -> float:
    """How many cores other processes keep busy right now (this process idles while it measures): two
    reads of /proc/stat ``interval`` seconds apart; the 1-minute load average where there is no /proc."""
    try:
        cores, busy0, total0 = _cpu_times()
        time.sleep(interval)
        _, busy1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return float(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0.0
    return cores * (busy1 - busy0) / max(1, total1 - total0)


def default_threads() -> int:
    """The default of ``--threads``: ``OMP_NUM_THREADS`` when set, else the cores this process may use
    (its CPU affinity) that other processes do not keep busy at start, at least 1.

    Why (docs/faq.md, "threads"): beside one CPU-bound process on this 2-core machine, the demo loop at
    192x320 took 37 ms a frame with 1 thread and 199 ms with 2 (passive OpenMP waiting; 78 ms spinning),
    while alone 1 and 2 threads took the same 37 ms; larger models gain from every idle core."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    usable = _usable_cores()
    if usable == 1:
        return 1
    return max(1, min(usable, usable - int(busy_cores() + 0.5)))


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: torch's intra-op CPU threads (also ONNX Runtime's, where a tool uses it)."""
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads of the network (default: OMP_NUM_THREADS, else the cores that other "
                             "processes do not keep busy at start)")


def apply_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to ``threads`` (None: ``default_threads()``); returns the number set.

    Raises ValueError for a number below 1. Imports torch.
    """
    n = default_threads() if threads is None else threads
    if n < 1:
        raise ValueError(f"--threads must be >= 1, got {n}")
    import torch

    torch.set_num_threads(n)
    return n


# --------------------------------------------------------------------------------------------------
# key=value overrides wherever they stand
# --------------------------------------------------------------------------------------------------
_OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*=")


def looks_like_override(arg: str) -> bool:
    """True for ``section.key=value`` that is not an existing file (a file may have '=' in its name)."""
    return bool(_OVERRIDE.match(arg)) and not os.path.exists(arg)


def parse_with_overrides(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None,
                         lists: Sequence[str] = (), overrides: str = "overrides") -> argparse.Namespace:
    """``parser.parse_intermixed_args(argv)``, then every ``key=value`` that a list option (``nargs='+'``,
    named in ``lists`` by its dest, e.g. "input") swallowed is moved to the ``overrides`` list, so an
    override stands anywhere: ``--input a.mp4 tracker.mode=masktrack`` tracks a.mp4 with that override.
    An existing file whose name has '=' stays an input.

    Raises ValueError (before any work) for an override that is not ``key=value`` with a dotted key.
    """
    args = parser.parse_intermixed_args(argv)
    moved: list[str] = []
    for dest in lists:
        values = getattr(args, dest, None)
        if not isinstance(values, list):
            continue
        keep = [v for v in values if not looks_like_override(v)]
        moved += [v for v in values if looks_like_override(v)]
        if not keep:
            raise ValueError(f"--{dest.replace('_', '-')}: only config overrides ({' '.join(moved)}) were given, "
                             f"no {dest}")
        setattr(args, dest, keep)
    given = list(getattr(args, overrides, None) or [])
    for item in given:
        if not _OVERRIDE.match(item):
            raise ValueError(f"{item}: not a key=value config override (e.g. tracker.mode=masktrack); "
                             f"a file goes after its option (--input {item})")
    setattr(args, overrides, given + moved)
    return args


def process_shard(items: Sequence, what: str = "inputs") -> list:
    """This process's share of ``items`` under torchrun (every WORLD_SIZE-th item from RANK; the
    environment variables torchrun sets, no process group needed); all of them in a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", "0") or 0)
    if world <= 1:
        return list(items)
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} outside WORLD_SIZE={world}")
    return list(items)[rank::world]
