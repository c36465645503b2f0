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
