"""The pure core's one entry: JUnit inputs in, a Report and both renderings out."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import BinaryIO

from report_processor.fold import OnCase
from report_processor.location import PathSettings, relative, source_url
from report_processor.model import Failure, InputResult, Report, RunMetadata, SuiteRow, Totals
from report_processor.parse import JUnitError, parse_junit
from report_processor.render import DEFAULT_MAX_BYTES, to_json, to_markdown
from report_processor.tally import OTHER_SUITES, Accumulator, ParseLimits

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
    paths: PathSettings | None = None,
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
        suites=_fold_suites(merged.suite_rows(), limits.max_suite_rows),
        failures=_located(merged.failures, limits, paths or PathSettings(), metadata.app_version),
        slowest=merged.slowest(),
        inputs=tuple(inputs),
        metadata=metadata,
        flaky_tests=tuple(merged.flaky_tests),
        failures_not_detailed=merged.failures_not_detailed,
        suites_folded=merged.suites_folded + _folded_count(merged.suite_rows(), limits),
        warnings=merged.all_warnings(),
        failure_groups=merged.groups.result(),
        skip_reasons=merged.skip_reasons.result(),
        test_warnings=tuple(merged.test_warnings),
    )


def _importance(row: SuiteRow) -> tuple[int, int, float]:
    return (row.failed + row.errors, row.skipped, row.duration_seconds)


def _folded_count(rows: tuple[SuiteRow, ...], limits: ParseLimits) -> int:
    named = [row for row in rows if row.name != OTHER_SUITES]
    return max(len(named) - limits.max_suite_rows, 0)


def _fold_suites(rows: tuple[SuiteRow, ...], keep: int) -> tuple[SuiteRow, ...]:
    """At most `keep` named rows: the least important are summed into "(other suites)", last."""
    named = [row for row in rows if row.name != OTHER_SUITES]
    other = [row for row in rows if row.name == OTHER_SUITES]
    if len(named) <= keep and not other:
        return rows
    ranked = sorted(range(len(named)), key=lambda index: _importance(named[index]), reverse=True)
    kept = sorted(ranked[:keep])
    folded = [named[index] for index in ranked[keep:]] + other
    result = [named[index] for index in kept]
    if folded:
        result.append(
            SuiteRow(
                name=OTHER_SUITES,
                file=None,
                tests=sum(row.tests for row in folded),
                passed=sum(row.passed for row in folded),
                failed=sum(row.failed for row in folded),
                errors=sum(row.errors for row in folded),
                skipped=sum(row.skipped for row in folded),
                flaky=sum(row.flaky for row in folded),
                duration_seconds=round(sum(row.duration_seconds for row in folded), 6),
                from_declared_counts=any(row.from_declared_counts for row in folded),
            )
        )
    return tuple(result)


def _located(
    failures: list[Failure], limits: ParseLimits, paths: PathSettings, app_version: str | None
) -> tuple[Failure, ...]:
    """Paths relative to the app root, a source link, and traces only for the first failures."""
    located = []
    for index, failure in enumerate(failures):
        at_file = relative(failure.at_file, paths.app_root) if failure.at_file else None
        url = source_url(paths.source_url_template, at_file or "", failure.at_line, app_version)
        located.append(
            replace(
                failure,
                file=relative(failure.file, paths.app_root) if failure.file else None,
                at_file=at_file,
                url=url or None,
                details=failure.details if index < limits.max_failures_detailed else "",
            )
        )
    return tuple(located)


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
    paths: PathSettings | None = None,
) -> Summary:
    report = build_report(sources, metadata, limits, paths)
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
