"""Making recipes' outputs: compute (or read saved results), draw, write every output of a recipe together, keep
the results as JSON beside the figures, and keep ``MANIFEST.md`` in step with what is on disk.

* Outputs of one recipe are written to a staging folder first and renamed into place together once all of them
  are drawn, so a run interrupted midway leaves the previous figures intact.
* Results carry the profile, the seeds, the command, the date and the code version (a digest of the library's
  source); ``--from-results`` refuses results from another profile or code version, saying how to regenerate.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd

from ..core.storage import atomic_path, json_default
from .registry import RECIPES, Context, Recipe

MANIFEST = "MANIFEST.md"
RESULTS = "results"
PACKAGE = Path(__file__).resolve().parents[1]


class FiguresError(RuntimeError):
    """A request the figures command cannot serve; the message says what was wrong and what to run."""


def code_version() -> str:
    """A digest of every ``.py`` file of the library (paths and bytes): results made by other code are stale."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        h.update(str(path.relative_to(PACKAGE)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def select(names=None) -> list[Recipe]:
    """The recipes of ``names`` (recipe names or output names; ``None``: every recipe), in registry order."""
    if not names:
        return list(RECIPES.values())
    owner = {o: r.name for r in RECIPES.values() for o in r.outputs}
    chosen = set()
    for name in names:
        if name in RECIPES:
            chosen.add(name)
        elif name in owner:
            chosen.add(owner[name])
        else:
            raise FiguresError(f"unknown figure or table {name!r}; `python -m workbench.figures --list` lists the "
                               f"{len(RECIPES)} recipes and their outputs")
    return [r for r in RECIPES.values() if r.name in chosen]


def _regenerate(recipe: Recipe, profile: str) -> str:
    return f"`python -m workbench.figures --profile {profile} --only {recipe.name}`"


def results_path(folder: Path, recipe: Recipe) -> Path:
    return Path(folder) / RESULTS / f"{recipe.name}.json"


def load_results(folder: Path, recipe: Recipe, profile: str) -> dict:
    """The saved results of ``recipe`` for ``profile`` and this code version; a :class:`FiguresError` naming the
    file, what is wrong with it and the command that regenerates it otherwise."""
    path, again = results_path(folder, recipe), _regenerate(recipe, profile)
    if not path.exists():
        raise FiguresError(f"no saved results for {recipe.name!r} ({path}); make them with {again}")
    try:
        saved = json.loads(path.read_text())
        meta = {key: saved[key] for key in ("profile", "code_version", "results")}
    except (ValueError, KeyError, TypeError, OSError) as err:
        raise FiguresError(f"{path} is not a results file of this command ({err}); regenerate it with {again}"
                           ) from None
    if meta["profile"] != profile:
        raise FiguresError(f"{path} was made under the {meta['profile']!r} profile, not {profile!r}; regenerate it "
                           f"with {again}")
    if meta["code_version"] != code_version():
        raise FiguresError(f"{path} is stale: made by another version of the library (code {meta['code_version']}, "
                           f"now {code_version()}); regenerate it with {again}")
    return saved


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """``frame`` as a GitHub markdown table (numbers rounded to ``digits``; the index as the first column)."""
    def cell(value) -> str:
        if isinstance(value, float):
            return "" if value != value else f"{value:.{digits}f}"
        return str(value).replace("|", "\\|")
    head = [" · ".join(str(n or "") for n in frame.index.names).strip(" ·")] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([cell(i)] + [cell(v) for v in row]) + " |"
              for i, row in zip(frame.index.map(lambda i: " · ".join(map(str, i)) if isinstance(i, tuple) else i),
                                frame.itertuples(index=False))]
    return "\n".join(lines) + "\n"


def _write_outputs(recipe: Recipe, drawn: dict, folder: Path, saved: dict | None) -> list[Path]:
    """Every output of ``recipe`` (and its results, when computed) written to a staging folder, then renamed into
    place together."""
    import matplotlib.pyplot as plt

    if set(drawn) != set(recipe.outputs):
        raise FiguresError(f"recipe {recipe.name!r} drew {sorted(drawn)}, expected {sorted(recipe.outputs)}")
    staging = Path(folder) / f".staging-{recipe.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        moves = []
        for output, thing in drawn.items():
            target = staging / recipe.filename(output)
            if recipe.kind(output) == "table":
                target.write_text(markdown_table(thing))
            else:
                thing.savefig(target, dpi=120, bbox_inches="tight", format="png")
                plt.close(thing)
            moves.append((target, Path(folder) / recipe.filename(output)))
        if saved is not None:
            target = staging / f"{recipe.name}.json"
            target.write_text(json.dumps(saved, indent=1, default=json_default))
            moves.append((target, results_path(folder, recipe)))
        for source, target in moves:  # every file is complete before the first one replaces an old output
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        return [target for _, target in moves]
    finally:
        shutil.rmtree(staging, ignore_errors=True)




def make(recipe: Recipe, context: Context, folder: Path, from_results: bool = False, command: str = "") -> list[Path]:
    """Compute (or, ``from_results``, read) ``recipe``'s results, draw its outputs and write them (module doc)."""
    if from_results:
        results, saved = load_results(folder, recipe, context.profile)["results"], None
    else:
        results = recipe.compute(context)
        results = json.loads(json.dumps(results, default=json_default))  # draw reads what a later redraw reads
        saved = {"recipe": recipe.name, "profile": context.profile, "seeds": results.get("seeds"),
                 "code_version": code_version(), "command": command,
                 "date": datetime.now().strftime("%Y-%m-%d %H:%M"), "results": results}
    return _write_outputs(recipe, recipe.draw(results), folder, saved)


def write_manifest(folder: Path) -> Path:
    """``MANIFEST.md``: every recipe's outputs, what each mirrors, and the profile, seeds, command and date of the
    results they were drawn from (or that they have not been made in this folder)."""
    rows = []
    for recipe in RECIPES.values():
        path = results_path(folder, recipe)
        meta = json.loads(path.read_text()) if path.exists() else {}
        for output, mirrors in recipe.outputs.items():
            made = (Path(folder) / recipe.filename(output)).exists() and meta
            seeds = meta.get("seeds")
            rows.append([f"`{recipe.filename(output)}`", mirrors, f"`{recipe.notebook}`", f"`{recipe.name}`",
                         meta.get("profile", "-") if made else "not made",
                         "-" if not made or seeds is None else ", ".join(map(str, seeds)),
                         f"`{meta['command']}`" if made and meta.get("command") else "-",
                         meta.get("date", "-") if made else "-"])
    head = ["output", "mirrors", "notebook", "recipe", "profile", "seeds", "command", "date"]
    text = "\n".join([
        "# Figures and tables", "",
        "Made by `python -m workbench.figures` from the library (not by executing notebooks); each recipe's results "
        f"are saved in `{RESULTS}/<recipe>.json`, so `--from-results` redraws without retraining. `-` in *mirrors*: "
        "a figure of our own.", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in rows), ""])
    target = Path(folder) / MANIFEST
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return target


def run(names=None, profile: str = "default", from_results: bool = False, device: str | None = None,
        seeds=None, folder: Path | None = None, command: str = "", log=print) -> list[Path]:
    """Make the recipes of ``names`` (module doc) into ``folder`` (default: the profile's figures folder); the
    manifest is rewritten after each recipe. Returns the files written."""
    from ..core.paths import figures_dir

    recipes = select(names)
    folder = Path(folder) if folder is not None else figures_dir(profile)
    if from_results:  # refuse before drawing anything if one of them cannot be redrawn
        for recipe in recipes:
            load_results(folder, recipe, profile)
    context = Context(profile=profile, seeds=None if seeds is None else tuple(seeds), device=device, log=log)
    written = []
    for recipe in recipes:
        log(f"{recipe.name}: {'drawing from saved results' if from_results else 'computing'} "
            f"({', '.join(recipe.outputs)})")
        written += make(recipe, context, folder, from_results, command)
        written.append(write_manifest(folder))
    return written
