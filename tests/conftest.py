import numpy as np
import pytest


def _rngs(module):
    """Every np.random.Generator a module tree draws from (dropout masks)."""
    found, stack = [], [module]
    while stack:
        m = stack.pop()
        if isinstance(getattr(m, "rng", None), np.random.Generator):
            found.append(m.rng)
        stack.extend(getattr(m, "_children", []))
    return found


@pytest.fixture
def freeze_dropout():
    """Return a function that makes every forward of a module draw the same dropout masks."""
    def freeze(module):
        gens = _rngs(module)
        states = [g.bit_generator.state for g in gens]

        def reset():
            for g, s in zip(gens, states):
                g.bit_generator.state = s
        return reset
    return freeze
