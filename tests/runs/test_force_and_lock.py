"""--force removes only what rnnlab recorded writing; one process at a time writes a run directory."""

import subprocess
import sys
import time

from rnnlab.cli import main

SHORT = ["--epochs", "2", "--batches-per-epoch", "2", "--train-size", "100", "--test-size", "20", "--quiet"]


def test_force_never_removes_a_users_file(tmp_path, capsys):
    proj = tmp_path / "proj"
    assert main(["train", "--out", str(proj), *SHORT]) == 0
    assert (proj / "analysis.json").is_file()
    (proj / "sweep.csv").write_text("my own table\n")                 # named like a sweep's, not a train run's
    (proj / "README.md").write_text("my notes\n")
    (proj / "events.jsonl").write_text('{"mine": 1}\n')              # a name a train run writes
    capsys.readouterr()
    assert main(["train", "--out", str(proj), *SHORT, "--force"]) == 2
    err = capsys.readouterr().err
    assert "events.jsonl was not written by rnnlab here" in err and "Traceback" not in err
    assert (proj / "events.jsonl").read_text() == '{"mine": 1}\n'    # nothing lost
    (proj / "events.jsonl").rename(tmp_path / "events.jsonl")
    assert main(["train", "--out", str(proj), *SHORT, "--force", "--no-report"]) == 0
    assert (proj / "sweep.csv").read_text() == "my own table\n" and (proj / "README.md").read_text() == "my notes\n"
    assert not (proj / "analysis.json").exists() and not (proj / "report.html").exists()   # the old run's, gone
    assert (proj / "summary.json").is_file()


def hold_lock(run_dir):
    code = ("import sys, time\nfrom rnnlab.runs.lock import RunLock\n"
            f"with RunLock({str(run_dir)!r}):\n    print('held', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_being_written_is_refused_and_a_dead_writers_lock_is_not(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "--out", str(run), *SHORT, "--epochs", "3", "--no-report"]) == 0
    for name in ("summary.json", "checkpoint.json"):                   # as if it were killed mid-run
        (run / name).unlink()
    logs = (run / "metrics.jsonl").read_text()
    proc = hold_lock(run)
    try:
        capsys.readouterr()
        assert main(["train", "--resume", str(run)]) == 2
        err = capsys.readouterr().err
        assert f"is being written by another process (process {proc.pid})" in err
        assert main(["eval", str(run)]) == 2
        assert "still being written by a running process" in capsys.readouterr().err
        assert main(["doctor", str(run)]) == 0
        assert f"still training (process {proc.pid})" in capsys.readouterr().out
        assert (run / "metrics.jsonl").read_text() == logs                # nothing trimmed or appended
    finally:
        proc.kill()
        proc.wait()
    time.sleep(0.1)
    assert main(["train", "--resume", str(run)]) == 0                     # the dead process's lock is gone
    capsys.readouterr()


def snapshot(root):
    """Every file under ``root`` with its bytes: what a refused command must leave as it was."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_record_naming_a_file_outside_the_run_is_refused_and_nothing_is_removed(tmp_path, capsys):
    import json
    run, outside = tmp_path / "run", tmp_path / "precious.txt"
    assert main(["train", "--out", str(run), *SHORT, "--no-report"]) == 0
    outside.write_text("keep me\n")
    record = run / ".rnnlab-files.json"
    written = json.loads(record.read_text())["written"]
    for bad in (str(outside), "../precious.txt", "sub/../../precious.txt"):
        record.write_text(json.dumps({"written": written + [bad]}))
        before = snapshot(tmp_path)
        capsys.readouterr()
        assert main(["train", "--out", str(run), *SHORT, "--force"]) == 2
        err = capsys.readouterr().err
        assert "is not inside" in err and "nothing was removed" in err and "Traceback" not in err
        assert snapshot(tmp_path) == before, bad


def test_a_damaged_record_or_one_that_is_a_folder_is_refused_before_anything_is_removed(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *SHORT, "--no-report"]) == 0
    record = run / ".rnnlab-files.json"
    for damage in ("folder", "text"):
        if damage == "folder":
            kept = record.read_bytes()
            record.unlink()
            record.mkdir()
        else:
            record.rmdir()
            record.write_text("{not json")
        before = snapshot(run)
        capsys.readouterr()
        assert main(["train", "--out", str(run), *SHORT, "--force"]) == 2
        err = capsys.readouterr().err
        assert ".rnnlab-files.json" in err and "Traceback" not in err and err.count("\n") == 1
        assert snapshot(run) == before and (run / "summary.json").is_file()
    record.write_bytes(kept)
    assert main(["train", "--out", str(run), *SHORT, "--force", "--no-report"]) == 0


def test_train_stack_checks_every_members_directory_before_writing_any(tmp_path):
    import pytest

    import rnnlab
    from rnnlab.errors import RunDirError
    a, b = tmp_path / "a", tmp_path / "b"
    b.mkdir()
    (b / "notes.txt").write_text("mine\n")
    cfgs = [rnnlab.TrainConfig(epochs=1, batches_per_epoch=1, train_size=50, test_size=20, seed=s) for s in (0, 1)]
    with pytest.raises(RunDirError, match="already exists and is not empty"):
        rnnlab.train_stack(cfgs, [a, b])
    assert not a.exists() and snapshot(b) == {"notes.txt": b"mine\n"}
    with pytest.raises(rnnlab.InputError, match="the same run directory"):
        rnnlab.train_stack(cfgs, [a, a])
    assert not a.exists()


def test_sweep_force_keeps_the_users_files_inside_trial_directories(tmp_path):
    sweep = ["sweep", "--grid", "lr=1e-3,3e-3", "--seeds", "1", "--hidden", "8", "--epochs", "1",
             "--batches-per-epoch", "1", "--train-size", "60", "--test-size", "20", "--jobs", "1"]
    for stack in ("always", "never"):
        out = tmp_path / stack
        assert main([*sweep, "--stack", stack, "--out", str(out)]) == 0
        trial = next(p for p in (out / "runs").iterdir() if p.name.startswith("lr=0.001"))
        (trial / "my_notes.txt").write_text("mine\n")
        (out / "runs" / "README.txt").write_text("about these runs\n")
        old = snapshot(trial)
        assert main([*sweep, "--stack", stack, "--out", str(out), "--force"]) == 0
        assert (trial / "my_notes.txt").read_text() == "mine\n"
        assert (out / "runs" / "README.txt").read_text() == "about these runs\n"
        assert (trial / "result.json").is_file() and snapshot(trial).keys() == old.keys()


def test_a_sweep_directory_is_locked_while_a_sweep_writes_it(tmp_path, capsys):
    sweep = ["sweep", "--grid", "lr=1e-3,3e-3", "--seeds", "1", "--hidden", "8", "--epochs", "1",
             "--batches-per-epoch", "1", "--train-size", "60", "--test-size", "20", "--jobs", "1"]
    out = tmp_path / "sw"
    assert main([*sweep, "--out", str(out)]) == 0
    before = snapshot(out)
    proc = hold_lock(out)                                   # a second sweep still running there
    try:
        for extra in ([], ["--force"]):
            capsys.readouterr()
            assert main([*sweep, "--out", str(out), *extra]) == 2
            err = capsys.readouterr().err
            assert f"is being written by another process (process {proc.pid})" in err and "Traceback" not in err
            assert {k: v for k, v in snapshot(out).items() if k != ".rnnlab.lock"} == \
                {k: v for k, v in before.items() if k != ".rnnlab.lock"}
    finally:
        proc.kill()
        proc.wait()
    assert main([*sweep, "--out", str(out)]) == 0          # its lock died with it
