"""Markdown and JSON renderings: content, escaping of untrusted text, and the byte cap."""

import io
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from report_processor import RunMetadata, build_report, summarize, to_json, to_markdown
from report_processor.model import InputResult

FIXTURES = Path(__file__).parent / "fixtures"
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def assert_tables_whole(markdown: str) -> None:
    """Every table has a header, a separator and rows with the header's column count."""
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        if not lines[index].startswith("|"):
            index += 1
            continue
        columns = len(UNESCAPED_PIPE.findall(lines[index]))
        assert index + 1 < len(lines) and set(lines[index + 1]) <= set("|-: "), "no separator"
        while index < len(lines) and lines[index].startswith("|"):
            line = lines[index]
            assert line.endswith("|"), f"row cut short: {line!r}"
            assert len(UNESCAPED_PIPE.findall(line)) == columns, f"column count: {line!r}"
            index += 1


def test_markdown_puts_headline_then_failures_then_suites():
    metadata = RunMetadata(run_id="r-42", command="test", environment="dev", project="shop")
    markdown = summarize([FIXTURES / "phpunit9_nested.xml"], metadata).markdown
    assert markdown.startswith("# ❌ Test report: failed\n")
    assert "Run r-42" in markdown and "Environment dev" in markdown
    assert "**Pass rate 57.14 %** · 9 tests: 4 passed, 2 failed, 1 error, 2 skipped" in markdown
    order = [markdown.index(h) for h in ("## Failures (3)", "## Suites (2)")]
    assert order == sorted(order)
    # 9 tests: a slowest table would say nothing.
    assert "## Slowest tests" not in markdown
    assert "<details><summary>Details</summary>" in markdown
    # PHPUnit's first trace line repeats the test name; the message is the line after it.
    assert "> Expected response status code \\[201\\] but received 500." in markdown
    # The failing line (past the vendor frame), then the declaration.
    assert "at tests/Feature/InvoiceApiTest.php:38 (test at :31)" in markdown
    assert_tables_whole(markdown)


def test_passing_and_empty_reports_say_so():
    passing = summarize([FIXTURES / "no_root.xml"]).markdown
    assert passing.startswith("# ✅ Test report: passed")
    assert "**Pass rate 100.00 %**" in passing
    xml = b"<testsuites><testsuite name='none' tests='0'/></testsuites>"
    empty = summarize([("empty-suite.xml", io.BytesIO(xml))])
    assert empty.report.pass_rate is None
    assert "**Pass rate n/a**" in empty.markdown
    assert json.loads(empty.json)["pass_rate"] is None


def test_unusable_inputs_are_listed_with_their_error():
    summary = summarize([FIXTURES / "truncated.xml", FIXTURES / "go.xml"])
    assert "## Unusable inputs (1 of 2)" in summary.markdown
    assert "truncated.xml: not well-formed XML" in summary.markdown
    only_bad = summarize([FIXTURES / "empty.xml"])
    assert only_bad.markdown.startswith("# ⚠️ Test report: report unusable")


def test_json_has_the_documented_shape():
    metadata = RunMetadata(run_id="r-1", command="test", started_at="2025-11-27T02:00:00Z")
    document = json.loads(summarize([FIXTURES / "surefire_flaky.xml"], metadata).json)
    assert document["schema_version"] == 3
    assert document["history"] is None  # summarize() records no history
    assert (document["status"], document["report_status"]) == ("failed", "failed")
    assert document["totals"] == {
        "tests": 3,
        "passed": 2,
        "failed": 1,
        "errors": 0,
        "skipped": 0,
        "flaky": 1,
        "warnings": 0,
        "duration_seconds": pytest.approx(3.41),
        "testcase_seconds": pytest.approx(3.41),
        "duration_source": "report",
    }
    assert document["warnings"] == []
    assert document["pass_rate"] == pytest.approx(2 / 3, abs=1e-6)
    assert document["metadata"]["run_id"] == "r-1"
    failure = document["failures"][0]
    assert set(failure) >= {"suite", "classname", "name", "file", "line", "kind", "message"}
    assert set(failure) >= {"details"}
    assert len(document["slowest"]) == 3
    assert document["inputs"] == [
        {"path": str(FIXTURES / "surefire_flaky.xml"), "ok": True, "error": None, "tests": 3}
    ]


def test_hostile_names_cannot_break_out_of_markdown():
    xml = (
        b'<testsuites><testsuite name="a|b&#10;# Heading"><testcase classname="x|y" '
        b'name="&lt;script&gt;alert(1)&lt;/script&gt; `code` [link](http://evil)" time="3">'
        b'<failure message="| fake | row |">&lt;/pre&gt;&lt;img src=x&gt;</failure>'
        b"</testcase></testsuite></testsuites>"
    )
    markdown = summarize([("hostile.xml", io.BytesIO(xml))]).markdown
    assert "<script>" not in markdown
    assert "</pre><img" not in markdown
    assert "\n# Heading" not in markdown
    assert "[link](http://evil)" not in markdown
    assert_tables_whole(markdown)


def big_report():
    cases = "".join(
        f'<testsuite name="Suite{i} ünïcödé"><testcase classname="C{i}" name="test_{i} 😀" '
        f'time="{i % 13}"><failure message="boom {i} ✗">{"trace line ✗ " * 400}</failure>'
        f'</testcase><testcase classname="C{i}" name="ok_{i}"/></testsuite>'
        for i in range(250)
    )
    xml = f"<testsuites>{cases}</testsuites>".encode()
    return build_report([("big.xml", io.BytesIO(xml))], RunMetadata(run_id="big"))


@pytest.mark.parametrize("cap", [1024, 2000, 5000, 20_000, 61_440])
def test_markdown_respects_the_byte_cap_and_says_what_was_cut(cap):
    markdown = to_markdown(big_report(), cap)
    encoded = markdown.encode("utf-8")
    assert len(encoded) <= cap
    assert encoded.decode("utf-8") == markdown
    assert "Cut to fit" in markdown
    assert markdown.startswith("# ❌ Test report: failed")
    assert_tables_whole(markdown)


def test_the_budget_is_filled_in_order_of_value():
    report = big_report()
    names = [f"C{i} › test\\_{i} 😀" for i in range(250)]
    for cap in (20_000, 61_440, 200_000):
        markdown = to_markdown(report, cap)
        # Used, not halved: within 2 KB of the cap.
        assert cap - 2_000 < len(markdown.encode("utf-8")) <= cap
        # One line (or a full entry) for every failure before any trace beyond the first screen.
        assert all(name in markdown for name in names)
        assert "## Suites" in markdown and "## Slowest tests" in markdown
    tight = to_markdown(report, 5_000)
    assert "<pre>" not in tight and "## Suites" not in tight
    listed = re.search(r"failures listed: (\d+) of 250", tight)
    assert listed and int(listed.group(1)) >= 80
    # More room, more traces, in order.
    traces = [to_markdown(report, cap).count("<pre>") for cap in (20_000, 61_440, 200_000)]
    assert traces == sorted(traces) and traces[0] >= 2 and traces[-1] > 30


def test_a_small_report_is_not_cut():
    markdown = to_markdown(build_report([FIXTURES / "go.xml"]))
    assert "Cut to fit" not in markdown


def test_cap_below_minimum_is_refused():
    with pytest.raises(ValueError, match="at least 1024"):
        to_markdown(build_report([FIXTURES / "go.xml"]), 1000)


def test_lone_surrogates_and_huge_metadata_still_give_valid_utf8_under_cap():
    report = replace(
        build_report([FIXTURES / "go.xml"]),
        metadata=RunMetadata(run_id="\ud800" * 50, command="&" * 5000, project="p" * 5000),
        inputs=tuple(InputResult(f"shard-{i}.xml", False, "x" * 400) for i in range(100)),
    )
    markdown = to_markdown(report, 1024)
    assert len(markdown.encode("utf-8")) <= 1024
    json.loads(to_json(replace(report, metadata=RunMetadata(run_id="ok"))))


def headline_of(markdown: str) -> str:
    return markdown.splitlines()[0]


@pytest.mark.parametrize(
    ("fixture", "runner_status", "status", "headline"),
    [
        ("no_root.xml", None, "passed", "# ✅ Test report: passed"),
        ("no_root.xml", "passed", "passed", "# ✅ Test report: passed"),
        ("no_root.xml", "failed", "failed", "# ❌ Test report: failed"),
        ("no_root.xml", "timed_out", "timed_out", "# ⏱️ Test report: timed out"),
        ("no_root.xml", "error", "error", "# 💥 Test report: runner error"),
        ("no_root.xml", "rejected", "rejected", "# ⛔ Test report: rejected"),
        ("go.xml", "timed_out", "timed_out", "# ⏱️ Test report: timed out"),
        ("go.xml", "passed", "failed", "# ❌ Test report: failed"),
        ("zero_tests.xml", None, "no_tests", "# ⚪ Test report: no tests ran"),
        ("zero_tests.xml", "passed", "no_tests", "# ⚪ Test report: no tests ran"),
        ("all_skipped.xml", "passed", "no_tests", "# ⚪ Test report: no tests ran"),
        ("truncated.xml", "passed", "unusable", "# ⚠️ Test report: report unusable"),
        ("truncated.xml", "timed_out", "timed_out", "# ⏱️ Test report: timed out"),
    ],
)
def test_headline_status_combines_the_runner_and_the_report(
    fixture, runner_status, status, headline
):
    metadata = RunMetadata(runner_status=runner_status, exit_code=1 if runner_status else None)
    summary = summarize([FIXTURES / fixture], metadata)
    assert summary.report.status == status
    assert headline_of(summary.markdown) == headline
    document = json.loads(summary.json)
    assert document["status"] == status
    assert document["metadata"]["runner_status"] == runner_status


def test_nothing_executed_says_why():
    skipped = summarize([FIXTURES / "all_skipped.xml"]).markdown
    assert (
        "> ⚪ Nothing executed (all 2 tests skipped): a run that tests nothing is not a pass."
        in (skipped)
    )
    empty = summarize([FIXTURES / "zero_tests.xml"]).markdown
    assert "Nothing executed (the report has no testcase)" in empty
    timed_out = summarize([FIXTURES / "no_root.xml"], RunMetadata(runner_status="timed_out"))
    assert "stopped the command at its deadline" in timed_out.markdown
    clean_but_failed = summarize(
        [FIXTURES / "no_root.xml"], RunMetadata(runner_status="failed", exit_code=2)
    )
    assert "The command failed, exit code 2, but the report holds no failing test" in (
        clean_but_failed.markdown
    )


def test_headline_duration_is_the_run_wall_time_and_the_sum_has_its_own_label():
    go = FIXTURES / "go_build_failure.xml"
    from_report = summarize([go])
    assert "· 46.01 s wall time (declared by the report) · sum of test times 2 min 32 s" in (
        from_report.markdown
    )
    from_runner = summarize([go], RunMetadata(duration_seconds=47.5))
    assert "· 47.50 s wall time (runner) · sum of test times 2 min 32 s" in from_runner.markdown
    totals = json.loads(from_runner.json)["totals"]
    assert (totals["duration_seconds"], totals["duration_source"]) == (47.5, "runner")
    assert totals["testcase_seconds"] == pytest.approx(151.9)
    nothing_declared = summarize([FIXTURES / "multiresult_and_times.xml"]).markdown
    assert "· 20 min 35 s sum of test times\n" in nothing_declared


def test_counts_are_pluralised():
    xml = b'<testsuite name="s"><testcase name="a"><error message="x"/></testcase></testsuite>'
    markdown = summarize([("one.xml", io.BytesIO(xml))]).markdown
    assert "· 1 test: 0 passed, 0 failed, 1 error, 0 skipped" in markdown


def test_same_test_on_two_platforms_is_told_apart():
    markdown = summarize([FIXTURES / "browsers.xml"]).markdown
    assert (
        "### 1. ❌ checkout.spec › pays with a card [hostname=runner-chrome, browser=chrome 120]"
        in (markdown)
    )
    assert (
        "### 2. ❌ checkout.spec › pays with a card [hostname=runner-firefox, browser=firefox"
        in (markdown)
    )
    assert "<pre>Error: Timed out waiting for #pay\n    at waitFor" in markdown


def test_declared_but_not_carried_warns_in_both_outputs():
    summary = summarize([FIXTURES / "go_build_failure.xml"])
    assert summary.report.status == "failed"
    warning = "declares 1 failure(s)/error(s) but its testcases carry 0"
    assert f"> ⚠️ &lt;testsuites&gt; 'the root' {warning}" in summary.markdown
    assert warning in json.loads(summary.json)["warnings"][0]
    assert "| the root (declared by &lt;testsuites&gt;, carried by no testcase) (declared" in (
        summary.markdown
    )
