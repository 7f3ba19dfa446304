"""RunsNotPassed (issue 9): 1 for every run verdict but passed, so the run-not-passed alarm fires
for what the other alarms miss — a command that failed over a report with no failing test."""

from __future__ import annotations

import io

import pytest

from report_processor import RunMetadata, build_report
from report_processor.process import metrics_for

PASSING = b'<testsuite name="s" tests="2"><testcase name="a"/><testcase name="b"/></testsuite>'
FAILING = (
    b'<testsuite name="s" tests="2"><testcase name="a"/>'
    b'<testcase name="b"><failure message="no"/></testcase></testsuite>'
)
SKIPPED = b'<testsuite name="s" tests="1"><testcase name="a"><skipped/></testcase></testsuite>'
BROKEN = b"<testsuite><testcase"
REPORTS = {"passing": PASSING, "failing": FAILING, "skipped": SKIPPED, "broken": BROKEN}


def values(report_kind: str, runner_status: str | None) -> dict[str, float]:
    report = build_report(
        [("junit.xml", io.BytesIO(REPORTS[report_kind]))],
        RunMetadata(run_id="r", command="test", runner_status=runner_status),
    )
    metrics = {metric.name: metric.value for metric in metrics_for(report)}
    assert metrics["RunsNotPassed"] == int(report.status != "passed"), report.status
    return metrics


@pytest.mark.parametrize(
    ("report_kind", "runner_status", "runs_not_passed"),
    [
        ("passing", "passed", 0),
        ("passing", None, 0),  # no manifest: the report's own verdict
        # The gap issue 9 left: the command failed, the report holds no failing test.
        ("passing", "failed", 1),
        ("passing", "timed_out", 1),
        ("passing", "error", 1),
        ("failing", "passed", 1),
        ("failing", "failed", 1),
        ("skipped", "passed", 1),  # no_tests
        ("broken", "passed", 1),  # unusable: published beside ReportParseErrors
        ("broken", "timed_out", 1),
    ],
)
def test_runs_not_passed_is_one_for_every_verdict_but_passed(
    report_kind, runner_status, runs_not_passed
):
    assert values(report_kind, runner_status)["RunsNotPassed"] == runs_not_passed


def test_a_failed_command_over_a_clean_report_differs_from_a_pass_only_in_runs_not_passed():
    passed, failed = values("passing", "passed"), values("passing", "failed")
    assert {name for name in passed if passed[name] != failed[name]} == {"RunsNotPassed"}


def test_an_unusable_report_publishes_only_parse_errors_and_runs_not_passed():
    assert values("broken", "passed") == {"ReportParseErrors": 1, "RunsNotPassed": 1}
