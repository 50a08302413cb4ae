"""The training engine: one loop for every family (a toy model with a known answer, the tokenizers, the graph
models), its fit style, checkpoints that resume exactly and refuse foreign or hostile files, early stopping,
divergence, the caller's random state, and how batches are shared out between processes."""
import os
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import workbench as wb
from workbench.core import distributed as dist
from workbench.training.engine import Batch, StepOutput, Trainable, TrainConfig, batch_slices


class Regression(nn.Module, Trainable):
    """Least squares on planted data ``y = X w* + noise``: the engine must recover ``w*``. ``scripted`` replaces
    the validation metric by a fixed sequence (to test early stopping); ``explode_at`` makes the loss infinite from
    that epoch on (to test divergence)."""

    train_defaults = TrainConfig(epochs=40, batch_size=32, lr=0.05)

    def __init__(self, dim=3, scripted=None, explode_at=None):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(dim))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # state changed outside the step
        self.scripted, self.explode_at, self.epoch, self.reports = scripted, explode_at, 0, []

    def fit(self, data, config=None, callback=None, **options):
        self._run_engine(data, config, callback, options)
        return self

    def data_fingerprint(self, data):
        return wb.core.storage.content_hash(data[0].numpy())

    def epoch_batches(self, data, batch_size, rng):
        X, y = data
        order = torch.from_numpy(rng.permutation(len(X)))
        return [Batch({"x": X[order[s]], "y": y[order[s]]}) for s in batch_slices(len(X), batch_size)]

    def on_epoch_start(self, data, epoch, rng, n_steps):
        self.epoch = epoch

    def training_step(self, batch):
        err = batch.rows["x"] @ self.w - batch.rows["y"]
        loss = (err ** 2).mean()
        if self.explode_at is not None and self.epoch >= self.explode_at:
            loss = loss * float("inf")
        return StepOutput({"mse": loss}, len(batch))

    def after_step(self, batch, updates):
        self.steps += 1
        return {"rows_seen": updates}

    def epoch_report(self, data, epoch):
        self.reports.append(epoch)
        return {"w_norm": float(self.w.detach().norm())}

    def validate(self, data):
        if self.scripted is None:
            return {}
        return {"score": self.scripted[min(self.epoch, len(self.scripted)) - 1]}


@pytest.fixture(scope="module")
def planted():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(200, 3, generator=gen)
    return X, X @ torch.tensor([1.5, -2.0, 0.5]) + 0.01 * torch.randn(200, generator=gen)


def test_engine_recovers_a_planted_model_and_keeps_a_history(planted):
    rows = []
    model = Regression().fit(planted, callback=rows.append, progress=False, eval_every=10)
    torch.testing.assert_close(model.w.detach(), torch.tensor([1.5, -2.0, 0.5]), atol=0.02, rtol=0)
    history = model.history_
    assert isinstance(history, pd.DataFrame) and history.index.name == "epoch"
    assert list(history.index) == list(range(1, 41))
    assert [r["epoch"] for r in rows] == list(range(1, 41))  # the callback sees every row as it is made
    assert history["loss_mse"].iloc[-1] < 0.01 * history["loss_mse"].iloc[0]
    np.testing.assert_allclose(history["loss_total"], history["loss_mse"])
    assert (history["rows_seen"] == 200).all()  # the after_step counters, summed per epoch
    assert int(model.steps) == 40 * 7  # after_step ran once per step: 200 rows in batches of 32 (7 steps)
    assert model.reports == [10, 20, 30, 40] and history["w_norm"].notna().sum() == 4  # eval_every, and the last
    assert model.best_epoch_ == 40 and not model.training  # no metric: the last epoch, left in eval mode


def test_early_stopping_keeps_the_best_validation_epoch(planted):
    scripted = [0.1, 0.5, 0.3, 0.2, 0.4, 0.9]
    model = Regression(scripted=scripted).fit(planted, metric="score", patience=3, progress=False, epochs=10)
    assert model.best_epoch_ == 2 and model.valid_ == {"score": 0.5}
    assert list(model.history_.index) == [1, 2, 3, 4, 5]  # stopped after 3 epochs without improvement
    assert model.fit_result_.stopped_early
    # the weights are those of epoch 2: one more fit of 2 epochs from scratch gives them
    again = Regression(scripted=scripted).fit(planted, epochs=2, progress=False)
    torch.testing.assert_close(model.w, again.w)
    lower = Regression(scripted=scripted).fit(planted, metric="score", mode="min", epochs=6, progress=False)
    assert lower.best_epoch_ == 1


def test_divergence_stops_with_a_message(planted):
    with pytest.raises(FloatingPointError, match="diverged.*lower the learning rate"):
        Regression(explode_at=3).fit(planted, progress=False)


def test_train_config_rejects_bad_and_unknown_options(planted):
    with pytest.raises(ValueError, match="unknown option.*'epoch'.*valid options"):
        Regression().fit(planted, epoch=3)
    for bad in ({"epochs": 0}, {"batch_size": -1}, {"lr": 0.0}, {"optimizer": "sgd"}, {"patience": 3}):
        with pytest.raises(ValueError, match="TrainConfig"):
            TrainConfig(**bad)


def test_fit_leaves_the_callers_random_state_alone(planted):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = Regression().fit(planted, epochs=3, progress=False, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    b = Regression().fit(planted, epochs=3, progress=False, seed=5)
    c = Regression().fit(planted, epochs=3, progress=False, seed=6)
    torch.testing.assert_close(a.w, b.w)  # one seed, one result
    assert not torch.equal(a.w, c.w)


def test_resume_is_exact_for_a_tokenizer(tmp_path):
    """An RQ-VAE with EMA codebooks and dead-code resets (state that lives outside the gradients) interrupted
    after epoch 2 and resumed from its checkpoint ends exactly where the uninterrupted run does."""
    X = np.random.default_rng(0).normal(size=(300, 12)).astype(np.float32)

    def tok():
        torch.manual_seed(0)
        return wb.RQVAE(12, hidden=(16,), quantizer=wb.QuantizerConfig(D=4, L=2, K=16, ema=True,
                                                                          dead_code_threshold=2.0))

    opts = dict(epochs=4, batch_size=64, progress=False, seed=1)
    straight = tok().fit(X, **opts)
    assert straight.history_["dead_code_resets"].sum() > 0  # the resets were exercised

    def interrupt(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    ckpt = tmp_path / "tok.pt"
    with pytest.raises(KeyboardInterrupt):
        tok().fit(X, checkpoint=str(ckpt), callback=interrupt, **opts)
    resumed = tok().fit(X, checkpoint=str(ckpt), **opts)
    assert resumed.fit_result_.resumed_from == 2
    pd.testing.assert_frame_equal(straight.history_.drop(columns=["seconds", "eval_seconds"]),
                                  resumed.history_.drop(columns=["seconds", "eval_seconds"]))
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    with pytest.raises(ValueError, match="another run"):  # other data, same shape
        tok().fit(X[::-1].copy(), checkpoint=str(ckpt), **opts)


class _Payload:
    """A pickle that creates a file when loaded."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_hostile_checkpoint_is_refused_and_runs_nothing(planted, tmp_path):
    ckpt, marker = tmp_path / "evil.pt", tmp_path / "created-by-pickle"
    with open(ckpt, "wb") as fh:
        pickle.dump({"key": "x", "payload": _Payload(str(marker))}, fh)
    with pytest.raises(ValueError, match="plain-tensor checkpoint"):
        Regression().fit(planted, checkpoint=str(ckpt), progress=False)
    assert not marker.exists()
    torch.save({"model": {}}, tmp_path / "keyless.pt")
    with pytest.raises(ValueError, match="no run key"):
        Regression().fit(planted, checkpoint=str(tmp_path / "keyless.pt"), progress=False)


def _zero_bytes_inside_largest_tensor(path, n=64):
    """Overwrite ``n`` bytes in the middle of the largest record of a torch zip checkpoint (the zip directory
    and the pickle stay intact, so only a checksum can notice)."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        info = max(zf.infolist(), key=lambda i: i.file_size)
    with open(path, "r+b") as fh:
        fh.seek(info.header_offset + 26)
        name_len, extra_len = (int.from_bytes(fh.read(2), "little") for _ in range(2))
        fh.seek(info.header_offset + 30 + name_len + extra_len + info.file_size // 2 - n // 2)
        fh.write(bytes(n))


def test_a_damaged_checkpoint_is_refused(tmp_path):
    X = np.random.default_rng(0).normal(size=(200, 64)).astype(np.float32)
    opts = dict(batch_size=64, progress=False, checkpoint=str(tmp_path / "tok.pt"))

    def tok():
        return wb.RQVAE(64, hidden=(128,), quantizer=wb.QuantizerConfig(D=8, L=2, K=16))

    tok().fit(X, epochs=1, **opts)
    ckpt = tmp_path / "tok.pt"
    intact = torch.load(ckpt, weights_only=True)
    _zero_bytes_inside_largest_tensor(ckpt)
    damaged = torch.load(ckpt, weights_only=True)  # torch itself reads the damaged file without complaint
    assert damaged["key"] == intact["key"] and damaged["checksum"] == intact["checksum"]
    with pytest.raises(ValueError, match="damaged"):
        tok().fit(X, epochs=2, **opts)
    ckpt.write_bytes(ckpt.read_bytes()[:300])  # truncated
    with pytest.raises(ValueError, match="cannot be read"):
        tok().fit(X, epochs=2, **opts)


def test_batches_are_shared_out_between_processes(monkeypatch):
    assert [(s.start, s.stop) for s in batch_slices(10, 4)] == [(0, 4), (4, 8), (8, 10)]
    monkeypatch.setattr(dist, "world_size", lambda: 3)
    # a last batch with fewer rows than processes joins the one before
    assert [(s.start, s.stop) for s in batch_slices(10, 4)] == [(0, 4), (4, 10)]
    with pytest.raises(ValueError, match="cannot be shared out among 3 processes"):
        batch_slices(2, 4)
    shares = {}
    for r in range(3):
        monkeypatch.setattr(dist, "rank", lambda r=r: r)
        shares[r] = (dist.share(10), dist.share(4), dist.share(3))
    # balanced and in rank order: 4, 3, 3 of 10 rows; 2, 1, 1 of 4; one each of 3 (never an empty share)
    assert [s[0] for s in shares.values()] == [slice(0, 4), slice(4, 7), slice(7, 10)]
    assert [s[1] for s in shares.values()] == [slice(0, 2), slice(2, 3), slice(3, 4)]
    assert [s[2] for s in shares.values()] == [slice(0, 1), slice(1, 2), slice(2, 3)]


def test_bad_settings_are_clear_errors_before_training():
    split = wb.RecDataset("p", pd.DataFrame({"user_id": [0, 0, 0, 1, 1, 1], "item_id": [0, 1, 2, 0, 1, 2],
                                             "x_label": [0, 0, 2, 0, 0, 1]}), 2, 3)
    with pytest.raises(ValueError, match="validates on .*metric='hit@5' is not one"):
        wb.LightGCN(dim=4).fit(split, metric="hit@5", progress=False)
    with pytest.raises(ValueError, match="hidden must be positive layer sizes"):
        wb.RQVAEConfig(hidden=(64, "x"))
    assert wb.RQVAEConfig(hidden=64).hidden == (64,) and wb.MMQConfig(hidden=[8, 4]).hidden == (8, 4)
    with pytest.raises(ValueError, match="D, L and K must be positive integers"):
        wb.QuantizerConfig(K="abc")
    tok = wb.RQVAE(3, hidden=(4,), quantizer=wb.QuantizerConfig(D=2, L=1, K=2))
    with pytest.raises(ValueError, match="init_sample"):
        tok.fit(np.ones((5, 3)), init_sample=0, progress=False)
    with pytest.raises(ValueError, match="built for 3"):
        tok.fit(np.ones((5, 4)), progress=False)


def test_single_process_collectives_return_their_input():
    t = torch.arange(3.0)
    assert dist.all_reduce_sum(t) is t and dist.broadcast(t) is t and dist.gather_rows(t) is t
    assert dist.all_gather_objects({"a": 1}) == [{"a": 1}] and dist.broadcast_object(5) == 5
    assert not dist.is_distributed() and dist.rank() == 0 and dist.world_size() == 1 and dist.is_main()
    assert not dist.init_from_env(torch.device("cpu")) or os.environ.get("WORLD_SIZE", "1") != "1"


def test_train_command_parses_settings_and_rejects_unknown_models(capsys):
    from workbench.train import main, parse_settings

    assert parse_settings(["K=64", "hidden=(32,)", "ema=True", "distance=cosine"]) == \
        {"K": 64, "hidden": (32,), "ema": True, "distance": "cosine"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_settings(["K"])
    with pytest.raises(SystemExit):
        main(["bert4rec"])
    assert "unknown model 'bert4rec'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--list"])
    assert {"lightgcn", "motorec", "rqvae", "mmq"} <= set(capsys.readouterr().out.split())


def test_train_command_trains_one_process(tmp_path):
    """``python -m workbench.train`` in-process on an MMRec bundle: one test evaluation, the history, each rank's
    state digest, and an unknown config field named in a clear error."""
    import json

    from planted import planted_dataset
    from workbench.train import main

    wb.save_mmrec(planted_dataset(), tmp_path / "bundle", name="planted")
    out = tmp_path / "run.json"
    assert main(["mf-bpr", "--data", f"mmrec:{tmp_path / 'bundle'}", "--epochs", "2", "--device", "cpu",
                 "--output", str(out)]) == 0
    run = json.loads(out.read_text())
    assert run["world_size"] == 1 and run["epochs_run"] == 2 and 0 < run["test"]["recall@20"] <= 1
    assert len(run["history"]) == 2 and len(run["ranks"]) == 1 and len(run["ranks"][0]["state_digest"]) == 64
    with pytest.raises(ValueError, match="unknown option.*'dimension'"):
        main(["mf-bpr", "--data", str(tmp_path / "bundle"), "--set", "dimension=8"])
