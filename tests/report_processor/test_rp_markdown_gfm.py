"""Every markdown output parses as intended under a real CommonMark/GFM parser.

markdown-it-py's GFM-like preset (tables, strikethrough; linkify off: GitHub does not autolink in
step summaries' code and it needs an extra package) reads each summary the way GitHub would. The
structure it finds must be exactly the one the renderer meant: headings only where we put them,
whole tables, no lists or headings made out of test names or messages, no HTML but ours.
"""

import io
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from report_processor import RunMetadata, build_report, summarize, to_markdown
from report_processor.location import PathSettings

FIXTURES = Path(__file__).parent / "fixtures"
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
PARSER = MarkdownIt("gfm-like", {"linkify": False})
OUR_HEADINGS = re.compile(
    r"^(. Test report: |.. Test report: |Failures \(|Unusable inputs \(|Warnings \(|"
    r"Flaky tests \(|Slowest tests$|Suites \(|\d+\. (❌|💥) |"
    # The history section's (issue 12).
    r"Since the previous run$|New failures$|Still failing$|Fixed \(|New tests \(|"
    r"Disappeared tests \(|Flaky$|Quarantine$)"
)
OUR_HTML = re.compile(
    r"^(<details><summary>(Details|Skipped \([\d,]+\), by reason)</summary>|</details>|"
    r"<pre>[^<]*</pre>)\s*$",
    re.DOTALL,
)


def assert_structure_as_meant(markdown: str) -> None:
    tokens = PARSER.parse(markdown)
    lines = markdown.splitlines()
    depth_quote = 0
    for token in tokens:
        if token.type == "blockquote_open":
            depth_quote += 1
        elif token.type == "blockquote_close":
            depth_quote -= 1
        elif token.type == "heading_open":
            assert depth_quote == 0
        elif token.type == "ordered_list_open":
            raise AssertionError(f"an ordered list we never write, at line {token.map}")
        elif token.type == "bullet_list_open":
            assert depth_quote == 0, f"a list inside a quote at line {token.map}"
        elif token.type == "html_block":
            assert OUR_HTML.match(token.content), token.content[:200]
        elif token.type == "table_open":
            start, end = token.map
            rows = [line for line in lines[start:end] if line.startswith("|")]
            assert len(rows) == end - start, "a table line that is not a row"
        elif token.type == "inline":
            for child in token.children or ():
                assert child.type != "html_inline", child.content
                if child.type == "link_open":
                    assert str(child.attrs["href"]).startswith("https://"), child.attrs
    headings = [
        tokens[index + 1].content
        for index, token in enumerate(tokens)
        if token.type == "heading_open"
    ]
    for heading in headings:
        assert OUR_HEADINGS.match(heading), f"unexpected heading {heading!r}"
    outside_pre = re.sub(r"<pre>.*?</pre>", "", markdown, flags=re.DOTALL).splitlines()
    written = [line for line in outside_pre if re.match(r"^#{1,3} ", line)]
    assert len(headings) == len(written), "a heading appeared or vanished"
    # Tables: every source line is a row (or the separator) with the header's column count.
    for token in tokens:
        if token.type == "table_open":
            start, end = token.map
            counts = {len(UNESCAPED_PIPE.findall(line)) for line in lines[start:end]}
            assert len(counts) == 1, lines[start:end]
    html = PARSER.render(markdown)
    assert "<script" not in html and "<img" not in html


FIXTURE_NAMES = sorted(path.name for path in FIXTURES.glob("*.xml"))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_summary_parses_as_meant(name):
    with (FIXTURES / name).open("rb") as stream:
        summary = summarize(
            [(name, stream)],
            RunMetadata(run_id="r", app_version="v1", runner_status="failed", exit_code=1),
            paths=PathSettings(
                source_url_template="https://git.example/{app_version}/{path}#L{line}"
            ),
        )
    assert_structure_as_meant(summary.markdown)


def hostile_report() -> bytes:
    names = [
        "# Heading",
        "- list",
        "1. ordered",
        "=====",
        "<script>alert(1)</script>",
        "| a | b |",
        "[link](http://evil)",
        "![img](http://evil/x.png)",
        "```fence",
        "<details>",
        "\u202egnp.exe",
        "> quote",
        "---",
    ]
    cases = "".join(
        f'<testsuite name="{name}"><testcase classname="{name}" name="{name}" time="{i}">'
        f'<failure message="{name}&#10;{name}&#10;{name}">{name}\n{name}</failure></testcase>'
        f'<testcase classname="{name}" name="skip {name}"><skipped message="{name}"/></testcase>'
        f'<testcase classname="{name}" name="warn {name}"><warning>{name}</warning></testcase>'
        "</testsuite>"
        for i, name in enumerate(
            [n.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;") for n in names]
        )
    )
    return f"<testsuites>{cases}</testsuites>".encode()


@pytest.mark.parametrize("cap", [1024, 3000, 10_000, 61_440])
def test_hostile_and_large_outputs_parse_as_meant_at_every_cap(cap):
    hostile = build_report([("hostile.xml", io.BytesIO(hostile_report()))])
    assert_structure_as_meant(to_markdown(hostile, cap))
    trace = "trace\n" * 50
    many = "".join(
        f'<testsuite name="S{i}"><testcase classname="C{i}" name="t{i}" time="{i % 7}">'
        f'<failure message="- value {i}">{trace}</failure></testcase></testsuite>'
        for i in range(400)
    )
    large = build_report([("many.xml", io.BytesIO(f"<testsuites>{many}</testsuites>".encode()))])
    assert_structure_as_meant(to_markdown(large, cap))


# Test names are the app's: a test can name itself anything PHP allows in a data set name.
HOSTILE_IDS = [
    'tests/T.php::T::t with data set "a`` ![p](https://evil.example/p.png) ``"',
    'tests/T.php::T::t with data set "```` <img src=x onerror=alert(1)> ````"',
    'tests/T.php::T::t with data set "| x | y |"',
    'tests/T.php::T::t with data set "line\nbreak # Heading"',
    'tests/T.php::T::t with data set "\u202egnp.exe"',
    "`",
]


def hostile_history_report():
    from dataclasses import replace

    from report_processor.history.section import (
        Counts,
        FailingTest,
        FlakyTestInfo,
        HistorySection,
        QuarantinedTest,
        RunRef,
    )
    from report_processor.model import Report, Totals

    run = RunRef("r`1 ![p](https://evil.example/r.png)", "k", "2026-11-02T02:00:00Z", "<b>1</b>")
    failing = tuple(
        FailingTest(test_id, "failed", "boom", 1, 2, run, run, False) for test_id in HOSTILE_IDS
    )
    section = HistorySection(
        run=run, status="failed", previous=run, previous_status="passed", baseline=run,
        superseded=False, wholesale_reason=None, tests=9, tests_before=9, tests_dropped=False,
        pass_rate=0.5, counts=Counts(failing=6, new_failures=6, fixed=6, flaky=6),
        new_failures=failing, still_failing=failing, fixed=tuple(HOSTILE_IDS),
        flaky=tuple(FlakyTestInfo(i, 2, 4, "same_version", "<i>v</i>") for i in HOSTILE_IDS),
        quarantine=tuple(
            QuarantinedTest(i, "- reason ![r](https://evil.example/q.png)", "| owner |",
                            "2026-11-01", "2026-11-20", "active", None)
            for i in HOSTILE_IDS
        ),
        notes=("> note # with [link](https://evil.example/n)",),
        headline="6 new failures",
    )  # fmt: skip
    return replace(
        Report(Totals(tests=9, passed=3, failed=6), (), (), (), (), RunMetadata()),
        history=section,
    )


def test_a_hostile_history_section_parses_as_meant():
    markdown = to_markdown(hostile_history_report(), 1 << 20)
    assert_structure_as_meant(markdown)
    tokens = PARSER.parse(markdown)
    spans = [
        child.content
        for token in tokens
        if token.type == "inline"
        for child in token.children or ()
        if child.type == "code_inline"
    ]
    for test_id in HOSTILE_IDS:
        # Each id is one whole code span (its line break flattened): nothing of it leaks out.
        flat = " ".join(test_id.split()).replace("\u202e", "<U+202E>")
        assert flat in spans, (test_id, spans[:8])
    assert "evil.example" not in "".join(
        str(child.attrs.get("src") or child.attrs.get("href") or "")
        for token in tokens
        if token.type == "inline"
        for child in token.children or ()
    )
