"""Metrics on cases computed by hand, including the limits."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from workbench.evaluation.selection import EarlyStopping
from workbench.evaluation.ranking import DotScorer, RankingReport, evaluate_ranking
from workbench.evaluation.ctr import (auc, auc_by_stratum, gauc, gauc_report, paired_bootstrap_auc,
                                      weighted_auc)
from workbench.evaluation.statistics import bootstrap_ci, paired_test


def csr(rows, n_users=2, n_items=5):
    r = [u for u, items in rows.items() for _ in items]
    c = [i for items in rows.values() for i in items]
    return sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(n_users, n_items))


SCORES = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5], [0.0, 0.0, 0.0, 1.0, 2.0]])


def table_scores(users):
    return SCORES[users]


def test_hand_computed_case():
    # user 0: item 0 masked (train), ranking 1,2,3,4; relevant {1, 3}. user 1: relevant {4}, ranked first.
    rep = evaluate_ranking(table_scores, csr({0: [1, 3], 1: [4]}), exclude=csr({0: [0]}), ks=(2, 4))
    u0 = {k: v[0] for k, v in rep.per_user.items()}
    idcg2 = 1 + 1 / math.log2(3)
    assert u0["recall@2"] == pytest.approx(0.5)
    assert u0["precision@2"] == pytest.approx(0.5)
    assert u0["hr@2"] == 1.0
    assert u0["ndcg@2"] == pytest.approx(1 / idcg2)
    assert u0["map@2"] == pytest.approx(0.5)
    assert u0["recall@4"] == pytest.approx(1.0)
    assert u0["precision@4"] == pytest.approx(0.5)
    assert u0["ndcg@4"] == pytest.approx((1 + 1 / math.log2(4)) / idcg2)
    assert u0["map@4"] == pytest.approx((1 + 2 / 3) / 2)
    assert rep["ndcg@2"] == pytest.approx((1 / idcg2 + 1.0) / 2)  # mean over the two users
    np.testing.assert_array_equal(rep.users, [0, 1])


def test_limits_perfect_and_worst():
    gt = csr({0: [0, 1], 1: [4]})
    perfect = evaluate_ranking(table_scores, gt, ks=(1, 2, 5))
    assert perfect["ndcg@2"] == pytest.approx(1.0) and perfect["recall@2"] == pytest.approx(1.0)
    assert perfect["map@2"] == pytest.approx(1.0)
    worst = evaluate_ranking(lambda u: -table_scores(u), gt, ks=(2,))
    assert worst["ndcg@2"] == 0.0 and worst["recall@2"] == 0.0 and worst["hr@2"] == 0.0
    # with K = n_items every relevant item is found
    assert evaluate_ranking(lambda u: -table_scores(u), gt, ks=(5,))["recall@5"] == pytest.approx(1.0)


def test_masking_and_unevaluated_users():
    gt = csr({0: [2]})  # user 1 has no ground truth: not evaluated
    no_mask = evaluate_ranking(table_scores, gt, ks=(1,))
    masked = evaluate_ranking(table_scores, gt, exclude=csr({0: [0, 1]}), ks=(1,))
    assert no_mask["hr@1"] == 0.0 and masked["hr@1"] == 1.0
    np.testing.assert_array_equal(masked.users, [0])


def test_strata_restrict_ground_truth_not_ranking():
    strata = {"cold": np.array([0, 0, 0, 1, 0], bool), "warm": np.array([1, 1, 1, 0, 1], bool)}
    rep = evaluate_ranking(table_scores, csr({0: [1, 3], 1: [4]}), exclude=csr({0: [0]}), ks=(2, 4), strata=strata)
    cold = rep.strata["cold"]
    np.testing.assert_array_equal(cold.users, [0])  # only user 0 has a cold test item
    assert cold["recall@2"] == 0.0  # item 3 is ranked third overall
    assert cold["recall@4"] == 1.0 and cold["ndcg@4"] == pytest.approx(1 / math.log2(4))
    warm = rep.strata["warm"]
    assert warm["recall@2"] == pytest.approx(1.0)
    assert set(rep.to_frame().index) == {"overall", "cold", "warm"}


def test_batching_and_dot_scorer_agree():
    rng = np.random.default_rng(0)
    U, V = (torch.as_tensor(rng.standard_normal(shape), dtype=torch.float32) for shape in ((50, 8), (30, 8)))
    gt = sp.random(50, 30, density=0.1, random_state=1, format="csr")
    gt.data[:] = 1
    ex = sp.random(50, 30, density=0.2, random_state=2, format="csr")
    ex = ex - ex.multiply(gt)
    ex.eliminate_zeros()
    ex.data[:] = 1
    a = evaluate_ranking(DotScorer(U, V), gt, exclude=ex, batch_size=7)  # 7 full batches and one of 1 user
    b = evaluate_ranking(lambda u: U[u] @ V.T, gt, exclude=ex, batch_size=1000)
    np.testing.assert_array_equal(a.users, np.flatnonzero(np.diff(gt.indptr)))
    np.testing.assert_array_equal(a.users, b.users)
    for k in a.metrics:
        np.testing.assert_allclose(a.per_user[k], b.per_user[k], err_msg=k)
        assert a[k] == pytest.approx(b[k])
    # each user's recall and NDCG from a sort of that user's scores with the excluded items dropped
    for n, u in enumerate(a.users):
        scores = (U[u] @ V.T).numpy()
        seen, relevant = set(ex[u].indices), set(gt[u].indices)
        ranked = [i for i in np.argsort(-scores, kind="stable") if i not in seen]
        for k in (10, 20):
            gains = [i in relevant for i in ranked[:k]]
            idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(relevant))))
            assert a.per_user[f"recall@{k}"][n] == pytest.approx(sum(gains) / len(relevant))
            assert a.per_user[f"ndcg@{k}"][n] == pytest.approx(
                sum(g / math.log2(r + 2) for r, g in enumerate(gains)) / idcg)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate_ranking(table_scores, csr({0: [1]}), metrics=("auc",))
    with pytest.raises(ValueError, match="ground truth is empty"):
        evaluate_ranking(table_scores, csr({}), ks=(2,))
    with pytest.raises(ValueError, match="cut-offs"):
        evaluate_ranking(table_scores, csr({0: [1]}), ks=(6,))
    with pytest.raises(ValueError, match="expected"):
        evaluate_ranking(lambda u: SCORES[u][:, :3], csr({0: [1]}), ks=(2,))


def test_auc_and_gauc_by_hand():
    assert auc([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1]) == pytest.approx(0.75)
    assert auc([1, 0, 1, 0], [0.5] * 4) == pytest.approx(0.5)
    assert auc([1, 1, 0], [3, 2, 1]) == 1.0
    users = ["a", "a", "b", "b", "b", "c"]
    labels = [1, 0, 1, 0, 0, 1]
    scores = [0.9, 0.1, 0.2, 0.5, 0.1, 0.3]
    assert gauc(users, labels, scores) == pytest.approx((2 * 1.0 + 3 * 0.5) / 5)
    with pytest.raises(ValueError, match="both classes"):
        auc([1, 1], [0.1, 0.2])


def test_weighted_auc_by_hand_and_as_repeated_rows():
    labels, scores = [1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1]
    # the first positive counts twice: it beats both negatives (2 + 2), the second beats one (1); 5 of 3 x 2 pairs
    assert weighted_auc(labels, scores, [2, 1, 1, 1]) == pytest.approx(5 / 6)
    assert weighted_auc([1, 0], [0.5, 0.5]) == 0.5
    rng = np.random.default_rng(0)
    y, s = rng.random(300) < 0.3, rng.integers(0, 20, 300).astype(float)      # many ties
    w = rng.integers(0, 4, (5, 300))
    expected = [auc(np.repeat(y, k), np.repeat(s, k)) for k in w]             # integer weights = repeated rows
    assert np.allclose(weighted_auc(y, s, w), expected)
    with pytest.raises(ValueError, match="both classes"):
        weighted_auc([1, 0], [0.1, 0.2], [1, 0])                             # the weighting removes the negative


def test_gauc_weightings_and_skipped_users_by_hand():
    users = ["a", "a", "b", "b", "b", "c", "c", "c", "c", "d"]
    labels = [1, 0, 1, 0, 0, 1, 1, 0, 0, 1]
    scores = [0.9, 0.1, 0.2, 0.5, 0.1, 0.1, 0.2, 0.3, 0.4, 0.7]
    # per-user AUC: a 1, b 0.5, c 0; d has one class; rows 2, 3, 4; positives 1, 1, 2
    assert gauc(users, labels, scores) == pytest.approx((2 * 1 + 3 * 0.5 + 0) / 9)
    assert gauc(users, labels, scores, "uniform") == pytest.approx(0.5)
    assert gauc(users, labels, scores, "positives") == pytest.approx((1 + 0.5 + 0) / 4)
    rep = gauc_report(users, labels, scores)
    assert (rep["users_scored"], rep["users_skipped"], rep["rows_skipped"]) == (3, 1, 1)
    assert gauc(["e", "e"], [1, 0], [0.3, 0.3]) == 0.5                        # tied within a user: one half
    with pytest.raises(ValueError, match="weighting"):
        gauc(users, labels, scores, "clicks")


def test_auc_by_stratum_by_hand():
    items = np.array([0, 0, 1, 1, 2, 2])
    labels = [1, 0, 1, 0, 1, 0]
    scores = [0.9, 0.1, 0.2, 0.8, 0.5, 0.5]
    out = auc_by_stratum(labels, scores, items, {"head": np.array([True, False, False]),
                                                 "tail": np.array([False, True, True]),
                                                 "one class": np.array([False, False, False])})
    assert out["head"] == 1.0
    assert out["tail"] == pytest.approx(weighted_auc([1, 0, 1, 0], [0.2, 0.8, 0.5, 0.5]))
    assert math.isnan(out["one class"])


def test_paired_bootstrap_auc_resamples_users():
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(200), 10)
    labels = rng.random(2000) < 0.4
    good, noise = labels + rng.normal(0, 0.8, 2000), rng.normal(0, 1, 2000)
    better = paired_bootstrap_auc(users, labels, good, noise, n_boot=300)
    assert better["diff"] == pytest.approx(auc(labels, good) - auc(labels, noise))
    assert better["ci_low"] > 0.1 and better["share_above_zero"] == 1.0 and better["users"] == 200
    same = paired_bootstrap_auc(users, labels, good, good, n_boot=50)
    assert same["diff"] == same["ci_low"] == same["ci_high"] == 0
    close = paired_bootstrap_auc(users, labels, good, good + rng.normal(0, 0.01, 2000), n_boot=300)
    assert close["ci_low"] < 0 < close["ci_high"]                              # a negligible change is no finding


def test_paired_bootstrap_auc_interval_reflects_users_not_rows():
    # 20 users of 100 rows; on each user one model is far better than the other, which one depends on the user: the
    # evidence is 20 users, not 2,000 rows, and the interval must be as wide as resampling users makes it
    rng = np.random.default_rng(2)
    users = np.repeat(np.arange(20), 100)
    labels = rng.random(2000) < 0.5
    a_wins = np.repeat(rng.random(20) < 0.5, 100)
    sharp, flat = labels + rng.normal(0, 0.3, 2000), labels + rng.normal(0, 3.0, 2000)
    a, b = np.where(a_wins, sharp, flat), np.where(a_wins, flat, sharp)
    by_users = paired_bootstrap_auc(users, labels, a, b, n_boot=400)
    rows = rng.integers(0, 2000, (400, 2000))                                    # resampling rows, for contrast
    row_diffs = [auc(labels[r], a[r]) - auc(labels[r], b[r]) for r in rows]
    row_width = np.subtract(*np.quantile(row_diffs, [0.975, 0.025]))
    assert by_users["ci_high"] - by_users["ci_low"] > 3 * row_width


def _report(values):
    values = np.asarray(values, float)
    return RankingReport({"recall@20": values.mean()}, {"recall@20": values}, np.arange(len(values)))


def test_paired_test_and_bootstrap():
    rng = np.random.default_rng(0)
    base = rng.random(400)
    same = paired_test(_report(base), _report(base), "recall@20")
    assert same["diff"] == 0 and same["t_pvalue"] == 1.0
    better = paired_test(_report(base + 0.1 + rng.normal(0, 0.01, 400)), _report(base), "recall@20")
    assert better["diff"] == pytest.approx(0.1, abs=0.01)
    assert better["t_pvalue"] < 1e-6 and better["ci_low"] > 0.05
    lo, hi = bootstrap_ci(np.full(10, 3.0))
    assert lo == hi == 3.0
    lo, hi = bootstrap_ci(rng.normal(0, 1, 2000), seed=1)
    assert lo < 0 < hi and hi - lo < 0.2


def test_early_stopping_selects_on_validation_only():
    stopper = EarlyStopping("recall@20", patience=3)
    seen, improved = [], []
    for epoch, value in enumerate([0.1, 0.3, 0.2, 0.25, 0.29, 0.5]):
        improved.append(stopper.step(epoch, {"recall@20": value}))
        seen.append(epoch)
        if stopper.should_stop:
            break
    assert seen == [0, 1, 2, 3, 4] and stopper.best_epoch == 1 and improved == [True, True, False, False, False]
    again = EarlyStopping("recall@20", patience=3)
    again.load_state_dict(stopper.state_dict())  # what a checkpoint keeps
    assert again.should_stop and again.best_value == 0.3
    lower = EarlyStopping("loss", patience=None, mode="min")
    assert [lower.step(e, {"loss": v}) for e, v in enumerate([3.0, 2.0, 2.5])] == [True, True, False]
    assert not lower.should_stop  # patience None: never stops
    with pytest.raises(FloatingPointError, match="diverged"):
        EarlyStopping().step(0, {"recall@20": float("nan")})
    with pytest.raises(KeyError, match="lack"):
        EarlyStopping().step(0, {"ndcg@20": 0.1})


def test_leave_one_out_hr_equals_recall():
    """With one ground-truth item per user, Recall@K = HR@K and NDCG@K = 1/log2(rank + 1)."""
    gt = csr({0: [2], 1: [3]})
    rep = evaluate_ranking(table_scores, gt, ks=(1, 3, 5))
    for k in (1, 3, 5):
        np.testing.assert_allclose(rep.per_user[f"recall@{k}"], rep.per_user[f"hr@{k}"])
    assert rep.per_user["ndcg@3"][0] == pytest.approx(1 / math.log2(3 + 1))  # item 2 ranked third for user 0
    assert rep.per_user["ndcg@3"][1] == pytest.approx(1 / math.log2(2 + 1))  # item 3 ranked second for user 1


def test_dot_scorer_keeps_the_embedding_dtype():
    U, V = torch.randn(6, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    scorer = DotScorer(U, V)
    assert scorer.dtype == torch.float64 and scorer(torch.arange(6)).dtype == torch.float64
    out = torch.empty(2, 5, dtype=torch.float64)
    assert scorer.score_into(torch.tensor([1, 4]), out) is out
    torch.testing.assert_close(out, U[[1, 4]] @ V.T, rtol=0, atol=0)
    rep = evaluate_ranking(scorer, csr({0: [1], 3: [2]}, n_users=6), ks=(2,))
    ref = evaluate_ranking(lambda u: U[u] @ V.T, csr({0: [1], 3: [2]}, n_users=6), ks=(2,))
    assert rep.metrics == ref.metrics
    # scores 1e-12 apart: distinct in float64, all equal in float32. Items by score: 2, 4, 6, 1, 5, 0, 3 (the
    # best two in the middle, so no tie-breaking by index finds them)
    order = torch.tensor([1, 3, 6, 0, 5, 2, 4], dtype=torch.float64)
    V = (1 + 1e-12 * order)[:, None]
    assert torch.unique((torch.ones(1, 1) @ V.float().T)).numel() == 1  # ties in float32
    gt = csr({0: [2, 4]}, n_users=1, n_items=7)
    rep = evaluate_ranking(DotScorer(torch.ones(1, 1, dtype=torch.float64), V), gt, ks=(1, 2))
    assert rep["hr@1"] == 1.0 and rep["recall@2"] == 1.0 and rep["ndcg@2"] == pytest.approx(1.0)


def test_t_halfwidth_by_hand():
    from workbench.evaluation.statistics import t_halfwidth

    # sd([1, 2, 3]) = 1, t(0.975, 2) = 4.3027 -> 4.3027 / sqrt(3)
    assert t_halfwidth(np.array([1.0, 2.0, 3.0])) == pytest.approx(4.3027 / np.sqrt(3), rel=1e-4)
    assert t_halfwidth(np.array([1.0, np.nan, 2.0, 3.0])) == pytest.approx(4.3027 / np.sqrt(3), rel=1e-4)
    assert t_halfwidth(np.array([1.0, 3.0]), confidence=0.9) == pytest.approx(6.3138 * np.sqrt(2) / np.sqrt(2), rel=1e-4)
    assert np.isnan(t_halfwidth(np.array([2.0]))) and np.isnan(t_halfwidth(np.array([2.0, np.nan])))

