"""Reliability: one seed gives one result (whatever ran before, in a fresh process too), the evaluator's tie rule
and its refusal of non-finite scores, devices kept, and the library never reseeding the caller's generators."""
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import workbench as wb
from planted import planted_dataset
from workbench.evaluation.ranking import evaluate_ranking, top_k
from workbench.models.base import make_model, model_classes
from workbench.models.graph_model import GraphModel
from workbench.training.checkpoint import state_digest

SMALL = {"motorec": dict(K=16, L=2, hidden=(32,), tokenizer_warmup=2, knn_k=5), "freedom": dict(knn_k=5)}
GRAPH_MODELS = [name for name, cls in model_classes().items() if issubclass(cls, GraphModel)]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def planted():
    return planted_dataset()


def _fit(name, ds, seed):
    return make_model(name, **SMALL.get(name, {})).fit(ds, epochs=2, seed=seed, progress=False, batch_size=256)


def _stir_global_rngs():
    torch.rand(97)
    np.random.rand(13)
    random.random()


@pytest.mark.parametrize("name", GRAPH_MODELS)
def test_one_seed_one_model_whatever_ran_before(planted, name):
    """Two fits at seed 0 with the global generators stirred and another model trained in between are equal
    to the bit (initialisation included), seed 1 differs, and the caller's generators are not reseeded."""
    first = state_digest(_fit(name, planted, 0))
    _stir_global_rngs()
    _fit("lightgcn" if name != "lightgcn" else "mf-bpr", planted, 3)
    torch.manual_seed(1234)
    expected_next = torch.rand(3)
    torch.manual_seed(1234)
    again = _fit(name, planted, 0)
    assert torch.equal(torch.rand(3), expected_next)  # fit left the caller's generator where it was
    assert state_digest(again) == first
    assert state_digest(_fit(name, planted, 1)) != first


_CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads({threads})
from planted import planted_dataset
from workbench.models.base import make_model
from workbench.training.checkpoint import state_digest
torch.rand({stir})
m = make_model("motorec", K=16, L=2, hidden=(32,), tokenizer_warmup=2, knn_k=5)
m.fit(planted_dataset(), epochs=2, seed=0, progress=False, batch_size=256)
print(json.dumps({{"digest": state_digest(m), "valid": m.valid_}}))
"""


def test_motorec_reproduces_itself_across_fresh_processes(planted, tmp_path):
    """MoToRec trained at one seed in two fresh interpreters (different hash seeds, thread counts and global
    random draws before it, a cold kNN cache in the first) ends in the same state as in this process."""
    here = state_digest(_fit("motorec", planted, 0))
    outs = []
    for hash_seed, stir, threads in (("1", 5, 1), ("987", 11, 2)):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "WORKBENCH_DATA": str(tmp_path)}
        code = _CHILD.format(tests=str(REPO / "tests"), stir=stir, threads=threads)
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO,
                             timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        outs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    assert outs[0] == outs[1]
    assert outs[0]["digest"] == here


@pytest.mark.parametrize("make", [
    lambda: wb.RQVAE(12, hidden=(16,), quantizer=wb.QuantizerConfig(D=4, L=2, K=8)),
    lambda: wb.RQVAE(12, hidden=(16,), quantizer=wb.QuantizerConfig(D=4, L=2, K=8, kmeans_init=False)),
    lambda: wb.MMQTokenizer({"a": 7, "b": 5}, hidden=(16,), D=4, K=8),
], ids=["rqvae", "rqvae-random-codebooks", "mmq"])
def test_a_tokenizer_seed_covers_its_initialisation(make):
    """Tokenizers built at different global random states give the same fit at the same seed."""
    X = np.random.default_rng(0).normal(size=(120, 12)).astype(np.float32)
    torch.manual_seed(1)
    a = make().fit(X, epochs=2, batch_size=32, seed=4, progress=False)
    torch.manual_seed(2)
    b = make().fit(X, epochs=2, batch_size=32, seed=4, progress=False)
    assert state_digest(a) == state_digest(b)
    c = make().fit(X, epochs=2, batch_size=32, seed=5, progress=False)
    assert state_digest(c) != state_digest(a)


def test_loaded_weights_survive_a_later_fit():
    """Only a new tokenizer's first fit redraws its initialisation: weights loaded with load_state_dict, or
    trained by an earlier fit, are where a later fit starts (a warm start)."""
    X = np.random.default_rng(0).normal(size=(80, 12)).astype(np.float32)
    make = lambda: wb.RQVAE(12, hidden=(16,), quantizer=wb.QuantizerConfig(D=4, L=2, K=8))  # noqa: E731
    trained = make().fit(X, epochs=2, batch_size=32, seed=1, progress=False)
    loaded = make()
    loaded.load_state_dict(trained.state_dict())
    loaded.fit(X, epochs=1, batch_size=32, seed=7, lr=1e-12, progress=False)
    torch.testing.assert_close(loaded.encoder[0].weight, trained.encoder[0].weight)
    again = trained.encoder[0].weight.detach().clone()
    trained.fit(X, epochs=1, batch_size=32, seed=7, lr=1e-12, progress=False)
    torch.testing.assert_close(trained.encoder[0].weight, again)


def test_motorec_modalities_draw_from_their_own_seeds(planted, monkeypatch):
    seeds = []
    original = wb.RQVAE.fit

    def spy(self, X, *args, **options):
        seeds.append(options["seed"])
        return original(self, X, *args, **options)

    monkeypatch.setattr(wb.RQVAE, "fit", spy)
    make_model("motorec", **SMALL["motorec"]).warm_up(planted, seed=0)
    assert len(seeds) == 2 and seeds[0] != seeds[1]


def test_the_library_never_touches_the_global_generators(planted):
    """Training, tokenizing and evaluating neither reseed nor draw from the global generators (torch, NumPy,
    Python): each draws from its own seeded stream, so a caller's random state is exactly as it was. (Building a
    torch module draws its first values from torch's generator, as every ``nn.Module`` does; ``fit`` redraws
    them from its seed.)"""
    tok = wb.RQVAE(12, hidden=(16,), quantizer=wb.QuantizerConfig(D=4, L=2, K=8))
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    before = torch.get_rng_state(), np.random.get_state(), random.getstate()
    X = np.random.default_rng(0).normal(size=(60, 12)).astype(np.float32)
    tok.fit(X, epochs=1, progress=False)
    _fit("motorec", planted, 0).evaluate(planted)
    wb.random_split(planted.interactions, seed=3)
    after = torch.get_rng_state(), np.random.get_state(), random.getstate()
    assert torch.equal(before[0], after[0])
    assert all(np.array_equal(a, b) for a, b in zip(before[1], after[1]))
    assert before[2] == after[2]


# ----------------------------------------------------------------------------------------------- evaluator
def test_top_k_breaks_ties_by_the_lower_item_id():
    scores = torch.tensor([[1.0, 3.0, 3.0, 0.0, 3.0, 3.0],   # a tie across the cut: ids 1, 2 of 1, 2, 4, 5
                           [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],   # all tied
                           [-torch.inf, 5.0, -torch.inf, 4.0, -torch.inf, -torch.inf],  # masked items fill up
                           [0.5, 0.7, 0.6, 0.9, 0.8, 0.1]])  # no tie
    assert top_k(scores, 3).tolist() == [[1, 2, 4], [0, 1, 2], [1, 3, 0], [3, 4, 1]]
    # the same on a permuted catalogue: the rule follows the ids, not the positions topk happens to return
    rng = np.random.default_rng(0)
    S = torch.from_numpy(rng.integers(0, 4, (50, 40)).astype(np.float32))  # many ties
    top = top_k(S, 10)
    ref = np.array([sorted(range(40), key=lambda i: (-S[r, i].item(), i))[:10] for r in range(50)])
    np.testing.assert_array_equal(top.numpy(), ref)


def test_a_popularity_ranking_with_ties_is_scored_by_the_documented_rule():
    """Items 0-3 share the top score; one user's relevant item is 3: with ties to the lower id it sits at rank 4,
    outside a top-3 and inside a top-4."""
    gt = sp.csr_matrix(np.array([[0, 0, 0, 1, 0, 0]], dtype=np.float32))
    flat = lambda users: torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0, 0.0]]).repeat(len(users), 1)  # noqa: E731
    rep = evaluate_ranking(flat, gt, ks=(3, 4), metrics=("recall",))
    assert rep["recall@3"] == 0.0 and rep["recall@4"] == 1.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_scores_are_an_error_naming_the_model(planted, bad):
    model = _fit("mf-bpr", planted, 0)
    with torch.no_grad():
        model.item_emb[7] = bad
    model._cache = None
    with pytest.raises(ValueError, match=r"MF\w*: non-finite scores"):
        model.evaluate(planted)


def test_recommend_applies_the_same_rules(planted):
    model = _fit("mf-bpr", planted, 0)
    users = torch.arange(3)
    with pytest.raises(ValueError, match=r"k must be in \[1, n_items = 120\], got 121"):
        model.recommend(users, 121)
    with pytest.raises(ValueError, match=r"k must be in \[1, n_items = 120\], got 0"):
        model.recommend(users, 0)
    with torch.no_grad():
        model.item_emb[5] = float("nan")
    model._cache = None
    with pytest.raises(ValueError, match=r"MFBPR: non-finite scores"):
        model.recommend(users, 5)


def test_huge_but_finite_scores_are_ranked():
    """Row sums of 1e38-sized scores overflow; the exact check then clears them."""
    gt = sp.csr_matrix(np.array([[0, 1, 0, 0]], dtype=np.float32))
    huge = lambda users: torch.tensor([[1e38, 3e38, 2e38, -3e38]]).repeat(len(users), 1)  # noqa: E731
    assert evaluate_ranking(huge, gt, ks=(1,), metrics=("hr",))["hr@1"] == 1.0


def test_mmq_orthogonal_penalty_stays_on_the_model_device():
    """With one expert per group no pair is penalised: the zero must live where the model does (a CPU zero
    beside CUDA losses breaks the sum)."""
    tok = wb.MMQTokenizer({"a": 7, "b": 5}, hidden=(8,), D=4, K=8, n_shared=1, n_specific=1).to("meta")
    penalty = tok.orthogonal_penalty()
    assert penalty.device.type == "meta" and penalty.shape == ()


def test_the_deterministic_flag_holds_for_the_fit_only():
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    workspace = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    seen = []
    tok = wb.RQVAE(6, hidden=(8,), quantizer=wb.QuantizerConfig(D=2, L=1, K=4))
    tok.fit(X, epochs=2, progress=False, deterministic=True,
            callback=lambda row: seen.append(torch.are_deterministic_algorithms_enabled()))
    assert seen == [True, True] and not torch.are_deterministic_algorithms_enabled()
    assert os.environ.get("CUBLAS_WORKSPACE_CONFIG") == workspace  # the environment is left as it was
    torch.use_deterministic_algorithms(True, warn_only=True)  # the caller's own setting survives a fit
    try:
        wb.RQVAE(6, hidden=(8,), quantizer=wb.QuantizerConfig(D=2, L=1, K=4)).fit(X, epochs=1, progress=False,
                                                                                 deterministic=True)
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    plain = wb.RQVAE(6, hidden=(8,), quantizer=wb.QuantizerConfig(D=2, L=1, K=4)).fit(X, epochs=2, progress=False)
    assert state_digest(plain) == state_digest(tok)  # on a CPU the flag changes nothing but the guard


def test_a_cache_that_cannot_be_written_is_a_warning_not_a_failure(tmp_path, monkeypatch):
    from workbench.core import storage

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage, "save_arrays", full_disk)
    with pytest.warns(RuntimeWarning, match="could not be written"):
        out = storage.cached_arrays(tmp_path / "c.npz", "k", lambda: {"x": np.arange(3)})
    np.testing.assert_array_equal(out["x"], np.arange(3))
    assert list(tmp_path.iterdir()) == []


def test_a_cache_whose_header_claims_a_huge_array_is_rebuilt(tmp_path):
    """An .npz member whose header claims 2**40 elements (a crafted or damaged file) is rebuilt, not fatal."""
    import io
    import zipfile

    from workbench.core import storage

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)})
    path = tmp_path / "c.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x.npy", header.getvalue() + bytes(64))
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        out = storage.cached_arrays(path, "k", lambda: {"x": np.arange(3)})
    np.testing.assert_array_equal(out["x"], np.arange(3))


def test_the_random_reference_scores_chance_on_any_item_subset():
    """2,000 users, one relevant item each among 500 candidates of a 1,000-item catalogue: a random ranking's
    R@20 is 20/500 = 0.04 (binomial sd 0.0044); each user gets their own order."""
    from workbench.models.baselines import RandomRecommender

    rng = np.random.default_rng(0)
    n_users, n_items = 2000, 1000
    candidates = np.zeros(n_items, bool)
    candidates[rng.choice(n_items, 500, replace=False)] = True
    relevant = rng.choice(np.flatnonzero(candidates), n_users)
    gt = sp.csr_matrix((np.ones(n_users, np.float32), (np.arange(n_users), relevant)), shape=(n_users, n_items))
    model = RandomRecommender(seed=3)
    model.n_items_ = n_items
    rep = evaluate_ranking(model.score, gt, ks=(20,), metrics=("recall",), candidates=candidates)
    assert abs(rep["recall@20"] - 0.04) < 4 * 0.0044
    full = evaluate_ranking(model.score, gt, ks=(20,), metrics=("recall",))
    assert abs(full["recall@20"] - 0.02) < 4 * 0.0032
    orders = model.score(torch.arange(3)).argsort(dim=1)
    assert not torch.equal(orders[0], orders[1])
    assert len(torch.unique(model.score(torch.arange(1)))) > 0.99 * n_items  # float32: a rare tie


def test_stored_zeros_are_neither_relevant_nor_seen():
    """``matrix.multiply(mask)`` leaves stored zeros: they must not count as ground truth or exclusions."""
    gt = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 1, 0, 0]], dtype=np.float32))
    gt = gt.multiply(np.array([[1, 1, 1, 0]], dtype=np.float32)).tocsr()  # user 0's item 3 becomes a stored zero
    seen = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float32))
    seen = seen.multiply(np.array([[1, 1, 0, 1]], dtype=np.float32)).tocsr()  # user 0's item 2: a stored zero
    assert gt.nnz == 3 and seen.nnz == 2
    prefer = lambda users: torch.tensor([[1.0, 0.0, 3.0, 2.0], [0.0, 1.0, 3.0, 2.0]])[users]  # noqa: E731
    rep = evaluate_ranking(prefer, gt, exclude=seen, ks=(1, 2), metrics=("recall",))
    # user 0: one relevant item (0); item 2 is not seen, so the ranking is 2, 3, 0 -> no hit at 1 or 2
    # user 1: relevant item 1; item 3 seen, ranking 2, 1 -> hit at 2
    assert rep.per_user["recall@2"].tolist() == [0.0, 1.0] and rep.per_user["recall@1"].tolist() == [0.0, 0.0]
