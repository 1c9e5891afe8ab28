"""Small helpers around ``torch.distributed`` for runs started by ``torchrun`` (``env://``).

Without ``WORLD_SIZE > 1`` in the environment everything degrades to a single process: rank 0,
world size 1, ``is_main_process()`` True, collectives are no-ops.
"""
from __future__ import annotations

import logging
import os
from datetime import timedelta

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

# Rank 0 alone evaluates the val set while the others wait at a barrier: allow a full COCO val pass.
_TIMEOUT = timedelta(hours=2)


def is_distributed() -> bool:
    """True inside an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def get_local_rank() -> int:
    """This process's index on its machine (torchrun's ``LOCAL_RANK``), 0 outside torchrun."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """Only the main process writes files and logs."""
    return get_rank() == 0


def init_from_env(device: torch.device) -> bool:
    """Join the process group described by torchrun's environment, if there is one.

    Uses ``nccl`` for CUDA devices and ``gloo`` otherwise. Idempotent.

    Args:
        device: the device this process trains on (already including ``LOCAL_RANK`` for CUDA).

    Returns:
        True when this process is part of a group of more than one process.

    Raises:
        ValueError: ``WORLD_SIZE`` is set but ``RANK``/``MASTER_ADDR``/``MASTER_PORT`` are missing.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return False
    if is_distributed():
        return True
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE={world_size} but {', '.join(missing)} not set; start with torchrun")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, init_method="env://", timeout=_TIMEOUT)
    logger.info("process group: backend %s, rank %d of %d", backend, get_rank(), get_world_size())
    return True


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_mean(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average a dict of scalars over the ranks (same keys, same order on every rank)."""
    if not is_distributed() or not values:
        return dict(values)
    keys = list(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= get_world_size()
    return dict(zip(keys, t.tolist()))


def gather_to_main(obj: object) -> list[object] | None:
    """Every rank's ``obj`` (picklable) on rank 0, in rank order; None on the other ranks. A single
    process gets ``[obj]``."""
    if not is_distributed():
        return [obj]
    gathered: list[object] | None = [None] * get_world_size() if get_rank() == 0 else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def cleanup() -> None:
    """Leave the process group (call once at the end of a distributed run)."""
    if is_distributed():
        dist.destroy_process_group()
