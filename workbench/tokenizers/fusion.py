"""CEMG's collaborative-guided multimodal fusion (CEMG eq. 2-3).

Image and text features are reduced by PCA to ``d`` dimensions (``e_v``, ``e_t``; CEMG section 3.2), the
collaborative embedding ``e_c`` (the project's LightGCN) has ``d`` dimensions too. The collaborative vector is the
query over the modalities::

    alpha_m = softmax_m( (W_q e_c)^T (W_k e_m) ),  m in {v, t}          (eq. 2)
    x = [ alpha_v e_v + alpha_t e_t ; e_c ]   in R^{2d}                  (eq. 3)

**Layout of x (our reading of eq. 3):** the attention-weighted sum of the modalities first (``d`` columns), the
collaborative embedding after it (``d`` columns); ``fused_layout`` names the blocks.

**What trains W_q and W_k (our reading):** the paper names no loss for them. Trained through the RQ-VAE's
reconstruction of ``x`` (which depends on ``alpha``), they would move ``alpha`` towards whichever modality is
easier to reconstruct, which is not what "collaborative guidance" means. We train them, before tokenization,
with an in-batch contrastive loss (temperature ``temperature``) between a linear map of the fused content
``alpha_v e_v + alpha_t e_t`` and the item's ``e_c``, over the items that have training interactions (an item
without any has an ``e_c`` that is still its random initialisation): an item's weights then say which modality
agrees with its place in the interaction graph.

Each block is scaled to a mean row norm of 1 (PCA outputs and LightGCN embeddings differ in scale by orders of
magnitude). Ablations (CEMG Fig. 2): ``modalities=("text",)`` (w/o Image), ``("image",)`` (w/o Text),
``collaborative=False`` (w/o Collab: no query, equal weights, ``x = mean of the modalities``, ``d`` columns).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from torch import nn

from ..core.config import resolve_config
from ..core.runtime import seeded
from ..core.storage import content_hash
from ..training.engine import Batch, StepOutput, Trainable, TrainConfig, batch_slices


@dataclass(frozen=True)
class FusionConfig:
    dim: int = 64                               # d (the collaborative embedding's size)
    modalities: tuple[str, ...] = ("image", "text")
    collaborative: bool = True                  # False: the w/o Collab ablation
    temperature: float = 0.1

    def __post_init__(self) -> None:
        if not self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"modalities must be distinct and non-empty, got {self.modalities}")
        if self.dim < 1 or not self.temperature > 0:
            raise ValueError("need dim >= 1 and temperature > 0")


def unit_rows(X: np.ndarray) -> np.ndarray:
    """``X`` scaled so that its rows have mean Euclidean norm 1."""
    X = np.asarray(X, dtype=np.float32)
    return X / max(float(np.linalg.norm(X, axis=1).mean()), 1e-12)


class CollaborativeFusion(nn.Module, Trainable):
    """CEMG's fusion layer (module doc). ``fit(features, cf, trained=...)`` then ``transform()`` / ``weights()``."""

    train_defaults = TrainConfig(epochs=30, batch_size=512, lr=1e-3)

    def __init__(self, config: FusionConfig | None = None, **options):
        super().__init__()
        self.config = resolve_config(FusionConfig, config, options)
        d = self.config.dim
        with seeded(0):
            self.W_q = nn.Linear(d, d, bias=False)     # eq. 2
            self.W_k = nn.Linear(d, d, bias=False)
            self.align = nn.Linear(d, d, bias=False)   # fused content -> e_c for the alignment loss (ours)

    def _inputs(self, features: dict[str, np.ndarray], cf: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        missing = [m for m in c.modalities if m not in features]
        if missing:
            raise KeyError(f"CollaborativeFusion: the dataset has no {missing} features; it has {sorted(features)}")
        n = len(features[c.modalities[0]])
        blocks = []
        for m in c.modalities:
            X = np.asarray(features[m], dtype=np.float32)
            k = min(c.dim, X.shape[1], n)
            reduced = PCA(k, random_state=0).fit_transform(X)
            blocks.append(np.pad(reduced, ((0, 0), (0, c.dim - k))))  # zero columns if a modality is smaller
        E = torch.as_tensor(np.stack([unit_rows(b) for b in blocks], 1))   # (n, M, d)
        if cf is None:
            if c.collaborative:
                raise ValueError("CollaborativeFusion needs the collaborative embeddings cf (or collaborative=False)")
            return E, torch.zeros(n, c.dim)
        cf = np.asarray(cf, dtype=np.float32)
        if cf.shape != (n, c.dim):
            raise ValueError(f"cf must be (n_items, dim) = ({n}, {c.dim}), got {cf.shape}")
        return E, torch.as_tensor(unit_rows(cf))

    def attention(self, E: torch.Tensor, e_c: torch.Tensor) -> torch.Tensor:
        """``alpha`` ``(n, M)`` (eq. 2); equal weights without the collaborative query."""
        if not self.config.collaborative:
            return torch.full(E.shape[:2], 1.0 / E.shape[1], device=E.device)
        logits = torch.einsum("nd,nmd->nm", self.W_q(e_c), self.W_k(E))
        return torch.softmax(logits, dim=1)

    # -- training (the engine) -------------------------------------------------------------------------------
    def fit(self, features: dict[str, np.ndarray], cf: np.ndarray | None = None, trained: np.ndarray | None = None,
            config: TrainConfig | None = None, **options) -> "CollaborativeFusion":
        """Reduce the modalities (PCA), then train ``W_q``, ``W_k`` on the items ``trained`` (bool ``(n,)``;
        default all) by the alignment loss (module doc). Nothing to train without the collaborative query or
        with a single modality."""
        self.E_, self.e_c_ = self._inputs(features, cf)
        self.trained_ = np.ones(len(self.E_), bool) if trained is None else np.asarray(trained, bool)
        if self.config.collaborative and len(self.config.modalities) > 1:
            self._run_engine(None, config, None, options)
        self.eval()
        return self

    def fit_data(self, data: Any, device: torch.device) -> dict:
        rows = np.flatnonzero(self.trained_)
        if len(rows) < 2:
            raise ValueError("CollaborativeFusion needs at least 2 items with training interactions")
        return {"rows": rows, "E": self.E_.to(device), "e_c": self.e_c_.to(device)}

    def data_fingerprint(self, data: dict) -> str:
        return content_hash({"E": content_hash(data["E"].cpu().numpy()), "rows": content_hash(data["rows"])})

    def epoch_batches(self, data: dict, batch_size: int, rng: np.random.Generator) -> list[Batch]:
        order = torch.as_tensor(rng.permutation(data["rows"]), device=data["E"].device)
        return [Batch({"idx": order[s]}, data) for s in batch_slices(len(order), batch_size)]

    def training_step(self, batch: Batch) -> StepOutput:
        idx = batch.rows["idx"]
        E, e_c = batch.shared["E"][idx], batch.shared["e_c"][idx]
        content = (self.attention(E, e_c)[:, :, None] * E).sum(1)            # (B, d)
        a, b = F.normalize(self.align(content), dim=-1), F.normalize(e_c, dim=-1)
        logits = a @ b.T / self.config.temperature
        return StepOutput({"align": F.cross_entropy(logits, torch.arange(len(idx), device=logits.device))})

    # -- results ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def weights(self) -> np.ndarray:
        """``(n, M)`` each item's attention weight on each modality (``config.modalities`` order)."""
        dev = self.W_q.weight.device
        return self.attention(self.E_.to(dev), self.e_c_.to(dev)).cpu().numpy()

    @torch.no_grad()
    def transform(self) -> np.ndarray:
        """The fused vectors ``x`` (eq. 3): ``(n, 2d)``, or ``(n, d)`` without the collaborative block."""
        dev = self.W_q.weight.device
        E = self.E_.to(dev)
        alpha = self.attention(E, self.e_c_.to(dev))
        content = (alpha[:, :, None] * E).sum(1)
        x = torch.cat([content, self.e_c_.to(dev)], 1) if self.config.collaborative else content
        return x.cpu().numpy()

    def fused_layout(self) -> dict[str, slice]:
        """The column blocks of :meth:`transform`: ``content`` (the weighted modalities), ``collaborative``."""
        d = self.config.dim
        return {"content": slice(0, d), **({"collaborative": slice(d, 2 * d)} if self.config.collaborative else {})}
