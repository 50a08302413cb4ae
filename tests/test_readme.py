"""Examples in the README are executed."""
import re

from workbench.core.paths import repo_root


def test_readme_python_blocks_run():
    text = (repo_root() / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has python examples"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
