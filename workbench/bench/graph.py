"""``python -m workbench.bench graph`` and ``graph-ablations``: graph models on a synthetic graph of Baby's shape."""
from __future__ import annotations

import platform
import time

import numpy as np
import torch

from ..core.runtime import get_device


# -------------------------------------------------------------------------------------------- graph models
def baby_shaped_dataset(n_users: int = 19445, n_items: int = 7050, n_inter: int = 160_792, dims=(4096, 384),
                        seed: int = 0):
    """A synthetic graph of Baby's shape for timing: every user has >= 2 interactions, items follow a Zipf-like
    popularity, features are clustered Gaussians (64 centres) so the kNN graphs are meaningful; random 8:1:1
    split. Not for accuracy claims."""
    import pandas as pd

    from ..data.dataset import RecDataset
    from ..data.splits import random_split

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
    from ..training.graph_loop import fit_graph
    from ..evaluation.ranking import evaluate_split

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
    from ..models.motorec import ABLATIONS

    return {"motorec-" + name.lower().replace("w/o ", "wo-").replace(" ", "-"): name
            for name in ABLATIONS if name != "MoToRec"}


def _graph_model(name: str, ds, **options):
    """A graph benchmark's model by name: a registry model, ``freedom-mmrec`` (FREEDOM projecting every item at
    every step) or a MoToRec ablation (``motorec-wo-cl``, ...; see :func:`_ablation_slugs`); ``options`` override
    config fields."""
    from dataclasses import replace

    from ..models.registry import make_model
    from ..models.motorec import ablation_config

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
    from ..models.sampling import sample_triplets

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


def summarize_graph(runs: list[dict]) -> dict:
    """Across seeds: ``[min, max, mean]`` of every timing (``*_seconds``, ``*_ms``) and ratio (``*_over_*``)."""
    keys = [k for k, v in runs[0].items()
            if isinstance(v, (int, float)) and (k.endswith(("_seconds", "_ms")) or "_over_" in k)]
    return {k: [min(r[k] for r in runs), max(r[k] for r in runs), float(np.mean([r[k] for r in runs]))]
            for k in keys}
