"""An analysis is of one condition: the held-out trials that match the constant input its fixed
points are sought at. Built by hand: a tanh oscillator whose second input, a context held through
each trial, drives every unit into saturation (no rhythm) when on."""

import numpy as np
import pytest

import rnnlab
from rnnlab.analysis.analyze import analyze
from rnnlab.analysis.conditions import condition_inputs


def context_oscillator():
    """``test_oscillations.oscillator`` (period 20, gain 1.2: a limit cycle) with a second input
    of weight 6 to every unit: on, it pins every unit near tanh(6), and no rhythm is left."""
    from test_oscillations import oscillator
    model, _ = oscillator(20.0, gain=1.2, context_drive=6.0)
    rng = np.random.default_rng(1)
    X = np.zeros((120, 100, 2), dtype=np.float32)
    X[..., 0] = 0.05 * rng.standard_normal((120, 100))
    X[60:, :, 1] = 1.0                                    # the second half of the trials: context on
    X = X[rng.permutation(120)]
    return model, rnnlab.Task.from_arrays(X, X[..., :1].copy())


def test_condition_inputs_are_the_ones_held_through_each_trial():
    _, task = context_oscillator()
    assert condition_inputs(task.test.X) == [1]
    rng = np.random.default_rng(0)
    pulses = (rng.random((200, 30, 1)) < 0.1).astype(float)           # a pulse is no level held
    late = np.zeros((200, 30, 1))
    late[:100, 10:] = 2.0                                             # a cue switched on after fixation is
    assert condition_inputs(pulses) == [] and condition_inputs(late) == [0]


def test_each_constant_input_is_analysed_on_its_own_trials():
    model, task = context_oscillator()
    n_on = int(task.test.X[:, 0, 1].sum())
    a = analyze(model, task, fp_starts=32, fp_input=[[0.0, 0.0], [0.0, 1.0]]).json
    off, on = a["conditions"]
    assert (off["trials"], on["trials"]) == (len(task.test.X) - n_on, n_on) and not off["pooled"]
    assert off["role_counts"]["oscillatory"] == 10                     # every unit turns, context off
    assert on["role_counts"]["oscillatory"] == 0                       # pinned, context on
    assert "whose condition input 1 (one level through each trial) equal the fixed-point input's (0)" in \
        off["sentence"]
    assert a["role_counts"] == off["role_counts"] and a["condition"]["trials"] == off["trials"]
    assert a["fixed_points_by_input"][1]["condition"]["trials"] == n_on
    pooled = analyze(model, task, fp_starts=32, fp_input=[0.0, 0.0], condition="pooled").json
    assert pooled["condition"]["pooled"] and pooled["condition"]["sentence"].startswith("pooled, as asked")
    assert pooled["role_counts"]["oscillatory"] < 10                   # what pooling every trial used to say


def test_a_condition_named_by_a_function_of_the_trial():
    model, task = context_oscillator()
    a = analyze(model, task, fp_starts=32, condition=lambda x: x[0, 1] == 0).json
    assert a["condition"]["trials"] == int((task.test.X[:, 0, 1] == 0).sum())
    assert a["role_counts"]["oscillatory"] == 10
    with pytest.raises(rnnlab.InputError, match="holds for none of the"):
        analyze(model, task, fp_starts=32, condition=lambda x: False)
    with pytest.raises(rnnlab.InputTypeError, match="must be a function of a trial's inputs"):
        analyze(model, task, fp_starts=32, condition=3)
    with pytest.raises(rnnlab.InputError, match="takes 'pooled' or a function"):
        analyze(model, task, fp_starts=32, condition="all")


def test_a_task_without_conditions_is_pooled_and_says_so():
    from test_oscillations import oscillator
    model, task = oscillator(20.0, gain=1.2)
    a = analyze(model, task, fp_starts=32).json
    assert a["condition"]["pooled"] and "its trials fall into no conditions" in a["condition"]["sentence"]


def test_the_figures_label_each_analysed_trial_with_its_own_label():
    """Variable lengths: the analysis keeps the trials at least as long as the median; the PCA
    figure's colours were the first labels of the held-out set, another trial's for most rows."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(4, 13, 400)
    X = rng.standard_normal((400, 12, 1)).astype(np.float32)
    task = rnnlab.Task.from_arrays(X, rng.integers(0, 2, 400), lengths=lengths)
    model = rnnlab.SequenceClassifier(1, 4, 2, num_layers=1, seed=0)
    a = analyze(model, task, fp_starts=8, fp_rounds=1)
    kept = task.test.lengths >= int(np.median(task.test.lengths))
    assert not kept.all() and (a.arrays["label"] == task.test.y[kept]).all()
