"""Benchmark: the report processor CLI against junitparser on one large PHPUnit-shaped report.

    .venv/bin/python bench/report_processor_bench.py [--cases N] [--keep DIR]

Generates a PHPUnit 9-shaped JUnit file (unnamed root suite > configured suite > class suites with
`file`, data-provider suites, failures with traces, skips, errors) of N testcases in a temporary
directory, then runs, each in its own subprocess and in the same run:

- baseline: junitparser `JUnitXml.fromfile` plus walking every case and reading its result;
- candidate: `python -m report_processor summarize --format json FILE`.

Then, in its own subprocess, one 256 MiB attribute (generated as it is read, never on disk): the
parser must refuse it (token limit) in under 2 s at under 128 MiB peak RSS.

With `--history`, the same file then goes twice through the deployed code path with history
(`process.process_object` on a directory-backed bucket and history store, bench/history_bench.py
`wired-file`): night 1 (nothing to compare) and night 2 (recorded and compared with night 1: an
unchanged suite). Goal for night 2: wall time <= 0.3 x the baseline's, peak RSS <= 128 MiB
(its own high-water mark); printed, not checked.

Reports wall time and peak RSS (from `resource.getrusage(RUSAGE_CHILDREN)` around each child, which
is the high-water mark of the biggest child so far, so the smaller process runs first) and checks
the goals: candidate time <= 0.25 x baseline time and candidate peak RSS <= 64 MiB. Exits 1 when a
goal is missed, so it can gate a change.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TIME_RATIO_GOAL = 0.25
RSS_GOAL_MIB = 64
HUGE_TOKEN_MIB = 256
HUGE_TOKEN_SECONDS_GOAL = 2.0
HUGE_TOKEN_RSS_GOAL_MIB = 128

# One attribute of argv[1] MiB, generated as it is read: the parser must refuse it at flat memory.
# Prints {"error": ..., "peak_mib": ...}; tests/report_processor runs it too (RSS and refusal).
HUGE_ATTRIBUTE_SCRIPT = """
import io, json, sys
from report_processor.summary import build_report

class HugeAttribute(io.RawIOBase):
    def __init__(self, size):
        self.head = b'<testsuite name="s"><testcase name="'
        self.left = size
        self.tail = b'"/></testsuite>'
    def readable(self):
        return True
    def read(self, n=-1):
        if self.head:
            head, self.head = self.head, b""
            return head
        if self.left:
            take = min(n, self.left)
            self.left -= take
            return b"A" * take
        tail, self.tail = self.tail, b""
        return tail

report = build_report([("huge.xml", HugeAttribute(int(sys.argv[1]) << 20))])
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child of a large
# process (pytest late in a run) would report its parent's peak.
with open("/proc/self/status") as status:
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"error": report.inputs[0].error, "peak_mib": peak_kib / 1024}))
"""

BASELINE_SCRIPT = """
import json
import sys
from junitparser import JUnitXml, TestSuite

xml = JUnitXml.fromfile(sys.argv[1])
counts = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0}

def walk(suite):
    for item in suite:
        if isinstance(item, TestSuite):
            walk(item)
            continue
        counts["tests"] += 1
        kinds = {type(result).__name__ for result in item.result}
        if "Error" in kinds:
            counts["errors"] += 1
        elif "Failure" in kinds:
            counts["failed"] += 1
        elif "Skipped" in kinds:
            counts["skipped"] += 1

walk(xml)
print(json.dumps(counts))
"""


def generate_phpunit_report(path: Path, cases: int, seed: int = 2) -> dict[str, int]:
    """Write a PHPUnit 9-shaped report of exactly `cases` testcases; return the true counts."""
    rng = random.Random(seed)
    expected = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0}
    per_class = 50
    classes = max(1, (cases + per_class - 1) // per_class)
    written = 0
    with path.open("w", encoding="utf-8", buffering=1 << 20) as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n')
        out.write(f'  <testsuite name="" tests="{cases}" assertions="{cases}" errors="0" ')
        out.write('warnings="0" failures="0" skipped="0" time="0">\n')
        out.write('    <testsuite name="Feature" tests="0" time="0">\n')
        for class_index in range(classes):
            if written >= cases:
                break
            module = f"Module{class_index % 97}"
            cls = f"Tests\\Feature\\{module}\\Endpoint{class_index}Test"
            dotted = cls.replace("\\", ".")
            file = f"/app/tests/Feature/{module}/Endpoint{class_index}Test.php"
            out.write(f'      <testsuite name="{cls}" file="{file}" tests="{per_class}">\n')
            in_class = min(per_class, cases - written)
            provider_cases = in_class // 5
            plain_cases = in_class - provider_cases
            for case_index in range(plain_cases):
                _write_case(out, rng, cls, dotted, file, f"test_case_{case_index}", expected)
            if provider_cases:
                method = "test_validates_payload"
                out.write(f'        <testsuite name="{cls}::{method}" tests="{provider_cases}">\n')
                for data_index in range(provider_cases):
                    name = f"{method} with data set #{data_index}"
                    _write_case(out, rng, cls, dotted, file, name, expected)
                out.write("        </testsuite>\n")
            out.write("      </testsuite>\n")
            written += in_class
        out.write("    </testsuite>\n  </testsuite>\n</testsuites>\n")
    return expected


def _write_case(out, rng, cls, dotted, file, name, expected) -> None:
    line = rng.randrange(10, 900)
    seconds = rng.random() * 0.05
    head = (
        f'          <testcase name="{name}" class="{cls}" classname="{dotted}" file="{file}" '
        f'line="{line}" assertions="1" time="{seconds:.6f}"'
    )
    roll = rng.random()
    expected["tests"] += 1
    if roll < 0.985:
        out.write(head + "/>\n")
    elif roll < 0.993:
        expected["failed"] += 1
        out.write(
            head + '>\n            <failure type="PHPUnit\\Framework\\ExpectationFailedException">'
            f"{cls}::{name}\nFailed asserting that 500 is identical to 200.\n\n"
            f"{file}:{line}</failure>\n          </testcase>\n"
        )
    elif roll < 0.996:
        expected["errors"] += 1
        out.write(
            head + '>\n            <error type="Illuminate\\Database\\QueryException">'
            f"{cls}::{name}\nSQLSTATE[08006] connection refused\n\n{file}:{line}</error>\n"
            "          </testcase>\n"
        )
    else:
        expected["skipped"] += 1
        out.write(head + ">\n            <skipped/>\n          </testcase>\n")


CPU_SECONDS: dict[str, float] = {}


def measure(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Wall seconds and peak RSS (KiB) of one child process; fails loudly if the child fails.

    The child's CPU seconds (user + system) go to CPU_SECONDS[argv[2]]: on a machine shared with
    other work, wall time grows with the load while CPU time mostly does not.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(
        argv, capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, **(env or {})}
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({completed.returncode}): {completed.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU_SECONDS[argv[2]] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, after.ru_maxrss, completed.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000, help="testcases to generate")
    parser.add_argument("--keep", type=Path, help="write the generated file here and keep it")
    parser.add_argument(
        "--history", action="store_true", help="also time the file through process_object"
    )
    args = parser.parse_args(argv)
    if args.cases < 1:
        parser.error("--cases must be at least 1")

    with tempfile.TemporaryDirectory(prefix="report-bench-") as scratch:
        report = (args.keep or Path(scratch)) / "phpunit-junit.xml"
        report.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        expected = generate_phpunit_report(report, args.cases)
        size_mib = report.stat().st_size / (1 << 20)
        print(
            f"generated {args.cases:,} testcases, {size_mib:.0f} MiB "
            f"in {time.perf_counter() - started:.1f} s: {report}",
            flush=True,
        )

        python = sys.executable
        # The candidate runs first: RUSAGE_CHILDREN keeps the largest child's peak so far.
        cli_time, cli_kib, cli_out = measure(
            [python, "-m", "report_processor", "summarize", "--format", "json", str(report)]
        )
        totals = json.loads(cli_out)["totals"]
        for key in expected:
            if totals[key] != expected[key]:
                raise SystemExit(f"CLI counted {key}={totals[key]}, expected {expected[key]}")
        huge_time, _, huge_out = measure(
            [python, "-c", HUGE_ATTRIBUTE_SCRIPT, str(HUGE_TOKEN_MIB)],
            {"PYTHONPATH": str(REPO_ROOT)},
        )
        huge = json.loads(huge_out)
        base_time, base_kib, base_out = measure([python, "-c", BASELINE_SCRIPT, str(report)])
        if json.loads(base_out) != expected:
            raise SystemExit(f"baseline counted {base_out.strip()}, expected {expected}")
        wired = []
        if args.history:
            store = Path(scratch) / "wired"
            for runs in (0, 1):
                night_seconds, _, out = measure(
                    [python, str(REPO_ROOT / "bench" / "history_bench.py"), "--child",
                     "wired-file", "--tests", "0", "--runs", str(runs), "--store", str(store),
                     "--junit", str(report)],
                )  # fmt: skip
                wired.append((night_seconds, json.loads(out) | {"cpu": CPU_SECONDS["--child"]}))

    ratio = cli_time / base_time
    cli_mib = cli_kib / 1024
    time_ok = ratio <= TIME_RATIO_GOAL
    rss_ok = cli_mib <= RSS_GOAL_MIB
    base_rss = "n/a (below candidate)" if base_kib <= cli_kib else f"{base_kib / 1024:.0f} MiB"
    huge_ok = (
        bool(huge["error"])
        and "byte limit" in huge["error"]
        and huge_time < HUGE_TOKEN_SECONDS_GOAL
        and huge["peak_mib"] < HUGE_TOKEN_RSS_GOAL_MIB
    )
    rows = [
        ("", "wall time", "peak RSS"),
        ("baseline (junitparser)", f"{base_time:.2f} s", base_rss),
        ("report_processor CLI", f"{cli_time:.2f} s", f"{cli_mib:.0f} MiB"),
        ("ratio / goal", f"{ratio:.2f}x (<= {TIME_RATIO_GOAL}x)", f"<= {RSS_GOAL_MIB} MiB"),
        ("result", "PASS" if time_ok else "FAIL", "PASS" if rss_ok else "FAIL"),
        (
            f"{HUGE_TOKEN_MIB} MiB attribute",
            f"{huge_time:.2f} s (< {HUGE_TOKEN_SECONDS_GOAL:g} s)",
            f"{huge['peak_mib']:.0f} MiB (< {HUGE_TOKEN_RSS_GOAL_MIB} MiB)",
        ),
        ("refused", "PASS" if huge_ok else "FAIL", str(huge["error"])[:60]),
    ]
    for label, wall, rss in rows:
        print(f"{label:<24} {wall:<22} {rss}")
    cli_cpu, base_cpu = CPU_SECONDS["report_processor"], CPU_SECONDS[BASELINE_SCRIPT]
    print(
        f"cpu time (user+sys): baseline {base_cpu:.2f} s, CLI {cli_cpu:.2f} s, "
        f"ratio {cli_cpu / base_cpu:.2f}x; load average {os.getloadavg()[0]:.2f}"
    )
    for night, (seconds, child) in enumerate(wired, 1):
        print(
            f"with history, night {night} (process_object): {seconds:.2f} s wall "
            f"({child['process_object_s']:.2f} s in process_object), "
            f"{seconds / base_time:.2f}x junitparser (goal <= 0.3x); cpu {child['cpu']:.2f} s, "
            f"{child['cpu'] / CPU_SECONDS[BASELINE_SCRIPT]:.2f}x junitparser's cpu; "
            f"peak RSS {child['peak_rss_mib']:.0f} MiB (goal <= 128 MiB); {child['headline']}"
        )
    print(f"baseline counted: {base_out.strip()}; CLI totals: {totals}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    return 0 if time_ok and rss_ok and huge_ok else 1


if __name__ == "__main__":
    sys.exit(main())
