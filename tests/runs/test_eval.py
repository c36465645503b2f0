"""`rnnlab eval` evaluates a run as its training did: the same numbers as summary.json."""

import json

from rnnlab.cli import main


def test_eval_on_a_char_lm_run_reproduces_its_bits_per_character(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("".join(f"def f{i}(x):\n    return x * {i % 7} + {i % 3}\n" for i in range(300)))
    run = tmp_path / "lm"
    assert main(["train", "--task", "charlm", "--text", str(text), "--hidden", "16", "--embed", "8",
                 "--batch-size", "4", "--window", "16", "--epochs", "2", "--batches-per-epoch", "5",
                 "--out", str(run), "--quiet", "--no-report"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    summary = json.loads((run / "summary.json").read_text())
    assert f"test bpc {summary['final_test_bpc']:.4f}" in first
    assert f"test loss {summary['final_test_loss']:.4f}" in first
