"""torch.distributed in one place: who am I, how many are we, and the few collectives the library needs.

Every function works in a plain single process too (world size 1), where the collectives return their input,
so library code calls them unconditionally. A multi-process run is started by ``torchrun``, which sets
``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_from_env` then joins the group with
the gloo backend on a CPU and NCCL on a GPU.
"""
from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True inside an initialized process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 outside a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0, which alone writes files and shows progress."""
    return rank() == 0


def init_from_env(device: torch.device) -> bool:
    """Join the process group ``torchrun`` describes in the environment (gloo on a CPU, NCCL on a GPU); return
    whether this is a multi-process run. Without ``WORLD_SIZE`` > 1 nothing happens."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend, timeout=timedelta(minutes=10))
    return is_distributed()


def shutdown(wait: bool = True) -> None:
    """Leave the process group, if any. ``wait``: first wait until every process is done with it (a process that
    tears down its connections while a peer still uses them can abort the peer); pass ``False`` after an error,
    when the peers may be inside another collective (waiting would hang them)."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def share(n: int) -> slice:
    """This rank's contiguous share of ``n`` rows, in rank order (concatenating the shares of ranks 0, 1, ...
    gives the rows back in order) and balanced: the first ``n % world`` ranks take one row more, so with
    ``n >= world`` every rank has at least one row."""
    base, extra = divmod(n, world_size())
    r = rank()
    start = r * base + min(r, extra)
    return slice(start, start + base + (r < extra))


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over processes, in place; every process receives the same result."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``tensor`` in place with rank ``src``'s values."""
    if is_distributed():
        dist.broadcast(tensor, src)
    return tensor


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every process (pickled; for small objects)."""
    if not is_distributed():
        return obj
    box = [obj if rank() == src else None]
    dist.broadcast_object_list(box, src)
    return box[0]


def all_gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process (pickled; for small objects)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Every process's rows of ``tensor`` ``(n_r, ...)`` concatenated in rank order, on every process."""
    if not is_distributed():
        return tensor
    parts = all_gather_objects(tensor.detach().cpu())
    return torch.cat(parts).to(tensor.device)


def barrier() -> None:
    """Wait for every process."""
    if is_distributed():
        dist.barrier()
