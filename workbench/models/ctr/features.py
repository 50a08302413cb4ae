"""The item side of the CTR models: how an item's semantic id (or a stand-in for it) becomes input features.

Feature modes (``FEATURES``), each next to the item-id embedding unless ``item_id=False``:

* ``"none"``: no semantic feature (the item-id model: MMQ Table 1's PPNet row);
* ``"sum"``: one embedding per code position (a table of ``K`` rows per position), summed into one field;
* ``"concat"``: the same embeddings side by side, one field per position (``L`` times the width);
* ``"ngram"``: one embedding per prefix ``(c_1)``, ``(c_1, c_2)``, ... ``(c_1..c_L)`` (the prefixes present in
  the catalogue numbered per length, hashed into ``buckets`` rows when there are more), summed;
* ``"hash"``: ``"sum"`` over random codes of the same shape and vocabulary (drawn from ``hash_seed``): the control
  that keeps the parameters and the sharing pattern's sparsity but removes the content;
* ``"dense"``: the content vector itself through a linear layer (no quantization);
* ``"soft"``: ``"sum"`` looked up through the tokenizer's soft index (MMQ eq. 15-18): the forward value is the
  hard codes' embedding, the gradient reaches the tokenizer (behavior-aware fine-tuning). Its tables are laid out
  as ``"sum"``'s, so a ``"sum"`` model warm-starts it.

:class:`SoftCoder` wraps a copy of a neural tokenizer (an RQ-VAE, an MMQ tokenizer, or a modality-separated
tokenizer made of them) so that its soft ids can be trained with the model; the original is left untouched.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ...tokenizers.base import SoftCodes, TokenizerModule
from ...tokenizers.modalities import ModalitySeparated

FEATURES = ("none", "sum", "concat", "ngram", "hash", "dense", "soft")
CODE_FEATURES = ("sum", "concat", "ngram", "hash", "soft")   # the modes that read code tuples


class SoftCoder(nn.Module):
    """A trainable copy of ``tokenizer``: ``forward(x, tau)`` gives its :class:`SoftCodes` (a modality-separated
    tokenizer's parts side by side, their reconstruction errors weighted by their share of the columns);
    ``encode(X)`` the current hard ids."""

    def __init__(self, tokenizer):
        super().__init__()
        source = copy.deepcopy(tokenizer)
        if isinstance(source, ModalitySeparated):
            parts = [(t, cols) for t, cols in source.parts.values()]
        else:
            parts = [(source, slice(None))]
        bad = [type(t).__name__ for t, _ in parts if not isinstance(t, TokenizerModule)]
        if bad:
            raise TypeError(f"behavior-aware fine-tuning needs a neural tokenizer (RQ-VAE, MMQ, or a modality-"
                            f"separated one made of them); {bad} have no gradient to train")
        self.source = source
        self.parts = nn.ModuleList([t for t, _ in parts])
        self.columns = [cols for _, cols in parts]
        self.K = source.K
        self.L = source.L

    def forward(self, x: torch.Tensor, tau: float) -> SoftCodes:
        outs = [t.soft_codes(x[:, cols], tau) for t, cols in zip(self.parts, self.columns)]
        if len(outs) == 1:
            return outs[0]
        widths = torch.tensor([float(x[:, cols].shape[1]) for cols in self.columns], device=x.device)
        share = widths / widths.sum()
        losses = {name: sum(w * o.losses[name] for w, o in zip(share, outs)) for name in outs[0].losses}
        return SoftCodes(torch.cat([o.ind for o in outs], 1), torch.cat([o.codes for o in outs], 1), losses)

    def encode(self, X) -> np.ndarray:
        return self.source.encode(X)


def joint_optimizer(model: nn.Module, coder: SoftCoder | None, lr: float, tokenizer_lr: float, adamw: bool = False,
                    weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam (or AdamW) over ``model``'s trainable parameters, those of its ``coder`` (the tokenizer being
    fine-tuned) at ``tokenizer_lr`` times ``lr`` (left out at 0)."""
    tok = [p for p in coder.parameters() if p.requires_grad] if coder is not None else []
    ids = {id(p) for p in tok}
    groups = [{"params": [p for p in model.parameters() if p.requires_grad and id(p) not in ids], "lr": lr}]
    if tok and tokenizer_lr > 0:
        groups.append({"params": tok, "lr": lr * tokenizer_lr})
    return (torch.optim.AdamW if adamw else torch.optim.Adam)(groups, lr=lr, weight_decay=weight_decay)


def prefix_ids(codes: np.ndarray, buckets: int) -> tuple[np.ndarray, list[int]]:
    """Per item, the number of each of its prefixes among the catalogue's prefixes of that length ``(n, L)``
    (hashed into ``buckets`` when there are more), and the table size of each length."""
    codes = np.asarray(codes, dtype=np.int64)
    out, sizes = np.empty_like(codes), []
    for length in range(1, codes.shape[1] + 1):
        _, ids = np.unique(codes[:, :length], axis=0, return_inverse=True)
        ids = ids.reshape(-1)
        n = int(ids.max()) + 1
        if n > buckets:  # a fixed multiplicative hash keeps the table at `buckets` rows
            ids = (ids * 2654435761) % buckets
            n = buckets
        out[:, length - 1] = ids
        sizes.append(n)
    return out, sizes


class ItemFeatures(nn.Module):
    """The semantic-id field of mode ``mode`` (module doc) for items given by dataset id; ``width`` is its size.

    Args:
        codes: ``(n_items, L)`` code tuples (the code modes; ``"soft"`` takes them from ``coder``).
        K: codes per position.
        content: ``(n_items, F)`` content vectors (``"dense"``, ``"soft"``).
        coder: a :class:`SoftCoder` (``"soft"``).
    """

    def __init__(self, mode: str, dim: int, codes: np.ndarray | None = None, K: int | None = None,
                 content: np.ndarray | None = None, coder: SoftCoder | None = None, buckets: int = 4096,
                 hash_seed: int = 0):
        super().__init__()
        if mode not in FEATURES:
            raise ValueError(f"unknown feature mode {mode!r}; expected one of {FEATURES}")
        self.mode, self.dim = mode, dim
        self.coder = coder
        if mode == "soft":
            if coder is None or content is None:
                raise ValueError("features='soft' needs a tokenizer and the items' content vectors")
            codes, K = coder.encode(np.asarray(content, dtype=np.float32)), coder.K
        if mode in CODE_FEATURES:
            if codes is None or K is None:
                raise ValueError(f"features={mode!r} needs the items' code tuples and their codebook size K")
            codes = np.asarray(codes, dtype=np.int64)
            if codes.ndim != 2 or codes.min() < 0 or codes.max() >= K:
                raise ValueError(f"codes must be an (n_items, L) array of ints in [0, {K}), got {codes.shape} "
                                 f"in [{codes.min()}, {codes.max()}]")
            self.L, self.K = codes.shape[1], int(K)
            sizes = [self.K] * self.L
            if mode == "hash":
                codes = np.random.default_rng(hash_seed).integers(0, self.K, codes.shape)
            elif mode == "ngram":
                codes, sizes = prefix_ids(codes, buckets)
            offsets = np.r_[0, np.cumsum(sizes)[:-1]]
            self.register_buffer("codes", torch.as_tensor(codes))
            self.register_buffer("rows", torch.as_tensor(codes + offsets[None, :]))
            self.table = nn.Embedding(int(sum(sizes)), dim)
            nn.init.normal_(self.table.weight, std=0.01)
        if mode in ("dense", "soft"):
            if content is None:
                raise ValueError(f"features={mode!r} needs the items' content vectors")
            self.register_buffer("content", torch.as_tensor(np.asarray(content, dtype=np.float32)))
        if mode == "dense":
            self.project = nn.Linear(self.content.shape[1], dim)
        self.width = {"none": 0, "concat": dim * getattr(self, "L", 0)}.get(mode, dim)

    @property
    def n_items(self) -> int | None:
        for name in ("codes", "content"):
            if hasattr(self, name):
                return len(getattr(self, name))
        return None

    def forward(self, items: torch.Tensor, tau: float = 1.0) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """The field ``(B, width)`` of items ``(B,)`` (``None`` for ``"none"``) and, in ``"soft"`` mode, the
        tokenizer's reconstruction losses on the batch's distinct items."""
        if self.mode == "none":
            return None, {}
        if self.mode == "dense":
            return self.project(self.content[items]), {}
        if self.mode == "soft":
            unique, inverse = torch.unique(items, return_inverse=True)
            out = self.coder(self.content[unique], tau)
            tables = self.table.weight.view(self.L, self.K, self.dim)
            emb = torch.einsum("ulk,lkd->ud", out.ind, tables)
            return emb.index_select(0, inverse), out.losses  # index_select: a deterministic backward on a CPU
        emb = self.table(self.rows[items])                                     # (B, L, dim)
        return (emb.flatten(1) if self.mode == "concat" else emb.sum(1)), {}
