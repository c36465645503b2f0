"""Training and analysis on a busy machine: each workload's seconds alone and beside two busy
processes (one per core of a 2-core laptop), with rnnlab's default of one BLAS thread
(``training/threads.py``; a run's thread count is a recorded setting, never chosen from the load)
and, for training, with two (``--blas-threads 2``, all cores here). Goal: busy <= 2x quiet for
the default. Every number comes from a fresh process; the ratios compare runs of this one
invocation. An analysis workload trains its model first (not timed) and times ``analyze`` alone
(the analysis always keeps to one thread).

    python benchmarks/busy.py [--repeats 1] [--only training|analysis]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

WORKLOADS = {
    "seed preset (50 epochs)": "Trainer(config=PRESETS['seed'].replace(blas_threads={threads}))",
    "flip-flop preset (30 epochs)": "Trainer(config=PRESETS['flipflop'].replace(blas_threads={threads}))",
    "char-LM LSTM-256 (2 epochs x 20 windows)": "Trainer(config=PRESETS['charlm'].replace(epochs=2, "
                                                "batches_per_epoch=20, corpus_chars=300_000, "
                                                "blas_threads={threads}))",
}

ANALYSES = {
    "analyze: seed preset": "Trainer(config=PRESETS['seed'])",
    "analyze: 4-bit flip-flop (81 fixed points)": "Trainer(config=PRESETS['flipflop'].replace(bits=4))",
}

CODE = ("import json\nfrom rnnlab import Trainer, PRESETS\nt = {make}\n"
        "print(json.dumps(t.fit()['seconds']))\n")
ANALYSIS_CODE = ("import json, time\nfrom rnnlab import Trainer, PRESETS\n"
                 "from rnnlab.analysis.analyze import analyze\nt = {make}\nt.fit()\n"
                 "start = time.perf_counter()\nanalyze(t.model, t.task)\n"
                 "print(json.dumps(time.perf_counter() - start))\n")


def train_seconds(make: str, threads: int) -> float:
    make = make.replace("{threads}", str(threads))
    code = (ANALYSIS_CODE if make.startswith("analyze:") else CODE).format(make=make.split(":", 1)[-1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def measure(make: str, threads: int, busy: bool, repeats: int) -> float:
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)] if busy else []
    try:
        return statistics.median(train_seconds(make, threads) for _ in range(repeats))
    finally:
        for h in hogs:
            h.kill()
            h.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--only", choices=["training", "analysis"], default=None)
    args = ap.parse_args()
    workloads = {} if args.only == "analysis" else dict(WORKLOADS)
    if args.only != "training":
        workloads.update({name: "analyze:" + make for name, make in ANALYSES.items()})
    many = os.cpu_count() or 1
    print(f"{many} cores; seconds of training (summary['seconds']) or of analyze(), median of {args.repeats}")
    print(f"| workload | quiet | busy | busy / quiet | {many} BLAS threads: quiet | busy | busy / quiet |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for name, make in workloads.items():
        q, b = measure(make, 1, False, args.repeats), measure(make, 1, True, args.repeats)
        row = {"workload": name, "quiet": q, "busy": b}
        line = f"| {name} | {q:.2f} | {b:.2f} | **{b / q:.2f}** |"
        if "{threads}" in make and many > 1:
            dq, db = measure(make, many, False, args.repeats), measure(make, many, True, args.repeats)
            row.update(many_quiet=dq, many_busy=db)
            line += f" {dq:.2f} | {db:.2f} | {db / dq:.2f} |"
        else:
            line += " - | - | - |"
        rows.append(row)
        print(line, flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
