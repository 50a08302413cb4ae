"""LETTER (Wang et al. 2024): an RQ-VAE tokenizer with two more terms, as the generator's id variant.

    L = L_RQ-VAE + alpha * L_CF + beta * L_div

* ``L_CF``, collaborative alignment: an in-batch contrastive loss (cross-entropy over the batch) between each
  item's quantized latent ``z_q`` and its collaborative embedding (LETTER: SASRec's item embedding; here any
  ``(n_items, d)`` table, e.g. the project's LightGCN or SASRec), by dot product as in LETTER's code. A learned
  linear map takes the collaborative embedding to ``D`` when its size differs.
* ``L_div``, code-assignment diversity: each level's codes are grouped into ``clusters`` clusters (k-means on
  the codebook, refreshed every epoch); for an item whose level-``l`` code is ``j``, code ``j``'s vector is pulled
  towards another code of ``j``'s cluster drawn at random, against all the level's other codes (``j`` itself
  masked), by cross-entropy on dot products, averaged over levels. LETTER groups codes with constrained k-means
  (clusters of bounded size); we use plain k-means, so clusters may be uneven (a code alone in its cluster has no
  partner and gives no term).

The diversity term acts on codebook vectors through their gradient, so LETTER's codebooks are learned by
gradient (``ema=False``), as in LETTER.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.config import resolve_config
from ..core.storage import content_hash
from ..training.engine import Batch, StepOutput
from .base import TokenizerData, check_features
from .quantizer import kmeans
from .rqvae import RQVAE, RQVAEConfig


@dataclass(frozen=True)
class LETTERConfig:
    rqvae: RQVAEConfig = field(default_factory=RQVAEConfig)
    cf_weight: float = 0.02        # alpha
    diversity_weight: float = 1e-4  # beta
    clusters: int = 10             # code clusters per level for L_div

    def __post_init__(self) -> None:
        if self.rqvae.quantizer.ema:
            raise ValueError("LETTER learns its codebooks by gradient (L_div acts on them): use ema=False")
        if self.cf_weight < 0 or self.diversity_weight < 0 or self.clusters < 2:
            raise ValueError("need cf_weight >= 0, diversity_weight >= 0 and clusters >= 2")


def code_clusters(codebooks: torch.Tensor, clusters: int, seed: int = 0) -> torch.Tensor:
    """``(L, K)`` the cluster of every code of every level (k-means on each level's code vectors)."""
    out = []
    for level, book in enumerate(codebooks.detach()):
        centres = kmeans(book, min(clusters, len(book)), seed=seed + level)
        out.append(torch.cdist(book, centres).argmin(1))
    return torch.stack(out)


def letter_diversity(codebooks: torch.Tensor, codes: torch.Tensor, labels: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """LETTER's ``L_div`` (module doc) for codes ``(B, L)`` with code clusters ``labels`` ``(L, K)``."""
    L, K, _ = codebooks.shape
    total, terms = codebooks.new_zeros(()), 0
    for level in range(L):
        j = codes[:, level]
        same = labels[level][j][:, None] == labels[level][None, :]          # (B, K)
        same[torch.arange(len(j)), j] = False
        has = same.any(1)
        if not has.any():
            continue
        weights = same[has].float()
        partner = torch.multinomial(weights, 1, generator=generator).squeeze(1)
        chosen = codebooks[level][j[has]]                                    # (b, D)
        logits = chosen @ codebooks[level].T                                 # (b, K)
        logits = logits.scatter(1, j[has][:, None], float("-inf"))           # the own code is not a candidate
        total = total + F.cross_entropy(logits, partner)
        terms += 1
    return total / max(terms, 1)


class LETTER(RQVAE):
    """LETTER's tokenizer (module doc): ``LETTER(input_dim, cf_dim, config)``; ``fit(X, cf)``."""

    def __init__(self, input_dim: int, cf_dim: int, config: LETTERConfig | None = None, **options):
        letter = resolve_config(LETTERConfig, config, options)
        super().__init__(input_dim, letter.rqvae)
        self.letter_config = letter
        D = letter.rqvae.quantizer.D
        self.cf_dim = cf_dim
        self.cf_map = nn.Identity() if cf_dim == D else nn.Linear(cf_dim, D, bias=False)
        self.register_buffer("code_labels", torch.zeros(letter.rqvae.quantizer.L, letter.rqvae.quantizer.K,
                                                        dtype=torch.long))

    def fit(self, X, cf, weights=None, **options) -> "LETTER":
        """Train on features ``X`` ``(n, F)`` aligned with collaborative embeddings ``cf`` ``(n, cf_dim)``;
        ``options`` as :meth:`TokenizerModule.fit`."""
        cf, _ = check_features(cf, None, self.cf_dim)
        if len(cf) != len(np.asarray(X)):
            raise ValueError(f"cf has {len(cf)} rows for {len(np.asarray(X))} items")
        self._cf = cf
        return super().fit(X, weights, **options)

    def fit_data(self, data, device: torch.device) -> TokenizerData:
        out = super().fit_data(data, device)
        out.cf = torch.from_numpy(self._cf).to(device)
        return out

    def data_fingerprint(self, data: TokenizerData) -> str:
        return content_hash({"base": super().data_fingerprint(data), "cf": content_hash(self._cf)})

    def on_epoch_start(self, data, epoch: int, rng: np.random.Generator, n_steps: int) -> None:
        self.code_labels.copy_(code_clusters(self.quantizer.codebooks, self.letter_config.clusters,
                                             seed=int(rng.integers(2 ** 31))))

    def epoch_batches(self, data: TokenizerData, batch_size: int, rng: np.random.Generator) -> list[Batch]:
        batches = super().epoch_batches(data, batch_size, rng)
        for b in batches:
            b.shared["cf"] = data.cf
        return batches

    def training_step(self, batch: Batch) -> StepOutput:
        idx, w = batch.rows["idx"], batch.shared["weights"]
        out = self(batch.shared["x"].index_select(0, idx), None if w is None else w.index_select(0, idx))
        c = self.letter_config
        losses = dict(out.losses)
        if c.cf_weight:
            cf = self.cf_map(batch.shared["cf"].index_select(0, idx))          # (B, D)
            sim = out.quantized @ cf.T                                         # LETTER: dot products
            losses["cf"] = c.cf_weight * F.cross_entropy(sim, torch.arange(len(idx), device=sim.device))
        if c.diversity_weight:
            losses["letter_div"] = c.diversity_weight * letter_diversity(self.quantizer.codebooks, out.codes,
                                                                          self.code_labels)
        return StepOutput(losses, out)
