"""Why tests were skipped: skipped cases folded by reason (bounded), for the Skipped section."""

from __future__ import annotations

from dataclasses import dataclass, field

from report_processor.model import SkipReason

MAX_REASONS = 50
FIRST_TESTS = 5
NO_REASON = "no reason given"
OTHER_REASONS = "(other reasons)"
_MAX_REASON_CHARS = 300


@dataclass
class SkipCounter:
    reasons: dict[str, tuple[list[int], list[str]]] = field(default_factory=dict)

    def add(self, reason: str | None, test: str, count: int = 1) -> None:
        self._add(" ".join((reason or "").split())[:_MAX_REASON_CHARS] or NO_REASON, count, [test])

    def merge(self, other: SkipCounter) -> None:
        for reason, (count, tests) in other.reasons.items():
            self._add(reason, count[0], tests)

    def _add(self, reason: str, count: int, tests: list[str]) -> None:
        entry = self.reasons.get(reason)
        if entry is None:
            if len(self.reasons) >= MAX_REASONS:
                reason = OTHER_REASONS
                entry = self.reasons.get(reason)
            if entry is None:
                entry = self.reasons[reason] = ([0], [])
        entry[0][0] += count
        entry[1].extend(tests[: FIRST_TESTS - len(entry[1])])

    def result(self) -> tuple[SkipReason, ...]:
        ordered = sorted(self.reasons.items(), key=lambda item: -item[1][0][0])
        return tuple(
            SkipReason(reason=reason, count=count[0], first_tests=tuple(tests))
            for reason, (count, tests) in ordered
        )
