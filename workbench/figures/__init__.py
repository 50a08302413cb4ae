"""Every figure and table in ``figures/``, made from the library (not by executing notebooks):

    python -m workbench.figures [--profile P] [--only NAME ...] [--list] [--from-results]

Each *recipe* (:mod:`workbench.figures.registry`) makes one group of outputs that share a computation; its
results (metrics, histories, coordinates) are saved as JSON in ``figures/results/<recipe>.json`` so that
``--from-results`` redraws the plots without training. ``figures/MANIFEST.md`` maps every output to the paper
figure or table it mirrors, with the profile, seeds, command and date of the results it was drawn from
(:mod:`workbench.figures.runner`). ``make figures`` runs the command for the default profile.

Outputs go where the notebooks write theirs (:func:`workbench.core.paths.figures_dir`): ``figures/`` for the default
and paper profiles, a temporary folder under smoke.
"""
from . import cemg, data_tour, explorer, mmq, motorec, showdown, tokenizer_lab  # noqa: F401  (each recipe module registers its recipes)
from .registry import RECIPES, Context, Recipe, frame_of, records, register
from .runner import FiguresError, code_version, load_results, make, run, select, write_manifest

__all__ = ["RECIPES", "Context", "Recipe", "frame_of", "records", "register", "FiguresError", "code_version",
           "load_results", "make", "run", "select", "write_manifest"]
