"""Examples in the README are executed."""
import re

from workbench.core.paths import repo_root


def test_readme_python_blocks_run():
    text = (repo_root() / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has python examples"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_benchmark_documents_match_the_saved_results():
    """BENCHMARKS.md and the README's table are generated from figures/benchmarks/*.json: re-rendering them
    gives the committed text (run `python -m workbench.bench report` after saving new results)."""
    from workbench.bench.report import load_results, render_benchmarks, render_summary, update_readme

    results = load_results()
    root = repo_root()
    readme = (root / "README.md").read_text()
    assert update_readme(readme, render_summary(results)) == readme
    assert (root / "BENCHMARKS.md").read_text() == render_benchmarks(results)
