"""NeuroGym tasks: the adapter against a stand-in environment (every suite), and NeuroGym itself
where it is installed (its own virtual environment in CI: .ci/run)."""

import importlib.util
import types

import numpy as np
import pytest

import rnnlab.data.neurogym as ng
from rnnlab.cli import main
from rnnlab.data.task import Task
from rnnlab.errors import InputError
from rnnlab.training.evaluate import score
from rnnlab.training.loop import Trainer


class Sign2AFC:
    """A stand-in NeuroGym trial environment: fixate 2 steps, noisy evidence for 3-6 steps (a random
    duration, so trials differ in length), then one decision step: 1 if the evidence was negative,
    2 if positive. ob = (fixation, evidence)."""

    def __init__(self, noise=0.5, fixate=2, shortest=3, longest=6):
        self.noise, self.fixate, self.shortest, self.longest = noise, fixate, shortest, longest
        self.action_space = types.SimpleNamespace(n=3)
        self.rng = np.random.RandomState(0)

    @property
    def unwrapped(self):
        return self

    def seed(self, seed=None):
        self.rng = np.random.RandomState(seed)

    def new_trial(self):
        steps = self.rng.randint(self.shortest, self.longest + 1)
        sign = self.rng.choice([-1.0, 1.0])
        T = self.fixate + steps + 1
        self.ob = np.zeros((T, 2), np.float32)
        self.ob[:-1, 0] = 1.0
        self.ob[self.fixate:self.fixate + steps, 1] = 0.4 * sign + self.noise * self.rng.randn(steps)
        self.gt = np.zeros(T, np.int64)
        self.gt[-1] = 1 if sign < 0 else 2
        return {"sign": sign}


@pytest.fixture
def fake_neurogym(monkeypatch):
    made = []

    def make(env_id, **kwargs):
        if env_id != "Sign2AFC-v0":
            raise AssertionError("the adapter checks the name first")
        env = Sign2AFC(**kwargs)
        made.append(kwargs)
        return env
    module = types.SimpleNamespace(make=make, envs=types.SimpleNamespace(registration=types.SimpleNamespace(
        all_envs=lambda: ["Sign2AFC-v0", "PerceptualDecisionMaking-v0"])))
    monkeypatch.setattr(ng, "neurogym_module", lambda: module)
    return made


def test_a_trial_is_one_padded_sequence_scored_at_its_decision(fake_neurogym):
    task = Task.from_neurogym("Sign2AFC-v0", noise=0.25, test_size=300, seed=3)
    assert fake_neurogym[-1] == {"noise": 0.25}
    assert task.kind == "tag" and task.metric == "decision" and task.output_size == 3
    X, y, lengths = task.test.X, task.test.y, task.test.lengths
    assert X.shape == (300, 9, 2) and set(np.unique(lengths)) == {6, 7, 8, 9}
    rows = np.arange(300)
    assert set(np.unique(y[rows, lengths - 1])) == {1, 2}                  # the decision is each trial's last step
    assert (y[np.arange(9)[None, :] >= lengths[:, None]] == 0).all()     # padding: zeros, never scored
    assert (X[np.arange(9)[None, :] >= lengths[:, None]] == 0).all()
    decisions = y[rows, lengths - 1]
    assert task.baseline == pytest.approx(np.bincount(decisions).max() / 300)
    assert task.describe()["metric"] == "decision"
    # the same seed draws the same held-out trials; batches come from the batch stream's generator
    again = Task.from_neurogym("Sign2AFC-v0", {"noise": 0.25}, test_size=300, seed=3)
    assert np.array_equal(again.test.X, X)
    a = task.batch(np.random.default_rng(5), 16)
    b = task.batch(np.random.default_rng(5), 16)
    assert all(np.array_equal(p, q) for p, q in zip(a, b)) and a[0].shape[1] == 9


def test_decision_accuracy_reads_each_trials_last_valid_step_only():
    y = np.array([[0, 0, 2, 0], [0, 0, 0, 1]])
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    right_at_the_end = np.zeros((2, 4, 3))
    right_at_the_end[:, :, 1] = 1.0                         # "1" everywhere: wrong on every fixation step
    right_at_the_end[0, 2] = [0, 0, 5]                      # trial 0's decision is its 3rd step
    assert score("decision", right_at_the_end, y, mask) == (2.0, 2)
    assert score("acc", right_at_the_end, y, mask)[0] == 2.0     # per-step accuracy: 2 of 7 steps
    wrong = right_at_the_end.copy()
    wrong[1, 3] = [0, 0, 5]
    assert score("decision", wrong, y, mask) == (1.0, 2)


def test_training_on_a_neurogym_task_learns_the_decision(fake_neurogym):
    from rnnlab.training.config import TrainConfig
    cfg = TrainConfig(task="neurogym:Sign2AFC-v0", model="gru", hidden=16, layers=1, dropout=0.0, lr=1e-2,
                      epochs=12, batch_size=32, batches_per_epoch=10, test_size=300, checkpoint_every=0,
                      probe_every=0, env_kwargs='{"noise": 0.3}')
    trainer = Trainer(config=cfg)
    summary = trainer.fit()
    assert trainer.task.metric == "decision" and trainer.task.settings["env_kwargs"] == '{"noise": 0.3}'
    assert summary["best_test_decision"] > 0.9, summary


def test_the_default_fixation_weight_lets_a_network_answer_where_fixation_fills_the_trial(fake_neurogym):
    """Trials of 19-26 steps with one decision step, as in NeuroGym's own tasks (ContextDecisionMaking:
    about one in ten): with the default weight on fixation steps (0.05, as NeuroGym's example) a GRU
    decides right within 4 epochs; weighted 1 like a choice, it answered "fixate" at every decision
    (0% after 5 epochs)."""
    from rnnlab.training.config import TrainConfig
    cfg = TrainConfig(task="neurogym:Sign2AFC-v0", model="gru", hidden=16, layers=1, dropout=0.0, lr=1e-2,
                      epochs=4, batch_size=32, batches_per_epoch=10, test_size=300, checkpoint_every=0,
                      probe_every=0, env_kwargs='{"noise": 0.3, "fixate": 10, "shortest": 8, "longest": 15}')
    trainer = Trainer(config=cfg)
    assert trainer.loss.class_weights == (ng.FIXATION_WEIGHT, 1.0, 1.0) == (0.05, 1.0, 1.0)
    assert trainer.fit()["best_test_decision"] > 0.9


def test_a_neurogym_run_from_the_command_line(fake_neurogym, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "neurogym:Sign2AFC-v0", "--model", "gru", "--hidden", "8", "--layers", "1",
                 "--epochs", "2", "--batches-per-epoch", "3", "--test-size", "50", "--no-report",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "decision accuracy" in text and (out / "summary.json").exists()
    assert main(["train", "--task", "neurogym:Nope-v0", "--out", str(tmp_path / "x")]) == 2
    assert "NeuroGym has no task 'Nope-v0'" in capsys.readouterr().err


def test_a_neurogym_task_cannot_take_a_curriculum(fake_neurogym):
    task = Task.from_neurogym("Sign2AFC-v0", test_size=20)
    with pytest.raises(InputError, match="cannot make sequences of another length"):
        task.at_length(5)


# ---------------------------------------------------------------- NeuroGym itself
needs_neurogym = pytest.mark.skipif(importlib.util.find_spec("neurogym") is None,
                                    reason="NeuroGym is not installed (pip install 'rnnlab[neurogym]')")


@needs_neurogym
def test_neurogym_tasks_have_the_trial_structure_rnnlab_reads():
    task = Task.from_neurogym("PerceptualDecisionMaking-v0", test_size=200)
    assert task.input_size == 3 and task.output_size == 3 and task.metric == "decision"
    rows = np.arange(200)
    assert set(np.unique(task.test.y[rows, task.test.lengths - 1])) == {1, 2}
    assert 0.4 < task.baseline < 0.6
    cdm = Task.from_neurogym("ContextDecisionMaking-v0", use_expl_context=True, test_size=200)
    assert cdm.input_size == 7 and len(np.unique(cdm.test.lengths)) > 3        # a random delay
    with pytest.raises(InputError, match="does not take"):
        Task.from_neurogym("PerceptualDecisionMaking-v0", no_such_argument=1)


NEUROGYM_TARGETS = [  # (task, its arguments, decision accuracy to reach at seed 0, where the bar comes from)
    ("PerceptualDecisionMaking-v0", "", 0.83),            # NeuroGym's PyTorch example: 0.83 over 200 trials
    ("ContextDecisionMaking-v0", '{"use_expl_context": true}', 0.927),   # its CDM example: 0.927, 1000 trials
    ("DelayMatchSample-v0", "", 0.95),                    # no example prints one; chance is 50%
    ("DelayComparison-v0", "", 0.95),                     # no example prints one; chance is 50%
]


@needs_neurogym
@pytest.mark.slow
@pytest.mark.parametrize("env_id,kwargs,target", NEUROGYM_TARGETS, ids=[t for t, _, _ in NEUROGYM_TARGETS])
def test_neurogym_tasks_train_to_what_neurogym_reports(env_id, kwargs, target):
    """The README's recipe (benchmarks/readme_numbers.py: NEUROGYM_RECIPE), seed 0, held-out trials."""
    import importlib.util as iu
    import pathlib
    spec = iu.spec_from_file_location("readme_numbers", pathlib.Path(__file__).parents[2] / "benchmarks"
                                      / "readme_numbers.py")
    script = iu.module_from_spec(spec)
    spec.loader.exec_module(script)
    summary = Trainer(config=script.neurogym_config(env_id, kwargs, 0).replace(probe_every=0)).fit()
    assert summary["final_test_decision"] >= target, summary


@needs_neurogym
@pytest.mark.slow
def test_the_readmes_neurogym_numbers_rederive():
    """CI re-runs the README's NeuroGym block (12 runs, two at a time) and fails when a number
    leaves the spread the README states (benchmarks/readme_numbers.py --check)."""
    import pathlib
    import subprocess
    import sys
    script = pathlib.Path(__file__).parents[2] / "benchmarks" / "readme_numbers.py"
    r = subprocess.run([sys.executable, str(script), "--check", "neurogym"], capture_output=True, text=True,
                       timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


@needs_neurogym
@pytest.mark.slow
def test_the_readmes_rate_network_numbers_rederive():
    """CI re-runs the README's excitatory-inhibitory rate networks (9 runs, two at a time) and fails
    when a number leaves the spread the README states."""
    import pathlib
    import subprocess
    import sys
    script = pathlib.Path(__file__).parents[2] / "benchmarks" / "readme_numbers.py"
    r = subprocess.run([sys.executable, str(script), "--check", "rate_networks"], capture_output=True, text=True,
                       timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_the_readmes_rate_networks_reach_the_grus_accuracy():
    """Issue 31's bar, read from the README's own blocks: on each task the GRU was trained on, the
    excitatory-inhibitory network's mean decision accuracy is at least the GRU's."""
    import pathlib
    import re
    text = (pathlib.Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")

    def block(name):
        return re.search(rf"<!-- numbers: {name} -->(.*?)<!-- /numbers: {name} -->", text, re.S).group(1)
    gru = {row.split("|")[1].strip(): float(row.split("|")[4].split("±")[0])
           for row in block("neurogym").splitlines() if row.startswith("| ") and "±" in row}
    rows = [row.split("|") for row in block("rate_networks").splitlines() if "E-I 80/20" in row]
    assert len(rows) == 2
    for cells in rows:
        task, mean = cells[1].strip(), float(cells[5].split("±")[0])
        assert mean >= gru[task], (task, mean, gru[task])
        assert cells[7].strip() == f"{gru[task]:.1f}%"          # the column quotes the GRU's block


def fake_package() -> dict:
    """The stand-in as an installable ``neurogym`` package: this module's Sign2AFC, its source
    written out, and the two entry points rnnlab reads."""
    import inspect
    return {"neurogym/__init__.py": "import types\n\nimport numpy as np\n\n__version__ = 'stand-in'\n\n\n"
                                    + inspect.getsource(Sign2AFC)
                                    + "\n\ndef make(env_id, **kwargs):\n    return Sign2AFC(**kwargs)\n",
            "neurogym/envs/__init__.py": "",
            "neurogym/envs/registration.py": "def all_envs():\n    return ['Sign2AFC-v0']\n"}


def test_a_neurogym_sweep_writes_its_table_page_and_figures(tmp_path, monkeypatch):
    """The sweep's workers are fresh processes, so the stand-in is a package on the path they inherit."""
    for rel, text in fake_package().items():
        (tmp_path / "pkg" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / rel).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    for name in [m for m in __import__("sys").modules if m == "neurogym" or m.startswith("neurogym.")]:
        monkeypatch.delitem(__import__("sys").modules, name)
    out = tmp_path / "sw"
    assert main(["sweep", "--task", "neurogym:Sign2AFC-v0", "--grid", "lr=3e-3,1e-2", "--seeds", "2",
                 "--model", "gru", "--hidden", "8", "--layers", "1", "--epochs", "2", "--batches-per-epoch", "3",
                 "--test-size", "40", "--jobs", "1", "--out", str(out)]) == 0
    table = (out / "sweep.md").read_text()
    assert "decision" in table.lower() and table.count("\n| 0.0") >= 2
    assert (out / "sweep.html").is_file() and (out / "sweep.csv").read_text().count("\n") == 5
    assert list(out.glob("metric_vs_*.png"))


@pytest.mark.parametrize("kwargs, says", [
    ('{"dt": 0}', "dt is the time step in milliseconds and must be a positive number, got 0"),
    ('{"dt": -5}', "must be a positive number, got -5"),
    ('{"dt": "100"}', "must be a positive number, got '100'"),
    ('{"dt": true}', "must be a positive number, got True"),
    ('{"timing": {"stimulus": -500}}', "the timing of 'stimulus' must be a duration in ms"),
    ('{"timing": {"stimulus": ["uniform", [-100, 200]]}}', "got ['uniform', [-100, 200]]"),
    ('{"timing": {"stimulus": "abc"}}', "got 'abc'"),
    ('{"timing": 5}', "timing must map each period to its duration"),
    ('{"a":' * 30000 + "1" + "}" * 30000, "nested too deeply"),
])
def test_neurogym_settings_are_checked_before_a_task_is_made(kwargs, says):
    from rnnlab.training.config import TrainConfig
    with pytest.raises(InputError, match=None) as e:
        TrainConfig(task="neurogym:PerceptualDecisionMaking-v0", env_kwargs=kwargs)
    assert says in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("kwargs, says", [
    ({"fixate": 0, "shortest": 0, "longest": 0}, "makes trials of 1 step(s): a trial needs at least 2"),
    ({"fixate": 20_000}, "makes trials of 20,00"),
])
def test_settings_that_make_unusable_trials_are_refused_before_thousands_are_drawn(fake_neurogym, kwargs, says):
    with pytest.raises(InputError) as e:
        Task.from_neurogym("Sign2AFC-v0", kwargs, test_size=20)
    assert says in str(e.value)
    assert len(fake_neurogym) == 1                           # the task was made once, then refused
