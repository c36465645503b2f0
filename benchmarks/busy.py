"""Training and analysis on a busy machine: each workload's seconds alone and beside two busy
processes (one per core of a 2-core laptop), with rnnlab's choice of BLAS threads
(``training/threads.py``) and with BLAS's default of all cores (OPENBLAS_NUM_THREADS set to the
core count, which turns the choice off). Goal: busy <= 2x quiet. Every number comes from a fresh
process; the ratios compare runs of this one invocation. An analysis workload trains its model
first (not timed) and times ``analyze`` alone.

    python benchmarks/busy.py [--repeats 1] [--only training|analysis]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

WORKLOADS = {
    "seed preset (50 epochs)": "Trainer(config=PRESETS['seed'])",
    "flip-flop preset (30 epochs)": "Trainer(config=PRESETS['flipflop'])",
    "char-LM LSTM-256 (2 epochs x 20 windows)": "Trainer(config=PRESETS['charlm'].replace(epochs=2, "
                                                "batches_per_epoch=20, corpus_chars=300_000))",
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


def train_seconds(make: str, env: dict) -> float:
    code = (ANALYSIS_CODE if make.startswith("analyze:") else CODE).format(make=make.split(":", 1)[-1])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def measure(make: str, env: dict, busy: bool, repeats: int) -> float:
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)] if busy else []
    try:
        return statistics.median(train_seconds(make, env) for _ in range(repeats))
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
    chosen = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    default = dict(chosen, OPENBLAS_NUM_THREADS=str(os.cpu_count() or 1))
    print(f"{os.cpu_count()} cores; seconds of training (summary['seconds']) or of analyze(), "
          f"median of {args.repeats}")
    print("| workload | quiet | busy | busy / quiet | BLAS default: quiet | busy | busy / quiet |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for name, make in workloads.items():
        q, b = measure(make, chosen, False, args.repeats), measure(make, chosen, True, args.repeats)
        dq, db = measure(make, default, False, args.repeats), measure(make, default, True, args.repeats)
        rows.append({"workload": name, "quiet": q, "busy": b, "default_quiet": dq, "default_busy": db})
        print(f"| {name} | {q:.2f} | {b:.2f} | **{b / q:.2f}** | {dq:.2f} | {db:.2f} | {db / dq:.2f} |", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
