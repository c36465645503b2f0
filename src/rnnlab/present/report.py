"""``rnnlab report RUN_DIR``: one self-contained HTML page (figures embedded, no network needed)
with the config, the numbers, the training and instrument figures, the diagnosis, and the
hidden-state analysis (unit roles, ablation, PCA, fixed points)."""

from __future__ import annotations

import html
from pathlib import Path

from rnnlab.data.metrics import METRICS
from rnnlab.errors import RunDirError
from rnnlab.present.html import coloured_text, image, page, table
from rnnlab.runs.checkpoint import atomic_write_text
from rnnlab.runs.files import (
    ANALYSIS,
    ANALYSIS_AT_INPUT,
    ANALYSIS_FIGURES,
    DIAGNOSIS,
    EVENTS_LOG,
    METRICS_LOG,
    REPORT,
    SUMMARY,
    TRAINING_FIGURES,
    read_json,
    read_jsonl,
)
from rnnlab.runs.record import read_record


def render_ablation_rows(rows: list[dict], metric: str) -> str:
    """The ablation table; a group of every unit has no control group, and says so."""
    fmt = METRICS[metric].format_short
    rows = [dict(r, random_same_size_drop="none: the group is every unit")
            if r.get("random_same_size_drop", 0.0) is None else r for r in rows]
    return table(rows, ["group", "units", "value", "drop", "random_same_size_drop"],
                 {"value": fmt, "drop": fmt, "random_same_size_drop": fmt})


def _pct(v):
    return f"{100 * v:.1f}%"


def _described(parts: dict) -> list[dict]:
    """The record's descriptions of the trained objects as table rows (what was built, not asked for)."""
    rows = []
    for part, desc in parts.items():
        for k, v in desc.items():
            if v is not None and v != {} and k not in ("baseline_note",):
                rows.append({"part": part, "field": k, "value": v if not isinstance(v, dict) else
                             ", ".join(f"{a}={b}" for a, b in v.items())})
    return rows


def write_report(run_dir) -> Path:
    """Render what the run directory holds; nothing is computed here (training writes the
    diagnosis, ``rnnlab analyze`` the analysis the report shows)."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    summary = read_json(run_dir / SUMMARY)
    summary = {} if summary is None else summary
    analysis = read_json(run_dir / ANALYSIS)
    m = summary.get("metric") if isinstance(summary, dict) else None
    m = m if m in METRICS else record.task.get("metric") if record.task.get("metric") in METRICS else "acc"
    numbers = [summary.get(k) for k in (f"final_test_{m}", f"best_test_{m}", "params", "seconds", "best_epoch")] \
        if isinstance(summary, dict) else [None]
    if not isinstance(summary, dict) or (summary and not all(isinstance(v, (int, float)) for v in numbers)):
        raise RunDirError(f"{run_dir / SUMMARY} is damaged (not the numbers a run writes there); train the run "
                          "again, or delete the file to report the run as unfinished")
    diagnosis = read_json(run_dir / DIAGNOSIS)
    fmt_metric = METRICS[m].format
    task_name = record.task.get("name", record.config.task)
    params = summary.get("params", record.model.get("params", 0))
    if summary:
        done = f"{summary.get('epochs', '?')} epochs, {summary.get('seconds', 0):.1f} s of training"
    else:                                            # interrupted, or still training: say so
        rows = read_jsonl(run_dir / METRICS_LOG)
        done = (f"unfinished: {len(rows)} of {record.config.epochs} epochs logged"
                + (f", {rows[-1].get('seconds', 0):.1f} s of training" if rows else ""))
    parts = [f"<h1>rnnlab run: {html.escape(run_dir.name)}</h1>",
             f'<p class="sub">{html.escape(record.cell.upper())} on {html.escape(task_name)}, '
             f"{params:,} parameters, {html.escape(done)}</p>"]
    if summary:
        cards = [("final test " + m, fmt_metric(summary[f"final_test_{m}"])),
                 ("best test " + m, f"{fmt_metric(summary[f'best_test_{m}'])} (epoch {summary['best_epoch']})")]
        if summary.get("baseline") is not None:
            cards.append(("memoryless baseline", fmt_metric(summary["baseline"])))
        parts.append('<div class="cards">' + "".join(
            f'<div class="card">{html.escape(k)}<b>{html.escape(v)}</b></div>' for k, v in cards) + "</div>")
    names = {**TRAINING_FIGURES, **ANALYSIS_FIGURES}

    def figure(name, caption):
        p = run_dir / names[name]
        return f"{image(p, caption)}<p class='sub'>{html.escape(caption)}</p>" if p.is_file() else ""

    parts += ["<h2>Training</h2>", figure("training_curves", "Loss and metric per epoch; dotted: learning rate"),
              figure("grad_norm", "Gradient norm of every step before clipping, and the training loss")]
    parts.append("<h2>Diagnosis</h2>")
    if isinstance(diagnosis, dict) and isinstance(diagnosis.get("pattern"), str):
        findings, advice = diagnosis.get("findings") or [], diagnosis.get("advice") or []
        parts.append(f'<div class="verdict"><b>{html.escape(diagnosis["pattern"])}</b><ul>'
                     + "".join(f"<li>{html.escape(str(f))}</li>" for f in findings) + "</ul>"
                     + ("<p>What to try:</p><ul>" + "".join(f"<li>{html.escape(str(a))}</li>" for a in advice)
                        + "</ul>" if advice else "") + "</div>")
    else:
        parts.append("<p>No diagnosis yet: run <code>rnnlab doctor</code> on this run directory, or "
                     "<code>rnnlab report</code> (which diagnoses a run that has none).</p>")
    if (run_dir / names["gradient_flow"]).is_file():
        parts += ["<h2>Gradient flow and hidden-state norms</h2>",
                  figure("gradient_flow", "log10 ||dL/dh_t|| for every time step over training"),
                  figure("hidden_norms", "Hidden-state norm at every time step, early to late in training")]
    events = read_jsonl(run_dir / EVENTS_LOG)
    if events:
        parts += ["<h3>Guard recoveries</h3>",
                  table(events, ["iteration", "kind", "loss", "grad_norm", "lr_before", "lr_after"])]

    parts += ["<h2>Hidden-state dynamics</h2>",
              figure("hidden_states", "The last layer's units on one test sequence")]
    if analysis is None and "cell" not in record.model and record.model:
        parts.append(f"<p>The dynamics analysis reads the hidden states of a recurrent stack, which a "
                     f"{html.escape(str(record.model.get('class', 'model')))} has not.</p>")
    elif analysis is None:
        parts.append("<p>No analysis yet: run <code>rnnlab analyze</code> on this run directory, then "
                     "<code>rnnlab report</code> again.</p>")
    else:
        try:
            parts += _analysis_section(analysis, figure, m, run_dir)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            raise RunDirError(f"{run_dir / ANALYSIS} is damaged (not what rnnlab analyze writes); run rnnlab analyze "
                              "on the run again") from None
    own = sorted(record.own)
    parts += ["<h2>Configuration</h2>",
              "<p>What was trained, as the objects describe themselves:</p>",
              table(_described({k: getattr(record, k) for k in ("task", "model", "optimizer", "schedule", "loss")}),
                    ["part", "field", "value"]),
              "<p>The settings this run applied" + (f" (its {' and '.join(own)} made in Python)" if own else "")
              + ":</p>",
              table([{"field": k, "value": v} for k, v in record.applied.items()], ["field", "value"])]
    out = run_dir / REPORT
    atomic_write_text(out, page(f"rnnlab: {run_dir.name}", parts))
    return out


def _interpretable_cells(cells: dict) -> list[str]:
    """Each state's unit chosen on one half of the text and tested on the other, the sentences that
    say so, and the held-out text coloured by each chosen unit."""
    parts = ["<h3>Interpretable cells</h3>"]
    if "held_out" not in cells:
        return parts + ["<p>These cells were scored on the characters they were chosen on, with no held-out "
                        "test or chance level (an older rnnlab); run <code>rnnlab analyze</code> on the run "
                        "again.</p>"]
    (_, half), (_, n) = cells["selection"], cells["held_out"]
    cols = ["hypothesis", "best units (r on the selection half / held out)"]
    rows = [dict(zip(cols, (h["name"], ", ".join(f"{b['state']}[{b['unit']}] ({b['selection_r']:+.2f} / "
                                                 f"{b['held_out_r']:+.2f})" for b in h["best"]) or h["note"])))
            for h in cells["hypotheses"]]
    parts += [f"<p>Each unit of the last layer (h, and c for an LSTM) run over {n:,} held-out characters as one "
              "sequence, scored by the correlation r of its activation with a state of the text (Karpathy, "
              f"Johnson &amp; Fei-Fei 2015). Per state, the unit with the largest |r| on characters 0-{half:,} "
              f"is tested on characters {half:,}-{n:,}, beside a chance level: what the signal reaches, chosen "
              "and tested the same way, when circularly shifted against the text.</p>",
              "<div class='verdict'><ul>" + "".join(f"<li>{html.escape(h['sentence'])}</li>"
                                                    for h in cells["hypotheses"]) + "</ul></div>",
              table(rows, cols, headers={})]
    for name, s in cells["sample"].items():
        parts.append(f"<details><summary>{html.escape(name)}: held-out text from character "
                     f"{cells['sample_start']:,} coloured by {s['state']}[{s['unit']}] (red positive, blue "
                     "negative)</summary>" + coloured_text(cells["sample_text"], s["activation"]) + "</details>")
    return parts


def _where(fp: dict) -> str:
    where = "zero input" if not fp.get("input") or not any(fp["input"]) else f"input {fp['input']}"
    if fp.get("input_reason", "given") != "given":
        where += f" ({fp['input_reason']})"
    return where


def _fixed_points_block(fp: dict, fig: str) -> list[str]:
    """One constant input's fixed points: how they were found, the table, the verdicts, the figure."""
    continuous = "time" in fp                          # a CTRNN: eigenvalues read as mu, in 1/tau
    if continuous:
        rows = [dict(p, mu=", ".join(f"{complex(*e).real:.3g}" + (f"{complex(*e).imag:+.3g}i" if e[1] else "")
                                     for e in p["continuous_eigenvalues"][:3]),
                     tc=", ".join("-" if v is None else f"{v:.3g}" for v in p["time_constants"][:3]))
                for p in fp["points"]]
        cols = ["type", "n_unstable", "count", "norm", "speed", "mu", "tc"]
    else:
        rows = [dict(p, eigen=", ".join(f"{abs(complex(*e)):.3f}" for e in p["eigenvalues"][:3]))
                for p in fp["points"]]
        cols = ["type", "n_unstable", "count", "norm", "q", "eigen"]
    cols += ["decoded"] if fp.get("decoded") else []
    state = "x" if continuous else "h"
    parts = [f"<p>Fixed points of layer {fp['layer']}'s map at {html.escape(_where(fp))}, found by damped "
             f"Newton steps (Levenberg-Marquardt) on F({state}) - {state} from states visited on held-out data, "
             f"each start stopping once 1/2 ||F({state}) - {state}||<sup>2</sup> &lt; {fp['settings']['tol']:g}. "
             f"{html.escape(fp['summary'])}.</p>"]
    if continuous:
        parts.append("<p>In continuous time the state is each unit's current x (its rate r = f(x) follows from "
                     "it); <i>speed</i> is |dx/dt| = |F(x) - x| / dt, <i>mu</i> the leading continuous eigenvalues "
                     "(1/tau) and <i>tc</i> their time constants -1/Re(mu) (tau; negative: growing).</p>")
    if len(fp.get("rounds", [])) > 1:
        parts.append("<p>Starts were drawn in rounds until the estimate of points still unfound (Chao1, from "
                     "how many starts reached each point) was below one after two rounds in a row; new points "
                     f"per round: {', '.join(str(r['new_points']) for r in fp['rounds'])}.</p>")
    parts += [f"<p class='sub'>Note: {html.escape(n)}</p>" for n in fp.get("notes", [])]
    if fp.get("decoded"):
        dec = fp["decoded"]
        n, k = dec["stable_points"], dec["distinct_states"]
        parts.append(f'<div class="verdict">The {n} stable point{"s" if n != 1 else ""} decode'
                     f'{"s" if n == 1 else ""} through the readout to <b>{k} distinct '
                     f'state{"s" if k != 1 else ""}</b> of {dec["possible_states"]} possible: '
                     f'{html.escape(", ".join(dec["states"]))}.</div>')
    parts.append(table(rows[:40], cols, {"norm": lambda v: f"{v:.3g}", "q": lambda v: f"{v:.1e}",
                                         "speed": lambda v: f"{v:.1e}"})
                 + ("<p class='sub'>First 40 points shown; all are in analysis.json.</p>"
                    if len(rows) > 40 else ""))
    if fp.get("counts", {}).get("slow_points"):
        parts.append(f"<p>Slow points (starts that stopped short of a fixed point where the state moves by "
                     f"less than {(2 * fp['settings']['slow_tol']) ** 0.5:.2g} a step): "
                     f"{fp['counts']['slow_points']}.</p>")
    if fp.get("oscillation"):
        parts.append(f'<div class="verdict">Rotation: {html.escape(fp["oscillation"]["sentence"])}.</div>')
    ca = fp.get("continuous_attractor")
    if ca:
        parts.append(f'<div class="verdict">Continuous attractor (judged on the fixed points and the slow points '
                     f'found from the trials\' states): <b>{ca["kind"] or "none"}</b> ({html.escape(ca["reason"])}).'
                     "</div>")
    elif fp.get("line_attractor"):                     # an analysis.json written before rings were judged
        la = fp["line_attractor"]
        parts.append(f'<div class="verdict">Line attractor: <b>{"yes" if la["line_attractor"] else "no"}</b> '
                     f'({html.escape(la["reason"])}).</div>')
    if fp.get("selection"):
        parts.append(f'<div class="verdict">Selection vectors: {html.escape(fp["selection"]["sentence"])}.</div>')
    parts.append(fig)
    return parts


def _conditions_side_by_side(analysis: dict) -> list[str]:
    """One column per constant input: its trials, roles, PCA and what its fixed points showed."""
    conds, fps = analysis["conditions"], analysis["fixed_points_by_input"]
    head = "".join(f"<th>{k}: {html.escape(_where(fp))}</th>" for k, fp in enumerate(fps, 1))

    def row(name, cells):
        return f"<tr><th>{html.escape(name)}</th>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
    rows = [row("trials", [f"{c['trials']} of {c['of']}" + (" (pooled)" if c["pooled"] else "") for c in conds]),
            row("roles", [", ".join(f"{r} {n}" for r, n in c["role_counts"].items() if n) for c in conds]),
            *([row("roles, E / I", [", ".join(f"{r} {n}/{c['dale']['inhibitory_roles'][r]}"
                                             for r, n in c["dale"]["excitatory_roles"].items()
                                             if n or c["dale"]["inhibitory_roles"][r]) for c in conds])]
              if all(c.get("dale") for c in conds) else []),
            row("PCA, first 3 components", [", ".join(_pct(e) for e in c["pca_explained"]) for c in conds]),
            row("fixed points", [fp["summary"].split(";")[0] for fp in fps]),
            row("continuous attractor", [(fp.get("continuous_attractor") or {}).get("kind") or "none" for fp in fps])]
    return ["<h3>Conditions side by side</h3>",
            "<p>Each constant input is analysed on its own trials (see each input's section below for "
            "which).</p>",
            f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>"]


def _role_table(analysis: dict) -> str:
    """Units per role; under Dale's law also the excitatory and the inhibitory units apart."""
    counts, dale = analysis["role_counts"], analysis.get("dale")
    if not dale:
        return table([{"role": r, "units": n} for r, n in counts.items()], ["role", "units"])
    rows = [{"role": r, "units": n, "excitatory": dale["excitatory_roles"].get(r, 0),
             "inhibitory": dale["inhibitory_roles"].get(r, 0)} for r, n in counts.items()]
    return (f"<p>{html.escape(dale['sentence'])}.</p>"
            + table(rows, ["role", "units", "excitatory", "inhibitory"]))


def _analysis_section(analysis: dict, figure, metric: str, run_dir: Path) -> list[str]:
    """Unit roles, ablation, PCA and fixed points, as ``analysis.json`` holds them."""
    parts = []
    parts += ["<h3>Unit roles</h3>",
              "<p>Each unit's role comes from measured signatures over held-out sequences: correlation with "
              "the running mean of the input, persistence of its response to a single input impulse, "
              "autocorrelation decay, sign-change rate and dominant frequency, saturation.</p>",
              _role_table(analysis),
              figure("unit_roles", "Units coloured by role; below, every unit grouped by role"
                     + ("; excitatory and inhibitory units apart" if analysis.get("dale") else ""))]
    if analysis.get("condition"):
        parts.insert(2, f"<p>Trials analysed: {html.escape(analysis['condition']['sentence'])}.</p>")
    if analysis.get("conditions"):
        parts += _conditions_side_by_side(analysis)
    units = analysis["units"]
    parts.append("<details><summary>Scores of every unit</summary>" + table(
        units, ["unit", "role"] + (["sign"] if analysis.get("dale") else []) + [
                "corr_running_mean", "impulse_persistence", "autocorr_decay",
                "sign_change_rate", "dominant_period", "saturated_fraction", "std"],
        {k: (lambda v: f"{v:.3g}") for k in ("corr_running_mean", "impulse_persistence", "sign_change_rate",
                                              "dominant_period", "saturated_fraction", "std")}) + "</details>")
    if analysis.get("interpretable_cells"):
        parts += _interpretable_cells(analysis["interpretable_cells"])
    if "ablation" in analysis:
        parts += ["<h3>Ablation: silencing each group at test time</h3>",
                  "<p>A group's units are silenced by zeroing their outgoing weights (the recurrence and the "
                  f"readout stop seeing them); a random group of the same size is the control. <i>drop</i> is "
                  f"how much worse the test {html.escape(metric)} got.</p>",
                  render_ablation_rows(analysis["ablation"], metric)]
    ex = analysis["pca_explained"]
    parts += ["<h3>PCA of hidden trajectories</h3>",
              f"<p>The first three components explain {', '.join(_pct(e) for e in ex)} of the variance.</p>",
              figure("pca", "Trajectories of many held-out sequences on the first two components, with the "
                                "fixed points of the last layer (circles: stable; crosses: saddles)")]
    fp = analysis.get("fixed_points")
    if fp:
        parts.append("<h3>Fixed points and linearisation</h3>")
        parts += _fixed_points_block(fp,
                                     figure("fixed_points", "Continuous-time eigenvalues mu = (lambda - 1)/a at "
                                                            "each fixed point, with Re(mu) = 0" if "time" in fp else
                                            "Jacobian eigenvalues at each fixed point, with the unit circle"))
        for k, other in enumerate(analysis.get("fixed_points_by_input", [])[1:], 2):
            where = html.escape(_where(other))
            parts.append(f"<h4>At input {k}: {where}</h4>")
            if other.get("condition"):
                parts.append(f"<p>Its trials: {html.escape(other['condition']['sentence'])}.</p>")
            figs = {key: run_dir / name.format(k) for key, name in ANALYSIS_AT_INPUT.items()}
            captions = {"unit_roles": f"Units coloured by their roles on input {k}'s trials",
                        "pca": f"Input {k}'s trials on their first two components, with its fixed points",
                        "fixed_points": f"Jacobian eigenvalues at each fixed point at input {k}"}
            shown = [f"{image(path, captions[key])}<p class='sub'>{captions[key]}</p>"
                     for key, path in figs.items() if key != "fixed_points" and path.is_file()]
            if shown:
                parts.append("<div class='grid'>" + "".join(f"<div>{s}</div>" for s in shown) + "</div>")
            fig = (f"{image(figs['fixed_points'], captions['fixed_points'])}<p class='sub'>"
                   f"{captions['fixed_points']}</p>" if figs["fixed_points"].is_file() else "")
            parts += _fixed_points_block(other, fig)
    return parts
