"""``rnnlab`` command line: a thin layer over library calls.

Every user error is an ``RnnlabError``: printed as one sentence on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from .config import PRESETS, TrainConfig
from .errors import RnnlabError

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (--batch-size for batch_size); default None = keep preset."""
    g = p.add_argument_group("configuration (overrides the preset)")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        typ = _TYPES[f.type if isinstance(f.type, str) else f.type.__name__]
        help_ = f"{f.metadata['help']} [seed preset: {getattr(PRESETS['seed'], f.name)}]"
        if typ is bool:
            g.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_)
        else:
            g.add_argument(flag, dest=f.name, type=typ, default=None, metavar=f.name.upper(), help=help_)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tr = sub.add_parser("train", help="train a model and write its run directory",
                        description="Train a model. With no arguments: the seed experiment.")
    tr.add_argument("--preset", default="seed", choices=sorted(PRESETS),
                    help="starting configuration (default: seed)")
    tr.add_argument("--out", type=Path, default=None,
                    help="run directory (default: runs/PRESET-TIMESTAMP)")
    tr.add_argument("--force", action="store_true", help="write into a non-empty --out")
    tr.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    _add_config_flags(tr)

    ev = sub.add_parser("eval", help="re-evaluate a saved run from its checkpoint")
    ev.add_argument("run_dir", type=Path)
    return parser


def config_from_args(args) -> TrainConfig:
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                 if getattr(args, f.name) is not None}
    return PRESETS[args.preset].replace(**overrides)


def cmd_train(args) -> int:
    from .progress import EpochPrinter
    from .train import RunWriter, Trainer, default_run_dir, prepare_run_dir

    cfg = config_from_args(args)
    trainer = Trainer(cfg)                      # builds data and model: any config error stops here
    out = prepare_run_dir(args.out if args.out else default_run_dir(args.preset), args.force)
    trainer.callbacks = [RunWriter(out), EpochPrinter(cfg.epochs, quiet=args.quiet)]
    print(f"rnnlab: training {cfg.model} ({trainer.model.parameter_count():,} parameters) on "
          f"{cfg.task}; run directory {out}")
    s = trainer.fit()
    print(f"final test acc {100 * s['final_test_acc']:.2f}% (loss {s['final_test_loss']:.4f}), "
          f"best {100 * s['best_test_acc']:.2f}% at epoch {s['best_epoch']}, "
          f"{s['seconds']:.2f} s; wrote {out}")
    return 0


def cmd_eval(args) -> int:
    from .train import evaluate, load_run

    cfg, model, data = load_run(args.run_dir)
    loss, acc = evaluate(model, data.X_test, data.y_test)
    print(f"{args.run_dir}: test loss {loss:.4f}, test acc {100 * acc:.2f}% "
          f"on {len(data.X_test)} sequences ({model.parameter_count():,} parameters)")
    summary = Path(args.run_dir) / "summary.json"
    if summary.is_file():
        try:
            saved = json.loads(summary.read_text())["final_test_acc"]
            print(f"recorded at the end of training: test acc {100 * saved:.2f}%")
        except (ValueError, KeyError, TypeError):
            pass
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except RnnlabError as e:
        print(f"rnnlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
