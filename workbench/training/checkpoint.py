"""Training checkpoints: one file per run, written atomically, loaded without running code.

A checkpoint holds plain tensors and Python primitives only (model and optimizer state dicts, the early-stopping
state, the best weights, the history rows), so it loads with ``torch.load(weights_only=True)``: a file whose
pickle would build other objects (and could run code) is refused. Each checkpoint carries the key of the run
that wrote it (:func:`run_key`: a content hash of the model class and config, the training settings that shape
the result and the training data), and a run only resumes from a checkpoint with its own key. It also carries a
SHA-256 checksum of everything else it holds (:func:`payload_digest`), verified on load: a file damaged on disk
(zeroed or flipped bytes inside a tensor, which the zip container does not notice) is refused, not resumed.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import torch

from ..core.storage import atomic_path, content_hash

# settings that do not change what a run computes, epoch by epoch: a longer run resumes a shorter one's file
_NOT_IN_KEY = {"epochs", "checkpoint", "progress", "device", "deterministic"}


def run_key(model, config, data_fingerprint: str) -> str:
    """Content hash of what determines a run's trajectory: the model class, config and parameter shapes, the
    training settings (except ``epochs``, ``checkpoint``, ``progress``, ``device``) and the data's fingerprint."""
    train = {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_IN_KEY}
    shapes = {name: list(value.shape) for name, value in model.state_dict().items()}  # the architecture
    return content_hash({"model": type(model).__qualname__, "config": repr(getattr(model, "config", None)),
                         "shapes": shapes, "train": train, "data": data_fingerprint}, length=32)


def payload_digest(obj: Any) -> str:
    """SHA-256 over a checkpoint's contents: dict keys (sorted), sequences, tensors (dtype, shape, bytes) and
    primitives, in a canonical order, so that a file read back gives the digest it was written with."""
    h = hashlib.sha256()
    _digest_into(h, obj)
    return h.hexdigest()


def _digest_into(h, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k in sorted(obj, key=repr):
            h.update(f"K{k!r}".encode())
            _digest_into(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}".encode())
        for v in obj:
            _digest_into(h, v)
    else:
        h.update(f"P{type(obj).__name__}:{obj!r}".encode())


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` with its checksum to ``path`` atomically (a temporary file renamed over the target)."""
    with atomic_path(path) as tmp:
        torch.save({**state, "checksum": payload_digest(state)}, tmp)


def load_checkpoint(path: str | Path, key: str, device: torch.device) -> dict[str, Any]:
    """The checkpoint at ``path`` if it belongs to the run ``key`` and matches its checksum; a clear error
    otherwise (another run, a damaged file, a file that is not a plain-tensor checkpoint)."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any reader failure (zip, pickle, truncation) means one thing here
        raise ValueError(f"checkpoint {path} cannot be read as a plain-tensor checkpoint ({err}); nothing in it "
                         "was run. Delete it or pass another checkpoint path") from err
    if not isinstance(state, dict) or "key" not in state:
        raise ValueError(f"checkpoint {path} is not a workbench training checkpoint (no run key)")
    checksum = state.pop("checksum", None)
    if checksum is None:
        raise ValueError(f"checkpoint {path} has no checksum (written by an older version of the workbench); "
                         "delete it to start afresh")
    if checksum != payload_digest(state):
        raise ValueError(f"checkpoint {path} is damaged: its contents do not match the checksum written with them; "
                         "delete it to start afresh")
    if state["key"] != key:
        raise ValueError(f"checkpoint {path} belongs to another run (key {state['key']}, this run {key}: another "
                         "model, config, training settings or data); delete it or pass another checkpoint path")
    return state


def state_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a module's state dict (names, dtypes, shapes and bytes): equal digests, equal state."""
    return payload_digest(dict(module.state_dict()))
