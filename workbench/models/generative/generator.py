"""The generative recommender: a T5 encoder-decoder that reads a history as code tokens and writes the next item's
codes (TIGER; CEMG section 3.4 with T5, its setup's backbone), decoded by trie-constrained beam search.

* **Vocabulary.** Token 0 is padding (and the decoder's start), 1 the end of the history; level ``m``'s code
  ``c`` is token ``offsets[m] + c`` with ``offsets[0] = 2``: each level has its own tokens (CEMG's ``<a_12>``,
  ``<b_3>``...). A history of ``L`` items is ``L * M`` tokens and the end token; padded items are masked.
* **Model.** ``T5ForConditionalGeneration`` built from a ``T5Config`` and trained from scratch (no pretrained
  T5 is available offline); :data:`GENERATOR_SIZES` names TIGER's size (4 + 4 layers, d_model 128, 6 heads of
  64, d_ff 1024) and smaller ones. ``pretrained`` accepts a local checkpoint folder (``save_pretrained``), read
  as safetensors without network access, its embeddings resized to this vocabulary.
* **Training.** Teacher forcing (the decoder reads the target's codes shifted right), cross-entropy over the
  ``M`` target tokens, AdamW; examples from every prefix of the training sequences or the last only
  (``examples``). Validation: beam-search NDCG@10 on a fixed random subset of validation users
  (``valid_users``), because a full beam search per epoch would cost more than the epoch.
* **Recommendation.** :func:`~.beam.beam_search` with the catalogue's :class:`~.trie.CodeTrie`;
  :meth:`Generator.score` is the exact reference: the teacher-forced log-probability of every item's code tuple.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ...core.config import resolve_config
from ...core.runtime import seeded
from ...core.storage import content_hash
from ...data.sequences import PAD, SequenceData
from ...training.engine import Batch, StepOutput, Trainable, TrainConfig, batch_slices
from ..base import Recommendation, register
from ..sequential.base import NextItemRecommender
from .beam import BeamResult, beam_search
from .trie import CodeTrie

PAD_TOKEN, EOS_TOKEN, FIRST_CODE_TOKEN = 0, 1, 2

# encoder and decoder layers (each), d_model, heads, d_kv, d_ff
GENERATOR_SIZES = {
    "tiger": dict(layers=4, d_model=128, heads=6, d_kv=64, d_ff=1024),
    "small": dict(layers=2, d_model=64, heads=4, d_kv=16, d_ff=256),
    "tiny": dict(layers=1, d_model=32, heads=2, d_kv=16, d_ff=64),
}


@dataclass(frozen=True)
class GeneratorConfig:
    layers: int = 4           # encoder layers, and as many decoder layers (TIGER: 4 + 4)
    d_model: int = 128
    heads: int = 6
    d_kv: int = 64
    d_ff: int = 1024
    dropout: float = 0.1
    beam: int = 20            # >= the largest cut-off reported
    examples: str = "prefix"  # "prefix": every prefix of a training sequence | "last": the last one only
    valid_users: int | None = 2048   # validation users beam-searched per epoch (None: all)
    pretrained: str | None = None    # a local checkpoint folder to start from (never downloaded)

    def __post_init__(self) -> None:
        if self.examples not in ("prefix", "last"):
            raise ValueError(f"examples must be 'prefix' or 'last', got {self.examples!r}")
        if min(self.layers, self.d_model, self.heads, self.d_kv, self.d_ff, self.beam) < 1:
            raise ValueError("layers, d_model, heads, d_kv, d_ff and beam must be >= 1")


def generator_config(size: str = "tiger", **changes) -> GeneratorConfig:
    """A :class:`GeneratorConfig` of a named size (:data:`GENERATOR_SIZES`) with ``changes`` applied."""
    if size not in GENERATOR_SIZES:
        raise KeyError(f"unknown generator size {size!r}; expected one of {sorted(GENERATOR_SIZES)}")
    return replace(GeneratorConfig(**GENERATOR_SIZES[size]), **changes)


def token_offsets(sizes) -> np.ndarray:
    """The vocabulary id of each level's code 0 ``(M,)``."""
    return FIRST_CODE_TOKEN + np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)


def history_tokens(histories: np.ndarray, codes: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Encoder input ``(B, L * M + 1)`` and attention mask of histories ``(B, L)`` (item ids, ``PAD``): each item
    as its ``M`` code tokens, in order, then the end token; padded items are padding tokens, masked."""
    histories = np.asarray(histories)
    real = histories != PAD
    tok = codes[np.where(real, histories, 0)] + offsets[None, None, :]           # (B, L, M)
    tok = np.where(real[:, :, None], tok, PAD_TOKEN).reshape(len(histories), -1)
    ids = np.concatenate([tok, np.full((len(histories), 1), EOS_TOKEN)], 1)
    mask = np.concatenate([np.repeat(real, codes.shape[1], 1), np.ones((len(histories), 1), bool)], 1)
    return ids, mask


@dataclass
class _TrainData:
    source: SequenceData
    input_ids: torch.Tensor       # (N, S) int32
    attention_mask: torch.Tensor  # (N, S) bool
    labels: torch.Tensor          # (N, M) int64 target tokens
    lengths: np.ndarray           # (N,) history items of each example (for length-grouped batches)
    valid_rows: np.ndarray        # the validation users' rows in source.users("valid")


@register("generator")
class Generator(nn.Module, NextItemRecommender, Trainable):
    """T5 generator over item code tuples (module doc).

    Args:
        codes: ``(n_items, M)`` each item's codes, unique per item (collisions resolved).
        sizes: codebook size of each level (default: the largest code + 1 per level).
        config: :class:`GeneratorConfig` (or its fields as ``options``).
    """

    train_defaults = TrainConfig(epochs=200, batch_size=256, lr=1e-3, optimizer="adamw", weight_decay=0.035,
                                 metric="ndcg@10", patience=10)
    validation_metrics = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
    eval_batch: ClassVar[int] = 256

    def __init__(self, codes: np.ndarray, sizes=None, config: GeneratorConfig | None = None, **options):
        nn.Module.__init__(self)
        self.config = resolve_config(GeneratorConfig, config, options)
        codes = np.asarray(codes, dtype=np.int64)
        self.sizes = [int(k) for k in (sizes if sizes is not None else codes.max(0) + 1)]
        self.trie_ = CodeTrie(codes, self.sizes)        # checks shape, ranges and uniqueness
        self.codes_ = codes
        self.offsets_ = token_offsets(self.sizes)
        self.n_items_ = len(codes)
        self.t5: nn.Module | None = None

    @property
    def n_levels(self) -> int:
        return self.codes_.shape[1]

    @property
    def vocab_size(self) -> int:
        return FIRST_CODE_TOKEN + sum(self.sizes)

    # -- building ------------------------------------------------------------------------------------------
    def build(self, seed: int = 0) -> "Generator":
        """Create the T5 (from ``seed``, or from the ``pretrained`` folder); once."""
        if self.t5 is not None:
            return self
        from transformers import T5Config, T5ForConditionalGeneration

        c = self.config
        if c.pretrained is not None:
            path = Path(c.pretrained)
            if not (path / "config.json").is_file():
                raise FileNotFoundError(f"pretrained: {path} is not a checkpoint folder (no config.json); expected "
                                        "what T5ForConditionalGeneration.save_pretrained writes")
            t5 = T5ForConditionalGeneration.from_pretrained(path, local_files_only=True, use_safetensors=True)
            t5.resize_token_embeddings(self.vocab_size)
            t5.config.update({"pad_token_id": PAD_TOKEN, "eos_token_id": EOS_TOKEN,
                              "decoder_start_token_id": PAD_TOKEN})
        else:
            cfg = T5Config(vocab_size=self.vocab_size, d_model=c.d_model, d_kv=c.d_kv, d_ff=c.d_ff,
                           num_layers=c.layers, num_decoder_layers=c.layers, num_heads=c.heads,
                           dropout_rate=c.dropout, feed_forward_proj="relu", pad_token_id=PAD_TOKEN,
                           eos_token_id=EOS_TOKEN, decoder_start_token_id=PAD_TOKEN)
            with seeded(seed):
                t5 = T5ForConditionalGeneration(cfg)
        self.t5 = t5
        return self

    def to_device(self, device) -> "Generator":
        self.to(device)
        self.trie_.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return self.t5.shared.weight.device

    # -- training ------------------------------------------------------------------------------------------
    def fit(self, data: SequenceData, config: TrainConfig | None = None, callback=None, **options) -> "Generator":
        """Train on ``data``'s training sequences with the engine (``options``: TrainConfig fields); keeps
        ``history_``, ``best_epoch_``, ``valid_``; ends in eval mode with the best epoch's weights."""
        self.build(seed=self.train_config(config, **options).seed)
        self._run_engine(data, config, callback, options)
        return self

    def fit_data(self, data: SequenceData, device: torch.device) -> _TrainData:
        if not isinstance(data, SequenceData):
            raise TypeError(f"Generator.fit expects SequenceData (workbench.sequence_split), got {type(data).__name__}")
        if data.n_items != self.n_items_:
            raise ValueError(f"{data.name} has {data.n_items} items; this generator's codes cover {self.n_items_}")
        hist, targets, _ = data.examples(self.config.examples)
        if not len(targets):
            raise ValueError(f"{data.name}: no training example (every user has a single training item)")
        ids, mask = history_tokens(hist, self.codes_, self.offsets_)
        labels = self.codes_[targets] + self.offsets_[None, :]
        n_valid = len(data.users("valid"))
        rows = np.arange(n_valid)
        if self.config.valid_users is not None and n_valid > self.config.valid_users:
            rows = np.sort(np.random.default_rng(0).choice(n_valid, self.config.valid_users, replace=False))
        return _TrainData(data, torch.as_tensor(ids, dtype=torch.int32, device=device),
                          torch.as_tensor(mask, device=device), torch.as_tensor(labels, device=device),
                          (hist != PAD).sum(1), rows)

    def data_fingerprint(self, data: _TrainData) -> str:
        src = data.source
        return content_hash({"items": content_hash(src.train_items), "offsets": content_hash(src.train_offsets),
                             "valid": content_hash(src.valid_items), "codes": content_hash(self.codes_),
                             "max_len": src.max_len})

    def epoch_batches(self, data: _TrainData, batch_size: int, rng: np.random.Generator) -> list[Batch]:
        """Length-grouped batches (as ``transformers``' ``group_by_length``): the examples shuffled, sorted by
        history length (a stable sort keeps the shuffle among equal lengths), cut into batches whose order is
        shuffled; each batch then drops the padding columns all its rows share, so a short history costs little."""
        perm = rng.permutation(len(data.labels))
        perm = perm[np.argsort(data.lengths[perm], kind="stable")]
        slices = batch_slices(len(perm), batch_size)
        order = torch.as_tensor(perm, device=data.labels.device)
        return [Batch({"input_ids": data.input_ids[order[s]], "attention_mask": data.attention_mask[order[s]],
                       "labels": data.labels[order[s]]}) for s in (slices[i] for i in rng.permutation(len(slices)))]

    def training_step(self, batch: Batch) -> StepOutput:
        rows = batch.rows
        mask = rows["attention_mask"]
        width = int(mask.sum(0).nonzero().min())  # drop the columns that are padding in every row
        out = self.t5(input_ids=rows["input_ids"][:, width:].long(), attention_mask=mask[:, width:].long(),
                      labels=rows["labels"])
        return StepOutput({"ce": out.loss})

    def validate(self, data: _TrainData) -> dict[str, float]:
        from ...evaluation.next_item import evaluate_next_item

        src, rows = data.source, data.valid_rows
        return evaluate_next_item(lambda h, k: self.recommend(h, k).item_ids, src.histories("valid")[rows],
                                  src.targets("valid")[rows], ks=(10, 20), batch_size=self.eval_batch).metrics

    # -- recommending --------------------------------------------------------------------------------------
    def _encode(self, histories) -> tuple[torch.Tensor, torch.Tensor]:
        if self.t5 is None:
            raise RuntimeError("this Generator has not been fitted; call fit(data) first")
        h = np.asarray(histories)
        if h.ndim != 2 or (h.size and (h.max() >= self.n_items_ or h.min() < PAD)):
            raise ValueError(f"histories must be (B, L) item ids in [0, {self.n_items_}) or PAD, got shape {h.shape}")
        ids, mask = history_tokens(h, self.codes_, self.offsets_)
        keep = mask.any(0)
        keep[np.argmax(keep):] = True  # drop leading all-padding columns only
        return (torch.as_tensor(ids[:, keep], device=self.device),
                torch.as_tensor(mask[:, keep], dtype=torch.long, device=self.device))

    @torch.no_grad()
    def beams(self, histories, beam: int | None = None, constrained: bool = True) -> BeamResult:
        """The beam search's items, scores and codes ``(B, W)`` for histories ``(B, L)``."""
        was = self.training
        self.eval()
        ids, mask = self._encode(histories)
        out = beam_search(self.t5, ids, mask, self.trie_, self.offsets_, beam or self.config.beam, constrained)
        self.train(was)
        return out

    def recommend(self, histories, k: int) -> Recommendation:
        """The top ``k`` items by constrained beam search (beam ``max(k, config.beam)``); ``-1`` pads users with
        fewer reachable items."""
        res = self.beams(histories, max(k, self.config.beam))
        return Recommendation(res.items[:, :k], res.scores[:, :k])

    @torch.no_grad()
    def score(self, histories, item_batch: int = 4096) -> torch.Tensor:
        """Exact scores ``(B, n_items)``: the log-probability of every item's code tuple after each history
        (teacher forcing through the model's own forward pass): the reference the beam search approximates."""
        was = self.training
        self.eval()
        ids, mask = self._encode(histories)
        enc = self.t5.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state   # (B, S, d)
        labels_all = torch.as_tensor(self.codes_ + self.offsets_[None, :], device=self.device)  # (I, M)
        out = torch.empty(len(ids), self.n_items_, device=self.device)
        per = max(1, item_batch // max(len(ids), 1))
        for s in range(0, self.n_items_, per):
            labels = labels_all[s:s + per]
            n = len(labels)
            e = enc.repeat_interleave(n, 0)
            logits = self.t5(encoder_outputs=(e,), attention_mask=mask.repeat_interleave(n, 0),
                             labels=labels.repeat(len(ids), 1)).logits                    # (B * n, M, V)
            logp = torch.log_softmax(logits.float(), -1).gather(2, labels.repeat(len(ids), 1)[:, :, None])
            out[:, s:s + n] = logp.sum((1, 2)).view(len(ids), n)
        self.train(was)
        return out

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
