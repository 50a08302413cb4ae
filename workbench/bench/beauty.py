"""Real-data sequential benchmarks on ``../shared/data`` (skipped with a reason when it is absent).

* ``beauty``: SASRec with both losses on ``beauty/Beauty.txt`` (22,363 users, 12,101 items), leave-one-out, full
  ranking, R/N@5/10 beside TIGER's published SASRec row (the BCE protocol). Early stopping on validation
  NDCG@10 (patience 10, at most ``epochs``).
* ``beauty-generator``: the T5 generator over LETTER's published 4-level ids (``beauty/Beauty.index.json``),
  with an epoch budget (``--epochs``; TIGER-sized, a full run needs a GPU). In LETTER's file 13 items repeat a
  tuple already taken (nine pairs, two triples); TIGER's extra level makes them unique (``"level"``).
* ``yelp``: ``yelp/Yelp.item.json`` text (name and categories) -> all-MiniLM-L6-v2 -> an RQ-VAE (4 levels of
  256) -> collisions resolved -> TIGER ids, compared with LETTER's published Yelp ids (collisions, code usage);
  the generator runs when ``yelp/Yelp.txt`` is there (it is not in every copy of the reference data).
"""
from __future__ import annotations

import time

import numpy as np

from ..core.runtime import runtime_facts


# TIGER's Table (Amazon Beauty): SASRec and TIGER rows
PUBLISHED = {"sasrec": {"recall@5": 0.0387, "ndcg@5": 0.0249, "recall@10": 0.0605, "ndcg@10": 0.0318},
             "tiger": {"recall@5": 0.0454, "ndcg@5": 0.0321, "recall@10": 0.0648, "ndcg@10": 0.0384}}
KS = (5, 10)


def _beauty():
    from ..core.paths import shared_data_dir
    from ..data.loaders import load_sequences
    from ..data.sequences import sequence_split

    path = shared_data_dir() / "beauty" / "Beauty.txt"
    if not path.exists():
        return None, f"{path} is absent (the reference data is not beside this checkout)"
    return sequence_split(load_sequences(path, name="beauty")), None


def _metrics(report) -> dict:
    return {k: round(v, 5) for k, v in report.metrics.items()}


def bench_beauty(device: str | None = None, repeats: int = 1, seed: int = 0, epochs: int = 200) -> dict:
    """SASRec (BCE and CE) on Beauty (module doc)."""
    from ..models.base import make_model

    data, skipped = _beauty()
    if data is None:
        return {"benchmark": "beauty", "skipped": skipped}
    out = {"benchmark": "beauty", **runtime_facts(device), "users": data.n_users, "items": data.n_items,
           "published": PUBLISHED["sasrec"],
           "ties": {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in data.ties.items()}}
    for loss in ("bce", "ce"):
        t = time.perf_counter()
        model = make_model("sasrec", loss=loss).fit(data, epochs=epochs, seed=seed, device=device, progress=False)
        seconds = time.perf_counter() - t
        out[f"sasrec_{loss}"] = {**_metrics(model.evaluate(data, ks=KS, strata={})), "epochs": len(model.history_),
                                 "best_epoch": int(model.best_epoch_), "seconds": round(seconds, 1)}
    return out


def bench_beauty_generator(device: str | None = None, repeats: int = 1, seed: int = 0, epochs: int = 2,
                           size: str = "tiger") -> dict:
    """The generator on LETTER's published Beauty ids with an epoch budget (module doc)."""
    from ..core.paths import shared_data_dir
    from ..data.loaders import read_code_index
    from ..models.generative.item_codes import resolve_collisions
    from ..tokenizers.semantic_ids import collision_report

    data, skipped = _beauty()
    if data is None:
        return {"benchmark": "beauty-generator", "skipped": skipped}
    raw = read_code_index(shared_data_dir() / "beauty" / "Beauty.index.json", data.n_items)
    codes, sizes = resolve_collisions(raw, int(raw.max()) + 1, "level")
    return {"benchmark": "beauty-generator", **runtime_facts(device), "epoch_budget": epochs,
            "published": PUBLISHED["tiger"], "ids": collision_report(raw), "id_length": codes.shape[1],
            "generator": _generator_run(codes, sizes, data, size, epochs, seed, device),
            "note": "an epoch budget on this machine; the published TIGER row trained to convergence on a GPU"}


def bench_yelp(device: str | None = None, repeats: int = 1, seed: int = 0, epochs: int = 2, size: str = "tiger"
               ) -> dict:
    """Yelp text -> MiniLM -> RQ-VAE TIGER ids (module doc)."""
    from ..core.paths import shared_data_dir
    from ..data.encoders import cached_text_features
    from ..data.loaders import load_sequences, read_code_index, read_item_text
    from ..data.sequences import sequence_split
    from ..models.generative.item_codes import item_codes
    from ..tokenizers.health import level_health
    from ..tokenizers.modalities import standardize
    from ..tokenizers.quantizer import QuantizerConfig
    from ..tokenizers.rqvae import RQVAE
    from ..tokenizers.semantic_ids import collision_report

    folder = shared_data_dir() / "yelp"
    if not (folder / "Yelp.item.json").exists():
        return {"benchmark": "yelp", "skipped": f"{folder / 'Yelp.item.json'} is absent"}
    texts = read_item_text(folder / "Yelp.item.json")
    t = time.perf_counter()
    # never from the feature cache: encode_seconds measures MiniLM on the 20k texts
    X = standardize(cached_text_features(texts, "yelp-text", False, device))
    encode_seconds = time.perf_counter() - t
    tok = RQVAE(X.shape[1], hidden=(512, 256), quantizer=QuantizerConfig(D=32, L=4, K=256), diversity_weight=0.01)
    t = time.perf_counter()
    tok.fit(X, epochs=50, seed=seed, device=device, progress=False)
    ids = item_codes(tok, X, "reassign")
    letter = read_code_index(folder / "Yelp.index.json", len(texts))
    out = {"benchmark": "yelp", **runtime_facts(device), "items": len(texts),
           "encode_seconds": round(encode_seconds, 1),
           "tokenizer_seconds": round(time.perf_counter() - t, 1), "ours": ids.report,
           "ours_entropy_bits": level_health(ids.raw, 256)["entropy_bits"].round(3).tolist(),
           "letter_published": collision_report(letter),
           "letter_entropy_bits": level_health(letter, 256)["entropy_bits"].round(3).tolist()}
    if not (folder / "Yelp.txt").exists():
        out["generator"] = f"skipped: {folder / 'Yelp.txt'} (the interaction sequences) is absent"
        return out
    data = sequence_split(load_sequences(folder / "Yelp.txt", name="yelp"))
    if data.n_items != len(texts):
        raise ValueError(f"{folder / 'Yelp.txt'} has {data.n_items} items, {folder / 'Yelp.item.json'} {len(texts)}")
    out["generator"] = _generator_run(ids.codes, ids.sizes, data, size, epochs, seed, device)
    return out


def _generator_run(codes, sizes, data, size: str, epochs: int, seed: int, device) -> dict:
    """Train the generator over ``codes`` for at most ``epochs`` (early stopping on validation) and evaluate it on
    the test targets: metrics, epochs, best epoch, seconds, test users/s, the loss by epoch, and popularity's
    metrics on the same targets (the reference)."""
    from ..models.base import make_model
    from ..models.generative.generator import Generator, generator_config

    # every validation user, not the default sample of 2,048: at HR@10 near 0.01 a sample holds some twenty hits,
    # too few to pick an epoch by (the beam over all users costs seconds)
    gen = Generator(codes, sizes, config=generator_config(size, valid_users=None))
    t = time.perf_counter()
    gen.fit(data, epochs=epochs, lr=1e-3 if size == "tiger" else 3e-3, seed=seed, device=device, progress=False)
    seconds = time.perf_counter() - t
    t = time.perf_counter()
    report = gen.evaluate(data, ks=KS, strata={})
    users_per_s = len(report.ranks) / (time.perf_counter() - t)
    popularity = make_model("sequence-popularity").fit(data).evaluate(data, ks=KS, strata={})
    return {**_metrics(report), "size": size, "epochs": len(gen.history_), "best_epoch": int(gen.best_epoch_),
            "train_seconds": round(seconds, 1), "test_users_per_s": round(users_per_s, 1),
            "loss_by_epoch": [round(v, 4) for v in gen.history_["loss_ce"]], "popularity": _metrics(popularity)}
