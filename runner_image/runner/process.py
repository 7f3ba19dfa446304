"""Runs the child (an argv list, never a shell) to its end or to a deadline.

Output (stdout and stderr merged, in order) is redacted, streamed to a callback line by line
as it comes, written in full to the log the caller holds open, and kept in memory only as a
bounded tail. When the child ends, every process it started ends too, detached or not.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from .isolation import direct_children, end_run_processes, guard_runner
from .redact import Redactor

READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ChildResult:
    exit_code: int | None
    timed_out: bool
    output_bytes: int
    tail: bytes
    # Ended early because `stop` was set (the task was asked to stop), not by its deadline.
    stopped: bool = False


class _Tail:
    def __init__(self, limit: int):
        self.limit = limit
        self.chunks: deque[bytes] = deque()
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        while self.size - len(self.chunks[0]) >= self.limit:
            self.size -= len(self.chunks.popleft())

    def value(self) -> bytes:
        return b"".join(self.chunks)[-self.limit :]


def run_child(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: BinaryIO,
    redactor: Redactor,
    on_output: Callable[[bytes], None],
    deadline: float | None,
    kill_grace_seconds: float,
    tail_bytes: int,
    popen: Callable[..., subprocess.Popen[bytes]] = subprocess.Popen,
    stop: threading.Event | None = None,
) -> ChildResult:
    """`deadline` is a time.monotonic() value; at it, or when `stop` is set, the child's
    process group gets SIGTERM, then SIGKILL after `kill_grace_seconds`. Whatever is left of
    the run after the child (detached processes, orphans) is killed before this returns."""
    guard_runner()
    kept = direct_children()
    process = popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=dict(env),
        # Its own process group: artisan starts PHPUnit as a grandchild, and both must stop.
        start_new_session=True,
        close_fds=True,
    )
    assert process.stdout is not None  # stdout=PIPE
    pump = _OutputPump(process.stdout, log, redactor, on_output, tail_bytes)
    reader = threading.Thread(target=pump.run, name="child-output", daemon=True)
    reader.start()
    timed_out, stopped = _wait(process, deadline, stop)
    if timed_out or stopped:
        _stop_group(process, kill_grace_seconds)
    # Whatever the child left behind, in its group or detached from it, would hold the pipe
    # open, and could rewrite the run's files before upload or live on into the next
    # invocation: end all of it.
    _signal_group(process.pid, signal.SIGKILL)
    end_run_processes(process.pid, kept)
    reader.join(timeout=kill_grace_seconds + 5)
    process.stdout.close()
    return ChildResult(process.returncode, timed_out, pump.written, pump.tail.value(), stopped)


class _OutputPump:
    """The child's output, redacted as it streams, into the log, the tail and `on_output`."""

    def __init__(
        self,
        output: IO[bytes],
        log: BinaryIO,
        redactor: Redactor,
        on_output: Callable[[bytes], None],
        tail_bytes: int,
    ) -> None:
        self.output = output
        self.log = log
        self.stream = redactor.stream()
        self.on_output = on_output
        self.tail = _Tail(tail_bytes)
        self.written = 0

    def run(self) -> None:
        while chunk := self.output.readline(READ_CHUNK):
            self._emit(self.stream.feed(chunk))
        self._emit(self.stream.flush())

    def _emit(self, data: bytes) -> None:
        if data:
            self.log.write(data)
            self.log.flush()
            self.written += len(data)
            self.tail.add(data)
            self.on_output(data)


def _stop_group(process: subprocess.Popen[bytes], grace_seconds: float) -> None:
    """SIGTERM to the child's group, SIGKILL when it has not ended after `grace_seconds`."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


STOP_POLL_SECONDS = 0.25


def _wait(
    process: subprocess.Popen[bytes], deadline: float | None, stop: threading.Event | None
) -> tuple[bool, bool]:
    """Wait for the child to end: (timed out, stopped) when it has not."""
    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        if stop is not None:
            remaining = (
                STOP_POLL_SECONDS if remaining is None else min(remaining, STOP_POLL_SECONDS)
            )
        try:
            process.wait(timeout=remaining)
            return False, False
        except subprocess.TimeoutExpired:
            if stop is not None and stop.is_set():
                return False, True
            if deadline is not None and time.monotonic() >= deadline:
                return True, False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
