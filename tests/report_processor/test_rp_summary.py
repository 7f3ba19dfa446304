"""The summary a developer reads first (issue 14): where it failed, why, how many share a cause.

phpunit9_real.xml and phpunit9_warnings.xml are real PHPUnit 9.6.7 output (Debian's package, paths
rewritten to the runner's app directory); the *_side.xml fixtures follow each runner's documented
shape for the same failing test (line 24, declared at 12, "The order total is wrong").
"""

import io
import json
import re
from pathlib import Path

import pytest

from report_processor import RunMetadata, build_report, summarize, to_json, to_markdown
from report_processor.config import ConfigError, ProcessorConfig
from report_processor.grouping import mask
from report_processor.headline import NO_MESSAGE, failure_message
from report_processor.location import (
    DEFAULT_APP_ROOT,
    PathSettings,
    failing_frame,
    relative,
    source_url,
)
from report_processor.markdown_text import seconds_text

FIXTURES = Path(__file__).parent / "fixtures"
# What a reader sees before scrolling: the first lines of the markdown.
FIRST_SCREEN_LINES = 25


def first_screen(markdown: str) -> str:
    return "\n".join(markdown.splitlines()[:FIRST_SCREEN_LINES])


def failures_by_name(fixture: str, **kwargs):
    report = build_report([FIXTURES / fixture], **kwargs)
    return {failure.name: failure for failure in report.failures}


# ----------------------------------------------------------------------------- where it failed


def test_the_failing_line_comes_from_the_trace_with_the_declaration_after_it():
    failures = failures_by_name("phpunit9_real.xml")
    custom = failures["testCustomMessage"]
    assert (custom.at_file, custom.at_line, custom.file, custom.line) == (
        "tests/Unit/OrderTest.php",
        11,
        "tests/Unit/OrderTest.php",
        8,
    )
    # The assertion sits in a helper: the test's own frame is the failing line.
    assert failures["testViaHelper"].at_line == 16
    markdown = summarize([FIXTURES / "phpunit9_real.xml"]).markdown
    assert "at tests/Unit/OrderTest.php:11 (test at :8)" in markdown


def test_vendor_and_framework_frames_are_skipped():
    details = (
        "boom\n/var/task/app/vendor/laravel/framework/src/TestResponse.php:186\n"
        "/var/task/app/app/Services/Billing.php:40\n"
    )
    # Not in the test's file: the first frame outside vendor code.
    frame = failing_frame(details, "/var/task/app/tests/Unit/OtherTest.php")
    assert frame is not None and (frame.path, frame.line) == (
        "/var/task/app/app/Services/Billing.php",
        40,
    )
    jvm = (
        "org.opentest4j.AssertionFailedError: x\n"
        "\tat org.junit.jupiter.api.AssertEquals.failNotEqual(AssertEquals.java:197)\n"
        "\tat com.example.OrderTest.computesTheTotal(OrderTest.java:24)\n"
    )
    frame = failing_frame(jvm, None, "com.example.OrderTest")
    assert frame is not None and (frame.path, frame.line) == ("com/example/OrderTest.java", 24)
    assert failing_frame("no frames here", "tests/A.php") is None
    # jest-junit names the suite after the test file: its frame wins over the code under test.
    node = (
        "Error: abort\n    at findChanged (/src/jest/packages/changed-files/hg.js:99:16)\n"
        "    at Object.<anonymous> (/src/jest/e2e/__tests__/changed.test.ts:418:28)\n"
    )
    frame = failing_frame(node, None, "gets files", "e2e/__tests__/changed.test.ts")
    assert frame is not None and frame.line == 418
    assert failing_frame(node, None, "gets files", "Cart").line == 99


def test_paths_are_relative_to_a_configurable_app_root():
    assert relative("/var/task/app/tests/A.php", DEFAULT_APP_ROOT) == "tests/A.php"
    assert relative("/srv/other/tests/A.php", DEFAULT_APP_ROOT) == "/srv/other/tests/A.php"
    failures = failures_by_name("phpunit9_real.xml", paths=PathSettings(app_root="/var/task"))
    assert failures["testCustomMessage"].at_file == "app/tests/Unit/OrderTest.php"


def test_a_source_url_template_links_the_failing_line():
    template = "https://github.com/acme/shop/blob/{app_version}/{path}#L{line}"
    paths = PathSettings(source_url_template=template)
    metadata = RunMetadata(app_version="v1.2.3+build 7")
    summary = summarize([FIXTURES / "phpunit9_real.xml"], metadata, paths=paths)
    url = "https://github.com/acme/shop/blob/v1.2.3%2Bbuild%207/tests/Unit/OrderTest.php#L11"
    assert f"at [tests/Unit/OrderTest.php:11]({url}) (test at :8)" in summary.markdown
    assert json.loads(summary.json)["failures"][0]["url"] == url
    # No version reported, a path outside the app, or no template: no link.
    assert source_url(template, "tests/A.php", 3, None) == ""
    assert source_url(template, "/srv/x/A.php", 3, "v1") == ""
    assert source_url(None, "tests/A.php", 3, "v1") == ""


def test_the_source_url_template_is_validated_where_it_is_configured():
    config = ProcessorConfig.from_env(
        {
            "REPORT_SOURCE_URL_TEMPLATE": "https://git.example/{path}#L{line}",
            "REPORT_APP_ROOT": "/srv",
        }
    )
    assert config.paths == PathSettings("/srv", "https://git.example/{path}#L{line}")
    for bad in ("http://git.example/{path}", "https://git.example/blob", "https://x/{path} (y)"):
        with pytest.raises(ConfigError, match="REPORT_SOURCE_URL_TEMPLATE"):
            ProcessorConfig.from_env({"REPORT_SOURCE_URL_TEMPLATE": bad})


def test_the_default_app_root_is_the_runner_app_directory():
    from runner.config import DEFAULT_APP_DIR

    assert DEFAULT_APP_ROOT == DEFAULT_APP_DIR


# ----------------------------------------------------------------------------- why


def test_up_to_three_message_lines_custom_message_first():
    failures = failures_by_name("phpunit9_real.xml")
    assert failures["testCustomMessage"].message == (
        "The order total is wrong\nfor order 42\nFailed asserting that 2 is identical to 3."
    )
    markdown = summarize([FIXTURES / "phpunit9_real.xml"]).markdown
    assert (
        "> The order total is wrong\\\n> for order 42\\\n"
        "> Failed asserting that 2 is identical to 3.\n" in markdown
    )


def test_the_headline_is_never_the_test_id():
    real = failures_by_name("phpunit9_real.xml")
    # A bare `Error` line before a data provider's error.
    assert real["Error"].message.startswith("The data provider specified for")
    # fail() without a message: only the header and a frame.
    assert real["testFailWithoutMessage"].message == NO_MESSAGE
    # An id that spans lines (a data-set name with a newline).
    assert real['testDataset with data set "two\nlines"'].message == (
        "Failed asserting that two strings are identical."
    )
    assert real["/var/task/app/tests/phpt/failure.phpt"].message == (
        "Failed asserting that two strings are equal."
    )
    # PHPUnit 10/11 .phpt and Pest: the id glued to the message without a newline.
    assert failures_by_name("phpunit10_side.xml")["failure.phpt"].message == (
        "Failed asserting that two strings are equal."
    )
    assert failures_by_name("pest_side.xml")["it computes the total"].message == (
        "The order total is wrong\nFailed asserting that 2 is identical to 3."
    )
    # A space after the name means the id goes on: not glued.
    assert failure_message(
        "T::test with data set #1 ('x',\n> 3)\nFailed asserting that 1.", "test"
    ) == ("Failed asserting that 1.")


def test_summary_json_carries_the_headline_in_each_failure():
    document = json.loads(summarize([FIXTURES / "phpunit9_real.xml"]).json)
    assert document["schema_version"] == 3
    assert all(failure["message"] for failure in document["failures"])
    assert document["failures"][0]["at_file"] == "tests/Unit/OrderTest.php"


# ----------------------------------------------------------------------------- warnings


@pytest.mark.parametrize(
    ("runner_status", "headline", "note"),
    [
        (None, "# ✅ Test report: passed", "Passed with 1 warning (listed below)"),
        ("passed", "# ✅ Test report: passed", "Passed with 1 warning (listed below)"),
        # PHPUnit under failOnWarning exits 1: the headline agrees with the runner.
        ("failed", "# ❌ Test report: failed", "the report holds no failing test, but 1 warning"),
    ],
)
def test_warnings_are_counted_listed_and_the_headline_agrees_with_the_runner(
    runner_status, headline, note
):
    metadata = RunMetadata(runner_status=runner_status, exit_code=1 if runner_status else None)
    summary = summarize([FIXTURES / "phpunit9_warnings.xml"], metadata)
    markdown = summary.markdown
    assert markdown.splitlines()[0] == headline
    assert note in markdown
    assert "2 passed, 0 failed, 0 errors, 0 skipped, 0 flaky, 1 warning" in markdown
    assert '- WarnTest › testWarning: deprecated config key "foo"' in markdown
    document = json.loads(summary.json)
    assert document["totals"]["warnings"] == 1
    assert document["test_warnings"][0]["message"] == 'deprecated config key "foo"'


# ----------------------------------------------------------------------------- shared causes


def test_masking_equates_messages_that_differ_only_in_values():
    assert mask('SQLSTATE[08006] connection to "10.0.0.7" port 5432 refused') == mask(
        'SQLSTATE[08006] connection to "10.0.0.9" port 5433 refused'
    )
    assert mask("boom at 0x7f3a id 123e4567-e89b-12d3-a456-426614174000") == mask(
        "boom at 0x1 id 00000000-0000-4000-8000-000000000000"
    )
    assert mask("File /var/task/app/storage/a.json missing") == "File <path> missing"
    assert mask("expected 2 got 3") != mask("expected 2 but got 3")


def test_one_broken_factory_reads_as_one_group_of_200_on_the_first_screen():
    summary = summarize([FIXTURES / "broken_factory.xml"])
    screen = first_screen(summary.markdown)
    assert (
        "**Cause 1 · 200 ×** Illuminate\\\\Database\\\\QueryException: SQLSTATE\\[23505\\]"
        in screen
    )
    # The group's first failure leads the detailed failures, with its failing line.
    assert "### 1. 💥 test\\_case\\_0 (error)" in screen
    assert "at tests/Feature/Api00Test.php:18 (test at :15)" in screen
    # The one-line list names the cause instead of repeating its message.
    assert (
        "- 💥 Tests.Feature.Api19Test › test\\_case\\_9 · at tests/Feature/Api19Test.php:27"
        " · cause 1\n" in summary.markdown
    )
    groups = json.loads(summary.json)["failure_groups"]
    assert [group["count"] for group in groups] == [200, 1, 1, 1]
    assert groups[0]["kind"] == "error" and len(groups[0]["first_tests"]) == 5


def synthetic_failures(count: int, suites: int = 1) -> bytes:
    trace = "frame line\n" * 300
    cases = "".join(
        f'<testsuite name="S{i % suites}"><testcase classname="C{i}" name="t{i}" time="0.01">'
        f'<failure message="value {i} is wrong">{trace}</failure>'
        f"</testcase></testsuite>"
        for i in range(count)
    )
    return f"<testsuites>{cases}</testsuites>".encode()


def test_400_failures_fill_the_budget_with_every_name_and_traces_in_order():
    report = build_report([("many.xml", io.BytesIO(synthetic_failures(400)))])
    markdown = to_markdown(report)
    size = len(markdown.encode("utf-8"))
    assert 55_000 < size <= 61_440
    assert all(f"C{i} › t{i}" in markdown for i in range(400))
    assert "…and" not in markdown
    traces = markdown.count("<pre>")
    assert traces >= 10
    # Traces in order: the first ones have theirs.
    assert markdown.index("C0 › t0") < markdown.index("<pre>")
    assert f"traces: {traces} of 100 shown" in markdown


def test_over_a_thousand_failures_name_the_first_thousand_and_say_so():
    report = build_report([("many.xml", io.BytesIO(synthetic_failures(1_200)))])
    assert len(report.failures) == 1_000
    assert sum(bool(failure.details) for failure in report.failures) == 100
    assert report.failures_not_detailed == 200
    assert report.failure_groups[0].count == 1_200
    markdown = to_markdown(report, 200_000)
    assert "C999 › t999" in markdown and "C1000 › t1000" not in markdown
    assert "_…and 200 more not listed here" in markdown


# ----------------------------------------------------------------------------- suites


def test_folded_suites_are_the_least_important_and_their_row_comes_last():
    cases = "".join(
        f'<testsuite name="S{i:03d}"><testcase classname="C" name="t" time="{i / 100}">'
        + ("<failure>x</failure>" if i % 100 == 0 else "")
        + "</testcase></testsuite>"
        for i in range(400)
    )
    xml = f"<testsuites>{cases}</testsuites>".encode()
    report = build_report([("suites.xml", io.BytesIO(xml))])
    names = [row.name for row in report.suites]
    assert len(names) == 301 and names[-1] == "(other suites)"
    # The failing suites and the slowest stay; the fastest passing ones are folded.
    assert {"S000", "S100", "S399"} <= set(names) and "S001" not in names
    markdown = to_markdown(report, 200_000)
    assert "## Suites (400; 300 shown)" in markdown
    table = markdown[markdown.index("## Suites") :].split("\n\n")[1].splitlines()
    assert table[-1].startswith("| (other suites) | 100 |")


# ----------------------------------------------------------------------------- smaller things


def test_skip_reasons_are_grouped_in_a_folded_section():
    summary = summarize([FIXTURES / "skip_reasons.xml"])
    assert "<details><summary>Skipped (5), by reason</summary>" in summary.markdown
    assert "- **3 ×** needs redis — tests.test\\_cache › test\\_redis\\_get" in summary.markdown
    reasons = json.loads(summary.json)["skip_reasons"]
    assert [(r["reason"], r["count"]) for r in reasons] == [
        ("needs redis", 3),
        ("needs STRIPE_KEY", 1),
        ("no reason given", 1),
    ]


def test_slowest_table_rules():
    markdown = summarize([FIXTURES / "durations.xml"]).markdown
    table = markdown[markdown.index("## Slowest tests") :]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "| # |" not in line]
    # No 0 ms rows, ties in input order, no Suite column repeating the class.
    assert [row.split(" | ")[1].rsplit("\\_", 1)[1] for row in rows] == [
        "01",
        "00",
        "02",
        "03",
        "04",
        "13",
    ]
    assert "| # | Test | Time |" in table
    # Ten tests or fewer, or all under 10 ms: no table.
    assert "## Slowest tests" not in summarize([FIXTURES / "phpunit9_nested.xml"]).markdown
    fast = "".join(f'<testcase classname="C" name="t{i}" time="0.001"/>' for i in range(20))
    xml = f"<testsuite name='s'>{fast}</testsuite>".encode()
    assert "## Slowest tests" not in summarize([("fast.xml", io.BytesIO(xml))]).markdown


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.004, "4.0 ms"),
        (59.994, "59.99 s"),
        (119.4, "119.40 s"),
        (179.7, "3 min 0 s"),
        (7199.0, "2 h 0 min"),
        (7200.0, "2 h 0 min"),
        (9000.4, "2 h 30 min"),
    ],
)
def test_durations(seconds, text):
    assert seconds_text(seconds) == text


def test_hostile_text_cannot_reverse_or_restructure_the_markdown():
    markdown = summarize([FIXTURES / "hostile_text.xml"]).markdown
    assert "\u202e" not in markdown and "&lt;U+202E&gt;gnp.exe" in markdown
    assert "> \\- expected a receipt" in markdown
    assert "> 1\\. first rule failed" in markdown
    assert "> \\=====" in markdown
    # The classname equals the suite: not repeated in the heading.
    assert "### 1. ❌ pays" in markdown and "Checkout ›" not in markdown.split("## Failures")[1]


# ----------------------------------------------------------------------------- side by side

SIDE_BY_SIDE = [
    (
        "phpunit9_real.xml",
        "tests/Unit/OrderTest.php:11",
        "Failed asserting that 2 is identical to 3.",
    ),
    (
        "phpunit10_side.xml",
        "tests/Unit/OrderTest.php:24",
        "Failed asserting that 2 is identical to 3.",
    ),
    (
        "phpunit11_side.xml",
        "tests/Unit/OrderTest.php:24",
        "Failed asserting that 2 is identical to 3.",
    ),
    (
        "pest_side.xml",
        "tests/Feature/OrderTest.php:24",
        "Failed asserting that 2 is identical to 3.",
    ),
    ("jest_side.xml", "tests/order.test.js:24", "expect(received).toBe(expected)"),
    ("pytest_side.xml", "tests/test\\_order.py:24", "assert 2 == 3"),
    ("junit5_side.xml", "com/example/OrderTest.java:24", "expected: &lt;3&gt; but was: &lt;2&gt;"),
]


@pytest.mark.parametrize(("fixture", "line", "assertion"), SIDE_BY_SIDE)
def test_first_screen_shows_the_failing_line_and_the_assertion(fixture, line, assertion):
    screen = first_screen(summarize([FIXTURES / fixture]).markdown)
    assert f"at {line}" in screen
    assert re.search(r"^> .*" + re.escape(assertion), screen, re.MULTILINE), screen


def test_json_schema_keys_for_the_new_sections():
    document = json.loads(to_json(build_report([FIXTURES / "go.xml"])))
    assert {"failure_groups", "test_warnings", "skip_reasons"} <= set(document)
    assert {"at_file", "at_line", "url"} <= set(document["failures"][0])
