"""One writer per run directory: an OS file lock (``flock``) held while a process trains or writes
a run, so a second ``--resume``, an ``analyze`` or an ``eval`` of a run still training is refused
with a sentence instead of interleaving two processes' rows. The OS releases the lock on any exit,
kill -9 included, so a dead process's lock file never blocks anyone (its pid is only a hint)."""

from __future__ import annotations

import os
from pathlib import Path

from rnnlab.errors import RunDirError
from rnnlab.runs.files import LOCK

try:
    import fcntl
except ImportError:                     # not on POSIX: no locking (rnnlab's workers are Linux-only too)
    fcntl = None

_held: dict[str, list] = {}             # lock path -> [file descriptor, depth]: re-entrant in one process


class RunLock:
    """``with RunLock(run_dir):`` -- this process writes ``run_dir``; another one holding it is
    refused with a RunDirError naming its pid. Re-entrant within a process."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.path = str(self.run_dir.resolve() / LOCK)

    def __enter__(self) -> RunLock:
        if fcntl is None:
            return self
        if self.path in _held:
            _held[self.path][1] += 1
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _pid_in(fd)
            os.close(fd)
            raise RunDirError(f"{self.run_dir} is being written by another process{pid}; wait for it to finish, "
                              "or stop it, before using this run directory") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        _held[self.path] = [fd, 1]
        return self

    def __exit__(self, *exc) -> None:
        if fcntl is None or self.path not in _held:
            return
        _held[self.path][1] -= 1
        if _held[self.path][1] == 0:
            fd = _held.pop(self.path)[0]
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def writer_of(run_dir) -> str | None:
    """ " (process N)" when another process holds ``run_dir``'s lock now, else None."""
    path = Path(run_dir).resolve() / LOCK
    if fcntl is None or str(path) in _held or not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except BlockingIOError:
        return _pid_in(fd) or " (another process)"
    finally:
        os.close(fd)


def refuse_while_written(run_dir, what: str) -> None:
    """A reader of a run directory another process is writing stops with a sentence."""
    pid = writer_of(run_dir)
    if pid is not None:
        raise RunDirError(f"{run_dir} is still being written by a running process{pid}; {what} once it has "
                          "finished (or stop it first)")


def _pid_in(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (process {text})" if text.isdigit() else ""
