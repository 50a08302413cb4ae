"""The training engine: one loop for every model family (tokenizers, graph recommenders, the sequence, generative and
CTR models), on a CPU or a GPU, in one process or several (``torchrun``, DistributedDataParallel).

A model joins by subclassing :class:`Trainable` and filling in its hooks. Per epoch the loop:

1. seeds a NumPy generator and torch's global generator from ``(seed, epoch)`` inside a forked RNG state (so a run
   is reproducible, a resumed run continues exactly, and the caller's own random state is left untouched);
2. asks the model for the epoch's batches (``epoch_batches``) and lets it prepare the epoch (``on_epoch_start``:
   FREEDOM's edge pruning);
3. per batch: takes this process's share of the batch's rows, calls ``training_step`` (named losses; a pure
   function of the parameters: it changes no state, so DDP, ``torch.compile`` and CUDA graphs can live with it),
   backpropagates their sum, steps the optimizer, then calls ``after_step`` with what the step returned for it:
   every state change outside the gradients (EMA codebooks, usage counts, dead-code resets, code buffers) happens
   there, synchronised across processes;
4. records the epoch's mean losses (summed over processes), ``epoch_report`` (codebook health, every
   ``eval_every`` epochs), ``validate`` (validation metrics, prefixed ``valid_``), early stopping on ``metric``,
   a checkpoint (rank 0 only), the progress bar and the callback.

At the end the weights of the best epoch by validation ``metric`` (or the last epoch without one) are loaded.

Determinism: the same seed gives the same run on a CPU, bit for bit, whatever ran before in the process (tested
for every model and tokenizer). On a GPU some of the kernels used here accumulate with atomic additions in an
unspecified order (embedding and ``index_select`` backward, ``index_add_``, sparse-dense products), so two GPU
runs can differ in the last bits and, through early stopping, in the epoch kept. ``deterministic=True`` runs the
fit under ``torch.use_deterministic_algorithms`` (slower; an operation without a deterministic CUDA kernel then
stops with an error naming it).
Test metrics never appear here: models have a separate ``evaluate(data, part="test")``.

Under ``torchrun`` every process holds the whole model and data; each step's rows are split into contiguous
shares (:func:`~workbench.core.distributed.share`), each process's loss is scaled by its share so that the
gradients DDP averages are those of the whole batch, and what a batch shares (MoToRec's tokenizer chunk) is
computed by every process alike. This holds for losses that are means over rows; a term computed from the batch
as a whole (InfoNCE's in-batch negatives, the sparsity and diversity regularizers' batch usage) is computed on
each process's share, as in any data-parallel training, so it differs from the one-process value.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import os
import warnings
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..core import distributed as dist
from ..core.config import configure
from ..core.runtime import check_seed, get_device
from ..evaluation.selection import EarlyStopping
from .checkpoint import load_checkpoint, run_key, save_checkpoint


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run. Each model family has its defaults (``Trainable.train_defaults``)."""

    epochs: int = 30
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"           # "adam" | "adamw"
    seed: int = 0
    device: str | None = None         # None: CUDA when present (workbench.get_device)
    metric: str | None = None         # validation metric that picks the best epoch (None: the last epoch)
    mode: str = "max"                 # whether a larger or smaller `metric` is better
    patience: int | None = None       # stop after this many epochs without a better `metric` (None: never)
    checkpoint: str | None = None     # file resumed from when present, written after every epoch (rank 0)
    eval_every: int = 1               # epochs between `epoch_report`s (and always the last epoch)
    progress: bool = True
    deterministic: bool = False       # torch.use_deterministic_algorithms during the fit (see the module doc)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(f"TrainConfig needs lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")
        if self.optimizer not in ("adam", "adamw") or self.mode not in ("max", "min"):
            raise ValueError(f"TrainConfig: optimizer must be 'adam' or 'adamw' and mode 'max' or 'min', got "
                             f"{self.optimizer!r}, {self.mode!r}")
        check_seed(self.seed)
        if self.patience is not None and (self.metric is None or self.patience < 1):
            raise ValueError("TrainConfig.patience needs a validation metric and must be >= 1")


@dataclass
class Batch:
    """One optimizer step's data: ``rows`` (tensors of one length, shared out between processes) and ``shared``
    (the same on every process, e.g. MoToRec's tokenizer chunk)."""

    rows: dict[str, torch.Tensor]
    shared: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.rows.values())))

    def part(self, rows: slice) -> "Batch":
        """The batch restricted to ``rows`` (``shared`` unchanged)."""
        return Batch({k: v[rows] for k, v in self.rows.items()}, self.shared)


class StepOutput(NamedTuple):
    """What ``training_step`` returns: named losses (summed to train) and ``updates``, whatever ``after_step``
    needs to change the model's state (detached codes, residuals...)."""

    losses: dict[str, torch.Tensor]
    updates: Any = None


@dataclass
class FitResult:
    """``history``: one row per epoch (mean losses, ``seconds`` of training, ``eval_seconds``, the model's report
    and ``valid_*`` metrics); ``best_epoch`` and its validation metrics; ``resumed_from``: the last epoch read
    from a checkpoint (0 for a fresh run); ``checkpoints_written`` by this process."""

    history: pd.DataFrame
    best_epoch: int
    best_valid: dict[str, float]
    resumed_from: int = 0
    stopped_early: bool = False
    checkpoints_written: int = 0


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Consecutive slices of ``n`` rows, ``batch_size`` each. With several processes a last batch with fewer rows
    than processes joins the one before (every process needs at least one row of every batch)."""
    if n < dist.world_size():
        raise ValueError(f"{n} training rows cannot be shared out among {dist.world_size()} processes")
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] < dist.world_size():
        starts.pop()
    return [slice(a, b) for a, b in zip(starts, starts[1:] + [n])]


class Trainable:
    """The hooks the engine calls (see the module docstring); the defaults do nothing. Subclasses set
    ``train_defaults`` and implement at least ``epoch_batches`` and ``training_step``."""

    train_defaults: ClassVar[TrainConfig] = TrainConfig()
    # DDP: True when some parameters may receive no gradient in a step (an extra graph traversal per step)
    ddp_find_unused_parameters: ClassVar[bool] = False
    # the names `validate` returns (checked against `metric` before training; empty: not checked)
    validation_metrics: ClassVar[tuple[str, ...]] = ()

    def to_device(self, device: torch.device) -> "Trainable":
        """Move parameters, buffers and anything else the model computes with to ``device``."""
        return self.to(device)

    def fit_data(self, data: Any, device: torch.device) -> Any:
        """Check the training data and turn it into what the batches index (e.g. tensors on ``device``)."""
        return data

    def data_fingerprint(self, data: Any) -> str:
        """A content hash of the training data (part of a checkpoint's run key)."""
        raise NotImplementedError(f"{type(self).__name__} does not support checkpoints (no data fingerprint)")

    def on_fit_start(self, data: Any, config: TrainConfig, rng: np.random.Generator) -> None:
        """Once, before the first epoch of a fresh run (not on resume): k-means start-up, warm-ups."""

    def epoch_batches(self, data: Any, batch_size: int, rng: np.random.Generator) -> list[Batch]:
        raise NotImplementedError

    def on_epoch_start(self, data: Any, epoch: int, rng: np.random.Generator, n_steps: int) -> None:
        """Before each epoch's first step."""

    def training_step(self, batch: Batch) -> StepOutput:
        raise NotImplementedError

    def after_step(self, batch: Batch, updates: Any) -> dict[str, float] | None:
        """State updates after the optimizer step; returns counters summed into the epoch's row (the same on
        every process, e.g. dead-code resets)."""
        return None

    def epoch_report(self, data: Any, epoch: int) -> dict[str, float]:
        """Extra history columns, every ``eval_every`` epochs (e.g. codebook health)."""
        return {}

    def validate(self, data: Any) -> dict[str, float]:
        """Validation metrics (recorded as ``valid_<name>``; ``metric`` picks the best epoch among them)."""
        return {}

    def configure_optimizer(self, config: TrainConfig) -> torch.optim.Optimizer:
        """Adam (or AdamW) over the parameters that require gradients."""
        params = [p for p in self.parameters() if p.requires_grad]
        cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
        return cls(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused or None)

    @classmethod
    def train_config(cls, config: TrainConfig | None = None, **options) -> TrainConfig:
        """``config`` (default: the family's ``train_defaults``) with ``options`` applied; unknown options are
        errors."""
        return configure(config or cls.train_defaults, **options)

    def _run_engine(self, data: Any, config: TrainConfig | None, callback, options: dict) -> FitResult:
        """Train with the engine and keep the result as ``history_``, ``best_epoch_``, ``valid_``."""
        result = train(self, data, self.train_config(config, **options), callback)
        self.history_, self.best_epoch_, self.valid_ = result.history, result.best_epoch, result.best_valid
        self.fit_result_ = result
        return result


def train(model: Trainable, data: Any, config: TrainConfig, callback: Callable[[dict], None] | None = None
          ) -> FitResult:
    """Train ``model`` on ``data`` (see the module docstring). ``callback(row)`` sees each epoch's history row
    (live curves; raising ``KeyboardInterrupt`` there stops the run after the checkpoint is written)."""
    device = get_device(config.device)
    if dist.is_distributed() and device.type == "cuda":  # each process on its own GPU, whatever index was named
        device = torch.device("cuda", torch.cuda.current_device())
    known = model.validation_metrics
    if config.metric is not None and known and config.metric not in known:
        raise ValueError(f"{type(model).__name__} validates on {list(known)}; metric={config.metric!r} is not one")
    devices = [_cuda_index(device)] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), _deterministic_algorithms(config.deterministic):
        run = _Run(model, data, config, callback, device)
        try:
            for epoch in run.epochs():
                if run.stopper is not None and run.stopper.should_stop:
                    break
                run.epoch(epoch)
        finally:  # an interrupted run (a callback, Ctrl-C) leaves no half-drawn progress bar
            if run.bar is not None:
                run.bar.close()
        return run.finish()


@contextlib.contextmanager
def _deterministic_algorithms(on: bool):
    """``torch.use_deterministic_algorithms(True)`` for the block when ``on`` (cuBLAS needs a fixed workspace for
    it), the caller's setting restored afterwards."""
    if not on:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    workspace = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    if workspace is None and torch.cuda.is_available() and torch.cuda.is_initialized():
        warnings.warn("deterministic=True: CUDA was initialised before CUBLAS_WORKSPACE_CONFIG was set, so cuBLAS "
                      "may keep a nondeterministic workspace; set CUBLAS_WORKSPACE_CONFIG=:4096:8 before the first "
                      "GPU operation of the process", RuntimeWarning, stacklevel=4)
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = workspace or ":4096:8"
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        if workspace is None:
            del os.environ["CUBLAS_WORKSPACE_CONFIG"]


class _Run:
    """The state of one :func:`train` call (started fresh or from a checkpoint)."""

    def __init__(self, model: Trainable, data: Any, cfg: TrainConfig, callback, device: torch.device):
        self.model, self.cfg, self.callback, self.device = model, cfg, callback, device
        model.to_device(device)
        self.data = model.fit_data(data, device)
        self.stopper = EarlyStopping(cfg.metric, cfg.patience, cfg.mode) if cfg.metric else None
        self.history: list[dict] = []
        self.best_state, self.start, self.written = None, 1, 0
        self.ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
        self.key = run_key(model, cfg, model.data_fingerprint(self.data)) if self.ckpt else None
        if self.ckpt is not None and self.ckpt.exists():
            self._resume()
        else:
            model.on_fit_start(self.data, cfg, np.random.default_rng([cfg.seed, 0]))
            self.optim = model.configure_optimizer(cfg)
        self.resumed_from = self.start - 1
        self.step_fn = _distributed_step(model, device) if dist.is_distributed() else model.training_step
        self.bar = None

    def _resume(self) -> None:
        state = load_checkpoint(self.ckpt, self.key, self.device)
        self.model.load_state_dict(state["model"])
        self.optim = self.model.configure_optimizer(self.cfg)
        self.optim.load_state_dict(state["optim"])
        if self.stopper is not None:
            self.stopper.load_state_dict(state["stopper"])
        self.history, self.best_state, self.start = state["history"], state["best_state"], state["epoch"] + 1

    def epochs(self):
        epochs = range(self.start, self.cfg.epochs + 1)
        if self.cfg.progress and dist.is_main():
            from tqdm.auto import tqdm

            self.bar = tqdm(epochs, desc=type(self.model).__name__, unit="epoch", initial=self.start - 1,
                            total=self.cfg.epochs)
            return self.bar
        return epochs

    def epoch(self, epoch: int) -> None:
        cfg, model = self.cfg, self.model
        rng = np.random.default_rng([cfg.seed, epoch])
        torch.manual_seed(int(rng.integers(2 ** 62)))
        model.train()
        t0 = time.perf_counter()
        batches = model.epoch_batches(self.data, cfg.batch_size, rng)
        model.on_epoch_start(self.data, epoch, rng, len(batches))
        row = {"epoch": epoch, **self._train_batches(batches)}
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        row["seconds"] = time.perf_counter() - t0
        if not np.isfinite(row["loss_total"]):
            losses = {k: v for k, v in row.items() if k.startswith("loss_")}
            raise FloatingPointError(f"{type(model).__name__}: loss is {row['loss_total']} at epoch {epoch} "
                                     f"({losses}); training diverged: lower the learning rate or the loss weights")
        self._evaluate(epoch, row)
        # plain Python numbers: the history goes into checkpoints that load with weights_only=True
        row = {k: v.item() if isinstance(v, (np.generic, torch.Tensor)) else v for k, v in row.items()}
        self.history.append(row)
        self._checkpoint(epoch)
        if self.bar is not None:
            self.bar.set_postfix({k: f"{row[k]:.4f}" for k in ("loss_total", f"valid_{cfg.metric}") if k in row})
        if self.callback is not None:
            self.callback(row)

    def _train_batches(self, batches: list[Batch]) -> dict[str, float]:
        """One pass over the epoch's batches; the mean of every loss over the epoch's rows, and the counters."""
        sums: dict[str, torch.Tensor] = {}  # tensors: no device sync per step
        counters: dict[str, float] = {}
        rows = 0
        for batch in batches:
            local = batch.part(dist.share(len(batch))) if dist.is_distributed() else batch
            out = self.step_fn(local)
            total = sum(out.losses.values())
            self.optim.zero_grad(set_to_none=True)
            # each process's mean loss weighted by its share: DDP's average of the gradients is the batch's
            scale = len(local) * dist.world_size() / len(batch)
            (total if scale == 1 else total * scale).backward()
            self.optim.step()
            for name, value in (self.model.after_step(local, out.updates) or {}).items():
                counters[name] = counters.get(name, 0) + value
            for name, value in {**out.losses, "total": total}.items():
                sums[name] = sums.get(name, 0.0) + value.detach() * len(local)
            rows += len(local)
        names = list(sums)
        totals = dist.all_reduce_sum(torch.stack([sums[n] for n in names] + [torch.tensor(float(rows),
                                                                                          device=self.device)]))
        means = (totals[:-1] / totals[-1]).tolist()
        return {**{f"loss_{n}": v for n, v in zip(names, means)}, **counters}

    def _evaluate(self, epoch: int, row: dict) -> None:
        """The model's report (every ``eval_every`` epochs), validation metrics and early stopping."""
        t0 = time.perf_counter()
        model = self.model
        if epoch % self.cfg.eval_every == 0 or epoch == self.cfg.epochs:
            row.update(model.epoch_report(self.data, epoch))
        valid = model.validate(self.data)
        row["eval_seconds"] = time.perf_counter() - t0
        row.update({f"valid_{k}": v for k, v in valid.items()})
        if self.stopper is not None and self.stopper.step(epoch, valid):
            self.best_state = copy.deepcopy(model.state_dict())

    def _checkpoint(self, epoch: int) -> None:
        if self.ckpt is None or not dist.is_main():
            return
        save_checkpoint(self.ckpt, {
            "key": self.key, "epoch": epoch, "model": self.model.state_dict(), "optim": self.optim.state_dict(),
            "stopper": None if self.stopper is None else self.stopper.state_dict(),
            "history": self.history, "best_state": self.best_state})
        self.written += 1

    def finish(self) -> FitResult:
        if not self.history:
            raise RuntimeError(f"{type(self.model).__name__}: no epoch was trained (epochs={self.cfg.epochs})")
        if self.stopper is not None:
            if self.best_state is None:
                raise RuntimeError(f"{type(self.model).__name__}: no epoch has a validation {self.cfg.metric}")
            self.model.load_state_dict(self.best_state)
            best = self.stopper.best_epoch
        else:
            best = self.history[-1]["epoch"]
        self.model.eval()
        frame = pd.DataFrame(self.history).set_index("epoch")
        valid = {k[6:]: float(v) for k, v in frame.loc[best].items() if k.startswith("valid_")}
        stopped = self.stopper is not None and self.stopper.should_stop
        return FitResult(frame, best, valid, self.resumed_from, stopped, self.written)


class _StepModule(nn.Module):
    """``forward(batch) = model.training_step(batch)``: the module DistributedDataParallel wraps."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: Batch) -> StepOutput:
        return self.model.training_step(batch)


def _distributed_step(model: nn.Module, device: torch.device) -> nn.Module:
    """The model's training step inside DistributedDataParallel: parameters and buffers broadcast from rank 0
    once (fixed inputs such as feature matrices excepted), gradients averaged over processes at each backward.
    Buffers are not broadcast at every step: the model's ``after_step`` keeps its state in sync itself."""
    from torch.nn.parallel import DistributedDataParallel

    wrapper = _StepModule(model)
    persistent = set(wrapper.state_dict())
    fixed = [name for name, _ in wrapper.named_buffers() if name not in persistent]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(wrapper, fixed)
    # newer torch names the per-step buffer broadcast `forward_sync_buffers` (both still sync once, at init)
    no_sync = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
               else "broadcast_buffers")
    return DistributedDataParallel(wrapper, device_ids=[_cuda_index(device)] if device.type == "cuda" else None,
                                   find_unused_parameters=model.ddp_find_unused_parameters, **{no_sync: False})


def _cuda_index(device: torch.device) -> int:
    """The GPU index of ``device``; plain ``"cuda"`` means the current GPU (each ``torchrun`` process sets its own)."""
    return torch.cuda.current_device() if device.index is None else device.index
