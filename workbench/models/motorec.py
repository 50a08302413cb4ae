"""MoToRec (Liu et al., AAAI 2026): sparsity-regularized RQ-VAE tokens per modality, rarity-amplified tokenizer
loss, three-channel LightGCN (one channel per modality's tokens plus an ID channel) with hybrid fusion and a
gated residual, BPR + InfoNCE + weighted tokenizer loss + L2 (eq. 1-11).

How the joint training stays cheap (the issue's 90-GFLOP warning). The token channels need the quantized vector
``z_q`` of *every* item at every step, but re-encoding every item's raw features each step is the expensive part.
We keep, per modality, a buffer with every item's current codes. At each step:

* the item table of a token channel is ``decode(codes)``: the sum of the items' codebook vectors, one cheap
  sparse product (:func:`~workbench.sparse.row_sums`) differentiable in the codebooks, so the ranking loss trains
  every codebook entry in use;
* one *chunk* of items (a random permutation of the catalogue split over the epoch's steps, so every item is
  re-tokenized once per epoch) goes through the full RQ-VAE: its loss (eq. 6, weighted by ``w_i``, eq. 11) is
  added, its fresh straight-through ``z_q`` replaces its rows of the table (so ranking gradients reach the
  encoder too), and its new codes are written to the buffer.

The encoders therefore see ``n_items`` rows per epoch instead of ``n_items x n_steps``. A short tokenizer-only
warm-up (``tokenizer_warmup`` epochs of eq. 6) precedes the joint training so the first codes mean something.
At evaluation every item is tokenized afresh.

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
* homogeneous graph enhancement (HGE): the item-item kNN content graph of FREEDOM/LATTICE; the ID channel's
  item embeddings get the graph aggregate of the ID embeddings added (FREEDOM's ``i + S e_i``), which lets an item
  with few interactions borrow collaborative signal from its content neighbours;
* eq. 2 gives cold items ``w_i = 1 / log2(d_i + 2) < 1`` and warm ones ``1``; we implement it as written (the
  notebook discusses that this *attenuates* the tokenizer loss of rare items relative to warm ones).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from ..data.dataset import RecDataset, TRAIN
from .adjacency import NormalizedAdjacency
from .content_graph import content_graph
from .losses import perturb
from .graph_model import GraphModel, _features, _xavier, rows
from .losses import bpr_loss, info_nce, l2_penalty
from ..tokenizers.quantizer import QuantizerConfig, stack_group
from ..tokenizers.rqvae import RQVAE, RQVAEConfig, forward_group, mlp
from ..training.tokenizer_loop import fit_tokenizer


def rarity_weights(degree: np.ndarray, tau: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """MoToRec eq. 1-2: ``c_i = 1[d_i < tau]``; ``w_i = 1 / log2(d_i + 2)`` if ``c_i`` and ``d_i > 0``, else 1.
    Returns ``(w, c)``: float32 weights and boolean cold flags ``(n_items,)``."""
    d = np.asarray(degree)
    if d.ndim != 1 or (d < 0).any():
        raise ValueError(f"degree must be a 1-d array of non-negative counts, got shape {d.shape}")
    cold = d < tau
    w = np.ones(len(d), dtype=np.float32)
    amp = cold & (d > 0)
    w[amp] = 1.0 / np.log2(d[amp] + 2.0)
    return w, cold


@dataclass(frozen=True)
class MoToRecConfig:
    """Defaults: the paper's grid (N_q in {4,6,8}, K in {256,512,1024}, gamma in {.01,.05,.1,.2}, lambda_rq in
    {.1,.5,1,2}, lambda_cl in {.01,.05,.1}; Baby favours gamma=0.05, K=512), L=2, tau=10, 64-d embeddings."""

    dim: int = 64
    layers: int = 2
    levels: int = 4               # N_q
    codebook_size: int = 512      # K
    hidden: tuple[int, ...] = (256,)
    gamma: float = 0.05           # sparsity weight (eq. 6)
    rho: float = 0.01             # Bernoulli prior mean (eq. 5)
    beta: float = 0.25            # commitment weight (eq. 6)
    lambda_rq: float = 0.5
    lambda_cl: float = 0.05
    cl_temperature: float = 0.2
    cl_noise: float = 0.1         # XSimGCL eps
    cl_nodes: int = 512           # InfoNCE over at most this many of the batch's users (and items), sampled
    alpha: float = 0.5            # hybrid fusion balance (eq. 8)
    tau: int = 10                 # cold threshold (eq. 1)
    reg_weight: float = 1e-4      # lambda_reg (eq. 11) on the batch's ego embeddings
    knn_k: int = 10               # HGE item-item graph
    self_loops: bool = True       # eq. 7
    tokenizer_warmup: int = 5     # tokenizer-only epochs before joint training
    # ablation switches (Table 3)
    use_rqvae: bool = True        # False: continuous encoder latents instead of tokens ("w/o RQ-VAE")
    use_ara: bool = True          # False: w_i = 1 ("w/o ARA")
    use_sparsity: bool = True     # False: gamma = 0 ("w/o Sparsity")
    use_cl: bool = True           # False: no InfoNCE, no noise ("w/o CL")
    use_hf: bool = True           # False: concatenation only, no attention ("w/o HF")
    use_hge: bool = True          # False: no item-item graph ("w/o HGE")


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


class MoToRec(GraphModel):
    """MoToRec (see the module docstring). Channels: one per modality of the dataset (visual/text on Amazon
    data; text/genre on ml-100k) plus the ID channel."""

    config_class = MoToRecConfig

    def __init__(self, dataset: RecDataset, config: MoToRecConfig | None = None, **options):
        super().__init__(dataset, config, **options)
        c = self.config
        feats = _features(dataset, "MoToRec")
        self.modalities = list(feats)
        if c.dim % len(self.modalities):
            raise ValueError(f"dim={c.dim} must be divisible by the number of modalities {self.modalities}")
        self.token_dim = c.dim // len(self.modalities)
        degree = dataset.item_degree(TRAIN)
        w, cold = rarity_weights(degree, c.tau)
        if not c.use_ara:
            w = np.ones_like(w)
        self.register_buffer("item_weights", torch.as_tensor(w))
        self.register_buffer("cold", torch.as_tensor(cold))
        rq = RQVAEConfig(hidden=c.hidden, sparsity_rho=c.rho,
                         sparsity_weight=c.gamma if c.use_sparsity else 0.0,
                         quantizer=QuantizerConfig(D=self.token_dim, L=c.levels, K=c.codebook_size, beta=c.beta))
        self.tokenizers = nn.ModuleDict()
        for m, X in feats.items():
            self.register_buffer(f"feat_{m}", X, persistent=False)
            if c.use_rqvae:
                self.tokenizers[m] = RQVAE(X.shape[1], rq)
                self.register_buffer(f"codes_{m}", torch.zeros(self.n_items, c.levels, dtype=torch.long))
            else:
                self.tokenizers[m] = mlp([X.shape[1], *c.hidden, self.token_dim])
                self.register_buffer(f"latent_{m}", torch.zeros(self.n_items, self.token_dim))
        self.user_emb = _xavier(self.n_users, c.dim)
        self.item_emb = _xavier(self.n_items, c.dim)
        self.item_fusion = HybridFusion(len(self.modalities), self.token_dim, c.dim, c.alpha, c.use_hf)
        self.user_fusion = HybridFusion(len(self.modalities), self.token_dim, c.dim, c.alpha, c.use_hf)
        self.adjacency = NormalizedAdjacency(self.train_matrix, self_loops=c.self_loops)
        self.item_graph = content_graph(dataset.features, c.knn_k) if c.use_hge else None
        self._chunks: list[torch.Tensor] = []
        self._step = 0

    def move_graphs(self, device):
        self.adjacency.to(device)
        if self.item_graph is not None:
            self.item_graph = self.item_graph.to(device)

    def features(self, m: str) -> torch.Tensor:
        return getattr(self, f"feat_{m}")

    # -------------------------------------------------------------------------------------- tokenizers
    def prepare(self, rng: np.random.Generator) -> None:
        """Tokenizer warm-up (eq. 6 weighted by w_i, ``tokenizer_warmup`` epochs) and the first code buffers."""
        c = self.config
        seed = int(rng.integers(2 ** 31))
        for m in self.modalities:
            tok = self.tokenizers[m]
            X = self.features(m)
            if c.use_rqvae:
                if c.tokenizer_warmup:
                    fit_tokenizer(tok, X.cpu().numpy(), epochs=c.tokenizer_warmup, batch_size=512, seed=seed,
                                  device=str(self.device), weights=self.item_weights.cpu().numpy(),
                                  progress=False, health_every=10 ** 9)
                else:
                    tok.initialise(X[torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))[:16384]
                                     .to(X.device)], seed=seed)
            self._refresh(m)

    @torch.no_grad()
    def _refresh(self, m: str) -> None:
        tok, X = self.tokenizers[m], self.features(m)
        was = tok.training
        tok.eval()
        if self.config.use_rqvae:
            setattr(self, f"codes_{m}", torch.cat([tok.codes_of(X[s:s + 4096]) for s in range(0, len(X), 4096)]))
        else:
            setattr(self, f"latent_{m}", torch.cat([tok(X[s:s + 4096]) for s in range(0, len(X), 4096)]))
        tok.train(was)

    def pre_epoch(self, rng, n_steps):
        perm = torch.as_tensor(rng.permutation(self.n_items), device=self.device)
        self._chunks = list(torch.tensor_split(perm, max(1, min(n_steps, self.n_items))))
        self._step = 0

    def _next_chunk(self) -> torch.Tensor:
        if not self._chunks:  # loss() called outside fit_graph: one random chunk
            self.pre_epoch(np.random.default_rng(), 1)
        chunk = self._chunks[self._step % len(self._chunks)]
        self._step += 1
        return chunk

    def item_tables(self, chunk: torch.Tensor | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Per-modality item tables ``(n_items, dim)`` for the token channels and the tokenizer loss of the
        ``chunk`` (``None``: every item re-tokenized, no loss, as at evaluation)."""
        c = self.config
        tables, rq_loss = {}, None
        if chunk is not None and c.use_rqvae:
            # every modality's RQ-VAE on the chunk, their quantizers and regularizers in one batched pass
            outs = forward_group([self.tokenizers[m] for m in self.modalities],
                                 [self.features(m)[chunk] for m in self.modalities], self.item_weights[chunk])
            rq_loss = stack_group([out.total for out in outs]).sum()
            for m, out in zip(self.modalities, outs):
                codes = getattr(self, f"codes_{m}")
                tables[m] = self.tokenizers[m].quantizer.decode(codes).index_put((chunk,), out.quantized)
                setattr(self, f"codes_{m}", codes.index_copy(0, chunk, out.codes.detach()))
            return tables, rq_loss
        for m in self.modalities:
            tok, X = self.tokenizers[m], self.features(m)
            if chunk is None:
                if c.use_rqvae:
                    codes = torch.cat([tok.codes_of(X[s:s + 4096]) for s in range(0, len(X), 4096)])
                    tables[m] = tok.quantizer.decode(codes)
                else:
                    tables[m] = torch.cat([tok(X[s:s + 4096]) for s in range(0, len(X), 4096)])
            else:
                z = tok(X[chunk])
                latent = getattr(self, f"latent_{m}")
                tables[m] = latent.index_put((chunk,), z)
                setattr(self, f"latent_{m}", latent.index_copy(0, chunk, z.detach()))
        return tables, rq_loss

    def item_codes(self) -> dict[str, np.ndarray]:
        """Each modality's codes ``(n_items, N_q)`` from a fresh tokenization (needs ``use_rqvae``)."""
        if not self.config.use_rqvae:
            raise ValueError("this MoToRec variant has no tokenizer (use_rqvae=False)")
        return {m: self.tokenizers[m].tokenize(self.features(m).cpu().numpy()) for m in self.modalities}

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
        content = torch.cat([tables[m] for m in self.modalities], dim=1)
        final, first = {}, {}
        # users start empty in the content channels (None = zeros): their content comes from their items
        for name, (u0, i0) in {"content": (None, content), "id": (self.user_emb, self.item_emb)}.items():
            mean_u, mean_i, first_u, first_i = self.adjacency.propagate_at(u0, i0, self.config.layers, *at)
            final[name], first[name] = (mean_u, mean_i), (first_u, first_i)
        if self.item_graph is not None:  # HGE on the ID channel (FREEDOM's i + S e_i)
            u, i = final["id"]
            h = self.item_graph(self.item_emb)
            final["id"] = (u, i + (h if at[1] is None else rows(h, at[1])))
        return final, first

    def _split(self, channels):
        out = {"id": channels["id"]}
        users = channels["content"][0].split(self.token_dim, dim=1)
        items = channels["content"][1].split(self.token_dim, dim=1)
        out.update({m: (u, i) for m, u, i in zip(self.modalities, users, items)})
        return out

    def _fuse(self, final):
        """Hybrid fusion (eq. 8 + gated residual) of :meth:`_propagate`'s ``{"content": .., "id": ..}``."""
        u = self.user_fusion(final["content"][0], final["id"][0])
        i = self.item_fusion(final["content"][1], final["id"][1])
        return u, i

    def embeddings(self):
        tables, _ = self.item_tables(None)
        final, _ = self._propagate(tables)
        return self._fuse(final)

    def loss(self, users, pos, neg):
        c = self.config
        tables, rq_loss = self.item_tables(self._next_chunk())
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
