"""SASRec (Kang and McAuley 2018): causal self-attention over the item sequence.

Pre-LayerNorm transformer blocks (as the authors' code normalises the queries first), learned positions, the
item embeddings shared between input and output. Two losses (``loss``): ``"bce"``, the paper's binary
cross-entropy with one sampled negative per position, the protocol behind the SASRec rows of TIGER's and
LETTER's tables; and ``"ce"``, the full-softmax cross-entropy over the catalogue, known to be much stronger
(Klenitskiy and Vasilev 2023). A padded position attends to itself only; a real one to the real items up to it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..base import register
from .base import SequenceRanker


@dataclass(frozen=True)
class SASRecConfig:
    dim: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.2
    loss: str = "ce"          # "ce" (full softmax) | "bce" (one sampled negative per position)
    positions: str = "all"    # "all": every position predicts its next item | "last": the last one only


@register("sasrec")
class SASRec(SequenceRanker):
    """SASRec (module doc); ``SASRec(loss="bce")`` is the original protocol."""

    config_class = SASRecConfig

    def _build(self) -> None:
        c = self.config
        self.pos_emb = nn.Embedding(self.max_len_, c.dim)
        self.dropout = nn.Dropout(c.dropout)
        layer = nn.TransformerEncoderLayer(c.dim, c.heads, dim_feedforward=c.dim, dropout=c.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(c.dim)

    def _attention_mask(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(B * heads, L, L)`` bool, True = blocked: the future, and padded keys except a position's own."""
        B, L = inputs.shape
        idx = torch.arange(L, device=inputs.device)
        future = idx[None, :] > idx[:, None]                               # (L, L)
        pad_key = (inputs == 0)[:, None, :] & (idx[None, :] != idx[:, None])[None]  # (B, L, L)
        return (future[None] | pad_key).repeat_interleave(self.config.heads, 0)

    def hidden_states(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self.item_emb(inputs) * self.config.dim ** 0.5 + self.pos_emb.weight[None]    # (B, L, d)
        x = self.dropout(x) * (inputs > 0).unsqueeze(-1)
        x = self.blocks(x, mask=self._attention_mask(inputs))
        return self.final_norm(x)
