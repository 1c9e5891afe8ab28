"""Import cost and import hygiene, each checked in a fresh interpreter (``sys.modules`` after the import):

- ``queryinst.tracking``, ``queryinst.cli`` and ``queryinst.weights`` load no torch;
- the JSON-only tools start without the training engine (``ytvis_to_coco`` and ``convert_to_ytvis``
  without torch at all);
- the streaming loop, the model loader and the tracking tool never import the benchmark harness;
- every module of the package imports (the setup.py mapping finds every subpackage).
"""
from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

from support.repo import REPO_ROOT

ENGINE = "queryinst.image.engine"
BENCH = "queryinst.vis.bench"


def _modules_after(code: str) -> set[str]:
    """The names in ``sys.modules`` after running ``code`` in a fresh interpreter (from the repository root)."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def _tool(name: str) -> str:
    """Code that runs a tool's module level (its imports), not its main()."""
    return f"import runpy; runpy.run_path({str(REPO_ROOT / 'tools' / f'{name}.py')!r}, run_name='_tool_{name}')"


def test_tracker_and_cli_import_no_torch():
    loaded = _modules_after("import queryinst.tracking, queryinst.cli, queryinst.weights")
    assert "queryinst.tracking.tracker" in loaded and "queryinst.cli" in loaded and "queryinst.weights" in loaded
    assert "torch" not in loaded


@pytest.mark.parametrize("tool", ["ytvis_to_coco", "convert_to_ytvis"])
def test_json_converters_start_without_torch(tool):
    loaded = _modules_after(_tool(tool))
    assert "queryinst.cli" in loaded and "torch" not in loaded and ENGINE not in loaded


def test_eval_tool_starts_without_the_engine_and_runtime_without_the_harness():
    loaded = _modules_after(_tool("eval_ytvis"))
    assert "queryinst.vis.eval.ytvis_eval" in loaded and ENGINE not in loaded
    loaded = _modules_after("import queryinst.vis.inference, queryinst.vis.modeling.build\n" + _tool("track_video"))
    assert "queryinst.vis.inference" in loaded and "queryinst.vis.modeling.build" in loaded
    assert not {m for m in loaded if m == BENCH or m.startswith(BENCH + ".")}


def test_every_module_of_the_package_imports():
    import queryinst

    names = [m.name for m in pkgutil.walk_packages(queryinst.__path__, "queryinst.")]
    for sub in ("queryinst.image", "queryinst.vis", "queryinst.tracking"):
        package = __import__(sub, fromlist=["_"])
        names += [m.name for m in pkgutil.walk_packages(package.__path__, sub + ".")]
    expected = {"queryinst.cli", "queryinst.vis.modeling.build", "queryinst.vis.io.reader", "queryinst.vis.bench.harness",
                "queryinst.vis.data.convert", "queryinst.vis.eval.oracle", "queryinst.image.engine"}
    assert expected <= set(names)
    for name in names:
        __import__(name)
