"""Plot functions return figures and draw on a given axis; 2-D maps keep planted clusters apart; the
command-line tools print what they promise."""
import json
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import workbench as wb


def clustered(n_per=40, k=4, d=64, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, (k, d))
    X = np.concatenate([c + rng.normal(0, 1, (n_per, d)) for c in centres])
    return X, np.repeat(np.arange(k), n_per)


@pytest.mark.parametrize("method", ["tsne", pytest.param("umap", marks=pytest.mark.slow)])
def test_project_2d_keeps_clusters(method):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    X, y = clustered()
    coords = wb.project_2d(X, method=method, seed=0)
    assert coords.shape == (len(X), 2) and np.isfinite(coords).all()
    assert cross_val_score(KNeighborsClassifier(5), coords, y, cv=3).mean() > 0.95
    with pytest.raises(ValueError, match="unknown method"):
        wb.project_2d(X, method="pca")


def test_plots_return_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_FIGURES", str(tmp_path))
    ds = wb.make_catalogue(wb.catalogue_config("smoke", n_items=16, n_users=12, mean_interactions=4.0,
                                               max_interactions=8, image_size=32))
    fig, ax = plt.subplots()
    assert wb.plot_degree_distribution(ds.item_degree(None), ax=ax) is fig
    assert isinstance(wb.plot_item_grid(ds, range(5)), matplotlib.figure.Figure)
    assert isinstance(wb.plot_embedding_map(np.random.rand(16, 2), ds.items["colour"]), matplotlib.figure.Figure)
    frame = pd.DataFrame({"recall@20": [0.2, 0.1]}, index=["overall", "0"])
    bars = wb.plot_stratum_metrics({"a": frame, "b": frame * 2})
    path = wb.save_figure(bars, "bars")
    assert path == tmp_path / "bars.png" and path.read_bytes()[:4] == b"\x89PNG"
    plt.close("all")


def test_figures_go_to_a_temporary_folder_under_smoke(monkeypatch):
    monkeypatch.delenv("WORKBENCH_FIGURES", raising=False)
    assert wb.figures_dir("smoke") != wb.repo_root() / "figures"
    assert wb.figures_dir("default") == wb.repo_root() / "figures"


@pytest.mark.slow
def test_bench_cli_prints_one_json_object():
    out = subprocess.run([sys.executable, "-m", "workbench.bench", "eval", "--json", "--repeats", "1"],
                         capture_output=True, text=True, check=True, timeout=300)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["users"] == 19445 and result["items"] == 7050 and result["seconds"] > 0
    assert 110_000 < result["masked_train_positives"] <= 120_000 and result["evaluated_users"] > 19000
