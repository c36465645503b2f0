"""Sweeps: any grid on the local pool and on a real local Ray instance, tables, verdict and page,
bad grids, resuming an interrupted sweep, no worker outliving a killed driver, TensorBoard."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rnnlab.cli import main

TINY = ["--hidden", "8", "--layers", "1", "--epochs", "2", "--batches-per-epoch", "3", "--train-size", "300",
        "--test-size", "100", "--dropout", "0"]


def table(path):
    return [ln for ln in path.read_text().splitlines() if ln.startswith("|")]


def test_length_sweep_is_the_grid_model_x_length(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", "lengths", "--task", "adding", "--models", "rnn,gru", "--lengths", "8,16",
                 "--seeds", "2", "--jobs", "2", "--hidden", "8", "--layers", "1", "--epochs", "2",
                 "--batches-per-epoch", "5", "--train-size", "500", "--test-size", "100",
                 "--lr", "0.01", "--probe-every", "2", "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert len(rows) == 8 and {r["status"] for r in rows} == {"ok"}
    assert {(r["model"], r["length"]) for r in rows} == {(m, t) for m in ("rnn", "gru") for t in ("8", "16")}
    assert all(float(r["early_to_late_gradient"]) > 0 for r in rows)
    md = table(out / "sweep.md")
    assert md[0].startswith("| model | length | runs | final test mse") and len(md) == 2 + 4
    for png in ("metric_vs_length.png", "metric_vs_model.png", "gradient_vs_length.png", "heatmap_model_length.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "| gru | 16 | 2 |" in capsys.readouterr().out


def test_grid_over_any_fields_with_verdict_page_and_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2
    out = tmp_path / "g"
    assert main(["sweep", "--grid", "lr=1e-3,3e-2", "--grid", "init=xavier,orthogonal", "--seeds", "2",
                 "--tensorboard", "--out", str(out), *TINY]) == 0
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert len(rows) == 8 and {r["init"] for r in rows} == {"xavier", "orthogonal"}
    summary = json.loads((out / "sweep.json").read_text())
    assert len(summary["settings"]) == 4 and all(s["runs"] == 2 for s in summary["settings"])
    assert summary["verdict"][0].startswith("A run learns when its final test acc is at least 10 points above")
    assert any(s.startswith("lr (with init xavier): seeds that learn") for s in summary["verdict"])
    page = (out / "sweep.html").read_text()
    assert page.count("<img") == 3 and "Sensitivity" in page                # lr, init, heatmap
    trial = out / "runs" / "lr=0.03,init=orthogonal,seed=1"
    assert json.loads((trial / "config.json").read_text())["config"]["lr"] == 0.03
    acc = EventAccumulator(str(trial / "tensorboard" / "hparams"), size_guidance={"scalars": 0})
    acc.Reload()
    start = plugin_data_pb2.HParamsPluginData.FromString(
        acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["lr"].number_value == 0.03 and start.hparams["init"].string_value == "orthogonal"
    assert start.hparams["seed"].number_value == 1


@pytest.mark.parametrize("args,fragment", [
    (["--grid", "nope=1,2"], "unknown field 'nope'"),
    (["--grid", "lr=0.1,abc"], "'abc' is not a valid float"),
    (["--grid", "lr=-1"], "lr must be > 0"),
    (["--grid", "model=rnn,mamba"], "model must be one of"),
    (["--grid", "lr"], "needs the form FIELD=V1,V2"),
    (["--grid", "lr=1e-3", "--grid", "lr=1e-2"], "gives 'lr' twice"),
    (["--grid", "lr=1e-3,1e-3"], "repeats a value"),
    (["--grid", "seed=1,2"], "swept by --seeds"),
    ([], "the grid is empty"),
    (["--grid", "lr=1e-3", "--seeds", "0"], "--seeds and --jobs must be at least 1"),
    (["lengths", "--grid", "lr=1e-3"], "drop --grid"),
    (["--models", "rnn"], "belong to 'rnnlab sweep lengths'"),
    (["--grid", "nonlinearity=relu", "--grid", "forget_bias=1"], "forget_bias applies to the LSTM only"),
])
def test_bad_grids_are_one_sentence_and_create_nothing(tmp_path, capsys, args, fragment):
    out = tmp_path / "never"
    assert main(["sweep", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_rerunning_an_interrupted_sweep_redoes_only_unfinished_trials(tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["sweep", "--grid", "lr=1e-3,1e-2", "--seeds", "2", "--jobs", "1", "--out", str(out), *TINY]
    assert main(argv) == 0
    capsys.readouterr()
    first = list(csv.DictReader(open(out / "sweep.csv")))
    (out / "runs" / "lr=0.01,seed=0" / "result.json").unlink()           # killed before it finished
    (out / "runs" / "lr=0.001,seed=1" / "result.json").unlink()
    (out / "runs" / "lr=0.001,seed=1" / "metrics.jsonl").write_text("{cut")
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "(2 already finished)" in text
    assert sorted(ln.split(":")[0].strip() for ln in text.splitlines() if ln.startswith("  lr=")) == \
        ["lr=0.001,seed=1", "lr=0.01,seed=0"]
    again = list(csv.DictReader(open(out / "sweep.csv")))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert strip(again) == strip(first)                                   # same results, bit for bit
    assert main(["sweep", "--grid", "lr=1e-3", "--seeds", "2", "--out", str(out), *TINY]) == 2
    assert "holds a different sweep" in capsys.readouterr().err


def _descendants(pid):
    """Every live (non-zombie) process that descends from pid, by /proc."""
    children = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                stat = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat[0] != "Z":
                children.setdefault(int(stat[1]), []).append(int(p))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _alive(pids):
    alive = set()
    for p in pids:
        try:
            if open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
                alive.add(p)
        except OSError:
            pass
    return alive


HANG = 600      # seconds: only a hang takes this long, however busy the machine (a loaded CI ran past 60)


def _kill_driver_and_check(tmp_path, backend, wait_for, sig=signal.SIGKILL) -> str:
    """Kill a sweep's driver with ``sig`` once its workers run; no worker may outlive it. Returns
    what the driver wrote to stderr."""
    out = tmp_path / backend
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", "sweep", "--grid", "lr=1e-3,1e-2", "--seeds", "2",
                             "--jobs", "2", "--backend", backend, "--epochs", "500", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    start = time.time()
    while len(_descendants(proc.pid)) < wait_for and time.time() - start < HANG:
        time.sleep(0.2)
    workers = _descendants(proc.pid)
    assert len(workers) >= wait_for, "the sweep never started its workers"
    time.sleep(1.0)
    workers |= _descendants(proc.pid)
    proc.send_signal(sig)
    err = proc.communicate(timeout=HANG)[1]
    deadline = time.time() + HANG
    while _alive(workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not _alive(workers), "workers outlived their sweep"
    return err


def test_kill_of_a_sweep_stops_it_cleanly_and_says_how_to_finish_it(tmp_path):
    err = _kill_driver_and_check(tmp_path, "local", wait_for=2, sig=signal.SIGTERM)
    assert err.splitlines()[-1] == (f"rnnlab: terminated; the trials finished in {tmp_path / 'local'} are kept: "
                                    "run the same command again to finish the sweep"), err
    assert "leaked semaphore" not in err and "Traceback" not in err


def test_no_local_worker_outlives_a_killed_driver(tmp_path):
    _kill_driver_and_check(tmp_path, "local", wait_for=2)


@pytest.mark.slow
def test_ray_backend_gives_the_local_results_and_dies_with_its_driver(tmp_path):
    pytest.importorskip("ray", reason="the 'ray' extra is not installed (pip install 'rnnlab[ray]')")
    rows = {}
    for backend in ("local", "ray"):
        out = tmp_path / f"s-{backend}"
        assert main(["sweep", "--grid", "lr=1e-3,1e-2", "--seeds", "2", "--jobs", "2", "--backend", backend,
                     "--out", str(out), *TINY]) == 0
        rows[backend] = [{k: v for k, v in r.items() if k not in ("seconds", "run_dir")}
                         for r in csv.DictReader(open(out / "sweep.csv"))]
        assert (out / "runs" / "lr=0.01,seed=1" / "result.json").is_file()
    assert rows["ray"] == rows["local"]
    _kill_driver_and_check(tmp_path, "ray", wait_for=4)


def test_jobs_are_capped_at_the_trials_and_the_cores(tmp_path, monkeypatch, capsys):
    import rnnlab.experiments.sweep as sweep
    asked = []

    def inline(units, jobs_at_once, tensorboard):
        asked.append(jobs_at_once)
        return [r for unit in units for r in sweep.run_stack(unit)]
    monkeypatch.setattr(sweep, "_run_local", inline)
    assert main(["sweep", "--grid", "lr=1e-3,1e-2", "--jobs", "100000", "--out", str(tmp_path / "s"), *TINY]) == 0
    assert asked == [min(2, os.cpu_count() or 1)]
    capsys.readouterr()


def test_trials_that_share_shapes_train_as_stacks_and_give_the_runs_they_give_alone(tmp_path, capsys):
    """Four seeds x two learning rates on 2 workers: two stacks of four; every trial keeps its own
    run directory and gets the numbers it gets with --no-stack, bit for bit. 64-unit networks gain
    nothing from a stack, so auto trains them alone."""
    args = ["sweep", "--grid", "lr=3e-3,1e-2", "--seeds", "4", "--dtype", "float64", *TINY]
    assert main([*args, "--out", str(tmp_path / "stacked")]) == 0             # 8 units: stacking pays
    assert main([*args, "--no-stack", "--out", str(tmp_path / "alone")]) == 0
    capsys.readouterr()

    def rows(sweep):
        return {d.name: json.loads((d / "result.json").read_text())["row"]
                for d in (tmp_path / sweep / "runs").iterdir()}
    rows_s, rows_a = rows("stacked"), rows("alone")
    assert len(rows_s) == 8 and rows_s.keys() == rows_a.keys()
    for name, r in rows_s.items():
        assert r["stacked"] > 1 and rows_a[name]["stacked"] == 1
        assert r["final"] == rows_a[name]["final"] and r["best"] == rows_a[name]["best"]
        run = tmp_path / "stacked" / "runs" / name
        assert (run / "metrics.jsonl").is_file() and (run / "config.json").is_file()
        m_s = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        m_a = [json.loads(x) for x in (tmp_path / "alone" / "runs" / name / "metrics.jsonl").read_text().splitlines()]
        assert [x["test_loss"] for x in m_s] == [x["test_loss"] for x in m_a]
    from rnnlab.experiments.sweep import plan, stacks
    from rnnlab.training.config import TrainConfig
    jobs = plan(TrainConfig(model="gru"), {"lr": [1e-3, 1e-2]}, 3)
    assert [len(u) for u in stacks(jobs, 2)] == [1] * 6
    assert [len(u) for u in stacks(jobs, 2, always=True)] == [3, 3]
    assert [len(u) for u in stacks(plan(TrainConfig(hidden=16), {"lr": [1e-3, 1e-2]}, 3), 2)] == [3, 3]
