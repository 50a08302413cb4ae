"""``python -m workbench.notebooks`` (what ``make demo`` runs): a cell that fills ipywidgets ``Output`` areas with
large images returns as soon as the kernel replies (nbclient's own client waits until the cell's deadline, forever
with no timeout), the notebook is written back with its outputs, and a failing cell leaves the file as it was."""
import subprocess
import sys
import time

import nbformat
import pytest

from workbench.notebooks import execute_notebook

WIDGET_CELL = '''import io
import ipywidgets as w
import numpy as np
from IPython.display import Image, display
from PIL import Image as Picture

def noise_png(seed, size=900):   # ~2.4 MB each: large iopub messages, as the explorer sends at the default profile
    pixels = np.random.default_rng(seed).integers(0, 255, size=(size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Picture.fromarray(pixels).save(buffer, format="png")
    return Image(data=buffer.getvalue(), format="png")

outputs = [w.Output() for _ in range(3)]
for i, out in enumerate(outputs):
    out.clear_output(wait=True)
    with out:
        for k in range(4):
            display(noise_png(10 * i + k))
w.Tab(children=outputs)'''


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_widget_output_cell_does_not_wait_for_its_deadline(tmp_path):
    path = _notebook(tmp_path / "widgets.ipynb", WIDGET_CELL, "print('after the widgets')")
    start = time.perf_counter()
    execute_notebook(path, timeout=40)
    assert time.perf_counter() - start < 25      # nbclient's own client: > 40 s here (it waits for the deadline)
    cells = nbformat.read(path, as_version=4).cells
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in cells[0].outputs)
    assert cells[1].outputs[0]["text"] == "after the widgets\n"


def test_a_failing_cell_leaves_the_notebook_unchanged_and_the_command_says_which(tmp_path):
    path = _notebook(tmp_path / "fails.ipynb", "x = 1", "raise ValueError('planted failure')")
    before = path.read_bytes()
    run = subprocess.run([sys.executable, "-m", "workbench.notebooks", "--timeout", "60", str(path)],
                         capture_output=True, text=True)
    assert run.returncode != 0 and "planted failure" in run.stderr
    assert path.read_bytes() == before
    with pytest.raises(FileNotFoundError, match="no such notebook"):
        execute_notebook(tmp_path / "missing.ipynb")
