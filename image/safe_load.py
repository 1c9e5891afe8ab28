"""The one reader of checkpoint files: ``torch.load(weights_only=True)`` with errors a person can act on.

Every tool reads weights through ``read_torch_file``. It never executes pickled code and never passes
torch's own advice on ("weights_only=False will likely succeed", "add_safe_globals([...])"): a file
that needs that is reported as what it is.

    empty file (0 bytes)
    a git-LFS pointer, not the weights (run git lfs pull)
    refused: the file holds pickled code or objects (`builtins.exec`); it may be unsafe and is not loaded
    not a readable PyTorch checkpoint: truncated or corrupt (<the reason, one line>)
"""
from __future__ import annotations

import io
import os
import pickle
import pickletools
import re
import warnings
import zipfile
from typing import Any

import torch

LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_ADVICE = ("weights_only", "weights only", "add_safe_globals", "safe_globals", "re-running", "check the recommended",
           "file an issue", "documentation of torch.load")
# What weights_only loading itself needs from a legacy (non-zip) torch file: anything else is foreign.
_TORCH_MODULES = ("torch", "collections")
_MAX_SCAN_BYTES = 64 << 20


class UnsafeCheckpointError(ValueError):
    """The file holds pickled code or objects that ``weights_only`` loading refuses; ``names`` lists them."""

    def __init__(self, path: str, names: list[str], hint: str = "") -> None:
        self.names = names
        listed = ", ".join(f"`{n}`" for n in names) if names else "unknown objects"
        super().__init__(f"{path}: refused: the file holds pickled code or objects ({listed}); "
                         f"it may be unsafe and is not loaded{f' ({hint})' if hint else ''}")


def refused_globals(path: str) -> list[str]:
    """The globals ``weights_only`` loading would refuse in ``path`` (zip format; [] when unreadable)."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except (RuntimeError, ValueError, OSError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError):
        return []


def pickled_globals(path: str) -> list[str]:
    """The ``module.name`` globals a non-zip pickle stream in ``path`` refers to, read with pickletools
    (opcodes are parsed, nothing is executed); [] for a zip file or bytes that are no pickle."""
    if zipfile.is_zipfile(path):
        return []
    with open(path, "rb") as f:
        data = f.read(_MAX_SCAN_BYTES)
    found: list[str] = []
    stream = io.BytesIO(data)
    while stream.tell() < len(data):  # legacy torch files are several pickles in a row
        strings: list[str] = []
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
                    strings.append(str(arg))
                elif op.name == "GLOBAL":
                    found.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
                elif op.name == "STOP":
                    break
            else:
                break
        except (ValueError, EOFError, pickle.UnpicklingError, UnicodeDecodeError):
            break
    found = [g.replace("__builtin__.", "builtins.", 1) for g in found]  # protocol-2 spelling
    return sorted({g for g in found if not g.startswith(_TORCH_MODULES)})


def plain_reason(err: BaseException) -> str:
    """One line of an error's text without ANSI colour codes or torch's weights_only advice (the first
    sentence of it, when the line goes on)."""
    lines = [_ANSI.sub("", ln).strip() for ln in str(err).splitlines()]
    lines = [ln for ln in lines if ln]
    for line in lines:
        if not any(word in line.lower() for word in _ADVICE):
            return line.split(". ")[0].rstrip(".")
    return type(err).__name__


def check_not_placeholder(path: str) -> None:
    """FileNotFoundError / ValueError for a missing file, an empty file or a git-LFS pointer."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError(f"{path}: empty file (0 bytes), not a checkpoint")
    with open(path, "rb") as f:
        head = f.read(len(LFS_POINTER_PREFIX))
    if head == LFS_POINTER_PREFIX:
        raise ValueError(f"{path}: a git-LFS pointer, not the weights (run git lfs pull)")


def read_torch_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError (a ValueError): pickled code or objects that weights_only refuses; the
            message names them and the file is not loaded.
        ValueError: an empty file, a git-LFS pointer, or a truncated or corrupt file (one line, the file named).
    """
    path = os.fspath(path)
    check_not_placeholder(path)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": not the user's concern
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        names = refused_globals(path) or pickled_globals(path) or _GLOBAL.findall(_ANSI.sub("", str(e)))
        if names:
            raise UnsafeCheckpointError(path, sorted(set(names))) from None
        raise ValueError(f"{path}: not a readable PyTorch checkpoint: truncated or corrupt ({plain_reason(e)})") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, AttributeError, ImportError, IndexError,
            KeyError, TypeError, ValueError, MemoryError) as e:
        raise ValueError(f"{path}: not a readable PyTorch checkpoint: truncated or corrupt ({plain_reason(e)})") from None
