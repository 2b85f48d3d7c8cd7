"""The walkthrough notebook runs headless, top to bottom, with its quick settings."""

import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "analysis" / "walkthrough.ipynb"


def test_notebook_defines_nothing_of_substance():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines = cell.source.splitlines()
            assert not any(line.lstrip().startswith(("def ", "class ")) for line in lines), \
                cell.source
            assert not cell.outputs, "commit the notebook without outputs"


def test_notebook_executes_headless(tmp_path):
    path = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, path)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    out = tmp_path / "walkthrough_out"
    for name in ("gru_step.png", "attention.png", "rnn-vs-gru/loss_curves.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs)
    assert "(2, 4, 10, 10) = (layers, heads, T, T)" in text
