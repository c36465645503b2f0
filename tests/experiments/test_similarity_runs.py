"""``rnnlab similarity``: many finished runs compared three ways, written as CSV, JSON and a figure;
bad input refused in one sentence."""

import json
import re

import numpy as np
import pytest

import rnnlab
from rnnlab.cli import main
from rnnlab.experiments.similarity import classical_mds, nearest_neighbour_accuracy

SMALL = dict(task="flipflop", bits=2, hidden=12, layers=1, dropout=0.0, lr=1e-2, init="orthogonal", length=30,
             epochs=3, batches_per_epoch=10, batch_size=32, test_size=80, probe_every=0, checkpoint_every=0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("population")
    out = {}
    for model in ("rnn", "gru"):
        for seed in (0, 1):
            d = root / f"{model}{seed}"
            rnnlab.train(config=rnnlab.TrainConfig(model=model, seed=seed, **SMALL), run_dir=d, report=False)
            out[f"{model}{seed}"] = d
    d = root / "adding"
    rnnlab.train(config=rnnlab.TrainConfig(task="adding", length=20, hidden=8, layers=1, dropout=0.0, epochs=1,
                                           batches_per_epoch=2, test_size=50, checkpoint_every=0), run_dir=d,
                 report=False)
    out["adding"] = d
    out["root"] = root
    return out


@pytest.mark.slow       # trains five small networks (6 s) for the three tests that use them; runs in CI
def test_four_networks_are_compared_three_ways_and_written(runs, capsys):
    paths = [str(runs[k]) for k in ("rnn0", "rnn1", "gru0", "gru1")]
    out = runs["root"] / "sim"
    assert main(["similarity", *paths, "--probe-trials", "16", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 networks, 16 probe trials of 30 steps" in printed
    d = json.loads((out / "similarity.json").read_text())
    assert set(d["matrices"]) == {"cca", "procrustes", "dsa", "topology"}
    for name, M in d["matrices"].items():
        M = np.array(M)
        assert M.shape == (4, 4) and np.allclose(M, M.T) and np.allclose(np.diag(M), 0), name
        assert (M[~np.eye(4, dtype=bool)] > 0).any(), name
        assert (out / f"similarity_{name}.csv").read_text().splitlines()[0].startswith("network,")
    assert [f["model"] for f in d["fields"]] == ["rnn", "rnn", "gru", "gru"]
    assert len(d["settings"]["signatures"]) == 4 and (out / "similarity.png").stat().st_size > 10_000
    # one seed, one result: the signatures sought on two worker processes equal those sought here
    assert main(["similarity", *paths, "--probe-trials", "16", "--jobs", "1", "--out", str(out), "--force"]) == 0
    one = json.loads((out / "similarity.json").read_text())
    untimed = lambda s: {k: re.sub(r"[\d.]+ s\b", "", v) if k == "search" else v      # noqa: E731
                         for k, v in s.items() if k != "seconds"}
    strip = lambda sigs: [untimed(s) for s in sigs]                                       # noqa: E731
    assert strip(one["settings"]["signatures"]) == strip(d["settings"]["signatures"])
    assert one["matrices"] == d["matrices"]


def test_mds_recovers_a_configuration_and_nearest_neighbours_count_labels():
    rng = np.random.default_rng(0)
    P = rng.standard_normal((7, 2))
    D = np.linalg.norm(P[:, None] - P[None], axis=-1)
    Q = classical_mds(D)
    np.testing.assert_allclose(np.linalg.norm(Q[:, None] - Q[None], axis=-1), D, atol=1e-9)
    D2 = np.array([[0, 1, 5, 5], [1, 0, 5, 5], [5, 5, 0, 1], [5, 5, 1, 0]], float)
    assert nearest_neighbour_accuracy(D2, ["a", "a", "b", "b"]) == 1.0
    assert nearest_neighbour_accuracy(D2, ["a", "b", "a", "b"]) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("which,words", [
    (("rnn0",), "needs at least two runs, got 1"),
    (("rnn0", "adding"), "compare networks trained on the same task"),
])
def test_bad_input_is_one_sentence(runs, capsys, which, words):
    with pytest.raises(SystemExit) as e:
        raise SystemExit(main(["similarity", *[str(runs[k]) for k in which], "--no-topology",
                               "--out", str(runs["root"] / "never")]))
    err = capsys.readouterr().err
    assert e.value.code == 2 and words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (runs["root"] / "never").exists()


@pytest.mark.slow
def test_too_few_probe_trials_for_the_rank_is_refused(runs, capsys):
    code = main(["similarity", str(runs["rnn0"]), str(runs["gru0"]), "--probe-trials", "1", "--rank", "10",
                 "--delays", "40", "--no-topology", "--out", str(runs["root"] / "never2")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_the_sweep_page_gets_the_similarity_section_once(tmp_path):
    """Written into SWEEP/similarity, the comparison puts its section (separation, topology shapes,
    figure) into the sweep's page; written again, it replaces it rather than adding a second."""
    from rnnlab.experiments.similarity import PAGE_MARKS, Similarity, write_similarity
    from rnnlab.present.html import page
    (tmp_path / "sweep.html").write_text(page("rnnlab sweep", ["<h1>sweep</h1>"]), encoding="utf-8")
    D = np.array([[0.0, 0.1, 0.9, 0.8], [0.1, 0.0, 0.9, 0.9], [0.9, 0.9, 0.0, 0.2], [0.8, 0.9, 0.2, 0.0]])
    sig = {"counts": {"0": 2}, "memories": ["+", "-"], "edges": [["+", "-"]], "ghosts": []}
    sim = Similarity(["a", "b", "c", "d"], [{"model": m} for m in ("rnn", "rnn", "gru", "gru")],
                     {"cca": D, "dsa": D}, {"probe_trials": 8, "signatures": [sig] * 4})
    for _ in range(2):
        write_similarity(sim, tmp_path / "similarity")
        text = (tmp_path / "sweep.html").read_text(encoding="utf-8")
        assert text.count(PAGE_MARKS[0]) == 1 and text.count("<h2>Similarity</h2>") == 1
    assert "cca: the nearest other network has the same model for 100% of the 4 networks" in text
    assert "4 networks with 2 memories joined by 1 edge" in text and "data:image/png;base64," in text
