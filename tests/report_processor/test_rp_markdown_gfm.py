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
    r"Flaky tests \(|Slowest tests$|Suites \(|\d+\. (❌|💥) )"
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
