"""From a fitted residual tokenizer to the generator's item ids: encode, count collisions, make them unique.

Two ways to give every item its own code tuple (``collisions``):

* ``"reassign"`` (LETTER's way, the default): in each group of items that share a prefix, the item nearest to a
  collided tuple keeps it and the others move to free last-level codes, by a balanced optimal-transport preference
  over their distance to each code (:func:`~workbench.tokenizers.semantic_ids.reassign_last_level`). The id
  length stays ``M``; it fails when more items share a prefix than the last level has codes.
* ``"level"`` (TIGER's way): an extra level numbers the items sharing a tuple (``0, 1, ...``), so the ids grow
  to ``M + 1`` and the extra level has as many codes as the largest collided group.

:func:`collaborative_embeddings` trains the project's LightGCN (CEMG) or SASRec (LETTER) on the training
sequences and returns their item embeddings.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ...tokenizers.semantic_ids import add_dedup_level, collision_report, reassign_last_level

COLLISIONS = ("reassign", "level")


class ItemCodes(NamedTuple):
    """``codes`` ``(n_items, M')`` unique tuples and the codebook ``sizes`` of their levels; ``raw`` ``(n_items,
    M)`` the tokenizer's codes before collision handling; ``report``: collisions before and after, the share of
    items whose tuple changed, and the handling used."""

    codes: np.ndarray
    sizes: list[int]
    raw: np.ndarray
    report: dict


@torch.no_grad()
def last_level_cost(tokenizer, X: np.ndarray) -> np.ndarray:
    """``(n, K)`` the squared distance of each item's last residual to every code of the last level: the last
    level of a residual tokenizer (RQ-VAE, LETTER), the last expert of an MMQ tokenizer (unit latent against unit
    codes with its cosine codebook), the last part of a modality-separated tokenizer; for RQ-KMeans and OPQ the
    squared reconstruction error with the last code replaced by each code."""
    from ...tokenizers.mmq import MMQTokenizer
    from ...tokenizers.modalities import ModalitySeparated

    if isinstance(tokenizer, ModalitySeparated):
        part, cols = list(tokenizer.parts.values())[-1]
        return last_level_cost(part, np.asarray(X)[:, cols])
    if isinstance(tokenizer, MMQTokenizer):
        was = tokenizer.training
        tokenizer.eval()
        device = next(tokenizer.parameters()).device
        q = tokenizer.quantizers[-1]
        parts = []
        for s in range(0, len(X), 4096):
            latents, _ = tokenizer._experts(torch.as_tensor(X[s:s + 4096], dtype=torch.float32, device=device))
            book = q.codebooks[0]
            if q.config.distance == "cosine":
                book = torch.nn.functional.normalize(book, dim=-1)
            parts.append((torch.cdist(latents[-1], book) ** 2).cpu())
        tokenizer.train(was)
        return torch.cat(parts).numpy()
    if not hasattr(tokenizer, "quantizer") and hasattr(tokenizer, "decode"):  # k-means tokenizers: RQ-KMeans, OPQ
        return _decode_cost(tokenizer, np.asarray(X, dtype=np.float32))
    z = torch.as_tensor(tokenizer.latents(X))
    q = tokenizer.quantizer
    z = q.normalize(z.to(q.codebooks.device))
    codes = q.encode(z)
    residual = z - q.decode(codes[:, :-1]) if codes.shape[1] > 1 else z
    return (torch.cdist(residual, q.codebooks[-1]) ** 2).cpu().numpy()


def _decode_cost(tokenizer, X: np.ndarray) -> np.ndarray:
    """``(n, K)`` the squared reconstruction error of each item with its last code replaced by each code (for
    tokenizers that decode codes to features without a latent quantizer)."""
    codes = tokenizer.encode(X)
    out = np.empty((len(X), tokenizer.K), dtype=np.float32)
    for k in range(tokenizer.K):  # a loop over the K codes, each a vectorised decode of the whole catalogue
        codes[:, -1] = k
        out[:, k] = ((X - tokenizer.decode(codes)) ** 2).sum(1)
    return out


def resolve_collisions(raw: np.ndarray, K: int, method: str = "reassign", cost: np.ndarray | None = None
                       ) -> tuple[np.ndarray, list[int]]:
    """Unique tuples from ``raw`` ``(n, M)`` codes of ``K`` per level (module doc); returns ``(codes, sizes)``."""
    if method not in COLLISIONS:
        raise ValueError(f"collisions must be one of {COLLISIONS}, got {method!r}")
    raw = np.asarray(raw, dtype=np.int64)
    if method == "level":
        codes = add_dedup_level(raw)
        return codes, [K] * raw.shape[1] + [int(codes[:, -1].max()) + 1]
    if cost is None:
        raise ValueError("collisions='reassign' needs the last-level cost (last_level_cost)")
    return reassign_last_level(raw, cost), [K] * raw.shape[1]


def item_codes(tokenizer, X: np.ndarray, collisions: str = "reassign") -> ItemCodes:
    """Encode ``X`` with a fitted tokenizer (RQ-VAE, LETTER, MMQ, modality-separated; any tokenizer with
    ``collisions="level"``) and make the tuples unique."""
    raw = tokenizer.encode(X)
    cost = last_level_cost(tokenizer, X) if collisions == "reassign" else None
    codes, sizes = resolve_collisions(raw, tokenizer.K, collisions, cost)
    before, after = collision_report(raw), collision_report(codes)
    changed = float((codes[:, :raw.shape[1]] != raw).any(1).mean())
    report = {"collisions": collisions, "collision_rate_before": before["collision_rate"],
              "max_items_per_id_before": before["max_items_per_id"], "collision_rate_after": after["collision_rate"],
              "changed_items": changed, "id_length": codes.shape[1]}
    return ItemCodes(codes, sizes, raw, report)


def collaborative_embeddings(data, model: str = "lightgcn", dim: int = 64, epochs: int = 50, seed: int = 0,
                             progress: bool = False) -> np.ndarray:
    """Item embeddings ``(n_items, dim)`` learned from ``data``'s training sequences only: LightGCN on the
    training interactions (CEMG), or SASRec's item table (LETTER); early stopping on the validation targets."""
    from ..base import make_model

    if model == "lightgcn":
        ds = data.as_dataset()
        lgcn = make_model("lightgcn", dim=dim).fit(ds, epochs=epochs, seed=seed, progress=progress, patience=10)
        return lgcn.final_embeddings()[1].astype(np.float32)
    if model == "sasrec":
        sas = make_model("sasrec", dim=dim).fit(data, epochs=epochs, seed=seed, progress=progress)
        return sas.item_emb.weight[1:].detach().cpu().numpy().astype(np.float32)
    raise ValueError(f"model must be 'lightgcn' or 'sasrec', got {model!r}")
