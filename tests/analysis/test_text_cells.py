"""Interpretable cells of a character model: the hypotheses' signals on text whose answers are
written out (the quote state machine on strings, escapes and comments), units chosen on one half
of the text and tested on the other against a chance level from circular shifts, hand-built
units found (bracket counters) or exposed (a unit right on one half only), random-weight models
at chance, the report's coloured text, and bad patterns or too little text said."""

import html
import re

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


def strings(text):
    """The runs of characters ``inside_quotes`` marks, in order."""
    flags = "".join("1" if v else "0" for v in inside_quotes(text))
    return [text[m.start():m.end()] for m in re.finditer("1+", flags)]


@pytest.mark.parametrize("text, expected", [
    # a triple-quoted string spans lines and holds both quote kinds and a '#'
    ('s = """a "quoted" \'word\'\nline two # not a comment\n"""\nt = 1\n',
     ['"""a "quoted" \'word\'\nline two # not a comment\n"""']),
    ("'''it's \"x\" \\''' still'''  # done\n", ["'''it's \"x\" \\''' still'''"]),   # \''' does not close it
    # escaped quotes and an escaped backslash before the closing quote
    ('x = "say \\"hi\\"" + \'it\\\'s\' + "\\\\"\n', ['"say \\"hi\\""', "'it\\'s'", '"\\\\"']),
    # quotes in a comment open nothing; a '#' in a string starts no comment
    ("# don't \"open\" this\nx = 'a#b'  # it's\ny = 2\n", ["'a#b'"]),
    # an empty string is two quotes, not the start of a triple-quoted one
    ('a = "" + \'\'\nb = """x"""\n', ['""', "''", '"""x"""']),
    # a one-line string left open ends at the newline; the next line is code again
    ("it's prose\nx = 1\n", ["'s prose"]),
    ('"""unclosed\nat the end', ['"""unclosed\nat the end']),
])
def test_the_quote_state_machine_knows_python_strings(text, expected):
    assert strings(text) == expected


def tanh_model(vocab, rows, w_in, w_rec):
    """A hand-built one-layer tanh char model, h_t = tanh(w_in * e(x_t) + w_rec * h_{t-1})
    elementwise, where e(c) = rows[c] (zeros for the other characters)."""
    H = len(w_in)
    model = rnnlab.CharLM(len(vocab), H, H, 1, cell="rnn", dtype=np.float64)
    sd = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    for c, row in rows.items():
        sd["embedding.weight"][vocab.index(c)] = row
    sd["rnn.weight_ih_l0"][:] = np.diag(w_in)
    sd["rnn.weight_hh_l0"][:] = np.diag(w_rec)
    model.load_state_dict(sd)
    return model


def ids_of(text, vocab):
    return np.array([vocab.index(c) for c in text])


def balanced_brackets(rng, n, alphabet):
    """Random text of ``alphabet`` whose brackets balance and never nest deeper than 5, and its depths."""
    chars, depth, depths = [], 0, []
    for _ in range(n):
        c = rng.choice(list(alphabet))
        if (c == ")" and depth == 0) or (c == "(" and depth == 5):
            c = "a"
        depth += (c == "(") - (c == ")")
        chars.append(c)
        depths.append(depth)
    return "".join(chars), depths


def by_name(cells):
    return {h["name"]: h for h in cells["hypotheses"]}


def test_a_bracket_counting_unit_is_the_bracket_cell_on_held_out_text():
    """Unit 1 adds 0.05 on '(' and takes it off on ')' (nearly linear over the depths here), unit 0
    reacts to spaces only: chosen on the first half, both hold on the second, far above chance."""
    text, _ = balanced_brackets(np.random.default_rng(0), 3000, "ab x()")
    vocab = sorted(set(text))
    model = tanh_model(vocab, {"(": [0.0, 1.0], ")": [0.0, -1.0], " ": [1.0, 0.0]}, [0.5, 0.05], [0.0, 1.0])
    cells = interpretable_cells(model, ids_of(text, vocab), vocab, regex=r" +", chars=2000, sample=100)
    assert (cells["characters"], cells["selection"], cells["held_out"]) == (2000, [0, 1000], [1000, 2000])
    depth = by_name(cells)["bracket depth"]
    assert (depth["state"], depth["unit"]) == ("h", 1) and depth["best"][0]["unit"] == 1
    assert depth["selection_r"] > 0.9 and depth["held_out_r"] > 0.9        # tanh leaks a little
    assert depth["above_chance"] and depth["chance"]["level"] < 0.5
    assert depth["sentence"].startswith("unit h[1] tracks bracket depth: r = +0.9")
    assert "held-out characters 1,000-2,000 (chosen among 2 units on characters 0-1,000" in depth["sentence"]
    assert "95th percentile over 200 circular shifts" in depth["sentence"]
    spaces = by_name(cells)["regex  +"]
    assert (spaces["unit"], round(spaces["selection_r"], 6), round(spaces["held_out_r"], 6)) == (0, 1.0, 1.0)
    assert cells["sample_text"] == text[1000:1100]                           # the sample is held-out text
    assert len(cells["sample"]["bracket depth"]["activation"]) == 100
    assert by_name(cells)["inside quotes"]["note"] == "the signal never changes in this text"


def test_a_unit_right_on_the_selection_half_only_fails_on_held_out_text():
    """The signal marks x after 'a' and every y. Unit 0 fires on x: on the first half every x
    follows an 'a' (r = 1 there, so unit 0 is chosen), on the second half every x follows a 'b'
    and the signal is the y's, which unit 0 never sees: held-out r below 0 (an x is never a y), no
    better than chance."""
    rng = np.random.default_rng(2)
    first = "".join(rng.choice(["a", "b", "b", "ax"], size=1500))[:1500]
    second = "".join(rng.choice(["a", "b", "bx", "y"], size=1500))[:1500]
    text = first + second
    vocab = sorted(set(text))
    model = tanh_model(vocab, {"x": [1.0, 0.0], "y": [0.0, 1.0]}, [1.0, 1.0], [0.0, 0.0])
    cells = interpretable_cells(model, ids_of(text, vocab), vocab, regex=r"(?<=a)x|y", chars=len(text))
    planted = by_name(cells)[r"regex (?<=a)x|y"]
    assert (planted["state"], planted["unit"]) == ("h", 0)
    assert planted["selection_r"] > 0.99 and -0.3 < planted["held_out_r"] < 0
    assert not planted["above_chance"] and planted["held_out_r"] < planted["chance"]["level"]
    assert planted["sentence"].startswith("no unit tracks regex (?<=a)x|y beyond chance: the best on "
                                          "characters 0-1,500, h[0] (r = +1.00), reaches r = ")


def test_random_weight_models_come_out_at_chance():
    """A signal no random tanh model can see (the character 40 steps back is an 'a'; their
    memory fades within a few steps): chosen on one half, the best unit's held-out r beats the
    95th-percentile chance level about 1 time in 20, while its selection r is inflated by the
    choice among 32 units."""
    text = "".join(np.random.default_rng(3).choice(list("ab"), size=2000))
    vocab = sorted(set(text))
    results = []
    for seed in range(40):
        model = rnnlab.CharLM(len(vocab), 4, 32, 1, cell="rnn", dtype=np.float64, seed=seed)
        cells = interpretable_cells(model, ids_of(text, vocab), vocab, regex=r"(?<=a.{39}).", chars=2000)
        results.append(by_name(cells)[r"regex (?<=a.{39})."])
    assert sum(h["above_chance"] for h in results) <= 6                     # 2 expected
    levels = [h["chance"]["level"] for h in results]
    assert 0.02 < min(levels) and max(levels) < 0.15
    held_out = np.median([abs(h["held_out_r"]) for h in results])
    selection = np.median([abs(h["selection_r"]) for h in results])
    assert held_out < 0.05 < selection < np.median([h["chance"]["selection_level"] for h in results]) + 0.05


def test_what_cannot_be_tested_is_said():
    """Too little text to split into halves of 500, or a signal that never changes on one half:
    a note and no unit."""
    vocab = ["'", "a", "b"]
    model = tanh_model(vocab, {"'": [1.0]}, [1.0], [0.5])
    short = "".join(np.random.default_rng(4).choice(vocab, size=900))
    cells = interpretable_cells(model, ids_of(short, vocab), vocab)
    for h in cells["hypotheses"]:
        assert h["best"] == [] and "unit" not in h
        assert h["note"] == ("the held-out text has 900 characters, too few to choose units on one half "
                             "and test them on the other (each half needs 500)")
        assert h["sentence"] == f"no unit is reported for {h['name']}: {h['note']}"
    one_sided = "".join(np.random.default_rng(5).choice(vocab, size=1000)) + "ab" * 500
    quotes = by_name(interpretable_cells(model, ids_of(one_sided, vocab), vocab))["inside quotes"]
    assert quotes["best"] == [] and quotes["sentence"] == ("no unit is reported for inside quotes: the signal "
                                                           "never changes on the held-out half (characters "
                                                           "1,000-2,000)")


@pytest.mark.slow      # 3 s: trains a char-LM run; runs in CI
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
    for h in cells["hypotheses"]:
        assert {"selection_r", "held_out_r", "chance", "above_chance"} <= set(h)
        assert html.escape(h["sentence"]) in page


def test_cells_an_older_rnnlab_scored_in_sample_are_not_shown_as_tested():
    from rnnlab.present.report import _interpretable_cells
    old = {"characters": 5000, "sample_text": "", "sample": {}, "hypotheses": [
        {"name": "inside quotes", "best": [{"state": "c", "unit": 3, "correlation": -0.59}]}]}
    assert "no held-out test or chance level" in "".join(_interpretable_cells(old))


def test_cell_regex_is_refused_where_it_cannot_apply():
    t = rnnlab.Trainer(config=rnnlab.TrainConfig(epochs=1, batches_per_epoch=1, train_size=50, test_size=20))
    with pytest.raises(rnnlab.InputError, match="this task's inputs are not text"):
        analyze(t.model, t.task, cell_regex="a")


def test_an_lstm_cell_state_that_counts_brackets_is_named_c_not_h():
    """An LSTM whose cell state c[1] adds 0.6 on '(' and takes it off on ')' (every gate open, so
    c is exactly the depth x 0.6) while h[1] = tanh(c[1]) saturates: the bracket cell is c[1],
    and the coloured sample shows c[1]'s values on the held-out half."""
    text, depths = balanced_brackets(np.random.default_rng(1), 2000, "ab()")
    vocab = sorted(set(text))
    model = rnnlab.CharLM(len(vocab), 2, 2, 1, cell="lstm", dtype=np.float64)
    sd = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    sd["embedding.weight"][vocab.index("(")] = [0.0, 1.0]
    sd["embedding.weight"][vocab.index(")")] = [0.0, -1.0]
    sd["rnn.bias_ih_l0"][[0, 1, 2, 3, 6, 7]] = 40.0                  # input, forget and output gates open
    sd["rnn.weight_ih_l0"][5, 1] = np.arctanh(0.6)                    # candidate g[1] = +-0.6 on a bracket
    model.load_state_dict(sd)
    cells = interpretable_cells(model, ids_of(text, vocab), vocab, chars=2000, sample=200)
    depth = by_name(cells)["bracket depth"]
    best = depth["best"]
    assert (best[0]["state"], best[0]["unit"]) == ("c", 1) == (depth["state"], depth["unit"])
    assert best[0]["selection_r"] > 0.9999 and best[0]["held_out_r"] > 0.9999
    assert (best[1]["state"], best[1]["unit"]) == ("h", 1) and best[1]["held_out_r"] < 0.99
    shown = cells["sample"]["bracket depth"]
    assert (shown["state"], shown["unit"]) == ("c", 1)
    np.testing.assert_allclose(shown["activation"], 0.6 * np.array(depths[1000:1200]), atol=1e-4)
