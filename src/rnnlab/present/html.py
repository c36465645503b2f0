"""The HTML kit of rnnlab's pages (run report, sweep, compare): one style, figures embedded and
tables built from the data itself, so every page is a single file that opens anywhere, offline."""

from __future__ import annotations

import base64
import html
from pathlib import Path

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
pre.cells{white-space:pre-wrap;font-size:.85rem;line-height:1.5;border:1px solid #eee;padding:.5rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1rem}
"""

# Lets a headless browser (and the tests) check that every embedded figure decoded.
SCRIPT = """window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);
document.body.setAttribute('data-images-loaded',
i.filter(function(x){return x.complete&&x.naturalWidth>0}).length+'/'+i.length);});"""

# Column headers in words (the JSON keys stay as they are).
HEADERS = {"random_same_size_drop": "drop, random group of that size", "n_unstable": "unstable directions",
           "count": "starts", "eigen": "|eigenvalues| (top 3)", "decoded": "readout",
           "max_abs_eigenvalue": "max |eigenvalue|", "grad_norm": "gradient norm", "lr_before": "lr before",
           "lr_after": "lr after", "corr_running_mean": "corr. with running mean",
           "impulse_persistence": "impulse persistence", "autocorr_decay": "autocorr. decay",
           "sign_change_rate": "sign-change rate", "dominant_period": "dominant period",
           "saturated_fraction": "saturated fraction", "q": "1/2 ||F(h) - h||^2"}


def image(path: Path, alt: str) -> str:
    """A PNG embedded as a data URI, so the page needs no files beside it and no network."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table(rows: list[dict], cols: list[str], fmt: dict | None = None, headers: dict | None = None) -> str:
    """An HTML table of ``rows`` (dicts) in the columns ``cols``, built from the values themselves.

    ``fmt`` maps a column to a function formatting its non-string values; ``headers`` maps a
    column to its header in words (default ``HEADERS``; a column it lacks is shown as named).
    Every cell is escaped; number cells get class "n" (right-aligned, tabular digits)."""
    fmt = fmt or {}
    headers = HEADERS if headers is None else headers
    head = "".join(f"<th>{html.escape(str(headers.get(c, c)))}</th>" for c in cols)
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


def coloured_text(text: str, values) -> str:
    """``text`` with each character on a background coloured by its value (one span per
    character): blue for negative, red for positive, the strength scaled by the largest |value|;
    newlines kept. No script needed."""
    top = max((abs(v) for v in values), default=0.0) or 1.0
    spans = []
    for ch, v in zip(text, values):
        a = min(1.0, abs(v) / top)
        rgb = "214,39,40" if v > 0 else "31,119,180"
        shown = "\u21b5\n" if ch == "\n" else html.escape(ch)
        spans.append(f'<span style="background:rgba({rgb},{a:.2f})" title="{v:+.3f}">{shown}</span>')
    return f'<pre class="cells">{"".join(spans)}</pre>'


def page(title: str, parts: list[str]) -> str:
    """One self-contained HTML document in the report's style (run report, sweep and compare pages)."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{CSS}</style></head><body>{''.join(parts)}<script>{SCRIPT}</script></body></html>")
