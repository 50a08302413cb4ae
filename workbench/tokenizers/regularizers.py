"""Composable tokenizer loss terms, each a small function of named inputs.

* :func:`soft_assignment`: differentiable code probabilities ``softmax(-||r - c_j||^2 / T)`` per level.
* :func:`sparsity_kl` (MoToRec eq. 5): ``sum_j KL(rho || rho_hat_j)`` between Bernoulli(rho) and the batch
  activation probability ``rho_hat_j`` = mean over the batch of the soft assignment to code ``j``. Because the
  ``rho_hat_j`` of one level sum to one and the KL is convex in ``rho_hat_j``, its minimum over a level is the
  uniform usage ``rho_hat_j = 1/K`` whatever ``rho``: in practice it spreads usage (fights collapse), while the
  temperature ``T`` sets how sharp each item's own assignment is. We implement the equation as written and
  report this in notebook 01.
* :func:`diversity_loss` (CEMG's ``L_div``, after wav2vec 2.0): ``1 - exp(H(p_bar)) / K`` with ``p_bar`` the batch
  mean of the soft assignment; 0 for perfectly even usage, ``1 - 1/K`` for total collapse.
* :func:`orthogonal_loss` (MMQ eq. 11-12): ``||V_n V_n^T - I||_F^2`` over the flattened, row-normalised weights
  of a group of experts.
* :func:`weighted_mean` applies per-item weights (MoToRec's ``w_i``, eq. 2).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def soft_assignment(residual: torch.Tensor, codebook: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``(B, K)`` probabilities of assigning each residual ``(B, D)`` to each code of ``codebook`` ``(K, D)``;
    batched over leading dimensions (``(L, B, D)`` residuals against ``(L, K, D)`` codebooks give ``(L, B, K)``)."""
    # -||r - c||^2 / T = (2 r.c - ||c||^2 - ||r||^2) / T; ||r||^2 is the same for every code of a row, and a
    # softmax is unchanged by a per-row constant (value and gradient), so it is left out
    c2 = (codebook * codebook).sum(-1).unsqueeze(-2)
    scale = {"beta": -1 / temperature, "alpha": 2 / temperature}
    if residual.dim() == codebook.dim() == 2:
        logits = torch.addmm(c2, residual, codebook.T, **scale)
    elif residual.dim() == codebook.dim() == 3:
        logits = torch.baddbmm(c2, residual, codebook.transpose(-1, -2), **scale)
    else:
        logits = (2 * residual @ codebook.transpose(-1, -2) - c2) / temperature
    return F.softmax(logits, dim=-1)


def sparsity_kl(probs: torch.Tensor, rho: float, eps: float = 1e-8) -> torch.Tensor:
    """MoToRec eq. 5: ``sum_j KL(rho || rho_hat_j)`` with ``rho_hat`` the batch mean of ``probs`` ``(B, K)``;
    ``(..., B, K)`` gives one value per leading index (e.g. per level)."""
    if not 0 < rho < 1:
        raise ValueError(f"rho must be in (0, 1), got {rho}")
    rho_hat = probs.mean(-2).clamp(eps, 1 - eps)
    # rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat)), the constant terms taken out of the sum
    const = rho * math.log(rho) + (1 - rho) * math.log(1 - rho)
    cross = torch.add(torch.log1p(-rho_hat), torch.log(rho_hat), alpha=rho / (1 - rho)).sum(-1)
    return const * probs.shape[-1] - (1 - rho) * cross


def diversity_loss(probs: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """CEMG ``L_div``: ``1 - perplexity(p_bar) / K`` for soft assignments ``probs`` ``(B, K)`` (``(..., B, K)``:
    one value per leading index)."""
    p_bar = probs.mean(-2)
    entropy = -(p_bar * torch.log(p_bar + eps)).sum(-1)
    return 1 - torch.exp(entropy) / probs.shape[-1]


def orthogonal_loss(weights: list[torch.Tensor]) -> torch.Tensor:
    """MMQ eq. 11: ``||V_n V_n^T - I||_F^2``, ``V_n`` = the experts' flattened weights, rows normalised.
    Orthonormal experts give 0; identical experts give ``N (N - 1)``."""
    V = F.normalize(torch.stack([w.reshape(-1) for w in weights]), dim=-1)  # (N, d^2)
    gram = V @ V.T
    return ((gram - torch.eye(len(weights), device=gram.device, dtype=gram.dtype)) ** 2).sum()


def weighted_mean(per_item: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``per_item`` ``(B,)`` losses, each multiplied by its weight ``(B,)`` when given (MoToRec w_i)."""
    if weights is None:
        return per_item.mean()
    return (weights * per_item).mean()
