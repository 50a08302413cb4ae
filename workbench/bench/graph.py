"""``python -m workbench.bench graph`` and ``graph-ablations``: graph models on a synthetic graph of Baby's shape."""
from __future__ import annotations

import platform
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from ..core.runtime import get_device, runtime_facts
from ..core.sparse import spmm
from ..data.dataset import RecDataset
from ..data.splits import random_split
from ..evaluation.ranking import evaluate_split
from ..models.adjacency import NormalizedAdjacency
from ..models.base import make_model
from ..models.motorec import ABLATIONS, ablation_config


# -------------------------------------------------------------------------------------------- graph models
def baby_shaped_dataset(n_users: int = 19445, n_items: int = 7050, n_inter: int = 160_792, dims=(4096, 384),
                        seed: int = 0):
    """A synthetic graph of Baby's shape for timing: every user has >= 2 interactions, items follow a Zipf-like
    popularity, features are clustered Gaussians (64 centres) so the kNN graphs are meaningful; random 8:1:1
    split. Not for accuracy claims."""
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
    Table-3 variants are ``motorec-wo-cl`` and so on. The same-run physical reference ``bound_epoch_seconds`` is
    an epoch of LightGCN's sparse products alone (:func:`sparse_bound`); ``lightgcn_over_bound`` relates the two,
    so figures from machines or hours of different speed can be compared."""
    dev = get_device(device)
    t0 = time.perf_counter()
    ds = baby_shaped_dataset(seed=seed)
    out = {"benchmark": "graph", "users": ds.n_users, "items": ds.n_items, "interactions": len(ds.interactions),
           "train_interactions": int(ds.matrix("train").nnz), "batch_size": batch_size, "dim": 64,
           "epochs_timed": epochs, "build_seconds": time.perf_counter() - t0}
    for name in models:
        out.update(_time_graph_model(name, ds, epochs, batch_size, dev, repeats, seed))
        if name == "lightgcn":  # the physical reference, timed beside the model it bounds
            out["bound_epoch_seconds"] = sparse_bound(ds, batch_size, dev, repeats=repeats)
            out["lightgcn_over_bound"] = out["lightgcn_epoch_seconds"] / out["bound_epoch_seconds"]
    if "lightgcn" in models:
        out["eval_seconds"] = out["lightgcn_eval_seconds"]
        for name in models:
            if name != "lightgcn":
                out[f"{name}_over_lightgcn"] = out[f"{name}_epoch_seconds"] / out["lightgcn_epoch_seconds"]
    for ref in ("freedom", "freedom-mmrec"):
        if ref in models and "motorec" in models:
            out[f"motorec_over_{ref}"] = out["motorec_epoch_seconds"] / out[f"{ref}_epoch_seconds"]
    out.update({**runtime_facts(dev), "machine": platform.machine(), "python": platform.python_version()})
    return out


def _time_graph_model(name: str, ds, epochs: int, batch_size: int, dev, repeats: int, seed: int) -> dict:
    """One model of :func:`bench_graph`: build, warm-up (MoToRec's tokenizers), epochs, evaluation."""
    t1 = time.perf_counter()
    model = _graph_model(name).build(ds, seed=seed).to_device(dev)
    out = {f"{name}_setup_seconds": time.perf_counter() - t1}
    t2 = time.perf_counter()
    if hasattr(model, "warm_up"):
        model.warm_up(ds, seed=seed)  # fit sees trained tokenizers and does not repeat it
    out[f"{name}_warmup_seconds"] = time.perf_counter() - t2
    model.fit(ds, epochs=epochs, batch_size=batch_size, patience=None, device=str(dev), progress=False, seed=seed)
    out[f"{name}_epoch_seconds"] = float(model.history_["seconds"].median())
    out[f"{name}_epoch_seconds_all"] = model.history_["seconds"].round(3).tolist()
    out[f"{name}_parameters"] = model.parameter_count()
    times = []
    for _ in range(repeats + 1):
        t3 = time.perf_counter()
        evaluate_split(ds, model.scorer(), "test", ks=(10, 20), metrics=("recall", "ndcg"), device=dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t3)
    out[f"{name}_eval_seconds"] = min(times[1:])
    return out


def sparse_bound(ds, batch_size: int, device, layers: int = 2, dim: int = 64, repeats: int = 3) -> float:
    """Seconds of one LightGCN epoch's sparse products alone (best of ``repeats``): per step, ``layers``
    propagation steps forward and ``layers`` backward, two 64-wide CSR products each, over the training graph.
    A physical reference measured in the same process as the model it bounds."""
    adjacency = NormalizedAdjacency(ds.matrix("train"), device=device)
    fwd_ui, fwd_iu, _, _ = adjacency.operators()
    gen = torch.Generator().manual_seed(0)
    e_u = torch.randn(adjacency.n_users, dim, generator=gen).to(device)
    e_i = torch.randn(adjacency.n_items, dim, generator=gen).to(device)
    steps = -(-adjacency.nnz // batch_size)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps * 2 * layers):  # forward and backward
            spmm(fwd_ui, e_i)
            spmm(fwd_iu, e_u)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def _ablation_slugs() -> dict[str, str]:
    """Benchmark names of MoToRec's Table-3 variants: ``"motorec-wo-cl"`` for ``"w/o CL"``, and so on."""
    return {"motorec-" + name.lower().replace("w/o ", "wo-").replace(" ", "-"): name
            for name in ABLATIONS if name != "MoToRec"}


def _graph_model(name: str, **options):
    """A graph benchmark's model by name: a registry model, ``freedom-mmrec`` (FREEDOM projecting every item at
    every step) or a MoToRec ablation (``motorec-wo-cl``, ...; see :func:`_ablation_slugs`); ``options`` override
    config fields."""
    if name == "freedom-mmrec":
        return make_model("freedom", project_all=True, **options)
    slugs = _ablation_slugs()
    if name in slugs:
        return make_model("motorec", replace(ablation_config(slugs[name]), **options))
    return make_model(name, **options)


def bench_graph_ablations(device: str | None = None, repeats: int = 3, seed: int = 0, steps: int = 30) -> dict:
    """Milliseconds per training step (batch 2048, forward, backward and Adam) of FREEDOM, MoToRec and each of
    MoToRec's Table-3 variants on the Baby-shaped graph, and per component what the full model spends on it
    (``motorec-wo-X_saves_ms``: the full step minus the variant's). The models take turns, ``steps`` steps
    each, for ``repeats`` rounds, and each reports its median round: a shared machine's speed drifts by tens of
    percent within minutes, which would bias models timed one after the other. MoToRec's tokenizer warm-up is
    one epoch here (the state it leaves does not change the cost of a step)."""
    dev = get_device(device)
    ds = baby_shaped_dataset(seed=seed)
    rng = np.random.default_rng(seed)
    names = ("freedom", "motorec", *_ablation_slugs())
    runs = {}
    for name in names:
        model = _graph_model(name, **({"tokenizer_warmup": 1} if name.startswith("motorec") else {}))
        model.build(ds, seed=seed).to_device(dev)
        if hasattr(model, "warm_up"):
            model.warm_up(ds, seed=seed)
        model.train()
        batches = model.epoch_batches(ds, 2048, rng)[:-1]  # full batches only
        model.on_epoch_start(ds, 1, rng, len(batches) + 1)
        runs[name] = (model, model.configure_optimizer(model.train_config(lr=1e-3)), batches)

    def step(model, optim, batches, k):  # the engine's step: the k-th batch (rounds past the epoch wrap around)
        batch = batches[k % len(batches)]
        out = model.training_step(batch)
        optim.zero_grad(set_to_none=True)
        sum(out.losses.values()).backward()
        optim.step()
        model.after_step(batch, out.updates)

    for model, optim, batches in runs.values():  # one untimed step each (first-call allocations)
        step(model, optim, batches, 0)
    times = {name: [] for name in names}
    for r in range(repeats):
        for name, (model, optim, batches) in runs.items():
            t0 = time.perf_counter()
            for k in range(1 + r * steps, 1 + (r + 1) * steps):
                step(model, optim, batches, k)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - t0) / steps * 1000)
    out = {"benchmark": "graph-ablations", "steps_per_round": steps, "rounds": repeats, "batch_size": 2048,
           **{f"{name}_step_ms": float(np.median(v)) for name, v in times.items()}}
    out["motorec_over_freedom"] = out["motorec_step_ms"] / out["freedom_step_ms"]
    for name in names[2:]:
        out[f"{name}_saves_ms"] = out["motorec_step_ms"] - out[f"{name}_step_ms"]
    out.update(runtime_facts(dev))
    return out


def summarize_graph(runs: list[dict]) -> dict:
    """Across seeds: ``[min, max, mean]`` of every timing (``*_seconds``, ``*_ms``) and ratio (``*_over_*``)."""
    keys = [k for k, v in runs[0].items()
            if isinstance(v, (int, float)) and (k.endswith(("_seconds", "_ms")) or "_over_" in k)]
    return {k: [min(r[k] for r in runs), max(r[k] for r in runs), float(np.mean([r[k] for r in runs]))]
            for k in keys}
