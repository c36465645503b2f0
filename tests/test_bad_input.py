"""Bad input, table-driven, across every subcommand: exit status 2, one sentence on stderr that
names the problem, no traceback, and every file that existed before is byte-identical after
(nothing created, changed or removed)."""

import importlib.util
import io
import json
import os
import pathlib
import shutil
import zipfile

import numpy as np
import pytest

from rnnlab.cli import main

SHORT = ["--epochs", "2", "--batches-per-epoch", "2", "--quiet", "--no-report"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Runs in every state and files of every kind, made once."""
    root = tmp_path_factory.mktemp("world")
    p = {k: root / k for k in ("run", "cut", "file", "empty_dir", "notrun", "missing", "pyrun")}
    assert main(["train", "--out", str(p["run"]), *SHORT]) == 0
    assert main(["train", "--out", str(p["cut"]), *SHORT]) == 0
    for name in ("summary.json", "checkpoint.json"):                 # as a kill before the end leaves it
        (p["cut"] / name).unlink()
    for f in p["cut"].glob("checkpoint-*.npz"):
        f.unlink()
    p["file"].write_text("not a run\n")
    p["empty_dir"].mkdir()
    p["notrun"].mkdir()
    (p["notrun"] / "notes.txt").write_text("mine\n")

    def damaged(name, how):
        d = root / name
        shutil.copytree(p["run"], d)
        how(d)
        p[name] = d
    damaged("trunc", lambda d: [f.write_bytes(f.read_bytes()[:1000]) for f in d.glob("checkpoint-*.npz")])
    damaged("garbage", lambda d: (d / "checkpoint.json").write_text("{not json"))
    damaged("nonpz", lambda d: [f.unlink() for f in d.glob("checkpoint-*.npz")])
    damaged("nockptjson", lambda d: (d / "checkpoint.json").unlink())
    damaged("badcfg", lambda d: (d / "config.json").write_text("\x00\x01garbage"))
    damaged("reportdir", lambda d: ((d / "report.html").unlink(missing_ok=True), (d / "report.html").mkdir()))
    (root / "badplan").mkdir()
    (root / "badplan" / "sweep_plan.json").write_text("{not json")
    p["badplan"] = root / "badplan"
    damaged("sumtext", lambda d: (d / "summary.json").write_text('{"final_test_acc": "x"}'))
    damaged("sumlist", lambda d: (d / "summary.json").write_text("[]"))
    damaged("badroles", lambda d: (d / "analysis.json").write_text('{"role_counts": 5}'))
    damaged("badevent", lambda d: (d / "events.jsonl").write_text('{"epoch": 1}\n'))
    damaged("badmetrics", lambda d: (d / "metrics.jsonl").write_text(
        (d / "metrics.jsonl").read_text().replace("\n", "\n{cut\n", 1)))

    def foreign(d):                                                   # weights of another model
        other = root / "other"
        assert main(["train", "--out", str(other), "--hidden", "8", *SHORT]) == 0
        for f in d.glob("checkpoint*"):
            f.unlink()
        for f in other.glob("checkpoint*"):
            shutil.copy(f, d / f.name)
    damaged("foreign", foreign)
    # interrupted runs whose training state is not theirs, or damaged in its fields
    def cut_copy(name, how):
        d = root / name
        shutil.copytree(p["cut"], d)
        how(d)
        p[name] = d

    def state_field(key, value):
        def edit(d):
            meta = json.loads((d / "state.json").read_text())
            meta[key] = value
            (d / "state.json").write_text(json.dumps(meta))
        return edit

    def other_runs_state(d):
        other = root / "other_cut"
        assert main(["train", "--out", str(other), *SHORT]) == 0
        for f in d.glob("state*"):
            f.unlink()
        for f in other.glob("state*"):
            shutil.copy(f, d / f.name)
    cut_copy("foreignstate", other_runs_state)
    cut_copy("negepoch", state_field("epoch", -3))
    cut_copy("bigepoch", state_field("epoch", 99))
    cut_copy("textiter", state_field("iteration", "x"))
    cut_copy("nomodel", state_field("model", None))
    # a run of a task made in Python, written before runs kept its held-out split (heldout.npz)
    from rnnlab.data.task import Task
    from rnnlab.runs.writer import RunWriter
    from rnnlab.training.config import TrainConfig
    from rnnlab.training.loop import Trainer
    X = np.random.default_rng(0).standard_normal((60, 5, 2)).astype(np.float32)
    task = Task.from_arrays(X, (X.sum(axis=(1, 2)) > 0).astype(np.int64))
    p["pyrun"].mkdir()
    Trainer(task, config=TrainConfig(epochs=1, batch_size=8, hidden=4, layers=1, dropout=0.0),
            callbacks=[RunWriter(p["pyrun"])]).fit()
    p["nanrun"] = root / "nanrun"                        # the same run with a held-out split full of NaN
    shutil.copytree(p["pyrun"], p["nanrun"])
    with np.load(p["nanrun"] / "heldout.npz") as f:
        held = dict(f)
    np.savez(p["nanrun"] / "heldout.npz", **dict(held, X=np.full_like(held["X"], np.nan)))
    (p["pyrun"] / "heldout.npz").unlink()
    # text files
    (root / "empty.txt").write_text("   \n")
    (root / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 100)
    (root / "short.txt").write_text("tiny text")
    p.update(txt_empty=root / "empty.txt", txt_latin1=root / "latin1.txt", txt_short=root / "short.txt")
    # .npz files
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 6, 3)).astype(np.float32)
    y = (X.sum(axis=(1, 2)) > 0).astype(np.int64)
    npz = {"noy": dict(X=X), "x2d": dict(X=X[:, :, 0], y=y), "mismatch": dict(X=X, y=y[:30]),
           "object": dict(X=X, y=np.array([None] * 40, dtype=object)),
           "biglengths": dict(X=X, y=y, lengths=np.full(40, 9)), "unknown": dict(X=X, y=y, w=y),
           "nan": dict(X=np.where(X > 1, np.nan, X), y=y), "floatclasses": dict(X=X, y=y.astype(float)),
           "complex": dict(X=X.astype(complex), y=y), "xtestonly": dict(X=X, y=y, X_test=X),
           "featmismatch": dict(X=X, y=y, X_test=X[:, :, :2], y_test=y), "one": dict(X=X[:1], y=y[:1]),
           "negclass": dict(X=X, y=y - 1), "zerolengths": dict(X=X, y=y, lengths=np.zeros(40, np.int64)),
           "floatlengths": dict(X=X, y=y, lengths=np.full(40, 3.5)), "ok": dict(X=X, y=y),
           "ytooshort": dict(X=X, y=np.zeros((40, 5), np.int64)), "empty": dict(X=X[:0], y=y[:0]),
           "oneclass": dict(X=X, y=np.ones(40, np.int64)),
           "lengthstestonly": dict(X=X, y=y, lengths_test=np.full(4, 6)),
           "hugeclass": dict(X=X, y=np.where(np.arange(40) == 0, 10**9, y))}
    for name, arrays in npz.items():
        np.savez(root / f"{name}.npz", **arrays)
        p[f"npz_{name}"] = root / f"{name}.npz"
    header = np.lib.format.header_data_from_array_1_0(X)          # an .npy header claiming 10^9 x 100 x 10
    header["shape"] = (10**9, 100, 10)
    claim = io.BytesIO()
    np.lib.format.write_array_header_1_0(claim, header)
    with zipfile.ZipFile(root / "claims.npz", "w") as z:
        z.writestr("X.npy", claim.getvalue() + X.tobytes())
        z.writestr("y.npy", _npy(y))
    p["npz_claims"] = root / "claims.npz"
    with zipfile.ZipFile(root / "plaintext.npz", "w") as z:           # members that are not .npy at all
        z.writestr("X.npy", "hello")
        z.writestr("y.npy", "world")
    p["npz_plaintext"] = root / "plaintext.npz"
    os.mkfifo(root / "fifo")
    p["fifo"] = root / "fifo"
    (root / "text.npz").write_text("hello")
    p["npz_text"] = root / "text.npz"
    whole = (root / "ok.npz").read_bytes()
    (root / "truncated.npz").write_bytes(whole[: len(whole) // 2])
    p["npz_truncated"] = root / "truncated.npz"
    assert zipfile.is_zipfile(root / "ok.npz")
    np.save(root / "mask33.npy", np.ones((3, 3)))                    # a mask the wrong shape for 64 units
    np.save(root / "masksign.npy", -np.ones((64, 64)))               # a mask with a sign
    p["mask_shape"], p["mask_sign"] = root / "mask33.npy", root / "masksign.npy"
    p["root"] = root
    return p


CASES = [
    # ---- train: configuration values
    ("train --epochs 0", "epochs must be at least 1"),
    ("train --epochs -3", "epochs must be at least 1"),
    ("train --epochs abc", "invalid int value: 'abc'"),
    ("train --lr 0", "lr must be > 0"),
    ("train --lr -1", "lr must be > 0"),
    ("train --lr nan", "lr must be finite"),
    ("train --lr inf", "lr must be finite"),
    ("train --dropout 1", "dropout must be < 1"),
    ("train --dropout -0.1", "dropout must be >= 0"),
    ("train --hidden 0", "hidden must be at least 1"),
    ("train --layers 0", "layers must be at least 1"),
    ("train --batch-size 0", "batch_size must be at least 1"),
    ("train --batch-size 99999", "larger than the 5000 training sequences"),
    ("train --task parity", "task must be one of"),
    ("train --task neurogym:", "needs a task after the colon"),
    ("train --task neurogym:PerceptualDecisionMaking-v0 --env-kwargs dt=100", "--env-kwargs must be a JSON object"),
    ("train --task neurogym:PerceptualDecisionMaking-v0 --env-kwargs [100]", "--env-kwargs must be a JSON object"),
    ("train --env-kwargs {{}}", "env_kwargs applies to NeuroGym tasks only"),
    ("train --task neurogym:NoSuchTask-v0",
     "NeuroGym has no task 'NoSuchTask-v0'" if importlib.util.find_spec("neurogym")
     else "pip install 'rnnlab[neurogym]'"),
    ("train --model mamba", "model must be one of"),
    ("train --nonlinearity sigmoid", "nonlinearity must be one of"),
    ("train --init zeros", "init must be one of"),
    ("train --optimizer lbfgs", "optimizer must be one of"),
    ("train --schedule exp", "schedule must be one of"),
    ("train --dtype float16", "dtype must be one of"),
    ("train --momentum 1", "momentum must be < 1"),
    ("train --momentum -0.5", "momentum must be >= 0"),
    ("train --nesterov", "nesterov needs optimizer 'sgd'"),
    ("train --forget-bias 1 --model gru", "forget_bias applies to the LSTM only"),
    ("train --nonlinearity relu --model lstm", "nonlinearity applies to the vanilla RNN"),
    ("train --nonlinearity relu --model transformer", "nonlinearity applies to the vanilla RNN"),
    ("train --task charlm --bidirectional", "reads left to right only; drop --bidirectional"),
    ("train --task charlm --model rnn --nonlinearity relu", "vanilla RNN outside the char-LM"),
    ("train --clip -1", "clip must be >= 0"),
    ("train --clip-value -1", "clip_value must be >= 0"),
    ("train --weight-decay -1", "weight_decay must be >= 0"),
    ("train --lr-gamma 0", "lr_gamma must be > 0"),
    ("train --lr-gamma 2", "lr_gamma must be <= 1"),
    ("train --lr-step 0", "lr_step must be at least 1"),
    ("train --spike-factor 1", "spike_factor must be > 1"),
    ("train --lr-cut 0", "lr_cut must be > 0"),
    ("train --lr-cut 1", "lr_cut must be < 1"),
    ("train --max-recoveries -1", "max_recoveries must be at least 0"),
    ("train --probe-every -1", "probe_every must be at least 0"),
    ("train --checkpoint-every -1", "checkpoint_every must be at least 0"),
    ("train --seed -1", "seed must be at least 0"),
    ("train --data-seed -1", "data_seed must be at least 0"),
    ("train --train-size 0", "train_size must be at least 1"),
    ("train --test-size 0", "test_size must be at least 1"),
    ("train --length 0", "length must be at least 1"),
    ("train --features 0", "features must be at least 1"),
    ("train --task flipflop --bits 0", "bits must be at least 1"),
    ("train --task flipflop --pulse-prob 0", "pulse_prob must be > 0"),
    ("train --task flipflop --pulse-prob 1.5", "pulse_prob must be <= 1"),
    ("train --curriculum 10,x --curriculum-every 1", "comma-separated lengths"),
    ("train --curriculum 10,5 --curriculum-every 1", "rise strictly"),
    ("train --curriculum 10,20 --curriculum-every 1", "below --length"),
    ("train --curriculum 5,10", "needs --curriculum-every"),
    ("train --task charlm --curriculum 5 --curriculum-every 1", "vary --window"),
    ("train --task adding --length 1", "adding problem needs length >= 2"),
    ("train --task temporal-order --length 5", "temporal-order needs length >= 10"),
    ("train --preset nope", "invalid choice: 'nope'"),
    ("train --bogus-flag", "unrecognized arguments: --bogus-flag"),
    # ---- train: text files
    ("train --task charlm --text {txt_empty}", "is empty"),
    ("train --task charlm --text {txt_latin1}", "is not UTF-8 text"),
    ("train --task charlm --text {empty_dir}", "is a directory"),
    ("train --task charlm --text {missing}", "does not exist"),
    ("train --task charlm --text {txt_short}", "the language model needs at least"),
    ("train --text {txt_short}", "--text only applies to --task charlm"),
    # ---- train: output locations
    ("train --out {run}", "already exists and is not empty"),
    ("train --out {notrun}", "already exists and is not empty"),
    ("train --out {file}", "exists and is a file"),
    ("train --out {file}/sub", "Not a directory"),
    # ---- train: resume
    ("train --resume {missing}", "does not exist"),
    ("train --resume {file}", "is a file, not a run directory"),
    ("train --resume {notrun}", "not an rnnlab run directory"),
    ("train --resume {empty_dir}", "not an rnnlab run directory"),
    ("train --resume {run}", "already finished all 2 epochs"),
    ("train --resume {cut} --lr 0.1", "drop --lr"),
    ("train --resume {foreignstate}", "belongs to another run (its run id is not the one in config.json)"),
    ("train --resume {negepoch}", "is damaged: its epoch is -3, which this run of 2 epochs cannot have"),
    ("train --resume {bigepoch}", "is damaged: its epoch is 99"),
    ("train --resume {textiter}", "is damaged: its iteration is 'x'"),
    ("train --resume {nomodel}", "does not fit its config.json"),
    ("train --resume {cut} --out {missing}", "drop --preset/--out/--force"),
    ("train --resume {badcfg}", "is unreadable"),
    # ---- train: a user's arrays
    ("train --data {npz_noy}", "has no array y"),
    ("train --data {npz_lengthstestonly}", "has lengths_test but no X_test and y_test"),
    ("train --data {npz_claims}", "array X of shape (1000000000, 100, 10) would need about"),
    ("train --data {npz_plaintext}", "its member X is not a NumPy array"),
    ("train --data {npz_hugeclass}", "1,000,000,001 outputs) would need about"),
    ("train --hidden 200000", "would need about"),
    ("train --length 100000000", "would need about"),
    ("analyze {run} --fp-starts 1000000000", "fixed-point starts of"),
    ("train --data {npz_x2d}", "X must have shape (N, T, D)"),
    ("train --data {npz_mismatch}", "X has 40 sequences but y has 30"),
    ("train --data {npz_object}", "holds Python objects"),
    ("train --data {npz_biglengths}", "lengths must lie in [1, 6]"),
    ("train --data {npz_unknown}", "unknown array(s) w"),
    ("train --data {npz_text}", "not a readable .npz file"),
    ("train --data {npz_truncated}", "not a readable .npz file"),
    ("train --data {missing}", "does not exist"),
    ("train --data {empty_dir}", "is a directory, not a file"),
    ("train --data {fifo}", "is a named pipe (FIFO), not a file"),
    ("train --task charlm --text /dev/zero", "--text /dev/zero is a device, not a file"),
    ("train --curriculum 5,10 --curriculum-target nan", "curriculum_target must be finite"),
    ("sweep --quiet", "unrecognized arguments: --quiet; see 'rnnlab sweep --help'"),
    ("train --data {npz_nan}", "holds NaN or infinite values"),
    ("train --data {npz_floatclasses}", "save them as integers"),
    ("train --data {npz_complex}", "must hold real numbers"),
    ("train --data {npz_xtestonly}", "only one of X_test and y_test"),
    ("train --data {npz_featmismatch}", "test inputs have 2 features but training inputs 3"),
    ("train --data {npz_one}", "too few to hold some out"),
    ("train --data {npz_oneclass}", "every training target is class 1"),
    ("train --data {npz_negclass}", "class targets must be 0, 1, 2"),
    ("train --data {npz_zerolengths}", "lengths must lie in [1, 6]"),
    ("train --data {npz_floatlengths}", "lengths must be integers"),
    ("train --data {npz_ytooshort}", "shape (N,) or (N, T) = (N, 6)"),
    ("train --data {npz_empty}", "X must have shape (N, T, D) with N, T, D >= 1"),
    ("train --data {npz_ok} --task adding", "--task must be 'npz'"),
    ("train --task npz", "--task npz needs --data"),
    # ---- eval
    ("eval {missing}", "does not exist"),
    ("eval {file}", "is a file, not a run directory"),
    ("eval {notrun}", "not an rnnlab run directory"),
    ("eval {cut}", "continue it with: rnnlab train --resume"),
    ("eval {trunc}", "does not match the checksum"),
    ("eval {garbage}", "is not valid JSON"),
    ("eval {nonpz}", "is missing"),
    ("eval {foreign}", "does not fit its config.json"),
    ("eval {badcfg}", "is unreadable"),
    ("eval {pyrun}", "task made in Python and holds no heldout.npz"),
    ("eval {nanrun}", "heldout.npz holds NaN, infinite or non-numeric values in X"),
    ("analyze {nanrun}", "heldout.npz holds NaN, infinite or non-numeric values in X"),
    # ---- sample
    ("sample {run}", "sample needs a run trained with --task charlm"),
    ("sample {run} --length 0", "--length must be at least 1"),
    ("sample {run} --temperature 0", "--temperature must be a finite number > 0"),
    ("sample {run} --temperature inf", "--temperature must be a finite number > 0"),
    ("sample {run} --top-k -3", "--top-k must be 0"),
    ("sample {run} --seed -1", "--seed must be 0 or a positive integer"),
    ("sample {missing}", "does not exist"),
    ("sample {cut}", "continue it with: rnnlab train --resume"),
    # ---- analyze
    ("analyze {missing}", "does not exist"),
    ("analyze {cut}", "continue it with: rnnlab train --resume"),
    ("analyze {run} --fp-starts 0", "--fp-starts must be at least 1"),
    ("analyze {run} --fp-starts -5", "--fp-starts must be at least 1"),
    ("analyze {run} --fp-tol -1", "--fp-tol must be > 0"),
    ("analyze {run} --fp-tol 0", "--fp-tol must be > 0"),
    ("analyze {run} --fp-tol nan", "--fp-tol must be finite"),
    ("analyze {run} --fp-seconds 0", "--fp-seconds must be > 0"),
    ("analyze {run} --fp-rounds 0", "--fp-rounds must be at least 1"),
    ("analyze {run} --cell-regex a", "--cell-regex scores units against a state of a text"),
    ("analyze {run} --fp-seconds nan", "--fp-seconds must be finite"),
    ("analyze {run} --fp-input nan,0", "must be finite numbers"),
    ("analyze {run} --fp-input 1,2", "needs 10 values"),
    ("analyze {run} --fp-input a", "comma-separated numbers"),
    ("analyze {run} --fp-layer 7", "0..1 or -1 for the last, got 7"),
    ("analyze {run} --fp-layer -3", "0..1 or -1 for the last, got -3"),
    ("analyze {trunc}", "does not match the checksum"),
    ("analyze {pyrun}", "task made in Python and holds no heldout.npz"),
    ("analyze {foreign}", "does not fit its config.json"),
    # ---- report and doctor
    ("report {missing}", "does not exist"),
    ("report {file}", "is a file, not a run directory"),
    ("report {badcfg}", "is unreadable"),
    ("report {sumtext}", "summary.json is damaged"),
    ("report {reportdir}", "report.html: it is a directory, not a file"),
    ("sweep --grid lr=1e-3 --out {badplan}", "sweep_plan.json is damaged"),
    ("report {sumlist}", "summary.json is damaged"),
    ("report {badroles}", "analysis.json is damaged"),
    ("doctor {sumlist}", "summary.json is damaged"),
    ("doctor {missing}", "does not exist"),
    ("doctor {trunc}", "does not match the checksum"),
    ("doctor {garbage}", "is not valid JSON"),
    ("doctor {nonpz}", "is missing"),
    ("doctor {nockptjson}", "checkpoint.json is missing"),
    ("doctor {badmetrics}", "line 2 is not valid JSON"),
    ("doctor {badcfg}", "is unreadable"),
    ("doctor {badevent}", "are damaged (KeyError"),
    # ---- sweep
    ("sweep lengths --lengths a,b", "--lengths must be comma-separated integers"),
    ("sweep lengths --lengths 0", "length must be at least 1"),
    ("sweep lengths --models rnn,foo", "model must be one of"),
    ("sweep lengths --seeds 0", "--seeds and --jobs must be at least 1"),
    ("sweep lengths --jobs 0", "--seeds and --jobs must be at least 1"),
    ("sweep --grid lr=1e-3,1e-2 --seeds 1099511627776", "would train 2,199,023,255,552 trials"),
    ('sweep --task neurogym:PerceptualDecisionMaking-v0 --env-kwargs {{"dt":0}} --grid lr=1e-3',
     "dt is the time step in milliseconds and must be a positive number"),
    ("sweep --backend ray --address 127.0.0.1:1 --grid lr=1e-3 --out {root}/rayout", "cannot reach a Ray cluster at"),
    ("sweep --backend ray --address nowhere --grid lr=1e-3 --out {root}/rayout", "--address must be HOST:PORT"),
    ("compare --params 1000000000000 --quick --out {root}/cmpout", "--params from 100 to 2,000,000"),
    ("sweep lengths --out {run}", "already exists and is not empty"),
    ("sweep volumes", "invalid choice: 'volumes'"),
    # ---- train: the continuous-time rate network
    ("train --model ctrnn --dt 20 --tau 10", "must be larger than"),
    ("train --model ctrnn --dt 0", "dt must be > 0"),
    ("train --model ctrnn --dale 1.5", "strictly between 0 and 1"),
    ("train --model ctrnn --dale -0.2", "strictly between 0 and 1"),
    ("train --rec-noise 0.1", "belongs to the continuous-time rate network"),
    ("train --model gru --input-noise 0.1", "which has no noise"),
    ("train --model ctrnn --rec-noise -0.1", "a noise std must be 0 or more"),
    ("train --model ctrnn --rate-l2 -1", "a penalty must be 0 or more"),
    ("train --weight-l1 -0.5", "a penalty must be 0 or more"),
    ("train --model ctrnn --readout excitatory", "only Dale's law defines"),
    ("train --model ctrnn --rec-mask {mask_shape}", "but the weight it gates is (64, 64)"),
    ("train --model ctrnn --rec-mask {mask_sign}", "negative values"),
    ("train --model ctrnn --rec-mask {file}", "is not a readable .npy array"),
    ("train --model ctrnn --input-mask {missing}", "does not exist"),
    ("train --model ctrnn --areas 10,10 --area-density 1,0,0,1", "must be positive and add up to"),
    ("train --model ctrnn --areas 32,32", "areas need both"),
    ("train --model ctrnn --density 0", "density must be > 0"),
    ("train --model ctrnn --bidirectional", "runs forward in time only"),
    ("train --nonlinearity softplus", "softplus is a rate function of the ctrnn"),
    # ---- the command itself
    ("", "the following arguments are required"),
    ("frobnicate", "invalid choice: 'frobnicate'"),
]


def snapshot(root: pathlib.Path) -> dict:
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


@pytest.mark.parametrize("command,fragment", CASES, ids=[c for c, _ in CASES])
def test_bad_input(world, capsys, command, fragment):
    argv = [w.format(**world) for w in command.split()]
    before = snapshot(world["root"])
    with pytest.raises(SystemExit) as e:
        raise SystemExit(main(argv))
    out, err = capsys.readouterr()
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert e.value.code == 2, (command, out, err)
    assert "Traceback" not in err and len(lines) == 1, err
    assert fragment in lines[0], (fragment, err)
    assert snapshot(world["root"]) == before, "a file was created, changed or removed"


def test_there_are_over_a_hundred_cases():
    assert len(CASES) >= 100 and len({c for c, _ in CASES}) == len(CASES)


@pytest.mark.slow      # 8 s: trains a diverging run for 6 epochs; runs in CI
def test_force_replaces_an_old_run_and_keeps_the_users_files(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--nonlinearity", "relu", "--init", "identity", "--optimizer",
                 "sgd", "--lr", "0.05", "--epochs", "6", "--max-recoveries", "12", "--quiet"]) == 0
    assert (run / "events.jsonl").read_text().strip()                  # the old run had recoveries
    (run / "my_notes.txt").write_text("keep me")
    assert main(["train", "--out", str(run), "--force", *SHORT]) == 0
    assert not (run / "events.jsonl").exists() and not (run / "report.html").exists()
    assert (run / "my_notes.txt").read_text() == "keep me"
    assert len(list(run.glob("checkpoint-*.npz"))) == 1 and len(list(run.glob("state-*.npz"))) == 1
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["config"]["epochs"] == 2


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a)
    return buf.getvalue()
