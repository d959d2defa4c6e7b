"""The reference cells: gradcheck, the equations as the course writes them, and the registry."""

from __future__ import annotations

import pytest
import torch

from equality import CELL_CONFIGS, CELL_IDS
from rnnkit import CELLS, Cell, LSTMState, Recurrent, make_cell, register_cell
from rnnkit.cells import cell_class


@pytest.mark.parametrize("kind,options", CELL_CONFIGS, ids=CELL_IDS)
def test_gradcheck_reference_cell(kind, options):
    torch.manual_seed(0)
    cell = make_cell(kind, 3, 4, **options).double()
    x_t = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    state = tuple(torch.randn(2, 4, dtype=torch.float64, requires_grad=True) for _ in cell.state_names)
    params = tuple(cell.parameters())

    def step(x_t, *tensors):
        state, weights = tensors[: len(cell.state_names)], tensors[len(cell.state_names) :]
        return torch.func.functional_call(cell, dict(zip(dict(cell.named_parameters()), weights)), (x_t, state))

    assert torch.autograd.gradcheck(step, (x_t, *state, *params))


def test_gru_follows_the_course_equations():
    """Γr multiplies c<t-1> *before* the candidate's product, and c<t> mixes c̃ and c<t-1> by Γu."""
    torch.manual_seed(0)
    cell = make_cell("gru", 3, 4).double()
    x, c_prev = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    W, b = cell.weight, cell.bias
    W_u, W_r, W_c = W[:4], W[4:8], W[8:]
    b_u, b_r, b_c = b[:4], b[4:8], b[8:]
    gamma_u = torch.sigmoid(torch.cat([c_prev, x], 1) @ W_u.T + b_u)
    gamma_r = torch.sigmoid(torch.cat([c_prev, x], 1) @ W_r.T + b_r)
    c_tilde = torch.tanh(torch.cat([gamma_r * c_prev, x], 1) @ W_c.T + b_c)
    expected = gamma_u * c_tilde + (1 - gamma_u) * c_prev
    (got,) = cell(x, (c_prev,))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_gru_and_gru_cudnn_differ_only_in_where_relevance_acts():
    """Same numbers in the same places, different equations: the outputs differ."""
    torch.manual_seed(0)
    course, cudnn = make_cell("gru", 3, 4).double(), make_cell("gru-cudnn", 3, 4).double()
    with torch.no_grad():
        # course blocks [u r c], cudnn blocks [r u c]
        cudnn.weight.copy_(torch.cat([course.weight[4:8], course.weight[:4], course.weight[8:]]))
        cudnn.bias.copy_(torch.cat([course.bias[4:8], course.bias[:4], course.bias[8:]]))
        cudnn.bias_cc.zero_()
    x, c_prev = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    assert (course(x, (c_prev,))[0] - cudnn(x, (c_prev,))[0]).abs().max() > 1e-3
    with torch.no_grad():  # with Γr = 1 the two coincide
        course.bias[4:8] = 50.0
        cudnn.bias[:4] = 50.0
    torch.testing.assert_close(course(x, (c_prev,))[0], cudnn(x, (c_prev,))[0], rtol=0, atol=1e-12)


def test_simple_gru_has_no_relevance_gate():
    cell = make_cell("gru-simple", 3, 4)
    assert cell.blocks == ("u", "c")
    assert cell.weight.shape == (8, 7)


def test_lstm_state_is_named_and_peepholes_matter():
    torch.manual_seed(0)
    plain, peep = make_cell("lstm", 3, 4).double(), make_cell("lstm", 3, 4, peepholes=True).double()
    peep.load_state_dict({**plain.state_dict(), "peephole": torch.zeros(3, 4, dtype=torch.float64)})
    x = torch.randn(2, 3, dtype=torch.float64)
    state = (torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64))
    torch.testing.assert_close(plain(x, state), peep(x, state))  # zero peepholes: the plain LSTM
    with torch.no_grad():
        peep.peephole.fill_(0.5)
    assert (plain(x, state)[1] - peep(x, state)[1]).abs().max() > 1e-3
    layer = Recurrent("lstm", 3, 4)
    _, final = layer(torch.randn(5, 2, 3))
    assert isinstance(final, LSTMState) and final.a.shape == final.c.shape == (1, 2, 4)


def test_rnn_relu_option():
    cell = make_cell("rnn", 3, 4, nonlinearity="relu")
    (a,) = cell(torch.randn(5, 3), (torch.randn(5, 4),))
    assert (a >= 0).all()
    with pytest.raises(ValueError, match="nonlinearity must be one of tanh, relu"):
        make_cell("rnn", 3, 4, nonlinearity="gelu")


def test_registry_errors_and_a_new_cell_in_one_place():
    with pytest.raises(ValueError, match="unknown cell 'lsmt'; choose one of: rnn, gru, gru-simple, gru-cudnn, lstm"):
        cell_class("lsmt")
    with pytest.raises(TypeError, match="cell 'gru'"):
        Recurrent("gru", 3, 4, peepholes=True)

    @register_cell
    class LeakyCell(Cell):
        """a<t> = (1 - λ) a<t-1> + λ tanh(W[a<t-1>, x<t>] + b), λ = 0.5."""

        kind = "leaky-test"
        blocks = ("a",)

        def __init__(self, input_size, hidden_size):
            super().__init__(input_size, hidden_size)
            self.reset_parameters()

        def forward(self, x_t, state):
            (a_prev,) = state
            return (0.5 * a_prev + 0.5 * torch.tanh(self.affine("a", a_prev, x_t)),)

    try:
        layer = Recurrent("leaky-test", 3, 4, bidirectional=True)  # engine="auto" falls back to reference
        out, final = layer(torch.randn(6, 2, 3), lengths=[6, 2])
        assert out.shape == (6, 2, 8) and final.shape == (2, 2, 4)
        with pytest.raises(ValueError, match="engine='fused' cannot run cell 'leaky-test': no fused kernel"):
            Recurrent("leaky-test", 3, 4, engine="fused")
    finally:
        del CELLS["leaky-test"]


# -- the recurrent state: one type, one place (rnnkit.cells: map_state, state_tensors, ...) ---------------
@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_state_functions_treat_every_cell_kind_alike(kind):
    """Whatever the cell, a state is detached, cut to rows, split into tensors and rebuilt, stored
    and loaded by the same calls, and comes back as the type ``Recurrent`` returns."""
    from rnnkit.cells import hidden_state, map_state, state_fields, state_from_fields, state_like, state_tensors

    layer = Recurrent(kind, 3, 4, num_layers=2)
    _, state = layer(torch.randn(5, 3, 3, requires_grad=True))  # (L, B, n_a) each
    assert type(layer.start_state(3, torch.zeros(1))) is type(state)
    detached = map_state(torch.Tensor.detach, state)
    assert type(detached) is type(state) and not any(t.requires_grad for t in state_tensors(detached))
    rows = map_state(lambda t: t.index_select(1, torch.tensor([2, 0])), state)
    assert torch.equal(hidden_state(rows), hidden_state(state)[:, [2, 0]])
    assert len(state_tensors(state)) == len(layer.cells["l0"].state_names)
    assert torch.equal(hidden_state(state), state_tensors(state)[0])  # a<t> first
    rebuilt = state_like([t + 1 for t in state_tensors(state)], state)
    assert type(rebuilt) is type(state) and torch.equal(hidden_state(rebuilt), hidden_state(state) + 1)
    loaded = state_from_fields(state_fields(detached))
    assert type(loaded) is type(state) and all(torch.equal(a, b) for a, b in zip(state_tensors(loaded), state_tensors(detached)))
    assert map_state(torch.Tensor.detach, None) is None
    if kind == "lstm":
        assert torch.equal(hidden_state(state), state.a)
