"""The graph-recommender contract and its shared pieces (MF-BPR, LightGCN, VBPR, FREEDOM and MoToRec build on
it).

Every model is built from a split :class:`~workbench.data.dataset.RecDataset` (it reads the training split only)
and implements:

* ``loss(users, pos, neg) -> dict[str, Tensor]``: the named loss terms of one BPR batch (summed to train);
* ``embeddings() -> (user_emb, item_emb)``: the final full-graph embeddings (scores are dot products);
* ``pre_epoch(rng, n_steps)``: per-epoch preparation (FREEDOM's edge pruning, MoToRec's tokenizer schedule);
* ``prepare(rng)``: once before training (MoToRec's tokenizer warm-up);
* ``fit(**train_options)`` runs :func:`workbench.training.graph_loop.fit_graph` and returns the model;
* the :class:`~workbench.models.base.Recommender` contract (``score``, ``recommend``).

Features enter the multimodal models standardised per column (:func:`~workbench.tokenizers.modalities.standardize`)
and frozen (FREEDOM's code lets them train; see the notebook's map).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..core.config import resolve_config
from ..data.dataset import TRAIN, RecDataset
from ..evaluation.ranking import DotScorer
from ..tokenizers.modalities import standardize
from .base import Recommender


def rows(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``table[idx]`` by ``index_select``, whose backward (an index_add) is cheaper on a CPU than that of
    advanced indexing (an accumulating index_put)."""
    return table.index_select(0, idx)


# gathered feature blocks stay under glibc's largest dynamic mmap threshold (32 MB): a larger fresh tensor is
# mapped and unmapped at every step, and touching its pages again costs ~10,000 page faults per step for a batch
# of Baby's 4,096-d image features (a projection forward + backward 28.6 -> 16.8 ms on the development CPU)
_GATHER_BYTES = 16 << 20


def project_rows(linear: nn.Linear, features: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``linear(features[idx])``, the rows gathered and projected in blocks of at most 16 MB on a CPU (one block
    on a GPU, whose caching allocator reuses memory anyway); same values and gradients."""
    per_block = max(1, _GATHER_BYTES // (features.shape[1] * features.element_size()))
    if features.device.type != "cpu" or len(idx) <= per_block:
        return linear(features.index_select(0, idx))
    return torch.cat([linear(features.index_select(0, part)) for part in idx.split(per_block)])


def _xavier(n: int, d: int) -> nn.Parameter:
    return nn.Parameter(nn.init.xavier_uniform_(torch.empty(n, d)))


class GraphModel(nn.Module, Recommender):
    """Base class (see the module docstring)."""

    config_class: type = object

    def __init__(self, dataset: RecDataset, config=None, **options):
        nn.Module.__init__(self)
        self.config = resolve_config(self.config_class, config, options)
        if not dataset.is_split:
            raise ValueError(f"{dataset.name}: {type(self).__name__} needs a split dataset (workbench.splits)")
        self.dataset_name = dataset.name
        self.n_users, self.n_items = dataset.n_users, dataset.n_items
        self.n_items_ = dataset.n_items
        self.train_matrix = dataset.matrix(TRAIN)
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- hooks ------------------------------------------------------------------------------------------
    def prepare(self, rng: np.random.Generator) -> None:
        """Once before the first epoch of a fresh training run."""

    def pre_epoch(self, rng: np.random.Generator, n_steps: int) -> None:
        """Before each epoch."""

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def move_graphs(self, device: torch.device) -> None:
        """Move non-parameter graph structures (sparse tensors) to ``device``."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def to_device(self, device: torch.device | str) -> "GraphModel":
        device = torch.device(device)
        self.to(device)
        self.move_graphs(device)
        return self

    # -- recommender contract -----------------------------------------------------------------------------
    def train(self, mode: bool = True):
        self._cache = None
        return super().train(mode)

    @torch.no_grad()
    def scorer(self) -> DotScorer:
        """Dot-product score function over the current final embeddings (eval mode)."""
        was = self.training
        self.eval()
        user_emb, item_emb = self.embeddings()
        self.train(was)
        return DotScorer(user_emb.detach(), item_emb.detach())

    def final_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """The final user ``(n_users, d)`` and item ``(n_items, d)`` embeddings as NumPy arrays (eval mode)."""
        scorer = self.scorer()
        return scorer.user_emb.cpu().numpy(), scorer.item_emb_t.T.cpu().numpy()

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        if self._cache is None or self.training:
            scorer = self.scorer()
            self._cache = (scorer.user_emb, scorer.item_emb_t)
        user_emb, item_emb_t = self._cache
        return user_emb[torch.as_tensor(user_ids, device=user_emb.device)] @ item_emb_t

    def fit(self, dataset: RecDataset, config=None, **options) -> "GraphModel":
        """Train on ``dataset`` (the one the model was built from) with
        :func:`~workbench.training.graph_loop.fit_graph`; the result is kept in ``self.result_``."""
        from ..training.graph_loop import fit_graph

        self.result_ = fit_graph(self, dataset, config, **options)
        return self

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _features(dataset: RecDataset, model: str) -> dict[str, torch.Tensor]:
    if not dataset.features:
        raise ValueError(f"{dataset.name}: {model} needs item content features; the dataset has no modality")
    return {m: torch.from_numpy(standardize(X)) for m, X in dataset.features.items()}


# ================================================================================================ MF-BPR
