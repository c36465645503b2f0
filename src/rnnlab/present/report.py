"""``rnnlab report RUN_DIR``: one self-contained HTML page (figures embedded, no network needed)
with the config, the numbers, the training and instrument figures, the diagnosis, and the
hidden-state analysis (unit roles, ablation, PCA, fixed points)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from rnnlab.runs.checkpoint import atomic_write_text
from rnnlab.runs.rundir import read_jsonl, read_run_config

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2rem auto;
padding:0 1rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
.sub{color:#666;margin-top:0} table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left} th{background:#f5f5f5}
td.n{text-align:right;font-variant-numeric:tabular-nums} img{max-width:100%;border:1px solid #eee;margin:.4rem 0}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem}
.card b{font-size:1.4rem;display:block} .verdict{background:#f6f8fa;border-left:4px solid #4a7;padding:.5rem .8rem}
details{margin:.5rem 0} code{background:#f3f3f3;padding:0 .2rem}
"""

# Lets a headless browser (and the tests) check that every embedded figure decoded.
SCRIPT = """window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);
document.body.setAttribute('data-images-loaded',
i.filter(function(x){return x.complete&&x.naturalWidth>0}).length+'/'+i.length);});"""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


# Column headers in words (the JSON keys stay as they are).
HEADERS = {"random_same_size_drop": "drop, random group of that size", "n_unstable": "unstable directions",
           "count": "starts", "eigen": "|eigenvalues| (top 3)", "decoded": "readout",
           "max_abs_eigenvalue": "max |eigenvalue|", "grad_norm": "gradient norm", "lr_before": "lr before",
           "lr_after": "lr after", "corr_running_mean": "corr. with running mean",
           "impulse_persistence": "impulse persistence", "autocorr_decay": "autocorr. decay",
           "sign_change_rate": "sign-change rate", "dominant_period": "dominant period",
           "saturated_fraction": "saturated fraction", "q": "1/2 ||F(h) - h||^2"}


def _table(rows: list[dict], cols: list[str], fmt=None) -> str:
    fmt = fmt or {}
    head = "".join(f"<th>{html.escape(HEADERS.get(c, c))}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            text = fmt[c](v) if c in fmt and not isinstance(v, str) and v is not None else ("" if v is None else str(v))
            cls = ' class="n"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_ablation_rows(rows: list[dict], metric: str) -> str:
    """The ablation table; a group of every unit has no control group, and says so."""
    fmt = _pct if metric == "acc" else (lambda v: f"{v:.4g}")
    rows = [dict(r, random_same_size_drop="none: the group is every unit")
            if r.get("random_same_size_drop", 0.0) is None else r for r in rows]
    return _table(rows, ["group", "units", "value", "drop", "random_same_size_drop"],
                  {"value": fmt, "drop": fmt, "random_same_size_drop": fmt})


def _pct(v):
    return f"{100 * v:.1f}%"


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def write_report(run_dir) -> Path:
    """Render what the run directory holds; nothing is recomputed (``rnnlab analyze`` writes
    the analysis the report shows)."""
    from rnnlab.analysis.doctor import diagnose
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    meta = _read_json(run_dir / "config.json") or {}
    summary = _read_json(run_dir / "summary.json") or {}
    analysis = _read_json(run_dir / "analysis.json")
    m = summary.get("metric", "acc")
    fmt_metric = _pct if m == "acc" else (lambda v: f"{v:.4f}")
    task_name = (meta.get("task") or {}).get("name", cfg.task)
    cell = (meta.get("model") or {}).get("cell", cfg.model)
    parts = [f"<h1>rnnlab run: {html.escape(run_dir.name)}</h1>",
             f'<p class="sub">{html.escape(cell.upper())} on {html.escape(task_name)}, '
             f"{summary.get('params', 0):,} parameters, {summary.get('epochs', '?')} epochs, "
             f"{summary.get('seconds', 0):.1f} s of training</p>"]
    if summary:
        cards = [("final test " + m, fmt_metric(summary[f"final_test_{m}"])),
                 ("best test " + m, f"{fmt_metric(summary[f'best_test_{m}'])} (epoch {summary['best_epoch']})")]
        if summary.get("baseline") is not None:
            cards.append(("memoryless baseline", fmt_metric(summary["baseline"])))
        parts.append('<div class="cards">' + "".join(
            f'<div class="card">{html.escape(k)}<b>{html.escape(v)}</b></div>' for k, v in cards) + "</div>")

    def figure(name, caption):
        p = run_dir / name
        return f"{_img(p, caption)}<p class='sub'>{html.escape(caption)}</p>" if p.is_file() else ""

    parts += ["<h2>Training</h2>", figure("training_curves.png", "Loss and metric per epoch; dotted: learning rate"),
              figure("grad_norm.png", "Gradient norm of every step before clipping, and the training loss")]
    d = diagnose(run_dir)
    parts += ["<h2>Diagnosis</h2>", f'<div class="verdict"><b>{html.escape(d.pattern)}</b><ul>'
              + "".join(f"<li>{html.escape(f)}</li>" for f in d.findings) + "</ul>"
              + ("<p>What to try:</p><ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in d.advice) + "</ul>"
                 if d.advice else "") + "</div>"]
    if (run_dir / "gradient_flow.png").is_file():
        parts += ["<h2>Gradient flow and hidden-state norms</h2>",
                  figure("gradient_flow.png", "log10 ||dL/dh_t|| for every time step over training"),
                  figure("hidden_norms.png", "Hidden-state norm at every time step, early to late in training")]
    events = read_jsonl(run_dir / "events.jsonl")
    if events:
        parts += ["<h3>Guard recoveries</h3>",
                  _table(events, ["iteration", "kind", "loss", "grad_norm", "lr_before", "lr_after"])]

    parts += ["<h2>Hidden-state dynamics</h2>",
              figure("hidden_states.png", "The last layer's units on one test sequence")]
    if analysis is None:
        parts.append("<p>No analysis yet: run <code>rnnlab analyze</code> on this run directory, then "
                     "<code>rnnlab report</code> again.</p>")
    else:
        parts += _analysis_section(analysis, figure, m)
    unused = cfg.unused_fields()
    parts += ["<h2>Configuration</h2>",
              _table([{"field": k, "value": v} for k, v in cfg.to_dict().items() if k not in unused],
                     ["field", "value"]),
              f"<p class=\"sub\">Not used by this run (another task's, model's or optimizer's settings): "
              f"{html.escape(', '.join(sorted(unused)))}.</p>" if unused else ""]
    out = run_dir / "report.html"
    atomic_write_text(out, page(f"rnnlab: {run_dir.name}", parts))
    return out


def page(title: str, parts: list[str]) -> str:
    """One self-contained HTML document in the report's style (run report, sweep and compare pages)."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{CSS}</style></head><body>{''.join(parts)}<script>{SCRIPT}</script></body></html>")


def markdown_tables(lines: list[str]) -> list[str]:
    """Every Markdown table among ``lines`` (header, separator, rows) as an HTML table."""
    blocks, cur = [], []
    for ln in list(lines) + [""]:
        if ln.startswith("|"):
            cur.append(ln)
        elif cur:
            blocks.append(cur)
            cur = []
    out = []
    for b in blocks:
        head, *rows = ([c.strip() for c in ln.strip("|").split("|")] for ln in [b[0]] + b[2:])
        out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>" +
                   "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
                   + "</table>")
    return out


def _analysis_section(analysis: dict, figure, metric: str) -> list[str]:
    """Unit roles, ablation, PCA and fixed points, as ``analysis.json`` holds them."""
    parts = []
    counts = analysis["role_counts"]
    parts += ["<h3>Unit roles</h3>",
              "<p>Each unit's role comes from measured signatures over held-out sequences: correlation with "
              "the running mean of the input, persistence of its response to a single input impulse, "
              "autocorrelation decay, sign-change rate and dominant frequency, saturation.</p>",
              _table([{"role": r, "units": n} for r, n in counts.items()], ["role", "units"]),
              figure("unit_roles.png", "Units coloured by role; below, every unit grouped by role")]
    units = analysis["units"]
    parts.append("<details><summary>Scores of every unit</summary>" + _table(
        units, ["unit", "role", "corr_running_mean", "impulse_persistence", "autocorr_decay",
                "sign_change_rate", "dominant_period", "saturated_fraction", "std"],
        {k: (lambda v: f"{v:.3g}") for k in ("corr_running_mean", "impulse_persistence", "sign_change_rate",
                                              "dominant_period", "saturated_fraction", "std")}) + "</details>")
    if "ablation" in analysis:
        parts += ["<h3>Ablation: silencing each group at test time</h3>",
                  "<p>A group's units are silenced by zeroing their outgoing weights (the recurrence and the "
                  f"readout stop seeing them); a random group of the same size is the control. <i>drop</i> is "
                  f"how much worse the test {html.escape(metric)} got.</p>",
                  render_ablation_rows(analysis["ablation"], metric)]
    ex = analysis["pca_explained"]
    parts += ["<h3>PCA of hidden trajectories</h3>",
              f"<p>The first three components explain {', '.join(_pct(e) for e in ex)} of the variance.</p>",
              figure("pca.png", "Trajectories of many held-out sequences on the first two components, with the "
                                "fixed points of the last layer (circles: stable; crosses: saddles)")]
    fp = analysis.get("fixed_points")
    if fp:
        where = "zero input" if not fp.get("input") or not any(fp["input"]) else f"input {fp['input']}"
        rows = [dict(p, eigen=", ".join(f"{abs(complex(*e)):.3f}" for e in p["eigenvalues"][:3]))
                for p in fp["points"]]
        cols = ["type", "n_unstable", "count", "norm", "q", "eigen"] + (["decoded"] if fp.get("decoded") else [])
        parts += ["<h3>Fixed points and linearisation</h3>",
                  f"<p>Fixed points of layer {fp['layer']}'s map at {html.escape(where)}, found by damped "
                  "Newton steps (Levenberg-Marquardt) on F(h) - h from states visited on held-out data, "
                  f"each start stopping once 1/2 ||F(h) - h||<sup>2</sup> &lt; {fp['settings']['tol']:g}. "
                  f"{html.escape(fp['summary'])}.</p>"]
        parts += [f"<p class='sub'>Note: {html.escape(n)}</p>" for n in fp.get("notes", [])]
        if fp.get("decoded"):
            dec = fp["decoded"]
            parts.append(f'<div class="verdict">The {dec["stable_points"]} stable points decode through the '
                         f'readout to <b>{dec["distinct_states"]} distinct states</b> of '
                         f'{dec["possible_states"]} possible: {html.escape(", ".join(dec["states"]))}.</div>')
        parts.append(_table(rows[:40], cols, {"norm": lambda v: f"{v:.3g}", "q": lambda v: f"{v:.1e}"})
                     + ("<p class='sub'>First 40 points shown; all are in analysis.json.</p>"
                        if len(rows) > 40 else ""))
        la = analysis.get("line_attractor")
        if la:
            yes = "yes" if la["line_attractor"] else "no"
            parts.append(f'<div class="verdict">Approximate line attractor: <b>{yes}'
                         f"</b> ({html.escape(la['reason'])}).</div>")
        parts.append(figure("fixed_points.png", "Jacobian eigenvalues at each fixed point, with the unit circle"))
    return parts
