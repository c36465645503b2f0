"""Optimizers, learning-rate schedules and gradient clipping, hand-written.

Update rules follow ``torch.optim`` exactly (tests check trajectories against it). Parameters
and gradients are two dicts of arrays with the same keys; ``step()`` updates in place.
"""

from __future__ import annotations

import math

import numpy as np

from rnnlab.checks import check_float, check_int


def _flat_buffer(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The 1-D buffer these arrays tile in order (as ``Module.flatten_parameters`` lays them
    out, or as one row of a stack's (K, P) buffer, ``rnnlab.nn.stack``), or None."""
    owner = arrays[0].base if arrays else None
    if owner is None or owner.ndim not in (1, 2) or not owner.flags.c_contiguous:
        return None
    start = owner.__array_interface__["data"][0]
    addr = arrays[0].__array_interface__["data"][0]
    if owner.ndim == 1:
        buffer = owner
    else:                                                    # a member's row of a stack
        row, rest = divmod(addr - start, owner.strides[0])
        if rest or not 0 <= row < len(owner):
            return None
        buffer = owner[row]
    end = buffer.__array_interface__["data"][0] + buffer.nbytes
    if addr != buffer.__array_interface__["data"][0]:
        return None
    for a in arrays:
        if a.base is not owner or not a.flags.c_contiguous or a.__array_interface__["data"][0] != addr:
            return None
        addr += a.nbytes
    return buffer if addr == end else None


class Optimizer:
    """Updates ``params`` in place from ``grads`` (two dicts with the same keys).

    When the parameters (and gradients) tile one flat buffer, as every rnnlab model's do, the
    update runs once over that buffer instead of once per array: same arithmetic, ~10x fewer calls.
    """

    def __init__(self, params: dict, grads: dict, lr: float, weight_decay: float = 0.0):
        self.params, self.grads = params, grads
        self.lr = check_float("lr", lr, low=0.0, low_open=True, owner=type(self).__name__)
        self.weight_decay = check_float("weight_decay", weight_decay, low=0.0)
        self.rebind()
        self.state: dict[str, dict[str, np.ndarray]] = {k: {} for k in self._groups}
        self.steps = 0

    def rebind(self) -> None:
        """Find the arrays to update again, after the parameters moved (a model joined a stack)."""
        params, grads, keys = self.params, self.grads, list(self.params)
        flat_p = _flat_buffer([params[k] for k in keys])
        flat_g = _flat_buffer([grads[k] for k in keys])
        self._groups = ({"*": (flat_p, flat_g)} if flat_p is not None and flat_g is not None
                        else {k: (params[k], grads[k]) for k in keys})

    def step(self) -> None:
        self.steps += 1
        wd = self.weight_decay
        for k, (p, g) in self._groups.items():
            self._update(k, p, g + wd * p if wd else g, self.state[k])   # L2 as torch

    def _update(self, k, p, g, s):  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict:
        """The optimizer as built: its class and every hyperparameter (a run's record)."""
        skip = {"params", "grads", "state", "steps", "_groups"}
        return {"class": type(self).__name__,
                **{k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self).items() if k not in skip}}

    def state_dict(self) -> dict:
        """Plain arrays and numbers (saved with checkpoints for exact resume)."""
        return {"lr": self.lr, "steps": self.steps,
                "state": {k: {n: a.copy() for n, a in s.items()} for k, s in self.state.items()}}

    def load_state_dict(self, sd: dict) -> None:
        self.lr, self.steps = float(sd["lr"]), int(sd["steps"])
        self.state = {k: {n: np.array(a) for n, a in sd["state"].get(k, {}).items()} for k in self._groups}


class SGD(Optimizer):
    def __init__(self, params, grads, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, grads, lr, weight_decay)
        self.momentum = check_float("momentum", momentum, low=0.0, high=1.0, high_open=True, owner="SGD")
        self.dampening, self.nesterov = dampening, nesterov

    def _update(self, k, p, g, s):
        if self.momentum:
            if "buf" not in s:
                s["buf"] = np.array(g, copy=True)                  # first step: buf = g
            else:
                s["buf"] *= self.momentum
                s["buf"] += (1 - self.dampening) * g
            g = g + self.momentum * s["buf"] if self.nesterov else s["buf"]
        p -= self.lr * g


class Adam(Optimizer):
    def __init__(self, params, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, grads, lr, weight_decay)
        self.beta1, self.beta2 = betas
        self.eps = eps

    def _update(self, k, p, g, s):
        if "m" not in s:
            s["m"], s["v"] = np.zeros_like(p), np.zeros_like(p)
        m, v, t = s["m"], s["v"], self.steps
        m *= self.beta1
        m += (1 - self.beta1) * g                                 # first moment
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)                           # second moment
        bc1, bc2 = 1 - self.beta1 ** t, 1 - self.beta2 ** t
        denom = np.sqrt(v) / math.sqrt(bc2) + self.eps
        p -= (self.lr / bc1) * (m / denom)


class Adagrad(Optimizer):
    def __init__(self, params, grads, lr=1e-2, lr_decay=0.0, eps=1e-10, weight_decay=0.0,
                 initial_accumulator_value=0.0):
        super().__init__(params, grads, lr, weight_decay)
        self.lr_decay, self.eps, self.init_acc = lr_decay, eps, initial_accumulator_value

    def _update(self, k, p, g, s):
        if "sum" not in s:
            s["sum"] = np.full_like(p, self.init_acc)
        s["sum"] += g * g
        clr = self.lr / (1 + (self.steps - 1) * self.lr_decay)
        p -= clr * g / (np.sqrt(s["sum"]) + self.eps)


class RMSprop(Optimizer):
    def __init__(self, params, grads, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, centered=False,
                 weight_decay=0.0):
        super().__init__(params, grads, lr, weight_decay)
        self.alpha, self.eps, self.momentum, self.centered = alpha, eps, momentum, centered

    def _update(self, k, p, g, s):
        if "sq" not in s:
            s["sq"] = np.zeros_like(p)
            if self.momentum:
                s["buf"] = np.zeros_like(p)
            if self.centered:
                s["g_avg"] = np.zeros_like(p)
        s["sq"] *= self.alpha
        s["sq"] += (1 - self.alpha) * (g * g)
        if self.centered:
            s["g_avg"] *= self.alpha
            s["g_avg"] += (1 - self.alpha) * g
            avg = np.sqrt(s["sq"] - s["g_avg"] * s["g_avg"]) + self.eps
        else:
            avg = np.sqrt(s["sq"]) + self.eps
        if self.momentum:
            s["buf"] *= self.momentum
            s["buf"] += g / avg
            p -= self.lr * s["buf"]
        else:
            p -= self.lr * g / avg


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adagrad": Adagrad, "rmsprop": RMSprop}


# ---------------------------------------------------------------- schedules (called per epoch)
class Schedule:
    """Sets ``optimizer.lr`` from the epoch count; ``step()`` once per finished epoch."""

    def __init__(self, optimizer: Optimizer):
        self.optimizer, self.base_lr, self.epoch = optimizer, optimizer.lr, 0

    def step(self) -> None:
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr

    def describe(self) -> dict:
        """The schedule as built: its class and settings (the starting lr is the optimizer's)."""
        return {"class": type(self).__name__,
                **{k: v for k, v in vars(self).items() if k not in ("optimizer", "base_lr", "epoch")}}

    def rescale(self, factor: float) -> None:
        """Scale the whole schedule (it keeps its shape) and the current learning rate."""
        self.optimizer.lr = self.rescaled_lr(factor)
        self.base_lr *= factor

    def rescaled_lr(self, factor: float) -> float:
        """The learning rate ``rescale(factor)`` sets now, without setting it (a guard's event
        records it before the loop applies the decision)."""
        base, self.base_lr = self.base_lr, self.base_lr * factor
        try:
            return self.lr_at(self.epoch)
        finally:
            self.base_lr = base

    def state_dict(self) -> dict:
        return {"base_lr": self.base_lr, "epoch": self.epoch}

    def load_state_dict(self, sd: dict) -> None:
        self.base_lr, self.epoch = float(sd["base_lr"]), int(sd["epoch"])


class StepLR(Schedule):
    """lr = base * gamma ** (epoch // step_size), as ``torch.optim.lr_scheduler.StepLR``."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size = check_int("lr_step", step_size, minimum=1)
        self.gamma = gamma

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineLR(Schedule):
    """Cosine from base to ``eta_min`` over ``total`` epochs (``CosineAnnealingLR``, closed form)."""

    def __init__(self, optimizer, total: int, eta_min: float = 0.0):
        super().__init__(optimizer)
        self.total, self.eta_min = check_int("epochs", total, minimum=1), eta_min

    def lr_at(self, epoch):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.total)) / 2


# ---------------------------------------------------------------- clipping
def global_norm(grads: dict) -> float:
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip_grad_norm(grads: dict, max_norm: float, norm: float | None = None) -> tuple[float, float]:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``.

    Returns (norm before, norm after); same rule as ``torch.nn.utils.clip_grad_norm_``.
    ``norm``: the global norm if the caller already has it (saves a pass over the gradients).
    """
    before = global_norm(grads) if norm is None else norm
    coef = max_norm / (before + 1e-6)
    if coef < 1.0:
        for g in grads.values():
            g *= coef
        return before, before * coef
    return before, before


def clip_grad_value(grads: dict, clip_value: float) -> tuple[float, float]:
    """Clamp every gradient entry to [-clip_value, clip_value]; returns (norm before, after)."""
    before = global_norm(grads)
    for g in grads.values():
        np.clip(g, -clip_value, clip_value, out=g)
    return before, global_norm(grads)
