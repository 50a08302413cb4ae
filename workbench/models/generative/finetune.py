"""Behavior-aware fine-tuning for generative retrieval (MMQ section 3.3 with the generator of :mod:`.generator`).

A :class:`Generator` trained on frozen ids (the warm start) and a trainable copy of its tokenizer
(:class:`~workbench.models.ctr.features.SoftCoder`) are trained together on the training sequences:

* every item of a batch (history and target) is tokenized afresh; the encoder reads each history item's code
  tokens through the soft index (``ind @ E`` over that position's rows of T5's token embeddings ``E``: the hard
  codes' embeddings forward, the soft index's gradient backward, MMQ eq. 15-18);
* the decoder is trained to write the target's current hard codes (cross-entropy, as the generator's own loss);
* the loss is eq. 19: ``CE + 0.5 L_recon + 0.5 L_aux``;
* early stopping on the validation targets' teacher-forced cross-entropy (the ids move while training, so there
  is no fixed trie to beam-search with until they are re-exported).

Afterwards :meth:`SoftIdGenerator.export` re-encodes the catalogue, makes the ids unique again
(:func:`~.item_codes.resolve_collisions`, keeping their length), rebuilds the trie and returns a
:class:`Generator` over the new ids holding the fine-tuned T5, with the id-change report.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ...core.storage import content_hash
from ...data.sequences import PAD, SequenceData
from ...training.engine import Batch, StepOutput, Trainable, TrainConfig, batch_slices
from ..ctr.features import SoftCoder, joint_optimizer
from ..ctr.model import id_change_report
from .generator import EOS_TOKEN, PAD_TOKEN, Generator
from .item_codes import ItemCodes, last_level_cost, resolve_collisions
from ...tokenizers.semantic_ids import collision_report


@dataclass
class _TrainData:
    source: SequenceData
    histories: torch.Tensor   # (N, L) item ids, PAD on the left
    targets: torch.Tensor     # (N,)
    valid_histories: torch.Tensor
    valid_targets: torch.Tensor


class SoftIdGenerator(nn.Module, Trainable):
    """A fitted ``generator`` (copied) fine-tuned with a copy of ``tokenizer`` over item ``content`` (module doc).

    Args:
        tau: the soft index's temperature (eq. 16).
        recon_weight, aux_weight: eq. 19's alpha' and beta'.
        tokenizer_lr: the tokenizer's learning rate as a share of the generator's.
        valid_users: validation users whose teacher-forced loss picks the epoch (``None``: all).
    """

    train_defaults = TrainConfig(epochs=10, batch_size=256, lr=1e-3, optimizer="adamw", weight_decay=0.035,
                                 metric="ce", mode="min", patience=3)
    validation_metrics = ("ce",)

    def __init__(self, generator: Generator, tokenizer, content: np.ndarray, tau: float = 1.0,
                 recon_weight: float = 0.5, aux_weight: float = 0.5, tokenizer_lr: float = 0.1,
                 valid_users: int | None = 2048):
        super().__init__()
        if generator.t5 is None:
            raise ValueError("fine-tuning starts from a fitted generator (trained on the frozen ids)")
        if tau <= 0 or tokenizer_lr < 0:
            raise ValueError(f"tau must be > 0 and tokenizer_lr >= 0, got {tau}, {tokenizer_lr}")
        self.base = copy.deepcopy(generator)
        self.t5 = self.base.t5
        self.coder = SoftCoder(tokenizer)
        content = np.asarray(content, dtype=np.float32)
        if len(content) != generator.n_items_:
            raise ValueError(f"content has {len(content)} rows; the generator's catalogue has {generator.n_items_}")
        raw = self.coder.encode(content)
        M, K = self.coder.L, self.coder.K
        if generator.sizes != [K] * M:
            raise ValueError(f"fine-tuning needs ids of the tokenizer's {M} levels of {K} codes (collisions "
                             f"reassigned, not an extra level); the generator has sizes {generator.sizes}")
        if not np.array_equal(generator.codes_[:, :-1], raw[:, :-1]):  # reassignment moves the last level only
            raise ValueError("the generator's ids are not this tokenizer's codes on `content`")
        self.register_buffer("content", torch.as_tensor(content))
        self.register_buffer("offsets", torch.as_tensor(generator.offsets_))
        self.raw_before_ = raw
        self.tau, self.recon_weight, self.aux_weight = tau, recon_weight, aux_weight
        self.tokenizer_lr, self.valid_users = tokenizer_lr, valid_users

    # -- the model -----------------------------------------------------------------------------------------
    def _code_embeddings(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Soft token embeddings ``(U, M, d)`` and hard codes ``(U, M)`` of the distinct ``items``."""
        out = self.coder(self.content[items], self.tau)
        M, K = self.coder.L, self.coder.K
        rows = self.t5.shared.weight[self.offsets[0]:self.offsets[0] + M * K].view(M, K, -1)
        return torch.einsum("umk,mkd->umd", out.ind, rows), out.codes, out.losses

    def _forward(self, histories: torch.Tensor, targets: torch.Tensor):
        keep = (histories != PAD).any(0)
        histories = histories[:, int(keep.nonzero().min()):] if keep.any() else histories[:, -1:]
        real = histories != PAD
        items = torch.cat([histories[real], targets])
        unique, inverse = torch.unique(items, return_inverse=True)
        emb, codes, losses = self._code_embeddings(unique)
        B, L = histories.shape
        M, d = emb.shape[1], emb.shape[2]
        tokens = self.t5.shared.weight[PAD_TOKEN].expand(B, L, M, d).clone()
        tokens[real] = emb.index_select(0, inverse[:int(real.sum())])  # index_select: a deterministic backward
        eos = self.t5.shared.weight[EOS_TOKEN].expand(B, 1, d)
        inputs = torch.cat([tokens.reshape(B, L * M, d), eos], 1)
        mask = torch.cat([real.repeat_interleave(M, 1), torch.ones(B, 1, dtype=torch.bool, device=real.device)], 1)
        labels = codes[inverse[int(real.sum()):]] + self.offsets[None, :]
        out = self.t5(inputs_embeds=inputs, attention_mask=mask.long(), labels=labels)
        return out.loss, losses

    # -- training ------------------------------------------------------------------------------------------
    def fit(self, data: SequenceData, config: TrainConfig | None = None, callback=None, **options
            ) -> "SoftIdGenerator":
        """Fine-tune on ``data``'s training sequences (``options``: TrainConfig fields)."""
        self._run_engine(data, config, callback, options)
        return self

    def fit_data(self, data: SequenceData, device: torch.device) -> _TrainData:
        if not isinstance(data, SequenceData) or data.n_items != self.base.n_items_:
            raise ValueError("fine-tuning needs the SequenceData of the generator's catalogue")
        hist, targets, _ = data.examples(self.base.config.examples)
        vh, vt = data.histories("valid"), data.targets("valid")
        if self.valid_users is not None and len(vt) > self.valid_users:
            rows = np.sort(np.random.default_rng(0).choice(len(vt), self.valid_users, replace=False))
            vh, vt = vh[rows], vt[rows]
        t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        return _TrainData(data, t(hist), t(targets), t(vh), t(vt))

    def data_fingerprint(self, data: _TrainData) -> str:
        src = data.source
        return content_hash({"items": content_hash(src.train_items), "offsets": content_hash(src.train_offsets),
                             "valid": content_hash(src.valid_items), "codes": content_hash(self.raw_before_)})

    def epoch_batches(self, data: _TrainData, batch_size: int, rng: np.random.Generator) -> list[Batch]:
        order = torch.as_tensor(rng.permutation(len(data.targets)), device=data.targets.device)
        return [Batch({"histories": data.histories[order[s]], "targets": data.targets[order[s]]})
                for s in batch_slices(len(order), batch_size)]

    def training_step(self, batch: Batch) -> StepOutput:
        ce, extra = self._forward(batch.rows["histories"], batch.rows["targets"])
        return StepOutput({"ce": ce, "recon": self.recon_weight * extra["recon"],
                           "aux": self.aux_weight * extra["aux"]})

    @torch.no_grad()
    def validate(self, data: _TrainData) -> dict[str, float]:
        was = self.training
        self.eval()
        total, n = 0.0, 0
        for s in range(0, len(data.valid_targets), 512):
            ce, _ = self._forward(data.valid_histories[s:s + 512], data.valid_targets[s:s + 512])
            total, n = total + float(ce) * len(data.valid_targets[s:s + 512]), n + len(data.valid_targets[s:s + 512])
        self.train(was)
        return {"ce": total / max(n, 1)}

    def configure_optimizer(self, config: TrainConfig) -> torch.optim.Optimizer:
        return joint_optimizer(self, self.coder, config.lr, self.tokenizer_lr, config.optimizer == "adamw",
                               config.weight_decay)

    # -- after training ------------------------------------------------------------------------------------
    def export(self, collisions: str = "reassign") -> tuple[Generator, ItemCodes, dict]:
        """The catalogue's ids re-encoded by the fine-tuned tokenizer and made unique again, a :class:`Generator`
        over them (a new trie) holding the fine-tuned T5, and the id-change report (changed items and codes,
        collisions before and after, utilization, entropy)."""
        content = self.content.cpu().numpy()
        tokenizer = self.coder.source
        raw = tokenizer.encode(content)
        cost = last_level_cost(tokenizer, content) if collisions == "reassign" else None
        codes, sizes = resolve_collisions(raw, self.coder.K, collisions, cost)
        if sizes != self.base.sizes:
            raise ValueError(f"the re-exported ids have sizes {sizes}; the generator's vocabulary has "
                             f"{self.base.sizes}")
        gen = Generator(codes, sizes, config=self.base.config)
        gen.t5 = copy.deepcopy(self.t5)
        gen.to_device(self.content.device)
        before, after = collision_report(raw), collision_report(codes)
        report = {"collisions": collisions, "collision_rate_before": before["collision_rate"],
                  "max_items_per_id_before": before["max_items_per_id"],
                  "collision_rate_after": after["collision_rate"],
                  "changed_items": float((codes != raw).any(1).mean()), "id_length": codes.shape[1]}
        item = ItemCodes(codes, sizes, raw, report)
        change = id_change_report(self.base.codes_, codes, self.coder.K)
        change["changed_raw_items"] = float((raw != self.raw_before_).any(1).mean())
        return gen, item, change

