"""The benchmark's input is what it claims: counted alike by its generator, junitparser and us.

Not a timed test: bench/report_processor_bench.py measures speed; this keeps its data honest.
"""

import importlib.util
from pathlib import Path

from junitparser import JUnitXml, TestSuite

from report_processor import build_report

BENCH = Path(__file__).resolve().parents[2] / "bench" / "report_processor_bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("report_processor_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def junitparser_counts(path: Path) -> dict[str, int]:
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

    walk(JUnitXml.fromfile(str(path)))
    return counts


def test_generator_parser_and_baseline_agree(tmp_path):
    path = tmp_path / "phpunit.xml"
    expected = load_bench().generate_phpunit_report(path, 5_003)
    assert expected["tests"] == 5_003 and expected["failed"] and expected["errors"]
    report = build_report([path])
    ours = {key: getattr(report.totals, key) for key in expected}
    assert ours == expected == junitparser_counts(path)
    # Data-provider suites fold into their class: 50 cases per class row.
    assert max(row.tests for row in report.suites) == 50
