"""Tests of vis/modeling/build.py's model loader (``load_vis_model``): class names from the checkpoint,
the demo-model defaults. Building and ``init_from`` are tested in test_model.py."""
from __future__ import annotations

import pytest

from queryinst.vis.modeling.build import class_names_from_checkpoint, load_vis_model


def test_class_names_and_model_defaults(tmp_path):
    assert class_names_from_checkpoint({"class_names": ["a", "b"]}, 2) == ["a", "b"]
    assert class_names_from_checkpoint({"class_names": ["a"]}, 2) == ["class0", "class1"]
    assert class_names_from_checkpoint({}, 1) == ["class0"]
    with pytest.raises(ValueError, match="--config needs --weights"):
        load_vis_model("c.yaml", None)
    with pytest.raises(FileNotFoundError, match="demo model file not found"):
        load_vis_model(None, None, demo_root=tmp_path)
