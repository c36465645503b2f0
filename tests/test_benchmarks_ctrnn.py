"""benchmarks/ctrnn_speed.py: its PyTorch peer is the same network as rnnlab's CTRNN tagger, and
``--quick`` prints the table (no wall-clock assertions)."""

import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

SCRIPT = pathlib.Path(__file__).parent.parent / "benchmarks" / "ctrnn_speed.py"


def _bench():
    spec = importlib.util.spec_from_file_location("ctrnn_speed", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_torch_peer_is_the_same_network():
    """rnnlab's weights copied into the PyTorch peer give the same logits (noise off), and the
    peer's projection keeps Dale's law and the excitatory readout as rnnlab's does."""
    import rnnlab
    bench = _bench()
    H = 20
    ours = rnnlab.SequenceTagger(bench.D, H, bench.K, cell="ctrnn", nonlinearity="relu",
                                 rate=dict(bench.RATE), readout="excitatory", seed=1).eval()
    peer = bench.torch_model(H).eval()
    names = {"input2h.weight": "rnn.weight_ih_l0", "h2h.weight": "rnn.weight_hh_l0", "fc.weight": "fc.weight",
             "fc.bias": "fc.bias"}
    sd = ours.state_dict()
    with torch.no_grad():
        for theirs, mine in names.items():
            peer.get_parameter(theirs).copy_(torch.from_numpy(sd[mine]))
        peer.input2h.bias.copy_(torch.from_numpy(sd["rnn.bias_ih_l0"] + sd["rnn.bias_hh_l0"]))
        peer.h2h.bias.zero_()
    x, _ = bench.trials(1)[0]
    with torch.no_grad():
        got = peer(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, ours.forward(x), rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        peer.h2h.weight.neg_()
        peer.fc.weight.fill_(1.0)
    peer.constrain_weights()
    signs = peer.signs.numpy()
    assert np.all(peer.h2h.weight.detach().numpy() * signs >= 0)
    assert np.all(peer.fc.weight.detach().numpy()[:, signs < 0] == 0)


def test_step_flops_counts_the_products():
    bench = _bench()
    assert bench.step_flops(64) == 2.0 * 16 * 100 * (3 * 64 * 2 + 64 * 64 * 3 + 64 * 3 * 3)


@pytest.mark.slow     # about 15 s: fresh processes for each peer, torch imported in each
def test_quick_run_prints_the_table():
    r = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert "| H | threads | rnnlab steps/s | PyTorch steps/s | rnnlab / PyTorch |" in out
    assert "peak GFLOP/s | load |" in out and "openblas" in out.lower() and "torch" in out
    rows = [line for line in out.splitlines() if line.startswith("| 64 |") or line.startswith("| 256 |")]
    assert len(rows) == 2 and all("**" in row for row in rows)
