"""Shared helpers for the history tests: run one night through a HistorySession."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from report_processor.history.keys import HistoryScope
from report_processor.history.records import HistoryConfig, RunInfo
from report_processor.history.rows import ERROR, FAILED, PASSED, SKIPPED
from report_processor.history.section import HistorySection
from report_processor.history.session import HistorySession
from report_processor.history.storage import HistoryStore

SCOPE = HistoryScope("shop", "prod", "test")
FILE = "/var/task/app/tests/Feature/ShopTest.php"
CLASS = "Tests\\Feature\\ShopTest"
PREFIX = "tests/Feature/ShopTest.php::Tests.Feature.ShopTest::"
START = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
OUTCOMES = {"pass": PASSED, "fail": FAILED, "error": ERROR, "skip": SKIPPED, "flaky": PASSED}


def tid(name: str) -> str:
    return PREFIX + name


def short(test_id: str) -> str:
    return test_id.removeprefix(PREFIX)


@dataclass(frozen=True)
class Night:
    number: int
    version: str
    outcomes: Mapping[str, str]  # test name -> pass/fail/error/skip/flaky
    runner_status: str | None = "failed"

    @property
    def started_at(self) -> datetime:
        return START + timedelta(days=self.number)

    @property
    def run_id(self) -> str:
        return f"n{self.number}"


def run_night(
    store: HistoryStore,
    night: Night,
    config: HistoryConfig,
    messages: Mapping[str, str] | None = None,
    scope: HistoryScope = SCOPE,
) -> HistorySection:
    info = RunInfo(night.run_id, night.started_at, night.version, "img-1", night.runner_status)
    session = HistorySession.open(store, scope, info, config)
    for name, outcome in night.outcomes.items():
        session.on_case(FILE, CLASS, name, OUTCOMES[outcome], 0.25, outcome == "flaky")
    return session.finish({tid(k): v for k, v in (messages or {}).items()})


def names(items: Iterable[str]) -> set[str]:
    return {short(item) for item in items}


def junit_xml(
    outcomes: Mapping[str, str], messages: Mapping[str, str] | None = None, seconds: float = 0.25
) -> bytes:
    """A PHPUnit 9-shaped JUnit report of one class with these outcomes (flaky = passed on a
    rerun, written as Surefire's flakyFailure)."""
    from xml.sax.saxutils import quoteattr

    messages = messages or {}
    cases = []
    for name, outcome in outcomes.items():
        attrs = (
            f"name={quoteattr(name)} class={quoteattr(CLASS)} "
            f"classname={quoteattr(CLASS.replace(chr(92), '.'))} file={quoteattr(FILE)} "
            f'line="7" assertions="1" time="{seconds}"'
        )
        message = quoteattr(messages.get(name, f"{name} {outcome}"))
        inner = {
            "pass": "",
            "skip": "<skipped/>",
            "fail": f'<failure type="AssertionFailed" message={message}>trace</failure>',
            "error": f'<error type="RuntimeException" message={message}>trace</error>',
            "flaky": f'<flakyFailure type="AssertionFailed" message={message}/>',
        }[outcome]
        cases.append(f"<testcase {attrs}>{inner}</testcase>")
    suite = (
        f'<testsuite name={quoteattr(CLASS)} file={quoteattr(FILE)} tests="{len(cases)}">'
        + "".join(cases)
        + "</testsuite>"
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>{suite}</testsuites>\n'.encode()
