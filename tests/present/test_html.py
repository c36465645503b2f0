"""The HTML kit (rnnlab.present.html) and the pages built with it: a table escapes its cells,
right-aligns numbers and names its columns in words; the sweep and compare pages show the cells
of their data (sweep.json, compare.json) and the same cells as their Markdown."""

from html.parser import HTMLParser

from rnnlab.present.html import HEADERS, table


class Tables(HTMLParser):
    """Every <table> of a page as rows of (tag, attributes, text) cells."""

    def __init__(self, text: str):
        super().__init__()
        self.tables, self._cell = [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = (tag, dict(attrs), [])

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[2].append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            tag, attrs, text = self._cell
            self.tables[-1][-1].append((tag, attrs, "".join(text)))
            self._cell = None


def texts(tab):
    """A parsed table as its header texts and one dict of cell text per row."""
    head = [c[2] for c in tab[0]]
    return head, [dict(zip(head, (c[2] for c in row))) for row in tab[1:]]


def markdown_cells(path):
    """Every Markdown table of a file, as texts() gives an HTML one."""
    out, cur = [], None
    for ln in path.read_text(encoding="utf-8").splitlines() + [""]:
        if ln.startswith("|"):
            cells = [c.strip() for c in ln.strip().strip("|").split("|")]
            if cur is None:
                cur = (cells, [])
            elif set(ln) != {"|", "-"}:
                cur[1].append(dict(zip(cur[0], cells)))
        elif cur is not None:
            out.append(cur)
            cur = None
    return out


def test_table_escapes_right_aligns_numbers_and_names_columns_in_words():
    rows = [{"kind": "<script>x & y</script>", "grad_norm": 12.3, "count": 3, "ok": True, "q": None},
            {"kind": "plain", "grad_norm": 0.001234, "count": 7, "ok": False, "q": 1e-9}]
    out = table(rows, ["kind", "grad_norm", "count", "ok", "q"], fmt={"grad_norm": lambda v: f"{v:.2g}"})
    assert "<script>" not in out and "&lt;script&gt;x &amp; y&lt;/script&gt;" in out
    [tab] = Tables(out).tables
    assert [c[2] for c in tab[0]] == ["kind", "gradient norm", "starts", "ok", HEADERS["q"]]  # in words
    first, second = tab[1], tab[2]
    assert first[0] == ("td", {}, "<script>x & y</script>")              # text cell: escaped, left-aligned
    assert first[1] == ("td", {"class": "n"}, "12")                     # number: formatted, right-aligned
    assert first[2] == ("td", {"class": "n"}, "3")
    assert first[3] == ("td", {}, "True")                                # a bool is no number
    assert first[4] == ("td", {}, "")                                    # None: an empty cell
    assert second[1][2] == "0.0012" and second[4] == ("td", {"class": "n"}, "1e-09")
    # headers: given ones replace the default words; a column they lack is shown as named
    [tab] = Tables(table(rows[:1], ["grad_norm", "count"], headers={"count": "n"})).tables
    assert [c[2] for c in tab[0]] == ["grad_norm", "n"]


def test_sweep_page_shows_the_cells_of_its_data(tmp_path):
    import json

    from rnnlab.experiments.sweep import report
    grid = {"lr": [0.001, 0.03], "init": ["xavier", "<orth>"]}
    rows = [{"lr": lr, "init": init, "seed": seed, "status": "ok", "metric": "acc",
             "final": 0.5 + 0.2 * i + 0.05 * j + 0.01 * seed, "best": 0.9, "baseline": 0.5,
             "early_to_late_gradient": [None, 0.0, 1.5e-3, 2.0][2 * i + j], "seconds": 1.0,
             "trial": f"{lr},{init},{seed}", "run_dir": "x"}
            for i, lr in enumerate(grid["lr"]) for j, init in enumerate(grid["init"]) for seed in range(2)]
    report(rows, grid, tmp_path)
    settings = json.loads((tmp_path / "sweep.json").read_text())["settings"]
    [tab] = Tables((tmp_path / "sweep.html").read_text()).tables
    head, cells = texts(tab)
    assert head == ["lr", "init", "runs", "final test acc (mean ± sd)", "seeds that learn",
                    "gradient at step 1 / step T"]
    assert len(cells) == len(settings) == 4
    for cell, s in zip(cells, settings):
        assert cell["lr"] == str(s["lr"]) and cell["init"] == s["init"] and cell["runs"] == str(s["runs"])
        assert cell["final test acc (mean ± sd)"] == f"{100 * s['final']:.1f} ± {100 * s['final_sd']:.1f}%"
        assert cell["seeds that learn"] == f"{s['learned']}/{s['runs']}"
    assert [c["gradient at step 1 / step T"] for c in cells] == \
        ["n/a", "0 (below float range: underflow)", "1.5e-03", "2.0e+00"]
    assert cells[1]["init"] == "<orth>"                                   # escaped in the page, read back whole
    assert markdown_cells(tmp_path / "sweep.md") == [(head, cells)]       # the same cells as sweep.md


def test_compare_page_shows_the_cells_of_its_data(tmp_path):
    import json

    from rnnlab.experiments.compare import MODELS, write_outputs
    rows = [{"task": task, "model": m, "params": 12345, "seed": seed, "metric": metric,
             "equal_updates": 0.7 + 0.01 * seed, "updates": 100, "seconds": 1.25 + seed,
             "equal_time": 0.6 + 0.02 * seed, "time_budget": 2.0, "updates_in_time": 90 + seed, "baseline": 0.5}
            for task, metric in (("seed", "acc"), ("adding", "mse")) for m in MODELS for seed in range(2)]
    thr = [{"model": m, "length": T, "sequences_per_s": 1234.5 * T} for T in (16, 64) for m in MODELS]
    stream = [{"model": name, "position": p, "us_per_token": 12.3 * p, "state_bytes": 4096 * p, "params": 1}
              for name in ("rnn", "transformer (kv-cache)") for p in (16, 256)]
    write_outputs(rows, thr, stream, tmp_path)
    data = json.loads((tmp_path / "compare.json").read_text())
    tabs = [texts(t) for t in Tables((tmp_path / "compare.html").read_text()).tables]
    assert len(tabs) == 3 and markdown_cells(tmp_path / "compare.md") == tabs     # the same cells as compare.md
    (head, results), (thr_head, speeds), (stream_head, streams) = tabs
    assert head == ["task", "model", "params", "equal updates", "equal wall time (updates done)", "train s"]
    for cell, s in zip(results, data["summary"], strict=True):
        assert cell["task"] == f"{s['task']} ({s['metric']})" and cell["model"] == s["model"]
        assert cell["params"] == f"{s['params']:,}" and cell["train s"] == f"{s['seconds']:.2f}"
    assert results[0]["equal updates"] == "70.5 ± 0.7%" and results[4]["equal updates"] == "0.7050 ± 0.0071"
    assert thr_head == ["model", "T=16 seq/s", "T=64 seq/s"] and [c["model"] for c in speeds] == list(MODELS)
    assert speeds[0]["T=64 seq/s"] == f"{data['throughput'][4]['sequences_per_s']:,.0f}" == "79,008"
    assert stream_head == ["streaming", "t=16: us/token, state bytes", "t=256: us/token, state bytes"]
    assert streams[1] == {"streaming": "transformer (kv-cache)", "t=16: us/token, state bytes": "197 us, 65,536 B",
                          "t=256: us/token, state bytes": "3,149 us, 1,048,576 B"}
