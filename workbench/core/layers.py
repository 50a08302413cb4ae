"""Small network building blocks shared by the tokenizers and the models."""
from __future__ import annotations

from torch import nn


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
