"""Graph recommenders: adjacency and propagation against dense algebra, sampling, kNN graph, rarity weights,
contract tests over every model, MoToRec's ablation switches, resume, and recovery of planted preferences."""
import inspect
import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import workbench as wb
from planted import planted_dataset
from workbench.models.adjacency import NormalizedAdjacency, layer_mean
from workbench.models import content_graph
from workbench.models.content_graph import knn_graph
from workbench.models.losses import perturb
from workbench.models.sampling import sample_triplets
from workbench.models.losses import bpr_loss
from workbench.models.base import make_model, model_classes
from workbench.models.graph_model import GraphModel
from workbench.models.motorec import ABLATIONS, MoToRec, ablation_config, rarity_weights


SMALL = {"motorec": dict(K=16, L=2, hidden=(32,), tokenizer_warmup=2, knn_k=5),
         "freedom": dict(knn_k=5)}
GRAPH_MODELS = [name for name, cls in model_classes().items() if issubclass(cls, GraphModel)]


@pytest.fixture(scope="module")
def planted():
    return planted_dataset()


def small_model(name, ds=None, seed: int = 0, **options):
    """A small model of ``name``, built for ``ds`` (initialised from ``seed``) when given."""
    model = make_model(name, **{**SMALL.get(name, {}), **options})
    return model if ds is None else model.build(ds, seed=seed)


def first_step(model, ds, batch_size: int = 64):
    """What the engine does before and at a fresh run's first step: start-up, the epoch's batches, the first
    batch's training step (in training mode). Returns ``(batch, step output)``."""
    rng = np.random.default_rng(0)
    model.on_fit_start(ds, model.train_config(), rng)
    batches = model.epoch_batches(ds, batch_size, rng)
    model.on_epoch_start(ds, 1, rng, len(batches))
    model.train()
    return batches[0], model.training_step(batches[0])


# ---------------------------------------------------------------------------------------------- graph algebra
def _dense_normalized(R: np.ndarray, self_loops: bool) -> np.ndarray:
    nu, ni = R.shape
    A = np.zeros((nu + ni, nu + ni))
    A[:nu, nu:], A[nu:, :nu] = R, R.T
    if self_loops:
        A += np.eye(nu + ni)
    d = A.sum(1)
    inv = np.zeros_like(d)
    inv[d > 0] = d[d > 0] ** -0.5
    return inv[:, None] * A * inv[None, :]


@pytest.mark.parametrize("self_loops", [False, True])
def test_propagation_matches_dense_algebra(self_loops):
    rng = np.random.default_rng(0)
    R = (rng.random((5, 7)) < 0.35).astype(np.float32)
    R[4] = 0  # an isolated user: its row stays zero (or its self-loop)
    adj = NormalizedAdjacency(sp.csr_matrix(R), self_loops=self_loops)
    A = _dense_normalized(R, self_loops)
    np.testing.assert_allclose(adj.dense(), A, atol=1e-6)
    E = rng.normal(size=(12, 3))
    eu = torch.tensor(E[:5], dtype=torch.float64, requires_grad=True)
    ei = torch.tensor(E[5:], dtype=torch.float64, requires_grad=True)
    adj64 = NormalizedAdjacency(sp.csr_matrix(R), self_loops=self_loops)
    for name in ("fwd_ui", "fwd_iu", "diag_u", "diag_i"):
        setattr(adj64, name, getattr(adj64, name).double())
    u, i = adj64.propagate(eu, ei, 2)
    expected = (E + A @ E + A @ A @ E) / 3  # LightGCN layer mean
    np.testing.assert_allclose(torch.cat([u, i]).detach().numpy(), expected, atol=1e-6)
    # the custom backward equals the dense gradient (A symmetric)
    G = rng.normal(size=(12, 3))
    (torch.cat([u, i]) * torch.as_tensor(G)).sum().backward()
    grad = (G + A.T @ G + A.T @ A.T @ G) / 3
    np.testing.assert_allclose(torch.cat([eu.grad, ei.grad]).numpy(), grad, atol=1e-6)


def test_sample_triplets_covers_training_and_draws_unseen_negatives():
    rng = np.random.default_rng(0)
    R = sp.csr_matrix((rng.random((40, 30)) < 0.3).astype(np.float32))
    users, pos, neg = sample_triplets(R, np.random.default_rng(1))
    assert len(users) == R.nnz
    seen = set(zip(*R.nonzero()))
    assert set(zip(users.tolist(), pos.tolist())) == seen  # every interaction exactly once
    assert not any((u, j) in seen for u, j in zip(users.tolist(), neg.tolist()))
    u2, p2, n2 = sample_triplets(R, np.random.default_rng(1))
    np.testing.assert_array_equal(neg, n2)
    full = sp.csr_matrix(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="interacted with every item"):
        sample_triplets(full, np.random.default_rng(0))


def test_knn_graph_links_planted_clusters_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (4, 16))
    group = np.repeat(np.arange(4), 10)
    X = (centres[group] + 0.1 * rng.normal(0, 1, (40, 16))).astype(np.float32)
    S = knn_graph(X, k=5)
    assert S.shape == (40, 40) and (S.diagonal() == 0).all()
    rows, cols = S.nonzero()
    assert (group[rows] == group[cols]).all()  # neighbours come from the same cluster
    deg = np.asarray((S > 0).sum(1)).ravel()
    assert (deg == 5).all()
    np.testing.assert_allclose(S.toarray(), knn_graph(X, k=5, cache=False).toarray())
    with pytest.raises(ValueError, match="k must be"):
        knn_graph(X, k=40)
    (cached,) = (tmp_path / "cache").glob("knn-*-k5.npz")
    monkeypatch.setattr(content_graph, "_knn_arrays", lambda *a: pytest.fail("cache miss"))
    np.testing.assert_array_equal(knn_graph(X, k=5).toarray(), S.toarray())  # a hit: nothing rebuilt
    monkeypatch.undo()
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    good = cached.read_bytes()
    other = knn_graph(X[::-1].copy(), k=5)  # another graph, written under another name
    (other_file,) = set((tmp_path / "cache").glob("knn-*-k5.npz")) - {cached}
    damages = {"truncated": good[: len(good) // 2], "zeroed": good[:200] + bytes(400) + good[600:],
               "empty": b"", "another graph": other_file.read_bytes()}
    for what, content in damages.items():
        cached.write_bytes(content)
        with pytest.warns(RuntimeWarning, match="rebuilding"):
            again = knn_graph(X, k=5)
        np.testing.assert_array_equal(again.toarray(), S.toarray(), err_msg=what)
        assert cached.read_bytes() != content, what  # replaced by a good copy
    assert (other.toarray() != S.toarray()).any()


def test_a_cache_with_a_valid_digest_but_a_bad_graph_is_rebuilt(tmp_path, monkeypatch):
    """A writer that stored a column index past the matrix (with a matching digest) is caught by the check."""
    from workbench.core import storage

    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    X = np.random.default_rng(1).normal(size=(30, 8)).astype(np.float32)
    S = knn_graph(X, k=3)
    (cached,) = (tmp_path / "cache").glob("knn-*.npz")
    arrays = storage.load_arrays(cached)
    key = str(arrays.pop("__cache_key__"))
    arrays.pop("__cache_digest__")
    arrays["indices"] = arrays["indices"].copy()
    arrays["indices"][4] = 30  # one past the last item
    storage.save_arrays(cached, {**arrays, "__cache_key__": np.array(key),
                                 "__cache_digest__": np.array(storage.arrays_digest(arrays))})
    with pytest.warns(RuntimeWarning, match="outside"):
        again = knn_graph(X, k=3)
    np.testing.assert_array_equal(again.toarray(), S.toarray())


def test_rarity_weights_follow_eq_2_by_hand():
    degree = np.array([0, 1, 2, 9, 10, 50])
    w, cold = rarity_weights(degree, tau=10)
    expected = [1.0, 1 / math.log2(3), 1 / math.log2(4), 1 / math.log2(11), 1.0, 1.0]
    np.testing.assert_allclose(w, expected, rtol=1e-6)
    np.testing.assert_array_equal(cold, [True, True, True, True, False, False])
    with pytest.raises(ValueError):
        rarity_weights(np.array([-1, 2]))
    amplified, _ = rarity_weights(degree, tau=10, rarity="amplify")  # the text's reading: rarer, heavier
    log12 = math.log2(12)
    np.testing.assert_allclose(amplified, [1.0, log12 / math.log2(3), log12 / math.log2(4), log12 / math.log2(11),
                                           1.0, 1.0], rtol=1e-6)
    assert (amplified[1:4] > 1).all() and (np.diff(amplified[1:4]) < 0).all()
    with pytest.raises(ValueError, match="rarity must be one of"):
        rarity_weights(degree, rarity="boost")


def test_motorec_uses_the_chosen_rarity_reading(planted):
    literal = small_model("motorec", planted).item_weights.numpy()
    amplify = small_model("motorec", planted, rarity="amplify").item_weights.numpy()
    expected, _ = rarity_weights(planted.item_degree("train"), 10, "amplify")
    np.testing.assert_allclose(amplify, expected)
    assert (amplify >= literal).all() and (amplify > literal).any()
    with pytest.raises(ValueError, match="MoToRecConfig.rarity"):
        make_model("motorec", rarity="boost")


# ----------------------------------------------------------------------------------------------- contracts
def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", GRAPH_MODELS)
def test_graph_model_contract(planted, name):
    model = small_model(name, planted)
    batch, out = first_step(model, planted)
    losses = out.losses
    assert "bpr" in losses and all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    # the training step is a pure function of the parameters: no parameter or buffer changed (code buffers and
    # quantizer statistics change in after_step only)
    after = _state(model)
    again = model.training_step(batch)
    for k, v in _state(model).items():
        torch.testing.assert_close(v, after[k], msg=k)
    model.after_step(batch, again.updates)
    model.eval()
    U, I = model.embeddings()
    assert U.shape[0] == planted.n_users and I.shape[0] == planted.n_items and U.shape[1] == I.shape[1]
    scores = model.score(torch.arange(5))
    assert scores.shape == (5, planted.n_items)
    model.eval()  # drops the cached embeddings: the next call recomputes them from the parameters
    torch.testing.assert_close(scores, model.score(torch.arange(5)))  # deterministic in eval mode
    rec = model.recommend(torch.arange(3), k=4, exclude=planted.matrix("train"))
    train = planted.matrix("train")
    assert not any(train[u, i] for u, row in enumerate(rec.item_ids.tolist()) for i in row)


@pytest.mark.parametrize("name", GRAPH_MODELS)
def test_each_model_beats_popularity_on_planted_groups(planted, name):
    pop = wb.PopularityRecommender().fit(planted).evaluate(planted)["recall@20"]
    model = small_model(name).fit(planted, epochs=40, lr=0.01, batch_size=256, progress=False, patience=40)
    assert model is not None and model.best_epoch_ >= 1 and "valid_recall@20" in model.history_
    recall = model.evaluate(planted, "test")["recall@20"]
    assert recall > pop + 0.15, (name, recall, pop)


def test_motorec_token_channels_recommend_zero_shot_planted_items(planted):
    """Three of each group's 20 items have no training interaction: the ID channel knows nothing of them (LightGCN's
    zero-shot recall@20 here is 0.01, chance about 0.18); only their content tokens, shared with their group's
    items, can rank them for the group's users. Without HGE (whose content kNN graph would be a second way in),
    the token channels are the only content path: MoToRec's zero-shot recall@20 is 0.86-0.89 over seeds 0-2,
    0.0 with the token tables zeroed (measured once, by hand: a broken content path fails this test)."""
    held = np.arange(planted.n_items) % 20 < 3
    raw = wb.RecDataset("planted-zero-shot", planted.interactions.drop(columns="x_label"), planted.n_users,
                        planted.n_items, planted.features)
    ds = raw.with_split(wb.random_split(raw.interactions, seed=0, holdout_items=held))
    assert ds.item_degree()[held].sum() == 0 and ds.matrix("test")[:, held].nnz > 80
    model = small_model("motorec", use_hge=False).fit(ds, epochs=10, lr=0.01, batch_size=256, progress=False,
                                                      patience=10, seed=0)
    zero_shot = model.evaluate(ds, "test", strata={"zero-shot": held}).strata["zero-shot"]
    assert len(zero_shot.users) > 60
    assert zero_shot["recall@20"] > 0.6, zero_shot.metrics


def test_models_need_features_and_a_split(planted):
    bare = wb.RecDataset("no-features", planted.interactions, planted.n_users, planted.n_items)
    with pytest.raises(ValueError, match="needs item content features"):
        make_model("freedom").fit(bare)
    with pytest.raises(ValueError, match="needs a split"):
        make_model("lightgcn").fit(wb.RecDataset("unsplit", planted.interactions.drop(columns="x_label"),
                                                 planted.n_users, planted.n_items))
    with pytest.raises(KeyError, match="unknown model"):
        make_model("bert4rec")
    with pytest.raises(RuntimeError, match="has not been fitted"):
        make_model("lightgcn").evaluate(planted)
    other = planted_dataset(seed=1, groups=5)
    fitted = small_model("mf-bpr").fit(planted, epochs=1, progress=False)
    with pytest.raises(ValueError, match="was built for"):
        fitted.evaluate(other)


# ------------------------------------------------------------------------------------------------ ablations
def test_ablation_switches_remove_their_component(planted):
    base = ablation_config("MoToRec").__class__(**SMALL["motorec"])
    models = {name: MoToRec(ablation_config(name, base)).build(planted) for name in ABLATIONS}
    counts = {name: m.parameter_count() for name, m in models.items()}
    assert counts["w/o RQ-VAE"] < counts["MoToRec"]       # no codebooks, no decoders
    assert counts["w/o HF"] < counts["MoToRec"]           # no attention
    assert models["w/o HGE"].item_graph_ is None and models["MoToRec"].item_graph_ is not None
    assert torch.all(models["w/o ARA"].item_weights == 1) and torch.any(models["MoToRec"].item_weights < 1)
    assert models["w/o Sparsity"].tokenizers["image"].config.sparsity_weight == 0
    assert models["MoToRec"].tokenizers["image"].config.sparsity_weight > 0
    terms = {name: set(first_step(m, planted)[1].losses) for name, m in models.items()}
    assert {"bpr", "cl", "rq", "l2"} <= terms["MoToRec"]
    assert "cl" not in terms["w/o CL"] and "rq" not in terms["w/o RQ-VAE"]
    with pytest.raises(KeyError, match="unknown ablation"):
        ablation_config("w/o everything")


def test_tokenizer_loss_is_weighted_by_rarity(planted, monkeypatch):
    model = small_model("motorec", planted)
    tok = model.tokenizers["image"]
    tok.init_codebooks(model.features("image"))
    x = model.features("image")[:50]
    w = torch.linspace(0.1, 1.0, 50)
    tok.eval()
    plain, weighted = tok(x), tok(x, w)
    per_item = ((x - plain.reconstruction) ** 2).mean(-1)
    torch.testing.assert_close(weighted.losses["recon"], (w * per_item).mean())
    # MoToRec hands its w_i to the tokenizers: to each modality's warm-up fit...
    fit, seen = type(tok).fit, {}

    def spy(self, X, *args, **kwargs):
        bound = inspect.signature(fit).bind(self, X, *args, **kwargs)
        seen[next(m for m in model.modalities_ if model.tokenizers[m] is self)] = bound.arguments.get("weights")
        return fit(self, X, *args, **kwargs)

    monkeypatch.setattr(type(tok), "fit", spy)
    model = small_model("motorec", tokenizer_warmup=1)
    model.warm_up(planted)
    assert torch.any(model.item_weights < 1) and set(seen) == set(model.modalities_)
    for m, weights in seen.items():
        assert weights is not None, m
        torch.testing.assert_close(torch.as_tensor(weights), model.item_weights, msg=m)
    # ... and to the training step's tokenizer loss on the batch's distinct items: lambda_rq * sum_m (eq. 6
    # weighted, eq. 11)
    batch, out = first_step(model, planted)
    items = batch.shared["items"]
    torch.testing.assert_close(items, torch.cat([batch.rows["pos"], batch.rows["neg"]]).unique())
    w = model.item_weights[items]
    assert torch.any(w < 1)
    with torch.no_grad():
        totals = {name: sum(model.tokenizers[m](model.features(m)[items], weights).total for m in model.modalities_)
                  for name, weights in (("weighted", w), ("plain", None))}
    torch.testing.assert_close(out.losses["rq"].detach(), model.config.lambda_rq * totals["weighted"])
    assert not torch.allclose(totals["weighted"], totals["plain"], rtol=1e-3)  # the weights change the loss


def test_sparsity_term_is_scaled_by_the_batch_mean_weight(planted):
    """Eq. 11 weights each item's whole eq. 6 loss: gamma * L_sparse, a batch term, comes out multiplied by the
    batch's mean w_i."""
    model = small_model("motorec", planted)
    tok = model.tokenizers["image"]
    tok.init_codebooks(model.features("image"))
    tok.eval()
    x, w = model.features("image")[:40], torch.linspace(0.2, 0.6, 40)
    with torch.no_grad():
        plain, weighted = tok(x).losses["sparsity"], tok(x, w).losses["sparsity"]
    assert plain > 0
    torch.testing.assert_close(weighted, w.mean() * plain)


@pytest.mark.parametrize("variant", ["MoToRec", "w/o RQ-VAE"])
def test_full_model_and_without_rqvae_get_gradients_from_the_same_rows(planted, variant):
    """Only the step's items carry gradient into the tokenizers (the stored rows are constants), in the full
    model as in w/o RQ-VAE, so Table 3's gap measures quantization, not gradient coverage; "chunk" mode hands
    each step one slice of a permutation of the catalogue."""
    model = small_model("motorec", planted, tokenizer_warmup=1, use_cl=False, **ABLATIONS[variant])
    batch, _ = first_step(model, planted)
    users, pos, neg = batch.rows["users"], batch.rows["pos"], batch.rows["neg"]
    params = [p for p in model.tokenizers.parameters() if p.requires_grad]
    stale = torch.autograd.grad(model.loss(users, pos, neg)["bpr"], params, allow_unused=True)
    assert all(g is None or not g.any() for g in stale)  # nothing through the stored rows
    encoder = [p for m in model.modalities_ for p in (model.tokenizers[m].encoder if variant == "MoToRec"
                                                      else model.tokenizers[m]).parameters()]
    fresh = torch.autograd.grad(model.loss(users, pos, neg, items=batch.shared["items"])["bpr"], encoder)
    assert all(g.abs().sum() > 0 for g in fresh)
    chunked = small_model("motorec", planted, tokenizer_items="chunk", tokenizer_warmup=0)
    chunked.on_fit_start(planted, chunked.train_config(), np.random.default_rng(0))
    batches = chunked.epoch_batches(planted, 64, np.random.default_rng(1))
    seen = torch.cat([b.shared["items"] for b in batches])
    assert torch.equal(seen.sort().values, torch.arange(planted.n_items))  # every item once per epoch


def test_motorec_batch_loss_equals_the_full_table_computation(planted):
    """MoToRec's loss embeds each distinct batch node once and maps repeats back; with repeated users and items
    its BPR term and gradients equal those read from every node's fused embedding."""
    model = small_model("motorec", planted, use_cl=False).warm_up(planted)
    model.eval()  # fixed tables: every item tokenized afresh, no tokenizer loss
    tables = model._fresh_tables()
    model._buffer_tables = lambda: tables
    gen = torch.Generator().manual_seed(0)
    users = torch.randint(0, 8, (64,), generator=gen)  # many repeats
    pos, neg = (torch.randint(0, 12, (64,), generator=gen) for _ in range(2))
    ours = model.loss(users, pos, neg)["bpr"]
    g_ours = torch.autograd.grad(ours, [model.user_emb, model.item_emb])
    u_all, i_all = model._fuse(model._propagate(tables)[0])
    ref = bpr_loss((u_all[users] * i_all[pos]).sum(-1), (u_all[users] * i_all[neg]).sum(-1))
    g_ref = torch.autograd.grad(ref, [model.user_emb, model.item_emb])
    torch.testing.assert_close(ours, ref)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)


# ------------------------------------------------------------------------------------------------- resume
@pytest.mark.parametrize("name", ["lightgcn", "freedom", "motorec"])
def test_resume_reproduces_the_uninterrupted_run(planted, tmp_path, name):
    opts = dict(epochs=5, lr=0.01, batch_size=256, progress=False, seed=3)
    straight = small_model(name).fit(planted, **opts)

    def interrupt(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    ckpt = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        small_model(name).fit(planted, checkpoint=str(ckpt), callback=interrupt, **opts)
    resumed = small_model(name).fit(planted, checkpoint=str(ckpt), **opts)
    assert resumed.fit_result_.resumed_from == 2 and straight.fit_result_.resumed_from == 0
    cols = [c for c in straight.history_ if c.startswith(("loss_", "valid_"))]
    pd.testing.assert_frame_equal(straight.history_[cols], resumed.history_[cols])
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    assert straight.evaluate(planted)["recall@20"] == resumed.evaluate(planted)["recall@20"]
    with pytest.raises(ValueError, match="another run"):
        small_model(name).fit(planted, checkpoint=str(ckpt), **{**opts, "lr": 0.5})


@pytest.mark.parametrize("self_loops", [False, True])
def test_propagation_from_items_alone_equals_zero_users(self_loops):
    rng = np.random.default_rng(1)
    R = sp.csr_matrix((rng.random((6, 5)) < 0.4).astype(np.float32))
    adj = NormalizedAdjacency(R, self_loops=self_loops)
    e_i = torch.randn(5, 4, requires_grad=True)
    u, i, fu, fi = adj.propagate_with_first(None, e_i, 2)
    (u.sum() + 2 * i.sum() + fu.sum() + fi.sum()).backward()
    g_fast = e_i.grad.clone()
    e_i.grad = None
    u2, i2, fu2, fi2 = adj.propagate_with_first(torch.zeros(6, 4), e_i, 2)
    (u2.sum() + 2 * i2.sum() + fu2.sum() + fi2.sum()).backward()
    for a, b in [(u, u2), (i, i2), (fu, fu2), (fi, fi2), (g_fast, e_i.grad)]:
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("self_loops", [False, True])
@pytest.mark.parametrize("n_layers", [1, 2, 3])
@pytest.mark.parametrize("zero_users", [False, True])
def test_propagation_at_rows_equals_full_propagation_then_gather(self_loops, n_layers, zero_users):
    rng = np.random.default_rng(2)
    R = sp.csr_matrix((rng.random((9, 7)) < 0.3).astype(np.float32))
    adj = NormalizedAdjacency(R, self_loops=self_loops)
    e_u = None if zero_users else torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    e_i = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    for name in ("fwd_ui", "fwd_iu", "diag_u", "diag_i"):
        setattr(adj, name, getattr(adj, name).double())
    # rows with repeats, as in a BPR batch; the first layer at other rows, or at every row (None)
    rows = (torch.tensor([4, 0, 8, 4]), torch.tensor([6, 1, 1, 3, 0]), torch.tensor([2, 2, 5]), None)
    inputs = [e_i] if zero_users else [e_u, e_i]
    weights = [torch.randn(4, 3), torch.randn(5, 3), torch.randn(3, 3), torch.randn(7, 3)]
    full = adj.propagate_with_first(e_u, e_i, n_layers)
    expected = [t if r is None else t[r] for t, r in zip(full, rows)]
    got = adj.propagate_at(e_u, e_i, n_layers, *rows)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    grads = [torch.autograd.grad(sum((t * w).sum() for t, w in zip(out, weights)), inputs)
             for out in (expected, got)]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
    # the layer-by-layer reference (plain autograd through `step`) agrees with the fused node
    layers = adj.layers(e_u, e_i, n_layers)
    torch.testing.assert_close(layer_mean(layers)[1][rows[1]], got[1])


# ------------------------------------------------------------------------------------------------- studies
def test_summarize_gives_mean_and_t_interval_by_hand():
    table = pd.DataFrame({"model": ["a", "a", "b"], "seed": [0, 1, 0], "recall@20": [0.1, 0.3, 0.25]})
    out = wb.summarize(table, ["recall@20"])
    half = 12.7062047 * np.std([0.1, 0.3], ddof=1) / np.sqrt(2)  # t(0.975, 1 dof)
    assert out.loc["a", "recall@20"] == f"0.2000 ± {half:.4f}"
    assert out.loc["b", "recall@20"] == "0.2500" and out.loc["a", "seeds"] == 2


def test_study_runs_compare_two_models_over_seeds(planted):
    study = wb.StudyConfig(seeds=(0, 1), epochs=6, lr=0.01, patience=6)
    runs = [wb.train_model(name, planted, seed, study) for seed in study.seeds for name in ("mf-bpr", "lightgcn")]
    table = wb.run_table(runs)
    assert len(table) == 4 and {"cold recall@20", "sec/epoch", "eval sec"} <= set(table.columns)
    cmp = wb.compare_runs(runs, "lightgcn", "mf-bpr", stratum=None)
    s = cmp["summary"]
    assert s["seeds"] == 2 and s["ci_low"] <= s["mean_diff"] <= s["ci_high"]
    expected = table.pivot(index="seed", columns="model", values="recall@20")
    np.testing.assert_allclose(s["mean_diff"], (expected["lightgcn"] - expected["mf-bpr"]).mean())
    with pytest.raises(ValueError, match="no seed has runs"):
        wb.compare_runs(runs, "lightgcn", "vbpr")


def test_restricted_report_ranks_only_the_given_items():
    inter = pd.DataFrame({"user_id": [0, 0, 0, 1, 1, 1], "item_id": [0, 1, 2, 0, 1, 3],
                          "rating": 1.0, "timestamp": np.arange(6), "x_label": [0, 0, 2, 0, 0, 2]})
    ds = wb.RecDataset("tiny", inter, 2, 4)

    class Fixed:  # item 0 and 1 score highest for everyone; user 0 prefers item 3 over 2, user 1 item 3 over 2
        def scorer(self):
            return wb.DotScorer(torch.eye(2), torch.tensor([[9.0, 9.0], [8.0, 8.0], [1.0, 0.0], [2.0, 3.0]]))

    cold = np.array([False, False, True, True])
    rep = wb.restricted_report(ds, Fixed(), cold, ks=(1, 2))
    # among items {2, 3}: user 0's test item 2 ranks second, user 1's test item 3 ranks first
    np.testing.assert_allclose(rep.per_user["recall@1"], [0.0, 1.0])
    np.testing.assert_allclose(rep.per_user["recall@2"], [1.0, 1.0])
    with pytest.raises(ValueError, match="non-empty boolean mask"):
        wb.restricted_report(ds, Fixed(), np.zeros(4, dtype=bool))


# ------------------------------------------------------------------------------------- other data sources
def test_motorec_runs_on_ml100k_text_and_genre():
    ds = wb.load_ml100k()
    split = ds.with_split(wb.random_split(ds.interactions, seed=0))
    model = small_model("motorec", tokenizer_warmup=1).fit(split, epochs=1, progress=False)
    assert model.modalities_ == ["text", "genre"] and model.token_dim_ == 32
    assert 0 < model.evaluate(split)["recall@20"] <= 1


def test_graph_models_run_on_an_mmrec_bundle(planted, tmp_path):
    wb.save_mmrec(planted, tmp_path / "bundle", name="planted")
    ds = wb.load_mmrec(tmp_path / "bundle")
    assert set(ds.features) == {"image", "text"}
    for name in ("freedom", "motorec"):
        model = small_model(name).fit(ds, epochs=2, lr=0.01, batch_size=256, progress=False)
        assert np.isfinite(model.history_["loss_total"]).all()


def test_perturb_is_simgcl_noise():
    """SimGCL's augmentation: a random offset of norm ``eps`` per row in the orthant of the embedding's signs."""
    torch.manual_seed(0)
    e = torch.randn(64, 16)
    delta = perturb(e, 0.1) - e
    torch.testing.assert_close(delta.norm(dim=-1), torch.full((64,), 0.1), atol=1e-5, rtol=0)
    assert bool((torch.sign(delta) == torch.sign(e)).all())
    assert not torch.equal(perturb(e, 0.1), perturb(e, 0.1))  # fresh noise at every call


def test_project_rows_in_blocks_matches_one_gather(monkeypatch):
    """Rows gathered and projected block by block (as for Baby's 4,096-d features on a CPU) give the values and
    gradients of one gather: repeated and unsorted rows, a last block shorter than the others."""
    from workbench.models import graph_model as graph_models

    torch.manual_seed(0)
    feats, linear = torch.randn(50, 6), torch.nn.Linear(6, 3)
    idx = torch.tensor([7, 3, 3, 49, 0, 12, 7, 30, 22, 41, 5])
    ref = linear(feats[idx])
    g_ref = torch.autograd.grad(ref.pow(2).sum(), list(linear.parameters()))
    monkeypatch.setattr(graph_models, "_GATHER_BYTES", 4 * 6 * 4)  # four rows a block: blocks of 4, 4, 3
    out = graph_models.project_rows(linear, feats, idx)
    torch.testing.assert_close(out, ref)
    for a, b in zip(torch.autograd.grad(out.pow(2).sum(), list(linear.parameters())), g_ref):
        torch.testing.assert_close(a, b)


def test_graph_benchmark_builds_each_table3_variant(planted):
    """``graph-ablations`` names every Table-3 variant and builds it with its switch off (and only that switch)."""
    from workbench.bench.graph import _ablation_slugs, _graph_model
    from workbench.models.motorec import ABLATIONS

    slugs = _ablation_slugs()
    assert sorted(slugs.values()) == sorted(n for n in ABLATIONS if n != "MoToRec")
    full = _graph_model("motorec").config
    for slug, name in slugs.items():
        config = _graph_model(slug).config
        changed = {k for k in vars(full) if getattr(config, k) != getattr(full, k)}
        assert changed == set(ABLATIONS[name]), (slug, changed)
    assert _graph_model("freedom-mmrec").config.project_all
