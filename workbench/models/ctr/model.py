"""Compact CTR models for discriminative ranking with semantic ids (MMQ section 4, "Discriminative Ranking"):
PPNet and a plain DNN, in torch, on the training engine.

* **Inputs.** The user-id embedding, the item-id embedding (index 0 is the out-of-vocabulary bucket of users and
  items first seen after the training window; :mod:`workbench.data.ctr`) and the item's semantic-id field
  (:mod:`.features`), concatenated.
* **DNN.** An MLP over the concatenation, ReLU between layers, one logit.
* **PPNet** (Kuaishou's Parameter Personalized Network, MMQ's ranking backbone). The same MLP, every layer's
  input multiplied elementwise by a gate ``delta = gamma * sigmoid(GateNN(g))`` with ``gamma = 2`` (a gate of 1 is
  the DNN); ``g`` is the concatenation of the user- and item-id prior embeddings (their own tables) and the main
  input with its gradient stopped, so the gates personalise the tower without pulling the main embeddings. Each
  gate is a two-layer MLP (``gate_hidden`` units). Our reading of "gating every MLP layer": the input of every
  linear layer, the output layer's included, is gated.
* **Training.** Binary cross-entropy, Adam, early stopping on validation AUC (the engine's ``metric="auc"``);
  validation rows are the end of the training window, test rows are never seen in training.
* **Behavior-aware fine-tuning** (MMQ section 3.3, :meth:`CTRModel.finetune`): a ``"sum"`` model trained on frozen
  ids warm-starts a ``"soft"`` model whose semantic embeddings are looked up through a trainable copy of the
  tokenizer's soft index; the loss is eq. 19, ``BCE + 0.5 L_recon + 0.5 L_aux``. Afterwards the ids are
  re-exported (:meth:`CTRModel.frozen`) and the change reported (:func:`id_change_report`).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ...core.config import resolve_config
from ...core.layers import hidden_sizes, mlp
from ...core.runtime import seeded
from ...core.storage import content_hash
from ...data.ctr import CTRData
from ...evaluation.ctr import auc, auc_by_stratum, gauc_report, log_loss
from ...tokenizers.health import level_health
from ...tokenizers.semantic_ids import collision_report
from ...training.engine import Batch, StepOutput, Trainable, TrainConfig, batch_slices
from .features import CODE_FEATURES, FEATURES, ItemFeatures, SoftCoder, joint_optimizer

ARCHS = ("ppnet", "dnn")
FREEZE = ("none", "codebooks", "tokenizer")
PREDICT_BATCH = 65536


@dataclass(frozen=True)
class CTRConfig:
    """A CTR model's settings (module doc)."""

    arch: str = "ppnet"               # "ppnet" | "dnn"
    features: str = "none"            # a FEATURES mode (the item-side semantic field)
    dim: int = 16                     # embedding size of every field (and of the PPNet priors)
    hidden: tuple[int, ...] = (128, 64)
    item_id: bool = True              # the item-id embedding next to the semantic field
    gamma: float = 2.0                # PPNet gate scale (delta = gamma * sigmoid)
    gate_hidden: int = 64
    buckets: int = 4096               # "ngram": table rows per prefix length at most
    hash_seed: int = 0                # "hash": the random codes' seed
    tau: float = 1.0                  # "soft": the soft index's temperature (eq. 16)
    recon_weight: float = 0.5         # eq. 19 alpha'
    aux_weight: float = 0.5           # eq. 19 beta'
    tokenizer_lr: float = 0.1         # "soft": the tokenizer's learning rate as a share of the model's
    freeze: str = "none"              # "soft": "none" | "codebooks" | "tokenizer" (kept as they are)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", hidden_sizes(self.hidden, "CTRConfig"))
        if self.arch not in ARCHS or self.features not in FEATURES or self.freeze not in FREEZE:
            raise ValueError(f"CTRConfig: arch must be one of {ARCHS}, features one of {FEATURES} and freeze one of "
                             f"{FREEZE}; got {self.arch!r}, {self.features!r}, {self.freeze!r}")
        if self.dim < 1 or self.tau <= 0 or self.gamma <= 0 or self.tokenizer_lr < 0:
            raise ValueError(f"CTRConfig needs dim >= 1, tau > 0, gamma > 0 and tokenizer_lr >= 0; got {self.dim}, "
                             f"{self.tau}, {self.gamma}, {self.tokenizer_lr}")
        if not self.item_id and self.features == "none":
            raise ValueError("CTRConfig: item_id=False with features='none' leaves no item feature")


class Tower(nn.Module):
    """The MLP ``in_dim -> hidden -> 1``; with ``gate_dim`` (PPNet) every layer's input is multiplied by
    ``gamma * sigmoid(GateNN(g))``."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], gate_dim: int | None = None, gamma: float = 2.0,
                 gate_hidden: int = 64):
        super().__init__()
        sizes = [in_dim, *hidden]
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        self.out = nn.Linear(sizes[-1], 1)
        self.gamma = gamma
        self.gates = (nn.ModuleList([mlp([gate_dim, gate_hidden, d]) for d in sizes])
                      if gate_dim is not None else None)

    def forward(self, h: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        for i, layer in enumerate([*self.layers, self.out]):
            if self.gates is not None:
                h = h * (self.gamma * torch.sigmoid(self.gates[i](g)))
            h = layer(h)
            if i < len(self.layers):
                h = F.relu(h)
        return h.squeeze(-1)


class CTRReport(NamedTuple):
    """``metrics``: AUC, log loss, GAUC under each weighting with the users it skipped, AUC per item stratum;
    ``scores`` ``(n,)`` the predicted click probabilities of the part's rows (for paired bootstraps)."""

    metrics: dict[str, float]
    scores: np.ndarray


@dataclass
class _TrainData:
    source: CTRData
    rows: dict[str, torch.Tensor]


def _tensor_rows(part: dict[str, np.ndarray], device) -> dict[str, torch.Tensor]:
    return {"user": torch.as_tensor(part["user_index"], device=device),
            "item": torch.as_tensor(part["items"], device=device),
            "item_index": torch.as_tensor(part["item_index"], device=device),
            "label": torch.as_tensor(part["labels"], dtype=torch.float32, device=device)}


class CTRModel(nn.Module, Trainable):
    """PPNet or DNN click model (module doc); ``fit(data, codes=..., content=..., tokenizer=...)`` as the feature
    mode needs."""

    train_defaults = TrainConfig(epochs=30, batch_size=1024, lr=1e-3, metric="auc", patience=3)
    validation_metrics = ("auc", "logloss")

    def __init__(self, config: CTRConfig | None = None, **options):
        nn.Module.__init__(self)
        self.config = resolve_config(CTRConfig, config, options)
        self.built_ = False

    # -- building ------------------------------------------------------------------------------------------
    def build(self, data: CTRData, codes=None, content=None, tokenizer=None, K: int | None = None,
              seed: int = 0) -> "CTRModel":
        """Create the parameters for ``data``'s vocabularies and the item inputs (once, from ``seed``)."""
        if self.built_:
            return self
        c = self.config
        if c.features in CODE_FEATURES and c.features != "soft" and codes is not None and K is None:
            K = int(np.asarray(codes).max()) + 1
        if c.features == "soft" and (tokenizer is None or content is None):
            raise ValueError("features='soft' needs a tokenizer and the items' content vectors")
        with seeded(seed):
            coder = SoftCoder(tokenizer) if c.features == "soft" else None
            self.item_features = ItemFeatures(c.features, c.dim, codes, K, content, coder, c.buckets, c.hash_seed)
            n = self.item_features.n_items
            if n is not None and n != data.n_items:
                raise ValueError(f"the item inputs cover {n} items; {data.name} has {data.n_items}")
            self.user_emb = nn.Embedding(data.user_vocab_size, c.dim)
            self.item_emb = nn.Embedding(data.item_vocab_size, c.dim) if c.item_id else None
            width = c.dim * (1 + c.item_id) + self.item_features.width
            gate_dim = None
            if c.arch == "ppnet":
                self.user_prior = nn.Embedding(data.user_vocab_size, c.dim)
                self.item_prior = nn.Embedding(data.item_vocab_size, c.dim)
                gate_dim = 2 * c.dim + width
            for emb in self._embeddings():
                nn.init.normal_(emb.weight, std=0.01)
            self.tower = Tower(width, c.hidden, gate_dim, c.gamma, c.gate_hidden)
        if coder is not None and c.freeze != "none":
            for name, p in coder.named_parameters():
                if c.freeze == "tokenizer" or "codebooks" in name:
                    p.requires_grad_(False)
        self.n_items_, self.user_vocab_, self.item_vocab_ = data.n_items, data.user_vocab, data.item_vocab
        self.built_ = True
        return self

    def _embeddings(self) -> list[nn.Embedding]:
        return [m for m in (self.user_emb, self.item_emb, getattr(self, "user_prior", None),
                            getattr(self, "item_prior", None)) if m is not None]

    @property
    def coder(self) -> SoftCoder | None:
        return self.item_features.coder if self.built_ else None

    def parameter_count(self) -> int:
        """Trainable parameters of the click model (a soft mode's tokenizer not counted)."""
        coder = {id(p) for p in self.coder.parameters()} if self.coder is not None else set()
        return sum(p.numel() for p in self.parameters() if id(p) not in coder)

    # -- the model -----------------------------------------------------------------------------------------
    def logits(self, user: torch.Tensor, item: torch.Tensor, item_index: torch.Tensor
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Click logits ``(B,)`` from user indices, item ids and item indices ``(B,)``; and the soft mode's
        tokenizer losses."""
        fields = [self.user_emb(user)]
        if self.item_emb is not None:
            fields.append(self.item_emb(item_index))
        semantic, losses = self.item_features(item, self.config.tau)
        if semantic is not None:
            fields.append(semantic)
        h = torch.cat(fields, -1)
        g = None
        if self.config.arch == "ppnet":  # the priors and the main input with its gradient stopped
            g = torch.cat([self.user_prior(user), self.item_prior(item_index), h.detach()], -1)
        return self.tower(h, g), losses

    # -- training ------------------------------------------------------------------------------------------
    def fit(self, data: CTRData, codes=None, content=None, tokenizer=None, K: int | None = None,
            config: TrainConfig | None = None, callback=None, **options) -> "CTRModel":
        """Build (if needed) and train on ``data``'s training rows (``options``: TrainConfig fields; early stopping
        on validation AUC by default). ``K``: the codes' vocabulary (default: the largest code + 1; pass the
        tokenizer's ``K`` to fine-tune later). Keeps ``history_``, ``best_epoch_``, ``valid_``."""
        self.build(data, codes, content, tokenizer, K, seed=self.train_config(config, **options).seed)
        self._run_engine(data, config, callback, options)
        return self

    def fit_data(self, data: CTRData, device: torch.device) -> _TrainData:
        if not isinstance(data, CTRData):
            raise TypeError(f"CTRModel.fit expects CTRData (workbench.ctr_data), got {type(data).__name__}")
        if not self.built_:
            raise RuntimeError("build the model (or call fit) before training")
        if data.n_items != self.n_items_ or not np.array_equal(data.user_vocab, self.user_vocab_):
            raise ValueError(f"{data.name}: its items or user vocabulary differ from the ones this model was built for")
        return _TrainData(data, _tensor_rows(data.part("train"), device))

    def data_fingerprint(self, data: _TrainData) -> str:
        part = data.source.part("train")
        return content_hash({k: content_hash(np.ascontiguousarray(part[k])) for k in ("users", "items", "labels")})

    def epoch_batches(self, data: _TrainData, batch_size: int, rng: np.random.Generator) -> list[Batch]:
        order = torch.as_tensor(rng.permutation(len(data.rows["label"])), device=data.rows["label"].device)
        return [Batch({k: v[order[s]] for k, v in data.rows.items()})
                for s in batch_slices(len(order), batch_size)]

    def training_step(self, batch: Batch) -> StepOutput:
        r = batch.rows
        logit, extra = self.logits(r["user"], r["item"], r["item_index"])
        losses = {"bce": F.binary_cross_entropy_with_logits(logit, r["label"])}
        if extra:  # eq. 19
            losses["recon"] = self.config.recon_weight * extra["recon"]
            losses["aux"] = self.config.aux_weight * extra["aux"]
        return StepOutput(losses)

    def validate(self, data: _TrainData) -> dict[str, float]:
        valid = data.source.part("valid")
        if not len(valid["labels"]) or valid["labels"].min() == valid["labels"].max():
            return {}
        p = self.predict_rows(valid)
        return {"auc": auc(valid["labels"], p), "logloss": log_loss(valid["labels"], p)}

    def configure_optimizer(self, config: TrainConfig) -> torch.optim.Optimizer:
        """Adam; the soft mode's tokenizer at ``tokenizer_lr`` times the learning rate."""
        return joint_optimizer(self, self.coder, config.lr, self.config.tokenizer_lr, config.optimizer == "adamw",
                               config.weight_decay)

    # -- predicting ----------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.user_emb.weight.device

    @torch.no_grad()
    def predict_rows(self, part: dict[str, np.ndarray]) -> np.ndarray:
        """Click probabilities ``(n,)`` of a part's rows (a :class:`CTRData` part)."""
        if not self.built_:
            raise RuntimeError("this CTRModel has not been fitted; call fit(data) first")
        was = self.training
        self.eval()
        rows = _tensor_rows(part, self.device)
        n = len(rows["label"])
        out = [torch.sigmoid(self.logits(rows["user"][s], rows["item"][s], rows["item_index"][s])[0])
               for s in (slice(a, a + PREDICT_BATCH) for a in range(0, n, PREDICT_BATCH))]
        self.train(was)
        return torch.cat(out).cpu().numpy() if out else np.zeros(0, np.float32)

    def predict(self, users, items) -> np.ndarray:
        """Click probabilities of (user id, item id) pairs given as dataset ids ``(n,)`` each (unknown users and
        items fall in the out-of-vocabulary buckets)."""
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        if users.shape != items.shape or users.ndim != 1:
            raise ValueError(f"users and items must be (n,) arrays of one length, got {users.shape}, {items.shape}")
        for name, ids, size in (("user", users, len(self.user_vocab_)), ("item", items, self.n_items_)):
            if ids.size and (ids.min() < 0 or ids.max() >= size):
                raise ValueError(f"{name} ids must be in [0, {size}), got {ids.min()}..{ids.max()}")
        part = {"user_index": self.user_vocab_[users], "items": items, "item_index": self.item_vocab_[items],
                "labels": np.zeros(len(users))}
        return self.predict_rows(part)

    def evaluate(self, data: CTRData, part: str = "test", strata: dict[str, np.ndarray] | None = None
                 ) -> CTRReport:
        """AUC, log loss, GAUC (impressions, uniform, positives; users with one class skipped and counted) and
        AUC per item stratum (default: ``data.item_strata()``: head, tail, cold) on one part."""
        rows = data.part(part)
        p = self.predict_rows(rows)
        y = rows["labels"]
        metrics = {"rows": float(len(y)), "auc": auc(y, p), "logloss": log_loss(y, p)}
        for weighting in ("impressions", "uniform", "positives"):
            g = gauc_report(rows["users"], y, p, weighting)
            metrics["gauc" if weighting == "impressions" else f"gauc_{weighting}"] = g["gauc"]
        metrics["gauc_users_skipped"] = float(g["users_skipped"])
        strata = data.item_strata() if strata is None else strata
        metrics.update({f"auc_{k}": v for k, v in auc_by_stratum(y, p, rows["items"], strata).items()})
        return CTRReport(metrics, p)

    # -- behavior-aware fine-tuning --------------------------------------------------------------------------
    def finetune(self, data: CTRData, tokenizer, content, config: TrainConfig | None = None, callback=None,
                 **options) -> "CTRModel":
        """MMQ eq. 19 from this fitted ``"sum"`` model (the warm start on frozen ids): a ``"soft"`` model with the
        same weights and a trainable copy of ``tokenizer`` (whose ids on ``content`` must be this model's codes),
        trained on the training rows with early stopping on validation AUC. ``options``: CTRConfig fields of the
        soft model (``tau``, ``tokenizer_lr``, ``freeze``, the eq. 19 weights) and TrainConfig fields. Returns the
        fine-tuned model; its ``coder.source`` is the fine-tuned tokenizer, ``id_report_`` the id changes."""
        if not self.built_ or self.config.features != "sum":
            raise ValueError("finetune starts from a fitted features='sum' model (trained on the frozen ids)")
        fields = set(CTRConfig.__dataclass_fields__)
        model_options = {k: v for k, v in options.items() if k in fields}
        train_options = {k: v for k, v in options.items() if k not in fields}
        soft = CTRModel(replace(self.config, features="soft", **model_options))
        soft.build(data, content=content, tokenizer=tokenizer)
        if self.item_features.K != soft.item_features.K:
            raise ValueError(f"this model's code tables have K={self.item_features.K} rows per position, the "
                             f"tokenizer has K={soft.item_features.K}: build the frozen-id model with K=tokenizer.K")
        before = self.item_features.codes.cpu().numpy()
        if not np.array_equal(soft.item_features.codes.cpu().numpy(), before):
            raise ValueError("the tokenizer's ids on `content` differ from the codes this model was trained on")
        missing, unexpected = soft.load_state_dict(self.state_dict(), strict=False)
        if unexpected or any(not k.startswith(("item_features.coder.", "item_features.content")) for k in missing):
            raise ValueError(f"cannot warm-start: unexpected {unexpected}, missing {missing}")
        soft._run_engine(data, config, callback, train_options)
        after = soft.coder.encode(np.asarray(content, dtype=np.float32))
        soft.id_report_ = id_change_report(before, after, soft.coder.K)
        return soft

    def frozen(self, content) -> "CTRModel":
        """A fine-tuned ``"soft"`` model as a ``"sum"`` model over the ids it ends with (re-exported from the
        fine-tuned tokenizer): the same predictions without running the tokenizer."""
        if self.config.features != "soft":
            raise ValueError("frozen() applies to a features='soft' model")
        soft = self.item_features
        hard = copy.deepcopy(self)
        hard.config = replace(self.config, features="sum")
        codes = soft.coder.encode(np.asarray(content, dtype=np.float32))
        hard.item_features = ItemFeatures("sum", soft.dim, codes, soft.K).to(self.device)
        hard.item_features.table.load_state_dict(soft.table.state_dict())
        return hard.eval()


def id_change_report(before: np.ndarray, after: np.ndarray, K: int) -> dict[str, float]:
    """How fine-tuning moved the ids: the share of items whose id changed (any position) and of changed codes,
    collisions before and after, and mean utilization and entropy per position after."""
    before, after = np.asarray(before), np.asarray(after)
    health = level_health(after, K)
    return {"changed_items": float((before != after).any(1).mean()), "changed_codes": float((before != after).mean()),
            "collision_rate_before": collision_report(before)["collision_rate"],
            "collision_rate_after": collision_report(after)["collision_rate"],
            "utilization_after": float(health["utilization"].mean()),
            "entropy_after": float(health["entropy_bits"].mean())}


def matched_dim(config: CTRConfig, data: CTRData, budget: int, codes=None, content=None, K: int | None = None,
                max_dim: int = 512) -> int:
    """The embedding size at which a ``config`` model's parameter count is nearest ``budget`` (MMQ's feature
    modes compared at matched parameter budgets). ``"soft"`` counts as ``"sum"`` (the same tables)."""
    cfg = replace(config, features="sum") if config.features == "soft" else config

    def count(dim: int) -> int:
        return CTRModel(replace(cfg, dim=dim)).build(data, codes, content, K=K).parameter_count()

    lo, hi = 1, max_dim
    while lo < hi:  # the count grows with dim: the first dim at or above the budget
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if count(mid) < budget else (lo, mid)
    return min((d for d in (lo - 1, lo) if d >= 1), key=lambda d: abs(count(d) - budget))


def report_table(reports: dict[str, CTRReport], columns=("auc", "gauc", "logloss", "auc_head", "auc_tail",
                                                          "auc_cold")) -> pd.DataFrame:
    """One row per named report, the chosen metric columns."""
    return pd.DataFrame({name: {c: r.metrics.get(c, np.nan) for c in columns} for name, r in reports.items()}).T
