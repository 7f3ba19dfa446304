"""Many failures, one cause: failures whose messages are equal once the variable parts are masked.

"SQLSTATE[08006] connection to 10.0.0.7:5432 refused" and the same with another address are one
cause. Masked: quoted values, paths, UUIDs, hex ids and numbers (in that order, so a number inside
a quoted value or a path does not leave a trace of its own). The groups are counted over every
failing case of the report (bounded: at most MAX_GROUPS patterns, the rest counted apart), so a
broken factory that fails 200 tests reads as one group of 200.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from report_processor.model import FailureGroup

MAX_GROUPS = 200
FIRST_TESTS = 5
OTHER_MESSAGES = "(other messages)"
_MAX_PATTERN_CHARS = 300
_MASKS = (
    (re.compile(r"\"(?:[^\"\\\n]|\\.){0,200}\"|'(?:[^'\\\n]|\\.){0,200}'|`[^`\n]{0,200}`"), "…"),
    # Starts only where a token starts: no quadratic backtracking inside long words.
    (re.compile(r"(?<![\w.\-~@/:])(?:[A-Za-z]:)?(?:[\w.\-~@]*/)+[\w.\-~@]+"), "<path>"),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<id>",
    ),
    (
        re.compile(
            r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"
        ),
        "<id>",
    ),
    (re.compile(r"\d+(?:[.,:]\d+)*"), "N"),
)
# A quoted value keeps its quotes so the reader sees that something was there.
_QUOTED = {'"': '"…"', "'": "'…'", "`": "`…`"}


@lru_cache(maxsize=4096)
def mask(message: str) -> str:
    """The message with its variable parts replaced; equal results mean one cause.

    Cached: a broken dependency repeats the same message thousands of times."""
    text = message[:2000]
    quoted = _MASKS[0][0]
    text = quoted.sub(lambda match: _QUOTED[match.group(0)[0]], text)
    for pattern, replacement in _MASKS[1:]:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())[:_MAX_PATTERN_CHARS]


@dataclass
class _Group:
    example: str
    count: int = 0
    kinds: set[str] = field(default_factory=set)
    first_tests: list[str] = field(default_factory=list)


@dataclass
class GroupCounter:
    """Bounded fold of failures into groups; several files merge into one."""

    groups: dict[str, _Group] = field(default_factory=dict)

    def add(self, message: str, kind: str, test: str) -> None:
        group = self._group(mask(message) if message else "", message)
        group.count += 1
        group.kinds.add(kind)
        if len(group.first_tests) < FIRST_TESTS:
            group.first_tests.append(test)

    def merge(self, other: GroupCounter) -> None:
        for pattern, source in other.groups.items():
            group = self._group(pattern, source.example)
            group.count += source.count
            group.kinds |= source.kinds
            group.first_tests.extend(source.first_tests[: FIRST_TESTS - len(group.first_tests)])

    def _group(self, pattern: str, example: str) -> _Group:
        group = self.groups.get(pattern)
        if group is None:
            if len(self.groups) >= MAX_GROUPS:
                pattern, example = OTHER_MESSAGES, ""
                group = self.groups.get(pattern)
            if group is None:
                group = self.groups[pattern] = _Group(example)
        return group

    def result(self) -> tuple[FailureGroup, ...]:
        """Largest first; ties keep the order in which their first failure came."""
        ordered = sorted(self.groups.items(), key=lambda item: -item[1].count)
        return tuple(
            FailureGroup(
                pattern=pattern,
                example=group.example,
                count=group.count,
                kind=next(iter(group.kinds)) if len(group.kinds) == 1 else "mixed",
                first_tests=tuple(group.first_tests),
            )
            for pattern, group in ordered
        )
