"""What keeps the code a run executes away from the runner: its environment, its memory and
every process it leaves behind.

The child runs as the runner's own user (Lambda offers no other), so the kernel's same-user
rules are the boundary: a non-dumpable runner's /proc entries (environ, mem, fd) belong to
root and its memory cannot be traced; a child-subreaper runner inherits every orphan of the
run, so nothing detached (setsid, double fork) escapes the end of the run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36

# What the child gets from the runner's environment: locale, time zone and search path, and
# the names the operator lists in RUNNER_CHILD_ENV. Everything else, above all AWS_* (keys,
# session token, container-credentials and Lambda runtime API addresses), ECS_* metadata
# URIs and the runner's own settings, stays with the runner.
CHILD_ENV_NAMES = frozenset({"PATH", "LANG", "LANGUAGE", "TZ", "HOME", "PHP_INI_SCAN_DIR"})
_CHILD_ENV_PATTERN = re.compile(r"LC_[A-Z_]+")
# Never passed on, even when listed: credentials and where to fetch them.
FORBIDDEN_CHILD_ENV = re.compile(r"(AWS_|ECS_|AMAZON_|_X_AMZN|_LAMBDA|LAMBDA_).*|DB_SECRET_ARN")


class ProcessesSurvived(RuntimeError):
    """Processes of the run could not be ended; the message names them."""


def forbidden_child_env(name: str) -> bool:
    return bool(FORBIDDEN_CHILD_ENV.fullmatch(name))


def child_environment(base: Mapping[str, str], extra_names: Iterable[str] = ()) -> dict[str, str]:
    """The allowlisted part of `base`: nothing the runner needs for AWS reaches the child."""
    allowed = CHILD_ENV_NAMES | frozenset(extra_names)
    return {
        name: value
        for name, value in base.items()
        if (name in allowed or _CHILD_ENV_PATTERN.fullmatch(name)) and not forbidden_child_env(name)
    }


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl({option}, {value}) failed: {os.strerror(errno)}")


def guard_runner() -> None:
    """Before the first child starts: make this process unreadable to its children (its
    environment holds the AWS credentials on Lambda, its memory everywhere) and the reaper of
    every process the run orphans."""
    _prctl(_PR_SET_DUMPABLE, 0)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def direct_children() -> set[int]:
    me = os.getpid()
    return {pid for pid, parent in _parents().items() if parent == me}


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process visible in /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue  # gone meanwhile
        # The command name (field 2) may hold spaces and ')': fields start after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def run_processes(child: int, kept: set[int]) -> set[int]:
    """The run's processes: `child` and every descendant of this process that is neither one
    of `kept` (children that were there before the run) nor below one of them. Orphans of the
    run are reparented to this process (the subreaper), so they are found too."""
    parents = _parents()
    me = os.getpid()
    roots = {pid for pid, parent in parents.items() if parent == me and pid not in kept}
    if child in parents:
        roots.add(child)
    found: set[int] = set()
    frontier = roots
    while frontier:
        found |= frontier
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
    return found


def end_run_processes(child: int, kept: set[int], patience_seconds: float = 10.0) -> int:
    """SIGKILL every process of the run, reap those that became this process's children, and
    repeat until none is left (a process forking meanwhile is caught on the next round).
    Returns how many were killed."""
    killed: set[int] = set()
    give_up = time.monotonic() + patience_seconds
    while True:
        pids = run_processes(child, kept)
        if not pids:
            return len(killed)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed |= pids
        _reap(direct_children() - kept)
        if time.monotonic() > give_up:
            raise ProcessesSurvived(
                f"processes {sorted(pids)[:10]} of the run survived SIGKILL for "
                f"{patience_seconds:g}s; the results of this run may have been changed by them"
            )
        time.sleep(0.01)


def _reap(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
