import json
import os
from pathlib import Path

# The suite runs in parallel worker processes (pytest-xdist, "-n auto" in pyproject.toml): one
# BLAS thread per worker, set before NumPy loads, so the workers do not oversubscribe the cores.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# Figures are drawn in this process (the xdist workers already fill the cores); test_workers.py
# runs `rnnlab train` with its figure workers on.
os.environ.setdefault("RNNLAB_FIGURE_WORKERS", "0")

import numpy as np  # noqa: E402 (after the thread settings above)
import pytest  # noqa: E402


def _rngs(module):
    """Every np.random.Generator a module tree draws from (dropout masks)."""
    found, stack = [], [module]
    while stack:
        m = stack.pop()
        if isinstance(getattr(m, "rng", None), np.random.Generator):
            found.append(m.rng)
        stack.extend(getattr(m, "_children", []))
    return found


@pytest.fixture
def freeze_dropout():
    """Return a function that makes every forward of a module draw the same dropout masks."""
    def freeze(module):
        gens = _rngs(module)
        states = [g.bit_generator.state for g in gens]

        def reset():
            for g, s in zip(gens, states):
                g.bit_generator.state = s
        return reset
    return freeze


@pytest.fixture
def model_gradient_errors(freeze_dropout):
    """Relative errors (params, and the input if given) of a model's backward under ``loss_fn``,
    with dropout masks frozen so every finite-difference forward draws the same ones."""
    from rnnlab.nn.gradcheck import gradcheck, numerical_gradient, relative_error

    def check(model, x, loss_fn, input_grad=True):
        reset = freeze_dropout(model)

        def loss():
            reset()
            return loss_fn(model.forward(x))[0]

        reset()
        _, d = loss_fn(model.forward(x))
        model.zero_grad()
        dx = model.backward(d)
        errors = gradcheck(loss, model.params, model.grads)
        if input_grad:
            errors["input"] = relative_error(dx, numerical_gradient(loss, x))
        return errors
    return check


def twin_layers(kind, D, H, layers, bidirectional, seed):
    """An rnnlab stack ('RNN', 'LSTM', 'GRU') and the torch.nn one with the same weights (float64)."""
    import torch

    import rnnlab
    ours = getattr(rnnlab, kind)(D, H, num_layers=layers, bidirectional=bidirectional,
                                 dtype=np.float64, seed=seed)
    ref = getattr(torch.nn, kind)(D, H, num_layers=layers, bidirectional=bidirectional,
                                  batch_first=True, dtype=torch.float64)
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    return ours, ref


def pytest_collection_modifyitems(config, items):
    """Experiments marked ``slow`` run in CI (CI=true, as .ci/run sets it), with RNNLAB_SLOW=1, or
    when asked for with -m; a plain local ``pytest`` skips them to stay under two minutes."""
    if os.environ.get("CI") or os.environ.get("RNNLAB_SLOW") or config.getoption("-m"):
        return
    skip = pytest.mark.skip(reason="slow experiment: runs in CI (CI=true), with RNNLAB_SLOW=1 or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def ctrl_c_after_epoch(monkeypatch):
    """``ctrl_c_after_epoch(n)``: `rnnlab train` gets a KeyboardInterrupt once epoch n is logged
    (as a user's Ctrl-C would land); returns a function that undoes it."""
    from rnnlab.present.progress import EpochPrinter
    original = EpochPrinter.on_epoch_end

    def arm(epoch: int):
        def interrupt(self, trainer, result):
            original(self, trainer, result)
            if result.record["epoch"] == epoch:
                raise KeyboardInterrupt
        monkeypatch.setattr(EpochPrinter, "on_epoch_end", interrupt)
        return lambda: monkeypatch.setattr(EpochPrinter, "on_epoch_end", original)
    return arm


def npz_of(run_dir) -> Path:
    """The .npz file a run directory's checkpoint.json points at."""
    return Path(run_dir) / json.loads((Path(run_dir) / "checkpoint.json").read_text())["file"]
