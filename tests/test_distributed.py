"""Scale-out with torch.distributed: ``torchrun`` launches 2 CPU processes (gloo) of ``python -m workbench.train``,
compared with one process. Each process holds the whole model and data and trains its share of every batch
under DistributedDataParallel; state outside the gradients (EMA codebooks, usage counts, dead-code resets, code
buffers) is synchronised by the model's ``after_step``; evaluation is sharded by users and gathered."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import workbench as wb
from planted import planted_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    wb.save_mmrec(planted_dataset(), folder, name="planted")
    return folder


def train(args, out, nproc=1):
    """Run the command in ``nproc`` processes; its ``--output`` JSON."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    cmd = [*(launcher if nproc > 1 else [sys.executable]), "-m", "workbench.train", *args, "--output", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread per process: 2 processes on 2 cores
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stderr[-4000:]}"
    return json.loads(out.read_text())


def losses(run):
    return np.array([row["loss_total"] for row in run["history"]])


def test_two_processes_match_one_write_one_checkpoint_and_resume(bundle, tmp_path):
    common = ["lightgcn", "--data", str(bundle), "--batch-size", "256", "--lr", "0.01", "--device", "cpu"]
    one = train([*common, "--epochs", "3"], tmp_path / "one.json")
    ckpt = tmp_path / "run.pt"
    two = train([*common, "--epochs", "3", "--checkpoint", str(ckpt)], tmp_path / "two.json", nproc=2)
    assert one["world_size"] == 1 and two["world_size"] == 2
    # the same batches, each process's loss weighted by its share: the gradients DDP averages are the batch's,
    # so only float rounding separates the runs (measured: equal to 10 digits)
    np.testing.assert_allclose(losses(two), losses(one), rtol=1e-5)
    for k, v in one["test"].items():
        assert two["test"][k] == pytest.approx(v, abs=1e-4), k
    digests = {r["state_digest"] for r in two["ranks"]}
    assert len(digests) == 1  # both processes end with the same weights
    assert [r["checkpoints_written"] for r in two["ranks"]] == [3, 0]  # rank 0 alone writes, once per epoch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.json", "run.pt", "two.json"]  # no stray temp files
    # resume: a longer run continues from the checkpoint and ends where an uninterrupted one does
    resumed = train([*common, "--epochs", "5", "--checkpoint", str(ckpt)], tmp_path / "resumed.json", nproc=2)
    straight = train([*common, "--epochs", "5"], tmp_path / "straight.json", nproc=2)
    assert resumed["resumed_from"] == 3 and straight["resumed_from"] == 0
    np.testing.assert_array_equal(losses(resumed), losses(straight))
    assert resumed["test"] == straight["test"]
    assert resumed["ranks"][0]["state_digest"] == straight["ranks"][0]["state_digest"]


def test_tokenizer_codebooks_stay_identical_across_processes(bundle, tmp_path):
    """An RQ-VAE with EMA codebooks and dead-code resets: batch counts and sums are summed over processes and
    replacement codes drawn by rank 0 from the whole batch, so the run follows the one-process run (resets
    included) and both processes hold the same codebooks."""
    args = ["rqvae", "--data", str(bundle), "--epochs", "3", "--batch-size", "64", "--lr", "0.01", "--device", "cpu",
            "--set", "K=16", "--set", "L=2", "--set", "D=8", "--set", "hidden=(32,)", "--set", "ema=True",
            "--set", "dead_code_threshold=2.0"]
    one = train(args, tmp_path / "one.json")
    two = train(args, tmp_path / "two.json", nproc=2)
    resets = [row["dead_code_resets"] for row in one["history"]]
    assert sum(resets) > 0 and resets == [row["dead_code_resets"] for row in two["history"]]
    np.testing.assert_allclose(losses(two), losses(one), rtol=1e-5)
    assert two["health"]["recon_mse"] == pytest.approx(one["health"]["recon_mse"], rel=1e-4)
    assert len({r["state_digest"] for r in two["ranks"]}) == 1


def test_motorec_code_buffers_are_identical_across_processes(bundle, tmp_path):
    """MoToRec's tokenizer chunk is the same on both processes and its code buffers end identical. Its metrics
    are close to, not equal to, one process's: InfoNCE's in-batch negatives are each process's share, and a
    code choice flips for an item near a decision boundary when the parameters differ in the last bits."""
    args = ["motorec", "--data", str(bundle), "--epochs", "2", "--batch-size", "256", "--lr", "0.01", "--device",
            "cpu", "--set", "K=16", "--set", "L=2", "--set", "hidden=(32,)", "--set", "tokenizer_warmup=1",
            "--set", "knn_k=5"]
    one = train(args, tmp_path / "one.json")
    two = train(args, tmp_path / "two.json", nproc=2)
    assert len({r["state_digest"] for r in two["ranks"]}) == 1  # weights, codebooks and code buffers
    assert two["test"]["recall@20"] == pytest.approx(one["test"]["recall@20"], abs=0.05)
