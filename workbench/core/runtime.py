"""Device choice and seeding."""
from __future__ import annotations

import contextlib
import os
import random
from typing import Iterator

import numpy as np
import torch


def get_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when present (or ``$WORKBENCH_DEVICE`` / ``device`` if given), else CPU."""
    chosen = device if device is not None else os.environ.get("WORKBENCH_DEVICE")
    if chosen is not None:
        dev = torch.device(chosen)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {chosen!r} requested but CUDA is not available on this machine")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def runtime_facts(device: str | torch.device | None = None) -> dict:
    """Where a measurement ran (benchmark results carry it): the device, torch's version and its CPU threads."""
    return {"device": str(get_device(device)), "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def check_seed(seed) -> int:
    """``seed`` as an int in ``[0, 2**32)``; a ``ValueError`` for anything else (floats, negatives, bools)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    return int(seed)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str | None = None) -> Iterator[None]:
    """Run a block with torch's generator (CPU, and ``device``'s when it is a GPU) seeded from ``seed``, and
    restore the caller's random state afterwards: what a library function uses to draw an initialisation
    without touching the global random state behind the caller's back."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(check_seed(seed))
        yield


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a fresh ``np.random.Generator(seed)``. For scripts and
    notebooks only: no library function calls it (they take a ``seed`` and leave the global state alone)."""
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)
