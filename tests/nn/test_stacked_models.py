"""Stacked members (rnnlab.nn.stack): K networks of one architecture run as one, each member
computing exactly what it computes alone -- outputs, gradients, dropout masks -- for every cell,
several layers, both directions and padded batches."""

import numpy as np
import pytest

import rnnlab
from rnnlab.errors import InputError
from rnnlab.nn.cells import use_fused
from rnnlab.nn.stack import stack_models


def members(head, cell, K=3, dtype=np.float64, **kw):
    return [head(4, 6, 3, 2, cell=cell, dtype=dtype, seed=10 + k, dropout=[0.0, 0.3, 0.5][k % 3], **kw)
            for k in range(K)]


def alone_and_stacked(head, cell, dtype=np.float64, fused=True, per_step=False, lengths=False, **kw):
    was = use_fused(fused)
    try:
        alone, together = members(head, cell, dtype=dtype, **kw), members(head, cell, dtype=dtype, **kw)
    finally:
        use_fused(was)
    stack = stack_models(together)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 7, 4)).astype(dtype)
    lens = rng.integers(2, 8, (3, 5)) if lengths else None
    outs, grads = [], []
    for k, m in enumerate(alone):
        out = m.forward(x[k], lengths=None if lens is None else lens[k])
        m.zero_grad()
        m.backward(np.cos(out))                             # any upstream gradient
        outs.append(out)
        grads.append({n: g.copy() for n, g in m.grads.items()})
    out = stack.forward(x, lengths=lens)
    stack.zero_grad()
    stack.backward(np.cos(out))
    return outs, grads, out, stack, together


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("head", [rnnlab.SequenceClassifier, rnnlab.SequenceTagger])
def test_a_stacked_member_computes_what_it_computes_alone_float64(cell, head):
    outs, grads, out, stack, together = alone_and_stacked(head, cell, bidirectional=(head is rnnlab.SequenceTagger),
                                                          lengths=True)
    for k in range(3):
        np.testing.assert_allclose(out[k], outs[k], rtol=0, atol=1e-12)
        for name, g in grads[k].items():
            np.testing.assert_allclose(together[k].grads[name], g, rtol=0, atol=1e-12, err_msg=name)
            np.testing.assert_allclose(stack.grads[name][k], g, rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_float32_stacked_members_are_bit_identical_with_the_fused_cells(cell):
    outs, grads, out, stack, together = alone_and_stacked(rnnlab.SequenceClassifier, cell, dtype=np.float32)
    for k in range(3):
        np.testing.assert_array_equal(out[k], outs[k])
        for name, g in grads[k].items():
            np.testing.assert_array_equal(together[k].grads[name], g, err_msg=name)


def test_member_models_hold_row_k_of_the_stack_and_bad_stacks_are_refused():
    ms = members(rnnlab.SequenceClassifier, "gru")
    stack = stack_models(ms)
    stack.flat_params[1] += 1.0
    assert np.shares_memory(ms[1].params["fc.weight"], stack.flat_params)
    np.testing.assert_array_equal(ms[1].params["fc.weight"], stack.params["fc.weight"][1])
    with pytest.raises(InputError, match="share one architecture, but these differ: hidden 6 against 7"):
        stack_models([rnnlab.SequenceClassifier(4, 6, 3, cell="gru"), rnnlab.SequenceClassifier(4, 7, 3, cell="gru")])
    with pytest.raises(InputError, match="shape \\(K, B, T, D\\)"):
        stack.forward(np.zeros((5, 7, 4)))
