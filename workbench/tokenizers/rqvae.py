"""RQ-VAE: an MLP encoder, a :class:`~workbench.tokenizers.quantizer.ResidualQuantizer`, an MLP decoder (MoToRec eq. 6,
CEMG eq. 4), with the regularizers of :mod:`workbench.regularizers` as separate, optional loss terms.

Loss (per item, then averaged with optional weights ``w_i``, MoToRec eq. 2 and 11)::

    recon_i      = mean_d (x_i - D(z_q,i))^2            # squared error averaged over input dims
    commitment_i = beta * sum_l ||r_l - sg(q_l)||^2 / D  # from the quantizer
    codebook_i   = sum_l ||sg(r_l) - q_l||^2 / D         # absent with EMA codebooks
    total = weighted_mean(recon + commitment + codebook) + mean(w) * gamma * sparsity_kl + lambda_d * diversity

With weights, eq. 11's ``(1/|B|) sum_i w_i L_i`` puts the batch-level sparsity term of every item's eq. 6 loss
under the batch's mean weight ``mean(w)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from ..core.config import resolve_config
from ..core import distributed as dist
from ..core.layers import hidden_sizes, mlp
from .base import SoftCodes, TokenizerModule
from .quantizer import QuantizerConfig, ResidualQuantizer, quantize_group, soft_index, split_group, stack_group
from .regularizers import diversity_loss, soft_assignment, sparsity_kl, weighted_mean


@dataclass(frozen=True)
class RQVAEConfig:
    """RQ-VAE settings. ``quantizer`` holds ``D, L, K`` and the quantizer options."""

    hidden: tuple[int, ...] = (512, 256)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    sparsity_weight: float = 0.0      # MoToRec gamma (eq. 6)
    sparsity_rho: float = 0.01        # MoToRec rho, the Bernoulli prior mean (eq. 5)
    diversity_weight: float = 0.0     # CEMG lambda_d (eq. 4)
    temperature: float = 1.0          # soft assignment temperature for the two regularizers
    dropout: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", hidden_sizes(self.hidden, "RQVAEConfig"))


class RQVAEOutput(NamedTuple):
    """codes ``(B, L)``; reconstruction ``(B, F)``; latent ``z`` and quantized ``z_q`` ``(B, D)``;
    losses: name -> scalar (already weighted and averaged); total: scalar to minimise; residuals ``(L, B, D)``:
    the detached residual entering each level (for the quantizer's state update)."""

    codes: torch.Tensor
    reconstruction: torch.Tensor
    latent: torch.Tensor
    quantized: torch.Tensor
    losses: dict[str, torch.Tensor]
    total: torch.Tensor
    residuals: torch.Tensor


class RQVAE(TokenizerModule):
    """Encoder ``F -> hidden -> D``, residual quantizer, decoder ``D -> reversed(hidden) -> F``."""

    def __init__(self, input_dim: int, config: RQVAEConfig | None = None, **options):
        super().__init__()
        self.config = resolve_config(RQVAEConfig, config, options)
        c = self.config
        D = c.quantizer.D
        self.input_dim = input_dim
        self.encoder = mlp([input_dim, *c.hidden, D], c.dropout)
        self.quantizer = ResidualQuantizer(c.quantizer)
        self.decoder = mlp([D, *reversed(c.hidden), input_dim], c.dropout)

    @property
    def K(self) -> int:
        return self.config.quantizer.K

    @property
    def L(self) -> int:
        return self.config.quantizer.L

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> RQVAEOutput:
        """``x`` ``(B, F)``; ``weights`` ``(B,)`` per-item loss weights or ``None``. A group of one for
        :func:`forward_group` (the one implementation of the forward pass)."""
        return forward_group([self], [x], weights)[0]

    def _regularizer_settings(self) -> tuple:
        """What must be equal for RQ-VAEs to share one batched pass (see :func:`forward_group`)."""
        c = self.config
        return c.quantizer, c.sparsity_weight, c.sparsity_rho, c.diversity_weight, c.temperature

    # ------------------------------------------------------------------------------- tokenizer contract
    @torch.no_grad()
    def init_codebooks(self, x: torch.Tensor, seed: int = 0, batch_size: int | None = None) -> None:
        """k-means initialisation of the codebooks from the encoder outputs of a sample ``x`` ``(n, F)`` (once:
        an initialised quantizer is left as it is)."""
        if not bool(self.quantizer.initialized):
            was_training = self.training
            self.eval()
            self.quantizer.init_codebooks(self.encoder(x), seed=seed, batch_size=batch_size)
            self.train(was_training)

    def update_state(self, out: RQVAEOutput, shared: bool = False) -> int:
        return sum(self.quantizer.update(out.codes, out.residuals, shared))

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantizer.encode(self.encoder(x))

    def soft_codes(self, x: torch.Tensor, tau: float = 1.0) -> SoftCodes:
        """Behavior-aware fine-tuning of an RQ-VAE (MMQ Fig. 4): the soft index of each level's residual over that
        level's codebook, with the quantizer's own distance (so the hard ids are ``encode``'s); the residual moves
        on by the looked-up code, whose gradient reaches the earlier levels' codebooks too. ``losses``: the
        reconstruction error (straight-through, as in training) and a zero ``aux`` (no modality decoders)."""
        q = self.quantizer
        z = q.normalize(self.encoder(x))
        residual, total, inds, codes = z, torch.zeros_like(z), [], []
        for level in range(q.config.L):
            index = soft_index(residual, q.codebooks[level], tau, q.config.distance)
            picked = index.ind @ q.codebooks[level]
            residual, total = residual - picked, total + picked
            inds.append(index.ind)
            codes.append(index.hard)
        recon = self.decoder(z + (total - z).detach())
        return SoftCodes(torch.stack(inds, 1), torch.stack(codes, 1),
                         {"recon": ((x - recon) ** 2).mean(), "aux": recon.new_zeros(())})

    def _reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.decode(self._encode(x)))

    def _latent(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


def forward_group(models: list[RQVAE], xs: list[torch.Tensor], weights: torch.Tensor | None = None
                  ) -> list[RQVAEOutput]:
    """The forward passes of several RQ-VAEs on batches of one size (``xs[g]`` through ``models[g]``, e.g. one
    per modality of the same items), with the same per-item ``weights``: each model's own encoder and decoder,
    and their quantizers and regularizers in one batched pass (:func:`~workbench.tokenizers.quantizer.quantize_group`).
    Same results as ``[m(x, weights) for m, x in zip(models, xs)]``; models whose quantizer or regularizer
    settings differ from the first one's are run one by one."""
    if not models or len(models) != len(xs):
        raise ValueError(f"forward_group needs one batch per model, got {len(models)} models and {len(xs)} batches")
    if len(models) > 1 and (any(m._regularizer_settings() != models[0]._regularizer_settings() for m in models)
                            or any(len(x) != len(xs[0]) for x in xs)):
        return [forward_group([m], [x], weights)[0] for m, x in zip(models, xs)]
    c = models[0].config
    zs = [m.encoder(x) for m, x in zip(models, xs)]
    qs = quantize_group([m.quantizer for m in models], zs)
    outs = []
    for m, x, q in zip(models, xs, qs):
        recon = m.decoder(q.quantized)
        per_item = {"recon": ((x - recon) ** 2).mean(-1), **q.losses}
        outs.append((recon, {name: weighted_mean(value, weights) for name, value in per_item.items()}))
    if c.sparsity_weight or c.diversity_weight:
        probs = _level_probabilities(models, zs, qs)  # (G, L, B, K)
        # averaged over levels (MoToRec eq. 5 per level)
        terms = {}
        if c.sparsity_weight:
            # MoToRec eq. 11 weights each item's whole eq. 6 loss by w_i: the batch term gamma * L_sparse enters
            # every item's loss, so it is scaled by the batch's mean weight
            scale = c.sparsity_weight * (weights.mean() if weights is not None else 1.0)
            terms["sparsity"] = scale * sparsity_kl(probs, c.sparsity_rho).mean(-1)
        if c.diversity_weight:
            terms["diversity"] = c.diversity_weight * diversity_loss(probs).mean(-1)
        terms = {name: split_group(value) for name, value in terms.items()}
        for g, (_, losses) in enumerate(outs):
            losses.update({name: value[g] for name, value in terms.items()})
    totals = [torch.stack(list(losses.values())).sum() for _, losses in outs]
    # one host read for the whole group; under torch.distributed the engine's loss check (summed over the
    # processes) stops a diverging run instead, since an error raised by one process alone would hang the others
    finite = dist.is_distributed() or (torch.isfinite(totals[0]) if len(totals) == 1
                                       else torch.isfinite(torch.stack(totals)).all())
    if not finite:
        bad = next(g for g, t in enumerate(totals) if not torch.isfinite(t))
        raise FloatingPointError(f"RQ-VAE loss is {totals[bad].item()} "
                                 f"({ {k: float(v) for k, v in outs[bad][1].items()} }): training diverged; "
                                 "lower the learning rate")
    return [RQVAEOutput(q.codes, recon, z, q.quantized, losses, total, q.residuals)
            for q, z, (recon, losses), total in zip(qs, zs, outs, totals)]


def _level_probabilities(models: list[RQVAE], zs: list[torch.Tensor], qs: list) -> torch.Tensor:
    """Soft assignment ``(G, L, B, K)`` of each level's residual ``z - sum_{l' < l} sg(q_l')`` (differentiable in
    the encoders and the codebooks), for every model of a group at once."""
    books = stack_group([m.quantizer.codebooks for m in models])  # (G, L, K, D)
    G, L, K, D = books.shape
    codes = stack_group([q.codes for q in qs]).transpose(1, 2)  # (G, L, B)
    levels = torch.arange(L, device=codes.device)[:, None]
    chosen = (books.detach()[0, levels, codes[0]].unsqueeze(0) if G == 1 else
              books.detach()[torch.arange(G, device=codes.device)[:, None, None], levels, codes])  # (G, L, B, D)
    residuals = stack_group(zs).unsqueeze(1) - (chosen.cumsum(1) - chosen)
    B = residuals.shape[2]
    return soft_assignment(residuals.reshape(G * L, B, D), books.reshape(G * L, K, D),
                           models[0].config.temperature).view(G, L, B, K)
