"""Tests for tracking/types.py: conversion, validation and selection of Detections."""
from __future__ import annotations

import numpy as np
import pytest

from queryinst.tracking import Detections


def test_lists_are_converted_with_dtypes() -> None:
    d = Detections(boxes=[[0, 0, 1, 1]], scores=[0.5], labels=[2.0], embeddings=[[1, 2, 3]])
    assert d.boxes.dtype == np.float64 and d.boxes.shape == (1, 4)
    assert d.labels.dtype == np.int64 and d.labels.tolist() == [2]
    assert d.embeddings.shape == (1, 3) and d.dim == 3
    assert len(d) == 1


def test_empty() -> None:
    d = Detections.empty(16)
    assert len(d) == 0 and d.dim == 16
    assert d.boxes.shape == (0, 4) and d.embeddings.shape == (0, 16)
    d2 = Detections(boxes=[], scores=[], labels=[], embeddings=np.zeros((0, 4)))
    assert d2.boxes.shape == (0, 4)


def test_torch_tensors_are_accepted() -> None:
    torch = pytest.importorskip("torch")
    d = Detections(
        boxes=torch.tensor([[0.0, 0.0, 2.0, 2.0]]),
        scores=torch.tensor([0.9]),
        labels=torch.tensor([4]),
        embeddings=torch.ones(1, 5, requires_grad=True),  # autograd is dropped, not an error
    )
    assert isinstance(d.embeddings, np.ndarray) and d.embeddings.shape == (1, 5)
    assert d.labels.tolist() == [4]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(boxes=[[0, 0, 1]], scores=[1.0], labels=[0], embeddings=[[1.0]]), "boxes"),
        (dict(boxes=[[0, 0, 1, 1]], scores=[1.0, 0.5], labels=[0], embeddings=[[1.0]]), "scores"),
        (dict(boxes=[[0, 0, 1, 1]], scores=[1.0], labels=[0, 1], embeddings=[[1.0]]), "labels"),
        (dict(boxes=[[0, 0, 1, 1]], scores=[1.0], labels=[0], embeddings=[1.0]), "embeddings"),
        (dict(boxes=[[0, 0, 1, 1]], scores=[1.0], labels=[0], embeddings=[[1.0]], masks=[]), "masks"),
    ],
)
def test_shape_errors_name_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Detections(**kwargs)


def test_select_keeps_masks_opaque() -> None:
    rles = [{"size": [2, 2], "counts": "a"}, {"size": [2, 2], "counts": "b"}, {"size": [2, 2], "counts": "c"}]
    d = Detections(np.arange(12.0).reshape(3, 4), [0.1, 0.2, 0.3], [0, 1, 2], np.eye(3), masks=rles)
    s = d.select(np.array([2, 0]))
    assert s.masks[0] is rles[2] and s.masks[1] is rles[0]
    assert s.labels.tolist() == [2, 0]
    arr = np.arange(3 * 2 * 2).reshape(3, 2, 2)
    s2 = Detections(d.boxes, d.scores, d.labels, d.embeddings, masks=arr).select(np.array([1]))
    np.testing.assert_array_equal(s2.masks, arr[[1]])
