"""The child runner with real processes: streaming, bounded tail, deadline, process group."""

from __future__ import annotations

import os
import sys
import time

from runner.process import run_child
from runner.redact import Redactor


def run(tmp_path, script, deadline=None, tail_bytes=1024, seen=None):
    seen = [] if seen is None else seen
    with (tmp_path / "out.log").open("wb") as log:
        return run_child(
            [sys.executable, "-c", script],
            env=os.environ,
            cwd=tmp_path,
            log=log,
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


def test_detached_and_orphaned_descendants_end_with_the_run(tmp_path):
    """setsid leaves the process group, a double fork leaves the tree: both are the run's."""
    pids = tmp_path / "pids"
    sleeper = (
        "import os, sys, time; open(sys.argv[1], 'a').write(f'{os.getpid()}\\n'); time.sleep(600)"
    )
    script = (
        "import os, subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', {sleeper!r}, {str(pids)!r}],"
        " start_new_session=True, stdout=subprocess.DEVNULL)\n"
        "if os.fork() == 0:\n"
        f"    subprocess.Popen([sys.executable, '-c', {sleeper!r}, {str(pids)!r}],"
        " stdout=subprocess.DEVNULL)\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        "import time\n"
        "while not os.path.exists(sys.argv[1]) or len(open(sys.argv[1]).read().split()) < 2:\n"
        "    time.sleep(0.05)\n"
        "print('detached two', flush=True)\n"
    )
    started = time.monotonic()
    with (tmp_path / "out.log").open("wb") as log:
        result = run_child(
            [sys.executable, "-c", script, str(pids)],
            env=os.environ,
            cwd=tmp_path,
            log=log,
            redactor=Redactor([]),
            on_output=lambda data: None,
            deadline=time.monotonic() + 30,
            kill_grace_seconds=1,
            tail_bytes=1024,
        )

    assert result.exit_code == 0 and b"detached two" in result.tail
    assert time.monotonic() - started < 20
    survivors = [int(pid) for pid in pids.read_text().split() if _alive(int(pid))]
    assert survivors == []


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}") and _state(pid) != "Z"
