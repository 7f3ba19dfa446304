"""The benchmark's input is what it claims: counted alike by its generator, junitparser and us.

Not a timed test: bench/report_processor_bench.py measures speed; this keeps its data honest.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from report_processor import build_report

BENCH = Path(__file__).resolve().parents[2] / "bench" / "report_processor_bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("report_processor_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def baseline_counts(bench, path: Path) -> dict[str, int]:
    """The benchmark's own baseline script (junitparser), run as the benchmark runs it."""
    completed = subprocess.run(
        [sys.executable, "-c", bench.BASELINE_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout)


def test_generator_parser_and_baseline_agree(tmp_path):
    path = tmp_path / "phpunit.xml"
    bench = load_bench()
    expected = bench.generate_phpunit_report(path, 5_003)
    assert expected["tests"] == 5_003 and expected["failed"] and expected["errors"]
    report = build_report([path])
    ours = {key: getattr(report.totals, key) for key in expected}
    assert ours == expected == baseline_counts(bench, path)
    # Data-provider suites fold into their class: 50 cases per class row.
    assert max(row.tests for row in report.suites) == 50


def test_parser_floor_runs_every_contender_on_a_small_report():
    """bench/parser_floor.py measures what the docs quote: every contender runs to the end."""
    script = BENCH.parent / "parser_floor.py"
    completed = subprocess.run(
        [sys.executable, str(script), "--cases", "2000", "--rounds", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = completed.stdout.splitlines()
    for name in ("expat alone", "expat + empty handlers", "parse_junit + on_case", "junitparser"):
        assert any(line.startswith(name) and "x junitparser" in line for line in lines), name
