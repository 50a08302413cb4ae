"""``python -m workbench.bench explorer``: how long the explorer takes to answer one selection on a catalogue of the
paper profile's size (7,050 items, 19,445 users): each panel of :mod:`workbench.analysis.explorer_app` built for
``repeats`` different selections (images drawn, as the widget draws them). Target on 2 cores: a selection answers
within about a second.

The panels read three tokenizers' codes (RQ-KMeans, OPQ, and RQ-KMeans on the image features alone), a generator
over RQ-KMeans' ids and LightGCN; the models are trained for one epoch only, since a selection's cost does not
depend on how well they rank."""
from __future__ import annotations

import time

import numpy as np


def _timed(build) -> float:
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    panel = build()
    seconds = time.perf_counter() - start
    for thing in panel:
        if hasattr(thing, "savefig"):
            plt.close(thing)
    if panel and getattr(panel[0], "kind", "") == "error":
        raise RuntimeError(f"the explorer refused a benchmark selection: {panel[0]}")
    return seconds


def bench_explorer(device: str | None = None, repeats: int = 5, seed: int = 0, profile: str = "paper") -> dict:
    """See the module doc."""
    import matplotlib

    matplotlib.use("Agg")
    from ..analysis.explorer import Explorer
    from ..analysis.explorer_app import code_panel, item_panel, user_panel
    from ..core.runtime import runtime_facts
    from ..data.sequences import sequence_split
    from ..data.synthetic import load_synthetic
    from ..models.base import make_model
    from ..models.generative.generator import Generator, generator_config
    from ..models.generative.item_codes import item_codes
    from ..tokenizers.kmeans import OPQ, RQKMeans
    from ..tokenizers.modalities import fuse_modalities

    t0 = time.perf_counter()
    ds = load_synthetic(profile, device=device)
    seq = sequence_split(ds)
    X = fuse_modalities(ds.features, ["image", "text"])
    rq = RQKMeans(K=64, L=6, seed=seed).fit(X)
    codes = {"rq-kmeans": rq.encode(X), "opq": OPQ(K=64, L=6, n_iter=2, seed=seed).fit(X).encode(X),
             "image rq-kmeans": RQKMeans(K=64, L=3, seed=seed).fit(ds.features["image"]).encode(ds.features["image"])}
    ids = item_codes(rq, X, "reassign")
    gen = Generator(ids.codes, ids.sizes, config=generator_config("tiny", examples="last", valid_users=200))
    gen.fit(seq, epochs=1, seed=seed, progress=False)
    ranker = make_model("lightgcn").fit(seq.as_dataset(), epochs=1, seed=seed, progress=False)
    ex = Explorer(ds, codes, sequences=seq, generator=gen, ranker=ranker)
    setup = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    items = rng.choice(ds.n_items, size=repeats, replace=False)
    users = rng.choice(seq.users("test"), size=repeats, replace=False)
    _timed(lambda: user_panel(ex, int(users[0])))  # warm-up: first beam search, first figure
    times = {"item": [_timed(lambda i=i: item_panel(ex, str(i), "rq-kmeans")) for i in items],
             "code": [_timed(lambda i=i: code_panel(ex, "rq-kmeans", 2, int(codes["rq-kmeans"][i, 1]))) for i in items],
             "user": [_timed(lambda u=u: user_panel(ex, int(u))) for u in users],
             "search": [_timed(lambda: [ex.search(t)]) for t in ("dress", "lamp", "wool", "mug", "tote")[:repeats]]}
    out = {"benchmark": "explorer", "profile": profile, "items": ds.n_items, "users": ds.n_users,
           "repeats": repeats, "setup_seconds": setup}
    for panel, values in times.items():
        out[f"{panel}_median_s"] = float(np.median(values))
        out[f"{panel}_max_s"] = float(np.max(values))
    out["slowest_median_s"] = max(out[f"{p}_median_s"] for p in times)
    return {**out, **runtime_facts(device)}
