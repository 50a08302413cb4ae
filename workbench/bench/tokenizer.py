"""``python -m workbench.bench tokenizer``: our RQ-VAE against lucidrains' ``vector-quantize-pytorch``."""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import torch

from ..core.runtime import runtime_facts


def _feature_sets(rng: np.random.Generator, names: list[str] | None, n: int, dim: int) -> dict[str, np.ndarray]:
    """The benchmark's feature sets (only those in ``names``, all if ``None``)."""
    from ..tokenizers.modalities import fuse_modalities
    from ..data.synthetic import load_synthetic

    def clustered():
        centres = rng.normal(0, 1, (64, dim)).astype(np.float32)
        return centres[rng.integers(0, 64, n)] + 0.3 * rng.normal(0, 1, (n, dim)).astype(np.float32)

    builders = {
        "synthetic_default": lambda: fuse_modalities(load_synthetic("default").features, ["image", "text"]),
        f"random_{n}x{dim}": lambda: rng.normal(0, 1, (n, dim)).astype(np.float32),
        f"clustered_{n}x{dim}": clustered,
    }
    unknown = set(names or []) - set(builders)
    if unknown:
        raise ValueError(f"unknown feature set(s) {sorted(unknown)}; expected {sorted(builders)}")
    return {name: build() for name, build in builders.items() if names is None or name in names}


def _their_rqvae(F: int, D: int, L: int, K: int):
    """The same MLP encoder/decoder around lucidrains' ResidualVQ (their defaults + the ones named above),
    behind the library's tokenizer contract."""
    from vector_quantize_pytorch import ResidualVQ

    from ..core.layers import mlp
    from ..tokenizers.base import TokenizerModule

    class TheirRQVAE(TokenizerModule):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = mlp([F, 512, D]), mlp([D, 512, F])
            self.rvq = ResidualVQ(dim=D, num_quantizers=L, codebook_size=K, kmeans_init=True,
                                  threshold_ema_dead_code=2, rotation_trick=True)
            self.K, self.L = K, L

        def forward(self, x, weights=None):
            quantized, codes, commit = self.rvq(self.encoder(x)[:, None, :])
            recon = self.decoder(quantized[:, 0])
            losses = {"recon": ((x - recon) ** 2).mean(), "commitment": commit.sum()}
            return _Out(torch.stack(list(losses.values())).sum(), losses, codes[:, 0])

        def init_codebooks(self, x, seed=0, batch_size=None):
            """Their k-means initialisation runs inside the first training forward pass."""

        def update_state(self, out, shared=False):
            """Their EMA and dead-code updates run inside their forward pass."""
            return 0

        def _encode(self, x):
            return self.rvq(self.encoder(x)[:, None, :])[1][:, 0]

        def _reconstruct(self, x):
            return self.decoder(self.rvq(self.encoder(x)[:, None, :])[0][:, 0])

        def _latent(self, x):
            return self.encoder(x)

    return TheirRQVAE()


class _Out(NamedTuple):
    total: torch.Tensor
    losses: dict
    codes: torch.Tensor


def _train_and_score(model, X: np.ndarray, epochs: int, batch_size: int, seed: int, device: torch.device) -> dict:
    """Train with the library's loop, k-means on one batch of items as lucidrains' does on its first batch.
    Throughput is that of the fastest epoch after the first (the first holds the one-off k-means
    initialisation; the minimum filters out interference on a shared machine)."""
    history = model.fit(X, init_sample=batch_size, epochs=epochs, batch_size=batch_size, seed=seed,
                        eval_every=epochs, progress=False, device=str(device)).history_
    last = history.iloc[-1]
    levels = range(1, model.L + 1)
    return {
        "items_per_s": len(X) / history["seconds"].iloc[1:].min(),
        "recon_mse": float(last["recon_mse"]),
        "collision_rate": float(last["collision_rate"]),
        "utilization": [round(float(last[f"utilization_l{l}"]), 4) for l in levels],
        "entropy_bits": [round(float(last[f"entropy_l{l}"]), 4) for l in levels],
    }


def _own_torch_rng(fn):
    """Run ``fn`` inside a forked torch random state: the benchmark seeds torch's global generator (lucidrains'
    quantizer draws from it) without changing the caller's."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.random.fork_rng(devices=[]):
            return fn(*args, **kwargs)
    return wrapper


@_own_torch_rng
def _quantizer_only(D: int, L: int, K: int, epochs: int, batch_size: int, seed: int, n: int = 7050) -> dict:
    """Both residual quantizers alone (no encoder) on the same fixed clustered latents ``(n, D)``: EMA updates
    for ``epochs`` passes, then usage of the final codes. Separates the quantizer from the encoder dynamics."""
    from vector_quantize_pytorch import ResidualVQ

    from ..tokenizers.health import collision_rate, level_health
    from ..tokenizers.quantizer import ResidualQuantizer

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (64, D)).astype(np.float32)
    Z = torch.from_numpy(centres[rng.integers(0, 64, n)] + 0.3 * rng.normal(0, 1, (n, D)).astype(np.float32))
    torch.manual_seed(seed)
    theirs = ResidualVQ(dim=D, num_quantizers=L, codebook_size=K, kmeans_init=True, threshold_ema_dead_code=2,
                        rotation_trick=True)
    torch.manual_seed(seed)
    ours = ResidualQuantizer(D=D, L=L, K=K, estimator="rotation", ema=True, ema_decay=0.8, usage_decay=0.8,
                             dead_code_threshold=2.0, kmeans_seeding="random", kmeans_iters=10)
    ours.init_codebooks(Z, seed=seed, batch_size=batch_size)
    gen = torch.Generator().manual_seed(seed)
    theirs.train()
    ours.train()
    with torch.no_grad():
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen)
            for i in range(0, n, batch_size):
                batch = Z[order[i:i + batch_size]]
                theirs(batch[:, None, :])
                out = ours(batch)
                ours.update(out.codes, out.residuals)
        theirs.eval()
        codes = {"ours": ours.encode(Z).numpy(), "theirs": theirs(Z[:, None, :])[1][:, 0].numpy()}
    out = {"latents": f"clustered {n} x {D}"}
    for who, c in codes.items():
        levels = level_health(c, K)
        out[who] = {"collision_rate": collision_rate(c), "utilization": levels["utilization"].round(4).tolist(),
                    "entropy_bits": levels["entropy_bits"].round(4).tolist()}
    return out


@_own_torch_rng
def bench_tokenizer(epochs: int = 12, batch_size: int = 1024, D: int = 64, L: int = 4, K: int = 256,
                    seed: int = 0, device: str | None = None, repeats: int = 1, sets: list[str] | None = None,
                    n_items: int = 7050, dim: int = 4096) -> dict:
    """Ours vs lucidrains' ResidualVQ on three feature sets (see the module doc). Throughput excludes the first
    epoch (k-means initialisation). ``device``: ``cpu`` unless given (the issue's targets are CPU ones; pass
    ``cuda`` for the GPU figures); ``repeats`` is accepted for the command line and not used."""
    if epochs < 2:
        raise ValueError(f"epochs must be >= 2 (the first epoch is not timed), got {epochs}")
    from ..tokenizers.quantizer import QuantizerConfig
    from ..tokenizers.rqvae import RQVAE, RQVAEConfig

    dev = torch.device(device or "cpu")
    rng = np.random.default_rng(seed)
    feature_sets = _feature_sets(rng, sets, n_items, dim)
    result = {"benchmark": "tokenizer", "epochs": epochs, "batch_size": batch_size, "D": D, "L": L, "K": K,
              **runtime_facts(dev), "sets": {}}
    for name, X in feature_sets.items():
        F = X.shape[1]
        torch.manual_seed(seed)
        ours = RQVAE(F, RQVAEConfig(hidden=(512,), quantizer=QuantizerConfig(
            D=D, L=L, K=K, estimator="rotation", ema=True, ema_decay=0.8, usage_decay=0.8, dead_code_threshold=2.0,
            kmeans_seeding="random", kmeans_iters=10, beta=0.5)))  # theirs: commitment 1.0 (README: 0.25-1.0 tried)
        torch.manual_seed(seed)
        theirs = _their_rqvae(F, D, L, K)
        row = {"items": len(X), "features": F,
               "ours": _train_and_score(ours, X, epochs, batch_size, seed, dev),
               "theirs": _train_and_score(theirs, X, epochs, batch_size, seed, dev)}
        row["throughput_ratio"] = row["ours"]["items_per_s"] / row["theirs"]["items_per_s"]
        result["sets"][name] = row
    result["quantizer_only"] = _quantizer_only(D, L, K, epochs, batch_size, seed)
    return result


def summarize_tokenizer(runs: list[dict]) -> dict:
    """Across seeds, per feature set: each level's entropy (mean over seeds) of ours and theirs, the paired
    difference ours - theirs with its 95% t-interval, colliding items summed over the seeds, the mean
    reconstruction error and the range of the throughput ratio."""
    from ..evaluation.statistics import t_halfwidth

    out = {}
    for name in runs[0]["sets"]:
        sets = [r["sets"][name] for r in runs]
        ent = {who: np.array([s[who]["entropy_bits"] for s in sets]) for who in ("ours", "theirs")}
        diff = ent["ours"] - ent["theirs"]
        half = np.array([t_halfwidth(d) for d in diff.T])
        mean = diff.mean(0)
        out[name] = {
            "entropy_bits_ours": ent["ours"].mean(0).round(4).tolist(),
            "entropy_bits_theirs": ent["theirs"].mean(0).round(4).tolist(),
            "entropy_diff_bits": mean.round(4).tolist(),
            "entropy_diff_ci95": np.stack([mean - half, mean + half], 1).round(4).tolist(),
            **{f"colliding_items_{who}": int(sum(round(s[who]["collision_rate"] * s["items"]) for s in sets))
               for who in ("ours", "theirs")},
            **{f"recon_mse_{who}": float(np.mean([s[who]["recon_mse"] for s in sets])) for who in ("ours", "theirs")},
            "throughput_ratio_range": [min(s["throughput_ratio"] for s in sets),
                                       max(s["throughput_ratio"] for s in sets)],
        }
    return out
