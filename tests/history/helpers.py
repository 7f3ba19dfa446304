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
