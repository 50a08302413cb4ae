"""Generative-retrieval studies for notebook 03 (CEMG Tables 2-3, Fig. 2-4) and the diagnostics of a generator.

One protocol for every next-item model (leave-one-out on :func:`~workbench.data.sequences.sequence_split`, the
whole catalogue, cold targets = items with at most 5 training interactions), with the references: popularity and,
on the synthetic catalogue, the next-item oracle. The generative models differ only in their item ids
(:data:`TOKENIZERS`): TIGER (an RQ-VAE on the text features), LETTER (the same with collaborative alignment to
SASRec's item embeddings and code diversity), CEMG (the RQ-VAE on CEMG's fused vector: PCA'd image and text weighted
by the LightGCN embedding, which is also part of the vector) and CEMG's ablations; the generator (a T5 from
scratch) and the constrained beam search are the same for all.

Budgets per profile: :data:`GENERATIVE_PRESETS` (the paper profile has CEMG's sizes: M = 4, K = 512,
lambda_q = 0.25, lambda_d = 0.01, TIGER's T5).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from ..core.config import preset
from ..data.dataset import RecDataset
from ..data.sequences import PAD, SequenceData, sequence_split
from ..evaluation.next_item import NextItemReport
from ..models.base import make_model
from ..models.generative.generator import Generator, generator_config, history_tokens
from ..models.generative.item_codes import ItemCodes, collaborative_embeddings, item_codes
from ..tokenizers.fusion import CollaborativeFusion
from ..tokenizers.letter import LETTER, LETTERConfig
from ..tokenizers.modalities import standardize
from ..tokenizers.quantizer import QuantizerConfig
from ..tokenizers.rqvae import RQVAE, RQVAEConfig


SENSITIVITY = {"levels": (2, 3, 4), "codebook": (32, 64, 128), "beta": (0.1, 0.25, 0.5), "diversity": (0.0, 0.01, 0.1)}


@dataclass(frozen=True)
class GenerativeStudyConfig:
    """Budgets and sizes of the generative study (one protocol for every model)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    max_len: int = 20
    examples: str = "prefix"            # generator training examples: "prefix" | "last"
    cf_dim: int = 64                    # d: LightGCN / SASRec embeddings, and CEMG's PCA size
    cf_epochs: int = 60
    fusion_epochs: int = 40
    levels: int = 3                     # M
    codebook: int = 64                  # K
    latent: int = 32                    # the RQ-VAE's D
    hidden: tuple[int, ...] = (256,)
    beta: float = 0.25                  # lambda_q (the commitment weight)
    diversity: float = 0.01             # lambda_d
    tokenizer_epochs: int = 100
    collisions: str = "level"           # TIGER's extra level (always possible) | "reassign" (LETTER's, M stays)
    generator: str = "small"            # a GENERATOR_SIZES name
    generator_epochs: int = 20
    generator_lr: float = 3e-3
    batch_size: int = 256
    sequence_epochs: int = 100          # SASRec, GRU4Rec
    patience: int = 5
    valid_users: int | None = 1000
    letter: dict = field(default_factory=dict)   # LETTERConfig options (cf_weight, diversity_weight, clusters)
    sensitivity: dict = field(default_factory=lambda: dict(SENSITIVITY))   # Fig. 4: field -> values tried


GENERATIVE_PRESETS = {
    "smoke": GenerativeStudyConfig(seeds=(0,), cf_dim=32, cf_epochs=20, fusion_epochs=10, levels=3, codebook=16,
                                   latent=16, hidden=(64,), tokenizer_epochs=20, generator="tiny",
                                   generator_epochs=8, sequence_epochs=60, patience=5, valid_users=200,
                                   sensitivity={"levels": (2,), "codebook": (32,), "beta": (0.5,), "diversity": (0.1,)}),
    # tiny T5 at the default profile: 11-12 s per epoch on 2 cores against 45 s for "small" (measured), which the
    # ablation's backbone swap trains instead
    "default": GenerativeStudyConfig(generator="tiny", generator_epochs=25),
    "paper": GenerativeStudyConfig(seeds=(0, 1, 2, 3, 4), levels=4, codebook=512, latent=64, hidden=(512, 256),
                                   tokenizer_epochs=300, generator="tiger", generator_epochs=200,
                                   generator_lr=1e-3, sequence_epochs=200, patience=10, valid_users=None,
                                   cf_epochs=300, fusion_epochs=100),
}
TOKENIZERS = ("tiger", "letter", "cemg", "cemg-wo-collab", "cemg-wo-image", "cemg-wo-text")
MAIN_MODELS = ("popularity", "oracle", "sasrec-bce", "sasrec-ce", "gru4rec", "tiger", "letter", "cemg")
SEQUENCE_MODELS = {"sasrec-bce": ("sasrec", {"loss": "bce"}), "sasrec-ce": ("sasrec", {"loss": "ce"}),
                   "gru4rec": ("gru4rec", {})}
_FUSION = {"cemg": {}, "cemg-wo-collab": {"collaborative": False}, "cemg-wo-image": {"modalities": ("text",)},
           "cemg-wo-text": {"modalities": ("image",)}}


def generative_study_config(profile: str | None = None, **changes) -> GenerativeStudyConfig:
    """The generative study's budget for ``profile`` (default: the active one), with ``changes``."""
    return preset(GENERATIVE_PRESETS, profile, **changes)


def generative_data(dataset: RecDataset, study: GenerativeStudyConfig) -> SequenceData:
    """Leave-one-out next-item data with the study's history length."""
    return sequence_split(dataset, max_len=study.max_len)


def rqvae_config(study: GenerativeStudyConfig) -> RQVAEConfig:
    """CEMG's RQ-VAE (eq. 4) at the study's sizes: ``M`` levels of ``K`` codes, lambda_q, lambda_d."""
    return RQVAEConfig(hidden=study.hidden, diversity_weight=study.diversity,
                       quantizer=QuantizerConfig(D=study.latent, L=study.levels, K=study.codebook, beta=study.beta))


class ItemTokens(NamedTuple):
    """A tokenizer's item ids: ``codes`` (unique, with the collision report), its input ``X``, the fitted
    ``tokenizer``, CEMG's ``fusion`` layer (or ``None``) and training ``seconds`` per stage (``collaborative``,
    ``fusion``, ``tokenizer`` in all, and ``tokenizer_per_epoch``)."""

    kind: str
    codes: ItemCodes
    X: np.ndarray
    tokenizer: object
    fusion: CollaborativeFusion | None
    seconds: dict


def collaborative_vectors(data: SequenceData, study: GenerativeStudyConfig, seed: int, model: str = "lightgcn"
                          ) -> tuple[np.ndarray, float]:
    """LightGCN (CEMG) or SASRec (LETTER) item embeddings from the training sequences; and the seconds taken."""
    t = time.perf_counter()
    emb = collaborative_embeddings(data, model, dim=study.cf_dim, epochs=study.cf_epochs, seed=seed)
    return emb, time.perf_counter() - t


def tokenize(kind: str, dataset: RecDataset, data: SequenceData, study: GenerativeStudyConfig, seed: int = 0,
             cf: np.ndarray | None = None) -> ItemTokens:
    """Item ids of one tokenizer (module doc); ``cf``: collaborative embeddings to reuse (LightGCN's for CEMG,
    SASRec's for LETTER), trained here when ``None``."""
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {kind!r}; expected one of {TOKENIZERS}")
    seconds, fusion = {}, None
    needs_cf = kind == "letter" or _FUSION.get(kind, {}).get("collaborative", kind != "tiger")
    if needs_cf and cf is None:
        cf, seconds["collaborative"] = collaborative_vectors(data, study, seed, "sasrec" if kind == "letter"
                                                             else "lightgcn")
    if kind in ("tiger", "letter"):
        X = standardize(dataset.features["text"])
    else:
        fusion = CollaborativeFusion(dim=study.cf_dim, **_FUSION[kind])
        t = time.perf_counter()
        fusion.fit(dataset.features, cf if fusion.config.collaborative else None, trained=data.item_degree() > 0,
                   epochs=study.fusion_epochs, seed=seed, progress=False)
        seconds["fusion"] = time.perf_counter() - t
        X = standardize(fusion.transform())
    if kind == "letter":
        tok, inputs = LETTER(X.shape[1], cf.shape[1], LETTERConfig(rqvae=rqvae_config(study), **study.letter)), (X, cf)
    else:
        tok, inputs = RQVAE(X.shape[1], rqvae_config(study)), (X,)
    t = time.perf_counter()
    tok.fit(*inputs, epochs=study.tokenizer_epochs, seed=seed, progress=False)
    seconds["tokenizer"] = time.perf_counter() - t
    seconds["tokenizer_per_epoch"] = float(tok.history_["seconds"].median())
    return ItemTokens(kind, item_codes(tok, X, study.collisions), X, tok, fusion, seconds)


class NextItemRun(NamedTuple):
    """One trained next-item model: ``name``, ``seed``, the fitted ``model``, its test ``report`` (with the
    ``cold`` stratum), ``seconds`` (training per stage, in all, and ``test_users_per_s``), the ``tokens`` of a
    generator (or ``None``)."""

    name: str
    seed: int
    model: object
    report: NextItemReport
    seconds: dict
    tokens: ItemTokens | None = None


def train_generator(tokens: ItemTokens, data: SequenceData, study: GenerativeStudyConfig, seed: int = 0,
                    callback=None, **changes) -> Generator:
    """The study's generator over ``tokens``' ids (``changes``: GeneratorConfig fields)."""
    cfg = generator_config(study.generator, examples=study.examples, valid_users=study.valid_users, **changes)
    gen = Generator(tokens.codes.codes, tokens.codes.sizes, config=cfg)
    return gen.fit(data, epochs=study.generator_epochs, lr=study.generator_lr, batch_size=study.batch_size,
                   patience=study.patience, seed=seed, callback=callback, progress=False)


def run_next_item(name: str, dataset: RecDataset, data: SequenceData, study: GenerativeStudyConfig, seed: int = 0,
                  tokens: ItemTokens | None = None, callback=None) -> NextItemRun:
    """Train ``name`` (``"popularity"``, ``"oracle"``, a :data:`SEQUENCE_MODELS` key, or a generator over a
    :data:`TOKENIZERS` kind, tokenized here unless ``tokens`` is given) and evaluate the test targets once."""
    seconds = {}
    t = time.perf_counter()
    if name == "popularity":
        model = make_model("sequence-popularity").fit(data)
    elif name == "oracle":
        model = make_model("next-item-oracle").fit(data, dataset)
    elif name in SEQUENCE_MODELS:
        model_name, options = SEQUENCE_MODELS[name]
        model = make_model(model_name, **options).fit(data, epochs=study.sequence_epochs, patience=study.patience,
                                                      seed=seed, callback=callback, progress=False)
    else:
        tokens = tokens if tokens is not None else tokenize(name, dataset, data, study, seed)
        seconds.update(tokens.seconds)
        t = time.perf_counter()
        model = train_generator(tokens, data, study, seed, callback)
    seconds["model"] = time.perf_counter() - t
    t = time.perf_counter()
    report = model.evaluate(data, "test")
    seconds["test_users_per_s"] = len(report.ranks) / (time.perf_counter() - t)
    return NextItemRun(name, seed, model, report, seconds, tokens)


def next_item_table(runs: list[NextItemRun], metrics=("recall@10", "ndcg@10", "recall@20", "ndcg@20")
                    ) -> pd.DataFrame:
    """One row per run: overall and cold metrics, epochs, seconds per epoch of each stage, test users/s."""
    rows = []
    for r in runs:
        row = {"model": r.name, "seed": r.seed, **{m: r.report[m] for m in metrics},
               **{f"cold {m}": r.report.strata.get("cold", {}).get(m, np.nan) for m in metrics}}
        history = getattr(r.model, "history_", None)
        row["epochs"] = len(history) if history is not None else 0
        row["model sec/epoch"] = float(history["seconds"].median()) if history is not None else 0.0
        row.update({f"{k} sec": v for k, v in r.seconds.items() if k not in ("model", "test_users_per_s")})
        row["test users/s"] = r.seconds["test_users_per_s"]
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ generator diagnostics
def _sample_users(data: SequenceData, part: str, n: int | None, seed: int = 0) -> np.ndarray:
    rows = np.arange(len(data.users(part)))
    if n is not None and n < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, n, replace=False))
    return rows


@torch.no_grad()
def level_accuracy(gen: Generator, data: SequenceData, part: str = "test", n_users: int | None = 1000
                   ) -> pd.DataFrame:
    """Teacher-forced accuracy per level: the share of targets whose level-``m`` code is the most likely code of
    that level given the true earlier codes (``accuracy``), and whose first ``m + 1`` codes all are
    (``prefix_accuracy``)."""
    rows = _sample_users(data, part, n_users)
    ids, mask = history_tokens(data.histories(part)[rows], gen.codes_, gen.offsets_)
    labels = torch.as_tensor(gen.codes_[data.targets(part)[rows]] + gen.offsets_[None, :], device=gen.device)
    gen.eval()
    logits = gen.t5(input_ids=torch.as_tensor(ids, device=gen.device),
                    attention_mask=torch.as_tensor(mask, dtype=torch.long, device=gen.device), labels=labels).logits
    right = torch.stack([logits[:, m, off:off + k].argmax(-1) + off == labels[:, m]
                         for m, (off, k) in enumerate(zip(gen.offsets_.tolist(), gen.sizes))], 1)   # (B, M)
    return pd.DataFrame({"level": np.arange(gen.n_levels), "accuracy": right.float().mean(0).cpu().numpy(),
                         "prefix_accuracy": right.int().cumprod(1).float().mean(0).cpu().numpy()})


def invalid_rate(gen: Generator, data: SequenceData, part: str = "test", n_users: int | None = 500) -> float:
    """Share of the tuples that beam search returns **without** the trie that are no item's code."""
    rows = _sample_users(data, part, n_users)
    hist = data.histories(part)[rows]
    free = torch.cat([gen.beams(hist[s:s + 256], constrained=False).items for s in range(0, len(hist), 256)])
    return float((free < 0).float().mean())


def beam_agreement(gen: Generator, data: SequenceData, part: str = "test", n_users: int = 100, k: int = 10) -> dict:
    """Constrained beam search against exact scoring of every item (:meth:`Generator.score`) on ``n_users``
    users: the mean share of the exact top ``k`` that the beam's top ``k`` holds, and how often the two top-1
    items agree."""
    rows = _sample_users(data, part, n_users)
    hist = data.histories(part)[rows]
    beam = gen.recommend(hist, k).item_ids.cpu()
    exact = gen.score(hist).topk(k, dim=1).indices.cpu()
    overlap = (beam[:, :, None] == exact[:, None, :]).any(2).float().mean(1)
    return {"users": len(rows), "k": k, "top_k_overlap": float(overlap.mean()),
            "top_1_agreement": float((beam[:, 0] == exact[:, 0]).float().mean())}


def exact_ranks(model, histories, targets, batch: int = 256) -> np.ndarray:
    """Each target's rank (0 = first) in ``model``'s exact scores of every item after its history
    (:meth:`score`: no beam, no top-k cut); ties: the lower item id first, as in the top-k lists."""
    targets = np.asarray(targets)
    ranks = []
    for s in range(0, len(targets), batch):
        scores = model.score(histories[s:s + batch]).float().cpu()
        t = torch.as_tensor(targets[s:s + batch])
        own = scores.gather(1, t[:, None])
        earlier = torch.arange(scores.shape[1])[None, :] < t[:, None]
        ranks.append(((scores > own) | ((scores == own) & earlier)).sum(1).numpy())
    return np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int64)


def cold_diagnosis(models: dict, data: SequenceData, part: str = "test", k: int = 10, n_users: int = 200,
                   seed: int = 0) -> pd.DataFrame:
    """Why cold targets (at most ``data.cold_max`` training interactions) are rarely found: per model, where
    its exact scores put the target of up to ``n_users`` users whose target is cold and of as many whose target
    is warm (median rank, share inside the exact top ``k``), and the share of its top-``k`` list slots that go
    to cold items at all, over ``n_users`` users drawn from everyone (a beam search for a generator). Compare
    the last column with ``cold items / catalogue`` and ``cold / targets``, the two references in the frame's
    ``attrs``."""
    cold, targets, hist = data.cold_items(), data.targets(part), data.histories(part)
    rng = np.random.default_rng(seed)

    def sample(rows):
        return np.sort(rng.choice(rows, min(n_users, len(rows)), replace=False))

    groups = {"cold": sample(np.flatnonzero(cold[targets])), "warm": sample(np.flatnonzero(~cold[targets])),
              "everyone": sample(np.arange(len(targets)))}
    out = {}
    for name, model in models.items():
        row = {}
        for group in ("cold", "warm"):
            ranks = exact_ranks(model, hist[groups[group]], targets[groups[group]])
            row[f"{group} targets: median rank"] = float(np.median(ranks)) if len(ranks) else np.nan
            row[f"{group} targets: in exact top {k}"] = float((ranks < k).mean()) if len(ranks) else np.nan
        rows = groups["everyone"]
        top = torch.cat([model.recommend(hist[rows[s:s + 256]], k).item_ids.cpu() for s in range(0, len(rows), 256)])
        row[f"cold share of top {k}"] = float(cold[top.numpy()].mean())
        out[name] = row
    frame = pd.DataFrame.from_dict(out, orient="index")
    frame.attrs = {"cold items / catalogue": float(cold.mean()), "cold / targets": float(cold[targets].mean()),
                   "users per group": {g: len(r) for g, r in groups.items()}}
    return frame


def generation_table(gen: Generator, data: SequenceData, user: int, k: int = 10, part: str = "test",
                     items: pd.DataFrame | None = None, columns=("category", "colour")) -> pd.DataFrame:
    """One user's history -> codes -> generated items: a row per history item (``role="history"``) and per
    beam item (``role="generated"``, rank, score, whether it is the target, whether it is cold), with the codes
    as tokens (``<a_12><b_3>...``) and ``columns`` of the item metadata ``items`` when given."""
    from ..tokenizers.semantic_ids import LEVEL_LETTERS

    users = data.users(part)
    where = np.flatnonzero(users == user)
    if not len(where):
        raise ValueError(f"user {user} has no {part} target (users with fewer than 3 interactions are not evaluated)")
    hist = data.histories(part)[where]
    target, cold = data.targets(part)[where[0]], data.cold_items()
    res = gen.beams(hist, max(k, gen.config.beam))
    past = hist[0][hist[0] != PAD]
    made = res.items[0, :k].cpu().numpy()
    table = pd.DataFrame({"role": ["history"] * len(past) + ["generated"] * len(made),
                          "rank": [np.nan] * len(past) + list(range(1, len(made) + 1)),
                          "item": np.r_[past, made],
                          "score": [np.nan] * len(past) + res.scores[0, :k].cpu().tolist()})
    table["codes"] = ["".join(f"<{LEVEL_LETTERS[m]}_{c}>" for m, c in enumerate(gen.codes_[i])) if i >= 0 else ""
                      for i in table["item"]]
    table["target"] = table["item"] == target
    table["cold"] = [bool(cold[i]) if i >= 0 else False for i in table["item"]]
    if items is not None:
        for c in columns:
            table[c] = [items[c].iloc[i] if i >= 0 else None for i in table["item"]]
    return table


# ------------------------------------------------------------------------------------------------ the grids


def cemg_ablations(study: GenerativeStudyConfig) -> dict[str, tuple[str, dict]]:
    """CEMG's Fig. 2: label -> (tokenizer kind, generator size); the backbone swap trains the other size from
    scratch (the paper swaps Llama-3-8B for a small transformer: no pretrained weights exist here)."""
    other = "tiny" if study.generator != "tiny" else "small"
    return {"CEMG": ("cemg", study.generator), "w/o Collab": ("cemg-wo-collab", study.generator),
            "w/o Image": ("cemg-wo-image", study.generator), "w/o Text": ("cemg-wo-text", study.generator),
            f"backbone {other}": ("cemg", other)}


def cemg_sensitivity(study: GenerativeStudyConfig) -> dict[str, tuple[str, object]]:
    """CEMG's Fig. 4: label -> (study field, value) for M, K, lambda_q, lambda_d around the study's values."""
    return {f"{name}={value}": (name, value) for name, values in study.sensitivity.items() for value in values
            if value != getattr(study, name)}


def _rows(runs: list[NextItemRun], part: str, labels: list[str], extra: list[dict] | None = None) -> pd.DataFrame:
    table = next_item_table(runs).assign(part=part, variant=labels)
    if extra:
        table = pd.concat([table, pd.DataFrame(extra)], axis=1)
    return table


def generative_grid(dataset: RecDataset, study: GenerativeStudyConfig, seed: int, parts=("main", "ablation",
               "sensitivity"), progress=None) -> pd.DataFrame:
    """One seed of notebook 03's grids (one row per run, ``part`` and ``variant`` columns): the main table
    (:data:`MAIN_MODELS`), the ablations and the sensitivity around the study's values (CEMG with each change)."""
    from dataclasses import replace

    data = generative_data(dataset, study)
    frames, cemg = [], None
    log = progress or (lambda label: None)
    if "main" in parts:
        runs = []
        for name in MAIN_MODELS:
            runs.append(run_next_item(name, dataset, data, study, seed))
            log(f"main {name}")
        cemg = runs[-1]
        frames.append(_rows(runs, "main", list(MAIN_MODELS)))
    if "ablation" in parts:
        runs, labels = [], []
        for label, (kind, size) in cemg_ablations(study).items():
            reuse = cemg is not None and kind == "cemg" and size == study.generator
            runs.append(cemg if reuse else run_next_item(kind, dataset, data, replace(study, generator=size), seed))
            labels.append(label)
            log(f"ablation {label}")
        frames.append(_rows(runs, "ablation", labels))
    if "sensitivity" in parts:
        runs, labels, extra = [], [], []
        for label, (name, value) in cemg_sensitivity(study).items():
            runs.append(run_next_item("cemg", dataset, data, replace(study, **{name: value}), seed))
            labels.append(label)
            extra.append({"param": name, "value": value})
            log(f"sensitivity {label}")
        frames.append(_rows(runs, "sensitivity", labels, extra))
    return pd.concat(frames, ignore_index=True)


def mean_and_ci(table: pd.DataFrame, columns, by: str = "model", confidence: float = 0.95) -> pd.DataFrame:
    """Per group of ``by`` (in order of appearance): ``seeds``, then each column's mean and ``<column> ci``, the
    t-interval half-width over seeds (0 for one seed)."""
    from ..evaluation.statistics import t_halfwidth

    rows = {}
    for key, group in table.groupby(by, sort=False):
        row = {"seeds": len(group)}
        for c in columns:
            values = group[c].to_numpy(dtype=float)
            row[c] = float(np.nanmean(values))
            row[f"{c} ci"] = t_halfwidth(values, confidence) if len(values) > 1 else 0.0
        rows[key] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def ci_text(table: pd.DataFrame, columns, digits: int = 4) -> pd.DataFrame:
    """A :func:`mean_and_ci` table as text: ``"mean ± ci"`` per column (the mean alone for one seed or an undefined
    interval, ``-`` for a column a row has no value for), and ``seeds``.

    >>> t = pd.DataFrame({"seeds": [3, 1], "auc": [0.71234, 0.6], "auc ci": [0.0123, 0.0]}, index=["a", "b"])
    >>> ci_text(t, ["auc"], 3)["auc"].tolist()
    ['0.712 ± 0.012', '0.600']
    """
    cells = {c: ["-" if not np.isfinite(m) else f"{m:.{digits}f}" if not np.isfinite(h) or n < 2
                 else f"{m:.{digits}f} ± {h:.{digits}f}" for m, h, n in zip(table[c], table[f"{c} ci"], table["seeds"])]
             for c in columns}
    return pd.DataFrame(cells, index=table.index).assign(seeds=table["seeds"])
