"""Interpretable cells of a character model (Karpathy, Johnson & Fei-Fei 2015): which units'
activations track a state of the text -- inside a quoted string, bracket depth, indentation,
position in the line, or any state a user gives as a regular expression.

Each hypothesis is a signal over the characters of a held-out stretch of text; every unit of the
last recurrent layer (h, and for an LSTM also its cell state c) is run over the same stretch as one
sequence, and each unit is scored by the correlation of its activation with the signal. The best
units per hypothesis are reported with their correlations, and a sample of the text with the
best units' activations is kept so the report can colour it character by character.
"""

from __future__ import annotations

import re

import numpy as np

from rnnlab.analysis.dynamics import layer_states
from rnnlab.checks import setting
from rnnlab.errors import InputError


def inside_quotes(text: str) -> np.ndarray:
    """1 on the characters of a quoted string (from its opening quote to its closing one, ' or "),
    0 elsewhere; a string ends at a newline (triple-quoted strings count line by line)."""
    out = np.zeros(len(text))
    quote = None
    for i, ch in enumerate(text):
        if ch == "\n":
            quote = None
        elif quote is None and ch in "'\"":
            quote = ch
            out[i] = 1.0
        elif quote is not None:
            out[i] = 1.0
            if ch == quote and text[i - 1] != "\\":
                quote = None
    return out


def bracket_depth(text: str) -> np.ndarray:
    """How many ( [ { are open at each character (never below 0)."""
    out = np.zeros(len(text))
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        out[i] = depth
    return out


def indent_depth(text: str) -> np.ndarray:
    """The leading spaces of each character's line (a tab counts 4), known from its first
    character on."""
    out = np.zeros(len(text))
    start = 0
    for line in text.split("\n"):
        stripped = line.expandtabs(4)
        out[start:start + len(line) + 1] = len(stripped) - len(stripped.lstrip(" "))
        start += len(line) + 1
    return out[:len(text)]


def position_in_line(text: str) -> np.ndarray:
    """Characters since the last newline."""
    out = np.zeros(len(text))
    pos = 0
    for i, ch in enumerate(text):
        out[i] = pos
        pos = 0 if ch == "\n" else pos + 1
    return out


HYPOTHESES = {"inside quotes": inside_quotes, "bracket depth": bracket_depth,
              "indent depth": indent_depth, "position in line": position_in_line}


def regex_signal(pattern: str, text: str) -> np.ndarray:
    """1 on the characters inside a match of ``pattern``, 0 elsewhere."""
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise InputError(f"{setting('cell_regex')} {pattern!r} is not a regular expression ({e}); "
                         "fix it or leave it out") from None
    out = np.zeros(len(text))
    for m in compiled.finditer(text):
        out[m.start():m.end()] = 1.0
    return out


def _correlations(A: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of A (n, U) with signal (n,); 0 for a constant unit or
    a constant signal."""
    a = A - A.mean(axis=0)
    s = signal - signal.mean()
    norm = np.sqrt((a * a).sum(axis=0) * (s @ s))
    return np.divide(s @ a, norm, out=np.zeros(A.shape[1]), where=norm > 1e-12)


def interpretable_cells(model, ids, vocab, *, regex: str | None = None, chars: int = 5000, top: int = 3,
                        sample: int = 600) -> dict:
    """Score every last-layer unit of a character model against each hypothesis on the first
    ``chars`` characters of ``ids`` (held-out symbol ids), run as one sequence. Returns, per
    hypothesis, the ``top`` units by |correlation| (``state`` "h" or "c"), and a ``sample`` of
    the text with the activations of each hypothesis's best unit (what the report colours)."""
    ids = np.asarray(ids)[:chars]
    if ids.size < 2:
        raise InputError("the interpretable-cells analysis needs held-out text; this task has none")
    text = "".join(vocab[int(i)] for i in ids)
    states = layer_states(model, ids[None], -1)[0]                       # (n, S): h, then c for an LSTM
    H = model.rnn.hidden_size
    names = [("h", u) for u in range(H)] + [("c", u) for u in range(states.shape[1] - H)]
    signals = {name: fn(text) for name, fn in HYPOTHESES.items()}
    if regex:
        signals[f"regex {regex}"] = regex_signal(regex, text)
    out = {"characters": len(text), "hypotheses": [], "sample_text": text[:sample], "sample": {}}
    for name, signal in signals.items():
        if signal.std() == 0:
            out["hypotheses"].append({"name": name, "best": [], "note": "the signal never changes in this text"})
            continue
        r = _correlations(states, signal)
        best = np.argsort(-np.abs(r), kind="stable")[:top]
        out["hypotheses"].append({"name": name, "best": [
            {"state": names[k][0], "unit": names[k][1], "correlation": float(r[k])} for k in best]})
        k = int(best[0])
        out["sample"][name] = {"state": names[k][0], "unit": names[k][1],
                               "activation": [round(float(v), 4) for v in states[:sample, k]]}
    return out
