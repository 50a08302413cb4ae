"""CTR models (PPNet, DNN), the semantic-id feature modes and behavior-aware fine-tuning (MMQ section 3.3-4)."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

import workbench as wb
from workbench.data.dataset import RecDataset
from workbench.models.ctr import FEATURES, CTRModel, ItemFeatures, SoftCoder, matched_dim, prefix_ids
from workbench.tokenizers.mmq import MMQTokenizer
from workbench.tokenizers.modalities import ModalitySeparated
from workbench.tokenizers.quantizer import QuantizerConfig
from workbench.tokenizers.rqvae import RQVAE, RQVAEConfig

FIT = dict(epochs=2, progress=False, metric=None, patience=None)


@pytest.fixture(scope="module")
def catalogue():
    ds = wb.load_synthetic("smoke")
    X = wb.fuse_modalities(ds.features, ["image", "text"])
    dims = {"image": ds.features["image"].shape[1], "text": ds.features["text"].shape[1]}
    tok = MMQTokenizer(dims, D=8, K=16, hidden=(32,)).fit(X, epochs=3, progress=False)
    return ds, wb.ctr_data(ds), X, tok


def _inputs(mode, X, tok):
    return {"codes": tok.encode(X) if mode != "none" else None, "content": X,
            "tokenizer": tok if mode == "soft" else None}


@pytest.mark.parametrize("arch", ["ppnet", "dnn"])
@pytest.mark.parametrize("mode", FEATURES)
def test_contract_every_model_and_feature_mode(catalogue, arch, mode):
    ds, data, X, tok = catalogue
    model = CTRModel(arch=arch, features=mode).fit(data, **_inputs(mode, X, tok), **FIT)
    report = model.evaluate(data)
    p = report.scores
    assert p.shape == (len(data.part("test")["labels"]),) and np.isfinite(p).all() and (p > 0).all() and (p < 1).all()
    for key in ("auc", "logloss", "gauc", "gauc_uniform", "gauc_positives", "gauc_users_skipped", "auc_head",
                "auc_tail", "auc_cold"):
        assert key in report.metrics
    assert 0 <= report.metrics["auc"] <= 1 and len(model.history_) == 2
    # the same seed gives the same model; predict() on dataset ids agrees with the part's rows
    again = CTRModel(arch=arch, features=mode).fit(data, **_inputs(mode, X, tok), **FIT)
    np.testing.assert_array_equal(again.predict_rows(data.part("test")), p)
    test = data.part("test")
    np.testing.assert_allclose(model.predict(test["users"][:50], test["items"][:50]), p[:50], rtol=1e-6)
    if mode == "soft":  # the caller's tokenizer is a copy's source, never trained in place
        assert model.coder.source is not tok


def test_unknown_users_and_items_use_the_out_of_vocabulary_bucket(catalogue):
    ds, data, X, tok = catalogue
    model = CTRModel(arch="dnn").fit(data, **FIT)
    cold_user = int(np.flatnonzero(data.user_vocab == 0)[0])
    cold_item = int(np.flatnonzero(data.item_vocab == 0)[0])
    warm_user = int(data.part("train")["users"][0])
    # two different unknown users look the same to the model
    other = int(np.flatnonzero(data.user_vocab == 0)[1])
    p = model.predict([cold_user, other, warm_user], [cold_item, cold_item, cold_item])
    assert p[0] == p[1] != p[2]
    with pytest.raises(ValueError, match="user ids"):
        model.predict([ds.n_users], [0])


def test_bad_configurations_are_refused(catalogue):
    ds, data, X, tok = catalogue
    with pytest.raises(ValueError, match="features"):
        CTRModel(features="bag")
    with pytest.raises(ValueError, match="no item feature"):
        CTRModel(features="none", item_id=False)
    with pytest.raises(ValueError, match="tokenizer"):
        CTRModel(features="soft").fit(data, content=X, **FIT)
    with pytest.raises(ValueError, match="code tuples"):
        CTRModel(features="sum").fit(data, **FIT)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        CTRModel(features="sum").build(data, codes=tok.encode(X), K=4)
    with pytest.raises(ValueError, match="items"):
        CTRModel(features="dense").build(data, content=X[:10])
    with pytest.raises(TypeError, match="neural tokenizer"):
        SoftCoder(wb.RQKMeans(K=4, L=2).fit(X))


def test_feature_modes_by_hand():
    codes = np.array([[0, 1], [0, 2], [1, 1], [0, 1]])
    ids, sizes = prefix_ids(codes, buckets=100)
    assert sizes == [2, 3]
    np.testing.assert_array_equal(ids[:, 0], [0, 0, 1, 0])
    assert ids[0, 1] == ids[3, 1] != ids[1, 1] != ids[2, 1]  # (0,1) twice, (0,2), (1,1)
    hashed, sizes = prefix_ids(codes, buckets=2)
    assert sizes == [2, 2] and hashed.max() < 2
    torch.manual_seed(0)
    summed = ItemFeatures("sum", 3, codes, K=3)
    emb, _ = summed(torch.tensor([1]))
    table = summed.table.weight
    torch.testing.assert_close(emb[0], table[0] + table[3 + 2])  # position 2's rows start at K
    cat = ItemFeatures("concat", 3, codes, K=3)
    assert cat.width == 6 and cat(torch.tensor([1]))[0].shape == (1, 6)
    rand = ItemFeatures("hash", 3, codes, K=3, hash_seed=1)
    assert rand.table.weight.shape == summed.table.weight.shape and not torch.equal(rand.codes, summed.codes)
    assert rand.codes.max() < 3
    none = ItemFeatures("none", 3)
    assert none.width == 0 and none(torch.tensor([0]))[0] is None


def test_ppnet_gates_scale_every_layer_and_stop_gradients(catalogue):
    ds, data, X, tok = catalogue
    torch.manual_seed(0)
    model = CTRModel(arch="ppnet", hidden=(8, 4)).build(data)
    assert len(model.tower.gates) == 3  # the input of both hidden layers and of the output layer
    batch = {k: torch.as_tensor(v[:20]) for k, v in data.part("train").items() if k in ("user_index", "items",
                                                                                          "item_index")}
    args = (batch["user_index"], batch["items"], batch["item_index"])
    # the gate network's output reaches the priors, never the main embeddings (stop-gradient on the main input)
    captured = {}
    hook = model.tower.gates[0].register_forward_hook(lambda m, i, o: captured.setdefault("gate", o))
    model.logits(*args)
    hook.remove()
    user_grad, prior_grad = torch.autograd.grad(captured["gate"].sum(), [model.user_emb.weight,
                                                                         model.user_prior.weight], allow_unused=True)
    assert (user_grad is None or user_grad.abs().sum() == 0) and prior_grad.abs().sum() > 0
    # a zero gate network gives delta = gamma * sigmoid(0) = 1: PPNet is then its DNN tower exactly
    with torch.no_grad():
        for gate in model.tower.gates:
            gate[-1].weight.zero_()
            gate[-1].bias.zero_()
    dnn = CTRModel(arch="dnn", hidden=(8, 4)).build(data)
    dnn.load_state_dict({k: v for k, v in model.state_dict().items() if k in dnn.state_dict()})
    torch.testing.assert_close(model.logits(*args)[0], dnn.logits(*args)[0])
    with torch.no_grad():
        model.tower.gates[1][-1].bias.fill_(10.0)  # a saturated gate doubles that layer's input
    assert not torch.allclose(model.logits(*args)[0], dnn.logits(*args)[0])


def test_matched_parameter_budgets(catalogue):
    ds, data, X, tok = catalogue
    codes = tok.encode(X)
    budget = CTRModel(features="sum").build(data, codes=codes).parameter_count()
    for mode in ("none", "concat", "dense"):
        cfg = CTRModel(features=mode).config
        dim = matched_dim(cfg, data, budget, codes=codes, content=X)
        count = CTRModel(replace(cfg, dim=dim)).build(data, codes=codes, content=X).parameter_count()
        step = abs(CTRModel(replace(cfg, dim=dim + 1)).build(data, codes=codes, content=X).parameter_count() - count)
        assert abs(count - budget) <= step  # the nearest embedding size
    assert matched_dim(CTRModel(features="none").config, data, budget) > 16  # the id-only model gets wider tables


# ------------------------------------------------------------------------------------------- fine-tuning
def _tokenizers(X, dims):
    rq = RQVAE(X.shape[1], RQVAEConfig(hidden=(16,), quantizer=QuantizerConfig(D=4, L=2, K=8))).fit(
        X, epochs=2, progress=False)
    mmq = MMQTokenizer(dims, D=4, K=8, hidden=(16,)).fit(X, epochs=2, progress=False)
    a, b = list(dims.values())
    parts = {m: (RQVAE(d, RQVAEConfig(hidden=(8,), quantizer=QuantizerConfig(D=4, L=2, K=8))).fit(
        X[:, cols], epochs=2, progress=False), cols) for m, d, cols in (("image", a, slice(0, a)),
                                                                          ("text", b, slice(a, a + b)))}
    return {"rq-vae": rq, "mmq": mmq, "ms-rq-vae": ModalitySeparated(parts)}


def test_soft_codes_equal_the_exported_ids(catalogue):
    ds, data, X, _ = catalogue
    dims = {"image": ds.features["image"].shape[1], "text": ds.features["text"].shape[1]}
    for name, tok in _tokenizers(X, dims).items():
        coder = SoftCoder(tok)
        out = coder(torch.as_tensor(X), tau=0.5)
        np.testing.assert_array_equal(out.codes.numpy(), tok.encode(X), err_msg=name)
        assert out.ind.shape == (len(X), tok.L, tok.K)
        torch.testing.assert_close(out.ind.sum(-1), torch.ones(len(X), tok.L))  # one-hot forward
        assert set(out.losses) == {"recon", "aux"} and out.losses["recon"] > 0


@pytest.mark.parametrize("name", ["mmq", "rq-vae", "ms-rq-vae"])
def test_the_downstream_gradient_reaches_experts_and_codebooks_unless_frozen(catalogue, name):
    ds, data, X, _ = catalogue
    dims = {"image": ds.features["image"].shape[1], "text": ds.features["text"].shape[1]}
    tok = _tokenizers(X, dims)[name]
    for freeze in ("none", "codebooks", "tokenizer"):
        model = CTRModel(arch="dnn", features="soft", freeze=freeze).build(data, content=X, tokenizer=tok)
        rows = data.part("train")
        logit, _ = model.logits(*(torch.as_tensor(rows[k][:256]) for k in ("user_index", "items", "item_index")))
        torch.nn.functional.binary_cross_entropy_with_logits(logit, torch.as_tensor(rows["labels"][:256]).float()
                                                             ).backward()   # the downstream loss alone
        grads = {n: p.grad for n, p in model.coder.named_parameters()}
        books = [g for n, g in grads.items() if "codebooks" in n]
        first = [g for n, g in grads.items() if n.endswith("0.weight") and ("shared" in n or "encoder" in n)]
        assert books and first
        if freeze == "none":
            assert all(g is not None and g.abs().sum() > 0 for g in books + first)
        elif freeze == "codebooks":
            assert all(g is None for g in books) and all(g is not None and g.abs().sum() > 0 for g in first)
        else:
            assert all(g is None for g in grads.values())


def test_warm_start_soft_model_and_its_frozen_export_predict_alike(catalogue):
    ds, data, X, tok = catalogue
    base = CTRModel(arch="ppnet", features="sum").fit(data, codes=tok.encode(X), K=tok.K, **FIT)
    test = data.part("test")
    soft = base.finetune(data, tok, X, epochs=1, progress=False, metric=None, patience=None, tokenizer_lr=0.0)
    # tokenizer frozen by a zero learning rate: ids unchanged, and the soft model predicts as the frozen export
    assert soft.id_report_["changed_items"] == 0
    np.testing.assert_allclose(soft.predict_rows(test), soft.frozen(X).predict_rows(test), rtol=1e-5, atol=1e-7)
    moved = base.finetune(data, tok, X, epochs=2, progress=False, metric=None, patience=None, tokenizer_lr=5.0)
    assert moved.id_report_["changed_items"] > 0
    export = moved.frozen(X)
    np.testing.assert_array_equal(export.item_features.codes.numpy(), moved.coder.encode(X))
    np.testing.assert_allclose(moved.predict_rows(test), export.predict_rows(test), rtol=1e-5, atol=1e-7)
    # before training, the warm-started soft model is the sum model
    fresh = CTRModel(replace(base.config, features="soft")).build(data, content=X, tokenizer=tok)
    fresh.load_state_dict(base.state_dict(), strict=False)
    np.testing.assert_allclose(fresh.predict_rows(test), base.predict_rows(test), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="features='sum'"):
        moved.finetune(data, tok, X)
    narrow = CTRModel(features="sum").fit(data, codes=np.minimum(tok.encode(X), tok.K - 2), **FIT)  # K inferred
    with pytest.raises(ValueError, match="K=tokenizer.K"):
        narrow.finetune(data, tok, X)


def test_fine_tuning_sees_training_rows_only(catalogue):
    ds, data, X, tok = catalogue
    base = CTRModel(arch="dnn", features="sum").fit(data, codes=tok.encode(X), K=tok.K, **FIT)
    rng = np.random.default_rng(0)
    parts = {k: dict(v) for k, v in data.parts.items()}
    for name in ("valid", "test"):  # other labels and other items after the training window
        parts[name]["labels"] = 1 - parts[name]["labels"]
        parts[name]["items"] = rng.permutation(parts[name]["items"])
    other = replace(data, parts=parts)
    runs = [base.finetune(d, tok, X, epochs=2, progress=False, metric=None, patience=None, tokenizer_lr=1.0)
            for d in (data, other)]
    for (n, a), (_, b) in zip(runs[0].state_dict().items(), runs[1].state_dict().items()):
        assert torch.equal(a, b), n


def _planted(seed: int = 0, n_users: int = 80, n_items: int = 64, F: int = 8):
    """Users of two kinds like the items of their own kind; an item's kind barely shows in its content."""
    rng = np.random.default_rng(seed)
    kind, user_kind = np.arange(n_items) % 2, np.arange(n_users) % 2
    X = rng.normal(size=(n_items, F)).astype(np.float32)
    X[:, 0] += 0.8 * (2 * kind - 1)
    u, i = (a.ravel() for a in np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij"))
    keep = rng.random(len(u)) < 0.6
    u, i = u[keep], i[keep]
    like = rng.random(len(u)) < np.where(kind[i] == user_kind[u], 0.9, 0.1)
    inter = pd.DataFrame({"user_id": u, "item_id": i, "rating": np.where(like, 5.0, 1.0),
                          "timestamp": rng.permutation(len(u))})
    return RecDataset(name="planted", interactions=inter, n_users=n_users, n_items=n_items,
                      features={"content": X}), X, kind


def _same_kind_share(codes: np.ndarray, kind: np.ndarray) -> float:
    """Among item pairs sharing a code at some position, the share of pairs of one kind."""
    same_kind = kind[:, None] == kind[None, :]
    hits = total = 0
    for level in range(codes.shape[1]):
        share = codes[:, level][:, None] == codes[:, level][None, :]
        np.fill_diagonal(share, False)
        hits, total = hits + (share & same_kind).sum(), total + share.sum()
    return hits / total


@pytest.mark.parametrize("name", ["rq-vae", "mmq"])
def test_fine_tuning_groups_items_that_users_treat_alike(name):
    ds, X, kind = _planted()
    data = wb.ctr_data(ds)
    if name == "rq-vae":
        tok = RQVAE(8, RQVAEConfig(hidden=(16,), quantizer=QuantizerConfig(D=4, L=2, K=4)))
    else:
        tok = MMQTokenizer({"a": 4, "b": 4}, D=4, K=4, hidden=(16,), n_shared=1, n_specific=1)
    tok.fit(X, epochs=50, batch_size=64, progress=False)
    codes = tok.encode(X)
    fixed = dict(lr=1e-2, progress=False, metric=None, patience=None)
    base = CTRModel(arch="dnn", features="sum", item_id=False, dim=8, hidden=(16,))
    base.fit(data, codes=codes, K=tok.K, epochs=20, **fixed)
    # the downstream loss alone moves the ids (the reconstruction terms off): items of one kind gather
    alone = base.finetune(data, tok, X, tau=1.0, tokenizer_lr=1.0, epochs=30, recon_weight=0.0, aux_weight=0.0,
                          **fixed)
    # eq. 19 as a whole (the reconstruction terms hold the ids back, but not all the way)
    moved = base.finetune(data, tok, X, tau=1.0, tokenizer_lr=1.0, epochs=30, **fixed)
    kept = base.finetune(data, tok, X, tau=1.0, freeze="tokenizer", epochs=30, **fixed)
    before = _same_kind_share(codes, kind)
    assert _same_kind_share(alone.coder.encode(X), kind) > before + 0.15
    assert _same_kind_share(moved.coder.encode(X), kind) > before + 0.03
    np.testing.assert_array_equal(kept.coder.encode(X), codes)


@pytest.mark.slow
def test_bench_ctr_runs_both_sides_on_movielens():
    import json

    from workbench.bench.ctr import bench_ctr, linear_macs

    assert linear_macs(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))) == 20
    r = bench_ctr(epochs=1, n_seeds=1, K=16, finetune_epochs=1)
    json.dumps(r)
    assert r["train_rows"] == 81000 and r["ours_examples_per_s"] > 0 and r["deepctr_examples_per_s"] > 0
    assert 0.6 < r["ours_auc"] < 0.9 and 0.6 < r["deepctr_auc"] < 0.9  # both learn (an id model is ~0.72)
    assert r["finetune_flops_over_frozen"] > 1 and r["finetune_step_over_frozen"] > 0
