"""Graph recommenders on one contract: MF-BPR, LightGCN, VBPR, FREEDOM (baselines of MoToRec's Table 2).

Every model is built from a split :class:`~workbench.dataset.RecDataset` (it reads the training split only) and
implements:

* ``loss(users, pos, neg) -> dict[str, Tensor]``: the named loss terms of one BPR batch (summed to train);
* ``embeddings() -> (user_emb, item_emb)``: the final full-graph embeddings (scores are dot products);
* ``pre_epoch(rng, n_steps)``: per-epoch preparation (FREEDOM's edge pruning, MoToRec's tokenizer schedule);
* ``prepare(rng)``: once before training (MoToRec's tokenizer warm-up);
* ``fit(**train_options)`` runs :func:`workbench.graph_training.fit_graph` and returns the model;
* the :class:`~workbench.recommender.Recommender` contract (``score``, ``recommend``).

MoToRec itself lives in :mod:`workbench.motorec`. Features enter the multimodal models standardised per column
(:func:`~workbench.modalities.standardize`) and frozen (FREEDOM's code lets them train; see the notebook's map).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import resolve_config
from .dataset import TRAIN, RecDataset
from .graph import NormalizedAdjacency, content_graph
from .metrics import DotScorer
from .modalities import standardize
from .recommender import Recommender


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """MoToRec eq. 9 averaged over the batch: ``mean(-ln sigmoid(y_ui - y_uj))``."""
    return F.softplus(neg_scores - pos_scores).mean()


def l2_penalty(*tensors: torch.Tensor) -> torch.Tensor:
    """``sum ||t||^2 / 2 / batch`` over the batch's ego embeddings (LightGCN's embedding regularizer)."""
    return sum((t ** 2).sum() for t in tensors) / (2 * len(tensors[0]))


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """MoToRec eq. 10 averaged over rows: row ``k`` of ``a`` and ``b`` are two views of one node, the other rows
    of ``b`` its negatives; cosine similarity over ``temperature``."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T / temperature
    return F.cross_entropy(logits, torch.arange(len(a), device=a.device))


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
        :func:`~workbench.graph_training.fit_graph`; the result is kept in ``self.result_``."""
        from .graph_training import fit_graph

        self.result_ = fit_graph(self, dataset, config, **options)
        return self

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _features(dataset: RecDataset, model: str) -> dict[str, torch.Tensor]:
    if not dataset.features:
        raise ValueError(f"{dataset.name}: {model} needs item content features; the dataset has no modality")
    return {m: torch.from_numpy(standardize(X)) for m, X in dataset.features.items()}


# ================================================================================================ MF-BPR
@dataclass(frozen=True)
class MFConfig:
    dim: int = 64
    reg_weight: float = 1e-4


class MFBPR(GraphModel):
    """Matrix factorisation trained with BPR (Rendle et al. 2009): ``y_ui = p_u . q_i``."""

    config_class = MFConfig

    def __init__(self, dataset: RecDataset, config: MFConfig | None = None, **options):
        super().__init__(dataset, config, **options)
        self.user_emb = _xavier(self.n_users, self.config.dim)
        self.item_emb = _xavier(self.n_items, self.config.dim)

    def embeddings(self):
        return self.user_emb, self.item_emb

    def loss(self, users, pos, neg):
        u, i, j = rows(self.user_emb, users), rows(self.item_emb, pos), rows(self.item_emb, neg)
        return {"bpr": bpr_loss((u * i).sum(-1), (u * j).sum(-1)),
                "l2": self.config.reg_weight * l2_penalty(u, i, j)}


# ============================================================================================== LightGCN
@dataclass(frozen=True)
class LightGCNConfig:
    dim: int = 64
    layers: int = 2
    reg_weight: float = 1e-4
    self_loops: bool = False  # LightGCN has none (MoToRec eq. 7 adds them)


class LightGCN(GraphModel):
    """LightGCN (He et al. 2020): ID embeddings propagated over the normalized user-item graph, layer mean."""

    config_class = LightGCNConfig

    def __init__(self, dataset: RecDataset, config: LightGCNConfig | None = None, **options):
        super().__init__(dataset, config, **options)
        self.user_emb = _xavier(self.n_users, self.config.dim)
        self.item_emb = _xavier(self.n_items, self.config.dim)
        self.adjacency = NormalizedAdjacency(self.train_matrix, self_loops=self.config.self_loops)

    def move_graphs(self, device):
        self.adjacency.to(device)

    def embeddings(self):
        return self.adjacency.propagate(self.user_emb, self.item_emb, self.config.layers)

    def loss(self, users, pos, neg):
        # the final embeddings of the batch's rows only (the propagation itself is over the whole graph)
        u, items, _, _ = self.adjacency.propagate_at(self.user_emb, self.item_emb, self.config.layers, users,
                                                     torch.cat([pos, neg]))
        i, j = items[:len(pos)], items[len(pos):]
        return {"bpr": bpr_loss((u * i).sum(-1), (u * j).sum(-1)),
                "l2": self.config.reg_weight * l2_penalty(rows(self.user_emb, users), rows(self.item_emb, pos),
                                                          rows(self.item_emb, neg))}


# ================================================================================================== VBPR
@dataclass(frozen=True)
class VBPRConfig:
    dim: int = 64          # size of each half: ID part and content part (MMRec's VBPR)
    reg_weight: float = 1e-4


class VBPR(GraphModel):
    """VBPR (He & McAuley 2016) as MMRec implements it: item = ``[gamma_i ; E f_i]`` with ``f_i`` all modalities
    concatenated and ``E`` linear; user = one ``2 * dim`` vector; ``y_ui`` = dot product."""

    config_class = VBPRConfig

    def __init__(self, dataset: RecDataset, config: VBPRConfig | None = None, **options):
        super().__init__(dataset, config, **options)
        d = self.config.dim
        feats = _features(dataset, "VBPR")
        self.register_buffer("content", torch.cat(list(feats.values()), dim=1), persistent=False)
        self.user_emb = _xavier(self.n_users, 2 * d)
        self.item_emb = _xavier(self.n_items, d)
        self.project = nn.Linear(self.content.shape[1], d)

    def _items(self, idx: torch.Tensor | None) -> torch.Tensor:
        if idx is None:
            return torch.cat([self.item_emb, self.project(self.content)], dim=1)
        return torch.cat([rows(self.item_emb, idx), project_rows(self.project, self.content, idx)], dim=1)

    def embeddings(self):
        return self.user_emb, self._items(None)

    def loss(self, users, pos, neg):
        both = torch.cat([pos, neg])
        uniq, inv = both.unique(return_inverse=True)  # project each distinct item once
        items = self._items(uniq)[inv]
        i, j = items[:len(pos)], items[len(pos):]
        u = rows(self.user_emb, users)
        return {"bpr": bpr_loss((u * i).sum(-1), (u * j).sum(-1)),
                "l2": self.config.reg_weight * l2_penalty(u, i, j)}


# =============================================================================================== FREEDOM
@dataclass(frozen=True)
class FreedomConfig:
    dim: int = 64
    ui_layers: int = 2            # user-item LightGCN layers
    ii_layers: int = 1            # item-item (frozen kNN graph) layers
    knn_k: int = 10
    image_weight: float = 0.1     # mm_image_weight: weight of an "image" modality's graph (others share the rest)
    edge_dropout: float = 0.8     # degree-sensitive pruning: fraction of user-item edges dropped each epoch
    modal_weight: float = 1e-4    # FREEDOM's reg_weight on the per-modality BPR losses
    reg_weight: float = 0.0       # L2 on ego embeddings (FREEDOM has none)
    project_all: bool = False     # True: project every item's features each step, as MMRec's code does (same
    #                               gradients, ~3x the cost on Baby; the benchmark times both)


class FREEDOM(GraphModel):
    """FREEDOM (Zhou & Shen 2023): a frozen item-item kNN graph mixed from the modalities, degree-sensitive
    edge pruning of the user-item graph each epoch, LightGCN on ID embeddings; item = propagated ID embedding
    + item-item aggregation of the ID embedding; plus a BPR loss per modality on projected features."""

    config_class = FreedomConfig

    def __init__(self, dataset: RecDataset, config: FreedomConfig | None = None, **options):
        super().__init__(dataset, config, **options)
        c = self.config
        feats = _features(dataset, "FREEDOM")
        self.modalities = list(feats)
        for m, X in feats.items():
            self.register_buffer(f"feat_{m}", X, persistent=False)
        self.projections = nn.ModuleDict({m: nn.Linear(X.shape[1], c.dim) for m, X in feats.items()})
        self.user_emb = _xavier(self.n_users, c.dim)
        self.item_emb = _xavier(self.n_items, c.dim)
        self.item_graph = content_graph(dataset.features, c.knn_k, _freedom_weights(self.modalities, c.image_weight))
        self.adjacency = NormalizedAdjacency(self.train_matrix)
        self.train_adjacency = self.adjacency
        R = self.adjacency.R_hat.tocoo()
        # sampling weights of the pruning: 1 / sqrt(d_u d_i), in CSR order
        self._edge_p = R.data / R.data.sum()

    def move_graphs(self, device):
        self.adjacency.to(device)
        self.train_adjacency.to(device)
        self.item_graph = self.item_graph.to(device)

    def pre_epoch(self, rng, n_steps):
        c = self.config
        if c.edge_dropout <= 0:
            self.train_adjacency = self.adjacency
            return
        n_keep = max(1, int(len(self._edge_p) * (1 - c.edge_dropout)))
        # weighted sampling without replacement (Gumbel top-k), degree-sensitive as in FREEDOM
        keys = np.log(self._edge_p) + rng.gumbel(size=len(self._edge_p))
        keep = np.zeros(len(keys), dtype=np.float32)
        keep[np.argpartition(-keys, n_keep - 1)[:n_keep]] = 1.0
        self.train_adjacency = NormalizedAdjacency(self.train_matrix, edge_weights=keep, device=self.device)

    def _forward(self, adjacency: NormalizedAdjacency, users: torch.Tensor | None = None,
                 items: torch.Tensor | None = None):
        """Final user and item embeddings, at the given rows (``None``: all)."""
        h = self.item_emb
        for _ in range(self.config.ii_layers):
            h = self.item_graph(h)
        u, i, _, _ = adjacency.propagate_at(self.user_emb, self.item_emb, self.config.ui_layers, users, items)
        return u, i + (h if items is None else rows(h, items))

    def embeddings(self):
        return self._forward(self.adjacency if not self.training else self.train_adjacency)

    def loss(self, users, pos, neg):
        u, items = self._forward(self.train_adjacency, users, torch.cat([pos, neg]))
        i, j = items[:len(pos)], items[len(pos):]
        out = {"bpr": bpr_loss((u * i).sum(-1), (u * j).sum(-1))}
        both = torch.cat([pos, neg])
        if self.config.project_all:
            uniq, inv = None, both
        else:  # project each distinct batch item once: the same loss and gradients, a fraction of the cost
            uniq, inv = both.unique(return_inverse=True)
        modal = 0.0
        for m in self.modalities:
            feats = getattr(self, f"feat_{m}")
            proj = (self.projections[m](feats) if uniq is None else project_rows(self.projections[m], feats, uniq))[inv]
            modal = modal + bpr_loss((u * proj[:len(pos)]).sum(-1), (u * proj[len(pos):]).sum(-1))
        out["modal_bpr"] = self.config.modal_weight * modal
        if self.config.reg_weight:
            out["l2"] = self.config.reg_weight * l2_penalty(rows(self.user_emb, users), rows(self.item_emb, pos),
                                                            rows(self.item_emb, neg))
        return out


def _freedom_weights(modalities: list[str], image_weight: float) -> dict[str, float]:
    """FREEDOM mixes ``image_weight * S_image + (1 - image_weight) * S_text``; with other modality names the
    weights are equal."""
    if "image" in modalities and len(modalities) > 1:
        rest = (1 - image_weight) / (len(modalities) - 1)
        return {m: image_weight if m == "image" else rest for m in modalities}
    return {m: 1.0 for m in modalities}


def model_classes() -> dict[str, type]:
    """Registry: name -> class of every graph model (MoToRec included)."""
    from .motorec import MoToRec

    return {"mf-bpr": MFBPR, "lightgcn": LightGCN, "vbpr": VBPR, "freedom": FREEDOM, "motorec": MoToRec}


def make_model(name: str, dataset: RecDataset, config=None, **options) -> GraphModel:
    """Build the graph model ``name`` (``mf-bpr``, ``lightgcn``, ``vbpr``, ``freedom``, ``motorec``) for
    ``dataset``; ``options`` override fields of its config."""
    classes = model_classes()
    key = name.lower()
    if key not in classes:
        raise KeyError(f"unknown model {name!r}; expected one of {list(classes)}")
    return classes[key](dataset, config, **options)
