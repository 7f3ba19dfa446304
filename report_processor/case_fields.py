"""Reading a testcase's attributes: times, counts, names and outcome marks, leniently.

Runners write junk (`time="1,234.5"`, `inf`, `-1`, `nan`); every reader here turns it into a
finite, non-negative value, so sums stay finite and summary.json stays strict JSON.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any

# Beyond these a `time` or a declared count is junk (no test runs for 115 days): it counts as 0, so
# sums stay finite and summary.json stays strict JSON.
MAX_SECONDS = 1e7
MAX_COUNT = 10**9
MAX_CONTEXT_CHARS = 200
MAX_PROPERTIES = 10

# Outcome ranks, highest wins: a case with an <error> and a <failure> is an error.
PASSED, SKIPPED, FAILED, ERROR = 0, 1, 2, 3
RESULT_RANKS = {"skipped": SKIPPED, "failure": FAILED, "error": ERROR}
FLAKY_TAGS = frozenset({"flakyFailure", "flakyError"})
# Surefire's reruns: not an outcome of their own, but counted in the suite's declared failures.
RERUN_TAGS = frozenset({"rerunFailure", "rerunError"})
KIND_NAMES = {FAILED: "failed", ERROR: "error"}
# Google Test marks tests that did not run with attributes, not elements.
_SKIPPED_RESULTS = frozenset({"skipped", "suppressed"})
ATTRIBUTE_NAMES = itemgetter(slice(None, None, 2))  # the names of pyexpat's [name, value, ...] list


def lenient_seconds(raw: str | None) -> float:
    """Seconds from a `time` attribute; "1,234.5" reads as 1234.5; junk, empty or negative is 0."""
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        try:
            value = float(raw.strip().replace(",", ""))
        except ValueError:
            return 0.0
    if not 0.0 <= value <= MAX_SECONDS:
        return 0.0
    return value


def lenient_count(raw: str | None) -> int:
    """A declared count attribute; anything that is not a non-negative number counts as 0."""
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        try:
            value = int(float(raw.strip().replace(",", "")))
        except (ValueError, OverflowError):
            return 0
    return value if 0 <= value <= MAX_COUNT else 0


def plausible_seconds(value: Any) -> float | None:
    """A JSON number of seconds (manifest, plan, shard rows) within MAX_SECONDS, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value <= MAX_SECONDS else None


def line_number(raw: str | None) -> int | None:
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value > 0 else None


def failure_details(text: str, limit: int) -> str:
    """A failure's text as the XML indents it, minus the indentation common to its lines."""
    lines = text.rstrip().splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    text = textwrap.dedent("\n".join(lines))
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def trimmed(text: str | None, limit: int) -> str:
    if not text:
        return ""
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def add_property(properties: list[str], attrs: dict[str, str]) -> None:
    if len(properties) < MAX_PROPERTIES and attrs.get("name"):
        properties.append(f"{attrs['name']}={attrs.get('value', '')}")


def context_line(hostname: str | None, case: list[str] | None, suite: list[str]) -> str:
    parts = [f"hostname={hostname}"] if hostname else []
    parts.extend(case or ())
    parts.extend(suite)
    return trimmed(", ".join(parts), MAX_CONTEXT_CHARS)


def classname_of(attrs: dict[str, str]) -> str:
    return attrs.get("classname") or attrs.get("class") or ""


def case_label(suite: str, attrs: dict[str, str]) -> str:
    """ "Class › name" for lists of tests; the class is left out where it repeats the suite."""
    classname = classname_of(attrs)
    name = attrs.get("name", "")
    if classname and name and classname not in (suite, name):
        return f"{classname} › {name}"
    return name or classname or "(unnamed test)"


def not_run(attrs: dict[str, str], rank: int) -> int:
    """Google Test marks tests that did not run with attributes: at least skipped."""
    if attrs.get("status") == "notrun" or attrs.get("result") in _SKIPPED_RESULTS:
        return max(rank, SKIPPED)
    return rank


def case_seconds(raw: str | None) -> float:
    """A testcase's `time`: float() first (the common case), lenient_seconds for the rest."""
    try:
        seconds = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return lenient_seconds(raw)
    return seconds if 0.0 <= seconds <= MAX_SECONDS else 0.0


def batch_seconds(raw: list[str] | None, count: int) -> list[float]:
    """_case_seconds of each of `count` testcases (None: no `time` attribute), at C speed."""
    if raw is None:
        return [0.0] * count
    try:
        seconds = list(map(float, raw))
    except ValueError:
        return [case_seconds(value) for value in raw]
    # A NaN makes the sum NaN (min() and max() are only reliable without NaNs).
    check = sum(seconds)
    if check == check and min(seconds) >= 0.0 and max(seconds) <= MAX_SECONDS:
        return seconds
    return [value if 0.0 <= value <= MAX_SECONDS else 0.0 for value in seconds]


def attr_dict(attr_list: list[str]) -> dict[str, str]:
    """pyexpat's ordered attribute list as a dict (XML forbids repeated attribute names)."""
    return dict(zip(attr_list[::2], attr_list[1::2], strict=True))


@dataclass(frozen=True, slots=True)
class CaseLayout:
    """Where a testcase's attributes sit in pyexpat's [name, value, ...] list; 0 when absent."""

    names: list[str]
    time: int
    file: int
    name_at: int
    classname_at: int
    class_at: int
    # Google Test's `status`/`result` can mark a test that did not run: read them as a dict.
    marks_not_run: bool
    time_of: Callable[[list[str]], str]

    @classmethod
    def of(cls, names: list[str]) -> CaseLayout:
        def at(key: str) -> int:
            return 2 * names.index(key) + 1 if key in names else 0

        return cls(
            names,
            at("time"),
            at("file"),
            at("name"),
            at("classname"),
            at("class"),
            "status" in names or "result" in names,
            itemgetter(at("time")),
        )

    def name(self, attrs: list[str]) -> str:
        return attrs[self.name_at] if self.name_at else ""

    # The same for a batch of testcases, as iterables (column by column, at C speed).

    def files(self, batch: list[list[str]]) -> Iterable[str | None]:
        return map(itemgetter(self.file), batch) if self.file else repeat(None)

    def classnames(self, batch: list[list[str]]) -> Iterable[str]:
        if not self.classname_at:
            return map(itemgetter(self.class_at), batch) if self.class_at else repeat("")
        names = list(map(itemgetter(self.classname_at), batch))
        if "" in names and self.class_at:
            return [self.classname(attrs) for attrs in batch]
        return names

    def names_of(self, batch: list[list[str]]) -> Iterable[str]:
        return map(itemgetter(self.name_at), batch) if self.name_at else repeat("")

    def classname(self, attrs: list[str]) -> str:
        """As classname_of: `classname`, else `class`, else ""."""
        return (attrs[self.classname_at] if self.classname_at else "") or (
            attrs[self.class_at] if self.class_at else ""
        )
