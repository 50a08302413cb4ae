"""MoToRec (Liu et al., AAAI 2026): sparsity-regularized RQ-VAE tokens per modality, rarity-amplified tokenizer
loss, three-channel LightGCN (one channel per modality's tokens plus an ID channel) with hybrid fusion and a
gated residual, BPR + InfoNCE + weighted tokenizer loss + L2 (eq. 1-11).

How the joint training follows eq. 11. The token channels need the quantized vector ``z_q`` of *every* item at
every step (the propagation reads all of them), but re-encoding every item's raw features each step costs ~90
GFLOP at Baby's scale. We keep, per modality, a buffer with every item's current codes. At each step:

* the items of the step (by default the batch's distinct positive and negative items: eq. 11's ``i in B``) go
  through the full RQ-VAE: their eq. 6 loss, weighted by ``w_i`` (eq. 11), is added; eq. 5's ``rho_hat`` is their
  code usage; their fresh straight-through ``z_q`` replaces their rows of the table, so the ranking gradient
  reaches the encoder through them; their new codes are written to the buffer;
* every other row is its stored codes' vector ``decode(codes)``, a constant. The ranking loss therefore trains
  the encoders through the step's items only, and the codebooks through eq. 6's codebook term only (with the
  straight-through estimator no ranking gradient reaches a codebook, as in the paper). "w/o RQ-VAE" reads its
  continuous latents the same way (fresh for the step's items, stored for the rest), so Table 3's gap measures
  quantization, not a difference in which rows carry gradient.

``tokenizer_items="chunk"`` tokenizes one chunk per step instead (a permutation of the catalogue split over the
epoch's steps, every item once per epoch; ~112 items a step at Baby's shape): ~3x cheaper at the default profile,
but every item then weighs the same in the tokenizer loss and ``rho_hat`` is the chunk's, so the rarity weights act
on something else than in the paper. A short tokenizer-only warm-up (``tokenizer_warmup`` epochs of eq. 6) precedes
the joint training so the first codes mean something. At evaluation every item is tokenized afresh.

Readings where the paper is silent (also in notebook 02's paper-to-code map):

* user side of the token channels: users have no content, so a user's layer-0 embedding in a token channel is
  zero and the propagation fills it with the (normalized) sum of the user's items' tokens, then their
  neighbours'. A user's content profile is thus made of the same tokens as the items it is compared with, which
  is what lets a new item's tokens meet existing users (no per-user content parameters to learn);
* InfoNCE views (eq. 10): SimGCL's augmentation (uniform noise ``eps * sign(e) * normalize(U(0,1))``) with
  XSimGCL's cross-layer pairing (Yu et al. 2023, the SimGCL authors' one-propagation variant): view 1 is the
  final (layer-mean) embedding, view 2 the first layer's, each perturbed, on the concatenated channels, for up
  to ``cl_nodes`` (512) of the batch's users and of its positive items. Two departures, both for speed on a
  CPU: the noise perturbs the two views of the sampled nodes rather than every node at every layer (drawing and
  adding noise for all nodes costs more than the propagation), and the O(n^2) similarity matrix is bounded by
  sampling;
* hybrid fusion (eq. 8): ``CONCAT`` is followed by a linear map back to ``dim``; ``Attention`` is attention
  pooling over the content channels (``softmax_m(q . tanh(W h_m + b))``); the gated residual is
  ``e = e_id + sigmoid(W_g [e_m; e_id]) * e_m``, with separate fusion weights for users and items;
* dead codes: a code whose running usage falls below ``dead_code_threshold`` items per step is re-seeded from
  a residual of the step's items (vector-quantize-pytorch's ``threshold_ema_dead_code``; the paper names no
  remedy for collapse, and without one half of the first level's codes went unused at the default profile);
* homogeneous graph enhancement (HGE): the item-item kNN content graph of FREEDOM/LATTICE; the ID channel's
  item embeddings get the graph aggregate of the ID embeddings added (FREEDOM's ``i + S e_i``), which lets an item
  with few interactions borrow collaborative signal from its content neighbours;
* eq. 2 gives cold items ``w_i = 1 / log2(d_i + 2) < 1`` and warm ones ``1``: ``rarity="literal"`` (the default)
  implements it as printed, which *attenuates* the tokenizer loss of rare items relative to warm ones;
  ``rarity="amplify"`` is the text's reading, ``log2(tau + 2) / log2(d_i + 2) >= 1``;
* eq. 6 as printed has one commitment term on the final ``z_q`` and no codebook term; we use the per-level
  codebook and commitment terms of the RQ-VAE the paper builds on (Lee et al. 2022: level ``l`` pulls
  ``z - sum_{l' <= l} q_l'`` towards zero), because with one term on the final vector the codebooks would get no
  loss of their own (and no ranking gradient either, through the straight-through estimator);
* eq. 5 is written for one codebook; with ``N_q`` levels we average it over the levels, so ``gamma`` keeps its
  scale whatever ``N_q`` (the paper tunes the two apart). Eq. 11 weights each item's whole eq. 6 loss by ``w_i``,
  so the batch-level sparsity term comes out multiplied by the batch's mean ``w_i``, as implemented;
* eq. 11's ``lambda_reg ||Theta||^2`` is applied to the batch's layer-0 user and item ID embeddings, as
  LightGCN and every MMRec model do (an L2 on every parameter at every step would also shrink the encoders,
  decoders and codebooks towards zero, which no public implementation of these models does);
* HGE's item-item term enters the final (layer-mean) view of the InfoNCE pair and not the first-layer view:
  XSimGCL's cross-layer views are taken inside the propagation, and HGE is added after it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from ..core.layers import hidden_sizes, mlp
from ..data.dataset import TRAIN, RecDataset
from ..tokenizers.base import ENCODE_BATCH
from ..tokenizers.quantizer import QuantizerConfig, stack_group
from ..tokenizers.rqvae import RQVAE, RQVAEConfig, forward_group
from ..training.engine import StepOutput
from .adjacency import NormalizedAdjacency
from .base import register
from .content_graph import content_graph
from .graph_model import GraphModel, content_features, embedding_table, rows
from .losses import bpr_loss, info_nce, l2_penalty, perturb


RARITY = ("literal", "amplify")
TOKENIZER_ITEMS = ("batch", "chunk")


def rarity_weights(degree: np.ndarray, tau: int = 10, rarity: str = "literal") -> tuple[np.ndarray, np.ndarray]:
    """MoToRec eq. 1-2: ``c_i = 1[d_i < tau]``; for a cold item seen at least once (``c_i`` and ``d_i > 0``)
    ``w_i = 1 / log2(d_i + 2)`` as printed (``"literal"``: below 1, so it *attenuates* rare items, against the
    text's "amplification"), or ``log2(tau + 2) / log2(d_i + 2)`` (``"amplify"``: at least 1, the rarer the
    larger, 1 at ``d_i = tau``: our reading of the text); every other item 1. Returns ``(w, c)``: float32 weights
    and boolean cold flags ``(n_items,)``."""
    d = np.asarray(degree)
    if d.ndim != 1 or (d < 0).any():
        raise ValueError(f"degree must be a 1-d array of non-negative counts, got shape {d.shape}")
    if rarity not in RARITY:
        raise ValueError(f"rarity must be one of {RARITY}, got {rarity!r}")
    cold = d < tau
    w = np.ones(len(d), dtype=np.float32)
    amp = cold & (d > 0)
    w[amp] = (1.0 if rarity == "literal" else np.log2(tau + 2.0)) / np.log2(d[amp] + 2.0)
    return w, cold


@dataclass(frozen=True)
class MoToRecConfig:
    """Defaults: the paper's grid (N_q in {4,6,8}, K in {256,512,1024}, gamma in {.01,.05,.1,.2}, lambda_rq in
    {.1,.5,1,2}, lambda_cl in {.01,.05,.1}; Baby favours gamma=0.05, K=512), L=2, tau=10, 64-d embeddings."""

    dim: int = 64
    layers: int = 2
    L: int = 4                    # levels (the paper's N_q)
    K: int = 512                  # codes per level
    hidden: tuple[int, ...] = (256,)
    gamma: float = 0.05           # sparsity weight (eq. 6)
    rho: float = 0.01             # Bernoulli prior mean (eq. 5)
    beta: float = 0.25            # commitment weight (eq. 6)
    dead_code_threshold: float = 1.0  # reset codes used less than this per step on average (0: never)
    lambda_rq: float = 0.5
    lambda_cl: float = 0.05
    cl_temperature: float = 0.2
    cl_noise: float = 0.1         # XSimGCL eps
    cl_nodes: int = 512           # InfoNCE over at most this many of the batch's users (and items), sampled
    alpha: float = 0.5            # hybrid fusion balance (eq. 8)
    tau: int = 10                 # cold threshold (eq. 1)
    rarity: str = "literal"       # eq. 2 as printed, or "amplify" (see rarity_weights)
    reg_weight: float = 1e-4      # lambda_reg (eq. 11) on the batch's ego embeddings
    knn_k: int = 10               # HGE item-item graph
    self_loops: bool = True       # eq. 7
    tokenizer_warmup: int = 5     # tokenizer-only epochs before joint training
    tokenizer_items: str = "batch"  # items through the RQ-VAE each step: the batch's distinct items, or a "chunk"
    # ablation switches (Table 3)
    use_rqvae: bool = True        # False: continuous encoder latents instead of tokens ("w/o RQ-VAE")
    use_ara: bool = True          # False: w_i = 1 ("w/o ARA")
    use_sparsity: bool = True     # False: gamma = 0 ("w/o Sparsity")
    use_cl: bool = True           # False: no InfoNCE, no noise ("w/o CL")
    use_hf: bool = True           # False: concatenation only, no attention ("w/o HF")
    use_hge: bool = True          # False: no item-item graph ("w/o HGE")

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", hidden_sizes(self.hidden, "MoToRecConfig"))
        if self.rarity not in RARITY:
            raise ValueError(f"MoToRecConfig.rarity must be one of {RARITY}, got {self.rarity!r}")
        if self.tokenizer_items not in TOKENIZER_ITEMS:
            raise ValueError(f"MoToRecConfig.tokenizer_items must be one of {TOKENIZER_ITEMS}, got "
                             f"{self.tokenizer_items!r}")


ABLATIONS: dict[str, dict[str, bool]] = {
    "MoToRec": {},
    "w/o RQ-VAE": {"use_rqvae": False},
    "w/o ARA": {"use_ara": False},
    "w/o Sparsity": {"use_sparsity": False},
    "w/o CL": {"use_cl": False},
    "w/o HF": {"use_hf": False},
    "w/o HGE": {"use_hge": False},
}


class HybridFusion(nn.Module):
    """Eq. 8 plus the gated residual. Content channels ``h_1..h_M`` (``channel_dim`` each, side by side in one
    ``(B, M * channel_dim)`` tensor ``h``): ``e_m = alpha W_c h + (1 - alpha) W_a sum_m beta_m h_m`` with attention
    weights ``beta = softmax_m(q . tanh(W h_m + b))``; then ``e = e_id + sigmoid(W_g [e_m; e_id]) * e_m``.
    Without HF: ``e_m = W_c h`` (no attention parameters)."""

    def __init__(self, n_channels: int, channel_dim: int, dim: int, alpha: float, hybrid: bool):
        super().__init__()
        self.alpha, self.hybrid = alpha, hybrid
        self.n_channels, self.channel_dim = n_channels, channel_dim
        self.concat = nn.Linear(n_channels * channel_dim, dim)
        if hybrid:
            self.att_proj = nn.Linear(channel_dim, channel_dim)
            self.att_query = nn.Parameter(torch.randn(channel_dim) / channel_dim ** 0.5)
            self.att_out = nn.Linear(channel_dim, dim)
        self.gate = nn.Linear(2 * dim, dim)

    def _stacked(self, content: torch.Tensor) -> torch.Tensor:
        """``(B, M, channel_dim)`` view of the side-by-side channels (no copy)."""
        if content.shape[-1] != self.n_channels * self.channel_dim:
            raise ValueError(f"expected {self.n_channels} channels of {self.channel_dim} side by side "
                             f"({self.n_channels * self.channel_dim} columns), got {tuple(content.shape)}")
        return content.view(len(content), self.n_channels, self.channel_dim)

    def attention_weights(self, content: torch.Tensor) -> torch.Tensor:
        """``(B, M)`` softmax weights of the content channels ``(B, M * channel_dim)``."""
        return torch.softmax(torch.tanh(self.att_proj(self._stacked(content))) @ self.att_query, dim=1)

    def forward(self, content: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """``content`` ``(B, M * channel_dim)`` (the channels side by side, as propagated), ``ids`` ``(B, dim)``."""
        e = self.concat(content)
        if self.hybrid:
            # sum_m beta_m h_m, element-wise (a batch of (1, M) @ (M, channel_dim) products is ~4x slower on a CPU)
            att = (self.attention_weights(content).unsqueeze(-1) * self._stacked(content)).sum(1)
            e = torch.lerp(self.att_out(att), e, self.alpha)  # alpha * concat + (1 - alpha) * attention
        gate = torch.sigmoid(self.gate(torch.cat([e, ids], dim=1)))
        return torch.addcmul(ids, gate, e)


@register("motorec")
class MoToRec(GraphModel):
    """MoToRec (see the module docstring). Channels: one per modality of the dataset (visual/text on Amazon
    data; text/genre on ml-100k) plus the ID channel."""

    config_class = MoToRecConfig

    def _build(self, dataset: RecDataset) -> None:
        c = self.config
        feats = content_features(dataset, "MoToRec")
        self.modalities_ = list(feats)
        if c.dim % len(self.modalities_):
            raise ValueError(f"dim={c.dim} must be divisible by the number of modalities {self.modalities_}")
        self.token_dim_ = c.dim // len(self.modalities_)
        w, cold = rarity_weights(dataset.item_degree(TRAIN), c.tau, c.rarity)
        self.register_buffer("item_weights", torch.as_tensor(w if c.use_ara else np.ones_like(w)))
        self.register_buffer("cold", torch.as_tensor(cold))
        rq = RQVAEConfig(hidden=c.hidden, sparsity_rho=c.rho, sparsity_weight=c.gamma if c.use_sparsity else 0.0,
                         quantizer=QuantizerConfig(D=self.token_dim_, L=c.L, K=c.K, beta=c.beta,
                                                   dead_code_threshold=c.dead_code_threshold))
        self.tokenizers = nn.ModuleDict()
        for m, X in feats.items():
            self.register_buffer(f"feat_{m}", X, persistent=False)
            if c.use_rqvae:
                self.tokenizers[m] = RQVAE(X.shape[1], rq)
                self.register_buffer(f"codes_{m}", torch.zeros(self.n_items_, c.L, dtype=torch.long))
            else:
                self.tokenizers[m] = mlp([X.shape[1], *c.hidden, self.token_dim_])
                self.register_buffer(f"latent_{m}", torch.zeros(self.n_items_, self.token_dim_))
        self.user_emb = embedding_table(self.n_users_, c.dim)
        self.item_emb = embedding_table(self.n_items_, c.dim)
        self.item_fusion = HybridFusion(len(self.modalities_), self.token_dim_, c.dim, c.alpha, c.use_hf)
        self.user_fusion = HybridFusion(len(self.modalities_), self.token_dim_, c.dim, c.alpha, c.use_hf)
        self.adjacency_ = NormalizedAdjacency(self.train_matrix_, self_loops=c.self_loops)
        self.item_graph_ = content_graph(dataset.features, c.knn_k) if c.use_hge else None

    def move_graphs(self, device):
        self.adjacency_.to(device)
        if self.item_graph_ is not None:
            self.item_graph_ = self.item_graph_.to(device)

    def features(self, m: str) -> torch.Tensor:
        return getattr(self, f"feat_{m}")

    # -------------------------------------------------------------------------------------- tokenizers
    def warm_up(self, dataset: RecDataset, seed: int = 0) -> "MoToRec":
        """Build for ``dataset`` (if needed), then the tokenizer warm-up: ``tokenizer_warmup`` epochs of eq. 6
        weighted by ``w_i`` per modality (k-means start-up alone when 0), and the first code buffers. ``fit``
        runs it at the start of a fresh run; calling it first lets a notebook look at the warmed-up codes."""
        self.build(dataset, seed)
        c = self.config
        for k, m in enumerate(self.modalities_):
            tok, X = self.tokenizers[m], self.features(m)
            own = int(np.random.default_rng([seed, k]).integers(2 ** 31))  # each modality its own stream
            if c.use_rqvae and c.tokenizer_warmup:
                tok.fit(X, weights=self.item_weights, epochs=c.tokenizer_warmup, batch_size=512, seed=own,
                        device=str(X.device), progress=False, eval_every=10 ** 9)
            elif c.use_rqvae:
                sample = torch.randperm(len(X), generator=torch.Generator().manual_seed(own))[:16384]
                tok.init_codebooks(X[sample.to(X.device)], seed=own)
            self._refresh(m)
        return self

    def on_fit_start(self, dataset, config, rng) -> None:
        """The warm-up, unless the tokenizers were already trained (a warmed-up or fitted model trains on)."""
        trained = self.config.use_rqvae and all(bool(t.quantizer.initialized) for t in self.tokenizers.values())
        if not trained:
            self.warm_up(dataset, seed=int(rng.integers(2 ** 31)))

    @torch.no_grad()
    def _refresh(self, m: str) -> None:
        """Re-tokenize every item of modality ``m`` into its buffer."""
        if self.config.use_rqvae:
            setattr(self, f"codes_{m}", self.tokenizers[m].encode(self.features(m)))
        else:
            setattr(self, f"latent_{m}", self._latents(m))

    @torch.no_grad()
    def _latents(self, m: str) -> torch.Tensor:
        """Every item's continuous latent ``(n_items, dim / M)`` of modality ``m`` ("w/o RQ-VAE"), in eval mode."""
        tok, X = self.tokenizers[m], self.features(m)
        was = tok.training
        tok.eval()
        out = torch.cat([tok(X[s:s + ENCODE_BATCH]) for s in range(0, len(X), ENCODE_BATCH)])
        tok.train(was)
        return out

    def epoch_batches(self, dataset, batch_size, rng):
        """The BPR batches, each with the items that go through the tokenizers at its step (``shared["items"]``,
        the same on every process under torch.distributed, so every process keeps the same code buffers): the
        batch's distinct positive and negative items (eq. 11's ``i in B``; eq. 5's rho-hat is their code usage),
        or with ``tokenizer_items="chunk"`` one chunk of a permutation of the catalogue split over the epoch's
        steps (every item passes the RQ-VAE once per epoch, whatever the batches hold)."""
        batches = super().epoch_batches(dataset, batch_size, rng)
        if self.config.tokenizer_items == "chunk":
            perm = torch.as_tensor(rng.permutation(self.n_items_), device=self.device)
            chunks = torch.tensor_split(perm, max(1, min(len(batches), self.n_items_)))
            for k, batch in enumerate(batches):
                batch.shared["items"] = chunks[k % len(chunks)]
        else:
            for batch in batches:
                batch.shared["items"] = torch.cat([batch.rows["pos"], batch.rows["neg"]]).unique()
        return batches

    def item_tables(self, items: torch.Tensor | None = None):
        """Per-modality item tables ``(n_items, dim / M)`` for the token channels. With ``items`` (ids), those
        items go through the tokenizers afresh and carry the gradient; every other row is its stored code's vector
        (or latent), a constant, so the full model and "w/o RQ-VAE" get gradients from the same rows and the
        ablation measures quantization alone. Returns ``(tables, rq_loss, updates)``, the updates being the
        items' new codes (or latents) and tokenizer outputs for :meth:`after_step`. Without ``items``, the tables
        are every item re-tokenized (evaluation) and the loss and updates are ``None``."""
        if items is None:
            return self._fresh_tables(), None, None
        stored = self._buffer_tables()
        if not self.config.use_rqvae:
            tables, new = {}, {}
            for m in self.modalities_:
                z = self.tokenizers[m](self.features(m)[items])
                tables[m], new[m] = stored[m].index_put((items,), z), z.detach()
            return tables, None, {"items": items, "values": new, "outs": None}
        # every modality's RQ-VAE on the items, their quantizers and regularizers in one batched pass
        outs = forward_group([self.tokenizers[m] for m in self.modalities_],
                             [self.features(m)[items] for m in self.modalities_], self.item_weights[items])
        rq_loss = stack_group([out.total for out in outs]).sum()
        tables = {m: stored[m].index_put((items,), out.quantized) for m, out in zip(self.modalities_, outs)}
        values = {m: out.codes.detach() for m, out in zip(self.modalities_, outs)}
        return tables, rq_loss, {"items": items, "values": values, "outs": dict(zip(self.modalities_, outs))}

    @torch.no_grad()
    def _fresh_tables(self) -> dict[str, torch.Tensor]:
        """Every item tokenized afresh (evaluation): the decoded codes, or the latents without an RQ-VAE."""
        if not self.config.use_rqvae:
            return {m: self._latents(m) for m in self.modalities_}
        return {m: self.tokenizers[m].quantizer.decode(self.tokenizers[m].encode(self.features(m)))
                for m in self.modalities_}

    def after_step(self, batch, updates) -> None:
        """The step's items' fresh codes (or latents) into the buffers; the quantizers' running statistics."""
        if updates is None:
            return None
        items = updates["items"]
        prefix = "codes" if self.config.use_rqvae else "latent"
        for m, value in updates["values"].items():
            setattr(self, f"{prefix}_{m}", getattr(self, f"{prefix}_{m}").index_copy(0, items, value))
        for m, out in (updates["outs"] or {}).items():  # the items are the same on every process
            self.tokenizers[m].update_state(out, shared=True)
        return None

    def encode(self) -> dict[str, np.ndarray]:
        """Each modality's codes ``(n_items, L)`` from a fresh tokenization (needs ``use_rqvae``)."""
        if not self.config.use_rqvae:
            raise ValueError("this MoToRec variant has no tokenizer (use_rqvae=False)")
        return {m: self.tokenizers[m].encode(self.features(m).cpu().numpy()) for m in self.modalities_}

    # -------------------------------------------------------------------------------------- graph encoder
    def channels(self, tables: dict[str, torch.Tensor], at: tuple = (None, None, None, None)):
        """Propagate the channels (eq. 7). Returns ``{channel: (users, items)}`` layer means and first-layer
        embeddings (the second InfoNCE view), channels named by modality plus ``"id"``, at the rows ``at = (users,
        items, first-layer users, first-layer items)`` (``None``: every row; see
        :meth:`NormalizedAdjacency.propagate_at`)."""
        final, first = self._propagate(tables, at)
        return self._split(final), self._split(first)

    def _propagate(self, tables: dict[str, torch.Tensor], at: tuple = (None, None, None, None)):
        """:meth:`channels` with the token channels (``dim / M`` wide each) side by side: ``{"content": (users,
        items), "id": (users, items)}``. They travel in one ``dim``-wide propagation, which is the same as
        propagating each alone (propagation acts column-wise) at the cost of one, and stay side by side for the
        fusion and the InfoNCE views (no split and re-concatenation)."""
        content = torch.cat([tables[m] for m in self.modalities_], dim=1)
        final, first = {}, {}
        # users start empty in the content channels (None = zeros): their content comes from their items
        for name, (u0, i0) in {"content": (None, content), "id": (self.user_emb, self.item_emb)}.items():
            mean_u, mean_i, first_u, first_i = self.adjacency_.propagate_at(u0, i0, self.config.layers, *at)
            final[name], first[name] = (mean_u, mean_i), (first_u, first_i)
        if self.item_graph_ is not None:  # HGE on the ID channel (FREEDOM's i + S e_i)
            u, i = final["id"]
            h = self.item_graph_(self.item_emb)
            final["id"] = (u, i + (h if at[1] is None else rows(h, at[1])))
        return final, first

    def _split(self, channels):
        out = {"id": channels["id"]}
        users = channels["content"][0].split(self.token_dim_, dim=1)
        items = channels["content"][1].split(self.token_dim_, dim=1)
        out.update({m: (u, i) for m, u, i in zip(self.modalities_, users, items)})
        return out

    def _fuse(self, final):
        """Hybrid fusion (eq. 8 + gated residual) of :meth:`_propagate`'s ``{"content": .., "id": ..}``."""
        u = self.user_fusion(final["content"][0], final["id"][0])
        i = self.item_fusion(final["content"][1], final["id"][1])
        return u, i

    def embeddings(self):
        final, _ = self._propagate(self._fresh_tables())
        return self._fuse(final)

    def training_step(self, batch):
        rows_ = batch.rows
        tables, rq_loss, updates = self.item_tables(batch.shared["items"])
        return StepOutput(self._losses(tables, rq_loss, rows_["users"], rows_["pos"], rows_["neg"]), updates)

    def loss(self, users, pos, neg, items: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The named loss terms of one BPR batch; with ``items`` (ids), also their tokenizer loss (the buffers
        are not touched: the training step hands the items' new codes to :meth:`after_step`)."""
        tables, rq_loss, _ = self.item_tables(items) if items is not None else (self._buffer_tables(), None, None)
        return self._losses(tables, rq_loss, users, pos, neg)

    @torch.no_grad()
    def _buffer_tables(self) -> dict[str, torch.Tensor]:
        """The token-channel tables read from the buffers: constants (no gradient reaches the codebooks or the
        encoders through them)."""
        if self.config.use_rqvae:
            return {m: self.tokenizers[m].quantizer.decode(getattr(self, f"codes_{m}")) for m in self.modalities_}
        return {m: getattr(self, f"latent_{m}") for m in self.modalities_}

    def _losses(self, tables, rq_loss, users, pos, neg) -> dict[str, torch.Tensor]:
        c = self.config
        cl = c.use_cl and c.lambda_cl
        # every embedding the loss needs is computed at its rows only, once per node: the layer mean at the
        # batch's distinct users and items (a third of a batch's item draws repeat one), the first layer at the
        # InfoNCE nodes
        nb = len(users)
        uu, u_at = users.unique(return_inverse=True)
        ii, i_at = torch.cat([pos, neg]).unique(return_inverse=True)
        # InfoNCE nodes, as positions in uu / ii: distinct batch users and positive items, at most cl_nodes each
        bu = _sample(torch.arange(len(uu), device=uu.device), c.cl_nodes) if cl else u_at[:0]
        bi = _sample(i_at[:nb].unique(), c.cl_nodes) if cl else i_at[:0]
        final, first = self._propagate(tables, (uu, ii, uu[bu], ii[bi]))
        u_all, i_all = self._fuse(final)
        u, i, j = rows(u_all, u_at), rows(i_all, i_at[:nb]), rows(i_all, i_at[nb:])
        out = {"bpr": bpr_loss((u * i).sum(-1), (u * j).sum(-1))}
        if cl:
            def view(emb, side, at=None):  # every channel side by side: the token channels, then the IDs
                return perturb(torch.cat([emb[n][side] if at is None else rows(emb[n][side], at)
                                          for n in ("content", "id")], dim=1), c.cl_noise)
            out["cl"] = c.lambda_cl * (info_nce(view(final, 0, bu), view(first, 0), c.cl_temperature)
                                       + info_nce(view(final, 1, bi), view(first, 1), c.cl_temperature))
        if rq_loss is not None:
            out["rq"] = c.lambda_rq * rq_loss
        out["l2"] = c.reg_weight * l2_penalty(rows(self.user_emb, users), rows(self.item_emb, pos),
                                              rows(self.item_emb, neg))
        return out


def _sample(ids: torch.Tensor, n: int) -> torch.Tensor:
    """At most ``n`` of ``ids``, drawn without replacement (InfoNCE costs O(n^2))."""
    return ids if len(ids) <= n else ids[torch.randperm(len(ids), device=ids.device)[:n]]


def ablation_config(name: str, base: MoToRecConfig | None = None) -> MoToRecConfig:
    """The config of one Table-3 variant (``"MoToRec"``, ``"w/o RQ-VAE"``, ...)."""
    if name not in ABLATIONS:
        raise KeyError(f"unknown ablation {name!r}; expected one of {list(ABLATIONS)}")
    return replace(base or MoToRecConfig(), **ABLATIONS[name])
