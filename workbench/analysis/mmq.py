"""MMQ studies for notebook 04 (MMQ Tables 1-2, Fig. 3-6): every tokenizer's ids under one protocol for both
downstream tasks.

* **Tokenizers** (:data:`METHODS`), all with ids of length 6 (``K`` codes per position) on the fused image and text
  features: modality-aligned (MA: one tokenizer on the concatenation) and modality-separated (MS: one per modality,
  3 positions each) RQ-VAE, RQ-KMeans and OPQ, and MMQ (2 shared + 2 x 2 specific experts).
* **Discriminative ranking**: a PPNet (:class:`~workbench.models.ctr.CTRModel`) on the chronological CTR split
  (:func:`~workbench.data.ctr.ctr_data`) with the user id, the item id and the ids' per-position embeddings summed
  (``"sum"``); the item-id PPNet alone is MMQ Table 1's "PPNet" row. AUC, GAUC, AUC on head / tail / cold items.
* **Generative retrieval**: the generator of notebook 03 (T5 from scratch, trie-constrained beam search) over each
  tokenizer's ids, collisions reassigned on the last position (length kept), or, where more items share a prefix
  than the last position has codes (items with identical features), TIGER's extra level (``collisions`` column);
  Recall and NDCG at 5 and 10.
* **Behavior-aware fine-tuning** (MMQ's full model, and RQ-VAE in Fig. 4): for ranking, the frozen-id PPNet
  warm-starts a soft-index PPNet, the temperature chosen on validation AUC among ``taus``
  (:meth:`~workbench.models.ctr.CTRModel.finetune`); for retrieval, the frozen-id generator warm-starts
  :class:`~workbench.models.generative.finetune.SoftIdGenerator` (tau chosen by ranking), whose re-exported ids
  the generator then settles on (its own early stopping on validation NDCG@10).
* **Parts** of :func:`mmq_grid`: ``main`` (Table 1, Fig. 3, Fig. 4), ``features`` (the PPNet over MMQ's ids with
  each semantic-id feature mode at a matched parameter budget), ``ablation`` (Table 2: w/o cosine quantizer,
  w/o auxiliary reconstruction, w/o orthogonal regularization; w/o fine-tuning is the frozen MMQ of ``main``),
  ``length`` (Fig. 5: 6 to 18 experts) and ``experts`` (Fig. 6: specific-only with 4, 6, 8, 10 experts). The
  length and expert studies use frozen ids (fine-tuning would multiply their cost; ``main`` shows what it adds),
  and train their generators for the study's first seed only (``sweep_retrieval``; ranking for every seed).

Budgets per profile: :data:`MMQ_PRESETS`.
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.config import preset
from ..core.storage import atomic_path, content_hash, json_default
from ..data.ctr import CTRData, ctr_data
from ..data.dataset import RecDataset
from ..data.sequences import SequenceData, sequence_split
from ..models.ctr import CTRModel
from ..models.generative.finetune import SoftIdGenerator
from ..models.generative.generator import Generator, generator_config
from ..models.generative.item_codes import item_codes
from ..tokenizers.kmeans import OPQ, RQKMeans
from ..tokenizers.mmq import MMQTokenizer
from ..tokenizers.modalities import ModalitySeparated, fuse_modalities, modality_slices
from ..tokenizers.quantizer import QuantizerConfig
from ..tokenizers.rqvae import RQVAE, RQVAEConfig

MODALITIES = ("image", "text")
METHODS = ("ma-rq-vae", "ma-rq-kmeans", "ma-opq", "ms-rq-vae", "ms-rq-kmeans", "ms-opq", "mmq")
ABLATIONS = {"mmq-wo-cosine": {"distance": "l2"}, "mmq-wo-aux": {"beta": 0.0}, "mmq-wo-ortho": {"gamma": 0.0}}
RETRIEVAL_METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")
RANKING_METRICS = ("auc", "gauc", "logloss", "auc_head", "auc_tail", "auc_cold")
QUANTIZATION_METRICS = ("recon", "entropy", "utilization", "collision_rate")


@dataclass(frozen=True)
class MMQStudyConfig:
    """Budgets and sizes of the MMQ study (one protocol for every tokenizer)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    K: int = 64                          # codes per position (the paper's public setting: 100)
    latent: int = 32                     # D of every expert and of the RQ-VAEs
    hidden: tuple[int, ...] = (256,)
    tokenizer_epochs: int = 100
    tokenizer_batch: int = 256
    opq_iters: int = 10
    # ranking
    ctr_dim: int = 16
    ctr_hidden: tuple[int, ...] = (128, 64)
    ctr_epochs: int = 30
    ctr_patience: int = 3
    ctr_batch: int = 1024
    taus: tuple[float, ...] = (0.5, 1.0)   # the soft index's temperature, chosen on validation AUC
    tokenizer_lr: float = 0.1
    finetune_epochs: int = 10
    # retrieval
    generator: str = "tiny"
    generator_epochs: int = 10
    generator_lr: float = 3e-3
    generator_batch: int = 256
    generator_patience: int = 3
    examples: str = "prefix"
    valid_users: int | None = 500
    retrieval_finetune_epochs: int = 2
    settle_epochs: int = 5               # the generator on the re-exported ids after fine-tuning (warm start)
    # Fig. 5 and 6
    lengths: tuple[int, ...] = (6, 9, 12, 15, 18)
    specific_only: tuple[int, ...] = (4, 6, 8, 10)
    parts: tuple[str, ...] = ("main", "features", "ablation", "length", "experts")
    sweep_retrieval: str = "first"       # the length and expert sweeps' generators: "first" seed only | "all"
    ablations: dict = field(default_factory=lambda: dict(ABLATIONS))


MMQ_PRESETS = {
    "smoke": MMQStudyConfig(seeds=(0,), K=16, latent=8, hidden=(32,), tokenizer_epochs=5, opq_iters=2, ctr_dim=8,
                            ctr_hidden=(16,), ctr_epochs=2, taus=(1.0,), finetune_epochs=1, generator_epochs=4,
                            valid_users=50, retrieval_finetune_epochs=1, lengths=(6, 9), specific_only=(6,)),
    # the generator reads each user's last training example only (1 example per user: about 2 s per epoch on 2
    # cores against 20 s for every prefix, at equal time the same test recall on the default catalogue, measured)
    # 8 epochs of every prefix: about 150 s per generator on 2 cores, test HR@10 0.119 on MA-RQ-KMeans ids against
    # popularity's 0.090 (measured; one example per user reached 0.079 in 45 s and stayed below popularity)
    "default": MMQStudyConfig(tokenizer_epochs=50, generator_epochs=8, valid_users=200, finetune_epochs=8,
                              retrieval_finetune_epochs=1, settle_epochs=3),
    "paper": MMQStudyConfig(seeds=(0, 1, 2, 3, 4), K=100, latent=64, hidden=(512, 256), tokenizer_epochs=300,
                            generator="small", generator_epochs=100, generator_lr=1e-3, generator_patience=10,
                            valid_users=None, finetune_epochs=30, retrieval_finetune_epochs=10, settle_epochs=20,
                            taus=(0.1, 0.5, 1.0, 2.0)),
}


def mmq_study_config(profile: str | None = None, **changes) -> MMQStudyConfig:
    """The MMQ study's budget for ``profile`` (default: the active one), with ``changes``."""
    return preset(MMQ_PRESETS, profile, **changes)


@dataclass
class MMQData:
    """One dataset's inputs to every tokenizer and task: fused standardised features ``X`` ``(n_items, F)``, the
    modalities' widths ``dims`` (in ``X``'s column order), the CTR split and the next-item split."""

    name: str
    X: np.ndarray
    dims: dict[str, int]
    ctr: CTRData
    sequences: SequenceData


def mmq_data(dataset: RecDataset, modalities=MODALITIES, max_len: int = 20) -> MMQData:
    """:class:`MMQData` of ``dataset`` (its ``modalities`` standardised and concatenated)."""
    X = fuse_modalities(dataset.features, list(modalities))
    dims = {m: dataset.features[m].shape[1] for m in modalities}
    return MMQData(dataset.name, X, dims, ctr_data(dataset), sequence_split(dataset, max_len=max_len))


def _rqvae(width: int, levels: int, study: MMQStudyConfig) -> RQVAE:
    return RQVAE(width, RQVAEConfig(hidden=study.hidden, quantizer=QuantizerConfig(D=study.latent, L=levels,
                                                                                   K=study.K)))


def make_tokenizer(method: str, data: MMQData, study: MMQStudyConfig, seed: int = 0, **mmq_options):
    """A fitted tokenizer of ``method`` (:data:`METHODS`, or ``"mmq"`` with MMQConfig ``mmq_options``) and the
    seconds its fit took."""
    X, slices, L = data.X, modality_slices(data.dims), 6
    fit = dict(epochs=study.tokenizer_epochs, batch_size=study.tokenizer_batch, seed=seed, progress=False)
    start = time.perf_counter()
    if method == "mmq":
        options = {"n_shared": 2, "n_specific": 2, **mmq_options}
        tok = MMQTokenizer(data.dims, D=study.latent, K=study.K, hidden=study.hidden, **options).fit(X, **fit)
    elif method.startswith("ma-"):
        kind = method[3:]
        tok = (_rqvae(X.shape[1], L, study).fit(X, **fit) if kind == "rq-vae" else
               RQKMeans(K=study.K, L=L, seed=seed).fit(X) if kind == "rq-kmeans" else
               OPQ(K=study.K, L=L, n_iter=study.opq_iters, seed=seed).fit(X) if kind == "opq" else None)
    elif method.startswith("ms-"):
        kind, parts = method[3:], {}
        per = L // len(slices)
        for m, cols in slices.items():
            part = X[:, cols]
            parts[m] = ((_rqvae(part.shape[1], per, study).fit(part, **fit) if kind == "rq-vae" else
                         RQKMeans(K=study.K, L=per, seed=seed).fit(part) if kind == "rq-kmeans" else
                         OPQ(K=study.K, L=per, n_iter=study.opq_iters, seed=seed).fit(part) if kind == "opq"
                         else None), cols)
        tok = None if any(t is None for t, _ in parts.values()) else ModalitySeparated(parts)
    else:
        tok = None
    if tok is None:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    return tok, time.perf_counter() - start


def quantization_metrics(tok, X: np.ndarray) -> dict[str, float]:
    """MMQ's quantization metrics: reconstruction error (MSE on the standardised features), mean entropy (bits)
    and utilization per position, and the raw ids' collision rate."""
    h = tok.evaluate(X)
    return {"recon": h["recon_mse"], "entropy": h["entropy_bits"], "utilization": h["utilization"],
            "collision_rate": h["collision_rate"]}


# --------------------------------------------------------------------------------------------------- ranking
def _ctr_fit(study: MMQStudyConfig, seed: int) -> dict:
    return dict(epochs=study.ctr_epochs, patience=study.ctr_patience, batch_size=study.ctr_batch, seed=seed,
                progress=False)


def rank(data: MMQData, study: MMQStudyConfig, seed: int, codes: np.ndarray | None = None, K: int | None = None,
         arch: str = "ppnet") -> tuple[CTRModel, dict]:
    """A PPNet (or, ``arch="dnn"``, the plain DNN) over ``codes`` (``None``: item ids only) and its test
    metrics."""
    features = "none" if codes is None else "sum"
    model = CTRModel(arch=arch, features=features, dim=study.ctr_dim, hidden=study.ctr_hidden)
    model.build(data.ctr, codes=codes, K=K, seed=seed)
    model.fit(data.ctr, **_ctr_fit(study, seed))
    return model, {**model.evaluate(data.ctr).metrics, "ctr_params": model.parameter_count(),
                   "ctr_epochs": int(model.best_epoch_)}


def finetune_rank(model: CTRModel, tok, data: MMQData, study: MMQStudyConfig, seed: int) -> tuple[CTRModel, dict]:
    """Behavior-aware fine-tuning of a frozen-id PPNet, tau chosen on validation AUC (module doc)."""
    fit = {**_ctr_fit(study, seed), "epochs": study.finetune_epochs, "tokenizer_lr": study.tokenizer_lr}
    best, by_tau = None, {}
    for tau in study.taus:
        soft = model.finetune(data.ctr, tok, data.X, tau=tau, **fit)
        by_tau[f"valid_auc_tau_{tau:g}"] = soft.valid_["auc"]
        if best is None or soft.valid_["auc"] > best.valid_["auc"]:
            best = soft
    frozen = best.frozen(data.X)
    return best, {**best.evaluate(data.ctr).metrics, "tau": best.config.tau, "ctr_params": frozen.parameter_count(),
                  "ctr_epochs": int(best.best_epoch_), **by_tau, **{f"ft_{k}": v for k, v in best.id_report_.items()}}


# ------------------------------------------------------------------------------------------------- retrieval
def retrieve(codes: np.ndarray, sizes, data: MMQData, study: MMQStudyConfig, seed: int, generator=None,
             epochs: int | None = None) -> tuple[Generator, dict]:
    """The study's generator over unique ids ``codes`` (trained from scratch, or warm-started from ``generator``'s
    T5, for ``epochs`` at most: default the study's) and its test Recall/NDCG at 5 and 10."""
    gen = Generator(codes, sizes, config=generator_config(study.generator, examples=study.examples,
                                                          valid_users=study.valid_users))
    if generator is not None:
        gen.t5 = generator.t5
    gen.fit(data.sequences, epochs=epochs or study.generator_epochs, lr=study.generator_lr,
            batch_size=study.generator_batch,
            patience=study.generator_patience, seed=seed, progress=False)
    report = gen.evaluate(data.sequences, "test", ks=(5, 10))
    return gen, {**{k: report.metrics[k] for k in RETRIEVAL_METRICS}, "generator_epochs": int(gen.best_epoch_)}


def finetune_retrieve(gen: Generator, tok, data: MMQData, study: MMQStudyConfig, seed: int, tau: float
                      ) -> tuple[Generator, dict]:
    """Behavior-aware fine-tuning of a frozen-id generator, then the generator settled on the re-exported ids."""
    try:  # refused for ids with TIGER's extra level; after training, ids that collide beyond the last position
        soft = SoftIdGenerator(gen, tok, data.X, tau=tau, tokenizer_lr=study.tokenizer_lr,
                               valid_users=study.valid_users)
        soft.fit(data.sequences, epochs=study.retrieval_finetune_epochs, batch_size=study.generator_batch,
                 lr=study.generator_lr, seed=seed, progress=False)
        new, codes, change = soft.export()
    except ValueError as err:
        return gen, {"gen_ft_error": str(err)}
    settled, metrics = retrieve(codes.codes, codes.sizes, data, study, seed, generator=new,
                                epochs=study.settle_epochs)
    return settled, {**metrics, **{f"gen_ft_{k}": v for k, v in change.items()}}


# ----------------------------------------------------------------------------------------------------- grid
def evaluate_method(name: str, tok, data: MMQData, study: MMQStudyConfig, seed: int, finetune: bool = False,
                    retrieval: bool = True, seconds: float = float("nan")) -> list[dict]:
    """Rows of one fitted tokenizer: frozen ids (ranking and retrieval), and with ``finetune`` a second row
    ``<name>+ft`` for the fine-tuned models (the same quantization columns: they describe the stage-1 ids)."""
    q = quantization_metrics(tok, data.X)
    base = {"method": name, "seed": seed, **q, "tokenizer_seconds": seconds, "id_length": tok.L}
    if retrieval:  # unique ids for the trie (ranking reads the raw ids: the item id tells colliding items apart)
        try:
            ids = item_codes(tok, data.X, "reassign")
        except ValueError:  # more items share a prefix than the last position has codes: TIGER's extra level
            ids = item_codes(tok, data.X, "level")
        raw = ids.raw
        base.update(collisions=ids.report["collisions"], collision_rate_after=ids.report["collision_rate_after"],
                    id_length=ids.codes.shape[1])
    else:
        raw = tok.encode(data.X)
    model, ranking = rank(data, study, seed, raw, tok.K)
    rows = [{**base, **ranking}]
    gen = None
    if retrieval:
        gen, metrics = retrieve(ids.codes, ids.sizes, data, study, seed)
        rows[0].update(metrics)
    if finetune:
        _, ft = finetune_rank(model, tok, data, study, seed)
        row = {**base, "method": f"{name}+ft", **ft}
        if retrieval:
            row.update(finetune_retrieve(gen, tok, data, study, seed, ft["tau"])[1])
        rows.append(row)
    return rows


def mmq_grid(dataset: RecDataset | MMQData, study: MMQStudyConfig, seed: int, parts=None, progress=None,
             checkpoint: str | Path | None = None) -> pd.DataFrame:
    """The study's rows for one seed (module doc), one row per method (and part).

    With ``checkpoint`` (a JSON file), every finished unit (one tokenizer's rows) is written there atomically, and
    a run over the same data, study, seed and parts resumes after the units it holds (a long grid cut short keeps
    its work); a file written for anything else is ignored, with a warning."""
    data = dataset if isinstance(dataset, MMQData) else mmq_data(dataset)
    parts = study.parts if parts is None else tuple(parts)
    done = _GridCheckpoint(checkpoint, {"data": data.name, "items": int(data.X.shape[0]), "seed": seed,
                                        "parts": list(parts), "study": asdict(study)})
    rows: list[dict] = []
    for unit, run in _grid_units(data, study, seed, parts):
        new = done.get(unit)
        if new is None:
            new = done.put(unit, run())
        rows.extend(new)
        if progress is not None:
            progress(f"{unit}: {', '.join(r['method'] for r in new)}" + (" (from the checkpoint)" if done.reused
                                                                          else ""))
    return pd.DataFrame(rows)


def _grid_units(data: MMQData, study: MMQStudyConfig, seed: int, parts: tuple[str, ...]):
    """``(unit name, run)`` for every unit of the grid; ``run()`` gives the unit's rows, each with its part."""
    def tagged(part: str, rows: list[dict]) -> list[dict]:
        return [{"part": part, **r} for r in rows]

    def method_unit(method: str):
        def run():
            tok, seconds = make_tokenizer(method, data, study, seed)
            rows = tagged("main", evaluate_method(method, tok, data, study, seed, seconds=seconds,
                                                  finetune=method in ("mmq", "ma-rq-vae", "ms-rq-vae")))
            if method == "mmq" and "features" in parts:
                rows += tagged("features", feature_modes(tok, data, study, seed))
            return rows
        return run

    def mmq_unit(part: str, name: str, finetune: bool, retrieval: bool = True, **options):
        def run():
            tok, seconds = make_tokenizer("mmq", data, study, seed, **options)
            return tagged(part, evaluate_method(name, tok, data, study, seed, finetune=finetune,
                                                retrieval=retrieval, seconds=seconds))
        return run

    if "main" in parts:
        yield "main: ppnet", lambda: tagged("main", [{"method": "ppnet", "seed": seed, **rank(data, study, seed)[1]}])
        for method in METHODS:
            yield f"main: {method}", method_unit(method)
    if "ablation" in parts:
        for name, options in study.ablations.items():
            yield f"ablation: {name}", mmq_unit("ablation", name, True, **options)
    if "features" in parts and "main" not in parts:
        yield "features", lambda: tagged("features", feature_modes(make_tokenizer("mmq", data, study, seed)[0],
                                                                   data, study, seed))
    sweep = study.sweep_retrieval == "all" or seed == study.seeds[0]
    if "length" in parts:
        for length in study.lengths:  # (6 is trained again: every length under one protocol in this part)
            if length % 3:
                raise ValueError(f"id lengths must be multiples of 3 (N_s = N_t = N_v), got {length}")
            yield f"length: {length}", mmq_unit("length", f"mmq-{length}", False, sweep, n_shared=length // 3,
                                                n_specific=length // 3)
    if "experts" in parts:
        for total in study.specific_only:
            if total % len(data.dims):
                raise ValueError(f"specific-only expert counts must split evenly over {len(data.dims)} modalities")
            yield f"experts: {total}", mmq_unit("experts", f"specific-only-{total}", False, sweep, n_shared=0,
                                                n_specific=total // len(data.dims))


class _GridCheckpoint:
    """The finished units of one grid run in a JSON file (``None``: nothing kept), keyed by the run's inputs."""

    def __init__(self, path: str | Path | None, inputs: dict):
        self.path = None if path is None else Path(path)
        self.key, self.units, self.reused = content_hash(inputs), {}, False
        if self.path is None or not self.path.exists():
            return
        try:
            saved = json.loads(self.path.read_text())
            if saved.get("key") != self.key:
                raise ValueError("it was written for another dataset, study, seed or parts")
            self.units = dict(saved["units"])
        except (ValueError, KeyError, TypeError, OSError) as err:
            warnings.warn(f"grid checkpoint {self.path} is not used ({err}); starting afresh", RuntimeWarning,
                          stacklevel=3)

    def get(self, unit: str) -> list[dict] | None:
        self.reused = unit in self.units
        return self.units.get(unit)

    def put(self, unit: str, rows: list[dict]) -> list[dict]:
        self.units[unit] = rows = json.loads(json.dumps(rows, default=json_default))
        if self.path is not None:
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps({"key": self.key, "units": self.units}))
        return rows




FEATURE_MODES = ("none", "sum", "concat", "ngram", "hash", "dense")


def feature_modes(tok, data: MMQData, study: MMQStudyConfig, seed: int) -> list[dict]:
    """The PPNet with each semantic-id feature mode of MMQ's frozen ids (:data:`FEATURE_MODES`; the soft mode is
    the fine-tuned row of ``main``), every mode's embedding size chosen so that its parameter count matches the
    ``"sum"`` model's (:func:`~workbench.models.ctr.matched_dim`)."""
    from ..models.ctr import CTRConfig, matched_dim

    codes = tok.encode(data.X)
    base = CTRConfig(arch="ppnet", features="sum", dim=study.ctr_dim, hidden=study.ctr_hidden)
    budget = CTRModel(base).build(data.ctr, codes=codes, K=tok.K).parameter_count()
    rows = []
    for mode in FEATURE_MODES:
        cfg = CTRConfig(arch="ppnet", features=mode, dim=study.ctr_dim, hidden=study.ctr_hidden)
        dim = matched_dim(cfg, data.ctr, budget, codes=codes, content=data.X, K=tok.K)
        model = CTRModel(arch="ppnet", features=mode, dim=dim, hidden=study.ctr_hidden)
        model.build(data.ctr, codes=codes, content=data.X, K=tok.K, seed=seed)
        model.fit(data.ctr, **_ctr_fit(study, seed))
        rows.append({"method": mode, "seed": seed, "dim": dim, "ctr_params": model.parameter_count(),
                     "budget": budget, **model.evaluate(data.ctr).metrics})
    return rows


def ranking_grid(data: MMQData, study: MMQStudyConfig, seed: int, methods=METHODS, finetune=("mmq",),
                 progress=None) -> pd.DataFrame:
    """Ranking only (no generator) for ``methods`` on ``data`` (e.g. MovieLens 100K's text and genre vectors),
    with the item-id PPNet and fine-tuned rows for ``finetune``."""
    _, ranking = rank(data, study, seed)
    rows = [{"part": "ranking", "method": "ppnet", "seed": seed, **ranking}]
    for method in methods:
        tok, seconds = make_tokenizer(method, data, study, seed)
        new = evaluate_method(method, tok, data, study, seed, finetune=method in finetune, retrieval=False,
                              seconds=seconds)
        rows.extend({"part": "ranking", **r} for r in new)
        if progress is not None:
            progress(f"ranking: {method}")
    return pd.DataFrame(rows)


def mmq_table(rows: pd.DataFrame, part: str = "main", columns=QUANTIZATION_METRICS[:3] + ("auc", "gauc")
              + RETRIEVAL_METRICS) -> pd.DataFrame:
    """Per method of one part, in the order they ran: ``seeds``, each column's mean and ``<column> ci`` (the 95%
    t-interval's half-width over seeds; :func:`~workbench.analysis.generative.mean_and_ci`)."""
    from .generative import mean_and_ci

    frame = rows[rows["part"] == part]
    with warnings.catch_warnings():  # a column a method has no value for (the item-id PPNet's retrieval) is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return mean_and_ci(frame, [c for c in columns if c in frame], by="method")
