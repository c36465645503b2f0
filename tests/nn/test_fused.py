"""The fused gated cells (cells/fused.py) equal the readable ones: float64 to 1e-12, float32 to
rounding, step by step and through whole stacks with lengths; and both equal PyTorch."""

import numpy as np
import pytest

import rnnlab
from rnnlab.nn import cells
from rnnlab.nn.cells import GRUCell, LSTMCell

pytest.importorskip("numba")
from rnnlab.nn.cells.fused import FusedGRUCell, FusedLSTMCell  # noqa: E402

PAIRS = [(LSTMCell, FusedLSTMCell, 4), (GRUCell, FusedGRUCell, 3)]


@pytest.fixture
def mode():
    """Build models with fused or readable cells; restore the default afterwards."""
    before = cells._FUSED
    yield cells.use_fused
    cells.use_fused(before)


@pytest.mark.parametrize("ref_cls,fused_cls,G", PAIRS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("B,H", [(5, 7), (32, 128)])        # loop remainders only; vectorised loop bodies
def test_one_step_equals_the_readable_cell(ref_cls, fused_cls, G, dtype, tol, B, H):
    if dtype == np.float32 and H > 64:
        tol = 1e-5          # a few ulp between the two tanh's, carried through 4H-term products (~5e-6)
    rng = np.random.default_rng(0)
    ref, fused = ref_cls(), fused_cls()
    D = 3
    W_ih, W_hh = (rng.standard_normal((G * H, k)).astype(dtype) for k in (D, H))
    b_ih, b_hh = (rng.standard_normal(G * H).astype(dtype) for _ in range(2))
    xp = ref.project(rng.standard_normal((B, D)).astype(dtype), W_ih, b_ih, b_hh)
    carry = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in range(ref.n_carry))
    d = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in range(ref.n_carry))
    results = []
    for cell in (ref, fused):
        new, cache = cell.forward_step(np.ascontiguousarray(W_hh.T), b_hh, xp, carry, np.empty((B, H), dtype))
        back = cell.backward_step(W_hh, cache, d, np.empty((B, G * H), dtype))
        results.append(list(new) + list(back[0]) + [back[1], back[2]])
    for a, b in zip(*results):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_whole_stacks_with_lengths_equal_the_readable_ones(mode, kind, dtype, tol):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6, 3)).astype(dtype)
    d_out = rng.standard_normal((4, 6, 10)).astype(dtype)
    lengths = np.array([6, 2, 5, 1])
    runs = []
    for fused in (False, True):
        assert mode(fused) == fused
        stack = getattr(rnnlab, kind)(3, 5, num_layers=2, bidirectional=True, dtype=dtype, seed=3)
        assert ("Fused" in type(stack.cell).__name__) == fused
        out, h_n = stack.forward(x, lengths=lengths)
        dx = stack.backward(d_out, None)
        runs.append([out, *(h_n if isinstance(h_n, tuple) else (h_n,)), dx, *stack.grads.values()])
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("fused", [False, True])
def test_both_paths_match_torch(mode, kind, fused):
    torch = pytest.importorskip("torch")
    mode(fused)
    rng = np.random.default_rng(2)
    ours = getattr(rnnlab, kind)(3, 4, num_layers=2, dtype=np.float64, seed=4)
    ref = getattr(torch.nn, kind)(3, 4, num_layers=2, batch_first=True, dtype=torch.float64)
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x, d = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5, 4))
    out, _ = ours.forward(x)
    dx = ours.backward(d, None)
    xt = torch.tensor(x, requires_grad=True)
    out_t, _ = ref(xt)
    (out_t * torch.tensor(d)).sum().backward()
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for k, p in ref.named_parameters():
        np.testing.assert_allclose(ours.grads[k], p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)


def test_fused_is_the_default_where_numba_is_installed():
    assert rnnlab.LSTM(2, 3).cell.__class__ is FusedLSTMCell
    assert rnnlab.GRU(2, 3).cell.__class__ is FusedGRUCell


def _ulps(got, x):
    exact = np.tanh(x.astype(np.float64))
    return np.abs(got.astype(np.float64) - exact) / np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)


def test_float32_tanh_in_the_kernels_is_within_a_few_ulp_and_keeps_nan_and_inf():
    from rnnlab.nn.cells.fused import kernels, rational_tanh
    x = np.concatenate([np.linspace(-12, 12, 200_001), np.logspace(-9, 1.2, 20_000),
                        -np.logspace(-9, 1.2, 20_000)]).astype(np.float32)
    assert _ulps(rational_tanh(x), x).max() <= 8
    assert np.abs(rational_tanh(x)).max() <= 1                  # gates never leave [0, 1]
    # through the LSTM kernel: xp = 0, c_{t-1} = 0, so the g gate holds tanh(a_g) and c_t = i g
    H = x.size
    a = np.zeros((1, 4 * H), np.float32)
    a[0, 2 * H:3 * H] = x
    c = np.empty((1, H), np.float32)
    kernels()["lstm_forward"](a, np.zeros((1, 4 * H), np.float32), np.zeros((1, H), np.float32), c,
                              np.empty_like(c), np.empty_like(c))
    g = a[0, 2 * H:3 * H]
    assert _ulps(g, x).max() <= 8 and np.abs(g).max() <= 1
    np.testing.assert_array_equal(a[0, :H], 0.5)               # sigmoid(0) exactly
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30], np.float32)
    out = rational_tanh(special)
    assert np.isnan(out[0]) and out[1] == 1 and out[2] == -1 and out[3] == 0 and out[5] == np.float32(1e-30)
    a = np.zeros((1, 4 * 6), np.float32)
    a[0, 12:18] = special
    xp = np.full_like(a, -0.0)                                  # a + (-0.0) keeps each input's sign of zero
    kernels()["lstm_forward"](a, xp, np.zeros((1, 6), np.float32), *(np.empty((1, 6), np.float32) for _ in range(3)))
    np.testing.assert_array_equal(a[0, 12:18], out)            # the kernel and the reference agree here
    np.testing.assert_array_equal(np.signbit(a[0, 13:18]), np.signbit(out[1:]))   # -0.0 stays -0.0
    assert np.signbit(out[4])


@pytest.mark.parametrize("ref_cls,fused_cls,G", PAIRS)
def test_one_input_row_for_the_whole_batch_is_read_by_every_row(ref_cls, fused_cls, G):
    """The kernels take an input part of one row for all B rows (a constant input, as the
    fixed-point search gives): the same as the readable step's broadcast."""
    rng = np.random.default_rng(6)
    B, H = 4, 5
    W_hh = rng.standard_normal((G * H, H)).astype(np.float32)
    b_hh = rng.standard_normal(G * H).astype(np.float32)
    xp = rng.standard_normal((1, G * H)).astype(np.float32)
    carry = tuple(rng.standard_normal((B, H)).astype(np.float32) for _ in range(ref_cls.n_carry))
    outs = []
    for cell in (ref_cls(), fused_cls()):
        new, _ = cell.forward_step(np.ascontiguousarray(W_hh.T), b_hh, xp, carry, np.empty((B, H), np.float32))
        outs.append([part.copy() for part in new])
    for a, b in zip(*outs):
        assert np.isfinite(b).all()
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)


@pytest.mark.slow       # two fresh processes, the first compiling every kernel from nothing: about 10 s
def test_a_second_process_loads_the_kernels_from_the_cache(tmp_path):
    """A kernel Numba cannot cache is compiled again by every run (3.5 s before each char-LM).
    Every kernel: the cells' and the Transformer's passes."""
    import os
    import subprocess
    import sys
    script = """
import json
from rnnlab.nn import transformer_fused
from rnnlab.nn.cells.fused import kernels, warm_up
warm_up()
transformer_fused.warm_up()
every = {**kernels(), **transformer_fused.kernels()}
print(json.dumps({name: sum(k.stats.cache_misses.values()) for name, k in every.items()}))
"""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
            for _ in range(2)]
    import json
    first, second = (json.loads(r.stdout.strip().splitlines()[-1]) for r in runs)
    assert all(first.values())                         # every kernel compiled the first time ...
    assert second == {name: 0 for name in second}      # ... and loaded, not compiled, the second


@pytest.mark.parametrize("ref_cls,fused_cls,G", PAIRS)
def test_an_input_part_the_kernel_cannot_take_goes_through_the_readable_step(ref_cls, fused_cls, G):
    rng = np.random.default_rng(5)
    B, H = 3, 4
    W_hh = rng.standard_normal((G * H, H)).astype(np.float32)
    carry = tuple(rng.standard_normal((B, H)).astype(np.float32) for _ in range(ref_cls.n_carry))
    W_hhT = np.ascontiguousarray(W_hh.T)
    for xp in (rng.standard_normal(G * H).astype(np.float32),          # 1-D: the readable LSTM broadcasts it
               np.zeros((2, G * H), np.float32),                       # two rows for a batch of three
               np.zeros((B, G * H + 1), np.float32)):                  # a column too many
        results = []
        for cell in (ref_cls(), fused_cls()):
            try:
                new, _ = cell.forward_step(W_hhT, None, xp, carry, np.empty((B, H), np.float32))
                results.append(new[0].copy())
            except (ValueError, IndexError) as e:
                results.append(type(e))
        if isinstance(results[0], np.ndarray):
            np.testing.assert_allclose(results[1], results[0], rtol=1e-6, atol=1e-6)
        else:
            assert results[1] is results[0]                             # the same error, no silent read


@pytest.mark.parametrize("model,types", [("lstm", {FusedLSTMCell}), ("gru", {FusedGRUCell}), ("rnn", None)])
def test_fit_readies_compiled_cells_before_its_clock(mode, monkeypatch, model, types):
    """The kernels are loaded (or compiled) before fit() starts timing, for the model's own
    cells and precision only, and the time is reported apart ("kernel_seconds"), so a gated
    model's "seconds" (compare's time budget) holds no one-off compile or load."""
    from rnnlab.nn.cells import fused
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Trainer
    mode(True)
    calls = []
    import time

    real = fused.warm_up

    def slow_warm_up(cell_types=None, dtypes=()):
        calls.append((cell_types, dtypes))
        real(cell_types, dtypes)
        time.sleep(0.3)                                           # a compile the clock must not see
    monkeypatch.setattr(fused, "warm_up", slow_warm_up)
    cfg = PRESETS["seed"].replace(model=model, hidden=8, layers=2, epochs=1, batches_per_epoch=1,
                                  train_size=64, test_size=32, dtype="float64")
    s = Trainer(config=cfg).fit()
    assert calls == ([] if types is None else [(types, (np.float64,))])
    assert (s["kernel_seconds"] >= 0.3 > s["seconds"]) if types else s["kernel_seconds"] == 0.0
