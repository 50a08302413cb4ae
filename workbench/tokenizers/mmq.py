"""The MMQ tokenizer (MMQ section 3.2): modality-shared and modality-specific quantizer experts.

For modalities ``m`` with features ``e_m`` (the paper's text and vision; here any set)::

    z_s,i = E_s,i([e_1, ..., e_M])                  i = 1..N_s        (eq. 2)
    z_m,i = E_m,i(e_m)                              i = 1..N_m        (eq. 3)
    g_m   = softmax(MLP_m(e_m) + b_m)                                 (eq. 5-6)
    z     = sum_i z_s,i + sum_m sum_i g_m,i z_m,i                     (eq. 4)
    c_e   = argmax_j cos(z_e, C_e[j])  for every expert e             (eq. 7, one codebook per expert)
    z_q   = sum_i q_s,i + sum_m sum_i g_m,i q_m,i                     (eq. 8)
    L_recon = ||e - dec(z + sg(z_q - z))||^2                           (eq. 9)
    L_aux   = sum_m ||e_m - dec_m(sum_i (z_m,i + sg(q_m,i - z_m,i)))||^2   (eq. 10)
    L_ortho = ortho(shared experts) + sum_m ortho(experts of m)        (eq. 11-13, first-layer weights)
    L = alpha L_recon + beta L_aux + gamma L_ortho (+ the experts' VQ codebook and commitment terms)   (eq. 14)

The semantic id is the tuple of all experts' codes (length ``N_s + sum_m N_m``), unordered.
Our readings where the paper is silent: experts are two-layer MLPs and the orthogonality is taken over their
first-layer weights (eq. 11 names one ``d x d`` matrix per expert); each expert's latent is L2-normalised
before its cosine lookup and the fused ``z`` of eq. 4 and 9 is built from these unit latents (with raw latents
their norms drifted far from the codes and training diverged); codebooks learn by the usual VQ codebook and
commitment losses; squared errors are averaged over dimensions. ``distance="l2"`` swaps the cosine codebooks for
L2 ones (nearest code by Euclidean distance, latents not normalised): MMQ Table 2's "w/o cosine quantizer".
Behavior-aware fine-tuning (section 3.3) reads the experts through :meth:`MMQTokenizer.soft_codes`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from ..core.config import resolve_config
from .modalities import modality_slices
from .quantizer import QuantizerConfig, ResidualQuantizer, quantize_group, soft_index
from .regularizers import orthogonal_loss, weighted_mean
from ..core import distributed as dist
from ..core.layers import hidden_sizes, mlp
from .base import SoftCodes, TokenizerModule


@dataclass(frozen=True)
class MMQConfig:
    """MMQ tokenizer settings; defaults follow the paper (N_s = N_t = N_v = 2, alpha 12, beta 10, gamma 0.005)."""

    D: int = 64                 # latent size of every expert
    K: int = 256                # codes per expert codebook (the paper: 100 on Amazon, 3,000 industrial)
    n_shared: int = 2
    n_specific: int = 2         # experts per modality
    hidden: tuple[int, ...] = (256,)  # hidden layer sizes of every expert, gate and decoder MLP
    alpha: float = 12.0
    beta: float = 10.0
    gamma: float = 0.005
    commitment: float = 0.25
    dead_code_threshold: float = 0.0
    distance: str = "cosine"    # eq. 7's cosine codebooks; "l2" is Table 2's "w/o cosine quantizer"

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", hidden_sizes(self.hidden, "MMQConfig"))
        if self.distance not in ("cosine", "l2"):
            raise ValueError(f"MMQConfig.distance must be 'cosine' or 'l2', got {self.distance!r}")


class MMQOutput(NamedTuple):
    """codes ``(B, N_s + sum N_m)``; reconstruction ``(B, F)``; fused latent ``z`` and quantized ``z_q``
    ``(B, D)``; gates: modality -> ``(B, N_m)``; losses: name -> scalar; total: scalar; residuals ``(E, B, D)``:
    each expert's (detached) quantizer input, for the quantizers' state updates."""

    codes: torch.Tensor
    reconstruction: torch.Tensor
    latent: torch.Tensor
    quantized: torch.Tensor
    gates: dict[str, torch.Tensor]
    losses: dict[str, torch.Tensor]
    total: torch.Tensor
    residuals: torch.Tensor


class MMQTokenizer(TokenizerModule):
    """Shared and specific experts over modalities ``modality_dims`` (name -> feature size, in the column order
    of the concatenated input)."""

    def __init__(self, modality_dims: dict[str, int], config: MMQConfig | None = None, **options):
        super().__init__()
        self.config = c = resolve_config(MMQConfig, config, options)
        if not modality_dims:
            raise ValueError("MMQTokenizer needs at least one modality")
        self.modality_dims = dict(modality_dims)
        self.slices = modality_slices(self.modality_dims)
        total = self.input_dim = sum(self.modality_dims.values())
        self.shared = nn.ModuleList([mlp([total, *c.hidden, c.D]) for _ in range(c.n_shared)])
        self.specific = nn.ModuleDict({m: nn.ModuleList([mlp([d, *c.hidden, c.D]) for _ in range(c.n_specific)])
                                       for m, d in self.modality_dims.items()})
        self.gates = nn.ModuleDict({m: mlp([d, *c.hidden, c.n_specific]) for m, d in self.modality_dims.items()})
        qcfg = QuantizerConfig(D=c.D, L=1, K=c.K, distance=c.distance, beta=c.commitment,
                               dead_code_threshold=c.dead_code_threshold)
        self.quantizers = nn.ModuleList([ResidualQuantizer(qcfg) for _ in range(self.n_experts)])
        self.decoder = mlp([c.D, *reversed(c.hidden), total])
        self.aux_decoders = nn.ModuleDict({m: mlp([c.D, *reversed(c.hidden), d]) for m, d in self.modality_dims.items()})

    @property
    def n_experts(self) -> int:
        return self.config.n_shared + self.config.n_specific * len(self.modality_dims)

    @property
    def K(self) -> int:
        return self.config.K

    @property
    def L(self) -> int:
        return self.n_experts

    def _experts(self, x: torch.Tensor) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """Expert latents in code order (shared, then each modality's) ``[(B, D)]``, as their quantizers see them
        (unit length with cosine codebooks), and gates ``(B, N_m)``."""
        latents = [expert(x) for expert in self.shared]
        gates = {}
        for m, experts in self.specific.items():
            e_m = x[:, self.slices[m]]
            latents += [expert(e_m) for expert in experts]
            gates[m] = torch.softmax(self.gates[m](e_m), dim=-1)  # eq. 5-6 (the last layer's bias is b_m)
        return [q.normalize(z) for q, z in zip(self.quantizers, latents)], gates

    def expert_latents(self, x: torch.Tensor) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """Every expert's latent as its quantizer sees it ``[(B, D)]`` (shared first, then each modality's) and
        each modality's gates ``(B, N_m)``, for a feature batch ``x`` ``(B, F)``."""
        return self._experts(x)

    def _fuse(self, parts: list[torch.Tensor], gates: dict[str, torch.Tensor]) -> torch.Tensor:
        """eq. 4 / eq. 8: shared parts summed, specific parts weighted by their modality's gates."""
        n_s, n_m = self.config.n_shared, self.config.n_specific
        fused = torch.stack(parts[:n_s]).sum(0) if n_s else torch.zeros_like(parts[0])
        for k, m in enumerate(self.specific):
            block = torch.stack(parts[n_s + k * n_m:n_s + (k + 1) * n_m], dim=1)  # (B, N_m, D)
            fused = fused + (gates[m][..., None] * block).sum(1)
        return fused

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> MMQOutput:
        """``x`` ``(B, F)``: the modalities concatenated in ``modality_dims`` order."""
        c = self.config
        latents, gates = self._experts(x)
        outs = quantize_group(list(self.quantizers), latents)  # every expert's quantizer in one batched pass
        codes = torch.cat([o.codes for o in outs], dim=1)
        chosen = [o.quantized for o in outs]  # straight-through per expert: z + sg(q - z)
        z, z_q, recon, recon_err, aux = self._reconstruction_errors(x, latents, chosen, gates)
        per_item = {"recon": c.alpha * recon_err, "aux": c.beta * aux}
        per_item["commitment"] = torch.stack([o.losses["commitment"] for o in outs]).sum(0)
        per_item["codebook"] = torch.stack([o.losses["codebook"] for o in outs]).sum(0)
        losses = {name: weighted_mean(v, weights) for name, v in per_item.items()}
        losses["ortho"] = c.gamma * self.orthogonal_penalty()
        total = torch.stack(list(losses.values())).sum()
        if not dist.is_distributed() and not torch.isfinite(total):  # (see rqvae.forward_group)
            raise FloatingPointError(f"MMQ loss is {total.item()}: training diverged; lower the learning rate")
        return MMQOutput(codes, recon, z, z_q, gates, losses, total, torch.cat([o.residuals for o in outs]))

    def _reconstruction_errors(self, x: torch.Tensor, latents: list[torch.Tensor], chosen: list[torch.Tensor],
                               gates: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The fused latent and quantized vectors ``(B, D)`` (eq. 4, 8), the reconstruction ``(B, F)`` and the
        per-item errors of eq. 9 and eq. 10 ``(B,)`` from the experts'
        latents and their chosen codes (straight-through values ``z + sg(q - z)``)."""
        c = self.config
        z = self._fuse(latents, gates)
        z_q = self._fuse(chosen, gates)  # forward value: the chosen codes (eq. 8)
        recon = self.decoder(z + (z_q - z).detach())  # eq. 9
        aux = torch.zeros(len(x), device=x.device)
        for k, m in enumerate(self.specific):  # eq. 10
            part = torch.stack(chosen[c.n_shared + k * c.n_specific:c.n_shared + (k + 1) * c.n_specific]).sum(0)
            aux = aux + ((x[:, self.slices[m]] - self.aux_decoders[m](part)) ** 2).mean(-1)
        return z, z_q, recon, ((x - recon) ** 2).mean(-1), aux

    def soft_codes(self, x: torch.Tensor, tau: float = 1.0) -> SoftCodes:
        """Behavior-aware fine-tuning (eq. 15-18): every expert's soft index over its whole codebook, all experts
        in one batched lookup; ``losses`` are eq. 9 and eq. 10 unweighted (eq. 19 weighs them)."""
        latents, gates = self._experts(x)
        books = torch.stack([q.codebooks[0] for q in self.quantizers])  # (E, K, D)
        index = soft_index(torch.stack(latents), books, tau, self.config.distance)  # (E, B, K)
        picked = index.ind @ books  # (E, B, D): the chosen codes forward, the soft mixture's gradient backward
        chosen = [z + (p - z).detach() for z, p in zip(latents, picked)]  # as in stage 1 (eq. 9-10)
        *_, recon_err, aux = self._reconstruction_errors(x, latents, chosen, gates)
        return SoftCodes(index.ind.transpose(0, 1), index.hard.T, {"recon": recon_err.mean(), "aux": aux.mean()})

    def orthogonal_penalty(self) -> torch.Tensor:
        """eq. 11-13 over the experts' first-layer weights (shared group + each modality's group)."""
        groups = [list(self.shared)] + [list(experts) for experts in self.specific.values()]
        terms = [orthogonal_loss([e[0].weight for e in g]) for g in groups if len(g) > 1]
        return torch.stack(terms).sum() if terms else self.decoder[0].weight.new_zeros(())

    # ------------------------------------------------------------------------------- tokenizer contract
    @torch.no_grad()
    def init_codebooks(self, x: torch.Tensor, seed: int = 0, batch_size: int | None = None) -> None:
        """k-means initialisation of every expert's codebook from its latents on a sample ``x``."""
        was_training = self.training
        self.eval()
        latents, _ = self._experts(x)
        for k, (q, z) in enumerate(zip(self.quantizers, latents)):
            if not bool(q.initialized):
                q.init_codebooks(z, seed=seed + k, batch_size=batch_size)
        self.train(was_training)

    def update_state(self, out: MMQOutput, shared: bool = False) -> int:
        return sum(sum(q.update(out.codes[:, e:e + 1], out.residuals[e:e + 1], shared))
                   for e, q in enumerate(self.quantizers))

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        latents, _ = self._experts(x)
        return torch.cat([q.encode(z) for q, z in zip(self.quantizers, latents)], dim=1)

    def _reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder output from the quantized fused vector ``z_q`` (eq. 8)."""
        latents, gates = self._experts(x)
        parts = [q.decode(q.encode(z)) for q, z in zip(self.quantizers, latents)]
        return self.decoder(self._fuse(parts, gates))

    def _latent(self, x: torch.Tensor) -> torch.Tensor:
        latents, gates = self._experts(x)
        return self._fuse(latents, gates)
