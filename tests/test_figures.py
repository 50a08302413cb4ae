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


PAPER_OUTPUTS = ["MoToRec Tab. 2", "MoToRec Tab. 3", "MoToRec Fig. 3", "MoToRec Fig. 4-5", "MoToRec Fig. 6",
                 "MoToRec Fig. 7", "CEMG Tab. 2", "CEMG Tab. 3", "CEMG Fig. 2", "CEMG Fig. 3", "CEMG Fig. 4",
                 "MMQ Tab. 1 (a)", "MMQ Tab. 1 (b)", "MMQ Tab. 2", "MMQ Fig. 3", "MMQ Fig. 4", "MMQ Fig. 5",
                 "MMQ Fig. 6"]


def test_every_paper_table_and_figure_has_a_recipe():
    mirrors = [m for r in RECIPES.values() for m in r.outputs.values()]
    missing = [p for p in PAPER_OUTPUTS if not any(m.startswith(p) for m in mirrors)]
    assert not missing, missing


def test_every_figure_a_notebook_saves_has_a_recipe():
    """The command regenerates everything the notebooks write (their `wb.save_figure(..., "NAME")` calls)."""
    import re
    from pathlib import Path

    outputs = {o for r in RECIPES.values() for o in r.outputs}
    saved = set()
    for path in sorted((Path(figs.__file__).parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            saved |= set(re.findall(r'save_figure\([^"\n]*"([0-9]{2}_[a-z0-9_]+)"', "".join(cell["source"])))
    assert saved and not saved - outputs, sorted(saved - outputs)


def test_cheap_recipes_run_and_redraw_from_their_results(tmp_path):
    """The two cheapest real recipes end to end at the smoke profile, then redrawn from their saved results."""
    names = ["data-tour", "tokenizer-lab"]
    written = run(names, "smoke", folder=tmp_path, log=lambda m: None)
    outputs = [o for n in names for o in RECIPES[n].outputs]
    for name in names:
        for output in RECIPES[name].outputs:
            assert (tmp_path / RECIPES[name].filename(output)).stat().st_size > 500, output
    table = (tmp_path / "01_tokenizer_comparison.md").read_text()
    assert table.count("\n") == 2 + 7 and "| MMQ |" in table          # seven tokenizers, one row each
    for output in outputs:
        (tmp_path / RECIPES["data-tour" if output.startswith("00") else "tokenizer-lab"].filename(output)).unlink()
    run(names, "smoke", from_results=True, folder=tmp_path, log=lambda m: None)
    assert (tmp_path / "01_tokenizer_comparison.md").read_text() == table
    manifest = (tmp_path / "MANIFEST.md").read_text()
    assert "| `00_item_grid.png` | - | `00_data_tour` | `data-tour` | smoke | 0 |" in manifest
    assert "| `02_table2.md` | MoToRec Tab. 2" in manifest and "not made" in manifest   # other recipes: not made here
    assert len(written) >= len(outputs)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_draws_and_writes_from_saved_smoke_results(name, tmp_path):
    """Each recipe's ``draw`` on results its ``compute`` made at the smoke profile (``tests/data/figure_results``;
    regenerate with ``WORKBENCH_FIGURES=/tmp/f python -m workbench.figures --profile smoke`` and keep each file's
    ``results``): every output drawn, figures with axes, tables with rows, all written."""
    from pathlib import Path

    from workbench.figures.runner import _write_outputs

    fixture = Path(__file__).parent / "data" / "figure_results" / f"{name}.json"
    assert fixture.exists(), f"no saved smoke results for recipe {name!r}: {fixture}"
    recipe = RECIPES[name]
    drawn = recipe.draw(json.loads(fixture.read_text()))
    assert set(drawn) == set(recipe.outputs)
    for output, thing in drawn.items():
        if recipe.kind(output) == "table":
            assert isinstance(thing, pd.DataFrame) and len(thing), output
        else:
            assert thing.axes, output
    written = _write_outputs(recipe, drawn, tmp_path, None)
    assert all(p.stat().st_size > 100 for p in written)
