"""The pure core's one entry: JUnit inputs in, a Report and both renderings out."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import BinaryIO

from report_processor.model import InputResult, Report, RunMetadata, Totals
from report_processor.parse import Accumulator, JUnitError, OnCase, ParseLimits, parse_junit
from report_processor.render import DEFAULT_MAX_BYTES, to_json, to_markdown

# A path, or a (display name, binary stream) pair for inputs that are not files (S3 bodies).
Source = str | os.PathLike[str] | tuple[str, BinaryIO]


@dataclass(frozen=True)
class Summary:
    report: Report
    markdown: str
    json: str


def build_report(
    sources: Iterable[Source],
    metadata: RunMetadata | None = None,
    limits: ParseLimits | None = None,
    on_case: OnCase | None = None,
) -> Report:
    """Parse every source on its own (a broken file adds nothing) and merge the usable ones.

    `on_case` sees every testcase as it is parsed, including those of a file that turns out to
    be broken later: the caller drops what it recorded when an input is unusable.
    """
    limits = limits or ParseLimits()
    merged = Accumulator(limits)
    inputs: list[InputResult] = []
    for source in sources:
        name, result = _parse_source(source, limits, on_case)
        if isinstance(result, Accumulator):
            merged.merge(result)
            inputs.append(InputResult(path=name, ok=True, tests=result.tests))
        else:
            inputs.append(InputResult(path=name, ok=False, error=result))
    metadata = metadata or RunMetadata()
    return Report(
        totals=_with_duration(merged.totals(), metadata, merged.declared_seconds),
        suites=merged.suite_rows(),
        failures=tuple(merged.failures),
        slowest=merged.slowest(),
        inputs=tuple(inputs),
        metadata=metadata,
        flaky_tests=tuple(merged.flaky_tests),
        failures_not_detailed=merged.failures_not_detailed,
        suites_folded=merged.suites_folded,
        warnings=merged.all_warnings(),
    )


def _with_duration(totals: Totals, metadata: RunMetadata, declared: float | None) -> Totals:
    """The headline duration is the run's wall time: the runner's, else the report's own."""
    if metadata.duration_seconds is not None:
        return replace(totals, duration_seconds=metadata.duration_seconds, duration_source="runner")
    if declared is not None:
        return replace(totals, duration_seconds=round(declared, 6), duration_source="report")
    return totals


def summarize(
    sources: Iterable[Source],
    metadata: RunMetadata | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    limits: ParseLimits | None = None,
) -> Summary:
    report = build_report(sources, metadata, limits)
    return Summary(report=report, markdown=to_markdown(report, max_bytes), json=to_json(report))


def _parse_source(
    source: Source, limits: ParseLimits, on_case: OnCase | None = None
) -> tuple[str, Accumulator | str]:
    if isinstance(source, tuple):
        name, stream = source
        try:
            return name, parse_junit(stream, limits, on_case)
        except JUnitError as error:
            return name, str(error)
    name = os.fspath(source)
    try:
        with open(source, "rb") as stream:
            return name, parse_junit(stream, limits, on_case)
    except JUnitError as error:
        return name, str(error)
    except OSError as error:
        return name, f"cannot read the file: {error.strerror or error}"
