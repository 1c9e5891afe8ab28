"""docs/configs.md must document every config key, with the default the code has.

The reference tables in docs/configs.md have rows of the form ``| `section.key` | `default` | ...``
with the default written as ``--print-config`` writes it (YAML flow style). This test walks the
``Config`` (image) and ``VisConfig`` (video) dataclasses recursively, so that adding, renaming or
re-defaulting a field without updating the reference fails here, and a key documented in backticks
that no longer exists fails too.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from queryinst.image.config import Config
from queryinst.vis.config import VisConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "configs.md"
ROW = re.compile(r"^\|\s*`([A-Za-z_][\w.]*)`\s*\|\s*`([^`]*)`\s*\|", re.MULTILINE)


def flatten(cfg: object, prefix: str = "") -> dict[str, object]:
    """Dotted field name -> default value, descending into nested dataclasses."""
    out: dict[str, object] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update(flatten(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


def as_printed(value: object) -> str:
    """A default as ``--print-config`` shows it, in YAML flow style (tuples as lists)."""
    if isinstance(value, tuple):
        value = list(value)
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def documented_rows() -> dict[str, set[str]]:
    """Key -> the defaults given for it in the doc's tables (a key may have an image and a video row)."""
    rows: dict[str, set[str]] = {}
    for key, default in ROW.findall(DOC.read_text(encoding="utf-8")):
        rows.setdefault(key, set()).add(default.strip())
    return rows


IMAGE = flatten(Config())
VIDEO = flatten(VisConfig())
CASES = [("Config", k, v) for k, v in IMAGE.items()] + [("VisConfig", k, v) for k, v in VIDEO.items()]


def test_doc_exists_and_has_rows():
    assert DOC.is_file(), f"{DOC} is missing"
    assert len(documented_rows()) >= len(IMAGE), "the reference tables of docs/configs.md were not found"


@pytest.mark.parametrize("schema,key,default", CASES, ids=[f"{s}:{k}" for s, k, _ in CASES])
def test_every_field_is_documented_with_its_default(schema: str, key: str, default: object):
    rows = documented_rows()
    assert key in rows, f"{schema} field '{key}' has no row '| `{key}` | `default` | ...' in docs/configs.md"
    assert as_printed(default) in rows[key], (
        f"{schema} field '{key}': docs/configs.md gives default(s) {sorted(rows[key])}, the code has "
        f"{as_printed(default)!r}")


def test_no_documented_key_is_stale():
    known = set(IMAGE) | set(VIDEO)
    sections = {k.split(".", 1)[0] for k in known if "." in k}
    text = DOC.read_text(encoding="utf-8")
    # every inline `section.key` mention (tables and prose), not only the table rows
    mentioned = set(re.findall(r"`((?:%s)\.[A-Za-z_]\w*)`" % "|".join(sorted(sections)), text))
    stale = sorted(mentioned - known)
    assert not stale, f"docs/configs.md mentions keys that no schema has: {stale}"


def test_flatten_sees_nested_sections():
    # guards the walk itself: a nested field of each section must be found
    for key in ("model.num_proposals", "loss.dice_weight", "data.min_sizes", "solver.base_lr", "run.seed"):
        assert key in IMAGE
    for key in ("model.init_from", "tracker.mode", "inference.max_per_frame", "solver.track_loss_weight"):
        assert key in VIDEO and key not in IMAGE
