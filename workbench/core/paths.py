"""Repository-rooted paths and the one helper that saves figures.

Notebooks resolve every path through here, never with ``../..``. Under the ``smoke`` profile figures go to a
temporary folder so that tests never dirty the tree.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .config import get_profile
from .storage import atomic_path


def repo_root() -> Path:
    """The checkout root (the folder holding ``pyproject.toml`` above this package), else the cwd."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent, *here.parents):
        if (candidate / "pyproject.toml").is_file() and (candidate / "workbench").is_dir():
            return candidate
    return Path.cwd()


def data_dir() -> Path:
    """``$WORKBENCH_DATA`` or ``<repo>/data``."""
    return Path(os.environ.get("WORKBENCH_DATA", repo_root() / "data"))


def cache_dir() -> Path:
    """Folder for generated, content-keyed caches (git-ignored)."""
    path = data_dir() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_data_dir() -> Path:
    """Read-only reference data beside the checkout: ``$WORKBENCH_SHARED_DATA`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("WORKBENCH_SHARED_DATA", repo_root().parent / "shared" / "data"))


def figures_dir(profile: str | None = None) -> Path:
    """``<repo>/figures`` for default/paper; a per-process temporary folder under ``smoke``."""
    if "WORKBENCH_FIGURES" in os.environ:
        path = Path(os.environ["WORKBENCH_FIGURES"])
    elif get_profile(profile) == "smoke":
        path = Path(tempfile.gettempdir()) / f"workbench-figures-{os.getpid()}"
    else:
        path = repo_root() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_figure(fig, name: str, profile: str | None = None, dpi: int = 120) -> Path:
    """Save a matplotlib figure as ``<figures_dir>/<name>.png`` atomically; return the path."""
    target = figures_dir(profile) / f"{name}.png"
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return target
