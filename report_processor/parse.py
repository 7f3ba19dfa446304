"""Streaming JUnit/xUnit XML parser: one file in, bounded accumulators out.

Speed and memory matter more than elegance here: a nightly report can hold a million testcases, so
the parser never builds a tree. It drives expat directly and does as little Python work per element
as it can: the hot path is a testcase start and end. Everything it keeps is bounded (the first N
failures in detail, the N slowest tests, at most N suite rows) while every count stays exact.

Untrusted input: any DOCTYPE is refused before its internal subset is read, so entity expansion
(billion laughs) and external entities (XXE) never happen and nothing is fetched (xmlstream.py).
The element handlers are fold.py's; what they produce is tally.py's Accumulator.
"""

from __future__ import annotations

from typing import BinaryIO

from report_processor.fold import JUnitFold, OnCase
from report_processor.tally import Accumulator, ParseLimits
from report_processor.xmlstream import JUnitError as JUnitError
from report_processor.xmlstream import feed, open_source, safe_parser


def parse_junit(
    stream: BinaryIO, limits: ParseLimits | None = None, on_case: OnCase | None = None
) -> Accumulator:
    """Fold every testcase of one JUnit XML byte stream into an accumulator.

    Raises JUnitError with a message naming the problem (not XML, truncated, DOCTYPE, not JUnit,
    unknown encoding, a token or the file too large). Each file gets a fresh accumulator, merged
    only when it parsed, so a broken file adds nothing to a report.

    `on_case(file, classname, name, rank, seconds, flaky)` (history), when given, is called once
    per testcase, in document order, once its outcome is known: `rank` is 0 passed, 1 skipped,
    2 failed, 3 error (history's outcome codes); `file` is the testcase's `file` attribute (None
    without one); `flaky` says it had a flakyFailure/flakyError. Testcases without children
    reach it in batches, a little after their `</testcase>`, still in order.
    """
    acc = Accumulator(limits or ParseLimits())
    source = open_source(stream, acc.limits, "the test runner wrote no JUnit report")
    # Attributes arrive as a flat [name, value, name, value, ...] list (safe_parser), which
    # pyexpat builds much faster than a dict (a quarter of the parse at a million testcases).
    # Testcases are read through the positions of their attribute names (CaseLayout); other
    # elements, which are few, are turned into dicts.
    parser = safe_parser(source)
    fold = JUnitFold(acc, parser, on_case)
    feed(parser, source, fold.after_chunk)
    return fold.finish()
