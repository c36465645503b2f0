"""Interpretable cells of a character model: the hypotheses' signals on text whose answers are
written out, a hand-built unit that counts brackets found as the bracket cell, the report's
coloured text, and bad patterns refused."""

import numpy as np
import pytest

import rnnlab
from rnnlab.analysis.analyze import analyze
from rnnlab.analysis.text_cells import (
    bracket_depth,
    indent_depth,
    inside_quotes,
    interpretable_cells,
    position_in_line,
    regex_signal,
)

TEXT = 'x = f(a, "b(c)")\n    if y:\n        z = [1, (2)]\n'


def test_signals_of_each_hypothesis():
    q = inside_quotes(TEXT)
    assert "".join(c for c, v in zip(TEXT, q) if v) == '"b(c)"'
    depth = bracket_depth(TEXT)
    assert depth[TEXT.index("a")] == 1 and depth[TEXT.index("2")] == 2 and depth[-1] == 0
    ind = indent_depth(TEXT)
    assert ind[TEXT.index("x")] == 0 and ind[TEXT.index("if")] == 4 and ind[TEXT.index("z")] == 8
    pos = position_in_line(TEXT)
    assert pos[TEXT.index("if")] == 4 and pos[TEXT.index("\n") + 1] == 0
    m = regex_signal(r"\[.*\]", TEXT)
    assert "".join(c for c, v in zip(TEXT, m) if v) == "[1, (2)]"
    with pytest.raises(rnnlab.InputError, match="is not a regular expression"):
        regex_signal("(", TEXT)


def bracket_counter(text):
    """A tanh char model whose unit 1 adds 0.05 on '(' and takes it off on ')' (nearly linear over
    the depths here), unit 0 reacts to spaces only: unit 1 is the bracket cell."""
    vocab = sorted(set(text))
    model = rnnlab.CharLM(len(vocab), 2, 2, 1, cell="rnn")
    sd = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    sd["embedding.weight"][vocab.index("(")] = [0.0, 1.0]
    sd["embedding.weight"][vocab.index(")")] = [0.0, -1.0]
    sd["embedding.weight"][vocab.index(" ")] = [1.0, 0.0]
    sd["rnn.weight_ih_l0"][:] = np.diag([0.5, 0.05])
    sd["rnn.weight_hh_l0"][:] = np.diag([0.0, 1.0])
    model.load_state_dict(sd)
    return model, vocab


def test_a_bracket_counting_unit_is_the_bracket_cell():
    rng = np.random.default_rng(0)
    chars, depth = [], 0
    for _ in range(3000):                                # balanced brackets, never deeper than 5
        c = rng.choice(list("ab x()"))
        if (c == ")" and depth == 0) or (c == "(" and depth == 5):
            c = "a"
        depth += (c == "(") - (c == ")")
        chars.append(c)
    text = "".join(chars)
    model, vocab = bracket_counter(text)
    ids = np.array([vocab.index(c) for c in text])
    cells = interpretable_cells(model, ids, vocab, regex=r" +", chars=2000, sample=100)
    by_name = {h["name"]: h for h in cells["hypotheses"]}
    best = by_name["bracket depth"]["best"][0]
    assert (best["state"], best["unit"]) == ("h", 1) and best["correlation"] > 0.9   # tanh leaks a little
    spaces = by_name["regex  +"]["best"][0]
    assert (spaces["unit"], round(spaces["correlation"], 6)) == (0, 1.0)      # unit 0 fires on spaces only
    assert cells["characters"] == 2000 and len(cells["sample"]["bracket depth"]["activation"]) == 100
    assert by_name["inside quotes"]["note"] == "the signal never changes in this text"


def test_a_char_model_run_reports_its_cells_and_colours_the_text(tmp_path):
    from rnnlab.runs.files import read_json
    out = tmp_path / "lm"
    cfg = rnnlab.PRESETS["charlm"].replace(hidden=16, embed=8, epochs=1, batches_per_epoch=3, window=32,
                                           corpus_chars=60_000, batch_size=8)
    rnnlab.train(config=cfg, run_dir=out)
    cells = read_json(out / "analysis.json")["interpretable_cells"]
    assert [h["name"] for h in cells["hypotheses"]] == ["inside quotes", "bracket depth", "indent depth",
                                                        "position in line"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Interpretable cells" in page and page.count('<span style="background:rgba(') >= 4 * 100


def test_cell_regex_is_refused_where_it_cannot_apply():
    t = rnnlab.Trainer(config=rnnlab.TrainConfig(epochs=1, batches_per_epoch=1, train_size=50, test_size=20))
    with pytest.raises(rnnlab.InputError, match="this task's inputs are not text"):
        analyze(t.model, t.task, cell_regex="a")


def test_an_lstm_cell_state_that_counts_brackets_is_named_c_not_h():
    """An LSTM whose cell state c[1] adds 0.6 on '(' and takes it off on ')' (every gate open, so
    c is exactly the depth x 0.6) while h[1] = tanh(c[1]) saturates: the bracket cell is c[1],
    and the coloured sample shows c[1]'s values."""
    rng = np.random.default_rng(1)
    chars, depth, depths = [], 0, []
    for _ in range(2000):
        c = rng.choice(list("ab()"))
        if (c == ")" and depth == 0) or (c == "(" and depth == 5):
            c = "a"
        depth += (c == "(") - (c == ")")
        chars.append(c)
        depths.append(depth)
    text = "".join(chars)
    vocab = sorted(set(text))
    model = rnnlab.CharLM(len(vocab), 2, 2, 1, cell="lstm", dtype=np.float64)
    sd = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    sd["embedding.weight"][vocab.index("(")] = [0.0, 1.0]
    sd["embedding.weight"][vocab.index(")")] = [0.0, -1.0]
    sd["rnn.bias_ih_l0"][[0, 1, 2, 3, 6, 7]] = 40.0                  # input, forget and output gates open
    sd["rnn.weight_ih_l0"][5, 1] = np.arctanh(0.6)                    # candidate g[1] = +-0.6 on a bracket
    model.load_state_dict(sd)
    ids = np.array([vocab.index(c) for c in text])
    cells = interpretable_cells(model, ids, vocab, chars=2000, sample=200)
    best = {h["name"]: h for h in cells["hypotheses"]}["bracket depth"]["best"]
    assert (best[0]["state"], best[0]["unit"]) == ("c", 1) and best[0]["correlation"] > 0.9999
    assert (best[1]["state"], best[1]["unit"]) == ("h", 1) and best[1]["correlation"] < 0.99
    shown = cells["sample"]["bracket depth"]
    assert (shown["state"], shown["unit"]) == ("c", 1)
    np.testing.assert_allclose(shown["activation"], 0.6 * np.array(depths[:200]), atol=1e-4)
