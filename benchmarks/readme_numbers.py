"""Regenerate the README's measured numbers: each block between ``<!-- numbers: NAME -->`` and
``<!-- /numbers: NAME -->`` is this script's output for NAME, kept in ``docs/results/readme/NAME.md``.

    python benchmarks/readme_numbers.py [NAME ...]      # all blocks when none is named

    python benchmarks/readme_numbers.py --check [NAME ...]   # re-derive them; exit 1 if a number moved

``tests/test_readme.py`` checks that the README quotes each block's last output word for word, so
a number the README states is one this script printed, and (in CI) re-derives the blocks that fit
in its time with ``--check``: a number fails when it leaves the spread the README states for it
(``SPREAD``). Each block ends with the environment it was measured in. The blocks:

- ``presets``: final and best test accuracy of ``--preset seed`` and ``--preset better`` over
  five seeds (same data), with the median training seconds (two runs at a time on 2 cores);
- ``lr_sweep``: the seed task's learning-rate sensitivity map, as ``rnnlab sweep`` writes it
  (Adam over cells; plain SGD and SGD with momentum 0.9 for the tanh RNN);
- ``flipflop``: the 3-bit flip-flop preset, seeds 0 and 1: test MSE and the fixed points the
  analysis finds at zero input (Sussillo & Barak's cube: 8 stable, 12 + 6 + 1 saddles);
- ``cells``: interpretable cells of a 30-second char-LM, each unit chosen on one half of the
  held-out text and tested on the other beside a chance level;
- ``analysis``: what ``analyze`` measures on each preset's seed-0 model (roles, silencing each
  role next to a random group of the same size, fixed points);
- ``selection``: Mante et al.'s question on NeuroGym's ContextDecisionMaking, ten seeds of the
  same recipe per cell (GRU, tanh RNN): in each context, is there a line attractor, does the
  relevant evidence push the state along the slow mode more than the irrelevant one (selection
  vectors by their definition, at every accepted point), does that hold at 4x the search effort,
  and how does the network itself weigh the two (its choices regressed on each modality's
  evidence)? (needs ``rnnlab[neurogym]`` too);
- ``rate_networks``: excitatory-inhibitory continuous-time rate networks (``--model ctrnn --dale 0.8``)
  on PerceptualDecisionMaking and ContextDecisionMaking, three seeds, beside the GRU's accuracy in the
  ``neurogym`` block, and NeuroGym's E-I tutorial settings (needs ``rnnlab[neurogym]``);
- ``universality``: Maheswaranathan et al. (2019) on the 3-bit flip-flop: 10 seeds each of a tanh
  RNN, an LSTM and a GRU, compared by geometry, dynamics and fixed-point topology (``rnnlab
  similarity``), and its figure; ``universality_8``: the same with 8 units a network;
- ``neurogym``: decision accuracy on four NeuroGym tasks over three seeds, one recipe for all, next
  to what NeuroGym's own examples report. It needs ``rnnlab[neurogym]`` (NeuroGym pins NumPy 2.1,
  so it runs in a virtual environment of its own; the others run in either).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import multiprocessing as mp
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "docs" / "results" / "readme"
SEEDS = (0, 1, 2, 3, 4)


def environment() -> str:
    """The line each block ends with: what its numbers were measured on (a run's bits depend on
    NumPy, the BLAS library and its kernels, and the CPU)."""
    import platform

    import numpy as np
    from threadpoolctl import threadpool_info
    blas = next((i for i in threadpool_info() if i["user_api"] == "blas"), {})
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{ENVIRONMENT_MARK} Python {platform.python_version()}, NumPy {np.__version__}, "
            f"{blas.get('internal_api', 'no BLAS found')} {blas.get('version', '')} "
            f"({blas.get('architecture', '?')} kernels), {cpu}, {os.cpu_count()} cores._\n")


ENVIRONMENT_MARK = "_Measured with"


def block_pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- numbers: {name} -->\n)(.*?)(<!-- /numbers: {name} -->)", re.S)


def _train(job):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Trainer
    preset, seed = job
    return preset, seed, Trainer(config=PRESETS[preset].replace(seed=seed)).fit()


def presets() -> str:
    jobs = [(p, s) for p in ("seed", "better") for s in SEEDS]
    with mp.get_context("spawn").Pool(2) as pool:
        runs = pool.map(_train, jobs)
    model = {"seed": "2-layer tanh RNN, as published", "better": "1-layer ReLU IRNN, 8 units"}
    lines = ["| preset | model | params | final test acc | best test acc | training time |",
             "|---|---|---|---|---|---|",
             "| published seed | 2-layer tanh RNN | 13,314 | 93.20% | 93.70% | ~2.4 s |"]
    for preset in ("seed", "better"):
        rows = [s for p, _, s in runs if p == preset]
        final = [100 * s["final_test_acc"] for s in rows]
        best = [100 * s["best_test_acc"] for s in rows]
        secs = statistics.median(s["seconds"] for s in rows)
        bold = "**" if preset == "better" else ""
        lines.append(f"| `--preset {preset}` | {model[preset]} | {rows[0]['params']:,} | "
                     f"{bold}{statistics.mean(final):.2f} ± {statistics.stdev(final):.2f}%{bold} | "
                     f"{statistics.mean(best):.2f} ± {statistics.stdev(best):.2f}% | {secs:.1f} s |")
    return "\n".join(lines) + "\n"


def lr_sweep() -> str:
    from rnnlab.experiments.sweep import parse_grid, run_sweep, sweep_dir
    from rnnlab.training.config import PRESETS
    base = PRESETS["seed"]
    parts = []
    for title, cfg, specs in (
            ("Adam (the seed's optimizer), three cells", base,
             ["lr=1e-3,3e-3,1e-2,3e-2", "model=rnn,lstm,gru"]),
            ("plain SGD, tanh RNN", base.replace(optimizer="sgd"), ["lr=0.01,0.03,0.1,0.3"]),
            ("SGD with momentum 0.9, tanh RNN", base.replace(optimizer="sgd", momentum=0.9),
             ["lr=0.01,0.03,0.1,0.3"])):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            grid = parse_grid(specs, cfg)
            out, _ = sweep_dir(Path(tmp) / "sweep", cfg, grid, 3)
            run_sweep(cfg, grid, 3, out, jobs=2)
            seconds = time.perf_counter() - start
            table = (Path(tmp) / "sweep" / "sweep.md").read_text(encoding="utf-8").strip()
        command = " ".join(f"--grid {s}" for s in specs)
        if cfg.optimizer != base.optimizer:
            command = f"--optimizer sgd{' --momentum 0.9' if cfg.momentum else ''} " + command
        parts.append(f"{title} (`rnnlab sweep {command} --seeds 3`, {seconds:.0f} s):\n\n{table}\n")
    return "\n".join(parts)


def _flipflop(seed):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from rnnlab.analysis.analyze import analyze
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Trainer
    t = Trainer(config=PRESETS["flipflop"].replace(seed=seed))
    summary = t.fit()
    fp = analyze(t.model, t.task).json["fixed_points"]
    return seed, summary["final_test_mse"], fp["counts"]["types"], fp["decoded"]["distinct_states"]


def flipflop() -> str:
    with mp.get_context("spawn").Pool(2) as pool:
        runs = pool.map(_flipflop, (0, 1))
    lines = ["| seed | test MSE | stable points | saddles of index 1 | index 2 | index 3 | distinct memories "
             "decoded |", "|---|---|---|---|---|---|---|"]
    for seed, mse, types, memories in runs:
        counts = [types.get(k, 0) for k in ("stable", "saddle index 1", "saddle index 2", "saddle index 3")]
        lines.append(f"| {seed} | {mse:.4f} | " + " | ".join(map(str, counts)) + f" | {memories} of 8 |")
    return "\n".join(lines) + "\n"


def analysis() -> str:
    from rnnlab.analysis.analyze import analyze
    from rnnlab.data.metrics import METRICS
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Trainer
    lines = ["| model | roles | silencing a role (a random group of its size) | fixed and slow points at zero input |",
             "|---|---|---|---|"]
    label = {"seed": "seed preset (2 x 64 tanh)", "better": "better preset (8 ReLU)"}
    for preset in ("seed", "better"):
        t = Trainer(config=PRESETS[preset])
        t.fit()
        a = analyze(t.model, t.task).json
        roles = ", ".join(f"{r} {n}" for r, n in a["role_counts"].items() if n)
        m = METRICS[t.metric]
        silenced = "; ".join(
            f"{r['group']} ({r['units']}): worse by {m.format_change(r['drop'])} "
            f"({'no control' if r['random_same_size_drop'] is None else m.format_change(r['random_same_size_drop'])})"
            for r in a["ablation"][1:])
        fp = a["fixed_points"]["summary"].split(";")[0]
        ca = a["continuous_attractor"]
        lines.append(f"| {label[preset]} | {roles} | {silenced} | {fp}; continuous attractor: {ca['kind'] or 'none'}"
                     f" ({ca['reason']}) |")
    return "\n".join(lines) + "\n"


def cells() -> str:
    """Interpretable cells of a 30-second char-LM (the ``charlm`` preset, smaller and shorter): per
    state of the text, the unit chosen on one half of the held-out text, its r there and on the
    other half, and the chance level."""
    from rnnlab.analysis.text_cells import interpretable_cells
    from rnnlab.training.config import PRESETS
    from rnnlab.training.loop import Trainer
    t = Trainer(config=PRESETS["charlm"].replace(hidden=128, epochs=12, batches_per_epoch=60))
    summary = t.fit()
    found = interpretable_cells(t.model, t.task.test.X, t.task.vocab)
    lines = [f"`charlm` preset with `--hidden 128 --epochs 12 --batches-per-epoch 60`: "
             f"{summary['final_test_bpc']:.2f} bits/char; {found['characters']:,} held-out characters, units "
             f"chosen on characters 0-{found['held_out'][0]:,} and tested on the rest.", "",
             "| state of the text | unit chosen | r where chosen | r held out | chance level | beyond chance |",
             "|---|---|---|---|---|---|"]
    for h in found["hypotheses"]:
        if "unit" not in h:
            lines.append(f"| {h['name']} | - | - | - | - | untested |")
            continue
        lines.append(f"| {h['name']} | {h['state']}[{h['unit']}] | {h['selection_r']:+.2f} | {h['held_out_r']:+.2f} | "
                     f"{h['chance']['level']:.2f} | {'yes' if h['above_chance'] else 'no'} |")
    return "\n".join(lines) + "\n"


# NeuroGym tasks, their arguments, and the decision accuracy NeuroGym's own examples printed (None:
# no example prints one). PerceptualDecisionMaking: examples/example_neurogym_pytorch.ipynb, 200
# trials; ContextDecisionMaking: docs/examples/contextdecisionmaking.ipynb, 1000 trials.
NEUROGYM_TASKS = [("PerceptualDecisionMaking-v0", "", 0.83),
                  ("ContextDecisionMaking-v0", '{"use_expl_context": true}', 0.927),
                  ("DelayMatchSample-v0", "", None),
                  ("DelayComparison-v0", "", None)]
NEUROGYM_RECIPE = dict(model="gru", hidden=64, layers=1, dropout=0.0, lr=3e-3, schedule="cosine", clip=1.0,
                       epochs=40, batch_size=32, batches_per_epoch=20, test_size=1000, checkpoint_every=0)
NEUROGYM_SEEDS = (0, 1, 2)


def neurogym_config(env_id: str, env_kwargs: str, seed: int):
    from rnnlab.training.config import TrainConfig
    return TrainConfig(task=f"neurogym:{env_id}", env_kwargs=env_kwargs, seed=seed, **NEUROGYM_RECIPE)


def _train_neurogym(job):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from rnnlab.training.loop import Trainer
    env_id, kwargs, seed = job
    trainer = Trainer(config=neurogym_config(env_id, kwargs, seed))
    return env_id, seed, trainer.fit(), trainer.task.baseline, trainer.task.seq_length


def neurogym() -> str:
    from rnnlab.data.neurogym import neurogym_module
    neurogym_module()                                   # says how to install it, before any work
    jobs = [(t, k, s) for t, k, _ in NEUROGYM_TASKS for s in NEUROGYM_SEEDS]
    with mp.get_context("spawn").Pool(2) as pool:
        runs = pool.map(_train_neurogym, jobs)
    lines = ["| task | arguments | steps | decision accuracy, 3 seeds | worst seed | NeuroGym's example | "
             "most frequent answer | training time |",
             "|---|---|---|---|---|---|---|---|"]
    for env_id, kwargs, reported in NEUROGYM_TASKS:
        rows = [(s, b, T) for t, _, s, b, T in runs if t == env_id]
        final = [100 * s["final_test_decision"] for s, _, _ in rows]
        secs = statistics.median(s["seconds"] for s, _, _ in rows)
        lines.append(f"| {env_id} | {kwargs.replace('|', '/') or '-'} | {rows[0][2]} | "
                     f"{statistics.mean(final):.1f} ± {statistics.stdev(final):.1f}% | {min(final):.1f}% | "
                     f"{'-' if reported is None else f'{100 * reported:.1f}%'} | {100 * rows[0][1]:.1f}% | "
                     f"{secs:.1f} s |")
    return "\n".join(lines) + "\n"


# Excitatory-inhibitory rate networks (Song, Yang & Wang 2016) on NeuroGym's decision tasks: 80% excitatory
# units, readout from them alone, no self-connections, recurrent noise, a rate penalty (what the README
# says of the settings tried). ContextDecisionMaking runs at NeuroGym's 100 ms step (tau 200 ms) for 250
# epochs: at 20 ms its delay of up to 3 s is 150 steps, and at 100 epochs one seed in three stayed on the
# plateau of answering without the evidence.
RATE_RECIPE = dict(model="ctrnn", nonlinearity="relu", hidden=64, layers=1, dropout=0.0, init="pytorch", dale=0.8,
                   readout="excitatory", self_connections=False, rec_noise=0.05, rate_l2=0.1, lr=2e-3,
                   schedule="cosine", clip=1.0, epochs=100, batch_size=32, batches_per_epoch=20, test_size=1000,
                   checkpoint_every=0, probe_every=0)
# NeuroGym's excitatory-inhibitory tutorial (gyyang/nn-brain EI_RNN.ipynb, linked from NeuroGym's docs): its
# task timing, 50 units, 80% excitatory read out alone, noise 0.15, dt 20 / tau 100 ms, Adam 0.01, 16 trials
# a batch; no rate penalty.
TUTORIAL_KWARGS = ('{"dt": 20, "timing": {"fixation": ["choice", [50, 100, 200, 400]], '
                   '"stimulus": ["choice", [100, 200, 400, 800]]}}')
RATE_ROWS = [  # (task, NeuroGym arguments, the recipe's changes, what the row is); the first two are the
    # GRU's tasks in the neurogym block (the same trials in ms: NeuroGym scales its noise with dt)
    ("PerceptualDecisionMaking-v0", '{"dt": 20}', dict(dt=20, tau=100), "E-I 80/20, 64 units"),
    ("ContextDecisionMaking-v0", '{"use_expl_context": true}', dict(dt=100, tau=200, epochs=250),
     "E-I 80/20, 64 units"),
    ("PerceptualDecisionMaking-v0", TUTORIAL_KWARGS,
     dict(dt=20, tau=100, hidden=50, rec_noise=0.15, self_connections=True, rate_l2=0.0, lr=1e-2, batch_size=16),
     "NeuroGym's E-I tutorial settings"),
]


def rate_config(row: int, seed: int):
    from rnnlab.training.config import TrainConfig
    env_id, kwargs, changes, _ = RATE_ROWS[row]
    return TrainConfig(task=f"neurogym:{env_id}", env_kwargs=kwargs, seed=seed, **{**RATE_RECIPE, **changes})


def _train_rate(job):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from rnnlab.training.loop import Trainer
    row, seed = job
    trainer = Trainer(config=rate_config(row, seed))
    return row, seed, trainer.fit(), trainer.task.seq_length


def gru_accuracy(env_id: str) -> str:
    """The GRU's mean decision accuracy on ``env_id`` as the README's neurogym block states it."""
    for line in (RESULTS / "neurogym.md").read_text(encoding="utf-8").splitlines():
        if line.startswith(f"| {env_id} |"):
            return line.split("|")[4].split("±")[0].strip() + "%"
    return "-"


def rate_networks() -> str:
    from rnnlab.data.neurogym import neurogym_module
    neurogym_module()
    jobs = [(r, s) for r in range(len(RATE_ROWS)) for s in NEUROGYM_SEEDS]
    with mp.get_context("spawn").Pool(2) as pool:
        runs = pool.map(_train_rate, jobs)
    lines = ["| task | network | dt / tau | steps | decision accuracy, 3 seeds | worst seed | GRU in the README | "
             "training time |", "|---|---|---|---|---|---|---|---|"]
    for r, (env_id, kwargs, changes, what) in enumerate(RATE_ROWS):
        rows = [(s, T) for row, _, s, T in runs if row == r]
        final = [100 * s["final_test_decision"] for s, _ in rows]
        secs = statistics.median(s["seconds"] for s, _ in rows)
        gru = gru_accuracy(env_id) if r < 2 else "-"
        lines.append(f"| {env_id} | {what} | {changes['dt']} / {changes['tau']} ms | {rows[0][1]} | "
                     f"{statistics.mean(final):.1f} ± {statistics.stdev(final):.1f}% | {min(final):.1f}% | {gru} | "
                     f"{secs:.1f} s |")
    return "\n".join(lines) + "\n"


# The study's task: explicit context, and a 2 s stimulus (20 steps at dt 100) with no delay, so that
# evidence must be integrated over many steps (the default 750 ms is 7 steps).
SELECTION_KWARGS = '{"use_expl_context": true, "timing": {"stimulus": 2000, "delay": 0}}'


SELECTION_SEEDS = tuple(range(10))
# the stimulus period's input at zero evidence (every stimulus at its mean, 0.5) in each context; ob =
# fixation, stim1 and stim2 of modality 1, the same of modality 2, context 1, context 2
SELECTION_INPUTS = [[0, .5, .5, .5, .5, 1, 0], [0, .5, .5, .5, .5, 0, 1]]


def universality(hidden: int = 64, name: str = "universality") -> str:
    """Maheswaranathan et al.'s question on the 3-bit flip-flop: 10 seeds each of a tanh RNN, an
    LSTM and a GRU (``hidden`` units), trained as ``rnnlab sweep`` trains them, compared by ``rnnlab
    similarity``; the figure is written to docs/results/readme/NAME.png."""
    import shutil

    from rnnlab.experiments.similarity import compare_networks, nearest_neighbour_accuracy, write_similarity
    from rnnlab.experiments.sweep import parse_grid, run_sweep, sweep_dir
    from rnnlab.training.config import PRESETS
    base, specs, seeds = PRESETS["flipflop"].replace(hidden=hidden), ["model=rnn,lstm,gru"], 10
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        grid = parse_grid(specs, base)
        out, _ = sweep_dir(Path(tmp) / "universality", base, grid, seeds)
        run_sweep(base, grid, seeds, out, jobs=2)
        trained = time.perf_counter() - start
        start = time.perf_counter()
        sim = compare_networks([out], jobs=2)
        compared = time.perf_counter() - start
        write_similarity(sim, out / "similarity")
        RESULTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "similarity" / "similarity.png", RESULTS / f"{name}.png")
        import json
        mse = {f.parent.name: json.loads((f).read_text())["final_test_mse"]
               for f in (out / "runs").glob("*/summary.json")}
    models = [f["model"] for f in sim.fields]
    sigs = sim.settings["signatures"]
    corners = sorted("".join(c) for c in itertools.product("+-", repeat=3))
    cube_edges = sorted((a, b) for a, b in itertools.combinations(corners, 2) if sum(x != y for x, y in zip(a, b)) == 1)
    lines = ["| model | networks | test MSE | 8 stable points, 12 + 6 + 1 saddles | 8 memories | "
             "the cube's 12 edges | memories held by a ghost |", "|---|---|---|---|---|---|---|"]
    for m in ("rnn", "lstm", "gru"):
        idx = [i for i, x in enumerate(models) if x == m]
        err = [mse[sim.names[i].split("/")[-1]] for i in idx]
        cube = sum(sigs[i]["counts"] == {"0": 8, "1": 12, "2": 6, "3": 1} for i in idx)
        mem = sum(len(set(sigs[i]["memories"])) == 8 for i in idx)
        edges = sum(sorted(map(tuple, sigs[i]["edges"])) == cube_edges for i in idx)
        ghosts = sum(len(sigs[i].get("ghosts", [])) for i in idx)
        lines.append(f"| {m} | {len(idx)} | {statistics.mean(err):.4f} ± {statistics.stdev(err):.4f} | "
                     f"{cube} | {mem} | {edges} | {ghosts} |")
    held = [g for s in sigs for g in s.get("ghosts", [])]
    if held:
        lines += ["", f"The {len(held)} memories held by a ghost: the state creeps at "
                  f"{min(g['speed'] for g in held):.1e} to {max(g['speed'] for g in held):.1e} a step there and "
                  f"leaks to a neighbouring memory {min(g['steps'] for g in held)} to {max(g['steps'] for g in held)} "
                  f"steps after the trial ends (trials are {sim.settings['steps']} steps)."]
    per = {m: statistics.median(s["seconds"] for s, x in zip(sigs, models) if x == m) for m in ("rnn", "lstm", "gru")}
    lines += ["", "| distance | a network's nearest other network has its architecture |", "|---|---|"]
    names = {"cca": "geometry: CCA", "procrustes": "geometry: Procrustes shape", "dsa": "dynamics: DSA",
             "topology": "fixed-point topology"}
    for k, D in sim.matrices.items():
        lines.append(f"| {names[k]} | {100 * nearest_neighbour_accuracy(D, models):.0f}% of 30 |")
    lines += ["", f"Training the 30 networks of {hidden} units (`rnnlab sweep`, {trained:.0f} s) and comparing them "
              f"(`rnnlab similarity`, {compared:.0f} s) on 2 cores; a network's fixed-point signature, the median "
              f"by architecture: " + ", ".join(f"{m} (in {per[m]:.2f} s)" for m in per) + "."]
    return "\n".join(lines) + "\n"


def behavioural_weights(model, task) -> list[dict]:
    """The network's own weighting of each modality's evidence, per context: its choice at each
    held-out trial's last step (action 1 or 2) regressed by logistic regression on the trial's
    evidence of modality 1 and of modality 2 (stim1 - stim2, averaged over the steps where the
    stimuli are on); the ratio of the relevant weight to the irrelevant one."""
    import numpy as np

    from rnnlab.training.evaluate import forward
    X, lengths = task.test.X.astype(np.float64), task.test.lengths
    out = forward(model, task.test.X, lengths)
    last = (lengths - 1) if lengths is not None else np.full(len(X), X.shape[1] - 1)
    choice = out[np.arange(len(X)), last].argmax(axis=-1)                # 0 fixate, 1 or 2
    on = X[..., 1:5].sum(axis=-1) > 0                                    # stimulus steps
    mean = lambda d: (X[..., d] * on).sum(axis=1) / np.maximum(on.sum(axis=1), 1)   # noqa: E731
    evidence = np.stack([mean(1) - mean(2), mean(3) - mean(4)], axis=1)  # (N, 2)
    context = X[:, :, 5:7].max(axis=1).argmax(axis=1)                    # 0 or 1
    rows = []
    for c in (0, 1):
        keep = (context == c) & (choice > 0)
        A = np.column_stack([np.ones(keep.sum()), evidence[keep]])
        y = (choice[keep] == 1).astype(float)
        w = np.zeros(3)
        for _ in range(50):                                              # Newton (IRLS), a small ridge
            p = 1 / (1 + np.exp(-A @ w))
            w -= np.linalg.solve(A.T @ (A * (p * (1 - p))[:, None]) + 1e-6 * np.eye(3), A.T @ (p - y))
        rel, irr = abs(w[1 + c]), abs(w[2 - c])
        rows.append({"context": c + 1, "trials": int(keep.sum()), "relevant": float(rel), "irrelevant": float(irr),
                     "ratio": float(rel / irr) if irr > 0 else float("inf")})
    return rows


def _selection_ratios(fp, context: int):
    """Per accepted point of the selection, relevant over irrelevant evidence's push along the slow
    mode (the evidence of a modality is stim1 - stim2: inputs 1 - 2 and 3 - 4)."""
    out = []
    for r in fp["selection"]["per_point"]:
        if "refused" in r:
            continue
        pr = r["projections"]
        ev = [abs(pr[1] - pr[2]), abs(pr[3] - pr[4])]
        rel, irr = ev[context], ev[1 - context]
        out.append(rel / irr if irr > 0 else float("inf"))
    return out


def _selection_study(job):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import numpy as np

    from rnnlab.analysis.analyze import analyze
    from rnnlab.training.loop import Trainer
    model, seed = job
    trainer = Trainer(config=neurogym_config("ContextDecisionMaking-v0", SELECTION_KWARGS, seed).replace(model=model))
    summary = trainer.fit()
    inputs = [np.array(x, dtype=float) for x in SELECTION_INPUTS]
    effort = {}
    for name, starts in (("default", None), ("4x", 4 * 512)):
        a = analyze(trainer.model, trainer.task, fp_input=inputs, fp_starts=starts).json
        effort[name] = [{"attractor": fp["continuous_attractor"]["kind"], "summary": fp["summary"].split(";")[0],
                         "accepted": fp["selection"]["accepted"], "points": fp["selection"]["points"],
                         "refused": fp["selection"]["refused_reasons"], "ratios": _selection_ratios(fp, c),
                         "trials": fp["condition"]["trials"]}
                        for c, fp in enumerate(a["fixed_points_by_input"])]
    return model, seed, summary["final_test_decision"], effort, behavioural_weights(trainer.model, trainer.task)


def _median(xs):
    import statistics
    return statistics.median(xs) if xs else None


def selection() -> str:
    from rnnlab.data.neurogym import neurogym_module
    neurogym_module()
    jobs = [(m, s) for m in ("gru", "rnn") for s in SELECTION_SEEDS]
    with mp.get_context("spawn").Pool(2) as pool:
        runs = pool.map(_selection_study, jobs)
    fmt = lambda v: "-" if v is None else f"{v:.2g}x"                    # noqa: E731
    lines = ["| cell | seed | decision accuracy | context | trials | continuous attractor | selection vectors "
             "(accepted of points) | relevant / irrelevant push, median over points | at 4x search effort | "
             "behaviour: relevant / irrelevant weight |", "|---|---|---|---|---|---|---|---|---|---|"]
    summary = {}
    for model, seed, acc, effort, behaviour in runs:
        for c in (0, 1):
            d, e, b = effort["default"][c], effort["4x"][c], behaviour[c]
            ratio, ratio4 = _median(d["ratios"]), _median(e["ratios"])
            lines.append(f"| {model} | {seed} | {100 * acc:.1f}% | {c + 1} | {d['trials']} | "
                         f"{d['attractor'] or 'none'} | {d['accepted']} of {d['points']} | {fmt(ratio)} | "
                         f"{fmt(ratio4)} | {b['ratio']:.3g}x |")
            summary.setdefault((model, c), []).append((d, ratio, ratio4, b["ratio"]))
    table = ["| cell | context | networks | with a line attractor | with selection vectors | relevant / irrelevant "
             "push: median (range) over networks | relevant larger | stable within 10% at 4x effort | behaviour: "
             "relevant / irrelevant weight, median (range) |", "|---|---|---|---|---|---|---|---|---|"]
    for (model, c), rows in sorted(summary.items()):
        ratios = [r for _, r, _, _ in rows if r is not None]
        stable = [abs(r4 / r - 1) <= 0.1 for _, r, r4, _ in rows if r is not None and r4 is not None]
        beh = [b for *_, b in rows]
        spread = f"{_median(ratios):.2g}x ({min(ratios):.2g} to {max(ratios):.2g})" if ratios else "-"
        table.append(f"| {model} | {c + 1} | {len(rows)} | {sum(d['attractor'] == 'line' for d, *_ in rows)} | "
                     f"{len(ratios)} | {spread} | {sum(r > 1 for r in ratios)} of {len(ratios)} | "
                     f"{sum(stable)} of {len(stable)} | {_median(beh):.3g}x ({min(beh):.3g} to {max(beh):.3g}) |")
    return "\n".join(table) + "\n\nEach network:\n\n" + "\n".join(lines) + "\n"


NEEDS_NEUROGYM = ("neurogym", "selection", "rate_networks")
BLOCKS = {"presets": presets, "lr_sweep": lr_sweep, "flipflop": flipflop, "analysis": analysis, "cells": cells,
          "neurogym": neurogym, "selection": selection, "rate_networks": rate_networks,
          "universality": universality, "universality_8": lambda: universality(8, "universality_8")}

# The spread within which a re-derived block must give the README's numbers (``check``):
# - a "mean ± sd" cell: the new mean within the README's mean ± that cell's sd (at least a tenth
#   of a point), and the new sd at most twice the README's (plus a tenth);
# - any other decimal number on a row with a "±" (the worst seed): within the row's largest sd;
# - decimal numbers elsewhere: "rel" (a fraction of the README's value) or one unit of the last
#   printed digit, whichever is larger (4.0e-02: one unit is 0.1e-02); whole numbers (counts)
#   and every word exactly, headers included;
# - columns named in "skip", and wall-clock seconds written "(N s)" in a line: not compared.
SPREAD = {"presets": {"rel": 0.0, "skip": {"training time"}},
          "lr_sweep": {"rel": 0.0, "skip": set()},
          "flipflop": {"rel": 0.1, "skip": set()},
          "analysis": {"rel": 0.1, "skip": set()},
          "cells": {"rel": 0.1, "skip": set()},
          "neurogym": {"rel": 0.0, "skip": {"training time"}},
          "selection": {"rel": 0.0, "skip": set()},
          "rate_networks": {"rel": 0.0, "skip": {"training time"}},
          "universality": {"rel": 0.0, "skip": set()}, "universality_8": {"rel": 0.0, "skip": set()}}
NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:e[-+]?\d+)?")
SECONDS = re.compile(r"(, |\(in )\d+(?:\.\d+)? s\)")    # wall time in a line: ", 151 s)" or "(in 0.4 s)"


def _rows(block: str) -> list[tuple[list[str], bool]]:
    """The block's rows as (cells, is a header): table rows split into cells, a header being the
    row above a |---| line; other lines one cell each, their wall seconds masked; the environment
    line left out."""
    out = []
    for line in block.strip().splitlines():
        if line.startswith("|") and set(line) <= set("|-: "):
            if out:
                out[-1] = (out[-1][0], True)
            continue
        if line.startswith(ENVIRONMENT_MARK) or not line.strip():
            continue
        if line.startswith("|"):
            out.append(([c.strip() for c in line.strip().strip("|").split("|")], False))
        else:
            out.append(([SECONDS.sub(r"\1N s)", line)], False))
    return out


def _value(token: str) -> float:
    return float(token.replace(",", ""))


def _one_digit(token: str) -> float:
    """One unit of the last printed digit of ``token`` (0.01 for 0.25; 1e-3 for 4.0e-02)."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return 10.0 ** (int(exponent or 0) - decimals)


def _close(x: str, y: str, allowed: float) -> bool:
    if "." not in x and "e" not in x.lower():
        return x == y                                  # a count
    return abs(_value(x) - _value(y)) <= allowed + 1e-12


def check(name: str, readme_block: str, fresh_block: str) -> list[str]:
    """Where ``fresh_block`` leaves the spread ``SPREAD[name]`` around ``readme_block``: one line each."""
    spread, problems = SPREAD[name], []
    old_rows, new_rows = _rows(readme_block), _rows(fresh_block)
    if len(old_rows) != len(new_rows):
        return [f"{name}: {len(new_rows)} rows re-derived against {len(old_rows)} in the README"]
    header = []
    for (old, is_header), (new, _) in zip(old_rows, new_rows):
        if is_header:
            header = old                                 # compared below, as words and numbers
        if len(old) != len(new):
            problems.append(f"{name}: row {old[0]!r} has {len(new)} cells, the README's {len(old)}")
            continue
        sds = [_value(m.group(1)) for c in old for m in [re.search(r"±\s*([\d.]+)", c)] if m]
        for col, (a, b) in enumerate(zip(old, new)):
            column = header[col] if len(old) == len(header) else ""
            if column in spread["skip"]:
                continue
            if NUMBER.sub("#", a) != NUMBER.sub("#", b):
                problems.append(f"{name}: {column or 'line'} {a!r} became {b!r}")
                continue
            pairs = list(zip(NUMBER.findall(a), NUMBER.findall(b)))
            if "±" in a and len(pairs) >= 2:
                (mean, new_mean), (sd, new_sd) = pairs[0], pairs[1]
                ok = _close(mean, new_mean, max(_value(sd), 0.1)) and _value(new_sd) <= 2 * _value(sd) + 0.1
            else:
                ok = all(_close(x, y, max(sds) if sds and "e" not in x.lower() else
                                max(spread["rel"] * abs(_value(x)), _one_digit(x))) for x, y in pairs)
            if not ok:
                problems.append(f"{name}: {column or 'line'} {a!r} re-derived as {b!r}, outside the "
                                "README's spread")
    return problems


def readme_block(name: str) -> str:
    (block,) = [m.group(2) for m in block_pattern(name).finditer(README.read_text(encoding="utf-8"))]
    return block


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help=f"blocks to regenerate: {', '.join(BLOCKS)} (default: all)")
    ap.add_argument("--check", action="store_true",
                    help="re-derive the blocks and compare them with the README instead of writing them")
    args = ap.parse_args()
    names = args.names or list(BLOCKS)
    if not args.names and importlib.util.find_spec("neurogym") is None:
        names = [n for n in names if n not in NEEDS_NEUROGYM]
        print(f"skipping {', '.join(NEEDS_NEUROGYM)}: they need rnnlab[neurogym], in an environment of its own")
    unknown = sorted(set(names) - set(BLOCKS))
    if unknown:
        ap.error(f"no block named {', '.join(unknown)}; the blocks are {', '.join(BLOCKS)}")
    if args.check:
        problems = []
        for name in names:
            fresh = BLOCKS[name]()
            print(f"== {name} (re-derived)\n{fresh}", flush=True)
            problems += check(name, readme_block(name), fresh)
        print("\n".join(problems) or f"every number of {', '.join(names)} is within the README's spread")
        sys.exit(1 if problems else 0)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in names:
        text = BLOCKS[name]() + "\n" + environment()
        print(f"== {name}\n{text}", flush=True)
        (RESULTS / f"{name}.md").write_text(text, encoding="utf-8")
        readme, n = block_pattern(name).subn(lambda m: m.group(1) + text + m.group(3),
                                             README.read_text(encoding="utf-8"))
        if n != 1:
            sys.exit(f"README.md has {n} blocks named {name}; it needs exactly one")
        README.write_text(readme, encoding="utf-8")


if __name__ == "__main__":
    main()
