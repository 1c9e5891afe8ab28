"""Atomic JSON output: write to a temporary file beside the target, then rename it into place, so a
reader never sees a half-written file and an error leaves the old file (or none) untouched."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json_atomic(data: Any, path: str | os.PathLike, indent: int | None = None) -> Path:
    """Write ``data`` as JSON at ``path`` atomically; compact and byte-stable unless ``indent`` is given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    text = json.dumps(data, indent=indent) if indent is not None else json.dumps(data, separators=(",", ":"))
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
