"""Validation-only model selection."""
from __future__ import annotations

import numpy as np


class EarlyStopping:
    """Validation-only model selection: track the best epoch by a validation metric, stop after ``patience``
    epochs without improvement, and keep the test metrics recorded *at the best validation epoch*.

    Usage: each epoch call ``improved = stopper.step(epoch, valid_metrics)``; when ``improved`` save a
    checkpoint (and, if you want test numbers, call ``stopper.record_test(test_metrics)``); stop when
    ``stopper.should_stop``. Test metrics never influence the choice.
    """

    def __init__(self, metric: str = "recall@20", patience: int = 20, mode: str = "max", min_delta: float = 0.0):
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.metric, self.patience, self.mode, self.min_delta = metric, patience, mode, min_delta
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.best_test: dict[str, float] | None = None
        self.history: list[dict[str, float]] = []
        self._since_best = 0

    def step(self, epoch: int, valid: dict[str, float]) -> bool:
        if self.metric not in valid:
            raise KeyError(f"validation metrics lack {self.metric!r}; got {sorted(valid)}")
        value = float(valid[self.metric])
        if not np.isfinite(value):
            raise FloatingPointError(f"validation {self.metric} is {value} at epoch {epoch}: training diverged")
        self.history.append({"epoch": epoch, **{f"valid_{k}": float(v) for k, v in valid.items()}})
        sign = 1 if self.mode == "max" else -1
        improved = self.best_value is None or sign * (value - self.best_value) > self.min_delta
        if improved:
            self.best_epoch, self.best_value, self._since_best = epoch, value, 0
            self.best_test = None
        else:
            self._since_best += 1
        return improved

    def record_test(self, test: dict[str, float]) -> None:
        """Record test metrics for the current best epoch (call right after an improving ``step``)."""
        if self._since_best != 0:
            raise RuntimeError("record_test is only allowed right after an improving step (best validation epoch)")
        self.best_test = {k: float(v) for k, v in test.items()}

    @property
    def should_stop(self) -> bool:
        return self._since_best >= self.patience
