"""The pure core of `ltr history`, `ltr report --compare`, `ltr flaky` and `ltr quarantine`:
check the input, pick the history to read, render what report_processor/history/queries.py
returns. No boto3 here: ltr/aws.py builds the store, ltr/cli.py wires both.

Everything shown comes from the results bucket, which anyone who can run tests can shape: test
ids go through the same terminal filter and table cells as the rest of ltr.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from runner.layout import command_slug

from ltr.core import (
    LtrError,
    format_duration,
    format_started,
    render_table,
    table_cell,
    terminal_safe,
)
from report_processor.history.keys import HistoryKeyError, HistoryScope
from report_processor.history.quarantine import QuarantineEntry, QuarantineList
from report_processor.history.queries import CaseOutcome, Comparison, expiring_soon
from report_processor.history.records import HistoryConfig, RunIndex
from report_processor.history.section import FlakyTestInfo, RunRef
from report_processor.history.testid import matches

DEFAULTS = HistoryConfig()
DEFAULT_COMMAND = "test"
DEFAULT_HISTORY_LIMIT = 20
MAX_HISTORY_LIMIT = DEFAULTS.index_max_runs  # the index keeps at most this many runs
DEFAULT_FLAKY_DAYS = DEFAULTS.flaky_days
MAX_FLAKY_DAYS = 365
MAX_QUARANTINE_DAYS = DEFAULTS.quarantine_max_days
DEFAULT_QUARANTINE_DAYS = MAX_QUARANTINE_DAYS
# Test ids are `file::class::name`: wider than the other cells, still one line.
TEST_ID_CHARS = 200
LIST_FORMATS = ("table", "json")
SOON_DAYS = 3  # `ltr quarantine list` flags active entries expiring within this many days

RULES = {
    "same_version": "passed and failed on the same app version",
    "rerun": "passed on a rerun within one run",
    "flips": "outcome changed often",
}


def history_scope(
    project: str, environment: str, command: str, allowed: Sequence[str]
) -> HistoryScope:
    """The history of one command of the deployed stack (`--command`, default `test`)."""
    if command not in allowed:
        raise LtrError(
            f"--command {command!r} is not one of the stack's commands ({', '.join(allowed)}); "
            "history is kept per command"
        )
    try:
        return HistoryScope(project, environment, command_slug(command))
    except HistoryKeyError as error:
        raise LtrError(str(error)) from None


def check_range(option: str, value: int, low: int, high: int, why: str = "") -> int:
    if not low <= value <= high:
        raise LtrError(f"{option} {value}: give a number from {low} to {high}{why}")
    return value


def check_test_query(query: str) -> str:
    text = query.strip()
    if not text or any(ord(char) < 32 for char in text):
        raise LtrError(
            f"TEST_ID {terminal_safe(query)!r}: give a test id (`file::class::name`) or its end "
            "(`Class::name`, `name`) on one line"
        )
    return text


def where(scope: HistoryScope) -> str:
    return f"{scope.command_slug} on {scope.project}/{scope.environment}"


def no_history(scope: HistoryScope, bucket: str) -> LtrError:
    return LtrError(
        f"no run of {where(scope)} is recorded in the history yet (s3://{bucket}/{scope.prefix}); "
        "the report processor records every report it processes"
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _version(value: str | None) -> str:
    return value or "-"


# --------------------------------------------------------------------------- ltr history


def render_test_history(query: str, outcomes: Sequence[CaseOutcome], runs_read: int) -> str:
    """Newest first; one block per matching id when a short query matches several tests."""
    ids = list(dict.fromkeys(outcome.test_id for outcome in outcomes))
    blocks = []
    if len(ids) > 1:
        blocks.append(
            f"{len(ids)} tests match {table_cell(query)!r}; give more of the id to pick one"
        )
    for test_id in ids:
        rows = [o for o in outcomes if o.test_id == test_id]
        failing = sum(1 for o in rows if o.outcome.startswith(("failed", "error")))
        lines = [
            f"{table_cell(test_id, TEST_ID_CHARS)}",
            f"ran in {len(rows)} of the last {runs_read} recorded runs, failed or errored in "
            f"{failing}",
            render_table(
                ("STARTED", "RUN ID", "OUTCOME", "TIME", "APP VERSION"),
                [
                    (
                        format_started(o.run.started_at),
                        o.run.run_id,
                        o.outcome,
                        format_duration(o.seconds),
                        _version(o.run.app_version),
                    )
                    for o in rows
                ],
            ),
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def test_history_json(outcomes: Sequence[CaseOutcome]) -> str:
    return _json([asdict(outcome) for outcome in outcomes])


def no_such_test(query: str, scope: HistoryScope, runs_read: int) -> LtrError:
    return LtrError(
        f"no test matching {table_cell(query)!r} ran in the last {runs_read} recorded runs of "
        f"{where(scope)}; give the id as the reports show it (`file::class::name`) or its end "
        "(`Class::name`, `name`), or look further back with --limit"
    )


# --------------------------------------------------------------------------- ltr report --compare


def resolve_run(index: RunIndex, run_id: str, scope: HistoryScope) -> str:
    """`latest` is the newest recorded run; any other id must be in the history."""
    if run_id == "latest":
        if not index.runs:
            raise LtrError(f"no run of {where(scope)} is recorded in the history yet")
        return index.runs[-1].run_id
    if index.find(run_id) is None:
        raise LtrError(
            f"run {run_id!r} of {where(scope)} is not in the history: check the id with `ltr "
            "runs` (runs older than the bucket's retention are gone, and only runs that uploaded "
            "a report are recorded; another command's runs need --command)"
        )
    return run_id


def _run_line(label: str, run: RunRef) -> str:
    return (
        f"{label} {run.run_id} (started {format_started(run.started_at)}, "
        f"app version {_version(run.app_version)})"
    )


def render_comparison(comparison: Comparison, scope: HistoryScope) -> str:
    c = comparison
    counts = (
        f"{_plural(c.new_failure_count, 'new failure')} · {c.fixed_count} fixed · "
        f"{c.still_failing_count} still failing · {_plural(c.new_tests, 'new test')} · "
        f"{c.disappeared} disappeared"
    )
    lines = [
        f"# {where(scope)}: {terminal_safe(c.run.run_id)} compared with "
        f"{terminal_safe(c.other.run_id)}",
        "",
        _run_line("-", c.run),
        _run_line("- compared with", c.other),
        "",
        counts,
    ]
    sections: list[tuple[str, Sequence[str], int]] = [
        ("New failures", c.new_failures, c.new_failure_count),
        ("Fixed", c.fixed, c.fixed_count),
        ("Still failing", c.still_failing, c.still_failing_count),
        ("New tests", c.new_test_sample, c.new_tests),
        ("Disappeared", c.disappeared_sample, c.disappeared),
    ]
    for title, names, total in sections:
        if not total:
            continue
        shown = f", {len(names)} shown" if len(names) < total else ""
        lines += ["", f"## {title} ({total}{shown})", ""]
        lines += [f"- {table_cell(name, TEST_ID_CHARS)}" for name in names]
    if not (c.new_failure_count or c.fixed_count or c.new_tests or c.disappeared):
        lines += ["", "No test changed its outcome."]
    return "\n".join(lines)


def comparison_json(comparison: Comparison) -> str:
    return _json(asdict(comparison))


# --------------------------------------------------------------------------- ltr flaky


def render_flaky(items: Sequence[FlakyTestInfo], scope: HistoryScope, days: int) -> str:
    if not items:
        return f"no flaky tests in the runs of {where(scope)} from the last {_plural(days, 'day')}"
    table = render_table(
        ("FLIPS", "RUNS", "WHY", "APP VERSION", "TEST"),
        [
            (
                str(item.flips),
                str(item.runs),
                RULES.get(item.rule, item.rule),
                _version(item.app_version),
                item.test_id,
            )
            for item in items
        ],
        last_column_chars=TEST_ID_CHARS,
    )
    heading = (
        f"{_plural(len(items), 'flaky test')} in the runs of {where(scope)} from the last "
        f"{_plural(days, 'day')}, "
        "most flips first"
    )
    return f"{heading}\n{table}"


def flaky_json(items: Sequence[FlakyTestInfo]) -> str:
    return _json([asdict(item) for item in items])


# --------------------------------------------------------------------------- ltr quarantine


def pick_test_id(query: str, candidates: Sequence[str]) -> str:
    """The full id to quarantine: what the latest run calls it. A full id that did not run
    lately is taken as given (it protects the test once it runs under that id)."""
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        shown = "; ".join(table_cell(c, TEST_ID_CHARS) for c in candidates[:5])
        raise LtrError(
            f"TEST_ID {table_cell(query)!r} matches {len(candidates)} tests of the latest run "
            f"({shown}); give more of the id"
        )
    if query.count("::") >= 2:
        return query
    raise LtrError(
        f"no test matching {table_cell(query)!r} ran in the latest recorded run; give the full "
        "id (`file::class::name`, as `ltr history` and the reports show it)"
    )


def pick_entry(query: str, entries: QuarantineList) -> QuarantineEntry:
    exact = entries.find(query)
    if exact is not None:
        return exact
    found = [entry for entry in entries.entries if matches(query, entry.test_id)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise LtrError(
            f"{table_cell(query)!r} is not on the quarantine list: see `ltr quarantine list`"
        )
    shown = "; ".join(table_cell(e.test_id, TEST_ID_CHARS) for e in found[:5])
    raise LtrError(
        f"{table_cell(query)!r} matches {len(found)} quarantined tests ({shown}); give more of "
        "the id"
    )


def added_line(entry: QuarantineEntry) -> str:
    return (
        f"quarantined {entry.test_id} until {format_started(entry.expires)} "
        f"(owner {entry.owner}: {entry.reason}); it still runs and is reported in its own "
        "section, but no longer counts against the pass rate or the run's status"
    )


def render_quarantine(
    entries: QuarantineList, now: datetime, project: str, environment: str
) -> str:
    soon = {entry.test_id for entry in expiring_soon(entries, now, SOON_DAYS)}
    lines = []
    if entries.entries:
        rows = []
        for entry in entries.entries:
            state = entry.state(now)
            if entry.test_id in soon:
                state += f" (expires within {SOON_DAYS} days)"
            rows.append(
                (
                    state,
                    format_started(entry.expires),
                    entry.owner,
                    entry.reason,
                    entry.test_id,
                )
            )
        lines.append(
            render_table(
                ("STATE", "EXPIRES", "OWNER", "REASON", "TEST"),
                rows,
                last_column_chars=TEST_ID_CHARS,
            )
        )
        expired = len(entries.expired(now))
        if expired:
            lines.append(
                f"{expired} expired: they protect nothing; remove them with "
                "`ltr quarantine remove TEST_ID` or add them again"
            )
    else:
        lines.append(f"the quarantine list of {project}/{environment} is empty")
    lines += [table_cell(problem, 300) for problem in entries.problems]
    return "\n".join(lines)


def quarantine_json(entries: QuarantineList, now: datetime) -> str:
    return _json(
        {
            "entries": [{**asdict(entry), "state": entry.state(now)} for entry in entries.entries],
            "problems": list(entries.problems),
        }
    )
