"""The tokenizer contract of the neural tokenizers (RQ-VAE, MMQ), and how they train with the engine.

A tokenizer maps item features ``X`` ``(n, F)`` to codes ``(n, L)`` of ``K`` values each. One fitting style,
as in scikit-learn: ``tok.fit(X)`` trains and returns ``tok`` (the per-epoch history in ``tok.history_``);
``tok.encode(X)`` gives the codes, ``tok.reconstruct(X)`` the features rebuilt from them, ``tok.latents(X)`` the
continuous latents, ``tok.evaluate(X)`` the codebook health. Each takes a NumPy array (and returns one) or a
tensor (and returns a tensor on its device).

Subclasses implement the tensor functions ``_encode(x)``, ``_reconstruct(x)``, ``_latent(x)``, the k-means
start-up ``init_codebooks(x, seed, batch_size)``, ``forward(x, weights)`` (a pure function returning named
``losses``, ``codes`` and the quantizers' ``residuals``) and ``update_state(out)`` (the quantizers' state
updates after an optimizer step), and set ``K`` and ``L``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
from torch import nn

from ..core.runtime import seeded
from ..core.storage import content_hash
from ..training.engine import Batch, StepOutput, Trainable, TrainConfig, batch_slices
from .health import health_summary, level_health

ENCODE_BATCH = 4096  # rows per pass when encoding a catalogue


@dataclass
class TokenizerData:
    """A tokenizer's training data on the training device: features ``x`` ``(n, F)``, optional per-item loss
    weights ``(n,)``, the host copy ``X`` (for the health report) and the k-means sample size."""

    x: torch.Tensor
    weights: torch.Tensor | None
    X: np.ndarray
    init_sample: int
    first_order: torch.Tensor | None = None  # the first epoch's order: the k-means sample first


def check_features(X, weights=None, input_dim: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``X`` as a finite float32 ``(n, F)`` array (``F == input_dim`` when given) and ``weights`` as ``n``
    finite non-negative float32 numbers; clear errors otherwise."""
    X, weights = (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v for v in (X, weights))
    X = np.asarray(X)
    if X.ndim != 2 or len(X) == 0 or not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise ValueError(f"features must be a non-empty real (n_items, F) matrix, got {X.dtype} {X.shape}")
    X = X.astype(np.float32, copy=False)
    if input_dim is not None and X.shape[1] != input_dim:
        raise ValueError(f"features have {X.shape[1]} columns; this tokenizer was built for {input_dim}")
    if not np.isfinite(X).all():
        raise ValueError(f"features have NaN/inf values in rows {np.flatnonzero(~np.isfinite(X).all(1))[:5].tolist()}")
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float32)
        if weights.shape != (len(X),) or not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError(f"weights must be {len(X)} finite non-negative numbers, got shape {weights.shape}")
    return X, weights


class SoftCodes(NamedTuple):
    """A tokenizer's differentiable ids for behavior-aware fine-tuning (MMQ eq. 15-18): ``ind`` ``(B, L, K)``
    one-hot forward with the soft index's gradient, ``codes`` ``(B, L)`` the hard ids (equal to ``encode``), and
    the tokenizer's own reconstruction ``losses`` (``recon``, ``aux``; unweighted batch means) that eq. 19 keeps."""

    ind: torch.Tensor
    codes: torch.Tensor
    losses: dict[str, torch.Tensor]


class Tokenizer:
    """What every tokenizer offers, neural or k-means: ``K``, ``L``, ``fit(X) -> self``, ``encode(X)`` ``(n, L)``,
    ``reconstruct(X)`` ``(n, F)`` and :meth:`evaluate`."""

    K: int
    L: int

    def evaluate(self, X) -> dict[str, float]:
        """Codebook health on ``X``: reconstruction error, mean utilization and entropy, collisions, unique ids,
        and each level's utilization and entropy (``utilization_l1``, ``entropy_l1``, ...)."""
        X = np.asarray(X.detach().cpu() if isinstance(X, torch.Tensor) else X, dtype=np.float32)
        codes = self.encode(X)
        row = health_summary(codes, self.K, X, self.reconstruct(X))
        for level, values in level_health(codes, self.K).iterrows():
            row[f"utilization_l{level}"] = values["utilization"]
            row[f"entropy_l{level}"] = values["entropy_bits"]
        return row


class TokenizerModule(nn.Module, Tokenizer, Trainable):
    """Base class of the neural tokenizers (see the module docstring)."""

    train_defaults = TrainConfig(epochs=30, batch_size=1024, lr=1e-3)
    input_dim: int | None = None
    _fresh = True  # no fit and no loaded state yet: the first fit redraws the initialisation from its seed

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As ``nn.Module.load_state_dict``; loaded weights are kept by a later ``fit`` (a warm start)."""
        self._fresh = False
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ------------------------------------------------------------------------------------------- fit
    def fit(self, X, weights=None, *, init_sample: int = 16384, config: TrainConfig | None = None,
            callback: Callable[[dict], None] | None = None, **options) -> "TokenizerModule":
        """Train on features ``X`` ``(n, F)`` (``weights`` ``(n,)``: per-item loss weights, e.g. MoToRec's
        ``w_i``) with the engine; ``options`` are :class:`~workbench.training.TrainConfig` fields (``epochs``,
        ``batch_size``, ``lr``, ``seed``, ``device``, ``checkpoint``, ``eval_every``, ...). The first fit of a new
        tokenizer draws its layers' initial values from ``seed`` (so it does not depend on the global random state
        at construction); a later fit, or one after ``load_state_dict``, starts from the current weights (a warm
        start). The codebooks start from k-means on ``init_sample`` random items. ``callback(row)`` sees each epoch's history row (codebook
        health every ``eval_every`` epochs). Returns ``self``, left on the training device in eval mode."""
        self._run_engine((X, weights, init_sample), config, callback, options)
        return self

    def fit_data(self, data: Any, device: torch.device) -> TokenizerData:
        X, weights, init_sample = data
        if not isinstance(init_sample, int) or init_sample < 1:
            raise ValueError(f"init_sample (items for the k-means start-up) must be a positive integer, got "
                             f"{init_sample!r}")
        X, weights = check_features(X, weights, self.input_dim)
        w = None if weights is None else torch.from_numpy(weights).to(device)
        return TokenizerData(torch.from_numpy(X).to(device), w, X, int(init_sample))

    def data_fingerprint(self, data: TokenizerData) -> str:
        w = None if data.weights is None else content_hash(data.weights.cpu().numpy())
        return content_hash({"X": content_hash(data.X), "weights": w, "init_sample": data.init_sample})

    @torch.no_grad()
    def on_fit_start(self, data: TokenizerData, config: TrainConfig, rng: np.random.Generator) -> None:
        """k-means start-up on ``init_sample`` random items, which also open the first epoch: with ``init_sample =
        batch_size`` the codebooks start from the first training batch, as lucidrains' ``vector-quantize-pytorch``
        does (the tokenizer benchmark compares like with like so; measured on its clustered set with EMA and
        dead-code resets, seeds 0-1: one batch 0-0.06% of items collide, the whole catalogue 0.11-0.20%). The
        default stays the larger sample: without dead-code resets a code that one small batch leaves empty is
        never used again."""
        if self._fresh:  # a first fit of a new tokenizer: the initialisation too is drawn from the seed
            self.reset_parameters(config.seed)
        self._fresh = False
        gen = torch.Generator().manual_seed(config.seed)
        data.first_order = torch.randperm(len(data.x), generator=gen).to(data.x.device)
        sample = data.first_order[:data.init_sample]
        self.init_codebooks(data.x[sample], seed=config.seed, batch_size=min(config.batch_size, len(data.x)))

    def epoch_batches(self, data: TokenizerData, batch_size: int, rng: np.random.Generator) -> list[Batch]:
        """A fresh permutation each epoch; the first epoch of a fresh run starts with the k-means sample."""
        if data.first_order is not None:
            order, data.first_order = data.first_order, None
        else:
            order = torch.from_numpy(rng.permutation(len(data.x))).to(data.x.device)
        shared = {"x": data.x, "weights": data.weights}
        return [Batch({"idx": order[s]}, shared) for s in batch_slices(len(order), batch_size)]

    def training_step(self, batch: Batch) -> StepOutput:
        idx, w = batch.rows["idx"], batch.shared["weights"]
        out = self(batch.shared["x"].index_select(0, idx), None if w is None else w.index_select(0, idx))
        return StepOutput(out.losses, out)

    def after_step(self, batch: Batch, updates: Any) -> dict[str, float]:
        return {"dead_code_resets": self.update_state(updates)}

    def epoch_report(self, data: TokenizerData, epoch: int) -> dict[str, float]:
        return self.evaluate(data.X)

    @torch.no_grad()
    def reset_parameters(self, seed: int) -> None:
        """Draw every layer's and codebook's initial values afresh from ``seed`` (the caller's random state is
        left alone): a tokenizer's first ``fit(seed=s)`` gives the same result however it was constructed."""
        device = next(self.parameters()).device
        with seeded(seed, device):
            for module in self.modules():
                if module is not self and hasattr(module, "reset_parameters"):
                    module.reset_parameters()

    # ------------------------------------------------------------------------------------------ contract
    def init_codebooks(self, x: torch.Tensor, seed: int = 0, batch_size: int | None = None) -> None:
        raise NotImplementedError

    def update_state(self, out: Any, shared: bool = False) -> int:
        """The quantizers' state updates from one training forward's output; returns the codes reset. ``shared``:
        the batch is the same on every process (see :meth:`~workbench.tokenizers.quantizer.ResidualQuantizer.update`)."""
        raise NotImplementedError

    def soft_codes(self, x: torch.Tensor, tau: float = 1.0) -> SoftCodes:
        """The soft-index ids of a feature batch ``x`` ``(B, F)`` (:class:`SoftCodes`), with gradients reaching
        the encoder and the codebooks."""
        raise NotImplementedError(f"{type(self).__name__} has no soft index (behavior-aware fine-tuning)")

    def encode(self, X):
        """Codes ``(n, L)`` (int64) of features ``X`` ``(n, F)``: an array for an array, a tensor (on the
        tokenizer's device) for a tensor."""
        out = self._batched(X, self._encode)
        return out if isinstance(out, torch.Tensor) else out.astype(np.int64)

    def reconstruct(self, X):
        """Features ``(n, F)`` rebuilt from the codes of ``X``."""
        return self._batched(X, self._reconstruct)

    def latents(self, X):
        """Continuous latents ``(n, D)`` before quantization."""
        return self._batched(X, self._latent)

    @torch.no_grad()
    def _batched(self, X, fn):
        """``fn`` over ``X`` in batches of ``ENCODE_BATCH`` rows, in eval mode (the mode is restored)."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        as_tensor = isinstance(X, torch.Tensor)
        if X.ndim != 2 or (self.input_dim is not None and X.shape[1] != self.input_dim):
            raise ValueError(f"{type(self).__name__} expects an (n, {self.input_dim or 'F'}) feature matrix, got shape "
                             f"{tuple(X.shape)}")
        if len(X) == 0:
            raise ValueError(f"{type(self).__name__}: no rows to encode (an empty feature matrix)")
        try:
            parts = [fn(torch.as_tensor(X[i:i + ENCODE_BATCH], dtype=torch.float32, device=device))
                     for i in range(0, len(X), ENCODE_BATCH)]
        finally:
            self.train(was_training)
        return torch.cat(parts) if as_tensor else np.concatenate([p.cpu().numpy() for p in parts])
