"""Sizes of the tokenizer lab (notebook 01), one preset per profile."""
from __future__ import annotations

from dataclasses import dataclass

from ..core.config import preset


@dataclass(frozen=True)
class LabConfig:
    """Sizes of the tokenizer lab per profile: codebook ``K``, levels ``L``, latent ``D``, encoder ``hidden``
    sizes, and the training budget."""

    K: int = 64
    L: int = 3
    D: int = 32
    hidden: tuple[int, ...] = (512, 256)
    epochs: int = 25
    batch_size: int = 256
    lr: float = 1e-3


LAB_PRESETS = {
    "smoke": LabConfig(K=16, L=3, D=16, hidden=(128,), epochs=4, batch_size=64),
    "default": LabConfig(),
    "paper": LabConfig(K=256, L=4, D=64, epochs=50, batch_size=1024),
}


def lab_config(profile: str | None = None, **changes) -> LabConfig:
    """The tokenizer-lab preset of ``profile`` (default: the active one), with ``changes`` applied."""
    return preset(LAB_PRESETS, profile, **changes)
