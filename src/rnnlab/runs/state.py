"""The full training state of a ``Trainer`` at an epoch boundary, for an exact resume.

Every collaborator of the loop (model, optimizer, schedule, batch source, guard, dropout
generators) hands over its own ``state_dict()``; this module only packs the nested result into
NumPy arrays (for the ``.npz``) and JSON (for ``state.json``), and back. Nobody's private
fields are read here.
"""

from __future__ import annotations

import numpy as np

_ARRAY = "__array__"


def pack(obj, arrays: dict, path: str = "s"):
    """Replace every array inside ``obj`` by a reference to ``arrays[key]``; the rest is JSON."""
    if isinstance(obj, np.ndarray):
        arrays[path] = obj
        return {_ARRAY: path}
    if isinstance(obj, dict):
        return {str(k): pack(v, arrays, f"{path}::{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [pack(v, arrays, f"{path}::{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def unpack(obj, arrays: dict):
    if isinstance(obj, dict):
        if set(obj) == {_ARRAY}:
            return arrays[obj[_ARRAY]]
        return {k: unpack(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unpack(v, arrays) for v in obj]
    return obj


def _rng_modules(model):
    return [m for m in model.modules() if isinstance(getattr(m, "rng", None), np.random.Generator)]


def _carried(model):
    """The recurrent state a stateful model carries across batches (text streams), or None."""
    state = getattr(model, "state", None)
    if state is None:
        return None
    return list(state) if isinstance(state, tuple) else [state]


def trainer_state(trainer) -> tuple[dict, dict]:
    """(arrays, JSON metadata) of everything the rest of the run depends on."""
    state = {"epoch": len(trainer.history), "iteration": trainer.iteration,
             "accepted": trainer.accepted,
             "model": trainer.model.state_dict(),
             "optimizer": trainer.optimizer.state_dict(),
             "schedule": trainer.schedule.state_dict(),
             "batches": trainer.batches.state_dict(),
             "dropout_rngs": [m.rng.bit_generator.state for m in _rng_modules(trainer.model)],
             "carried_state": _carried(trainer.model),
             "guard": trainer.guard.state_dict() if trainer.guard is not None else None}
    arrays: dict = {}
    meta = pack(state, arrays)
    return arrays, meta


def restore_trainer(trainer, arrays: dict, meta: dict, history: list[dict]) -> None:
    """Put ``trainer`` where ``trainer_state`` left it, with the metrics of the epochs it covers."""
    state = unpack(meta, arrays)
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.schedule.load_state_dict(state["schedule"])
    trainer.batches.load_state_dict(state["batches"])
    for m, st in zip(_rng_modules(trainer.model), state["dropout_rngs"], strict=True):
        m.rng.bit_generator.state = st
    carried = state["carried_state"]
    if carried is not None:
        trainer.model.state = tuple(carried) if len(carried) > 1 else carried[0]
    if trainer.guard is not None and state["guard"] is not None:
        trainer.guard.load_state_dict(state["guard"])
    trainer.iteration, trainer.accepted = state["iteration"], state["accepted"]
    trainer.history = list(history)
