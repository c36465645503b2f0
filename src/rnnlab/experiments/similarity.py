"""Do many networks solve one task the same way? ``compare_networks(paths)`` loads finished runs (or
every run of a sweep), feeds them the same probe trials drawn from their task, and measures the
distance between every pair three ways: geometry (CCA, Procrustes shape), dynamics (DSA) and
fixed-point topology (``rnnlab.analysis.similarity`` and ``rnnlab.analysis.topology`` do the
arithmetic); ``write_similarity`` writes the matrices (CSV, JSON), a 2-D embedding of the networks
(classical MDS) coloured by architecture or a swept field, and a page.
"""

from __future__ import annotations

import contextlib
import csv
import html
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnlab.analysis.dynamics import layer_states
from rnnlab.analysis.similarity import dsa_distances, geometry_distances
from rnnlab.checks import check_int
from rnnlab.errors import InputError, RnnlabError
from rnnlab.processes import local_executor
from rnnlab.runs.checkpoint import atomic_write_text
from rnnlab.runs.files import SWEEP_PAGE, SWEEP_PLAN, record_written
from rnnlab.runs.load import load_run

PROBE_SEED = 12345                      # which held-out trials probe every network (the same for all)


@dataclass
class Network:
    """One finished run, loaded: where it came from, its model and task, and the settings to colour by."""
    name: str
    run_dir: Path
    model: object
    task: object
    fields: dict = field(default_factory=dict)


def expand_paths(paths) -> list[tuple[str, Path]]:
    """Run directories and sweep directories (each of whose runs counts) -> (name, run_dir) pairs."""
    out = []
    for p in map(Path, paths):
        if (p / SWEEP_PLAN).is_file() and (p / "runs").is_dir():
            out += [(f"{p.name}/{r.name}", r) for r in sorted((p / "runs").iterdir()) if r.is_dir()]
        else:
            out.append((p.name, p))
    return out


def load_networks(paths) -> list[Network]:
    """Every run named or held in a named sweep, refused unless all have a recurrent state and were
    trained on the same task with the same input size."""
    nets, seen = [], {}
    for name, run_dir in expand_paths(paths):
        key = Path(run_dir).resolve()
        if key in seen:
            raise InputError(f"{run_dir} is named twice (also as {seen[key]}); name each run once")
        seen[key] = run_dir
        cfg, model, task = load_run(run_dir)
        if not hasattr(model, "rnn"):
            raise InputError(f"{run_dir} holds a {type(model).__name__}, which has no recurrent state to compare; "
                             "compare recurrent networks (rnn, lstm, gru, ctrnn)")
        nets.append(Network(name, Path(run_dir), model, task, cfg.to_dict()))
    if len(nets) < 2:
        raise InputError(f"comparing networks needs at least two runs, got {len(nets)}; name more run or sweep "
                         "directories")
    first = nets[0]
    for n in nets[1:]:
        if n.task.name != first.task.name or n.task.input_size != first.task.input_size:
            raise InputError(f"{n.run_dir} was trained on {n.task.name} with {n.task.input_size} inputs but "
                             f"{first.run_dir} on {first.task.name} with {first.task.input_size}; compare "
                             "networks trained on the same task")
    swept = {k for k in first.fields if len({str(n.fields[k]) for n in nets}) > 1}      # what differs
    for n in nets:
        n.fields = {k: v for k, v in n.fields.items() if k in swept or k == "model"}
    return nets


def probe_trials(task, trials: int) -> np.ndarray:
    """``trials`` held-out trials of the task, the same for every network: (N, T, D)."""
    X = task.test.X
    if trials > len(X):
        raise InputError(f"{trials} probe trials asked but the task holds {len(X)} held-out trials; ask for "
                         f"at most {len(X)}")
    idx = np.sort(np.random.default_rng(PROBE_SEED).choice(len(X), trials, replace=False))
    return np.asarray(X[idx])


def trajectories(net: Network, X) -> np.ndarray:
    """(N, T, H) states of the last layer that the readout sees (h; a CTRNN's rates r)."""
    return layer_states(net.model, X)[..., :net.model.rnn.hidden_size]


@dataclass
class Similarity:
    """Distances between every pair of networks, each (M, M), and the settings that made them."""
    names: list[str]
    fields: list[dict]
    matrices: dict[str, np.ndarray]
    settings: dict
    notes: list[str] = field(default_factory=list)


def _signature(model, task):
    """A network's fixed-point signature, with what the analysis warned of kept among its notes:
    from a worker process a warning would print with no word of which network it concerns."""
    from rnnlab.analysis.topology import fixed_point_signature  # start-up time: the search loads late
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sig = fixed_point_signature(model, task)
    sig.notes += [str(w.message) for w in caught if str(w.message) not in sig.notes]
    return sig


def _signature_of_run(run_dir: str) -> dict:
    """One run's fixed-point signature as JSON, in a worker process (``compare_networks``)."""
    _, model, task = load_run(run_dir)
    return _signature(model, task).to_json()


def _next_signature(pending, net) -> dict:
    from concurrent.futures.process import BrokenProcessPool  # start-up time: only with --jobs
    try:
        return next(pending)
    except BrokenProcessPool:
        raise RnnlabError(f"a worker process seeking the fixed points of {net.name} (or one after it) died, killed "
                          "or out of memory; run again with --jobs 1, or with fewer networks at once") from None


def compare_networks(paths, *, probe: int = 64, rank: int | None = None, n_delays: int = 1,
                     topology: bool = True, colour_by: str = "model", jobs: int = 1,
                     progress=None) -> Similarity:
    """Load the runs in ``paths`` and measure every pair's geometry, dynamics and topology distances.
    ``colour_by`` must be a field the runs differ in (or model); ``progress(step, done, total)``
    (``present.progress.StepProgress``) hears each step as it starts. ``jobs`` > 1: the fixed-point
    signatures, nearly all the time, are sought on that many worker processes (one BLAS thread
    each, as in this process: the same signatures, tested) while this one measures the rest."""
    check_int("jobs", jobs, minimum=1)
    say = progress or (lambda step, done, total: None)
    say("loading the runs", 0, None)
    nets = load_networks(paths)
    if colour_by not in nets[0].fields:
        raise InputError(f"colour by {colour_by!r}: these runs differ in {', '.join(sorted(nets[0].fields))}; "
                         "colour by one of those")
    X = probe_trials(nets[0].task, probe)
    with contextlib.ExitStack() as stack:
        pending = None
        if topology and jobs > 1:
            pool = stack.enter_context(local_executor(min(jobs, len(nets))))
            pending = pool.map(_signature_of_run, [str(n.run_dir) for n in nets])     # starts at once
        say(f"states of {len(nets)} networks on {len(X)} probe trials; CCA and Procrustes", 0, None)
        states = [trajectories(n, X) for n in nets]
        geo = geometry_distances(states)
        step = f"DSA: one operator per network, {len(nets) * (len(nets) - 1) // 2} pairs aligned"
        dyn = dsa_distances(states, n_delays=n_delays, rank=rank, progress=lambda done, total: say(step, done, total))
        matrices = {"cca": geo.cca, "procrustes": geo.procrustes_angular, "dsa": dyn.angular}
        settings = {"probe_trials": int(len(X)), "steps": int(X.shape[1]), "cca_components": geo.k,
                    "dsa_rank": dyn.fits[0].rank, "dsa_delays": n_delays}
        sim = Similarity([n.name for n in nets], [n.fields for n in nets], matrices, settings)
        if topology:
            from rnnlab.analysis import topology as topo  # start-up time: the fixed-point search loads late
            sigs = []
            for i, n in enumerate(nets):
                say("topology: fixed points of every network", i, len(nets))
                sigs.append(topo.TopologySignature.from_json(_next_signature(pending, n)) if pending is not None
                            else _signature(n.model, n.task))
                sim.notes += [f"{n.name}: {note}" for note in sigs[-1].notes]
            sim.matrices["topology"] = topo.topology_distances(sigs)["total"]
            sim.settings["signatures"] = [s.to_json() for s in sigs]
    return sim


def classical_mds(D: np.ndarray, dims: int = 2) -> np.ndarray:
    """Points (M, dims) whose Euclidean distances best match D in the classical (Torgerson) sense:
    the top eigenvectors of the double-centred squared distances, scaled by sqrt(eigenvalue)."""
    D = np.asarray(D, dtype=np.float64)
    M = len(D)
    J = np.eye(M) - 1.0 / M
    B = -0.5 * J @ (D * D) @ J
    w, V = np.linalg.eigh(B)
    order = np.argsort(w)[::-1][:dims]
    return V[:, order] * np.sqrt(np.maximum(w[order], 0.0))


def nearest_neighbour_accuracy(D: np.ndarray, labels) -> float:
    """Leave-one-out 1-nearest-neighbour accuracy of ``labels`` from distances D: how well a matrix
    separates the groups (1.0: every network's nearest other network has its label). Where several
    networks tie for nearest, the share of them with the label counts (a random pick's expected
    accuracy), so an all-zero matrix gives chance, not an artefact of the order of the networks."""
    D = np.asarray(D, dtype=np.float64).copy()
    np.fill_diagonal(D, np.inf)
    labels = np.asarray(labels)
    nearest = D == D.min(axis=1, keepdims=True)
    return float(np.mean([np.mean(labels[row] == label) for row, label in zip(nearest, labels)]))


def write_similarity(sim: Similarity, out_dir, colour_by: str = "model") -> list[Path]:
    """The matrices as CSV, everything as JSON, and the figure (matrices and MDS maps) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, D in sim.matrices.items():
        path = out / f"similarity_{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["network", *sim.names])
            for n, row in zip(sim.names, D):
                w.writerow([n, *(f"{v:.6g}" for v in row)])
        written.append(path)
    labels = [str(f.get(colour_by, "")) for f in sim.fields]
    maps = {name: classical_mds(D) for name, D in sim.matrices.items()}
    summary = {"networks": sim.names, "fields": sim.fields, "settings": sim.settings, "notes": sim.notes,
               "colour_by": colour_by,
               "separation": {name: nearest_neighbour_accuracy(D, labels) for name, D in sim.matrices.items()},
               "mds": {name: xy.tolist() for name, xy in maps.items()},
               "matrices": {name: D.tolist() for name, D in sim.matrices.items()}}
    path = out / "similarity.json"
    path.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    written.append(path)
    from rnnlab.present.similarity_figures import similarity_figure  # start-up time: Matplotlib loads late
    written.append(similarity_figure(sim.matrices, maps, labels, colour_by, out / "similarity.png"))
    record_written(out, [p.name for p in written])          # what a later --force may replace
    if out.name == "similarity" and (out.parent / SWEEP_PAGE).is_file():
        add_to_sweep_page(out.parent)
    return written


PAGE_MARKS = ("<!-- similarity -->", "<!-- /similarity -->")


def similarity_section(sweep_dir) -> str:
    """The sweep page's section on what ``rnnlab similarity`` wrote in SWEEP/similarity ("" if
    nothing): how well each distance separates the networks, and the figure."""
    from rnnlab.present.html import image  # start-up time: the page helpers load late
    d = Path(sweep_dir) / "similarity"
    if not (d / "similarity.json").is_file() or not (d / "similarity.png").is_file():
        return ""
    s = json.loads((d / "similarity.json").read_text(encoding="utf-8"))
    runs = {f"{Path(sweep_dir).name}/{r.name}" for r in (Path(sweep_dir) / "runs").glob("*") if r.is_dir()}
    if set(s["networks"]) != runs:              # of the sweep before a --force rerun, or of other runs
        return ""
    n, by = len(s["networks"]), s["colour_by"]
    items = [f"{name}: the nearest other network has the same {by} for {100 * acc:.0f}% of the {n} networks"
             for name, acc in s["separation"].items()]
    sigs = s["settings"].get("signatures", [])
    if sigs:
        shapes: dict = {}
        for sig in sigs:
            key = (len(set(sig["memories"])), len(sig["edges"]), len(sig.get("ghosts", [])))
            shapes[key] = shapes.get(key, 0) + 1
        items.append("fixed-point topology: " + "; ".join(
            f"{k} network{'s' if k != 1 else ''} with {m} memories joined by {e} edge{'s' if e != 1 else ''}"
            + (f" ({g} held by a ghost)" if g else "") for (m, e, g), k in sorted(shapes.items(), key=lambda x: -x[1])))
    return (PAGE_MARKS[0] + "<h2>Similarity</h2><p>Distances between every pair of networks on "
            f"{s['settings']['probe_trials']} probe trials (<code>rnnlab similarity</code>; matrices in "
            "similarity/*.csv).</p>" + '<div class="verdict"><ul>' + "".join(
                f"<li>{html.escape(i)}</li>" for i in items) + "</ul></div>"
            + image(d / "similarity.png", "similarity matrices and MDS maps") + PAGE_MARKS[1])


def add_to_sweep_page(sweep_dir) -> None:
    """Put the similarity section into the sweep's page (replacing an older one); a page that is
    not one rnnlab wrote (no closing script or body, or not UTF-8) is left as it is."""
    path = Path(sweep_dir) / SWEEP_PAGE
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return
    start, end = PAGE_MARKS
    if start in text and end in text:
        text = text[:text.index(start)] + text[text.index(end) + len(end):]
    at = text.rfind("<script>")
    at = at if at >= 0 else text.rfind("</body>")
    if at >= 0:
        atomic_write_text(path, text[:at] + similarity_section(sweep_dir) + text[at:])
