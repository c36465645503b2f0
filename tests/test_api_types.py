"""Every public Python call given an argument of the wrong type or range says so in one sentence
(InputTypeError / InputError naming the argument and what it takes), before anything is trained or
written: no TypeError from deep inside, and nothing on disk."""

import numpy as np
import pytest

import rnnlab
from rnnlab.analysis.analyze import analyze
from rnnlab.errors import InputError, InputTypeError, RnnlabError
from rnnlab.runs.load import load_weights

CFG = rnnlab.TrainConfig(epochs=1, batches_per_epoch=1, train_size=50, test_size=20)
X = np.random.default_rng(0).standard_normal((40, 5, 2)).astype(np.float32)
TASK = rnnlab.Task.from_arrays(X, (X.sum(axis=(1, 2)) > 0).astype(np.int64))
HEAD = rnnlab.SequenceClassifier(2, 4, 2, 1)

CASES = {
    "train run_dir=123": (lambda d: rnnlab.train(config=CFG, run_dir=123), "run_dir must be a path"),
    "resume(None)": (lambda d: rnnlab.resume(None), "resume: run_dir must be a path"),
    "resume(123)": (lambda d: rnnlab.resume(123), "resume: run_dir must be a path"),
    "Trainer callbacks=Callback()": (lambda d: rnnlab.Trainer(config=CFG, callbacks=rnnlab.Callback()),
                                     "callbacks must be a list of callbacks"),
    "train callbacks=Callback()": (lambda d: rnnlab.train(config=CFG, run_dir=d / "r", callbacks=rnnlab.Callback()),
                                   "callbacks must be a list"),
    "Trainer optimizer='adam'": (lambda d: rnnlab.Trainer(config=CFG, optimizer="adam"),
                                 "set it in the config: TrainConfig(optimizer='adam')"),
    "train figure_workers='2'": (lambda d: rnnlab.train(config=CFG, run_dir=d / "r", figure_workers="2"),
                                 "figure_workers must be a whole number from 0 to 16"),
    "train figure_workers=-1": (lambda d: rnnlab.train(config=CFG, run_dir=d / "r", figure_workers=-1),
                                "figure_workers must be from 0 to 16"),
    "Task.from_neurogym(None)": (lambda d: rnnlab.Task.from_neurogym(None), "env_id must be a NeuroGym task's name"),
    "train_stack(config, dirs)": (lambda d: rnnlab.train_stack(CFG, [d / "a"]),
                                  "configs must be a list of TrainConfigs"),
    "train_stack(configs, 'e')": (lambda d: rnnlab.train_stack([CFG], "e"), "run_dirs must be a list"),
    "train_stack(configs, [None])": (lambda d: rnnlab.train_stack([CFG], [None]), "run_dirs must be a path"),
    "Trainer(bare RNN)": (lambda d: rnnlab.Trainer(TASK, rnnlab.RNN(2, 8), config=CFG),
                          "model is a bare RNN layer"),
    "train(bare GRU)": (lambda d: rnnlab.train(TASK, rnnlab.GRU(2, 8), config=CFG, run_dir=d / "r"),
                        "model is a bare GRU layer"),
    "train report='yes'": (lambda d: rnnlab.train(config=CFG, run_dir=d / "r", report="yes"),
                           "report must be True or False"),
    "train force='no'": (lambda d: rnnlab.train(config=CFG, run_dir=d / "r", force="no"),
                         "force must be True or False"),
    "StackTrainer([config])": (lambda d: rnnlab.StackTrainer([CFG]), "trainers must be Trainers, got a TrainConfig"),
    "StackTrainer(trainer)": (lambda d: rnnlab.StackTrainer(rnnlab.Trainer(config=CFG)),
                              "trainers must be a list of Trainers"),
    "analyze(model, None)": (lambda d: analyze(HEAD, None), "analyze: task must be an rnnlab Task"),
    "Task.from_arrays(X, 0-d y)": (lambda d: rnnlab.Task.from_arrays(X, np.array(1)), "y is a single number"),
    "load_weights(123, model)": (lambda d: load_weights(123, HEAD), "load_weights: run_dir must be a path"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_wrong_argument_is_one_sentence(name, tmp_path):
    call, says = CASES[name]
    with pytest.raises(RnnlabError) as e:
        call(tmp_path)
    assert isinstance(e.value, (InputError, InputTypeError)) and says in str(e.value)
    assert "\n" not in str(e.value) and not list(tmp_path.iterdir())        # nothing written
