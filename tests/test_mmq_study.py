"""The MMQ study's building blocks (notebook 04 runs the whole grid under the smoke profile)."""
import json

import numpy as np
import pandas as pd
import pytest

import workbench as wb


@pytest.fixture(scope="module")
def data():
    return wb.mmq_data(wb.load_synthetic("smoke"))


def test_every_method_gives_six_codes_of_K(data):
    study = wb.mmq_study_config("smoke")
    for method in ("ma-rq-kmeans", "ms-opq", "ms-rq-vae", "mmq"):
        tok, seconds = wb.make_tokenizer(method, data, study, seed=0)
        codes = tok.encode(data.X)
        assert codes.shape == (len(data.X), 6) and codes.max() < study.K and seconds >= 0, method
        q = wb.quantization_metrics(tok, data.X)
        assert 0 < q["utilization"] <= 1 and 0 <= q["entropy"] <= np.log2(study.K) + 1e-9, method
    with pytest.raises(ValueError, match="unknown method"):
        wb.make_tokenizer("ma-vq", data, study)


def test_mmq_table_means_and_intervals_by_hand():
    rows = pd.DataFrame({"part": ["main"] * 4 + ["other"], "method": ["a", "a", "b", "b", "a"],
                         "seed": [0, 1, 0, 1, 0], "auc": [0.6, 0.7, 0.5, np.nan, 0.9],
                         "gauc": [1.0, 1.0, 0.2, 0.4, 0.0], "recon": [np.nan] * 5})
    table = wb.mmq_table(rows, "main", ("auc", "gauc", "recon"))
    assert list(table.index) == ["a", "b"] and table.loc["a", "seeds"] == 2
    assert table.loc["a", "auc"] == pytest.approx(0.65) and table.loc["b", "auc"] == pytest.approx(0.5)
    assert table.loc["a", "gauc ci"] == pytest.approx(0.0)
    assert table.loc["b", "gauc ci"] == pytest.approx(12.706 * 0.1, rel=1e-3)   # t_{1, 0.975} * sd / sqrt(2)
    assert np.isnan(table.loc["a", "recon"])                                     # a method without that column


def test_grid_checkpoint_resumes_after_the_finished_units(data, tmp_path, monkeypatch):
    import workbench.analysis.mmq as mmq

    study = wb.mmq_study_config("smoke", parts=("experts",), specific_only=(4, 6))
    path, calls, real = tmp_path / "grid.json", [], mmq.make_tokenizer

    def failing_second(*args, **kwargs):  # a run cut short during its second unit
        calls.append(kwargs)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(mmq, "make_tokenizer", failing_second)
    with pytest.raises(KeyboardInterrupt):
        wb.mmq_grid(data, study, seed=1, checkpoint=path)
    assert list(json.loads(path.read_text())["units"]) == ["experts: 4"]
    calls.clear()
    monkeypatch.setattr(mmq, "make_tokenizer", lambda *a, **k: (calls.append(k), real(*a, **k))[1])
    resumed = wb.mmq_grid(data, study, seed=1, checkpoint=path)
    assert calls == [{"n_shared": 0, "n_specific": 3}]                   # only the unfinished unit trained
    assert list(resumed["method"]) == ["specific-only-4", "specific-only-6"]
    calls.clear()
    again = wb.mmq_grid(data, study, seed=1, checkpoint=path)            # everything from the file
    assert calls == [] and again.equals(resumed)
    with pytest.warns(RuntimeWarning, match="another dataset, study, seed or parts"):
        other = wb.mmq_grid(data, wb.mmq_study_config("smoke", parts=("experts",), specific_only=(4,)), seed=1,
                            checkpoint=path)
    assert len(calls) == 1 and list(other["method"]) == ["specific-only-4"]
