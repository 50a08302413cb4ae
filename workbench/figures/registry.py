"""Recipes: how each group of figures and tables in ``figures/`` is made from the library.

A :class:`Recipe` has two halves so that a plot can be redrawn without retraining: ``compute(context)`` trains and
evaluates what its outputs need and returns plain results (numbers, lists, tables as records), which are saved as
JSON; ``draw(results)`` turns those results into its outputs (matplotlib figures, saved as PNG; DataFrames, saved
as markdown tables). Each output names the paper figure or table it mirrors, for the manifest.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import pandas as pd


@dataclass(frozen=True)
class Context:
    """What a recipe's ``compute`` may read: the profile, the seeds it should use (``None``: its study's own),
    the device, and a ``log(message)`` for progress."""

    profile: str
    seeds: tuple[int, ...] | None = None
    device: str | None = None
    log: Callable[[str], None] = print


@dataclass(frozen=True)
class Recipe:
    """One group of outputs made together (module doc).

    Attributes:
        name: the group's name (``--only`` takes it, or one of its outputs).
        notebook: the notebook that shows the same outputs with their narrative.
        outputs: output name (a file stem in ``figures/``) -> what it mirrors (e.g. ``"MoToRec Fig. 3"``, or
            ``"-"`` for a figure of our own).
        compute: ``compute(context) -> results`` (JSON-serialisable: numbers, strings, lists, dicts; DataFrames
            go through :func:`records`).
        draw: ``draw(results) -> {output name: Figure or DataFrame}``, one entry per output.
        kind: ``"figure"`` or ``"table"`` per output (default: figure).
    """

    name: str
    notebook: str
    outputs: dict[str, str]
    compute: Callable[[Context], dict]
    draw: Callable[[dict], dict]
    tables: tuple[str, ...] = field(default_factory=tuple)

    def kind(self, output: str) -> str:
        return "table" if output in self.tables else "figure"

    def filename(self, output: str) -> str:
        return f"{output}.md" if output in self.tables else f"{output}.png"


RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    """Add ``recipe`` to :data:`RECIPES` (names and outputs must be unique across recipes)."""
    taken = {o: r.name for r in RECIPES.values() for o in r.outputs}
    clash = [o for o in recipe.outputs if o in taken and taken[o] != recipe.name]
    if clash or (recipe.name in taken and recipe.name not in recipe.outputs):
        raise ValueError(f"recipe {recipe.name!r}: names already used: {clash or [recipe.name]}")
    RECIPES[recipe.name] = recipe
    return recipe


def records(frame: pd.DataFrame) -> dict:
    """A DataFrame as JSON-ready ``{"columns", "index", "data"}`` (``frame_of`` reads it back; NaN kept)."""
    return {"columns": [str(c) for c in frame.columns], "index": [str(i) for i in frame.index],
            "data": frame.astype(object).where(frame.notna(), None).values.tolist()}


def frame_of(saved: dict) -> pd.DataFrame:
    """The DataFrame :func:`records` saved."""
    frame = pd.DataFrame(saved["data"], columns=saved["columns"], index=saved["index"])
    for column in frame.columns:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if numbers.notna().sum() == frame[column].notna().sum():  # every value a number (or missing)
            frame[column] = numbers
    return frame


@lru_cache(maxsize=2)
def catalogue(profile: str):
    """The profile's synthetic catalogue with its rendered images and no encoded features (seconds, no training):
    what image grids are drawn from. Rendered once per profile for every recipe of a run."""
    from ..data.synthetic import catalogue_config, make_catalogue

    return make_catalogue(catalogue_config(profile))
