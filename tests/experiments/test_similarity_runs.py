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
    # ties share the credit: an all-zero matrix gives chance whatever the order of the networks
    for labels in (["a", "a", "b", "b", "c", "c"], ["a", "b", "c", "a", "b", "c"]):
        assert nearest_neighbour_accuracy(np.zeros((6, 6)), labels) == pytest.approx(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("which,words", [
    (("rnn0",), "needs at least two runs, got 1"),
    (("rnn0", "adding"), "compare networks trained on the same task"),
    (("rnn0", "rnn0"), "is named twice"),
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


@pytest.mark.slow
def test_a_run_directory_is_never_the_output_and_keeps_its_files(runs, capsys):
    before = sorted(p.name for p in runs["rnn0"].iterdir())
    code = main(["similarity", str(runs["rnn0"]), str(runs["rnn1"]), "--no-topology", "--out", str(runs["rnn1"]),
                 "--force"])
    err = capsys.readouterr().err
    assert code == 2 and "is a run or sweep directory" in err and "Traceback" not in err, err
    assert sorted(p.name for p in runs["rnn0"].iterdir()) == before


@pytest.mark.parametrize("flags,words", [
    (["--jobs", "0"], "--jobs must be at least 1, got 0"),
    (["--rank", "0"], "--rank must be at least 1, got 0"),
    (["--probe-trials", "-2"], "--probe-trials must be at least 1, got -2"),
])
def test_each_bad_number_is_named(tmp_path, capsys, flags, words):
    assert main(["similarity", str(tmp_path / "a"), str(tmp_path / "b"), *flags]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err


def test_a_full_output_directory_is_refused_before_any_work(tmp_path, capsys):
    """The runs named do not even exist: the refusal of --out comes first, not after the analysis."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["similarity", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"output directory {out} already exists and is not empty" in err, err
    assert "does not exist" not in err and (out / "mine.txt").read_text() == "keep", err


def test_the_sweep_page_gets_the_similarity_section_once(tmp_path):
    """Written into SWEEP/similarity, the comparison puts its section (separation, topology shapes,
    figure) into the sweep's page; written again, it replaces it rather than adding a second; once
    the sweep's runs are not the ones compared (a --force rerun), the section is left out."""
    from rnnlab.experiments.similarity import PAGE_MARKS, Similarity, add_to_sweep_page, write_similarity
    from rnnlab.present.html import page
    (tmp_path / "sweep.html").write_text(page("rnnlab sweep", ["<h1>sweep</h1>"]), encoding="utf-8")
    for r in "abcd":
        (tmp_path / "runs" / r).mkdir(parents=True)
    D = np.array([[0.0, 0.1, 0.9, 0.8], [0.1, 0.0, 0.9, 0.9], [0.9, 0.9, 0.0, 0.2], [0.8, 0.9, 0.2, 0.0]])
    sig = {"counts": {"0": 2}, "memories": ["+", "-"], "edges": [["+", "-"]], "ghosts": []}
    sim = Similarity([f"{tmp_path.name}/{r}" for r in "abcd"], [{"model": m} for m in ("rnn", "rnn", "gru", "gru")],
                     {"cca": D, "dsa": D}, {"probe_trials": 8, "signatures": [sig] * 4})
    for _ in range(2):
        write_similarity(sim, tmp_path / "similarity")
        text = (tmp_path / "sweep.html").read_text(encoding="utf-8")
        assert text.count(PAGE_MARKS[0]) == 1 and text.count("<h2>Similarity</h2>") == 1
    assert "cca: the nearest other network has the same model for 100% of the 4 networks" in text
    assert "4 networks with 2 memories joined by 1 edge" in text and "data:image/png;base64," in text
    (tmp_path / "runs" / "d").rmdir()
    add_to_sweep_page(tmp_path)
    assert "<h2>Similarity</h2>" not in (tmp_path / "sweep.html").read_text(encoding="utf-8")


def test_a_worker_that_dies_is_one_sentence_not_a_hang():
    """``local_executor``: a worker killed mid-task (here it exits) raises in the driver at once,
    and the comparison turns that into one sentence naming the network (a ``multiprocessing.Pool``
    would have waited for ever)."""
    import os
    from concurrent.futures.process import BrokenProcessPool

    from rnnlab.errors import RnnlabError
    from rnnlab.experiments.similarity import Network, _next_signature
    from rnnlab.processes import local_executor
    with local_executor(1) as pool:
        pending = pool.map(os._exit, [3])
        with pytest.raises(BrokenProcessPool):
            next(pending)
    with local_executor(1) as pool:
        pending = pool.map(os._exit, [3])
        with pytest.raises(RnnlabError, match="worker process seeking the fixed points of sw/run0 .* died"):
            _next_signature(pending, Network("sw/run0", None, None, None))
