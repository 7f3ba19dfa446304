"""Benchmark: how fast any expat-driven Python parser can be, beside the report processor's own.

    .venv/bin/python bench/parser_floor.py [--cases N] [--file F] [--rounds R]

On one PHPUnit-shaped report (report_processor_bench's generator, or `--file`), runs each of these
in its own subprocess, `--rounds` times in turn, and prints the median CPU time (user + sys) of
each and its ratio to junitparser's:

- `expat alone`: pyexpat reading the file with no handler set (C only: the cost of XML itself);
- `expat + empty handlers`: the same with do-nothing Python start/end element handlers and
  ordered attribute lists, as fold.py sets them: what calling Python once per element costs
  before any work is done in it. No parser that runs Python per element can be faster;
- `parse_junit`: the report processor's parser (no rendering);
- `parse_junit + on_case`: the same calling an empty per-testcase hook, as history does;
- `lxml iterparse`, when lxml is importable (it is not a project dependency): libxml2 reading the
  testcases by tag, clearing each, the fastest pure-library alternative to expat here;
- `junitparser`: the baseline of the goals (`JUnitXml.fromfile` plus walking every case).

It prints the time goals (0.25x for the report, issue 9; 0.3x with history, issue 12) beside the
floors, so whether a goal is reachable by this design is read off one run. It checks no goal and
exits 0; report_processor_bench.py checks the report processor's.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from report_processor_bench import BASELINE_SCRIPT, generate_phpunit_report

REPO_ROOT = Path(__file__).resolve().parent.parent

EXPAT = """
import sys, pyexpat
parser = pyexpat.ParserCreate()
parser.ordered_attributes = True
if sys.argv[2] == "handlers":
    def start(name, attrs):
        pass
    def end(name):
        pass
    parser.StartElementHandler = start
    parser.EndElementHandler = end
with open(sys.argv[1], "rb") as stream:
    while chunk := stream.read(1 << 20):
        parser.Parse(chunk, False)
parser.Parse(b"", True)
"""

PARSE = """
import sys
from report_processor.parse import parse_junit
def on_case(file, classname, name, rank, seconds, flaky):
    pass
with open(sys.argv[1], "rb") as stream:
    acc = parse_junit(stream, on_case=on_case if sys.argv[2] == "on_case" else None)
assert acc.tests > 0
"""

LXML = """
import sys
from lxml import etree
cases = 0
for _, element in etree.iterparse(sys.argv[1], events=("end",), tag="testcase"):
    cases += 1
    element.get("name"), element.get("time")
    element.clear()
    while element.getprevious() is not None:
        del element.getparent()[0]
assert cases > 0
"""


def cpu_seconds(argv: list[str]) -> float:
    """CPU seconds (user + sys) of one child; fails loudly if the child fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    completed = subprocess.run(argv, capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    if completed.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({completed.returncode}): {completed.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def lxml_available() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import lxml"], capture_output=True)
    return probe.returncode == 0


def contenders(report: Path) -> dict[str, list[str]]:
    python, file = sys.executable, str(report)
    runs = {
        "expat alone": [python, "-c", EXPAT, file, "none"],
        "expat + empty handlers": [python, "-c", EXPAT, file, "handlers"],
        "parse_junit": [python, "-c", PARSE, file, "none"],
        "parse_junit + on_case": [python, "-c", PARSE, file, "on_case"],
    }
    if lxml_available():
        runs["lxml iterparse"] = [python, "-c", LXML, file]
    runs["junitparser"] = [python, "-c", BASELINE_SCRIPT, file]
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000, help="testcases to generate")
    parser.add_argument("--file", type=Path, help="use this JUnit file instead of generating one")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, in turn (median)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.cases < 1:
        parser.error("--rounds and --cases must be at least 1")
    with tempfile.TemporaryDirectory(prefix="parser-floor-") as scratch:
        report = args.file or Path(scratch) / "phpunit-junit.xml"
        if args.file is None:
            generate_phpunit_report(report, args.cases)
        size_mib = report.stat().st_size / (1 << 20)
        print(f"{report} ({size_mib:.0f} MiB), {args.rounds} round(s)", flush=True)
        runs = contenders(report)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for round_number in range(1, args.rounds + 1):
            for name, command in runs.items():
                times[name].append(cpu_seconds(command))
            print(f"round {round_number} done, load average {os.getloadavg()[0]:.2f}", flush=True)
    base = statistics.median(times["junitparser"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<26} {median:6.2f} s cpu   {median / base:5.3f}x junitparser")
    if "lxml iterparse" not in runs:
        print("lxml iterparse            skipped: lxml is not importable here")
    print(
        f"goals: report <= 0.25x ({0.25 * base:.2f} s), with history <= 0.3x ({0.3 * base:.2f} s)"
        f"; python {sys.version.split()[0]}, {os.cpu_count()} cpus"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
