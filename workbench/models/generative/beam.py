"""Trie-constrained beam search over a T5 encoder-decoder, vectorised (CEMG eq. 6, TIGER's decoding).

For a batch of ``B`` users and a beam of ``W``:

* the encoder runs **once per user**, and each decoder layer's cross-attention keys and values are computed
  once per user too: the ``W`` beams of a user attend to them by broadcasting (no ``B * W`` copies);
* the decoder runs one token per step with its own key/value cache of the self-attention (``(B * W, heads, t,
  d_kv)``, ``t <= M``), reordered with one ``index_select`` when beams are re-ranked;
* level ``m``'s step scores only that level's ``K_m`` tokens (the log-softmax is still over the whole vocabulary,
  as ``transformers``' ``generate`` scores), takes one gather from the :class:`~.trie.CodeTrie` (allowed codes and
  the nodes they lead to) and one top-``k`` over the ``W * K_m`` candidates of each user.

A sequence's score is the sum of its tokens' log-probabilities (CEMG eq. 6). Every returned item exists (the
last level's trie nodes are item ids), none repeats (distinct beams are distinct code tuples and a tuple is one
item), and a user with fewer than ``W`` reachable items gets ``-1`` (score ``-inf``) in the unused places.
``constrained=False`` decodes without the trie over the whole vocabulary (the invalid-prefix diagnostic): a
returned tuple that is no item's gets item ``-1``.

The decoder step is written on the weights of ``transformers``' T5 (pre-RMSNorm blocks, unscaled attention,
bucketed relative position bias in the first self-attention layer, output scaled by ``d_model ** -0.5`` when the
embeddings are tied); the tests hold it equal to the model's own forward pass and its beams to
``generate(..., prefix_allowed_tokens_fn=...)``.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .trie import CodeTrie


class BeamResult(NamedTuple):
    """``items`` ``(B, W)`` (``-1``: none), ``scores`` ``(B, W)`` summed log-probabilities, best first, and
    ``codes`` ``(B, W, M)`` the decoded code tuples (level-local codes; ``-1`` for a token outside the level)."""

    items: torch.Tensor
    scores: torch.Tensor
    codes: torch.Tensor


class _Decoder:
    """Incremental T5 decoding with beams sharing their user's cross-attention (module doc)."""

    def __init__(self, model, encoder_hidden: torch.Tensor, attention_mask: torch.Tensor):
        self.model, self.cfg = model, model.config
        self.blocks = model.decoder.block
        B, S, _ = encoder_hidden.shape
        H, dk = self.cfg.num_heads, self.cfg.d_kv
        # cross-attention keys and values, once per user: (B, H, S, dk)
        self.cross = [(blk.layer[1].EncDecAttention.k(encoder_hidden).view(B, S, H, dk).transpose(1, 2),
                       blk.layer[1].EncDecAttention.v(encoder_hidden).view(B, S, H, dk).transpose(1, 2))
                      for blk in self.blocks]
        neg = torch.finfo(encoder_hidden.dtype).min
        self.cross_bias = torch.where(attention_mask.bool(), 0.0, neg).to(encoder_hidden.dtype)[:, None, None, :]
        self.cache: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.rel = self.blocks[0].layer[0].SelfAttention
        tied = getattr(self.cfg, "scale_decoder_outputs", getattr(self.cfg, "tie_word_embeddings", True))
        self.out_scale = self.cfg.d_model ** -0.5 if tied else 1.0

    def step(self, tokens: torch.Tensor, beams: int) -> torch.Tensor:
        """Feed ``tokens`` ``(B * beams,)`` (``beams`` rows per user) at the next position; returns the
        log-probabilities ``(B * beams, V)`` of the token after them."""
        H, dk = self.cfg.num_heads, self.cfg.d_kv
        t = self.cache[0][0].shape[2] if self.cache else 0
        x = self.model.decoder.embed_tokens(tokens)[:, None, :]              # (R, 1, d)
        R = x.shape[0]
        bias = self.rel.compute_bias(t + 1, t + 1, device=x.device)[:, :, t:, :]   # (1, H, 1, t + 1)
        new_cache = []
        for i, blk in enumerate(self.blocks):
            sa = blk.layer[0].SelfAttention
            h = blk.layer[0].layer_norm(x)
            q, k, v = (lin(h).view(R, 1, H, dk).transpose(1, 2) for lin in (sa.q, sa.k, sa.v))
            if self.cache:
                k, v = torch.cat([self.cache[i][0], k], 2), torch.cat([self.cache[i][1], v], 2)
            new_cache.append((k, v))
            att = torch.softmax(q @ k.transpose(2, 3) * getattr(sa, "scaling", 1.0) + bias, dim=-1) @ v  # (R, H, 1, dk)
            x = x + sa.o(att.transpose(1, 2).reshape(R, 1, H * dk))
            ca = blk.layer[1].EncDecAttention
            h = blk.layer[1].layer_norm(x)
            q = ca.q(h).view(-1, beams, H, dk)                                 # (B, W, H, dk)
            ck, cv = self.cross[i]                                             # (B, H, S, dk)
            scores = torch.einsum("bwhd,bhsd->bwhs", q, ck) * getattr(ca, "scaling", 1.0) + self.cross_bias
            att = torch.einsum("bwhs,bhsd->bwhd", torch.softmax(scores, dim=-1), cv)
            x = x + ca.o(att.reshape(R, 1, H * dk))
            x = blk.layer[2](x)                                                # pre-norm feed-forward, residual
        self.cache = new_cache
        h = self.model.decoder.final_layer_norm(x[:, 0]) * self.out_scale
        return F.log_softmax(self.model.lm_head(h).float(), dim=-1)

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep the cache rows ``rows`` (the surviving beams' parents, in their new order)."""
        self.cache = [(k.index_select(0, rows), v.index_select(0, rows)) for k, v in self.cache]


@torch.no_grad()
def beam_search(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, trie: CodeTrie,
                token_offsets, beam: int, constrained: bool = True) -> BeamResult:
    """Decode the top ``beam`` items for each row of ``input_ids`` ``(B, S)`` (module doc).

    Args:
        model: a ``T5ForConditionalGeneration`` in eval mode.
        trie: the catalogue's :class:`CodeTrie` (on the model's device).
        token_offsets: ``(M,)`` the vocabulary id of code 0 of each level (level ``m``'s code ``c`` is token
            ``token_offsets[m] + c``).
        beam: the beam width ``W`` (and the number of items returned).
        constrained: mask every step with the trie (``False``: free decoding over the whole vocabulary).
    """
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    B, M = input_ids.shape[0], trie.n_levels
    dev = input_ids.device
    enc = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    dec = _Decoder(model, enc, attention_mask)
    start = torch.full((B,), model.config.decoder_start_token_id, dtype=torch.long, device=dev)
    logp = dec.step(start, beams=1)                                         # (B, V)
    scores = torch.zeros(B, 1, device=dev)
    nodes = torch.zeros(B, 1, dtype=torch.long, device=dev)
    codes = torch.zeros(B, 1, 0, dtype=torch.long, device=dev)
    W_prev = 1
    for m in range(M):
        cand, nxt, local = _candidates(logp, trie, m, nodes.reshape(-1), int(token_offsets[m]), constrained)
        C = cand.shape[1]
        cand = (scores.reshape(-1, 1) + cand).view(B, W_prev * C)
        k = min(beam, W_prev * C)
        scores, flat = cand.topk(k, dim=1)                                  # (B, k)
        parent, choice = flat // C, flat % C
        nodes = nxt.view(B, W_prev * C).gather(1, flat)
        picked_codes = local.reshape(B, W_prev * C).gather(1, flat)
        codes = torch.cat([codes.gather(1, parent[:, :, None].expand(-1, -1, codes.shape[2])),
                           picked_codes[:, :, None]], 2)
        if m + 1 < M:
            rows = (torch.arange(B, device=dev)[:, None] * W_prev + parent).reshape(-1)
            dec.reorder(rows)
            tokens = (choice + int(token_offsets[m])) if constrained else choice
            logp = dec.step(tokens.reshape(-1), beams=k)
            W_prev = k
    dead = ~torch.isfinite(scores) | (nodes < 0)
    items = torch.where(dead, torch.full_like(nodes, -1), nodes)
    if k < beam:  # fewer candidates than the beam: pad
        pad = beam - k
        items = F.pad(items, (0, pad), value=-1)
        scores = F.pad(scores, (0, pad), value=float("-inf"))
        codes = F.pad(codes, (0, 0, 0, pad), value=-1)
    return BeamResult(items, scores, codes)


def _candidates(logp: torch.Tensor, trie: CodeTrie, m: int, nodes: torch.Tensor, offset: int, constrained: bool
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The step's candidate scores ``(R, C)``, the trie nodes they lead to ``(R, C)`` (``-1``: off the trie) and
    their level-local codes ``(R, C)`` (``-1``: a token outside level ``m``'s block); constrained, ``C = K_m``."""
    K = trie.sizes[m]
    nxt = trie.next_nodes(m, nodes)                                          # (R, K)
    if constrained:
        block = logp[:, offset:offset + K]
        local = torch.arange(K, device=logp.device).expand(len(nodes), -1)
        return block.masked_fill(nxt < 0, float("-inf")), nxt, local
    V = logp.shape[1]
    tok = torch.arange(V, device=logp.device)
    inside = (tok >= offset) & (tok < offset + K)
    local = torch.where(inside, tok - offset, torch.full_like(tok, -1)).expand(len(nodes), -1)
    full = torch.full((len(nodes), V), -1, dtype=torch.long, device=logp.device)
    full[:, offset:offset + K] = nxt
    return logp, full, local
