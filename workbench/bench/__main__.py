"""Command line: ``python -m workbench.bench NAME [--json] [--save] [--seeds 0-9]`` and ``python -m workbench.bench
report`` (see :mod:`workbench.bench`)."""
from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import sys
from datetime import datetime
from pathlib import Path

from ..core.storage import atomic_path
from . import __doc__ as DOC
from .amazon23 import bench_amazon23, summarize_amazon23
from .baby import bench_baby
from .cemg import bench_cemg_study
from .ctr import bench_ctr
from .beauty import bench_beauty, bench_beauty_generator, bench_yelp
from .eval import bench_eval
from .explorer import bench_explorer
from .generate import bench_generate
from .mmq import bench_mmq_movielens, bench_mmq_study
from .showdown import bench_showdown
from .graph import bench_graph, bench_graph_ablations, summarize_graph
from .report import result_path, write_reports
from .study import bench_motorec_study, bench_tune
from .tokenizer import bench_tokenizer, summarize_tokenizer

BENCHMARKS = {"eval": bench_eval, "tokenizer": bench_tokenizer, "graph": bench_graph,
              "graph-ablations": bench_graph_ablations, "baby": bench_baby, "amazon23": bench_amazon23,
              "tune": bench_tune, "motorec-study": bench_motorec_study, "generate": bench_generate,
              "beauty": bench_beauty, "cemg-study": bench_cemg_study, "beauty-generator": bench_beauty_generator, "yelp": bench_yelp,
              "ctr": bench_ctr, "mmq-study": bench_mmq_study, "mmq-movielens": bench_mmq_movielens,
              "explorer": bench_explorer, "showdown": bench_showdown}


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


SUMMARIES = {"tokenizer": summarize_tokenizer, "graph": summarize_graph, "graph-ablations": summarize_graph,
             "amazon23": summarize_amazon23}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.bench", description=DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(BENCHMARKS) + ["report"],
                        help="a benchmark, or `report` (BENCHMARKS.md and the README table from the saved results)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--save", action="store_true", help="also write the result to figures/benchmarks/bench-NAME.json")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the models (default 0)")
    parser.add_argument("--seeds", default=None,
                        help="run once per seed (0-9 or 0,3,7) and add a summary across them (overrides --seed)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="an epoch budget, for the benchmarks that train to one (beauty, beauty-generator, yelp)")
    parser.add_argument("--size", default=None, choices=("tiger", "small", "tiny"),
                        help="the T5 generator's size, for beauty-generator and yelp (default: TIGER's; a GPU size)")
    parser.add_argument("--append", action="store_true",
                        help="with --seeds and --save: add these seeds' runs to the saved multi-seed result (a long "
                             "benchmark run in parts); seeds already saved are refused")
    args = parser.parse_args(argv)
    if args.name == "report":
        for path in write_reports():
            print(f"wrote {path}")
        return 0
    try:
        seeds = None if args.seeds is None else parse_seeds(args.seeds)
    except ValueError as err:
        parser.error(str(err))
    command = " ".join(["python -m workbench.bench", *(argv if argv is not None else sys.argv[1:])])
    previous = None
    if args.append:
        if not (args.save and seeds):
            parser.error("--append needs --seeds and --save")
        previous = _saved_runs(args.name, seeds)
        if previous is None:
            parser.error(f"--append: no saved multi-seed result of {args.name!r} to add to")

    def save(result: dict) -> None:
        if previous is not None:
            # read again: parts run side by side (one seed each) may have saved since this one started
            latest = _saved_runs(args.name, seeds) or previous
            result = _combined(args.name, latest, result, command.replace(" --save", ""))
        save_result(args.name, {**result, "command": command.replace(" --save", ""),
                                "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
                                "machine_note": f"{os.cpu_count()} CPUs, {platform.machine()}"})

    # a multi-seed run saves what it has after every seed (a long run cut short keeps its finished seeds)
    extra = _options(parser, args)
    result = run_benchmark(args.name, args.device, args.repeats, args.seed, seeds,
                           on_seed=save if args.save and seeds else None, **extra)
    if args.save:
        save(result)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


def _options(parser, args) -> dict:
    """``--epochs`` and ``--size`` as keyword arguments of the benchmark, refused where it has no such option."""
    accepted = inspect.signature(BENCHMARKS[args.name]).parameters
    extra = {}
    for option, value, why in (("epochs", args.epochs, "has no epoch budget"),
                               ("size", args.size, "trains no generator")):
        if value is not None:
            if option not in accepted:
                parser.error(f"--{option}: the {args.name} benchmark {why}")
            extra[option] = value
    return extra


def run_benchmark(name: str, device: str | None, repeats: int, seed: int, seeds: list[int] | None,
                  on_seed=None, **extra) -> dict:
    """One run, or one per seed with a summary across them (``{"runs": [...], "summary": ...}``);
    ``on_seed(partial result)`` after each seed but the last (the seeds done so far)."""
    if seeds is None:
        return BENCHMARKS[name](device=device, repeats=repeats, seed=seed, **extra)
    runs = []

    def result() -> dict:
        done = seeds[:len(runs)]
        return {"benchmark": name, "seeds": done, "summary": SUMMARIES[name](runs) if name in SUMMARIES else None,
                "runs": runs}

    for s in seeds:
        runs.append(BENCHMARKS[name](device=device, repeats=repeats, seed=s, **extra))
        print(f"{name}: seed {s} done ({len(runs)}/{len(seeds)})", file=sys.stderr, flush=True)
        if on_seed is not None and len(runs) < len(seeds):
            on_seed(result())
    return result()


def _saved_runs(name: str, seeds: list[int]) -> dict | None:
    """The saved multi-seed result of ``name`` to append to; an error if it already holds one of ``seeds``."""
    path = result_path(name)
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    if "runs" not in saved:
        return None
    clash = sorted(set(saved["seeds"]) & set(seeds))
    if clash:
        raise SystemExit(f"--append: {path} already holds seed(s) {clash}")
    return saved


def _combined(name: str, previous: dict, result: dict, command: str) -> dict:
    """``previous``'s runs followed by ``result``'s, the summary recomputed over all of them; the commands of
    every part are kept in ``parts``."""
    runs = previous["runs"] + result["runs"]
    return {"benchmark": name, "seeds": previous["seeds"] + result["seeds"], "runs": runs,
            "summary": SUMMARIES[name](runs) if name in SUMMARIES else None,
            "parts": previous.get("parts", [previous.get("command", "?")]) + [command]}


def save_result(name: str, result: dict) -> Path:
    """Write ``figures/benchmarks/bench-<name>.json`` atomically."""
    path = result_path(name)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result, indent=1) + "\n")
    return path


if __name__ == "__main__":
    sys.exit(main())
