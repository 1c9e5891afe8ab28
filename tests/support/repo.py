"""What many test files share: the repository root, a loader for the command-line tools in ``tools/``
(they are scripts, not modules of the package) and tiny model configs.

``tests/conftest.py`` serves these as fixtures (``repo_root``, ``load_tool``, ``tiny_config``); a test
file imports them from here where it needs them at import time (``skipif`` conditions, module constants).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / "tools"

# The narrow tiny width: 32 channels, 4 attention heads, DynamicConv 8, FFN 64 (milliseconds per step).
NARROW = {"hidden_dim": 32, "fpn_channels": 32, "num_heads": 4, "dynamic_dim": 8, "feedforward_dim": 64}


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` imported as a module ``_tool_<name>`` (registered in ``sys.modules``, which
    dataclasses defined in a tool need), so that a test can call its ``main(argv)``."""
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", TOOLS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# Status lines a tool may print on stderr before an error: the model loader's, and queryinst/weights.py's
# while it fetches a registered name.
ANNOUNCEMENTS = ("loading the model", "downloading ", "converting ", "waiting for another process")


def error_lines(stderr: str) -> list[str]:
    """The lines of a tool's stderr but its status announcements (``loading the model ...``, printed
    before the model loads; ``downloading NAME ...``): what the one-line error convention is about."""
    return [line for line in stderr.strip().splitlines() if not line.startswith(ANNOUNCEMENTS)]


def tiny_config(vis: bool = False, narrow: bool = False, **model: Any):
    """A ``Config`` (or ``VisConfig`` when ``vis``) with a ResNet-18 backbone and 3 classes; ``narrow``
    also applies ``NARROW``; ``model`` sets further ``cfg.model`` fields (applied last)."""
    if vis:
        from queryinst.vis.config import VisConfig as schema
    else:
        from queryinst.image.config import Config as schema
    cfg = schema()
    fields = {"backbone": "resnet18", "num_classes": 3, **(NARROW if narrow else {}), **model}
    for key, value in fields.items():
        if not hasattr(cfg.model, key):
            raise AttributeError(f"tiny_config: cfg.model has no field '{key}'")
        setattr(cfg.model, key, value)
    return cfg
