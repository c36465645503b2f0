"""Adding problem: test MSE of RNN, LSTM and GRU at several lengths on the same budget.

    python benchmarks/adding_lengths.py [--lengths 50,100,200] [--models rnn,lstm,gru] [--jobs 2]

Budget for every run: hidden 32, 1 layer, batch 64, 50 batches x 30 epochs (96,000 sequences),
Adam with clipping at 1, constant learning rate (1e-2; the tanh RNN is also tried at 1e-3 and its
better run is reported). Baseline (always predict 1.0): MSE 0.167; "solved" is MSE < 0.01.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os

BASE = dict(task="adding", hidden=32, layers=1, dropout=0.0, init="pytorch", optimizer="adam",
            schedule="constant", clip=1.0, batch_size=64, batches_per_epoch=50, epochs=30,
            train_size=10000, test_size=1000)


def run(job):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from rnnlab.training.config import TrainConfig
    from rnnlab.training.loop import Trainer
    model, length, lr = job
    s = Trainer(config=TrainConfig(model=model, length=length, lr=lr, **BASE)).fit()
    return model, length, lr, s["final_test_mse"], s["best_test_mse"], s["seconds"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="50,100,200")
    ap.add_argument("--models", default="rnn,lstm,gru")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    jobs = [(m, int(t), lr) for t in args.lengths.split(",") for m in args.models.split(",")
            for lr in ((1e-2, 1e-3) if m == "rnn" else (1e-2,))]
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        rows = pool.map(run, jobs)
    best = {}
    for m, t, lr, final, b, sec in rows:
        if (m, t) not in best or final < best[(m, t)][1]:
            best[(m, t)] = (lr, final, b, sec)
    print(f"{'T':>5} {'model':<6}{'lr':>8}{'final MSE':>11}{'best MSE':>10}{'seconds':>9}  solved (< 0.01)?")
    for (m, t), (lr, final, b, sec) in sorted(best.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"{t:>5} {m:<6}{lr:>8.0e}{final:>11.4f}{b:>10.4f}{sec:>9.1f}  {'yes' if final < 0.01 else 'no'}")


if __name__ == "__main__":
    main()
