"""The graph-recommender contract and its shared pieces (MF-BPR, LightGCN, VBPR, FREEDOM and MoToRec build on
it).

A graph model is a :class:`~workbench.models.base.Recommender` trained by the engine
(:class:`~workbench.training.engine.Trainable`) on BPR triplets. ``model = LightGCN(dim=64)`` stores the
configuration; ``model.fit(split)`` builds the network for the split's training interactions (:meth:`build`,
seeded by the training seed) and trains it with Adam, early stopping on validation Recall@20 (patience 20, as
MoToRec and MMRec); ``model.evaluate(split, "test")`` is the test report, computed once afterwards. Subclasses
implement:

* ``_build(dataset)``: create parameters and graphs (called once, inside a seeded RNG);
* ``loss(users, pos, neg) -> dict[str, Tensor]``: the named loss terms of one BPR batch (summed to train);
* ``embeddings() -> (user_emb, item_emb)``: the final full-graph embeddings (scores are dot products);
* optionally ``on_epoch_start`` (FREEDOM's edge pruning), ``move_graphs(device)`` (sparse structures).

Attributes derived from the data end in ``_`` (``n_users_``, ``train_matrix_``, ``adjacency_``...); parameters,
buffers and sub-modules keep torch's plain names (they are the state-dict keys).

Features enter the multimodal models standardised per column (:func:`~workbench.tokenizers.modalities.standardize`)
and frozen (FREEDOM's code lets them train; see the notebook's map).
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..core.config import resolve_config
from ..core.runtime import seeded
from ..core.storage import content_hash
from ..data.dataset import TRAIN, VALID, RecDataset
from ..evaluation.ranking import DotScorer, evaluate_split
from ..tokenizers.modalities import standardize
from ..training.engine import Batch, StepOutput, Trainable, TrainConfig, batch_slices
from .base import Recommender
from .sampling import sample_triplets

EVAL_BATCH = 4096  # users per evaluation batch


def rows(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``table[idx]`` by ``index_select``, whose backward (an index_add) is cheaper on a CPU than that of
    advanced indexing (an accumulating index_put), and deterministic: with several CPU threads the accumulating
    index_put adds repeated rows' gradients in a varying order (measured: two FREEDOM fits at one seed differed)."""
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


def embedding_table(n: int, d: int) -> nn.Parameter:
    """A trainable ``(n, d)`` table, Xavier-uniform (LightGCN's and MMRec's initialisation; drawn from torch's
    generator, which :meth:`GraphModel.build` seeds)."""
    return nn.Parameter(nn.init.xavier_uniform_(torch.empty(n, d)))


def content_features(dataset: RecDataset, model: str) -> dict[str, torch.Tensor]:
    """Every modality of ``dataset`` standardised per column, as float32 tensors (``model`` names the caller in
    the error for a dataset without features)."""
    if not dataset.features:
        raise ValueError(f"{dataset.name}: {model} needs item content features; the dataset has no modality")
    return {m: torch.from_numpy(standardize(X)) for m, X in dataset.features.items()}


class GraphModel(nn.Module, Recommender, Trainable):
    """Base class of the graph recommenders (see the module docstring)."""

    config_class: ClassVar[type] = object
    # MMRec's protocol: batch 2048, Adam at lr 1e-3, early stopping on valid Recall@20 with patience 20
    train_defaults = TrainConfig(epochs=1000, batch_size=2048, lr=1e-3, metric="recall@20", patience=20)
    validation_metrics = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")

    def __init__(self, config=None, **options):
        nn.Module.__init__(self)
        self.config = resolve_config(self.config_class, config, options)
        self.dataset_name_: str | None = None
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- building and training -----------------------------------------------------------------------------
    def build(self, dataset: RecDataset, seed: int = 0) -> "GraphModel":
        """Create the parameters and graphs for ``dataset``'s training split, the random initialisation drawn
        from ``seed`` (the caller's random state is left as it was). Once: a built model only checks that it is
        given the dataset it was built for. ``fit`` calls it."""
        if self.dataset_name_ is not None:
            if (self.dataset_name_, self.n_users_, self.n_items_) != (dataset.name, dataset.n_users, dataset.n_items):
                raise ValueError(f"this {type(self).__name__} was built for {self.dataset_name_} ({self.n_users_} "
                                 f"users x {self.n_items_} items), not {dataset.name} ({dataset.n_users} x "
                                 f"{dataset.n_items}); make a new model for another dataset")
            return self
        if not dataset.is_split:
            raise ValueError(f"{dataset.name}: {type(self).__name__} needs a split dataset (workbench.data.splits)")
        self.dataset_name_, self.n_users_, self.n_items_ = dataset.name, dataset.n_users, dataset.n_items
        self.train_matrix_ = dataset.matrix(TRAIN)
        with seeded(seed):
            self._build(dataset)
        return self

    def _build(self, dataset: RecDataset) -> None:
        raise NotImplementedError

    def fit(self, dataset: RecDataset, config: TrainConfig | None = None, callback=None, **options) -> "GraphModel":
        """Build (if needed) and train on ``dataset``'s training split with the engine; ``options`` are
        :class:`~workbench.training.TrainConfig` fields (``epochs``, ``lr``, ``patience``, ``seed``, ``device``,
        ``checkpoint``...). Keeps ``history_``, ``best_epoch_`` and ``valid_`` (the best epoch's validation
        metrics); the model ends on the training device, in eval mode, with the best epoch's weights."""
        self.build(dataset, seed=self.train_config(config, **options).seed)
        self._run_engine(dataset, config, callback, options)
        return self

    def to_device(self, device: torch.device | str) -> "GraphModel":
        device = torch.device(device)
        self.to(device)
        self.move_graphs(device)
        return self

    def move_graphs(self, device: torch.device) -> None:
        """Move non-parameter graph structures (sparse tensors) to ``device``."""

    def fit_data(self, dataset: RecDataset, device: torch.device) -> RecDataset:
        self._check_built_for(dataset)
        dataset.check_trainable()
        return dataset

    def _check_built_for(self, dataset: RecDataset) -> None:
        if self.dataset_name_ is None:
            raise RuntimeError(f"this {type(self).__name__} has not been fitted; call fit(dataset) first")
        self.build(dataset)  # a built model only checks that the dataset is the one it was built for

    def data_fingerprint(self, dataset: RecDataset) -> str:
        """The interactions with their split labels and every modality's features (a model resumed on other
        features would go on silently: features are not in the checkpoint)."""
        held = dataset.interactions[["user_id", "item_id", "x_label"]].to_numpy()
        return content_hash({"name": dataset.name, "shape": [dataset.n_users, dataset.n_items],
                             "interactions": content_hash(np.ascontiguousarray(held)),
                             "features": {m: content_hash(X) for m, X in dataset.features.items()}})

    def epoch_batches(self, dataset: RecDataset, batch_size: int, rng: np.random.Generator) -> list[Batch]:
        """Every training interaction once, shuffled, with a fresh uniformly drawn negative (MMRec's sampler)."""
        users, pos, neg = (torch.as_tensor(a, device=self.device) for a in sample_triplets(self.train_matrix_, rng))
        return [Batch({"users": users[s], "pos": pos[s], "neg": neg[s]}) for s in batch_slices(len(users), batch_size)]

    def training_step(self, batch: Batch) -> StepOutput:
        return StepOutput(self.loss(batch.rows["users"], batch.rows["pos"], batch.rows["neg"]))

    def validate(self, dataset: RecDataset) -> dict[str, float]:
        return evaluate_split(dataset, self.scorer(), VALID, ks=(10, 20), metrics=("recall", "ndcg"),
                              batch_size=EVAL_BATCH, name=type(self).__name__).metrics

    # -- the model -------------------------------------------------------------------------------------------
    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

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

    def evaluate(self, dataset: RecDataset, part: str = "test", strata=None, **options):
        """See :meth:`Recommender.evaluate`; the model must have been fitted for ``dataset``."""
        self._check_built_for(dataset)
        return super().evaluate(dataset, part, strata, **options)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
