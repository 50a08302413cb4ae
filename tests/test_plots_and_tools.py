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
    ds = wb.make_catalogue(wb.catalogue_config("smoke", n_items=16, n_users=12, mean_interactions=4.0, min_interactions=3,
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


def test_bench_seeds_parse_and_errors():
    from workbench.bench.__main__ import parse_seeds

    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("0,3,7") == [0, 3, 7]
    assert parse_seeds("0-1,5") == [0, 1, 5]
    for bad in ("", "a", "1-x", "0,0", "-1", "3-1"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


def _fake_tokenizer_run(seed):
    """Two seeds of one feature set of 100 items, numbers chosen to be summarized by hand."""
    ours = {0: ([2.0, 3.0], 0.02, 1.1), 1: ([4.0, 3.0], 0.03, 0.9)}[seed]
    theirs = {0: ([1.0, 3.0], 0.0), 1: ([2.0, 4.0], 0.01)}[seed]
    return {"benchmark": "tokenizer", "sets": {"toy": {
        "items": 100, "throughput_ratio": ours[2],
        "ours": {"entropy_bits": ours[0], "collision_rate": ours[1], "recon_mse": 0.5 + seed},
        "theirs": {"entropy_bits": theirs[0], "collision_rate": theirs[1], "recon_mse": 1.0}}}}


def test_bench_seeds_summary_by_hand(monkeypatch, capsys):
    from workbench.bench import __main__ as bench

    calls = []

    def fake(device=None, repeats=3, seed=0):
        calls.append(seed)
        return _fake_tokenizer_run(seed)

    monkeypatch.setitem(bench.BENCHMARKS, "tokenizer", fake)
    assert bench.main(["tokenizer", "--json", "--seeds", "0-1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert calls == [0, 1] and out["seeds"] == [0, 1] and len(out["runs"]) == 2
    toy = out["summary"]["toy"]
    # paired differences per level: seed 0 (1, 0), seed 1 (2, -1); t(0.975, 1) = 12.706, sd = 0.7071 -> half 6.353
    assert toy["entropy_diff_bits"] == [1.5, -0.5]
    assert np.allclose(toy["entropy_diff_ci95"], [[1.5 - 6.3531, 1.5 + 6.3531], [-0.5 - 6.3531, -0.5 + 6.3531]],
                       atol=1e-3)
    assert toy["entropy_bits_ours"] == [3.0, 3.0] and toy["entropy_bits_theirs"] == [1.5, 3.5]
    assert (toy["colliding_items_ours"], toy["colliding_items_theirs"]) == (5, 1)
    assert toy["recon_mse_ours"] == pytest.approx(1.0) and toy["throughput_ratio_range"] == [0.9, 1.1]


def test_graph_summary_ranges():
    from workbench.bench.graph import summarize_graph

    runs = [{"lightgcn_epoch_seconds": 1.0, "motorec_over_freedom": 1.2, "users": 5, "device": "cpu"},
            {"lightgcn_epoch_seconds": 3.0, "motorec_over_freedom": 1.0, "users": 5, "device": "cpu"}]
    assert summarize_graph(runs) == {"lightgcn_epoch_seconds": [1.0, 3.0, 2.0], "motorec_over_freedom": [1.0, 1.2, 1.1]}


@pytest.mark.slow
def test_bench_cli_prints_one_json_object():
    out = subprocess.run([sys.executable, "-m", "workbench.bench", "eval", "--json", "--repeats", "1"],
                         capture_output=True, text=True, check=True, timeout=300)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["users"] == 19445 and result["items"] == 7050 and result["seconds"] > 0
    assert 110_000 < result["masked_train_positives"] <= 120_000 and result["evaluated_users"] > 19000


def test_cold_start_plots_and_knn_agreement():
    """The cold-start panels draw one bar per model with its error bar and the chance line; training curves
    put losses and metrics on two axes with the best epoch marked; kNN agreement is 1 on separated clusters and
    near chance on shuffled labels."""
    summary = pd.DataFrame({"model": ["chance", "random", "lightgcn", "chance", "random", "lightgcn"],
                            "metric": ["overall"] * 3 + ["cold full"] * 3,
                            "mean": [0.01, 0.011, 0.3, 0.005, 0.006, 0.001], "halfwidth": [0, 0.002, 0.01, 0, 0.001, 0]})
    fig = wb.plot_cold_start(summary, metrics=("overall", "cold full"))
    assert len(fig.axes) == 2 and len(fig.axes[1].patches) == 2
    assert fig.axes[1].lines[-1].get_ydata()[0] == pytest.approx(0.005)  # the chance line
    history = pd.DataFrame({"loss_bpr": [1.0, 0.5, 0.4], "valid_recall@20": [0.1, 0.2, 0.15]}, index=[1, 2, 3])
    fig = wb.plot_training_curves(history, ["loss_bpr", "valid_recall@20"], best_epoch=2)
    assert len(fig.axes) == 2  # a right axis of its own for the metric
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 0.1, (30, 4)) + 5 * np.eye(4)[0], rng.normal(0, 0.1, (30, 4)) + 5 * np.eye(4)[1]])
    labels = np.repeat(["a", "b"], 30)
    assert wb.knn_agreement(X, labels, k=5) == 1.0
    assert wb.knn_agreement(X, rng.permutation(labels), k=5) == pytest.approx(0.5, abs=0.15)
    assert wb.knn_agreement(X, labels, items=np.arange(30) < 5, k=5) == 1.0


def test_bench_saves_after_every_seed_and_appends_later_seeds(monkeypatch, tmp_path, capsys):
    """A multi-seed run with --save writes the seeds done so far after each one (a run cut short keeps them);
    --append adds a later part's seeds to the saved result, recomputes the summary, keeps both commands, and
    refuses a seed it already holds."""
    from workbench.bench import __main__ as bench
    from workbench.bench import report

    monkeypatch.setattr(report, "results_dir", lambda: tmp_path)
    saved_after = []

    def fake(device=None, repeats=3, seed=0):
        path = tmp_path / "bench-tokenizer.json"
        saved_after.append(json.loads(path.read_text())["seeds"] if path.exists() else None)
        return _fake_tokenizer_run(seed % 2)

    monkeypatch.setitem(bench.BENCHMARKS, "tokenizer", fake)
    assert bench.main(["tokenizer", "--json", "--seeds", "0-1", "--save"]) == 0
    assert saved_after == [None, [0]]  # seed 0 was on disk while seed 1 ran
    assert bench.main(["tokenizer", "--json", "--seeds", "2", "--save", "--append"]) == 0
    capsys.readouterr()
    result = json.loads((tmp_path / "bench-tokenizer.json").read_text())
    assert result["seeds"] == [0, 1, 2] and len(result["runs"]) == 3
    assert len(result["parts"]) == 2 and "--append" in result["parts"][1]
    provenance = report._provenance(result)  # the rendered section names every part's command
    assert "--json --seeds 0-1` then `" in provenance and "--json --seeds 2 --append`, seeds 0-2" in provenance
    assert result["summary"]["toy"]["throughput_ratio_range"] == [0.9, 1.1]
    with pytest.raises(SystemExit):
        bench.main(["tokenizer", "--seeds", "1", "--save", "--append"])
    with pytest.raises(SystemExit):
        bench.main(["tokenizer", "--seeds", "3", "--append"])  # --append needs --save

    def beside(device=None, repeats=3, seed=0):  # seed 4, run side by side, saves while seed 3 trains
        if seed == 3:
            monkeypatch.setitem(bench.BENCHMARKS, "tokenizer", fake)
            assert bench.main(["tokenizer", "--json", "--seeds", "4", "--save", "--append"]) == 0
        return _fake_tokenizer_run(seed % 2)

    monkeypatch.setitem(bench.BENCHMARKS, "tokenizer", beside)
    assert bench.main(["tokenizer", "--json", "--seeds", "3", "--save", "--append"]) == 0
    capsys.readouterr()
    result = json.loads((tmp_path / "bench-tokenizer.json").read_text())
    assert result["seeds"] == [0, 1, 2, 4, 3] and len(result["runs"]) == 5 and len(result["parts"]) == 4


def _study_row(model, seed, r10, part="main", **extra):
    return {"model": model, "seed": seed, "variant": extra.pop("variant", model), "part": part, "recall@10": r10,
            "ndcg@10": r10 / 2, "recall@20": r10 * 1.5, "ndcg@20": r10 / 1.5, "cold recall@10": 0.0, **extra}


def test_generative_renderers_report_means_intervals_and_the_published_rows():
    """cemg-study: mean ± 95% t-interval over the seeds that ran each part (the sensitivity sweep ran for seed 0
    only, so its row has one value and no interval); the README row names the references; the real-data
    sections show the published rows, and a skipped run says why."""
    from workbench.bench import report

    study = {"max_len": 20, "levels": 3, "codebook": 64, "collisions": "level", "generator": "tiny",
             "generator_epochs": 25, "patience": 5, "sequence_epochs": 100}
    models = {"popularity": 0.09, "oracle": 0.41, "sasrec-ce": 0.15, "tiger": 0.12, "cemg": 0.1}

    def run(seed, shift):
        out = {"profile": "default", "seed": seed, "study": study, "command": "c", "date": "d",
               "main": [_study_row(m, seed, v + shift) for m, v in models.items()],
               "ablation": [_study_row("cemg", seed, 0.1 + shift, "ablation", variant="CEMG")]}
        if seed == 0:
            out["sensitivity"] = [_study_row("cemg", 0, 0.3, "sensitivity", variant="levels=2", param="levels",
                                             value=2)]
        return out

    result = {"seeds": [0, 1], "runs": [run(0, 0.0), run(1, 0.1)], "command": "python -m workbench.bench cemg-study",
              "date": "2026-12-05"}
    text = report.render_cemg_study(result)
    assert "| cemg | 2 | 0.1500 ± 0.6353 |" in text          # mean 0.15, t(0.975, 1) * 0.0707 / sqrt(2) * sqrt(2)
    assert "| levels=2 | 1 | 0.3000 |" in text and "sensitivity sweep ran for seed 0 only" in text
    summary = report.render_summary({"cemg-study": result})
    assert "CEMG 0.1500 ± 0.6353" in summary and "oracle 0.4600 ± 0.6353" in summary
    published = {"recall@5": 0.0387, "ndcg@5": 0.0249, "recall@10": 0.0605, "ndcg@10": 0.0318}
    sasrec = {"recall@5": 0.03, "ndcg@5": 0.02, "recall@10": 0.05, "ndcg@10": 0.025, "epochs": 40, "best_epoch": 30,
              "seconds": 300.0}
    beauty = {"users": 22363, "items": 12101, "published": published, "sasrec_bce": sasrec, "sasrec_ce": sasrec,
              "command": "c", "date": "d"}
    assert "| TIGER's SASRec row (published) | | | 0.0387 |" in report.render_beauty(beauty)
    assert "| SASRec, CE loss | 40 (30) | 300 | 0.0300 |" in report.render_beauty(beauty)
    assert "Skipped: absent" in report.render_beauty({"skipped": "absent"})
    assert "| `beauty` | SASRec HR@10 on real Beauty, BCE / CE loss | 0.0500 / 0.0500 | TIGER's published SASRec: 0.0605 |" \
        in report.render_summary({"beauty": beauty})
    trained = {**sasrec, "size": "small", "epochs": 3, "best_epoch": 3, "train_seconds": 900.0,
               "test_users_per_s": 80.0, "loss_by_epoch": [5.0, 4.0, 3.5]}
    gen = {"epoch_budget": 3, "published": published, "id_length": 5, "generator": trained,
           "ids": {"collision_rate": 0.0021, "unique_fraction": 0.999, "max_items_per_id": 3}}
    text = report.render_beauty_generator(gen)
    assert "| ours, `small` T5, 3 epochs | 0.0300 |" in text and "3 epochs (best 3)" in text and "0.21% of the items share a tuple" in text
    yelp = {"items": 20033, "encode_seconds": 60.0, "tokenizer_seconds": 30.0, "generator": "skipped: no Yelp.txt",
            "ours": {"collision_rate_before": 0.05, "max_items_per_id_before": 4},
            "letter_published": {"collision_rate": 0.08, "max_items_per_id": 65},
            "ours_entropy_bits": [7.9, 7.8, 7.5, 6.0], "letter_entropy_bits": [7.0, 7.0, 7.0, 7.0]}
    text = report.render_yelp(yelp)
    assert "| LETTER's published `Yelp.index.json` | 8.00% | 65 |" in text and "skipped: no Yelp.txt" in text
    assert "all-MiniLM-L6-v2 (60 s)" in text
    assert "all-MiniLM-L6-v2 (read from the feature cache)" in report.render_yelp({**yelp, "encode_seconds": 0.5})
    assert "NDCG@10 = 0.0300 | 0.0200 | 0.0500 | 0.0250; `small` T5, 3 epochs" in report.render_yelp({**yelp, "generator": trained})
    with_reference = {**trained, "popularity": {**sasrec, "recall@5": 0.01}}
    assert "popularity on the same targets: 0.0100 |" in report.render_yelp({**yelp, "generator": with_reference})
    summary = report.render_summary({"yelp": {**yelp, "generator": with_reference}})
    assert "| `yelp` | generator HR@10 on our MiniLM ids of Yelp, small T5, 3 epochs on a CPU | 0.0500 | " \
           "popularity, same targets: 0.0500 |" in summary
    assert "| `yelp` |" not in report.render_summary({"yelp": yelp})                   # no generator run: no row
    on_gpu = report.render_summary({"yelp": {**yelp, "device": "cuda", "generator": with_reference}})
    assert "3 epochs on a GPU |" in on_gpu
    assert "| popularity (the reference, same targets) | 0.0100 |" in report.render_beauty_generator(
        {**gen, "generator": with_reference})
