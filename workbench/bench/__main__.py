"""Command line: ``python -m workbench.bench NAME [--json] [--seeds 0-9]`` (see :mod:`workbench.bench`)."""
from __future__ import annotations

import argparse
import json
import sys

from . import __doc__ as DOC
from .baby import bench_baby
from .eval import bench_eval
from .graph import bench_graph, bench_graph_ablations, summarize_graph
from .tokenizer import bench_tokenizer, summarize_tokenizer

BENCHMARKS = {"eval": bench_eval, "tokenizer": bench_tokenizer, "graph": bench_graph,
              "graph-ablations": bench_graph_ablations, "baby": bench_baby}


def parse_seeds(text: str) -> list[int]:
    """``"0-9"`` -> ``[0, ..., 9]``; ``"0,3,7"`` -> ``[0, 3, 7]`` (ranges and lists may be mixed: ``"0-2,5"``)."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            seeds.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
        except ValueError:
            raise ValueError(f"--seeds: expected integers and ranges like 0-9 or 0,3,7, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--seeds: expected distinct non-negative seeds, got {text!r}")
    return seeds


SUMMARIES = {"tokenizer": summarize_tokenizer, "graph": summarize_graph, "graph-ablations": summarize_graph}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.bench", description=DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the models (default 0)")
    parser.add_argument("--seeds", default=None,
                        help="run once per seed (0-9 or 0,3,7) and add a summary across them (overrides --seed)")
    args = parser.parse_args(argv)
    if args.seeds is None:
        result = BENCHMARKS[args.name](device=args.device, repeats=args.repeats, seed=args.seed)
    else:
        try:
            seeds = parse_seeds(args.seeds)
        except ValueError as err:
            parser.error(str(err))
        runs = []
        for seed in seeds:
            runs.append(BENCHMARKS[args.name](device=args.device, repeats=args.repeats, seed=seed))
            print(f"{args.name}: seed {seed} done ({len(runs)}/{len(seeds)})", file=sys.stderr, flush=True)
        summary = SUMMARIES[args.name](runs) if args.name in SUMMARIES else None
        result = {"benchmark": args.name, "seeds": seeds, "summary": summary, "runs": runs}
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
