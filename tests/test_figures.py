"""The figures command: recipes, saved results, the manifest, stale and missing results, interrupted runs."""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import workbench.figures as figs  # noqa: E402
from workbench.figures.__main__ import main  # noqa: E402
from workbench.figures.registry import RECIPES, Recipe, frame_of, records  # noqa: E402
from workbench.figures.runner import FiguresError, markdown_table, run  # noqa: E402


@pytest.fixture
def toy(monkeypatch):
    """One registered recipe with a figure and a table; ``calls`` counts its computations."""
    calls = []

    def compute(ctx):
        calls.append(ctx.profile)
        return {"seeds": [0, 1], "curve": [1.0, 2.0, 4.0],
                "table": records(pd.DataFrame({"auc": [0.7, float("nan")], "model": ["a", "b"]}, index=["x", "y"]))}

    def draw(results):
        fig, ax = plt.subplots()
        ax.plot(results["curve"])
        return {"toy_curve": fig, "toy_table": frame_of(results["table"])}

    recipe = Recipe("toy", "99_toy", {"toy_curve": "Paper Fig. 1", "toy_table": "Paper Tab. 1"}, compute, draw,
                    tables=("toy_table",))
    for name in list(RECIPES):           # the registry holds the toy alone during the test
        monkeypatch.delitem(RECIPES, name)
    monkeypatch.setitem(RECIPES, "toy", recipe)
    return recipe, calls


def test_run_writes_outputs_results_and_manifest(toy, tmp_path):
    recipe, calls = toy
    written = run(["toy"], "smoke", folder=tmp_path, command="python -m workbench.figures --only toy", log=lambda m: None)
    assert calls == ["smoke"] and (tmp_path / "toy_curve.png").stat().st_size > 1000
    assert (tmp_path / "toy_table.md").read_text() == "|  | auc | model |\n|---|---|---|\n| x | 0.7000 | a |\n| y |  | b |\n"
    saved = json.loads((tmp_path / "results" / "toy.json").read_text())
    assert saved["profile"] == "smoke" and saved["seeds"] == [0, 1] and saved["code_version"] == figs.code_version()
    manifest = (tmp_path / "MANIFEST.md").read_text()
    assert "| `toy_curve.png` | Paper Fig. 1 | `99_toy` | `toy` | smoke | 0, 1 | `python -m workbench.figures --only toy` |" in manifest
    assert set(written) >= {tmp_path / "toy_curve.png", tmp_path / "toy_table.md", tmp_path / "MANIFEST.md"}
    assert not list(tmp_path.glob(".staging-*"))


def test_from_results_redraws_without_computing(toy, tmp_path):
    recipe, calls = toy
    run(None, "smoke", folder=tmp_path, log=lambda m: None)
    table = (tmp_path / "toy_table.md").read_text()
    (tmp_path / "toy_table.md").unlink()
    run(["toy_table"], "smoke", from_results=True, folder=tmp_path, log=lambda m: None)   # an output's name works
    assert calls == ["smoke"] and (tmp_path / "toy_table.md").read_text() == table


def test_missing_stale_and_foreign_results_say_how_to_regenerate(toy, tmp_path):
    again = "`python -m workbench.figures --profile smoke --only toy`"
    with pytest.raises(FiguresError, match="no saved results for 'toy'.*" + again.replace("-", r"\-")):
        run(["toy"], "smoke", from_results=True, folder=tmp_path, log=lambda m: None)
    run(["toy"], "smoke", folder=tmp_path, log=lambda m: None)
    path = tmp_path / "results" / "toy.json"
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "code_version": "0123abcd"}))
    with pytest.raises(FiguresError, match=r"stale: made by another version of the library \(code 0123abcd"):
        run(["toy"], "smoke", from_results=True, folder=tmp_path, log=lambda m: None)
    path.write_text(json.dumps({**saved, "profile": "default"}))
    with pytest.raises(FiguresError, match="made under the 'default' profile, not 'smoke'"):
        run(["toy"], "smoke", from_results=True, folder=tmp_path, log=lambda m: None)
    path.write_text("{not json")
    with pytest.raises(FiguresError, match="is not a results file of this command"):
        run(["toy"], "smoke", from_results=True, folder=tmp_path, log=lambda m: None)


def test_unknown_names_and_wrong_outputs(toy, tmp_path, capsys):
    recipe, _ = toy
    with pytest.raises(FiguresError, match="unknown figure or table 'fig9'.*--list"):
        run(["fig9"], "smoke", folder=tmp_path, log=lambda m: None)
    assert main(["--only", "fig9", "--profile", "smoke"]) == 2
    assert "unknown figure or table 'fig9'" in capsys.readouterr().err
    assert main(["--list"]) == 0 and "toy_table.md" in capsys.readouterr().out
    broken = Recipe("toy", "99_toy", recipe.outputs, recipe.compute, lambda r: {"toy_curve": plt.figure()})
    RECIPES["toy"] = broken
    with pytest.raises(FiguresError, match=r"drew \['toy_curve'\], expected \['toy_curve', 'toy_table'\]"):
        run(["toy"], "smoke", folder=tmp_path, log=lambda m: None)


def test_an_interrupted_run_leaves_the_previous_outputs_intact(toy, tmp_path):
    recipe, _ = toy
    run(["toy"], "smoke", folder=tmp_path, log=lambda m: None)
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def draw_then_fail(results):
        drawn = recipe.draw(results)
        drawn["toy_table"] = object()            # the table cannot be written: the run stops midway
        return drawn
    RECIPES["toy"] = Recipe("toy", "99_toy", recipe.outputs, lambda ctx: {**recipe.compute(ctx), "curve": [9.0, 1.0]},
                                        draw_then_fail, tables=("toy_table",))
    with pytest.raises(AttributeError):
        run(["toy"], "smoke", folder=tmp_path, log=lambda m: None)
    after = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before and not list(tmp_path.glob(".staging-*"))


def test_markdown_table_by_hand():
    frame = pd.DataFrame({"a|b": [1.23456, float("nan")]}, index=pd.Index(["r1", "r2"], name="model"))
    assert markdown_table(frame, digits=2) == "| model | a|b |\n|---|---|\n| r1 | 1.23 |\n| r2 |  |\n"
    back = frame_of(records(pd.DataFrame({"x": [1.5, None], "y": ["u", "v"]})))
    assert back["x"].dtype.kind == "f" and back["y"].tolist() == ["u", "v"]


def test_every_registered_recipe_names_its_outputs_and_mirrors():
    outputs = [o for r in RECIPES.values() for o in r.outputs]
    assert len(outputs) == len(set(outputs)) and RECIPES
    for recipe in RECIPES.values():
        assert recipe.notebook[:2].isdigit() and all(m for m in recipe.outputs.values())
