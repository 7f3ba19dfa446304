"""What `ltr history`, `ltr report --compare`, `ltr flaky` and `ltr quarantine` call (pure core
over a HistoryStore; the CLI builds the S3 store and prints)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from report_processor.history import keys
from report_processor.history.analysis import Observations, diff, flaky, flaky_window, observe
from report_processor.history.keys import HistoryScope
from report_processor.history.quarantine import (
    QuarantineEntry,
    QuarantineList,
    adding,
    new_entry,
    parse_quarantine,
    removing,
)
from report_processor.history.records import HistoryConfig, RunRecord, iso
from report_processor.history.rows import HistoryDataError, iter_rows, outcome_name, resolve_names
from report_processor.history.section import FlakyTestInfo, RunRef
from report_processor.history.session import load_index, load_run_digest, ref
from report_processor.history.storage import HistoryStore, read_json, update_json
from report_processor.history.testid import matches


class HistoryQueryError(ValueError):
    pass


@dataclass(frozen=True)
class CaseOutcome:
    test_id: str
    run: RunRef
    outcome: str
    seconds: float


def outcomes_of_test(
    store: HistoryStore, scope: HistoryScope, query: str, limit: int = 20
) -> list[CaseOutcome]:
    """`ltr history TEST_ID [--limit N]`: newest first, one row per run (and matching id) in
    which the test ran; `query` is a full id or a `Class::name` / `name` suffix of one."""
    found: list[CaseOutcome] = []
    for run in list(reversed(load_index(store, scope).runs))[:limit]:
        stream = store.open(keys.rows_key(scope, run.run_key))
        if stream is None:
            continue
        try:
            for text, code, millis in iter_rows(stream, run.run_key):
                if matches(query, text):
                    found.append(CaseOutcome(text, ref(run), outcome_name(code), millis / 1000))
        except HistoryDataError:
            continue
        finally:
            stream.close()
    return found


def find_test_ids(
    store: HistoryStore, scope: HistoryScope, query: str, limit: int = 20
) -> list[str]:
    """Full ids matching `query` in the newest recorded run (for `ltr quarantine add` to turn
    `ShopTest::test_x` into the id the quarantine list must hold)."""
    runs = load_index(store, scope).runs
    if not runs:
        return []
    stream = store.open(keys.rows_key(scope, runs[-1].run_key))
    if stream is None:
        return []
    found: list[str] = []
    try:
        for text, _code, _millis in iter_rows(stream, runs[-1].run_key):
            if matches(query, text):
                found.append(text)
                if len(found) >= limit:
                    break
    finally:
        stream.close()
    return found


@dataclass(frozen=True)
class Comparison:
    run: RunRef
    other: RunRef
    new_failures: tuple[str, ...]
    still_failing: tuple[str, ...]
    fixed: tuple[str, ...]
    new_tests: int
    new_test_sample: tuple[str, ...]
    disappeared: int
    disappeared_sample: tuple[str, ...]
    # Exact counts; the name lists above stop at `listed`.
    new_failure_count: int = 0
    still_failing_count: int = 0
    fixed_count: int = 0


def _run(store: HistoryStore, scope: HistoryScope, run_id: str) -> RunRecord:
    run = load_index(store, scope).find(run_id)
    if run is None:
        raise HistoryQueryError(
            f"run {run_id!r} is not in the history of {scope.prefix} (ltr history lists runs; "
            "runs older than the bucket's retention are gone)"
        )
    return run


def compare(
    store: HistoryStore, scope: HistoryScope, run_id: str, other_id: str, listed: int = 200
) -> Comparison:
    """`ltr report RUN_ID --compare OTHER_RUN_ID`: RUN_ID's diff against OTHER_RUN_ID."""
    run, other = _run(store, scope, run_id), _run(store, scope, other_id)
    digests = [
        load_run_digest(store, scope, r.run_key, f) for r in (run, other) for f in (False, True)
    ]
    current, current_failing, previous, previous_failing = digests
    if current is None or current_failing is None or previous is None or previous_failing is None:
        raise HistoryQueryError(f"the history objects of {run_id} or {other_id} are unreadable")
    hashes = diff(current, current_failing, previous, previous_failing, listed)
    names: dict[int, str] = {}
    for record, wanted in (
        (
            run,
            {*hashes.new_failures, *hashes.still_failing, *hashes.fixed, *hashes.new_test_sample},
        ),
        (other, set(hashes.disappeared_sample)),
    ):
        stream = store.open(keys.rows_key(scope, record.run_key))
        if stream is not None:
            try:
                names.update(resolve_names(stream, wanted, record.run_key))
            finally:
                stream.close()

    def named(items: Sequence[int]) -> tuple[str, ...]:
        return tuple(sorted(names.get(h, f"#{h:016x}") for h in items))

    return Comparison(
        run=ref(run),
        other=ref(other),
        new_failures=named(hashes.new_failures[:listed]),
        still_failing=named(hashes.still_failing[:listed]),
        fixed=named(hashes.fixed[:listed]),
        new_tests=hashes.new_tests,
        new_test_sample=named(hashes.new_test_sample),
        disappeared=hashes.disappeared,
        disappeared_sample=named(hashes.disappeared_sample),
        new_failure_count=hashes.new_failure_count,
        still_failing_count=hashes.still_failing_count,
        fixed_count=hashes.fixed_count,
    )


def flaky_tests(
    store: HistoryStore,
    scope: HistoryScope,
    now: datetime,
    days: int | None = None,
    config: HistoryConfig | None = None,
) -> list[FlakyTestInfo]:
    """`ltr flaky [--days N]`: flaky tests over the runs of the last N days, most flips first."""
    config = config or HistoryConfig()
    if days is not None:
        config = replace(config, flaky_days=days)
    index = load_index(store, scope)
    window = flaky_window(list(reversed(index.runs)), now, config)
    candidates: dict[int, None] = {}
    for run in window:
        failing = load_run_digest(store, scope, run.run_key, True)
        for hashed in failing.hashes if failing is not None else ():
            if len(candidates) < config.max_flaky_candidates:
                candidates[hashed] = None
    tracked = list(candidates)
    runs: list[RunRecord] = []
    codes: list[bytes] = []
    for run in window:
        digest = load_run_digest(store, scope, run.run_key)
        if digest is not None:
            runs.append(run)
            codes.append(observe(tracked, digest))
    verdicts = flaky(Observations(tuple(tracked), tuple(runs), tuple(codes)), config, now)
    wanted = {verdict.hashed for verdict in verdicts}
    names: dict[int, str] = {}
    for run in runs:
        if not wanted - names.keys():
            break
        stream = store.open(keys.rows_key(scope, run.run_key))
        if stream is not None:
            try:
                names.update(resolve_names(stream, wanted - names.keys(), run.run_key))
            finally:
                stream.close()
    return [
        FlakyTestInfo(
            names.get(v.hashed, f"#{v.hashed:016x}"), v.flips, v.runs, v.rule, v.app_version
        )
        for v in verdicts
    ]


def list_quarantine(
    store: HistoryStore, project: str, environment: str, max_days: int = 30
) -> QuarantineList:
    return parse_quarantine(read_json(store, keys.quarantine_key(project, environment)), max_days)


def add_to_quarantine(
    store: HistoryStore,
    project: str,
    environment: str,
    test_id: str,
    reason: str,
    owner: str,
    now: datetime,
    days: int = 30,
    max_days: int = 30,
) -> QuarantineEntry:
    """`ltr quarantine add TEST_ID --reason R --owner O [--days N]` (replaces an existing entry)."""
    entry = new_entry(test_id, reason, owner, now, days, max_days)
    update_json(store, keys.quarantine_key(project, environment), adding(entry, max_days))
    return entry


def remove_from_quarantine(
    store: HistoryStore, project: str, environment: str, test_id: str, max_days: int = 30
) -> None:
    """`ltr quarantine remove TEST_ID`; QuarantineError when it is not on the list."""
    update_json(store, keys.quarantine_key(project, environment), removing(test_id, max_days))


def expiring_soon(entries: QuarantineList, now: datetime, days: int = 3) -> list[QuarantineEntry]:
    """Active entries that expire within `days` (for `ltr quarantine list` to warn about)."""
    horizon = iso(now + timedelta(days=days))
    return [e for e in entries.entries if e.state(now) == "active" and e.expires <= horizon]
