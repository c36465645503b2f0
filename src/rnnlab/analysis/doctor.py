"""``rnnlab doctor RUN_DIR``: which training failure pattern a run shows, with the numbers.

Patterns (the second seed's three, plus health), checked in this order:
- exploding: guard recoveries, non-finite losses, or gradient-norm spikes before a loss jump;
- vanishing: early time steps get orders of magnitude less gradient than late ones while the
  loss stays flat (near the memoryless baseline);
- hypersensitive: training is erratic (the loss swings up repeatedly late in training), the sign
  of a learning rate on the edge, where small changes give very different runs;
- not learning: none of the above, yet the result is no better than the memoryless baseline;
- healthy: the loss went down and none of the above.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rnnlab.data.metrics import METRICS
from rnnlab.errors import RunDirError
from rnnlab.runs.checkpoint import load_checkpoint
from rnnlab.runs.files import DIAGNOSIS, EVENTS_LOG, METRICS_LOG, PROBES_LOG, SUMMARY, read_json, read_jsonl, write_json
from rnnlab.runs.lock import writer_of
from rnnlab.runs.record import read_record
from rnnlab.training.probes import early_to_late_gradient


def check_run_files(run_dir: Path) -> None:
    """A diagnosis is only as good as the run directory: refuse a damaged one (its checkpoints
    must load and match their checksums) instead of calling the run healthy."""
    finished = (run_dir / "summary.json").is_file()
    if finished and not (run_dir / "checkpoint.json").is_file():
        raise RunDirError(f"{run_dir} says training finished but its checkpoint.json is missing; the "
                          "run directory is damaged, train it again")
    for name in ("checkpoint", "state"):
        if (run_dir / f"{name}.json").is_file():
            load_checkpoint(run_dir, name)            # raises CheckpointError with the reason


@dataclass
class Diagnosis:
    pattern: str                                       # exploding | vanishing | hypersensitive | healthy
    findings: list[str] = field(default_factory=list)  # sentences with the numbers behind them
    advice: list[str] = field(default_factory=list)
    numbers: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        lines = [f"Diagnosis: {self.pattern}."] + [f"- {f}" for f in self.findings]
        if self.advice:
            lines += ["What to try:"] + [f"- {a}" for a in self.advice]
        return "\n".join(lines)


def _finite(xs):
    return [x for x in xs if isinstance(x, (int, float)) and math.isfinite(x)]


def suggested_clip(iter_norm) -> float:
    """A --clip to suggest: twice the median gradient norm of the calm steps before the first
    blow-up (a non-finite norm, or one over 100x the median before it), at most 1. The whole run's
    median would follow the blow-up itself (a run whose norms sat at 1e12 after its first epochs
    was told --clip 1.6e12)."""
    calm = []                                     # kept sorted: a median per step in O(log n), not a sort
    for x in iter_norm:
        if not (isinstance(x, (int, float)) and math.isfinite(x)) or (len(calm) >= 3 and x > 100 * _median(calm)):
            break
        bisect.insort(calm, x)
    clip = 2 * _median(calm) if calm else 1.0
    return min(clip, 1.0) if clip > 0 else 1.0


def _median(ordered: list) -> float:
    n = len(ordered)
    return float(ordered[n // 2]) if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2.0


def diagnose(run_dir) -> Diagnosis:
    """Which failure pattern a run's logs show, with the numbers behind it."""
    try:
        return _diagnose(Path(run_dir))
    except (KeyError, TypeError, AttributeError, IndexError, StopIteration) as e:
        raise RunDirError(f"the logs of {run_dir} are damaged ({type(e).__name__}: {e}; not what a run writes); "
                          "train it again") from None


def _diagnose(run_dir: Path) -> Diagnosis:
    rec = read_record(run_dir)
    cfg, s = rec.config, rec.setting
    model = rec.model
    cell, nonlinearity = rec.cell, model.get("nonlinearity", "tanh")
    lr = rec.lr
    check_run_files(run_dir)
    metrics = read_jsonl(run_dir / METRICS_LOG)
    probes = read_jsonl(run_dir / PROBES_LOG)
    events = read_jsonl(run_dir / EVENTS_LOG)
    n = {"epochs_done": len(metrics), "epochs_planned": cfg.epochs}
    d = Diagnosis("healthy")
    writer, finished = writer_of(run_dir), (run_dir / SUMMARY).is_file()
    if writer is not None:
        d.findings.append(f"The run is still training{writer}: this reads the {len(metrics)} of {cfg.epochs} "
                          "epochs logged so far, not a final result.")
    elif not finished:
        d.findings.append(f"The run stopped after {len(metrics)} of {cfg.epochs} epochs (it has no summary.json): "
                          f"it was interrupted; {rec.resume_hint()} continues it.")
    last_word = "final" if finished and writer is None else "latest"
    n.update(still_training=writer is not None, finished=finished)
    if not metrics:
        d.pattern = "exploding" if events else "unfinished"
        d.findings.append("The run finished no epoch, so there is nothing to judge yet.")
        d.numbers = n
        return d
    metric = next(k[len("test_"):] for k in metrics[0] if k.startswith("test_") and k != "test_loss")
    higher = METRICS[metric].higher_is_better

    losses = [r["train_loss"] for r in metrics]
    iter_loss = [x for r in metrics for x in r["iter_loss"]]
    iter_norm = [x for r in metrics for x in r["iter_grad_norm"]]
    fin_norm = _finite(iter_norm)
    first, last = losses[0], losses[-1]
    n.update(first_train_loss=first, final_train_loss=last,
             final_test_metric=metrics[-1][f"test_{metric}"], metric=metric)
    median_norm = float(np.median(fin_norm)) if fin_norm else float("nan")
    n["median_grad_norm"] = median_norm

    # ---- gradient flow through time from the probes (top recurrent layer, second half of run)
    ratio = early_to_late_gradient(probes)
    if ratio is not None:
        n["early_to_late_gradient"] = ratio
        n["sequence_length"] = len(probes[-1]["steps"][sorted(probes[-1]["steps"])[-1]]["grad_norm"])

    # ---- saturation (tanh units pinned at +-1: ||h|| near sqrt(H)); kills gradients whatever T is
    saturation = None
    if probes and cell == "rnn" and nonlinearity == "tanh" and model.get("hidden"):
        top = sorted(probes[-1]["steps"])[-1]
        h = _finite(probes[-1]["steps"][top]["hidden_norm_mean"])
        if h:
            saturation = float(np.mean(h)) / math.sqrt(model["hidden"])
            n["hidden_norm_over_max"] = saturation

    # ---- exploding
    nonfinite = sum(1 for x in iter_loss if not (isinstance(x, (int, float)) and math.isfinite(x)))
    spikes = [i for i, x in enumerate(iter_norm) if isinstance(x, (int, float)) and fin_norm
              and (not math.isfinite(x) or x > 100 * median_norm)]
    # a loss jump: an epoch's loss over 3x the best loss before it at the same sequence length (a
    # curriculum's step to longer sequences raises the loss by design)
    lengths = [r.get("length") for r in metrics]

    def best_before(i):
        return min(_finite([losses[j] for j in range(i) if lengths[j] == lengths[i]]) or [math.inf])
    jump_at = next((i for i in range(1, len(losses)) if math.isfinite(losses[i])
                    and losses[i] > 3 * best_before(i)), None)
    diverged = jump_at is not None
    # a run that recovered once or twice and then trained to a good end is healthy: the guard did its job
    ended_well = (math.isfinite(last) and last < 0.5 * first and not nonfinite and not diverged)
    if events and len(events) <= 2 and ended_well:
        kinds = ", ".join(sorted({e["kind"] for e in events}))
        d.findings.append(f"The guard caught {len(events)} bad step(s) ({kinds}) "
                          f"and rolled back; training then went on to a final loss of {last:.4g} "
                          f"(from {first:.4g}), so nothing needs changing.")
        events, caught = [], True
    else:
        caught = False
    if events or nonfinite or diverged or (spikes and not math.isfinite(last)):
        d.pattern = "exploding"
        if diverged:
            before = _finite(metrics[jump_at - 1]["iter_grad_norm"])
            at = _finite(metrics[jump_at]["iter_grad_norm"])
            d.findings.append(f"The training loss jumped in epoch {jump_at + 1} to {losses[jump_at]:.4g}, over "
                              f"3x its best before ({best_before(jump_at):.4g}); the gradient norm "
                              f"peaked at {max(at or [float('nan')]):.3g} there, after "
                              f"{max(before or [float('nan')]):.3g} the epoch before. Final loss {last:.4g}.")
        if events:
            kinds = sorted({e["kind"] for e in events})
            norms = _finite([e["grad_norm"] for e in events if isinstance(e["grad_norm"], float)])
            d.findings.append(f"The guard recovered {len(events)} time(s) ({', '.join(kinds)}); the "
                              f"learning rate fell from {events[0]['lr_before']:.3g} to "
                              f"{events[-1]['lr_after']:.3g}." + (
                                  f" Gradient norms at those steps reached {max(norms):.3g}, against a "
                                  f"median of {median_norm:.3g}." if norms else ""))
        if nonfinite:
            d.findings.append(f"{nonfinite} training step(s) had a non-finite loss; the final training "
                              f"loss is {last}.")
        if spikes:
            d.findings.append(f"{len(spikes)} step(s) had a gradient norm over 100x the median "
                              f"({median_norm:.3g}), the first at step {spikes[0]}.")
        clip = suggested_clip(iter_norm)
        clip_advice = (f"Clip gradients by norm: {s('clip', float(f'{clip:.2g}'))} (twice the median norm before any "
                       "blow-up, at most 1)."
                       if not cfg.clip or clip < cfg.clip else
                       f"Clip tighter: {s('clip', float(f'{cfg.clip / 2:.2g}'))} (half the {cfg.clip:.2g} in use).")
        d.advice += [clip_advice,
                     f"Lower the learning rate: {s('lr', float(f'{lr / 4:.2g}'))} (a quarter of {lr:.2g})."]
        if cell == "rnn" and nonlinearity == "relu":
            d.advice.append(f"ReLU recurrences are unbounded: use {s('nonlinearity', 'tanh')} or a gated cell "
                            f"({s('model', 'lstm')} or {s('model', 'gru')}).")
        if rec.optimizer.get("class") == "SGD" and rec.optimizer.get("momentum"):
            d.advice.append(f"Turn momentum off until plain SGD is stable ({s('momentum', 0)}).")
        d.numbers = n
        return d

    # ---- vanishing: little gradient reaches early steps and the loss stays flat
    baseline = _baseline(run_dir)
    flat, at_baseline = last > 0.8 * first, False
    if baseline is not None:
        final_metric = metrics[-1][f"test_{metric}"]
        near = (final_metric - baseline < 0.05) if higher else (final_metric > 0.8 * baseline)
        at_baseline = (final_metric - baseline < 0.02) if higher else (final_metric > 0.95 * baseline)
        flat = flat or near
        n["baseline"] = baseline
    if ratio is not None and ratio < 1e-2 and flat:
        d.pattern = "vanishing"
        T = n["sequence_length"]
        if saturation is not None and saturation > 0.9:
            d.findings.append(f"The hidden units are saturated: ||h_t|| averages {100 * saturation:.0f}% of its "
                              f"maximum sqrt(H), so tanh' is near 0 at most units; this usually comes from "
                              "weights grown too large by too high a learning rate.")
            d.advice.append(f"First lower the learning rate: {s('lr', float(f'{lr / 10:.2g}'))} (a tenth of {lr:.2g}).")
        d.findings.append(f"The gradient reaching step 1 is {ratio:.1e} of the gradient at step {T} "
                          f"(median over the second half of training): early inputs barely move the weights.")
        d.findings.append(f"The training loss went from {first:.4g} to {last:.4g}"
                          + (f" and the test {metric} is {METRICS[metric].format(metrics[-1][f'test_{metric}'])} "
                             f"against a memoryless baseline of {METRICS[metric].format(baseline)}."
                             if baseline is not None else "."))
        if cell == "rnn":
            d.advice.append(f"Use a gated cell: {s('model', 'lstm')} (with {s('forget_bias', 1.0)}) or "
                            f"{s('model', 'gru')}.")
            if model.get("init") not in ("orthogonal", "identity"):
                both = " " if rec.interface == "cli" else ", "
                d.advice.append(f"Start the recurrence norm-preserving: {s('init', 'orthogonal')} (tanh) or "
                                f"{s('init', 'identity')}{both}{s('nonlinearity', 'relu')} (IRNN).")
        both = " " if rec.interface == "cli" else ", "
        d.advice.append(f"Train on shorter sequences first: {s('curriculum', f'{max(1, T // 4)},{max(2, T // 2)}')}"
                        f"{both}{s('curriculum_target', '<a metric you reach at that length>')}.")
        d.numbers = n
        return d

    # ---- hypersensitive / erratic
    # (only jumps that matter against where training started: a converged model's tiny losses
    # are heavy-tailed without being unstable)
    late = [(x, L) for x, L in zip(losses[len(losses) // 2:], lengths[len(losses) // 2:]) if math.isfinite(x)]
    jumps = sum(1 for (a, la), (b, lb) in zip(late, late[1:]) if la == lb and b > 1.5 * a and b > 0.25 * first)
    progress = (first - min(losses)) / first if first > 0 else 0.0
    n.update(late_loss_jumps=jumps, loss_progress=progress)
    if jumps >= 2:
        d.pattern = "hypersensitive"
        d.findings.append(f"In the second half of training the epoch loss jumped by over 50% (to more "
                          f"than a quarter of the starting loss) {jumps} times; the best epoch loss was "
                          f"{min(losses):.4g} against {first:.4g} at the start. The run sits on the edge "
                          "of stability, where small changes of the learning rate or seed give very "
                          "different results.")
        d.advice += [f"Lower the learning rate: {s('lr', float(f'{lr / 3:.2g}'))}.",
                     f"Clip gradients by norm: {s('clip', float(f'{suggested_clip(iter_norm):.2g}'))}."
                     if not cfg.clip else f"Clip tighter: {s('clip', float(f'{cfg.clip / 2:.2g}'))}.",
                     f"Compare a few seeds ({s('seed')}) before trusting a single run."]
        d.numbers = n
        return d

    fmt = METRICS[metric].format
    final_metric = metrics[-1][f"test_{metric}"]
    # ---- worse at the end (the last epochs undid what the best one had), or clipped throughout
    # with nothing to show for it (the clip, not the learning rate, set every step)
    clipped = [x > cfg.clip for x in _finite(iter_norm)] if cfg.clip else []
    n["clipped_fraction"] = sum(clipped) / len(clipped) if clipped else 0.0
    over_clipped = bool(clipped) and n["clipped_fraction"] >= 0.9
    clip_finding = (f"{100 * n['clipped_fraction']:.0f}% of the steps had a gradient norm over the clip ({cfg.clip:g}; "
                    f"median norm {median_norm:.3g}), so every step was cut to the same length: the clip, not "
                    "the learning rate, set the step size.")
    clip_advice = (f"Clip where only the outliers are cut: {s('clip', float(f'{2 * median_norm:.2g}'))} (twice the "
                   f"median norm), or lower the learning rate: {s('lr', float(f'{lr / 3:.2g}'))}.")
    best_metric = (max if higher else min)(r[f"test_{metric}"] for r in metrics)
    slipped = (best_metric - final_metric > 0.05) if higher else (final_metric > 3 * best_metric)
    if slipped and len(losses) > 2:
        best_epoch = next(r["epoch"] for r in metrics if r[f"test_{metric}"] == best_metric)
        d.pattern = "worse at the end"
        d.findings.append(f"The {last_word} test {metric} is {fmt(final_metric)}, against {fmt(best_metric)} at "
                          f"epoch {best_epoch}: training went on past its best and lost it.")
        d.findings += [clip_finding] if over_clipped else []
        d.advice += ([clip_advice] if over_clipped else []) + [
            f"Lower the learning rate ({s('lr', float(f'{lr / 3:.2g}'))}) or let it decay ({s('schedule', 'cosine')}).",
            f"Train about as long as the best epoch ({s('epochs', best_epoch)})."]
        d.numbers = n
        return d
    if over_clipped and at_baseline and len(losses) > 1:
        d.pattern = "clipped throughout"
        d.findings += [clip_finding, f"The {last_word} test {metric} is {fmt(final_metric)}, no better than the "
                                     f"memoryless baseline ({fmt(baseline)})."]
        d.advice.append(clip_advice)
        d.numbers = n
        return d
    if at_baseline and len(losses) > 1:
        # ---- not learning: no pattern above, yet no better than a memoryless answer
        d.pattern = "not learning"
        d.findings.append(f"The {last_word} test {metric} is {fmt(final_metric)}, no better than the memoryless "
                          f"baseline ({fmt(baseline)}); the training loss went from {first:.4g} to {last:.4g}.")
        d.advice += [f"Train longer or with a larger learning rate ({s('lr', float(f'{lr * 3:.2g}'))}); a plateau at "
                     "the baseline is often left suddenly.",
                     f"Try a gated cell ({s('model', 'gru')} or lstm) or more units ({s('hidden')}).",
                     "Check that the targets can be predicted from the inputs (labels shuffled or "
                     "misaligned give exactly this)."]
        d.numbers = n
        return d
    if len(losses) == 1:
        d.findings.append("Only one epoch was trained: too short to judge the trend; train longer "
                          "before reading the diagnosis.")
    d.findings.append(f"The training loss went from {first:.4g} to {last:.4g}; the {last_word} test {metric} "
                      f"is {fmt(final_metric)}"
                      + (f" (memoryless baseline {fmt(baseline)})." if baseline is not None else "."))
    if ratio is not None:
        d.findings.append(f"For information: the gradient reaching step 1 of the top layer is {ratio:.1e} of "
                          f"the last step's; the run learns regardless.")
    if over_clipped:
        d.findings.append(f"For information: {100 * n['clipped_fraction']:.0f}% of the steps were clipped at "
                          f"{cfg.clip:g}; the run learns regardless.")
    d.findings.append(("Apart from that, the" if caught else "No guard recoveries; the") +
                      f" gradient norm stayed within 100x of its median "
                      f"({median_norm:.3g}).")
    d.numbers = n
    return d


def _baseline(run_dir):
    summary = read_json(Path(run_dir) / SUMMARY)
    numbers = isinstance(summary, dict) and isinstance(summary.get("baseline"), (int, float, type(None)))
    if summary is not None and not numbers:
        raise RunDirError(f"{Path(run_dir) / SUMMARY} is damaged (not the numbers a run writes there); train the run "
                          "again")
    return summary.get("baseline") if summary else None


def write_diagnosis(run_dir) -> Diagnosis:
    """Diagnose a finished run and write ``diagnosis.json`` (what its report shows)."""
    d = diagnose(run_dir)
    write_json(Path(run_dir) / DIAGNOSIS, d.to_dict())
    return d
