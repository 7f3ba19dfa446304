"""Pure comparisons on digests: the diff, per-test history over recent runs, flakiness.

Everything works on 64-bit id hashes in sorted arrays, never on sets of id strings: a million
tests cost 9 MB per digest. The diff reads the failing tests through their small sidecars and
finds added/removed tests with a merge walk that skips equal 512-entry blocks at C speed, so an
unchanged million-test suite is compared in milliseconds and each difference costs one short walk.
"""

from __future__ import annotations

from array import array
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from report_processor.history.records import HistoryConfig, RunRecord
from report_processor.history.rows import (
    FAILED,
    FLAKY_BIT,
    OUTCOME_MASK,
    PASSED,
    SKIPPED,
    Digest,
    is_failing,
)

ABSENT = 255
_BLOCK = 512


@dataclass
class DiffHashes:
    """Counts are exact; the hash lists keep at most `keep` entries each (hash order), so an
    outage night with a million failures does not hold a million Python ints."""

    new_failures: list[int] = field(default_factory=list)
    still_failing: list[int] = field(default_factory=list)
    fixed: list[int] = field(default_factory=list)
    new_failure_count: int = 0
    still_failing_count: int = 0
    fixed_count: int = 0
    new_tests: int = 0
    new_test_sample: list[int] = field(default_factory=list)
    disappeared: int = 0
    disappeared_sample: list[int] = field(default_factory=list)


def diff(
    current: Digest,
    current_failing: Digest,
    previous: Digest,
    previous_failing: Digest,
    sample: int,
    keep: int = 1000,
    exclude: Container[int] = frozenset(),
) -> DiffHashes:
    """Tonight against the baseline run. A new test that fails is a new failure; a failing test
    that is skipped tonight is neither fixed nor failing; `exclude` (active quarantine) leaves
    tests out of new and still failing."""
    result = DiffHashes()
    for hashed, code in zip(current_failing.hashes, current_failing.codes, strict=True):
        if not is_failing(code) or hashed in exclude:
            continue
        before = previous.code_of(hashed)
        if before is not None and is_failing(before):
            result.still_failing_count += 1
            if len(result.still_failing) < keep:
                result.still_failing.append(hashed)
        else:
            result.new_failure_count += 1
            if len(result.new_failures) < keep:
                result.new_failures.append(hashed)
    for hashed, code in zip(previous_failing.hashes, previous_failing.codes, strict=True):
        if is_failing(code):
            now = current.code_of(hashed)
            if now is not None and now & OUTCOME_MASK == PASSED:
                result.fixed_count += 1
                if len(result.fixed) < keep:
                    result.fixed.append(hashed)
    (
        result.new_tests,
        result.new_test_sample,
        result.disappeared,
        result.disappeared_sample,
    ) = only_in_each(current.hashes, previous.hashes, sample)
    return result


def only_in_each(
    left: array[int], right: array[int], sample: int
) -> tuple[int, list[int], int, list[int]]:
    """Counts (and the first `sample`) of hashes only in `left`, and only in `right`."""
    i = j = 0
    n_left, n_right = len(left), len(right)
    only_left: list[int] = []
    only_right: list[int] = []
    count_left = count_right = 0
    while i < n_left and j < n_right:
        if (
            i + _BLOCK <= n_left
            and j + _BLOCK <= n_right
            and left[i : i + _BLOCK] == right[j : j + _BLOCK]
        ):
            i += _BLOCK
            j += _BLOCK
            continue
        end = i + _BLOCK
        while i < n_left and j < n_right and i < end:
            a, b = left[i], right[j]
            if a == b:
                i += 1
                j += 1
            elif a < b:
                count_left += 1
                if len(only_left) < sample:
                    only_left.append(a)
                i += 1
            else:
                count_right += 1
                if len(only_right) < sample:
                    only_right.append(b)
                j += 1
    only_left.extend(left[i : i + max(sample - len(only_left), 0)])
    only_right.extend(right[j : j + max(sample - len(only_right), 0)])
    count_left += n_left - i
    count_right += n_right - j
    return count_left, only_left, count_right, only_right


@dataclass(frozen=True)
class Observations:
    """Outcome codes (ABSENT when the test did not run) of tracked tests in a list of runs."""

    tracked: tuple[int, ...]
    runs: tuple[RunRecord, ...]  # newest first
    codes: tuple[bytes, ...]  # per run, aligned with tracked


def observe(tracked: Sequence[int], digest: Digest) -> bytes:
    return bytes(ABSENT if (code := digest.code_of(hashed)) is None else code for hashed in tracked)


@dataclass(frozen=True)
class CaseHistory:
    failed_runs: int  # k in "failed k of the last N runs"
    of_runs: int  # N: runs considered in which the test ran
    last_passed: RunRecord | None
    failing_since: RunRecord | None
    since_is_lower_bound: bool  # failing in every run considered: "since at least"


def case_history(position: int, obs: Observations, limit: int) -> CaseHistory:
    failed = ran = 0
    last_passed: RunRecord | None = None
    since: RunRecord | None = None
    streak = True
    for run, codes in list(zip(obs.runs, obs.codes, strict=True))[:limit]:
        code = codes[position]
        if code == ABSENT:
            continue
        ran += 1
        if is_failing(code):
            failed += 1
            if streak:
                since = run
        else:
            if code & OUTCOME_MASK == PASSED and last_passed is None:
                last_passed = run
            if code & OUTCOME_MASK != SKIPPED:
                streak = False
    return CaseHistory(failed, ran, last_passed, since, streak and since is not None)


@dataclass(frozen=True)
class FlakyVerdict:
    hashed: int
    flips: int
    runs: int
    rule: str  # "same_version", "rerun" or "flips"
    app_version: str | None


def flaky_window(
    runs_newest_first: Sequence[RunRecord], now: datetime, config: HistoryConfig
) -> list[RunRecord]:
    """Runs whose outcomes count for flakiness: not failed wholesale, within flaky_days."""
    window: list[RunRecord] = []
    for run in runs_newest_first:
        if run.wholesale:
            continue
        if (now - run.started).total_seconds() > config.flaky_days * 86400:
            break
        window.append(run)
        if len(window) >= config.flaky_max_runs:
            break
    return window


def flaky(obs: Observations, config: HistoryConfig, now: datetime) -> list[FlakyVerdict]:
    """Flaky tests, most flips first. `obs.runs` must already leave out wholesale failures.

    Rule 1: within flaky_days, the test passed in one run and failed in another run of the same
    app version ("same_version"; runs with no app version never pair), or passed on a rerun
    within one run, flakyFailure ("rerun"). Rule 2 ("flips"): in the last flip_runs runs in
    which it ran (skips ignored; at least flip_min_runs), its outcome changed at least
    flip_min_flips times; a within-run rerun counts as one flip.
    """
    verdicts: list[FlakyVerdict] = []
    horizon = config.flaky_days * 86400
    for position, hashed in enumerate(obs.tracked):
        by_version: dict[str, int] = {}  # version -> bit 1 passed, bit 2 failed
        same_version: str | None = None
        within_run = False
        rerun_version: str | None = None
        sequence: list[int] = []  # newest first: 0 pass, 1 fail, 2 within-run flaky
        for run, codes in zip(obs.runs, obs.codes, strict=True):
            code = codes[position]
            if code == ABSENT or code & OUTCOME_MASK == SKIPPED:
                continue
            if code & FLAKY_BIT:
                within_run = True
                rerun_version = rerun_version or run.app_version
            outcome = 2 if code & FLAKY_BIT else (1 if code & OUTCOME_MASK >= FAILED else 0)
            if len(sequence) < config.flip_runs:
                sequence.append(outcome)
            if run.app_version and (now - run.started).total_seconds() <= horizon:
                seen = by_version.get(run.app_version, 0) | (2 if outcome == 1 else 1)
                by_version[run.app_version] = seen
                if seen == 3 and same_version is None:
                    same_version = run.app_version
        flips = sum(1 for item in sequence if item == 2)
        previous: int | None = None
        for item in reversed(sequence):
            if item == 2:
                continue
            if previous is not None and item != previous:
                flips += 1
            previous = item
        if same_version is not None:
            verdicts.append(
                FlakyVerdict(hashed, flips, len(sequence), "same_version", same_version)
            )
        elif within_run:
            verdicts.append(FlakyVerdict(hashed, flips, len(sequence), "rerun", rerun_version))
        elif len(sequence) >= config.flip_min_runs and flips >= config.flip_min_flips:
            verdicts.append(FlakyVerdict(hashed, flips, len(sequence), "flips", None))
    verdicts.sort(key=lambda verdict: (-verdict.flips, verdict.hashed))
    return verdicts
