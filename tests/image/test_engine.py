"""image/engine.py: exact resume, deterministic data (image/sampling.py), and the engine's user errors."""
import json
import os

import pytest
import torch
from torch.utils.data import Dataset

from queryinst.cli import error_message
from queryinst.image.build import build_queryinst
from queryinst.image.checkpoint import load_checkpoint
from queryinst.image.config import load_config
from queryinst.image.data.synthetic import CocoSceneOptions, make_coco_splits
from queryinst.image.engine import train
from queryinst.image.sampling import SeededSamples, SkipSampler
from support.repo import REPO_ROOT

TINY = os.path.join(REPO_ROOT, "configs", "synthetic", "image_tiny.yaml")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Two OpenMP threads on a busy 2-core machine can be 10x slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """3 training images (1 per batch, groups of 2: iterations of 2 and 1 batches) at 64x96."""
    root = tmp_path_factory.mktemp("synth") / "coco"
    make_coco_splits(root, 3, 2, height=64, width=96, seed=1, options=CocoSceneOptions(empty_prob=0.0))
    return root


def _cfg(synth, out_dir, *overrides):
    return load_config(TINY, [
        f"data.train_json={synth}/train/annotations.json", f"data.train_images={synth}/train/images",
        "data.val_json=", "data.min_sizes=[64]", "data.max_size=96", "data.batch_size=1",
        "model.num_stages=2", "model.num_proposals=10", "model.hidden_dim=32", "model.fpn_channels=32",
        "model.dynamic_dim=8", "model.feedforward_dim=64", "model.num_heads=4",
        "solver.accumulate=2", "solver.warmup_iters=2", "run.log_period=1", f"run.output_dir={out_dir}",
        *overrides])


def _log(out_dir):
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_resume_continues_exactly(synth, tmp_path):
    """5 iterations straight vs. 3 + stop + resume: same per-iteration losses, lr and final weights.

    2 iterations per epoch (3 batches in groups of 2), so the stop falls inside epoch 2 and the run
    crosses two epoch boundaries.
    """
    full, split = tmp_path / "full", tmp_path / "split"
    train(_cfg(synth, full, "solver.max_iters=5", "run.checkpoint_period=2"))
    train(_cfg(synth, split, "solver.max_iters=3"))
    assert [r["iter"] for r in _log(split)] == [1, 2, 3]
    # a killed run may have logged past its last checkpoint: resume truncates the log there
    with open(split / "log.jsonl", "a") as f:
        f.write(json.dumps({"iter": 4, "total": -1.0}) + "\n")
    train(_cfg(synth, split, "solver.max_iters=5"), resume=True)

    a, b = _log(full), _log(split)
    assert [r["iter"] for r in a] == [r["iter"] for r in b] == [1, 2, 3, 4, 5]
    assert [r["epoch"] for r in b] == [1, 1, 2, 2, 3]
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for key in ra:
            if key != "time":
                assert rb[key] == pytest.approx(ra[key], rel=1e-6, abs=1e-9), (ra["iter"], key)
    assert a[3]["total"] != a[4]["total"]  # the losses do move
    cfg = _cfg(synth, full)
    m_full, m_split = build_queryinst(cfg), build_queryinst(cfg)
    assert load_checkpoint(str(full / "last.pth"), m_full, cfg=cfg)["iteration"] == 5
    load_checkpoint(str(split / "last.pth"), m_split, cfg=cfg)
    for (key, x), y in zip(m_full.state_dict().items(), m_split.state_dict().values()):
        assert torch.allclose(x, y, rtol=1e-6, atol=1e-9), key
    assert sorted(os.listdir(full)) == ["config.yaml", "epoch_2.pth", "last.pth", "log.jsonl"]


def test_engine_user_errors(synth, tmp_path):
    with pytest.raises(ValueError, match=r"model.num_classes is 5 but .*annotations.json has 6 categories"):
        train(_cfg(synth, tmp_path / "a", "model.num_classes=5"))
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from: .*last.pth"):
        train(_cfg(synth, tmp_path / "b"), resume=True)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


class _RandomItems(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> float:
        return float(torch.rand(()))


def test_seeded_samples_depend_only_on_seed_epoch_index():
    data = SeededSamples(_RandomItems(), seed=3)
    first = [data[i] for i in range(4)]
    torch.rand(10)  # other consumers of the global RNG change nothing
    assert [data[i] for i in (3, 2, 1, 0)] == first[::-1]
    data.set_epoch(1)
    assert [data[i] for i in range(4)] != first
    state = torch.get_rng_state()
    data[0]
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left untouched


def test_skip_sampler_and_error_message():
    assert list(SkipSampler(range(6), 4)) == [4, 5] and len(SkipSampler(range(6), 4)) == 2
    worker = FileNotFoundError("Caught FileNotFoundError in DataLoader worker process 0.\n"
                               "Original Traceback (most recent call last):\n  File x\n"
                               "FileNotFoundError: image file not found: /a/b.jpg\n")
    assert error_message(worker) == "image file not found: /a/b.jpg"
    assert error_message(ValueError("one line")) == "one line"
