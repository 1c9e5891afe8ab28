"""image/distributed.py and DDP training: 2 CPU processes (gloo) started by torchrun end with identical,
updated weights, and only rank 0 writes files."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from queryinst.image import distributed as dist
from queryinst.image.build import build_queryinst
from queryinst.image.config import load_config
from queryinst.image.data.synthetic import CocoSceneOptions, make_coco_splits
from queryinst.image.engine import seed_everything
from support.repo import REPO_ROOT

TINY = os.path.join(REPO_ROOT, "configs", "synthetic", "image_tiny.yaml")

# Each rank trains, then saves the weights it holds, so that the test can compare the ranks.
_WORKER = textwrap.dedent("""
    import os, sys
    import torch
    from queryinst.image.config import load_config
    from queryinst.image.engine import train
    cfg = load_config(sys.argv[1], sys.argv[3:])
    model = train(cfg)
    torch.save(model.state_dict(), os.path.join(sys.argv[2], f"rank{os.environ['RANK']}.pt"))
""")


def test_single_process_helpers():
    assert not dist.is_distributed()
    assert dist.get_rank() == 0 and dist.get_world_size() == 1 and dist.is_main_process()
    assert dist.all_reduce_mean({"a": 1.5}, torch.device("cpu")) == {"a": 1.5}
    assert dist.init_from_env(torch.device("cpu")) is False  # no WORLD_SIZE: nothing to join
    dist.barrier()  # no-op


@pytest.mark.slow
def test_ddp_two_cpu_processes_end_with_identical_updated_weights(tmp_path):
    data = tmp_path / "coco"
    make_coco_splits(data, 4, 1, height=64, width=96, seed=2, options=CocoSceneOptions(empty_prob=0.0))
    out = tmp_path / "run"
    overrides = [f"data.train_json={data}/train/annotations.json", f"data.train_images={data}/train/images",
                 "data.val_json=", "data.min_sizes=[64]", "data.max_size=96", "data.batch_size=1",
                 "model.num_stages=2", "model.num_proposals=10", "model.hidden_dim=32", "model.fpn_channels=32",
                 "model.dynamic_dim=8", "model.feedforward_dim=64", "model.num_heads=4", "solver.max_iters=2",
                 "solver.warmup_iters=1", "run.log_period=1", "run.device=cpu", f"run.output_dir={out}"]
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), TINY, str(tmp_path), *overrides],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]

    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    cfg = load_config(TINY, overrides)
    seed_everything(cfg.run.seed)  # train() builds the model right after this seeding
    initial = dict(build_queryinst(cfg).named_parameters())
    assert rank0.keys() == rank1.keys()
    # Parameters, not buffers: the mask heads' BatchNorm running statistics are updated by each rank's
    # own last forward (DDP broadcasts rank 0's buffers before each forward; rank 0's are saved).
    for key in initial:
        assert torch.equal(rank0[key], rank1[key]), key
    unchanged = [k for k, p in initial.items() if torch.equal(rank0[k], p)]
    # Nothing is frozen in this config, but on 64x96 images every RoI maps to P2/P3, so the P4/P5
    # output convs get no gradient (which is why DDP runs with find_unused_parameters).
    assert all(k.startswith(("backbone.fpn.fpn_convs.2.", "backbone.fpn.fpn_convs.3.")) for k in unchanged), unchanged
    assert len(unchanged) < 0.05 * len(initial)
    # only rank 0 wrote files; the log holds both ranks' mean losses once per iteration
    assert sorted(os.listdir(out)) == ["config.yaml", "epoch_1.pth", "last.pth", "log.jsonl"]  # 2 iters = 1 epoch
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
