"""The speed benchmark's "products only" floor computes the products it claims to time."""

import importlib.util
from pathlib import Path

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
