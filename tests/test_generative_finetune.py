"""Behavior-aware fine-tuning of a generator's ids (MMQ section 3.3 for generative retrieval)."""
from dataclasses import replace

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.models.generative.finetune import SoftIdGenerator
from workbench.models.generative.generator import history_tokens
from workbench.tokenizers.mmq import MMQTokenizer

FIXED = dict(progress=False, metric=None, patience=None)


@pytest.fixture(scope="module")
def setup():
    ds = wb.load_synthetic("smoke")
    data = wb.sequence_split(ds)
    X = wb.fuse_modalities(ds.features, ["image", "text"])
    dims = {m: ds.features[m].shape[1] for m in ("image", "text")}
    tok = MMQTokenizer(dims, D=8, K=16, hidden=(32,)).fit(X, epochs=5, progress=False)
    codes = wb.item_codes(tok, X, "reassign")
    gen = wb.Generator(codes.codes, codes.sizes, config=wb.generator_config("tiny", valid_users=50)).fit(
        data, epochs=1, **FIXED)
    return data, X, tok, gen


def test_soft_inputs_reproduce_the_generators_loss(setup):
    data, X, tok, gen = setup
    ft = SoftIdGenerator(gen, tok, X).eval()
    hist, targets, _ = data.examples("prefix")
    hist, targets = hist[:64], targets[:64]
    # the base generator's own loss on its token ids (the raw codes equal the ids where nothing collided)
    clean = ~((gen.codes_ != ft.raw_before_).any(1)[targets] | (gen.codes_ != ft.raw_before_).any(1)[
        np.where(hist == wb.PAD, 0, hist)].any(1))
    hist, targets = hist[clean], targets[clean]
    ids, mask = history_tokens(hist, gen.codes_, gen.offsets_)
    keep = int(np.flatnonzero(mask.any(0)).min())
    with torch.no_grad():
        ref = gen.t5(input_ids=torch.as_tensor(ids[:, keep:]), attention_mask=torch.as_tensor(mask[:, keep:]).long(),
                     labels=torch.as_tensor(gen.codes_[targets] + gen.offsets_)).loss
        ours, losses = ft._forward(torch.as_tensor(hist), torch.as_tensor(targets))
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
    assert set(losses) == {"recon", "aux"}


def test_the_generators_loss_reaches_the_tokenizer(setup):
    data, X, tok, gen = setup
    ft = SoftIdGenerator(gen, tok, X)
    hist, targets, _ = data.examples("prefix")
    ce, _ = ft._forward(torch.as_tensor(hist[:128]), torch.as_tensor(targets[:128]))
    ce.backward()
    grads = {n: p.grad for n, p in ft.coder.named_parameters()}
    assert any("codebooks" in n and g is not None and g.abs().sum() > 0 for n, g in grads.items())
    assert grads["source.shared.0.0.weight"].abs().sum() > 0  # an expert's first layer


def test_fine_tuning_sees_training_sequences_only_and_exports_unique_ids(setup):
    data, X, tok, gen = setup
    rng = np.random.default_rng(0)
    moved = replace(data, test_items=np.where(data.test_items >= 0, rng.integers(0, data.n_items, data.n_users), -1))
    runs = [SoftIdGenerator(gen, tok, X, tokenizer_lr=1.0).fit(d, epochs=1, **FIXED) for d in (data, moved)]
    for (n, a), (_, b) in zip(runs[0].state_dict().items(), runs[1].state_dict().items()):
        assert torch.equal(a, b), n
    new, codes, report = runs[0].export()
    assert wb.collision_report(codes.codes)["collision_rate"] == 0 and codes.sizes == gen.sizes
    np.testing.assert_array_equal(new.codes_, codes.codes)
    assert new.trie_.lookup(torch.as_tensor(codes.codes[:5])).tolist() == [0, 1, 2, 3, 4]  # the rebuilt trie
    assert 0 < report["changed_items"] <= 1 and 0 < report["utilization_after"] <= 1
    assert new.evaluate(data, "test", ks=(5, 10)).metrics["recall@10"] >= 0
    assert runs[0].coder.source is not tok  # the caller's tokenizer is left alone


def test_refuses_ids_that_are_not_the_tokenizers(setup):
    data, X, tok, gen = setup
    other = MMQTokenizer({m: 1 for m in ()} or {"image": 32, "text": 32}, D=8, K=16, hidden=(8,))
    with pytest.raises(ValueError):
        SoftIdGenerator(gen, other.fit(np.random.default_rng(0).normal(size=(X.shape[0], 64)).astype(np.float32),
                                       epochs=1, progress=False), X[:, :64])
    level = wb.item_codes(tok, X, "level")
    extra = wb.Generator(level.codes, level.sizes, config=wb.generator_config("tiny")).build()
    with pytest.raises(ValueError, match="extra level"):
        SoftIdGenerator(extra, tok, X)
