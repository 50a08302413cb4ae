"""Benchmarks: ``python -m workbench.bench {eval,tokenizer,graph,baby} --json``.

``graph``: training seconds per epoch of LightGCN, FREEDOM and MoToRec and full-ranking evaluation seconds on a
synthetic graph of Baby's shape (19,445 users, 7,050 items, 160,792 interactions, 4,096-d image and 384-d text
features), batch 2048, 64-d embeddings. ``baby``: LightGCN and MF-BPR on the real Baby interactions in
``../shared/data`` (skipped when absent), L2 weight chosen on validation.

``graph-ablations``: milliseconds per training step of FREEDOM, MoToRec and MoToRec's Table-3 variants
(``motorec-wo-cl``, ...) on the same graph, the models taking turns, and what each component costs per step (the
full model's time minus the variant's).

``eval``: seconds for one full-ranking evaluation (Recall/NDCG@10,20) of Baby's shape: 19,445 users x 7,050
items, 64-d embeddings, ~120k masked training positives and ~20.5k test positives, at least one per
user (random, seeded).

``tokenizer``: our RQ-VAE against lucidrains' ``vector-quantize-pytorch`` ``ResidualVQ`` (a benchmark-only
dependency) with the same MLP encoder/decoder (F-512-64), ``L = 4`` levels of ``K = 256`` codes, batch 1024, and
their defaults on both sides (rotation trick, EMA codebooks with decay 0.8, k-means init on one batch seeded by
random samples with 10 iterations, dead-code threshold 2; the commitment weights differ: ours 0.5, theirs
1.0, see the README): training
throughput (items/s, fastest epoch after the first), reconstruction error, per-level utilization and entropy,
collision rate, on three feature sets: the default synthetic catalogue (image + text, standardised), random
7,050 x 4,096 features (Baby's image-feature shape) and clustered 7,050 x 4,096 features (64 Gaussian centres
plus noise). ``quantizer_only`` compares the two residual quantizers alone on the same fixed clustered latents.

``--seeds 0-9`` (or ``0,3,7``) runs a benchmark once per seed and prints ``{"runs": [...], "summary": ...}``;
the tokenizer summary holds, per feature set, the paired differences ours - theirs of each level's entropy
with 95% t-intervals, the colliding items summed over the seeds and the range of the throughput ratio; the
graph summary the range and mean of every timing and ratio.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch

from .metrics import dot_scores, evaluate_ranking
from .runtime import get_device


def _random_interactions(n_users: int, n_items: int, n: int, rng: np.random.Generator) -> sp.csr_matrix:
    flat = np.unique(rng.integers(0, n_users * n_items, size=n))
    mat = sp.csr_matrix((np.ones(len(flat), np.float32), (flat // n_items, flat % n_items)), shape=(n_users, n_items))
    return mat


def bench_eval(n_users: int = 19445, n_items: int = 7050, dim: int = 64, n_train: int = 120_000,
               n_test: int = 20_559, repeats: int = 3, device: str | None = None, seed: int = 0) -> dict:
    """Time :func:`evaluate_ranking` on random embeddings; returns a JSON-ready dict (best of ``repeats``)."""
    rng = np.random.default_rng(seed)
    dev = get_device(device)
    train = _random_interactions(n_users, n_items, n_train, rng)
    # every user gets one test item (so all 19,445 users are ranked), the rest at random, as in Baby's split
    one_each = sp.csr_matrix((np.ones(n_users, np.float32), (np.arange(n_users), rng.integers(0, n_items, n_users))),
                             shape=(n_users, n_items))
    test = one_each + _random_interactions(n_users, n_items, n_test - n_users, rng)
    test.data[:] = 1.0
    test = test - test.multiply(train)  # test positives never repeat a training positive
    test.eliminate_zeros()
    gen = torch.Generator().manual_seed(seed)
    user_emb = torch.randn(n_users, dim, generator=gen).to(dev)
    item_emb = torch.randn(n_items, dim, generator=gen).to(dev)
    score = dot_scores(user_emb, item_emb)
    times = []
    for _ in range(repeats + 1):  # first run warms up allocators and kernels
        if dev.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        report = evaluate_ranking(score, test, exclude=train, ks=(10, 20), metrics=("recall", "ndcg"), device=dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {
        "benchmark": "eval", "seconds": min(times[1:]), "seconds_all": times[1:],
        "users": n_users, "items": n_items, "dim": dim, "masked_train_positives": int(train.nnz),
        "test_positives": int(test.nnz), "evaluated_users": int(len(report.users)),
        "recall@20": report["recall@20"], "device": str(dev), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "machine": platform.machine(), "python": platform.python_version(),
    }


def _feature_sets(rng: np.random.Generator, names: list[str] | None, n: int, dim: int) -> dict[str, np.ndarray]:
    """The benchmark's feature sets (only those in ``names``, all if ``None``)."""
    from .modalities import fuse_modalities
    from .synthetic import load_synthetic

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

    from .rqvae import TokenizerModule, mlp

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

        def initialise(self, x, seed=0):
            """Their k-means initialisation runs inside the first training forward pass."""

        def codes_of(self, x):
            return self.rvq(self.encoder(x)[:, None, :])[1][:, 0]

        def reconstruction_of(self, x):
            return self.decoder(self.rvq(self.encoder(x)[:, None, :])[0][:, 0])

        def latent_of(self, x):
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
    from .training import fit_tokenizer

    history = fit_tokenizer(model, X, epochs=epochs, batch_size=batch_size, seed=seed, health_every=epochs,
                            progress=False, device=str(device), kmeans_sample=batch_size)
    last = history.iloc[-1]
    levels = range(1, model.L + 1)
    return {
        "items_per_s": len(X) / history["seconds"].iloc[1:].min(),
        "recon_mse": float(last["recon_mse"]),
        "collision_rate": float(last["collision_rate"]),
        "utilization": [round(float(last[f"utilization_l{l}"]), 4) for l in levels],
        "entropy_bits": [round(float(last[f"entropy_l{l}"]), 4) for l in levels],
    }


def _quantizer_only(D: int, L: int, K: int, epochs: int, batch_size: int, seed: int, n: int = 7050) -> dict:
    """Both residual quantizers alone (no encoder) on the same fixed clustered latents ``(n, D)``: EMA updates
    for ``epochs`` passes, then usage of the final codes. Separates the quantizer from the encoder dynamics."""
    from vector_quantize_pytorch import ResidualVQ

    from .health import collision_rate, level_health
    from .quantizers import ResidualQuantizer

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (64, D)).astype(np.float32)
    Z = torch.from_numpy(centres[rng.integers(0, 64, n)] + 0.3 * rng.normal(0, 1, (n, D)).astype(np.float32))
    torch.manual_seed(seed)
    theirs = ResidualVQ(dim=D, num_quantizers=L, codebook_size=K, kmeans_init=True, threshold_ema_dead_code=2,
                        rotation_trick=True)
    torch.manual_seed(seed)
    ours = ResidualQuantizer(D=D, L=L, K=K, estimator="rotation", ema=True, ema_decay=0.8, usage_decay=0.8,
                             dead_code_threshold=2.0, kmeans_seeding="random", kmeans_iters=10)
    ours.init_from_data(Z, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    theirs.train()
    ours.train()
    with torch.no_grad():
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen)
            for i in range(0, n, batch_size):
                batch = Z[order[i:i + batch_size]]
                theirs(batch[:, None, :])
                ours(batch)
        theirs.eval()
        codes = {"ours": ours.encode(Z).numpy(), "theirs": theirs(Z[:, None, :])[1][:, 0].numpy()}
    out = {"latents": f"clustered {n} x {D}"}
    for who, c in codes.items():
        levels = level_health(c, K)
        out[who] = {"collision_rate": collision_rate(c), "utilization": levels["utilization"].round(4).tolist(),
                    "entropy_bits": levels["entropy_bits"].round(4).tolist()}
    return out


def bench_tokenizer(epochs: int = 12, batch_size: int = 1024, D: int = 64, L: int = 4, K: int = 256,
                    seed: int = 0, device: str | None = None, repeats: int = 1, sets: list[str] | None = None,
                    n_items: int = 7050, dim: int = 4096) -> dict:
    """Ours vs lucidrains' ResidualVQ on three feature sets (see the module doc). Throughput excludes the first
    epoch (k-means initialisation). ``device``: ``cpu`` unless given (the issue's targets are CPU ones; pass
    ``cuda`` for the GPU figures); ``repeats`` is accepted for the command line and not used."""
    if epochs < 2:
        raise ValueError(f"epochs must be >= 2 (the first epoch is not timed), got {epochs}")
    from .quantizers import QuantizerConfig
    from .rqvae import RQVAE, RQVAEConfig

    dev = torch.device(device or "cpu")
    rng = np.random.default_rng(seed)
    feature_sets = _feature_sets(rng, sets, n_items, dim)
    result = {"benchmark": "tokenizer", "epochs": epochs, "batch_size": batch_size, "D": D, "L": L, "K": K,
              "device": str(dev), "torch_threads": torch.get_num_threads(), "sets": {}}
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


# -------------------------------------------------------------------------------------------- graph models
def baby_shaped_dataset(n_users: int = 19445, n_items: int = 7050, n_inter: int = 160_792, dims=(4096, 384),
                        seed: int = 0):
    """A synthetic graph of Baby's shape for timing: every user has >= 2 interactions, items follow a Zipf-like
    popularity, features are clustered Gaussians (64 centres) so the kNN graphs are meaningful; random 8:1:1
    split. Not for accuracy claims."""
    import pandas as pd

    from .dataset import RecDataset
    from .splits import random_split

    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    pop = rng.permutation(pop / pop.sum())
    users = np.concatenate([np.repeat(np.arange(n_users), 2), rng.integers(0, n_users, 3 * n_inter)])
    items = rng.choice(n_items, size=len(users), p=pop)
    flat = pd.unique(users.astype(np.int64) * n_items + items)[:n_inter]
    inter = pd.DataFrame({"user_id": flat // n_items, "item_id": flat % n_items, "rating": 1.0,
                          "timestamp": np.arange(len(flat))})
    centre = rng.integers(0, 64, n_items)
    feats = {}
    for name, d in zip(("image", "text"), dims):
        centres = rng.normal(0, 1, (64, d)).astype(np.float32)
        feats[name] = centres[centre] + 0.5 * rng.normal(0, 1, (n_items, d)).astype(np.float32)
    ds = RecDataset("baby-shaped-synthetic", inter, n_users, n_items, feats,
                    description="SYNTHETIC graph of Baby's shape (timing only)")
    return ds.with_split(random_split(ds.interactions, seed=seed))


def bench_graph(epochs: int = 3, batch_size: int = 2048, device: str | None = None, repeats: int = 3,
                models: tuple[str, ...] = ("lightgcn", "freedom", "freedom-mmrec", "motorec"), seed: int = 0) -> dict:
    """Training seconds per epoch (median of ``epochs`` epochs; MoToRec's tokenizer warm-up excluded and
    reported apart) and full-ranking test evaluation seconds (best of ``repeats``) on a Baby-shaped graph.
    ``freedom-mmrec`` is FREEDOM projecting every item's features at every step as MMRec's code does (the
    implementation the paper timed); ``freedom`` projects only the batch's items (same gradients); MoToRec's
    Table-3 variants are ``motorec-wo-cl`` and so on."""
    from .graph_training import fit_graph
    from .metrics import evaluate_split

    dev = get_device(device)
    t0 = time.perf_counter()
    ds = baby_shaped_dataset(seed=seed)
    out = {"benchmark": "graph", "users": ds.n_users, "items": ds.n_items, "interactions": len(ds.interactions),
           "train_interactions": int(ds.matrix("train").nnz), "batch_size": batch_size, "dim": 64,
           "epochs_timed": epochs, "build_seconds": time.perf_counter() - t0}
    for name in models:
        t1 = time.perf_counter()
        model = _graph_model(name, ds)
        out[f"{name}_setup_seconds"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        model.to_device(dev)
        model.prepare(np.random.default_rng(seed))  # MoToRec: tokenizer warm-up; others: nothing
        out[f"{name}_prepare_seconds"] = time.perf_counter() - t2
        model.prepare = lambda rng: None  # already prepared; fit_graph must not repeat it
        result = fit_graph(model, ds, epochs=epochs, batch_size=batch_size, patience=10 ** 6, device=str(dev),
                           progress=False, seed=seed)
        out[f"{name}_epoch_seconds"] = result.seconds_per_epoch
        out[f"{name}_epoch_seconds_all"] = result.history["seconds"].round(3).tolist()
        out[f"{name}_parameters"] = model.parameter_count()
        times = []
        for _ in range(repeats + 1):
            t3 = time.perf_counter()
            scorer = model.scorer()
            evaluate_split(ds, scorer, "test", ks=(10, 20), metrics=("recall", "ndcg"), device=dev)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t3)
        out[f"{name}_eval_seconds"] = min(times[1:])
    if "lightgcn" in models:
        out["eval_seconds"] = out["lightgcn_eval_seconds"]
        for name in models:
            if name != "lightgcn":
                out[f"{name}_over_lightgcn"] = out[f"{name}_epoch_seconds"] / out["lightgcn_epoch_seconds"]
    for ref in ("freedom", "freedom-mmrec"):
        if ref in models and "motorec" in models:
            out[f"motorec_over_{ref}"] = out["motorec_epoch_seconds"] / out[f"{ref}_epoch_seconds"]
    out.update({"device": str(dev), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                "machine": platform.machine(), "python": platform.python_version()})
    return out


def _ablation_slugs() -> dict[str, str]:
    """Benchmark names of MoToRec's Table-3 variants: ``"motorec-wo-cl"`` for ``"w/o CL"``, and so on."""
    from .motorec import ABLATIONS

    return {"motorec-" + name.lower().replace("w/o ", "wo-").replace(" ", "-"): name
            for name in ABLATIONS if name != "MoToRec"}


def _graph_model(name: str, ds, **options):
    """A graph benchmark's model by name: a registry model, ``freedom-mmrec`` (FREEDOM projecting every item at
    every step) or a MoToRec ablation (``motorec-wo-cl``, ...; see :func:`_ablation_slugs`); ``options`` override
    config fields."""
    from dataclasses import replace

    from .graph_models import make_model
    from .motorec import ablation_config

    if name == "freedom-mmrec":
        return make_model("freedom", ds, project_all=True, **options)
    slugs = _ablation_slugs()
    if name in slugs:
        return make_model("motorec", ds, config=replace(ablation_config(slugs[name]), **options))
    return make_model(name, ds, **options)


def bench_graph_ablations(device: str | None = None, repeats: int = 3, seed: int = 0, steps: int = 30) -> dict:
    """Milliseconds per training step (batch 2048, forward, backward and Adam) of FREEDOM, MoToRec and each of
    MoToRec's Table-3 variants on the Baby-shaped graph, and per component what the full model spends on it
    (``motorec-wo-X_saves_ms``: the full step minus the variant's). The models take turns, ``steps`` steps
    each, for ``repeats`` rounds, and each reports its median round: a shared machine's speed drifts by tens of
    percent within minutes, which would bias models timed one after the other. MoToRec's tokenizer warm-up is
    one epoch here (the state it leaves does not change the cost of a step)."""
    from .graph import sample_triplets

    dev = get_device(device)
    ds = baby_shaped_dataset(seed=seed)
    train = ds.matrix("train")
    n_steps = -(-train.nnz // 2048)
    rng = np.random.default_rng(seed)
    names = ("freedom", "motorec", *_ablation_slugs())
    runs = {}
    for name in names:
        torch.manual_seed(seed)
        model = _graph_model(name, ds, **({"tokenizer_warmup": 1} if name.startswith("motorec") else {}))
        model.to_device(dev)
        model.prepare(np.random.default_rng(seed))
        model.train()
        model.pre_epoch(rng, n_steps)
        optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3, fused=True)
        runs[name] = (model, optim)
    users, pos, neg = (torch.as_tensor(a, device=dev) for a in sample_triplets(train, rng))

    def step(model, optim, k):  # the k-th batch of one epoch's triplets (rounds past the epoch wrap around)
        k %= n_steps - 1  # full batches only
        sl = slice(k * 2048, (k + 1) * 2048)
        losses = model.loss(users[sl], pos[sl], neg[sl])
        optim.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optim.step()

    for model, optim in runs.values():  # one untimed step each (first-call allocations)
        step(model, optim, 0)
    times = {name: [] for name in names}
    for r in range(repeats):
        for name, (model, optim) in runs.items():
            t0 = time.perf_counter()
            for k in range(1 + r * steps, 1 + (r + 1) * steps):
                step(model, optim, k)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - t0) / steps * 1000)
    out = {"benchmark": "graph-ablations", "steps_per_round": steps, "rounds": repeats, "batch_size": 2048,
           **{f"{name}_step_ms": float(np.median(v)) for name, v in times.items()}}
    out["motorec_over_freedom"] = out["motorec_step_ms"] / out["freedom_step_ms"]
    for name in names[2:]:
        out[f"{name}_saves_ms"] = out["motorec_step_ms"] - out[f"{name}_step_ms"]
    out.update({"device": str(dev), "torch_threads": torch.get_num_threads(), "torch": torch.__version__})
    return out


def bench_baby(device: str | None = None, repeats: int = 1, seed: int = 0, epochs: int = 150,
               reg_weights: tuple[float, ...] = (1e-4, 1e-3), lr: float = 5e-3) -> dict:
    """LightGCN and MF-BPR on ``../shared/data/baby-interactions`` (random 8:1:1 split, seed 0), MMRec's protocol
    (Adam, batch 2048, 64-d, early stopping on valid Recall@20 with patience 20) except the learning rate:
    5e-3 with at most ``epochs`` epochs, so that a 2-core CPU finishes in minutes (MMRec uses 1e-3 and up to
    1,000 epochs). The L2 weight is chosen among ``reg_weights`` on validation Recall@20 only; the test
    R/N@10,20 of the chosen setting are reported; progress goes to stderr (``repeats`` is unused)."""
    from .graph_models import make_model
    from .graph_training import fit_graph
    from .loaders import load_mmrec
    from .paths import shared_data_dir
    from .splits import random_split

    folder = shared_data_dir() / "baby-interactions"
    if not folder.exists():
        return {"benchmark": "baby", "skipped": f"{folder} is absent"}
    ds = load_mmrec(folder)
    ds = ds.with_split(random_split(ds.interactions, seed=seed))
    out = {"benchmark": "baby", "users": ds.n_users, "items": ds.n_items, "interactions": len(ds.interactions),
           "split": f"random 8:1:1, seed {seed}", "lr": lr, "max_epochs": epochs}
    for name in ("lightgcn", "mf-bpr"):
        runs = {}
        for reg in reg_weights:
            t0 = time.perf_counter()
            torch.manual_seed(seed)
            model = make_model(name, ds, reg_weight=reg)
            res = fit_graph(model, ds, epochs=epochs, lr=lr, device=device, progress=False, seed=seed)
            runs[reg] = {"valid_recall@20": res.valid["recall@20"], "best_epoch": res.best_epoch,
                         "epochs_run": len(res.history),
                         "test": {k: res.test[k] for k in ("recall@10", "recall@20", "ndcg@10", "ndcg@20")},
                         "seconds": time.perf_counter() - t0}
            print(f"baby {name} reg_weight={reg}: {runs[reg]}", file=sys.stderr, flush=True)
        best = max(runs, key=lambda r: runs[r]["valid_recall@20"])
        out[name] = {"chosen_reg_weight": best, **runs[best], "grid": {str(k): v["valid_recall@20"] for k, v in runs.items()}}
    out.update({"device": str(get_device(device)), "torch": torch.__version__})
    return out


BENCHMARKS = {"eval": bench_eval, "tokenizer": bench_tokenizer, "graph": bench_graph,
              "graph-ablations": bench_graph_ablations, "baby": bench_baby}


def parse_seeds(text: str) -> list[int]:
    """``"0-9"`` -> ``[0, ..., 9]``; ``"0,3,7"`` -> ``[0, 3, 7]`` (ranges and lists may be mixed: ``"0-2,5"``)."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            seeds.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
        except ValueError:
            raise ValueError(f"--seeds: expected integers and ranges like 0-9 or 0,3,7, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--seeds: expected distinct non-negative seeds, got {text!r}")
    return seeds


def summarize_tokenizer(runs: list[dict]) -> dict:
    """Across seeds, per feature set: each level's entropy (mean over seeds) of ours and theirs, the paired
    difference ours - theirs with its 95% t-interval, colliding items summed over the seeds, the mean
    reconstruction error and the range of the throughput ratio."""
    from .metrics import t_halfwidth

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


def summarize_graph(runs: list[dict]) -> dict:
    """Across seeds: ``[min, max, mean]`` of every timing (``*_seconds``, ``*_ms``) and ratio (``*_over_*``)."""
    keys = [k for k, v in runs[0].items()
            if isinstance(v, (int, float)) and (k.endswith(("_seconds", "_ms")) or "_over_" in k)]
    return {k: [min(r[k] for r in runs), max(r[k] for r in runs), float(np.mean([r[k] for r in runs]))]
            for k in keys}


SUMMARIES = {"tokenizer": summarize_tokenizer, "graph": summarize_graph, "graph-ablations": summarize_graph}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the models (default 0)")
    parser.add_argument("--seeds", default=None,
                        help="run once per seed (0-9 or 0,3,7) and add a summary across them (overrides --seed)")
    args = parser.parse_args(argv)
    if args.seeds is None:
        result = BENCHMARKS[args.name](device=args.device, repeats=args.repeats, seed=args.seed)
    else:
        try:
            seeds = parse_seeds(args.seeds)
        except ValueError as err:
            parser.error(str(err))
        runs = []
        for seed in seeds:
            runs.append(BENCHMARKS[args.name](device=args.device, repeats=args.repeats, seed=seed))
            print(f"{args.name}: seed {seed} done ({len(runs)}/{len(seeds)})", file=sys.stderr, flush=True)
        summary = SUMMARIES[args.name](runs) if args.name in SUMMARIES else None
        result = {"benchmark": args.name, "seeds": seeds, "summary": summary, "runs": runs}
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
