"""Generative retrieval: the code trie against a plain dictionary trie, constrained beam search against exact
scoring and against transformers' generate, the generator's contract and the planted sequential structure."""
import numpy as np
import pytest
import torch

import workbench as wb

from workbench.data.sequences import PAD, sequence_split
from workbench.evaluation.ranking import top_k
from workbench.models.base import make_model
from workbench.models.generative.generator import EOS_TOKEN, Generator, history_tokens, token_offsets
from workbench.models.generative.trie import CodeTrie

from test_sequences import planted_sequences


def random_codes(n=90, sizes=(5, 5, 5), seed=0):
    rng = np.random.default_rng(seed)
    codes = np.unique(np.stack([rng.integers(0, k, size=n) for k in sizes], 1), axis=0)
    return codes[rng.permutation(len(codes))]


def dict_trie(codes):
    """prefix tuple -> {code: child prefix or item}: the plain reference."""
    trie = {}
    for item, row in enumerate(codes.tolist()):
        for m in range(len(row)):
            trie.setdefault(tuple(row[:m]), {})[row[m]] = item if m == len(row) - 1 else tuple(row[:m + 1])
    return trie


@pytest.mark.parametrize("budget", [1 << 30, 0, 30], ids=["dense", "sparse", "mixed"])
def test_trie_matches_a_dictionary_trie(budget):
    codes = random_codes(200, sizes=(4, 6, 8))
    trie = CodeTrie(codes, (4, 6, 8), dense_budget=budget)
    ref = dict_trie(codes)
    # walk every level: the nodes of all prefixes of length m, their allowed codes and children
    prefixes = {(): 0}
    for m in range(3):
        keys = sorted(prefixes)
        nxt = trie.next_nodes(m, torch.tensor([prefixes[p] for p in keys]))
        children = {}
        for row, p in zip(nxt.tolist(), keys):
            allowed = {c for c, v in enumerate(row) if v >= 0}
            assert allowed == set(ref[p]), (m, p)
            for c in allowed:
                if m == 2:
                    assert row[c] == ref[p][c]            # the last level gives the item id
                else:
                    children[p + (c,)] = row[c]
        prefixes = children
        if m < 2:
            assert len(set(children.values())) == len(children) == trie.node_counts[m + 1]
    assert (trie.lookup(torch.as_tensor(codes)).numpy() == np.arange(len(codes))).all()
    absent = np.array([[3, 5, 7], [9, 0, 0], [-1, 0, 0]])
    expected = [ref.get((3, 5), {}).get(7, -1), -1, -1]
    assert trie.lookup(torch.as_tensor(absent)).tolist() == expected
    dead = trie.next_nodes(1, torch.tensor([-1]))
    assert (dead == -1).all()


def test_trie_rejects_collisions_and_bad_codes():
    with pytest.raises(ValueError, match=r"items \[0, 2\] all have \[1, 2\]"):
        CodeTrie(np.array([[1, 2], [0, 1], [1, 2]]), (3, 3))
    with pytest.raises(ValueError, match="level 1 codes must be in"):
        CodeTrie(np.array([[1, 3]]), (3, 3))


def test_history_tokens_by_hand():
    codes = np.array([[0, 1], [2, 0], [1, 1]])
    offsets = token_offsets([3, 2])
    assert offsets.tolist() == [2, 5]
    ids, mask = history_tokens(np.array([[PAD, 2, 0]]), codes, offsets)
    assert ids.tolist() == [[0, 0, 3, 6, 2, 6, EOS_TOKEN]]
    assert mask.tolist() == [[False, False, True, True, True, True, True]]


def sharpened_generator(codes, sizes, seed=1):
    """An untrained small generator whose weights are scaled up, so that its distributions are far from flat."""
    g = Generator(codes, sizes=sizes, layers=2, d_model=32, heads=2, d_kv=16, d_ff=64, dropout=0.0).build(seed=seed)
    with torch.no_grad():
        for p in g.t5.parameters():
            p.mul_(3)
    return g.eval()


def test_beam_equals_exact_top_k_on_a_small_catalogue():
    codes = random_codes()
    g = sharpened_generator(codes, (5, 5, 5))
    hist = np.random.default_rng(0).integers(0, len(codes), size=(5, 6))
    hist[0, :4] = PAD
    exact = g.score(hist)                                                  # (5, n) teacher-forced log-probs
    res = g.beams(hist, beam=len(codes) + 4)                               # a beam over all items: exhaustive
    top = exact.topk(15, dim=1)
    assert torch.equal(res.items[:, :15], top.indices)
    torch.testing.assert_close(res.scores[:, :15], top.values, atol=1e-4, rtol=1e-5)
    # every item returned once; the places beyond the catalogue are empty
    assert all(sorted(r[r >= 0].tolist()) == list(range(len(codes))) for r in res.items)
    assert (res.items[:, len(codes):] == -1).all() and torch.isinf(res.scores[:, len(codes):]).all()
    # the decoded codes are the items' codes
    assert (torch.as_tensor(codes)[res.items[:, :15]] == res.codes[:, :15]).all()


def test_beam_equals_transformers_generate_with_prefix_constraints():
    codes = random_codes(120, sizes=(6, 5, 4), seed=2)
    g = sharpened_generator(codes, (6, 5, 4), seed=3)
    hist = np.random.default_rng(1).integers(0, len(codes), size=(4, 5))
    ids, mask = g._encode(hist)
    off = g.offsets_
    ref = dict_trie(codes)

    def allowed(batch_id, sent):
        prefix = tuple(t - int(off[m]) for m, t in enumerate(sent.tolist()[1:]))
        return [int(off[len(prefix)]) + c for c in sorted(ref[prefix])]

    W = 8
    out = g.t5.generate(input_ids=ids, attention_mask=mask, num_beams=W, num_return_sequences=W, max_new_tokens=3,
                        prefix_allowed_tokens_fn=allowed, do_sample=False, length_penalty=0.0,
                        output_scores=True, return_dict_in_generate=True)
    hf_items = g.trie_.lookup(out.sequences[:, 1:] - torch.as_tensor(off)[None]).view(4, W)
    mine = g.beams(hist, beam=W)
    assert torch.equal(mine.items, hf_items)
    torch.testing.assert_close(mine.scores, out.sequences_scores.view(4, W), atol=1e-4, rtol=1e-5)


def test_unconstrained_decoding_reports_invalid_tuples():
    codes = random_codes(40, sizes=(5, 5, 5), seed=4)
    g = sharpened_generator(codes, (5, 5, 5))
    hist = np.random.default_rng(2).integers(0, len(codes), size=(6, 4))
    free = g.beams(hist, beam=10, constrained=False)
    # free decoding may leave the catalogue; every tuple it calls an item is that item's code tuple
    valid = free.items >= 0
    assert (~valid).any()
    assert (torch.as_tensor(codes)[free.items[valid]] == free.codes[valid]).all()
    bound = g.beams(hist, beam=10)
    assert (bound.items >= 0).all()


@pytest.fixture(scope="module")
def planted():
    return sequence_split(planted_sequences(), max_len=6)


def test_generator_recovers_planted_sequences(planted):
    # codes: (cycle, place in cycle), so that the next item's codes follow from the last item's
    per_group = 12
    codes = np.stack([np.arange(planted.n_items) // per_group, np.arange(planted.n_items) % per_group], 1)
    g = Generator(codes, layers=2, d_model=32, heads=2, d_kv=16, d_ff=64, dropout=0.0, beam=10)
    g.fit(planted, epochs=30, lr=3e-3, batch_size=64, progress=False, seed=0)
    report = g.evaluate(planted)
    pop = make_model("sequence-popularity").fit(planted).evaluate(planted)
    assert report["recall@5"] > 0.5 > 3 * pop["recall@5"], (report.metrics, pop.metrics)
    rec = g.recommend(planted.histories("test"), 10)
    items = rec.item_ids
    assert (items >= 0).all() and (items < planted.n_items).all()              # 0 invalid items
    assert all(len(set(r.tolist())) == 10 for r in items)                      # no duplicates
    assert (rec.scores[:, :-1] >= rec.scores[:, 1:]).all()
    assert "valid_ndcg@10" in g.history_ and g.best_epoch_ >= 1


def test_generator_contract_errors(tmp_path):
    codes = random_codes(30, sizes=(4, 4, 4), seed=5)
    with pytest.raises(RuntimeError, match="not been fitted"):
        Generator(codes).recommend(np.zeros((1, 2), dtype=int), 5)
    with pytest.raises(ValueError, match="unknown option"):
        Generator(codes, depth=3)
    with pytest.raises(FileNotFoundError, match="not a checkpoint folder"):
        Generator(codes, pretrained=str(tmp_path)).build()
    # a local checkpoint folder is accepted (safetensors, no network) and resized to this vocabulary
    small = Generator(codes, sizes=(4, 4, 4), layers=1, d_model=16, heads=2, d_kv=8, d_ff=32).build(seed=0)
    small.t5.save_pretrained(tmp_path / "ckpt")
    bigger = random_codes(30, sizes=(6, 4, 4), seed=6)
    warm = Generator(bigger, sizes=(6, 4, 4), pretrained=str(tmp_path / "ckpt")).build()
    assert warm.t5.get_input_embeddings().num_embeddings == warm.vocab_size == 2 + 14
    assert warm.t5.config.d_model == 16


def test_item_codes_resolve_collisions():
    from workbench.models.generative.item_codes import item_codes

    X = np.random.default_rng(0).normal(size=(300, 12)).astype(np.float32)
    tok = wb.RQVAE(12, hidden=(32,), quantizer=wb.QuantizerConfig(D=8, L=2, K=32)).fit(X, epochs=3, progress=False)
    moved = item_codes(tok, X, "reassign")
    assert moved.report["collision_rate_before"] > 0 and moved.report["collision_rate_after"] == 0
    assert moved.codes.shape == (300, 2) and moved.sizes == [32, 32] and moved.report["changed_items"] > 0
    assert (moved.codes[:, 0] == moved.raw[:, 0]).all()             # only the last level moves
    extra = item_codes(tok, X, "level")
    assert extra.codes.shape == (300, 3) and (extra.codes[:, :2] == extra.raw).all()
    assert extra.sizes[-1] == extra.report["max_items_per_id_before"]
    CodeTrie(moved.codes, moved.sizes), CodeTrie(extra.codes, extra.sizes)   # both unique


def test_letter_diversity_by_hand():
    from workbench.tokenizers.letter import letter_diversity

    books = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]]])   # one level, K = 4
    labels = torch.tensor([[0, 0, 1, 1]])          # clusters {0, 1} and {2, 3}: each code has one partner
    codes = torch.tensor([[0], [2]])
    # item 0: code 0, partner 1, candidates 1..3 with logits e0 . e_k = 0, 1, -1
    # item 1: code 2, partner 3, candidates 0, 1, 3 with logits 1, 1, -1
    expected = (-(0 - np.log(np.exp(0) + np.exp(1) + np.exp(-1))) - (-1 - np.log(np.exp(1) + np.exp(1) + np.exp(-1)))) / 2
    assert letter_diversity(books, codes, labels).item() == pytest.approx(expected, rel=1e-6)


def test_letter_aligns_codes_with_collaborative_embeddings():
    from workbench.tokenizers.letter import LETTER, LETTERConfig

    rng = np.random.default_rng(0)
    # the collaborative embedding depends on 4 low-variance columns that reconstruction alone mostly ignores
    X = np.concatenate([3 * rng.normal(size=(400, 12)), 0.3 * rng.normal(size=(400, 4))], 1).astype(np.float32)
    cf = (X[:, 12:] @ rng.normal(size=(4, 8))).astype(np.float32)
    rq = wb.RQVAEConfig(hidden=(32,), quantizer=wb.QuantizerConfig(D=8, L=2, K=16))

    def retrieved(cf_weight):
        """Share of items whose collaborative embedding is among the 10 nearest (dot product) to its codes."""
        tok = LETTER(16, 8, LETTERConfig(rqvae=rq, cf_weight=cf_weight)).fit(X, cf, epochs=100, batch_size=128,
                                                                           lr=3e-3, progress=False)
        with torch.no_grad():
            sim = tok.quantizer.decode(torch.as_tensor(tok.encode(X))) @ tok.cf_map(torch.as_tensor(cf)).T
        return (sim.topk(10, 1).indices == torch.arange(400)[:, None]).any(1).float().mean().item(), tok

    aligned, tok = retrieved(1.0)
    plain, _ = retrieved(0.0)
    assert aligned > max(0.1, 3 * plain), (aligned, plain)          # chance: 10 / 400
    assert {"cf", "letter_div", "recon"} <= {c[5:] for c in tok.history_.columns if c.startswith("loss_")}
    with pytest.raises(ValueError, match="ema=False"):
        LETTERConfig(rqvae=wb.RQVAEConfig(quantizer=wb.QuantizerConfig(ema=True)))


def test_fusion_weights_follow_the_collaborative_signal():
    from workbench.tokenizers.fusion import CollaborativeFusion

    rng = np.random.default_rng(0)
    n, d = 400, 8
    feats = {"image": rng.normal(size=(n, d)).astype(np.float32), "text": rng.normal(size=(n, d)).astype(np.float32)}
    fusion = CollaborativeFusion(dim=d)
    E, _ = fusion._inputs(feats, np.zeros((n, d), np.float32))
    # the first half's collaborative embedding agrees with its image, the second half's with its text
    cf = np.where(np.arange(n)[:, None] < n // 2, E[:, 0].numpy(), E[:, 1].numpy()) + 0.1 * rng.normal(size=(n, d))
    fusion.fit(feats, cf.astype(np.float32), epochs=60, batch_size=100, lr=1e-2, progress=False)
    alpha = fusion.weights()
    assert alpha[: n // 2, 0].mean() > 0.6 > 0.4 > alpha[n // 2:, 0].mean(), alpha.mean(0)
    x = fusion.transform()
    assert x.shape == (n, 2 * d) and fusion.fused_layout()["collaborative"] == slice(d, 2 * d)
    blind = CollaborativeFusion(dim=d, collaborative=False).fit(feats)
    assert np.allclose(blind.weights(), 0.5) and blind.transform().shape == (n, d)
    text_only = CollaborativeFusion(dim=d, modalities=("text",)).fit(feats, cf.astype(np.float32))
    assert np.allclose(text_only.weights(), 1.0)


def test_generative_study_pipeline_and_diagnostics():
    """CEMG end to end on the smoke catalogue: LightGCN, fusion, RQ-VAE, unique ids, the generator, the report,
    and the diagnostics on the trained generator."""
    from workbench.analysis import generative as G

    ds = wb.load_synthetic("smoke")
    study = G.generative_study_config("smoke", generator_epochs=2, tokenizer_epochs=5)
    data = G.generative_data(ds, study)
    run = G.run_next_item("cemg", ds, data, study, seed=0)
    tokens = run.tokens
    assert tokens.codes.report["collision_rate_after"] == 0 and tokens.X.shape == (ds.n_items, 2 * study.cf_dim)
    assert tokens.fusion.weights().shape == (ds.n_items, 2)
    assert set(tokens.seconds) >= {"collaborative", "fusion", "tokenizer"}
    assert {"cold"} == set(run.report.strata) and 0 <= run.report["recall@10"] <= 1
    table = G.next_item_table([run, G.run_next_item("popularity", ds, data, study)])
    assert table["model"].tolist() == ["cemg", "popularity"] and table.loc[0, "epochs"] == 2
    acc = G.level_accuracy(run.model, data, n_users=50)
    assert len(acc) == run.model.n_levels and (acc["prefix_accuracy"].diff().dropna() <= 1e-9).all()
    assert 0 <= G.invalid_rate(run.model, data, n_users=20) <= 1
    agree = G.beam_agreement(run.model, data, n_users=5, k=5)
    assert 0 <= agree["top_k_overlap"] <= 1
    diag = G.cold_diagnosis({"cemg": run.model}, data, n_users=10, k=5)
    assert diag.attrs["users per group"]["cold"] <= 10 and 0 <= diag.loc["cemg", "cold share of top 5"] <= 1
    user = int(data.users("test")[0])
    view = G.generation_table(run.model, data, user, k=5, items=ds.items)
    assert (view["role"] == "generated").sum() == 5 and view["codes"].str.startswith("<a_").all()
    with pytest.raises(ValueError, match="unknown tokenizer"):
        G.tokenize("vq", ds, data, study)


class FixedScores:
    """A next-item model whose scores are one fixed row for every history."""

    def __init__(self, row):
        self.row = torch.as_tensor(row, dtype=torch.float32)

    def score(self, histories):
        return self.row.expand(len(histories), -1).clone()

    def recommend(self, histories, k):
        return wb.Recommendation(top_k(self.score(histories), k), None)


def test_exact_ranks_by_hand():
    model = FixedScores([0.5, 2.0, 0.5, -1.0, 3.0])
    # item 4 first, then 1, then the tie 0 < 2 by id, then 3
    assert wb.exact_ranks(model, np.zeros((5, 2)), [4, 1, 0, 2, 3], batch=2).tolist() == [0, 1, 2, 3, 4]


def test_cold_diagnosis_separates_cold_and_warm_targets():
    """Popularity puts cold targets far below warm ones and never lists a cold item; a model that scores the
    cold items first gives them every slot."""
    data = sequence_split(wb.load_synthetic("smoke"))
    cold = data.cold_items()
    assert 10 <= cold.sum() < data.n_items - 10
    pop = make_model("sequence-popularity").fit(data)
    lover = FixedScores(cold.astype(np.float32) + np.linspace(0, 0.5, data.n_items))
    diag = wb.cold_diagnosis({"popularity": pop, "cold lover": lover}, data, n_users=50)
    assert diag.loc["popularity", "cold share of top 10"] == 0
    assert diag.loc["popularity", "cold targets: median rank"] > diag.loc["popularity", "warm targets: median rank"]
    assert diag.loc["cold lover", "cold share of top 10"] == 1
    assert diag.loc["cold lover", "cold targets: median rank"] < cold.sum()
    assert diag.attrs["cold items / catalogue"] == pytest.approx(cold.mean())
