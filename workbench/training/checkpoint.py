"""Training checkpoints: one file per run, written atomically, loaded without running code.

A checkpoint holds plain tensors and Python primitives only (model and optimizer state dicts, the early-stopping
state, the best weights, the history rows), so it loads with ``torch.load(weights_only=True)``: a file whose
pickle would build other objects (and could run code) is refused. Each checkpoint carries the key of the run
that wrote it (:func:`run_key`: a content hash of the model class and config, the training settings that shape
the result and the training data), and a run only resumes from a checkpoint with its own key.
"""
from __future__ import annotations

import dataclasses
import hashlib
import pickle
from pathlib import Path
from typing import Any

import torch

from ..core.storage import atomic_path, content_hash

# settings that do not change what a run computes, epoch by epoch: a longer run resumes a shorter one's file
_NOT_IN_KEY = {"epochs", "checkpoint", "progress", "device"}


def run_key(model, config, data_fingerprint: str) -> str:
    """Content hash of what determines a run's trajectory: the model class, config and parameter shapes, the
    training settings (except ``epochs``, ``checkpoint``, ``progress``, ``device``) and the data's fingerprint."""
    train = {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_IN_KEY}
    shapes = {name: list(value.shape) for name, value in model.state_dict().items()}  # the architecture
    return content_hash({"model": type(model).__qualname__, "config": repr(getattr(model, "config", None)),
                         "shapes": shapes, "train": train, "data": data_fingerprint}, length=32)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (a temporary file renamed over the target)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, key: str, device: torch.device) -> dict[str, Any]:
    """The checkpoint at ``path`` if it belongs to the run ``key``; a clear error otherwise (another run, a file
    that is not a plain-tensor checkpoint)."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as err:
        raise ValueError(f"checkpoint {path} cannot be read as a plain-tensor checkpoint ({err}); nothing in it "
                         "was run. Delete it or pass another checkpoint path") from err
    if not isinstance(state, dict) or "key" not in state:
        raise ValueError(f"checkpoint {path} is not a workbench training checkpoint (no run key)")
    if state["key"] != key:
        raise ValueError(f"checkpoint {path} belongs to another run (key {state['key']}, this run {key}: another "
                         "model, config, training settings or data); delete it or pass another checkpoint path")
    return state


def state_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a module's state dict (names, dtypes, shapes and bytes): equal digests, equal state."""
    h = hashlib.sha256()
    for name, value in module.state_dict().items():
        t = value.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
