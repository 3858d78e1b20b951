"""The exploration notebook runs top to bottom through the data layer."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore.ipynb"


def test_exploration_notebook_runs_on_the_demo(demo_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKBOOK_DATA", str(demo_dir))
    monkeypatch.setenv("LOOKBOOK_ARTIFACTS", str(tmp_path / "artifacts"))
    # Streamlit (imported by earlier tests) sets MPLBACKEND=Agg, which the kernel would inherit.
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", []))
    assert f"{demo_dir.name}: " in outputs and "transactions" in outputs
    assert "median share of a customer's favourite product type" in outputs
    images = sum("image/png" in o.get("data", {}) for cell in nb.cells for o in cell.get("outputs", []))
    assert images >= 5
