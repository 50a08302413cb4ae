"""Notebook 01's figures: RQ-VAE training, codebook collapse and its fixes, code usage per level, the latent map, a
code case study, and the MMQ-Table-1-style comparison of seven tokenizers (quantization columns)."""
from __future__ import annotations

import numpy as np

from .registry import Context, Recipe, catalogue, frame_of, records, register

SEED = 0
GOOD = {"estimator": "rotation", "ema": True, "dead_code_threshold": 1.0}   # the four fixes of notebook 01
ATTRIBUTES = ["category", "colour", "pattern", "material", "brand"]


def _rqvae(X, lab, **quantizer_options):
    import torch

    from ..tokenizers.quantizer import QuantizerConfig
    from ..tokenizers.rqvae import RQVAE, RQVAEConfig

    torch.manual_seed(SEED)
    q = QuantizerConfig(D=lab.D, L=lab.L, K=lab.K, **quantizer_options)
    return RQVAE(X.shape[1], RQVAEConfig(hidden=lab.hidden, quantizer=q))


def _tokenizers(ds, X, lab, train, model) -> dict:
    """The seven tokenizers of notebook 01's comparison, fitted (``model``: the MA RQ-VAE already trained)."""
    import torch

    from ..tokenizers.kmeans import OPQ, RQKMeans
    from ..tokenizers.mmq import MMQTokenizer
    from ..tokenizers.modalities import ModalitySeparated, modality_slices

    modalities = ["image", "text"]
    slices = modality_slices({m: ds.features[m].shape[1] for m in modalities})

    def separated(make):
        return ModalitySeparated({m: (make(X[:, s]), s) for m, s in slices.items()})

    torch.manual_seed(SEED)
    mmq = MMQTokenizer({m: ds.features[m].shape[1] for m in modalities}, D=lab.D, K=lab.K, hidden=lab.hidden[:1],
                       dead_code_threshold=1.0)
    mmq.fit(X, config=train)
    return {"MA RQ-VAE": model, "MA RQ-KMeans": RQKMeans(K=lab.K, L=lab.L, seed=SEED).fit(X),
            "MA OPQ": OPQ(K=lab.K, L=lab.L, n_iter=5, seed=SEED).fit(X),
            "MS RQ-VAE": separated(lambda Xm: _rqvae(Xm, lab, **GOOD).fit(Xm, config=train)),
            "MS RQ-KMeans": separated(lambda Xm: RQKMeans(K=lab.K, L=lab.L, seed=SEED).fit(Xm)),
            "MS OPQ": separated(lambda Xm: OPQ(K=lab.K, L=lab.L, n_iter=5, seed=SEED).fit(Xm)), "MMQ": mmq}


def compute(ctx: Context) -> dict:
    import pandas as pd

    from ..analysis.lab import lab_config
    from ..analysis.plots import project_2d
    from ..data.synthetic import load_synthetic
    from ..tokenizers.health import attribute_scores, code_case_study, compare_tokenizers
    from ..tokenizers.modalities import fuse_modalities
    from ..training.engine import TrainConfig

    lab = lab_config(ctx.profile)
    ds = load_synthetic(ctx.profile, device=ctx.device)
    X = fuse_modalities(ds.features, ["image", "text"])
    train = TrainConfig(epochs=lab.epochs, batch_size=lab.batch_size, lr=lab.lr, seed=SEED, progress=False)
    model = _rqvae(X, lab, **GOOD).fit(X, config=train)
    collapsed = _rqvae(X, lab, estimator="ste", ema=False, kmeans_init=False, dead_code_threshold=0.0)
    collapsed.fit(X, config=train)
    ctx.log("tokenizer-lab: the seven tokenizers of the comparison")
    tokenizers = _tokenizers(ds, X, lab, train, model)
    attributes = ds.items[ATTRIBUTES]
    table = compare_tokenizers(tokenizers, X)
    nmi = {name: attribute_scores(tok.encode(X), attributes)["nmi"].groupby("attribute").max()
           for name, tok in tokenizers.items()}
    table = table.join(pd.DataFrame(nmi).T.add_prefix("best NMI "))
    codes = model.encode(X)
    case = code_case_study(codes, attributes, level=1, top=4, min_items=3)
    shown = [int(i) for c in case["code"].head(3) for i in np.flatnonzero(codes[:, 0] == c)[:4]]
    return {"seeds": [SEED], "profile": ctx.profile, "K": lab.K, "L": lab.L,
            "history": records(model.history_), "history_collapsed": records(collapsed.history_),
            "usage": {name: tokenizers[name].encode(X).tolist() for name in ("MA RQ-VAE", "MA RQ-KMeans", "MMQ")},
            "latent_map": project_2d(model.latents(X), method="tsne", seed=SEED).tolist(),
            "level1": codes[:, 0].tolist(), "case_items": shown, "comparison": records(table)}


def draw(results: dict) -> dict:
    import matplotlib.pyplot as plt

    from ..analysis.plots import plot_code_map, plot_code_usage, plot_item_grid, plot_training_curves

    K, L = results["K"], results["L"]
    history, collapsed = frame_of(results["history"]), frame_of(results["history_collapsed"])
    for h in (history, collapsed):
        h.index = h.index.astype(int)
    training, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    plot_training_curves(history, ["loss_total", "loss_recon"], ax=axes[0], title="losses")
    plot_training_curves(history, [f"entropy_l{level}" for level in range(1, L + 1)], ax=axes[1],
                         title=f"token entropy per level (max log2 K = {np.log2(K):.0f} bits)")
    training.tight_layout()
    collapse, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    for name, h in {"all four fixes removed": collapsed, "all four fixes": history}.items():
        axes[0].plot(h.index, h["entropy_bits"], marker=".", label=name)
        axes[1].plot(h.index, h["collision_rate"], marker=".", label=name)
    axes[0].set_title("mean token entropy (bits)")
    axes[1].set_title("collision rate")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    collapse.tight_layout()
    usage, axes = plt.subplots(3, 1, figsize=(9, 6.5))
    for ax, (name, codes) in zip(axes, results["usage"].items()):
        plot_code_usage(np.asarray(codes), K, ax=ax, title=name)
    usage.tight_layout()
    case = plot_item_grid(catalogue(results["profile"]), results["case_items"],
                          attributes=("category", "colour", "material"), ncols=4)
    case.suptitle("Items of three level-1 codes (one row per code)", y=1.02)
    return {"01_rqvae_training": training, "01_collapse_and_fix": collapse, "01_code_usage": usage,
            "01_latent_map": plot_code_map(np.asarray(results["latent_map"]), np.asarray(results["level1"]), top=10,
                                           title="RQ-VAE latents by level-1 code"),
            "01_code_case_study": case, "01_tokenizer_comparison": frame_of(results["comparison"])}


register(Recipe("tokenizer-lab", "01_tokenizers", {
    "01_rqvae_training": "-", "01_collapse_and_fix": "-", "01_code_usage": "-", "01_latent_map": "-",
    "01_code_case_study": "-",
    "01_tokenizer_comparison": "MMQ Tab. 1 (the quantization columns)"}, compute, draw,
    tables=("01_tokenizer_comparison",)))
