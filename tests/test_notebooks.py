"""Notebooks run top to bottom (with a small budget)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def run_notebook(name: str, workdir: Path):
    """Execute notebooks/<name> top to bottom in ``workdir``: (executed notebook, all text outputs)."""
    notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(workdir)}}).execute()
    outputs = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for o in cell.get("outputs", []))
    return notebook, outputs


def test_mpe_communication_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("MPE_NOTEBOOK_ITERS", "12")
    monkeypatch.setenv("MPE_NOTEBOOK_EPISODES", "64")
    monkeypatch.setenv("MPE_NOTEBOOK_RESULTS", str(tmp_path / "results"))
    notebook, outputs = run_notebook("mpe_communication.ipynb", tmp_path)
    assert "positive signalling" in outputs and "oracle_communicator" in outputs, outputs[-3000:]
    images = [o for cell in notebook.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # training curves, comm plot, reference bars, episode frame
    assert list((tmp_path / "results" / "ippo").glob("*/episode.gif"))


def test_llm_bargaining_notebook(tmp_path, monkeypatch):
    """Against the loopback server (no key in the environment), with the cache in a temp dir."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("JAXMARL_LAB_LLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LLM_NOTEBOOK_GAMES", "16")
    notebook, outputs = run_notebook("llm_bargaining.ipynb", tmp_path)
    assert "you would receive 3 of item A, 2 of item B, 0 of item C" in outputs
    assert "new requests on the rerun: 0; identical payoffs: True" in outputs, outputs[-2000:]
    assert any("image/png" in o.get("data", {}) for cell in notebook.cells for o in cell.get("outputs", []))


def test_quickstart_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("QUICKSTART_TIMESTEPS", "16384")  # one PPO update
    monkeypatch.setenv("QUICKSTART_GAMES", "200")
    monkeypatch.setenv("QUICKSTART_RESULTS", str(tmp_path / "results"))
    notebook, outputs = run_notebook("quickstart.ipynb", tmp_path)
    assert "random games in" in outputs and "self-play welfare" in outputs, outputs[-3000:]
    assert "ppo" in outputs and "greedy" in outputs  # the cross-play table
    images = [o for cell in notebook.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # env render, cross-play heatmap, curve, training_curves.png
    assert any("image/gif" in o.get("data", {}) for cell in notebook.cells for o in cell.get("outputs", []))
    assert list((tmp_path / "results" / "ppo_bargain").glob("*/final_eval.json"))
