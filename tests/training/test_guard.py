"""The Guard on its own (tests/test_guards.py drives it through the Trainer): what it calls a
problem, which snapshot it rolls back to, the whole event it records, when it gives up, and its
state across a checkpoint."""

import math

import numpy as np
import pytest

from rnnlab.nn.optim import SGD, CosineLR, Schedule, StepLR
from rnnlab.training.config import PRESETS
from rnnlab.training.guards import Guard, Recovery, TrainingDiverged
from rnnlab.training.loop import Trainer

EVENT_KEYS = ["iteration", "epoch", "kind", "loss", "grad_norm", "recent_loss_median", "recent_grad_norms",
              "rolled_back_to_iteration", "lr_before", "lr_after", "accepted_steps_before"]


def _schedule(kind="constant", lr=0.1, epochs=0):
    """A schedule over a one-parameter SGD, stepped ``epochs`` times."""
    p = {"w": np.zeros(2)}
    opt = SGD(p, {"w": np.zeros(2)}, lr)
    s = {"constant": lambda: Schedule(opt), "step": lambda: StepLR(opt, 1, 0.3),
         "cosine": lambda: CosineLR(opt, 10, eta_min=0.001)}[kind]()
    for _ in range(epochs):
        s.step()
    return s


class Snapshots:
    """A ``snapshot`` callable for ``Guard.accept``: numbered, distinct weights and optimizer states."""

    def __init__(self):
        self.taken = []

    def __call__(self):
        n = len(self.taken)
        snap = ({"w": np.full(2, float(n))}, {"lr": 0.1, "steps": n, "state": {}})
        self.taken.append(snap)
        return snap


def _fed(losses, window=4, norms=None, **kw):
    """A guard that accepted ``losses`` at iterations 0, 1, ... (gradient norms 10 + i unless given)."""
    g, snap = Guard(window=window, **kw), Snapshots()
    for i, loss in enumerate(losses):
        g.accept(loss, 10.0 + i if norms is None else norms[i], i, snap)
    return g, snap


def _recover(g, problem="nan loss", loss=float("nan"), grad_norm=3.0, schedule=None, **kw):
    kw = {"iteration": 10, "epoch": 2, "accepted": 9, **kw}
    return g.recover(problem, loss, grad_norm, schedule=schedule or _schedule(), **kw)


# ---------------------------------------------------------------- check
def test_non_finite_losses_and_gradients_are_problems_from_the_first_step():
    g = Guard(window=4)
    assert g.check(float("nan"), 1.0) == "nan loss"
    assert g.check(float("inf"), 1.0) == "infinite loss"
    assert g.check(-float("inf"), 1.0) == "infinite loss"
    assert g.check(1.0, float("nan")) == "non-finite gradient"
    assert g.check(1.0, float("inf")) == "non-finite gradient"
    assert g.check(1e30, 1e30) is None                     # finite: fine until a window is known


def test_a_spike_is_over_spike_factor_times_the_median_of_the_window():
    g, _ = _fed([4.0, 1.0, 3.0, 2.0], window=4, spike_factor=10.0)    # median 2.5
    assert g.initial_level == 2.5
    assert g.check(25.0, 1.0) is None                      # exactly 10 x the median: allowed
    assert g.check(25.000001, 1.0) == "loss spike"
    assert g.check(2.0, 1.0) is None and g.check(0.0, 1.0) is None
    g.accept(100.0, 1.0, 4, Snapshots())                   # the window slides: [1, 3, 2, 100], median 2.5
    assert g.check(25.000001, 1.0) == "loss spike"
    g.accept(100.0, 1.0, 5, Snapshots())                   # [3, 2, 100, 100]: median 51.5
    assert g.check(515.0, 1.0) is None and g.check(515.01, 1.0) == "loss spike"


def test_before_a_full_window_no_loss_is_a_spike():
    g, _ = _fed([0.1, 0.1, 0.1], window=4)
    assert g.initial_level is None and g.check(1e6, 1.0) is None


def test_the_median_is_floored_at_a_tenth_of_the_first_windows():
    g, _ = _fed([2.0] * 4 + [0.01] * 4, window=4)         # converged: median 0.01, floor 0.2
    assert g.initial_level == 2.0 and list(g.recent_loss) == [0.01] * 4
    assert g.check(1.9, 1.0) is None                       # 190 x the median, under 10 x the floor
    assert g.check(2.01, 1.0) == "loss spike"


# ---------------------------------------------------------------- snapshots and recover
def test_snapshots_every_window_applied_steps_the_last_two_kept():
    g, snap = _fed([1.0] * 10, window=4)
    assert len(snap.taken) == 3                            # before the updates of iterations 0, 4 and 8
    assert [it for it, _, _ in g.snapshots] == [4, 8]
    assert g.snapshots[0][1] is snap.taken[1][0] and g.snapshots[1][2] is snap.taken[2][1]


def test_recover_rolls_back_to_the_older_snapshot_and_writes_the_whole_event():
    g, snap = _fed([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], window=4,
                   lr_cut=0.5, max_recoveries=3)
    schedule = _schedule(lr=0.1)
    rec = _recover(g, "nan loss", float("nan"), 3.0, schedule=schedule, iteration=10, epoch=2, accepted=9)
    assert isinstance(rec, Recovery)
    assert rec.weights is snap.taken[1][0] and rec.optimizer_state is snap.taken[1][1]   # iteration 4's
    assert rec.lr_factor == 0.5
    e = rec.event
    assert list(e) == EVENT_KEYS                           # events.jsonl's keys, in its order
    assert e == {"iteration": 10, "epoch": 2, "kind": "nan loss", "loss": "nan", "grad_norm": 3.0,
                 "recent_loss_median": 8.5,                # the window then held 7, 8, 9, 10
                 "recent_grad_norms": [16.0, 17.0, 18.0, 19.0],
                 "rolled_back_to_iteration": 4, "lr_before": 0.1, "lr_after": 0.05,
                 "accepted_steps_before": 9}
    assert g.events == [e]
    # the schedule is only read: the loop applies the cut
    assert schedule.base_lr == 0.1 and schedule.optimizer.lr == 0.1
    # after the rollback: the older snapshot only, an empty window, a snapshot due in `window` steps
    assert [it for it, _, _ in g.snapshots] == [4]
    assert len(g.recent_loss) == 0 and len(g.recent_norm) == 0 and g.since_snapshot == 0
    assert g.check(1e6, 1.0) is None                       # no window yet: no spike


def test_event_numbers_are_json_safe():
    g, _ = _fed([1.0] * 6, window=6, norms=[1.0, 2.0, float("inf"), 4.0, 5.0, 6.0])
    e = _recover(g, "infinite loss", float("inf"), float("-inf")).event
    assert e["loss"] == "inf" and e["grad_norm"] == "-inf"
    assert e["recent_grad_norms"] == [2.0, "inf", 4.0, 5.0, 6.0]          # the last five
    g2, _ = _fed([1.0], window=4)
    g2.recent_loss.clear()
    assert _recover(g2).event["recent_loss_median"] is None       # nothing accepted since


@pytest.mark.parametrize("kind, epochs, lr_cut", [("constant", 0, 0.5), ("step", 2, 0.3), ("cosine", 3, 0.5),
                                                  ("cosine", 7, 0.3)])
def test_lr_after_is_bit_for_bit_what_the_rescale_sets(kind, epochs, lr_cut):
    """The guard computes lr_after the way ``Schedule.rescale`` does (not as lr_before x lr_cut,
    which is another float for StepLR, and another number for a cosine with eta_min)."""
    schedule = _schedule(kind, lr=0.03, epochs=epochs)
    g, _ = _fed([1.0] * 5, window=4, lr_cut=lr_cut)
    e = _recover(g, schedule=schedule).event
    assert e["lr_before"] == schedule.optimizer.lr
    schedule.rescale(lr_cut)
    assert e["lr_after"].hex() == schedule.optimizer.lr.hex()
    assert e["lr_after"] == schedule.lr_at(schedule.epoch)


def test_the_cases_above_do_differ_from_a_plain_product():
    """So the test above would catch a guard that multiplied lr_before by lr_cut."""
    for kind, epochs, cut in [("step", 2, 0.3), ("cosine", 3, 0.5)]:
        s = _schedule(kind, lr=0.03, epochs=epochs)
        before = s.optimizer.lr
        s.rescale(cut)
        assert s.optimizer.lr != before * cut


def test_after_max_recoveries_it_raises_training_diverged():
    g, _ = _fed([1.0] * 5, window=4, max_recoveries=2)
    schedule = _schedule(lr=0.1)
    for i in (1, 2):
        rec = _recover(g, schedule=schedule, iteration=10 * i, accepted=5 * i)
        assert rec.event["accepted_steps_before"] == 5 * i
        schedule.rescale(rec.lr_factor)                    # as the loop does
    assert [e["lr_after"] for e in g.events] == [0.05, 0.025]
    with pytest.raises(TrainingDiverged, match=r"training failed 3 times \(last: loss spike at iteration 30, "
                                               r"loss 99\.0, gradient norm 7\.0\); lower lr \(it was 0\.025\)"):
        _recover(g, "loss spike", 99.0, 7.0, schedule=schedule, iteration=30)
    assert len(g.events) == 3                              # the last event is kept, with no cut applied
    assert g.events[-1]["kind"] == "loss spike" and g.events[-1]["lr_before"] == 0.025
    assert "lr_after" not in g.events[-1]


# ---------------------------------------------------------------- state across a checkpoint
def test_state_dict_round_trips():
    g, _ = _fed([4.0, 1.0, 3.0, 2.0, 5.0, 6.0], window=4, spike_factor=3.0)
    _recover(g)
    for i in range(5):
        g.accept(2.0 + i, 1.0 + i, 11 + i, Snapshots())
    sd = g.state_dict()
    h = Guard(window=4, spike_factor=3.0)
    h.load_state_dict(sd)
    hsd = h.state_dict()
    assert hsd["recent_loss"] == [3.0, 4.0, 5.0, 6.0] and hsd["recent_norm"] == [2.0, 3.0, 4.0, 5.0]
    assert hsd["since_snapshot"] == g.since_snapshot == 1 and hsd["initial_level"] == 2.5
    assert hsd["events"] == g.events and len(hsd["events"]) == 1
    assert [s["iteration"] for s in hsd["snapshots"]] == [0, 15]
    for a, b in zip(hsd["snapshots"], sd["snapshots"]):
        assert a["weights"] is b["weights"] and a["optimizer"] is b["optimizer"]
    # the same decisions afterwards
    for loss in (13.5, 13.6, float("nan")):
        assert h.check(loss, 1.0) == g.check(loss, 1.0)
    assert h.check(13.5, 1.0) is None and h.check(13.6, 1.0) == "loss spike"    # 3 x median 4.5
    eg, eh = _recover(g, iteration=20).event, _recover(h, iteration=20).event
    assert eg == eh and eh["rolled_back_to_iteration"] == 0 and len(h.events) == 2
    h.events.append("x")                                   # the loaded list is the guard's own
    assert len(sd["events"]) == len(g.events) == 2


# ---------------------------------------------------------------- through the loop
def test_the_trainer_applies_the_event_the_guard_wrote():
    """After a recovery in ``fit``: the optimizer's rate is the event's lr_after, bit for bit
    (a step schedule with lr_cut 0.3, where lr_before x 0.3 is another float), and
    accepted_steps_before the steps applied before it."""
    cfg = PRESETS["seed"].replace(epochs=3, optimizer="sgd", lr=0.03, schedule="step", lr_step=1,
                                  lr_gamma=0.3, lr_cut=0.3, train_size=200, batch_size=20)
    seen = []

    class Watch:
        def on_train_begin(self, t): ...
        def on_epoch_end(self, t, result): ...
        def on_train_end(self, t, summary): ...

        def on_step_end(self, t):
            if len(t.guard.events) > len(seen):
                seen.append((t.guard.events[-1], t.optimizer.lr, t.schedule.base_lr, t.accepted))

    t = Trainer(config=cfg, callbacks=[Watch()])
    original = t.batches.epoch

    def batches():                                         # one NaN batch in epoch 3
        out = original()
        if len(t.history) + 1 == 3:
            out[2].x = out[2].x.copy()
            out[2].x[0, 0, 0] = np.nan
        return out
    t.batches.epoch = batches
    with np.errstate(invalid="ignore"):
        t.fit()
    [(event, lr, base_lr, accepted)] = seen
    assert event["kind"] == "nan loss" and event["epoch"] == 3
    assert event["lr_before"] == 0.03 * 0.3 ** 2
    assert event["lr_after"].hex() == lr.hex() and base_lr == 0.03 * 0.3
    assert event["lr_after"] != event["lr_before"] * 0.3
    steps_per_epoch = len(t.history[0]["iter_loss"])
    assert event["accepted_steps_before"] == accepted == 2 * steps_per_epoch + 2
    assert t.guard.events == [event] and list(event) == EVENT_KEYS
    assert [r.get("events", 0) for r in t.history] == [0, 0, 1]
    assert math.isfinite(t.history[-1]["train_loss"])
