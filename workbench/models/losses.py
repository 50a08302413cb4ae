"""Loss terms shared by the graph recommenders: BPR, the L2 embedding penalty, InfoNCE and SimGCL's views."""
from __future__ import annotations

import torch
import torch.nn.functional as F


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


def perturb(e: torch.Tensor, eps: float) -> torch.Tensor:
    """SimGCL's augmentation: ``e + eps * sign(e) * normalize(U(0, 1))`` (You et al. / Yu et al. 2022)."""
    return torch.addcmul(e, torch.sign(e), torch.nn.functional.normalize(torch.rand_like(e), dim=-1), value=eps)
