"""The speed benchmark's "products only" floor computes the products it claims to time."""

import importlib.util
from pathlib import Path

import pytest
import torch

from equality import assert_equal_up_to_rounding

SPEC = importlib.util.spec_from_file_location("core_speed", Path(__file__).resolve().parents[1] / "benchmarks" / "core_speed.py")
core_speed = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(core_speed)


def test_packed_product_equals_matrix_product():
    torch.manual_seed(0)
    W = torch.randn(48, 96)  # (K, N)
    x = torch.randn(8, 48)
    assert_equal_up_to_rounding(x @ W, core_speed.packed_product(W, 8)(x), reduction=48)
    assert_equal_up_to_rounding((x @ W) @ W.t(), core_speed.packed_product(W.t(), 8)(x @ W), reduction=96)


def test_products_only_has_each_cells_recurrent_widths():
    for kind, blocks in core_speed.RECURRENT_BLOCKS.items():
        floor = core_speed.ProductsOnly(kind, 5, 16, 4)
        assert floor.widths == [16 * g for g in blocks]
        assert floor.W_x.shape == (5, 16 * sum(blocks))
        floor.step(torch.randn(3, 4, 5))  # runs at the step's shapes
    assert core_speed.RECURRENT_BLOCKS.keys() == {kind for kind, _ in core_speed.CELLS}


def test_every_cell_has_an_auto_row_and_the_header_names_the_cpu():
    rows = core_speed.entries()
    labels = {label for label, engine in rows if engine == core_speed.FLOOR}
    assert labels == {label for label, engine in rows if engine == core_speed.AUTO}
    assert torch.backends.cpu.get_cpu_capability() in core_speed.machine()


def test_targets_report_each_figure_and_its_verdict():
    rows = [("torch.nn.LSTM", "torch"), ("torch.nn.GRU", "torch")]
    ms = {("torch.nn.LSTM", "torch"): 10.0, ("torch.nn.GRU", "torch"): 10.0}
    for label in ("gru", "gru-cudnn", "lstm"):
        rows += [(label, "reference"), (label, "fused"), (label, "native"), (label, core_speed.AUTO), (label, core_speed.FLOOR)]
        ms.update({(label, "reference"): 40.0, (label, "fused"): 8.0, (label, "native"): 9.0, (label, core_speed.AUTO): 8.2, (label, core_speed.FLOOR): 7.0})
    picks = {(label, core_speed.AUTO): "fused" for label in ("gru", "gru-cudnn", "lstm")}

    def one_run():  # three rounds, the machine twice as slow in the second: paired ratios cancel it
        times = {row: [t / 1e3, 2 * t / 1e3, t / 1e3] for row, t in ms.items()}
        return [(256, ms, picks, times)]

    text = core_speed.targets(rows, one_run())
    assert "auto / fastest engine <= 1.05: ok" in text and "lstm 1.02 [fused; fastest fused]" in text
    assert "course gru <= 0.9 x nn.GRU: ok (0.82)" in text and "fused / products only <= 1.25: ok" in text
    ms[("lstm", core_speed.AUTO)] = 11.0
    text = core_speed.targets(rows, one_run())
    assert "auto / fastest engine <= 1.05: MISSED" in text and "auto lstm <= 1.0 x nn.LSTM: MISSED (1.10)" in text


def test_paired_ratio_cancels_a_drift_between_rounds():
    """Within most rounds the first row takes 1.1 x the second, which the paired ratio reports; the
    ratio of the two medians is thrown to 1.65 by one fast round."""
    times = {"a": [1.1, 2.2, 3.3, 4.4, 5.5], "b": [1.0, 2.0, 3.0, 4.0, 5.0]}  # a drifting machine
    times["b"][2] = 2.0  # one fast round of b: its median falls to 2.0, the pairs of the other rounds stay 1.1
    assert core_speed.statistics.median(times["a"]) / core_speed.statistics.median(times["b"]) == pytest.approx(1.65)
    assert core_speed.paired_ratio(times, "a", "b") == pytest.approx(1.1)


def test_the_floors_recurrent_products_are_the_compiled_loops_products():
    """``products_only`` (the floor's recurrent products, run as the compiled loops run theirs: a
    block of rows per thread) computes x @ R for weights and transposed weights, with 2 threads."""
    from rnnkit.engines.compiled import compiled_loops

    loops = compiled_loops()
    if loops is None:
        pytest.skip("the compiled CPU loops could not be built here")
    torch.manual_seed(0)
    W = torch.randn(24, 72)  # (n_a, g n_a)
    xs = [torch.randn(37, 24), torch.randn(37, 72)]  # 37 rows: blocks of 19 and 18
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        forward, backward = loops.products_only(xs, [W, W.t()], 3)
    finally:
        torch.set_num_threads(threads)
    assert_equal_up_to_rounding([xs[0] @ W, xs[1] @ W.t()], [forward, backward], reduction=72)


def test_each_auto_row_is_timed_beside_the_engine_it_picked(monkeypatch):
    """In every round an auto row and the row of the engine it runs are timed one right after the
    other, so their paired ratio measures auto, not the machine's drift within a round."""
    rows = core_speed.entries()
    calls = []
    real_step = core_speed.step
    monkeypatch.setattr(core_speed, "step", lambda module, x: (calls.append(module), real_step(module, x)))
    rounds = 3
    _, picks, times = core_speed.time_all(rows, 2, 3, 4, 8, rounds)
    warm_up, timed = calls[: 2 * len(rows)], calls[2 * len(rows) :]
    row_of = {id(module): row for module, row in zip(warm_up[::2], rows)}  # two warm-up steps per row, in order
    order = [row_of[id(module)] for module in timed]
    assert len(order) == rounds * len(rows) and all(len(ts) == rounds for ts in times.values())
    for auto, pick in picks.items():
        picked = (auto[0], pick)
        for r in range(rounds):
            one_round = order[r * len(rows) : (r + 1) * len(rows)]
            assert abs(one_round.index(auto) - one_round.index(picked)) == 1


def test_loop_passes_times_each_loop_beside_its_own_products(monkeypatch, capsys):
    """benchmarks/loop_passes.py runs every loop it lists at a small shape and prints one row per
    loop, each beside the products-only loop of the same products."""
    from rnnkit.engines.compiled import compiled_loops

    if compiled_loops() is None:
        pytest.skip("the compiled CPU loops could not be built here")
    spec = importlib.util.spec_from_file_location("loop_passes", Path(__file__).resolve().parents[1] / "benchmarks" / "loop_passes.py")
    loop_passes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loop_passes)
    table = loop_passes.entries(compiled_loops(), 8, 3, 4)
    assert {name for name in table if not name.endswith("products")} == {"rnn forward", "rnn backward", "lstm forward", "lstm backward"}
    assert all(name + " products" in table for name in ("rnn forward", "lstm backward"))
    monkeypatch.setattr("sys.argv", ["loop_passes.py", "8", "--rounds", "1", "--steps", "3", "--batch", "4"])
    loop_passes.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| rnn") or line.startswith("| lstm")]
    assert len(rows) == 4
