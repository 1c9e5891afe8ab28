"""What every command-line tool in ``tools/`` shares: exit codes, one-line error messages, the ``main()``
wrapper and device selection.

This module is imported by every tool before anything else, so it imports neither torch nor the training
engine at module level: a JSON-only tool (``tools/ytvis_to_coco.py``) starts in the time Python and its
own imports take. ``select_device`` imports torch when it is called.

The convention (docs/design.md#conventions): a user error (a missing file, a malformed JSON, a bad
argument) is reported as ONE line ``error: <message>`` on stderr and the tool exits with
``EXIT_BAD_INPUT`` (2); nothing is written for the failed input.
"""
from __future__ import annotations

import os
import sys
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

# The repository root (the folder holding configs/, models/ and assets/), found from this file so that the
# tools' default paths do not depend on the current directory.
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
