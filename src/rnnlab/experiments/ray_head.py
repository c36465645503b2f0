"""A local Ray head that cannot outlive the sweep that started it.

``python -m rnnlab.experiments.ray_head DRIVER_PID PORT CPUS`` is started by ``rnnlab sweep --backend
ray`` (without ``--address``). It runs ``ray start --head --block`` as its child and stays between
the driver and every Ray process:

- it asks the kernel for SIGTERM when the driver dies, even by ``kill -9`` (Linux parent-death
  signal), and exits at once if the driver is already gone;
- it is a child subreaper, so Ray processes orphaned by a dying parent (workers whose raylet went
  first, agents whose ``ray start`` went first) are re-parented to it and stay findable;
- on SIGTERM it asks ``ray start`` to stop its processes, waits a few seconds, then kills whatever
  is left below it.

Relying on ``ray start --block``'s own SIGTERM handler alone is not enough: a signal that arrives
while the head is still starting (the handler not yet installed), or a slow shutdown on a loaded
machine, leaves gcs_server, raylet and the agents running.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
GRACE_SECONDS = 5.0


def _prctl(option: int, value: int) -> bool:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl(option, value) == 0
    except (OSError, AttributeError):
        return False


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), children before grandchildren."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(0), []):
            out.append(c)
            todo.append(c)
    return out


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _kill_everything_below(head: subprocess.Popen) -> None:
    if head.poll() is None:
        head.send_signal(signal.SIGTERM)                      # ray start --block stops its processes
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline and descendants(os.getpid()):
        _reap()
        time.sleep(0.1)
    for _ in range(20):                                        # new orphans may appear as parents die
        left = descendants(os.getpid())
        if not left:
            break
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
        _reap()


def main(argv: list[str]) -> int:
    driver, port, cpus = int(argv[0]), argv[1], argv[2]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    if os.getppid() != driver:                                 # the driver died before we asked
        return 1
    head = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
                             "--port", port, "--num-cpus", cpus, "--include-dashboard=false",
                             "--disable-usage-stats"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not stop and head.poll() is None and os.getppid() == driver:
            time.sleep(0.2)
    finally:
        _kill_everything_below(head)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
