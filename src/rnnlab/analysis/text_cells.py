"""Interpretable cells of a character model (Karpathy, Johnson & Fei-Fei 2015): which units'
activations track a state of the text -- inside a quoted string, bracket depth, indentation,
position in the line, or any state a user gives as a regular expression.

Each hypothesis is a signal over the characters of a held-out stretch of text; every unit of the
last recurrent layer (h, and for an LSTM also its cell state c) is run over the same stretch as one
sequence and scored by the correlation of its activation with the signal. Picking the best of
hundreds of units inflates its correlation, so the unit is chosen on the first half of the stretch
and its correlation reported on the second half, beside a chance level: the same choice and test
made with the signal circularly shifted by large random offsets (which keeps its autocorrelation
and breaks its alignment with the text). A sample of the held-out half with the chosen units'
activations is kept so the report can colour it character by character.
"""

from __future__ import annotations

import re

import numpy as np

from rnnlab.analysis.dynamics import layer_states
from rnnlab.checks import setting
from rnnlab.errors import InputError
from rnnlab.nn.cells.ctrnn import CTRNNCell


def inside_quotes(text: str) -> np.ndarray:
    r"""1 on the characters of a Python-style string literal, its quotes included, 0 elsewhere.

    A small state machine with three states -- code, comment, string (its delimiter: ', ", or
    three of either) -- so that code's strings are marked whole, not line by line:

    - in code, ``#`` opens a comment to the end of the line (quotes in it open nothing); three
      quotes of one kind open a triple-quoted string, one quote a one-line string;
    - in a string, a backslash escapes the next character (so ``\"`` does not close a string,
      nor ``\'`` and two more quotes a triple-quoted one); only the delimiter that opened it
      closes it (the other quote kind, ``#`` and, in a triple-quoted string, newlines are text);
    - a one-line string left open ends at its newline (0), so an apostrophe in prose or a stray
      quote does not mark the rest of the text.

    String prefixes (r, b, f) count as code; raw strings need no case of their own (a backslash
    keeps a quote from closing them too). Not covered: Python 3.12's f-string fields that reuse
    the outer quote (``f"{d["k"]}"`` reads as two strings).
    """
    out = np.zeros(len(text))
    quote, i = None, 0                   # the open string's delimiter (None: code), the character
    while i < len(text):
        if quote is None:
            if text[i] == "#":                                       # a comment: skip to its newline
                end = text.find("\n", i)
                i = len(text) if end < 0 else end
                continue
            if text[i] in "'\"":
                quote = text[i] * 3 if text.startswith(text[i] * 3, i) else text[i]
                out[i:i + len(quote)] = 1.0
                i += len(quote)
                continue
            i += 1
        elif text[i] == "\\":                                        # an escape and what it escapes
            out[i:i + 2] = 1.0
            i += 2
        elif text[i] == "\n" and len(quote) == 1:                   # a one-line string left open
            quote, i = None, i + 1
        elif text.startswith(quote, i):                              # the closing delimiter
            out[i:i + len(quote)] = 1.0
            quote, i = None, i + len(quote)
        else:
            out[i] = 1.0
            i += 1
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


MIN_HALF = 500     # characters each half of the text needs before a unit is chosen on one, tested on the other
SHIFTS = 200       # circular shifts of a signal behind its chance level
PERCENTILE = 95    # the chance level: this percentile of what the shifted signals reach
CHANCE = ("the signal circularly shifted by random offsets of 10-90% of the text (autocorrelation kept, "
          "alignment with the text broken); per shift the unit is chosen on the selection half and its "
          "held-out r taken in the chosen direction; level: that r's percentile over the shifts; "
          "selection_level: the chosen unit's |r| on the selection half, likewise")


def _correlations(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Pearson correlations (U, K) of each column of A (n, U) with each column of B (n, K); 0 where
    either column is constant."""
    a = A - A.mean(axis=0)
    b = B - B.mean(axis=0)
    norm = np.outer(np.sqrt((a * a).sum(axis=0)), np.sqrt((b * b).sum(axis=0)))
    return np.divide(a.T @ b, norm, out=np.zeros(norm.shape), where=norm > 1e-12)


def _untested(name: str, note: str) -> dict:
    return {"name": name, "best": [], "note": note, "sentence": f"no unit is reported for {name}: {note}"}


def _cell_test(name: str, signal: np.ndarray, states: np.ndarray, names: list, half: int,
               offsets: np.ndarray, top: int) -> dict:
    """Choose the unit with the largest |r| on the first ``half`` characters, report its r there and
    on the rest; the chance level is the same choice and test made on the signal circularly shifted
    by each of ``offsets``, so picking among many units and the signal's autocorrelation are in it."""
    n = len(signal)
    for part, where in ((slice(0, half), f"the selection half (characters 0-{half:,})"),
                        (slice(half, n), f"the held-out half (characters {half:,}-{n:,})")):
        if signal[part].std() == 0:
            return _untested(name, f"the signal never changes on {where}")
    shifted = np.stack([signal] + [np.roll(signal, -k) for k in offsets], axis=1)   # (n, 1 + shifts)
    r_sel = _correlations(states[:half], shifted[:half])                              # (S, 1 + shifts)
    r_out = _correlations(states[half:], shifted[half:])                              # (S, 1 + shifts)
    cols = np.arange(shifted.shape[1])
    chosen = np.abs(r_sel).argmax(axis=0)                        # per signal, its best unit on the selection half
    kept = r_out[chosen, cols] * np.sign(r_sel[chosen, cols])    # held-out r, in the direction chosen
    level = float(np.percentile(kept[1:], PERCENTILE))
    k = int(chosen[0])
    unit, sel, out = f"{names[k][0]}[{names[k][1]}]", float(r_sel[k, 0]), float(r_out[k, 0])
    above = bool(kept[0] > level)
    chance = (f"chance level {level:.2f} ({PERCENTILE}th percentile over {len(offsets)} circular shifts of the "
              "signal, each chosen and tested the same way)")
    if above:
        sentence = (f"unit {unit} tracks {name}: r = {out:+.2f} on held-out characters {half:,}-{n:,} (chosen "
                    f"among {len(names)} units on characters 0-{half:,}, where r = {sel:+.2f}); {chance}")
    else:
        sentence = (f"no unit tracks {name} beyond chance: the best on characters 0-{half:,}, {unit} "
                    f"(r = {sel:+.2f}), reaches r = {out:+.2f} on held-out characters {half:,}-{n:,}; {chance}")
    best = np.argsort(-np.abs(r_sel[:, 0]), kind="stable")[:top]
    return {"name": name, "state": names[k][0], "unit": names[k][1], "selection_r": sel, "held_out_r": out,
            "above_chance": above,
            "chance": {"level": level, "percentile": PERCENTILE, "shifts": len(offsets), "method": CHANCE,
                       "selection_level": float(np.percentile(np.abs(r_sel[chosen, cols])[1:], PERCENTILE))},
            "sentence": sentence,
            "best": [{"state": names[j][0], "unit": names[j][1], "selection_r": float(r_sel[j, 0]),
                      "held_out_r": float(r_out[j, 0])} for j in best]}


def interpretable_cells(model, ids, vocab, *, regex: str | None = None, chars: int = 10_000, top: int = 3,
                        sample: int = 600, seed: int = 0) -> dict:
    """Score every last-layer unit of a character model against each hypothesis on the first
    ``chars`` characters of ``ids`` (held-out symbol ids), run as one sequence: per hypothesis the
    unit chosen on the first half with its r there and on the second half, the chance level (see
    ``_cell_test``; ``seed`` draws the shifts), a sentence naming the test, and the ``top`` units
    by |r| on the first half (``state`` "h" or "c"; a CTRNN's "r" or "x"). A ``sample`` of the
    second half's text with each chosen unit's activations is what the report colours."""
    ids = np.asarray(ids)[:chars]
    if ids.size < 2:
        raise InputError("the interpretable-cells analysis needs held-out text; this task has none")
    text = "".join(vocab[int(i)] for i in ids)
    states = layer_states(model, ids[None], -1)[0]                       # (n, S): h, then c for an LSTM
    H = model.rnn.hidden_size
    first, second = ("r", "x") if isinstance(model.rnn.cell, CTRNNCell) else ("h", "c")   # a CTRNN: rate, current
    names = [(first, u) for u in range(H)] + [(second, u) for u in range(states.shape[1] - H)]
    signals = {name: fn(text) for name, fn in HYPOTHESES.items()}
    if regex:
        signals[f"regex {regex}"] = regex_signal(regex, text)
    n, half = len(text), len(text) // 2
    out = {"characters": n, "selection": [0, half], "held_out": [half, n], "seed": seed, "hypotheses": [],
           "sample_start": half, "sample_text": text[half:half + sample], "sample": {}}
    offsets = np.random.default_rng(seed).integers(n // 10, n - n // 10, size=SHIFTS, endpoint=True)
    short = (f"the held-out text has {n:,} characters, too few to choose units on one half and test them on "
             f"the other (each half needs {MIN_HALF:,})")
    for name, signal in signals.items():
        if half < MIN_HALF:
            h = _untested(name, short)
        elif signal.std() == 0:
            h = _untested(name, "the signal never changes in this text")
        else:
            h = _cell_test(name, signal, states, names, half, offsets, top)
        out["hypotheses"].append(h)
        if "unit" in h:
            k = names.index((h["state"], h["unit"]))
            out["sample"][name] = {"state": h["state"], "unit": h["unit"],
                                   "activation": [round(float(v), 4) for v in states[half:half + sample, k]]}
    return out
