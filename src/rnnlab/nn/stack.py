"""K networks of one architecture as one model: ``stack_models(models)``.

The stacked model is a copy of the first member whose every parameter and gradient gains a
leading member axis K, held in one (K, P) buffer; each member's own arrays become row k of it, so
a member model always holds its current weights (its optimizer, guard, checkpoint and analysis
keep working on it alone). Forward takes (K, B, T, D) -- each member its own batch. The recurrent
step, the loop's Python cost, runs once for all members as a batched product (``np.matmul`` over
K) and elementwise operations; the products over all steps (input part, weight gradients) run per
member, with the shapes it has alone. Dropout draws each member's mask from that member's own
random stream at its own rate. So member k computes, bit for bit, what it computes alone.
"""

from __future__ import annotations

import copy

import numpy as np

from rnnlab.errors import InputError
from rnnlab.nn.modules import Dropout, Module
from rnnlab.nn.recurrent import Recurrent


def _architecture(model) -> dict:
    d = model.describe()
    return {k: v for k, v in d.items() if k not in ("dropout", "layer_dropout", "init", "forget_bias")}


def stack_models(models: list) -> Module:
    """One model that runs ``models`` (K >= 1 of one class and shape) as K stacked members."""
    if not models:
        raise InputError("stack_models needs at least one model")
    first = models[0]
    if getattr(first, "members", None) is not None or hasattr(first, "embedding") or not hasattr(first, "rnn"):
        raise InputError(f"stack_models stacks recurrent sequence models (classifier, tagger, regressors); "
                         f"got a {type(first).__name__}")
    for m in models[1:]:
        a, b = _architecture(first), _architecture(m)
        if type(m) is not type(first) or a != b:
            differ = ", ".join(f"{k} {a.get(k)} against {b.get(k)}" for k in sorted(set(a) | set(b))
                               if a.get(k) != b.get(k) and k != "params")
            raise InputError(f"stacked members must share one architecture, but these differ: {differ}; "
                             "train them apart")
        if [p.shape for p in m.params.values()] != [p.shape for p in first.params.values()]:
            raise InputError("stacked members must have parameters of the same shapes")
    K, names = len(models), list(first.params)
    stacked = copy.deepcopy(first)
    sizes = [first.params[n].size for n in names]
    flat_p = np.empty((K, sum(sizes)), dtype=first.dtype)
    flat_g = np.zeros_like(flat_p)
    moved, off = {}, 0
    for name, n in zip(names, sizes):
        shape = first.params[name].shape
        for k, m in enumerate(models):
            flat_p[k, off:off + n] = m.params[name].ravel()
        moved[id(stacked.params[name])] = flat_p[:, off:off + n].reshape((K,) + shape)
        moved[id(stacked.grads[name])] = flat_g[:, off:off + n].reshape((K,) + shape)
        for k, m in enumerate(models):                      # the member's arrays become row k
            moved[id(m.params[name])] = flat_p[k, off:off + n].reshape(shape)
            moved[id(m.grads[name])] = flat_g[k, off:off + n].reshape(shape)
        off += n
    for model in (stacked, *models):
        for mod in model.modules():
            for d in (mod.params, mod.grads):
                for key, v in d.items():
                    d[key] = moved.get(id(v), v)
    member_modules = [list(m.modules()) for m in models]
    for i, mod in enumerate(stacked.modules()):
        mod.members = K
        own = [mods[i] for mods in member_modules]
        if isinstance(mod, Recurrent):
            mod.member_rngs, mod.member_dropout = [o.rng for o in own], [o.dropout for o in own]
        elif isinstance(mod, Dropout):
            mod.member_rngs, mod.member_p = [o.rng for o in own], [o.p for o in own]
    stacked.flat_params, stacked.flat_grads = flat_p, flat_g
    stacked.member_models = list(models)
    return stacked
