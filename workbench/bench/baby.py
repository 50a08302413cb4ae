"""``python -m workbench.bench baby``: LightGCN and MF-BPR on the real Baby interactions."""
from __future__ import annotations

import sys
import time


from ..core.runtime import runtime_facts


def bench_baby(device: str | None = None, repeats: int = 1, seed: int = 0, epochs: int = 150,
               reg_weights: tuple[float, ...] = (1e-4, 1e-3), lr: float = 5e-3) -> dict:
    """LightGCN and MF-BPR on ``../shared/data/baby-interactions`` (random 8:1:1 split, seed 0), MMRec's protocol
    (Adam, batch 2048, 64-d, early stopping on valid Recall@20 with patience 20) except the learning rate:
    5e-3 with at most ``epochs`` epochs, so that a 2-core CPU finishes in minutes (MMRec uses 1e-3 and up to
    1,000 epochs). The L2 weight is chosen among ``reg_weights`` on validation Recall@20 only; the test
    R/N@10,20 of the chosen setting are reported; progress goes to stderr (``repeats`` is unused)."""
    from ..core.paths import shared_data_dir
    from ..data.loaders import load_mmrec
    from ..data.splits import random_split
    from ..models.base import make_model

    folder = shared_data_dir() / "baby-interactions"
    if not folder.exists():
        return {"benchmark": "baby", "skipped": f"{folder} is absent"}
    ds = load_mmrec(folder)
    ds = ds.with_split(random_split(ds.interactions, seed=seed))
    out = {"benchmark": "baby", "users": ds.n_users, "items": ds.n_items, "interactions": len(ds.interactions),
           "split": f"random 8:1:1, seed {seed}", "lr": lr, "max_epochs": epochs}
    for name in ("lightgcn", "mf-bpr"):
        runs, models = {}, {}
        for reg in reg_weights:
            t0 = time.perf_counter()
            models[reg] = make_model(name, reg_weight=reg).fit(ds, epochs=epochs, lr=lr, device=device,
                                                               progress=False, seed=seed)
            runs[reg] = {"valid_recall@20": models[reg].valid_["recall@20"], "best_epoch": models[reg].best_epoch_,
                         "epochs_run": len(models[reg].history_), "seconds": time.perf_counter() - t0}
            print(f"baby {name} reg_weight={reg}: {runs[reg]}", file=sys.stderr, flush=True)
        best = max(runs, key=lambda r: runs[r]["valid_recall@20"])  # chosen on validation only
        test = models[best].evaluate(ds, "test", metrics=("recall", "ndcg"))  # the one test evaluation
        out[name] = {"chosen_reg_weight": best, **runs[best],
                     "test": {k: test[k] for k in ("recall@10", "recall@20", "ndcg@10", "ndcg@20")},
                     "grid": {str(k): v["valid_recall@20"] for k, v in runs.items()}}
    out.update(runtime_facts(device))
    return out
