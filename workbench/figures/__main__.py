"""Command line: ``python -m workbench.figures [--profile P] [--only NAME ...] [--list] [--from-results]`` (see
:mod:`workbench.figures`)."""
from __future__ import annotations

import argparse
import sys

from . import __doc__ as DOC
from .registry import RECIPES
from .runner import FiguresError, run


def main(argv: list[str] | None = None) -> int:
    from ..core.config import PROFILES, get_profile

    parser = argparse.ArgumentParser(prog="python -m workbench.figures", description=DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="sizes and seeds (default: $WORKBENCH_PROFILE, else default)")
    parser.add_argument("--only", action="append", default=None, metavar="NAME",
                        help="a recipe or one of its outputs (repeat for several; default: every recipe)")
    parser.add_argument("--list", action="store_true", help="list the recipes, their outputs and what they mirror")
    parser.add_argument("--from-results", action="store_true",
                        help="redraw from the saved results in figures/results/ without training")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    args = parser.parse_args(argv)
    if args.list:
        for recipe in RECIPES.values():
            print(f"{recipe.name}  ({recipe.notebook})")
            for output, mirrors in recipe.outputs.items():
                print(f"    {recipe.filename(output):<34} {mirrors}")
        return 0
    profile = get_profile(args.profile)
    command = " ".join(["python -m workbench.figures", *(argv if argv is not None else sys.argv[1:])])
    try:
        written = run(args.only, profile, args.from_results, args.device, command=command,
                      log=lambda m: print(m, file=sys.stderr, flush=True))
    except FiguresError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in dict.fromkeys(written):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
