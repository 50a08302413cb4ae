"""``python -m workbench.bench ctr``: our CTR DNN against DeepCTR-Torch's on MovieLens 100K, and the cost of a
behavior-aware fine-tuning step.

* **Speed and AUC.** The same model on both sides: user- and item-id embeddings of ``dim`` (training-window
  vocabularies with an out-of-vocabulary bucket, :func:`~workbench.data.ctr.ctr_data`), an MLP of ``hidden``
  ReLU units, one logit, binary cross-entropy, Adam at 1e-3, batch ``batch_size``, no regularization, ``epochs``
  epochs without early stopping, for each of ``n_seeds`` seeds. DeepCTR-Torch 0.3.0 (a benchmark-only
  dependency) builds it from its own ``BaseModel``, ``SparseFeat`` inputs and ``DNN`` layer and trains it with its
  own ``fit`` (no per-batch metrics). ``ours_examples_per_s`` and ``deepctr_examples_per_s`` count training rows
  over the seconds of training alone (best seed); ``ratio`` is ours over theirs; the AUCs are on the test window,
  mean and spread over the seeds.
* **Fine-tuning cost.** ``finetune_step_over_frozen``: the seconds of an epoch of our PPNet with MMQ's soft ids
  (6 experts of ``K`` codes over MovieLens' MiniLM text and genre vectors, eq. 19) over an epoch on the frozen ids
  (the same model and batches), the fastest epoch of each. ``finetune_flops_over_frozen`` is the same ratio in
  arithmetic (:func:`step_flops`): a fine-tuning step runs the tokenizer forward and backward on the batch's
  distinct items, which on a CPU sets the floor of the time ratio.
"""
from __future__ import annotations

import contextlib
import platform
import sys
import time

import numpy as np
import torch
from torch import nn

from ..core.runtime import get_device, runtime_facts
from ..data.ctr import CTRData, ctr_data
from ..data.loaders import load_ml100k
from ..evaluation.ctr import auc
from ..models.ctr import CTRModel
from ..tokenizers.mmq import MMQTokenizer
from ..tokenizers.modalities import fuse_modalities


def _deepctr_dnn(data: CTRData, dim: int, hidden: tuple[int, ...], seed: int, device: str):
    """DeepCTR-Torch's pieces assembled into the DNN we train (module doc)."""
    from deepctr_torch.inputs import SparseFeat, combined_dnn_input
    from deepctr_torch.layers import DNN
    from deepctr_torch.models.basemodel import BaseModel

    class DeepCTRDNN(BaseModel):
        def __init__(self, columns):
            super().__init__([], columns, l2_reg_linear=0.0, l2_reg_embedding=0.0, init_std=0.01, seed=seed,
                             task="binary", device=device)
            self.dnn = DNN(self.compute_input_dim(columns), hidden, activation="relu", init_std=0.01,
                           device=device)
            self.dnn_linear = nn.Linear(hidden[-1], 1).to(device)
            self.to(device)

        def forward(self, X):
            sparse, dense = self.input_from_feature_columns(X, self.dnn_feature_columns, self.embedding_dict)
            return self.out(self.dnn_linear(self.dnn(combined_dnn_input(sparse, dense))))

    columns = [SparseFeat("user", data.user_vocab_size, embedding_dim=dim),
               SparseFeat("item", data.item_vocab_size, embedding_dim=dim)]
    model = DeepCTRDNN(columns)
    model.compile("adam", "binary_crossentropy", metrics=None)
    return model


def _deepctr_inputs(part: dict) -> dict:
    return {"user": part["user_index"], "item": part["item_index"]}


def linear_macs(module: nn.Module) -> int:
    """Multiply-adds of one row through every linear layer of ``module`` (each applied once per row)."""
    return sum(m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))


def step_flops(model: CTRModel, data: CTRData, batch_size: int, seed: int = 0) -> dict:
    """The arithmetic of a fine-tuning step against a frozen-id step (forward and backward, ~3x the forward's
    multiply-adds): the click model on every row of a batch, and in fine-tuning the tokenizer's linear layers on the
    batch's distinct items (its soft index adds ``E x K x D`` per item, counted too). The ratio is the floor of
    ``finetune_step_over_frozen`` when both run at one efficiency."""
    items = data.part("train")["items"]
    batches = np.random.default_rng(seed).permutation(len(items))[:batch_size * 20].reshape(-1, batch_size)
    distinct = float(np.mean([len(np.unique(items[b])) for b in batches]))
    coder = model.coder
    click = linear_macs(model) - linear_macs(coder)
    index = coder.L * coder.K * sum(p.shape[-1] for n, p in coder.named_parameters() if "codebooks" in n) / coder.L
    tokenizer = linear_macs(coder) + 2 * index  # the logits and the looked-up codes
    frozen = 3 * click * batch_size
    return {"ratio": (frozen + 3 * tokenizer * distinct) / frozen, "distinct_items": distinct}


def bench_ctr(device: str | None = None, repeats: int = 3, seed: int = 0, epochs: int = 5, n_seeds: int = 3,
              dim: int = 16, hidden: tuple[int, ...] = (128, 64), batch_size: int = 1024, K: int = 256,
              finetune_epochs: int = 2) -> dict:
    """Run the benchmark (module doc); ``repeats`` is unused (every seed is a repeat)."""
    dev = get_device(device)
    ds = load_ml100k(device=str(dev))
    data = ctr_data(ds)
    train, test = data.part("train"), data.part("test")
    rows = len(train["labels"])
    ours, theirs = [], []
    for s in range(seed, seed + n_seeds):
        model = CTRModel(arch="dnn", dim=dim, hidden=hidden).fit(
            data, epochs=epochs, batch_size=batch_size, lr=1e-3, metric=None, patience=None, seed=s, device=str(dev),
            progress=False)
        seconds = float(model.history_["seconds"].sum())
        ours.append((rows * epochs / seconds, model.evaluate(data).metrics["auc"]))
        torch.manual_seed(s)
        with contextlib.redirect_stdout(sys.stderr):  # DeepCTR prints its device and batch counts; --json is stdout
            dc = _deepctr_dnn(data, dim, hidden, s, str(dev))
            start = time.perf_counter()
            dc.fit(_deepctr_inputs(train), train["labels"].astype(np.float32), batch_size=batch_size, epochs=epochs,
                   verbose=0, shuffle=True)
            seconds = time.perf_counter() - start
            p = dc.predict(_deepctr_inputs(test), batch_size=65536).ravel()
        theirs.append((rows * epochs / seconds, auc(test["labels"], p)))
    ours_speed, ours_auc = map(np.array, zip(*ours))
    their_speed, their_auc = map(np.array, zip(*theirs))

    # fine-tuning step over a frozen-id step: MMQ's 6 experts over MiniLM text and genres
    X = fuse_modalities(ds.features, ["text", "genre"])
    dims = {"text": ds.features["text"].shape[1], "genre": ds.features["genre"].shape[1]}
    tok = MMQTokenizer(dims, K=K).fit(X, epochs=3, seed=seed, device=str(dev), progress=False)
    fixed = dict(epochs=finetune_epochs, batch_size=batch_size, metric=None, patience=None, seed=seed,
                 device=str(dev), progress=False)
    frozen = CTRModel(arch="ppnet", features="sum", dim=dim, hidden=hidden).fit(data, codes=tok.encode(X), K=tok.K,
                                                                             **fixed)
    soft = frozen.finetune(data, tok, X, **fixed)
    frozen_epoch = float(frozen.history_["seconds"].min())
    soft_epoch = float(soft.history_["seconds"].min())
    flops = step_flops(soft, data, batch_size)
    return {
        "benchmark": "ctr", "dataset": "ml-100k", "train_rows": rows, "test_rows": len(test["labels"]),
        "epochs": epochs, "seeds": list(range(seed, seed + n_seeds)), "dim": dim, "hidden": list(hidden),
        "batch_size": batch_size,
        "ours_examples_per_s": float(ours_speed.max()), "deepctr_examples_per_s": float(their_speed.max()),
        "ratio": float(ours_speed.max() / their_speed.max()),
        "ours_auc": float(ours_auc.mean()), "deepctr_auc": float(their_auc.mean()),
        "ours_auc_runs": ours_auc.tolist(), "deepctr_auc_runs": their_auc.tolist(),
        "auc_gap": float(ours_auc.mean() - their_auc.mean()),
        "auc_spread": float(max(np.ptp(ours_auc), np.ptp(their_auc))),
        "finetune_step_over_frozen": soft_epoch / frozen_epoch, "frozen_epoch_seconds": frozen_epoch,
        "finetune_epoch_seconds": soft_epoch, "finetune_changed_items": soft.id_report_["changed_items"],
        "finetune_flops_over_frozen": flops["ratio"], "batch_distinct_items": flops["distinct_items"],
        "mmq_experts": tok.L, "mmq_K": K, **runtime_facts(dev), "machine": platform.machine(),
        "python": platform.python_version(),
    }
