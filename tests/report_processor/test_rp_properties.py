"""Hypothesis properties: generated JUnit trees are counted by the rule; markdown obeys the cap."""

import io
import json
import re
from xml.sax.saxutils import escape, quoteattr

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from report_processor import ParseLimits, build_report, to_markdown
from report_processor.parse import parse_junit

RESULT_TAGS = ("skipped", "failure", "error", "flakyFailure", "rerunFailure", "system-out")
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")

# Characters XML 1.0 allows, including astral ones (emoji) and markdown/HTML specials.
xml_text = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="".join(chr(c) for c in range(32) if c not in (9, 10, 13))
        + "\ufffe\uffff",
    ),
    max_size=40,
)

testcase = st.fixed_dictionaries(
    {
        "name": xml_text,
        "classname": xml_text,
        "time": st.one_of(
            st.floats(min_value=-5, max_value=1e4, allow_nan=False).map(str),
            st.sampled_from(["", "1,234.5", "abc", "NaN"]),
        ),
        "results": st.lists(st.sampled_from(RESULT_TAGS), max_size=4),
        "text": xml_text,
    }
)

suite = st.recursive(
    st.fixed_dictionaries({"name": xml_text, "cases": st.lists(testcase, max_size=6)}).map(
        lambda s: {**s, "children": []}
    ),
    lambda children: st.fixed_dictionaries(
        {
            "name": xml_text,
            "cases": st.lists(testcase, max_size=4),
            "children": st.lists(children, max_size=3),
        }
    ),
    max_leaves=8,
)


def outcome(case: dict) -> str:
    results = set(case["results"])
    if "error" in results:
        return "errors"
    if "failure" in results:
        return "failed"
    if "skipped" in results:
        return "skipped"
    return "passed"


def render_suite(node: dict, out: list[str], counts: dict[str, int]) -> None:
    out.append(f"<testsuite name={quoteattr(node['name'])}>")
    for case in node["cases"]:
        out.append(
            f"<testcase name={quoteattr(case['name'])} classname={quoteattr(case['classname'])} "
            f"time={quoteattr(case['time'])}>"
        )
        for tag in case["results"]:
            out.append(f"<{tag} message={quoteattr(case['text'])}>{escape(case['text'])}</{tag}>")
        out.append("</testcase>")
        counts["tests"] += 1
        counts[outcome(case)] += 1
        flaky = {"flakyFailure"} & set(case["results"])
        if outcome(case) == "passed" and flaky:
            counts["flaky"] += 1
    for child in node["children"]:
        render_suite(child, out, counts)
    out.append("</testsuite>")


def document(suites: list[dict], root: bool) -> tuple[bytes, dict[str, int]]:
    counts = dict.fromkeys(("tests", "passed", "failed", "errors", "skipped", "flaky"), 0)
    out: list[str] = []
    for node in suites:
        render_suite(node, out, counts)
    body = "".join(out)
    xml = f"<testsuites>{body}</testsuites>" if root else body
    return xml.encode("utf-8"), counts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(suites=st.lists(suite, min_size=1, max_size=3), chunk=st.integers(1, 4096))
def test_every_testcase_counts_once_by_the_rule(suites, chunk):
    xml, expected = document(suites, root=True)
    totals = parse_junit(io.BytesIO(xml), ParseLimits(chunk_bytes=chunk)).totals()
    got = {key: getattr(totals, key) for key in expected}
    assert got == expected
    assert totals.passed + totals.failed + totals.errors + totals.skipped == totals.tests
    assert totals.duration_seconds >= 0


@settings(max_examples=60, deadline=None)
@given(node=suite)
def test_a_testsuite_root_counts_like_a_testsuites_root(node):
    with_root, counts = document([node], root=True)
    without_root, _ = document([node], root=False)
    a = parse_junit(io.BytesIO(with_root)).totals()
    b = parse_junit(io.BytesIO(without_root)).totals()
    assert a.tests == b.tests == counts["tests"]
    assert (a.passed, a.failed, a.errors, a.skipped) == (b.passed, b.failed, b.errors, b.skipped)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    suites=st.lists(suite, min_size=1, max_size=4),
    cap=st.integers(min_value=1024, max_value=30_000),
    trace_repeat=st.integers(0, 300),
)
def test_markdown_never_exceeds_the_cap_and_stays_valid_utf8(suites, cap, trace_repeat):
    for node in suites:
        for case in node["cases"]:
            case["text"] = (case["text"] + " ✗ trace ") * trace_repeat
    xml, _ = document(suites, root=True)
    report = build_report([("generated.xml", io.BytesIO(xml))])
    markdown = to_markdown(report, cap)
    encoded = markdown.encode("utf-8")
    assert len(encoded) <= cap
    assert encoded.decode("utf-8") == markdown
    lines = markdown.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("|"):
            assert line.endswith("|")
            previous = lines[index - 1]
            if previous.startswith("|"):
                pipes = len(UNESCAPED_PIPE.findall(line))
                assert pipes == len(UNESCAPED_PIPE.findall(previous))


@settings(max_examples=40, deadline=None)
@given(garbage=st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_but_a_per_file_error(garbage):
    report = build_report(
        [("garbage.xml", io.BytesIO(garbage)), ("ok.xml", io.BytesIO(b"<testsuite/>"))]
    )
    assert report.inputs[1].ok
    assert report.inputs[0].ok or report.inputs[0].error
    json.dumps([item.error for item in report.inputs])
