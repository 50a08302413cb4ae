"""Build the datasets the notebooks use, once: ``python -m workbench.prepare [--profile P] [--json]``.

Generates and encodes the synthetic catalogue of the profile (cached under ``data/cache``) and the
MovieLens 100K text features, and prints the build times and Table-1 statistics.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from .core.config import get_profile
from .data.loaders import load_ml100k
from .data.synthetic import load_synthetic


def prepare(profile: str | None = None, progress: bool = True) -> dict:
    """Build (or load from cache) every dataset of ``profile``; return timings and statistics."""
    profile = get_profile(profile)
    out = {"profile": profile}
    start = time.perf_counter()
    synthetic = load_synthetic(profile, progress=progress)
    out["synthetic_seconds"] = round(time.perf_counter() - start, 2)
    out["synthetic"] = synthetic.summary()
    start = time.perf_counter()
    ml = load_ml100k()
    out["ml100k_seconds"] = round(time.perf_counter() - start, 2)
    out["ml100k"] = ml.summary()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.prepare", description=__doc__)
    parser.add_argument("--profile", default=None, help="smoke, default or paper (default: $WORKBENCH_PROFILE)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = prepare(args.profile, progress=not args.json)
    print(json.dumps(result, default=float, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
