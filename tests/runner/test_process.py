"""The child runner with real processes: streaming, bounded tail, deadline, process group."""

from __future__ import annotations

import os
import sys
import time

from runner.process import run_child
from runner.redact import Redactor


def run(tmp_path, script, deadline=None, tail_bytes=1024, seen=None):
    seen = [] if seen is None else seen
    return run_child(
        [sys.executable, "-c", script],
        env=os.environ,
        cwd=tmp_path,
        log_path=tmp_path / "out.log",
        redactor=Redactor(["hunter22"]),
        on_output=lambda data: seen.append((time.monotonic(), data)),
        deadline=deadline,
        kill_grace_seconds=1,
        tail_bytes=tail_bytes,
    )


def test_output_streams_as_it_comes(tmp_path):
    seen = []
    started = time.monotonic()
    script = "import time; print('first', flush=True); time.sleep(1.5); print('second')"
    result = run(tmp_path, script, seen=seen)

    assert result.exit_code == 0 and not result.timed_out
    first_at = next(at for at, data in seen if b"first" in data)
    assert first_at - started < 1.2, "the first line must arrive before the child ends"
    assert (tmp_path / "out.log").read_bytes() == b"first\nsecond\n"


def test_full_log_on_disk_bounded_tail_in_memory_secrets_masked(tmp_path):
    script = "import sys\nfor i in range(20000): print(f'line {i} hunter22')\nsys.exit(3)"
    result = run(tmp_path, script, tail_bytes=1000)

    assert result.exit_code == 3
    log = (tmp_path / "out.log").read_bytes()
    assert log.count(b"\n") == 20000 and b"hunter22" not in log
    assert len(result.tail) == 1000 and result.tail.endswith(b"line 19999 ********\n")
    assert result.output_bytes == len(log)


def test_deadline_stops_the_whole_process_group(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time\n"
        f"g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(g.pid))\n"
        "print('waiting', flush=True)\n"
        "time.sleep(600)\n"
    )
    started = time.monotonic()
    result = run(tmp_path, script, deadline=time.monotonic() + 1.5)

    assert result.timed_out
    assert result.exit_code == -15  # SIGTERM was enough
    assert time.monotonic() - started < 5
    assert b"waiting" in result.tail
    grandchild = int(pid_file.read_text())
    time.sleep(0.2)
    assert not os.path.exists(f"/proc/{grandchild}") or "Z" in _state(grandchild)


def test_a_child_ignoring_sigterm_is_killed_after_the_grace(tmp_path):
    script = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('stubborn', flush=True)\ntime.sleep(600)\n"
    )
    started = time.monotonic()
    result = run(tmp_path, script, deadline=time.monotonic() + 1)

    assert result.timed_out and result.exit_code == -9
    assert 1.9 < time.monotonic() - started < 5


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().split()[2]
    except OSError:
        return "Z"
