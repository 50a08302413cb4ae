"""Validation-only model selection: the best epoch by a validation metric, and when to stop."""
from __future__ import annotations

from typing import Any

import numpy as np


class EarlyStopping:
    """Track the best epoch by a validation metric and stop after ``patience`` epochs without improvement
    (``None``: never stop). Test metrics never enter here: a model's test split is evaluated once, after
    training, with the best epoch's weights.

    Usage: each epoch ``improved = stopper.step(epoch, valid_metrics)``; keep the weights when ``improved``;
    stop when ``stopper.should_stop``.
    """

    def __init__(self, metric: str = "recall@20", patience: int | None = 20, mode: str = "max",
                 min_delta: float = 0.0):
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {patience}")
        self.metric, self.patience, self.mode, self.min_delta = metric, patience, mode, min_delta
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.since_best = 0

    def step(self, epoch: int, valid: dict[str, float]) -> bool:
        """Record one epoch's validation metrics; return whether it is the best so far."""
        if self.metric not in valid:
            raise KeyError(f"validation metrics lack {self.metric!r}; got {sorted(valid)}")
        value = float(valid[self.metric])
        if not np.isfinite(value):
            raise FloatingPointError(f"validation {self.metric} is {value} at epoch {epoch}: training diverged")
        sign = 1 if self.mode == "max" else -1
        improved = self.best_value is None or sign * (value - self.best_value) > self.min_delta
        if improved:
            self.best_epoch, self.best_value, self.since_best = epoch, value, 0
        else:
            self.since_best += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.since_best >= self.patience

    def state_dict(self) -> dict[str, Any]:
        """Plain values (for a checkpoint)."""
        return {"best_epoch": self.best_epoch, "best_value": self.best_value, "since_best": self.since_best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_epoch, self.best_value, self.since_best = state["best_epoch"], state["best_value"], state["since_best"]
