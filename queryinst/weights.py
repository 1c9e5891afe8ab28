"""Weights by name: ``--weights queryinst_r50_ms3x_coco`` on every tool, and ``Predictor.from_pretrained`` /
``VideoTracker.from_pretrained`` with a name, resolve to a checkpoint file in a local cache.

    from queryinst.weights import resolve_weights

    path = resolve_weights("queryinst_r50_ms3x_coco")   # downloads, checks and converts once; then cached
    path = resolve_weights("work_dirs/x/last.pth")      # a file path comes back unchanged

The registry is ``queryinst/weights.yaml`` (shipped in the package; docs/model_zoo.md lists its names):
name -> URL, sha256 (whole, or mmdetection's 8-hex prefix), size, format, task, class names, config.
``$QUERYINST_REGISTRY`` (or ``registry=``) names a further YAML file of the same layout whose entries are
added to the shipped ones (and replace a shipped entry of the same name): releases of your own, or the
local test server of tests/test_weights.py.

The cache is ``$QUERYINST_HOME`` (default ``~/.cache/queryinst``)::

    checkpoints/<name>-<sha256[:8]>.pth   the checkpoint the tools load (ours; converted for mmdetection files)
    downloads/<file name of the URL>      an mmdetection file, only between its download and its conversion
    locks/<name>.lock                     one process fetches a name at a time (torchrun ranks wait)

``torch.hub.download_url_to_file`` downloads (its progress bar on a terminal) into a temporary file beside
the target, checks the sha256 and renames; an mmdetection file is then converted by
``queryinst.image.mmdet_import`` (written to a temporary name and renamed) and deleted: the conversion only
renames tensors (converting back gives every tensor bit for bit), so keeping both would double the disk
space for nothing. Every failure (no network, an HTTP error, a bad hash, a download cut short, a full
disk, an unknown name) raises ``WeightsError``, a ValueError with a one-line message, which the tools print
as ``error: ...`` with exit status 2; the cache then holds complete files only.

Importing this module imports neither torch nor the model code.
"""
from __future__ import annotations

import difflib
import errno
import http.client
import os
import re
import shutil
import sys
import urllib.error
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import yaml

from .progress import announce, is_terminal

REGISTRY_ENV = "QUERYINST_REGISTRY"  # a further registry YAML (added to the shipped one)
HOME_ENV = "QUERYINST_HOME"  # the cache folder
DEFAULT_HOME = "~/.cache/queryinst"
SHIPPED_REGISTRY = "weights.yaml"  # in the queryinst package, beside this module

FORMATS = ("mmdetection", "queryinst")
TASKS = ("image", "vis")
REQUIRED = ("url", "sha256", "format", "task", "classes")
OPTIONAL = ("size", "config", "source", "box_ap", "mask_ap")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # no dot, no slash: "x.pth" and "dir/x" are paths
HEX = re.compile(r"[0-9a-f]{8,64}")
MIN_HASH = 8  # hex digits: mmdetection's file names carry the first 8 of the sha256
# The tools' --weights help ends with this.
NAME_HELP = f"a registered name (docs/model_zoo.md), fetched once into ${HOME_ENV} (default {DEFAULT_HOME})"


class WeightsError(ValueError):
    """A registered name could not be turned into a checkpoint file (one-line message)."""


@dataclass(frozen=True)
class WeightsEntry:
    """One registered name (see queryinst/weights.yaml for the fields)."""

    name: str
    url: str
    sha256: str
    format: str
    task: str
    classes: str | tuple[str, ...]  # "coco" or the names themselves
    size: int | None = None
    config: str | None = None
    source: str = ""
    box_ap: float | None = None
    mask_ap: float | None = None
    registry: str = ""  # the YAML file it comes from

    @property
    def file_name(self) -> str:
        """The last part of the URL's path (the mmdetection file name)."""
        return self.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]

    @property
    def cache_name(self) -> str:
        """The file name of its checkpoint in the cache: the name and the first 8 hex of the hash, so that a
        new file under the same name never reuses an old conversion."""
        return f"{self.name}-{self.sha256[:MIN_HASH]}.pth"

    def class_names(self) -> list[str]:
        if self.classes == "coco":
            from .image.mmdet_import import COCO_CLASSES

            return list(COCO_CLASSES)
        return list(self.classes)

    def config_path(self) -> Path | None:
        """The config file: a path relative to the registry file's folder, else a shipped config
        (``configs/...``, found by ``queryinst.resources``). FileNotFoundError when neither exists."""
        if not self.config:
            return None
        local = Path(self.registry).parent / self.config
        if local.is_file():
            return local
        from . import resources

        return resources.path(self.config)


# --------------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------------
def _check_entry(name: str, raw: Any, where: str) -> WeightsEntry:
    """A WeightsEntry from one YAML mapping; ValueError naming the file, the name and the problem."""
    def bad(problem: str) -> ValueError:
        return ValueError(f"{where}: weights '{name}': {problem}")

    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"{where}: '{name}' is not a weights name (letters, digits, '_' and '-', no dot)")
    if not isinstance(raw, dict):
        raise bad(f"expected a mapping of {', '.join(REQUIRED)}, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL))
    missing = [k for k in REQUIRED if k not in raw]
    if unknown:
        raise bad(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(REQUIRED + OPTIONAL)})")
    if missing:
        raise bad(f"missing {', '.join(missing)}")
    url, digest = raw["url"], raw["sha256"]
    if not isinstance(url, str) or not url.startswith(("https://", "http://", "file://")):
        raise bad(f"url must start with https://, http:// or file://, got {url!r}")
    if not isinstance(digest, str) or not HEX.fullmatch(digest):
        raise bad(f"sha256 must be {MIN_HASH} to 64 lowercase hex digits, got {digest!r}")
    if raw["format"] not in FORMATS:
        raise bad(f"format must be one of {', '.join(FORMATS)}, got {raw['format']!r}")
    if raw["task"] not in TASKS:
        raise bad(f"task must be one of {', '.join(TASKS)}, got {raw['task']!r}")
    classes = raw["classes"]
    if classes != "coco" and not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        raise bad("classes must be 'coco' or a list of names")
    size = raw.get("size")
    if size is not None and not (isinstance(size, int) and size > 0):
        raise bad(f"size must be a number of bytes or null, got {size!r}")
    for key in ("box_ap", "mask_ap"):
        if raw.get(key) is not None and not isinstance(raw[key], (int, float)):
            raise bad(f"{key} must be a number or null, got {raw[key]!r}")
    return WeightsEntry(name=name, url=url, sha256=digest, format=raw["format"], task=raw["task"],
                        classes=classes if classes == "coco" else tuple(classes), size=size,
                        config=raw.get("config") or None, source=str(raw.get("source") or ""),
                        box_ap=raw.get("box_ap"), mask_ap=raw.get("mask_ap"), registry=where)


def read_registry(path: str | os.PathLike) -> dict[str, WeightsEntry]:
    """The entries of one registry YAML file. Raises FileNotFoundError / ValueError naming the file."""
    where = os.fspath(path)
    if not os.path.isfile(where):
        raise FileNotFoundError(f"weights registry not found: {where}")
    try:
        with open(where, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as err:
        reason = " ".join(str(err).split())
        raise ValueError(f"{where}: not a readable YAML file ({reason})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping of weights names, got {type(data).__name__}")
    return {name: _check_entry(name, raw, where) for name, raw in data.items()}


def shipped_registry_path() -> Path:
    return Path(str(importlib_resources.files("queryinst").joinpath(SHIPPED_REGISTRY)))


def load_registry(registry: str | os.PathLike | None = None) -> dict[str, WeightsEntry]:
    """Every registered name: the shipped registry, then the entries of ``registry`` (default:
    ``$QUERYINST_REGISTRY`` when set), which are added and win over a shipped entry of the same name."""
    entries = read_registry(shipped_registry_path())
    extra = os.fspath(registry) if registry is not None else os.environ.get(REGISTRY_ENV, "")
    if extra:
        try:
            entries.update(read_registry(extra))
        except FileNotFoundError:
            raise FileNotFoundError(f"weights registry not found: {extra}"
                                    f"{'' if registry is not None else f' (from ${REGISTRY_ENV})'}") from None
    return entries


def looks_like_name(text: str) -> bool:
    """True for a string that can only be a registered name, not a file path (no dot, no slash)."""
    return bool(NAME.fullmatch(text))


def unknown_name_message(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return (f"'{name}' is neither a checkpoint file nor a registered weights name: {hint}"
            f"known names: {', '.join(sorted(known))}")


# --------------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------------
def cache_home(home: str | os.PathLike | None = None) -> Path:
    """``home``, else ``$QUERYINST_HOME``, else ``~/.cache/queryinst`` (user folder expanded)."""
    chosen = os.fspath(home) if home is not None else (os.environ.get(HOME_ENV) or DEFAULT_HOME)
    return Path(chosen).expanduser()


def cached_path(entry: WeightsEntry, home: str | os.PathLike | None = None) -> Path:
    """Where ``entry``'s checkpoint is (or will be) in the cache."""
    return cache_home(home) / "checkpoints" / entry.cache_name


def _disk_error(err: OSError, entry: WeightsEntry, folder: Path) -> WeightsError:
    if err.errno == errno.ENOSPC:
        return WeightsError(f"cannot store {entry.name}: no space left on the device of {folder}: free some space "
                            f"or set {HOME_ENV} to a folder on another disk (nothing half-written was kept)")
    reason = err.strerror or " ".join(str(err).split()) or type(err).__name__
    return WeightsError(f"cannot store {entry.name} in {folder}: {reason} (set {HOME_ENV} to a writable folder)")


def _check_free_space(entry: WeightsEntry, folder: Path) -> None:
    """Fail before downloading when the registry gives the size and the disk cannot hold the files: the
    download, plus its conversion for an mmdetection file (about the same size)."""
    if entry.size is None:
        return
    need = entry.size * (2 if entry.format == "mmdetection" else 1)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise WeightsError(f"cannot store {entry.name}: it needs about {need / 2**20:.0f} MiB in {folder}, "
                           f"{free / 2**20:.0f} MiB are free: free some space or set {HOME_ENV} to another disk")


def _hash_error(err: RuntimeError, entry: WeightsEntry) -> WeightsError:
    got = re.search(r'got "([0-9a-f]+)"', str(err))
    digest = got[1][:16] + "..." if got else "another value"
    return WeightsError(f"{entry.name}: the file downloaded from {entry.url} has sha256 {digest}, not the "
                        f"published {entry.sha256}...: the download was cut short or the file on the server "
                        f"changed; nothing was kept in the cache (run again)")


def _download(entry: WeightsEntry, dst: Path, progress: bool) -> None:
    """``torch.hub.download_url_to_file`` with the entry's hash; its temporary file is removed on any
    failure, so ``dst`` appears complete and checked, or not at all."""
    import torch.hub

    announce(f"downloading {entry.name} from {entry.url} ...")
    try:
        torch.hub.download_url_to_file(entry.url, str(dst), hash_prefix=entry.sha256,
                                       progress=progress and is_terminal(sys.stderr))
    except urllib.error.HTTPError as err:
        raise WeightsError(f"cannot download {entry.name} from {entry.url}: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        reason = getattr(err.reason, "strerror", None) or str(err.reason)
        raise WeightsError(f"cannot download {entry.name} from {entry.url}: {reason} (no network?)") from None
    except (ConnectionError, TimeoutError, http.client.HTTPException) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise WeightsError(f"cannot download {entry.name} from {entry.url}: the connection broke off ({reason}); "
                           f"nothing was kept in the cache (run again)") from None
    except RuntimeError as err:
        if "invalid hash value" not in str(err):
            raise
        raise _hash_error(err, entry) from None
    except OSError as err:
        raise _disk_error(err, entry, dst.parent) from None


def _convert(entry: WeightsEntry, source: Path, target: Path) -> None:
    """The mmdetection file ``source`` -> our checkpoint ``target`` (temporary name, then renamed), with the
    registry's class names and config and the URL and hash as provenance."""
    from .image.config import load_config
    from .image.mmdet_import import convert_mmdet_checkpoint

    announce(f"converting {entry.name} (mmdetection format) ...")
    config = entry.config_path()
    cfg = load_config(str(config)) if config is not None else None
    try:
        # The file's hash was checked, and weights_only loading runs nothing from it: objects that it refuses
        # in mmdetection's 'meta' (numpy, mmengine) are read as inert placeholders (image/mmdet_import.py).
        convert_mmdet_checkpoint(str(source), str(target), cfg, stub_unknown_objects=True, overwrite=True,
                                 class_names=entry.class_names(),
                                 source={"name": entry.name, "url": entry.url, "sha256": entry.sha256})
    except OSError as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise _disk_error(err, entry, target.parent) from None
    except ValueError as err:
        raise WeightsError(f"{entry.name}: cannot convert {source}: {' '.join(str(err).split())}") from None


class _Lock:
    """One process fetches a name at a time; the others wait (and say so), then find it in the cache."""

    def __init__(self, path: Path, name: str) -> None:
        from filelock import FileLock

        self.lock, self.name = FileLock(str(path)), name

    def __enter__(self) -> _Lock:
        from filelock import Timeout

        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            announce(f"waiting for another process that is fetching {self.name} ...")
            self.lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def fetch(entry: WeightsEntry, progress: bool = True, home: str | os.PathLike | None = None) -> str:
    """The cached checkpoint of ``entry``: downloaded (and converted) on first use. Raises WeightsError."""
    target = cached_path(entry, home)
    if target.is_file():
        return str(target)
    root = cache_home(home)
    from .cli import check_output_dir

    try:
        check_output_dir(root, "weights cache")
    except ValueError as err:
        raise WeightsError(f"{err} (set {HOME_ENV} to a writable folder)") from None
    downloads = root / "downloads"
    try:
        for folder in (target.parent, downloads, root / "locks"):
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _disk_error(err, entry, root) from None
    with _Lock(root / "locks" / f"{entry.name}.lock", entry.name):
        if target.is_file():  # fetched by another process while this one waited
            return str(target)
        if entry.format == "queryinst":
            _check_free_space(entry, root)
            _download(entry, target, progress)
            return str(target)
        source = downloads / entry.file_name
        if not source.is_file():  # else: downloaded and checked before, its conversion failed (e.g. full disk)
            _check_free_space(entry, root)
            _download(entry, source, progress)
        _convert(entry, source, target)
        source.unlink()
    return str(target)


def resolve_weights(name_or_path: str | os.PathLike, progress: bool = True, *,
                    registry: str | os.PathLike | None = None, home: str | os.PathLike | None = None) -> str:
    """A checkpoint file path for ``name_or_path``.

    An existing path, or anything that is not name-like (it has a dot or a slash), comes back unchanged
    (the loader then reports a missing file as before). A registered name gives its cached checkpoint,
    downloaded, checked and converted on first use (progress: torch.hub's bar on a terminal).
    registry: a further registry YAML (default ``$QUERYINST_REGISTRY``); home: the cache folder (default
    ``$QUERYINST_HOME``, else ``~/.cache/queryinst``).

    Raises:
        WeightsError (a ValueError): an unknown name (the message lists the known names and the closest
            one), no network, an HTTP error, a bad hash or a download cut short, a full or read-only disk.
        FileNotFoundError / ValueError: a registry file that is missing or malformed.
    """
    text = os.fspath(name_or_path)
    if os.path.isfile(text) or not looks_like_name(text):
        return text
    entries = load_registry(registry)
    entry = entries.get(text)
    if entry is None:
        raise WeightsError(unknown_name_message(text, list(entries)))
    return fetch(entry, progress, home)
