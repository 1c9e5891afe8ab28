"""The files that ship inside the package: the YAML configs, the demo model and the sample clip.

In the repository they stay where users and the docs expect them (``configs/``, ``models/demo/``,
``assets/``); setup.py installs those folders as the data packages ``queryinst.configs``,
``queryinst.models`` and ``queryinst.assets`` (docs/design.md#module-map). This module is the one place
that finds them, through ``importlib.resources``, so the same call works in the editable install (the
files in the repository) and in an installed wheel (the files in site-packages), whatever the current
directory.

Paths are written as in the repository: ``path("configs/synthetic/vis_demo.yaml")``. No torch is
imported.
"""
from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

# The first folder of a repository path -> the data package that ships it.
PACKAGES = {"configs": "queryinst.configs", "models": "queryinst.models", "assets": "queryinst.assets"}

DEMO_CONFIG = "configs/synthetic/vis_demo.yaml"  # the shipped demo model (synthetic shapes only) ...
DEMO_WEIGHTS = "models/demo/vis_synthetic.pth"  # ... and its config
SAMPLE_VIDEO = "assets/sample.mp4"  # the sample clip of `make demo`


def files(folder: str) -> Traversable:
    """The shipped folder ``folder`` ("configs", "models" or "assets") as an ``importlib.resources``
    Traversable. Raises ValueError for another name."""
    package = PACKAGES.get(folder)
    if package is None:
        raise ValueError(f"{folder}: not a shipped folder (one of {', '.join(PACKAGES)})")
    return resources.files(package)


def path(relative: str) -> Path:
    """The file system path of a shipped file given by its repository path, e.g.
    ``path("configs/synthetic/vis_demo.yaml")``.

    Raises:
        ValueError: the path is not under configs/, models/ or assets/.
        FileNotFoundError: the package does not hold that file (one line naming both).
    """
    folder, _, rest = relative.replace("\\", "/").partition("/")
    target = files(folder).joinpath(*[part for part in rest.split("/") if part])
    if not rest or not target.is_file():
        raise FileNotFoundError(f"{relative}: not found among the files shipped in the package "
                                f"({PACKAGES[folder]}, {files(folder)})")
    # Installed from a wheel or editable, the files are plain files on disk; a zipped install is not
    # supported (torch and OpenCV need real paths anyway).
    return Path(str(target))


def config(name: str) -> Path:
    """A shipped config by its path under configs/: ``config("synthetic/vis_demo.yaml")``."""
    return path(f"configs/{name}")


def demo_model() -> tuple[Path, Path]:
    """(config, weights) of the shipped demo model. Raises FileNotFoundError when either is missing."""
    return path(DEMO_CONFIG), path(DEMO_WEIGHTS)
