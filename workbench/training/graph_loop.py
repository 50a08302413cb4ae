"""One training loop for every graph model (:mod:`workbench.models`, :mod:`workbench.models.motorec`).

Each epoch: the model's ``pre_epoch`` hook; every training interaction once with a fresh negative
(:func:`~workbench.models.sampling.sample_triplets`), in batches; Adam on the sum of the model's named losses; a
full-ranking validation pass. Early stopping watches validation Recall@20 (patience 20, as MoToRec and MMRec);
the best epoch's weights are kept and the test split is evaluated once, with them, at the end (so test numbers
never steer anything).

Reproducible resume: every epoch draws its randomness from generators seeded by ``(seed, epoch)``, and the
checkpoint (written atomically after every epoch) holds the model (buffers included), the optimizer, the
early-stopping state, the best weights and the history. A run interrupted after epoch ``e`` and resumed from its
checkpoint therefore ends with exactly the weights and metrics of an uninterrupted run.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from ..core.config import resolve_config
from ..data.dataset import TEST, TRAIN, VALID, RecDataset
from ..models.sampling import sample_triplets
from ..evaluation.selection import EarlyStopping
from ..evaluation.ranking import RankingReport, evaluate_split
from ..core.runtime import get_device
from ..core.storage import atomic_path


@dataclass(frozen=True)
class GraphTrainConfig:
    """Settings of :func:`fit_graph` (MMRec's: batch 2048, Adam, lr 1e-3, patience 20 on valid Recall@20)."""

    epochs: int = 1000
    batch_size: int = 2048
    lr: float = 1e-3
    patience: int = 20
    metric: str = "recall@20"
    seed: int = 0
    device: str | None = None
    checkpoint: str | None = None    # path of a checkpoint file: resumed from when present, written every epoch
    progress: bool = True
    eval_batch_size: int = 4096


@dataclass
class GraphFitResult:
    """``history``: one row per epoch (losses, ``seconds`` of training, ``eval_seconds``, validation metrics);
    ``best_epoch`` and its ``valid`` metrics; ``test``: the test report of the best epoch's weights."""

    history: pd.DataFrame
    best_epoch: int
    valid: dict[str, float]
    test: RankingReport
    resumed_from: int = 0

    @property
    def seconds_per_epoch(self) -> float:
        return float(self.history["seconds"].median())


def _epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch])


def _run_key(model, cfg: GraphTrainConfig) -> str:
    ignore = {"checkpoint", "progress", "device", "eval_batch_size", "epochs"}
    train = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ignore}
    return repr((type(model).__name__, model.config, train))


def fit_graph(model, dataset: RecDataset, config: GraphTrainConfig | None = None,
              callback: Callable[[dict], None] | None = None, strata: dict[str, np.ndarray] | None = None,
              **options) -> GraphFitResult:
    """Train ``model`` on ``dataset``'s training split (see the module docstring). ``callback(row)`` sees each
    epoch's history row (live plots; raising ``KeyboardInterrupt`` there stops the run after the checkpoint is
    written). ``strata`` (name -> item mask) are added to the final test report. The model ends on the training
    device in eval mode with the best epoch's weights."""
    cfg = resolve_config(GraphTrainConfig, config, options)
    if (model.n_users, model.n_items) != (dataset.n_users, dataset.n_items) or model.dataset_name != dataset.name:
        raise ValueError(f"the model was built for {model.dataset_name} ({model.n_users} users x {model.n_items} "
                         f"items), not {dataset.name} ({dataset.n_users} x {dataset.n_items})")
    dataset.check_trainable()
    device = get_device(cfg.device)
    model.to_device(device)
    train = dataset.matrix(TRAIN)
    n_steps = -(-train.nnz // cfg.batch_size)
    optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, fused=True)
    stopper = EarlyStopping(cfg.metric, cfg.patience)
    history: list[dict] = []
    best_state = None
    start_epoch = 1
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    key = _run_key(model, cfg)
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        if state["key"] != key:
            raise ValueError(f"checkpoint {ckpt} belongs to another run ({state['key'][:200]}...); expected "
                             f"{key[:200]}...; delete it or pass another checkpoint path")
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        stopper.__dict__.update(state["stopper"])
        history, best_state, start_epoch = state["history"], state["best_state"], state["epoch"] + 1
    else:
        model.prepare(_epoch_rng(cfg.seed, 0))
    resumed_from = start_epoch - 1
    epochs = range(start_epoch, cfg.epochs + 1)
    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(epochs, desc=type(model).__name__, unit="epoch", initial=start_epoch - 1, total=cfg.epochs)
        epochs = bar
    for epoch in epochs:
        if stopper.should_stop:
            break
        rng = _epoch_rng(cfg.seed, epoch)
        torch.manual_seed(int(rng.integers(2 ** 62)))
        model.train()
        t0 = time.perf_counter()
        model.pre_epoch(rng, n_steps)
        users, pos, neg = (torch.as_tensor(a, device=device) for a in sample_triplets(train, rng))
        sums: dict[str, torch.Tensor] = {}
        for start in range(0, len(users), cfg.batch_size):
            sl = slice(start, start + cfg.batch_size)
            losses = model.loss(users[sl], pos[sl], neg[sl])
            total = sum(losses.values())
            optim.zero_grad(set_to_none=True)
            total.backward()
            optim.step()
            for name, value in {**losses, "total": total}.items():
                sums[name] = sums.get(name, 0.0) + value.detach() * (min(len(users), start + cfg.batch_size) - start)
        if device.type == "cuda":
            torch.cuda.synchronize()
        row = {"epoch": epoch, **{f"loss_{k}": float(v) / len(users) for k, v in sums.items()},
               "seconds": time.perf_counter() - t0}
        if not np.isfinite(row["loss_total"]):
            raise FloatingPointError(f"{type(model).__name__}: loss is {row['loss_total']} at epoch {epoch} "
                                     f"({ {k: v for k, v in row.items() if k.startswith('loss_')} }); training "
                                     "diverged: lower the learning rate or the loss weights")
        t1 = time.perf_counter()
        valid = evaluate_split(dataset, model.scorer(), VALID, ks=(10, 20), metrics=("recall", "ndcg"),
                               batch_size=cfg.eval_batch_size, device=device).metrics
        row["eval_seconds"] = time.perf_counter() - t1
        row.update({f"valid_{k}": v for k, v in valid.items()})
        if stopper.step(epoch, valid):
            best_state = copy.deepcopy(model.state_dict())
        history.append(row)
        if bar is not None:
            bar.set_postfix(loss=f"{row['loss_total']:.4f}", r20=f"{valid[cfg.metric]:.4f}", best=stopper.best_epoch)
        if ckpt is not None:
            _save(ckpt, {"key": key, "model": model.state_dict(), "optim": optim.state_dict(),
                         "stopper": stopper.__dict__, "history": history, "best_state": best_state, "epoch": epoch})
        if callback is not None:
            callback(row)
    if best_state is None:
        raise RuntimeError(f"{type(model).__name__}: no epoch was trained (epochs={cfg.epochs})")
    model.load_state_dict(best_state)
    model.eval()
    test = evaluate_split(dataset, model.scorer(), TEST, ks=(10, 20), strata=strata,
                          batch_size=cfg.eval_batch_size, device=device)
    frame = pd.DataFrame(history).set_index("epoch")
    return GraphFitResult(frame, stopper.best_epoch, {k[6:]: v for k, v in frame.loc[stopper.best_epoch].items()
                                                       if k.startswith("valid_")}, test, resumed_from)


def _save(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
