"""Text for the character-level language model.

The default corpus exists on every machine with Python and needs no download: the standard
library's own top-level ``*.py`` files, read in sorted order and joined until ``max_chars``.
(Its exact content depends on the Python version; the run records its size and checksum.)
"""

from __future__ import annotations

import hashlib
import sysconfig
from pathlib import Path

import numpy as np

from rnnlab.checks import check_input_file
from rnnlab.data.task import Split, Task
from rnnlab.errors import InputError


def default_corpus(max_chars: int) -> tuple[str, str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    parts, total, used = [], 0, 0
    for path in sorted(root.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        parts.append(text)
        total += len(text) + 1
        used += 1
        if total >= max_chars:
            break
    text = "\n".join(parts)[:max_chars]
    if not text:
        raise InputError(f"no Python source files found under {root} for the default corpus; "
                         "pass --text FILE with a UTF-8 text file")
    return text, f"Python {sysconfig.get_python_version()} standard library, {used} files from {root}"


def read_text(path) -> str:
    path = check_input_file(path, "--text", "pass --text with a path to a UTF-8 file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text (invalid byte at offset {e.start}); convert it "
                         "to UTF-8 (e.g. iconv -t UTF-8) or pass another --text") from None
    if not text.strip():
        raise InputError(f"{path} is empty; pass --text with a file that holds some text")
    return text


def unigram_entropy_bits(ids: np.ndarray, vocab_size: int) -> float:
    """Bits per character of the best model that ignores context (the character frequencies)."""
    p = np.bincount(ids, minlength=vocab_size) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def lm_task(text: str, val_fraction: float = 0.1, min_chars: int = 1000, name: str = "charlm") -> Task:
    """Vocabulary, the training stream (first 90%) and the validation stream (last 10%)."""
    if len(text) < min_chars:
        raise InputError(f"the text has {len(text)} characters; the language model needs at least "
                         f"{min_chars} (lower --window/--batch-size or give a longer --text)")
    vocab = tuple(sorted(set(text)))
    index = {c: i for i, c in enumerate(vocab)}
    ids = np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
    cut = int(len(ids) * (1 - val_fraction))
    train, val = ids[:cut], ids[cut:]
    return Task(name, "text", True, len(vocab), len(vocab), Split(val, val), Split(train, train),
                baseline=unigram_entropy_bits(train, len(vocab)),
                baseline_note="unigram entropy (bits/char)", vocab=vocab)


def describe(text: str) -> dict:
    return {"chars": len(text), "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
