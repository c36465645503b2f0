"""Error types raised at rnnlab's public boundaries.

Every user-facing error is an ``RnnlabError``, so the CLI can catch exactly these, print
their single sentence and exit with status 2, while real bugs still show a traceback.
"""

import os
import sys
import warnings


class RnnlabError(Exception):
    """Base of every error whose message is meant for the user as it stands."""


class InputError(RnnlabError, ValueError):
    """A value is wrong: a shape, a config field, an empty corpus."""


class InputTypeError(RnnlabError, TypeError):
    """An argument has the wrong type."""


class CheckpointError(RnnlabError, ValueError):
    """A checkpoint is missing, foreign, or corrupted."""


class RunDirError(RnnlabError, ValueError):
    """A run directory cannot be used as asked (exists, or is not a run)."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """A warning attributed to the user's line: the first frame outside rnnlab, however deep in
    rnnlab it was raised (``warnings.warn``'s fixed stacklevel pointed inside rnnlab whenever a
    call came through another of rnnlab's functions, as ``rnnlab.train`` makes the Trainer)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level if frame is not None else 2)
