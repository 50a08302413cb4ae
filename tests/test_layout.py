"""The library's shape: stage sub-packages whose imports run one way (down the stages, no circles), a base
module that never imports its subclasses, an explicit public API that notebooks use alone, and small functions."""
import ast
import json
import types
from pathlib import Path

import pytest

import workbench as wb

PACKAGE = Path(wb.__file__).resolve().parent
# pipeline stages, lowest first: a module may import from its own stage and the ones before it
STAGES = ["core", "data", "evaluation", "training", "tokenizers", "models", "analysis"]
ENTRY_POINTS = {"__init__", "prepare", "train", "bench", "figures", "notebooks"}  # may import anything
MAX_FUNCTION_LINES = 60


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield ".".join(path.relative_to(PACKAGE).with_suffix("").parts), path


def _imports(name: str, path: Path) -> set[str]:
    """Workbench modules imported by ``name`` (relative imports resolved), at any depth of the file."""
    package = name.split(".")[:-1] if not name.endswith("__init__") else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            elif node.module and node.module.startswith("workbench"):
                target = node.module[len("workbench."):]
            else:
                continue
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)  # `from . import baselines` imports a module
        elif isinstance(node, ast.Import):
            out.update(a.name[len("workbench."):] for a in node.names if a.name.startswith("workbench."))
    known = {m for m, _ in _modules()} | {m.rsplit(".", 1)[0] for m, _ in _modules() if m.endswith("__init__")}
    return {t for t in out if t in known}


def _stage(module: str) -> str:
    return module.split(".")[0]


def test_imports_run_down_the_stages():
    wrong = []
    for name, path in _modules():
        stage = _stage(name)
        if stage in ENTRY_POINTS or name == "__init__":
            continue
        for target in _imports(name, path):
            other = _stage(target)
            if other in ENTRY_POINTS or STAGES.index(other) > STAGES.index(stage):
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports that run up the stages:\n" + "\n".join(wrong)


def test_no_import_circles():
    graph = {}
    for name, path in _modules():
        node = name.removesuffix(".__init__")
        graph[node] = {t.removesuffix(".__init__") for t in _imports(name, path)} - {node}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_model_base_imports_no_model():
    imported = _imports("models.base", PACKAGE / "models" / "base.py")
    assert not {m for m in imported if m.startswith("models.")}, imported
    assert {"lightgcn", "motorec", "freedom", "vbpr", "mf-bpr", "popularity", "random"} <= set(wb.model_classes())


def test_functions_are_small():
    long = []
    for name, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_public_api_is_explicit_and_complete():
    assert len(wb.__all__) == len(set(wb.__all__))
    missing = [n for n in wb.__all__ if not hasattr(wb, n)]
    assert not missing
    # every public name is in __all__, except the sub-packages and entry-point modules (wb.train, the command,
    # appears once `python -m workbench.train` or a test has imported it)
    public = {n for n, v in vars(wb).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public == set(wb.__all__), sorted(public ^ set(wb.__all__))


def _notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("notebook", sorted((PACKAGE.parent / "notebooks").glob("[0-9][0-9]_*.ipynb")),
                         ids=lambda p: p.stem)
def test_notebooks_use_the_public_api(notebook):
    code = _notebook_code(notebook)
    tree = ast.parse("\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))))
    deep = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
            and any("workbench." in (a.name if isinstance(n, ast.Import) else f"{n.module}.") for a in n.names)]
    assert not deep, f"{notebook.name} imports past the public API: {deep}"
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == "wb"}
    assert used <= set(wb.__all__), f"{notebook.name} uses wb names outside __all__: {sorted(used - set(wb.__all__))}"
