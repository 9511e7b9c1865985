"""The GPT-2-shape bench (benchmarks/gpt2_shape.py and the "gpt2_shape" section of benchmarks/run.py), on a tiny
shape: the builder saves the sizes asked for and the course's loader reads them back; the AtP comparison
reports what it promises (TransformerLens on a subset of layers gives the same numbers as our sweep there);
the per-cell costs of a notebook run go to the right cells. No timing is asserted."""

import importlib.util
import json
import sys
from pathlib import Path

import nbformat
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _module(name: str):
    if str(BENCH) not in sys.path:               # run.py imports gpt2_shape as the script's neighbour
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 2-layer GPT-2 built by the bench's builder, with 700 words (the world's and fillers)."""
    shape = _module("gpt2_shape")
    folder = tmp_path_factory.mktemp("gpt2-shape")
    asked = shape.Shape(n_layers=2, n_heads=2, d_model=32, d_mlp=48, n_ctx=64, d_vocab=700)
    return folder, asked, shape.make_gpt2(folder, asked)


def test_builder_saves_the_shape_asked_for_and_loads_like_a_hub_model(tiny):
    from dataclasses import asdict

    from mi_course import models
    from mi_course.zoo.world import VOCAB

    folder, asked, saved = tiny
    assert saved == asdict(asked)
    model = models.load(str(folder), device="cpu")
    cfg = model.cfg
    assert (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_mlp, cfg.n_ctx, cfg.d_vocab) == (2, 2, 32, 48, 64, 700)
    assert model.to_single_token("tennis") == len(VOCAB) - 1 - VOCAB.index("tennis")        # the world's words, reversed
    assert model.to_single_token("<filler699>") == 699


def test_atp_comparison_reports_agreement_and_transformer_lens_on_a_subset(tiny):
    import torch

    run = _module("run")
    torch.set_num_threads(1)
    folder, _, _ = tiny
    result = run._atp_comparison(*run._fact_pairs(4, str(folder)), repeats=1, tl_layers=[1])
    T = result["nodes"] // (2 * 2)
    assert result["nodes"] == 2 * 2 * T and 0 < result["nodes_that_change_anything"] < result["nodes"]
    assert result["exact_max_abs_difference_from_transformer_lens"] < 1e-4     # the same numbers on layer 1
    assert "layers [1]" in result["transformer_lens_exact_s_is"]
    assert all(-1 <= result[k] <= 1 for k in result if k.startswith("spearman"))
    assert result["exact_over_atp"] == round(result["exact_s"] / result["atp_s"], 1)


def test_cell_costs_name_each_cell_of_the_solution_with_its_time_and_peak_memory(tmp_path):
    run = _module("run")
    nb = nbformat.v4.new_notebook()
    times = [("2026-01-01T00:00:00", "2026-01-01T00:00:01", 1.0), ("2026-01-01T00:00:01", "2026-01-01T00:00:02", 1.0),
             ("2026-01-01T00:00:02.000000Z", "2026-01-01T00:00:05.000000Z", 3.0)]       # with and without "Z"
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), nbformat.v4.new_code_cell("size = 'small'"),
                nbformat.v4.new_code_cell("size = 'full'"), nbformat.v4.new_code_cell("x = 1\ny = 2"),
                nbformat.v4.new_code_cell("z = 3"), nbformat.v4.new_code_cell("never = 4")]
    nb.cells[2].metadata["tags"] = ["injected-parameters"]
    for cell, (start, end, seconds) in zip(nb.cells[1:], times):
        cell.metadata["papermill"] = {"start_time": start, "end_time": end, "duration": seconds}
    nb.cells[4].metadata["papermill"] = {"start_time": "2026-01-01T00:00:05", "end_time": None, "duration": None,
                                         "status": "running"}                 # stopped at the time limit
    nb.cells[5].metadata["papermill"] = {"start_time": None, "end_time": None, "duration": None, "status": "pending"}
    nbformat.write(nb, tmp_path / "out.ipynb")
    t0 = 1767225600.0                                                              # 2026-01-01T00:00:00 UTC
    samples = [(t0 + 0.5, 100 * 2**20), (t0 + 3.0, 900 * 2**20), (t0 + 4.5, 300 * 2**20), (t0 + 7.0, 1200 * 2**20)]
    costs = run._cell_costs(tmp_path / "out.ipynb", samples)
    assert [c["cell"] for c in costs] == [1, 2, 3]               # the injected cell is not counted, nor one never run
    assert costs[2] == {"cell": 3, "first_line": "z = 3", "seconds": 2.0, "peak_rss_kernel_mb": 1200, "running": True}
    assert costs[1] == {"cell": 2, "first_line": "x = 1", "seconds": 3.0, "peak_rss_kernel_mb": 900, "running": False}
    assert costs[0]["peak_rss_kernel_mb"] == 100
    json.dumps(costs)
