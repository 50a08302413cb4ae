"""Train one model from the command line, in one process or several:

    python -m workbench.train lightgcn --data synthetic --epochs 30 --output run.json
    torchrun --nproc_per_node 2 -m workbench.train motorec --data mmrec:../shared/data/baby --checkpoint run.pt

``MODEL`` is a registered recommender (``lightgcn``, ``motorec``, ``freedom``...; ``--list`` shows them) or a
tokenizer (``rqvae``, ``mmq``, trained on the dataset's standardised modalities). ``--data`` is ``synthetic``
(the profile's catalogue), ``ml-100k``, or an MMRec bundle folder (``mmrec:PATH`` or ``PATH``). A recommender is
fitted on the training split (``--split``), selected on validation, and evaluated once on the test split; a
tokenizer reports its codebook health. ``--set key=value`` sets a config field of the model (Python literals:
``--set K=64 --set hidden=(128,)``); unknown fields are errors.

Under ``torchrun`` every process joins one process group (gloo on a CPU, NCCL on a GPU), trains its share of each
batch under DistributedDataParallel, and rank 0 alone writes the checkpoint and the ``--output`` JSON, which
records every rank's state digest (equal digests: every process ended with the same weights, codebooks and code
buffers) and how many checkpoints each wrote.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .core import distributed as dist
from .core.config import check_options
from .core.runtime import get_device
from .core.storage import atomic_path
from .data.dataset import RecDataset
from .training.checkpoint import state_digest

TOKENIZERS = ("rqvae", "mmq")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from .models.base import model_classes

    parser = argparse.ArgumentParser(prog="python -m workbench.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", help="a registered recommender or a tokenizer (rqvae, mmq)")
    parser.add_argument("--list", action="store_true", help="list the models and exit")
    parser.add_argument("--data", default="synthetic", help="synthetic, ml-100k, or an MMRec bundle (mmrec:PATH)")
    parser.add_argument("--profile", default=None, help="smoke, default or paper (default: $WORKBENCH_PROFILE)")
    parser.add_argument("--split", default=None, choices=["given", "random", "loo", "temporal"],
                        help="how to split (default: the bundle's x_label if it has one, else random 8:1:1)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a model config field")
    for name in ("epochs", "batch-size", "patience", "seed"):
        parser.add_argument(f"--{name}", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--checkpoint", default=None, help="resumed from when present, written every epoch")
    parser.add_argument("--output", default=None, help="write the results as JSON here (rank 0)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar (rank 0)")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join([*sorted(model_classes()), *TOKENIZERS]))
        sys.exit(0)
    if args.model is None:
        parser.error("MODEL is required (see --list)")
    if args.model not in model_classes() and args.model not in TOKENIZERS:
        parser.error(f"unknown model {args.model!r}; expected one of {sorted(model_classes()) + list(TOKENIZERS)}")
    return args


def parse_settings(items: list[str]) -> dict:
    """``["K=64", "hidden=(128,)"]`` -> ``{"K": 64, "hidden": (128,)}`` (values as Python literals, else strings)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def load_data(spec: str, profile: str | None, split: str | None, seed: int) -> RecDataset:
    """The dataset ``--data`` names, split as ``--split`` asks (rank 0 builds caches first, then the others)."""
    from .data.loaders import load_ml100k, load_mmrec
    from .data.splits import leave_one_out, random_split, temporal_split
    from .data.synthetic import load_synthetic

    def load() -> RecDataset:
        if spec == "synthetic":
            return load_synthetic(profile, progress=False)
        if spec == "ml-100k":
            return load_ml100k()
        return load_mmrec(Path(spec[len("mmrec:"):] if spec.startswith("mmrec:") else spec))

    if not dist.is_main():
        dist.barrier()  # rank 0 builds any cache first
    ds = load()
    if dist.is_main():
        dist.barrier()
    split = split or ("given" if ds.is_split else "random")
    if split == "given":
        if not ds.is_split:
            raise ValueError(f"{spec}: --split given, but the data carries no x_label")
        return ds
    labels = {"random": lambda: random_split(ds.interactions, seed=seed),
              "loo": lambda: leave_one_out(ds.interactions),
              "temporal": lambda: temporal_split(ds.interactions)}[split]()
    return ds.with_split(labels)


def train_options(args: argparse.Namespace) -> dict:
    """The ``TrainConfig`` fields given on the command line."""
    given = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "patience": args.patience,
             "seed": args.seed, "device": args.device, "checkpoint": args.checkpoint}
    return {k: v for k, v in given.items() if v is not None} | {"progress": args.progress and dist.is_main()}


def build_tokenizer(name: str, ds: RecDataset, settings: dict):
    """An RQ-VAE or MMQ tokenizer for ``ds``'s modalities; ``settings`` fill its config (quantizer fields of an
    RQ-VAE included: ``K``, ``L``, ``D``, ``ema``...)."""
    from .tokenizers.mmq import MMQTokenizer
    from .tokenizers.quantizer import QuantizerConfig
    from .tokenizers.rqvae import RQVAE, RQVAEConfig

    if not ds.features:
        raise ValueError(f"{ds.name}: a tokenizer needs item features; the dataset has none")
    if name == "mmq":
        return MMQTokenizer({m: X.shape[1] for m, X in ds.features.items()}, **settings)
    q_fields = {f.name for f in dataclasses.fields(QuantizerConfig)}
    quantizer = QuantizerConfig(**{k: v for k, v in settings.items() if k in q_fields})
    rest = {k: v for k, v in settings.items() if k not in q_fields}
    check_options(RQVAEConfig, rest)  # an unknown field is an error that lists the valid ones
    return RQVAE(sum(X.shape[1] for X in ds.features.values()), RQVAEConfig(quantizer=quantizer, **rest))


def run(args: argparse.Namespace) -> dict:
    """Train as ``args`` say; the results (identical on every process except the per-rank entries)."""
    from .models.base import make_model
    from .tokenizers.modalities import fuse_modalities

    seed = args.seed or 0
    ds = load_data(args.data, args.profile, args.split, seed)
    settings, options = parse_settings(args.set), train_options(args)
    start = time.perf_counter()
    out: dict = {"model": args.model, "data": args.data, "dataset": ds.name, "world_size": dist.world_size()}
    if args.model in TOKENIZERS:
        X = fuse_modalities(ds.features)
        model = build_tokenizer(args.model, ds, settings)  # fit draws the initialisation from the seed
        model.fit(X, **options)
        out["health"] = model.evaluate(X)
    else:
        model = make_model(args.model, **settings).fit(ds, **options)
        report = model.evaluate(ds, "test", metrics=("recall", "ndcg", "precision", "hr"))
        out["valid"], out["test"] = model.valid_, report.metrics
    result = model.fit_result_
    out.update(seconds=time.perf_counter() - start, best_epoch=result.best_epoch, resumed_from=result.resumed_from,
               epochs_run=len(result.history), history=json.loads(result.history.reset_index().to_json(orient="records")))
    mine = {"rank": dist.rank(), "state_digest": state_digest(model), "checkpoints_written": result.checkpoints_written}
    out["ranks"] = dist.all_gather_objects(mine)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    distributed = dist.init_from_env(get_device(args.device))
    try:
        out = run(args)
    except BaseException:
        if distributed:
            dist.shutdown(wait=False)  # the peers may be inside a collective: do not wait for them
        raise
    if dist.is_main():
        text = json.dumps(out, default=_plain)
        if args.output:
            with atomic_path(args.output) as tmp:
                tmp.write_text(text)
        summary = {k: out[k] for k in ("model", "dataset", "world_size", "best_epoch", "seconds")}
        summary.update(out.get("test") or out.get("health") or {})
        print(json.dumps(summary, default=_plain))
    if distributed:
        dist.shutdown()
    return 0


def _plain(value):
    return value.item() if isinstance(value, np.generic) else str(value)


def _exit(code: int) -> None:
    """End the command. Under torchrun, once the results are written and the process group is left, the process
    ends without running interpreter finalizers: torch.distributed's background threads can still be joinable
    while C++ static objects are destroyed at exit, which aborts the process ("terminate called without an active
    exception"; seen in about one 2-process run in 15 here) and makes torchrun report a finished run as failed."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    _exit(main())
