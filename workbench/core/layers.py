"""Small network building blocks shared by the tokenizers and the models."""
from __future__ import annotations

from torch import nn


def hidden_sizes(value, owner: str) -> tuple[int, ...]:
    """A config's hidden layer sizes as a tuple of positive ints (one int is one layer); a clear error otherwise."""
    sizes = (value,) if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else None
    if sizes is None or not all(isinstance(s, int) and s >= 1 for s in sizes):
        raise ValueError(f"{owner}.hidden must be positive layer sizes, e.g. (512, 256) or 256; got {value!r}")
    return sizes


def mlp(sizes: list[int], dropout: float = 0.0) -> nn.Sequential:
    """Linear layers of ``sizes`` with ReLU (and dropout) between them, none after the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
