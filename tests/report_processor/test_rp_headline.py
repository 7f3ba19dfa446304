"""The failure headline: the assertion or exception line, for every PHPUnit 9-11 shape.

phpunit9_datasets.xml is real PHPUnit 9.6 output (generated from a small test class with nested
array, multi-line string and named data sets, paths rewritten); phpunit10_datasets.xml follows
PHPUnit 10/11's JUnit logger (no data-set arguments after the name).
"""

from pathlib import Path

import pytest

from report_processor import build_report, summarize
from report_processor.headline import failure_headline

FIXTURES = Path(__file__).parent / "fixtures"


def messages(name: str) -> dict[str, str]:
    """Each failure's headline: the first line of its message."""
    report = build_report([FIXTURES / name])
    return {failure.name: failure.message.split("\n")[0] for failure in report.failures}


def test_real_phpunit9_data_sets_give_the_assertion_line():
    assert messages("phpunit9_datasets.xml") == {
        "testNestedArrays with data set #0": "Failed asserting that 2 is identical to 3.",
        "testMultilineString with data set #0": "Failed asserting that 2 matches expected 3.",
        # The exported arguments hold an unescaped quote ('y'z'): the header still ends right.
        "testMultilineString with data set #1": '2 does not match expected type "array".',
        'testNamedDataSet with data set "two is not three"': (
            "Failed asserting that 2 matches expected 3."
        ),
        'testNamedDataSet with data set "with (parens) and "quotes""': (
            "Failed asserting that 4 matches expected 5."
        ),
        'testNamedDataSet with data set "two lines\n> 3)"': (
            "Failed asserting that 6 matches expected 7."
        ),
        "testException": "RuntimeException: boom",
        "testPlain": "Failed asserting that false is true.",
        "testWithMessage": "custom message here",
        "testWarning": "deprecated thing",
    }


def test_phpunit10_and_11_shapes_give_the_assertion_line():
    assert messages("phpunit10_datasets.xml") == {
        "testTotal with data set #0": "Failed asserting that 2 matches expected 3.",
        'testTotal with data set "two\n> 3)"': "Failed asserting that two strings are equal.",
        "testRounding": "Failed asserting that 0.30000000000000004 is identical to 0.3.",
        "testCurrency": 'InvalidArgumentException: Unknown currency "XYZ"',
    }


@pytest.mark.parametrize(
    ("details", "name", "expected"),
    [
        # PHPUnit 8/9 full export: arguments wrapped over several lines.
        (
            "T::test with data set #1 (array(\n    0 => 1,\n    1 => 'a\n> 3)'\n), 3)\n"
            "Failed asserting that 2 matches expected 3.\n\n/app/T.php:9",
            "test with data set #1",
            "Failed asserting that 2 matches expected 3.",
        ),
        # The name in the XML differs from the header: fall back to the assertion line.
        (
            "T::test with data set #1 ('x',\n> 3)\nFailed asserting that 1 is true.",
            "test",
            "Failed asserting that 1 is true.",
        ),
        ("AssertionError: expected 1\n  at x.js:1", "it works", "AssertionError: expected 1"),
        ("", "t", ""),
    ],
)
def test_headline_of_other_shapes(details, name, expected):
    assert failure_headline(details, name) == expected


def test_markdown_and_json_carry_the_headline_when_the_xml_has_no_message():
    summary = summarize([FIXTURES / "phpunit9_datasets.xml"])
    assert "> Failed asserting that 6 matches expected 7." in summary.markdown
    assert "> 3)" not in summary.markdown.replace("&gt; 3)", "")
    assert '"message": "Failed asserting that 6 matches expected 7."' in summary.json
