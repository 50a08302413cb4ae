"""Residual vector quantization (the core of all three papers' tokenizers).

:class:`ResidualQuantizer` quantizes a latent ``z`` ``(B, D)`` with ``L`` codebooks of ``K`` codes each: level
``l`` picks the code nearest to the current residual (MoToRec eq. 3, L2; or MMQ eq. 7, cosine), and the
residual moves on (eq. 4). Options, each a separate small function below:

* lookup: ``"l2"`` (squared Euclidean) or ``"cosine"`` (MMQ eq. 7-8: the input is L2-normalised, each level
  picks the code of largest cosine with its residual, and the code vector itself is the quantized value, so
  ``decode(codes)`` is exact; normalising the input keeps latents from drifting in norm away from the codes);
* gradient estimator: ``"ste"`` (straight-through: ``z + sg(z_q - z)``) or ``"rotation"`` (the rotation trick of
  Fifty et al. 2024: the residual is rotated and rescaled onto its code, gradients pass through the rotation);
* codebook learning: gradient (codebook loss ``||sg(r) - q||^2``) or EMA updates (``ema=True``);
* commitment loss ``beta * ||r - sg(q)||^2`` (MoToRec eq. 6, CEMG eq. 4);
* k-means initialization from data (:meth:`ResidualQuantizer.init_codebooks`) and dead-code re-initialization
  (codes whose running usage falls below ``dead_code_threshold`` are replaced by random residuals of the batch;
  the count per level is reported). The running statistics start from the k-means clusters, as in lucidrains'
  ``vector-quantize-pytorch``: a code's usage (and, with EMA, its cluster size and sum) is its share of the
  k-means sample times the training batch size, so a code that k-means left (nearly) empty is replaced at the
  first step; EMA codebooks are the Laplace-smoothed cluster means from the start; a replaced code restarts as a
  cluster of ``dead_code_threshold`` members.

State and gradients are kept apart: ``forward`` changes nothing (so it can run under DistributedDataParallel,
``torch.compile`` or a CUDA graph); the running statistics, EMA codebooks and dead-code resets change only in
:meth:`ResidualQuantizer.update`, which the training engine calls after each optimizer step.

Seeding the initialization (measured with ``python -m workbench.bench tokenizer``, 5 seeds, and throwaway runs):

* ``kmeans_seeding="random"`` seeds each level's k-means with random *distinct* rows of its residuals (the
  tokenizer benchmark uses it with 10 iterations, as lucidrains'); ``"kmeans++"`` (the default) favours far-out
  points. With EMA codebooks and dead-code resets (the benchmark's setting) k-means++ left levels 2-4 of random
  4,096-d features 0.1-0.2 bit below lucidrains' quantizer; random seeding closes that gap. With
  gradient-trained codebooks and MoToRec's sparsity term (D=32, L=4, K=512, on the synthetic catalogue's image
  and text features, 2 seeds) k-means++ gave 0.2-0.9 bit more level-1 entropy and similar collisions, so it
  stays the default;
* with EMA codebooks, the next level's k-means sees the residuals left by the *smoothed* codes the first step
  will use. Residuals of the raw centres are exactly zero for every item alone in its cluster (53 of 1,024
  clustered items at level 1, 414 by level 4, in a throwaway check), random seeding then drew several
  identical zero vectors as seeds, and all but one stayed empty (84 of 256 codes by level 4): with random
  seeding and raw centres, levels 2-4 of the clustered set collapsed to ~6 bits and 1.1-1.3% of its items
  collided. The smoothed codes differ from the centres by ~1e-5 relative, enough to keep those residuals
  distinct; seeding from distinct rows also keeps exact duplicates out without EMA.

``forward`` returns a :class:`QuantizerOutput`: codes ``(B, L)``, quantized vector ``(B, D)`` (carrying the
chosen estimator's gradient), per-level residual norms ``(B, L)``, a loss breakdown by name and the residuals
:meth:`ResidualQuantizer.update` needs. It is the group
of one of :func:`quantize_group`, which runs several quantizers of one configuration (MMQ's experts, MoToRec's
modalities) as one batched pass on ``(G, L, B, D)`` stacks: the same results with a fraction of the operations
(each has a fixed cost on a CPU, and is a kernel launch on a GPU).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..core import distributed as dist
from ..core.config import resolve_config
from ..core.sparse import row_sums


@dataclass(frozen=True)
class QuantizerConfig:
    """Residual quantizer settings (vocabulary: ``L`` levels, ``K`` codes, ``D`` latent size)."""

    D: int = 64
    L: int = 3
    K: int = 256
    distance: str = "l2"             # "l2" | "cosine"
    estimator: str = "ste"           # "ste" | "rotation"
    beta: float = 0.25               # commitment weight
    ema: bool = False                # EMA codebook updates instead of the codebook loss
    ema_decay: float = 0.99
    kmeans_init: bool = True         # start each level from k-means on a sample (init_codebooks, before training)
    kmeans_iters: int = 20
    kmeans_seeding: str = "kmeans++"  # "kmeans++" | "random" (distinct sample rows, as lucidrains'; see module doc)
    dead_code_threshold: float = 0.0  # reset codes whose running usage (EMA of counts per batch) is below this
    usage_decay: float = 0.99

    def __post_init__(self) -> None:
        if self.distance not in ("l2", "cosine"):
            raise ValueError(f"distance must be 'l2' or 'cosine', got {self.distance!r}")
        if self.kmeans_seeding not in ("random", "kmeans++"):
            raise ValueError(f"kmeans_seeding must be 'random' or 'kmeans++', got {self.kmeans_seeding!r}")
        if self.estimator not in ("ste", "rotation"):
            raise ValueError(f"estimator must be 'ste' or 'rotation', got {self.estimator!r}")
        if not all(isinstance(v, int) and v >= 1 for v in (self.D, self.L, self.K)):
            raise ValueError(f"D, L and K must be positive integers, got {self.D!r}, {self.L!r}, {self.K!r}")


class QuantizerOutput(NamedTuple):
    """codes ``(B, L)`` long; quantized ``(B, D)`` (forward value = sum of chosen codes); residual_norms
    ``(B, L)``: norm of the residual entering each level; losses: name -> per-item loss ``(B,)`` (summed over
    levels), so that callers can weight items (MoToRec w_i) before averaging; residuals ``(L, B, D)``: the
    (detached) residual entering each level, for :meth:`ResidualQuantizer.update`."""

    codes: torch.Tensor
    quantized: torch.Tensor
    residual_norms: torch.Tensor
    losses: dict[str, torch.Tensor]
    residuals: torch.Tensor


def nearest_code(x: torch.Tensor, codebook: torch.Tensor, distance: str = "l2") -> torch.Tensor:
    """Index ``(B,)`` of the code in ``codebook`` ``(K, D)`` nearest to each row of ``x`` ``(B, D)``."""
    if distance == "cosine":
        return (F.normalize(x, dim=-1) @ F.normalize(codebook, dim=-1).T).argmax(-1)  # MMQ eq. 7
    # MoToRec eq. 3: argmin ||x - c||^2 = argmin (||c||^2 - 2 x.c)
    return ((codebook * codebook).sum(-1)[None, :] - 2 * x @ codebook.T).argmin(-1)


def rotate_onto(e: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Rotation trick: map ``e`` ``(B, D)`` onto ``q`` by the rotation taking e's direction to q's, scaled by
    ``|q| / |e|``, all treated as constants. Forward value = ``q``; the gradient w.r.t. ``e`` is that linear map."""
    eps = 1e-6
    e_norm = e.norm(dim=-1, keepdim=True).clamp_min(eps)
    q_norm = q.norm(dim=-1, keepdim=True).clamp_min(eps)
    u = (e / e_norm).detach()
    v = (q / q_norm).detach()
    bisector = u + v
    w = F.normalize(bisector, dim=-1).detach()
    # R = I - 2 w w^T + 2 v u^T maps u to v and keeps the plane's orthogonal complement fixed
    rotated = e - 2 * (e * w).sum(-1, keepdim=True) * w + 2 * (e * u).sum(-1, keepdim=True) * v
    rotated = rotated * (q_norm / e_norm).detach()
    # the rotation is undefined for a (near) zero residual or opposite directions: straight-through there
    degenerate = (e.norm(dim=-1, keepdim=True) < eps) | (bisector.norm(dim=-1, keepdim=True) < eps)
    return torch.where(degenerate, e + (q - e).detach(), rotated)


def kmeans(x: torch.Tensor, k: int, iters: int = 20, seed: int = 0, seeding: str = "kmeans++") -> torch.Tensor:
    """Lloyd's k-means, vectorized in torch. ``x`` ``(n, D)`` -> centres ``(k, D)``. Seeding: ``"kmeans++"``
    (the next centre drawn proportionally to the squared distance: robust for a few well-separated clusters) or
    ``"random"`` (``k`` distinct rows of ``x``: the seeds follow the density, see :class:`ResidualQuantizer`).
    With fewer (distinct) points than ``k`` the missing centres are points plus small noise."""
    if seeding not in ("kmeans++", "random"):
        raise ValueError(f"seeding must be 'kmeans++' or 'random', got {seeding!r}")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    candidates = x
    if seeding == "random":
        # distinct rows only: identical rows (e.g. the exact-zero residuals of items that are their own code at
        # the level above) would otherwise become duplicate centres, all but one left empty
        candidates = torch.unique(x, dim=0)
        if len(candidates) < k:
            x = candidates
    n = len(x)
    if n < k:
        extra = x[torch.randint(n, (k - n,), generator=gen).to(x.device)]
        noise = 1e-3 * torch.randn(extra.shape, generator=gen).to(x.device) * (x.std() + 1e-6)
        return torch.cat([x, extra + noise])
    if seeding == "random":
        centres = candidates[torch.randperm(len(candidates), generator=gen)[:k].to(x.device)]
    else:
        centres = x[torch.randint(n, (1,), generator=gen).to(x.device)]
        closest = ((x - centres[0]) ** 2).sum(-1)
        for _ in range(1, k):  # k-means++: sample the next centre proportionally to the squared distance
            probs = (closest / closest.sum().clamp_min(1e-12)).cpu()
            idx = (torch.multinomial(probs, 1, generator=gen) if probs.sum() > 0
                   else torch.randint(n, (1,), generator=gen))
            centres = torch.cat([centres, x[idx.to(x.device)]])
            closest = torch.minimum(closest, ((x - centres[-1]) ** 2).sum(-1))
    for _ in range(iters):
        assign = nearest_code(x, centres)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        empty = counts == 0
        centres = torch.where(empty[:, None], centres, sums / counts.clamp_min(1)[:, None])
    return centres


def _smoothed(size: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Laplace-smoothed cluster sizes over the last dimension (``K`` codes), same total: EMA codebooks are the
    running sums over these (as lucidrains'), so an empty cluster never divides by zero."""
    n = size.sum(-1, keepdim=True)
    return (size + eps) / (n + size.shape[-1] * eps) * n


class ResidualQuantizer(nn.Module):
    """``L`` residual codebooks of ``K`` codes in ``D`` dimensions (see the module docstring).

    ``forward`` is a pure function of the codebooks (it changes no state); the training loop calls
    :meth:`update` after each optimizer step with what ``forward`` returned, and :meth:`init_codebooks` once
    before training."""

    def __init__(self, config: QuantizerConfig | None = None, **options):
        super().__init__()
        self.config = resolve_config(QuantizerConfig, config, options)
        c = self.config
        self.codebooks = nn.Parameter(torch.randn(c.L, c.K, c.D) / c.D**0.5, requires_grad=not c.ema)
        self.register_buffer("initialized", torch.tensor(not c.kmeans_init))
        # running usage per code (EMA of batch counts); new codes start at the dead-code threshold (a grace period)
        self.register_buffer("usage", torch.full((c.L, c.K), max(c.dead_code_threshold, 1.0)))
        if c.ema:
            self.register_buffer("ema_size", torch.ones(c.L, c.K))
            self.register_buffer("ema_sum", self.codebooks.data.clone())

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Fresh random codebooks from torch's current generator, and the state that goes with them (not yet
        k-means initialised, usage at the grace level, EMA statistics from the new codebooks)."""
        c = self.config
        self.codebooks.copy_(torch.randn(self.codebooks.shape, device=self.codebooks.device) / c.D**0.5)
        self.initialized.fill_(not c.kmeans_init)
        self.usage.fill_(max(c.dead_code_threshold, 1.0))
        if c.ema:
            self.ema_size.fill_(1.0)
            self.ema_sum.copy_(self.codebooks)

    # ------------------------------------------------------------------------------------------- lookup
    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """The vector that is quantized: ``z`` itself (L2), or its direction (cosine)."""
        return F.normalize(z, dim=-1) if self.config.distance == "cosine" else z

    @torch.no_grad()
    def init_codebooks(self, z: torch.Tensor, seed: int = 0, batch_size: int | None = None) -> None:
        """k-means initialisation from latents ``z`` ``(n, D)``: level ``l``'s codebook = k-means of the residuals
        left by levels ``< l``. Each code's running statistics start as its k-means cluster: its share of the
        sample times ``batch_size`` (the training batch size; default ``n``), the units of the batch counts the
        EMA then averages."""
        c = self.config
        residual = self.normalize(z.detach())
        n = len(residual)
        batch = float(batch_size or n)
        for level in range(c.L):
            centres = kmeans(residual, c.K, c.kmeans_iters, seed=seed + level, seeding=c.kmeans_seeding)
            assign = nearest_code(residual, centres, c.distance)
            counts = torch.bincount(assign, minlength=c.K).to(residual.dtype) * (batch / n)
            self.usage[level] = counts
            codes = centres
            if c.ema:
                self.ema_size[level] = counts
                self.ema_sum[level] = centres * counts[:, None]
                # the codebook the first step uses (the Laplace-smoothed EMA means), so the next level's k-means
                # sees the residuals that step will see
                codes = self.ema_sum[level] / _smoothed(counts)[:, None]
            self.codebooks.data[level] = codes
            residual = residual - codes[assign]
        self.initialized.fill_(True)

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, L)`` of latents ``z`` ``(B, D)`` (no gradient, no state change)."""
        return _descend(self.normalize(z).unsqueeze(0), self.codebooks.unsqueeze(0), self.config)[0][0]

    def _flat_ids(self, codes: torch.Tensor) -> torch.Tensor:
        """Rows of the flattened ``(L * K, D)`` codebooks chosen by ``codes`` ``(B, L')`` (level ``l`` of an item
        is row ``l * K + code``), same shape."""
        return codes + torch.arange(codes.shape[1], device=codes.device) * self.config.K

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Sum of the chosen codes: ``codes`` ``(B, L')`` with ``L' <= L`` -> ``(B, D)``."""
        # one sparse product each way (a gather, sum and scatter-add backward cost ~6x more on a CPU)
        return row_sums(self.codebooks.reshape(-1, self.config.D), self._flat_ids(codes))

    # ------------------------------------------------------------------------------------------ forward
    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize ``z`` ``(B, D)`` (no state change; see :meth:`update`). A group of one for
        :func:`quantize_group` (the one implementation of the forward pass)."""
        return quantize_group([self], [z])[0]

    # ------------------------------------------------------------------------------------ state updates
    @torch.no_grad()
    def update(self, codes: torch.Tensor, residuals: torch.Tensor, shared: bool = False) -> list[int]:
        """After an optimizer step, from a training batch's ``forward`` output (its ``codes`` ``(B, L)`` and
        ``residuals`` ``(L, B, D)``): the usage EMA, EMA codebooks and dead-code resets of every level. Returns the
        number of codes reset per level.

        Under torch.distributed the batch counts and sums are summed over processes first (every process then
        makes the same update, that of the whole batch), and replacement codes are drawn by rank 0 from every
        process's residuals and broadcast, so every process holds the same codebooks. ``shared=True``: the batch
        is the same on every process (MoToRec's tokenizer chunk), so there is nothing to sum or gather."""
        c = self.config
        flat = self._flat_ids(codes).T.reshape(-1)  # level-major, as residuals.reshape(-1, D)
        counts = torch.bincount(flat, minlength=c.L * c.K).view(c.L, c.K).to(residuals.dtype)
        if c.ema:
            sums = residuals.new_zeros(c.L * c.K, c.D).index_add_(0, flat, residuals.reshape(-1, c.D))
            stats = torch.cat([counts.reshape(-1, 1), sums], dim=1)
            stats = stats if shared else dist.all_reduce_sum(stats)
            counts, sums = stats[:, 0].view(c.L, c.K), stats[:, 1:].view(c.L, c.K, c.D)
            self.ema_size.mul_(c.ema_decay).add_(counts, alpha=1 - c.ema_decay)
            self.ema_sum.mul_(c.ema_decay).add_(sums, alpha=1 - c.ema_decay)
            self.codebooks.data.copy_(self.ema_sum / _smoothed(self.ema_size)[..., None])
        elif not shared:
            dist.all_reduce_sum(counts)
        self.usage.mul_(c.usage_decay).add_(counts, alpha=1 - c.usage_decay)
        if c.dead_code_threshold <= 0:
            return [0] * c.L
        return [self._reset_dead(level, residuals[level], shared) for level in range(c.L)]

    @torch.no_grad()
    def _reset_dead(self, level: int, residual: torch.Tensor, shared: bool) -> int:
        """Replace the codes of ``level`` whose running usage is under the threshold by batch residuals."""
        c = self.config
        dead = (self.usage[level] < c.dead_code_threshold).nonzero().squeeze(1)
        if not len(dead):  # the same on every process: usage is updated from the summed counts
            return 0
        pool = residual if shared else dist.gather_rows(residual)  # the whole batch's residuals, in order
        if dist.is_main():
            # distinct batch residuals (two codes reset to the same vector would leave one dead); with more dead
            # codes than residuals, reset a random subset now and the rest at later steps
            if len(dead) > len(pool):
                dead = dead[torch.randperm(len(dead), device=dead.device)[:len(pool)]]
            vectors = pool[torch.randperm(len(pool), device=pool.device)[:len(dead)]]
        else:
            vectors = None
        if dist.is_distributed():  # rank 0's choice, sent as CPU tensors (pickled), to every process's device
            dead, vectors = dist.broadcast_object(None if vectors is None else (dead.cpu(), vectors.cpu()))
            dead, vectors = dead.to(residual.device), vectors.to(residual.device)
        self.codebooks.data[level, dead] = vectors
        # a new code starts as a cluster of `threshold` members: a grace period before it can expire
        self.usage[level, dead] = float(c.dead_code_threshold)
        if c.ema:
            self.ema_sum[level, dead] = vectors * c.dead_code_threshold
            self.ema_size[level, dead] = float(c.dead_code_threshold)
        return len(dead)


def stack_group(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``torch.stack`` along a new first dimension; a view (no copy) for a single tensor."""
    return tensors[0].unsqueeze(0) if len(tensors) == 1 else torch.stack(tensors)


def split_group(t: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The inverse of :func:`stack_group`: views along the first dimension, with one backward node for all of
    them (indexing ``t[g]`` one by one would give each a full-size zero-filled gradient)."""
    return (t.squeeze(0),) if len(t) == 1 else t.unbind(0)


def _descend(residual: torch.Tensor, books: torch.Tensor, c: QuantizerConfig):
    """The residual descent (eq. 3-4) of ``G`` quantizers at once: ``residual`` ``(G, B, D)`` (already
    normalized), ``books`` ``(G, L, K, D)``. Returns ``(codes (G, B, L), residuals entering each level (G, L, B,
    D), chosen codes (G, L, B, D))``. Residuals carry ``residual``'s gradient, chosen codes that of ``books``;
    the lookup itself is made on detached values."""
    G, B, D = residual.shape
    flat = books.detach()
    rows = flat.reshape(-1, D)  # every group's and level's codes as rows: group g, level l, code k at (g L + l) K + k
    # row offsets of each group's level 0 (a group of one needs none: its levels are gathered from views)
    base = (torch.arange(G, device=residual.device) * (c.L * c.K))[:, None] if G > 1 else None
    sq = (flat * flat).sum(-1) if c.distance == "l2" else None  # (G, L, K): every code's norm at once
    codes, residuals = [], []
    for level in range(c.L):
        r = residual.detach()
        if sq is None:  # MMQ eq. 7: the code of largest cosine with the residual
            idx = torch.bmm(F.normalize(r, dim=-1), F.normalize(flat[:, level], dim=-1).transpose(1, 2)).argmax(-1)
        else:  # argmin ||c||^2 - 2 r.c (nearest_code's formula, the norms computed once)
            idx = torch.baddbmm(sq[:, level].unsqueeze(1), r, flat[:, level].transpose(1, 2), alpha=-2).argmin(-1)
        codes.append(idx)
        residuals.append(residual)
        if base is None:
            picked = flat[0, level].index_select(0, idx[0])
        else:
            picked = rows.index_select(0, (idx + (base + level * c.K)).reshape(-1))
        residual = residual - picked.view(G, B, D)
    codes_t = torch.stack(codes, dim=2)
    # every group's and level's chosen codes in one gather from the flattened books (one index_add backward)
    ids = codes_t.transpose(1, 2) + torch.arange(c.L, device=codes_t.device)[:, None] * c.K  # (G, L, B)
    if base is not None:
        ids = ids + base[:, :, None]
    chosen = books.reshape(-1, D).index_select(0, ids.reshape(-1)).view(G, c.L, B, D)
    return codes_t, torch.stack(residuals, dim=1), chosen


def quantize_group(quantizers: list[ResidualQuantizer], zs: list[torch.Tensor]) -> list[QuantizerOutput]:
    """The forward pass of several quantizers of one configuration on latents of one shape, ``zs[g]`` by
    ``quantizers[g]``, as one batched pass: the same outputs, losses, gradients and state updates as
    ``[q(z) for q, z in zip(quantizers, zs)]`` with a fraction of the operations (MMQ's experts, MoToRec's
    modalities; each operation has a fixed cost, a kernel launch on a GPU). The levels are found one after the
    other; the losses and the estimator of all levels (and groups) are then computed at once on ``(G, L, B, D)``
    stacks. No quantizer's state changes (see :meth:`ResidualQuantizer.update`)."""
    if not quantizers or len(quantizers) != len(zs):
        raise ValueError(f"quantize_group needs one latent per quantizer, got {len(quantizers)} quantizers and "
                         f"{len(zs)} latents")
    c = quantizers[0].config
    for g, (q, z) in enumerate(zip(quantizers, zs)):
        if q.config != c:
            raise ValueError(f"quantize_group needs one configuration; quantizer {g} has {q.config}, quantizer 0 {c}")
        if z.dim() != 2 or z.shape != zs[0].shape or z.shape[1] != c.D:
            raise ValueError(f"latent {g} has shape {tuple(z.shape)}; expected ({len(zs[0])}, {c.D}) like latent 0")
    z = quantizers[0].normalize(stack_group(zs))
    books = stack_group([q.codebooks for q in quantizers])
    codes, residuals, chosen = _descend(z, books, c)
    # per item, summed over levels: (G, B)
    losses = {"commitment": c.beta * ((residuals - chosen.detach()) ** 2).mean(-1).sum(1)}
    if not c.ema:
        losses["codebook"] = ((chosen - residuals.detach()) ** 2).mean(-1).sum(1)
    if c.estimator == "rotation":
        quantized = rotate_onto(residuals, chosen.detach()).sum(1)
    else:
        quantized = z + (chosen.detach().sum(1) - z).detach()  # straight-through estimator
    norms = residuals.norm(dim=-1).transpose(1, 2)  # (G, B, L)
    codes, residuals = split_group(codes), split_group(residuals.detach())
    parts = [split_group(t) for t in (quantized, norms, *losses.values())]
    return [QuantizerOutput(codes[g], parts[0][g], parts[1][g], dict(zip(losses, (p[g] for p in parts[2:]))),
                            residuals[g]) for g in range(len(quantizers))]


class SoftIndex(NamedTuple):
    """``ind`` ``(..., B, K)``: one-hot in the forward pass, softmax gradient in the backward pass (MMQ eq. 18);
    ``hard`` ``(..., B)`` the chosen code (eq. 17); ``soft`` ``(..., B, K)`` the tempered softmax (eq. 16)."""

    ind: torch.Tensor
    hard: torch.Tensor
    soft: torch.Tensor


def soft_index(z: torch.Tensor, codebook: torch.Tensor, tau: float = 1.0, distance: str = "cosine") -> SoftIndex:
    """Soft-index straight-through lookup (MMQ eq. 15-18, after IBQ): logits of ``z`` ``(..., B, D)`` against
    ``codebook`` ``(..., K, D)`` (leading dimensions broadcast: several experts at once), ``softmax(p / tau)``,
    hard argmax forward, soft gradient backward. ``ind @ table`` then looks up a downstream embedding ``table``
    ``(K, E)`` with gradients reaching ``z`` and the codebook (behavior-aware fine-tuning).

    ``distance="cosine"`` is eq. 15 (MMQ's cosine codebooks). ``"l2"`` (our extension to L2 quantizers such as
    the RQ-VAE baselines) takes the negative squared distance as the logit, so that the hard index is the code
    the quantizer itself picks (:func:`nearest_code`) and the exported ids do not change by switching to it."""
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    if distance == "cosine":
        logits = F.normalize(z, dim=-1) @ F.normalize(codebook, dim=-1).transpose(-1, -2)  # eq. 15
    elif distance == "l2":  # -||z - c||^2 up to a per-row constant (softmax and argmax ignore it)
        logits = 2 * z @ codebook.transpose(-1, -2) - (codebook * codebook).sum(-1).unsqueeze(-2)
    else:
        raise ValueError(f"distance must be 'cosine' or 'l2', got {distance!r}")
    soft = torch.softmax(logits / tau, dim=-1)  # eq. 16
    hard = logits.argmax(-1)  # eq. 17
    one_hot = F.one_hot(hard, codebook.shape[-2]).to(soft.dtype)
    return SoftIndex(soft + (one_hot - soft).detach(), hard, soft)  # eq. 18
