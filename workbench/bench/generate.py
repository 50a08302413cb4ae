"""``python -m workbench.bench generate``: the constrained beam search's speed, against free decoding and against
``transformers``' ``generate(..., prefix_allowed_tokens_fn=...)`` on the same model and users.

The catalogue has Beauty's shape (12,101 items, 4 codes of K = 256, random unique tuples), the histories 20
items (81 encoder tokens), the model TIGER's size (4 + 4 layers, d_model 128, 6 heads of 64, d_ff 1024), beam 20;
the weights are untrained (decoding time depends on the shapes only). ``flop_utilization`` is the decoding's
arithmetic per second (:func:`decode_flops`, counted from the shapes) over the FLOP/s of a large float32 matrix
product timed in the same process, so it does not drift with the machine's speed as users/s do. ``peak_rss_mb``
is the process's peak resident memory after decoding (users in batches of 256); ``train_peak_rss_mb`` after the
training-speed steps (batch 256, teacher forcing, AdamW), which come last.
"""
from __future__ import annotations

import resource
import time

import numpy as np
import torch

BEAUTY_ITEMS, LEVELS, K, HISTORY, BEAM = 12101, 4, 256, 20, 20


def decode_flops(cfg, source_len: int, levels: int, beam: int) -> float:
    """Multiply-adds x 2 of decoding one user: the encoder over ``source_len`` tokens, each decoder layer's
    cross-attention keys and values once, then ``levels`` decoder steps (the first with one beam, the others
    with ``beam``), each with self- and cross-attention, the feed-forward block and the output layer."""
    d, inner, ff, S, V = cfg.d_model, cfg.num_heads * cfg.d_kv, cfg.d_ff, source_len, cfg.vocab_size
    # encoder layers: q, k, v, o projections, attention scores and weighted sums, feed-forward
    macs = cfg.num_layers * (S * (4 * d * inner + 2 * d * ff) + 2 * S * S * inner)
    macs += cfg.num_decoder_layers * 2 * S * d * inner                 # cross-attention keys and values, once
    for step in range(levels):
        rows = 1 if step == 0 else beam
        per_layer = 4 * d * inner + 2 * (step + 1) * inner + 2 * d * inner + 2 * S * inner + 2 * d * ff
        macs += rows * (cfg.num_decoder_layers * per_layer + d * V)    # + the output layer
    return 2.0 * macs


def matmul_flops_per_s(n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of an ``n x n`` float32 matrix product (the best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best


def _best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _hf_allowed(trie, offsets):
    """``prefix_allowed_tokens_fn`` for transformers: walk the same trie from the decoded prefix."""
    def allowed(batch_id, sent):
        prefix = sent[1:]
        node = torch.zeros(1, dtype=torch.long)
        for m, tok in enumerate(prefix.tolist()):
            node = trie.next_nodes(m, node)[:, tok - int(offsets[m])]
        nxt = trie.next_nodes(len(prefix), node)[0]
        return (torch.nonzero(nxt >= 0).flatten() + int(offsets[len(prefix)])).tolist()
    return allowed


def bench_generate(device: str | None = None, repeats: int = 3, seed: int = 0, users: int = 512,
                   hf_users: int = 32, train_batches: int = 5) -> dict:
    """See the module doc."""
    from ..core.runtime import get_device
    from ..models.generative.generator import Generator, generator_config

    dev = get_device(device)
    rng = np.random.default_rng(seed)
    codes = np.unique(rng.integers(0, K, size=(BEAUTY_ITEMS + 500, LEVELS)), axis=0)
    codes = codes[rng.permutation(len(codes))[:BEAUTY_ITEMS]]
    gen = Generator(codes, sizes=[K] * LEVELS, config=generator_config("tiger", beam=BEAM)).build(seed=seed)
    gen.to_device(dev).eval()
    hist = rng.integers(0, BEAUTY_ITEMS, size=(users, HISTORY))
    batch = 256

    def run(constrained: bool, h=hist):
        outs = [gen.beams(h[s:s + batch], BEAM, constrained) for s in range(0, len(h), batch)]
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return torch.cat([o.items for o in outs])

    run(True, hist[:8])
    t_con, items = _best_time(lambda: run(True), repeats)
    t_free, _ = _best_time(lambda: run(False), repeats)
    ids, mask = gen._encode(hist[:hf_users])
    allowed = _hf_allowed(gen.trie_, gen.offsets_)

    def hf():
        out = gen.t5.generate(input_ids=ids, attention_mask=mask, num_beams=BEAM, num_return_sequences=BEAM,
                              max_new_tokens=LEVELS, prefix_allowed_tokens_fn=allowed, do_sample=False,
                              length_penalty=0.0)
        return gen.trie_.lookup(out[:, 1:] - torch.as_tensor(gen.offsets_, device=out.device)[None]).view(-1, BEAM)

    with torch.no_grad():
        t_hf, hf_items = _best_time(hf, 1)
    t_same, same = _best_time(lambda: run(True, hist[:hf_users]), repeats)
    decode_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # before training allocates more
    flops = decode_flops(gen.t5.config, ids.shape[1], LEVELS, BEAM)
    peak = matmul_flops_per_s() if dev.type == "cpu" else float("nan")
    train = _train_speed(gen, rng, train_batches, dev)
    return {
        "benchmark": "generate", "device": str(dev), "items": BEAUTY_ITEMS, "levels": LEVELS, "K": K,
        "history": HISTORY, "beam": BEAM, "users": users,
        "constrained_users_per_s": users / t_con, "unconstrained_users_per_s": users / t_free,
        "constrained_over_unconstrained_time": t_con / t_free,
        "hf_users": hf_users, "hf_constrained_users_per_s": hf_users / t_hf,
        "ours_users_per_s_on_hf_users": hf_users / t_same, "speedup_over_hf": t_hf / t_same,
        "same_items_as_hf": float((same.cpu() == hf_items.cpu()).all(1).float().mean()),
        "invalid_items": int((items < 0).sum()), "duplicate_items": _duplicates(items),
        "train_sequences_per_s": train, "decode_flops_per_user": flops,
        "decode_flop_per_s": flops * users / t_con, "matmul_flop_per_s": peak,
        "flop_utilization": flops * users / t_con / peak,
        "peak_rss_mb": decode_peak, "train_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "trie_mb": gen.trie_.nbytes() / 2 ** 20,
        "note": "untrained TIGER-sized T5 (timing depends on shapes only); transformers' generate timed on "
                f"{hf_users} of the users, ours on the same users for speedup_over_hf",
    }


def _duplicates(items: torch.Tensor) -> int:
    s = items.sort(1).values
    return int(((s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)).sum())


def _train_speed(gen, rng: np.random.Generator, batches: int, dev) -> float:
    """Training sequences per second (teacher forcing, AdamW steps, batch 256) on random Beauty-shaped examples."""
    from ..models.generative.generator import history_tokens
    from ..training.engine import Batch

    n = 256
    hist = rng.integers(0, BEAUTY_ITEMS, size=(n * batches, HISTORY))
    ids, mask = history_tokens(hist, gen.codes_, gen.offsets_)
    labels = gen.codes_[rng.integers(0, BEAUTY_ITEMS, size=n * batches)] + gen.offsets_[None, :]
    opt = torch.optim.AdamW(gen.parameters(), lr=1e-4)
    gen.train()
    rows = [Batch({"input_ids": torch.as_tensor(ids[s:s + n], device=dev),
                   "attention_mask": torch.as_tensor(mask[s:s + n], device=dev),
                   "labels": torch.as_tensor(labels[s:s + n], device=dev)}) for s in range(0, n * batches, n)]

    def step(b):
        loss = gen.training_step(b).losses["ce"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(rows[0])
    t = time.perf_counter()
    for b in rows:
        step(b)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    gen.eval()
    return n * batches / (time.perf_counter() - t)
