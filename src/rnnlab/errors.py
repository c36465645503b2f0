"""Error types raised at rnnlab's public boundaries.

Every user-facing error is an ``RnnlabError``, so the CLI can catch exactly these, print
their single sentence and exit with status 2, while real bugs still show a traceback.
"""


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
