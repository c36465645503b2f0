"""The README is tested: every command of its command-line section runs (with a short-run
override appended: the last value of a flag wins) and its Python examples run as written."""

import pathlib
import re
import shlex

import numpy as np
import pytest

from rnnlab.cli import main

README = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")

# Appended to every command of its kind so the whole section runs in seconds.
SHORT = {"train": ["--epochs", "2", "--batches-per-epoch", "2", "--train-size", "200", "--test-size",
                   "50", "--corpus-chars", "60000", "--quiet", "--no-report"],
         "sweep": ["--seeds", "1", "--epochs", "1", "--batches-per-epoch", "1", "--train-size", "100",
                   "--test-size", "20", "--jobs", "1"],
         "sweep lengths": ["--lengths", "20,30"],
         "sample": ["--length", "20"],
         "compare": ["--tasks", "seed", "--seeds", "1", "--params", "8000", "--quick"],
         "analyze": ["--fp-starts", "32"],
         "similarity": ["--probe-trials", "16", "--no-topology"]}


def section(title: str, level: str = "## ") -> str:
    start = README.index(level + title)
    end = README.find("\n" + level, start + len(level))
    return README[start:end if end > 0 else len(README)]


def commands(text: str) -> list[list[str]]:
    """Each `rnnlab ...` command of the bash blocks, continuation lines joined, comments dropped."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "rnnlab":
                out.append(words[1:])
    return out


@pytest.mark.slow       # about 20 runs, each drawing its figures: 37 s, a quarter of the default suite's wall
def test_every_command_line_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 8, 3)).astype(np.float32)
    np.savez("mine.npz", X=X, y=(X.sum(axis=(1, 2)) > 0).astype(np.int64))
    pathlib.Path("book.txt").write_text("It was a bright cold day in April. " * 2000, encoding="utf-8")
    cmds = commands(section("Command line"))
    assert len(cmds) >= 20
    for argv in cmds:
        if "--help" in argv:
            with pytest.raises(SystemExit) as e:
                main(argv)
            assert e.value.code == 0
            continue
        if argv[0] == "train" and "--resume" in argv:          # make the killed run it continues
            run = argv[argv.index("--resume") + 1]
            assert main(["train", "--out", run, "--epochs", "3", "--batches-per-epoch", "2", "--quiet",
                         "--no-report"]) == 0
            for name in ("summary.json", "checkpoint.json"):   # what a kill before the end leaves
                pathlib.Path(run, name).unlink()
            extra = []
        else:
            extra = SHORT.get(argv[0], []) + (SHORT["sweep lengths"] if argv[:2] == ["sweep", "lengths"] else [])
        code = main(argv + extra)
        err = capsys.readouterr().err
        assert code == 0 and "Traceback" not in err, (argv, err)


@pytest.mark.parametrize("title", ["Your own task", "Python API"])
def test_python_examples_run(title, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", section(title, "### " if title == "Your own task" else "## "),
                        re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, f"README: {title}", "exec"), {})


def readme_numbers():
    import importlib.util
    root = pathlib.Path(__file__).parent.parent
    spec = importlib.util.spec_from_file_location("readme_numbers", root / "benchmarks" / "readme_numbers.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_readme_numbers_are_the_regenerating_scripts_last_output():
    """Each README block of measured numbers is, word for word, the last output of
    benchmarks/readme_numbers.py for it (kept in docs/results/readme/), every block the script
    makes is quoted once, and each states the environment it was measured in."""
    script = readme_numbers()
    quoted = re.findall(r"<!-- numbers: (\w+) -->", README)
    assert sorted(quoted) == sorted(script.BLOCKS)
    for name in script.BLOCKS:
        (block,) = [m.group(2) for m in script.block_pattern(name).finditer(README)]
        last = (script.RESULTS / f"{name}.md").read_text(encoding="utf-8")
        assert block == last and block.strip(), f"README's {name} block is not the script's last output"
        assert block.rstrip().splitlines()[-1].startswith(script.ENVIRONMENT_MARK + " Python"), name


def test_the_spread_check_catches_a_moved_number():
    script = readme_numbers()
    block = script.readme_block("presets")
    assert script.check("presets", block, block) == []
    worse = block.replace("**99.38 ± 0.45%**", "**98.00 ± 0.60%**")
    assert worse != block and "final test acc" in script.check("presets", block, worse)[0]
    within = block.replace("**99.38 ± 0.45%**", "**99.04 ± 0.36%**").replace("1.9 s", "9.9 s")
    assert script.check("presets", block, within) == []          # inside the sd; seconds are not compared
    counts = script.readme_block("flipflop")
    assert script.check("flipflop", counts, counts.replace("| 8 | 12 |", "| 7 | 12 |", 1))


@pytest.mark.slow     # CI re-derives the README numbers that fit in its time (NeuroGym: test_neurogym.py)
@pytest.mark.parametrize("name", ["presets", "flipflop", "analysis", "lr_sweep", "cells", "universality",
                                  "universality_8"])
def test_readme_numbers_rederive(name):
    import subprocess
    import sys
    script = pathlib.Path(__file__).parent.parent / "benchmarks" / "readme_numbers.py"
    r = subprocess.run([sys.executable, str(script), "--check", name], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
