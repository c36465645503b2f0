"""Module base, ``Linear`` and ``Dropout``: the small pieces heads are built from.

Parameters are plain dicts of NumPy arrays, keyed like PyTorch's ``state_dict``; ``grads`` has
the same keys. A parent module holds its children's arrays under prefixed names (the same
objects, not copies), so an optimizer stepping the parent's dict updates every child.
"""

from __future__ import annotations

import numpy as np

from rnnlab.checks import check_dtype, check_float, check_int
from rnnlab.errors import InputError
from rnnlab.nn.cells.members import rows
from rnnlab.nn.wiring import project_signs


class Module:
    _forward_caches: tuple[str, ...] = ("_cache",)     # what forward() keeps for backward()
    members: int | None = None     # K when stacked (rnnlab.nn.stack): every parameter gains a leading K axis

    def __init__(self, dtype=np.float32):
        self.dtype = check_dtype(dtype)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True
        self._children: list[Module] = []
        self.masks: dict[str, np.ndarray] = {}       # weight name -> 0/1 array: which weights exist
        self.signs: dict[str, np.ndarray] = {}       # weight name -> +1/-1 per column (Dale's law)

    def _register(self, name: str, array: np.ndarray) -> None:
        self.params[name] = np.ascontiguousarray(array, dtype=self.dtype)
        self.grads[name] = np.zeros_like(self.params[name])

    def _adopt(self, prefix: str, child: "Module") -> "Module":
        for k in child.params:
            self.params[f"{prefix}.{k}"] = child.params[k]
            self.grads[f"{prefix}.{k}"] = child.grads[k]
        self._children.append(child)
        return child

    def __getstate__(self):
        """A copy or a pickle of a module leaves out what its last forward pass kept for
        backward(): the analysis copies a model after a test-set forward, whose activations are
        megabytes (the seed model's four copies took 40 ms)."""
        state = self.__dict__.copy()
        for name in self._forward_caches:
            if name in state:
                state[name] = None
        return state

    def modules(self):
        """This module and every descendant."""
        yield self
        for c in self._children:
            yield from c.modules()

    def flatten_parameters(self) -> None:
        """Move every parameter and gradient into one contiguous buffer each (names, shapes and
        values unchanged), so an optimizer can update all of them in a few vectorized operations.
        """
        total = self.parameter_count()
        flat_p = np.empty(total, dtype=self.dtype)
        flat_g = np.zeros(total, dtype=self.dtype)
        moved, off = {}, 0
        for k, p in self.params.items():
            n = p.size
            flat_p[off:off + n] = p.ravel()
            moved[id(p)] = flat_p[off:off + n].reshape(p.shape)
            moved[id(self.grads[k])] = flat_g[off:off + n].reshape(p.shape)
            off += n
        for m in self.modules():              # children hold the same arrays: re-point them too
            for d in (m.params, m.grads):
                for k, v in d.items():
                    d[k] = moved.get(id(v), v)

    def train(self, mode: bool = True) -> "Module":
        self.training = mode
        for c in self._children:
            c.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def constrain_grads(self) -> None:
        """Zero the gradient of every masked weight, in this module and below (``masks``: name ->
        0/1 array): so no optimizer state of a weight that does not exist ever leaves 0."""
        for m in self.modules():
            for name, mask in m.masks.items():
                m.grads[name] *= mask

    def constrain_weights(self) -> None:
        """After an optimizer step: masked weights back to exactly 0 and every column of a signed
        weight (``signs``: name -> (in,) of +1/-1, Dale's law) on its own side of zero."""
        for m in self.modules():
            for name, mask in m.masks.items():
                m.params[name] *= mask
            for name, signs in m.signs.items():
                project_signs(m.params[name], signs)

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g.fill(0)

    def parameter_count(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def describe(self) -> dict:
        """JSON facts about the module as built (a run's record is made of these, not of the
        config that may or may not have built it); subclasses add their own."""
        return {"class": type(self).__name__, "params": self.parameter_count(), "dtype": np.dtype(self.dtype).name}

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays in place (keys and shapes must match exactly, as PyTorch's strict load)."""
        name = type(self).__name__
        missing = sorted(set(self.params) - set(state))
        unexpected = sorted(set(state) - set(self.params))
        if missing or unexpected:
            raise InputError(
                f"{name}.load_state_dict: keys do not match (missing {missing or 'none'}, "
                f"unexpected {unexpected or 'none'}); build the model with the same configuration "
                "as the one that produced the state dict")
        arrays = {k: np.asarray(v) for k, v in state.items()}
        for k, v in arrays.items():                    # check everything before changing anything
            if v.shape != self.params[k].shape:
                raise InputError(f"{name}.load_state_dict: {k} has shape {v.shape}, expected "
                                 f"{self.params[k].shape}; the sizes of the two models differ")
            if not np.all(np.isfinite(v)):
                raise InputError(f"{name}.load_state_dict: {k} holds NaN or infinite values; "
                                 "load weights from a healthy checkpoint")
        for k, v in arrays.items():
            self.params[k][...] = v


class Linear(Module):
    """y = x W^T + b over the last axis; any leading axes (B, ...) are kept."""
    _forward_caches = ("_x",)

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 rng: np.random.Generator, init: str = "xavier", dtype=np.float32):
        super().__init__(dtype)
        self.in_features, self.out_features = in_features, out_features
        if init == "pytorch":
            k = 1.0 / np.sqrt(in_features)
            W = rng.uniform(-k, k, (out_features, in_features))
            b = rng.uniform(-k, k, out_features)
        else:
            a = np.sqrt(6.0 / (in_features + out_features))
            W = rng.uniform(-a, a, (out_features, in_features))
            b = np.zeros(out_features)
        self._register("weight", W)
        if bias:
            self._register("bias", b)
        self._x = None

    def forward(self, x):
        # One (N, in) product: a batch-first view of a time-major array (a recurrent stack's
        # output) would otherwise run as B strided products, 1.6x slower for a char-LM readout.
        # Stacked members (K, ...) run one product each.
        lead = () if self.members is None else (self.members,)
        x2 = x.reshape(lead + (-1, self.in_features))         # a copy only if x is a strided view
        self._x = x2
        y = x2 @ np.swapaxes(self.params["weight"], -1, -2)   # (N, out)
        if "bias" in self.params:
            y += rows(self.params["bias"])
        return y.reshape(x.shape[:-1] + (self.out_features,))

    def backward(self, dy):
        x2 = self._x                                          # (N, in)
        dy2 = dy.reshape(x2.shape[:-1] + (self.out_features,))   # (N, out)
        self.grads["weight"] += np.swapaxes(dy2, -1, -2) @ x2  # through x W^T
        if "bias" in self.grads:
            self.grads["bias"] += dy2.sum(axis=-2)            # through + b
        dx = dy2 @ self.params["weight"]                      # one (N, in) product, as in forward: a
        return dx.reshape(dy.shape[:-1] + (self.in_features,))  # (B, T, out) dy ran as B products


class Embedding(Module):
    """Rows of ``weight`` (V, E) looked up by integer ids: (B, T) -> (B, T, E).

    Initialised N(0, 1) as ``torch.nn.Embedding`` is: at 0.1 N(0, 1) a char-LM trained with the
    same updates as PyTorch's was 3-9% worse in bits/char (the inputs start too small to drive the
    gates)."""
    _forward_caches = ("_idx",)

    def __init__(self, num_embeddings: int, embedding_dim: int, *, rng: np.random.Generator,
                 dtype=np.float32):
        super().__init__(dtype)
        self.num_embeddings = check_int("num_embeddings", num_embeddings, minimum=1, owner="Embedding")
        self._register("weight", rng.standard_normal((num_embeddings, embedding_dim)))
        self._idx = None

    def forward(self, idx):
        idx = np.asarray(idx)
        if not np.issubdtype(idx.dtype, np.integer):
            raise InputError(f"Embedding: expected integer ids, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            raise InputError(f"Embedding: ids must lie in [0, {self.num_embeddings - 1}], got "
                             f"{idx.min()}..{idx.max()}; encode the text with the model's vocabulary")
        self._idx = idx
        return self.params["weight"][idx]                      # (..., E)

    def backward(self, dy):
        """Sum the gradient rows of each id into its weight row: ids sorted once, then one
        segmented sum (np.add.reduceat), 3.5x faster than np.add.at's scatter for a character
        vocabulary (2,048 ids of 100 symbols: 124 us against 433 us)."""
        E = self.params["weight"].shape[1]
        idx = self._idx.reshape(-1)
        order = np.argsort(idx, kind="stable")
        ids = idx[order]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])            # first row of each id
        self.grads["weight"][ids[starts]] += np.add.reduceat(dy.reshape(-1, E)[order], starts, axis=0)


class Dropout(Module):
    """Inverted dropout: scale kept units by 1/(1-p) in training, identity in eval."""
    _forward_caches = ("_mask",)

    def __init__(self, p: float, *, rng: np.random.Generator, dtype=np.float32):
        super().__init__(dtype)
        self.p = check_float("dropout", p, low=0.0, high=1.0, high_open=True)
        self.rng = rng
        self._mask = None

    def forward(self, x):
        if not self.training or (self.p == 0.0 if self.members is None else not any(self.member_p)):
            self._mask = None
            return x
        if self.members is None:
            self._mask = dropout_mask(self.rng, x.shape, self.p, x.dtype)
        else:                                   # each member's own mask, stream and rate, as alone
            self._mask = member_masks(self.member_rngs, self.member_p, x.shape, x.dtype, axis=0)
        return x * self._mask

    def backward(self, dy):
        return dy if self._mask is None else dy * self._mask


def dropout_mask(rng: np.random.Generator, shape, p: float, dtype) -> np.ndarray:
    """Mask of 0 and 1/(1-p') with keep probability 1-p' (shared by Dropout and the layer stack).

    Draws 16-bit integers (a quarter of the cost of uniform floats), so the drop probability used
    is p' = round(p * 2**16) / 2**16, within 2**-17 of p; the scale uses p' so E[mask] = 1 exactly.
    """
    n = int(np.prod(shape))
    bits = rng.bit_generator.random_raw((n + 3) // 4).view(np.uint16)[:n].reshape(shape)
    cut = min(round(p * 65536), 65535)
    keep = bits >= np.uint16(cut)
    return np.multiply(keep, dtype.type(65536 / (65536 - cut)), dtype=dtype)


def member_masks(rngs, ps, shape, dtype, axis: int) -> np.ndarray:
    """Stacked members' dropout masks for an array of ``shape`` whose member axis is ``axis``:
    each member's drawn from its own stream at its own rate, exactly as it draws alone (a member
    with rate 0 draws nothing and keeps everything)."""
    one = shape[:axis] + shape[axis + 1:]
    return np.stack([dropout_mask(rng, one, p, dtype) if p > 0 else np.ones(one, dtype) for rng, p in zip(rngs, ps)],
                    axis=axis)


__all__ = ["Module", "Linear", "Embedding", "Dropout", "dropout_mask"]
