"""Device choice and seeding."""
from __future__ import annotations

import os
import random

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


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a fresh ``np.random.Generator(seed)``."""
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)
